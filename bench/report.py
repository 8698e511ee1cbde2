"""Ratios, the printed table, the JSON file and the chart of a benchmark run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

MIB = 1024 * 1024

_PHASES = (
    ("first", "(a) first match A->B (tag sets ready)"),
    ("rematch", "(b) re-match after 1% new per side"),
    ("both", "(c) A->B and B->A at once (B->A first)"),
)


def add_ratios(size: dict[str, Any]) -> None:
    """ours/floor per step; the cold first match (B's tag set build + (a)) against the
    baseline, which also builds its server set; CPU seconds likewise."""
    phases = size["phases"]
    for key, _ in _PHASES:
        phase = phases[key]
        phase["ratio_floor"] = phase["wall_s"] / phase["floor"]["seconds"]
    tagset, first = size["tagset"]["b"], phases["first"]
    cold = {
        "wall_s": tagset["wall_s"] + first["wall_s"],
        "cpu_s": tagset["cpu_s_since_start"] + first["cpu_s_total"],
        "floor_s": tagset["floor"]["seconds"] + first["floor"]["seconds"],
    }
    cold["ratio_floor"] = cold["wall_s"] / cold["floor_s"]
    baseline = size["baseline"]
    if "skipped" not in baseline:
        cold["baseline_over_ours"] = baseline["total_s"] / cold["wall_s"]
        cold["baseline_cpu_over_ours"] = baseline["process"]["cpu_s"] / cold["cpu_s"]
    size["cold"] = cold


def _peaks(processes: dict[str, dict[str, float]]) -> str:
    return " ".join(f"{name} {p['peak_rss_mib']:.0f}" for name, p in sorted(processes.items()))


def table(sizes: list[dict[str, Any]]) -> str:
    head = (
        f"  {'step':44} {'ours s':>9} {'floor s':>9} {'ours/floor':>10} {'elem/s':>9} "
        f"{'wire MiB':>9} {'CPU s':>8}  peak RSS MiB"
    )
    lines: list[str] = []
    for size in sizes:
        plan = size["plan"]
        lines.append(
            f"n = {size['n']:,} per side, {plan['overlap']:,} shared; then "
            f"+{plan['added_per_side']:,} per side ({plan['added_overlap']:,} shared)"
        )
        lines.append(
            f"  every match time includes the CLI's start-up ({size['cli_startup_s']:.2f} s for "
            "`python -m node --version`); tag set CPU includes the server's"
        )
        lines.append(head)
        for name in ("b", "a"):
            t = size["tagset"][name]
            lines.append(
                f"  {'tag set build, ' + name.upper() + ' (server, alone)':44} {t['wall_s']:9.2f} "
                f"{t['floor']['seconds']:9.2f} {t['ratio_floor']:10.1f} "
                f"{size['n'] / t['wall_s']:9,.0f} {'-':>9} {t['cpu_s_since_start']:8.1f}  "
                f"serve {t['peak_rss_mib']:.0f}"
            )
        for key, label in _PHASES:
            p = size["phases"][key]
            lines.append(
                f"  {label:44} {p['wall_s']:9.2f} {p['floor']['seconds']:9.2f} "
                f"{p['ratio_floor']:10.1f} {p['elements_per_s']:9,.0f} "
                f"{p['wire_total_bytes'] / MIB:9.2f} {p['cpu_s_total']:8.1f}  "
                f"{_peaks(p['processes'])}"
            )
        cold = size["cold"]
        lines.append(
            f"  {'cold first match: tag set B + (a)':44} {cold['wall_s']:9.2f} "
            f"{cold['floor_s']:9.2f} {cold['ratio_floor']:10.1f} "
            f"{size['n'] / cold['wall_s']:9,.0f} {'':>9} {cold['cpu_s']:8.1f}"
        )
        baseline = size["baseline"]
        if "skipped" in baseline:
            lines.append(f"  baseline skipped: {baseline['skipped']}")
        else:
            payload = sum(baseline["payload_bytes"].values())
            lines.append(
                f"  {'baseline: ' + baseline['library'] + ', 1 process':44} "
                f"{baseline['total_s']:9.2f} {'':>9} {'':>10} "
                f"{size['n'] / baseline['total_s']:9,.0f} {payload / MIB:9.2f} "
                f"{baseline['process']['cpu_s']:8.1f}  "
                f"baseline {baseline['process']['peak_rss_mib']:.0f}"
            )
            lines.append(
                f"  baseline/ours (cold): {cold['baseline_over_ours']:.2f} in wall time, "
                f"{cold['baseline_cpu_over_ours']:.2f} in CPU seconds"
            )
        failed = [c for c in size["checks"] if not c["ok"]]
        lines.append(
            f"  checks: {len(size['checks']) - len(failed)} of {len(size['checks'])} passed"
            + "".join(f"\n    FAILED {c['what']}: {c['got']} != {c['expected']}" for c in failed)
        )
        lines.append("")
    return "\n".join(lines)


def write_json(results: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


def chart(sizes: list[dict[str, Any]], path: Path, title: str) -> str | None:
    """Time against n, log-log; None when done, else why not (matplotlib missing)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        return f"matplotlib is not importable: {exc}"
    ns = [s["n"] for s in sizes]
    first = [s["phases"]["first"] for s in sizes]
    series: list[tuple[str, list[float | None], str, str]] = [
        (
            "ours, cold first match (tag set + match)",
            [s["cold"]["wall_s"] for s in sizes],
            "o-",
            "C0",
        ),
        ("floor, cold first match", [s["cold"]["floor_s"] for s in sizes], "o--", "C0"),
        ("ours, first match (tag sets ready)", [p["wall_s"] for p in first], "s-", "C1"),
        ("floor, first match", [p["floor"]["seconds"] for p in first], "s--", "C1"),
        (
            "ours, re-match after 1% change",
            [s["phases"]["rematch"]["wall_s"] for s in sizes],
            "d-",
            "C2",
        ),
        (
            "baseline: OpenMined PSI (P-256, C++, 1 process)",
            [None if "skipped" in s["baseline"] else s["baseline"]["total_s"] for s in sizes],
            "^-",
            "C3",
        ),
    ]
    fig, ax = plt.subplots(figsize=(8, 5.5), dpi=110)
    for label, values, style, color in series:
        points = [(n, v) for n, v in zip(ns, values, strict=True) if v is not None]
        if points:
            ax.plot(*zip(*points, strict=True), style, color=color, label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("records per side (n)")
    ax.set_ylabel("wall seconds")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return None
