"""Importing clues into the store, all or nothing, from files and from a database.

Sources: CSV and JSON Lines (`text`), Excel workbooks (`xlsx`), a PostgreSQL query
(`postgres`). Each yields `(position, row)` pairs into one shared pipeline (`pipeline`)
that validates, normalises and upserts in batches inside one store transaction: a bad row
rolls the whole import back and raises `ImportRejected` naming where each bad row is,
unless `skip_invalid`. A source that cannot be read as a table at all raises `InputError`.

Columns: the value is in the column named like the kind (`phone`), or the one named by
`column`, or else the only column besides the optional ones, used when present: `labels`
(separated by `;` or `|`, or a list), `first_seen`, `last_seen`, `ref`. Dates are
`YYYY-MM-DD`, `YYYY/MM/DD` (month and day may have one digit) or `YYYYMMDD`, or date
cells and columns. A missing `last_seen` is today (or `first_seen` if that is later); a
missing `first_seen` is `last_seen`. The `labels` argument is added to every row.
"""

from node.ingest.files import import_file
from node.ingest.pipeline import BATCH_ROWS, ImportResult
from node.ingest.postgres import DEFAULT_STATEMENT_TIMEOUT, QUERY_SOURCE, import_query

__all__ = [
    "BATCH_ROWS",
    "DEFAULT_STATEMENT_TIMEOUT",
    "QUERY_SOURCE",
    "ImportResult",
    "import_file",
    "import_query",
]
