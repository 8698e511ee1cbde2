"""Collisions built by hand for the report tests: what the store's `collisions` returns."""

from __future__ import annotations

from node.store.matches import Collision, PeerMatch

HOSTILE = "<script>alert(1)</script>"
QUOTES = "\"double\" & 'single'"


def collision(
    kind: str,
    value: str,
    *peers: tuple[str, str, tuple[str, ...]],
    own: tuple[str, ...] = (),
    seen: tuple[str, str] = ("2026-01-01", "2026-02-01"),
) -> Collision:
    """`peers` are (name, matched_at, labels)."""
    return Collision(
        kind=kind,
        value=value,
        own_labels=own,
        first_seen=seen[0],
        last_seen=seen[1],
        peers=tuple(PeerMatch(name, labels, at) for name, at, labels in sorted(peers)),
    )


def sample() -> list[Collision]:
    """Three clues: one old, one new, one old that a second member matched later."""
    return [
        collision("id_card", "110101199003070000", ("lender", "2026-01-10T08:00:00+00:00", ())),
        collision(
            "phone",
            "+8613800138000",
            ("lender", "2026-01-05T09:00:00+00:00", ("fraud_ring",)),
            ("platform", "2026-03-02T10:00:00+00:00", ("mule", HOSTILE)),
            own=("chargeback",),
        ),
        collision(
            "phone",
            "+8613900139000",
            ("platform", "2026-03-01T00:00:00+00:00", (QUOTES,)),
        ),
    ]
