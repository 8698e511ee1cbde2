"""The node's TOML config file: what `init` writes and every command reads.

Only settings live here, never secrets. Every value has a default that suits a member node, so
the file `init` writes is short and an operator adds only what they change.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, TypeVar

import tomli_w

from node.errors import ConfigError, InputError
from node.identifiers import check_kind_name
from node.identity import split_host_port

# Mainland phone numbers are enumerable (~10^9): a budget bounds what one peer can probe per
# epoch. One million covers a large member's first full match and daily re-matches.
DEFAULT_PEER_BUDGET = 1_000_000

_T = TypeVar("_T")


@dataclass(frozen=True)
class ServeLimits:
    """Server-side limits, each a defence against a misbehaving peer."""

    max_concurrent_rpcs: int = 32
    max_message_bytes: int = 8 * 1024 * 1024
    max_batch_elements: int = 16384
    # An evaluation stream may run a long time on a large set; bounded nonetheless.
    stream_timeout_s: float = 3600.0
    # Calls one peer may have in progress: a peer holding streams open cannot take every
    # slot of max_concurrent_rpcs from the others. An honest match uses one or two.
    max_calls_per_peer: int = 4
    # A peer that stops sending batches mid-stream is cut off after this long.
    stream_idle_timeout_s: float = 120.0

    def __post_init__(self) -> None:
        if not 0 < self.max_calls_per_peer < self.max_concurrent_rpcs:
            raise InputError(
                f"max_calls_per_peer ({self.max_calls_per_peer}) must be at least 1 and below "
                f"max_concurrent_rpcs ({self.max_concurrent_rpcs}), or one peer can take them all"
            )


@dataclass(frozen=True)
class MatchSettings:
    """Client-side settings for `match`."""

    batch_elements: int = 4096
    call_timeout_s: float = 30.0
    stream_timeout_s: float = 3600.0
    connect_timeout_s: float = 10.0


@dataclass(frozen=True)
class NodeConfig:
    name: str
    listen: str
    advertise: tuple[str, ...]
    opaque_kinds: tuple[str, ...] = ()
    default_peer_budget: int = DEFAULT_PEER_BUDGET
    serve: ServeLimits = field(default_factory=ServeLimits)
    match: MatchSettings = field(default_factory=MatchSettings)

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise InputError("node name must not be empty")
        split_host_port(self.listen, source="listen address")
        for addr in self.advertise:
            split_host_port(addr, source="advertise address")
        for kind in self.opaque_kinds:
            check_kind_name(kind)
        if self.default_peer_budget < 0:
            raise InputError("default_peer_budget must be >= 0")

    def to_toml(self) -> str:
        doc: dict[str, Any] = {
            "node": {"name": self.name, "listen": self.listen, "advertise": list(self.advertise)},
            "kinds": {"opaque": list(self.opaque_kinds)},
            "peers": {"default_budget": self.default_peer_budget},
        }
        return tomli_w.dumps(doc)

    @classmethod
    def load(cls, path: Path) -> NodeConfig:
        try:
            doc = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ConfigError(
                f"{path} is missing: is this a node data dir? (aif-node init)"
            ) from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: invalid TOML: {exc}") from exc
        try:
            node = _table(doc, "node", path)
            kinds = _table(doc, "kinds", path)
            peers = _table(doc, "peers", path)
            advertise = node.get("advertise", [])
            if isinstance(advertise, str):
                advertise = [advertise]
            return cls(
                name=str(node["name"]),
                listen=str(node["listen"]),
                advertise=tuple(str(a) for a in advertise),
                opaque_kinds=tuple(str(k) for k in kinds.get("opaque", [])),
                default_peer_budget=int(peers.get("default_budget", DEFAULT_PEER_BUDGET)),
                serve=_section(ServeLimits, _table(doc, "serve", path), path, "serve"),
                match=_section(MatchSettings, _table(doc, "match", path), path, "match"),
            )
        except KeyError as exc:
            raise ConfigError(f"{path}: missing setting {exc.args[0]!r} in [node]") from exc
        except (InputError, TypeError, ValueError) as exc:
            raise ConfigError(f"{path}: {exc}") from exc

    def with_listen(self, listen: str) -> NodeConfig:
        return replace(self, listen=listen)


def _table(doc: dict[str, Any], name: str, path: Path) -> dict[str, Any]:
    value = doc.get(name, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: [{name}] must be a table")
    return value


def _section(cls: type[_T], table: dict[str, Any], path: Path, name: str) -> _T:
    known = {f.name: f.type for f in fields(cls)}  # type: ignore[arg-type]
    unknown = set(table) - set(known)
    if unknown:
        raise ConfigError(f"{path}: unknown setting(s) in [{name}]: {', '.join(sorted(unknown))}")
    values = {k: (float(v) if known[k] == "float" else int(v)) for k, v in table.items()}
    return cls(**values)
