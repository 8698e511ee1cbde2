"""Identifier kinds, normalisation and validation.

Two members can only find a shared clue if both turn the same real-world identifier into the
same bytes. Exports from banks and platforms spell one phone number a dozen ways (full-width
digits, "+86", "0086", dashes, invisible marks copied from a phone's contact list), so every
value is reduced to one canonical form here, and rejected with a reason an operator can act
on when it cannot be. `oprf_input` then turns (kind, canonical value) into the OPRF input;
both functions are part of the wire contract: every member must compute them identically,
and changing either one changes every tag in the alliance.

Every builtin normaliser is idempotent: a canonical value normalises to itself.

Common steps, before the per-kind rules: Unicode NFKC (full-width digits, letters, plus,
minus, parentheses, full stop and the ideographic space become ASCII), removal of invisible
format marks (zero-width characters, bidi controls, BOM, soft hyphen; opaque kinds only lose
them at the ends) and of surrounding whitespace. The ideographic full stop becomes '.' for
email and ip. For the numeric kinds (phone, id_card, bank_card, uscc) inner spaces, dashes,
dots, parentheses and slashes are dropped.
"""

from __future__ import annotations

import datetime
import ipaddress
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from operator import mul

from node.errors import InputError, InvalidIdentifier

__all__ = [
    "BUILTIN_KINDS",
    "OPAQUE_MAX_CHARS",
    "OPRF_INPUT_DST",
    "KindRegistry",
    "check_kind_name",
    "normalize",
    "oprf_input",
]

BUILTIN_KINDS: tuple[str, ...] = (
    "phone",
    "id_card",
    "bank_card",
    "uscc",
    "email",
    "device_id",
    "ip",
)

OPRF_INPUT_DST = b"aif-node/v1/clue"
"""Domain-separation prefix of every OPRF input; bump the version to re-tag everything."""

OPAQUE_MAX_CHARS = 256

_KIND_NAME_RE = re.compile(r"[a-z][a-z0-9_]{1,31}")

# --- shared character handling -----------------------------------------------------------

# Every character for which str.isspace() is true lies below U+3001.
_WHITESPACE = "".join(c for c in map(chr, range(0x3001)) if c.isspace())
# Format marks that survive NFKC and are invisible on screen: zero-width space/joiners, word
# joiner, BOM, soft hyphen, and the bidi controls that phones add when a number is copied.
_INVISIBLE = (
    "\u00ad\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
    "\u2060\u2066\u2067\u2068\u2069\ufeff"
)
_STRIP = _WHITESPACE + _INVISIBLE
_DROP_INVISIBLE = str.maketrans("", "", _INVISIBLE)
_IDEOGRAPHIC_STOP = str.maketrans({"\u3002": "."})
# Separators that exports put inside numbers: spaces, dashes (ASCII, Unicode dashes and the
# minus sign), dots (ASCII, middle dots, the ideographic full stop), parentheses and slashes.
_NUMERIC_DROP = str.maketrans(
    "",
    "",
    _WHITESPACE + "-./()\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u00b7\u30fb\u3002",
)
_DROP_WHITESPACE = str.maketrans("", "", _WHITESPACE)
_SURROGATE_RE = re.compile("[\ud800-\udfff]")
_CONTROL_RE = re.compile("[\x00-\x1f\x7f-\x9f]")


def _show(char: str) -> str:
    """Name one character in a reason, readably even when it is invisible."""
    if char.isprintable() and not char.isspace():
        return f"'{char}'"
    return f"U+{ord(char):04X}"


def _prepare(kind: str, raw: str, drop_invisible: bool = True) -> str:
    """NFKC and strip; the NFKC work is skipped for plain ASCII, which is most rows."""
    if raw.isascii():
        return raw.strip()
    text = unicodedata.normalize("NFKC", raw)
    bad = _SURROGATE_RE.search(text)
    if bad is not None:
        raise InvalidIdentifier(kind, f"not valid Unicode (lone surrogate {_show(bad.group())})")
    if drop_invisible:
        return text.translate(_DROP_INVISIBLE).strip()
    return text.strip(_STRIP)


