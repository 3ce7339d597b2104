"""Every parser of untrusted input as a fuzz target: bytes in, documented errors only.

A target's `run` turns one input into a call of the parser and returns True when the
parser accepted it (then any round trip it has was checked too). It lets through only
what the parser documents; anything else (another exception, a broken round trip, an
error counter that moved) propagates and is a finding. Seeds are real inputs: the frames
twilio-video 2.36.0 sent from Chromium 156 (`corpus/`), its SDP offer, and packets built
by our own and aiortc's encoders.
"""

from __future__ import annotations

import asyncio
import atexit
import base64
import functools
import hashlib
import hmac
import json
import random
import struct
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl

import pylibsrtp
from aioice import stun

from parlour.api.forms import Params
from parlour.domain import errors
from parlour.domain.rules import TrackRef, evaluate, parse_rules, rules_to_json
from parlour.media import fastpath, rtcp, rtp, sdp, simulcast
from parlour.media.codecs import NegotiationError
from parlour.media.dtls import (
    _SRTP_PROFILES,
    SRTP_AES128_CM_SHA1_80,
    Certificate,
    DtlsSrtpTransport,
    _datagrams,
    _srtp_session,
    parse_fingerprint,
)
from parlour.media.negotiation import LocalTransport, PeerNegotiator
from parlour.media.rewrite import ExtensionRewriter, RtpRewriter, TransportCc
from parlour.media.sdp import SdpError
from parlour.media.udp import MediaSocket, _TcpConnection
from parlour.protocol import tokens
from parlour.protocol.signaling import Sender, SignalingProtocolError, encode_message
from parlour.protocol.signaling import parse_message as parse_signaling

__all__ = ["TARGETS", "Target", "by_name"]

CORPUS = Path(__file__).parent / "corpus"
OFFER = (
    (Path(__file__).parents[1] / "unit/media/data/chromium156-twilio-video-2.36.0-offer.sdp")
    .read_text()
    .replace("\n", "\r\n")
)
T = TypeVar("T")


@dataclass(frozen=True)
class Target:
    """One parser: its seeds, how to call it, and how many inputs a campaign gives it."""

    name: str
    run: Callable[[bytes], bool]
    seeds: Callable[[], list[bytes]]
    json_keys: Sequence[str] | None = None  # JSON-aware mutations with these member names
    weight: float = 1.0  # share of FUZZ_EXAMPLES in a campaign (slow targets get less)
    max_size: int = 1 << 16
    # Findings not fixed yet, each pinned by a strict xfail in test_regressions.py: the
    # in-suite property tolerates them, a campaign counts them as failures ("known").
    known: tuple[type[BaseException], ...] = ()


def text(data: bytes) -> str:
    """Bytes as the str a server would see: invalid UTF-8 replaced, not rejected."""
    return data.decode("utf-8", "replace")


# -- the event loop the asynchronous adapters (STUN, DTLS) run on ------------------------------


@functools.cache
def _loop() -> asyncio.AbstractEventLoop:
    loop = asyncio.new_event_loop()
    atexit.register(loop.close)
    return loop


def _on_loop(coro: Coroutine[Any, Any, T]) -> T:
    return _loop().run_until_complete(coro)


# -- TCMP/RSP frames ----------------------------------------------------------------------------


@functools.cache
def _frames() -> list[tuple[Sender, bytes]]:
    entries = json.loads((CORPUS / "chromium156-twilio-video-2.36.0-frames.json").read_text())
    return [(e["sender"], json.dumps(e["frame"]).encode()) for e in entries]


def _frame_keys() -> list[str]:
    keys: set[str] = set()
    for _, raw in _frames():
        stack: list[Any] = [json.loads(raw)]
        while stack:
            item = stack.pop()
            if isinstance(item, dict):
                keys.update(item)
                stack.extend(item.values())
            elif isinstance(item, list):
                stack.extend(item)
    return sorted(keys)


def _signaling(sender: Sender) -> Callable[[bytes], bool]:
    def run(data: bytes) -> bool:
        raw: str | bytes = data if data[:1] != b" " else text(data)
        try:
            parsed = parse_signaling(raw, sender=sender)
        except SignalingProtocolError:
            return False
        again = parse_signaling(encode_message(parsed), sender=sender)
        assert again == parsed, (again, parsed)
        return True

    return run


def _frame_seeds() -> list[bytes]:
    return [raw for _, raw in _frames()]


# -- SDP and negotiation ------------------------------------------------------------------------


def _sdp_seeds() -> list[bytes]:
    minimal = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\n"
    return [OFFER.encode(), minimal.encode()]


