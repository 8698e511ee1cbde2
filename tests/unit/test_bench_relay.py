"""The benchmark's wire meter forwards every byte both ways and counts each exactly once."""

from __future__ import annotations

import os
import socket
import threading

from bench.relay import CountingRelay, Traffic


def _echo_server() -> tuple[socket.socket, threading.Thread]:
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            while data := conn.recv(65536):
                conn.sendall(data)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return listener, thread


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    parts, got = [], 0
    while got < size:
        chunk = sock.recv(size - got)
        assert chunk, "connection closed early"
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


def test_relay_forwards_and_counts_both_directions() -> None:
    listener, thread = _echo_server()
    payload = os.urandom(3 * 1024 * 1024 + 17)  # more than one relay chunk
    with listener, CountingRelay(listener.getsockname()) as relay:
        assert relay.traffic() == Traffic(0, 0)
        with socket.create_connection(("127.0.0.1", relay.port)) as conn:
            sender = threading.Thread(target=conn.sendall, args=(payload,))
            sender.start()
            echoed = _recv_exactly(conn, len(payload))
            sender.join()
            conn.shutdown(socket.SHUT_WR)
            assert conn.recv(1) == b""  # the half-close reached the server and came back
        thread.join(timeout=5)
        assert echoed == payload
        traffic = relay.traffic()
    assert traffic == Traffic(up=len(payload), down=len(payload))
    assert traffic.total == 2 * len(payload)
    assert traffic - Traffic(1, 2) + Traffic(1, 2) == traffic