def _first_not(text: str, allowed: str | frozenset[str]) -> tuple[int, str]:
    """1-based position and the first character of `text` outside `allowed`."""
    for pos, char in enumerate(text, 1):
        if char not in allowed:
            return pos, char
    raise AssertionError("caller promised a bad character")


_DIGITS = frozenset("0123456789")


def _is_digits(text: str) -> bool:
    """ASCII digits only: str.isdigit() alone also accepts e.g. Arabic-Indic digits."""
    return text.isascii() and text.isdigit()


# --- phone ----------------------------------------------------------------------------------


def _cn_national(national: str, context: str) -> str:
    """Validate a mainland number without country code or trunk 0; return it as E.164."""
    n = len(national)
    if n == 0:
        raise InvalidIdentifier("phone", f"no digits {context}")
    head = national[0]
    if head == "1":
        second = national[1:2]
        if second == "0":
            if n != 10:
                raise InvalidIdentifier(
                    "phone", f"{n} digits {context}, expected 10 for area code 010"
                )
        elif second in ("1", "2"):
            raise InvalidIdentifier(
                "phone",
                f"number starting with 1{second} {context} is neither a mobile number "
                "(13 to 19) nor a Beijing landline (10)",
            )
        elif n != 11:
            raise InvalidIdentifier(
                "phone", f"{n} digits {context}, expected 11 for a mobile number"
            )
    elif head == "2":
        if n != 10:
            raise InvalidIdentifier(
                "phone", f"{n} digits {context}, expected 10 for area code 0{national[:2]}"
            )
    elif head == "0":
        raise InvalidIdentifier("phone", f"unexpected 0 {context}: area codes do not start with 00")
    elif n not in (10, 11):
        raise InvalidIdentifier(
            "phone", f"{n} digits {context}, expected 10 or 11 for area code 0{national[:3]}"
        )
    return "+86" + national


def _international(digits: str) -> str:
    """E.164 from the digits after '+' or '00'."""
    if digits.startswith("86"):
        national = digits[2:]
        if national.startswith("0"):
            # "+86 (0)755 ..." : the trunk 0 is never dialled after the country code.
            national = national[1:]
        return _cn_national(national, "after +86")
    if digits.startswith("0"):
        raise InvalidIdentifier("phone", "country code cannot start with 0")
    if not 8 <= len(digits) <= 15:
        raise InvalidIdentifier(
            "phone", f"{len(digits)} digits after the '+', expected 8 to 15 for E.164"
        )
    return "+" + digits


def _phone(raw: str) -> str:
    """E.164. Mainland mobiles and landlines get +86; other countries need '+' or '00'.

    Mobile numbers are 1[3-9] and 9 digits. Landlines carry a trunk 0 and area code: 010 and
    02X are followed by 8 digits, the 3-digit area codes by 7 or 8.
    """
    text = _prepare("phone", raw).translate(_NUMERIC_DROP)
    if not text:
        raise InvalidIdentifier("phone", "empty value")
    plus = text.startswith("+")
    digits = text[1:] if plus else text
    if not _is_digits(digits):
        if not digits:
            raise InvalidIdentifier("phone", "no digits after '+'")
        _, char = _first_not(digits, _DIGITS)
        if char == "+":
            raise InvalidIdentifier("phone", "'+' is only allowed before the country code")
        raise InvalidIdentifier("phone", f"unexpected character {_show(char)}")
    if plus:
        return _international(digits)
    if digits.startswith("00"):
        return _international(digits[2:])
    if digits.startswith("0"):
        return _cn_national(digits[1:], "after the trunk 0")
    if digits.startswith("86"):
        return _international(digits)
    n = len(digits)
    if digits.startswith("1"):
        if n != 11:
            raise InvalidIdentifier(
                "phone",
                f"{n} digits starting with 1 and no country code, "
                "expected 11 for a mainland mobile number",
            )
        if digits[1] in "012":
            raise InvalidIdentifier(
                "phone",
                f"11 digits starting with {digits[:2]} is not a mainland mobile number "
                "(13 to 19); write the country code for other numbers",
            )
        return "+86" + digits
    raise InvalidIdentifier(
        "phone",
        f"ambiguous number without a country code ({n} digits starting with {digits[0]}): "
        "write +CC or 00CC, or the trunk 0 and area code of a mainland landline",
    )


