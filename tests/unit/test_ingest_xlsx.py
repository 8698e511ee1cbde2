"""Importing Excel workbooks: Excel's ways of spoiling identifiers, sheet and header
handling, positions in reports, all-or-nothing. Workbooks are made here with openpyxl;
what openpyxl cannot write (saved formula results, stale dimensions) is patched into the
sheet's XML the way Excel would have written it."""

from __future__ import annotations

import datetime as dt
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner, Result

from node.cli import main
from node.errors import ImportRejected, InputError
from node.identifiers import KindRegistry
from node.ingest import ImportResult, import_file
from node.store import Record, Store

REGISTRY = KindRegistry(opaque=frozenset({"case_id"}))
TODAY = dt.date.today().isoformat()
Cell = object


def canon(raw: str, kind: str = "phone") -> str:
    return REGISTRY.normalize(kind, raw)


def id_card(body: str) -> str:
    weights = [2 ** (17 - i) % 11 for i in range(17)]
    total = sum(int(d) * w for d, w in zip(body, weights, strict=True))
    return body + "10X98765432"[total % 11]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "aif.db") as s:
        yield s


def workbook(path: Path, *sheets: tuple[str, list[list[Cell]]]) -> Path:
    """A workbook with the named sheets, each given as rows of cells."""
    book = openpyxl.Workbook()
    book.remove(book.active)  # type: ignore[arg-type]
    for title, rows in sheets:
        ws = book.create_sheet(title)
        for row in rows:
            ws.append(row)
    book.save(path)
    return path


def patch_sheet(path: Path, edit: dict[str, str], sheet: int = 1) -> None:
    """Rewrite parts of one sheet's XML in place (regex -> replacement)."""
    member = f"xl/worksheets/sheet{sheet}.xml"
    with zipfile.ZipFile(path) as zin:
        parts = {name: zin.read(name) for name in zin.namelist()}
    xml = parts[member].decode()
    for pattern, replacement in edit.items():
        xml, n = re.subn(pattern, replacement, xml)
        assert n, pattern
    parts[member] = xml.encode()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zout:
        for name, data in parts.items():
            zout.writestr(name, data)


def records(store: Store, kind: str = "phone") -> dict[str, Record]:
    return {r.value: r for page in store.records.iter_changed(kind, 0) for r in page}


def rejected(store: Store, path: Path, kind: str = "phone", **kwargs: object) -> ImportRejected:
    with pytest.raises(ImportRejected) as info:
        import_file(store, path, kind, REGISTRY, **kwargs)  # type: ignore[arg-type]
    assert store.records.counts() == [], "a rejected import wrote nothing"
    return info.value


# --- values ------------------------------------------------------------------------------


def test_text_and_number_cells_with_every_optional_column(store: Store, tmp_path: Path) -> None:
    path = workbook(
        tmp_path / "clues.xlsx",
        (
            "线索",
            [
                [],
                [None, "手机号", "Labels", "first_seen", "LAST_SEEN", "ref"],
                [None, "+86 138-0013-8000", "mule;诈骗", dt.date(2024, 1, 5), None, 1001],
                [None, 13912345678, "mule", dt.datetime(2024, 2, 1, 9, 30), "2024/3/1", "C-2"],
                [],
                [None, 13700000000.0, None, 20240105, None, None],
                [None, None, None, None, None, None],
            ],
        ),
    )
    result = import_file(store, path, "phone", REGISTRY, column="手机号", labels=("police",))
    assert result == ImportResult(str(path), "phone", 3, 3, 0, 0)
    got = records(store)
    a, b, c = got[canon("13800138000")], got[canon("13912345678")], got[canon("13700000000")]
    assert a.labels == ("mule", "police", "诈骗")
    assert (a.first_seen, a.last_seen, a.ref) == ("2024-01-05", TODAY, "1001")
    assert (b.first_seen, b.last_seen, b.ref) == ("2024-02-01", "2024-03-01", "C-2")
    assert (c.first_seen, c.labels) == ("2024-01-05", ("police",))


def test_numbers_beyond_15_digits_are_refused(store: Store, tmp_path: Path) -> None:
    resident = id_card("11010519900101123")
    # What Excel keeps of a card number typed into a number cell, and of an ID number
    # (the X check character cannot be a number at all).
    path = workbook(
        tmp_path / "cards.xlsx",
        (
            "Sheet1",
            [
                ["name", "card"],
                ["a", 6.22202123456789e18],
                ["b", int(resident[:-1] + "0")],
                ["c", 622202123456789],  # 15 digits: exact, but fails Luhn as a card
            ],
        ),
    )
    problems = rejected(store, path, "bank_card", column="card").problems
    message = "is stored as a number, which Excel keeps to 15 digits; format the column as text"
    assert [p for p, _ in problems] == [
        "sheet 'Sheet1' row 2, column 'card' (B2)",
        "sheet 'Sheet1' row 3, column 'card' (B3)",
        "sheet 'Sheet1' row 4, column 'card' (B4)",
    ]
    assert message in problems[0][1]
    assert message in problems[1][1]
    assert problems[2][1].startswith("bank_card: ")  # an ordinary validation error


