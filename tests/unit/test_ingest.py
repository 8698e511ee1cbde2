"""Importing CSV and JSON Lines files: formats, merging, all-or-nothing, error reports."""

from __future__ import annotations

import datetime as dt
import json
import random
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.errors import ImportRejected, InputError
from node.identifiers import KindRegistry
from node.ingest import BATCH_ROWS, ImportResult, import_file
from node.store import Record, Store

REGISTRY = KindRegistry(opaque=frozenset({"case_id"}))
TODAY = dt.date.today().isoformat()

# The same two mobile numbers in the spellings real exports use.
A_SPELLINGS = ("13800138000", "+86 138-0013-8000", "138 0013 8000", "0086 13800138000")
B_SPELLINGS = ("13912345678", "+86 139-1234-5678")


def canon(raw: str, kind: str = "phone") -> str:
    return REGISTRY.normalize(kind, raw)


A, B = canon(A_SPELLINGS[0]), canon(B_SPELLINGS[0])


def id_card(body: str) -> str:
    """A resident ID number with its GB 11643 check character, computed here."""
    weights = [2 ** (17 - i) % 11 for i in range(17)]
    total = sum(int(d) * w for d, w in zip(body, weights, strict=True))
    return body + "10X98765432"[total % 11]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "aif.db") as s:
        yield s


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def records(store: Store, kind: str = "phone") -> dict[str, Record]:
    return {r.value: r for page in store.records.iter_changed(kind, 0) for r in page}


def untouched(store: Store) -> bool:
    return store.records.current_seq() == 0 and store.records.counts() == []


# --- CSV -----------------------------------------------------------------------------------


def test_csv_with_every_optional_column(store: Store, tmp_path: Path) -> None:
    path = write(
        tmp_path / "clues.csv",
        "Phone ,labels,first_seen,last_seen,ref\n"
        f"{A_SPELLINGS[1]},mule;fraud_ring,2024-01-05,2024/2/1,C-1\n"
        f"{B_SPELLINGS[0]},fake_complaint|mule,20240301,,\n"
        f"{A_SPELLINGS[2]}, fraud_ring | 诈骗 ,2023-12-31,2024-01-10,C-2\n",
    )
    result = import_file(store, path, "phone", REGISTRY)
    assert result == ImportResult(str(path), "phone", 3, 2, 1, 0)
    got = records(store)
    assert set(got) == {A, B}
    a, b = got[A], got[B]
    assert a.labels == tuple(sorted({"mule", "fraud_ring", "诈骗"}))
    assert (a.first_seen, a.last_seen, a.ref) == ("2023-12-31", "2024-02-01", "C-1")
    assert b.labels == ("fake_complaint", "mule")
    assert (b.first_seen, b.last_seen, b.ref) == ("2024-03-01", TODAY, None)


def test_the_only_column_need_not_be_named_after_the_kind(store: Store, tmp_path: Path) -> None:
    path = write(tmp_path / "list.csv", "mobile\n" + "\n".join(A_SPELLINGS + B_SPELLINGS) + "\n")
    result = import_file(store, path, "phone", REGISTRY)
    assert (result.rows_read, result.inserted, result.merged) == (6, 2, 4)
    assert set(records(store)) == {A, B}


def test_an_optional_column_beside_the_only_one(store: Store, tmp_path: Path) -> None:
    path = write(tmp_path / "list.csv", "number,labels\n13800138000,mule\n")
    import_file(store, path, "phone", REGISTRY)
    assert records(store)[A].labels == ("mule",)


def test_column_picks_among_several(store: Store, tmp_path: Path) -> None:
    path = write(tmp_path / "x.csv", "name,mobile,home\nZhang,13800138000,13912345678\n")
    import_file(store, path, "phone", REGISTRY, column="Mobile")
    assert set(records(store)) == {A}


def test_labels_argument_applies_to_every_row(store: Store, tmp_path: Path) -> None:
    path = write(tmp_path / "x.csv", "phone,labels\n13800138000,mule\n13912345678,\n")
    import_file(store, path, "phone", REGISTRY, labels=("from_police", " 2024Q1 "))
    got = records(store)
    assert got[A].labels == ("2024Q1", "from_police", "mule")
    assert got[B].labels == ("2024Q1", "from_police")


