"""The TOML config: what init writes reads back; mistakes are named with the file."""

import re
from pathlib import Path

import pytest

from node.config import NodeConfig, ServeLimits
from node.errors import ConfigError, InputError


def test_roundtrip_and_sections(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    config = NodeConfig(name="bank", listen="0.0.0.0:7443", advertise=("bank.example:7443",))
    path.write_text(
        config.to_toml() + "\n[serve]\nmax_calls_per_peer = 3\n[match]\ncall_timeout_s = 5\n"
    )
    loaded = NodeConfig.load(path)
    assert (loaded.name, loaded.listen, loaded.advertise) == (
        "bank",
        "0.0.0.0:7443",
        ("bank.example:7443",),
    )
    assert loaded.serve.max_calls_per_peer == 3
    assert loaded.match.call_timeout_s == 5.0


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("[serve]\nmax_threads = 3\n", "unknown setting(s) in [serve]: max_threads"),
        ("[serve]\nmax_calls_per_peer = 40\n", "max_calls_per_peer (40) must be"),
        ("[serve]\nmax_batch_elements = 'many'\n", "invalid literal"),
        ("[kinds]\nopaque = ['Bad Kind']\n", "Bad Kind"),
    ],
)
def test_mistakes_are_named(tmp_path: Path, extra: str, message: str) -> None:
    path = tmp_path / "config.toml"
    base = NodeConfig(name="bank", listen="127.0.0.1:7443", advertise=()).to_toml()
    path.write_text(base.replace("[kinds]\nopaque = []\n", "") + extra)
    with pytest.raises(ConfigError, match=f"{path.name}: .*{re.escape(message)}"):
        NodeConfig.load(path)


def test_one_peer_must_not_be_able_to_take_every_slot() -> None:
    with pytest.raises(InputError, match="max_calls_per_peer"):
        ServeLimits(max_concurrent_rpcs=4, max_calls_per_peer=4)