def test_date_fraction_and_error_cells_in_the_value_column(store: Store, tmp_path: Path) -> None:
    path = workbook(
        tmp_path / "x.xlsx",
        (
            "Sheet1",
            [
                ["phone", "first_seen"],
                [dt.date(2024, 1, 5), None],
                [1380013800.5, None],
                ["#N/A", None],
                [True, None],
                ["13800138000", dt.time(12, 0)],
            ],
        ),
    )
    problems = dict(rejected(store, path).problems)
    where = "sheet 'Sheet1' row {}, column '{}' ({}{})"
    assert problems == {
        where.format(2, "phone", "A", 2): "the cell holds a date (2024-01-05), not a phone",
        where.format(3, "phone", "A", 3): "the cell holds the number 1380013800.5, not a phone",
        where.format(4, "phone", "A", 4): "the cell holds the error #N/A",
        where.format(5, "phone", "A", 5): "phone: expected a string, found a boolean",
        where.format(6, "first_seen", "B", 6): "the cell holds a time, not a first_seen",
    }


def test_formulas_count_by_their_saved_result(store: Store, tmp_path: Path) -> None:
    path = workbook(
        tmp_path / "f.xlsx",
        ("Sheet1", [["phone", "labels"], ["13800138000", '="mule"'], ['="139"&"12345678"', None]]),
    )
    # As Excel saves them: the formula and, beside it, its result.
    patch_sheet(
        path,
        {
            r'<c r="B2"><f>"mule"</f><v\s*/>': '<c r="B2" t="str"><f>"mule"</f><v>mule</v>',
            r'<c r="A3"><f>(.*?)</f><v\s*/>': r'<c r="A3" t="str"><f>\1</f><v>13912345678</v>',
        },
    )
    result = import_file(store, path, "phone", REGISTRY)
    assert (result.inserted, result.skipped) == (2, 0)
    assert records(store)[canon("13800138000")].labels == ("mule",)
    assert canon("13912345678") in records(store)


def test_a_formula_without_a_saved_result_is_refused(store: Store, tmp_path: Path) -> None:
    path = workbook(
        tmp_path / "f.xlsx",
        ("Sheet1", [["phone", "labels"], ["13800138000", None], ["13912345678", '="mule"']]),
    )
    (problem,) = rejected(store, path).problems
    assert problem[0] == "sheet 'Sheet1' row 3, column 'labels' (B3)"
    assert problem[1].startswith("the cell holds a formula with no saved result")


def test_a_stale_dimension_does_not_drop_rows(store: Store, tmp_path: Path) -> None:
    rows: list[list[Cell]] = [["phone"], *([f"138{i:08d}"] for i in range(50))]
    path = workbook(tmp_path / "dim.xlsx", ("Sheet1", rows))
    patch_sheet(path, {r'<dimension ref="[^"]*"\s*/>': '<dimension ref="A1:A2"/>'})
    assert import_file(store, path, "phone", REGISTRY).inserted == 50


# --- sheets and headers --------------------------------------------------------------------


def test_sheet_choice(store: Store, tmp_path: Path) -> None:
    path = workbook(
        tmp_path / "two.xlsx",
        ("Summary", [["note", "author"], ["see the next sheet", "ops"]]),
        ("Phones", [["phone"], ["13800138000"]]),
    )
    with pytest.raises(InputError, match=r"two\.xlsx: sheet 'Summary' row 1: several columns"):
        import_file(store, path, "phone", REGISTRY)
    with pytest.raises(
        InputError, match=r"two\.xlsx: no sheet 'Nope'; sheets: 'Summary', 'Phones'"
    ):
        import_file(store, path, "phone", REGISTRY, sheet="Nope")
    assert import_file(store, path, "phone", REGISTRY, sheet=" phones").inserted == 1


@pytest.mark.parametrize(
    ("rows", "merge", "message"),
    [
        ([["phone", None, "ref"], ["13800138000", "x", "1"]], None, r"column B has no header"),
        (
            [["clues", None], ["13800138000", "x"]],
            "A1:B1",
            r"column B has no header \(a blank or merged",
        ),
        ([["phone", "Phone"], ["1", "2"]], None, r"duplicate column\(s\) phone"),
        (
            [["13800138000"], ["13912345678"]],
            None,
            r"row 1: no header: the first row holds a phone",
        ),
        ([[None], []], None, r"sheet 'Sheet1' has no header row: it is empty"),
        ([["phone"], ["1"]], None, r"no column 'mobile'"),
    ],
)
def test_header_problems(
    store: Store, tmp_path: Path, rows: list[list[Cell]], merge: str | None, message: str
) -> None:
    book = openpyxl.Workbook()
    ws = book.active
    assert ws is not None
    ws.title = "Sheet1"
    for row in rows:
        ws.append(row)
    if merge:
        ws.merge_cells(merge)
    path = tmp_path / "h.xlsx"
    book.save(path)
    column = "mobile" if "mobile" in message else None
    with pytest.raises(InputError, match=message) as info:
        import_file(store, path, "phone", REGISTRY, column=column)
    assert not isinstance(info.value, ImportRejected)
    assert str(info.value).startswith(f"{path}")


