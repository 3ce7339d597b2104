"""Server-side SDP negotiation for one participant's peer connection (ICE-lite SFU).

Every participant has ONE bidirectional unified-plan peer connection with the server (the
`twilio-video` model, ``docs/media-plane.md``). `PeerNegotiator` is the pure state machine
of that connection's negotiation. It holds the transceiver table: for each ``mid``, the
kind, the client's direction, what the client publishes there (msid appdata = track id,
SSRCs, payload types, header-extension ids) and what the server sends there (track id,
stream id, server SSRCs, payload types). It answers client offers, builds server offers for
subscriptions, and applies client answers. It does no I/O: the caller moves SDP text over
signaling and feeds the media plane with the `PublishedTrackInfo`/`SentTrackInfo` it returns.

Rules it follows (``shared/reference/signaling-protocol.md`` §3.7–3.8, RFC 8829 JSEP,
RFC 8843 BUNDLE, RFC 8842 DTLS setup):

- answers keep the offer's mids and order, carry ``a=ice-lite``, ``a=setup:passive``, one
  host candidate, a BUNDLE group of the accepted mids, and port 0 for rejected sections;
- codecs are the intersection of the client's and ours, in the client's order and with the
  client's payload types; header extensions keep the client's ids;
- published tracks are identified by ``(mid, msid appdata)``, never by SSRC alone, because
  the client recycles transceivers (a server ``sendonly`` mid may become ``sendrecv``);
- server offers keep every mid in order, reuse a section the server does not send on and
  the client does not publish on before adding a new mid, use ``a=setup:actpass``, and keep
  payload types and extension ids consistent across the BUNDLE;
- revisions are one counter per connection: an answer echoes its offer's revision and the
  next server offer is the last revision seen + 1; while a server offer is outstanding a
  client offer is ignored (the client rolls back and answers ours: "server wins").

Pure: standard library only.
"""

from __future__ import annotations

import ipaddress
import random
import re
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Final

from parlour.media import sdp
from parlour.media.codecs import (
    URI_AUDIO_LEVEL,
    URI_MID,
    CodecCapability,
    HeaderExtensionCapability,
    MediaKind,
    NegotiationError,
    ServerCapabilities,
    _codec_key,
    _CodecKey,
)
from parlour.media.sdp import Codec, Direction, Extmap, MediaSection, SessionDescription

__all__ = [
    "URI_AUDIO_LEVEL",
    "URI_MID",
    "Answer",
    "CodecCapability",
    "HeaderExtensionCapability",
    "LocalTransport",
    "MediaKind",
    "NegotiationError",
    "NegotiationResult",
    "PeerNegotiator",
    "PublishedTrackInfo",
    "RemoteTransport",
    "SentTrackInfo",
    "ServerCapabilities",
    "TransceiverInfo",
]


_RTP_PROTO: Final = "UDP/TLS/RTP/SAVPF"
_SCTP_PROTO: Final = "UDP/DTLS/SCTP"
_SCTP_FORMAT: Final = "webrtc-datachannel"
_ICE_CHARS: Final = re.compile(r"[A-Za-z0-9+/]+")
_ICE_ALPHABET: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_FINGERPRINT_RE: Final = re.compile(r"[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2})+")
_HASHES: Final = ("sha-1", "sha-224", "sha-256", "sha-384", "sha-512")
_TOKEN_RE: Final = re.compile(r"[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]{1,256}")
# Dynamic payload types, in the order we hand them out (RFC 3551 §6; 35–63 as Chrome does).
_DYNAMIC_PTS: Final = (*range(96, 128), *range(35, 64))
_HOST_PRIORITY: Final = 2130706431
#: RFC 6544 §4.2: type preference 126 (host), local preference 2^13 × 4 (passive) + 8191.
_TCP_PASSIVE_PRIORITY: Final = (126 << 24) | ((4 * 8192 + 8191) << 8) | 255


# --------------------------------------------------------------------------------------------
# Transports


@dataclass(frozen=True, slots=True)
class LocalTransport:
    """The server's ICE-lite and DTLS parameters for one peer connection.

    Attributes:
        ice_ufrag: ICE username fragment: at least 4 characters of ``[A-Za-z0-9+/]`` (the
            SDK reads it with that regex).
        ice_pwd: ICE password: at least 22 characters of ``[A-Za-z0-9+/]``.
        fingerprint: ``(algorithm, value)`` of the DTLS certificate, e.g.
            ``("sha-256", "AB:CD:…")``.
        host: IP address of the host candidates.
        port: UDP port of the UDP host candidate.
        tcp_port: TCP port of the passive TCP host candidate (ICE-TCP, RFC 6544), or None.
    """

    ice_ufrag: str
    ice_pwd: str
    fingerprint: tuple[str, str]
    host: str
    port: int
    tcp_port: int | None = None

    def __post_init__(self) -> None:
        if len(self.ice_ufrag) < 4 or not _ICE_CHARS.fullmatch(self.ice_ufrag):
            raise NegotiationError("ice_ufrag must be at least 4 characters of [A-Za-z0-9+/]")
        if len(self.ice_ufrag) > 256 or len(self.ice_pwd) > 256:
            raise NegotiationError("ice_ufrag and ice_pwd must be at most 256 characters")
        if len(self.ice_pwd) < 22 or not _ICE_CHARS.fullmatch(self.ice_pwd):
            raise NegotiationError("ice_pwd must be at least 22 characters of [A-Za-z0-9+/]")
        algorithm, value = self.fingerprint
        if algorithm not in _HASHES or not _FINGERPRINT_RE.fullmatch(value):
            raise NegotiationError(f"invalid DTLS fingerprint {algorithm!r} {value[:20]!r}")
        try:
            ipaddress.ip_address(self.host)
        except ValueError:
            raise NegotiationError(f"host must be an IP address, got {self.host!r}") from None
        if not 1 <= self.port <= 65535:
            raise NegotiationError(f"port must be 1–65535, got {self.port}")
        if self.tcp_port is not None and not 1 <= self.tcp_port <= 65535:
            raise NegotiationError(f"tcp_port must be 1–65535, got {self.tcp_port}")

    @classmethod
    def generate(
        cls,
        fingerprint: str | tuple[str, str],
        host: str,
        port: int,
        *,
        rng: random.Random | None = None,
        tcp_port: int | None = None,
    ) -> LocalTransport:
        """Fresh ICE credentials (8-character ufrag, 24-character pwd) for an endpoint.

        Args:
            fingerprint: ``"sha-256 AB:…"`` (as `Certificate.fingerprint()` returns) or a
                ``(algorithm, value)`` pair.
            host: candidate IP address.
            port: candidate UDP port.
            rng: random source; defaults to the OS's (the password is a secret).
            tcp_port: TCP port of a passive TCP candidate (ICE-TCP), if the SFU listens.

        Returns:
            The transport parameters.
        """
        source = rng or random.SystemRandom()
        if isinstance(fingerprint, str):
            bits = fingerprint.split()
            if len(bits) != 2:
                raise NegotiationError("fingerprint must be '<algorithm> <value>'")
            pair = (bits[0].lower(), bits[1])
        else:
            pair = fingerprint
        return cls(
            ice_ufrag=_random_chars(source, 8),
            ice_pwd=_random_chars(source, 24),
            fingerprint=pair,
            host=host,
            port=port,
            tcp_port=tcp_port,
        )

    @property
    def candidate(self) -> sdp.Candidate:
        """The host UDP candidate."""
        return sdp.Candidate("1", 1, "udp", _HOST_PRIORITY, self.host, self.port, "host")

    @property
    def candidates(self) -> tuple[sdp.Candidate, ...]:
        """The host UDP candidate, and the passive TCP one (RFC 6544) if there is a TCP port:
        a client whose UDP is blocked connects to it and speaks RFC 4571-framed ICE, DTLS
        and SRTP. Its lower priority makes a working UDP pair win."""
        if self.tcp_port is None:
            return (self.candidate,)
        tcp = sdp.Candidate(
            "2",
            1,
            "tcp",
            _TCP_PASSIVE_PRIORITY,
            self.host,
            self.tcp_port,
            "host",
            extensions=(("tcptype", "passive"),),
        )
        return (self.candidate, tcp)

    @property
    def connection(self) -> sdp.Connection:
        """The ``c=`` line for this host."""
        version = ipaddress.ip_address(self.host).version
        return sdp.Connection("IN", f"IP{version}", self.host)