def test_missing_dates_default_sensibly(store: Store, tmp_path: Path) -> None:
    path = write(
        tmp_path / "x.csv",
        "phone,first_seen,last_seen\n13800138000,2024-01-01,\n13912345678,,2024-02-02\n",
    )
    import_file(store, path, "phone", REGISTRY)
    got = records(store)
    assert (got[A].first_seen, got[A].last_seen) == ("2024-01-01", TODAY)
    assert (got[B].first_seen, got[B].last_seen) == ("2024-02-02", "2024-02-02")


def test_reimport_merges_and_changes_nothing(store: Store, tmp_path: Path) -> None:
    path = write(tmp_path / "x.csv", "phone,labels\n13800138000,mule\n13912345678,mule\n")
    import_file(store, path, "phone", REGISTRY)
    seq = store.records.current_seq()
    again = import_file(store, path, "phone", REGISTRY)
    assert (again.inserted, again.merged) == (0, 2)
    assert store.records.current_seq() == seq


def test_a_removed_record_comes_back(store: Store, tmp_path: Path) -> None:
    path = write(tmp_path / "x.csv", "phone\n13800138000\n")
    import_file(store, path, "phone", REGISTRY)
    assert store.records.remove("phone", [A]) == 1
    result = import_file(store, path, "phone", REGISTRY)
    assert (result.inserted, result.merged) == (1, 0)
    assert A in records(store) and not records(store)[A].removed


def test_bom_is_ignored(store: Store, tmp_path: Path) -> None:
    path = write(tmp_path / "x.csv", "phone,labels\r\n13800138000,mule\r\n", "utf-8-sig")
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    import_file(store, path, "phone", REGISTRY)
    assert records(store)[A].labels == ("mule",)


def test_gbk_file(store: Store, tmp_path: Path) -> None:
    path = write(tmp_path / "x.csv", "phone,labels,ref\n13800138000,诈骗;洗钱,案件-7\n", "gbk")
    with pytest.raises(InputError, match=r"x\.csv, line 2: not valid utf-8 .*--encoding gbk"):
        import_file(store, path, "phone", REGISTRY)
    assert untouched(store)
    import_file(store, path, "phone", REGISTRY, encoding="gbk")
    got = records(store)[A]
    assert (got.labels, got.ref) == (("洗钱", "诈骗"), "案件-7")


def test_quoted_fields_may_span_lines(store: Store, tmp_path: Path) -> None:
    path = write(
        tmp_path / "x.csv",
        'phone,ref\n13800138000,"note\nacross lines"\n12345,x\n',
    )
    with pytest.raises(ImportRejected) as info:
        import_file(store, path, "phone", REGISTRY)
    assert [line for line, _ in info.value.problems] == [4]


def test_other_kinds_and_opaque_kinds(store: Store, tmp_path: Path) -> None:
    good = id_card("11010519491231002")
    path = write(tmp_path / "ids.csv", f"id_card\n{good.lower()}\n")
    import_file(store, path, "id_card", REGISTRY)
    assert set(records(store, "id_card")) == {canon(good, "id_card")}
    path = write(tmp_path / "cases.csv", "case_id\nAB-1\n")
    import_file(store, path, "case_id", REGISTRY)
    assert len(records(store, "case_id")) == 1


# --- JSON Lines ----------------------------------------------------------------------------


def test_jsonl(store: Store, tmp_path: Path) -> None:
    lines = [
        {"phone": A_SPELLINGS[1], "labels": ["mule", "诈骗"], "first_seen": "2024-01-01"},
        {"phone": 13800138000, "labels": "fraud_ring|mule", "ref": 42},
        {"phone": B_SPELLINGS[1], "last_seen": "20240105", "labels": None},
    ]
    path = write(
        tmp_path / "x.jsonl",
        "\n".join(json.dumps(o, ensure_ascii=False) for o in lines) + "\n\n",
    )
    result = import_file(store, path, "phone", REGISTRY)
    assert (result.rows_read, result.inserted, result.merged) == (3, 2, 1)
    got = records(store)
    assert got[A].labels == ("fraud_ring", "mule", "诈骗")
    assert (got[A].first_seen, got[A].last_seen, got[A].ref) == ("2024-01-01", TODAY, "42")
    assert (got[B].first_seen, got[B].last_seen) == ("2024-01-05", "2024-01-05")


