"""Identifier normalisation: real-world spellings, exact rejection reasons, properties.

Check characters are never taken from the code under test: the reference functions below
derive the weights from their definitions (ISO 7064 MOD 11-2: 2^k mod 11; GB 32100: 3^k mod
31; Luhn from its textbook statement), and published samples anchor them: GB 11643's example
11010519491231002X, the credit code 91350100M000100Y43, the card number 4111111111111111.
"""

from __future__ import annotations

import datetime
import ipaddress
import uuid

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from node import identifiers
from node.errors import InputError, InvalidIdentifier
from node.identifiers import (
    BUILTIN_KINDS,
    KindRegistry,
    check_kind_name,
    normalize,
    oprf_input,
)

# --- independent references ---------------------------------------------------------------

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def ref_id_check(body17: str) -> str:
    """ISO 7064 MOD 11-2: the check value c makes sum(d_i * 2^(i-1) mod 11) + c = 1 mod 11."""
    total = sum(int(d) * pow(2, 17 - i, 11) for i, d in enumerate(body17))
    c = (12 - total % 11) % 11
    return "X" if c == 10 else str(c)


def ref_uscc_check(body17: str) -> str:
    """GB 32100: weights 3^(i-1) mod 31, check = 31 - sum mod 31 (31 written as 0)."""
    total = sum(USCC_ALPHABET.index(ch) * pow(3, i, 31) for i, ch in enumerate(body17))
    return USCC_ALPHABET[(31 - total % 31) % 31]


def ref_luhn_valid(number: str) -> bool:
    """Luhn: from the right, double every second digit, subtract 9 when above 9."""
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def ref_luhn_complete(partial: str) -> str:
    return next(partial + d for d in "0123456789" if ref_luhn_valid(partial + d))


def full_width(text: str) -> str:
    """What an IME in full-width mode types: ASCII '!'..'~' shifted by 0xFEE0, U+3000 space."""
    return "".join(
        "\u3000" if c == " " else chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text
    )


ALNUM = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def digits(low: int, high: int | None = None) -> st.SearchStrategy[str]:
    return st.text(st.sampled_from("0123456789"), min_size=low, max_size=high or low)


def reason(kind: str, raw: str, opaque: bool = False) -> str:
    with pytest.raises(InvalidIdentifier) as info:
        normalize(kind, raw, opaque)
    assert info.value.kind == kind
    assert str(info.value) == f"{kind}: {info.value.reason}"
    return str(info.value)


def test_full_width_helper_types_what_an_ime_types() -> None:
    assert full_width("+86 (0)x") == "\uff0b\uff18\uff16\u3000\uff08\uff10\uff09\uff58"


def test_published_samples_satisfy_the_references() -> None:
    assert ref_id_check("11010519491231002") == "X"
    assert ref_uscc_check("91350100M000100Y4") == "3"
    assert ref_luhn_valid("4111111111111111")
    assert ref_luhn_valid("79927398713")
    assert not ref_luhn_valid("79927398710")


def test_public_surface() -> None:
    assert set(identifiers.__all__) == {
        "BUILTIN_KINDS",
        "OPAQUE_MAX_CHARS",
        "OPRF_INPUT_DST",
        "KindRegistry",
        "check_kind_name",
        "normalize",
        "oprf_input",
    }
    assert BUILTIN_KINDS == ("phone", "id_card", "bank_card", "uscc", "email", "device_id", "ip")


# --- phone ------------------------------------------------------------------------------------

