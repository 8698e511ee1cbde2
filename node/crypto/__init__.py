"""Cryptography of the matching protocol, independent of storage and transport.

- `group`: the ristretto255 group over the system libsodium, with strict deserialization
  and batch scalar multiplication on every core (`workers`: one process per core).
- `oprf`: RFC 9497 OPRF (mode 0x00, ristretto255-SHA512), single and batched.
- `labels`: tag and key derivation from an OPRF output, and the label AEAD.

Importing this package loads libsodium (OS package libsodium23) and fails with an
ImportError that says so when it is missing.
"""

from node.crypto import group, labels, oprf

__all__ = ["group", "labels", "oprf"]
