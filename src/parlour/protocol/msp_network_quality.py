"""Wire contract of the ``network_quality`` Media Signaling Protocol channel.

The channel is granted in ``connected.media_signaling.network_quality`` and travels over an
RTCDataChannel as one JSON object per message (`parlour.protocol.signaling`, MSP). The
``twilio-video`` SDK (``lib/signaling/v2/networkqualitysignaling.js``) first sends
``{"type": "ready"}`` (``lib/data/transport.js``), then:

- **client → server**: `NetworkQualityReport`, ``{"type": "network_quality", ice, send, recv,
  audio: {send, recv}, video: {send, recv}, reportLevel, remoteReportLevel}``: the summary of
  its own ``getStats()`` (``PeerConnectionReport.summarize()`` in ``lib/stats/``) plus the
  verbosity it wants for itself and for the others. It sends the first one as soon as the
  channel is ready, the next one 1 s after each server reply; without a reply it resends
  after 5 s, 7.5 s, 11.25 s … (× 1.5 each time, back to 5 s after a reply).
- **server → client**: `NetworkQualityMessage`, ``{"type": "network_quality", local,
  remotes}``: ``local`` is a bare level (0–5) at minimal verbosity or a
  `NetworkQualityLevels` object at moderate/detailed; ``remotes`` lists
  `RemoteNetworkQualityLevels`, one per remote participant, by ``sid``.

Units are the SDK's: bitrates in bit/s, ``rtt`` and ``jitter`` in seconds, ``fractionLost``
0–1. What the browser does not know is left out (``undefined`` in JavaScript, so absent in
JSON) and a NaN (a missing counter) becomes ``null``: every statistic is optional here.

Every message is a frozen dataclass with ``parse(obj)`` / ``to_json()``; parsing raises only
`NetworkQualityProtocolError` (a `SignalingProtocolError`, so a `ValueError`), and
`UnknownNetworkQualityMessageError` for a well-formed message of another ``type`` (such as
``ready``). Members not modelled are kept in ``extra`` and written back. Pure: stdlib only.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, ClassVar, Final, Self, TypeAlias, cast

from parlour.protocol import wire
from parlour.protocol.signaling import SignalingProtocolError, UnknownMessageTypeError
from parlour.protocol.wire import JsonObject, Reader, Wire, emit, extra_field

__all__ = [
    "MAX_LEVEL",
    "MESSAGE_TYPE",
    "BandwidthStats",
    "FractionLostStats",
    "IceSummary",
    "LatencyStats",
    "LocalLevel",
    "MediaLevels",
    "NetworkQualityLevels",
    "NetworkQualityMessage",
    "NetworkQualityProtocolError",
    "NetworkQualityReport",
    "NetworkQualityVerbosity",
    "ReceiverSummary",
    "RemoteNetworkQualityLevels",
    "SendOrRecvStats",
    "SenderSummary",
    "TrackKindSummary",
    "UnknownNetworkQualityMessageError",
    "encode_message",
    "parse_message",
]

MESSAGE_TYPE: Final = "network_quality"
"""``type`` of both directions' messages."""
MAX_LEVEL: Final = 5
"""Network Quality Levels run 0 (network broken) to 5 (excellent)."""


class NetworkQualityProtocolError(SignalingProtocolError):
    """A ``network_quality`` message that does not follow the protocol.

    The only exception the parsers raise for bad input; the message names the member by path,
    e.g. ``network_quality.remotes[0].level: expected an integer 0–5, got a string``.
    """


class UnknownNetworkQualityMessageError(NetworkQualityProtocolError, UnknownMessageTypeError):
    """A JSON object whose ``type`` is not ``network_quality`` (``ready`` comes first).

    ``message_type`` is the ``type`` as received, or ``""`` if it was not a string.
    """


class NetworkQualityVerbosity(IntEnum):
    """``reportLevel`` / ``remoteReportLevel``: how much the client wants to hear.

    The SDK never sends ``NONE`` for itself (``local`` below 1 falls back to 1), and treats a
    ``NONE`` local verbosity as minimal; for remotes ``NONE`` means no ``remotes`` at all.
    """

    NONE = 0
    MINIMAL = 1
    MODERATE = 2
    DETAILED = 3


