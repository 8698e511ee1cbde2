"""The node's TOML config file: what `init` writes and every command reads.

Only settings live here, never secrets. Every value has a default that suits a member node, so
the file `init` writes is short and an operator adds only what they change.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Sequence
from dataclasses import MISSING, dataclass, field, fields, replace
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
class ScheduleSettings:
    """`serve` re-matches every peer on this schedule, so collisions stay current without cron."""

    # Seconds between re-matches of one peer; 0 turns the schedule off. A re-match costs
    # only new and changed records, so a few hours is cheap.
    match_interval: float = 0.0
    # Each wait is stretched or shrunk by up to this fraction at random, so members that
    # started together do not all call each other at the same moment.
    jitter: float = 0.1
    # An unreachable peer is retried after retry_initial, doubling up to retry_max.
    retry_initial: float = 60.0
    retry_max: float = 3600.0

    def __post_init__(self) -> None:
        if self.match_interval < 0:
            raise InputError("match_interval must be >= 0 (0 turns the schedule off)")
        if not 0 <= self.jitter < 1:
            raise InputError(f"jitter must be a fraction in [0, 1), got {self.jitter}")
        if not 0 < self.retry_initial <= self.retry_max:
            raise InputError(
                f"retry_initial ({self.retry_initial}) must be > 0 and at most "
                f"retry_max ({self.retry_max})"
            )


LOG_FORMATS = ("text", "json")
LOG_LEVELS = ("debug", "info", "warning", "error")


@dataclass(frozen=True)
class LoggingSettings:
    """How `serve` logs: `json` writes one object per line, for a log shipper."""

    format: str = "text"
    level: str = "info"

    def __post_init__(self) -> None:
        if self.format not in LOG_FORMATS:
            raise InputError(f"format must be one of {', '.join(LOG_FORMATS)}, not {self.format!r}")
        if self.level not in LOG_LEVELS:
            raise InputError(f"level must be one of {', '.join(LOG_LEVELS)}, not {self.level!r}")


@dataclass(frozen=True)
class MetricsSettings:
    """Prometheus metrics over plain HTTP; off unless `listen` is set."""

    # HOST:PORT for the metrics endpoint, e.g. "127.0.0.1:9464"; empty means off. The
    # figures name peers, so bind it where only the monitoring system can reach it.
    listen: str = ""

    def __post_init__(self) -> None:
        if self.listen:
            split_host_port(self.listen, source="metrics listen address")


@dataclass(frozen=True)
class NodeConfig:
    name: str
    listen: str
    advertise: tuple[str, ...]
    opaque_kinds: tuple[str, ...] = ()
    default_peer_budget: int = DEFAULT_PEER_BUDGET
    serve: ServeLimits = field(default_factory=ServeLimits)
    match: MatchSettings = field(default_factory=MatchSettings)
    schedule: ScheduleSettings = field(default_factory=ScheduleSettings)
    logging: LoggingSettings = field(default_factory=LoggingSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)

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
        # A misspelt table or key is an error, not a silent default: `[schedul]` would
        # otherwise turn the schedule off without a word.
        _refuse_unknown(doc, ("node", "kinds", "peers", *SECTIONS), path, "the file")
        try:
            node = _table(doc, "node", path)
            kinds = _table(doc, "kinds", path)
            peers = _table(doc, "peers", path)
            _refuse_unknown(node, ("name", "listen", "advertise"), path, "[node]")
            _refuse_unknown(kinds, ("opaque",), path, "[kinds]")
            _refuse_unknown(peers, ("default_budget",), path, "[peers]")
            advertise = node.get("advertise", [])
            if isinstance(advertise, str):
                advertise = [advertise]
            return cls(
                name=str(node["name"]),
                listen=str(node["listen"]),
                advertise=tuple(str(a) for a in advertise),
                opaque_kinds=tuple(str(k) for k in kinds.get("opaque", [])),
                default_peer_budget=int(peers.get("default_budget", DEFAULT_PEER_BUDGET)),
                **{
                    name: _section(SECTIONS[name], _table(doc, name, path), path, name)
                    for name in SECTIONS
                },
            )
        except KeyError as exc:
            raise ConfigError(f"{path}: missing setting {exc.args[0]!r} in [node]") from exc
        except (InputError, TypeError, ValueError) as exc:
            raise ConfigError(f"{path}: {exc}") from exc

    def with_listen(self, listen: str) -> NodeConfig:
        return replace(self, listen=listen)

    def with_overrides(
        self,
        *,
        log_format: str | None = None,
        log_level: str | None = None,
        metrics_listen: str | None = None,
    ) -> NodeConfig:
        """The config with command-line flags applied over the file's settings."""
        config = self
        if log_format is not None:
            config = replace(config, logging=replace(config.logging, format=log_format))
        if log_level is not None:
            config = replace(config, logging=replace(config.logging, level=log_level))
        if metrics_listen is not None:
            config = replace(config, metrics=MetricsSettings(listen=metrics_listen))
        return config


SECTIONS: dict[str, type[Any]] = {
    f.name: f.default_factory  # type: ignore[misc]
    for f in fields(NodeConfig)
    if f.default_factory is not MISSING
}
"""The tables after [node], [kinds] and [peers], by name: NodeConfig's dataclass fields."""


def _refuse_unknown(table: dict[str, Any], known: Sequence[str], path: Path, where: str) -> None:
    unknown = sorted(set(table) - set(known))
    if unknown:
        raise ConfigError(
            f"{path}: unknown setting(s) in {where}: {', '.join(unknown)} "
            f"(known: {', '.join(known)})"
        )


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
    values: dict[str, Any] = {}
    for key, value in table.items():
        try:
            values[key] = _coerce(known[key], key, value)
        except ValueError as exc:
            raise ConfigError(f"{path}: [{name}] {key}: {exc}") from exc
    try:
        return cls(**values)
    except InputError as exc:
        raise ConfigError(f"{path}: [{name}] {exc}") from exc


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)?\s*$")
_UNIT_SECONDS = {None: 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: object) -> float:
    """Seconds from a number of seconds or a string like "90s", "30m", "6h", "1d"."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration such as 30m or 6h, got {value!r}")
    if isinstance(value, int | float):
        return float(value)
    found = _DURATION.match(str(value))
    if found is None:
        raise ValueError(f"expected a duration such as 90s, 30m, 6h or 1d, got {value!r}")
    return float(found.group(1)) * _UNIT_SECONDS[found.group(2)]


def _coerce(kind: Any, key: str, value: object) -> object:
    """A TOML value as the field's type; float fields are durations or fractions."""
    if kind == "str":
        if not isinstance(value, str):
            raise ValueError(f"expected a string, got {value!r}")
        return value
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"expected a whole number, got {value!r}")
        return value
    if key == "jitter":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"expected a fraction such as 0.1, got {value!r}")
        return float(value)
    return parse_duration(value)
