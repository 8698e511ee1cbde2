"""An arena for hostile-peer tests: one real NodeServer (alpha) on loopback with small limits,
attacked over pinned mutual TLS by `mallory` (a pinned peer that misbehaves on purpose) and
`miser` (a pinned peer with a budget of 10 and only the phone kind), while `honest`, another
pinned member, keeps matching against it with the real Matcher and PeerClient.

Everything runs in this process, so a test can read the server's audit log and budget
counters, the process-wide scalar multiplication counter, and the thread count and memory.
"""

from __future__ import annotations

import os
import random
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest

from node.config import ServeLimits
from node.crypto import oprf
from node.identifiers import oprf_input
from node.psi.matcher import Matcher
from node.sampledata import phone
from node.store.audit import AuditEntry
from node.transport.client import PeerClient
from node.transport.pb import federation_pb2 as pb
from node.transport.pb import federation_pb2_grpc as pb_grpc
from node.transport.server import NodeServer
from tests.unit.transport_nodes import TNode, make_node, raw_channel

LIMITS = ServeLimits(
    max_concurrent_rpcs=4,
    max_calls_per_peer=2,
    max_message_bytes=64 * 1024,
    max_batch_elements=64,
    stream_timeout_s=2.0,
)
"""Small enough to reach every limit quickly; an honest match of this arena fits in them."""
TIMEOUT = 10.0
EPOCH = 1
SEND_LIMIT = 1024 * 1024
"""Mallory's own send limit: well over the server's, so that the server is what refuses."""
MISER_BUDGET = 10
LABELS = ("fraud_ring", "mule_account", "fake_complaint")


@dataclass(frozen=True)
class Outcome:
    """How one raw call ended: its status code and details, and the answers before that."""

    code: grpc.StatusCode
    details: str
    responses: tuple[Any, ...] = ()


def blinded(values: Iterable[str], kind: str = "phone") -> bytes:
    """Honestly blinded elements for `values`, packed."""
    _, elements = oprf.blind_batch([oprf_input(kind, v) for v in values])
    return b"".join(elements)


def request(
    packed: bytes,
    *,
    epoch: int = EPOCH,
    kind: str = "phone",
    batch_id: bytes | None = None,
) -> pb.EvaluateRequest:
    return pb.EvaluateRequest(
        epoch=epoch,
        kind=kind,
        batch_id=secrets.token_bytes(16) if batch_id is None else batch_id,
        blinded=packed,
    )


def finish(call: Any) -> Outcome:
    """Read a streaming call to its end."""
    responses = []
    try:
        for response in call:
            responses.append(response)
    except grpc.RpcError as exc:
        return Outcome(exc.code(), exc.details() or "", tuple(responses))  # type: ignore[attr-defined]
    return Outcome(grpc.StatusCode.OK, "", tuple(responses))


