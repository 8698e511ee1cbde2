"""The collision report investigators read: a terminal table, CSV, JSON or an HTML page.

CSV and JSON are a stable contract for case-management systems (docs/report-formats.md);
the HTML page is for people. `--since` narrows any of them to what is new since a date.
"""

from __future__ import annotations

from node.report.page import Scope, to_html
from node.report.since import new_since, parse_since
from node.report.summary import Summary, summarise
from node.report.tabular import CSV_COLUMNS, as_dicts, rows, to_csv, to_json

FORMATS = ("table", "csv", "json", "html")

__all__ = [
    "CSV_COLUMNS",
    "FORMATS",
    "Scope",
    "Summary",
    "as_dicts",
    "new_since",
    "parse_since",
    "rows",
    "summarise",
    "to_csv",
    "to_html",
    "to_json",
]