@pytest.mark.parametrize("name", ["x.ndjson", "x.txt", "x"])
def test_jsonl_is_recognised_by_extension_or_content(
    store: Store, tmp_path: Path, name: str
) -> None:
    path = write(tmp_path / name, '\n  {"value": "13800138000"}\n')
    import_file(store, path, "phone", REGISTRY)
    assert set(records(store)) == {A}


def test_jsonl_bad_rows(store: Store, tmp_path: Path) -> None:
    path = write(
        tmp_path / "x.jsonl",
        '{"phone": "13800138000"}\n'
        '{"phone": "13800138000", "labels": 5}\n'
        '{"phone": ["13800138000"]}\n'
        '{"phone": 13800138000.0}\n'
        '{"phone": null}\n'
        '{"mobile": "13800138000"}\n'
        '{"phone": "13800138000",\n'
        '{"phone": "13800138000", "first_seen": "2024-02-30"}\n'
        '{"phone": "13800138000", "ref": {"a": 1}}\n',
    )
    with pytest.raises(ImportRejected) as info:
        import_file(store, path, "phone", REGISTRY)
    assert info.value.problems == [
        (2, "labels: expected a list of strings or a string, found a number"),
        (3, "phone: expected a string, found a list"),
        (4, "phone: expected a string, found a number"),
        (5, "phone: empty value"),
        (6, "no 'phone' key"),
        (7, "not valid JSON: Expecting property name enclosed in double quotes (column 25)"),
        (8, "first_seen: '2024-02-30' is not a date (use YYYY-MM-DD)"),
        (9, "ref: expected a string, found an object"),
    ]
    assert untouched(store)


# --- structural problems -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "kwargs", "message"),
    [
        ("empty.csv", "", {}, r"empty\.csv: the file is empty"),
        ("blank.csv", "\n  \n\r\n", {}, r"blank\.csv: the file is empty"),
        ("bom.csv", "\ufeff\n", {}, r"bom\.csv: the file is empty"),
        ("commas.csv", ",,\n,\n", {}, r"commas\.csv: no header row: every line is blank"),
        (
            "nohead.csv",
            "13800138000\n13912345678\n",
            {},
            r"nohead\.csv, line 1: no header: the first row holds a phone \('13800138000'\); "
            r"add a first row naming the columns, e\.g\. 'phone'",
        ),
        (
            "col.csv",
            "name,mobile\nZhang,13800138000\n",
            {"column": "tel"},
            r"col\.csv, line 1: no column 'tel'; columns found: 'name', 'mobile'",
        ),
        (
            "several.csv",
            "name,mobile,labels\nZhang,13800138000,x\n",
            {},
            r"several\.csv, line 1: several columns \('name', 'mobile', 'labels'\) and none "
            r"is named 'phone'; say which holds the values with --column",
        ),
        (
            "onlyopt.csv",
            "labels,ref\nx,y\n",
            {},
            r"onlyopt\.csv, line 1: no column named 'phone'; columns found: 'labels', 'ref'",
        ),
        (
            "dup.csv",
            "phone,Labels,labels\n13800138000,a,b\n",
            {},
            r"dup\.csv, line 1: duplicate column\(s\) labels",
        ),
        (
            "array.jsonl",
            '{"phone": "13800138000"}\n["13912345678"]\n',
            {},
            r"array\.jsonl, line 2: each line must be a JSON object, found a list",
        ),
        (
            "keys.jsonl",
            '\n{"name": "Zhang", "mobile": "13800138000"}\n',
            {},
            r"keys\.jsonl, line 2: several columns \('name', 'mobile'\) and none is named "
            r"'phone'",
        ),
        (
            "quote.csv",
            'phone\n13800138000\n"13912345678\n' + "x" * 200_000 + "\n",
            {},
            r"quote\.csv, line 4: not a readable CSV row: field larger than field limit",
        ),
        ("x.csv", "phone\n1\n", {"encoding": "utf-16"}, r"encoding 'utf-16' is not supported"),
        ("x.csv", "phone\n1\n", {"encoding": "klingon"}, r"unknown encoding 'klingon'"),
        ("x.csv", "phone\n1\n", {"labels": ("ok", " ")}, r"--label: empty label"),
        ("x.csv", "phone\n1\n", {"kind": "shoe_size"}, r"shoe_size"),
    ],
)
def test_structural_problems(
    store: Store,
    tmp_path: Path,
    name: str,
    content: str,
    kwargs: dict[str, object],
    message: str,
) -> None:
    path = write(tmp_path / name, content)
    kind = str(kwargs.pop("kind", "phone"))
    with pytest.raises(InputError, match=message) as err:
        import_file(store, path, kind, REGISTRY, **kwargs)  # type: ignore[arg-type]
    assert not isinstance(err.value, ImportRejected)
    assert untouched(store)


