"""WebRTC data channels for one endpoint: aiortc's SCTP and DCEP over our DTLS transport.

Role: everything between "a DTLS application data record" and "a message on a labelled data
channel". `DataChannels` runs one SCTP association (RFC 8261, RFC 8841) over a
`dtls.DtlsSrtpTransport` and the Data Channel Establishment Protocol (RFC 8832) on it, reusing
aiortc's `RTCSctpTransport` and `RTCDataChannel`. The SFU learns the channels a publisher opens
(label = track id) with their reliability settings (`ChannelInfo`), receives their messages,
opens channels with the same settings towards subscribers and relays the messages; `send`
queues and never blocks, so a relay can call it from a receive callback.

Roles and stream ids: RFC 8832 §6 ties the stream id parity to the DTLS role (DTLS client even,
DTLS server odd), and aiortc 1.16.0 derives its SCTP role from the DTLS transport's `_role`
("server"/"client"), which the adapter answers from `DtlsSrtpTransport.is_server`. The SFU is
ICE-lite (always ICE controlled) and answers `a=setup:passive`, so it is the DTLS server and its
channels get odd stream ids while browsers' (DTLS client, ICE controlling) get even ones. Older
aiortc releases derived the role from the ICE role (`transport.transport.role`); the adapter
answers "controlled" there, which agrees for an ICE-lite DTLS server. Both ends send an INIT
(RFC 8841 §9.3); aiortc resolves the collision.

Pinned to aiortc==1.16.0 privates (re-check them on any upgrade; `tests/unit/media/test_sctp.py`
covers the adapter contract):

- `RTCSctpTransport(dtls, port)` reads `dtls.state` (refuses "closed") and `dtls._role`; it
  calls `dtls._register_data_receiver(self)` in `start()`, `dtls._unregister_data_receiver(self)`
  in `stop()`, and `await dtls._send_data(packet)` for every SCTP packet it sends. A
  `ConnectionError` from `_send_data` would escape aiortc's fire-and-forget tasks, so the
  adapter never raises (the DTLS transport drops and counts sends when not connected).
- Incoming packets go to the registered receiver's `async _handle_data(packet)`, one at a time,
  in arrival order (a worker task); protocol violations inside it (aiortc `assert`s, `struct`
  errors on short chunks) are caught and counted.
- `RTCDataChannel(sctp, RTCDataChannelParameters(...))` queues the DCEP OPEN (sent once the
  association is up). Events used: "datachannel" on the transport, "open",
  "message" and "close" on channels (pyee, called synchronously). `RTCDataChannel.send` only
  works when "open", so messages for a channel that is not open yet are queued here (RFC 8832
  §6 also forbids unordered user data before the DATA_CHANNEL_ACK).
- aiortc treats `maxPacketLifeTime=0` like "no lifetime" (it tests the value for truth).
- `RTCSctpTransport._data_channels` (stream id → channel, until both directions of its stream
  are reset) and `_outbound_streams_count` (the ids the peer allows) are read to pick our
  channels' stream ids (`_free_stream_id`), given to `RTCDataChannelParameters.id` with
  `negotiated` false: aiortc then registers that id and sends the DCEP OPEN on it.

May import: the standard library, aiortc's SCTP/data channel modules and `parlour.media.dtls`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal, Protocol

from aiortc.exceptions import InvalidStateError
from aiortc.rtcdatachannel import RTCDataChannel, RTCDataChannelParameters
from aiortc.rtcsctptransport import RTCSctpCapabilities, RTCSctpTransport

from parlour.media.dtls import DtlsSrtpTransport

__all__ = [
    "DEFAULT_REMOTE_MAX_MESSAGE_SIZE",
    "MAX_MESSAGE_SIZE",
    "SCTP_PORT",
    "STREAM_ID_QUARANTINE",
    "ChannelInfo",
    "DataChannels",
    "DataChannelsState",
    "Message",
]

logger = logging.getLogger(__name__)

Message = str | bytes
"""A data channel message: `str` travels as WebRTC String, `bytes` as WebRTC Binary."""

DataChannelsState = Literal["new", "connecting", "connected", "closed"]

SCTP_PORT: Final = 5000
"""The SCTP port on both ends (`a=sctp-port`), the WebRTC default."""

MAX_MESSAGE_SIZE: Final = 262144
"""Our `a=max-message-size`: what aiortc advertises (`LOCAL_MAX_MESSAGE_SIZE`) and reassembles."""

DEFAULT_REMOTE_MAX_MESSAGE_SIZE: Final = 65536
"""The peer's limit when its SDP has no `a=max-message-size` (RFC 8841 §6)."""