# --- id_card (GB 11643) -----------------------------------------------------------------

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_ASCII_BIAS = 48 * sum(_ID_WEIGHTS)  # the weighted sum of the '0' code points
_ID_CHECK = "10X98765432"
_ID_CHECK_CHARS = frozenset("0123456789X")


def _id_check_char(body17: str) -> str:
    """ISO 7064 MOD 11-2 over 17 ASCII digits, summed on code points to avoid int()."""
    return _ID_CHECK[(sum(map(mul, body17.encode(), _ID_WEIGHTS)) - _ID_ASCII_BIAS) % 11]


# Dates before this one were in the past when this was written, so they need no clock.
_PAST = datetime.date(2025, 1, 1)


def _latest_birth_date() -> datetime.date:
    """Today where it is latest on Earth (UTC+14): a newborn's number is never 'future'."""
    now = datetime.datetime.now(datetime.UTC)
    return (now + datetime.timedelta(hours=14)).date()


def _check_birth_date(yyyymmdd: str) -> None:
    year, month, day = int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:])
    try:
        born = datetime.date(year, month, day)
    except ValueError:
        raise InvalidIdentifier("id_card", f"birth date {yyyymmdd} is not a date") from None
    if year < 1900:
        raise InvalidIdentifier("id_card", f"birth date {yyyymmdd} is before 1900")
    if born >= _PAST and born > _latest_birth_date():
        raise InvalidIdentifier("id_card", f"birth date {yyyymmdd} is in the future")


def _id_card(raw: str) -> str:
    """18 characters, upper-case X; 15-digit legacy numbers are upgraded to 18."""
    text = _prepare("id_card", raw).translate(_NUMERIC_DROP)
    n = len(text)
    if n == 18:
        body, given = text[:17], text[17]
        if given == "x":
            given = "X"
        if not _is_digits(body):
            pos, char = _first_not(body, _DIGITS)
            raise InvalidIdentifier(
                "id_card", f"character {_show(char)} at position {pos} is not a digit"
            )
        if given not in _ID_CHECK_CHARS:
            raise InvalidIdentifier(
                "id_card", f"check character {_show(given)} must be a digit or X"
            )
        expected = _id_check_char(body)
        if given != expected:
            raise InvalidIdentifier("id_card", f"check digit is {given}, expected {expected}")
        _check_birth_date(body[6:14])
        return body + expected
    if n == 15:
        if not _is_digits(text):
            pos, char = _first_not(text, _DIGITS)
            raise InvalidIdentifier(
                "id_card", f"character {_show(char)} at position {pos} is not a digit"
            )
        body = text[:6] + "19" + text[6:]
        _check_birth_date(body[6:14])
        return body + _id_check_char(body)
    if n == 0:
        raise InvalidIdentifier("id_card", "empty value")
    raise InvalidIdentifier("id_card", f"{n} characters, expected 18 (or 15 for a legacy number)")


# --- bank_card (Luhn) -------------------------------------------------------------------

# Maps an ASCII digit to the digit sum of twice its value; the other bytes are never looked up.
_LUHN_DOUBLED = bytes.maketrans(b"0123456789", bytes([0, 2, 4, 6, 8, 1, 3, 5, 7, 9]))


