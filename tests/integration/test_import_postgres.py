"""Importing from a PostgreSQL query against a real server (tests/postgres.py).

The store side is the real store; the database side is a real cluster, so read-only
transactions, SQLSTATEs, authentication and server-side cursors are PostgreSQL's own.
"""

from __future__ import annotations

import datetime as dt
import itertools
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from node.errors import ImportRejected, InputError, SourceUnavailable
from node.identifiers import KindRegistry
from node.ingest import QUERY_SOURCE, import_query
from node.store import Record, Store
from tests.ports import free_port
from tests.postgres import Postgres, postgres

REGISTRY = KindRegistry(opaque=frozenset())
PASSWORD = "Zq9-unique-s3cret"  # must never appear in any output
_tables = itertools.count()


@pytest.fixture(scope="session")
def pg() -> Iterator[Postgres]:
    with postgres() as server:
        server.execute(f"CREATE ROLE aif_reader LOGIN PASSWORD '{PASSWORD}'")
        server.execute("GRANT pg_read_all_data TO aif_reader")
        try:
            yield server
        finally:
            server.execute("REVOKE pg_read_all_data FROM aif_reader")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "aif.db") as s:
        yield s


def phones(n: int, start: int = 0) -> list[str]:
    return [f"138{i:08d}" for i in range(start, start + n)]


def table(pg: Postgres, columns: str, rows: list[tuple[Any, ...]]) -> str:
    """A new table holding `rows`; returns its name."""
    name = f"clues_{next(_tables)}"
    pg.execute(f"CREATE TABLE {name} ({columns})")
    if rows:
        with_values = ", ".join(["%s"] * len(rows[0]))
        with psycopg.connect(pg.admin_dsn) as conn, conn.cursor() as cur:
            cur.executemany(f"INSERT INTO {name} VALUES ({with_values})", rows)  # type: ignore[arg-type]
    return name


def canon(value: str) -> str:
    return REGISTRY.normalize("phone", value)


def records(store: Store, kind: str = "phone") -> dict[str, Record]:
    return {r.value: r for page in store.records.iter_changed(kind, 0) for r in page}


def test_imports_every_field_from_a_table(pg: Postgres, store: Store) -> None:
    noon = dt.datetime(2024, 3, 1, 12, tzinfo=dt.UTC)
    name = table(
        pg,
        "phone text, labels text[], first_seen date, last_seen timestamptz, ref integer",
        [
            ("+86 138-0013-8000", ["mule", "fraud_ring"], dt.date(2024, 1, 5), noon, 17),
            ("13912345678", None, None, None, None),
            ("13912345678", ["mule", None], dt.date(2024, 2, 1), None, None),
        ],
    )
    query = f"SELECT phone, labels, first_seen, last_seen, ref FROM {name}"
    result = import_query(store, pg.dsn(), query, "phone", REGISTRY, labels=("police",))
    assert (result.path, result.rows_read, result.inserted, result.merged) == (
        QUERY_SOURCE,
        3,
        2,
        1,
    )
    got = records(store)
    a, b = got[canon("13800138000")], got[canon("13912345678")]
    assert a.labels == ("fraud_ring", "mule", "police")
    assert (a.first_seen, a.last_seen, a.ref) == ("2024-01-05", "2024-03-01", "17")
    assert b.labels == ("mule", "police")
    assert (b.first_seen, b.last_seen) == ("2024-02-01", dt.date.today().isoformat())


def test_numeric_columns_become_digits(pg: Postgres, store: Store) -> None:
    query = (
        "SELECT 13800138000::bigint AS phone UNION ALL SELECT 13912345678::numeric "
        "UNION ALL SELECT 13700000000::float8"
    )
    result = import_query(store, pg.dsn(), query, "phone", REGISTRY)
    assert result.inserted == 3
    assert set(records(store)) == {canon(v) for v in ("13800138000", "13912345678", "13700000000")}


def test_lossy_and_unsupported_values_are_bad_rows(pg: Postgres, store: Store) -> None:
    query = (
        "SELECT bank_card, ref FROM (VALUES (1, 6222021234567890123::float8, NULL::date), "
        "(2, 13800138000.5, NULL), (3, 13800138000, '2024-01-01'::date), (4, NULL, NULL)) "
        "AS t(n, bank_card, ref) ORDER BY n"
    )
    with pytest.raises(ImportRejected) as info:
        import_query(store, pg.dsn(), query, "bank_card", REGISTRY)
    assert info.value.problems == [
        (
            "row 1, column 'bank_card'",
            "bank_card: 6.22202123456789e+18 is a floating-point number, which keeps only 15 "
            "digits exactly; store the column as text or numeric",
        ),
        ("row 2, column 'bank_card'", "bank_card: 13800138000.5 is not a whole number"),
        ("row 3, column 'ref'", "a date value does not fit ref; cast the column in the query"),
        ("row 4, column 'bank_card'", "bank_card: empty value"),
    ]


