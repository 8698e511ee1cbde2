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
        ("[schedul]\nmatch_interval = '1h'\n", "unknown setting(s) in the file: schedul"),
        ("[node.extra]\nx = 5\n", "unknown setting(s) in [node]: extra"),
        ("[serve]\nmax_calls_per_peer = 40\n", "max_calls_per_peer (40) must be"),
        ("[serve]\nmax_batch_elements = 'many'\n", "[serve] max_batch_elements: expected a whole"),
        ("[schedule]\nmatch_interval = 'often'\n", "[schedule] match_interval: expected a dur"),
        ("[schedule]\njitter = 1.5\n", "[schedule] jitter must be a fraction"),
        ("[logging]\nformat = 'xml'\n", "[logging] format must be one of text, json"),
        ("[metrics]\nlisten = 'nowhere'\n", "metrics listen address"),
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


def test_durations_read_as_seconds(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    base = NodeConfig(name="bank", listen="127.0.0.1:7443", advertise=()).to_toml()
    path.write_text(
        base + "[schedule]\nmatch_interval = '6h'\nretry_initial = 90\nretry_max = '1d'\n"
        "[match]\ncall_timeout_s = '2m'\n[logging]\nformat = 'json'\n"
    )
    loaded = NodeConfig.load(path)
    assert loaded.schedule.match_interval == 6 * 3600
    assert loaded.schedule.retry_initial == 90
    assert loaded.schedule.retry_max == 86400
    assert loaded.match.call_timeout_s == 120
    assert loaded.logging.format == "json"
    assert loaded.metrics.listen == ""
    flagged = loaded.with_overrides(log_format="text", metrics_listen="127.0.0.1:9464")
    assert (flagged.logging.format, flagged.metrics.listen) == ("text", "127.0.0.1:9464")
