"""The channel between the main process and a media worker: framing and the shared state.

One stream socket (a socketpair made when the worker is spawned) carries frames both ways::

    frame   = kind (1 byte) | length (4 bytes, big-endian) | body (length bytes)
    kind 1  CONTROL  body = one JSON object (UTF-8): a command, a reply or an event
    kind 2  PACKET   body = tap id (4 bytes, big-endian) | one RTP packet, as received

Control messages are JSON, never pickle: they carry what clients sent (SDP, media-signaling
messages), so nothing read from the channel can make either side run code. A frame longer
than `MAX_FRAME`, an unknown kind or a body that is not a JSON object is a `ProtocolError`,
and the side that reads it drops the channel (the worker then exits and is restarted).

`SessionState` is what a worker pushes about one session so that the main process can answer
the `MediaSession` getters synchronously (`published_codec`, `published_bitrate` …);
`stats_to_json`/`parse_stats` carry `SfuMediaPlane.stats()` snapshots for `/metrics`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import socket
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from parlour.domain.bandwidth import SimulcastLayer
from parlour.domain.ports import LinkReport
from parlour.domain.sids import ParticipantSid
from parlour.media.plane import MediaCounters, MediaStats

__all__ = [
    "CONTROL",
    "MAX_FRAME",
    "PACKET",
    "Channel",
    "Packet",
    "ProtocolError",
    "SessionState",
    "parse_stats",
    "stats_to_json",
]

CONTROL = 1
PACKET = 2
#: The longest frame body either side accepts (an SDP or a media-signaling message is far
#: smaller; a longer length means a broken stream).
MAX_FRAME = 4 * 1024 * 1024
#: Tap packets are dropped, not queued, while this much is waiting to be written: a main
#: process that falls behind must not make a worker grow without bound.
PACKET_BUFFER_LIMIT = 4 * 1024 * 1024

_HEADER = struct.Struct("!BI")
_TAP = struct.Struct("!I")


class ProtocolError(Exception):
    """The other side sent something that is not a frame of this protocol."""


@dataclass(frozen=True, slots=True)
class Packet:
    """A tapped RTP packet (`PACKET` frame)."""

    tap: int
    data: bytes


class Channel:
    """Frames over one asyncio stream (see the module docstring).

    `send` and `send_packet` never block: they hand bytes to the transport. `receive` returns
    a control message (a dict) or a `Packet`; it raises `EOFError` when the other side has
    closed (or died) and `ProtocolError` for a broken stream.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        #: Tap packets dropped because the other side did not keep up.
        self.packets_dropped = 0

    @classmethod
    async def open(cls, sock: socket.socket) -> Channel:
        """A channel on a connected stream socket (one end of a socketpair)."""
        reader, writer = await asyncio.open_unix_connection(sock=sock)
        return cls(reader, writer)

    @property
    def closing(self) -> bool:
        return self._writer.is_closing()

    def send(self, message: Mapping[str, Any]) -> None:
        """Send one control message (dropped once the channel is closing)."""
        if self._writer.is_closing():
            return
        body = json.dumps(message, separators=(",", ":")).encode()
        if len(body) > MAX_FRAME:
            raise ValueError(f"control message of {len(body)} bytes is over {MAX_FRAME}")
        self._writer.write(_HEADER.pack(CONTROL, len(body)) + body)

    def send_packet(self, tap: int, packet: bytes) -> bool:
        """Send one tapped packet; False (dropped, counted) if the channel is closing or
        the other side is `PACKET_BUFFER_LIMIT` bytes behind."""
        writer = self._writer
        transport = writer.transport
        if transport.is_closing() or transport.get_write_buffer_size() > PACKET_BUFFER_LIMIT:
            self.packets_dropped += 1
            return False
        writer.writelines((_HEADER.pack(PACKET, _TAP.size + len(packet)), _TAP.pack(tap), packet))
        return True

    async def receive(self) -> dict[str, Any] | Packet:
        """The next frame.

        Raises:
            EOFError: the other side closed the channel (or its process died).
            ProtocolError: not a frame of this protocol.
        """
        try:
            kind, length = _HEADER.unpack(await self._reader.readexactly(_HEADER.size))
            if length > MAX_FRAME:
                raise ProtocolError(f"frame of {length} bytes is over {MAX_FRAME}")
            body = await self._reader.readexactly(length)
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            raise EOFError("channel closed") from exc
        if kind == PACKET:
            if length < _TAP.size:
                raise ProtocolError("packet frame without a tap id")
            (tap,) = _TAP.unpack_from(body)
            return Packet(tap, body[_TAP.size :])
        if kind != CONTROL:
            raise ProtocolError(f"unknown frame kind {kind}")
        try:
            message = json.loads(body)
        except ValueError as exc:  # UnicodeDecodeError is one
            raise ProtocolError("control frame is not JSON") from exc
        if not isinstance(message, dict):
            raise ProtocolError("control frame is not a JSON object")
        return message

    async def drain(self) -> None:
        """Wait until what was sent is handed to the kernel (or the channel broke)."""
        try:
            await self._writer.drain()
        except ConnectionError:
            pass

    def close(self) -> None:
        """Close the stream (idempotent); the other side reads EOF."""
        self._writer.close()

    async def wait_closed(self) -> None:
        try:
            await self._writer.wait_closed()
        except ConnectionError:
            pass