def test_missing_file_and_directory(store: Store, tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"nothere\.csv: no such file"):
        import_file(store, tmp_path / "nothere.csv", "phone", REGISTRY)
    with pytest.raises(InputError, match=r"is a directory"):
        import_file(store, tmp_path, "phone", REGISTRY)


def test_not_utf8_names_the_line(store: Store, tmp_path: Path) -> None:
    body = "phone\n" + "13800138000\n" * 7000
    path = tmp_path / "x.csv"
    path.write_bytes(body.encode() + "13912345678,中文\n".encode("gbk") + b"13800138000\n")
    with pytest.raises(InputError, match=r"x\.csv, line 7002: not valid utf-8 \(byte 0x") as info:
        import_file(store, path, "phone", REGISTRY)
    assert "--encoding gbk" in str(info.value)
    assert untouched(store)


# --- bad rows ------------------------------------------------------------------------------


def _file_with_bad_rows(path: Path, rows: int, bad_every: int) -> tuple[list[int], int]:
    """A phone CSV; every `bad_every`-th row is bad. Returns the bad lines and valid count."""
    rng = random.Random(5)
    lines, bad_lines, valid = ["phone,first_seen"], [], set()
    for row in range(1, rows + 1):
        if row % bad_every == 0:
            bad = rng.choice(["1380013800", "138001380001234", "13800I38000"])
            lines.append(f"{bad},")
            bad_lines.append(len(lines))
        else:
            number = f"13{rng.randrange(10**9):09d}"
            valid.add(number)
            lines.append(f"{number},2024-01-01")
    path.write_text("\n".join(lines) + "\n")
    return bad_lines, len(valid)


