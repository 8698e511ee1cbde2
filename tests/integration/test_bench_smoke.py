"""The match benchmark end to end at a tiny n: real nodes, relay, floor, baseline, report.

No timing is asserted: only that the run completes, its JSON has every figure the report
needs, and every intersection (ours in each step, the baseline's) is the planted one.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench import baseline, report
from bench.data import Plan

ROOT = Path(__file__).resolve().parents[2]
N = 200


def _psi_importable() -> bool:
    try:
        import private_set_intersection.python  # type: ignore[import-untyped]  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("bench-out")
    cmd = [sys.executable, "-m", "bench.run", "--n", str(N), "--out", str(out), "--ops", "300"]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, f"stdout: {done.stdout}\nstderr: {done.stderr}"
    (path,) = out.glob("results-*.json")
    data: dict[str, Any] = json.loads(path.read_text())
    data["_stdout"] = done.stdout
    data["_chart"] = (out / "chart.png").exists()
    return data


@pytest.mark.slow
def test_run_reports_every_figure(results: dict[str, Any]) -> None:
    assert results["machine"]["cpu_count"] >= 1
    assert len(results["machine"]["load_before"]) == 3
    for cost in ("hash_to_group_us", "scalar_mult_us"):
        assert results["costs_us"][cost] > 0
    (size,) = results["sizes"]
    assert size["n"] == N
    for name in ("a", "b"):
        assert size["tagset"][name]["wall_s"] > 0
        assert size["tagset"][name]["floor"]["scalar_mults"] == N
    for key in ("first", "rematch", "both"):
        phase = size["phases"][key]
        for field in ("wall_s", "elements_per_s", "cpu_s_total", "ratio_floor"):
            assert phase[field] > 0, (key, field)
        assert phase["wire_total_bytes"] > 0
        for process in phase["processes"].values():
            assert process["peak_rss_mib"] > 0
    assert set(size["phases"]["both"]["wire_bytes"]) == {"a_to_b", "b_to_a"}
    assert size["cold"]["floor_s"] > 0
    assert results["import_bench"]["returncode"] == 0
    assert "ours/floor" in results["_stdout"]
    assert results["_chart"] == _matplotlib_importable()


@pytest.mark.slow
def test_intersections_are_the_planted_overlap(results: dict[str, Any]) -> None:
    plan = Plan.for_n(N)
    (size,) = results["sizes"]
    assert all(check["ok"] for check in size["checks"]), size["checks"]
    phases = size["phases"]
    assert phases["first"]["summaries"]["a_to_b"]["matches"] == plan.overlap
    assert phases["first"]["summaries"]["a_to_b"]["evaluated"] == N
    assert phases["rematch"]["summaries"]["a_to_b"]["evaluated"] == plan.delta
    assert phases["rematch"]["summaries"]["a_to_b"]["matches"] == plan.expected_after_change
    for direction in ("a_to_b", "b_to_a"):
        matches = phases["both"]["summaries"][direction]["matches"]
        assert matches == plan.expected_after_change
    if _psi_importable():
        assert size["baseline"]["intersection"] == plan.overlap
        assert size["cold"]["baseline_over_ours"] > 0
    else:
        assert "not importable" in size["baseline"]["skipped"]


@pytest.mark.slow
def test_report_without_the_baseline(results: dict[str, Any], tmp_path: Path) -> None:
    size = copy.deepcopy(results["sizes"][0])
    size["baseline"] = {"skipped": "openmined-psi is not importable: test"}
    report.add_ratios(size)
    assert "baseline_over_ours" not in size["cold"]
    assert "baseline skipped: openmined-psi is not importable" in report.table([size])
    if _matplotlib_importable():
        assert report.chart([size], tmp_path / "chart.png", "t") is None
        assert (tmp_path / "chart.png").stat().st_size > 0


def test_baseline_is_skipped_when_the_library_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "private_set_intersection.python", None)
    csv = tmp_path / "x.csv"
    csv.write_text("phone\n+8613800138000\n")
    result = baseline.run(csv, csv)
    assert result["skipped"].startswith("openmined-psi is not importable")


def _matplotlib_importable() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True
