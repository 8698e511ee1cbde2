"""The metrics endpoint: a registry over HTTP, a taken port named in a ConfigError."""

from __future__ import annotations

import socket
import urllib.request

import pytest
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.parser import text_string_to_metric_families

from node.errors import ConfigError
from node.telemetry.endpoint import MetricsEndpoint


def _free_address() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{sock.getsockname()[1]}"


def test_serves_its_own_registry_and_frees_the_port_on_close() -> None:
    registry = CollectorRegistry()
    Counter("aif_test_things", "Things.", registry=registry).inc(3)
    address = _free_address()
    url = f"http://{address}/metrics"
    with MetricsEndpoint(address, registry), urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    # Its own registry only: nothing from the process-wide default (python_info, process_*).
    assert {name.removesuffix("_created") for name in families} == {"aif_test_things"}
    assert families["aif_test_things"].samples[0].value == 3
    with MetricsEndpoint(address, CollectorRegistry()):
        pass


def test_a_taken_port_is_a_config_error_naming_the_address() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        address = f"127.0.0.1:{sock.getsockname()[1]}"
        with pytest.raises(
            ConfigError, match=f"cannot serve metrics on {address}: address already in use"
        ):
            MetricsEndpoint(address, CollectorRegistry())
