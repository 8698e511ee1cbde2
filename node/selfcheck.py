"""What `aif-node config check` finds wrong with a node, without starting or changing it.

Each check gives one `Finding`: ok, warn (the node runs, but an operator should look) or
FAIL (the node will not start, or a peer cannot work with it). The store is opened read-only
and never migrated; secrets are read only to compare them, and no finding quotes one.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import socket
import sqlite3
import stat
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from node.config import NodeConfig
from node.datadir import DataDir
from node.errors import ConfigError, InputError, StoreError
from node.identity import NodeID, split_host_port
from node.keys import SEED_BYTES
from node.store.audit import KEY_SIZE, AuditLog
from node.store.migrations import latest_version
from node.store.peers import PeerRecord, PeerStore

OK, WARN, FAIL = "ok", "warn", "FAIL"
CERT_WARN_DAYS = 90
"""A certificate expiring sooner gets a warning: peers must pin a new card before then."""
MIN_MATCH_INTERVAL_S = 300.0
"""A schedule faster than this re-matches every peer more often than their data changes."""
_EPOCH_KEY_GLOB = "epoch-*.key"


@dataclass(frozen=True)
class Finding:
    status: str
    """"ok", "warn" or "FAIL"."""
    subject: str
    """What was checked: a file, a setting, a peer."""
    message: str


def check_node(
    datadir: DataDir, *, bind: bool = False, now: dt.datetime | None = None
) -> list[Finding]:
    """Every check, in the order an operator would fix things. With `bind`, the listen and
    metrics addresses are bound for a moment (only meaningful while `serve` is stopped)."""
    now = now or dt.datetime.now(dt.UTC)
    findings, config = _check_config(datadir.config_path)
    if not datadir.config_path.exists():
        return findings
    findings += _check_modes(datadir)
    findings += _check_identity(datadir, now)
    findings += _check_store(datadir, now)
    if config is not None:
        findings += _check_addresses(config, bind)
        findings += _check_settings(config)
    return findings


def _check_config(path: Path) -> tuple[list[Finding], NodeConfig | None]:
    name = path.name
    try:
        config = NodeConfig.load(path)
    except ConfigError as exc:
        return [Finding(FAIL, name, str(exc))], None
    return [Finding(OK, name, f"valid; node {config.name!r}")], config


def _check_modes(datadir: DataDir) -> list[Finding]:
    """Secrets 0600 in 0700 folders, as `init` made them; the node refuses wider ones."""
    keys_dir = datadir.root / "keys"
    owner = datadir.root.stat().st_uid
    findings = [
        # The data dir's own secrets are 0600; keys/ guards the OPRF and audit keys.
        _dir_mode(datadir.root, "data dir", too_open=WARN),
        _dir_mode(keys_dir, "keys/", too_open=FAIL),
        _secret_mode(datadir.key_path, "node.key", owner),
        _secret_mode(datadir.audit_key_path, "keys/audit.key", owner, size=KEY_SIZE),
    ]
    epoch_keys = sorted(keys_dir.glob(_EPOCH_KEY_GLOB)) if keys_dir.is_dir() else []
    if not epoch_keys:
        findings.append(Finding(FAIL, "keys/", f"no OPRF epoch key in {keys_dir}"))
    for path in epoch_keys:
        findings.append(_secret_mode(path, f"keys/{path.name}", owner, size=SEED_BYTES))
    for suffix in ("", "-wal", "-shm"):
        db_file = datadir.db_path.with_name(datadir.db_path.name + suffix)
        if suffix == "" or db_file.exists():
            findings.append(_secret_mode(db_file, db_file.name, owner, holds="the clues"))
    return findings


def _dir_mode(path: Path, subject: str, too_open: str) -> Finding:
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return Finding(FAIL, subject, f"{path} is missing")
    if mode & 0o077:
        return Finding(
            too_open,
            subject,
            f"{path} is open to other users (mode {mode:o}); run: chmod 700 {path}",
        )
    return Finding(OK, subject, f"mode {mode:o}")


def _secret_mode(
    path: Path, subject: str, owner: int, size: int = 0, holds: str = "a secret"
) -> Finding:
    """Private to the data dir's owner, who runs the node (a file another user made, say by a
    command run as root, is one the node cannot read)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return Finding(FAIL, subject, f"{path} is missing")
    if st.st_uid != owner:
        return Finding(
            FAIL,
            subject,
            f"{path} is owned by uid {st.st_uid}, the data dir by uid {owner}: run aif-node as "
            f"the data dir's owner, and: chown {owner} {path}",
        )
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o077:
        return Finding(
            FAIL,
            subject,
            f"{path} holds {holds} and is readable by other users (mode {mode:o}); "
            f"run: chmod 600 {path}",
        )
    if size and st.st_size != size:
        return Finding(FAIL, subject, f"{path} is not a {size}-byte key: damaged or replaced")
    return Finding(OK, subject, f"mode {mode:o}")


