"""One UDP socket for many endpoints: RFC 7983 demultiplexing and an ICE-lite responder.

Role: the media plane's network edge. A `MediaSocket` is one asyncio datagram endpoint (one per
media worker). Every datagram is classified by its first byte (RFC 7983 §7):

- 0–3: STUN. Binding Requests are answered as an ICE-lite agent (RFC 8445 §2.5, RFC 5389):
  the USERNAME `<local_ufrag>:<remote_ufrag>` picks the endpoint, MESSAGE-INTEGRITY must verify
  with that endpoint's password, FINGERPRINT must be present. A valid check makes its source
  address valid for the endpoint and refreshes its consent timestamp (RFC 7675).
- 20–63 (DTLS) and 128–191 (SRTP/SRTCP): handed, unparsed, to the `EndpointHandler` that owns
  the source address. This is the hot path: one dict lookup and one call, no awaits.
- anything else, or anything from an address no valid check came from: dropped.

The server never sends checks (ICE-lite), so there are no timers here. Consent freshness is
tracked (`last_consent`) but enforced by the owner of the endpoint.

ICE-TCP (`listen_tcp`, RFC 6544): a passive TCP host candidate for clients whose UDP is
blocked. Each accepted connection carries RFC 4571 frames (a 2-byte length, then one
"datagram"), which go through the same demultiplexing as UDP datagrams, with the
connection's peer address as their source; what is sent to that address is framed back on
the connection. A connection that passes no valid check within `_TCP_AUTH_SECONDS` is
closed; a closed connection invalidates its address.

May import: the standard library, `aioice.stun` (STUN message codec) and
`parlour.media.fastpath` (batched receive in C). Must not import other `parlour` modules
except `parlour.domain`; `peer.py` and `plane.py` use this module.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
import time
from collections.abc import Callable
from typing import Any, Final, Protocol, cast

from aioice import stun

from parlour.media import fastpath

__all__ = ["Address", "EndpointHandler", "MediaSocket"]

logger = logging.getLogger(__name__)

Address = tuple[str, int]
"""A UDP peer address as asyncio reports it (IPv6 addresses may carry more fields)."""

_STUN_COOKIE: Final = struct.pack("!I", stun.COOKIE)
_BINDING_REQUEST: Final = b"\x00\x01"
_WILDCARD_HOSTS: Final = frozenset({"", "0.0.0.0", "::"})
_MAX_ADDRESSES_PER_ENDPOINT: Final = 16
_MAX_DATAGRAM: Final = 65535
_PATH_BATCH: Final = 32  # datagrams read from a connected socket per readiness callback
_SOCKET_BUFFER: Final = 4 * 1024 * 1024  # asked for; the kernel caps it (net.core.*mem_max)
_TCP_AUTH_SECONDS: Final = 10.0  # an ICE-TCP connection must pass a check this soon
_TCP_MAX_CONNECTIONS: Final = 4096
_TCP_WRITE_LIMIT: Final = 1024 * 1024  # bytes queued on a connection before media is dropped


class EndpointHandler(Protocol):
    """What a `MediaSocket` delivers to for one registered endpoint (a `Peer`)."""

    def ice_connected(self, addr: Address) -> None:
        """The selected address was set or changed: send media to `addr` from now on."""
        ...

    def datagram_received(self, data: bytes, addr: Address) -> None:
        """A DTLS or SRTP/SRTCP datagram from a validated address of this endpoint."""
        ...


class _Endpoint:
    """ICE-lite state of one registered endpoint (one local ufrag)."""

    __slots__ = ("consent", "handler", "nominated", "path", "pwd", "selected", "ufrag")

    def __init__(self, ufrag: str, pwd: bytes, handler: EndpointHandler) -> None:
        self.ufrag = ufrag
        self.pwd = pwd
        self.handler = handler
        # Valid remote addresses → monotonic time of their last valid check.
        self.consent: dict[Address, float] = {}
        self.selected: Address | None = None
        self.nominated = False
        # A socket connected to `selected`, sharing our port (SO_REUSEPORT), if one was made.
        self.path: socket.socket | None = None


class MediaSocket(asyncio.DatagramProtocol):
    """One UDP endpoint shared by many ICE-lite endpoints, demultiplexed per RFC 7983.

    Create it with `await MediaSocket.bind(...)`. Endpoints are registered by their local ICE
    ufrag/pwd; their remote addresses are learnt from valid STUN checks.

    Attributes:
        candidate_address: `(host, port)` to advertise in SDP `a=candidate` lines.
        dropped: datagrams dropped because of their source address or first byte.
        send_dropped: datagrams not sent because the socket was closed or its send
            buffer was full (asyncio paused writing): media is dropped, never queued.
        stun_errors: STUN requests answered with an error or discarded as malformed.
        handler_errors: exceptions raised while handling a datagram, e.g. by an endpoint
            handler (logged, never propagated).
    """

    def __init__(
        self,
        *,
        advertised_host: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Make an unbound socket protocol; use `bind()` unless testing without sockets.

        Args:
            advertised_host: host for `candidate_address`; defaults to the bound host.
            clock: monotonic seconds, used for consent timestamps.
        """
        self._advertised_host = advertised_host
        self._clock = clock
        self._transport: asyncio.DatagramTransport | None = None
        # transport.sendto while writable; None while paused (kernel buffer full) or closed.
        self._send_to: Callable[[bytes, Address], None] | None = None
        # The bound socket itself (set by `bind`): sends go straight to it, not through the
        # transport. None for a protocol connected to another transport (tests), or closed.
        self._raw: socket.socket | None = None
        self._local: Any = None  # the bound address, for connected sockets to share
        self._family = socket.AF_INET
        self.paths_failed = 0
        self._closed = False
        self._closed_future: asyncio.Future[None] | None = None
        self._endpoints: dict[str, _Endpoint] = {}
        # Hot path: remote address → the owner's datagram_received bound method.
        self._routes: dict[Address, Callable[[bytes, Address], None]] = {}
        self._owners: dict[Address, _Endpoint] = {}
        self.candidate_address: Address = (advertised_host or "", 0)
        #: The ICE-TCP port (`listen_tcp`), None without one.
        self.tcp_port: int | None = None
        self._tcp_server: asyncio.Server | None = None
        self._tcp: dict[Address, _TcpConnection] = {}
        self.dropped = 0
        self.send_dropped = 0
        self.stun_errors = 0
        self.handler_errors = 0

    @classmethod
    async def bind(
        cls,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        advertised_host: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> MediaSocket:
        """Bind a UDP socket and return the `MediaSocket` serving it.

        Args:
            host: local address to bind; a wildcard needs `advertised_host`.
            port: local port; 0 picks a free one.
            advertised_host: the address clients should send to (e.g. a public IP).
            clock: monotonic seconds, used for consent timestamps.

        Returns:
            The bound socket; `candidate_address` holds the advertised host and bound port.

        Raises:
            ValueError: `host` is a wildcard and no `advertised_host` was given.
            OSError: the address could not be bound.
        """
        if host in _WILDCARD_HOSTS and advertised_host is None:
            raise ValueError("binding a wildcard address needs an advertised_host")
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
        family, _, _, _, address = infos[0]
        if port:
            _check_port_free(family, address)
        raw = socket.socket(family, socket.SOCK_DGRAM)
        try:
            raw.setblocking(False)
            # Per-endpoint connected sockets share the port: see `_open_path`.
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
                raw.setsockopt(socket.SOL_SOCKET, option, _SOCKET_BUFFER)
            raw.bind(address)
        except OSError:
            raw.close()
            raise
        sock = cls(advertised_host=advertised_host, clock=clock)
        sock._raw = raw
        sock._local = raw.getsockname()
        sock._family = family
        await loop.create_datagram_endpoint(lambda: sock, sock=raw)
        return sock

    async def listen_tcp(self, host: str, port: int) -> int:
        """Accept ICE-TCP connections (passive candidates, RFC 6544) on `host:port`.

        Returns:
            The bound TCP port (`tcp_port`).

        Raises:
            OSError: the address could not be bound.
        """
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: _TcpConnection(self), host, port, reuse_address=True, backlog=1024
        )
        self._tcp_server = server
        self.tcp_port = int(server.sockets[0].getsockname()[1])
        return self.tcp_port

    def _tcp_opened(self, connection: _TcpConnection) -> bool:
        if self._closed or len(self._tcp) >= _TCP_MAX_CONNECTIONS:
            return False
        old = self._tcp.get(connection.addr)
        if old is not None:
            old.close()
        self._tcp[connection.addr] = connection
        return True

    def _tcp_closed(self, connection: _TcpConnection) -> None:
        addr = connection.addr
        if self._tcp.get(addr) is not connection:
            return
        del self._tcp[addr]
        owner = self._owners.get(addr)
        if owner is not None:
            self._forget(owner, addr)

    # -- endpoint table ---------------------------------------------------------------------

    def register(self, local_ufrag: str, local_pwd: str, handler: EndpointHandler) -> None:
        """Accept ICE checks for `local_ufrag`, authenticated with `local_pwd`.

        Raises:
            ValueError: the ufrag is empty, contains ':' or is already registered.
        """
        if not local_ufrag or ":" in local_ufrag:
            raise ValueError("invalid ICE ufrag")
        if local_ufrag in self._endpoints:
            raise ValueError("ICE ufrag already registered")
        self._endpoints[local_ufrag] = _Endpoint(local_ufrag, local_pwd.encode(), handler)

    def unregister(self, local_ufrag: str) -> None:
        """Forget an endpoint and all its remote addresses. Unknown ufrags are ignored."""
        endpoint = self._endpoints.pop(local_ufrag, None)
        if endpoint is None:
            return
        self._close_path(endpoint)
        for addr in endpoint.consent:
            if self._owners.get(addr) is endpoint:
                del self._owners[addr]
                del self._routes[addr]
            connection = self._tcp.get(addr)
            if connection is not None:
                connection.close()
        endpoint.consent.clear()

    def selected_address(self, local_ufrag: str) -> Address | None:
        """The address the endpoint's media goes to, or None before its first valid check."""
        endpoint = self._endpoints.get(local_ufrag)
        return endpoint.selected if endpoint is not None else None

    def valid_addresses(self, local_ufrag: str) -> dict[Address, float]:
        """A copy of the endpoint's valid remote addresses → time of their last valid check."""
        endpoint = self._endpoints.get(local_ufrag)
        return dict(endpoint.consent) if endpoint is not None else {}

    def last_consent(self, local_ufrag: str, addr: Address | None = None) -> float | None:
        """When `addr` (default: the selected address) last sent a valid check (RFC 7675).

        Returns:
            A `clock()` value, or None if there is no such endpoint or valid address.
        """
        endpoint = self._endpoints.get(local_ufrag)
        if endpoint is None:
            return None
        if addr is None:
            addr = endpoint.selected
            if addr is None:
                return None
        return endpoint.consent.get(addr)

    def forget_address(self, local_ufrag: str, addr: Address) -> None:
        """Invalidate one remote address of an endpoint (e.g. its consent expired).

        Datagrams from it are dropped until it passes a check again. If it was the selected
        address, nothing is selected until the next valid check.
        """
        endpoint = self._endpoints.get(local_ufrag)
        if endpoint is not None:
            self._forget(endpoint, addr)

    def _forget(self, endpoint: _Endpoint, addr: Address) -> None:
        endpoint.consent.pop(addr, None)
        if endpoint.selected == addr:
            endpoint.selected = None
            endpoint.nominated = False
            self._close_path(endpoint)
        if self._owners.get(addr) is endpoint:
            del self._owners[addr]
            del self._routes[addr]

    def connected_sender(self, local_ufrag: str) -> Callable[[bytes], object] | None:
        """A send function bound to the endpoint's selected address, or None.

        It is the `send` of a UDP socket connected to that address and sharing our port, so
        a packet goes to the kernel with no address to parse or route to look up. It raises
        `OSError` when the kernel refuses a packet (full buffer, ICMP error): callers drop
        the packet. It changes whenever the selected address does (`ice_connected`).
        """
        endpoint = self._endpoints.get(local_ufrag)
        if endpoint is None or endpoint.path is None:
            return None
        return endpoint.path.send

    def udp_target(self, local_ufrag: str) -> tuple[socket.socket, Address | None] | None:
        """Where the endpoint's datagrams go, for senders that write to the kernel themselves
        (`fastpath`): its connected socket and None (see `connected_sender`), else the bound
        socket and the selected address. None over ICE-TCP, before an address is selected,
        or once closed. It changes when the selected address does (`ice_connected`); a
        connected socket closed since (the address forgotten) drops what is sent to it.
        """
        endpoint = self._endpoints.get(local_ufrag)
        raw = self._raw
        if endpoint is None or endpoint.selected is None or raw is None:
            return None
        if endpoint.selected in self._tcp:
            return None
        if endpoint.path is not None:
            return endpoint.path, None
        return raw, endpoint.selected

    def _open_path(self, endpoint: _Endpoint, addr: Address) -> None:
        """Connect a socket on our port to `addr`: the kernel then delivers that address's
        datagrams to it (a connected socket is the better match) and sends to it cheaply."""
        self._close_path(endpoint)
        if self._raw is None or self._local is None or addr in self._tcp:
            return  # an ICE-TCP address is reached through its connection (`sendto`)
        path = socket.socket(self._family, socket.SOCK_DGRAM)
        try:
            path.setblocking(False)
            path.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
                path.setsockopt(socket.SOL_SOCKET, option, _SOCKET_BUFFER)
            path.bind(self._local)
            path.connect(addr)
            asyncio.get_running_loop().add_reader(
                path.fileno(), self._read_path, path, addr, endpoint
            )
        except (OSError, RuntimeError) as exc:
            path.close()
            self.paths_failed += 1
            logger.debug("no connected socket for %s: %s", addr, exc)
            return
        endpoint.path = path

    def _close_path(self, endpoint: _Endpoint) -> None:
        path, endpoint.path = endpoint.path, None
        if path is None:
            return
        with contextlib.suppress(RuntimeError, ValueError):
            asyncio.get_running_loop().remove_reader(path.fileno())
        path.close()

    def _read_path(self, path: socket.socket, addr: Address, endpoint: _Endpoint) -> None:
        # Level-triggered: read what is there (a bounded batch), the loop calls again if more.
        native = fastpath.native
        receiver = getattr(endpoint.handler, "srtp_receiver", None) if native is not None else None
        fast = receiver() if receiver is not None else None
        if fast is not None:
            # The C fast path: one recvmmsg for the batch, SRTP unprotected in C; the RTP of
            # the SSRCs routed in `ingress` is forwarded there, the other plain RTP reaches
            # Python (`on_rtp`). The rest takes the usual demultiplexing.
            context, on_rtp, ingress = fast
            batch = native.recv_batch(path, _PATH_BATCH, context, ingress)
            for kind, data, _ns, _source, size in batch:
                if kind == 1:
                    try:
                        on_rtp(data, size)
                    except Exception as exc:  # as in datagram_received: never out of the loop
                        self._handler_failed(exc)
                elif kind == 2:  # what a route's Python calls (tap, statistics) raised
                    self._handler_failed(data)
                else:  # STUN, DTLS, SRTCP; SRTP that failed (counted again there)
                    self.datagram_received(data, addr)
            return
        recv = path.recv
        for _ in range(_PATH_BATCH):
            try:
                data = recv(_MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. ECONNREFUSED after the remote went away
                logger.debug("connected socket %s: %s", addr, exc)
                return
            self.datagram_received(data, addr)

    # -- sending and lifecycle ----------------------------------------------------------------

    def sendto(self, data: bytes, addr: Address) -> None:
        """Send one datagram (no await). Dropped, and counted, if closed or congested."""
        if self._tcp:
            connection = self._tcp.get(addr)
            if connection is not None:
                connection.send(data)
                return
        raw = self._raw
        if raw is not None:
            # Hot path: straight to the kernel. A full send buffer (EAGAIN) drops the packet:
            # media is never queued behind the event loop's transport buffer.
            try:
                raw.sendto(data, addr)
            except OSError:
                self.send_dropped += 1
            return
        send_to = self._send_to
        if send_to is not None:
            send_to(data, addr)
        else:
            self.send_dropped += 1

    @property
    def closed(self) -> bool:
        """True once `close()` was called or the socket was lost."""
        return self._closed

    def close(self) -> None:
        """Close the socket and forget every endpoint. Safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        transport, self._transport = self._transport, None
        self._send_to = None
        self._raw = None
        for endpoint in self._endpoints.values():
            self._close_path(endpoint)
        if self._tcp_server is not None:
            self._tcp_server.close()
        for connection in list(self._tcp.values()):
            connection.close()
        self._tcp.clear()
        self._endpoints.clear()
        self._routes.clear()
        self._owners.clear()
        if transport is not None:
            transport.close()
        elif self._closed_future is not None and not self._closed_future.done():
            self._closed_future.set_result(None)

    async def wait_closed(self) -> None:
        """Wait until the underlying socket is really closed (after `close()`)."""
        if self._closed_future is None or self._closed_future.done():
            return
        await asyncio.shield(self._closed_future)

    # -- asyncio.DatagramProtocol ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Neither asyncio's (3.11) nor uvloop's UDP transport subclasses DatagramTransport.
        transport = cast(asyncio.DatagramTransport, transport)
        self._closed_future = asyncio.get_running_loop().create_future()
        if self._closed:
            transport.close()
            return
        self._transport = transport
        self._send_to = transport.sendto
        sockname = transport.get_extra_info("sockname")
        if sockname is not None:
            host = self._advertised_host or sockname[0]
            self.candidate_address = (host, sockname[1])

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is not None:
            logger.warning("media socket %s lost: %s", self.candidate_address, exc)
        self._closed = True
        self._transport = None
        self._send_to = None
        self._raw = None
        if self._closed_future is not None and not self._closed_future.done():
            self._closed_future.set_result(None)

    def pause_writing(self) -> None:
        # The transport's buffer passed its high-water mark: drop rather than queue media.
        self._send_to = None

    def resume_writing(self) -> None:
        if self._transport is not None:
            self._send_to = self._transport.sendto

    def error_received(self, exc: Exception) -> None:
        # ICMP errors (e.g. port unreachable after a client left) are normal for UDP.
        logger.debug("media socket %s: %s", self.candidate_address, exc)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        # Never let anything escape: asyncio would log it, uvloop would close the socket.
        if not data:
            self.dropped += 1
            return
        try:
            first = data[0]
            if first > 19:
                deliver = self._routes.get(addr)
                if deliver is not None and (first < 64 or 127 < first < 192):
                    deliver(data, addr)
                else:
                    self.dropped += 1
            elif first < 4:
                self._stun_received(data, addr)
            else:
                self.dropped += 1
        except Exception as exc:
            self._handler_failed(exc)

    def _handler_failed(self, exc: Exception) -> None:
        """Count (and log, rate-limited) an exception from datagram handling."""
        self.handler_errors += 1
        n = self.handler_errors
        if n & (n - 1) == 0:  # log the 1st, 2nd, 4th, 8th… failure, not a flood
            logger.error("media socket: datagram handling failed (%d so far)", n, exc_info=exc)

    # -- ICE-lite responder -------------------------------------------------------------------

    def _stun_received(self, data: bytes, addr: Address) -> None:
        if len(data) < stun.HEADER_LENGTH or data[4:8] != _STUN_COOKIE:
            self.stun_errors += 1
            logger.debug("STUN from %s: not a STUN message (%d bytes)", addr, len(data))
            return
        if data[0:2] != _BINDING_REQUEST:
            # Indications (keepalives) and responses: an ICE-lite agent sends no requests.
            return
        transaction_id = data[8:20]
        try:
            message = stun.parse_message(data)
        except (ValueError, struct.error) as exc:
            logger.debug("STUN from %s: malformed Binding request (%s)", addr, exc)
            self._send_error(transaction_id, 400, "Bad Request", addr)
            return
        attributes = message.attributes
        username = attributes.get("USERNAME")
        if (
            username is None
            or "MESSAGE-INTEGRITY" not in attributes
            or "FINGERPRINT" not in attributes
        ):
            logger.debug("STUN from %s: check without USERNAME/INTEGRITY/FINGERPRINT", addr)
            self._send_error(transaction_id, 400, "Bad Request", addr)
            return
        local_ufrag, sep, _ = username.partition(":")
        endpoint = self._endpoints.get(local_ufrag) if sep else None
        if endpoint is None or not message.check_message_integrity(endpoint.pwd):
            logger.debug("STUN from %s: unauthorized check", addr)
            self._send_error(transaction_id, 401, "Unauthorized", addr)
            return
        if "ICE-CONTROLLED" in attributes:
            # RFC 8445 §7.3.1.1: a lite agent is always controlled, so the full agent must
            # switch to controlling; tell it with 487 Role Conflict.
            self._send_error(transaction_id, 487, "Role Conflict", addr, endpoint.pwd)
            return

        response = stun.Message(
            message_method=stun.Method.BINDING,
            message_class=stun.Class.RESPONSE,
            transaction_id=transaction_id,
        )
        response.attributes["XOR-MAPPED-ADDRESS"] = (_strip_scope(addr[0]), addr[1])
        response.add_message_integrity(endpoint.pwd)
        self.sendto(bytes(response), addr)
        self._check_succeeded(endpoint, addr, "USE-CANDIDATE" in attributes)

    def _send_error(
        self,
        transaction_id: bytes,
        code: int,
        reason: str,
        addr: Address,
        key: bytes | None = None,
    ) -> None:
        self.stun_errors += 1
        response = stun.Message(
            message_method=stun.Method.BINDING,
            message_class=stun.Class.ERROR,
            transaction_id=transaction_id,
        )
        response.attributes["ERROR-CODE"] = (code, reason)
        if key is not None:
            response.add_message_integrity(key)
        else:
            response.add_fingerprint()
        self.sendto(bytes(response), addr)

    def _check_succeeded(self, endpoint: _Endpoint, addr: Address, use_candidate: bool) -> None:
        owner = self._owners.get(addr)
        if owner is not endpoint:
            if owner is not None:
                # The address moved to another endpoint (e.g. a NAT binding was reused).
                self._forget(owner, addr)
            self._owners[addr] = endpoint
            self._routes[addr] = endpoint.handler.datagram_received
        endpoint.consent[addr] = self._clock()
        if self._tcp:
            connection = self._tcp.get(addr)
            if connection is not None:
                connection.authenticated()
        if len(endpoint.consent) > _MAX_ADDRESSES_PER_ENDPOINT:
            stale = min(
                (a for a in endpoint.consent if a != endpoint.selected and a != addr),
                key=endpoint.consent.__getitem__,
            )
            self._forget(endpoint, stale)

        if use_candidate:
            changed = endpoint.selected != addr
            endpoint.selected = addr
            endpoint.nominated = True
        else:
            # Until the controlling agent nominates, use the first address that validated.
            changed = endpoint.selected is None
            if changed:
                endpoint.selected = addr
        if changed:
            logger.debug("ICE endpoint %s: selected %s", endpoint.ufrag, addr)
            self._open_path(endpoint, addr)
            endpoint.handler.ice_connected(addr)


class _TcpConnection(asyncio.Protocol):
    """One ICE-TCP connection: RFC 4571 frames in and out (a 16-bit length, then the data)."""

    def __init__(self, owner: MediaSocket) -> None:
        self._owner = owner
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self.addr: Address = ("", 0)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self.addr = (peer[0], peer[1])
        if not self._owner._tcp_opened(self):
            transport.close()
            return
        self._timer = asyncio.get_running_loop().call_later(_TCP_AUTH_SECONDS, self.close)

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        while len(buffer) >= 2:
            size = (buffer[0] << 8) | buffer[1]
            if len(buffer) < 2 + size:
                return
            frame = bytes(buffer[2 : 2 + size])
            del buffer[: 2 + size]
            self._owner.datagram_received(frame, self.addr)

    def authenticated(self) -> None:
        """A valid check came on this connection: it may stay."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def send(self, data: bytes) -> None:
        transport = self._transport
        if (
            transport is None
            or transport.is_closing()
            or len(data) > 0xFFFF
            or transport.get_write_buffer_size() > _TCP_WRITE_LIMIT
        ):
            self._owner.send_dropped += 1  # media is dropped, never queued without bound
            return
        transport.write(len(data).to_bytes(2, "big") + data)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._transport = None
        self._owner._tcp_closed(self)


def _check_port_free(family: int, address: Any) -> None:
    """Fail like a plain bind if the port is taken: SO_REUSEPORT alone would share it with
    another process of the same user instead."""
    probe = socket.socket(family, socket.SOCK_DGRAM)
    try:
        probe.bind(address)
    finally:
        probe.close()


def _strip_scope(host: str) -> str:
    # IPv6 link-local addresses come as "fe80::1%eth0"; STUN carries only the address.
    return host.partition("%")[0]