MOBILE = "+8613800138000"


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("+86 138-0013-8000", MOBILE),
        ("0086 13800138000", MOBILE),
        (full_width("8613800138000"), MOBILE),
        ("(+86)138 0013 8000", MOBILE),
        (full_width("(+86)138 0013 8000"), MOBILE),
        ("13800138000", MOBILE),
        ("8613800138000", MOBILE),
        ("+86.138.0013.8000", MOBILE),
        ("138/0013/8000", MOBILE),
        ("138—0013—8000", MOBILE),
        ("138 0013 8000\t", MOBILE),
        ("\u202d138 0013 8000\u202c", MOBILE),  # iOS wraps copied numbers in bidi marks
        ("\ufeff13800138000", MOBILE),  # a BOM left on the first cell of a CSV
        ("013800138000", MOBILE),  # trunk 0 before a mobile, from long-distance dialling
        ("+8613800138000", MOBILE),
        ("+86 199 1234 5678", "+8619912345678"),
        ("010-12345678", "+861012345678"),
        ("(010)12345678", "+861012345678"),
        ("+86 10 1234 5678", "+861012345678"),
        ("+86 (0)10 1234 5678", "+861012345678"),
        ("021-8765 4321", "+862187654321"),
        ("0755 1234 5678", "+8675512345678"),
        ("0755-1234567", "+867551234567"),
        ("0086 755 1234 5678", "+8675512345678"),
        ("+1 (650) 253-0000", "+16502530000"),
        ("001 650 253 0000", "+16502530000"),
        ("0044 20 7946 0958", "+442079460958"),
        ("+852 2123 4567", "+85221234567"),
        ("+886 2 2345 6789", "+886223456789"),
    ],
)
def test_phone_spellings(raw: str, canonical: str) -> None:
    assert normalize("phone", raw) == canonical


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "phone: empty value"),
        (" \u3000 ", "phone: empty value"),
        ("+", "phone: no digits after '+'"),
        ("+86 138 0013 800", "phone: 10 digits after +86, expected 11 for a mobile number"),
        ("0086 138 0013 80000", "phone: 12 digits after +86, expected 11 for a mobile number"),
        ("+86", "phone: no digits after +86"),
        (
            "1380013800",
            "phone: 10 digits starting with 1 and no country code, "
            "expected 11 for a mainland mobile number",
        ),
        (
            "12012345678",
            "phone: 11 digits starting with 12 is not a mainland mobile number (13 to 19); "
            "write the country code for other numbers",
        ),
        (
            "+86 12 3456 7890",
            "phone: number starting with 12 after +86 is neither a mobile number (13 to 19) "
            "nor a Beijing landline (10)",
        ),
        ("010-1234567", "phone: 9 digits after the trunk 0, expected 10 for area code 010"),
        ("021 1234 56789", "phone: 11 digits after the trunk 0, expected 10 for area code 021"),
        (
            "0755 123 45",
            "phone: 8 digits after the trunk 0, expected 10 or 11 for area code 0755",
        ),
        ("+86 00 12345678", "phone: unexpected 0 after +86: area codes do not start with 00"),
        ("+0 123 4567 89", "phone: country code cannot start with 0"),
        ("+1 234 567", "phone: 7 digits after the '+', expected 8 to 15 for E.164"),
        ("+1 2345 6789 0123 456", "phone: 16 digits after the '+', expected 8 to 15 for E.164"),
        (
            "5551234",
            "phone: ambiguous number without a country code (7 digits starting with 5): "
            "write +CC or 00CC, or the trunk 0 and area code of a mainland landline",
        ),
        ("138 0013 8000 ext 12", "phone: unexpected character 'e'"),
        (full_width("13800138000") + "转1", "phone: unexpected character '转'"),
        ("138+0013 8000", "phone: '+' is only allowed before the country code"),
        (  # Arabic-Indic digits: str.isdigit() accepts them, a phone number does not
            "".join(chr(0x660 + int(d)) for d in "13800138000"),
            "phone: unexpected character '\u0661'",
        ),
    ],
)
def test_phone_rejections(raw: str, message: str) -> None:
    assert reason("phone", raw) == message


SEPARATORS = st.sampled_from(["", " ", "-", ".", "/", "\u3000", "\u2014"])


@st.composite
def mobile_spellings(draw: st.DrawFn) -> tuple[str, str]:
    national = "1" + draw(st.sampled_from("3456789")) + draw(digits(9))
    prefix = draw(st.sampled_from(["", "+86", "0086", "86", "(+86)", "+86 ", "0"]))
    sep = draw(SEPARATORS)
    body = sep.join([national[:3], national[3:7], national[7:]])
    text = draw(st.sampled_from(["", " ", "\t"])) + prefix + body + draw(st.sampled_from(["", " "]))
    if draw(st.booleans()):
        text = full_width(text)
    return text, "+86" + national


@given(mobile_spellings())
def test_mobile_spellings_reach_one_canonical_form(case: tuple[str, str]) -> None:
    text, canonical = case
    assert normalize("phone", text) == canonical


