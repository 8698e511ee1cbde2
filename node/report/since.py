"""`--since DATE`: what is new since an investigator's last review.

A collision is new since DATE when at least one member was first found holding the clue at
or after DATE: either the clue is new, or a known clue gained another holder. Each match keeps
the time it was first found (`PeerMatch.matched_at`), so a re-run of `match` never makes an
old match look new.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from node.errors import InputError
from node.store.matches import Collision, PeerMatch


def parse_since(text: str, option: str = "--since") -> dt.datetime:
    """DATE as an aware UTC datetime: YYYY-MM-DD is midnight UTC; an ISO 8601 date-time
    without an offset is taken as UTC, one with an offset is converted."""
    try:
        if len(text) == 10:
            day = dt.date.fromisoformat(text)
            return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
        return at_utc(text)
    except ValueError:
        raise InputError(
            f"{option} {text!r}: expected a date (YYYY-MM-DD) or an ISO 8601 date-time "
            "such as 2026-03-01T09:30:00Z"
        ) from None


def at_utc(text: str) -> dt.datetime:
    """A stored or given ISO 8601 date-time as an aware UTC datetime (naive means UTC)."""
    at = dt.datetime.fromisoformat(text)
    return at.replace(tzinfo=dt.UTC) if at.tzinfo is None else at.astimezone(dt.UTC)


def is_new(match: PeerMatch, since: dt.datetime | None) -> bool:
    return since is not None and at_utc(match.matched_at) >= since


def first_matched(collision: Collision) -> dt.datetime:
    """When the first member was found holding the clue: when it became a collision."""
    return min(at_utc(p.matched_at) for p in collision.peers)


def last_matched(collision: Collision) -> dt.datetime:
    return max(at_utc(p.matched_at) for p in collision.peers)


def new_since(collisions: Sequence[Collision], since: dt.datetime) -> list[Collision]:
    """The collisions with at least one match at or after `since`, in the given order."""
    return [c for c in collisions if any(is_new(p, since) for p in c.peers)]