def test_thirty_bad_rows_reject_the_file(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    bad_lines, _ = _file_with_bad_rows(path, rows=300, bad_every=10)
    assert len(bad_lines) == 30
    with pytest.raises(ImportRejected) as info:
        import_file(store, path, "phone", REGISTRY)
    rejected = info.value
    assert rejected.total_bad == 30
    assert [line for line, _ in rejected.problems] == bad_lines[:20]
    assert all(reason.startswith("phone: ") for _, reason in rejected.problems)
    assert rejected.path == str(path)
    assert untouched(store)


def test_skip_invalid_imports_the_rest(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    _, valid = _file_with_bad_rows(path, rows=300, bad_every=10)
    result = import_file(store, path, "phone", REGISTRY, skip_invalid=True)
    assert result.skipped == 30
    assert result.rows_read == 300
    assert result.inserted == valid == len(records(store))
    assert result.inserted + result.merged == 270
    assert sum(result.skipped_reasons.values()) == 30
    assert all(group.startswith("phone: ") for group in result.skipped_reasons)
    # Rows failing the same way are counted together, not one group per row.
    assert len(result.skipped_reasons) <= 3


def test_reason_groups_for_dates_and_fields(store: Store, tmp_path: Path) -> None:
    path = write(
        tmp_path / "x.csv",
        "phone,first_seen,last_seen\n"
        "13800138000,2024-13-01,\n"
        "13800138000,2024-01-01,2023-01-01\n"
        "13912345678,yesterday,\n"
        "13912345678\n"
        "13912345678,,,\n"
        "13912345678,2024/01/02,\n",
    )
    result = import_file(store, path, "phone", REGISTRY, skip_invalid=True)
    assert dict(result.skipped_reasons) == {
        "first_seen: not a date": 2,
        "first_seen after last_seen": 1,
        "wrong number of fields": 2,
    }
    assert records(store)[B].first_seen == "2024-01-02"
    with pytest.raises(ImportRejected) as info:
        import_file(store, path, "phone", REGISTRY)
    assert info.value.problems == [
        (2, "first_seen: '2024-13-01' is not a date (use YYYY-MM-DD)"),
        (3, "first_seen 2024-01-01 is after last_seen 2023-01-01"),
        (4, "first_seen: 'yesterday' is not a date (use YYYY-MM-DD)"),
        (5, "expected 3 field(s) as in the header, found 1"),
        (6, "expected 3 field(s) as in the header, found 4"),
    ]


def test_invalid_identifier_reasons_are_grouped(store: Store, tmp_path: Path) -> None:
    good = id_card("11010519491231002")
    wrong = [good[:-1] + c for c in "0123456789X" if c != good[-1]][:4]
    path = write(tmp_path / "ids.csv", "id_card\n" + "\n".join([good, *wrong]) + "\n")
    result = import_file(store, path, "id_card", REGISTRY, skip_invalid=True)
    assert result.skipped == 4
    assert len(result.skipped_reasons) == 1, result.skipped_reasons
    (group,) = result.skipped_reasons
    assert group.startswith("id_card: ")


# --- streaming, progress, atomicity --------------------------------------------------------


def _many(path: Path, n: int) -> None:
    path.write_text("phone\n" + "".join(f"138{i:08d}\n" for i in range(n)))


def test_progress_is_reported_per_batch(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    n = 2 * BATCH_ROWS + 123
    _many(path, n)
    seen: list[int] = []
    result = import_file(store, path, "phone", REGISTRY, progress=seen.append)
    assert seen == [BATCH_ROWS, 2 * BATCH_ROWS, n]
    assert result.inserted == n == store.records.counts()[0][2]


def test_an_exception_midway_leaves_nothing(store: Store, tmp_path: Path) -> None:
    import_file(store, write(tmp_path / "first.csv", "phone\n13800138000\n"), "phone", REGISTRY)
    seq = store.records.current_seq()
    path = tmp_path / "x.csv"
    _many(path, 3 * BATCH_ROWS)

    def interrupt(done: int) -> None:
        if done >= 2 * BATCH_ROWS:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        import_file(store, path, "phone", REGISTRY, progress=interrupt)
    assert store.records.current_seq() == seq
    assert store.records.counts() == [("phone", None, 1)]
    assert not store.conn.in_transaction


# --- order does not matter -----------------------------------------------------------------

NUMBERS = [f"1380013800{i}" for i in range(5)]
ROW = st.tuples(
    st.sampled_from(NUMBERS),
    st.sampled_from(["{n}", "+86 {a}-{b}-{c}", "0086{n}", " {a} {b} {c} "]),
    st.lists(st.sampled_from(["mule", "诈骗", "ring"]), max_size=2),
    st.sampled_from(["2024-01-01", "2024/1/15", "20240201", ""]),
    st.booleans(),
)


def _csv_line(row: tuple[str, str, list[str], str, bool]) -> str:
    n, spelling, labels, seen, with_ref = row
    value = spelling.format(n=n, a=n[:3], b=n[3:7], c=n[7:])
    return f"{value},{';'.join(labels)},{seen},{'R-' + n if with_ref else ''}\n"


@settings(max_examples=25, deadline=None)
@given(rows=st.lists(ROW, min_size=1, max_size=20), data=st.data())
def test_any_split_in_any_order_gives_the_same_records(
    rows: list[tuple[str, str, list[str], str, bool]], data: st.DataObject
) -> None:
    order = data.draw(st.permutations(rows))
    cuts = sorted(data.draw(st.sets(st.integers(1, len(rows)), max_size=3)))
    chunks = [order[a:b] for a, b in zip([0, *cuts], [*cuts, len(order)], strict=True) if a < b]
    header = "phone,labels,last_seen,ref\n"
    finals = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, parts in (("whole", [rows]), ("split", chunks)):
            with Store.open(Path(tmp) / f"{name}.db") as s:
                for i, part in enumerate(parts):
                    f = Path(tmp) / f"{name}-{i}.csv"
                    f.write_text(header + "".join(_csv_line(r) for r in part))
                    import_file(s, f, "phone", REGISTRY)
                finals.append(
                    {v: (r.labels, r.first_seen, r.last_seen, r.ref) for v, r in records(s).items()}
                )
    whole, split = finals
    assert whole == split
    assert len(whole) == len({r[0] for r in rows})
    for n in {r[0] for r in rows}:
        mine = [r for r in rows if r[0] == n]
        assert whole[canon(n)][0] == tuple(sorted({lab for r in mine for lab in r[2]}))