@st.composite
def valid_phones(draw: st.DrawFn) -> str:
    """Valid numbers in assorted spellings (canonical forms are what the code returns)."""
    shape = draw(st.sampled_from(["mobile", "landline2", "landline3", "intl"]))
    if shape == "mobile":
        return draw(mobile_spellings())[0]
    if shape == "landline2":
        area = draw(st.sampled_from(["10", "20", "21", "29"]))
        local = draw(st.sampled_from("23456789")) + draw(digits(7))
    elif shape == "landline3":
        area = draw(st.sampled_from(["755", "571", "851", "431"]))
        local = draw(st.sampled_from("23456789")) + draw(digits(6, 7))
    else:
        cc = draw(st.sampled_from(["1", "44", "33", "852", "886", "971"]))
        rest = draw(st.sampled_from("123456789")) + draw(digits(6, 11))
        assume(8 <= len(cc + rest) <= 15)
        return draw(st.sampled_from(["+", "00", "+ "])) + cc + draw(SEPARATORS) + rest
    return draw(st.sampled_from(["0", "+86 ", "0086", "+86(0)"])) + area + draw(SEPARATORS) + local


@given(valid_phones())
def test_phone_is_idempotent(raw: str) -> None:
    canonical = normalize("phone", raw)
    assert canonical.startswith("+") and canonical[1:].isdigit()
    assert normalize("phone", canonical) == canonical


# --- id_card ----------------------------------------------------------------------------------

GB_SAMPLE = "11010519491231002X"


def id_with_check(body17: str) -> str:
    return body17 + ref_id_check(body17)


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        (GB_SAMPLE, GB_SAMPLE),
        ("11010519491231002x", GB_SAMPLE),
        ("110105 19491231 002X", GB_SAMPLE),
        ("110105-19491231-002x", GB_SAMPLE),
        (full_width("11010519491231002x"), GB_SAMPLE),
        ("  11010519491231002X\u200b", GB_SAMPLE),
        ("110105491231002", GB_SAMPLE),  # the legacy 15-digit form of the same person
        ("440301850715123", id_with_check("44030119850715123")),
        (id_with_check("44030120000229001"), id_with_check("44030120000229001")),
    ],
)
def test_id_card_spellings(raw: str, canonical: str) -> None:
    assert normalize("id_card", raw) == canonical


_TOMORROW = datetime.datetime.now(datetime.UTC).date() + datetime.timedelta(days=2)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("110105194912310023", "id_card: check digit is 3, expected X"),
        (GB_SAMPLE[:17] + "0", "id_card: check digit is 0, expected X"),
        (
            "1101051949123100",
            "id_card: 16 characters, expected 18 (or 15 for a legacy number)",
        ),
        ("11010519491231002X1", "id_card: 19 characters, expected 18 (or 15 for a legacy number)"),
        ("", "id_card: empty value"),
        (id_with_check("11010519991332002"), "id_card: birth date 19991332 is not a date"),
        (id_with_check("11010519990229002"), "id_card: birth date 19990229 is not a date"),
        (id_with_check("11010518991231002"), "id_card: birth date 18991231 is before 1900"),
        (
            id_with_check("110105" + _TOMORROW.strftime("%Y%m%d") + "002"),
            f"id_card: birth date {_TOMORROW.strftime('%Y%m%d')} is in the future",
        ),
        ("110105991332002", "id_card: birth date 19991332 is not a date"),
        ("1101051949123100AX", "id_card: character 'A' at position 17 is not a digit"),
        ("11010519491231002Y", "id_card: check character 'Y' must be a digit or X"),
        ("11010549123100A", "id_card: character 'A' at position 15 is not a digit"),
        ("身份证110105194912310", "id_card: character '身' at position 1 is not a digit"),
    ],
)
def test_id_card_rejections(raw: str, message: str) -> None:
    assert reason("id_card", raw) == message


@st.composite
def valid_id_cards(draw: st.DrawFn) -> str:
    area = draw(st.sampled_from("123456789")) + draw(digits(5))
    born = draw(st.dates(datetime.date(1900, 1, 1), datetime.date.today()))
    seq = draw(digits(3))
    return id_with_check(area + born.strftime("%Y%m%d") + seq)


@given(valid_id_cards(), st.booleans())
def test_id_card_accepts_valid_numbers_and_is_idempotent(number: str, lower: bool) -> None:
    spelled = number.lower() if lower else number
    assert normalize("id_card", spelled) == number
    assert normalize("id_card", number) == number


@given(valid_id_cards(), st.integers(0, 17), st.sampled_from("0123456789X"))
def test_id_card_with_one_character_changed_is_rejected(
    number: str, position: int, replacement: str
) -> None:
    if position < 17 and replacement == "X":
        replacement = "0"
    assume(number[position] != replacement)
    changed = number[:position] + replacement + number[position + 1 :]
    with pytest.raises(InvalidIdentifier):
        normalize("id_card", changed)