def test_bad_rows_reject_everything_and_the_store_is_unchanged(pg: Postgres, store: Store) -> None:
    import_query(store, pg.dsn(), "SELECT '13700000000' AS phone", "phone", REGISTRY)
    before = (store.records.current_seq(), store.records.counts())
    values = phones(12_000)  # more than two write batches before the first bad row is known
    bad = {10_500: "1380013", 11_000: "not a phone"}
    rows = [(i + 1, bad.get(i + 1, v)) for i, v in enumerate(values)]
    name = table(pg, "n integer, phone text", rows)
    query = f"SELECT n AS ref, phone FROM {name} ORDER BY n"
    with pytest.raises(ImportRejected) as info:
        import_query(store, pg.dsn(), query, "phone", REGISTRY)
    assert info.value.path == QUERY_SOURCE
    assert [p for p, _ in info.value.problems] == [
        "row 10500, column 'phone'",
        "row 11000, column 'phone'",
    ]
    assert info.value.locate("row 10500, column 'phone'") == "query: row 10500, column 'phone'"
    assert (store.records.current_seq(), store.records.counts()) == before

    result = import_query(store, pg.dsn(), query, "phone", REGISTRY, skip_invalid=True)
    assert (result.rows_read, result.inserted, result.skipped) == (12_000, 11_998, 2)
    assert sum(result.skipped_reasons.values()) == 2


def test_an_error_midway_through_the_query_writes_nothing(pg: Postgres, store: Store) -> None:
    query = (
        "SELECT CASE WHEN i = 9000 THEN (1 / (i - 9000))::text "
        "ELSE (13800000000 + i)::text END AS phone FROM generate_series(1, 10000) AS i"
    )
    with pytest.raises(InputError, match=r"division by zero \(SQLSTATE 22012\)"):
        import_query(store, pg.dsn(), query, "phone", REGISTRY)
    assert store.records.current_seq() == 0
    assert store.records.counts() == []


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (
            "SELECT nope FROM missing_table",
            r'relation "missing_table" does not exist \(SQLSTATE 42P01\)',
        ),
        ("SELEC 1", r'syntax error at or near "SELEC" \(SQLSTATE 42601\)'),
        ("SELECT 1 AS phone, 2 AS PHONE", r"duplicate column\(s\) phone"),
        ("SELECT 1 AS a, 2 AS b", r"several columns \('a', 'b'\)"),
        ("   ", r"the query is empty"),
    ],
)
def test_query_errors(pg: Postgres, store: Store, query: str, message: str) -> None:
    with pytest.raises(InputError, match=message) as info:
        import_query(store, pg.dsn(), query, "phone", REGISTRY)
    assert not isinstance(info.value, ImportRejected)
    assert store.records.counts() == []


def test_the_query_runs_read_only(pg: Postgres, store: Store) -> None:
    name = table(pg, "phone text", [("13800138000",)])
    pg.execute(f"CREATE SEQUENCE {name}_seq")
    pg.execute(
        f"CREATE FUNCTION {name}_sneak() RETURNS text LANGUAGE sql AS "
        f"$$ INSERT INTO {name} VALUES ('13900000000') RETURNING phone $$"
    )
    attempts = [
        f"INSERT INTO {name} VALUES ('13911111111') RETURNING phone",
        f"WITH x AS (INSERT INTO {name} VALUES ('13922222222') RETURNING phone) SELECT * FROM x",
        f"SELECT nextval('{name}_seq')::text AS phone",
        f"SELECT {name}_sneak() AS phone",
        f"UPDATE {name} SET phone = '13933333333' RETURNING phone",
    ]
    for query in attempts:
        with pytest.raises(InputError, match=r"SQLSTATE") as info:
            import_query(store, pg.dsn(), query, "phone", REGISTRY)
        assert "the query failed on database" in str(info.value)
    errors = [_error(pg, store, a) for a in attempts]
    # DECLARE CURSOR takes only a query; what slips past that meets the read-only transaction.
    for message in errors[:2] + errors[4:]:
        assert "an import query is one SELECT (or VALUES) statement, run read-only" in message
    for message in errors[2:4]:
        assert "(SQLSTATE 25006); imports run their query read-only" in message
        assert "cannot execute" in message
    assert pg.execute(f"SELECT phone FROM {name}") == [("13800138000",)]
    assert pg.execute(f"SELECT last_value, is_called FROM {name}_seq") == [(1, False)]
    assert store.records.counts() == []


def _error(pg: Postgres, store: Store, query: str) -> str:
    try:
        import_query(store, pg.dsn(), query, "phone", REGISTRY)
    except InputError as exc:
        return str(exc)
    raise AssertionError(f"{query!r} was accepted")


def test_statement_timeout(pg: Postgres, store: Store) -> None:
    query = "SELECT '13800138000' AS phone FROM pg_sleep(5)"
    started = time.monotonic()
    with pytest.raises(InputError, match=r"SQLSTATE 57014.*--statement-timeout"):
        import_query(store, pg.dsn(), query, "phone", REGISTRY, statement_timeout=0.2)
    assert time.monotonic() - started < 4


