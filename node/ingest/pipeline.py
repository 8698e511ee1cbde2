"""The part of an import every source shares: validating rows and writing them.

A source yields `(position, row)` pairs, where the row is a `Raw` tuple or a `BadRow`
the source already refused, and says how to name a position in a report (`Locate`).
`load` validates each row with `RowBuilder` and upserts in batches inside one store
transaction, so the all-or-nothing guarantee is the same for files and queries: any bad
row rolls the whole import back and raises `ImportRejected`, unless `skip_invalid`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from node.errors import ImportRejected, InputError, InvalidIdentifier
from node.identifiers import KindRegistry
from node.store import RecordIn, Store, check_label

BATCH_ROWS = 5_000
MAX_PROBLEMS = 20
OPTIONAL_FIELDS = ("labels", "first_seen", "last_seen", "ref")

# A row before validation: the value, then the optional fields in OPTIONAL_FIELDS order
# (None if absent). Sources hand over str, int, list[str] (labels) or None.
Raw = tuple[object, object, object, object, object]
VALUE, LABELS, FIRST_SEEN, LAST_SEEN, REF = range(5)

# How a source names a row's position (its line, sheet row or query row) and, when known,
# the field at fault (an index into Raw), for ImportRejected.problems.
Locate = Callable[[int, int | None], int | str]

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
    """Data rows in the source (blank lines and the header not counted)."""
    inserted: int
    """Rows that added a record (new, or one removed earlier)."""
    merged: int
    """Rows whose record was already present, whether or not they changed it."""
    skipped: int
    """Bad rows left out because of `skip_invalid`."""
    skipped_reasons: Counter[str] = field(default_factory=Counter)
    """How many rows were skipped per kind of reason (`id_card: check digit ...`)."""


class BadRow(Exception):
    """A row that cannot be imported; `reason` is for the operator, `group` for tallies,
    `field` the index in Raw of the field at fault (None for the row as a whole)."""

    def __init__(self, reason: str, group: str, field: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.group = group
        self.field = field


def check_labels(labels: Iterable[str]) -> tuple[str, ...]:
    """The operator's --label values, checked and sorted."""
    try:
        return tuple(sorted({check_label(label) for label in labels}))
    except InputError as exc:
        raise InputError(f"--label: {exc}") from exc


def pick_column(where: str, kind: str, column: str | None, found: list[str]) -> str:
    """The field holding the value: `column`, else the kind, else the only non-optional one.
    Returns it lower-cased and stripped; `where` names the header for messages."""
    keys = [f.strip().lower() for f in found]
    listing = ", ".join(repr(f) for f in found if f.strip()) or "none"
    if column is not None:
        if column.strip().lower() in keys:
            return column.strip().lower()
        raise InputError(f"{where}: no column {column!r}; columns found: {listing}")
    if kind in keys:
        return kind
    candidates = [k for k in keys if k and k not in OPTIONAL_FIELDS]
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise InputError(f"{where}: no column named {kind!r}; columns found: {listing}")
    raise InputError(
        f"{where}: several columns ({listing}) and none is named {kind!r}; "
        "say which holds the values with --column"
    )


def looks_like_data(registry: KindRegistry, kind: str, cell: str) -> bool:
    """Whether a header cell is really a value; undecidable for kinds that accept anything."""
    return _valid(registry, kind, cell) and not _valid(registry, kind, "column")


def _valid(registry: KindRegistry, kind: str, text: str) -> bool:
    try:
        registry.normalize(kind, text)
    except InputError:
        return False
    return True


def load(
    store: Store,
    name: str,
    kind: str,
    rows: Iterator[tuple[int, Raw | BadRow]],
    locate: Locate,
    builder: RowBuilder,
    skip_invalid: bool,
    progress: Callable[[int], None] | None,
) -> ImportResult:
    """Validate and write every row of one source in one transaction (see the docstring)."""
    problems: list[tuple[int | str, str]] = []
    reasons: Counter[str] = Counter()
    batch: list[RecordIn] = []
    read = inserted = merged = 0
    build = builder.build
    with store.transaction():
        for position, raw in rows:
            read += 1
            try:
                if isinstance(raw, BadRow):
                    raise raw
                batch.append(build(raw))
            except BadRow as bad:
                if len(problems) < MAX_PROBLEMS:
                    problems.append((locate(position, bad.field), bad.reason))
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


