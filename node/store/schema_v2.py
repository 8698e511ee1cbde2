"""Migration 2: pinned peers, evaluation budgets and the audit log.

The tables are read and written by `node.store.peers`, `node.store.budget` and
`node.store.audit`; their docstrings say what each guarantees.
"""

from __future__ import annotations

SCHEMA_V2 = """
CREATE TABLE peers (
    node_id TEXT PRIMARY KEY,                 -- canonical dashed node ID
    name TEXT NOT NULL UNIQUE,
    cert_pem TEXT NOT NULL,
    addresses TEXT NOT NULL DEFAULT '[]',     -- JSON array of host:port
    kinds TEXT,                               -- sorted JSON array; NULL = every kind
    labels TEXT,                              -- sorted JSON array; NULL = every label
    budget INTEGER NOT NULL CHECK (budget >= 0),  -- evaluations per epoch
    policy_version INTEGER NOT NULL,
    added_at TEXT NOT NULL
);
-- Policy versions come from one store-wide counter, so a peer removed and pinned again
-- never gets back a version (and policy token) it held under an older policy.
INSERT INTO meta (key, value) VALUES ('peer_policy_seq', '0');

CREATE TABLE budget_usage (
    peer_id TEXT NOT NULL,
    epoch INTEGER NOT NULL,
    used INTEGER NOT NULL,
    PRIMARY KEY (peer_id, epoch)
) WITHOUT ROWID;
CREATE TABLE budget_batches (
    peer_id TEXT NOT NULL,
    epoch INTEGER NOT NULL,
    batch_id BLOB NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (peer_id, epoch, batch_id)
) WITHOUT ROWID;

CREATE TABLE audit (
    id INTEGER PRIMARY KEY,                   -- 1, 2, 3, ... without gaps
    at TEXT NOT NULL,                         -- UTC ISO-8601 with microseconds
    direction TEXT NOT NULL CHECK (direction IN ('served', 'initiated', 'local')),
    peer_id TEXT,
    peer_name TEXT,
    action TEXT NOT NULL,
    kinds TEXT NOT NULL,                      -- JSON array
    elements INTEGER NOT NULL,
    results INTEGER NOT NULL,
    status TEXT NOT NULL,
    detail TEXT NOT NULL,
    prev_mac BLOB NOT NULL,
    mac BLOB NOT NULL
);
CREATE INDEX audit_peer_id ON audit (peer_id, id);
CREATE INDEX audit_peer_name ON audit (peer_name, id);
-- The chain cannot show that its last entries were cut off; the head, updated in the same
-- transaction as every append and authenticated with the same key, can.
CREATE TABLE audit_head (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    entries INTEGER NOT NULL,
    last_mac BLOB NOT NULL,
    mac BLOB                                  -- NULL until the first append
);
INSERT INTO audit_head (one, entries, last_mac, mac) VALUES (1, 0, zeroblob(32), NULL);
"""
