"""Node IDs, certificates and member cards."""

import json
import re

import pytest
from cryptography import x509
from hypothesis import given
from hypothesis import strategies as st

from node.errors import InputError
from node.identity import MemberCard, NodeID, generate_identity, split_host_port


@pytest.fixture(scope="module")
def ident():
    return generate_identity("Bank of Examples")


def test_node_id_format_is_grouped_base32_with_check_characters(ident) -> None:
    text = str(ident.node_id)
    assert re.fullmatch(r"([A-Z2-7]{7}-){7}[A-Z2-7]{7}", text)
    assert NodeID.parse(text) == ident.node_id


@given(st.binary(min_size=32, max_size=32))
def test_node_id_roundtrips_through_any_spelling(digest: bytes) -> None:
    node_id = NodeID(digest)
    text = str(node_id)
    assert NodeID.parse(text.lower()) == node_id
    assert NodeID.parse(text.replace("-", " ")) == node_id
    # Without the check characters (every 14th character) it still parses.
    bare = text.replace("-", "")
    assert NodeID.parse("".join(c for i, c in enumerate(bare) if i % 14 != 13)) == node_id


def test_node_id_typo_is_caught(ident) -> None:
    text = str(ident.node_id)
    swapped = ("B" if text[0] == "A" else "A") + text[1:]
    with pytest.raises(InputError, match="check character"):
        NodeID.parse(swapped)


@pytest.mark.parametrize("bad", ["", "ABC", "1" * 56, "A" * 60])
def test_node_id_garbage_is_refused(bad: str) -> None:
    with pytest.raises(InputError):
        NodeID.parse(bad)


def test_certificate_binds_the_node_id(ident) -> None:
    cert = ident.certificate
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == [ident.node_id.dns_name]
    assert ident.node_id == NodeID.from_certificate(cert)


def test_card_roundtrip(ident) -> None:
    card = MemberCard("bank", ident.node_id, ("bank.example:7443",), ident.cert_pem)
    again = MemberCard.from_json(card.to_json())
    assert again == card


def test_card_with_foreign_node_id_is_refused(ident) -> None:
    other = generate_identity("other")
    card = json.loads(MemberCard("bank", ident.node_id, (), ident.cert_pem).to_json())
    card["node_id"] = str(other.node_id)
    with pytest.raises(InputError, match="does not match its certificate"):
        MemberCard.from_json(json.dumps(card), source="bank.json")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not json", "not JSON"),
        ("[]", "expected a JSON object"),
        ('{"name": "x"}', "'node_id' missing"),
    ],
)
def test_malformed_cards_name_the_problem(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        MemberCard.from_json(text, source="card.json")


@pytest.mark.parametrize(
    ("addr", "expected"),
    [("127.0.0.1:7443", ("127.0.0.1", 7443)), ("[::1]:80", ("::1", 80)), ("a.b:1", ("a.b", 1))],
)
def test_host_port(addr: str, expected: tuple[str, int]) -> None:
    assert split_host_port(addr) == expected


@pytest.mark.parametrize("addr", ["host", "host:0", "host:99999", ":80", "::1:80"])
def test_bad_host_port(addr: str) -> None:
    with pytest.raises(InputError):
        split_host_port(addr)
