"""`aif-node config check` and `config show`, in-process: a sound node passes, and each way a
data dir goes wrong is one FAIL or warn line naming the file, setting or peer."""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import sqlite3
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from node.cli import main
from node.config import NodeConfig
from node.configdoc import effective_document
from node.identity import MemberCard, NodeID, generate_identity


def run(data_dir: Path, *args: str) -> Result:
    result = CliRunner().invoke(main, ["--data-dir", str(data_dir), *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


MINIMAL = "[node]\nname = 'bank'\nlisten = '127.0.0.1:7443'\n"


def lines(result: Result, status: str) -> list[str]:
    return [line for line in result.output.splitlines() if line.startswith(status)]


@pytest.fixture
def node_dir(tmp_path: Path) -> Path:
    d = tmp_path / "node"
    assert run(d, "init", "--name", "bank", "--listen", "127.0.0.1:7443").exit_code == 0
    return d


def peer_card(tmp_path: Path, name: str, not_after: dt.datetime) -> Path:
    """A member card whose self-signed certificate expires at `not_after`."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(x509.oid.NameOID.ORGANIZATION_NAME, name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_after - dt.timedelta(days=400))
        .not_valid_after(not_after)
        .sign(key, hashes.SHA256())
    )
    card = MemberCard(
        name=name,
        node_id=NodeID.from_certificate(cert),
        addresses=(f"{name}.example:7443",),
        cert_pem=cert.public_bytes(serialization.Encoding.PEM),
    )
    path = tmp_path / f"{name}.json"
    path.write_text(card.to_json())
    return path


def test_a_sound_node_passes_and_no_secret_is_printed(node_dir: Path) -> None:
    result = run(node_dir, "config", "check")
    assert result.exit_code == 0, result.output
    assert lines(result, "FAIL") == [] and lines(result, "warn") == []
    for subject in ("config.toml", "node.key", "keys/audit.key", "store.db", "audit log"):
        assert any(f"  {subject}:" in line for line in lines(result, "ok")), subject
    secrets = [node_dir / "node.key", node_dir / "keys" / "audit.key"]
    secrets += list((node_dir / "keys").glob("epoch-*.key"))
    for path in secrets:
        data = path.read_bytes()
        assert data.hex() not in result.output
        assert data.decode("latin-1") not in result.output


def test_a_key_other_users_can_read_fails_naming_the_file(node_dir: Path) -> None:
    (node_dir / "node.key").chmod(0o644)
    result = run(node_dir, "config", "check")
    assert result.exit_code == 3
    [failed] = lines(result, "FAIL")
    assert f"{node_dir / 'node.key'}" in failed and "mode 644" in failed
    assert "chmod 600" in failed


def test_an_open_keys_folder_fails(node_dir: Path) -> None:
    (node_dir / "keys").chmod(0o755)
    result = run(node_dir, "config", "check")
    assert result.exit_code == 3
    assert [line.split(":")[0] for line in lines(result, "FAIL")] == ["FAIL  keys/"]


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ("[schedule]\nmatch_intervall = '6h'\n", "unknown setting(s) in [schedule]: match_int"),
        ("[schedul]\nmatch_interval = '6h'\n", "unknown setting(s) in the file: schedul"),
        ("[peers]\ndefault_budgets = 5\n", "unknown setting(s) in [peers]: default_budgets"),
        ("[logging]\nlevel = 'loud'\n", "[logging] level must be one of"),
        ("[match\n", "invalid TOML"),
    ],
)
def test_a_bad_setting_fails_naming_it(node_dir: Path, extra: str, named: str) -> None:
    (node_dir / "config.toml").write_text(MINIMAL + extra)
    result = run(node_dir, "config", "check")
    assert result.exit_code == 3
    [failed] = lines(result, "FAIL")
    assert failed.startswith("FAIL  config.toml:") and named in failed, failed


def test_a_toml_syntax_error_gives_line_and_column(node_dir: Path) -> None:
    config = node_dir / "config.toml"
    config.write_text(config.read_text() + "[schedule]\nmatch_interval = \n")
    [failed] = lines(run(node_dir, "config", "check"), "FAIL")
    last_line = len(config.read_text().splitlines())
    assert f"(at line {last_line}, column" in failed


def test_pinned_certificates_near_or_past_expiry(node_dir: Path, tmp_path: Path) -> None:
    now = dt.datetime.now(dt.UTC)
    soon = peer_card(tmp_path, "lender", now + dt.timedelta(days=30))
    assert run(node_dir, "peers", "add", str(soon)).exit_code == 0
    result = run(node_dir, "config", "check")
    assert result.exit_code == 0
    [warned] = lines(result, "warn")
    assert warned.startswith("warn  peer lender: certificate expires in 29 day(s)")

    gone = peer_card(tmp_path, "platform", now - dt.timedelta(days=1))
    assert run(node_dir, "peers", "add", str(gone)).exit_code == 0
    result = run(node_dir, "config", "check")
    assert result.exit_code == 3
    [failed] = lines(result, "FAIL")
    assert failed.startswith("FAIL  peer platform: certificate expired on")


def test_an_older_schema_warns_and_is_not_migrated(node_dir: Path) -> None:
    with sqlite3.connect(node_dir / "store.db") as conn:
        latest = conn.execute("PRAGMA user_version").fetchone()[0]
        conn.execute(f"PRAGMA user_version = {latest - 1}")
    result = run(node_dir, "config", "check")
    assert result.exit_code == 0
    assert "will be migrated to" in lines(result, "warn")[0]
    with sqlite3.connect(node_dir / "store.db") as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == latest - 1


def test_a_newer_schema_fails(node_dir: Path) -> None:
    with sqlite3.connect(node_dir / "store.db") as conn:
        conn.execute("PRAGMA user_version = 999")
    result = run(node_dir, "config", "check")
    assert result.exit_code == 3
    assert "newer than this aif-node supports" in lines(result, "FAIL")[0]


def test_bind_finds_a_port_in_use(node_dir: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        config = node_dir / "config.toml"
        config.write_text(config.read_text().replace("127.0.0.1:7443", f"127.0.0.1:{port}"))
        assert run(node_dir, "config", "check").exit_code == 0  # binding is opt-in
        result = run(node_dir, "config", "check", "--bind")
    assert result.exit_code == 3
    [failed] = lines(result, "FAIL")
    assert failed.startswith(f"FAIL  listen: cannot bind 127.0.0.1:{port}")
    assert run(node_dir, "config", "check", "--bind").exit_code == 0


def test_json_output(node_dir: Path) -> None:
    (node_dir / "keys" / "audit.key").chmod(0o640)
    result = run(node_dir, "config", "check", "--format", "json")
    assert result.exit_code == 3
    report = json.loads(result.output)
    assert report["failures"] == 1 and report["warnings"] == 0
    failed = [c for c in report["checks"] if c["status"] == "FAIL"]
    assert [c["subject"] for c in failed] == ["keys/audit.key"]
    assert {c["status"] for c in report["checks"]} == {"ok", "FAIL"}


def test_not_a_node(tmp_path: Path) -> None:
    result = run(tmp_path / "none", "config", "check")
    assert result.exit_code == 3
    assert lines(result, "FAIL")[0].startswith("FAIL  config.toml:")


def test_show_prints_every_setting_with_its_default(node_dir: Path) -> None:
    config = node_dir / "config.toml"
    config.write_text(config.read_text() + "[schedule]\nmatch_interval = '6h'\n")
    result = run(node_dir, "config", "show")
    assert result.exit_code == 0
    shown = tomllib.loads(result.output)
    assert shown == effective_document(NodeConfig.load(config))
    assert shown["schedule"]["match_interval"] == 6 * 3600
    assert shown["serve"]["max_calls_per_peer"] == 4
    assert set(shown) == {
        "node",
        "kinds",
        "peers",
        "serve",
        "match",
        "schedule",
        "logging",
        "metrics",
    }
    written = node_dir / "shown.toml"
    written.write_text(result.output)
    assert NodeConfig.load(written) == NodeConfig.load(config)


def test_a_certificate_for_another_key_fails(node_dir: Path) -> None:
    (node_dir / "node.crt").write_bytes(generate_identity("impostor").cert_pem)
    result = run(node_dir, "config", "check")
    assert result.exit_code == 3
    assert lines(result, "FAIL") == [
        "FAIL  node.crt: the certificate is not for node.key: peers would refuse every connection"
    ]


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give a file to another user")
def test_a_secret_another_user_owns_fails(node_dir: Path) -> None:
    key = node_dir / "keys" / "epoch-000001.key"
    os.chown(key, 12345, -1)
    result = run(node_dir, "config", "check")
    assert result.exit_code == 3
    [failed] = lines(result, "FAIL")
    assert failed.startswith(f"FAIL  keys/epoch-000001.key: {key} is owned by uid 12345")