def _luhn_ok(digits: str) -> bool:
    data = digits.encode()
    kept = data[-1::-2]
    total = sum(kept) - 48 * len(kept) + sum(data[-2::-2].translate(_LUHN_DOUBLED))
    return total % 10 == 0


def _bank_card(raw: str) -> str:
    """12 to 19 digits passing the Luhn check."""
    text = _prepare("bank_card", raw).translate(_NUMERIC_DROP)
    if not _is_digits(text):
        if not text:
            raise InvalidIdentifier("bank_card", "empty value")
        pos, char = _first_not(text, _DIGITS)
        raise InvalidIdentifier(
            "bank_card", f"character {_show(char)} at position {pos} is not a digit"
        )
    n = len(text)
    if not 12 <= n <= 19:
        raise InvalidIdentifier("bank_card", f"{n} digits, expected 12 to 19")
    if not _luhn_ok(text):
        raise InvalidIdentifier("bank_card", "Luhn check failed")
    return text


# --- uscc (GB 32100) ----------------------------------------------------------------------

_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_USCC_NEVER = "IOSVZ"
_USCC_BAD = 255
# Maps an ASCII byte to its value in the alphabet, or 255 when it is not in it.
_USCC_VALUES = bytes(
    _USCC_ALPHABET.index(chr(b)) if chr(b) in _USCC_ALPHABET else _USCC_BAD for b in range(256)
)


def _uscc(raw: str) -> str:
    """18 characters of the GB 32100 alphabet (upper-case) with a valid check character."""
    text = _prepare("uscc", raw).translate(_NUMERIC_DROP)
    n = len(text)
    if not text.isascii():
        pos, char = _first_not(text, frozenset(map(chr, range(128))))
        raise InvalidIdentifier("uscc", f"character {_show(char)} at position {pos} is not allowed")
    if n != 18:
        raise InvalidIdentifier("uscc", "empty value" if n == 0 else f"{n} characters, expected 18")
    text = text.upper()
    values = text.encode().translate(_USCC_VALUES)
    if _USCC_BAD in values:
        pos = values.index(_USCC_BAD) + 1
        char = text[pos - 1]
        if char in _USCC_NEVER:
            raise InvalidIdentifier(
                "uscc",
                f"character '{char}' at position {pos} is not used in credit codes "
                "(I, O, S, V and Z never appear)",
            )
        raise InvalidIdentifier("uscc", f"character {_show(char)} at position {pos} is not allowed")
    expected = _USCC_ALPHABET[(31 - sum(map(mul, values[:17], _USCC_WEIGHTS)) % 31) % 31]
    if text[17] != expected:
        raise InvalidIdentifier("uscc", f"check character is {text[17]}, expected {expected}")
    return text


# --- email ----------------------------------------------------------------------------------

_LOCAL_ASCII_RE = re.compile(r"[a-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}")
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_DOMAIN_RE = re.compile(rf"(?=.{{1,253}}$)(?:{_LABEL}\.)+(?=[a-z0-9-]*[a-z-])({_LABEL})")
_LOCAL_FORBIDDEN = frozenset('"(),:;<>[\\]')
_LABEL_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")


def _email_local(local: str) -> None:
    """Explain why a local part failed the fast check (non-ASCII local parts are allowed)."""
    if not local:
        raise InvalidIdentifier("email", "empty local part")
    if len(local) > 64:
        raise InvalidIdentifier("email", f"local part has {len(local)} characters, max 64")
    for char in local:
        if char.isspace():
            raise InvalidIdentifier("email", "local part contains whitespace")
        if char in _LOCAL_FORBIDDEN or not char.isprintable():
            raise InvalidIdentifier("email", f"local part contains {_show(char)}")


