"""Node identity without a certificate authority: key, self-signed certificate, node ID, card.

A node's ID is the SHA-256 of its certificate's SubjectPublicKeyInfo, written in base32 with a
Luhn-mod-32 check character per 13 characters and grouped by 7, as Syncthing writes device IDs,
so that operators can read it over the phone and a typo is caught. Peers pin each other by
exchanging member cards out of band; nothing else vouches for anyone.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from node.errors import InputError

_B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_GROUP = 13  # base32 characters per Luhn-checked chunk
CARD_VERSION = 1
# Certificates are pinned, not trusted by date; a long life avoids a silent outage at expiry.
CERT_LIFETIME = dt.timedelta(days=3650)


def _luhn32(chars: str) -> str:
    """Luhn mod N check character over base32, as Syncthing computes it."""
    factor, total, n = 1, 0, len(_B32)
    for ch in chars:
        addend = factor * _B32.index(ch)
        factor = 1 if factor == 2 else 2
        total += addend // n + addend % n
    return _B32[(n - total % n) % n]


@dataclass(frozen=True, order=True)
class NodeID:
    """The 32-byte SHA-256 of a certificate's SubjectPublicKeyInfo."""

    digest: bytes

    @classmethod
    def from_certificate(cls, cert: x509.Certificate) -> NodeID:
        spki = cert.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return cls(hashlib.sha256(spki).digest())

    @classmethod
    def parse(cls, text: str) -> NodeID:
        """Parse an ID tolerantly: any case, spaces or dashes, with or without check characters."""
        s = re.sub(r"[\s-]", "", text).upper()
        if len(s) == 56:
            chunks = [s[i : i + _GROUP + 1] for i in range(0, 56, _GROUP + 1)]
            for chunk in chunks:
                body, check = chunk[:-1], chunk[-1]
                if any(c not in _B32 for c in chunk) or _luhn32(body) != check:
                    raise InputError(f"node ID {text!r}: check character mismatch (typo?)")
            s = "".join(chunk[:-1] for chunk in chunks)
        if len(s) != 52 or any(c not in _B32 for c in s):
            raise InputError(f"node ID {text!r}: expected 56 base32 characters in groups of 7")
        return cls(base64.b32decode(s + "===="))

    def __str__(self) -> str:
        s = base64.b32encode(self.digest).decode().rstrip("=")
        checked = "".join(
            s[i : i + _GROUP] + _luhn32(s[i : i + _GROUP]) for i in range(0, 52, _GROUP)
        )
        return "-".join(checked[i : i + 7] for i in range(0, 56, 7))

    @property
    def short(self) -> str:
        """The first group, enough to tell peers apart in logs."""
        return str(self)[:7]

    @property
    def dns_name(self) -> str:
        """A DNS-safe name bound into the certificate, checked by TLS when dialling."""
        return base64.b32encode(self.digest).decode().rstrip("=").lower() + ".aif-node"


@dataclass(frozen=True)
class Identity:
    """This node's private key and certificate (PEM), as used for mutual TLS."""

    key_pem: bytes
    cert_pem: bytes

    @property
    def certificate(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.cert_pem)

    @property
    def node_id(self) -> NodeID:
        return NodeID.from_certificate(self.certificate)

    def key_matches_certificate(self) -> bool:
        key = serialization.load_pem_private_key(self.key_pem, password=None)
        return key.public_key() == self.certificate.public_key()


def generate_identity(name: str) -> Identity:
    """Make a fresh ECDSA P-256 key and a self-signed certificate naming the node ID."""
    key = ec.generate_private_key(ec.SECP256R1())
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    node_id = NodeID(hashlib.sha256(spki).digest())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, node_id.dns_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, name[:64]),
        ]
    )
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + CERT_LIFETIME)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(node_id.dns_name)]), False)
        # A self-signed anchor: TLS stacks accept it as its own root when pinned.
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return Identity(key_pem=key_pem, cert_pem=cert.public_bytes(serialization.Encoding.PEM))


def node_id_of_pem(cert_pem: bytes) -> NodeID:
    """The node ID of a PEM certificate; InputError when it is not one."""
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
    except ValueError as exc:
        raise InputError(f"not a PEM certificate: {exc}") from exc
    if not isinstance(cert.public_key(), ec.EllipticCurvePublicKey):
        raise InputError("certificate key is not ECDSA")
    return NodeID.from_certificate(cert)


@dataclass(frozen=True)
class MemberCard:
    """What operators exchange out of band to pin each other."""

    name: str
    node_id: NodeID
    addresses: tuple[str, ...]
    cert_pem: bytes

    def to_json(self) -> str:
        return json.dumps(
            {
                "version": CARD_VERSION,
                "name": self.name,
                "node_id": str(self.node_id),
                "addresses": list(self.addresses),
                "certificate": self.cert_pem.decode(),
            },
            indent=2,
        )

    @classmethod
    def from_json(cls, text: str, source: str = "card") -> MemberCard:
        """Parse and check a card: its node ID must be the hash of its own certificate."""
        try:
            data: Any = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"{source}: not JSON ({exc})") from exc
        if not isinstance(data, dict):
            raise InputError(f"{source}: expected a JSON object")
        for field, typ in (("name", str), ("node_id", str), ("certificate", str)):
            if not isinstance(data.get(field), typ) or not data[field]:
                raise InputError(f"{source}: field {field!r} missing or not a string")
        addresses = data.get("addresses", [])
        if not isinstance(addresses, list) or not all(isinstance(a, str) for a in addresses):
            raise InputError(f"{source}: field 'addresses' must be a list of HOST:PORT strings")
        for addr in addresses:
            split_host_port(addr, source=f"{source}: address")
        claimed = NodeID.parse(data["node_id"])
        actual = node_id_of_pem(data["certificate"].encode())
        if claimed != actual:
            raise InputError(
                f"{source}: node_id {claimed} does not match its certificate ({actual}); "
                "the card was altered or assembled from two nodes"
            )
        return cls(
            name=data["name"],
            node_id=actual,
            addresses=tuple(addresses),
            cert_pem=data["certificate"].encode(),
        )

    @classmethod
    def load(cls, path: Path) -> MemberCard:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise InputError(f"{path}: cannot read card ({exc.strerror})") from exc
        return cls.from_json(text, source=str(path))


def split_host_port(addr: str, source: str = "address") -> tuple[str, int]:
    """Split HOST:PORT (IPv6 as [::1]:PORT); InputError naming `source` when malformed."""
    m = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\]:(\d+)|([^:\[\]\s]+):(\d+)", addr)
    if not m:
        raise InputError(f"{source} {addr!r}: expected HOST:PORT")
    host = m.group(1) or m.group(3)
    port = int(m.group(2) or m.group(4))
    if not 0 < port < 65536:
        raise InputError(f"{source} {addr!r}: port must be 1..65535")
    return host, port