@given(digits(15))
def test_legacy_form_upgrades_to_the_same_number(legacy: str) -> None:
    body = legacy[:6] + "19" + legacy[6:]
    try:
        datetime.date(int(body[6:10]), int(body[10:12]), int(body[12:14]))
    except ValueError:
        assert reason("id_card", legacy) == f"id_card: birth date {body[6:14]} is not a date"
        return
    assert normalize("id_card", legacy) == body + ref_id_check(body)


# --- bank_card --------------------------------------------------------------------------------

UNIONPAY = ref_luhn_complete("621226100001234567")


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("4111111111111111", "4111111111111111"),
        ("4111 1111 1111 1111", "4111111111111111"),
        ("4111-1111-1111-1111", "4111111111111111"),
        (full_width("4111 1111 1111 1111"), "4111111111111111"),
        (" 5500 0000 0000 0004 ", "5500000000000004"),
        (UNIONPAY[:4] + " " + UNIONPAY[4:], UNIONPAY),
        (ref_luhn_complete("62284800000"), ref_luhn_complete("62284800000")),
    ],
)
def test_bank_card_spellings(raw: str, canonical: str) -> None:
    assert normalize("bank_card", raw) == canonical


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("4111111111111112", "bank_card: Luhn check failed"),
        ("79927398713", "bank_card: 11 digits, expected 12 to 19"),
        ("4" * 20, "bank_card: 20 digits, expected 12 to 19"),
        ("", "bank_card: empty value"),
        ("4111 1111 1111 111a", "bank_card: character 'a' at position 16 is not a digit"),
        ("卡号4111111111111111", "bank_card: character '卡' at position 1 is not a digit"),
    ],
)
def test_bank_card_rejections(raw: str, message: str) -> None:
    assert reason("bank_card", raw) == message


valid_bank_cards = st.tuples(st.sampled_from("123456789"), digits(10, 17)).map(
    lambda parts: ref_luhn_complete("".join(parts))
)


@given(valid_bank_cards)
def test_bank_card_accepts_luhn_numbers_and_is_idempotent(number: str) -> None:
    assert normalize("bank_card", number) == number
    assert normalize("bank_card", " ".join([number[:4], number[4:]])) == number


@given(valid_bank_cards, st.data())
def test_bank_card_with_one_digit_changed_is_rejected(number: str, data: st.DataObject) -> None:
    position = data.draw(st.integers(0, len(number) - 1))
    digit = data.draw(st.sampled_from("0123456789").filter(lambda d: d != number[position]))
    changed = number[:position] + digit + number[position + 1 :]
    assert reason("bank_card", changed) == "bank_card: Luhn check failed"


# --- uscc -------------------------------------------------------------------------------------

USCC_SAMPLE = "91350100M000100Y43"
USCC_BUILT = "92110000MA0123456" + ref_uscc_check("92110000MA0123456")


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        (USCC_SAMPLE, USCC_SAMPLE),
        ("91350100m000100y43", USCC_SAMPLE),
        ("9135 0100 M000 100Y 43", USCC_SAMPLE),
        ("91350100-M000100Y4-3", USCC_SAMPLE),
        (full_width("91350100m000100y43"), USCC_SAMPLE),
        (USCC_BUILT.lower(), USCC_BUILT),
    ],
)
def test_uscc_spellings(raw: str, canonical: str) -> None:
    assert normalize("uscc", raw) == canonical


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("91350100M000100Y44", "uscc: check character is 4, expected 3"),
        ("91350100M000100Y4A", "uscc: check character is A, expected 3"),
        (
            "91350100I000100Y43",
            "uscc: character 'I' at position 9 is not used in credit codes "
            "(I, O, S, V and Z never appear)",
        ),
        (
            "91350100M000100o43",
            "uscc: character 'O' at position 16 is not used in credit codes "
            "(I, O, S, V and Z never appear)",
        ),
        ("91350100M0001*0Y43", "uscc: character '*' at position 14 is not allowed"),
        ("91350100M000100Y4", "uscc: 17 characters, expected 18"),
        ("", "uscc: empty value"),
        ("统一社会信用代码91350100M000100Y43", "uscc: character '统' at position 1 is not allowed"),
    ],
)
def test_uscc_rejections(raw: str, message: str) -> None:
    assert reason("uscc", raw) == message