def _random_chars(rng: random.Random, count: int) -> str:
    return "".join(rng.choice(_ICE_ALPHABET) for _ in range(count))


@dataclass(frozen=True, slots=True)
class RemoteTransport:
    """The client's ICE credentials and DTLS fingerprints, from its last description."""

    ice_ufrag: str
    ice_pwd: str
    fingerprints: tuple[tuple[str, str], ...]
    setup: str | None
    ice_lite: bool = False


# --------------------------------------------------------------------------------------------
# What the negotiation produces


@dataclass(frozen=True, slots=True)
class PublishedTrackInfo:
    """A track the client publishes on one mid.

    Attributes:
        mid: the m-section's mid.
        track_id: the msid appdata (the SDK's ``participant.tracks[].id``).
        stream_id: the msid stream id.
        kind: ``audio`` or ``video``.
        codecs: the negotiated codecs of the mid (client payload types), RTX included.
        ssrcs: the media SSRCs: one, or the layers of an ``a=ssrc-group:SIM``; empty when
            the client did not signal SSRCs.
        rtx_ssrcs: ``(media SSRC, RTX SSRC)`` pairs from ``a=ssrc-group:FID``.
        header_extensions: negotiated header extensions (client ids).
    """

    mid: str
    track_id: str
    stream_id: str
    kind: MediaKind
    codecs: tuple[Codec, ...]
    ssrcs: tuple[int, ...]
    rtx_ssrcs: tuple[tuple[int, int], ...]
    header_extensions: tuple[Extmap, ...]

    @property
    def codec(self) -> Codec | None:
        """The first negotiated media codec (what the client sends with)."""
        return next((c for c in self.codecs if not c.is_rtx), None)

    @property
    def ssrc(self) -> int | None:
        """The first media SSRC, or None."""
        return self.ssrcs[0] if self.ssrcs else None

    @property
    def rtx_ssrc(self) -> int | None:
        """The RTX SSRC paired with `ssrc`, or None."""
        return next((r for m, r in self.rtx_ssrcs if m == self.ssrc), None)

    def rtx_payload_type(self, payload_type: int) -> int | None:
        """The RTX payload type repairing ``payload_type``, or None."""
        return _rtx_pt(self.codecs, payload_type)

    def extension_id(self, uri: str) -> int | None:
        """The negotiated id of a header extension, or None."""
        return _extension_id(self.header_extensions, uri)


@dataclass(frozen=True, slots=True)
class SentTrackInfo:
    """A track the server sends to the client on one mid (a subscription).

    Attributes:
        mid: the m-section's mid.
        track_id: msid appdata the client matches ``subscribed.tracks[].id`` against.
        stream_id: msid stream id.
        kind: ``audio`` or ``video``.
        ssrc: the server's SSRC for it.
        rtx_ssrc: the server's RTX SSRC, when RTX is negotiated.
        codec: the codec to send with (the client's payload type).
        rtx_payload_type: the RTX payload type, when negotiated.
        header_extensions: the extension ids the client expects on this mid.
    """

    mid: str
    track_id: str
    stream_id: str
    kind: MediaKind
    ssrc: int
    rtx_ssrc: int | None
    codec: Codec
    rtx_payload_type: int | None
    header_extensions: tuple[Extmap, ...]

    def extension_id(self, uri: str) -> int | None:
        """The negotiated id of a header extension, or None."""
        return _extension_id(self.header_extensions, uri)


@dataclass(frozen=True, slots=True)
class TransceiverInfo:
    """One row of the transceiver table (a snapshot for inspection and tests).

    ``client_direction`` is the direction the client last stated for the mid, from its own
    point of view (``sendrecv`` = it publishes and receives there).
    """

    mid: str
    kind: str
    rejected: bool
    client_direction: Direction
    codecs: tuple[Codec, ...]
    header_extensions: tuple[Extmap, ...]
    publication: PublishedTrackInfo | None
    sending: SentTrackInfo | None


@dataclass(frozen=True, slots=True)
class NegotiationResult:
    """What a completed negotiation (offer/answer exchange) changed.

    Attributes:
        revision: the negotiation's revision.
        published: every track the client now publishes (filtered by ``track_ids`` when the
            caller gave them).
        added: publications that are new in this negotiation.
        updated: publications on the same mid and track id whose SSRCs, codecs or extensions
            changed.
        ended: publications that ended (direction, msid or m-section gone).
        sending: every track the server now sends.
        stopped: server sends that ended in this negotiation: stopped with `stop_sending`;
            refused in the client's answer (the request is dropped: ask again with
            `PeerNegotiator.send_track`); or made impossible by a client offer (the mid went
            away or stopped receiving; the request stays and the next server offer places
            it again).
        remote: the client's ICE/DTLS parameters.
        local: the server's transport parameters (new ones after an ICE restart).
        ice_restart: the client changed its ICE credentials (and the server did too).
        data_mid: the mid of the negotiated ``m=application`` section, if any.
    """

    revision: int
    published: tuple[PublishedTrackInfo, ...]
    added: tuple[PublishedTrackInfo, ...]
    updated: tuple[PublishedTrackInfo, ...]
    ended: tuple[PublishedTrackInfo, ...]
    sending: tuple[SentTrackInfo, ...]
    stopped: tuple[SentTrackInfo, ...]
    remote: RemoteTransport
    local: LocalTransport
    ice_restart: bool
    data_mid: str | None


