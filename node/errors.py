"""One exception hierarchy for the node.

Every error an operator or a peer can cause is a `NodeError`. The CLI maps these to exit
codes in one place, the gRPC servicer maps them to status codes in one place; nothing
else catches them broadly.
"""

from __future__ import annotations


class NodeError(Exception):
    """Base of every error the node raises on purpose."""


class ConfigError(NodeError):
    """The data dir or config file is missing, unreadable or inconsistent."""


class InputError(NodeError, ValueError):
    """Operator input (a file, a flag, a card) is malformed."""


class InvalidIdentifier(InputError):
    """An identifier failed normalisation or validation; `reason` says why for an operator."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(f"{kind}: {reason}")
        self.kind = kind
        self.reason = reason


class ImportRejected(InputError):
    """A whole import was refused; `problems` holds `(position, reason)` for the bad rows: a
    line number in a text file, or a place such as `sheet 'Sheet1' row 12, column 'phone'`."""

    def __init__(self, path: str, problems: list[tuple[int | str, str]], total_bad: int) -> None:
        super().__init__(f"{path}: {total_bad} invalid row(s); nothing imported")
        self.path = path
        self.problems = problems
        self.total_bad = total_bad

    def locate(self, position: int | str) -> str:
        """`FILE:LINE` for a line, `SOURCE: PLACE` for a sheet cell or a query row."""
        if isinstance(position, int):
            return f"{self.path}:{position}"
        return f"{self.path}: {position}"


class SourceUnavailable(NodeError):
    """The database an import reads from could not be reached or refused the login."""


class InvalidElement(NodeError, ValueError):
    """A group element from outside failed the RFC 9496/9497 deserialization checks."""


class InvalidScalar(NodeError, ValueError):
    """A scalar is not a canonical 32-byte little-endian encoding below the group order."""


class StoreError(NodeError):
    """The store is unusable: corrupt, from a newer version, or locked."""


class PeerError(NodeError):
    """Base for refusals that concern a peer; mapped to a gRPC status by the transport."""


class UnknownPeer(PeerError):
    """The TLS peer is not pinned, or a name/ID given by the operator matches no peer."""


class PermissionDenied(PeerError):
    """The peer is pinned but its policy does not allow what it asked for."""


class BudgetExhausted(PeerError):
    """The peer asked for more evaluations than its budget for the epoch allows."""


class TooManyCalls(PeerError):
    """A peer already has as many calls in progress as it may (RESOURCE_EXHAUSTED): one peer
    must not take every thread the server has."""


class ProtocolViolation(PeerError, ValueError):
    """A peer sent a message that breaks the protocol (bad sizes, unknown epoch, ...)."""


class UnknownKind(ProtocolViolation):
    """A peer asked about a kind this node does not hold or know (NOT_FOUND)."""


class EpochChanged(ProtocolViolation):
    """The epoch a request names is not the serving node's current one: it rotated its key,
    and the caller must start again in the new epoch (FAILED_PRECONDITION)."""


class PeerUnavailable(PeerError):
    """A peer could not be reached, or did not answer within its deadline."""


class MatchInProgress(NodeError):
    """Another process of this node is matching the same peer right now."""


class DecryptionError(NodeError, ValueError):
    """An AEAD ciphertext failed authentication: wrong key, or tampered with."""
