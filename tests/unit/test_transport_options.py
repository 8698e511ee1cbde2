"""gRPC options: client and server keepalive agree, and limits come from ServeLimits."""

from __future__ import annotations

from node.config import ServeLimits
from node.transport import grpc_options
from node.transport.client import dial_address


def test_client_keepalive_never_counts_as_a_ping_strike() -> None:
    client = dict(grpc_options.channel_options(1024, "x.aif-node"))
    server = dict(grpc_options.server_options(ServeLimits()))
    assert (
        client["grpc.keepalive_time_ms"] >= server["grpc.http2.min_ping_interval_without_data_ms"]
    )
    assert (
        client["grpc.keepalive_permit_without_calls"]
        == server["grpc.keepalive_permit_without_calls"]
    )


def test_server_options_follow_the_limits() -> None:
    limits = ServeLimits(max_concurrent_rpcs=5, max_message_bytes=123_456)
    options = dict(grpc_options.server_options(limits))
    assert options["grpc.max_receive_message_length"] == 123_456
    assert options["grpc.max_send_message_length"] == 123_456
    assert options["grpc.max_concurrent_streams"] == 5
    assert options["grpc.so_reuseport"] == 0


def test_channel_checks_the_pinned_name() -> None:
    options = dict(grpc_options.channel_options(99, "abc.aif-node"))
    assert options["grpc.ssl_target_name_override"] == "abc.aif-node"
    assert options["grpc.max_receive_message_length"] == 99


def test_wildcard_listen_addresses_are_dialled_on_loopback() -> None:
    assert dial_address("0.0.0.0:7443") == "127.0.0.1:7443"
    assert dial_address("[::]:7443") == "[::1]:7443"
    assert dial_address("10.1.2.3:7443") == "10.1.2.3:7443"