@dataclass(frozen=True, slots=True)
class Answer(NegotiationResult):
    """The server's answer to a client offer (`sdp`), and what it changed."""

    sdp: str


# --------------------------------------------------------------------------------------------
# Codec helpers


def _merge_parameters(
    client: tuple[tuple[str, str | None], ...], ours: tuple[tuple[str, str], ...]
) -> tuple[tuple[str, str | None], ...]:
    """The client's fmtp parameters with ours overriding (in place) or appended."""
    overrides = {k.lower(): (k, v) for k, v in ours}
    merged: list[tuple[str, str | None]] = []
    for key, value in client:
        merged.append(overrides.pop(key.lower(), (key, value)))
    merged.extend(overrides.values())
    return tuple(merged)


def _rtx_pt(codecs: Iterable[Codec], payload_type: int) -> int | None:
    return next((c.payload_type for c in codecs if c.is_rtx and c.apt == payload_type), None)


def _extension_id(extmaps: Iterable[Extmap], uri: str) -> int | None:
    return next((e.id for e in extmaps if e.uri == uri), None)


def _sends(direction: Direction) -> bool:
    return direction in ("sendrecv", "sendonly")


def _receives(direction: Direction) -> bool:
    return direction in ("sendrecv", "recvonly")


def _direction(send: bool, recv: bool) -> Direction:
    if send and recv:
        return "sendrecv"
    if send:
        return "sendonly"
    return "recvonly" if recv else "inactive"


# --------------------------------------------------------------------------------------------
# The transceiver table


@dataclass(frozen=True, slots=True)
class _SendRequest:
    track_id: str
    stream_id: str
    kind: MediaKind
    capabilities: tuple[CodecCapability, ...]
    ssrc: int
    rtx_ssrc: int


@dataclass(slots=True)
class _Slot:
    """One m-section of the connection (mutable; copied for each negotiation)."""

    mid: str
    kind: str
    proto: str
    formats: tuple[str, ...] = ()
    rejected: bool = False
    client_direction: Direction = "inactive"
    codecs: tuple[Codec, ...] = ()
    offered_codecs: tuple[Codec, ...] = ()
    extmaps: tuple[Extmap, ...] = ()
    rtcp_rsize: bool = True
    publication: PublishedTrackInfo | None = None
    sending: SentTrackInfo | None = None

    def copy(self) -> _Slot:
        return replace(self)

    def info(self) -> TransceiverInfo:
        return TransceiverInfo(
            mid=self.mid,
            kind=self.kind,
            rejected=self.rejected,
            client_direction=self.client_direction,
            codecs=self.codecs,
            header_extensions=self.extmaps,
            publication=self.publication,
            sending=self.sending,
        )


@dataclass(slots=True)
class _PendingOffer:
    revision: int
    sdp: str
    description: SessionDescription
    slots: list[_Slot]
    stopping: dict[str, SentTrackInfo] = field(default_factory=dict)  # mid → old send


@dataclass(slots=True)
class _Last:
    revision: int
    offer: str
    answer: Answer