def _email_domain(domain: str) -> str:
    """The ASCII (IDNA) form of a domain, or the reason it is not a mail domain."""
    if not domain:
        raise InvalidIdentifier("email", "empty domain")
    if not domain.isascii():
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError:
            raise InvalidIdentifier(
                "email", "domain is not a valid internationalised name"
            ) from None
    if _DOMAIN_RE.fullmatch(domain):
        return domain
    labels = domain.split(".")
    if len(labels) < 2:
        raise InvalidIdentifier("email", "domain has no dot")
    for label in labels:
        if not label:
            raise InvalidIdentifier("email", "domain has an empty label")
        if len(label) > 63:
            raise InvalidIdentifier("email", f"domain label of {len(label)} characters, max 63")
        if not _LABEL_CHARS.issuperset(label):
            _, char = _first_not(label, _LABEL_CHARS)
            raise InvalidIdentifier("email", f"domain contains {_show(char)}")
        if label[0] == "-" or label[-1] == "-":
            raise InvalidIdentifier("email", "domain label starts or ends with '-'")
    if labels[-1].isdigit():
        raise InvalidIdentifier("email", "top-level domain is numeric")
    raise InvalidIdentifier("email", f"domain has {len(domain)} characters, max 253")


def _email(raw: str) -> str:
    """Lower-case local@domain; the domain in its ASCII (IDNA) form, trailing dot dropped."""
    text = _prepare("email", raw).translate(_IDEOGRAPHIC_STOP).lower()
    ats = text.count("@")
    if ats != 1:
        if not text:
            raise InvalidIdentifier("email", "empty value")
        raise InvalidIdentifier("email", "no '@'" if ats == 0 else "more than one '@'")
    local, _, domain = text.partition("@")
    if domain.endswith("."):
        domain = domain[:-1]
    if not _LOCAL_ASCII_RE.fullmatch(local):
        _email_local(local)
    if not _DOMAIN_RE.fullmatch(domain):
        domain = _email_domain(domain)
    return f"{local}@{domain}"


# --- device_id ------------------------------------------------------------------------------

_UUID_RE = re.compile(
    r"\{?([0-9a-f]{8})(-?)([0-9a-f]{4})\2([0-9a-f]{4})\2([0-9a-f]{4})\2([0-9a-f]{12})\}?"
)
_MAC_RE = re.compile(r"([0-9a-f]{2})([:-])([0-9a-f]{2})(?:\2[0-9a-f]{2}){4}")
_IMEI_DROP = str.maketrans("", "", "-/")
_DEVICE_RE = re.compile(r"[0-9a-z._:-]{4,128}")
_DEVICE_CHARS = frozenset("0123456789abcdefghijklmnopqrstuvwxyz._:-")
_DEVICE_SEPARATORS = frozenset("._:-")
# Values that many unrelated devices report: a collision on them means nothing.
_DEVICE_PLACEHOLDERS = frozenset(
    {
        "null",
        "none",
        "nil",
        "nan",
        "unknown",
        "undefined",
        "default",
        "02:00:00:00:00:00",  # the MAC address Android returns to apps since 6.0
        "9774d56d682e549c",  # the ANDROID_ID shared by many Android 2.2 devices
    }
)


def _device_id(raw: str) -> str:
    """Lower-case, whitespace removed, then the first rule that matches.

    - UUID/IDFA/OAID-style 32 hex digits (bare, hyphenated 8-4-4-4-12, or in braces)
      become the hyphenated 8-4-4-4-12 form;
    - IMEI: 15 digits, optionally grouped with '-' or '/', become the 15 digits;
    - MAC addresses written with ':' or '-' between 6 hex pairs become the ':' form;
    - anything else is kept as is if it is 4 to 128 characters of [0-9a-z._:-].
    Placeholders that many devices share (all zeros or one repeated character, "unknown",
    "null", Android's 02:00:00:00:00:00 ...) are rejected: they would collide everywhere.
    """
    text = _prepare("device_id", raw).lower().translate(_DROP_WHITESPACE)
    uuid = _UUID_RE.fullmatch(text)
    if uuid is not None:
        a, _, b, c, d, e = uuid.groups()
        text = f"{a}-{b}-{c}-{d}-{e}"
    else:
        imei = text.translate(_IMEI_DROP)
        if len(imei) == 15 and _is_digits(imei):
            text = imei
        elif _MAC_RE.fullmatch(text):
            text = text.replace("-", ":")
        elif not _DEVICE_RE.fullmatch(text):
            n = len(text)
            if n == 0:
                raise InvalidIdentifier("device_id", "empty value")
            if not _DEVICE_CHARS.issuperset(text):
                _, char = _first_not(text, _DEVICE_CHARS)
                raise InvalidIdentifier(
                    "device_id",
                    f"character {_show(char)} is not allowed (0-9, a-z, '.', '_', ':', '-')",
                )
            raise InvalidIdentifier("device_id", f"{n} characters, expected 4 to 128")
    if text in _DEVICE_PLACEHOLDERS or len(set(text) - _DEVICE_SEPARATORS) <= 1:
        raise InvalidIdentifier("device_id", "placeholder value shared by many devices")
    return text