def run_sdp(data: bytes) -> bool:
    try:
        parsed = sdp.parse(text(data))
    except SdpError:
        return False
    again = str(parsed)
    assert sdp.parse(again) == parsed
    assert str(sdp.parse(again)) == again
    return True


def run_negotiation(data: bytes) -> bool:
    """A fresh connection's first offer, then (if answered) the real offer renegotiated."""
    rng = random.Random(7)
    local = LocalTransport.generate(("sha-256", "AB:" * 31 + "AB"), "127.0.0.1", 40000, rng=rng)
    negotiator = PeerNegotiator(local, rng=rng)
    offer = text(data)
    try:
        answer = negotiator.apply_client_offer(offer, revision=1)
    except (SdpError, NegotiationError):
        return False
    assert answer is not None
    sdp.parse(answer.sdp)
    try:
        negotiator.apply_client_offer(OFFER if offer != OFFER else offer + " ", revision=2)
    except (SdpError, NegotiationError):
        pass
    return True


# -- RTP, RTCP, the rewriter --------------------------------------------------------------------

_TCC = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"
_PUB = {rtp.MID_URI: 4, rtp.AUDIO_LEVEL_URI: 1, _TCC: 3}
_SUB = {rtp.MID_URI: 9, rtp.AUDIO_LEVEL_URI: 1, _TCC: 5}


def _packet(
    ext: bytes = b"", payload: bytes = b"\x90\x80\x10\x00\x9d\x01\x2a", pt: int = 96
) -> bytes:
    header = struct.pack("!BBHII", 0x90 if ext else 0x80, 0x80 | pt, 4660, 90000, 0x11223344)
    return header + ext + payload


def _rtp_seeds() -> list[bytes]:
    one = rtp.pack_extensions([(4, b"0"), (1, b"\x85"), (3, b"\x00\x07")])
    two = rtp.pack_extensions([(4, b"0"), (20, b"x" * 20)])
    h264 = b"\x7c\x85\x88\x84"  # FU-A start of an IDR
    rtx = rtp.wrap_rtx(_packet(one), ssrc=5, payload_type=97, seq=1)
    return [_packet(), _packet(one), _packet(two), _packet(payload=h264, pt=102), rtx]


def run_rtp(data: bytes) -> bool:
    rtp.seq(data.ljust(12, b"\0"))
    rtp.timestamp(data.ljust(12, b"\0"))
    rtp.ssrc(data.ljust(12, b"\0"))
    for codec in ("VP8", "H264", "opus"):
        assert isinstance(rtp.is_keyframe(codec, data), bool)
    try:
        start, end = rtp.payload_bounds(data)
        assert rtp.header_length(data) == start <= end <= len(data)
        for codec in ("VP8", "H264"):
            assert isinstance(rtp.is_keyframe(codec, data, start), bool)
        assert simulcast.payload_offset(data) == start
        descriptor = simulcast.parse_vp8_descriptor(data, start)
        assert descriptor is None or start + descriptor.size <= len(data)
        size = simulcast.vp8_keyframe_size(data, start)
        assert size is None or all(0 <= n < 0x4000 for n in size)
        inner = rtp.unwrap_rtx(data, ssrc=1, payload_type=96)
        if inner is not None:
            rtp.wrap_rtx(inner, ssrc=2, payload_type=97, seq=3)
    except rtp.RtpError:
        return False
    return True


def run_rewrite(data: bytes) -> bool:
    rewriter = RtpRewriter(0xABCD, 111, extensions=ExtensionRewriter(_PUB, _SUB, mid="1"))
    try:
        out = rewriter.rewrite(data)
    except rtp.RtpError:
        return False
    assert rtp.seq(out) == rtp.seq(data) and rtp.ssrc(out) == 0xABCD
    rtp.payload_bounds(out)  # what we send is valid RTP
    return True


def run_rewrite_fastpath(data: bytes) -> bool:
    """Differential: the C lane (`parlour.media._fastpath`, when built) gives the bytes and
    state the Python rewriter gives, with and without transport-wide CC stamping."""
    native = fastpath.native
    accepted = False
    for stamped in (False, True):
        rewriter = RtpRewriter(0xABCD, 111, extensions=ExtensionRewriter(_PUB, _SUB, mid="1"))
        if stamped:
            rewriter.transport_cc = TransportCc(5, lambda *sent: None, lambda: 0.0)
        state = rewriter._dump()
        try:
            expected: bytes | None = rewriter.rewrite(data)
        except rtp.RtpError:
            expected = None
        accepted = accepted or expected is not None
        if native is None:
            continue
        twin = ExtensionRewriter(_PUB, _SUB, mid="1")
        lane = native.Lane(native.Egress(), b"\x6f" * 128, twin, native.Tcc(5) if stamped else None)
        lane.load(state)
        assert lane.rewrite(data) == expected
        assert lane.dump() == tuple(int(v) if isinstance(v, bool) else v for v in rewriter._dump())
    return accepted


