"""One signaling WebSocket: TCMP framing, heartbeats, and dispatch of RSP messages to the
live-rooms service (`services.live_rooms`), whose answers go back as frames.

TCMP (signaling-protocol.md §2): the client says `hello` (with an `ice`, `connect` or `sync`
body), we answer `welcome{negotiatedTimeout}`; then `msg` frames carry RSP both ways. We send
a `heartbeat` every negotiated timeout and treat 3 timeouts of silence as a dead socket.
A close with code 1000 ends the client's Room cleanly; any other code makes it resume.

Bad input never crashes the server: a malformed frame during the handshake gets `bad`
(the client closes with 3002); afterwards an invalid message gets an `error` with 53004 and
the socket is closed; unknown message types are ignored, as the SDK itself does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Protocol

from parlour.domain import errors
from parlour.protocol import signaling as sig
from parlour.services.live_rooms import LiveRoomService, ParticipantSession, error_message
from parlour.signaling.relay import RelayError, relay

__all__ = ["Router", "SignalingConnection", "SocketClosed"]

log = logging.getLogger(__name__)

MIN_HEARTBEAT_MS = 1000
MAX_HEARTBEAT_MS = 30000
INVALID_MESSAGE = errors.Code.SIGNALING_OUTGOING_MESSAGE_INVALID
#: Queued for the writer instead of a close code: flush, then leave the socket open (relay).
_HANDOFF = 0


class SocketClosed(ConnectionError):
    """The client closed its socket, with this close code (1005: none given)."""

    def __init__(self, code: int) -> None:
        super().__init__(f"closed with {code}")
        self.code = code


class Router(Protocol):
    """Several nodes (`services.cluster.ClusterService`): which node a `connect` or `sync`
    belongs to; None is this one, a URL another node's signaling endpoint."""

    async def route_connect(self, msg: sig.Connect) -> str | None: ...

    async def route_sync(self, msg: sig.Sync) -> str | None: ...


