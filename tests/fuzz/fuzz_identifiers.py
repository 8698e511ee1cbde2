"""Fuzz harness: identifier normalisation. The first byte picks the kind; the rest, read as
UTF-8 (bytes that are not become lone surrogates, as in a command-line argument), is the
value: a canonical value that normalises to itself, or InvalidIdentifier.

    python -m tests.fuzz.fuzz_identifiers -atheris_runs=100000
"""

from __future__ import annotations

from tests.fuzz import harness

with harness.instrumented(__name__ == "__main__"):
    from tests.fuzz import targets


def TestOneInput(data: bytes) -> None:
    if data:
        kind = targets.KINDS[data[0] % len(targets.KINDS)]
        targets.check_normalize(kind, data[1:].decode("utf-8", "surrogateescape"))


def seeds() -> list[bytes]:
    values = {
        "phone": "+86 138-0013-8000",
        "id_card": "11010519491231002x",
        "bank_card": "6222 0202 0000 0000 006",
        "uscc": "91350100m000100y43",
        "email": "User.Name@Example.COM",
        "device_id": "{0123ABCD-4567-89ab-cdef-0123456789AB}",
        "ip": "::ffff:192.0.2.1",
        targets.OPAQUE_KIND: "\uff21case 1",
    }
    return [bytes([targets.KINDS.index(k)]) + v.encode() for k, v in values.items()]


if __name__ == "__main__":
    harness.main(TestOneInput, seeds())
