"""Mutual-TLS credentials for the node's server and for channels to its peers.

There is no certificate authority: every certificate is self-signed and trusted only because it
is pinned. The server's trust store is the set of pinned peers' certificates, re-read on each
TLS handshake so that `aif-node peers add|remove`, run by another process, takes effect without
a restart. A client trusts exactly one certificate, that of the peer it dials, and checks the
name bound into it (the peer's NodeID.dns_name), so a server answering with any other key, even
another pinned peer's, fails the handshake.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Iterable
from typing import cast

import grpc
from cryptography import x509

from node.identity import Identity

_log = logging.getLogger(__name__)

PinnedCertificates = Callable[[], Iterable[bytes]]
"""Returns the PEM certificates of the peers pinned now; called on every TLS handshake."""


def client_root_bundle(own_cert_pem: bytes, pinned: Iterable[bytes]) -> bytes:
    """The server's trust store: the pinned peers' certificates plus the node's own.

    The node's own certificate lets `aif-node health` check its own server; the auth
    interceptor admits that identity to the health service and nothing else. Certificates
    that do not parse are left out (and logged) so that one bad row cannot lock every peer out.
    """
    pems: set[bytes] = {_normalised(own_cert_pem)}
    for pem in pinned:
        try:
            x509.load_pem_x509_certificate(pem)
        except ValueError as exc:
            _log.warning("a pinned certificate does not parse and is not trusted: %s", exc)
            continue
        pems.add(_normalised(pem))
    return b"".join(sorted(pems))


def _normalised(pem: bytes) -> bytes:
    return pem.strip() + b"\n"


class PinnedRootsFetcher:
    """gRPC's certificate_configuration_fetcher: a new configuration only when the pinned set
    changed, None otherwise (gRPC then keeps the current TLS context, which is the cheap path).

    Called by gRPC on each incoming handshake, from its own threads. If reading the pinned set
    fails, the previous trust store stays: a removed peer that could still complete a
    handshake is refused on its first call by the auth interceptor, which reads the store itself.
    """

    def __init__(self, identity: Identity, pinned: PinnedCertificates) -> None:
        self._identity = identity
        self._pinned = pinned
        self._lock = threading.Lock()
        self._digest = b""

    def initial(self) -> grpc.ServerCertificateConfiguration:
        """The configuration to start with; fails loudly if the pinned set cannot be read."""
        bundle = self._bundle()
        with self._lock:
            self._digest = hashlib.sha256(bundle).digest()
        return self._configuration(bundle)

    def __call__(self) -> grpc.ServerCertificateConfiguration | None:
        try:
            bundle = self._bundle()
        except Exception:
            _log.exception("cannot read the pinned peers; keeping the current trust store")
            return None
        digest = hashlib.sha256(bundle).digest()
        with self._lock:
            if digest == self._digest:
                return None
            self._digest = digest
        return self._configuration(bundle)

    def _bundle(self) -> bytes:
        return client_root_bundle(self._identity.cert_pem, self._pinned())

    def _configuration(self, bundle: bytes) -> grpc.ServerCertificateConfiguration:
        _log.info("trust store loaded: %d certificate(s)", bundle.count(b"-----BEGIN"))
        return grpc.ssl_server_certificate_configuration(
            [(self._identity.key_pem, self._identity.cert_pem)], root_certificates=bundle
        )


def server_credentials(identity: Identity, pinned: PinnedCertificates) -> grpc.ServerCredentials:
    """TLS 1.2+ server credentials requiring a client certificate from the current pinned set."""
    fetcher = PinnedRootsFetcher(identity, pinned)
    return grpc.dynamic_ssl_server_credentials(
        fetcher.initial(),
        # The stub types the fetcher as never returning None; gRPC documents None as "unchanged".
        cast(Callable[[], grpc.ServerCertificateConfiguration], fetcher),
        require_client_authentication=True,
    )


def channel_credentials(identity: Identity, peer_cert_pem: bytes) -> grpc.ChannelCredentials:
    """Client credentials that trust only `peer_cert_pem` and present the node's certificate.

    Use with grpc_options.channel_options(..., target_name=peer NodeID.dns_name): the chain
    check alone would accept the pinned certificate under any name; the name check binds it to
    the node ID that was dialled.
    """
    return grpc.ssl_channel_credentials(
        root_certificates=_normalised(peer_cert_pem),
        private_key=identity.key_pem,
        certificate_chain=identity.cert_pem,
    )
