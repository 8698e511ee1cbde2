"""The figures at the top of a report: how many clues collide, with whom, of which kinds.

Two counts are kept apart on purpose: a *clue* is one of our records that other members hold
too; a *match* is one (clue, member) pair, so a clue three members hold is one clue and three
matches. With `--since`, a *new clue* is one first held by anyone at or after DATE and a *new
match* is a member found holding a clue at or after DATE (possibly a clue known before).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from node.report.since import at_utc, is_new
from node.store.matches import Collision


@dataclass(frozen=True)
class KindFigures:
    kind: str
    clues: int
    matches: int
    shared_widely: int
    """Clues that two or more members hold."""
    new_clues: int
    first_matched: dt.datetime
    last_matched: dt.datetime


@dataclass(frozen=True)
class PeerFigures:
    peer: str
    clues: int
    """Our clues this member holds too (one match each)."""
    by_kind: tuple[tuple[str, int], ...]
    new_matches: int
    first_matched: dt.datetime
    last_matched: dt.datetime


@dataclass(frozen=True)
class Summary:
    clues: int
    matches: int
    peers: int
    """Members holding at least one of our clues."""
    shared_widely: int
    new_clues: int | None
    """None without `--since`."""
    new_matches: int | None
    by_kind: tuple[KindFigures, ...]
    """By kind name."""
    by_peer: tuple[PeerFigures, ...]
    """Most clues first, then by name."""


@dataclass
class _Tally:
    clues: int = 0
    matches: int = 0
    shared_widely: int = 0
    new: int = 0
    first: dt.datetime | None = None
    last: dt.datetime | None = None

    def seen(self, first: dt.datetime, last: dt.datetime) -> None:
        self.first = first if self.first is None else min(self.first, first)
        self.last = last if self.last is None else max(self.last, last)


def summarise(collisions: Sequence[Collision], since: dt.datetime | None = None) -> Summary:
    """One pass over the collisions (they may be tens of thousands)."""
    kinds: dict[str, _Tally] = {}
    peers: dict[str, _Tally] = {}
    peer_kinds: dict[str, dict[str, int]] = {}
    new_clues = new_matches = 0
    for c in collisions:
        at = [at_utc(p.matched_at) for p in c.peers]
        first, last = min(at), max(at)
        kind = kinds.setdefault(c.kind, _Tally())
        kind.clues += 1
        kind.matches += len(c.peers)
        kind.shared_widely += len(c.peers) >= 2
        kind.seen(first, last)
        if since is not None and first >= since:
            kind.new += 1
            new_clues += 1
        for p, p_at in zip(c.peers, at, strict=True):
            peer = peers.setdefault(p.peer, _Tally())
            peer.clues += 1
            peer.seen(p_at, p_at)
            by_kind = peer_kinds.setdefault(p.peer, {})
            by_kind[c.kind] = by_kind.get(c.kind, 0) + 1
            if is_new(p, since):
                peer.new += 1
                new_matches += 1
    return Summary(
        clues=len(collisions),
        matches=sum(t.matches for t in kinds.values()),
        peers=len(peers),
        shared_widely=sum(t.shared_widely for t in kinds.values()),
        new_clues=None if since is None else new_clues,
        new_matches=None if since is None else new_matches,
        by_kind=tuple(
            KindFigures(name, t.clues, t.matches, t.shared_widely, t.new, *_span(t))
            for name, t in sorted(kinds.items())
        ),
        by_peer=tuple(
            PeerFigures(name, t.clues, tuple(sorted(peer_kinds[name].items())), t.new, *_span(t))
            for name, t in sorted(peers.items(), key=lambda item: (-item[1].clues, item[0]))
        ),
    )


def _span(tally: _Tally) -> tuple[dt.datetime, dt.datetime]:
    assert tally.first is not None and tally.last is not None  # set by the first `seen`
    return tally.first, tally.last