def _check_identity(datadir: DataDir, now: dt.datetime) -> list[Finding]:
    try:
        cert = x509.load_pem_x509_certificate(datadir.cert_path.read_bytes())
    except FileNotFoundError:
        return [Finding(FAIL, "node.crt", f"{datadir.cert_path} is missing")]
    except ValueError as exc:
        return [Finding(FAIL, "node.crt", f"{datadir.cert_path} is not a PEM certificate: {exc}")]
    findings = [_expiry("node.crt", cert, now, own=True)]
    try:
        key = serialization.load_pem_private_key(datadir.key_path.read_bytes(), password=None)
    except FileNotFoundError:
        return findings  # already named by the mode checks
    except (ValueError, TypeError):
        findings.append(Finding(FAIL, "node.key", "not an unencrypted PEM private key"))
        return findings
    if _spki(key.public_key()) != _spki(cert.public_key()):
        findings.append(
            Finding(
                FAIL,
                "node.crt",
                "the certificate is not for node.key: peers would refuse every connection",
            )
        )
    else:
        findings.append(Finding(OK, "node.crt", f"matches node.key; node ID {_node_id(cert)}"))
    return findings


def _expiry(subject: str, cert: x509.Certificate, now: dt.datetime, own: bool) -> Finding:
    """Pinned certificates are verified by date in the TLS handshake: expired means refused."""
    until = cert.not_valid_after_utc
    fix = (
        "make a new identity and send peers the new card (docs/operations.md)"
        if own
        else "ask this member for a new card, then peers remove and peers add it"
    )
    if until <= now:
        return Finding(FAIL, subject, f"certificate expired on {until:%Y-%m-%d}; {fix}")
    if cert.not_valid_before_utc > now:
        start = cert.not_valid_before_utc
        return Finding(
            FAIL, subject, f"certificate not valid before {start:%Y-%m-%d} (is the clock right?)"
        )
    days = (until - now).days
    if days < CERT_WARN_DAYS:
        return Finding(
            WARN, subject, f"certificate expires in {days} day(s), on {until:%Y-%m-%d}; {fix}"
        )
    return Finding(OK, subject, f"certificate valid until {until:%Y-%m-%d}")


def _check_store(datadir: DataDir, now: dt.datetime) -> list[Finding]:
    path = datadir.db_path
    if not path.exists():
        return []  # named by the mode checks
    try:
        with _read_only(path) as conn:
            findings, current = _check_schema(conn)
            if not current:
                return findings
            problems = [str(row[0]) for row in conn.execute("PRAGMA quick_check")]
            if problems != ["ok"]:
                shown = "; ".join(problems[:3])
                findings.append(Finding(FAIL, "store.db", f"quick_check found: {shown}"))
                return findings
            findings.append(Finding(OK, "store.db", "quick_check ok"))
            findings.append(_check_audit(datadir, conn))
            findings += [_check_peer(p, now) for p in PeerStore(conn).list()]
            return findings
    except (sqlite3.Error, StoreError) as exc:
        return [Finding(FAIL, "store.db", f"{path}: cannot read the store: {exc}")]


@contextmanager
def _read_only(path: Path) -> Iterator[sqlite3.Connection]:
    # SQLite may create -wal and -shm beside the file: private, like the store's own.
    old_umask = os.umask(0o077)
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    finally:
        os.umask(old_umask)
    with closing(conn):
        yield conn


def _check_schema(conn: sqlite3.Connection) -> tuple[list[Finding], bool]:
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    latest = latest_version()
    if version > latest:
        return [
            Finding(
                FAIL,
                "store.db",
                f"schema version {version} is newer than this aif-node supports ({latest}); "
                "upgrade aif-node",
            )
        ], False
    if version < latest:
        return [
            Finding(
                WARN,
                "store.db",
                f"schema version {version}, will be migrated to {latest} on next start "
                "(back up first)",
            )
        ], False
    return [Finding(OK, "store.db", f"schema version {version} (current)")], True