class PeerNegotiator:
    """The server side of one participant's peer connection: a pure negotiation state machine.

    Typical use::

        neg = PeerNegotiator(LocalTransport.generate(cert.fingerprint(), host, port))
        answer = neg.apply_client_offer(offer_sdp, revision=1)      # Answer, or None on glare
        neg.send_track("MT…", "PA…", "video", "VP8")                # a subscription
        offer = neg.create_offer()                                  # revision = last + 1
        result = neg.apply_client_answer(answer_sdp, revision=neg.pending_offer_revision)

    Args:
        local: the server's ICE/DTLS parameters for this connection.
        capabilities: codecs and extensions; `ServerCapabilities.default()` if omitted.
        rng: random source for SSRCs, the session id and new ICE credentials after an ICE
            restart; seed one for deterministic tests (defaults to the OS's).
        cname: RTCP CNAME of the server's streams (random if omitted).
    """

    def __init__(
        self,
        local: LocalTransport,
        capabilities: ServerCapabilities | None = None,
        *,
        rng: random.Random | None = None,
        cname: str | None = None,
    ) -> None:
        self._local = local
        self._caps = capabilities or ServerCapabilities.default()
        self._rng = rng or random.SystemRandom()
        self._cname = cname or f"parlour-{self._rng.getrandbits(64):016x}"
        self._session_id = self._rng.getrandbits(62)
        self._session_version = 0
        self._slots: list[_Slot] = []
        self._used_mids: set[str] = set()
        self._requests: dict[str, _SendRequest] = {}
        self._want_data = False
        # The client rejected the m=application section we offered: offering it again would
        # be refused again, every time (until the client offers SCTP itself).
        self._data_refused = False
        self._remote: RemoteTransport | None = None
        self._client_pts: dict[int, _CodecKey] = {}
        self._client_ext_ids: dict[str, int] = {}
        self._pending: _PendingOffer | None = None
        self._last_revision = 0
        self._last: _Last | None = None

    # -- inspection ---------------------------------------------------------------------------

    @property
    def local(self) -> LocalTransport:
        """The server's current transport parameters."""
        return self._local

    @property
    def remote(self) -> RemoteTransport | None:
        """The client's transport parameters, once it sent a description."""
        return self._remote

    @property
    def last_revision(self) -> int:
        """The highest description revision seen or used on this connection."""
        return self._last_revision

    @property
    def next_offer_revision(self) -> int:
        """The revision the next server offer gets: last seen + 1."""
        return self._last_revision + 1

    @property
    def pending_offer_revision(self) -> int | None:
        """The revision of the outstanding server offer, or None."""
        return self._pending.revision if self._pending else None

    @property
    def pending_offer(self) -> str | None:
        """The SDP of the outstanding server offer, or None."""
        return self._pending.sdp if self._pending else None

    @property
    def is_stable(self) -> bool:
        """No server offer is outstanding."""
        return self._pending is None

    @property
    def needs_negotiation(self) -> bool:
        """The requested sends or data channel differ from what is negotiated."""
        active = {s.sending.track_id: s for s in self._slots if s.sending is not None}
        for track_id, request in self._requests.items():
            slot = active.get(track_id)
            if slot is None or not self._send_current(slot, request):
                return True
        if any(track_id not in self._requests for track_id in active):
            return True
        return self._want_data and self.data_mid is None and not self._data_refused

    @property
    def data_mid(self) -> str | None:
        """The mid of the negotiated ``m=application`` section, or None."""
        return next(
            (s.mid for s in self._slots if s.kind == "application" and not s.rejected), None
        )

    @property
    def publications(self) -> tuple[PublishedTrackInfo, ...]:
        """Every track the client publishes, in m-section order."""
        return tuple(s.publication for s in self._slots if s.publication is not None)

    @property
    def sending(self) -> tuple[SentTrackInfo, ...]:
        """Every track the server sends, in m-section order."""
        return tuple(s.sending for s in self._slots if s.sending is not None)

    def publication(self, track_id: str) -> PublishedTrackInfo | None:
        """The client's publication with this track id, or None."""
        return next((p for p in self.publications if p.track_id == track_id), None)

    def transceivers(self) -> tuple[TransceiverInfo, ...]:
        """The negotiated transceiver table, in m-section order."""
        return tuple(s.info() for s in self._slots)

    def to_dict(self) -> dict[str, object]:
        """The negotiated state as plain JSON-compatible data (for logs and tests)."""
        return {
            "revision": self._last_revision,
            "pending_offer_revision": self.pending_offer_revision,
            "data_mid": self.data_mid,
            "requested": sorted(self._requests),
            "transceivers": [asdict(s.info()) for s in self._slots],
        }

    # -- what the server wants to send ---------------------------------------------------------

    def send_track(
        self, track_id: str, stream_id: str, kind: str, codec: str | Codec | None = None
    ) -> None:
        """Ask to send a track to the client (takes effect with the next server offer).

        Args:
            track_id: msid appdata; the id ``subscribed.tracks[].id`` will carry.
            stream_id: msid stream id (e.g. the publisher's participant SID, so the client
                synchronises its audio and video).
            kind: ``audio`` or ``video``.
            codec: the publisher's codec: a name (``VP8``, ``H264``, ``opus``) or the
                publication's `Codec`; None for the first codec we support of that kind.

        Raises:
            NegotiationError: bad ids or kind, or a codec this connection cannot send.
        """
        if kind not in ("audio", "video"):
            raise NegotiationError(f"cannot send a track of kind {kind!r}")
        for name, value in (("track_id", track_id), ("stream_id", stream_id)):
            if not _TOKEN_RE.fullmatch(value):
                raise NegotiationError(f"{name} must be an msid token, got {value[:40]!r}")
        caps = self._caps.codecs_for(kind)
        if isinstance(codec, Codec):
            caps = tuple(c for c in caps if c.matches(codec))
        elif codec is not None:
            caps = tuple(c for c in caps if c.name.lower() == codec.lower())
        if not caps:
            raise NegotiationError(f"no {kind} codec matching {codec!r} is enabled")
        existing = self._requests.get(track_id)
        if existing is not None:
            ssrc, rtx_ssrc = existing.ssrc, existing.rtx_ssrc
        else:
            ssrc, rtx_ssrc = self._new_ssrc(), self._new_ssrc()
        self._requests[track_id] = _SendRequest(
            track_id, stream_id, "audio" if kind == "audio" else "video", caps, ssrc, rtx_ssrc
        )

    def stop_sending(self, track_id: str) -> None:
        """Stop sending a track (its section goes ``inactive`` in the next server offer)."""
        self._requests.pop(track_id, None)

    def need_data_channel(self) -> None:
        """Make sure the connection has an ``m=application`` section (adds one if missing)."""
        self._want_data = True

    # -- client offers -------------------------------------------------------------------------

    def apply_client_offer(
        self,
        sdp_text: str,
        revision: int,
        *,
        track_ids: Collection[str] | None = None,
        local_transport: LocalTransport | None = None,
    ) -> Answer | None:
        """Answer a client offer.

        Args:
            sdp_text: the offer.
            revision: its revision (the answer echoes it).
            track_ids: the client's ``participant.tracks`` ids; when given, sections whose
                msid is not among them (Firefox's dummy audio) are left out of the reported
                publications (they stay in `publications`).
            local_transport: new server transport parameters (otherwise an ICE restart
                generates new credentials from ``rng``).

        Returns:
            The answer and what changed, or None when the offer is ignored: a server offer
            is outstanding (glare: the client will roll back and answer ours), or the
            revision is not newer than the last one. Re-delivery of the last answered offer
            (same revision and SDP) returns the same answer again.

        Raises:
            SdpError: the offer is not valid SDP.
            NegotiationError: the offer is inconsistent with the negotiated state.
        """
        if self._pending is not None:
            return None
        if revision <= self._last_revision:
            last = self._last
            if last is not None and last.revision == revision and last.offer == sdp_text:
                return last.answer
            return None
        offer = sdp.parse(sdp_text)
        remote = _remote_transport(offer, "offer")
        if remote.setup not in (None, "actpass", "active"):
            raise NegotiationError(f"client offered a=setup:{remote.setup}; we must be passive")
        slots = self._slots_for_offer(offer)  # the last check; nothing below raises
        ice_restart = self._remote is not None and (
            (remote.ice_ufrag, remote.ice_pwd) != (self._remote.ice_ufrag, self._remote.ice_pwd)
        )
        if local_transport is not None:
            self._local = local_transport
        elif ice_restart:
            # RFC 8839 §4.4.1.1.1: an answer to an ICE restart carries new credentials too.
            self._local = LocalTransport.generate(
                self._local.fingerprint,
                self._local.host,
                self._local.port,
                rng=self._rng,
                tcp_port=self._local.tcp_port,
            )
        bundle = offer.group("BUNDLE")
        if bundle is not None:
            bundled = set(bundle.mids)
        else:
            first = next((m.mid for m in offer.media if not m.is_rejected), None)
            bundled = {first} if first is not None else set()
        self._learn_client_payload_types(offer)
        old_slots = self._slots
        stopped: list[SentTrackInfo] = []
        sections: list[MediaSection] = []
        data_seen = False
        for slot, media in zip(slots, offer.media, strict=True):
            before = slot.sending
            accepted = media.mid in bundled and not media.is_rejected
            if slot.kind == "application":
                accepted = accepted and "SCTP" in media.proto and not data_seen
                data_seen = data_seen or accepted
                sections.append(self._answer_data(slot, media, accepted))
            elif slot.kind in ("audio", "video"):
                sections.append(self._answer_rtp(slot, media, accepted))
            else:
                sections.append(self._rejected(slot, media, "passive"))
            if before is not None and slot.sending is None:
                stopped.append(before)
        accepted_mids = tuple(m.mid for m in sections if m.port != 0 and m.mid is not None)
        answer_sd = self._session(
            sections, (sdp.Group("BUNDLE", accepted_mids),) if bundle is not None else ()
        )
        self._slots = slots
        self._remote = remote
        self._last_revision = revision
        if data_seen:
            self._data_refused = False
        answer = self._result(
            revision, old_slots, stopped, track_ids, ice_restart, sdp_text=str(answer_sd)
        )
        assert isinstance(answer, Answer)
        self._last = _Last(revision, sdp_text, answer)
        return answer

    def _slots_for_offer(self, offer: SessionDescription) -> list[_Slot]:
        """Align the offer's m-sections with the table (mids keep their m-line)."""
        if len(offer.media) < len(self._slots):
            raise NegotiationError(
                f"offer has {len(offer.media)} m-sections, {len(self._slots)} are negotiated"
            )
        slots: list[_Slot] = []
        seen: set[str] = set()
        for index, media in enumerate(offer.media):
            mid = media.mid
            if mid is None:
                raise NegotiationError(f"m-section {index} has no a=mid")
            if mid in seen:
                raise NegotiationError(f"duplicate mid {mid!r}")
            seen.add(mid)
            old = self._slots[index] if index < len(self._slots) else None
            if old is not None and old.mid == mid:
                if old.kind != media.kind:
                    raise NegotiationError(f"mid {mid!r} changed kind {old.kind} → {media.kind}")
                slots.append(old.copy())
                continue
            if old is not None and not old.rejected:
                raise NegotiationError(f"m-section {index} changed mid {old.mid!r} → {mid!r}")
            if any(s.mid == mid for s in self._slots):
                raise NegotiationError(f"mid {mid!r} moved to another m-section")
            slots.append(_Slot(mid=mid, kind=media.kind, proto=media.proto))
        self._used_mids.update(seen)
        return slots

    def _learn_client_payload_types(self, offer: SessionDescription) -> None:
        """Remember what the client's payload types and extension ids mean (BUNDLE-wide)."""
        for media in offer.media:
            for codec in media.codecs:
                self._client_pts[codec.payload_type] = _codec_key(codec)
            for ext in media.extmaps:
                self._client_ext_ids[ext.uri] = ext.id

    def _answer_rtp(self, slot: _Slot, media: MediaSection, accepted: bool) -> MediaSection:
        slot.offered_codecs = media.codecs
        slot.formats = media.formats
        slot.proto = media.proto
        codecs = self._intersect(slot.kind, media.codecs) if accepted else ()
        if not accepted or not codecs or "RTP/SAVPF" not in media.proto or not media.rtcp_mux:
            return self._rejected(slot, media, "passive")
        slot.rejected = False
        slot.codecs = codecs
        slot.extmaps = self._intersect_extensions(slot.kind, media.extmaps)
        slot.rtcp_rsize = media.rtcp_rsize
        slot.client_direction = media.effective_direction
        slot.publication = _publication(media, slot.codecs, slot.extmaps)
        send = slot.sending
        if send is not None:
            slot.sending = None
            if _receives(slot.client_direction):
                slot.sending = _renegotiated_send(send, slot.codecs, slot.extmaps)
        direction = _direction(slot.sending is not None, _sends(slot.client_direction))
        return self._rtp_section(slot, direction, "passive", codecs=slot.codecs)

    def _answer_data(self, slot: _Slot, media: MediaSection, accepted: bool) -> MediaSection:
        slot.formats = media.formats
        slot.proto = media.proto
        if not accepted:
            return self._rejected(slot, media, "passive")
        slot.rejected = False
        slot.client_direction = "sendrecv"
        return self._data_section(slot, "passive")

    def _intersect(self, kind: str, offered: tuple[Codec, ...]) -> tuple[Codec, ...]:
        """Client codecs we support, in the client's order, with its payload types."""
        matched: dict[int, tuple[Codec, CodecCapability]] = {}
        for codec in offered:
            cap = None if codec.is_rtx else self._caps.match(kind, codec)
            if cap is not None:
                matched[codec.payload_type] = (codec, cap)
        result: list[Codec] = []
        for codec in offered:
            if codec.payload_type in matched:
                theirs, cap = matched[codec.payload_type]
                result.append(_answer_codec(theirs, cap))
            elif codec.is_rtx and codec.apt in matched:
                base, cap = matched[codec.apt]
                if cap.rtx and codec.clock_rate == base.clock_rate:
                    result.append(_rtx_codec(codec.payload_type, base))
        return tuple(result)

    def _intersect_extensions(self, kind: str, offered: tuple[Extmap, ...]) -> tuple[Extmap, ...]:
        uris = {e.uri for e in self._caps.extensions_for(kind)}
        return tuple(Extmap(e.id, e.uri) for e in offered if e.uri in uris)

    # -- server offers -------------------------------------------------------------------------

    def create_offer(self, revision: int | None = None) -> str:
        """Build a server offer for the requested sends and data channel.

        Sections whose send stopped go ``inactive`` (``recvonly`` if the client publishes
        there); a new send reuses a section the server does not send on and the client does
        not publish on, else gets a new mid at the end.

        Args:
            revision: the offer's revision; defaults to `next_offer_revision`.

        Returns:
            The offer SDP; it stays pending until `apply_client_answer`.

        Raises:
            NegotiationError: an offer is already outstanding, or the revision is stale.
        """
        if self._pending is not None:
            raise NegotiationError(f"server offer {self._pending.revision} is still outstanding")
        revision = self.next_offer_revision if revision is None else revision
        if revision <= self._last_revision:
            raise NegotiationError(f"offer revision {revision} is not after {self._last_revision}")
        slots = [s.copy() for s in self._slots]
        offered: dict[str, _SendRequest] = {}
        stopping: dict[str, SentTrackInfo] = {}
        for slot in slots:
            if slot.sending is None:
                continue
            request = self._requests.get(slot.sending.track_id)
            if request is None:
                stopping[slot.mid] = slot.sending
            else:
                offered[slot.mid] = request
        sent_ids = {r.track_id for r in offered.values()}
        for request in self._requests.values():
            if request.track_id in sent_ids:
                continue
            reuse = next((s for s in slots if self._reusable(s, request, offered, stopping)), None)
            if reuse is None:
                reuse = _Slot(mid=self._new_mid(), kind=request.kind, proto=_RTP_PROTO)
                slots.append(reuse)
            offered[reuse.mid] = request
        if (
            self._want_data
            and not self._data_refused
            and not any(s.kind == "application" and not s.rejected for s in slots)
        ):
            slots.append(_Slot(mid=self._new_mid(), kind="application", proto=_SCTP_PROTO))
        registry = _payload_registry(slots)
        ext_ids = _extension_registry(slots, self._client_ext_ids)
        sections = [self._offer_section(s, offered.get(s.mid), registry, ext_ids) for s in slots]
        bundle = tuple(m.mid for m in sections if m.port != 0 and m.mid is not None)
        description = self._session(sections, (sdp.Group("BUNDLE", bundle),))
        text = str(description)
        self._pending = _PendingOffer(revision, text, description, slots, stopping)
        self._last_revision = revision
        return text

    def cancel_offer(self) -> None:
        """Forget the outstanding server offer (e.g. the client will never answer it)."""
        self._pending = None

    @staticmethod
    def _reusable(
        slot: _Slot,
        request: _SendRequest,
        offered: Mapping[str, _SendRequest],
        stopping: Mapping[str, SentTrackInfo],
    ) -> bool:
        # A section whose send stops in this same offer is not reused: the client would see
        # a new msid on an already-receiving transceiver and fire no `track` event.
        return (
            slot.kind == request.kind
            and not slot.rejected
            and slot.codecs != ()
            and slot.sending is None
            and slot.mid not in offered
            and slot.mid not in stopping
            and not _sends(slot.client_direction)
        )

    def _offer_section(
        self,
        slot: _Slot,
        request: _SendRequest | None,
        registry: dict[int, _CodecKey],
        ext_ids: dict[str, int],
    ) -> MediaSection:
        if slot.rejected:
            return self._rejected(slot, None, "actpass")
        if slot.kind == "application":
            return self._data_section(slot, "actpass")
        client_sends = _sends(slot.client_direction) and slot.publication is not None
        codecs: list[Codec] = list(slot.codecs) if client_sends or request is None else []
        if request is not None:
            for codec in self._codecs_for(slot, request.capabilities, registry):
                if all(c.payload_type != codec.payload_type for c in codecs):
                    codecs.append(codec)
        if not codecs:
            codecs = list(self._codecs_for(slot, self._caps.codecs_for(slot.kind), registry))
        # Negotiated extensions keep their ids and order; the others get BUNDLE-wide ids.
        extmaps = slot.extmaps + tuple(
            Extmap(_pick_extension_id(slot, e, ext_ids), e.uri)
            for e in self._caps.extensions_for(slot.kind)
            if _extension_id(slot.extmaps, e.uri) is None
        )
        slot.extmaps = extmaps
        sending = None
        if request is not None:
            codec = next(c for c in codecs if any(cap.matches(c) for cap in request.capabilities))
            rtx_pt = _rtx_pt(codecs, codec.payload_type)
            sending = SentTrackInfo(
                mid=slot.mid,
                track_id=request.track_id,
                stream_id=request.stream_id,
                kind=request.kind,
                ssrc=request.ssrc,
                rtx_ssrc=request.rtx_ssrc if rtx_pt is not None else None,
                codec=codec,
                rtx_payload_type=rtx_pt,
                header_extensions=extmaps,
            )
        slot.sending = sending
        direction = _direction(sending is not None, client_sends)
        return self._rtp_section(slot, direction, "actpass", codecs=tuple(codecs))

    def _codecs_for(
        self, slot: _Slot, caps: Iterable[CodecCapability], registry: dict[int, _CodecKey]
    ) -> Iterator[Codec]:
        """Codecs (+ RTX) for these capabilities, with payload types consistent everywhere."""
        for cap in caps:
            template = cap.template(0)
            pt = self._pick_payload_type(slot, _codec_key(template), cap.payload_type, registry)
            codec = replace(template, payload_type=pt)
            yield codec
            if cap.rtx:
                rtx = _rtx_codec(0, codec)
                rtx_key = _codec_key(rtx)
                rtx_pt = self._pick_payload_type(
                    slot, rtx_key, cap.rtx_payload_type or pt + 1, registry
                )
                yield replace(rtx, payload_type=rtx_pt)

    def _pick_payload_type(
        self, slot: _Slot, key: _CodecKey, preferred: int, registry: dict[int, _CodecKey]
    ) -> int:
        """Payload type for a codec: as negotiated on the mid, in the BUNDLE, or by the client."""
        for codec in slot.codecs:
            if _codec_key(codec) == key:
                registry[codec.payload_type] = key
                return codec.payload_type
        candidates = [pt for pt, k in registry.items() if k == key]
        candidates += [pt for pt, k in self._client_pts.items() if k == key]
        candidates += [preferred, *_DYNAMIC_PTS]
        for pt in candidates:
            if registry.get(pt, key) == key and self._client_pts.get(pt, key) == key:
                registry[pt] = key
                return pt
        raise NegotiationError("no free RTP payload type left")

    # -- client answers ------------------------------------------------------------------------

    def apply_client_answer(
        self, sdp_text: str, revision: int, *, track_ids: Collection[str] | None = None
    ) -> NegotiationResult:
        """Apply the client's answer to the outstanding server offer.

        Args:
            sdp_text: the answer.
            revision: its revision; must equal the offer's.
            track_ids: as for `apply_client_offer`.

        Returns:
            What changed: in particular `NegotiationResult.sending` with the payload types
            and extension ids to forward with.

        Raises:
            SdpError: the answer is not valid SDP.
            NegotiationError: no offer with that revision is outstanding, or the answer does
                not match it.
        """
        pending = self._pending
        if pending is None or pending.revision != revision:
            raise NegotiationError(f"no server offer with revision {revision} is outstanding")
        answer = sdp.parse(sdp_text)
        remote = _remote_transport(answer, "answer")
        if remote.setup not in (None, "active"):
            raise NegotiationError(f"client answered a=setup:{remote.setup}; it must be active")
        offered = pending.description.media
        if [(m.kind, m.mid) for m in answer.media] != [(m.kind, m.mid) for m in offered]:
            raise NegotiationError("answer m-sections do not match the offer")
        ice_restart = self._remote is not None and (
            (remote.ice_ufrag, remote.ice_pwd) != (self._remote.ice_ufrag, self._remote.ice_pwd)
        )
        stopped = list(pending.stopping.values())
        for slot, media, ours in zip(pending.slots, answer.media, offered, strict=True):
            before = slot.sending
            self._apply_answer_section(slot, media, ours)
            if before is not None and slot.sending is None and slot.mid not in pending.stopping:
                stopped.append(before)
        self._used_mids.update(s.mid for s in pending.slots)
        old_slots = self._slots
        self._slots = pending.slots
        if self.data_mid is None and any(s.kind == "application" for s in pending.slots):
            self._data_refused = True
        self._remote = remote
        self._pending = None
        for send in stopped:
            request = self._requests.get(send.track_id)
            if request is not None and all(s.track_id != send.track_id for s in self.sending):
                del self._requests[send.track_id]
        return self._result(revision, old_slots, stopped, track_ids, ice_restart)

    def _apply_answer_section(self, slot: _Slot, media: MediaSection, ours: MediaSection) -> None:
        if ours.port == 0:
            return
        if media.is_rejected:
            slot.formats = ours.formats
            slot.offered_codecs = ours.codecs
            slot.client_direction = "inactive"
            slot.rejected = True
            slot.publication = None
            slot.sending = None
            return
        if slot.kind == "application":
            return
        offered_pts = {c.payload_type: c for c in ours.codecs}
        codecs = tuple(
            offered_pts[c.payload_type]
            for c in media.codecs
            if c.payload_type in offered_pts
            and _codec_key(c) == _codec_key(offered_pts[c.payload_type])
        )
        uris = {e.uri: e for e in ours.extmaps}
        extmaps = tuple(
            uris[e.uri] for e in media.extmaps if e.uri in uris and uris[e.uri].id == e.id
        )
        slot.client_direction = media.effective_direction
        if codecs:
            slot.codecs = codecs
        slot.extmaps = extmaps
        slot.formats = tuple(str(c.payload_type) for c in slot.codecs)
        slot.offered_codecs = slot.codecs
        slot.publication = _publication(media, slot.codecs, extmaps)
        send = slot.sending
        slot.sending = None
        if send is not None and _receives(slot.client_direction) and codecs:
            slot.sending = _renegotiated_send(send, codecs, extmaps)

    # -- building descriptions -----------------------------------------------------------------

    def _session(
        self, media: list[MediaSection], groups: tuple[sdp.Group, ...]
    ) -> SessionDescription:
        self._session_version += 1
        return SessionDescription(
            origin=sdp.Origin("-", self._session_id, self._session_version),
            ice_lite=True,
            groups=groups,
            msid_semantic=sdp.MsidSemantic("WMS", ("*",)),
            media=tuple(media),
        )

    def _with_transport(self, media: MediaSection, setup: sdp.Setup) -> MediaSection:
        """Add our ICE/DTLS attributes, and for a live section (port ≠ 0) our candidates."""
        local = self._local
        media = replace(
            media,
            ice_ufrag=local.ice_ufrag,
            ice_pwd=local.ice_pwd,
            fingerprints=(sdp.Fingerprint(*local.fingerprint),),
            setup=setup,
        )
        if media.port == 0:
            return media
        return replace(
            media,
            connection=local.connection,
            candidates=local.candidates,
            end_of_candidates=True,
        )

    def _rtp_section(
        self, slot: _Slot, direction: Direction, setup: sdp.Setup, *, codecs: tuple[Codec, ...]
    ) -> MediaSection:
        send = slot.sending
        msids: tuple[sdp.Msid, ...] = ()
        groups: tuple[sdp.SsrcGroup, ...] = ()
        ssrcs: list[sdp.SsrcAttribute] = []
        if send is not None:
            msid = sdp.Msid(send.stream_id, send.track_id)
            msids = (msid,)
            ids = [send.ssrc] if send.rtx_ssrc is None else [send.ssrc, send.rtx_ssrc]
            if send.rtx_ssrc is not None:
                groups = (sdp.SsrcGroup("FID", tuple(ids)),)
            for ssrc in ids:
                ssrcs.append(sdp.SsrcAttribute(ssrc, "cname", self._cname))
                ssrcs.append(sdp.SsrcAttribute(ssrc, "msid", str(msid)))
        section = MediaSection(
            kind=slot.kind,
            port=self._local.port,
            proto=slot.proto,
            formats=tuple(str(c.payload_type) for c in codecs),
            mid=slot.mid,
            extmaps=slot.extmaps,
            direction=direction,
            msids=msids,
            rtcp_mux=True,
            rtcp_rsize=slot.rtcp_rsize,
            codecs=codecs,
            ssrc_groups=groups,
            ssrcs=tuple(ssrcs),
        )
        return self._with_transport(section, setup)

    def _data_section(self, slot: _Slot, setup: sdp.Setup) -> MediaSection:
        caps = self._caps
        section = MediaSection(
            kind="application",
            port=self._local.port,
            proto=slot.proto,
            formats=slot.formats or (_SCTP_FORMAT,),
            mid=slot.mid,
            sctp_port=caps.sctp_port,
            max_message_size=caps.max_message_size,
        )
        if slot.proto == "DTLS/SCTP":  # the legacy (pre-RFC 8841) syntax
            sctpmap = sdp.Attribute("sctpmap", f"{caps.sctp_port} {_SCTP_FORMAT} 1024")
            section = replace(
                section, formats=(str(caps.sctp_port),), sctp_port=None, attributes=(sctpmap,)
            )
        return self._with_transport(section, setup)

    def _rejected(self, slot: _Slot, media: MediaSection | None, setup: sdp.Setup) -> MediaSection:
        """A port-0 section.

        It keeps the codecs and transport attributes: some stacks (aiortc) validate every
        section of a description, rejected or not.
        """
        if media is not None:
            slot.formats = media.formats
            slot.offered_codecs = media.codecs
            slot.proto = media.proto
        slot.rejected = True
        slot.publication = None
        slot.sending = None
        slot.client_direction = "inactive"
        rtp = slot.kind in ("audio", "video")
        section = MediaSection(
            kind=slot.kind,
            port=0,
            proto=slot.proto,
            formats=slot.formats or ("0",),
            mid=slot.mid,
            direction="inactive" if rtp else None,
            rtcp_mux=rtp,
            codecs=slot.offered_codecs if rtp else (),
        )
        return self._with_transport(section, setup)

    # -- results -------------------------------------------------------------------------------

    def _result(
        self,
        revision: int,
        old_slots: list[_Slot],
        stopped: list[SentTrackInfo],
        track_ids: Collection[str] | None,
        ice_restart: bool,
        sdp_text: str | None = None,
    ) -> NegotiationResult:
        """What changed from ``old_slots`` to the table now; an `Answer` if ``sdp_text``."""

        def known(p: PublishedTrackInfo) -> bool:
            return track_ids is None or p.track_id in track_ids

        before = {(p.mid, p.track_id): p for s in old_slots if (p := s.publication) is not None}
        now = {(p.mid, p.track_id): p for p in self.publications}
        remote = self._remote
        assert remote is not None
        published = tuple(p for p in now.values() if known(p))
        added = tuple(p for k, p in now.items() if k not in before and known(p))
        updated = tuple(p for k, p in now.items() if k in before and before[k] != p and known(p))
        ended = tuple(p for k, p in before.items() if k not in now)
        args = (revision, published, added, updated, ended, self.sending, tuple(stopped))
        rest = (remote, self._local, ice_restart, self.data_mid)
        if sdp_text is None:
            return NegotiationResult(*args, *rest)
        return Answer(*args, *rest, sdp=sdp_text)

    # -- small helpers -------------------------------------------------------------------------

    def _send_current(self, slot: _Slot, request: _SendRequest) -> bool:
        send = slot.sending
        assert send is not None
        return send.stream_id == request.stream_id and any(
            cap.matches(send.codec) for cap in request.capabilities
        )

    def _new_mid(self) -> str:
        number = 0
        while str(number) in self._used_mids:
            number += 1
        self._used_mids.add(str(number))
        return str(number)

    def _new_ssrc(self) -> int:
        used = {r.ssrc for r in self._requests.values()}
        used |= {r.rtx_ssrc for r in self._requests.values()}
        for slot in self._slots:
            if slot.publication is not None:
                used.update(slot.publication.ssrcs)
                used.update(r for _, r in slot.publication.rtx_ssrcs)
        while True:
            ssrc = self._rng.randrange(1, 2**32)
            if ssrc not in used:
                return ssrc


