"""The one place where the node's errors become gRPC status codes (and back, for the client).

What a refusal means to the peer that receives it:
PERMISSION_DENIED: not pinned (any more), or the policy does not allow the kind;
RESOURCE_EXHAUSTED: over the evaluation budget for the epoch (figures in the message);
INVALID_ARGUMENT: a malformed request (bad element, sizes, batch too large);
NOT_FOUND: a kind this node does not hold;
FAILED_PRECONDITION: the epoch the caller expects is not current: re-read the node info;
INTERNAL: this node failed; the details stay in its own log, not in the peer's.
"""

from __future__ import annotations

import grpc

from node.errors import (
    BudgetExhausted,
    EpochChanged,
    InputError,
    InvalidElement,
    NodeError,
    PeerError,
    PeerUnavailable,
    PermissionDenied,
    ProtocolViolation,
    TooManyCalls,
    UnknownKind,
    UnknownPeer,
)

_CODES: tuple[tuple[type[NodeError], grpc.StatusCode], ...] = (
    (UnknownPeer, grpc.StatusCode.PERMISSION_DENIED),
    (PermissionDenied, grpc.StatusCode.PERMISSION_DENIED),
    (BudgetExhausted, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (TooManyCalls, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (UnknownKind, grpc.StatusCode.NOT_FOUND),
    (EpochChanged, grpc.StatusCode.FAILED_PRECONDITION),
    (InvalidElement, grpc.StatusCode.INVALID_ARGUMENT),
    (ProtocolViolation, grpc.StatusCode.INVALID_ARGUMENT),
    (InputError, grpc.StatusCode.INVALID_ARGUMENT),
)

GRPC_CONCURRENCY_LIMIT = "Concurrent RPC limit exceeded!"
"""What gRPC Python answers (RESOURCE_EXHAUSTED) past a server's maximum_concurrent_rpcs."""
TOO_MANY_CALLS = "too many calls in progress"
"""How our own per-peer refusal (RESOURCE_EXHAUSTED) starts, so a client tells it from a
budget refusal."""

INTERNAL_MESSAGE = "internal error on the serving node; its operator can see the cause in its log"


def status_of(exc: BaseException) -> grpc.StatusCode:
    """The status code a peer gets for `exc`; INTERNAL for anything that is not its doing."""
    for error_type, code in _CODES:
        if isinstance(exc, error_type):
            return code
    return grpc.StatusCode.INTERNAL


def peer_message(exc: BaseException, code: grpc.StatusCode) -> str:
    """What the peer is told: the precise reason for its own errors, nothing of ours."""
    if code is grpc.StatusCode.INTERNAL:
        return INTERNAL_MESSAGE
    return str(exc)


def client_error(code: grpc.StatusCode, details: str, who: str) -> PeerError:
    """The node error for a call to a peer that ended with `code`; `who` names the peer and
    the address dialled ("peer 'bank' (10.0.0.5:7443)") and starts the message."""
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return PeerUnavailable(f"{who}: unreachable: {details}")
    if code is grpc.StatusCode.PERMISSION_DENIED:
        return PermissionDenied(f"{who}: permission denied: {details}")
    if code is grpc.StatusCode.RESOURCE_EXHAUSTED:
        if details.startswith((GRPC_CONCURRENCY_LIMIT, TOO_MANY_CALLS)):
            # The peer is busy, not out of budget: like unreachable, worth trying again later.
            return PeerUnavailable(f"{who}: busy: {details}")
        return BudgetExhausted(f"{who}: {details}")
    if code is grpc.StatusCode.FAILED_PRECONDITION:
        # The peer rotated its OPRF key during the match; the match must start again.
        return EpochChanged(f"{who}: epoch changed: {details}")
    if code is grpc.StatusCode.NOT_FOUND:
        return UnknownKind(f"{who}: {details}")
    return PeerError(f"{who}: {code.name}: {details}")
