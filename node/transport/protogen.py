"""Regenerate the checked-in protobuf and gRPC modules (`make proto`).

The generated files live in node/transport/pb/ because the .proto's path under protos/ mirrors
the package, so they import as `node.transport.pb.federation_pb2` without sys.path tricks.
`check()` is what the staleness test runs: it generates into a temporary folder and compares.
"""

from __future__ import annotations

import filecmp
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROTO_ROOT = ROOT / "protos"
PROTO = PROTO_ROOT / "node" / "transport" / "pb" / "federation.proto"
GENERATED = ("federation_pb2.py", "federation_pb2.pyi", "federation_pb2_grpc.py")


def generate(out_root: Path) -> Path:
    """Run protoc (from grpcio-tools) into `out_root`; return the folder of the outputs."""
    from grpc_tools import protoc  # noqa: PLC0415 - a dev dependency, needed only to regenerate

    args = [
        "protoc",
        f"-I{PROTO_ROOT}",
        f"--python_out={out_root}",
        f"--pyi_out={out_root}",
        f"--grpc_python_out={out_root}",
        str(PROTO),
    ]
    if protoc.main(args) != 0:
        raise SystemExit(f"protoc failed on {PROTO}")
    return out_root / PROTO.parent.relative_to(PROTO_ROOT)


def stale_files() -> list[str]:
    """Names of generated files that differ from what the .proto gives now."""
    with tempfile.TemporaryDirectory() as tmp:
        fresh = generate(Path(tmp))
        here = PROTO.parent.relative_to(PROTO_ROOT)
        checked_in = ROOT / here
        return [
            name
            for name in GENERATED
            if not (checked_in / name).exists()
            or not filecmp.cmp(fresh / name, checked_in / name, shallow=False)
        ]


def main() -> None:
    generate(ROOT)
    (ROOT / "node" / "transport" / "pb" / "__init__.py").touch()
    print(f"regenerated {', '.join(GENERATED)} from {PROTO.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
