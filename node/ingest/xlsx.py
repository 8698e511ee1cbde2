"""Excel workbooks (.xlsx, .xlsm) as a row source, streamed so memory stays flat.

The header is the first non-empty row of the sheet (the first sheet unless named); columns
are picked as in a CSV file. Excel's own ways of spoiling identifiers are made explicit:

* A number cell holding a whole number becomes its digits (13800138000.0 -> "13800138000").
* A number of more than 15 digits is refused: Excel keeps 15 significant digits, so a
  bank card or resident ID number typed into a number cell has already lost its last
  digits (and an ID its X check character); only re-entering it as text can recover it.
* Date cells in `first_seen` / `last_seen` become ISO dates; a date elsewhere is refused.
* A formula cell counts by its saved result; one without a saved result (written by a
  program and never opened in Excel) is refused rather than read as empty.
* A blank or merged cell inside the header row, or a value in a column without a header,
  refuses the sheet rather than being guessed at.

Problems are positioned as `sheet 'Sheet1' row 12, column 'phone' (B12)`.
"""

from __future__ import annotations

import datetime as dt
import os
import warnings
import zipfile
import zlib
from collections.abc import Callable, Generator, Iterator
from typing import Any

import openpyxl
from openpyxl.utils import get_column_letter
from openpyxl.workbook.workbook import Workbook

from node.errors import InputError
from node.identifiers import KindRegistry
from node.ingest.pipeline import (
    FIRST_SEEN,
    LABELS,
    LAST_SEEN,
    OPTIONAL_FIELDS,
    BadRow,
    ImportResult,
    Raw,
    RowBuilder,
    load,
    looks_like_data,
    pick_column,
)
from node.store import Store

XLSX_SUFFIXES = frozenset({".xlsx", ".xlsm"})
OLD_EXCEL_SUFFIXES = frozenset({".xls"})

EXCEL_DIGITS = 15
"""Excel stores numbers as doubles and shows and saves at most 15 significant digits."""

_OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_OLD_FORMAT = "old binary Excel format (or a password-protected workbook); save as .xlsx"
# What a damaged workbook can raise while its XML is being streamed.
_DAMAGED = (zipfile.BadZipFile, zlib.error, EOFError, SyntaxError, KeyError)


def import_xlsx(
    store: Store,
    name: str,
    kind: str,
    registry: KindRegistry,
    column: str | None,
    sheet: str | None,
    builder: RowBuilder,
    skip_invalid: bool,
    progress: Callable[[int], None] | None,
) -> ImportResult:
    """Import one sheet of a workbook; see the module docstring."""
    with warnings.catch_warnings():
        # openpyxl warns about styles, validations and extensions it does not keep; they do
        # not touch cell values, and pytest turns warnings into errors.
        warnings.filterwarnings("ignore", category=UserWarning, module=r"openpyxl\.")
        book = _open(name, data_only=False)
        try:
            sheet_rows = _SheetRows(name, _pick_sheet(name, book, sheet), kind, registry)
            rows = sheet_rows.rows(column)
            try:
                return load(
                    store, name, kind, rows, sheet_rows.locate, builder, skip_invalid, progress
                )
            finally:
                rows.close()  # closes openpyxl's reader of the sheet, whatever happened
        finally:
            book.close()


def refuse_old_format(name: str) -> None:
    """An .xls file cannot be read; say how to convert it."""
    raise InputError(f"{name}: {_OLD_FORMAT}")


def _open(name: str, data_only: bool) -> Workbook:
    if not os.path.exists(name):
        raise InputError(f"{name}: no such file")
    if os.path.isdir(name):
        raise InputError(f"{name}: is a directory, not a file")
    try:
        with open(name, "rb") as fh:
            magic = fh.read(len(_OLE2_MAGIC))
    except OSError as exc:
        raise InputError(f"{name}: cannot read: {exc.strerror}") from None
    if magic == _OLE2_MAGIC:
        raise InputError(f"{name}: {_OLD_FORMAT}")
    try:
        return openpyxl.load_workbook(name, read_only=True, data_only=data_only)
    except Exception as exc:  # a damaged file can fail anywhere inside openpyxl
        raise InputError(
            f"{name}: not a readable Excel workbook ({type(exc).__name__}: {exc}); "
            "open it in Excel and save it as .xlsx"
        ) from None


