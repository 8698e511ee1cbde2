"""Match runs: the newest run per peer, and failures counted since the last success."""

from pathlib import Path

from node.store import Store
from node.store.runs import MatchRun


def _run(peer: str, status: str, at: str) -> MatchRun:
    return MatchRun(
        peer_id=peer,
        peer_name=f"name-{peer}",
        trigger="schedule",
        started_at=at,
        finished_at=at,
        status=status,
        error="" if status == "OK" else "unreachable",
        evaluated=3,
        matches=1,
    )


def test_last_and_failures_since_success(tmp_path: Path) -> None:
    with Store.open(tmp_path / "store.db") as store:
        assert store.runs.last("A") is None
        assert store.runs.failures_since_success("A") == 0
        store.runs.record(_run("A", "PeerUnavailable", "2026-11-01T00:00:00+00:00"))
        store.runs.record(_run("A", "OK", "2026-11-02T00:00:00+00:00"))
        store.runs.record(_run("B", "OK", "2026-11-02T00:00:00+00:00"))
        store.runs.record(_run("A", "PeerUnavailable", "2026-11-03T00:00:00+00:00"))
        store.runs.record(_run("A", "PeerUnavailable", "2026-11-04T00:00:00+00:00"))
        last = store.runs.last("A")
        assert last is not None and not last.ok and last.started_at.startswith("2026-11-04")
        good = store.runs.last("A", ok_only=True)
        assert good is not None and good.ok and good.started_at.startswith("2026-11-02")
        assert store.runs.failures_since_success("A") == 2
        assert store.runs.failures_since_success("B") == 0
        assert [r.peer_id for r in store.runs.recent(2)] == ["A", "A"]