# --------------------------------------------------------------------------------------------
# Module-level helpers


def _answer_codec(theirs: Codec, cap: CodecCapability) -> Codec:
    """Our answer for a client codec: its payload type and name, our parameters/feedback."""
    return Codec(
        payload_type=theirs.payload_type,
        name=theirs.name,
        clock_rate=theirs.clock_rate,
        channels=theirs.channels,
        parameters=_merge_parameters(theirs.parameters, cap.parameters),
        feedback=tuple(f for f in theirs.feedback if f in cap.feedback),
    )


def _rtx_codec(payload_type: int, base: Codec) -> Codec:
    return Codec(
        payload_type=payload_type,
        name="rtx",
        clock_rate=base.clock_rate,
        parameters=(("apt", str(base.payload_type)),),
    )


def _publication(
    media: MediaSection, codecs: tuple[Codec, ...], extmaps: tuple[Extmap, ...]
) -> PublishedTrackInfo | None:
    """What the client publishes on a section (it sends, and names the track), or None."""
    if media.is_rejected or not _sends(media.effective_direction) or not codecs:
        return None
    stream, track = _msid(media)
    if track is None:
        return None
    fid: list[tuple[int, int]] = []
    sim: tuple[int, ...] = ()
    for group in media.ssrc_groups:
        if group.semantics == "FID" and len(group.ssrcs) == 2:
            fid.append((group.ssrcs[0], group.ssrcs[1]))
        elif group.semantics == "SIM" and not sim:
            sim = group.ssrcs
    repair = {r for _, r in fid}
    if sim:
        ssrcs = sim
    else:
        first = next((s for s in media.ssrc_ids if s not in repair), None)
        ssrcs = () if first is None else (first,)
    return PublishedTrackInfo(
        mid=media.mid or "",
        track_id=track,
        stream_id=stream,
        kind="audio" if media.kind == "audio" else "video",
        codecs=codecs,
        ssrcs=ssrcs,
        rtx_ssrcs=tuple(fid),
        header_extensions=extmaps,
    )


