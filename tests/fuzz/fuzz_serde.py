"""Fuzz harness: a peer's protocol messages, from raw bytes through protobuf parsing, our
serde checks and, for requests, the real Evaluator over a real store (tests/fuzz/targets.py
holds the contract). The first byte picks the message type.

    python -m tests.fuzz.fuzz_serde -atheris_runs=100000
"""

from __future__ import annotations

from tests.fuzz import harness

with harness.instrumented(__name__ == "__main__"):
    from node.crypto import oprf
    from node.identifiers import oprf_input
    from node.psi.types import EvalBatch, EvalResult
    from node.transport import serde
    from node.transport.pb import federation_pb2 as pb
    from tests.fuzz import targets

CHECKS = targets.MESSAGE_CHECKS


def TestOneInput(data: bytes) -> None:
    if data:
        CHECKS[data[0] % len(CHECKS)](data[1:])


def seeds() -> list[bytes]:
    """One well-formed message of each type, prefixed with the byte that selects it."""
    _, blinded = oprf.blind_batch([oprf_input("phone", f"+8613800138{i:03d}") for i in range(3)])
    s = targets.server()
    [chunk] = s.node.evaluator.sync_tags(s.peer, "phone", 1, 0, "")
    info = s.node.evaluator.node_info(s.peer)
    messages = {
        targets.check_evaluate_request: serde.evaluate_call_to_pb(
            1, "phone", EvalBatch(bytes(16), b"".join(blinded))
        ),
        targets.check_sync_request: serde.sync_call_to_pb("phone", 1, 0, ""),
        targets.check_tag_chunk: serde.tag_chunk_to_pb(chunk),
        targets.check_evaluate_response: serde.eval_result_to_pb(
            EvalResult(bytes(16), b"".join(blinded), 5)
        ),
        targets.check_node_info: serde.node_info_to_pb(info),
    }
    assert list(messages) == list(CHECKS)
    return [bytes([i]) + m.SerializeToString() for i, m in enumerate(messages.values())] + [
        bytes([0])
        + pb.EvaluateRequest(epoch=1, kind="phone", batch_id=bytes(16)).SerializeToString()
    ]


if __name__ == "__main__":
    harness.main(TestOneInput, seeds())
