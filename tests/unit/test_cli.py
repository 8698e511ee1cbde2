"""The CLI in-process: every bad input ends in one clear line and a non-zero exit, never a
traceback, and the data dir it creates is laid out as the README says."""

from __future__ import annotations

import json
import sqlite3
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from node.cli import main


def run(data_dir: Path, *args: str) -> Result:
    result = CliRunner().invoke(main, ["--data-dir", str(data_dir), *args])
    # Handled errors end in SystemExit; anything else would be a traceback for the operator.
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


@pytest.fixture
def node_dir(tmp_path: Path) -> Path:
    d = tmp_path / "node"
    assert run(d, "init", "--name", "bank", "--listen", "127.0.0.1:7443").exit_code == 0
    return d


def test_init_lays_out_the_data_dir_with_private_secrets(node_dir: Path) -> None:
    for secret in ("node.key", "store.db", "keys/epoch-000001.key", "keys/audit.key"):
        assert stat.S_IMODE((node_dir / secret).stat().st_mode) == 0o600, secret
    assert stat.S_IMODE((node_dir / "keys").stat().st_mode) == 0o700
    card = json.loads(run(node_dir, "card").output)
    assert card["name"] == "bank" and card["addresses"] == ["127.0.0.1:7443"]


def test_init_refuses_to_overwrite(node_dir: Path) -> None:
    key = (node_dir / "node.key").read_bytes()
    result = run(node_dir, "init", "--name", "other", "--listen", "127.0.0.1:1")
    assert result.exit_code == 3
    assert "already holds a node" in result.output
    assert (node_dir / "node.key").read_bytes() == key


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("init", "--name", "x", "--listen", "nohost"), 2, "expected HOST:PORT"),
        (("init", "--name", " ", "--listen", "a:1"), 2, "name must not be empty"),
        (("init", "--name", "x", "--listen", "a:1", "--opaque-kind", "Bad Kind"), 2, "kind"),
    ],
)
def test_init_bad_input(tmp_path: Path, args: tuple[str, ...], code: int, message: str) -> None:
    result = run(tmp_path / "n", *args)
    assert result.exit_code == code
    assert message in result.output
    assert not (tmp_path / "n" / "node.key").exists()


def test_commands_on_a_dir_that_is_not_a_node(tmp_path: Path) -> None:
    for args in (("records",), ("card",), ("status",), ("keys", "rotate"), ("audit", "verify")):
        result = run(tmp_path / "nothing", *args)
        assert result.exit_code == 3, args
        assert "not a node data dir" in result.output