def _pick_sheet(name: str, book: Workbook, sheet: str | None) -> Any:
    """The worksheet to read (a read-only one: typeshed's types do not fit it, hence Any)."""
    sheets: list[Any] = book.worksheets
    if not sheets:
        raise InputError(f"{name}: the workbook has no worksheet")
    if sheet is None:
        chosen = sheets[0]
    else:
        wanted = sheet.strip().casefold()  # Excel's sheet names are unique ignoring case
        found = [ws for ws in sheets if ws.title.strip().casefold() == wanted]
        if not found:
            listing = ", ".join(repr(ws.title) for ws in sheets)
            raise InputError(f"{name}: no sheet {sheet!r}; sheets: {listing}")
        chosen = found[0]
    # The stored dimension can be stale (files written by other programs); trusting it
    # would silently drop the rows past it.
    chosen.reset_dimensions()
    return chosen


class _SheetRows:
    """The data rows of one sheet as (row number, Raw | BadRow)."""

    def __init__(self, name: str, ws: Any, kind: str, registry: KindRegistry) -> None:
        self._name = name
        self._ws = ws
        self._kind = kind
        self._registry = registry
        self._title = ws.title
        self._columns: list[int | None] = [None] * 5  # the 0-based column of each Raw field
        self._headers: dict[int, str] = {}
        self._cached = _CachedResults(name, ws.title)

    def locate(self, row: int, field: int | None) -> str:
        where = f"sheet {self._title!r} row {row}"
        at = None if field is None else self._columns[field]
        if at is None:
            return where
        return f"{where}, column {self._headers[at]!r} ({get_column_letter(at + 1)}{row})"

    def rows(self, column: str | None) -> Generator[tuple[int, Raw | BadRow]]:
        sheet = self._ws.iter_rows()
        try:
            yield from self._rows(sheet, column)
        except _DAMAGED as exc:
            raise InputError(
                f"{self._name}: sheet {self._title!r} is damaged ({type(exc).__name__}: {exc})"
            ) from None
        finally:
            sheet.close()
            self._cached.close()

    def _rows(
        self, sheet: Iterator[tuple[Any, ...]], column: str | None
    ) -> Iterator[tuple[int, Raw | BadRow]]:
        cells = enumerate(sheet, start=1)
        for number, row in cells:
            if any(not _blank(c.value) for c in row):
                first, last = self._header(number, row, column)
                break
        else:
            raise InputError(f"{self._name}: sheet {self._title!r} has no header row: it is empty")
        for number, row in cells:
            if all(_blank(c.value) for c in row):
                continue
            stray = next(
                (i for i, c in enumerate(row) if not first <= i <= last and not _blank(c.value)),
                None,
            )
            if stray is not None:
                letter = get_column_letter(stray + 1)
                raise InputError(
                    f"{self._name}: sheet {self._title!r} row {number}: cell {letter}{number} "
                    f"has a value but column {letter} has no header (a blank or merged header "
                    "cell); name the column in the header row"
                )
            try:
                raw = tuple(
                    None if at is None or at >= len(row) else self._cell(row[at], number, field)
                    for field, at in enumerate(self._columns)
                )
            except BadRow as bad:
                yield number, bad
                continue
            yield number, raw  # type: ignore[misc]  # five fields, as self._columns

    def _header(self, number: int, row: tuple[Any, ...], column: str | None) -> tuple[int, int]:
        """Learn the columns from the header row; returns its first and last column."""
        where = f"{self._name}: sheet {self._title!r} row {number}"
        filled = [i for i, c in enumerate(row) if not _blank(c.value)]
        first, last = filled[0], filled[-1]
        names: list[str] = []
        for i in range(first, last + 1):
            cell = row[i]
            letter = get_column_letter(i + 1)
            if _blank(cell.value):
                raise InputError(
                    f"{where}: column {letter} has no header (a blank or merged header cell); "
                    "name every column between the first and the last"
                )
            if cell.data_type == "f":
                raise InputError(f"{where}: header cell {letter}{number} is a formula")
            names.append(_header_text(cell.value))
            self._headers[i] = names[-1]
        keys = [n.strip().lower() for n in names]
        duplicates = sorted({k for k in keys if keys.count(k) > 1})
        if duplicates:
            raise InputError(f"{where}: duplicate column(s) {', '.join(duplicates)}")
        value_key = pick_column(where, self._kind, column, names)
        at = keys.index(value_key)
        if (
            column is None
            and value_key != self._kind
            and looks_like_data(self._registry, self._kind, names[at])
        ):
            raise InputError(
                f"{where}: no header: the first row holds a {self._kind} ({names[at].strip()!r});"
                f" add a first row naming the columns, e.g. {self._kind!r}"
            )
        self._columns = [first + at]
        self._columns += [first + keys.index(f) if f in keys else None for f in OPTIONAL_FIELDS]
        return first, last

    def _cell(self, cell: Any, row: int, field: int) -> object:
        """A cell's value as the pipeline takes it (str, int, list or None), or BadRow."""
        value = cell.value
        if cell.data_type == "f":
            value = self._cached.value(row, cell.column)
            if value is None:
                raise BadRow(
                    "the cell holds a formula with no saved result (the file was written by a "
                    "program and never saved by Excel); open and save it in Excel, or paste "
                    "the values",
                    "formula without a saved result",
                    field,
                )
        elif cell.data_type == "e":
            raise BadRow(f"the cell holds the error {value}", "error cell", field)
        return _convert(value, field, self._kind)


