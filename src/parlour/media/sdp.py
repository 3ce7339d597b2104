"""A typed model of SDP session descriptions (RFC 8866) as WebRTC uses them.

`parse` turns SDP text into a `SessionDescription` of frozen dataclasses; `str(sd)` (or
`sd.serialize()`) writes it back with CRLF line endings. Lines this module types are those
the SFU negotiates with: origin, BUNDLE groups, ``msid-semantic``, ``ice-lite``, ICE
credentials, DTLS fingerprints and ``setup``, and per media section the ``mid``, direction,
``msid``, codecs (``rtpmap`` + ``fmtp`` + ``rtcp-fb`` per payload type), ``extmap``, ``ssrc``
and ``ssrc-group``, candidates, ``rtcp-mux``/``rtcp-rsize`` and the SCTP attributes. Every
other line is kept verbatim, so nothing a client sends is lost.

Serialization writes lines in the order Chrome uses, so a Chrome description round-trips to
the same text; descriptions from other stacks round-trip to the same *model*
(``parse(str(parse(t))) == parse(t)``), with their lines possibly reordered.

Parsing is for untrusted input: anything malformed raises `SdpError` (a `ValueError`) with a
message naming the offending line, and never any other exception.

This module is pure: standard library only, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Final, Literal, TypeAlias

__all__ = [
    "DIRECTIONS",
    "Attribute",
    "Candidate",
    "Codec",
    "Connection",
    "Direction",
    "Extmap",
    "Fingerprint",
    "Group",
    "MediaSection",
    "Msid",
    "MsidSemantic",
    "Origin",
    "SdpError",
    "SessionDescription",
    "Setup",
    "SsrcAttribute",
    "SsrcGroup",
    "parse",
]

Direction: TypeAlias = Literal["sendrecv", "sendonly", "recvonly", "inactive"]
Setup: TypeAlias = Literal["actpass", "active", "passive", "holdconn"]

DIRECTIONS: Final[tuple[Direction, ...]] = ("sendrecv", "sendonly", "recvonly", "inactive")
_SETUPS: Final[tuple[Setup, ...]] = ("actpass", "active", "passive", "holdconn")

_MAX_U32: Final = 0xFFFFFFFF
_LINE_RE: Final = re.compile(r"([a-z])=(.*)", re.DOTALL)
# Other session-level line types, in the order RFC 8866 §5 lists them around c= and t=.
_SESSION_BEFORE_C: Final = "iuep"
_SESSION_AFTER_C: Final = "b"
_SESSION_AFTER_T: Final = "rzk"


class SdpError(ValueError):
    """The text is not a session description this module can read."""


# --------------------------------------------------------------------------------------------
# Small value types


@dataclass(frozen=True, slots=True)
class Origin:
    """The ``o=`` line: ``<username> <sess-id> <sess-version> <nettype> <addrtype> <address>``."""

    username: str = "-"
    session_id: int = 0
    session_version: int = 0
    nettype: str = "IN"
    addrtype: str = "IP4"
    address: str = "127.0.0.1"

    def __str__(self) -> str:
        return (
            f"{self.username} {self.session_id} {self.session_version} "
            f"{self.nettype} {self.addrtype} {self.address}"
        )


@dataclass(frozen=True, slots=True)
class Connection:
    """A ``c=`` line: ``<nettype> <addrtype> <address>``."""

    nettype: str = "IN"
    addrtype: str = "IP4"
    address: str = "0.0.0.0"

    def __str__(self) -> str:
        return f"{self.nettype} {self.addrtype} {self.address}"


@dataclass(frozen=True, slots=True)
class Attribute:
    """An ``a=`` line this module does not type: ``a=<name>`` or ``a=<name>:<value>``."""

    name: str
    value: str | None = None

    def __str__(self) -> str:
        return self.name if self.value is None else f"{self.name}:{self.value}"


@dataclass(frozen=True, slots=True)
class Group:
    """``a=group:<semantics> <mid>…`` (RFC 5888), e.g. ``BUNDLE 0 1 2``."""

    semantics: str
    mids: tuple[str, ...] = ()

    def __str__(self) -> str:
        return " ".join((self.semantics, *self.mids))


@dataclass(frozen=True, slots=True)
class MsidSemantic:
    """``a=msid-semantic:<token> <id>…``, e.g. ``WMS *``; written the way Chrome writes it."""

    token: str = "WMS"
    ids: tuple[str, ...] = ()

    def __str__(self) -> str:
        return " " + " ".join((self.token, *self.ids))


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """``a=fingerprint:<algorithm> <value>`` (RFC 8122), e.g. ``sha-256 AB:CD:…``."""

    algorithm: str
    value: str

    def __str__(self) -> str:
        return f"{self.algorithm} {self.value}"


@dataclass(frozen=True, slots=True)
class Msid:
    """``a=msid:<stream id> [<track id>]`` (RFC 8830); the second token is the "appdata"."""

    stream: str
    track: str | None = None

    def __str__(self) -> str:
        return self.stream if self.track is None else f"{self.stream} {self.track}"


@dataclass(frozen=True, slots=True)
class Extmap:
    """``a=extmap:<id>[/<direction>] <uri> [<attributes>]`` (RFC 8285)."""

    id: int
    uri: str
    direction: str | None = None
    attributes: str | None = None

    def __str__(self) -> str:
        text = str(self.id) if self.direction is None else f"{self.id}/{self.direction}"
        text += f" {self.uri}"
        return text if self.attributes is None else f"{text} {self.attributes}"


@dataclass(frozen=True, slots=True)
class SsrcAttribute:
    """One ``a=ssrc:<ssrc> <name>[:<value>]`` line (RFC 5576), e.g. ``cname`` or ``msid``."""

    ssrc: int
    name: str
    value: str | None = None

    def __str__(self) -> str:
        text = f"{self.ssrc} {self.name}"
        return text if self.value is None else f"{text}:{self.value}"


@dataclass(frozen=True, slots=True)
class SsrcGroup:
    """``a=ssrc-group:<semantics> <ssrc>…``, e.g. ``FID`` (media, RTX) or ``SIM`` (layers)."""

    semantics: str
    ssrcs: tuple[int, ...] = ()

    def __str__(self) -> str:
        return " ".join((self.semantics, *map(str, self.ssrcs)))


@dataclass(frozen=True, slots=True)
class Candidate:
    """An ICE candidate (RFC 8839 §5.1) as written after ``a=candidate:``.

    `extensions` keeps the trailing ``<name> <value>`` pairs (``generation``, ``tcptype``,
    ``network-id``, ``ufrag``…) in order.
    """

    foundation: str
    component: int
    transport: str
    priority: int
    address: str
    port: int
    type: str
    related_address: str | None = None
    related_port: int | None = None
    extensions: tuple[tuple[str, str], ...] = ()

    def __str__(self) -> str:
        parts = [
            self.foundation,
            str(self.component),
            self.transport,
            str(self.priority),
            self.address,
            str(self.port),
            "typ",
            self.type,
        ]
        if self.related_address is not None:
            parts += ["raddr", self.related_address]
        if self.related_port is not None:
            parts += ["rport", str(self.related_port)]
        for name, value in self.extensions:
            parts += [name, value]
        return " ".join(parts)


@dataclass(frozen=True, slots=True)
class Codec:
    """One RTP payload type: its ``rtpmap``, ``fmtp`` parameters and ``rtcp-fb`` values.

    Attributes:
        payload_type: 0–127.
        name: encoding name as written (``opus``, ``VP8``, ``H264``, ``rtx``…).
        clock_rate: RTP clock rate in Hz.
        channels: audio channels when the rtpmap has a third field.
        parameters: ``fmtp`` parameters in order; a bare token (``111/111``) has value None.
        feedback: ``rtcp-fb`` values in order, e.g. ``("nack", "nack pli")``.
    """

    payload_type: int
    name: str
    clock_rate: int
    channels: int | None = None
    parameters: tuple[tuple[str, str | None], ...] = ()
    feedback: tuple[str, ...] = ()

    @property
    def is_rtx(self) -> bool:
        """Whether this is an RTX (RFC 4588) retransmission payload type."""
        return self.name.lower() == "rtx"

    @property
    def mime_type(self) -> str:
        """The encoding name without kind, lower case (``vp8``, ``opus``)."""
        return self.name.lower()

    def parameter(self, name: str) -> str | None:
        """The value of an fmtp parameter (names compare case-insensitively), or None."""
        wanted = name.lower()
        for key, value in self.parameters:
            if key.lower() == wanted:
                return value
        return None

    @property
    def apt(self) -> int | None:
        """For RTX, the payload type it repairs (``apt=``), if valid."""
        value = self.parameter("apt")
        if value is None or not (value.isascii() and value.isdigit()):
            return None
        return int(value)

    @property
    def rtpmap(self) -> str:
        """The value after ``a=rtpmap:``."""
        text = f"{self.payload_type} {self.name}/{self.clock_rate}"
        return text if self.channels is None else f"{text}/{self.channels}"

    @property
    def fmtp(self) -> str | None:
        """The value after ``a=fmtp:``, or None when there are no parameters."""
        if not self.parameters:
            return None
        params = ";".join(k if v is None else f"{k}={v}" for k, v in self.parameters)
        return f"{self.payload_type} {params}"


# --------------------------------------------------------------------------------------------
# Media sections and the session


@dataclass(frozen=True, slots=True)
class MediaSection:
    """One ``m=`` section and the lines that follow it.

    ``direction`` is None when the section has no direction attribute (RFC 8866 then means
    ``sendrecv``; see `effective_direction`). ``attributes`` holds the ``a=`` lines this module
    does not type, in order; ``extra_lines`` holds ``i=``/``b=``/``k=`` lines verbatim.
    """

    kind: str
    port: int
    proto: str
    formats: tuple[str, ...]
    port_count: int | None = None
    connection: Connection | None = None
    extra_lines: tuple[str, ...] = ()
    rtcp: str | None = None
    candidates: tuple[Candidate, ...] = ()
    end_of_candidates: bool = False
    ice_ufrag: str | None = None
    ice_pwd: str | None = None
    ice_options: str | None = None
    fingerprints: tuple[Fingerprint, ...] = ()
    setup: Setup | None = None
    mid: str | None = None
    extmaps: tuple[Extmap, ...] = ()
    direction: Direction | None = None
    msids: tuple[Msid, ...] = ()
    rtcp_mux: bool = False
    rtcp_rsize: bool = False
    attributes: tuple[Attribute, ...] = ()
    codecs: tuple[Codec, ...] = ()
    ssrc_groups: tuple[SsrcGroup, ...] = ()
    ssrcs: tuple[SsrcAttribute, ...] = ()
    sctp_port: int | None = None
    max_message_size: int | None = None

    @property
    def effective_direction(self) -> Direction:
        """The direction, defaulting to ``sendrecv`` as RFC 8866 §6.7 says."""
        return self.direction or "sendrecv"

    @property
    def msid(self) -> Msid | None:
        """The first ``a=msid``, or None."""
        return self.msids[0] if self.msids else None

    @property
    def bundle_only(self) -> bool:
        """Whether the section carries ``a=bundle-only`` (RFC 8843 §6)."""
        return self.has_attribute("bundle-only")

    @property
    def is_rejected(self) -> bool:
        """Port 0 without ``bundle-only``: the section is rejected or stopped."""
        return self.port == 0 and not self.bundle_only

    @property
    def ssrc_ids(self) -> tuple[int, ...]:
        """The SSRCs of the ``a=ssrc`` lines, each once, in order of appearance."""
        return tuple(dict.fromkeys(s.ssrc for s in self.ssrcs))

    def ssrc_attribute(self, ssrc: int, name: str) -> str | None:
        """The value of attribute ``name`` of ``ssrc`` (e.g. ``cname``), or None."""
        for line in self.ssrcs:
            if line.ssrc == ssrc and line.name == name:
                return line.value
        return None

    def codec(self, payload_type: int) -> Codec | None:
        """The codec with this payload type, or None."""
        for codec in self.codecs:
            if codec.payload_type == payload_type:
                return codec
        return None

    def has_attribute(self, name: str) -> bool:
        """Whether an untyped attribute with this name is present."""
        return any(a.name == name for a in self.attributes)

    def attribute_values(self, name: str) -> tuple[str | None, ...]:
        """The values of the untyped attributes with this name, in order."""
        return tuple(a.value for a in self.attributes if a.name == name)

    def lines(self) -> Iterator[str]:
        """The section's lines without line endings, in Chrome's order."""
        port = str(self.port) if self.port_count is None else f"{self.port}/{self.port_count}"
        yield " ".join(("m=" + self.kind, port, self.proto, *self.formats))
        yield from _pick(self.extra_lines, "i")
        if self.connection is not None:
            yield f"c={self.connection}"
        yield from _pick(self.extra_lines, "bk")
        if self.rtcp is not None:
            yield f"a=rtcp:{self.rtcp}"
        for candidate in self.candidates:
            yield f"a=candidate:{candidate}"
        if self.end_of_candidates:
            yield "a=end-of-candidates"
        yield from _transport_lines(
            self.ice_ufrag, self.ice_pwd, self.ice_options, self.fingerprints, self.setup
        )
        if self.mid is not None:
            yield f"a=mid:{self.mid}"
        for extmap in self.extmaps:
            yield f"a=extmap:{extmap}"
        if self.direction is not None:
            yield f"a={self.direction}"
        for msid in self.msids:
            yield f"a=msid:{msid}"
        if self.rtcp_mux:
            yield "a=rtcp-mux"
        if self.rtcp_rsize:
            yield "a=rtcp-rsize"
        for attribute in self.attributes:
            yield f"a={attribute}"
        for codec in self.codecs:
            yield f"a=rtpmap:{codec.rtpmap}"
            for feedback in codec.feedback:
                yield f"a=rtcp-fb:{codec.payload_type} {feedback}"
            fmtp = codec.fmtp
            if fmtp is not None:
                yield f"a=fmtp:{fmtp}"
        for group in self.ssrc_groups:
            yield f"a=ssrc-group:{group}"
        for ssrc in self.ssrcs:
            yield f"a=ssrc:{ssrc}"
        if self.sctp_port is not None:
            yield f"a=sctp-port:{self.sctp_port}"
        if self.max_message_size is not None:
            yield f"a=max-message-size:{self.max_message_size}"

    def __str__(self) -> str:
        return "".join(line + "\r\n" for line in self.lines())


@dataclass(frozen=True, slots=True)
class SessionDescription:
    """A whole session description: session-level lines and the media sections in order.

    ``attributes`` holds the session-level ``a=`` lines this module does not type;
    ``extra_lines`` holds ``i=``/``u=``/``e=``/``p=``/``b=``/``r=``/``z=``/``k=`` lines
    verbatim.
    """

    origin: Origin = field(default_factory=Origin)
    name: str = "-"
    timing: str = "0 0"
    version: int = 0
    connection: Connection | None = None
    extra_lines: tuple[str, ...] = ()
    ice_lite: bool = False
    ice_ufrag: str | None = None
    ice_pwd: str | None = None
    ice_options: str | None = None
    fingerprints: tuple[Fingerprint, ...] = ()
    setup: Setup | None = None
    groups: tuple[Group, ...] = ()
    extmap_allow_mixed: bool = False
    msid_semantic: MsidSemantic | None = None
    attributes: tuple[Attribute, ...] = ()
    media: tuple[MediaSection, ...] = ()

    def group(self, semantics: str) -> Group | None:
        """The first group with these semantics (e.g. ``BUNDLE``), or None."""
        for group in self.groups:
            if group.semantics == semantics:
                return group
        return None

    def section(self, mid: str) -> MediaSection | None:
        """The media section with this ``mid``, or None."""
        for media in self.media:
            if media.mid == mid:
                return media
        return None

    def lines(self) -> Iterator[str]:
        """All lines without line endings."""
        yield f"v={self.version}"
        yield f"o={self.origin}"
        yield f"s={self.name}"
        yield from _pick(self.extra_lines, _SESSION_BEFORE_C)
        if self.connection is not None:
            yield f"c={self.connection}"
        yield from _pick(self.extra_lines, _SESSION_AFTER_C)
        yield f"t={self.timing}"
        yield from _pick(self.extra_lines, _SESSION_AFTER_T)
        if self.ice_lite:
            yield "a=ice-lite"
        yield from _transport_lines(
            self.ice_ufrag, self.ice_pwd, self.ice_options, self.fingerprints, self.setup
        )
        for group in self.groups:
            yield f"a=group:{group}"
        if self.extmap_allow_mixed:
            yield "a=extmap-allow-mixed"
        if self.msid_semantic is not None:
            yield f"a=msid-semantic:{self.msid_semantic}"
        for attribute in self.attributes:
            yield f"a={attribute}"
        for media in self.media:
            yield from media.lines()

    def serialize(self) -> str:
        """The SDP text, CRLF line endings, with a final CRLF."""
        return "".join(line + "\r\n" for line in self.lines())

    def __str__(self) -> str:
        return self.serialize()


def _ordered(lines: list[str], types: str) -> tuple[str, ...]:
    """Lines sorted (stably) into the order their types are written in."""
    return tuple(sorted(lines, key=lambda line: types.index(line[0])))


def _pick(lines: tuple[str, ...], types: str) -> Iterator[str]:
    for letter in types:
        yield from (x for x in lines if x[0] == letter)


def _transport_lines(
    ufrag: str | None,
    pwd: str | None,
    options: str | None,
    fingerprints: tuple[Fingerprint, ...],
    setup: Setup | None,
) -> Iterator[str]:
    if ufrag is not None:
        yield f"a=ice-ufrag:{ufrag}"
    if pwd is not None:
        yield f"a=ice-pwd:{pwd}"
    if options is not None:
        yield f"a=ice-options:{options}"
    for fingerprint in fingerprints:
        yield f"a=fingerprint:{fingerprint}"
    if setup is not None:
        yield f"a=setup:{setup}"


# --------------------------------------------------------------------------------------------
# Parsing


def parse(text: str) -> SessionDescription:
    """Parse SDP text.

    Lines may end in CRLF or LF; empty lines are skipped.

    Args:
        text: the SDP.

    Returns:
        The session description.

    Raises:
        SdpError: the text is not valid SDP (the message names the line).
    """
    if not isinstance(text, str):
        raise SdpError(f"SDP must be a str, not {type(text).__name__}")
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    lines = [line for line in lines if line]
    if not lines:
        raise SdpError("empty SDP")
    first_media = next((i for i, line in enumerate(lines) if line.startswith("m=")), len(lines))
    session = _SessionBuilder()
    for number, line in enumerate(lines[:first_media], start=1):
        session.add(_split_line(line, number), number)
    media: list[MediaSection] = []
    start = first_media
    while start < len(lines):
        end = next(
            (i for i in range(start + 1, len(lines)) if lines[i].startswith("m=")), len(lines)
        )
        media.append(_parse_media(lines, start, end))
        start = end
    return session.build(tuple(media))


def _split_line(line: str, number: int) -> tuple[str, str]:
    match = _LINE_RE.fullmatch(line)
    if match is None:
        raise SdpError(f"line {number}: not a <type>=<value> line: {line[:80]!r}")
    return match.group(1), match.group(2)


def _split_attribute(value: str, number: int) -> tuple[str, str | None]:
    name, colon, rest = value.partition(":")
    if not name:
        raise SdpError(f"line {number}: attribute without a name")
    return name, (rest if colon else None)


def _int(text: str, what: str, number: int, low: int = 0, high: int = _MAX_U32) -> int:
    if not (text.isascii() and text.isdigit()) or len(text) > 20:
        raise SdpError(f"line {number}: {what} must be a decimal number, got {text[:40]!r}")
    value = int(text)
    if not low <= value <= high:
        raise SdpError(f"line {number}: {what} {value} is out of range {low}–{high}")
    return value


def _need(value: str | None, name: str, number: int) -> str:
    if value is None or not value.strip():
        raise SdpError(f"line {number}: a={name} needs a value")
    return value


def _flag(value: str | None, name: str, number: int) -> None:
    if value is not None:
        raise SdpError(f"line {number}: a={name} takes no value")


def _once(current: object, line: str, number: int) -> None:
    """Refuse a second occurrence of a line that may appear once (``line``: e.g. ``a=mid``)."""
    if current is not None and current is not False:
        raise SdpError(f"line {number}: duplicate {line}")


def _fingerprint(value: str | None, number: int) -> Fingerprint:
    bits = _need(value, "fingerprint", number).split()
    if len(bits) != 2:
        raise SdpError(f"line {number}: a=fingerprint must be '<algorithm> <value>'")
    return Fingerprint(bits[0], bits[1])


def _setup(value: str | None, number: int) -> Setup:
    text = _need(value, "setup", number)
    if text not in _SETUPS:
        raise SdpError(f"line {number}: unknown a=setup value {text[:40]!r}")
    return text


def _connection(value: str, number: int) -> Connection:
    bits = value.split()
    if len(bits) != 3:
        raise SdpError(f"line {number}: c= must be '<nettype> <addrtype> <address>'")
    return Connection(bits[0], bits[1], bits[2])


def _token(value: str | None, name: str, number: int) -> str:
    """A single-token value (ufrag, pwd): no whitespace allowed."""
    text = _need(value, name, number)
    if len(text.split()) != 1 or text != text.strip():
        raise SdpError(f"line {number}: a={name} must be one token")
    return text


class _SessionBuilder:
    def __init__(self) -> None:
        self.seen_version = False
        self.version = 0
        self.origin: Origin | None = None
        self.name: str | None = None
        self.timing: str | None = None
        self.connection: Connection | None = None
        self.extra: list[str] = []
        self.ice_lite = False
        self.ice_ufrag: str | None = None
        self.ice_pwd: str | None = None
        self.ice_options: str | None = None
        self.fingerprints: list[Fingerprint] = []
        self.setup: Setup | None = None
        self.groups: list[Group] = []
        self.extmap_allow_mixed = False
        self.msid_semantic: MsidSemantic | None = None
        self.attributes: list[Attribute] = []

    def add(self, parsed: tuple[str, str], number: int) -> None:
        kind, value = parsed
        if not self.seen_version:
            if kind != "v":
                raise SdpError(f"line {number}: SDP must start with v=0")
            if value != "0":
                raise SdpError(f"line {number}: unsupported SDP version {value[:20]!r}")
            self.seen_version = True
            return
        if kind == "v":
            raise SdpError(f"line {number}: duplicate v=")
        if kind == "o":
            _once(self.origin, "o=", number)
            self.origin = _origin(value, number)
        elif kind == "s":
            _once(self.name, "s=", number)
            self.name = value
        elif kind == "t":
            # Only one t= is supported (WebRTC always sends "t=0 0").
            _once(self.timing, "t=", number)
            self.timing = value
        elif kind == "c":
            _once(self.connection, "c=", number)
            self.connection = _connection(value, number)
        elif kind == "a":
            self.add_attribute(value, number)
        elif kind in _SESSION_BEFORE_C + _SESSION_AFTER_C + _SESSION_AFTER_T:
            self.extra.append(f"{kind}={value}")
        else:
            raise SdpError(f"line {number}: unexpected {kind}= line at session level")

    def add_attribute(self, text: str, number: int) -> None:
        name, value = _split_attribute(text, number)
        if name == "ice-lite":
            _flag(value, name, number)
            _once(self.ice_lite, f"a={name}", number)
            self.ice_lite = True
        elif name == "ice-ufrag":
            _once(self.ice_ufrag, f"a={name}", number)
            self.ice_ufrag = _token(value, name, number)
        elif name == "ice-pwd":
            _once(self.ice_pwd, f"a={name}", number)
            self.ice_pwd = _token(value, name, number)
        elif name == "ice-options":
            _once(self.ice_options, f"a={name}", number)
            self.ice_options = _need(value, name, number)
        elif name == "fingerprint":
            self.fingerprints.append(_fingerprint(value, number))
        elif name == "setup":
            _once(self.setup, f"a={name}", number)
            self.setup = _setup(value, number)
        elif name == "group":
            bits = _need(value, name, number).split()
            self.groups.append(Group(bits[0], tuple(bits[1:])))
        elif name == "extmap-allow-mixed":
            _flag(value, name, number)
            _once(self.extmap_allow_mixed, f"a={name}", number)
            self.extmap_allow_mixed = True
        elif name == "msid-semantic":
            _once(self.msid_semantic, f"a={name}", number)
            bits = _need(value, name, number).split()
            self.msid_semantic = MsidSemantic(bits[0], tuple(bits[1:]))
        else:
            self.attributes.append(Attribute(name, value))

    def build(self, media: tuple[MediaSection, ...]) -> SessionDescription:
        if self.origin is None:
            raise SdpError("missing o= line")
        if self.name is None:
            raise SdpError("missing s= line")
        if self.timing is None:
            raise SdpError("missing t= line")
        return SessionDescription(
            origin=self.origin,
            name=self.name,
            timing=self.timing,
            version=self.version,
            connection=self.connection,
            extra_lines=_ordered(
                self.extra, _SESSION_BEFORE_C + _SESSION_AFTER_C + _SESSION_AFTER_T
            ),
            ice_lite=self.ice_lite,
            ice_ufrag=self.ice_ufrag,
            ice_pwd=self.ice_pwd,
            ice_options=self.ice_options,
            fingerprints=tuple(self.fingerprints),
            setup=self.setup,
            groups=tuple(self.groups),
            extmap_allow_mixed=self.extmap_allow_mixed,
            msid_semantic=self.msid_semantic,
            attributes=tuple(self.attributes),
            media=media,
        )


def _origin(value: str, number: int) -> Origin:
    bits = value.split()
    if len(bits) != 6:
        raise SdpError(f"line {number}: o= must have 6 fields")
    return Origin(
        username=bits[0],
        session_id=_int(bits[1], "session id", number, high=2**64 - 1),
        session_version=_int(bits[2], "session version", number, high=2**64 - 1),
        nettype=bits[3],
        addrtype=bits[4],
        address=bits[5],
    )


def _candidate(value: str | None, number: int) -> Candidate:
    bits = _need(value, "candidate", number).split()
    if len(bits) < 8 or bits[6] != "typ":
        raise SdpError(
            f"line {number}: a=candidate must be '<foundation> <component> ... typ <type>'"
        )
    if len(bits) % 2:
        raise SdpError(f"line {number}: a=candidate has an extension name without a value")
    related_address: str | None = None
    related_port: int | None = None
    extensions: list[tuple[str, str]] = []
    for i in range(8, len(bits), 2):
        key, val = bits[i], bits[i + 1]
        if key == "raddr" and related_address is None and not extensions:
            related_address = val
        elif key == "rport" and related_port is None and not extensions:
            related_port = _int(val, "candidate rport", number, high=65535)
        else:
            extensions.append((key, val))
    return Candidate(
        foundation=bits[0],
        component=_int(bits[1], "candidate component", number, low=1, high=256),
        transport=bits[2],
        priority=_int(bits[3], "candidate priority", number),
        address=bits[4],
        port=_int(bits[5], "candidate port", number, high=65535),
        type=bits[7],
        related_address=related_address,
        related_port=related_port,
        extensions=tuple(extensions),
    )


def _extmap(value: str | None, number: int) -> Extmap:
    bits = _need(value, "extmap", number).split(maxsplit=2)
    if len(bits) < 2:
        raise SdpError(f"line {number}: a=extmap must be '<id>[/<direction>] <uri>'")
    ident, slash, direction = bits[0].partition("/")
    if slash and not direction:
        raise SdpError(f"line {number}: a=extmap has an empty direction")
    return Extmap(
        id=_int(ident, "extmap id", number, low=1, high=4351),
        uri=bits[1],
        direction=direction if slash else None,
        attributes=bits[2].strip() if len(bits) > 2 else None,
    )


def _fmtp_parameters(text: str) -> tuple[tuple[str, str | None], ...]:
    params: list[tuple[str, str | None]] = []
    for piece in text.split(";"):
        piece = piece.strip()
        if not piece:
            continue
        key, eq, val = piece.partition("=")
        params.append((key.strip(), val.strip()) if eq else (piece, None))
    return tuple(params)


@dataclass(slots=True)
class _CodecParts:
    payload_type: int
    name: str
    clock_rate: int
    channels: int | None
    parameters: tuple[tuple[str, str | None], ...] | None = None
    feedback: list[str] = field(default_factory=list)

    def build(self) -> Codec:
        return Codec(
            payload_type=self.payload_type,
            name=self.name,
            clock_rate=self.clock_rate,
            channels=self.channels,
            parameters=self.parameters or (),
            feedback=tuple(self.feedback),
        )


def _rtpmap(value: str | None, number: int) -> _CodecParts:
    bits = _need(value, "rtpmap", number).split()
    if len(bits) != 2:
        raise SdpError(f"line {number}: a=rtpmap must be '<pt> <name>/<rate>[/<channels>]'")
    encoding = bits[1].split("/")
    if len(encoding) not in (2, 3) or not encoding[0]:
        raise SdpError(f"line {number}: a=rtpmap must be '<pt> <name>/<rate>[/<channels>]'")
    return _CodecParts(
        payload_type=_int(bits[0], "payload type", number, high=127),
        name=encoding[0],
        clock_rate=_int(encoding[1], "clock rate", number, low=1),
        channels=_int(encoding[2], "channels", number, low=1, high=255)
        if len(encoding) == 3
        else None,
    )


class _MediaBuilder:
    """Collects one media section's lines; codecs are assembled once all rtpmaps are known."""

    def __init__(self, kind: str, port: int, port_count: int | None, proto: str) -> None:
        self.kind = kind
        self.port = port
        self.port_count = port_count
        self.proto = proto
        self.formats: tuple[str, ...] = ()
        self.connection: Connection | None = None
        self.extra: list[str] = []
        self.rtcp: str | None = None
        self.candidates: list[Candidate] = []
        self.end_of_candidates = False
        self.ice_ufrag: str | None = None
        self.ice_pwd: str | None = None
        self.ice_options: str | None = None
        self.fingerprints: list[Fingerprint] = []
        self.setup: Setup | None = None
        self.mid: str | None = None
        self.extmaps: list[Extmap] = []
        self.direction: Direction | None = None
        self.msids: list[Msid] = []
        self.rtcp_mux = False
        self.rtcp_rsize = False
        self.attributes: list[Attribute] = []
        self.codecs: dict[int, _CodecParts] = {}
        self.late: list[tuple[str, str | None, int]] = []  # fmtp / rtcp-fb, after all rtpmaps
        self.ssrc_groups: list[SsrcGroup] = []
        self.ssrcs: list[SsrcAttribute] = []
        self.sctp_port: int | None = None
        self.max_message_size: int | None = None

    def add_attribute(self, text: str, number: int) -> None:
        name, value = _split_attribute(text, number)
        if name == "mid":
            _once(self.mid, f"a={name}", number)
            self.mid = _token(value, name, number)
        elif name in DIRECTIONS:
            _flag(value, name, number)
            _once(self.direction, "direction attribute", number)
            self.direction = name
        elif name == "msid":
            bits = _need(value, name, number).split()
            if len(bits) > 2:
                raise SdpError(f"line {number}: a=msid must be '<stream id> [<track id>]'")
            self.msids.append(Msid(bits[0], bits[1] if len(bits) == 2 else None))
        elif name == "rtpmap":
            parts = _rtpmap(value, number)
            if parts.payload_type in self.codecs:
                raise SdpError(f"line {number}: duplicate a=rtpmap for {parts.payload_type}")
            self.codecs[parts.payload_type] = parts
        elif name in ("fmtp", "rtcp-fb"):
            self.late.append((name, value, number))
        elif name == "extmap":
            self.extmaps.append(_extmap(value, number))
        elif name == "ssrc":
            self.ssrcs.append(_ssrc(value, number))
        elif name == "ssrc-group":
            bits = _need(value, name, number).split()
            ssrcs = tuple(_int(b, "ssrc", number) for b in bits[1:])
            self.ssrc_groups.append(SsrcGroup(bits[0], ssrcs))
        elif name == "candidate":
            self.candidates.append(_candidate(value, number))
        elif name == "end-of-candidates":
            _flag(value, name, number)
            self.end_of_candidates = True
        elif name == "ice-ufrag":
            _once(self.ice_ufrag, f"a={name}", number)
            self.ice_ufrag = _token(value, name, number)
        elif name == "ice-pwd":
            _once(self.ice_pwd, f"a={name}", number)
            self.ice_pwd = _token(value, name, number)
        elif name == "ice-options":
            _once(self.ice_options, f"a={name}", number)
            self.ice_options = _need(value, name, number)
        elif name == "fingerprint":
            self.fingerprints.append(_fingerprint(value, number))
        elif name == "setup":
            _once(self.setup, f"a={name}", number)
            self.setup = _setup(value, number)
        elif name == "rtcp":
            _once(self.rtcp, f"a={name}", number)
            self.rtcp = _need(value, name, number)
        elif name == "rtcp-mux":
            _flag(value, name, number)
            self.rtcp_mux = True
        elif name == "rtcp-rsize":
            _flag(value, name, number)
            self.rtcp_rsize = True
        elif name == "sctp-port":
            _once(self.sctp_port, f"a={name}", number)
            self.sctp_port = _int(_need(value, name, number), "sctp-port", number, high=65535)
        elif name == "max-message-size":
            _once(self.max_message_size, f"a={name}", number)
            self.max_message_size = _int(_need(value, name, number), "max-message-size", number)
        else:
            self.attributes.append(Attribute(name, value))

    def finish_codecs(self) -> None:
        for name, value, number in self.late:
            pt_text, _, rest = _need(value, name, number).partition(" ")
            parts = None
            if pt_text.isascii() and pt_text.isdigit() and len(pt_text) <= 3:
                parts = self.codecs.get(int(pt_text))
            if parts is None:
                # fmtp/rtcp-fb for a payload type without rtpmap (or "*"): keep it verbatim.
                self.attributes.append(Attribute(name, value))
            elif name == "fmtp":
                if parts.parameters is not None:
                    raise SdpError(f"line {number}: duplicate a=fmtp for {pt_text}")
                parts.parameters = _fmtp_parameters(rest)
            else:
                feedback = " ".join(rest.split())
                if not feedback:
                    raise SdpError(f"line {number}: a=rtcp-fb needs a feedback type")
                parts.feedback.append(feedback)

    def build(self) -> MediaSection:
        self.finish_codecs()
        return MediaSection(
            kind=self.kind,
            port=self.port,
            proto=self.proto,
            formats=self.formats,
            port_count=self.port_count,
            connection=self.connection,
            extra_lines=_ordered(self.extra, "ibk"),
            rtcp=self.rtcp,
            candidates=tuple(self.candidates),
            end_of_candidates=self.end_of_candidates,
            ice_ufrag=self.ice_ufrag,
            ice_pwd=self.ice_pwd,
            ice_options=self.ice_options,
            fingerprints=tuple(self.fingerprints),
            setup=self.setup,
            mid=self.mid,
            extmaps=tuple(self.extmaps),
            direction=self.direction,
            msids=tuple(self.msids),
            rtcp_mux=self.rtcp_mux,
            rtcp_rsize=self.rtcp_rsize,
            attributes=tuple(self.attributes),
            codecs=tuple(p.build() for p in self.codecs.values()),
            ssrc_groups=tuple(self.ssrc_groups),
            ssrcs=tuple(self.ssrcs),
            sctp_port=self.sctp_port,
            max_message_size=self.max_message_size,
        )