#: Seconds a closed channel's stream id rests before one of our channels takes it again.
STREAM_ID_QUARANTINE: Final = 30.0
_MAX_INBOUND: Final = 1024  # SCTP packets waiting for the worker; beyond that SCTP retransmits
_MAX_LABEL_BYTES: Final = 0xFFFF  # DCEP label/protocol length fields are 16 bits (RFC 8832 §5.1)
_MAX_RELIABILITY: Final = 0xFFFF  # W3C: maxRetransmits/maxPacketLifeTime are unsigned short


@dataclass(frozen=True, slots=True)
class ChannelInfo:
    """A channel's reliability settings, as the opener chose them (DCEP OPEN, RFC 8832 §5.1).

    The field names match `DataChannels.open_channel`'s keywords, so a relay mirrors a
    publisher's channel with `open_channel(label, **dataclasses.asdict(info))`.
    At most one of `max_retransmits` and `max_packet_life_time` (milliseconds) is set; neither
    means fully reliable.
    """

    ordered: bool = True
    max_retransmits: int | None = None
    max_packet_life_time: int | None = None
    protocol: str = ""


class _DataReceiver(Protocol):
    async def _handle_data(self, data: bytes) -> None: ...


class _IceLite:
    """The ICE transport older aiortc asked the DTLS transport for: a lite agent is controlled."""

    __slots__ = ()
    role: Final = "controlled"


class _DtlsAdapter:
    """The part of aiortc's `RTCDtlsTransport` that `RTCSctpTransport` 1.16.0 uses."""

    __slots__ = ("_dtls", "receiver")

    transport: Final = _IceLite()

    def __init__(self, dtls: DtlsSrtpTransport) -> None:
        self._dtls = dtls
        self.receiver: _DataReceiver | None = None

    @property
    def state(self) -> str:
        return self._dtls.state

    @property
    def _role(self) -> str:
        # RFC 8832 §6: the DTLS role decides the stream id parity (aiortc's `is_server`).
        return "server" if self._dtls.is_server else "client"

    def _register_data_receiver(self, receiver: _DataReceiver) -> None:
        self.receiver = receiver

    def _unregister_data_receiver(self, receiver: _DataReceiver) -> None:
        if self.receiver is receiver:
            self.receiver = None

    async def _send_data(self, data: bytes) -> None:
        # Never raises: sends before "connected" or after close are dropped and counted by the
        # DTLS transport, and SCTP retransmits whatever mattered.
        self._dtls.send_data(data)


class _Channel:
    """One labelled channel: aiortc's channel (once started) plus what waits for it to open."""

    __slots__ = ("closing", "info", "label", "local", "pending", "pending_bytes", "rtc")

    def __init__(self, label: str, info: ChannelInfo, *, local: bool) -> None:
        self.label = label
        self.info = info
        self.local = local  # opened by us (else by the peer)
        self.rtc: RTCDataChannel | None = None
        self.pending: deque[Message] = deque()
        self.pending_bytes = 0
        self.closing = False  # close_channel() was called; close once the pending are sent

    def buffered(self) -> int:
        rtc = self.rtc
        return self.pending_bytes + (rtc.bufferedAmount if rtc is not None else 0)