class SignalingConnection:
    """Drives one client WebSocket until it closes.

    Args:
        receive: returns the next text frame; raises `ConnectionError` when the peer is gone.
        send: sends one text frame.
        close: closes the socket with a code.
        router: in a cluster, where each `connect`/`sync` belongs; the socket is relayed
            (`relay.relay`, with `relay_headers`) when it belongs to another node.
    """

    def __init__(
        self,
        rooms: LiveRoomService,
        receive: Callable[[], Awaitable[str]],
        send: Callable[[str], Awaitable[None]],
        close: Callable[[int], Awaitable[None]],
        *,
        router: Router | None = None,
        relay_headers: Mapping[str, str] | None = None,
    ) -> None:
        self._rooms = rooms
        self._router = router
        self._relay_headers = relay_headers or {}
        self._handoff: tuple[str, sig.Connect | sig.Sync] | None = None
        self._receive = receive
        self._send = send
        self._close = close
        self._queue: asyncio.Queue[str | int] = asyncio.Queue()
        self._session: ParticipantSession | None = None
        self._open = False
        self._timeout_ms = 5000
        self._closing = False
        self.id = uuid.uuid4().hex[:8]

    # -- ClientChannel ---------------------------------------------------------------------------

    def send(self, message: sig.RspMessage) -> None:
        if not self._closing:
            self._queue.put_nowait(sig.encode_message(sig.Msg(body=message)))

    def close(self, code: int) -> None:
        if not self._closing:
            self._closing = True
            self._queue.put_nowait(code)

    # -- lifecycle ------------------------------------------------------------------------

    async def run(self) -> None:
        """Serve the socket until it closes; the session survives a drop (see the hub)."""
        writer = asyncio.create_task(self._write_loop())
        heartbeat: asyncio.Task[None] | None = None
        try:
            while not self._closing:
                timeout = 3 * self._timeout_ms / 1000 if self._open else 30.0
                try:
                    raw = await asyncio.wait_for(self._receive(), timeout)
                except TimeoutError:
                    log.info("signaling socket %s silent too long; closing", self.id)
                    self.close(4001)
                    break
                if not await self._handle(raw):
                    break
                if self._open and heartbeat is None:
                    heartbeat = asyncio.create_task(self._heartbeat_loop())
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            if heartbeat is not None:
                heartbeat.cancel()
            if self._session is not None:
                await self._rooms.connection_lost(self._session, self)
            if self._handoff is None:
                self.close(1001)
            elif not self._closing:
                self._closing = True
                self._queue.put_nowait(_HANDOFF)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer, 5)
            if not writer.done():
                writer.cancel()
        if self._handoff is not None:
            await self._relay(*self._handoff)

    async def _relay(self, url: str, body: sig.Connect | sig.Sync) -> None:
        """Hand the socket to the node that hosts the room (see `relay.py`)."""
        hello = sig.Hello(id=uuid.uuid4().hex, timeout=self._timeout_ms, body=body)
        log.info("signaling socket %s relayed to %s", self.id, url)
        try:
            await relay(
                url,
                sig.encode_message(hello),
                headers=self._relay_headers,
                receive=self._receive,
                send=self._send,
                close=self._close,
                client_code=lambda exc: exc.code if isinstance(exc, SocketClosed) else None,
            )
        except RelayError as exc:
            log.warning("signaling socket %s: relay failed: %s", self.id, exc)
            error = error_message(errors.Code.SIGNALING_CONNECTION_ERROR)
            with contextlib.suppress(Exception):
                await self._send(sig.encode_message(sig.Msg(body=error)))
                await self._close(1011)

    async def _write_loop(self) -> None:
        try:
            while True:
                item = await self._queue.get()
                if isinstance(item, int):
                    if item != _HANDOFF:
                        with contextlib.suppress(Exception):
                            await self._close(item)
                    return
                await self._send(item)
        except Exception:  # the socket is gone; the reader notices too
            return

    async def _heartbeat_loop(self) -> None:
        frame = sig.encode_message(sig.Heartbeat())
        while not self._closing:
            await asyncio.sleep(self._timeout_ms / 1000)
            self._queue.put_nowait(frame)

    # -- frames ---------------------------------------------------------------------------

    async def _handle(self, raw: str) -> bool:
        """Handle one frame; False ends the connection."""
        try:
            frame = sig.parse_message(raw, sender="client")
        except sig.UnknownMessageTypeError as exc:
            log.info("signaling socket %s: ignoring %s", self.id, exc.message_type)
            return True
        except sig.SignalingProtocolError as exc:
            return self._protocol_error(str(exc))
        if isinstance(frame, sig.Hello):
            return await self._hello(frame)
        if not self._open:
            return self._protocol_error("expected hello")
        if isinstance(frame, sig.Msg):
            return await self._rsp(frame.body)
        if isinstance(frame, sig.Bye):
            return False
        return True  # heartbeat: receiving it already reset the timer

    def _protocol_error(self, reason: str) -> bool:
        log.info("signaling socket %s: protocol error: %s", self.id, reason[:200])
        if not self._open:
            self._queue.put_nowait(sig.encode_message(sig.Bad(reason=reason[:200])))
            self.close(1002)
        else:
            self.send(error_message(INVALID_MESSAGE, reason[:200]))
            self.close(1000)
        return False

    async def _hello(self, hello: sig.Hello) -> bool:
        if self._open:
            return self._protocol_error("unexpected hello")
        self._timeout_ms = max(MIN_HEARTBEAT_MS, min(MAX_HEARTBEAT_MS, hello.timeout))
        self._open = True
        self._queue.put_nowait(sig.encode_message(sig.Welcome(negotiated_timeout=self._timeout_ms)))
        if hello.body is not None:
            return await self._rsp(hello.body)
        return True

    async def _rsp(self, body: sig.RspMessage) -> bool:
        try:
            if isinstance(body, sig.Ice):
                self.send(await self._rooms.ice(body.token))
            elif isinstance(body, sig.Connect):
                if self._session is not None:
                    raise errors.TwilioError("already connected", code=INVALID_MESSAGE)
                if self._router is not None:
                    target = await self._router.route_connect(body)
                    if target is not None:
                        self._handoff = (target, body)
                        return False
                connected = await self._rooms.connect(self, body)  # sent by the service
                self._session = self._rooms.session(connected.session)
            elif isinstance(body, sig.Sync):
                if (
                    self._router is not None
                    and self._session is None
                    and self._rooms.session(body.session) is None
                ):
                    target = await self._router.route_sync(body)
                    if target is not None:
                        self._handoff = (target, body)
                        return False
                self._session, _ = await self._rooms.sync(self, body)  # `synced` sent
            elif isinstance(body, sig.ClientUpdate):
                if self._session is not None and body.session == self._session.token:
                    try:
                        await self._rooms.update(self._session, body)
                    except errors.TwilioError:
                        self._session = None  # the session has left the room
                        raise
            elif isinstance(body, sig.Disconnect):
                if self._session is not None:
                    session, self._session = self._session, None
                    await self._rooms.disconnect(session)
                return False
            return True
        except errors.TwilioError as exc:
            log.info("signaling socket %s: error %s", self.id, exc.code)
            self.send(error_message(exc.code, exc.message))
            self.close(1000)
            return False
        except Exception:
            # A bug must not take the server down: this client is told, others go on.
            log.exception("signaling socket %s: internal error", self.id)
            self.send(error_message(errors.Code.SIGNALING_CONNECTION_ERROR))
            self.close(1011)
            return False
