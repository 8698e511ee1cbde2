"""`aif-node report` in-process: formats, `--since`, `--output`, and its refusals."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from report_data import HOSTILE

from node.cli import main
from node.datadir import DataDir
from node.identity import NodeID
from node.store import RecordIn, Store
from node.store.peers import PeerRecord

CERT = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def run(data_dir: Path, *args: str) -> Result:
    result = CliRunner().invoke(main, ["--data-dir", str(data_dir), *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


def _pin(store: Store, name: str) -> str:
    node_id = str(NodeID(hashlib.sha256(name.encode()).digest()))
    record = PeerRecord(node_id, name, CERT, ("127.0.0.1:1",), None, None, 1000, 0, "")
    store.peers.add(record)
    return node_id


@pytest.fixture
def node_dir(tmp_path: Path) -> Path:
    """A node whose store holds three phone collisions, matched on two dates."""
    d = tmp_path / "node"
    assert run(d, "init", "--name", "bank", "--listen", "127.0.0.1:7443").exit_code == 0
    values = ["+8613800138000", "+8613800138001", "+8613800138002"]
    with DataDir(d).open_store() as store:
        store.records.upsert_batch(
            "phone", [RecordIn(v, ("chargeback",), "2026-01-01", "2026-02-01") for v in values]
        )
        ids = dict(store.conn.execute("SELECT value, id FROM records WHERE kind = 'phone'"))
        lender, platform = _pin(store, "lender"), _pin(store, HOSTILE)
        found = [(ids[v], ("fraud_ring",)) for v in values[:2]]
        store.matches.replace_matches(lender, "phone", found, "2026-01-10T08:00:00+00:00")
        later = [(ids[v], ()) for v in values[1:]]
        store.matches.replace_matches(platform, "phone", later, "2026-03-02T09:00:00+00:00")
    return d


@pytest.mark.parametrize("fmt", ["table", "csv", "json", "html"])
def test_every_format_goes_to_stdout_or_to_a_private_file(
    node_dir: Path, tmp_path: Path, fmt: str
) -> None:
    shown = run(node_dir, "report", "--format", fmt)
    assert shown.exit_code == 0 and "+8613800138001" in shown.stdout
    target = tmp_path / "out" / f"report.{fmt}"
    target.parent.mkdir()
    target.write_text("old")
    target.chmod(0o644)
    written = run(node_dir, "report", "--format", fmt, "--output", str(target))
    assert written.exit_code == 0 and written.stdout == ""
    assert f"{target}: 3 collision(s)" in written.stderr
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert list(target.parent.iterdir()) == [target]  # the temporary file was renamed
    if fmt == "table":
        assert "+8613800138001" in target.read_text()
    else:  # the file is exactly what stdout shows, apart from when the page was made
        strip = (lambda t: t.split("<main>", 1)[1]) if fmt == "html" else (lambda t: t)
        assert strip(target.read_text()) == strip(shown.stdout)


def test_since_lists_new_clues_and_new_members(node_dir: Path) -> None:
    rows = json.loads(run(node_dir, "report", "--format", "json", "--since", "2026-03-01").stdout)
    assert [(r["value"], r["peers"], r["new_peers"]) for r in rows] == [
        ("+8613800138001", [HOSTILE, "lender"], [HOSTILE]),
        ("+8613800138002", [HOSTILE], [HOSTILE]),
    ]
    late = run(node_dir, "report", "--format", "csv", "--since", "2026-03-02T10:00:00+01:00")
    assert len(list(csv.DictReader(io.StringIO(late.stdout)))) == 2  # 09:00 UTC: at, not after
    none = run(node_dir, "report", "--format", "json", "--since", "2026-03-02T09:00:01Z")
    assert json.loads(none.stdout) == []
    table = run(node_dir, "report", "--since", "2026-03-01")
    assert "2 collision(s) with a member match at or after 2026-03-01T00:00:00+00:00" in (
        table.stdout
    )


def test_since_with_min_peers_counts_every_member(node_dir: Path) -> None:
    args = ("report", "--format", "json", "--since", "2026-03-01", "--min-peers", "2")
    rows = json.loads(run(node_dir, *args).stdout)
    assert [r["value"] for r in rows] == ["+8613800138001"]


def test_html_escapes_a_hostile_peer_name(node_dir: Path) -> None:
    page = run(node_dir, "report", "--format", "html", "--since", "2026-03-01").stdout
    assert "<script" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "new since 2026-03-01" in page


@pytest.mark.parametrize("value", ["tomorrow", "2026-02-30", "03/01/2026", ""])
def test_a_bad_since_is_refused_naming_the_option_and_value(node_dir: Path, value: str) -> None:
    result = run(node_dir, "report", "--since", value)
    assert result.exit_code == 2
    assert f"--since {value!r}" in result.stderr and "YYYY-MM-DD" in result.stderr


def test_an_unwritable_output_is_refused_with_nothing_left_behind(
    node_dir: Path, tmp_path: Path
) -> None:
    missing = tmp_path / "no-such-dir" / "report.html"
    result = run(node_dir, "report", "--format", "html", "--output", str(missing))
    assert result.exit_code == 2
    assert f"--output {missing}: cannot write" in result.stderr
    assert not missing.parent.exists()


def test_an_empty_report_in_every_format(tmp_path: Path) -> None:
    d = tmp_path / "empty"
    assert run(d, "init", "--name", "bank", "--listen", "127.0.0.1:7443").exit_code == 0
    assert json.loads(run(d, "report", "--format", "json").stdout) == []
    assert run(d, "report", "--format", "csv").stdout.startswith("kind,value,peer_count,")
    assert "No collisions" in run(d, "report", "--format", "html").stdout
    assert "0 collision(s)" in run(d, "report").stdout