# --- ip ---------------------------------------------------------------------------------

_IPV4_RE = re.compile(r"([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})")
_IPV4_PORT_RE = re.compile(r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}:([0-9]+)")


def _ip(raw: str) -> str:
    """The ipaddress canonical form; IPv4-mapped IPv6 becomes the IPv4 address.

    Zero-padded IPv4 octets ("192.168.001.010") are read as decimal, as fixed-width exports
    mean them, never as octal.
    """
    text = _prepare("ip", raw).translate(_IDEOGRAPHIC_STOP)
    v4 = _IPV4_RE.fullmatch(text)
    if v4 is not None:
        octets = [int(part) for part in v4.groups()]
        for octet in octets:
            if octet > 255:
                raise InvalidIdentifier("ip", f"octet {octet} is out of range (0 to 255)")
        if not any(octets):
            raise InvalidIdentifier("ip", "0.0.0.0 is the unspecified address, not a host")
        return "{}.{}.{}.{}".format(*octets)
    if not text:
        raise InvalidIdentifier("ip", "empty value")
    if "/" in text:
        prefix = text.rpartition("/")[2]
        raise InvalidIdentifier(
            "ip", f"CIDR notation '/{prefix}' names a range, not a single address"
        )
    if "%" in text:
        raise InvalidIdentifier("ip", "zone id after '%' is local to one host, not an address")
    port = _IPV4_PORT_RE.fullmatch(text)
    if port is not None:
        raise InvalidIdentifier("ip", f"has a port (':{port.group(1)}'); give the address alone")
    if ":" not in text:
        raise InvalidIdentifier("ip", "not an IPv4 or IPv6 address")
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        address = ipaddress.IPv6Address(text)
    except ValueError:
        raise InvalidIdentifier("ip", "not a valid IPv6 address") from None
    mapped = address.ipv4_mapped
    if mapped is not None:
        return _ip(str(mapped))
    if address.is_unspecified:
        raise InvalidIdentifier("ip", ":: is the unspecified address, not a host")
    return str(address)


# --- opaque kinds ---------------------------------------------------------------------------


def _opaque(kind: str, raw: str) -> str:
    """NFKC and stripped, case kept: the operator knows what the value means, we do not."""
    text = _prepare(kind, raw, drop_invisible=False)
    n = len(text)
    if n == 0:
        raise InvalidIdentifier(kind, "empty value")
    if n > OPAQUE_MAX_CHARS:
        raise InvalidIdentifier(kind, f"{n} characters, max {OPAQUE_MAX_CHARS}")
    bad = _CONTROL_RE.search(text)
    if bad is not None:
        raise InvalidIdentifier(
            kind, f"control character {_show(bad.group())} at position {bad.start() + 1}"
        )
    return text


# --- public API -----------------------------------------------------------------------------

_NORMALIZERS: dict[str, Callable[[str], str]] = {
    "phone": _phone,
    "id_card": _id_card,
    "bank_card": _bank_card,
    "uscc": _uscc,
    "email": _email,
    "device_id": _device_id,
    "ip": _ip,
}