valid_usccs = st.text(st.sampled_from(USCC_ALPHABET), min_size=17, max_size=17).map(
    lambda body: body + ref_uscc_check(body)
)


@given(valid_usccs)
def test_uscc_accepts_valid_codes_and_is_idempotent(code: str) -> None:
    assert normalize("uscc", code.lower()) == code
    assert normalize("uscc", code) == code


@given(valid_usccs, st.data())
def test_uscc_with_one_character_changed_is_rejected(code: str, data: st.DataObject) -> None:
    position = data.draw(st.integers(0, 17))
    char = data.draw(st.sampled_from(USCC_ALPHABET).filter(lambda c: c != code[position]))
    with pytest.raises(InvalidIdentifier):
        normalize("uscc", code[:position] + char + code[position + 1 :])


# --- email ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("Zhang.San@QQ.COM", "zhang.san@qq.com"),
        ("  zhang.san@qq.com\r\n", "zhang.san@qq.com"),
        (full_width("zhangsan@qq.com"), "zhangsan@qq.com"),
        ("zhangsan@qq。com", "zhangsan@qq.com"),
        ("zhangsan@163.com.", "zhangsan@163.com"),
        ("first+tag@mail.example.co.uk", "first+tag@mail.example.co.uk"),
        ("a@例子.中国", "a@xn--fsqu00a.xn--fiqs8s"),
        ("info@Bücher.DE", "info@xn--bcher-kva.de"),
        ("用户@qq.com", "用户@qq.com"),
        ("x@xn--fsqu00a.xn--fiqs8s", "x@xn--fsqu00a.xn--fiqs8s"),
    ],
)
def test_email_spellings(raw: str, canonical: str) -> None:
    assert normalize("email", raw) == canonical


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("zhangsan.qq.com", "email: no '@'"),
        ("", "email: empty value"),
        ("a@b@qq.com", "email: more than one '@'"),
        ("@qq.com", "email: empty local part"),
        ("a" * 65 + "@qq.com", "email: local part has 65 characters, max 64"),
        ("张三 <a@qq.com>", "email: local part contains whitespace"),
        ("mailto:a@qq.com", "email: local part contains ':'"),
        ("a@", "email: empty domain"),
        ("a@localhost", "email: domain has no dot"),
        ("a@qq..com", "email: domain has an empty label"),
        ("a@-qq.com", "email: domain label starts or ends with '-'"),
        ("a@qq_mail.com", "email: domain contains '_'"),
        ("a@[1.2.3.4]", "email: domain contains '['"),
        ("a@1.2.3.4", "email: top-level domain is numeric"),
        ("a@" + "x" * 64 + ".com", "email: domain label of 64 characters, max 63"),
        ("a@" + ("x" * 60 + ".") * 5 + "com", "email: domain has 308 characters, max 253"),
        ("a@例子" + "中" * 70 + ".com", "email: domain is not a valid internationalised name"),
    ],
)
def test_email_rejections(raw: str, message: str) -> None:
    assert reason("email", raw) == message


@st.composite
def valid_emails(draw: st.DrawFn) -> str:
    local = draw(st.text(st.sampled_from(ALNUM), min_size=1, max_size=1)) + draw(
        st.text(st.sampled_from(ALNUM + "._+-"), max_size=20)
    )
    labels = draw(
        st.lists(st.text(st.sampled_from(ALNUM), min_size=1, max_size=10), min_size=1, max_size=3)
    )
    tld = draw(st.sampled_from(["com", "CN", "net", "中国", "公司", "рф"]))
    return f"{local}@{'.'.join([*labels, tld])}"


@given(valid_emails())
def test_email_is_idempotent(raw: str) -> None:
    canonical = normalize("email", raw)
    assert canonical.isascii() and canonical == canonical.lower()
    assert normalize("email", canonical) == canonical


# --- device_id --------------------------------------------------------------------------------