class DataChannels:
    """The data channels of one endpoint (one SCTP association over its DTLS transport).

    Channels are named by label; a label names at most one channel, whichever side opened it.
    A channel the peer opens is announced to `on_channel` (and its messages to `on_message`)
    unless its label is taken: a newer peer channel replaces an older peer channel with the
    same label (`on_closed`, then `on_channel`), and a peer channel whose label we opened is
    refused (closed at once, counted in `refused`). Pre-negotiated (`negotiated: true`)
    channels are not supported.

    Everything runs on the event loop; no method blocks or awaits the network except `close()`.
    Callbacks are called synchronously from the SCTP receive path, in message order per
    channel; they may call `open_channel`, `send` and `close_channel`. Exceptions from them are
    logged and counted, never propagated.

    Attributes:
        dropped: messages `send` refused (unknown or closed label, too large, buffer full).
        recv_dropped: SCTP packets dropped on arrival (closed, or too many waiting).
        errors: SCTP packets aiortc failed on (malformed chunks, DCEP protocol violations).
        refused: channels the peer opened with a label we already use for ours.
        callback_errors: exceptions raised by `on_channel`/`on_message`/`on_closed`.
    """

    def __init__(
        self,
        dtls: DtlsSrtpTransport,
        *,
        on_channel: Callable[[str, ChannelInfo], None],
        on_message: Callable[[str, Message], None],
        on_closed: Callable[[str], None],
        port: int = SCTP_PORT,
        remote_port: int = SCTP_PORT,
        remote_max_message_size: int = DEFAULT_REMOTE_MAX_MESSAGE_SIZE,
        max_buffered: int = 4 * 1024 * 1024,
        label: str = "",
    ) -> None:
        """Create the association's endpoint; nothing is sent until `start()`.

        Wire `dtls`'s `on_data` to `data_received`.

        Args:
            dtls: the endpoint's DTLS transport (either role; its `is_server` decides ours).
            on_channel: a channel the peer opened, with its settings; its messages follow.
            on_message: a message on a channel (either side's), in order per ordered channel.
            on_closed: a channel was closed by the peer, or the association ended (not called
                for `close_channel()` or `close()`).
            port: our SCTP port (our `a=sctp-port`).
            remote_port: the peer's SCTP port (its `a=sctp-port`).
            remote_max_message_size: the peer's `a=max-message-size` (0: no limit); larger
                messages are dropped by `send`.
            max_buffered: bytes per channel waiting to be sent (queued before open plus SCTP's
                send buffer) beyond which `send` drops; a relay must not grow without bound
                towards a slow receiver.
            label: a name for log lines (e.g. the participant SID).
        """
        if remote_max_message_size < 0 or max_buffered < 0:
            raise ValueError("sizes must not be negative")
        self._dtls = dtls
        self._adapter = _DtlsAdapter(dtls)
        self._on_channel = on_channel
        self._on_message = on_message
        self._on_closed = on_closed
        self._port = port
        self._remote_port = remote_port
        self._remote_max_message_size = remote_max_message_size
        self._max_buffered = max_buffered
        self._label = label
        self._sctp: RTCSctpTransport | None = None
        self._channels: dict[str, _Channel] = {}
        self._released: dict[int, float] = {}  # stream id → when it closed (`_free_stream_id`)
        self._inbound: deque[bytes] = deque()
        self._wakeup = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None
        self._closed = False
        self.dropped = 0
        self.recv_dropped = 0
        self.errors = 0
        self.refused = 0
        self.callback_errors = 0

    # -- public API ---------------------------------------------------------------------------

    @property
    def state(self) -> DataChannelsState:
        """ "new" before `start()`, then the association's "connecting"/"connected"/"closed"."""
        if self._closed:
            return "closed"
        sctp = self._sctp
        if sctp is None:
            return "new"
        state = sctp.state
        if state == "connected":
            return "connected"
        if state == "closed":
            return "closed"
        return "connecting"

    @property
    def channels(self) -> dict[str, ChannelInfo]:
        """Label → settings of every channel not closed yet (a snapshot)."""
        return {label: ch.info for label, ch in self._channels.items()}

    def is_open(self, label: str) -> bool:
        """Whether the channel is open (messages to it go straight to SCTP)."""
        ch = self._channels.get(label)
        return ch is not None and ch.rtc is not None and ch.rtc.readyState == "open"

    def buffered_amount(self, label: str) -> int:
        """Bytes of `send`ed messages not handed to SCTP yet (0 for an unknown label)."""
        ch = self._channels.get(label)
        return ch.buffered() if ch is not None else 0

    def data_received(self, data: bytes) -> None:
        """One DTLS application data record (an SCTP packet) from the peer; never raises.

        Packets that arrive before `start()` are kept (up to a bound) and handled after it.
        """
        if self._closed or len(self._inbound) >= _MAX_INBOUND:
            self.recv_dropped += 1
            return
        self._inbound.append(data)
        if self._worker is not None:
            self._wakeup.set()

    def start(self) -> None:
        """Start the association (send our INIT); call on the loop once DTLS is connected.

        Channels opened earlier are announced once the association is up. Calling it before
        DTLS is connected works too (the INIT is retransmitted, after aiortc's 3 s RTO).
        Does nothing unless the state is "new".
        """
        if self._closed or self._sctp is not None:
            return
        loop = asyncio.get_running_loop()
        try:
            sctp = RTCSctpTransport(self._adapter, port=self._port)  # type: ignore[arg-type]
        except InvalidStateError:  # the DTLS transport is closed
            self._closed = True
            return
        sctp.on("datachannel", self._remote_channel)
        sctp.on("error", self._emitter_error)
        self._sctp = sctp
        for ch in self._channels.values():
            if ch.rtc is None:
                self._announce(ch, sctp)
        self._worker = loop.create_task(self._run(sctp), name=f"sctp {self._label}")

    def open_channel(
        self,
        label: str,
        *,
        ordered: bool = True,
        max_retransmits: int | None = None,
        max_packet_life_time: int | None = None,
        protocol: str = "",
    ) -> bool:
        """Open a channel towards the peer (DCEP OPEN); messages may be `send`t at once.

        Before `start()` (or before the association is up) the channel waits and is announced
        later. Returns False (and does nothing) once closed or the association has ended.

        Raises:
            ValueError: the label is in use, both reliability limits are given, a limit is
                outside 0–65535, or the label/protocol is longer than 65535 UTF-8 bytes.
        """
        if max_retransmits is not None and max_packet_life_time is not None:
            raise ValueError("max_retransmits and max_packet_life_time are exclusive")
        for value in (max_retransmits, max_packet_life_time):
            if value is not None and not 0 <= value <= _MAX_RELIABILITY:
                raise ValueError(f"reliability limit {value} outside 0-{_MAX_RELIABILITY}")
        if max(len(label.encode()), len(protocol.encode())) > _MAX_LABEL_BYTES:
            raise ValueError("label or protocol too long")
        if label in self._channels:
            raise ValueError(f"data channel label {label!r} is in use")
        if self.state == "closed":
            return False
        info = ChannelInfo(ordered, max_retransmits, max_packet_life_time, protocol)
        ch = _Channel(label, info, local=True)
        self._channels[label] = ch
        if self._sctp is not None:
            self._announce(ch, self._sctp)
        return True

    def send(self, label: str, message: Message) -> bool:
        """Queue one message on the channel `label`; never blocks, never raises for the network.

        Messages for a channel that is not open yet wait for it (in order). Returns False, and
        counts the message in `dropped`, if the label is unknown or closing, the message is
        larger than the peer's `a=max-message-size`, or the channel already buffers
        `max_buffered` bytes.

        Raises:
            TypeError: `message` is neither `str` nor `bytes`.
        """
        if isinstance(message, str):
            size = len(message.encode())
        elif isinstance(message, bytes):
            size = len(message)
        else:
            raise TypeError(f"data channel messages are str or bytes, not {type(message)}")
        ch = self._channels.get(label)
        if ch is None or ch.closing or self._closed:
            return self._drop("no channel %r", label)
        limit = self._remote_max_message_size
        if limit and size > limit:
            return self._drop("%d-byte message over the peer's limit on %r", size, label)
        if ch.buffered() + size > self._max_buffered:
            return self._drop("buffer full on %r", label)
        rtc = ch.rtc
        if rtc is not None and rtc.readyState == "open" and not ch.pending:
            rtc.send(message)
            return True
        if rtc is not None and rtc.readyState in ("closing", "closed"):
            return self._drop("channel %r is %s", label, rtc.readyState)
        ch.pending.append(message)
        ch.pending_bytes += size
        return True

    def close_channel(self, label: str) -> None:
        """Close a channel (an SCTP stream reset); its label is free again at once.

        Messages queued while the peer had not acknowledged it yet are still sent first; a
        channel opened before `start()` was never announced and is discarded with its queue.
        `on_closed` is not called. Unknown labels are ignored.
        """
        ch = self._channels.pop(label, None)
        if ch is None:
            return
        ch.closing = True
        rtc = ch.rtc
        if rtc is None:
            ch.pending.clear()
        elif not ch.pending or rtc.readyState != "connecting":
            ch.pending.clear()
            rtc.close()
        # else: `_opened` sends the pending messages, then closes.

    async def close(self) -> None:
        """Abort the association (SCTP ABORT) and stop; idempotent. No callbacks follow.

        Call it before closing the DTLS transport (else the ABORT is dropped and the peer
        learns from DTLS close_notify instead), and whenever that transport closes or fails.
        """
        if not self._closed:
            self._closed = True
            channels = list(self._channels.values())
            self._channels.clear()
            for ch in channels:
                ch.closing = True
                ch.pending.clear()
            self._inbound.clear()
            self._wakeup.set()
            sctp = self._sctp
            if sctp is not None:
                try:
                    await sctp.stop()  # ABORT, cancels timers, closes aiortc's channels
                except Exception:
                    logger.exception("SCTP %s: stop failed", self._label)
        worker, self._worker = self._worker, None
        if worker is not None and worker is not asyncio.current_task():
            worker.cancel()
            try:
                await worker
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise

    # -- SCTP ------------------------------------------------------------------------------------

    async def _run(self, sctp: RTCSctpTransport) -> None:
        """Start the association, then feed it the inbound packets one at a time, in order."""
        caps = RTCSctpCapabilities(maxMessageSize=self._remote_max_message_size)
        await sctp.start(caps, self._remote_port)
        inbound, adapter = self._inbound, self._adapter
        while not self._closed:
            while inbound:
                data = inbound.popleft()
                receiver = adapter.receiver
                if receiver is None:  # stopped
                    self.recv_dropped += 1
                    continue
                try:
                    await receiver._handle_data(data)
                except Exception as exc:  # aiortc asserts on DCEP violations, struct errors
                    self.errors += 1
                    self._debug("bad SCTP packet (%s: %s)", type(exc).__name__, exc)
                if self._closed:
                    return
            self._wakeup.clear()
            await self._wakeup.wait()

    def _announce(self, ch: _Channel, sctp: RTCSctpTransport) -> None:
        """Create aiortc's channel for one of ours: queues the DCEP OPEN."""
        info = ch.info
        parameters = RTCDataChannelParameters(
            label=ch.label,
            ordered=info.ordered,
            maxRetransmits=info.max_retransmits,
            maxPacketLifeTime=info.max_packet_life_time,
            protocol=info.protocol,
        )
        parameters.id = self._free_stream_id(sctp)
        ch.rtc = RTCDataChannel(sctp, parameters)
        self._listen(ch, ch.rtc)

    def _free_stream_id(self, sctp: RTCSctpTransport) -> int:
        """The lowest stream id of our parity (RFC 8832 §6: odd for the DTLS server) that
        is neither in use nor closed less than `STREAM_ID_QUARANTINE` seconds ago.

        aiortc hands out the lowest id not in use, and frees an id as soon as both
        directions of its stream are reset on our side; the peer frees it only when our
        answer to its own reset request arrives, which may be a retransmission later (an
        answer lost, or "in progress" while data was in flight). A DATA_CHANNEL_OPEN on an id
        the peer still holds breaks its SCTP (aiortc asserts; RFC 8831 §6.7 forbids the
        reuse), so a closed id rests before it is used again."""
        now = time.monotonic()
        released = self._released
        for stream_id, at in list(released.items()):
            if now - at >= STREAM_ID_QUARANTINE:
                del released[stream_id]
        in_use = sctp._data_channels
        stream_id = 1 if self._dtls.is_server else 0
        while stream_id in in_use or stream_id in released:
            stream_id += 2
        if stream_id >= sctp._outbound_streams_count and released:
            # Every id the peer allows is in use or resting: the one closed longest ago.
            stream_id = min(released, key=released.__getitem__)
            del released[stream_id]
        return stream_id

    def _listen(self, ch: _Channel, rtc: RTCDataChannel) -> None:
        rtc.on("open", lambda: self._opened(ch))
        rtc.on("message", lambda message: self._message(ch, message))
        rtc.on("close", lambda: self._rtc_closed(ch))
        rtc.on("error", self._emitter_error)

    def _remote_channel(self, rtc: RTCDataChannel) -> None:
        """The peer opened a channel (DCEP OPEN); aiortc has acknowledged it already."""
        label = rtc.label
        existing = self._channels.get(label)
        if existing is not None:
            if existing.local:
                self.refused += 1
                self._debug("refused peer channel %r: the label is ours", label)
                rtc.close()
                return
            # The peer reopened the label (e.g. republished a track): the new one wins.
            del self._channels[label]
            existing.closing = True
            if existing.rtc is not None:
                existing.rtc.close()
            self._call(self._on_closed, label)
        info = ChannelInfo(
            ordered=rtc.ordered,
            max_retransmits=rtc.maxRetransmits,
            max_packet_life_time=rtc.maxPacketLifeTime,
            protocol=rtc.protocol,
        )
        ch = _Channel(label, info, local=False)
        ch.rtc = rtc
        self._channels[label] = ch
        self._listen(ch, rtc)
        self._call(self._on_channel, label, info)

    def _opened(self, ch: _Channel) -> None:
        """One of our channels was acknowledged: send what waited for it, in order."""
        rtc = ch.rtc
        if rtc is None:
            return
        pending = ch.pending
        while pending and rtc.readyState == "open":
            rtc.send(pending.popleft())
        ch.pending_bytes = 0
        pending.clear()
        if ch.closing:
            rtc.close()

    def _message(self, ch: _Channel, message: Message) -> None:
        if self._channels.get(ch.label) is ch:
            self._call(self._on_message, ch.label, message)

    def _rtc_closed(self, ch: _Channel) -> None:
        rtc = ch.rtc
        if rtc is not None and rtc.id is not None:
            self._released[rtc.id] = time.monotonic()
        ch.pending.clear()
        ch.pending_bytes = 0
        if self._channels.get(ch.label) is ch:
            del self._channels[ch.label]
            self._call(self._on_closed, ch.label)

    # -- plumbing ----------------------------------------------------------------------------

    def _call(self, callback: Callable[..., None], *args: object) -> None:
        try:
            callback(*args)
        except Exception:
            self.callback_errors += 1
            logger.exception("SCTP %s: data channel callback failed", self._label)

    def _emitter_error(self, exc: BaseException) -> None:
        # pyee turns an exception raised by a listener into an "error" event; ours don't raise.
        self.callback_errors += 1
        logger.error("SCTP %s: event handler failed", self._label, exc_info=exc)

    def _drop(self, msg: str, *args: object) -> bool:
        self.dropped += 1
        self._debug("send dropped: " + msg, *args)
        return False

    def _debug(self, msg: str, *args: object) -> None:
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("SCTP %s: %s", self._label, msg % args)