def check_kind_name(name: str) -> str:
    """Return `name` if it may name an operator-defined opaque kind, else raise InputError."""
    if name in _NORMALIZERS:
        raise InputError(f"'{name}' is a built-in kind and cannot be declared opaque")
    if not _KIND_NAME_RE.fullmatch(name):
        raise InputError(
            f"invalid kind name {name!r}: use 2 to 32 characters from a-z, 0-9 and '_', "
            "starting with a letter"
        )
    return name


def _unknown_kind(kind: str, known: tuple[str, ...]) -> InputError:
    return InputError(
        f"unknown kind {kind!r}; known kinds: {', '.join(known)}, "
        "or add it to opaque_kinds in the config"
    )


_checked_opaque_names: set[str] = set()


def normalize(kind: str, raw: str, opaque: bool = False) -> str:
    """The canonical value of `raw` as an identifier of `kind`.

    `opaque=True` declares `kind` an operator-defined opaque kind (never a builtin one).
    Raises InvalidIdentifier with an operator-readable reason when the value is not valid,
    and InputError when the kind itself is unknown or misnamed.
    """
    normalizer = _NORMALIZERS.get(kind)
    if normalizer is not None:
        if opaque:
            raise InputError(f"'{kind}' is a built-in kind and cannot be declared opaque")
        return normalizer(raw)
    if not opaque:
        raise _unknown_kind(kind, BUILTIN_KINDS)
    if kind not in _checked_opaque_names:
        _checked_opaque_names.add(check_kind_name(kind))
    return _opaque(kind, raw)


def oprf_input(kind: str, canonical: str) -> bytes:
    """The OPRF input for one record: part of the wire contract, identical on every member.

    Layout, with I2OSP as in RFC 9497 and strings UTF-8 encoded:

        b"aif-node/v1/clue" || I2OSP(len(kind), 1) || kind || I2OSP(len(value), 2) || value

    The length prefixes make (kind, value) -> bytes injective, so a phone number can never
    collide with a bank card. `canonical` must come from `normalize`; it is not re-checked.
    """
    kind_bytes = kind.encode()
    value_bytes = canonical.encode()
    if not 0 < len(kind_bytes) <= 0xFF:
        raise InputError(f"kind name of {len(kind_bytes)} bytes cannot be encoded (1 to 255)")
    if len(value_bytes) > 0xFFFF:
        raise InputError(f"value of {len(value_bytes)} bytes cannot be encoded (max 65535)")
    return b"".join(
        (
            OPRF_INPUT_DST,
            len(kind_bytes).to_bytes(1, "big"),
            kind_bytes,
            len(value_bytes).to_bytes(2, "big"),
            value_bytes,
        )
    )


@dataclass(frozen=True)
class KindRegistry:
    """The kinds this node accepts: the builtin ones plus the operator's opaque kinds."""

    opaque: frozenset[str] = frozenset()
    _known: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        names = frozenset(self.opaque)  # tolerate a list or set read from a config file
        for name in names:
            check_kind_name(name)
        object.__setattr__(self, "opaque", names)
        object.__setattr__(self, "_known", names | frozenset(BUILTIN_KINDS))

    def all(self) -> tuple[str, ...]:
        """Builtin kinds in their fixed order, then the opaque kinds sorted."""
        return BUILTIN_KINDS + tuple(sorted(self.opaque))

    def check(self, kind: str) -> str:
        """Return `kind` if known, else raise InputError listing the known kinds."""
        if kind not in self._known:
            raise _unknown_kind(kind, self.all())
        return kind

    def normalize(self, kind: str, raw: str) -> str:
        """`normalize` for a kind this registry knows."""
        if kind in self.opaque:
            return _opaque(kind, raw)
        if kind not in self._known:
            raise _unknown_kind(kind, self.all())
        return _NORMALIZERS[kind](raw)
