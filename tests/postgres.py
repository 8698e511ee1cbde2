"""A real PostgreSQL server for tests: a private throwaway cluster, or the one named by
AIF_NODE_TEST_PG_DSN (a role that may create databases and roles).

The private cluster is initdb'd into a temporary directory and listens on a unix socket in
it (trusted, for the tests' own superuser) and on a free loopback port (password logins
only, so that redaction of passwords can be tested). PostgreSQL refuses to run as root, so
under root the server runs as the `postgres` system user that Debian's package creates.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from tests.external import unavailable
from tests.ports import free_port

ENV_DSN = "AIF_NODE_TEST_PG_DSN"
SUPERUSER = "aif_admin"
_TIMEOUT = 60


@dataclass(frozen=True)
class Postgres:
    """A running server and a fresh database on it for this test session."""

    admin_dsn: str
    """Superuser connection to the test database."""
    host: str
    port: int
    dbname: str

    def dsn(self, **params: Any) -> str:
        """A connection string to the test database, `params` replacing the admin's."""
        return make_conninfo(self.admin_dsn, **params)

    def password_dsn(self, user: str, password: str) -> str:
        """A TCP login to the test database with a password."""
        return make_conninfo(
            "", host=self.host, port=self.port, dbname=self.dbname, user=user, password=password
        )

    def execute(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            cursor = conn.execute(sql, params)  # type: ignore[arg-type]
            return cursor.fetchall() if cursor.description else []


@contextmanager
def postgres() -> Iterator[Postgres]:
    """The server for this session, with a database made for it and dropped after."""
    given = os.environ.get(ENV_DSN)
    with _given(given) if given else _private_cluster() as (server_dsn, host, port):
        name = f"aif_test_{secrets.token_hex(4)}"
        with psycopg.connect(server_dsn, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")  # type: ignore[arg-type]
        try:
            yield Postgres(make_conninfo(server_dsn, dbname=name), host, port, name)
        finally:
            with psycopg.connect(server_dsn, autocommit=True) as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")  # type: ignore[arg-type]


# A server: a superuser DSN, and the host and port where it takes password logins.
_Server = tuple[str, str, int]


@contextmanager
def _given(dsn: str) -> Iterator[_Server]:
    params = conninfo_to_dict(dsn)
    yield dsn, str(params.get("host", "127.0.0.1")), int(params.get("port", 5432))


def _binaries() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("pg_ctl")
    if on_path:
        return Path(on_path).parent
    unavailable("PostgreSQL server binaries (initdb, pg_ctl) not found; install `postgresql`")


@contextmanager
def _private_cluster() -> Iterator[_Server]:
    """initdb, start, yield a superuser DSN over the unix socket, stop, remove."""
    bin_dir = _binaries()
    as_user: list[str] = []
    root = Path(tempfile.mkdtemp(prefix="aif-pg-"))
    if os.geteuid() == 0:
        try:
            account = pwd.getpwnam("postgres")
        except KeyError:
            unavailable("running as root and there is no `postgres` user to run the server as")
        os.chown(root, account.pw_uid, account.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    data, log = root / "data", root / "server.log"
    port = free_port()

    def run(*argv: str) -> None:
        done = subprocess.run(
            [*as_user, *argv], capture_output=True, text=True, timeout=_TIMEOUT, check=False
        )
        if done.returncode != 0:
            server_log = log.read_text() if log.exists() else ""
            raise AssertionError(f"{argv[0]} failed: {done.stdout}{done.stderr}{server_log}")

    try:
        run(
            str(bin_dir / "initdb"),
            "-D",
            str(data),
            "-U",
            SUPERUSER,
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--no-sync",
            "-E",
            "UTF8",
            "--locale=C",
        )
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={root} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        run(str(bin_dir / "pg_ctl"), "start", "-w", "-D", str(data), "-l", str(log), "-o", options)
        dsn = make_conninfo("", host=str(root), port=port, user=SUPERUSER, dbname="postgres")
        try:
            yield dsn, "127.0.0.1", port
        finally:
            run(str(bin_dir / "pg_ctl"), "stop", "-D", str(data), "-m", "fast", "-w")
    finally:
        shutil.rmtree(root, ignore_errors=True)
