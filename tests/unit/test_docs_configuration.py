"""docs/configuration.md documents every setting of config.toml, with its real default, and
nothing that is not a setting: the docs cannot drift from node/config.py."""

from __future__ import annotations

import re
import tomllib
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest

from node.config import SECTIONS, NodeConfig, parse_duration
from node.configdoc import effective_document

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
MINIMAL = "[node]\nname = 'bank'\nlisten = '127.0.0.1:7443'\n"
_HEADING = re.compile(r"^## `\[(\w+)\]`\s*$")
_ROW = re.compile(r"^\| `(\w+)` \| ([^|]+) \| ([^|]+) \|")


def documented() -> dict[str, dict[str, tuple[str, str]]]:
    """{table: {setting: (type, default cell)}} from the tables under each `## [table]`."""
    tables: dict[str, dict[str, tuple[str, str]]] = {}
    current: str | None = None
    for line in DOC.read_text(encoding="utf-8").splitlines():
        heading = _HEADING.match(line)
        if heading:
            current = heading.group(1)
            tables[current] = {}
        elif line.startswith("## "):
            current = None
        elif current is not None and (row := _ROW.match(line)):
            tables[current][row.group(1)] = (row.group(2).strip(), row.group(3).strip())
    return tables


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> NodeConfig:
    """The config of a file that sets only what is required: every other value a default."""
    path = tmp_path_factory.mktemp("config") / "config.toml"
    path.write_text(MINIMAL)
    return NodeConfig.load(path)


@pytest.fixture(scope="module")
def defaults(loaded: NodeConfig) -> dict[str, dict[str, Any]]:
    """Every setting with its default, as `config show` prints them."""
    return effective_document(loaded)


def test_the_defaults_cover_every_dataclass_field(
    loaded: NodeConfig, defaults: dict[str, dict[str, Any]]
) -> None:
    for section in SECTIONS:
        assert set(defaults[section]) == {f.name for f in fields(getattr(loaded, section))}
    top = [f.name for f in fields(NodeConfig) if f.name not in SECTIONS]
    written = [key for table in ("node", "kinds", "peers") for key in defaults[table]]
    assert len(written) == len(top), f"{written} should be one key for each of {top}"


def test_every_setting_is_documented_with_its_default(defaults: dict[str, dict[str, Any]]) -> None:
    docs = documented()
    required = set(tomllib.loads(MINIMAL)["node"])
    problems = []
    for table, settings in defaults.items():
        for key, value in settings.items():
            row = docs.get(table, {}).get(key)
            if row is None:
                problems.append(f"[{table}] {key}: not documented under ## `[{table}]`")
                continue
            default_cell = row[1]
            if key in required and table == "node":
                if default_cell != "required":
                    problems.append(f"[{table}] {key}: default should read 'required'")
                continue
            shown = _documented_value(default_cell, row[0])
            if shown != value:
                problems.append(f"[{table}] {key}: documented default {default_cell} != {value!r}")
    assert not problems, f"{DOC.name} is out of date:\n" + "\n".join(problems)


def test_nothing_documented_is_not_a_setting(defaults: dict[str, dict[str, Any]]) -> None:
    extra = [
        f"[{table}] {key}"
        for table, rows in documented().items()
        for key in rows
        if key not in defaults.get(table, {})
    ]
    assert not extra, f"{DOC.name} documents settings that do not exist: {extra}"


def _documented_value(cell: str, kind: str) -> Any:
    """The TOML literal in the default cell's code span, read as config.toml would be."""
    span = re.search(r"`([^`]*)`", cell)
    assert span, f"default {cell!r} has no `value`"
    value = tomllib.loads(f"v = {span.group(1)}")["v"]
    return parse_duration(value) if kind == "duration" else value
