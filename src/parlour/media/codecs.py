"""The codecs and RTP header extensions the SFU negotiates (pure: standard library only).

`ServerCapabilities.default(video_codecs)`: Opus/48000/2 (``useinbandfec=1``), VP8 and H.264
(packetization-mode 1, profile-level-id 42e01f and 42001f) with RTX and nack / nack pli /
ccm fir / goog-remb, and transport-cc; header extensions sdes:mid (audio and video),
ssrc-audio-level (audio) and transport-wide-cc (video). Transport-wide congestion control
(the extension and the ``transport-cc`` feedback) is negotiated only on sections where the
server sends and the client does not (`SERVER_SEND_ONLY_FEEDBACK`,
`HeaderExtensionCapability.server_send_only`): the SFU estimates each subscriber's downlink
from the client's feedback, but sends none itself, so a publisher must not expect it.
`negotiation.py` matches client codecs against these (`CodecCapability.matches`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, Literal, TypeAlias

from parlour.media.sdp import Codec

__all__ = [
    "SERVER_SEND_ONLY_FEEDBACK",
    "URI_AUDIO_LEVEL",
    "URI_MID",
    "URI_TRANSPORT_CC",
    "CodecCapability",
    "HeaderExtensionCapability",
    "MediaKind",
    "NegotiationError",
    "ServerCapabilities",
]

MediaKind: TypeAlias = Literal["audio", "video"]
URI_MID: Final = "urn:ietf:params:rtp-hdrext:sdes:mid"
URI_AUDIO_LEVEL: Final = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"
URI_TRANSPORT_CC: Final = (
    "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"
)
_VIDEO_FEEDBACK: Final = ("goog-remb", "transport-cc", "ccm fir", "nack", "nack pli")
SERVER_SEND_ONLY_FEEDBACK: Final = frozenset({"transport-cc"})
"""Feedback negotiated only where the client does not send (see the module docstring)."""


class NegotiationError(ValueError):
    """An SDP cannot be negotiated (invalid for this connection's state), or a bad request."""


_H264_PROFILES: Final = (
    (0x42, "x1xx0000", "constrained-baseline"),
    (0x4D, "1xxx0000", "constrained-baseline"),
    (0x58, "11xx0000", "constrained-baseline"),
    (0x42, "x0xx0000", "baseline"),
    (0x58, "10xx0000", "baseline"),
    (0x4D, "0x0x0000", "main"),
    (0x64, "00000000", "high"),
    (0x64, "00001100", "constrained-high"),
    (0xF4, "00000000", "predictive-high-444"),
)


def _h264_profile(profile_level_id: str | None) -> str | None:
    """The H.264 profile of a ``profile-level-id`` (RFC 6184 §8.1), or None if invalid."""
    text = profile_level_id or "42e01f"  # absent: constrained baseline, as WebRTC assumes
    if not re.fullmatch(r"[0-9A-Fa-f]{6}", text):
        return None
    idc, iop = int(text[0:2], 16), int(text[2:4], 16)
    for profile_idc, pattern, name in _H264_PROFILES:
        mask = int("".join("0" if c == "x" else "1" for c in pattern), 2)
        value = int(pattern.replace("x", "0"), 2)
        if idc == profile_idc and iop & mask == value:
            return name
    return None


_CodecKey: TypeAlias = tuple[str | int | None, ...]


def _codec_key(codec: Codec) -> _CodecKey:
    """What makes two codecs "the same" for matching and payload-type consistency."""
    name = codec.name.lower()
    if codec.is_rtx:
        return ("rtx", codec.clock_rate, codec.apt)
    key: _CodecKey = (name, codec.clock_rate, codec.channels or 1)
    if name == "h264":
        mode = codec.parameter("packetization-mode") or "0"
        key += (mode, _h264_profile(codec.parameter("profile-level-id")))
    return key


# Capabilities


@dataclass(frozen=True, slots=True)
class CodecCapability:
    """A codec the server accepts, and how it writes it in its own offers.

    Attributes:
        kind: ``audio`` or ``video``.
        name: encoding name as the server writes it (``opus``, ``VP8``, ``H264``).
        clock_rate: RTP clock rate.
        channels: audio channels (Opus: 2).
        parameters: fmtp parameters the server declares (they override the client's).
        feedback: rtcp-fb values the server supports for it.
        rtx: whether RTX (RFC 4588) is negotiated for it.
        payload_type: preferred payload type in server offers when nothing else decides.
        rtx_payload_type: preferred RTX payload type in server offers.
    """

    kind: MediaKind
    name: str
    clock_rate: int
    channels: int | None = None
    parameters: tuple[tuple[str, str], ...] = ()
    feedback: tuple[str, ...] = ()
    rtx: bool = False
    payload_type: int = 96
    rtx_payload_type: int | None = None

    def matches(self, codec: Codec) -> bool:
        """Whether a client's codec is this one (name, clock rate, channels, H.264 profile)."""
        return _codec_key(self.template(codec.payload_type)) == _codec_key(codec)

    def template(self, payload_type: int) -> Codec:
        """This capability as an SDP codec with the given payload type."""
        return Codec(
            payload_type=payload_type,
            name=self.name,
            clock_rate=self.clock_rate,
            channels=self.channels,
            parameters=self.parameters,
            feedback=self.feedback,
        )


@dataclass(frozen=True, slots=True)
class HeaderExtensionCapability:
    """An RTP header extension the server negotiates for one kind."""

    kind: MediaKind
    uri: str
    preferred_id: int
    server_send_only: bool = False
    """Negotiated only on sections where the server sends and the client does not."""


_OPUS: Final = CodecCapability("audio", "opus", 48000, 2, (("useinbandfec", "1"),), (), False, 111)
_VP8: Final = CodecCapability("video", "VP8", 90000, None, (), _VIDEO_FEEDBACK, True, 96, 97)
_H264_PARAMS: Final = (("level-asymmetry-allowed", "1"), ("packetization-mode", "1"))
_H264: Final = (
    CodecCapability(
        "video",
        "H264",
        90000,
        None,
        (*_H264_PARAMS, ("profile-level-id", "42e01f")),
        _VIDEO_FEEDBACK,
        True,
        102,
        103,
    ),
    CodecCapability(
        "video",
        "H264",
        90000,
        None,
        (*_H264_PARAMS, ("profile-level-id", "42001f")),
        _VIDEO_FEEDBACK,
        True,
        104,
        105,
    ),
)
_EXTENSIONS: Final = (
    HeaderExtensionCapability("audio", URI_AUDIO_LEVEL, 1),
    HeaderExtensionCapability("audio", URI_MID, 4),
    HeaderExtensionCapability("video", URI_MID, 4),
    HeaderExtensionCapability("video", URI_TRANSPORT_CC, 3, server_send_only=True),
)


@dataclass(frozen=True, slots=True)
class ServerCapabilities:
    """What the SFU negotiates: codecs, header extensions and the SCTP parameters.

    Build it with `ServerCapabilities.default`; the room setting ``video_codecs`` restricts
    the video codecs.
    """

    codecs: tuple[CodecCapability, ...]
    header_extensions: tuple[HeaderExtensionCapability, ...] = _EXTENSIONS
    sctp_port: int = 5000
    max_message_size: int = 262144

    @classmethod
    def default(cls, video_codecs: Iterable[str] = ("VP8", "H264")) -> ServerCapabilities:
        """Opus, plus the room's video codecs (a subset of VP8 and H264), each with RTX.

        Args:
            video_codecs: the room's ``video_codecs`` setting (case-insensitive).

        Returns:
            The capabilities.

        Raises:
            NegotiationError: a video codec other than VP8 or H264 was asked for.
        """
        wanted = {name.upper() for name in video_codecs}
        unknown = wanted - {"VP8", "H264"}
        if unknown:
            raise NegotiationError(f"unsupported video codecs: {', '.join(sorted(unknown))}")
        video: list[CodecCapability] = []
        if "VP8" in wanted:
            video.append(_VP8)
        if "H264" in wanted:
            video.extend(_H264)
        return cls(codecs=(_OPUS, *video))

    def codecs_for(self, kind: str) -> tuple[CodecCapability, ...]:
        """The codecs of one kind, in preference order."""
        return tuple(c for c in self.codecs if c.kind == kind)

    def extensions_for(self, kind: str) -> tuple[HeaderExtensionCapability, ...]:
        """The header extensions of one kind."""
        return tuple(e for e in self.header_extensions if e.kind == kind)

    def match(self, kind: str, codec: Codec) -> CodecCapability | None:
        """The capability a client codec of this kind matches, or None."""
        return next((c for c in self.codecs_for(kind) if c.matches(codec)), None)