class RowBuilder:
    """Turns the fields of one row into a RecordIn, or raises BadRow."""

    def __init__(self, registry: KindRegistry, kind: str, labels: tuple[str, ...]):
        self._normalize = registry.normalize
        self._kind = kind
        self._labels = labels
        self._today = dt.date.today().isoformat()
        self._dates: dict[str, str] = {}
        self._label_cells: dict[str, tuple[str, ...]] = {}

    def build(self, raw: Raw) -> RecordIn:
        value, labels, first, last, ref = raw
        kind = self._kind
        if type(value) is not str:
            if isinstance(value, bool) or not isinstance(value, int | None):
                raise BadRow(
                    f"{kind}: expected a string, found {type_name(value)}",
                    f"{kind}: not a string",
                    VALUE,
                )
            value = "" if value is None else str(value)
        if not value.strip():
            raise BadRow(f"{kind}: empty value", f"{kind}: empty value", VALUE)
        try:
            canonical = self._normalize(kind, value)
        except InvalidIdentifier as exc:
            raise BadRow(str(exc), f"{exc.kind}: {_generalise(exc.reason)}", VALUE) from None
        if labels is None and first is None and last is None and ref is None:
            return RecordIn(canonical, self._labels, self._today, self._today)
        first_seen = self._date(FIRST_SEEN, first)
        last_seen = self._date(LAST_SEEN, last)
        if last_seen is None:
            last_seen = max(self._today, first_seen) if first_seen else self._today
        if first_seen is None:
            first_seen = last_seen
        if first_seen > last_seen:
            raise BadRow(
                f"first_seen {first_seen} is after last_seen {last_seen}",
                "first_seen after last_seen",
                FIRST_SEEN,
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
        raise BadRow(
            f"labels: expected a list of strings or a string, found {type_name(raw)}",
            "labels: not a list of strings",
            LABELS,
        )

    def _union(self, parts: list[str]) -> tuple[str, ...]:
        found = set(self._labels)
        for part in parts:
            if part.strip():
                try:
                    found.add(check_label(part))
                except InputError as exc:
                    raise BadRow(f"labels: {exc}", "labels: control character", LABELS) from None
        return tuple(sorted(found))

    def _date(self, index: int, raw: object) -> str | None:
        if raw is None:
            return None
        name = OPTIONAL_FIELDS[index - 1]
        if isinstance(raw, int) and not isinstance(raw, bool):
            raw = str(raw)
        if not isinstance(raw, str):
            raise BadRow(
                f"{name}: expected a date, found {type_name(raw)}", f"{name}: not a date", index
            )
        text = raw.strip()
        if not text:
            return None
        cached = self._dates.get(text)
        if cached is None:
            cached = _parse_date(text)
            if cached is None:
                raise BadRow(
                    f"{name}: {text!r} is not a date (use YYYY-MM-DD)",
                    f"{name}: not a date",
                    index,
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
        raise BadRow(f"ref: expected a string, found {type_name(raw)}", "ref: not a string", REF)
    text = str(raw).strip()
    return text or None


def _generalise(reason: str) -> str:
    """The reason without its particulars, so that rows failing alike are counted together:
    'check digit is 3, expected X' -> 'check digit is N ...'."""
    general = _NUMBER.sub("N", _QUOTED.sub("?", reason))
    cut = _CLAUSE.search(general)
    return general if cut is None else general[: cut.start()] + " ..."


def type_name(value: object) -> str:
    """A value's type in the words of a JSON document, for row errors."""
    names = {
        dict: "an object",
        list: "a list",
        bool: "a boolean",
        float: "a number",
        int: "a number",
    }
    return "null" if value is None else names.get(type(value), type(value).__name__)