IDFA = "6f9619ff-8b86-d011-b42d-00c04fc964ff"


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        (IDFA, IDFA),
        ("6F9619FF-8B86-D011-B42D-00C04FC964FF", IDFA),
        ("{6F9619FF-8B86-D011-B42D-00C04FC964FF}", IDFA),
        ("6f9619ff8b86d011b42d00c04fc964ff", IDFA),
        (" 6F9619FF 8B86 D011 B42D 00C04FC964FF ", IDFA),
        (full_width("6F9619FF-8B86-D011-B42D-00C04FC964FF"), IDFA),
        ("352099001761481", "352099001761481"),
        ("35-209900-176148-1", "352099001761481"),
        ("35 209900 176148 1", "352099001761481"),
        ("AA:BB:CC:DD:EE:FF", "aa:bb:cc:dd:ee:ff"),
        ("aa-bb-cc-dd-ee-ff", "aa:bb:cc:dd:ee:ff"),
        ("A1B2C3D4E5F60718", "a1b2c3d4e5f60718"),  # an ANDROID_ID: generic rule
        ("oaid_2f1e.x:9", "oaid_2f1e.x:9"),
        ("6f9619ff-8b86d011-b42d-00c04fc964ff", "6f9619ff-8b86d011-b42d-00c04fc964ff"),
    ],
)
def test_device_id_spellings(raw: str, canonical: str) -> None:
    assert normalize("device_id", raw) == canonical


PLACEHOLDER = "device_id: placeholder value shared by many devices"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "device_id: empty value"),
        ("abc", "device_id: 3 characters, expected 4 to 128"),
        ("a" * 129 + "b", "device_id: 130 characters, expected 4 to 128"),
        ("ab#cd", "device_id: character '#' is not allowed (0-9, a-z, '.', '_', ':', '-')"),
        ("设备abcd", "device_id: character '设' is not allowed (0-9, a-z, '.', '_', ':', '-')"),
        ("00000000-0000-0000-0000-000000000000", PLACEHOLDER),
        ("000000000000000", PLACEHOLDER),
        ("02:00:00:00:00:00", PLACEHOLDER),
        ("Unknown", PLACEHOLDER),
        ("NULL", PLACEHOLDER),
        ("ffffffff", PLACEHOLDER),
        ("9774d56d682e549c", PLACEHOLDER),
    ],
)
def test_device_id_rejections(raw: str, message: str) -> None:
    assert reason("device_id", raw) == message


@given(st.uuids(), st.sampled_from(["{}", "{{{}}}"]), st.booleans(), st.booleans())
def test_device_id_uuid_forms_match_the_uuid_module(
    value: uuid.UUID, frame: str, upper: bool, bare: bool
) -> None:
    assume(value.int != 0)
    text = value.hex if bare else str(value)
    text = frame.format(text.upper() if upper else text)
    canonical = normalize("device_id", text)
    assert canonical == str(value)
    assert normalize("device_id", canonical) == canonical


@given(st.text(st.sampled_from(ALNUM + "._:-"), min_size=4, max_size=60))
def test_device_id_is_idempotent_where_accepted(raw: str) -> None:
    try:
        canonical = normalize("device_id", raw)
    except InvalidIdentifier as exc:
        assert exc.reason == PLACEHOLDER.partition(": ")[2]
        return
    assert normalize("device_id", canonical) == canonical


# --- ip ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("192.168.1.1", "192.168.1.1"),
        (" 192.168.1.1 ", "192.168.1.1"),
        ("192.168.001.010", "192.168.1.10"),  # zero-padded decimal, never octal
        (full_width("192.168.1.1"), "192.168.1.1"),
        ("192。168。1。1", "192.168.1.1"),
        ("::ffff:192.168.1.1", "192.168.1.1"),
        ("::FFFF:C0A8:0101", "192.168.1.1"),
        ("2001:DB8:0:0:0:0:0:1", "2001:db8::1"),
        ("2001:0db8:0000:0000:0000:ff00:0042:8329", "2001:db8::ff00:42:8329"),
        ("[2001:db8::1]", "2001:db8::1"),
        ("::1", "::1"),
    ],
)
def test_ip_spellings(raw: str, canonical: str) -> None:
    assert normalize("ip", raw) == canonical


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("10.0.0.0/8", "ip: CIDR notation '/8' names a range, not a single address"),
        ("2001:db8::/32", "ip: CIDR notation '/32' names a range, not a single address"),
        ("1.2.3.256", "ip: octet 256 is out of range (0 to 255)"),
        ("1.2.3.4:8080", "ip: has a port (':8080'); give the address alone"),
        ("fe80::1%eth0", "ip: zone id after '%' is local to one host, not an address"),
        ("1.2.3", "ip: not an IPv4 or IPv6 address"),
        ("localhost", "ip: not an IPv4 or IPv6 address"),
        ("2001:db8::g", "ip: not a valid IPv6 address"),
        ("", "ip: empty value"),
        ("0.0.0.0", "ip: 0.0.0.0 is the unspecified address, not a host"),
        ("::", "ip: :: is the unspecified address, not a host"),
        ("::ffff:0.0.0.0", "ip: 0.0.0.0 is the unspecified address, not a host"),
    ],
)
def test_ip_rejections(raw: str, message: str) -> None:
    assert reason("ip", raw) == message