def _msid(media: MediaSection) -> tuple[str, str | None]:
    """(stream, track) from ``a=msid``, else from an ``a=ssrc:… msid:`` line."""
    msid = media.msid
    if msid is not None and msid.track is not None:
        return msid.stream, msid.track
    for line in media.ssrcs:
        if line.name == "msid" and line.value:
            bits = line.value.split()
            if len(bits) == 2:
                return bits[0], bits[1]
    return "-", None


def _renegotiated_send(
    send: SentTrackInfo, codecs: tuple[Codec, ...], extmaps: tuple[Extmap, ...]
) -> SentTrackInfo | None:
    """The send with a new negotiation's payload types and extension ids (None: codec gone)."""
    key = _codec_key(send.codec)
    codec = next((c for c in codecs if _codec_key(c) == key), None)
    if codec is None:
        return None
    rtx_pt = _rtx_pt(codecs, codec.payload_type)
    return replace(
        send,
        codec=codec,
        rtx_payload_type=rtx_pt,
        rtx_ssrc=send.rtx_ssrc if rtx_pt is not None else None,
        header_extensions=extmaps,
    )


def _remote_transport(description: SessionDescription, what: str) -> RemoteTransport:
    """The client's ICE credentials, DTLS fingerprints and setup role.

    Read from the BUNDLE-tagged section (the group's first mid, RFC 8843 §7.2), else the first
    live section, falling back to session-level attributes.
    """
    bundle = description.group("BUNDLE")
    tagged = description.section(bundle.mids[0]) if bundle and bundle.mids else None
    live = [m for m in description.media if not m.is_rejected]
    media = tagged if tagged in live else next(iter(live), None)
    ufrag = (media.ice_ufrag if media else None) or description.ice_ufrag
    pwd = (media.ice_pwd if media else None) or description.ice_pwd
    prints = (media.fingerprints if media else ()) or description.fingerprints
    setup = (media.setup if media else None) or description.setup
    if media is None:
        raise NegotiationError(f"the {what} has no usable m-section")
    if not ufrag or not pwd:
        raise NegotiationError(f"the {what} has no ICE ufrag/pwd")
    if not prints:
        raise NegotiationError(f"the {what} has no DTLS fingerprint")
    return RemoteTransport(
        ice_ufrag=ufrag,
        ice_pwd=pwd,
        fingerprints=tuple((f.algorithm.lower(), f.value) for f in prints),
        setup=setup,
        ice_lite=description.ice_lite,
    )


