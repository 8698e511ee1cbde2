"""A PostgreSQL query as a row source, for members whose clues live in a database.

The query runs in a READ ONLY transaction through a server-side cursor fetched in batches:
an import can never change the member's database, and memory stays flat however many rows
the query returns. Columns are picked by name as in a CSV header (`phone`, `labels`,
`first_seen`, `last_seen`, `ref`, or `column`); integers, whole numerics, text, dates and
text arrays (labels) map onto the fields, anything else must be cast in the query.

The connection string may hold a password, so it is never echoed: messages name the
server and database only, and any text from libpq or the server is scrubbed of the
password before it is shown. Problems are positioned as `row 12, column 'phone'`.
"""

from __future__ import annotations

import datetime as dt
import decimal
import ipaddress
import math
import os
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from node.errors import InputError, SourceUnavailable
from node.identifiers import KindRegistry
from node.ingest.pipeline import (
    FIRST_SEEN,
    LABELS,
    LAST_SEEN,
    OPTIONAL_FIELDS,
    REF,
    VALUE,
    BadRow,
    ImportResult,
    Raw,
    RowBuilder,
    check_labels,
    load,
    pick_column,
)
from node.store import Store

QUERY_SOURCE = "query"
"""The name a query import has in results and reports, where a file has its path."""
DEFAULT_STATEMENT_TIMEOUT = 600.0
FETCH_ROWS = 5_000
CONNECT_TIMEOUT = 30
FLOAT_DIGITS = 15
"""A double precision value is exact as an identifier only up to 15 digits."""

_CURSOR = "aif_node_import"
# Types whose text form is the identifier (a uuid column of device IDs, an inet of IPs).
_AS_TEXT = (uuid.UUID, ipaddress.IPv4Address, ipaddress.IPv6Address)
_QUERY_CANCELED = "57014"
_CONNECTION_EXCEPTION = "08"
# What DECLARE CURSOR answers to a statement that is not a single query: syntax_error,
# feature_not_supported (a data-modifying WITH).
_NOT_A_SELECT = frozenset({"42601", "0A000"})
_READ_ONLY_TRANSACTION = "25006"


def import_query(
    store: Store,
    dsn: str,
    query: str,
    kind: str,
    registry: KindRegistry,
    column: str | None = None,
    labels: Iterable[str] = (),
    skip_invalid: bool = False,
    statement_timeout: float = DEFAULT_STATEMENT_TIMEOUT,
    progress: Callable[[int], None] | None = None,
) -> ImportResult:
    """Import the rows `query` returns on the server `dsn` names, all or nothing."""
    kind = registry.check(kind)
    builder = RowBuilder(registry, kind, check_labels(labels))
    if not query.strip():
        raise InputError("the query is empty")
    if statement_timeout <= 0:
        raise InputError("--statement-timeout must be more than 0")
    target = Target(dsn)
    with target.connect() as conn:
        conn.read_only = True
        try:
            with conn.transaction(), conn.cursor(name=_CURSOR) as cursor:
                conn.execute(
                    "SELECT set_config('statement_timeout', %s, true)",
                    [f"{max(1, round(statement_timeout * 1000))}ms"],
                )
                cursor.itersize = FETCH_ROWS
                cursor.execute(query)  # the operator's own SQL, which is the point; read-only
                source = _QueryRows(cursor, kind, column, target)
                return load(
                    store,
                    QUERY_SOURCE,
                    kind,
                    source.rows(),
                    source.locate,
                    builder,
                    skip_invalid,
                    progress,
                )
        except psycopg.Error as exc:
            raise target.error(exc) from None


class Target:
    """A parsed connection string that knows how to describe itself without the password."""

    def __init__(self, dsn: str) -> None:
        try:
            self._params = conninfo_to_dict(dsn)
        except psycopg.Error:
            # libpq's message quotes the text around the mistake, which may be the password.
            raise InputError(
                "--dsn: not a valid connection string ('host=... dbname=...', "
                "'postgresql://...' or 'service=NAME'); libpq's message is withheld because "
                "it could quote a password"
            ) from None
        self._dsn = dsn
        self._secrets = [
            str(s) for s in (self._params.get("password"), os.environ.get("PGPASSWORD")) if s
        ]

    def __str__(self) -> str:
        """`database 'clues' on db.example:5432 as 'reader'`, from the DSN or libpq's
        environment; never the password."""
        params, env = self._params, os.environ
        service = params.get("service") or env.get("PGSERVICE")
        db = params.get("dbname") or env.get("PGDATABASE")
        host = params.get("host") or params.get("hostaddr") or env.get("PGHOST")
        port = params.get("port") or env.get("PGPORT")
        user = params.get("user") or env.get("PGUSER")
        text = f"database {db!r}" if db else "the default database"
        text += f" on {host}" if host else " on the local socket"
        text += f":{port}" if port else ""
        text += f" as {user!r}" if user else ""
        return f"{text} (service {service!r})" if service else text

    def connect(self) -> psycopg.Connection[tuple[Any, ...]]:
        extra: dict[str, Any] = {}
        if "connect_timeout" not in self._params:
            extra["connect_timeout"] = CONNECT_TIMEOUT
        if "application_name" not in self._params:
            extra["application_name"] = "aif-node import"
        try:
            return psycopg.connect(self._dsn, **extra)
        except psycopg.Error as exc:
            raise SourceUnavailable(
                f"cannot connect to PostgreSQL {self}: {self.redact(_first_lines(exc))}"
            ) from None

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def error(self, exc: psycopg.Error) -> InputError | SourceUnavailable:
        """An error from running the query, as the operator should see it."""
        state = exc.sqlstate
        if state is None or state.startswith(_CONNECTION_EXCEPTION):
            return SourceUnavailable(
                f"PostgreSQL {self}: connection lost: {self.redact(_first_lines(exc))}"
            )
        message = exc.diag.message_primary or _first_lines(exc)
        text = f"the query failed on {self}: {message} (SQLSTATE {state})"
        if exc.diag.message_hint:
            text += f"; hint: {exc.diag.message_hint}"
        if state == _READ_ONLY_TRANSACTION:
            text += "; imports run their query read-only and can never change the database"
        elif state in _NOT_A_SELECT:
            text += "; an import query is one SELECT (or VALUES) statement, run read-only"
        elif state == _QUERY_CANCELED:
            text += "; if the statement timed out, raise --statement-timeout"
        return InputError(self.redact(text))