@given(st.ip_addresses())
def test_ip_matches_the_ipaddress_module(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> None:
    assume(not address.is_unspecified)
    mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
    assume(mapped is None or not mapped.is_unspecified)
    expected = str(mapped or address)
    assert normalize("ip", address.exploded.upper()) == expected
    assert normalize("ip", expected) == expected


# --- opaque kinds, names and the registry -----------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        (" wxid_AbC123 ", "wxid_AbC123"),
        (full_width("ABC def"), "ABC def"),
        ("\ufeff张三的支付宝\u200b", "张三的支付宝"),
        ("x", "x"),
        ("y" * 256, "y" * 256),
    ],
)
def test_opaque_values(raw: str, canonical: str) -> None:
    assert normalize("wechat_id", raw, opaque=True) == canonical


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("   ", "wechat_id: empty value"),
        ("y" * 257, "wechat_id: 257 characters, max 256"),
        ("ab\tcd", "wechat_id: control character U+0009 at position 3"),
        ("ab\x00", "wechat_id: control character U+0000 at position 3"),
        ("a\ud800b", "wechat_id: not valid Unicode (lone surrogate U+D800)"),
    ],
)
def test_opaque_rejections(raw: str, message: str) -> None:
    assert reason("wechat_id", raw, opaque=True) == message


KNOWN = "phone, id_card, bank_card, uscc, email, device_id, ip"


def test_normalize_refuses_unknown_or_misdeclared_kinds() -> None:
    with pytest.raises(InputError) as info:
        normalize("phnoe", "13800138000")
    assert str(info.value) == (
        f"unknown kind 'phnoe'; known kinds: {KNOWN}, or add it to opaque_kinds in the config"
    )
    assert not isinstance(info.value, InvalidIdentifier)
    with pytest.raises(
        InputError, match="'phone' is a built-in kind and cannot be declared opaque"
    ):
        normalize("phone", "13800138000", opaque=True)
    with pytest.raises(InputError, match="invalid kind name 'WeChat'"):
        normalize("WeChat", "x", opaque=True)


@pytest.mark.parametrize("name", ["wechat_id", "qq", "alipay_account", "a" + "b" * 31, "x1_"])
def test_check_kind_name_accepts(name: str) -> None:
    assert check_kind_name(name) == name


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("WeChat", "invalid kind name 'WeChat': use 2 to 32 characters from a-z, 0-9 and '_', "
         "starting with a letter"),
        ("a", "invalid kind name 'a'"),
        ("1abc", "invalid kind name '1abc'"),
        ("_abc", "invalid kind name '_abc'"),
        ("a" * 33, "invalid kind name"),
        ("we-chat", "invalid kind name 'we-chat'"),
        ("微信", "invalid kind name '微信'"),
        ("qq\n", "invalid kind name 'qq\\n'"),
        ("phone", "'phone' is a built-in kind and cannot be declared opaque"),
    ],
)  # fmt: skip
def test_check_kind_name_rejects(name: str, message: str) -> None:
    with pytest.raises(InputError) as info:
        check_kind_name(name)
    assert str(info.value).startswith(message)


def test_registry() -> None:
    registry = KindRegistry(frozenset({"qq", "alipay"}))
    assert registry.all() == (*BUILTIN_KINDS, "alipay", "qq")
    assert KindRegistry().all() == BUILTIN_KINDS
    assert registry.check("qq") == "qq"
    assert registry.check("ip") == "ip"
    assert registry.normalize("phone", "138 0013 8000") == MOBILE
    assert registry.normalize("qq", " 10001 ") == "10001"
    with pytest.raises(InputError) as info:
        registry.check("phnoe")
    assert str(info.value) == (
        f"unknown kind 'phnoe'; known kinds: {KNOWN}, alipay, qq, "
        "or add it to opaque_kinds in the config"
    )
    with pytest.raises(InputError, match="unknown kind 'wechat'"):
        registry.normalize("wechat", "x")
    with pytest.raises(InvalidIdentifier, match=r"^qq: empty value$"):
        registry.normalize("qq", " ")