class _CachedResults:
    """Saved formula results, read by a second, values-only pass over the sheet.

    openpyxl gives either a formula or its saved result, not both; the pass starts at the
    first formula met, so a workbook without formulas (most) is read once.
    """

    def __init__(self, name: str, title: str) -> None:
        self._name = name
        self._title = title
        self._book: Workbook | None = None
        self._rows: Generator[tuple[object, ...]] | None = None
        self._at = 0
        self._row: tuple[object, ...] = ()

    def value(self, row: int, column: int) -> object:
        """The saved value of the cell at 1-based `row`, `column`; rows are asked in order."""
        if self._rows is None:
            self._book = _open(self._name, data_only=True)
            ws: Any = self._book[self._title]
            ws.reset_dimensions()
            self._rows = ws.iter_rows(values_only=True)
        while self._at < row:
            self._row = next(self._rows, ())
            self._at += 1
        return self._row[column - 1] if column <= len(self._row) else None

    def close(self) -> None:
        if self._rows is not None:
            self._rows.close()
        if self._book is not None:
            self._book.close()


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _header_text(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _convert(value: object, field: int, kind: str) -> object:
    if value is None or isinstance(value, str | bool):
        return value  # the pipeline reports a boolean where it does not belong
    if isinstance(value, dt.datetime | dt.date):
        if field in (FIRST_SEEN, LAST_SEEN):
            return (value.date() if isinstance(value, dt.datetime) else value).isoformat()
        day = value.date() if isinstance(value, dt.datetime) else value
        raise BadRow(
            f"the cell holds a date ({day.isoformat()}), not a {_what(field, kind)}",
            "date cell",
            field,
        )
    if isinstance(value, int | float):
        return _number(value, field, kind)
    raise BadRow(
        f"the cell holds a {type(value).__name__}, not a {_what(field, kind)}",
        "time or duration cell",
        field,
    )


def _number(value: float, field: int, kind: str) -> object:
    """A whole number as its digits (an int for dates: YYYYMMDD); anything else refused."""
    if isinstance(value, float) and not value.is_integer():
        raise BadRow(
            f"the cell holds the number {value}, not a {_what(field, kind)}",
            "fractional number",
            field,
        )
    whole = int(value)
    if field in (FIRST_SEEN, LAST_SEEN):
        return whole
    if abs(whole) >= 10**EXCEL_DIGITS:
        raise BadRow(
            f"{_what(field, kind)}: {value!r} is stored as a number, which Excel keeps to "
            f"{EXCEL_DIGITS} digits; format the column as text and re-enter",
            f"number of more than {EXCEL_DIGITS} digits",
            field,
        )
    return str(whole)


def _what(field: int, kind: str) -> str:
    if field == LABELS:
        return "label"
    return kind if field == 0 else OPTIONAL_FIELDS[field - 1]
