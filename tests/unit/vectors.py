"""Loader for the published test vectors in tests/vectors/ (each file notes its source).

Turns the JSON files into small frozen records for `pytest.mark.parametrize`, so tests
never carry vector bytes of their own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

VECTORS_DIR = Path(__file__).resolve().parent.parent / "vectors"


@cache
def load(name: str) -> dict[str, Any]:
    with (VECTORS_DIR / name).open(encoding="utf-8") as f:
        data: dict[str, Any] = json.load(f)
    return data


def _hex_list(value: str) -> list[bytes]:
    return [bytes.fromhex(v) for v in value.split(",")]


@dataclass(frozen=True)
class OprfVector:
    """One RFC 9497 Appendix A vector; batch fields hold one value per batch item."""

    identifier: str
    mode: int
    number: int
    context_string: bytes
    group_dst: bytes
    seed: bytes
    key_info: bytes
    sk: bytes
    pk: bytes | None
    inputs: list[bytes]
    blinds: list[bytes]
    blinded: list[bytes]
    evaluated: list[bytes]
    outputs: list[bytes]

    @property
    def id(self) -> str:
        return f"mode{self.mode}-tv{self.number}-batch{len(self.inputs)}"


def rfc9497(identifier: str, modes: tuple[int, ...]) -> list[OprfVector]:
    out = []
    for suite in load("rfc9497.json")["suites"]:
        if suite["identifier"] != identifier or suite["mode"] not in modes:
            continue
        for v in suite["vectors"]:
            vector = OprfVector(
                identifier=identifier,
                mode=suite["mode"],
                number=v["Test vector"],
                context_string=bytes.fromhex(suite["contextString"]),
                group_dst=bytes.fromhex(suite["groupDST"]),
                seed=bytes.fromhex(suite["Seed"]),
                key_info=bytes.fromhex(suite["KeyInfo"]),
                sk=bytes.fromhex(suite["skSm"]),
                pk=bytes.fromhex(suite["pkSm"]) if "pkSm" in suite else None,
                inputs=_hex_list(v["Input"]),
                blinds=_hex_list(v["Blind"]),
                blinded=_hex_list(v["BlindedElement"]),
                evaluated=_hex_list(v["EvaluationElement"]),
                outputs=_hex_list(v["Output"]),
            )
            if len(vector.inputs) != v["Batch size"]:
                raise ValueError(f"{vector.id}: batch size does not match the values")
            out.append(vector)
    return out


@dataclass(frozen=True)
class XmdVector:
    dst: bytes
    msg: bytes
    len_in_bytes: int
    uniform_bytes: bytes


def rfc9380_expand_xmd_sha512() -> list[XmdVector]:
    data = load("rfc9380_expand_xmd_sha512.json")
    dst = data["DST"].encode("ascii")
    return [
        XmdVector(
            dst=dst,
            msg=t["msg"].encode("ascii"),
            len_in_bytes=int(t["len_in_bytes"], 16),
            uniform_bytes=bytes.fromhex(t["uniform_bytes"]),
        )
        for t in data["tests"]
    ]


@dataclass(frozen=True)
class InvalidEncoding:
    reason: str
    encoding: bytes


@dataclass(frozen=True)
class UniformVector:
    label: str | None
    uniform_bytes: bytes
    element: bytes


def rfc9496_multiples() -> list[bytes]:
    """Encodings of k*G for k = 0..15 (RFC 9496 A.1)."""
    return [bytes.fromhex(h) for h in load("rfc9496.json")["multiples"]]


def rfc9496_invalid_encodings() -> list[InvalidEncoding]:
    return [
        InvalidEncoding(group["reason"], bytes.fromhex(h))
        for group in load("rfc9496.json")["invalidEncodings"]
        for h in group["encodings"]
    ]


def rfc9496_from_uniform() -> list[UniformVector]:
    return [
        UniformVector(
            v.get("label"), bytes.fromhex(v["uniform_bytes"]), bytes.fromhex(v["element"])
        )
        for v in load("rfc9496.json")["fromUniformBytes"]
    ]
