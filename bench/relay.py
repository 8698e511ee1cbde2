"""A TCP relay that counts the bytes crossing it: the benchmark's wire meter.

A node's member card advertises the relay's port instead of its own, so every byte a peer
sends it (TLS records, HTTP/2 frames, protobuf payloads, health checks) passes here and is
counted as it is on a real network. The relay must not be what limits the match: each
direction of each connection has its own thread moving up to 1 MiB per system call (the
GIL is released in recv and send), and Nagle is off on both legs as gRPC has it off on its
own sockets.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from dataclasses import dataclass

_CHUNK = 1 << 20


@dataclass(frozen=True)
class Traffic:
    """Bytes relayed: `up` from the dialling side (the matcher), `down` back to it."""

    up: int = 0
    down: int = 0

    @property
    def total(self) -> int:
        return self.up + self.down

    def __sub__(self, other: Traffic) -> Traffic:
        return Traffic(self.up - other.up, self.down - other.down)

    def __add__(self, other: Traffic) -> Traffic:
        return Traffic(self.up + other.up, self.down + other.down)


class CountingRelay:
    """Listens on 127.0.0.1 (port chosen by the OS) and forwards every connection to
    `target`; `traffic()` is the running count. Use as a context manager."""

    def __init__(self, target: tuple[str, int]) -> None:
        self._target = target
        self._lock = threading.Lock()
        self._up = 0
        self._down = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="relay-accept", daemon=True)

    def __enter__(self) -> CountingRelay:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._closed.set()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()

    def traffic(self) -> Traffic:
        with self._lock:
            return Traffic(self._up, self._down)

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self._target)
            except OSError:
                client.close()
                continue
            for sock in (client, upstream):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            legs = _Pair(client, upstream)
            for src, dst, up in ((client, upstream, True), (upstream, client, False)):
                threading.Thread(
                    target=self._pump, args=(src, dst, up, legs), name="relay-pump", daemon=True
                ).start()

    def _pump(self, src: socket.socket, dst: socket.socket, up: bool, legs: _Pair) -> None:
        buf = bytearray(_CHUNK)
        view = memoryview(buf)
        try:
            while True:
                size = src.recv_into(buf)
                if size == 0:
                    break
                dst.sendall(view[:size])
                with self._lock:
                    if up:
                        self._up += size
                    else:
                        self._down += size
        except OSError:  # a reset on either leg ends both directions
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        finally:
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)
            legs.done()


class _Pair:
    """Closes both sockets of a connection once both directions have ended."""

    def __init__(self, a: socket.socket, b: socket.socket) -> None:
        self._socks = (a, b)
        self._left = 2
        self._lock = threading.Lock()

    def done(self) -> None:
        with self._lock:
            self._left -= 1
            last = self._left == 0
        if last:
            for sock in self._socks:
                sock.close()
