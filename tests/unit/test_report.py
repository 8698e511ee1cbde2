"""The report's data: `--since` parsing and filtering, the summary figures, CSV and JSON
against their documented contract (docs/report-formats.md, docs/schemas/)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from report_data import HOSTILE, QUOTES, collision, sample

from node import report
from node.errors import InputError

DOCS = Path(__file__).resolve().parents[2] / "docs"
UTC = dt.UTC
MARCH = dt.datetime(2026, 3, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-03-01", MARCH),
        ("2026-03-01T00:00:00Z", MARCH),
        ("2026-03-01T00:00", MARCH),  # no offset: UTC
        ("2026-03-01T01:00:00+01:00", MARCH),
        ("2026-02-28T19:00:00-05:00", MARCH),
        ("2026-03-01T00:00:00.000+00:00", MARCH),
    ],
)
def test_since_accepts_dates_and_date_times_in_utc(text: str, expected: dt.datetime) -> None:
    got = report.parse_since(text)
    assert got == expected and got.utcoffset() == dt.timedelta(0)


@pytest.mark.parametrize(
    "text", ["", "yesterday", "2026-13-01", "2026-02-30", "01/03/2026", "2026-03-01T25:00", "2026"]
)
def test_a_bad_since_names_the_option_and_the_value(text: str) -> None:
    with pytest.raises(InputError) as caught:
        report.parse_since(text)
    assert "--since" in str(caught.value) and repr(text) in str(caught.value)


def test_since_keeps_collisions_with_a_match_at_or_after_it() -> None:
    got = report.new_since(sample(), MARCH)
    # The old clue with a new member stays (with both members); the new clue matched exactly
    # at the boundary stays; the clue only matched before goes.
    assert [(c.value, [p.peer for p in c.peers]) for c in got] == [
        ("+8613800138000", ["lender", "platform"]),
        ("+8613900139000", ["platform"]),
    ]
    assert report.new_since(sample(), MARCH + dt.timedelta(days=1)) == [sample()[1]]
    assert report.new_since(sample(), dt.datetime(2027, 1, 1, tzinfo=UTC)) == []


def test_summary_figures() -> None:
    s = report.summarise(sample())
    assert (s.clues, s.matches, s.peers, s.shared_widely) == (3, 4, 2, 1)
    assert s.new_clues is None and s.new_matches is None
    assert [(k.kind, k.clues, k.matches, k.shared_widely) for k in s.by_kind] == [
        ("id_card", 1, 1, 0),
        ("phone", 2, 3, 1),
    ]
    phone = s.by_kind[1]
    assert phone.first_matched == dt.datetime(2026, 1, 5, 9, tzinfo=UTC)
    assert phone.last_matched == dt.datetime(2026, 3, 2, 10, tzinfo=UTC)
    # Members by the number of our clues they hold, then by name.
    assert [(p.peer, p.clues, p.by_kind) for p in s.by_peer] == [
        ("lender", 2, (("id_card", 1), ("phone", 1))),
        ("platform", 2, (("phone", 2),)),
    ]


def test_summary_counts_new_clues_apart_from_new_matches() -> None:
    s = report.summarise(report.new_since(sample(), MARCH), MARCH)
    # One clue is new (first held at MARCH); the other only gained a member.
    assert (s.clues, s.new_clues, s.new_matches) == (2, 1, 2)
    assert {p.peer: p.new_matches for p in s.by_peer} == {"lender": 0, "platform": 2}
    assert [k.new_clues for k in s.by_kind] == [1]


def test_summary_of_nothing() -> None:
    s = report.summarise([], MARCH)
    assert (s.clues, s.matches, s.peers, s.new_clues, s.by_kind, s.by_peer) == (0, 0, 0, 0, (), ())


def _documented_columns() -> list[str]:
    text = (DOCS / "report-formats.md").read_text(encoding="utf-8")
    table = text.split("<!-- csv-columns", 1)[1].split("\n\n", 1)[0]
    return re.findall(r"^\| \d+ \| `([a-z_]+)` \|", table, flags=re.MULTILINE)


def test_csv_header_is_the_documented_column_list() -> None:
    header = next(csv.reader(io.StringIO(report.to_csv([]))))
    assert header == _documented_columns()
    csvw = json.loads((DOCS / "schemas" / "report.csv-metadata.json").read_text())
    assert header == [c["name"] for c in csvw["tableSchema"]["columns"]]
    # The columns the first release had keep their place.
    assert header[:6] == ["kind", "value", "peer_count", "peers", "peer_labels", "own_labels"]


def test_csv_rows() -> None:
    rows = list(csv.DictReader(io.StringIO(report.to_csv(sample(), MARCH))))
    assert len(rows) == 3
    phone = rows[1]
    assert phone == {
        "kind": "phone",
        "value": "+8613800138000",
        "peer_count": "2",
        "peers": "lender;platform",
        "peer_labels": f"lender=fraud_ring;platform=mule|{HOSTILE}",
        "own_labels": "chargeback",
        "first_seen": "2026-01-01",
        "last_seen": "2026-02-01",
        "first_matched_at": "2026-01-05T09:00:00+00:00",
        "matched_at": "2026-03-02T10:00:00+00:00",
        "peer_matched_at": "lender=2026-01-05T09:00:00+00:00;platform=2026-03-02T10:00:00+00:00",
        "new_peers": "platform",
    }
    assert rows[0]["new_peers"] == ""
    assert rows[2]["peer_labels"] == f"platform={QUOTES}"  # quoted by the CSV writer


def _schema() -> dict[str, Any]:
    return dict(json.loads((DOCS / "schemas" / "report.schema.json").read_text()))


@pytest.mark.parametrize("since", [None, MARCH])
def test_json_is_valid_under_its_published_schema(since: dt.datetime | None) -> None:
    schema = _schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    data = json.loads(report.to_json(sample(), since))
    jsonschema.validate(data, schema, cls=jsonschema.Draft202012Validator)
    jsonschema.validate([], schema, cls=jsonschema.Draft202012Validator)


def test_the_schema_rejects_what_breaks_the_contract() -> None:
    schema = _schema()
    good = json.loads(report.to_json(sample()))[0]
    for broken in (
        {k: v for k, v in good.items() if k != "labels"},
        {**good, "peer_count": 0},
        {**good, "matched_at": "yesterday"},
        {**good, "new_peers": "lender"},
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate([broken], schema, cls=jsonschema.Draft202012Validator)


def test_json_keeps_the_first_release_keys_and_flags_new_members() -> None:
    old, phone, new = json.loads(report.to_json(sample(), MARCH))
    assert list(phone)[:8] == [
        "kind", "value", "peers", "labels", "own_labels", "first_seen", "last_seen", "matched_at",
    ]  # fmt: skip
    assert phone["labels"] == {"lender": ["fraud_ring"], "platform": ["mule", HOSTILE]}
    assert phone["matched_at"] == "2026-03-02T10:00:00+00:00"
    assert phone["first_matched_at"] == "2026-01-05T09:00:00+00:00"
    assert (old["new_peers"], phone["new_peers"], new["new_peers"]) == (
        [],
        ["platform"],
        ["platform"],
    )
    assert json.loads(report.to_json(sample()))[1]["new_peers"] is None


def test_table_rows_star_new_members() -> None:
    rows = report.rows(sample(), MARCH)
    assert rows[1] == (
        "phone",
        "+8613800138000",
        "2",
        f"lender: fraud_ring; platform *: mule, {HOSTILE}",
    )
    assert rows[0][3] == "lender: -"


def test_a_collision_with_mixed_offsets_orders_by_instant() -> None:
    c = collision(
        "phone",
        "+1",
        ("a", "2026-03-01T08:00:00+09:00", ()),  # 2026-02-28T23:00Z: the earlier one
        ("b", "2026-03-01T00:00:00+00:00", ()),
    )
    assert json.loads(report.to_json([c]))[0]["first_matched_at"] == "2026-03-01T08:00:00+09:00"
    assert report.new_since([c], MARCH)[0].peers[1].peer == "b"
    assert report.summarise([c]).by_kind[0].first_matched == MARCH - dt.timedelta(hours=1)
