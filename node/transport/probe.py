"""Is a pinned peer reachable? One health check per address, over mutual TLS, all at once.

The check is the one a PeerClient makes before matching: it proves the connection, both TLS
identities and that the peer's server is SERVING. It calls only the standard health service,
never Federation, so it costs the peer no budget and leaves no session in its audit log.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import grpc

from node.config import ServeLimits
from node.identity import Identity, NodeID
from node.store.peers import PeerRecord
from node.transport.client import _NotServing, _probe, _reason
from node.transport.credentials import channel_credentials
from node.transport.grpc_options import channel_options

DEFAULT_TIMEOUT_S = 3.0


@dataclass(frozen=True)
class Reachability:
    """How a peer answered: the fastest address that did, or why none did."""

    reachable: bool
    address: str | None = None
    """The address that answered first; None when none did."""
    latency_ms: float | None = None
    """Connection, TLS handshake and health check, in milliseconds."""
    error: str = ""
    """Why each address failed ('ADDRESS: reason; ...'); empty when reachable."""

    def __str__(self) -> str:
        if self.reachable:
            return f"reachable ({self.latency_ms:.0f} ms)"
        return f"unreachable: {self.error}"


def probe_peers(
    peers: Sequence[PeerRecord], identity: Identity, timeout_s: float = DEFAULT_TIMEOUT_S
) -> dict[str, Reachability]:
    """Reachability per peer node ID; every address of every peer is checked concurrently,
    so the whole takes about `timeout_s` at most."""
    jobs = [(peer, address) for peer in peers for address in peer.addresses]
    with ThreadPoolExecutor(max_workers=max(1, min(len(jobs), 32))) as pool:
        futures = [pool.submit(_check, peer, addr, identity, timeout_s) for peer, addr in jobs]
        results = [future.result() for future in futures]
    answers: dict[str, list[tuple[str, float | None, str]]] = {p.node_id: [] for p in peers}
    for (peer, address), (latency, problem) in zip(jobs, results, strict=True):
        answers[peer.node_id].append((address, latency, problem))
    return {peer_id: _verdict(found) for peer_id, found in answers.items()}


def _check(
    peer: PeerRecord, address: str, identity: Identity, timeout_s: float
) -> tuple[float | None, str]:
    """(latency in ms, "") if `address` answered SERVING as the pinned peer, else (None, why)."""
    options = channel_options(ServeLimits().max_message_bytes, NodeID.parse(peer.node_id).dns_name)
    credentials = channel_credentials(identity, peer.cert_pem.encode())
    started = time.monotonic()
    with grpc.secure_channel(address, credentials, options=options) as channel:
        try:
            _probe(channel, timeout_s)
        except grpc.RpcError as exc:
            return None, _reason(exc, timeout_s, connecting=True)
        except _NotServing as exc:
            return None, str(exc)
    return (time.monotonic() - started) * 1000, ""


def _verdict(found: list[tuple[str, float | None, str]]) -> Reachability:
    answered = [(latency, address) for address, latency, _ in found if latency is not None]
    if answered:
        latency, address = min(answered)
        return Reachability(True, address, latency)
    if not found:
        return Reachability(False, error="no address to dial; pin it again from a card with one")
    return Reachability(False, error="; ".join(f"{a}: {why}" for a, _, why in found))