def _check_audit(datadir: DataDir, conn: sqlite3.Connection) -> Finding:
    try:
        key = datadir.audit_key_path.read_bytes()
    except OSError:
        return Finding(FAIL, "audit log", "keys/audit.key cannot be read; the log is unverifiable")
    if len(key) != KEY_SIZE:
        return Finding(FAIL, "audit log", "keys/audit.key is damaged; the log is unverifiable")
    result = AuditLog(conn).verify(key)
    if not result.ok:
        where = f" at entry {result.first_broken}" if result.first_broken else ""
        return Finding(FAIL, "audit log", f"broken{where}: {result.reason}")
    return Finding(OK, "audit log", f"intact, {result.entries} entries")


def _check_peer(peer: PeerRecord, now: dt.datetime) -> Finding:
    subject = f"peer {peer.name}"
    try:
        cert = x509.load_pem_x509_certificate(peer.cert_pem.encode())
    except ValueError:
        return Finding(FAIL, subject, "pinned certificate does not parse: peers remove it, re-pin")
    if str(NodeID.from_certificate(cert)) != peer.node_id:
        return Finding(FAIL, subject, "pinned certificate is not for the pinned node ID")
    if not peer.addresses:
        return Finding(WARN, subject, "no address: we cannot dial it (it can still dial us)")
    for address in peer.addresses:
        try:
            split_host_port(address)
        except InputError as exc:
            return Finding(FAIL, subject, str(exc))
    expiry = _expiry(subject, cert, now, own=False)
    if expiry.status != OK:
        return expiry
    if peer.budget == 0:
        return Finding(WARN, subject, "budget 0: it cannot match against us (peers list)")
    return Finding(OK, subject, f"{', '.join(peer.addresses)}; {expiry.message}")


def _check_addresses(config: NodeConfig, bind: bool) -> list[Finding]:
    findings = [_address("listen", config.listen, bind)]
    if not config.advertise and _is_wildcard(config.listen):
        findings.append(
            Finding(
                WARN,
                "advertise",
                f"not set, so your card gives peers {config.listen}, which they cannot dial; "
                "set [node] advertise to the address peers reach you at",
            )
        )
    if config.metrics.listen:
        metrics = _address("metrics", config.metrics.listen, bind)
        if metrics.status == OK and _is_wildcard(config.metrics.listen):
            metrics = Finding(
                WARN,
                "metrics",
                f"{config.metrics.listen} is reachable from every network: the figures name "
                "peers; bind it where only the monitoring system reaches it",
            )
        findings.append(metrics)
    return findings


def _address(subject: str, address: str, bind: bool) -> Finding:
    host, port = split_host_port(address)  # NodeConfig already refused a malformed one
    if not bind:
        return Finding(OK, subject, f"{address} (not bound: pass --bind to test the port)")
    try:
        infos = socket.getaddrinfo(
            host.strip("[]"), port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
        family, kind, proto, _name, sockaddr = infos[0]
        with socket.socket(family, kind, proto) as sock:
            # As gRPC does: a port in TIME_WAIT is free, one with a listener is not.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(sockaddr)
    except OSError as exc:
        return Finding(FAIL, subject, f"cannot bind {address}: {exc.strerror or exc}")
    return Finding(OK, subject, f"{address} can be bound")


def _is_wildcard(address: str) -> bool:
    host = split_host_port(address)[0]
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False


def _check_settings(config: NodeConfig) -> list[Finding]:
    findings = []
    interval = config.schedule.match_interval
    if interval == 0:
        findings.append(Finding(OK, "schedule", "off: serve does not re-match on its own"))
    elif interval < MIN_MATCH_INTERVAL_S:
        findings.append(
            Finding(
                WARN,
                "schedule",
                f"match_interval {interval:g}s re-matches every peer more often than every "
                f"{MIN_MATCH_INTERVAL_S:g}s: load on peers for little news",
            )
        )
    else:
        findings.append(Finding(OK, "schedule", f"every peer re-matched every {interval:g}s"))
    if config.default_peer_budget == 0:
        findings.append(
            Finding(WARN, "peers", "default_budget 0: peers added without --budget cannot match")
        )
    return findings


def _spki(public_key: Any) -> bytes:
    return bytes(
        public_key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def _node_id(cert: x509.Certificate) -> str:
    return str(NodeID.from_certificate(cert))