def _payload_registry(slots: Iterable[_Slot]) -> dict[int, _CodecKey]:
    """What each payload type means across the BUNDLE (from negotiated sections)."""
    registry: dict[int, _CodecKey] = {}
    for slot in slots:
        if slot.rejected:
            continue
        for codec in slot.codecs:
            registry.setdefault(codec.payload_type, _codec_key(codec))
    return registry


def _extension_registry(slots: Iterable[_Slot], client: Mapping[str, int]) -> dict[str, int]:
    """URI → id across the BUNDLE: negotiated ids first, then the client's offered ids."""
    ids: dict[str, int] = {}
    for slot in slots:
        for ext in slot.extmaps:
            ids.setdefault(ext.uri, ext.id)
    for uri, ident in client.items():
        if uri not in ids and ident not in ids.values():
            ids[uri] = ident
    return ids


def _pick_extension_id(slot: _Slot, ext: HeaderExtensionCapability, ids: dict[str, int]) -> int:
    current = _extension_id(slot.extmaps, ext.uri)
    if current is not None:
        return current
    if ext.uri in ids:
        return ids[ext.uri]
    taken = set(ids.values())
    choices: list[int] = [ext.preferred_id, *range(1, 15)]
    for ident in choices:
        if ident not in taken:
            ids[ext.uri] = ident
            return ident
    raise NegotiationError("no free RTP header extension id left")