def wait_until(condition: Callable[[], bool], what: str, timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


@dataclass
class Hostile:
    """A pinned peer's raw channel to alpha, able to send anything the wire carries."""

    node: TNode
    channel: grpc.Channel
    stub: Any

    def evaluate(self, *requests: pb.EvaluateRequest) -> Outcome:
        return finish(self.stub.Evaluate(iter(requests), timeout=TIMEOUT))

    def raw_stream(self, method: str, *messages: bytes) -> Outcome:
        """A stream-stream call of `method` with hand-made message bytes."""
        call = self.channel.stream_stream(
            f"/aif.federation.v1.Federation/{method}",
            request_serializer=lambda b: b,
            response_deserializer=lambda b: b,
        )
        return finish(call(iter(messages), timeout=TIMEOUT))

    def raw_unary(self, method: str, message: bytes, *, streaming: bool = False) -> Outcome:
        """A unary-request call of `method` (unary or server-streaming answer)."""
        kind = self.channel.unary_stream if streaming else self.channel.unary_unary
        call = kind(
            f"/aif.federation.v1.Federation/{method}",
            request_serializer=lambda b: b,
            response_deserializer=lambda b: b,
        )
        try:
            answer = call(message, timeout=TIMEOUT)
            return finish(answer) if streaming else Outcome(grpc.StatusCode.OK, "", (answer,))
        except grpc.RpcError as exc:
            return Outcome(exc.code(), exc.details() or "")  # type: ignore[attr-defined]


@dataclass
class Arena:
    """The server under attack, its attackers, and the honest member with its ground truth."""

    alpha: TNode
    server: NodeServer
    mallory: Hostile
    miser: Hostile
    honest: TNode
    honest_client: PeerClient
    rng: random.Random = field(default_factory=lambda: random.Random(2024))
    alpha_values: dict[str, tuple[str, ...]] = field(default_factory=dict)
    honest_values: set[str] = field(default_factory=set)
    rounds: int = 0

    # --- the server's view ----------------------------------------------------------------

    def audit(self, peer: str) -> list[AuditEntry]:
        """The server's audit entries with `peer`, newest first."""
        with self.alpha.open_store() as store:
            return list(store.audit.iterate(peer=peer))

    def used(self, peer: Hostile) -> int:
        with self.alpha.open_store() as store:
            return store.budget.used(str(peer.node.node_id), EPOCH)

    def new_audit(self, peer: str, before: int, count: int = 1) -> list[AuditEntry]:
        """The `count` entries with `peer` after the first `before` ones (waiting for them:
        a session the caller cancels is audited when the server notices), newest first."""
        wait_until(lambda: len(self.audit(peer)) >= before + count, f"{count} audit entries")
        entries = self.audit(peer)
        assert len(entries) == before + count, "more sessions were audited than were made"
        return entries[:count]

    # --- an honest member matching throughout -------------------------------------------

    def honest_round(self, fresh: int = 3) -> None:
        """Both sides gain a few records (shared, alpha's own, honest's own); honest matches
        alpha over its long-lived PeerClient and must find exactly the intersection, with
        alpha's labels. Each round evaluates and syncs something new."""
        self.rounds += 1
        shared = self.fresh_phones(fresh)
        only_alpha, only_honest = self.fresh_phones(fresh), self.fresh_phones(fresh)
        labels = {v: tuple(sorted(self.rng.sample(LABELS, 2))) for v in shared + only_alpha}
        self.alpha.add("phone", shared + only_alpha, labels)
        self.honest.add("phone", shared + only_honest, {})
        self.alpha_values.update(labels)
        self.honest_values.update(shared + only_honest)
        peer = self.honest.peer(self.alpha)
        with self.honest.open_store() as store:
            [summary] = Matcher(store, peer, self.honest_client, batch_elements=32).match(["phone"])
            found = {c.value: p.labels for c in store.matches.collisions(1) for p in c.peers}
        expected = {v: self.alpha_values[v] for v in self.honest_values & set(self.alpha_values)}
        assert found == expected, f"honest round {self.rounds}"
        assert summary.matches == len(expected)

    def fresh_phones(self, n: int) -> list[str]:
        """`n` phone numbers neither side holds yet."""
        taken = set(self.alpha_values) | self.honest_values
        out: list[str] = []
        while len(out) < n:
            value = phone(self.rng)
            if value not in taken and value not in out:
                out.append(value)
        return out

    # --- held streams ----------------------------------------------------------------------

    def hold(self, peer: Hostile, batches: int = 1) -> HeldStream:
        """An Evaluate stream that has been answered `batches` times and stays open."""
        held = HeldStream.open(peer)
        for _ in range(batches):
            held.send(request(blinded(self.fresh_phones(1))))
            next(held.call)
        return held


@dataclass
class HeldStream:
    """An Evaluate stream whose requests the test feeds one by one (None ends it)."""

    call: Any
    outbox: list[pb.EvaluateRequest | None]
    ready: threading.Condition

    @classmethod
    def open(cls, peer: Hostile) -> HeldStream:
        ready = threading.Condition()
        outbox: list[pb.EvaluateRequest | None] = []

        def requests() -> Iterator[pb.EvaluateRequest]:
            while True:
                with ready:
                    ready.wait_for(lambda: bool(outbox))
                    item = outbox.pop(0)
                if item is None:
                    return
                yield item

        call = peer.stub.Evaluate(requests(), timeout=TIMEOUT)
        return cls(call, outbox, ready)

    def send(self, item: pb.EvaluateRequest | None) -> None:
        with self.ready:
            self.outbox.append(item)
            self.ready.notify_all()

    def release(self) -> None:
        """Let the client's request thread end, whatever became of the call."""
        self.send(None)


def connect(server: TNode, node: TNode) -> Hostile:
    """A new connection of `node` to `server` (pinned there), with its own raw stub."""
    channel = raw_channel(
        node.identity,
        server.address,
        server.identity.cert_pem,
        server.node_id,
        max_message_bytes=SEND_LIMIT,
    )
    return Hostile(node, channel, pb_grpc.FederationStub(channel))


@pytest.fixture(scope="module")
def arena(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Arena]:
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")
    root = tmp_path_factory.mktemp("arena")
    alpha, honest = make_node(root, "alpha"), make_node(root, "honest")
    mallory, miser = make_node(root, "mallory"), make_node(root, "miser")
    server = alpha.server(LIMITS)
    server.start()
    alpha.pin(mallory)
    alpha.pin(miser, kinds=("phone",), budget=MISER_BUDGET)
    alpha.pin(honest)
    honest.pin(alpha)
    client = PeerClient(
        honest.peer(alpha), honest.identity, max_message_bytes=LIMITS.max_message_bytes
    )
    world = Arena(
        alpha,
        server,
        connect(alpha, mallory),
        connect(alpha, miser),
        honest,
        client,
    )
    try:
        world.honest_round()
        yield world
    finally:
        client.close()
        world.mallory.channel.close()
        world.miser.channel.close()
        server.stop(0)