def _ssrc(value: str | None, number: int) -> SsrcAttribute:
    ssrc_text, _, rest = _need(value, "ssrc", number).partition(" ")
    ssrc = _int(ssrc_text, "ssrc", number)
    name, colon, attr_value = rest.lstrip().partition(":")
    if not name or name != name.strip() or len(name.split()) != 1:
        raise SdpError(f"line {number}: a=ssrc must be '<ssrc> <attribute>[:<value>]'")
    return SsrcAttribute(ssrc, name, attr_value if colon else None)


def _parse_media(lines: list[str], start: int, end: int) -> MediaSection:
    number = start + 1
    _, value = _split_line(lines[start], number)
    bits = value.split()
    if len(bits) < 4:
        raise SdpError(f"line {number}: m= must be '<media> <port> <proto> <fmt> ...'")
    port_text, slash, count_text = bits[1].partition("/")
    builder = _MediaBuilder(
        kind=bits[0],
        port=_int(port_text, "port", number, high=65535),
        port_count=_int(count_text, "port count", number, low=1, high=65535) if slash else None,
        proto=bits[2],
    )
    formats = tuple(bits[3:])
    if "RTP/" in builder.proto:
        for fmt in formats:
            _int(fmt, "payload type", number, high=127)
    builder.formats = formats
    for offset, line in enumerate(lines[start + 1 : end], start=start + 2):
        kind, text = _split_line(line, offset)
        if kind == "a":
            builder.add_attribute(text, offset)
        elif kind == "c":
            _once(builder.connection, "c=", offset)
            builder.connection = _connection(text, offset)
        elif kind in "ibk":
            builder.extra.append(f"{kind}={text}")
        else:
            raise SdpError(f"line {offset}: unexpected {kind}= line in a media section")
    return builder.build()