def test_import_reports_bad_rows_and_imports_nothing(node_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "ids.csv"
    path.write_text("id_card\n11010519491231002X\n110105194912310021\n")
    result = run(node_dir, "import", str(path), "--kind", "id_card")
    assert result.exit_code == 2
    assert f"{path}:3: id_card: check digit is 1, expected X" in result.output
    assert "nothing was imported" in result.output
    assert json.loads(run(node_dir, "records", "--format", "json").output) == []

    skipped = run(node_dir, "import", str(path), "--kind", "id_card", "--skip-invalid")
    assert skipped.exit_code == 0
    assert "skipped 1 invalid row" in skipped.output
    counts = json.loads(run(node_dir, "records", "--format", "json").output)
    assert {"kind": "id_card", "label": None, "count": 1} in counts


@pytest.mark.parametrize(
    ("setup", "args", "message"),
    [
        (None, ("import", "{tmp}/missing.csv", "--kind", "phone"), "missing.csv"),
        ("phone\n13800138000\n", ("import", "{file}", "--kind", "phnoe"), "unknown kind 'phnoe'"),
        ("a,b\n1,2\n", ("import", "{file}", "--kind", "phone"), "column"),
        ("", ("import", "{file}", "--kind", "phone"), "empty"),
    ],
)
def test_import_structural_errors(
    node_dir: Path, tmp_path: Path, setup: str | None, args: tuple[str, ...], message: str
) -> None:
    file = tmp_path / "in.csv"
    if setup is not None:
        file.write_text(setup)
    argv = [a.format(tmp=tmp_path, file=file) for a in args]
    result = run(node_dir, *argv)
    assert result.exit_code == 2
    assert message in result.output


def test_peers_add_checks_the_card(node_dir: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    run(other, "init", "--name", "lender", "--listen", "127.0.0.1:7444")
    card = tmp_path / "lender.json"
    card.write_text(run(other, "card").output)

    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert "not JSON" in run(node_dir, "peers", "add", str(bad)).output

    own = tmp_path / "own.json"
    own.write_text(run(node_dir, "card").output)
    result = run(node_dir, "peers", "add", str(own))
    assert result.exit_code == 2
    assert "own card" in result.output

    forged = json.loads(card.read_text())
    forged["certificate"] = json.loads(own.read_text())["certificate"]
    bad.write_text(json.dumps(forged))
    assert "does not match its certificate" in run(node_dir, "peers", "add", str(bad)).output

    result = run(node_dir, "peers", "add", str(card), "--kinds", "phone,nokind")
    assert result.exit_code == 2
    assert "unknown kind 'nokind'" in result.output

    assert run(node_dir, "peers", "add", str(card), "--budget", "5").exit_code == 0
    again = run(node_dir, "peers", "add", str(card))
    assert again.exit_code == 2
    assert "already pinned" in again.output
    listed = json.loads(run(node_dir, "peers", "list", "--format", "json").output)
    assert [(p["name"], p["budget"]) for p in listed] == [("lender", 5)]

    gone = run(node_dir, "peers", "remove", "nobody")
    assert gone.exit_code != 0
    assert "nobody" in gone.output
    assert run(node_dir, "peers", "remove", "lender").exit_code == 0
    assert json.loads(run(node_dir, "peers", "list", "--format", "json").output) == []


def test_match_without_peers_says_how_to_pin(node_dir: Path) -> None:
    result = run(node_dir, "match")
    assert result.exit_code == 2
    assert "peers add" in result.output


def test_health_without_a_server_fails_clearly(node_dir: Path) -> None:
    result = run(node_dir, "health", "--timeout", "1")
    assert result.exit_code == 1
    assert "unreachable" in result.output


def test_secret_with_loose_permissions_is_refused(node_dir: Path) -> None:
    (node_dir / "node.key").chmod(0o644)
    result = run(node_dir, "card")
    assert result.exit_code == 3
    assert "chmod 600" in result.output


def test_broken_config_is_named(node_dir: Path) -> None:
    (node_dir / "config.toml").write_text("[node\nname=")
    result = run(node_dir, "records")
    assert result.exit_code == 3
    assert "config.toml: invalid TOML" in result.output


def test_audit_verify_names_the_first_broken_entry(node_dir: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    run(other, "init", "--name", "lender", "--listen", "127.0.0.1:7444")
    card = tmp_path / "lender.json"
    card.write_text(run(other, "card").output)
    run(node_dir, "peers", "add", str(card))
    run(node_dir, "peers", "remove", "lender")
    assert run(node_dir, "audit", "verify").exit_code == 0
    with sqlite3.connect(node_dir / "store.db") as conn:
        conn.execute("UPDATE audit SET detail = 'edited' WHERE id = 1")
    result = run(node_dir, "audit", "verify")
    assert result.exit_code == 5
    assert "entry 1" in result.output


def test_keys_rotate_moves_the_epoch(node_dir: Path) -> None:
    assert json.loads(run(node_dir, "status", "--format", "json").output)["epoch"] == 1
    assert run(node_dir, "keys", "rotate").exit_code == 0
    assert run(node_dir, "keys", "rotate").exit_code == 0
    assert json.loads(run(node_dir, "status", "--format", "json").output)["epoch"] == 3
    assert sorted(p.name for p in (node_dir / "keys").glob("epoch-*")) == [
        "epoch-000002.key",
        "epoch-000003.key",
    ]