class _QueryRows:
    """The rows of an executed cursor as (row number, Raw | BadRow)."""

    def __init__(
        self,
        cursor: psycopg.ServerCursor[tuple[Any, ...]],
        kind: str,
        column: str | None,
        target: Target,
    ) -> None:
        if cursor.description is None:
            raise InputError("the query returns no rows (it must be a SELECT or VALUES)")
        self._cursor = cursor
        self._kind = kind
        names = [d.name for d in cursor.description]
        keys = [n.strip().lower() for n in names]
        duplicates = sorted({k for k in keys if keys.count(k) > 1})
        if duplicates:
            raise InputError(
                f"the query returns duplicate column(s) {', '.join(duplicates)}; "
                "name them apart with AS"
            )
        value_key = pick_column(f"query on {target}", kind, column, names)
        self._columns: list[int | None] = [keys.index(value_key)]
        self._columns += [keys.index(f) if f in keys else None for f in OPTIONAL_FIELDS]
        self._names = names

    def locate(self, row: int, field: int | None) -> str:
        at = None if field is None else self._columns[field]
        return f"row {row}" if at is None else f"row {row}, column {self._names[at]!r}"

    def rows(self) -> Iterator[tuple[int, Raw | BadRow]]:
        columns = self._columns
        value_at = columns[0]
        assert value_at is not None
        plain = all(at is None for at in columns[1:])
        for number, record in enumerate(self._cursor, start=1):
            try:
                if plain:
                    value = _convert(record[value_at], VALUE, self._kind)
                    yield number, (value, None, None, None, None)
                    continue
                raw = tuple(
                    None if at is None else _convert(record[at], field, self._kind)
                    for field, at in enumerate(columns)
                )
            except BadRow as bad:
                yield number, bad
                continue
            yield number, raw  # type: ignore[misc]  # five fields, as self._columns


def _convert(value: object, field: int, kind: str) -> object:
    """A column value as the pipeline takes it (str, int, list of str or None), or BadRow."""
    if value is None or isinstance(value, str | int):
        return value  # the pipeline reports a boolean where it does not belong
    if isinstance(value, decimal.Decimal | float):
        return _number(value, field, kind)
    dates = field in (FIRST_SEEN, LAST_SEEN)
    if isinstance(value, dt.date) and dates:
        return (value.date() if isinstance(value, dt.datetime) else value).isoformat()
    if (
        isinstance(value, list)
        and field == LABELS
        and all(isinstance(v, str | None) for v in value)
    ):
        return [v for v in value if v is not None]
    if isinstance(value, _AS_TEXT) and field in (VALUE, REF):
        return str(value)
    name = kind if field == VALUE else OPTIONAL_FIELDS[field - 1]
    raise BadRow(
        f"a {type(value).__name__} value does not fit {name}; cast the column in the query",
        f"{name}: unsupported type {type(value).__name__}",
        field,
    )


def _number(value: decimal.Decimal | float, field: int, kind: str) -> object:
    name = kind if field == VALUE else OPTIONAL_FIELDS[field - 1]
    if not (value.is_finite() if isinstance(value, decimal.Decimal) else math.isfinite(value)):
        raise BadRow(f"{name}: {value} is not a number", f"{name}: not a number", field)
    if value != int(value):
        raise BadRow(f"{name}: {value} is not a whole number", f"{name}: fractional number", field)
    whole = int(value)
    if isinstance(value, float) and abs(whole) >= 10**FLOAT_DIGITS:
        raise BadRow(
            f"{name}: {value!r} is a floating-point number, which keeps only {FLOAT_DIGITS} "
            "digits exactly; store the column as text or numeric",
            f"{name}: float of more than {FLOAT_DIGITS} digits",
            field,
        )
    return whole


def _first_lines(exc: BaseException) -> str:
    return " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