@dataclass(frozen=True)
class SessionState:
    """What a worker last measured of one session: the `MediaSession` getters' answers.

    A worker sends it in every reply to a description, before every event of the session
    (so the state is never older than an event the main process has delivered) and, when it
    changed, about every `worker_main.STATE_INTERVAL` seconds.
    """

    codecs: dict[str, tuple[str, tuple[int, ...]]] = field(default_factory=dict)
    bitrates: dict[str, int] = field(default_factory=dict)
    layers: dict[str, tuple[SimulcastLayer, ...]] = field(default_factory=dict)
    downlink: tuple[int | None, bool] = (None, False)
    links: tuple[LinkReport, ...] = ()
    dominant_speaker: ParticipantSid | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "codecs": {k: [name, list(pts)] for k, (name, pts) in self.codecs.items()},
            "bitrates": self.bitrates,
            "layers": {
                k: [[x.width, x.height, x.bitrate, x.active] for x in layers]
                for k, layers in self.layers.items()
            },
            "downlink": list(self.downlink),
            "links": [[r.kind, r.direction, r.fraction_lost, r.jitter, r.at] for r in self.links],
            "speaker": self.dominant_speaker,
        }

    @classmethod
    def parse(cls, obj: Any) -> SessionState:
        """Raises: ProtocolError for anything but `to_json`'s shape."""
        try:
            bps, congested = obj["downlink"]
            speaker = obj["speaker"]
            return cls(
                codecs={
                    str(k): (str(name), tuple(int(pt) for pt in pts))
                    for k, (name, pts) in obj["codecs"].items()
                },
                bitrates={str(k): int(v) for k, v in obj["bitrates"].items()},
                layers={
                    str(k): tuple(
                        SimulcastLayer(width=int(w), height=int(h), bitrate=int(b), active=bool(a))
                        for w, h, b, a in layers
                    )
                    for k, layers in obj["layers"].items()
                },
                downlink=(None if bps is None else int(bps), bool(congested)),
                links=tuple(
                    LinkReport(str(kind), str(direction), float(lost), float(jitter), float(at))
                    for kind, direction, lost, jitter, at in obj["links"]
                ),
                dominant_speaker=None if speaker is None else ParticipantSid(str(speaker)),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ProtocolError(f"bad session state: {exc!r}") from None


def stats_to_json(stats: MediaStats) -> dict[str, Any]:
    """A `MediaStats` snapshot as a JSON object."""
    return {
        "rooms": stats.rooms,
        "participants": stats.participants,
        "published": stats.published_tracks,
        "subscribed": stats.subscribed_tracks,
        "counters": dataclasses.asdict(stats.counters),
    }


def parse_stats(obj: Any) -> MediaStats:
    """`stats_to_json`'s inverse. Raises: ProtocolError for another shape."""
    try:
        names = {f.name for f in dataclasses.fields(MediaCounters)}
        counters = MediaCounters(**{k: int(v) for k, v in obj["counters"].items() if k in names})
        return MediaStats(
            rooms=int(obj["rooms"]),
            participants=int(obj["participants"]),
            published_tracks={str(k): int(v) for k, v in obj["published"].items()},
            subscribed_tracks={str(k): int(v) for k, v in obj["subscribed"].items()},
            counters=counters,
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ProtocolError(f"bad stats: {exc!r}") from None
