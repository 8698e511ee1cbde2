"""CSV and JSON Lines sources: rows from a text file, positioned by physical line.

* CSV with a header row. The value is in the column named like the kind (`phone`), or
  the one named by `column`, or else the only column besides the optional ones. Optional
  columns, used when present (names match ignoring case and surrounding spaces):
  `labels` (separated by `;` or `|`), `first_seen`, `last_seen`, `ref`.
* JSON Lines (`.jsonl`, `.ndjson`, or content starting with `{`): one object per line,
  the value under the same key as above (a string, or an integer for numbers written
  bare), and optionally `labels` (a list of strings, or one string split like the CSV
  column), `first_seen`, `last_seen`, `ref`.

A file that cannot be read as a table at all raises `InputError`.
"""

from __future__ import annotations

import codecs
import csv
import json
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, TextIO, overload

from node.errors import InputError
from node.identifiers import KindRegistry
from node.ingest.pipeline import (
    OPTIONAL_FIELDS,
    BadRow,
    ImportResult,
    Raw,
    RowBuilder,
    load,
    looks_like_data,
    pick_column,
    type_name,
)
from node.store import Store

JSONL_SUFFIXES = frozenset({".jsonl", ".ndjson"})
CSV_SUFFIXES = frozenset({".csv"})

_UTF8 = frozenset({"utf-8", "utf-8-sig"})
_BOM = codecs.BOM_UTF8


def import_text(
    store: Store,
    name: str,
    kind: str,
    registry: KindRegistry,
    column: str | None,
    builder: RowBuilder,
    skip_invalid: bool,
    encoding: str,
    progress: Callable[[int], None] | None,
) -> ImportResult:
    """Import one CSV or JSON Lines file; problems are positioned by line number."""
    encoding = _check_encoding(encoding)
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
            return load(store, name, kind, rows, _by_line, builder, skip_invalid, progress)
        except UnicodeDecodeError:
            raise _decoding_error(name, encoding) from None


def _by_line(line: int, field: int | None) -> int:
    return line


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


def _csv_rows(
    lines: Iterable[str], name: str, kind: str, column: str | None, registry: KindRegistry
) -> Iterator[tuple[int, Raw | BadRow]]:
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
        value_key = pick_column(f"{name}, line {header_line}", kind, column, header)
        at = keys.index(value_key)
        if column is None and value_key != kind and looks_like_data(registry, kind, header[at]):
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
                        BadRow(
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


def _jsonl_rows(
    lines: Iterable[str], name: str, kind: str, column: str | None
) -> Iterator[tuple[int, Raw | BadRow]]:
    value_key: str | None = None
    for line, raw in enumerate(lines, start=1):
        text = raw.strip()
        if not text:
            continue
        try:
            obj: Any = json.loads(text)
        except json.JSONDecodeError as exc:
            yield line, BadRow(f"not valid JSON: {exc.msg} (column {exc.colno})", "not valid JSON")
            continue
        if not isinstance(obj, dict):
            raise InputError(
                f"{name}, line {line}: each line must be a JSON object, found {type_name(obj)}"
            )
        fields = {str(k).strip().lower(): v for k, v in obj.items()}
        if value_key is None:
            value_key = pick_column(f"{name}, line {line}", kind, column, [str(k) for k in obj])
        if value_key not in fields:
            yield line, BadRow(f"no {value_key!r} key", f"no {value_key!r} key")
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