# --------------------------------------------------------------------------------------------
# Reading untrusted JSON (the machinery is `parlour.protocol.wire`'s)


class _Obj(Reader):
    """`Reader` of ``network_quality`` messages: raises `NetworkQualityProtocolError`."""

    __slots__ = ()

    error: ClassVar[type[ValueError]] = NetworkQualityProtocolError

    def req_level(self, key: str) -> int:
        return self.check_level(key, self.get(key))

    def check_level(self, key: str, value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_LEVEL:
            raise self.fail(key, f"an integer 0–{MAX_LEVEL}", value)
        return value

    def opt_level(self, key: str) -> int | None:
        return self._opt(key, self.req_level)

    def req_verbosity(self, key: str) -> NetworkQualityVerbosity:
        """A verbosity 0–3. The SDK only range-checks it, so 2.5 is possible: it is floored."""
        value = self.get(key)
        if (
            not wire.is_finite_number(value)
            or not 0 <= cast(float, value) <= NetworkQualityVerbosity.DETAILED
        ):
            raise self.fail(key, "a number 0–3", value)
        return NetworkQualityVerbosity(math.floor(cast(float, value)))


class _Wire(Wire[_Obj]):
    """Base of every wire object here; `parse` raises only `NetworkQualityProtocolError`."""

    __slots__ = ()

    _READER: ClassVar[type[Reader]] = _Obj

    @classmethod
    def _expect_type(cls, f: _Obj) -> None:
        value = f.get("type")
        if value != cls.TYPE:
            if isinstance(value, str):
                raise UnknownNetworkQualityMessageError(
                    f"{f.where}.type: expected {cls.TYPE!r}, got {value[:40]!r}", value
                )
            raise f.fail("type", repr(cls.TYPE), value)


_Read: TypeAlias = Callable[[_Obj, str], object]
"""How one member is read: ``read(f, wire_name)``."""


class _Record(_Wire):
    """A wire object whose members are all optional, each read its own way.

    ``_MEMBERS`` lists ``(attribute, wire name, read)``; ``to_json`` leaves out the members
    that are None, or (with ``_NULLS``) writes them as null.
    """

    __slots__ = ()

    _MEMBERS: ClassVar[tuple[tuple[str, str, _Read], ...]] = ()
    _NULLS: ClassVar[bool] = False

    @classmethod
    def _parse(cls, f: _Obj) -> Self:
        return cls(**cls._read_members(f) | {"extra": f.extra()})

    @classmethod
    def _read_members(cls, f: _Obj) -> dict[str, Any]:
        return {attr: read(f, name) for attr, name, read in cls._MEMBERS}

    def _members(self) -> JsonObject:
        out: JsonObject = {}
        for attr, name, _ in self._MEMBERS:
            value = getattr(self, attr)
            if self._NULLS:
                out[name] = value
            else:
                emit(out, name, value)
        return out


def _number(f: _Obj, key: str) -> float | None:
    return f.opt_number(key)


def _level(f: _Obj, key: str) -> int | None:
    return f.opt_level(key)


def _part(cls: type[_Wire]) -> _Read:
    """Reads an optional nested object of class ``cls``."""
    return lambda f, key: f.opt_parsed(key, cls._parse)


# --------------------------------------------------------------------------------------------
# Client → server: the SDK's own statistics (lib/stats/peerconnectionreport.js `summarize`)


@dataclass(frozen=True, slots=True, kw_only=True)
class IceSummary(_Record):
    """``ice``: the selected candidate pair (``IceReport``), bit/s and seconds.

    ``availableSend`` is Chrome's ``availableOutgoingBitrate`` (its send-side bandwidth
    estimate), ``rtt`` its ``currentRoundTripTime``; both absent in Firefox. Before two
    ``getStats()`` samples exist the SDK sends ``{"send": 0, "recv": 0}``.
    """

    send: float | None = None
    recv: float | None = None
    available_send: float | None = None
    rtt: float | None = None
    extra: Mapping[str, Any] = extra_field()

    _WHERE: ClassVar[str] = "network_quality.ice"
    _MEMBERS: ClassVar[tuple[tuple[str, str, _Read], ...]] = (
        ("send", "send", _number),
        ("recv", "recv", _number),
        ("available_send", "availableSend", _number),
        ("rtt", "rtt", _number),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class SenderSummary(_Record):
    """``send`` / ``<kind>.send``: summed ``bitrate`` (bit/s) of the outbound RTP streams and
    the average ``rtt`` of their remote-inbound stats.

    The SDK divides ``roundTripTime`` (already in seconds) by 1000, so ``rtt`` here is 1000
    times too small; use ``ice.rtt`` for the round-trip time.
    """

    bitrate: float | None = None
    rtt: float | None = None
    extra: Mapping[str, Any] = extra_field()

    _WHERE: ClassVar[str] = "network_quality.send"
    _MEMBERS: ClassVar[tuple[tuple[str, str, _Read], ...]] = (
        ("bitrate", "bitrate", _number),
        ("rtt", "rtt", _number),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class ReceiverSummary(_Record):
    """``recv`` / ``<kind>.recv``: summed ``bitrate`` (bit/s) of the inbound RTP streams, the
    average ``fractionLost`` (0–1; packets lost / received since the previous sample when the
    browser has no ``fractionLost``) and average ``jitter`` (seconds).

    With no inbound streams, ``fractionLost`` and ``jitter`` are absent.
    """

    bitrate: float | None = None
    fraction_lost: float | None = None
    jitter: float | None = None
    extra: Mapping[str, Any] = extra_field()

    _WHERE: ClassVar[str] = "network_quality.recv"
    _MEMBERS: ClassVar[tuple[tuple[str, str, _Read], ...]] = (
        ("bitrate", "bitrate", _number),
        ("fraction_lost", "fractionLost", _number),
        ("jitter", "jitter", _number),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class TrackKindSummary(_Record):
    """``audio`` / ``video``: the sender and receiver summaries of one kind of track."""

    send: SenderSummary | None = None
    recv: ReceiverSummary | None = None
    extra: Mapping[str, Any] = extra_field()

    _WHERE: ClassVar[str] = "network_quality.audio"
    _MEMBERS: ClassVar[tuple[tuple[str, str, _Read], ...]] = (
        ("send", "send", _part(SenderSummary)),
        ("recv", "recv", _part(ReceiverSummary)),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class NetworkQualityReport(_Record):
    """Client → server ``network_quality``: the client's statistics and wanted verbosity.

    ``send``/``recv`` sum audio and video; ``audio``/``video`` split them. All statistics are
    absent when the client has no peer connection yet. ``reportLevel`` (1–3 from the SDK) is
    the verbosity for the local participant, ``remoteReportLevel`` (0–3) for the others; the
    client may change both at any time (``setNetworkQualityConfiguration``).

    `parse` raises `UnknownNetworkQualityMessageError` if ``type`` is not
    ``network_quality``, `NetworkQualityProtocolError` if the message is otherwise invalid.
    """

    report_level: NetworkQualityVerbosity = NetworkQualityVerbosity.MINIMAL
    remote_report_level: NetworkQualityVerbosity = NetworkQualityVerbosity.NONE
    ice: IceSummary | None = None
    send: SenderSummary | None = None
    recv: ReceiverSummary | None = None
    audio: TrackKindSummary | None = None
    video: TrackKindSummary | None = None
    extra: Mapping[str, Any] = extra_field()

    TYPE: ClassVar[str] = MESSAGE_TYPE
    _MEMBERS: ClassVar[tuple[tuple[str, str, _Read], ...]] = (
        ("ice", "ice", _part(IceSummary)),
        ("send", "send", _part(SenderSummary)),
        ("recv", "recv", _part(ReceiverSummary)),
        ("audio", "audio", _part(TrackKindSummary)),
        ("video", "video", _part(TrackKindSummary)),
    )

    @classmethod
    def _parse(cls, f: _Obj) -> Self:
        return cls(
            report_level=f.req_verbosity("reportLevel"),
            remote_report_level=f.req_verbosity("remoteReportLevel"),
            **cls._read_members(f),
            extra=f.extra(),
        )

    def _members(self) -> JsonObject:
        out = _Record._members(self)
        out["reportLevel"] = int(self.report_level)
        out["remoteReportLevel"] = int(self.remote_report_level)
        return out


# --------------------------------------------------------------------------------------------
# Server → client: levels (lib/stats/networkquality*.js)


@dataclass(frozen=True, slots=True, kw_only=True)
class BandwidthStats(_Record):
    """``bandwidth``: ``actual`` bit/s used, ``available`` bit/s estimated, their ``level``."""

    actual: float | None = None
    available: float | None = None
    level: int | None = None
    extra: Mapping[str, Any] = extra_field()

    _WHERE: ClassVar[str] = "bandwidth"
    _MEMBERS: ClassVar[tuple[tuple[str, str, _Read], ...]] = (
        ("actual", "actual", _number),
        ("available", "available", _number),
        ("level", "level", _level),
    )
    _NULLS: ClassVar[bool] = True


@dataclass(frozen=True, slots=True, kw_only=True)
class FractionLostStats(_Record):
    """``fractionLost``: ``{fractionLost: 0–1, level}``."""

    fraction_lost: float | None = None
    level: int | None = None
    extra: Mapping[str, Any] = extra_field()

    _WHERE: ClassVar[str] = "fractionLost"
    _MEMBERS: ClassVar[tuple[tuple[str, str, _Read], ...]] = (
        ("fraction_lost", "fractionLost", _number),
        ("level", "level", _level),
    )
    _NULLS: ClassVar[bool] = True


@dataclass(frozen=True, slots=True, kw_only=True)
class LatencyStats(_Record):
    """``latency``: ``{jitter: s, rtt: s, level}``."""

    jitter: float | None = None
    rtt: float | None = None
    level: int | None = None
    extra: Mapping[str, Any] = extra_field()

    _WHERE: ClassVar[str] = "latency"
    _MEMBERS: ClassVar[tuple[tuple[str, str, _Read], ...]] = (
        ("jitter", "jitter", _number),
        ("rtt", "rtt", _number),
        ("level", "level", _level),
    )
    _NULLS: ClassVar[bool] = True


@dataclass(frozen=True, slots=True, kw_only=True)
class SendOrRecvStats(_Record):
    """``sendStats`` / ``recvStats`` (detailed verbosity): what a send or recv level is from."""

    bandwidth: BandwidthStats | None = None
    fraction_lost: FractionLostStats | None = None
    latency: LatencyStats | None = None
    extra: Mapping[str, Any] = extra_field()

    _WHERE: ClassVar[str] = "sendStats"
    _MEMBERS: ClassVar[tuple[tuple[str, str, _Read], ...]] = (
        ("bandwidth", "bandwidth", _part(BandwidthStats)),
        ("fraction_lost", "fractionLost", _part(FractionLostStats)),
        ("latency", "latency", _part(LatencyStats)),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class MediaLevels(_Wire):
    """``audio`` / ``video`` (moderate and detailed): ``send`` level of what the participant
    publishes, ``recv`` level of what it subscribes to, and (detailed) their statistics."""

    send: int
    recv: int
    send_stats: SendOrRecvStats | None = None
    recv_stats: SendOrRecvStats | None = None
    extra: Mapping[str, Any] = extra_field()

    _WHERE: ClassVar[str] = "audio"

    @classmethod
    def _parse(cls, f: _Obj) -> Self:
        return cls(
            send=f.req_level("send"),
            recv=f.req_level("recv"),
            send_stats=f.opt_parsed("sendStats", SendOrRecvStats._parse),
            recv_stats=f.opt_parsed("recvStats", SendOrRecvStats._parse),
            extra=f.extra(),
        )

    def _members(self) -> JsonObject:
        out: JsonObject = {"send": self.send, "recv": self.recv}
        emit(out, "sendStats", self.send_stats)
        emit(out, "recvStats", self.recv_stats)
        return out

    def without_stats(self) -> MediaLevels:
        """The moderate form: levels only."""
        return MediaLevels(send=self.send, recv=self.recv, extra=self.extra)


def _parse_levels_members(f: _Obj) -> tuple[int, MediaLevels | None, MediaLevels | None]:
    level = f.opt_level("level")
    audio = f.opt_parsed("audio", MediaLevels._parse)
    video = f.opt_parsed("video", MediaLevels._parse)
    if level is None:
        # The SDK falls back to min(audio.send, audio.recv, video.send, video.recv), and
        # throws if either is missing.
        if audio is None or video is None:
            raise f.fail("level", f"an integer 0–{MAX_LEVEL} (or both audio and video)", None)
        level = min(audio.send, audio.recv, video.send, video.recv)
    return level, audio, video


@dataclass(frozen=True, slots=True, kw_only=True)
class NetworkQualityLevels(_Wire):
    """A participant's levels (``NetworkQualityLevels`` in the SDK): the overall ``level`` and,
    at moderate/detailed verbosity, ``audio`` and ``video``.

    The SDK shows ``level`` as ``networkQualityLevel`` and builds ``networkQualityStats`` only
    when ``audio`` or ``video`` is present. On parsing, a missing ``level`` is computed as the
    SDK does, so ``to_json`` always writes one.
    """

    level: int
    audio: MediaLevels | None = None
    video: MediaLevels | None = None
    extra: Mapping[str, Any] = extra_field()

    _WHERE: ClassVar[str] = "network_quality.local"

    @classmethod
    def _parse(cls, f: _Obj) -> Self:
        level, audio, video = _parse_levels_members(f)
        return cls(level=level, audio=audio, video=video, extra=f.extra())

    def _members(self) -> JsonObject:
        out: JsonObject = {"level": self.level}
        emit(out, "audio", self.audio)
        emit(out, "video", self.video)
        return out

    def at_verbosity(self, verbosity: NetworkQualityVerbosity) -> NetworkQualityLevels:
        """These levels cut down to what ``verbosity`` shows (NONE and MINIMAL: level only)."""
        if verbosity >= NetworkQualityVerbosity.DETAILED:
            return self
        if verbosity == NetworkQualityVerbosity.MODERATE:
            return NetworkQualityLevels(
                level=self.level,
                audio=None if self.audio is None else self.audio.without_stats(),
                video=None if self.video is None else self.video.without_stats(),
                extra=self.extra,
            )
        return NetworkQualityLevels(level=self.level, extra=self.extra)


@dataclass(frozen=True, slots=True, kw_only=True)
class RemoteNetworkQualityLevels(_Wire):
    """``remotes[]``: a remote participant's levels, keyed by its ``sid`` (``PA…``).

    Always an object with ``level``, even at minimal verbosity (``{"sid", "level"}``).
    """

    sid: str
    level: int
    audio: MediaLevels | None = None
    video: MediaLevels | None = None
    extra: Mapping[str, Any] = extra_field()

    _WHERE: ClassVar[str] = "network_quality.remotes[]"

    @classmethod
    def _parse(cls, f: _Obj) -> Self:
        sid = f.req_str("sid", nonempty=True)
        level, audio, video = _parse_levels_members(f)
        return cls(sid=sid, level=level, audio=audio, video=video, extra=f.extra())

    def _members(self) -> JsonObject:
        out: JsonObject = {"sid": self.sid, "level": self.level}
        emit(out, "audio", self.audio)
        emit(out, "video", self.video)
        return out

    @classmethod
    def of(
        cls,
        sid: str,
        levels: NetworkQualityLevels,
        verbosity: NetworkQualityVerbosity = NetworkQualityVerbosity.DETAILED,
    ) -> Self:
        """A remote entry for ``sid`` from ``levels`` cut down to ``verbosity``."""
        cut = levels.at_verbosity(verbosity)
        return cls(sid=sid, level=cut.level, audio=cut.audio, video=cut.video)

    @property
    def levels(self) -> NetworkQualityLevels:
        """The same levels without the ``sid``."""
        return NetworkQualityLevels(level=self.level, audio=self.audio, video=self.video)


LocalLevel: TypeAlias = int | NetworkQualityLevels
"""``local``: a bare level at minimal verbosity, an object at moderate and detailed."""


def _parse_local(f: _Obj) -> LocalLevel | None:
    value = f.get("local")
    if value is wire.MISSING or value is None:
        return None
    if isinstance(value, dict):
        return NetworkQualityLevels._parse(f.child(value, f.path("local")))
    return f.check_level("local", value)


@dataclass(frozen=True, slots=True, kw_only=True)
class NetworkQualityMessage(_Wire):
    """Server → client ``network_quality``: ``{local, remotes}``.

    The SDK (``_handleNetworkQualityMessage``):

    - ``local`` a number: that is the level, ``networkQualityStats`` becomes null.
    - ``local`` an object: its ``level`` (or the minimum of ``audio``/``video`` send and recv).
    - ``local`` absent or null: the local level is left as it was (initially null, unknown).
    - ``remotes`` an array: replaces every remote participant's entry; each participant in
      it gets ``level`` (and stats). Absent or null: remote levels are left as they were.

    ``networkQualityLevelChanged`` fires when a level changes. Every message also tells the
    client to send its next `NetworkQualityReport` 1 s later, so the server answers each
    report with exactly one message (a second reply before that report would schedule a
    second report).

    `parse` raises `UnknownNetworkQualityMessageError` if ``type`` is not
    ``network_quality``, `NetworkQualityProtocolError` if the message is otherwise invalid.
    """

    local: LocalLevel | None = None
    remotes: tuple[RemoteNetworkQualityLevels, ...] | None = None
    extra: Mapping[str, Any] = extra_field()

    TYPE: ClassVar[str] = MESSAGE_TYPE

    @classmethod
    def _parse(cls, f: _Obj) -> Self:
        return cls(
            local=_parse_local(f),
            remotes=f.opt_objs("remotes", RemoteNetworkQualityLevels._parse),
            extra=f.extra(),
        )

    def _members(self) -> JsonObject:
        out: JsonObject = {}
        emit(out, "local", self.local)
        if self.remotes is not None:
            out["remotes"] = [remote.to_json() for remote in self.remotes]
        return out

    @classmethod
    def build(
        cls,
        local: NetworkQualityLevels | None,
        remotes: Iterable[tuple[str, NetworkQualityLevels]],
        *,
        report_level: NetworkQualityVerbosity,
        remote_report_level: NetworkQualityVerbosity,
    ) -> Self:
        """The reply to a report asking for ``report_level`` / ``remote_report_level``.

        Args:
            local: The participant's own levels, or None while unknown (left out; the SDK
                keeps its level null).
            remotes: ``(sid, levels)`` of the other participants whose levels are known.
            report_level: Verbosity for ``local``; NONE counts as MINIMAL, as in the SDK.
            remote_report_level: Verbosity for ``remotes``; NONE leaves ``remotes`` out.
        """
        local_out: LocalLevel | None = None
        if local is not None:
            if report_level <= NetworkQualityVerbosity.MINIMAL:
                local_out = local.level
            else:
                local_out = local.at_verbosity(report_level)
        remotes_out: tuple[RemoteNetworkQualityLevels, ...] | None = None
        if remote_report_level > NetworkQualityVerbosity.NONE:
            remotes_out = tuple(
                RemoteNetworkQualityLevels.of(sid, levels, remote_report_level)
                for sid, levels in remotes
            )
        return cls(local=local_out, remotes=remotes_out)


# --------------------------------------------------------------------------------------------
# Text frames


def parse_message(raw: str | bytes) -> NetworkQualityReport:
    """Parse one data-channel message from the client.

    Raises:
        UnknownNetworkQualityMessageError: For a JSON object of another ``type``
            (``{"type": "ready"}`` comes first on every channel).
        NetworkQualityProtocolError: If it is not UTF-8 JSON or not a valid report.
    """
    return NetworkQualityReport.parse(wire.loads(raw, NetworkQualityProtocolError, "message"))


def encode_message(message: NetworkQualityMessage | NetworkQualityReport) -> str:
    """Serialize a message to compact JSON text for one data-channel message."""
    return json.dumps(message.to_json(), separators=(",", ":"), allow_nan=False)
