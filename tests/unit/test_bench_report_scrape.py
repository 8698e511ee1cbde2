"""The report and scrape benchmarks at a tiny size: they run, print their tables and return
every figure RESULTS.md quotes. No timing is asserted."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import report_bench, scrape_bench


def test_report_bench_figures(capsys: pytest.CaptureFixture[str]) -> None:
    assert report_bench.main(["--sizes", "40", "--repeat", "1"]) == 0
    out = capsys.readouterr().out
    figures = report_bench.measure(60, repeat=1)
    assert [f["format"] for f in figures] == [report_bench.BASELINE, "csv", "json", "html"]
    for f in figures:
        assert set(f) == {"format", "n", "seconds", "mb", "peak_mb", "x_seconds", "x_mb"}
        assert f["n"] == 60
        assert f["seconds"] > 0 and f["mb"] > 0 and f["peak_mb"] > 0
        assert f"{f['format']:9}       40" in out
    # The baseline writes exactly our CSV's rows, so their sizes are equal.
    assert figures[0]["mb"] == figures[1]["mb"]


def test_synthetic_collisions_are_sorted_like_the_store() -> None:
    collisions = report_bench.synthetic(200)
    assert [(c.kind, c.value) for c in collisions] == sorted((c.kind, c.value) for c in collisions)
    assert {c.kind for c in collisions} == set(report_bench.KINDS)
    assert all(1 <= len(c.peers) <= 3 for c in collisions)


def test_scrape_bench_figures(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = scrape_bench.measure(500, scrapes=3, runs=15, work=tmp_path)
    assert result["live_records"] == 495  # 1% removed
    for key in (
        "fill_s",
        "store_mb",
        "scrape_bytes",
        "scrape_median_s",
        "scrape_max_s",
        "baseline_median_s",
        "baseline_max_s",
        "open_store_median_s",
        "ratio",
    ):
        assert result[key] > 0, key
    queries = result["queries"]
    assert queries == sorted(queries, key=lambda q: -q["seconds"])
    shapes = {q["sql"]: q["count"] for q in queries}
    assert shapes["SELECT count(*) FROM matches WHERE peer_id = '<peer>'"] == 3
    assert any(sql.startswith("SELECT kind, count(*) FROM tagset_entries") for sql in shapes)
    assert list(tmp_path.iterdir()) == []  # the data dir is gone
    print(scrape_bench.report(result))
    assert "x baseline" in capsys.readouterr().out
