"""Importing an operator's clue file into the store, all or nothing.

Formats:

* CSV with a header row. The value is in the column named like the kind (`phone`), or
  the one named by `column`, or else the only column besides the optional ones. Optional
  columns, used when present (names match ignoring case and surrounding spaces):
  `labels` (separated by `;` or `|`), `first_seen`, `last_seen`, `ref`.
* JSON Lines (`.jsonl`, `.ndjson`, or content starting with `{`): one object per line,
  the value under the same key as above (a string, or an integer for numbers written
  bare), and optionally `labels` (a list of strings, or one string split like the CSV
  column), `first_seen`, `last_seen`, `ref`.

Dates are `YYYY-MM-DD`, `YYYY/MM/DD` (month and day may have one digit) or `YYYYMMDD`.
A missing `last_seen` is today (or `first_seen` if that is later); a missing
`first_seen` is `last_seen`. The `labels` argument is added to every row.

The file is read as a stream and written in batches inside one transaction. A bad row
(invalid identifier, bad date, wrong field count) is collected with its physical line
number; unless `skip_invalid`, any bad row rolls the whole import back and raises
`ImportRejected`. A file that cannot be read as a table at all raises `InputError`.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import json
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, TextIO, overload

from node.errors import ImportRejected, InputError, InvalidIdentifier
from node.identifiers import KindRegistry
from node.store import RecordIn, Store, check_label

BATCH_ROWS = 5_000
MAX_PROBLEMS = 20
OPTIONAL_FIELDS = ("labels", "first_seen", "last_seen", "ref")
JSONL_SUFFIXES = frozenset({".jsonl", ".ndjson"})
CSV_SUFFIXES = frozenset({".csv"})

_UTF8 = frozenset({"utf-8", "utf-8-sig"})
_BOM = codecs.BOM_UTF8
_LABEL_SPLIT = re.compile(r"[;|]")
_DATE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})|(\d{4})/(\d{1,2})/(\d{1,2})|(\d{4})(\d{2})(\d{2})")
_QUOTED = re.compile(r"'[^']*'|U\+[0-9A-F]{4,6}")
_NUMBER = re.compile(r"\d+")
_CLAUSE = re.compile(r", | \(|; |: ")


@dataclass(frozen=True)
class ImportResult:
    path: str
    kind: str
    rows_read: int
    """Data rows in the file (blank lines and the header not counted)."""
    inserted: int
    """Rows that added a record (new, or one removed earlier)."""
    merged: int
    """Rows whose record was already present, whether or not they changed it."""
    skipped: int
    """Bad rows left out because of `skip_invalid`."""
    skipped_reasons: Counter[str] = field(default_factory=Counter)
    """How many rows were skipped per kind of reason (`id_card: check digit ...`)."""


class _BadRow(Exception):
    """A row that cannot be imported; `reason` is for the operator, `group` for tallies."""

    def __init__(self, reason: str, group: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.group = group


# A parsed row before validation: the value cell, then the optional fields (None if absent).
_Raw = tuple[object, object, object, object, object]


def import_file(
    store: Store,
    path: str | os.PathLike[str],
    kind: str,
    registry: KindRegistry,
    column: str | None = None,
    labels: Iterable[str] = (),
    skip_invalid: bool = False,
    encoding: str = "utf-8",
    progress: Callable[[int], None] | None = None,
) -> ImportResult:
    """Import one CSV or JSON Lines file of `kind` into `store` (see the module docstring)."""
    name = os.fspath(path)
    kind = registry.check(kind)
    try:
        extra = tuple(sorted({check_label(label) for label in labels}))
    except InputError as exc:
        raise InputError(f"--label: {exc}") from exc
    encoding = _check_encoding(encoding)
    builder = _RowBuilder(registry, kind, extra, dt.date.today().isoformat())
    is_jsonl = _is_jsonl(name)
    # Decoding in the C text layer is several times faster than per line in Python; a
    # decoding error is located by a second, rare pass.
    with _open(name, "utf-8-sig" if encoding in _UTF8 else encoding) as fh:
        rows = (
            _jsonl_rows(fh, name, kind, column)
            if is_jsonl
            else _csv_rows(fh, name, kind, column, registry)
        )
        try:
            return _load(store, name, kind, rows, builder, skip_invalid, progress)
        except UnicodeDecodeError:
            raise _decoding_error(name, encoding) from None


def _load(
    store: Store,
    name: str,
    kind: str,
    rows: Iterator[tuple[int, _Raw | _BadRow]],
    builder: _RowBuilder,
    skip_invalid: bool,
    progress: Callable[[int], None] | None,
) -> ImportResult:
    problems: list[tuple[int, str]] = []
    reasons: Counter[str] = Counter()
    batch: list[RecordIn] = []
    read = inserted = merged = 0
    build = builder.build
    with store.transaction():
        for line, raw in rows:
            read += 1
            try:
                if isinstance(raw, _BadRow):
                    raise raw
                batch.append(build(raw))
            except _BadRow as bad:
                if len(problems) < MAX_PROBLEMS:
                    problems.append((line, bad.reason))
                reasons[bad.group] += 1
            if read % BATCH_ROWS == 0:
                # Once the import is doomed, rows are read only to report every bad one.
                if skip_invalid or not reasons:
                    result = store.records.upsert_batch(kind, batch)
                    inserted, merged = inserted + result.inserted, merged + result.merged
                batch = []
                if progress is not None:
                    progress(read)
        if skip_invalid or not reasons:
            result = store.records.upsert_batch(kind, batch)
            inserted, merged = inserted + result.inserted, merged + result.merged
        if progress is not None:
            progress(read)
        total_bad = reasons.total()
        if total_bad and not skip_invalid:
            raise ImportRejected(name, problems, total_bad)
    return ImportResult(name, kind, read, inserted, merged, total_bad, reasons)


class _RowBuilder:
    """Turns the fields of one row into a RecordIn, or raises _BadRow."""

    def __init__(self, registry: KindRegistry, kind: str, labels: tuple[str, ...], today: str):
        self._normalize = registry.normalize
        self._kind = kind
        self._labels = labels
        self._today = today
        self._dates: dict[str, str] = {}
        self._label_cells: dict[str, tuple[str, ...]] = {}

    def build(self, raw: _Raw) -> RecordIn:
        value, labels, first, last, ref = raw
        kind = self._kind
        if type(value) is not str:
            if isinstance(value, bool) or not isinstance(value, int | None):
                raise _BadRow(
                    f"{kind}: expected a string, found {_json_type(value)}",
                    f"{kind}: not a string",
                )
            value = "" if value is None else str(value)
        if not value.strip():
            raise _BadRow(f"{kind}: empty value", f"{kind}: empty value")
        try:
            canonical = self._normalize(kind, value)
        except InvalidIdentifier as exc:
            raise _BadRow(str(exc), f"{exc.kind}: {_generalise(exc.reason)}") from None
        if labels is None and first is None and last is None and ref is None:
            return RecordIn(canonical, self._labels, self._today, self._today)
        first_seen = self._date("first_seen", first)
        last_seen = self._date("last_seen", last)
        if last_seen is None:
            last_seen = max(self._today, first_seen) if first_seen else self._today
        if first_seen is None:
            first_seen = last_seen
        if first_seen > last_seen:
            raise _BadRow(
                f"first_seen {first_seen} is after last_seen {last_seen}",
                "first_seen after last_seen",
            )
        return RecordIn(canonical, self._row_labels(labels), first_seen, last_seen, _ref(ref))

    def _row_labels(self, raw: object) -> tuple[str, ...]:
        if raw is None or raw == "":
            return self._labels
        if isinstance(raw, str):
            cached = self._label_cells.get(raw)
            if cached is None:
                cached = self._union(_LABEL_SPLIT.split(raw))
                if len(self._label_cells) < 10_000:  # label cells repeat; values do not
                    self._label_cells[raw] = cached
            return cached
        if isinstance(raw, list) and all(isinstance(p, str) for p in raw):
            return self._union(raw)
        raise _BadRow(
            f"labels: expected a list of strings or a string, found {_json_type(raw)}",
            "labels: not a list of strings",
        )

    def _union(self, parts: list[str]) -> tuple[str, ...]:
        found = set(self._labels)
        for part in parts:
            if part.strip():
                try:
                    found.add(check_label(part))
                except InputError as exc:
                    raise _BadRow(f"labels: {exc}", "labels: control character") from None
        return tuple(sorted(found))

    def _date(self, name: str, raw: object) -> str | None:
        if raw is None:
            return None
        if isinstance(raw, int) and not isinstance(raw, bool):
            raw = str(raw)
        if not isinstance(raw, str):
            raise _BadRow(
                f"{name}: expected a date, found {_json_type(raw)}", f"{name}: not a date"
            )
        text = raw.strip()
        if not text:
            return None
        cached = self._dates.get(text)
        if cached is None:
            cached = _parse_date(text)
            if cached is None:
                raise _BadRow(
                    f"{name}: {text!r} is not a date (use YYYY-MM-DD)", f"{name}: not a date"
                )
            self._dates[text] = cached
        return cached


def _parse_date(text: str) -> str | None:
    match = _DATE.fullmatch(text)
    if match is None:
        return None
    year, month, day = (int(g) for g in match.groups() if g is not None)
    try:
        return dt.date(year, month, day).isoformat()
    except ValueError:
        return None


def _ref(raw: object) -> str | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        raise _BadRow(f"ref: expected a string, found {_json_type(raw)}", "ref: not a string")
    text = str(raw).strip()
    return text or None


def _generalise(reason: str) -> str:
    """The reason without its particulars, so that rows failing alike are counted together:
    'check digit is 3, expected X' -> 'check digit is N ...'."""
    general = _NUMBER.sub("N", _QUOTED.sub("?", reason))
    cut = _CLAUSE.search(general)
    return general if cut is None else general[: cut.start()] + " ..."


def _json_type(value: object) -> str:
    names = {
        dict: "an object",
        list: "a list",
        bool: "a boolean",
        float: "a number",
        int: "a number",
    }
    return "null" if value is None else names.get(type(value), type(value).__name__)


# --- reading the file ----------------------------------------------------------------------


def _check_encoding(encoding: str) -> str:
    try:
        canonical = codecs.lookup(encoding).name
    except LookupError:
        raise InputError(f"unknown encoding {encoding!r}") from None
    # A bad byte is located by splitting the raw file at 0x0A, which must be the newline.
    try:
        ascii_compatible = "\n,{".encode(canonical) == b"\n,{"
    except UnicodeError:
        ascii_compatible = False
    if not ascii_compatible:
        raise InputError(f"encoding {encoding!r} is not supported; convert the file to UTF-8")
    return canonical


@overload
def _open(name: str) -> BinaryIO: ...
@overload
def _open(name: str, encoding: str) -> TextIO: ...
def _open(name: str, encoding: str | None = None) -> BinaryIO | TextIO:
    """The file in binary, or as text keeping line ends for the CSV reader."""
    try:
        if encoding is None:
            return open(name, "rb")
        return open(name, encoding=encoding, newline="")
    except FileNotFoundError:
        raise InputError(f"{name}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{name}: is a directory, not a file") from None
    except OSError as exc:
        raise InputError(f"{name}: cannot read: {exc.strerror}") from None


def _is_jsonl(name: str) -> bool:
    """By extension, else by the first non-blank character; an empty file is an error."""
    with _open(name) as fh:
        head = fh.read(64 * 1024).lstrip(_BOM)
        while head and not head.strip():
            head = fh.read(64 * 1024)
    start = head.lstrip()
    if not start:
        raise InputError(f"{name}: the file is empty")
    suffix = Path(name).suffix.lower()
    if suffix in JSONL_SUFFIXES:
        return True
    if suffix in CSV_SUFFIXES:
        return False
    return start[:1] == b"{"


def _decoding_error(name: str, encoding: str) -> InputError:
    """Say on which line the file stops being `encoding`."""
    hint = (
        "; if it was saved by Excel or WPS in China, try --encoding gbk"
        if encoding in _UTF8
        else "; check --encoding"
    )
    with _open(name) as fh:
        for number, raw in enumerate(fh, start=1):
            try:
                (raw[len(_BOM) :] if number == 1 and raw.startswith(_BOM) else raw).decode(encoding)
            except UnicodeDecodeError as exc:
                return InputError(
                    f"{name}, line {number}: not valid {encoding} "
                    f"(byte 0x{exc.object[exc.start]:02x} at position {exc.start + 1}){hint}"
                )
    return InputError(f"{name}: not valid {encoding}{hint}")


def _pick_column(name: str, line: int, kind: str, column: str | None, found: list[str]) -> str:
    """The field holding the value: `column`, else the kind, else the only non-optional one."""
    keys = [f.strip().lower() for f in found]
    listing = ", ".join(repr(f) for f in found if f.strip()) or "none"
    if column is not None:
        if column.strip().lower() in keys:
            return column.strip().lower()
        raise InputError(f"{name}, line {line}: no column {column!r}; columns found: {listing}")
    if kind in keys:
        return kind
    candidates = [k for k in keys if k and k not in OPTIONAL_FIELDS]
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise InputError(f"{name}, line {line}: no column named {kind!r}; columns found: {listing}")
    raise InputError(
        f"{name}, line {line}: several columns ({listing}) and none is named {kind!r}; "
        "say which holds the values with --column"
    )


def _csv_rows(
    lines: Iterable[str], name: str, kind: str, column: str | None, registry: KindRegistry
) -> Iterator[tuple[int, _Raw | _BadRow]]:
    reader = csv.reader(lines)
    header: list[str] = []
    header_line = 0
    try:
        for row in reader:
            if any(cell.strip() for cell in row):
                header, header_line = row, reader.line_num
                break
        if not header:
            raise InputError(f"{name}: no header row: every line is blank")
        keys = [cell.strip().lower() for cell in header]
        duplicates = sorted({k for k in keys if k and keys.count(k) > 1})
        if duplicates:
            raise InputError(
                f"{name}, line {header_line}: duplicate column(s) {', '.join(duplicates)}"
            )
        value_key = _pick_column(name, header_line, kind, column, header)
        at = keys.index(value_key)
        if column is None and value_key != kind and _looks_like_data(registry, kind, header[at]):
            raise InputError(
                f"{name}, line {header_line}: no header: the first row holds a {kind} "
                f"({header[at].strip()!r}); add a first row naming the columns, e.g. {kind!r}"
            )
        optional = [keys.index(f) if f in keys else None for f in OPTIONAL_FIELDS]
        plain = all(i is None for i in optional)
        width = len(header)
        start = reader.line_num + 1
        for row in reader:
            line, start = start, reader.line_num + 1
            if len(row) != width:
                if any(cell.strip() for cell in row):
                    yield (
                        line,
                        _BadRow(
                            f"expected {width} field(s) as in the header, found {len(row)}",
                            "wrong number of fields",
                        ),
                    )
                continue
            value = row[at]
            if not value.strip() and not any(cell.strip() for cell in row):
                continue  # a blank line, or only commas
            if plain:
                yield line, (value, None, None, None, None)
            else:
                lab, first, last, ref = (None if i is None else row[i] for i in optional)
                yield line, (value, lab, first, last, ref)
    except csv.Error as exc:
        raise InputError(f"{name}, line {reader.line_num}: not a readable CSV row: {exc}") from None


def _looks_like_data(registry: KindRegistry, kind: str, cell: str) -> bool:
    """Whether a header cell is really a value; undecidable for kinds that accept anything."""
    return _valid(registry, kind, cell) and not _valid(registry, kind, "column")


def _valid(registry: KindRegistry, kind: str, text: str) -> bool:
    try:
        registry.normalize(kind, text)
    except InputError:
        return False
    return True


def _jsonl_rows(
    lines: Iterable[str], name: str, kind: str, column: str | None
) -> Iterator[tuple[int, _Raw | _BadRow]]:
    value_key: str | None = None
    for line, raw in enumerate(lines, start=1):
        text = raw.strip()
        if not text:
            continue
        try:
            obj: Any = json.loads(text)
        except json.JSONDecodeError as exc:
            yield line, _BadRow(f"not valid JSON: {exc.msg} (column {exc.colno})", "not valid JSON")
            continue
        if not isinstance(obj, dict):
            raise InputError(
                f"{name}, line {line}: each line must be a JSON object, found {_json_type(obj)}"
            )
        fields = {str(k).strip().lower(): v for k, v in obj.items()}
        if value_key is None:
            value_key = _pick_column(name, line, kind, column, [str(k) for k in obj])
        if value_key not in fields:
            yield line, _BadRow(f"no {value_key!r} key", f"no {value_key!r} key")
            continue
        yield (
            line,
            (
                fields[value_key],
                fields.get("labels"),
                fields.get("first_seen"),
                fields.get("last_seen"),
                fields.get("ref"),
            ),
        )
