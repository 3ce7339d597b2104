"""DTLS-SRTP for one endpoint: pyOpenSSL DTLS on memory BIOs, SRTP keying with pylibsrtp.

Role: everything between "a datagram from a validated address" and "plain RTP/RTCP/SCTP
bytes". A `DtlsSrtpTransport` runs the DTLS 1.2 handshake (RFC 6347) in the client (active) or
server (passive) role, checks the peer certificate against the SDP `a=fingerprint`
(RFC 8122), negotiates `use_srtp` (RFC 5764) and derives two SRTP sessions from the exported
keying material. After that, SRTP/SRTCP goes straight through pylibsrtp with no awaits;
DTLS application data (SCTP, RFC 8261) is passed to `on_data`.

Nothing here does socket I/O: datagrams come in through `datagram_received` and go out through
the `send` callback, so the transport runs the same over a `udp.MediaSocket` or in memory.
The handshake retransmission timer runs on the event loop (`loop.call_later`).

May import: the standard library, `parlour.domain.clock`, `parlour.media.srtp`,
`parlour.media.fastpath`, pyOpenSSL,
cryptography, pylibsrtp.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import socket
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import pylibsrtp
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from OpenSSL import SSL, crypto

from parlour.domain.clock import SystemClock
from parlour.media import fastpath
from parlour.media.srtp import SrtpSession

__all__ = [
    "DEFAULT_SRTP_PROFILES",
    "SRTP_AEAD_AES_128_GCM",
    "SRTP_AES128_CM_SHA1_80",
    "Certificate",
    "DtlsSrtpTransport",
    "DtlsState",
    "fingerprint_digest",
    "parse_fingerprint",
]

logger = logging.getLogger(__name__)

DtlsState = Literal["new", "connecting", "connected", "closed", "failed"]

SRTP_AEAD_AES_128_GCM: Final = "SRTP_AEAD_AES_128_GCM"
SRTP_AES128_CM_SHA1_80: Final = "SRTP_AES128_CM_SHA1_80"
DEFAULT_SRTP_PROFILES: Final = (SRTP_AEAD_AES_128_GCM, SRTP_AES128_CM_SHA1_80)
"""The `use_srtp` profiles we offer and accept, most preferred first (GCM is cheaper)."""

_DIGESTS: Final[dict[str, Callable[[], hashes.HashAlgorithm]]] = {
    "sha-256": hashes.SHA256,
    "sha-384": hashes.SHA384,
    "sha-512": hashes.SHA512,
}
_DTLS1_2_VERSION: Final = 0xFEFD
_DTLS_RECORD_HEADER: Final = 13  # DTLS 1.2 record header length (RFC 6347 §4.1)
_KEYING_LABEL: Final = b"EXTRACTOR-dtls_srtp"  # RFC 5764 §4.2
_RECV_SIZE: Final = 16384  # the largest DTLS plaintext record
_BIO_READ_SIZE: Final = 8192  # one read holds a typical flight; more are read in a loop
_CIPHERS: Final = (
    b"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    b"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-AES128-GCM-SHA256:"
    b"ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA:"
    b"ECDHE-RSA-AES128-SHA:ECDHE-RSA-AES256-SHA"
)


@dataclass(frozen=True)
class _SrtpProfile:
    libsrtp_profile: int
    key_length: int
    salt_length: int


_SRTP_PROFILES: Final[dict[str, _SrtpProfile]] = {
    SRTP_AEAD_AES_128_GCM: _SrtpProfile(pylibsrtp.Policy.SRTP_PROFILE_AEAD_AES_128_GCM, 16, 12),
    SRTP_AES128_CM_SHA1_80: _SrtpProfile(pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80, 16, 14),
}


def fingerprint_digest(certificate: x509.Certificate, algorithm: str = "sha-256") -> str:
    """The certificate's fingerprint as SDP writes it: upper-case hex pairs joined by ':'.

    Raises:
        ValueError: `algorithm` is not one of sha-256, sha-384, sha-512.
    """
    digest = _DIGESTS.get(algorithm.lower())
    if digest is None:
        raise ValueError(f"unsupported fingerprint algorithm {algorithm!r}")
    return certificate.fingerprint(digest()).hex(":").upper()


def parse_fingerprint(value: str) -> tuple[str, str]:
    """Split an SDP `a=fingerprint` value ("sha-256 AB:CD:…") into (algorithm, hex).

    Raises:
        ValueError: the value is not "<algorithm> <hex>".
    """
    algorithm, _, digest = value.strip().partition(" ")
    digest = digest.strip()
    if not algorithm or not digest:
        raise ValueError("malformed fingerprint")
    return algorithm.lower(), digest.upper()


class Certificate:
    """A DTLS identity: an ECDSA P-256 key and its self-signed X.509 certificate.

    One certificate may serve many transports; the pyOpenSSL contexts built from it are
    cached and shared.
    """

    def __init__(self, key: ec.EllipticCurvePrivateKey, certificate: x509.Certificate) -> None:
        """Wrap an existing key and certificate (see `generate()` for a new one)."""
        self._key = key
        self._certificate = certificate
        self._contexts: dict[tuple[str, ...], SSL.Context] = {}

    @classmethod
    def generate(
        cls,
        *,
        valid_for: dt.timedelta = dt.timedelta(days=30),
        now: dt.datetime | None = None,
    ) -> Certificate:
        """Generate an ECDSA P-256 key and a self-signed certificate for it.

        Args:
            valid_for: lifetime from `now` (peers check the fingerprint, not the dates).
            now: the issue time; defaults to the system clock.
        """
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, os.urandom(16).hex())])
        issued = now if now is not None else SystemClock().now()
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(issued - dt.timedelta(days=1))
            .not_valid_after(issued + valid_for)
            .sign(key, hashes.SHA256())
        )
        return cls(key, certificate)

    @property
    def x509(self) -> x509.Certificate:
        """The certificate."""
        return self._certificate

    @property
    def expires(self) -> dt.datetime:
        """When the certificate stops being valid (UTC)."""
        return self._certificate.not_valid_after_utc

    def fingerprint(self, algorithm: str = "sha-256") -> str:
        """The SDP `a=fingerprint` value, e.g. "sha-256 AB:CD:…"."""
        return f"{algorithm.lower()} {fingerprint_digest(self._certificate, algorithm)}"

    def _ssl_context(self, srtp_profiles: tuple[str, ...]) -> SSL.Context:
        context = self._contexts.get(srtp_profiles)
        if context is None:
            context = SSL.Context(SSL.DTLS_METHOD)
            # No tickets (one connection per transport); our own MTU, not the BIO's guess.
            context.set_options(SSL.OP_NO_TICKET | SSL.OP_NO_QUERY_MTU)
            # DTLS 1.2 is what browsers speak, and its records have a fixed header, which
            # `_datagrams` relies on to split a flight into datagrams.
            context.set_max_proto_version(_DTLS1_2_VERSION)
            context.use_certificate(self._certificate)
            context.use_privatekey(self._key)
            context.set_cipher_list(_CIPHERS)
            context.set_tlsext_use_srtp(b":".join(p.encode() for p in srtp_profiles))
            self._contexts[srtp_profiles] = context
        return context


class DtlsSrtpTransport:
    """DTLS-SRTP over memory BIOs for one endpoint (one BUNDLE transport).

    Datagrams from the network go to `datagram_received`; DTLS records feed the handshake or
    yield SCTP data, SRTP/SRTCP is unprotected and passed to `on_rtp`/`on_rtcp`. Outgoing RTP,
    RTCP and SCTP go through `send_rtp`/`send_rtcp`/`send_data`, synchronously, to `send`.
    Nothing raises on bad input: failures are counted and logged at debug.

    Attributes:
        srtp_errors: SRTP/SRTCP packets that failed to unprotect (dropped).
        dropped: incoming datagrams dropped before or after the SRTP session existed, or
            too short to be SRTP.
        send_dropped: outgoing packets dropped (not connected, or protect failed).
        rtp_packets_received, rtp_bytes_received: SRTP packets unprotected (RTCP excluded)
            and their size as received (SRTP header, payload and tag; no UDP/IP headers),
            those forwarded in C by the `ingress` routes included.
        rtp_packets_sent, rtp_bytes_sent: RTP packets protected and handed to `send`, and
            their SRTP size. Read at scrape time (metrics); one increment each per packet.
    """

    def __init__(
        self,
        certificate: Certificate,
        *,
        is_server: bool,
        remote_fingerprints: Sequence[tuple[str, str]],
        send: Callable[[bytes], object],
        on_rtp: Callable[[bytes], None],
        on_rtcp: Callable[[bytes], None],
        on_data: Callable[[bytes], None],
        on_state: Callable[[str], None],
        srtp_profiles: Sequence[str] = DEFAULT_SRTP_PROFILES,
        handshake_timeout: float = 30.0,
        mtu: int = 1200,
        label: str = "",
    ) -> None:
        """Create a transport in state "new"; call `start()` to begin.

        Args:
            certificate: our identity.
            is_server: True for the passive role (`a=setup:passive`, waits for ClientHello),
                False for the active role (sends ClientHello on `start()`).
            remote_fingerprints: the peer's `a=fingerprint` values as (algorithm, hex);
                the peer certificate must match one of them.
            send: writes one datagram to the peer.
            on_rtp: receives each unprotected RTP packet.
            on_rtcp: receives each unprotected (compound) RTCP packet.
            on_data: receives each DTLS application data record (an SCTP packet).
            on_state: called with the new state on every state change.
            srtp_profiles: `use_srtp` profiles to negotiate, most preferred first.
            handshake_timeout: seconds from `start()` until an unfinished handshake fails.
            mtu: largest datagram the handshake may send.
            label: a name for log lines (e.g. the participant SID).

        Raises:
            ValueError: an unknown SRTP profile was requested.
        """
        unknown = [p for p in srtp_profiles if p not in _SRTP_PROFILES]
        if unknown or not srtp_profiles:
            raise ValueError(f"unsupported SRTP profiles {unknown or srtp_profiles!r}")
        self._certificate = certificate
        self._is_server = is_server
        self._remote_fingerprints = [
            (algorithm.lower(), digest.upper()) for algorithm, digest in remote_fingerprints
        ]
        self._send = send
        self._on_rtp = on_rtp
        self._on_rtcp = on_rtcp
        self._on_data = on_data
        self._on_state = on_state
        self._srtp_profiles = tuple(srtp_profiles)
        self._handshake_timeout = handshake_timeout
        self._mtu = mtu
        self._label = label
        self._state: DtlsState = "new"
        self._ssl: SSL.Connection | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._deadline: asyncio.TimerHandle | None = None
        self._rx: SrtpSession | None = None
        self._rx_context = 0  # `receive_context`
        self._tx: SrtpSession | None = None
        self._srtp_profile: str | None = None
        self.srtp_errors = 0
        self.dropped = 0
        self._send_dropped = 0
        self._rtp_packets_received = 0
        self._rtp_bytes_received = 0
        self._rtp_packets_sent = 0
        self._rtp_bytes_sent = 0
        # The C send side (`fastpath`): SRTP-protected RTP goes out through it, from
        # `send_rtp` and from the forwarding lanes of the consumers sending to us.
        native = fastpath.native
        self._egress: Any = native.Egress(send) if native is not None else None
        # The C receive side: what `recv_batch` forwards without Python (`Peer` sets the
        # routes); it counts the packets it takes, which the counters below add.
        self._ingress: Any = native.Ingress() if native is not None else None

    # -- public API ---------------------------------------------------------------------------

    @property
    def egress(self) -> Any:
        """The C send side (`_fastpath.Egress`) RTP goes out through, or None (Python path)."""
        return self._egress

    @property
    def ingress(self) -> Any:
        """The C receive side (`_fastpath.Ingress`): the publisher SSRCs whose packets
        `recv_batch` forwards without returning them (`Peer` keeps its routes), or None."""
        return self._ingress

    @property
    def rtp_packets_received(self) -> int:
        ingress = self._ingress
        return self._rtp_packets_received + (ingress.packets if ingress is not None else 0)

    @rtp_packets_received.setter
    def rtp_packets_received(self, value: int) -> None:
        ingress = self._ingress
        self._rtp_packets_received = value - (ingress.packets if ingress is not None else 0)

    @property
    def rtp_bytes_received(self) -> int:
        ingress = self._ingress
        return self._rtp_bytes_received + (ingress.octets if ingress is not None else 0)

    @rtp_bytes_received.setter
    def rtp_bytes_received(self, value: int) -> None:
        ingress = self._ingress
        self._rtp_bytes_received = value - (ingress.octets if ingress is not None else 0)

    @property
    def receive_context(self) -> int:
        """The address of the receiving SRTP context (libsrtp's ``srtp_t``) for code that
        unprotects in C (`_fastpath.recv_batch`), 0 before keying or without the fast path.
        Valid while the transport is connected."""
        return self._rx_context

    @property
    def send_dropped(self) -> int:
        egress = self._egress
        return self._send_dropped + (egress.dropped if egress is not None else 0)

    @property
    def rtp_packets_sent(self) -> int:
        egress = self._egress
        return self._rtp_packets_sent + (egress.packets if egress is not None else 0)

    @property
    def rtp_bytes_sent(self) -> int:
        egress = self._egress
        return self._rtp_bytes_sent + (egress.octets if egress is not None else 0)

    @property
    def state(self) -> DtlsState:
        """ "new", "connecting", "connected", "closed" or "failed"."""
        return self._state

    @property
    def is_server(self) -> bool:
        """True in the passive (DTLS server) role."""
        return self._is_server

    @property
    def srtp_profile(self) -> str | None:
        """The negotiated SRTP profile name, once connected."""
        return self._srtp_profile

    def start(self) -> None:
        """Begin the handshake: the client sends its ClientHello, the server waits for one.

        Must be called from the event loop. Does nothing unless the state is "new".
        """
        if self._state != "new":
            return
        loop = self._loop = asyncio.get_running_loop()
        ssl = SSL.Connection(self._certificate._ssl_context(self._srtp_profiles), None)
        ssl.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT, self._verify)
        ssl.set_ciphertext_mtu(self._mtu)
        if self._is_server:
            ssl.set_accept_state()
        else:
            ssl.set_connect_state()
        self._ssl = ssl
        self._deadline = loop.call_later(self._handshake_timeout, self._handshake_timed_out)
        self._set_state("connecting")
        if not self._is_server:
            self._handshake()  # a no-op if on_state closed us (then _ssl is None)

    def datagram_received(self, data: bytes) -> None:
        """Handle one datagram from the peer: a DTLS record or SRTP/SRTCP (RFC 7983)."""
        if len(data) < 12:
            # Shorter than any SRTP packet or useful DTLS record (header alone is 13 bytes).
            self.dropped += 1
            return
        first = data[0]
        if 127 < first < 192:
            rx = self._rx
            if rx is None:
                self.dropped += 1
                return
            # RFC 5761 §4: RTCP packet types 192–223 land on "payload types" 64–95.
            if 63 < (data[1] & 0x7F) < 96:
                packet = rx.unprotect_rtcp(data)
                if packet is None:
                    self.srtp_errors += 1
                    return
                self._on_rtcp(packet)
            else:
                packet = rx.unprotect(data)
                if packet is None:
                    self.srtp_errors += 1
                    return
                self._rtp_packets_received += 1
                self._rtp_bytes_received += len(data)
                self._on_rtp(packet)
        elif 19 < first < 64:
            self._dtls_received(data)
        else:
            self.dropped += 1

    def rtp_received(self, packet: bytes, size: int) -> None:
        """An RTP packet that arrived as ``size`` bytes of SRTP and was unprotected elsewhere
        (in C, with `receive_context`): counted and passed to `on_rtp` like the others."""
        self._rtp_packets_received += 1
        self._rtp_bytes_received += size
        self._on_rtp(packet)

    def send_rtp(self, packet: bytes | bytearray) -> None:
        """SRTP-protect one RTP packet and send it; dropped (and counted) if not connected."""
        egress = self._egress
        if egress is not None:
            egress.send_rtp(packet)  # the same steps, in C
            return
        tx = self._tx
        if tx is None:
            self._send_dropped += 1
            return
        data = tx.protect(packet if type(packet) is bytes else bytes(packet))
        if data is None:
            self._send_dropped += 1
            return
        try:  # `_write` inlined: this runs once per forwarded packet
            self._send(data)
        except OSError:  # a direct socket send refused by the kernel: drop, never queue
            self._send_dropped += 1
            return
        self._rtp_packets_sent += 1
        self._rtp_bytes_sent += len(data)

    def send_rtcp(self, packet: bytes | bytearray) -> None:
        """SRTCP-protect one (compound) RTCP packet and send it; dropped if not connected."""
        tx = self._tx
        if tx is None:
            self._send_dropped += 1
            return
        data = tx.protect_rtcp(packet if type(packet) is bytes else bytes(packet))
        if data is None:
            self._send_dropped += 1
            return
        self._write(data)

    def _write(self, data: bytes) -> None:
        """Send one datagram; one the kernel refuses is dropped and counted, never queued."""
        try:
            self._send(data)
        except OSError:
            self._send_dropped += 1

    def use_sender(
        self,
        send: Callable[[bytes], object],
        udp: tuple[socket.socket, tuple[str, int] | None] | None = None,
    ) -> None:
        """Write datagrams with `send` from now on (e.g. a socket connected to the peer's
        selected address). It may raise `OSError` for a datagram the kernel refuses: RTP and
        RTCP are then dropped and counted in `send_dropped`.

        ``udp``: the same destination as a UDP socket and address (None: the socket is
        connected), which the C send side (`egress`) writes to directly (`sendmmsg` batches
        what goes through one socket) instead of calling `send`.
        """
        self._send = send
        if self._egress is not None:
            sock, addr = udp if udp is not None else (None, None)
            self._egress.set_sender(send, sock, addr)

    def send_data(self, data: bytes) -> None:
        """Send one DTLS application data record (an SCTP packet); dropped if not connected."""
        ssl = self._ssl
        if ssl is None or self._state != "connected":
            self._send_dropped += 1
            return
        try:
            ssl.send(data)
        except SSL.Error as exc:
            self._send_dropped += 1
            self._debug("send failed: %s", exc)
            return
        self._flush()

    def close(self) -> None:
        """Send close_notify (if connected), stop timers, drop keys. Safe to call twice.

        The state becomes "closed", unless it is already "failed", which stays.
        """
        if self._state in ("closed", "failed"):
            self._teardown()
            return
        ssl = self._ssl
        if ssl is not None and self._state == "connected":
            try:
                ssl.shutdown()
            except SSL.Error:
                pass
            self._flush()
        self._teardown()
        self._set_state("closed")

    # -- handshake ------------------------------------------------------------------------------

    def _verify(
        self, connection: SSL.Connection, cert: crypto.X509, errno: int, depth: int, ok: int
    ) -> bool:
        # Self-signed certificates are the norm: only the SDP fingerprint decides (RFC 8122).
        if depth != 0:
            return True
        return self._fingerprint_matches(cert)

    def _fingerprint_matches(self, cert: crypto.X509) -> bool:
        # The digest of the DER as received (RFC 8122 §5), without parsing it with
        # cryptography: a peer's malformed certificate (e.g. serial 0, found by fuzzing) makes
        # `to_cryptography()` warn, and a future cryptography raise, out of the handshake.
        der = crypto.dump_certificate(crypto.FILETYPE_ASN1, cert)
        for algorithm, digest in self._remote_fingerprints:
            factory = _DIGESTS.get(algorithm)
            if factory is not None:
                hasher = hashes.Hash(factory())
                hasher.update(der)
                if hasher.finalize().hex(":").upper() == digest:
                    return True
        return False

    def _dtls_received(self, data: bytes) -> None:
        ssl = self._ssl
        if ssl is None:
            self.dropped += 1
            return
        try:
            ssl.bio_write(data)
        except SSL.Error:
            self.dropped += 1
            return
        if self._state == "connecting":
            self._handshake()
        else:
            self._read_application_data()

    def _handshake(self) -> None:
        ssl = self._ssl
        if ssl is None:
            return
        try:
            ssl.do_handshake()
        except SSL.WantReadError:
            self._flush()
            self._arm_timer()
            return
        except SSL.Error as exc:
            self._flush()  # the alert, if OpenSSL produced one
            self._fail(f"handshake failed: {exc}")
            return
        self._flush()
        self._handshake_done(ssl)

    def _handshake_done(self, ssl: SSL.Connection) -> None:
        certificate = ssl.get_peer_certificate()
        if certificate is None or not self._fingerprint_matches(certificate):
            self._fail("remote certificate does not match the fingerprint")
            return
        name = ssl.get_selected_srtp_profile().decode("ascii", "replace")
        profile = _SRTP_PROFILES.get(name)
        if profile is None:
            self._fail("no SRTP profile negotiated")
            return
        # RFC 5764 §4.2: client key, server key, client salt, server salt.
        k, s = profile.key_length, profile.salt_length
        material = ssl.export_keying_material(_KEYING_LABEL, 2 * (k + s))
        client = material[:k] + material[2 * k : 2 * k + s]
        server = material[k : 2 * k] + material[2 * k + s :]
        local, remote = (server, client) if self._is_server else (client, server)
        self._tx = _srtp_session(local, profile, pylibsrtp.Policy.SSRC_ANY_OUTBOUND)
        self._rx = _srtp_session(remote, profile, pylibsrtp.Policy.SSRC_ANY_INBOUND)
        if self._egress is not None:
            self._egress.set_srtp(self._tx, fastpath.srtp_context(self._tx))
            self._rx_context = fastpath.srtp_context(self._rx)
        self._srtp_profile = name
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        self._arm_timer()
        self._debug("connected (%s, %s)", ssl.get_protocol_version_name(), name)
        self._set_state("connected")
        if self._state == "connected":
            # Application data may have arrived in the same datagrams as the last flight.
            self._read_application_data()

    def _read_application_data(self) -> None:
        ssl = self._ssl
        while ssl is not None and self._state == "connected":
            try:
                data = ssl.recv(_RECV_SIZE)
            except SSL.WantReadError:
                break
            except SSL.ZeroReturnError:
                self._debug("close_notify received")
                try:
                    ssl.shutdown()
                except SSL.Error:
                    pass
                self._flush()
                self._teardown()
                self._set_state("closed")
                return
            except SSL.Error as exc:
                self._flush()
                self._fail(f"DTLS error: {exc}")
                return
            self._on_data(data)
            ssl = self._ssl
        # Reading may have produced records to send (e.g. a retransmitted final flight).
        self._flush()

    def _arm_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        ssl, loop = self._ssl, self._loop
        if ssl is None or loop is None:
            return
        timeout = ssl.DTLSv1_get_timeout()
        if timeout is not None:
            self._timer = loop.call_later(timeout, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        ssl = self._ssl
        if ssl is None:
            return
        try:
            ssl.DTLSv1_handle_timeout()
        except SSL.Error as exc:
            self._flush()
            self._fail(f"retransmission failed: {exc}")
            return
        self._flush()
        self._arm_timer()

    def _handshake_timed_out(self) -> None:
        self._deadline = None
        if self._state == "connecting":
            self._fail(f"handshake timed out after {self._handshake_timeout:g} s")

    # -- plumbing -------------------------------------------------------------------------------

    def _flush(self) -> None:
        """Send whatever OpenSSL wrote into the outgoing memory BIO."""
        ssl = self._ssl
        if ssl is None:
            return
        pending = b""
        while True:
            try:
                pending += ssl.bio_read(_BIO_READ_SIZE)
            except SSL.Error:  # WantReadError: the BIO is empty
                break
        if pending:
            for datagram in _datagrams(pending, self._mtu):
                self._write(datagram)  # if lost, DTLS retransmits handshakes itself

    def _fail(self, reason: str) -> None:
        if self._state in ("closed", "failed"):
            return
        self._debug("failed: %s", reason)
        self._teardown()
        self._set_state("failed")

    def _teardown(self) -> None:
        for handle in (self._timer, self._deadline):
            if handle is not None:
                handle.cancel()
        self._timer = self._deadline = None
        self._rx = self._tx = None
        self._rx_context = 0
        if self._egress is not None:
            self._egress.set_srtp(None, 0)
        self._ssl = None

    def _set_state(self, state: DtlsState) -> None:
        if state == self._state:
            return
        self._debug("%s -> %s", self._state, state)
        self._state = state
        self._on_state(state)

    def _debug(self, msg: str, *args: object) -> None:
        if logger.isEnabledFor(logging.DEBUG):
            role = "server" if self._is_server else "client"
            logger.debug("DTLS %s (%s): %s", self._label, role, msg % args)


def _srtp_session(key: bytes, profile: _SrtpProfile, ssrc_type: int) -> SrtpSession:
    policy = pylibsrtp.Policy(key=key, ssrc_type=ssrc_type, srtp_profile=profile.libsrtp_profile)
    # An SFU re-sends packets with the same sequence number (NACK answers, RTX).
    policy.allow_repeat_tx = True
    policy.window_size = 1024
    return SrtpSession(policy)


def _datagrams(data: bytes, mtu: int) -> Iterator[bytes]:
    """Pack the DTLS records in `data` into datagrams of at most `mtu` bytes.

    The memory BIO loses datagram boundaries, so a whole flight comes out as one string;
    records are never split, and a record larger than `mtu` travels alone.
    """
    if len(data) <= mtu:
        yield data
        return
    start = pos = 0
    end = len(data)
    while pos < end:
        if pos + _DTLS_RECORD_HEADER > end:
            record_end = end
        else:
            length = int.from_bytes(data[pos + 11 : pos + 13], "big")
            record_end = min(end, pos + _DTLS_RECORD_HEADER + length)
        if record_end - start > mtu and pos > start:
            yield data[start:pos]
            start = pos
        pos = record_end
    yield data[start:]
