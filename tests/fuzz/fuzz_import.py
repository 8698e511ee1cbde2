"""Fuzz harness: the import readers. The first byte picks the kind, the file's suffix (CSV,
JSON Lines, or sniffed from the content) and whether bad rows are skipped; the rest is the
file, imported into a real store: an ImportResult that adds up, or an InputError and the
store unchanged (tests/fuzz/targets.py holds the contract).

    python -m tests.fuzz.fuzz_import -atheris_runs=100000
"""

from __future__ import annotations

from functools import cache

from tests.fuzz import harness

with harness.instrumented(__name__ == "__main__"):
    from tests.fuzz import targets

SUFFIXES = (".csv", ".jsonl", ".txt")


@cache
def target() -> targets.ImportTarget:
    return targets.ImportTarget()


def TestOneInput(data: bytes) -> None:
    if not data:
        return
    pick = data[0]
    kind = targets.KINDS[pick % len(targets.KINDS)]
    suffix = SUFFIXES[pick // len(targets.KINDS) % len(SUFFIXES)]
    target().check(data[1:], kind, suffix, skip_invalid=pick >= 0x80)


def seeds() -> list[bytes]:
    phone = targets.KINDS.index("phone")
    csv, jsonl = phone, phone + len(targets.KINDS)
    return [
        bytes([csv]) + b"phone,labels,first_seen,last_seen,ref\n"
        b"13800138000,fraud_ring;mule,2024-01-02,2024/5/1,case-1\n"
        b'"+86 139-1234-5678",,20240101,,\n',
        bytes([csv | 0x80]) + b"value\n13800138000\nnot a phone\n\n,\n",
        bytes([jsonl]) + b'{"phone": "13800138000", "labels": ["a", "b"], "ref": 7}\n'
        b'{"phone": 13912345678, "first_seen": "2024-01-01"}\n',
        bytes([targets.KINDS.index("email")]) + b"email\nUser@Example.COM\n",
    ]


if __name__ == "__main__":
    harness.main(TestOneInput, seeds())
