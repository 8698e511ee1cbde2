"""Every gRPC channel and server option the node sets, in one place, each with its reason.

Client and server keepalive settings are chosen together: a client that pings more often than
the server permits is sent GOAWAY ("too_many_pings") and loses its calls mid-match, so the
client's ping interval is never below the server's minimum, and both sides agree on whether
pings are allowed on a connection without calls.
"""

from __future__ import annotations

from node.config import ServeLimits

Options = list[tuple[str, int | str]]

# The client pings after this long without activity on the connection. Middleboxes (NAT,
# firewalls in front of a member's node) drop silent TCP flows after a few minutes; one ping a
# minute keeps an idle channel alive and notices a vanished peer within a minute or so.
CLIENT_KEEPALIVE_TIME_MS = 60_000
# The server pings its clients less often: it only needs to notice clients that vanished while
# holding a stream, so that their calls end and free a concurrency slot before their deadline
# (an evaluation stream may be allowed an hour).
SERVER_KEEPALIVE_TIME_MS = 120_000
# A ping unanswered for this long means the peer is gone: the transport is closed and its calls
# fail with UNAVAILABLE instead of hanging until their deadlines. gRPC also sets it as the
# socket's TCP_USER_TIMEOUT: data sent and unacknowledged this long closes the connection. That
# is also the soonest a call with data caught on a dead link can end, whatever its deadline:
# gRPC cannot release the call while TCP still holds its bytes.
KEEPALIVE_TIMEOUT_MS = 20_000
# The server refuses (counts a strike against) pings that come more often than this. It must not
# exceed CLIENT_KEEPALIVE_TIME_MS, or our own clients' keepalive would get them disconnected.
SERVER_MIN_PING_INTERVAL_MS = 30_000
# Strikes before the server closes an abusive connection (gRPC's default, made explicit): pings
# cost the server work, and only a misbehaving client exceeds the interval above.
SERVER_MAX_PING_STRIKES = 2
# Keepalive on connections without calls: allowed on both sides, so that the client's pings
# between the RPCs of one match (info, evaluate, sync, per kind) are never counted as strikes.
PERMIT_KEEPALIVE_WITHOUT_CALLS = 1
# 0 = no limit on pings sent while no data flows. A peer may be silent for a while inside a
# call (evaluating a large batch, building a tag set), and keepalive must go on probing then.
MAX_PINGS_WITHOUT_DATA = 0


def server_options(limits: ServeLimits) -> Options:
    """Options for the node's grpc.server."""
    max_message_bytes = limits.max_message_bytes
    return [
        # Explicit bounds on what one message may hold, in both directions: a peer cannot make
        # the server buffer more than this per message, and our replies (tag chunks) are sized to
        # fit. gRPC's defaults (4 MiB receive, unlimited send) are not a policy.
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.max_send_message_length", max_message_bytes),
        # Refuse a port that another process already listens on. With SO_REUSEPORT two `serve`
        # processes on one port would silently share connections between two nodes.
        ("grpc.so_reuseport", 0),
        # One connection may not open more HTTP/2 streams than the server will ever run at once;
        # further streams on it wait in the client's queue instead of costing server memory.
        ("grpc.max_concurrent_streams", limits.max_concurrent_rpcs),
        ("grpc.keepalive_time_ms", SERVER_KEEPALIVE_TIME_MS),
        ("grpc.keepalive_timeout_ms", KEEPALIVE_TIMEOUT_MS),
        ("grpc.keepalive_permit_without_calls", PERMIT_KEEPALIVE_WITHOUT_CALLS),
        ("grpc.http2.min_ping_interval_without_data_ms", SERVER_MIN_PING_INTERVAL_MS),
        ("grpc.http2.max_ping_strikes", SERVER_MAX_PING_STRIKES),
        ("grpc.http2.max_pings_without_data", MAX_PINGS_WITHOUT_DATA),
    ]


def channel_options(max_message_bytes: int, target_name: str) -> Options:
    """Options for a channel to one peer, whose certificate names `target_name` (a NodeID's
    dns_name): TLS then checks the name as well as the pinned certificate, whatever host or IP
    address the peer is dialled at."""
    return [
        ("grpc.ssl_target_name_override", target_name),
        # The same bound as the server's, so a reply the peer is allowed to send is one we accept.
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.keepalive_time_ms", CLIENT_KEEPALIVE_TIME_MS),
        ("grpc.keepalive_timeout_ms", KEEPALIVE_TIMEOUT_MS),
        ("grpc.keepalive_permit_without_calls", PERMIT_KEEPALIVE_WITHOUT_CALLS),
        ("grpc.http2.max_pings_without_data", MAX_PINGS_WITHOUT_DATA),
        # Each channel owns its connection: closing one PeerClient never affects another, and a
        # connection is never shared between channels (gRPC otherwise pools subchannels globally).
        ("grpc.use_local_subchannel_pool", 1),
        # Transparent retries stay on (gRPC's default): they only replay calls that never reached
        # the server, and a retried evaluation batch is charged once (its batch_id).
        ("grpc.enable_retries", 1),
    ]