def test_a_value_outside_the_header_refuses_the_sheet(store: Store, tmp_path: Path) -> None:
    path = workbook(
        tmp_path / "w.xlsx", ("Sheet1", [["phone"], ["13800138000"], ["13912345678", "note"]])
    )
    with pytest.raises(InputError, match=r"row 3: cell B3 has a value but column B has no header"):
        import_file(store, path, "phone", REGISTRY)
    assert store.records.counts() == []


# --- files that are not workbooks ----------------------------------------------------------


def test_files_that_are_not_workbooks(store: Store, tmp_path: Path) -> None:
    old = tmp_path / "old.xls"
    old.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 512)
    renamed = tmp_path / "renamed.xlsx"
    renamed.write_bytes(old.read_bytes())
    text = tmp_path / "text.xlsx"
    text.write_text("phone\n13800138000\n")
    truncated = tmp_path / "truncated.xlsx"
    workbook(truncated, ("Sheet1", [["phone"], *([f"138{i:08d}"] for i in range(2000))]))
    truncated.write_bytes(truncated.read_bytes()[:3000])
    cases = {
        old: r"old\.xls: old binary Excel format \(or a password-protected workbook\); save as",
        renamed: r"renamed\.xlsx: old binary Excel format",
        text: r"text\.xlsx: not a readable Excel workbook \(.*\); open it in Excel",
        truncated: r"truncated\.xlsx: ",
        tmp_path / "missing.xlsx": r"missing\.xlsx: no such file",
    }
    for path, message in cases.items():
        with pytest.raises(InputError, match=message):
            import_file(store, path, "phone", REGISTRY)
    assert store.records.counts() == []


def test_options_for_the_other_kind_of_file(store: Store, tmp_path: Path) -> None:
    path = workbook(tmp_path / "a.xlsx", ("Sheet1", [["phone"], ["13800138000"]]))
    with pytest.raises(InputError, match=r"--encoding is for CSV and JSON Lines"):
        import_file(store, path, "phone", REGISTRY, encoding="gbk")
    csv = tmp_path / "a.csv"
    csv.write_text("phone\n13800138000\n")
    with pytest.raises(InputError, match=r"--sheet is for Excel workbooks"):
        import_file(store, csv, "phone", REGISTRY, sheet="Sheet1")


# --- all or nothing --------------------------------------------------------------------------


def test_bad_rows_reject_the_whole_workbook(store: Store, tmp_path: Path) -> None:
    rows: list[list[Cell]] = [["phone", "ref"]]
    rows += [[f"138{i:08d}", i] for i in range(12_000)]
    rows[11_001][0] = "1380013"
    path = workbook(tmp_path / "big.xlsx", ("Sheet1", rows))
    problem = rejected(store, path).problems
    assert [p for p, _ in problem] == ["sheet 'Sheet1' row 11002, column 'phone' (A11002)"]
    result = import_file(store, path, "phone", REGISTRY, skip_invalid=True)
    assert (result.rows_read, result.inserted, result.skipped) == (12_000, 11_999, 1)


# --- the command line ------------------------------------------------------------------------


def run(data_dir: Path, *args: str) -> Result:
    result = CliRunner().invoke(main, ["--data-dir", str(data_dir), *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


def test_cli_import_of_a_workbook(tmp_path: Path) -> None:
    node = tmp_path / "node"
    assert run(node, "init", "--name", "bank", "--listen", "127.0.0.1:7443").exit_code == 0
    path = workbook(
        tmp_path / "clues.xlsx",
        ("Sheet1", [["手机号", "备注"], [13800138000, "x"], ["12345", "y"]]),
    )
    bad = run(node, "import", str(path), "--kind", "phone", "--column", "手机号")
    assert bad.exit_code == 2
    assert f"{path}: sheet 'Sheet1' row 3, column '手机号' (A3): phone: " in bad.output
    assert "nothing was imported" in bad.output
    good = run(node, "import", str(path), "--kind", "phone", "--column", "手机号", "--skip-invalid")
    assert good.exit_code == 0, good.output
    assert f"{path}: 2 row(s) read, 1 new" in good.output
    old = tmp_path / "old.xls"
    old.write_bytes(b"")
    refused = run(node, "import", str(old), "--kind", "phone")
    assert refused.exit_code == 2
    assert "old binary Excel format (or a password-protected workbook); save as .xlsx" in (
        refused.output
    )