def test_registry_validates_and_freezes_its_names() -> None:
    with pytest.raises(InputError, match="'email' is a built-in kind"):
        KindRegistry(frozenset({"email"}))
    with pytest.raises(InputError, match="invalid kind name 'Bad'"):
        KindRegistry(frozenset({"Bad"}))
    from_list = KindRegistry(["qq", "qq"])  # type: ignore[arg-type]  # as read from TOML
    assert from_list.opaque == frozenset({"qq"})
    assert from_list == KindRegistry(frozenset({"qq"}))
    assert hash(from_list) == hash(KindRegistry(frozenset({"qq"})))
    with pytest.raises(AttributeError):
        from_list.opaque = frozenset()  # type: ignore[misc]


# --- robustness over arbitrary input ----------------------------------------------------------

NOISY = st.text(
    st.sampled_from("0123456789+-() .xX@:/。Z" + full_width("%86+a"))
    | st.characters(codec="utf-8"),
    max_size=40,
)


@pytest.mark.parametrize("kind", [*BUILTIN_KINDS, "opaque_kind"])
@given(raw=NOISY)
def test_any_text_is_rejected_cleanly_or_normalised_idempotently(kind: str, raw: str) -> None:
    opaque = kind not in BUILTIN_KINDS
    try:
        canonical = normalize(kind, raw, opaque)
    except InvalidIdentifier as exc:
        assert exc.kind == kind and exc.reason
        return
    assert normalize(kind, canonical, opaque) == canonical
    oprf_input(kind, canonical)  # every canonical value is encodable


# --- oprf_input -------------------------------------------------------------------------------


def test_oprf_input_layout() -> None:
    assert oprf_input("phone", MOBILE) == (
        b"aif-node/v1/clue" + b"\x05" + b"phone" + b"\x00\x0e" + b"+8613800138000"
    )
    value = "用户@qq.com"  # length counts UTF-8 bytes, not characters
    assert oprf_input("email", value) == (
        b"aif-node/v1/clue\x05email\x00\x0d" + "用户@qq.com".encode()
    )
    assert oprf_input("x" * 255, "") == b"aif-node/v1/clue\xff" + b"x" * 255 + b"\x00\x00"


def test_oprf_input_refuses_unencodable_lengths() -> None:
    with pytest.raises(InputError, match="kind name of 256 bytes"):
        oprf_input("x" * 256, "v")
    with pytest.raises(InputError, match="kind name of 0 bytes"):
        oprf_input("", "v")
    with pytest.raises(InputError, match="value of 65536 bytes"):
        oprf_input("qq", "v" * 65536)


def parse_oprf_input(data: bytes) -> tuple[str, str]:
    """Decode the documented layout; fails if anything is left over or missing."""
    prefix = b"aif-node/v1/clue"
    assert data.startswith(prefix)
    rest = data[len(prefix) :]
    kind_len = rest[0]
    kind = rest[1 : 1 + kind_len]
    value_len = int.from_bytes(rest[1 + kind_len : 3 + kind_len], "big")
    value = rest[3 + kind_len :]
    assert len(kind) == kind_len and len(value) == value_len
    return kind.decode(), value.decode()


KINDS = st.sampled_from([*BUILTIN_KINDS, "qq", "p"])
VALUES = st.text(st.characters(codec="utf-8"), max_size=30)


@given(KINDS, VALUES)
def test_oprf_input_decodes_back_to_kind_and_value(kind: str, value: str) -> None:
    assert parse_oprf_input(oprf_input(kind, value)) == (kind, value)


@given(KINDS, KINDS, VALUES)
def test_oprf_input_differs_across_kinds(kind_a: str, kind_b: str, value: str) -> None:
    assume(kind_a != kind_b)
    assert oprf_input(kind_a, value) != oprf_input(kind_b, value)


@given(st.tuples(KINDS, VALUES), st.tuples(KINDS, VALUES))
def test_oprf_input_is_injective(a: tuple[str, str], b: tuple[str, str]) -> None:
    assume(a != b)
    assert oprf_input(*a) != oprf_input(*b)


def test_oprf_input_separates_a_phone_from_a_bank_card_with_the_same_digits() -> None:
    digits = "6213800138000"
    assert oprf_input("phone", digits) != oprf_input("bank_card", digits)
    assert oprf_input("phone", "1" + "2") != oprf_input("phone1", "2")
