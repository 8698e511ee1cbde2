"""Migration 3: tag sets (server side) and, per peer, match cache, tag copies and matches.

The tables are read and written by `node.store.tagsets` and `node.store.matches`; their
docstrings say what each guarantees. Rows kept per peer are dropped with the peer by
`node.store.peers` (its PEER_TABLES).
"""

from __future__ import annotations

SCHEMA_V3 = """
-- This node's tag set per kind and epoch. Entries stay, with removed = 1, after their record
-- is removed, so that a delta sync can tell peers; whole epochs go after a key rotation.
CREATE TABLE tagset_entries (
    kind TEXT NOT NULL,
    epoch INTEGER NOT NULL,
    record_id INTEGER NOT NULL,               -- records.id
    tag BLOB NOT NULL,                        -- 16 bytes, published
    label_key BLOB NOT NULL,                  -- 32 bytes, seals the labels at sync time
    version INTEGER NOT NULL,                 -- the set's version when the entry last changed
    removed INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (kind, epoch, record_id)
) WITHOUT ROWID;
CREATE INDEX tagset_entries_version ON tagset_entries (kind, epoch, version, record_id);
CREATE TABLE tagset_state (
    kind TEXT NOT NULL,
    epoch INTEGER NOT NULL,
    version INTEGER NOT NULL,
    record_seq INTEGER NOT NULL,              -- records.seq up to which the set is current
    PRIMARY KEY (kind, epoch)
) WITHOUT ROWID;

-- Our records' OPRF results under a peer's key, for the peer's current epoch only.
CREATE TABLE match_cache (
    peer_id TEXT NOT NULL,
    epoch INTEGER NOT NULL,
    kind TEXT NOT NULL,
    record_id INTEGER NOT NULL,
    tag BLOB NOT NULL,
    label_key BLOB NOT NULL,
    PRIMARY KEY (peer_id, kind, record_id)
) WITHOUT ROWID;
-- Our copy of a peer's tag set per kind, brought up to `version` by the last sync.
CREATE TABLE peer_tagsets (
    peer_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    epoch INTEGER NOT NULL,
    version INTEGER NOT NULL,                 -- 0 while a full sync is under way
    policy_token TEXT NOT NULL,
    PRIMARY KEY (peer_id, kind)
) WITHOUT ROWID;
CREATE TABLE peer_tags (
    peer_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    tag BLOB NOT NULL,
    sealed BLOB NOT NULL,
    PRIMARY KEY (peer_id, kind, tag)
) WITHOUT ROWID;
-- Our records that a peer holds too, with the labels it shared for them.
CREATE TABLE matches (
    peer_id TEXT NOT NULL,
    record_id INTEGER NOT NULL,
    kind TEXT NOT NULL,
    labels TEXT NOT NULL,                     -- sorted JSON array
    matched_at TEXT NOT NULL,                 -- UTC ISO-8601: when first found
    PRIMARY KEY (peer_id, record_id)
) WITHOUT ROWID;
CREATE INDEX matches_peer_kind ON matches (peer_id, kind);
CREATE INDEX matches_record ON matches (record_id);
"""
