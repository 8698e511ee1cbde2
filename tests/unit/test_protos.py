"""The checked-in generated code must be what the .proto gives now (`make proto` fixes it)."""

from node.transport import protogen
from node.transport.pb import federation_pb2


def test_generated_code_is_current() -> None:
    stale = protogen.stale_files()
    assert stale == [], f"stale generated files {stale}: run `make proto` and commit"


def test_service_is_in_the_versioned_package() -> None:
    service = federation_pb2.DESCRIPTOR.services_by_name["Federation"]
    assert service.full_name == "aif.federation.v1.Federation"
    assert {m.name for m in service.methods} == {"GetNodeInfo", "Evaluate", "SyncTags"}
