"""Importing an operator's clue file, picking the reader by extension."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path

from node.errors import InputError
from node.identifiers import KindRegistry
from node.ingest.pipeline import ImportResult, RowBuilder, check_labels
from node.ingest.text import import_text
from node.ingest.xlsx import OLD_EXCEL_SUFFIXES, XLSX_SUFFIXES, import_xlsx, refuse_old_format
from node.store import Store

DEFAULT_ENCODING = "utf-8"


def import_file(
    store: Store,
    path: str | os.PathLike[str],
    kind: str,
    registry: KindRegistry,
    column: str | None = None,
    labels: Iterable[str] = (),
    skip_invalid: bool = False,
    encoding: str | None = None,
    progress: Callable[[int], None] | None = None,
    sheet: str | None = None,
) -> ImportResult:
    """Import one CSV, JSON Lines or Excel file of `kind` into `store`, all or nothing.

    `encoding` (default UTF-8) is for text files only and `sheet` (default the first) for
    workbooks only; giving either for the other kind of file is an error rather than
    silently ignored.
    """
    name = os.fspath(path)
    kind = registry.check(kind)
    builder = RowBuilder(registry, kind, check_labels(labels))
    suffix = Path(name).suffix.lower()
    if suffix in OLD_EXCEL_SUFFIXES:
        refuse_old_format(name)
    if suffix in XLSX_SUFFIXES:
        if encoding is not None:
            raise InputError(f"{name}: --encoding is for CSV and JSON Lines, not Excel workbooks")
        return import_xlsx(
            store, name, kind, registry, column, sheet, builder, skip_invalid, progress
        )
    if sheet is not None:
        raise InputError(f"{name}: --sheet is for Excel workbooks (.xlsx), not text files")
    return import_text(
        store,
        name,
        kind,
        registry,
        column,
        builder,
        skip_invalid,
        encoding or DEFAULT_ENCODING,
        progress,
    )