def _rtcp_seeds() -> list[bytes]:
    block = rtcp.ReportBlock(1, 2, 3, 4, 5, 6, 7)
    compound = rtcp.sender_report(1, 2**40, 3, 4, 5, [block]) + rtcp.pli(1, 2)
    return [
        compound,
        rtcp.receiver_report(1, [block, block]) + rtcp.remb(1, 300000, [2, 3]),
        rtcp.nack(1, 2, [5, 6, 9, 40]) + rtcp.bye([1], "gone"),
        rtcp.transport_feedback(1, 2, 65530, 3, [64_000, None, 64_250, 80_000, 70_000, None]),
    ]


def run_rtcp(data: bytes) -> bool:
    packets = rtcp.parse_rtcp(data)  # documented: never raises
    for packet in packets:
        again = rtcp.parse_rtcp(bytes(packet))
        assert len(again) == 1 and type(again[0]) is type(packet)
    return bool(packets)


# -- STUN (the ICE-lite responder) --------------------------------------------------------------

_UFRAG, _PWD = "srvA", "server-password-aaaaaaaa"


class _Handler:
    def ice_connected(self, addr: Any) -> None:
        pass

    def datagram_received(self, data: bytes, addr: Any) -> None:
        pass


class _Transport(asyncio.DatagramTransport):
    def sendto(self, data: Any, addr: Any = None) -> None:
        stun.parse_message(bytes(data))  # every answer we send is valid STUN


@functools.cache
def _media_socket() -> MediaSocket:
    sock = MediaSocket()

    async def connect() -> None:
        sock.connection_made(_Transport())

    _on_loop(connect())
    sock.register(_UFRAG, _PWD, _Handler())
    return sock


def _stun_seeds() -> list[bytes]:
    out = []
    for extra in ({"USE-CANDIDATE": None}, {"ICE-CONTROLLED": 1}, {}):
        request = stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.REQUEST)
        request.attributes["USERNAME"] = f"{_UFRAG}:cli"
        request.attributes["PRIORITY"] = 1853817087
        request.attributes["ICE-CONTROLLING"] = 1
        request.attributes.update(extra)
        request.add_message_integrity(_PWD.encode())
        out.append(bytes(request))
    indication = stun.Message(
        message_method=stun.Method.BINDING, message_class=stun.Class.INDICATION
    )
    indication.add_fingerprint()
    return [*out, bytes(indication)]


def run_stun(data: bytes) -> bool:
    sock = _media_socket()
    before = sock.stun_errors
    sock.datagram_received(data, ("192.0.2.10", 40000))
    assert sock.handler_errors == 0, "an exception escaped the STUN responder"
    return sock.stun_errors == before and data[:1] in (b"\x00", b"\x01")


