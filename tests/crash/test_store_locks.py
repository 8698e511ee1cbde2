"""Opening the store again in a process that has it open must keep that process's locks.

POSIX drops all of a process's locks on a file when any descriptor of it is closed. Had
`open_connection` opened and closed the file itself on every call (it once did, to create it
0600), a `serve` opening a connection per call would lose its locks: a CLI command closing
its own connection would then take the store for unused, checkpoint and delete the WAL
under `serve`'s live connections, and the store would be corrupt ("disk I/O error", then
"database disk image is malformed"; the serve crash test found it).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from node.store import Store, open_connection


def test_a_second_connection_keeps_the_first_ones_locks(tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    wal = tmp_path / "store.db-wal"
    first = open_connection(db)
    second = None
    try:
        first.execute("CREATE TABLE t (x)")
        first.execute("INSERT INTO t VALUES (1)")
        assert wal.exists()
        second = open_connection(db)
        # Another process opens and closes the store, as `aif-node import` does next to `serve`.
        other = f"from node.store import Store; Store.open({str(db)!r}).close()"
        subprocess.run([sys.executable, "-c", other], check=True, timeout=60)
        assert wal.exists(), "another process deleted the WAL under this one's connections"
        first.execute("INSERT INTO t VALUES (2)")
    finally:
        first.close()
        if second is not None:
            second.close()
    with Store.open(db) as store:
        assert store.check_integrity() == []
        assert store.conn.execute("SELECT count(*) FROM t").fetchone() == (2,)