def test_connection_refused_names_the_server(store: Store) -> None:
    port = free_port()
    dsn = f"postgresql://aif_reader:{PASSWORD}@127.0.0.1:{port}/clues"
    with pytest.raises(SourceUnavailable) as info:
        import_query(store, dsn, "SELECT 1 AS phone", "phone", REGISTRY)
    text = str(info.value)
    assert f"database 'clues' on 127.0.0.1:{port} as 'aif_reader'" in text
    assert "refused" in text.lower()
    assert PASSWORD not in text


def test_service_file(
    pg: Postgres, store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    services = tmp_path / "pg_service.conf"
    services.write_text(
        f"[clues]\nhost={pg.host}\nport={pg.port}\ndbname={pg.dbname}\nuser=aif_reader\n"
    )
    passfile = tmp_path / "pgpass"
    passfile.write_text(f"{pg.host}:{pg.port}:*:aif_reader:{PASSWORD}\n")
    passfile.chmod(0o600)
    monkeypatch.setenv("PGSERVICEFILE", str(services))
    monkeypatch.setenv("PGPASSFILE", str(passfile))
    result = import_query(
        store, "service=clues", "SELECT '13800138000' AS phone", "phone", REGISTRY
    )
    assert result.inserted == 1


def test_password_never_appears_in_cli_output(pg: Postgres, members: Any) -> None:
    (member,) = members("a")
    name = table(pg, "phone text", [("13800138000",), ("13912345678",)])
    good = pg.password_dsn("aif_reader", PASSWORD)
    cases = {
        "imported": ("--dsn", good, "--query", f"SELECT phone FROM {name}"),
        "sql error": ("--dsn", good, "--query", "SELECT nope FROM missing_table"),
        "bad rows": ("--dsn", good, "--query", "SELECT '123' AS phone"),
        "wrong password": (
            "--dsn",
            pg.password_dsn("aif_reader", PASSWORD + "x"),
            "--query",
            "SELECT 1 AS phone",
        ),
        "malformed dsn": ("--dsn", f"host=127.0.0.1 password={PASSWORD} oops", "--query", "x"),
        "refused": (
            "--dsn",
            f"postgresql://aif_reader:{PASSWORD}@127.0.0.1:{free_port()}/db",
            "--query",
            "SELECT 1 AS phone",
        ),
    }
    outcomes = {}
    for case, args in cases.items():
        done = member.cli("import-query", "--kind", "phone", *args, check=False)
        output = done.stdout + done.stderr
        assert PASSWORD not in output, f"{case}: {output}"
        assert PASSWORD[3:] not in output, f"{case}: {output}"  # nor a tail of it
        outcomes[case] = (done.returncode, output)
    assert outcomes["imported"][0] == 0
    assert "query: 2 row(s) read, 2 new" in outcomes["imported"][1]
    assert outcomes["sql error"][0] == 2
    assert "SQLSTATE 42P01" in outcomes["sql error"][1]
    assert outcomes["bad rows"][0] == 2
    assert "query: row 1, column 'phone': phone:" in outcomes["bad rows"][1]
    assert outcomes["wrong password"][0] == 1
    assert "password authentication failed" in outcomes["wrong password"][1]
    assert outcomes["malformed dsn"][0] == 2
    assert "not a valid connection string" in outcomes["malformed dsn"][1]
    assert outcomes["refused"][0] == 1


def test_query_file_and_options(pg: Postgres, members: Any, tmp_path: Path) -> None:
    (member,) = members("a")
    name = table(pg, "mobile text, tags text[]", [("13800138000", ["mule"])])
    sql_file = tmp_path / "clues.sql"
    sql_file.write_text(f"SELECT mobile, tags AS labels FROM {name}\n")
    done = member.cli(
        "import-query",
        "--dsn",
        pg.dsn(),
        "--query-file",
        str(sql_file),
        "--kind",
        "phone",
        "--column",
        "mobile",
        "--label",
        "from_db",
        "--statement-timeout",
        "30s",
    )
    assert "1 row(s) read, 1 new" in done.stdout
    counts = {(c["kind"], c["label"]): c["count"] for c in member.json("records")}
    assert counts[("phone", "mule")] == 1
    assert counts[("phone", "from_db")] == 1
    both = member.cli(
        "import-query",
        "--dsn",
        pg.dsn(),
        "--query",
        "x",
        "--query-file",
        str(sql_file),
        "--kind",
        "phone",
        check=False,
    )
    assert both.returncode == 2
    assert "exactly one of --query and --query-file" in both.stderr


def test_100k_rows(pg: Postgres, store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    n = 100_000
    query = (
        "SELECT (13800000000 + i)::text AS phone, ARRAY['mule'] AS labels, "
        "DATE '2024-01-01' + (i % 300) AS first_seen, i AS ref "
        f"FROM generate_series(1, {n}) AS i"
    )
    started = time.perf_counter()
    result = import_query(store, pg.dsn(), query, "phone", REGISTRY)
    seconds = time.perf_counter() - started
    assert (result.rows_read, result.inserted) == (n, n)
    with capsys.disabled():
        print(f"\nimport-query: {n} rows in {seconds:.2f}s = {n / seconds:,.0f} rows/s")