class _TcpTransport(asyncio.Transport):
    """The ICE-TCP connection's socket: every frame written back must hold valid STUN."""

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("192.0.2.20", 50000) if name == "peername" else default

    def write(self, data: Any) -> None:
        data = bytes(data)
        assert int.from_bytes(data[:2], "big") == len(data) - 2, "a frame of the wrong length"
        stun.parse_message(data[2:])

    def is_closing(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return 0

    def close(self) -> None:
        pass


def _ice_tcp_seeds() -> list[bytes]:
    frames = [struct.pack("!H", len(m)) + m for m in _stun_seeds()]
    return [b"".join(frames), frames[0], frames[1][:9]]


def run_ice_tcp(data: bytes) -> bool:
    """A byte stream on an ICE-TCP connection (RFC 4571), delivered in two pieces."""
    sock = _media_socket()

    async def feed() -> bool:
        connection = _TcpConnection(sock)
        connection.connection_made(_TcpTransport())
        try:
            cut = len(data) // 3
            connection.data_received(data[:cut])
            connection.data_received(data[cut:])
            return not connection._buffer  # every byte was a whole frame
        finally:
            connection.connection_lost(None)

    accepted = _on_loop(feed())
    assert sock.handler_errors == 0, "an exception escaped the ICE-TCP framing"
    assert not sock._tcp, "a closed connection stayed registered"
    return accepted


# -- DTLS: record framing, the handshake's input, SRTP ------------------------------------------


@functools.cache
def _certificates() -> tuple[Certificate, Certificate]:
    return Certificate.generate(), Certificate.generate()


def _transport(is_server: bool, send: Callable[[bytes], object]) -> DtlsSrtpTransport:
    ours, theirs = _certificates()
    return DtlsSrtpTransport(
        ours,
        is_server=is_server,
        remote_fingerprints=[parse_fingerprint(theirs.fingerprint())],
        send=send,
        on_rtp=lambda p: None,
        on_rtcp=lambda p: None,
        on_data=lambda d: None,
        on_state=lambda s: None,
    )


@functools.cache
def _dtls_flights() -> list[bytes]:
    """A real ClientHello, and the server's answer to it (ServerHello … ServerHelloDone)."""
    hello: list[bytes] = []
    answer: list[bytes] = []

    async def run() -> None:
        client, server = _transport(False, hello.append), _transport(True, answer.append)
        client.start()
        server.start()
        for datagram in hello:
            server.datagram_received(datagram)
        client.close()
        server.close()

    _on_loop(run())
    return [*hello, *answer]


def run_dtls_records(data: bytes) -> bool:
    """`_datagrams` packs the records of a flight: nothing lost, reordered or oversized."""
    for mtu in (1, 200, 1200):
        chunks = list(_datagrams(data, mtu))
        assert b"".join(chunks) == data
        assert all(chunks) or data == b""
    return True


def run_dtls(data: bytes) -> bool:
    """One datagram into a fresh transport of each role that is mid-handshake."""

    async def run() -> bool:
        accepted = False
        for is_server in (True, False):
            transport = _transport(is_server, lambda d: None)
            transport.start()
            transport.datagram_received(data)
            accepted |= transport.state == "connecting"
            transport.close()
        return accepted

    return _on_loop(run())


@functools.cache
def _srtp_key() -> bytes:
    profile = _SRTP_PROFILES[SRTP_AES128_CM_SHA1_80]
    return bytes(range(profile.key_length + profile.salt_length))


def _srtp_seeds() -> list[bytes]:
    profile = _SRTP_PROFILES[SRTP_AES128_CM_SHA1_80]
    tx = _srtp_session(_srtp_key(), profile, pylibsrtp.Policy.SSRC_ANY_OUTBOUND)
    out = [tx.protect(p) for p in _rtp_seeds()[:3]] + [tx.protect_rtcp(_rtcp_seeds()[0])]
    return [p for p in out if p is not None]


def run_srtp(data: bytes) -> bool:
    """SRTP/SRTCP into a connected transport (its receive session set as a handshake would)."""
    delivered: list[bytes] = []
    transport = _transport(True, lambda d: None)
    profile = _SRTP_PROFILES[SRTP_AES128_CM_SHA1_80]
    transport._rx = _srtp_session(_srtp_key(), profile, pylibsrtp.Policy.SSRC_ANY_INBOUND)
    transport._on_rtp = transport._on_rtcp = delivered.append
    transport.datagram_received(data)
    return bool(delivered)


def run_fingerprint(data: bytes) -> bool:
    try:
        algorithm, digest = parse_fingerprint(text(data))
    except ValueError:
        return False
    assert isinstance(algorithm, str) and isinstance(digest, str)
    return True


# -- Access Tokens ------------------------------------------------------------------------------

_ACCOUNT, _KEY, _SECRET, _NOW = "AC" + "a" * 32, "SK" + "b" * 32, "s3cret", 1_700_000_000


def _token_seeds() -> list[bytes]:
    minted = tokens.encode_token(
        account_sid=_ACCOUNT, key_sid=_KEY, secret=_SECRET, identity="alice", now=_NOW,
        room="demo", region="gll",
    )  # fmt: skip
    transcript = json.loads(_frames()[0][1])["body"]["token"]
    return [minted.encode(), transcript.encode()]


def run_token(data: bytes) -> bool:
    token = text(data)
    try:
        tokens.decode_unverified(token)
        tokens.verify_token(token, secret=_SECRET, now=_NOW, account_sid=_ACCOUNT)
    except tokens.TokenError:
        return False
    return True


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def run_signed_claims(data: bytes) -> bool:
    """Mutated ``[header, claims]`` JSON, correctly signed: the checks after the signature."""
    try:
        header, claims = (json.dumps(part).encode() for part in json.loads(data))
    except (ValueError, TypeError, RecursionError):
        header, _, claims = data.partition(b"\n")
    signing_input = f"{_b64(header)}.{_b64(claims)}"
    signature = hmac.new(_SECRET.encode(), signing_input.encode(), hashlib.sha256).digest()
    return run_token(f"{signing_input}.{_b64(signature)}".encode())


_CLAIM_KEYS = ("iss", "sub", "exp", "nbf", "grants", "identity", "video", "room", "alg", "cty")


def _claims_seeds() -> list[bytes]:
    token = _token_seeds()[0].decode()
    parts = [json.loads(base64.urlsafe_b64decode(p + "==")) for p in token.split(".")[:2]]
    return [json.dumps(parts).encode()]


# -- REST forms and rules -----------------------------------------------------------------------


def _form_seeds() -> list[bytes]:
    return [
        b"UniqueName=demo&Type=group&MaxParticipants=50&RecordParticipantsOnConnect=true"
        b"&StatusCallback=https%3A%2F%2Fexample.com%2Fcb&EmptyRoomTimeout=5",
        b"Status=completed&PageSize=20&Page=2&PageToken=PA12",
        b"DateCreatedAfter=2024-01-31&DateCreatedBefore=2024-02-01T10%3A00%3A00Z"
        b"&GroupingSid=RM1&GroupingSid=PA2&SourceSid=MT1",
        b"Rules=%5B%7B%22type%22%3A%22include%22%2C%22all%22%3Atrue%7D%5D&Publish=true",
    ]


def run_form(data: bytes) -> bool:
    try:
        body = data.decode("utf-8")
    except UnicodeDecodeError:
        return False  # body_params answers 20001
    params = Params(parse_qsl(body, keep_blank_values=True))
    for name in {key for key, _ in params.pairs}:
        assert params.text(name) is not None and params.values(name)
        for parse in (params.flag, params.integer, params.date):
            try:
                parse(name)
            except errors.InvalidParameterError:
                pass
    return True


_TRACKS = [
    TrackRef("MT1", "mic", "audio", "PA1", "alice"),
    TrackRef("MT2", "cam", "video", "PA2", "bob"),
    TrackRef("MT3", "chat", "data", "PA1", "alice"),
]
_RULE_KEYS = ("type", "all", "kind", "publisher", "track", "priority", "rules")


def _rules_seeds() -> list[bytes]:
    return [
        b'[{"type":"include","all":true}]',
        b'[{"type":"include","kind":"video"},{"type":"exclude","publisher":"alice"}]',
        b'{"rules":[{"type":"include","track":"mic","priority":"high"}]}',
    ]


def run_rules(data: bytes) -> bool:
    accepted = False
    for kind, error in (
        ("subscribe", errors.SubscribeRulesError),
        ("recording", errors.RecordingRulesError),
    ):
        try:
            rules = parse_rules(text(data), kind=kind)  # type: ignore[arg-type]
        except error:
            continue
        accepted = True
        assert evaluate(rules, _TRACKS) <= {t.sid for t in _TRACKS}
        echoed = json.dumps(rules_to_json(rules, kind=kind))  # type: ignore[arg-type]
        assert parse_rules(echoed, kind=kind) == rules  # type: ignore[arg-type]
    return accepted


TARGETS: tuple[Target, ...] = (
    Target("signaling-client", _signaling("client"), _frame_seeds, _frame_keys()),
    Target("signaling-server", _signaling("server"), _frame_seeds, _frame_keys()),
    Target("sdp", run_sdp, _sdp_seeds),
    Target("negotiation", run_negotiation, _sdp_seeds, weight=0.5),
    Target("rtp", run_rtp, _rtp_seeds, max_size=1500),
    Target("rewrite", run_rewrite, _rtp_seeds, max_size=1500),
    Target("rewrite-fastpath", run_rewrite_fastpath, _rtp_seeds, max_size=1500),
    Target("rtcp", run_rtcp, _rtcp_seeds, max_size=1500),
    Target("stun", run_stun, _stun_seeds, max_size=1500),
    Target("ice-tcp", run_ice_tcp, _ice_tcp_seeds, max_size=4000),
    Target("dtls-records", run_dtls_records, _dtls_flights, max_size=4000),
    Target("dtls-handshake", run_dtls, _dtls_flights, weight=0.5, max_size=1500),
    Target("srtp", run_srtp, _srtp_seeds, weight=0.5, max_size=1500),
    Target("fingerprint", run_fingerprint, lambda: [b"sha-256 " + b"AB:" * 31 + b"AB"]),
    Target("token", run_token, _token_seeds),
    Target("token-claims", run_signed_claims, _claims_seeds, _CLAIM_KEYS),
    Target("rest-form", run_form, _form_seeds),
    Target("rules", run_rules, _rules_seeds, _RULE_KEYS),
)


def by_name(name: str) -> Target:
    return next(t for t in TARGETS if t.name == name)
