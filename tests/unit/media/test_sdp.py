"""SDP model: round trips of real Chrome and aiortc descriptions, typed fields, errors, fuzz."""

from __future__ import annotations

import collections
import dataclasses

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection
from aiortc import sdp as aiortc_sdp
from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parlour.media import sdp
from parlour.media.sdp import (
    Attribute,
    Candidate,
    Codec,
    Connection,
    Extmap,
    Fingerprint,
    Group,
    MediaSection,
    Msid,
    MsidSemantic,
    Origin,
    SdpError,
    SessionDescription,
    SsrcAttribute,
    SsrcGroup,
)
from tests.unit.media.chrome_sdp import AUDIO_CODEC_LINES, transport_lines, video_codec_lines

FINGERPRINT = (
    "06:7B:4B:9B:DD:29:85:6F:D9:74:B8:AE:B5:C0:83:D8:"
    "A9:1C:0D:DD:80:D7:E2:80:50:C9:48:9B:C3:4D:D2:6C"
)
VIDEO_FORMATS = (
    "96 97 102 103 104 107 108 109 114 115 116 117 39 40 45 46 98 99 100 101 118 119 120"
)

TRANSPORT = transport_lines(FINGERPRINT)
DATA_TRANSPORT = transport_lines(FINGERPRINT, rtcp=False)
VIDEO_CODECS = video_codec_lines(96, 102, 104, 108, 114, 116, 39, 45, 98, 100, 118, 120)

# The first offer of twilio-video 2.36.0 in headless Chromium 156 (audio, video and data
# tracks published at connect), verbatim from the `connect` message of the recorded
# transcript (shared/reference/transcripts/chromium156-twilio-video-2.36.0-connect.json),
# its transport and codec lines written out by `tests.unit.media.chrome_sdp`.
CHROME_OFFER = f"""\
v=0
o=- 2419188247673677525 2 IN IP4 127.0.0.1
s=-
t=0 0
a=group:BUNDLE 0 1 2
a=extmap-allow-mixed
a=msid-semantic: WMS
m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126
{TRANSPORT}a=mid:0
a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level
a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time
a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01
a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid
a=sendrecv
a=msid:- 1a507dcb-d7a0-4e1f-89bd-0e5c8ab32426
a=rtcp-mux
a=rtcp-rsize
a=rtcp-xr:rcvr-rtt=all
{AUDIO_CODEC_LINES}a=ssrc:3364439724 cname:pCGsX/kv/c0Vw8Qu
a=ssrc:3364439724 msid:- 1a507dcb-d7a0-4e1f-89bd-0e5c8ab32426
m=video 9 UDP/TLS/RTP/SAVPF {VIDEO_FORMATS}
{TRANSPORT}a=mid:1
a=extmap:14 urn:ietf:params:rtp-hdrext:toffset
a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time
a=extmap:13 urn:3gpp:video-orientation
a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01
a=extmap:5 http://www.webrtc.org/experiments/rtp-hdrext/playout-delay
a=extmap:6 http://www.webrtc.org/experiments/rtp-hdrext/video-content-type
a=extmap:7 http://www.webrtc.org/experiments/rtp-hdrext/video-timing
a=extmap:8 http://www.webrtc.org/experiments/rtp-hdrext/color-space
a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid
a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id
a=extmap:11 urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id
a=sendrecv
a=msid:- cb77128e-4663-4079-871f-b010eb87d9f2
a=rtcp-mux
a=rtcp-rsize
a=rtcp-xr:rcvr-rtt=all
{VIDEO_CODECS}a=ssrc-group:FID 1142849503 3162591883
a=ssrc:1142849503 cname:pCGsX/kv/c0Vw8Qu
a=ssrc:1142849503 msid:- cb77128e-4663-4079-871f-b010eb87d9f2
a=ssrc:3162591883 cname:pCGsX/kv/c0Vw8Qu
a=ssrc:3162591883 msid:- cb77128e-4663-4079-871f-b010eb87d9f2
m=application 9 UDP/DTLS/SCTP webrtc-datachannel
{DATA_TRANSPORT}a=mid:2
a=sctp-port:5000
a=max-message-size:262144
""".replace("\n", "\r\n")


def line_multiset(text: str) -> collections.Counter[str]:
    return collections.Counter(line for line in text.split("\r\n") if line)


@pytest.fixture
def no_host_addresses(monkeypatch: pytest.MonkeyPatch) -> None:
    """aiortc gathers no candidates (and so never starts ICE): no network in unit tests."""
    import aioice.ice

    monkeypatch.setattr(aioice.ice, "get_host_addresses", lambda use_ipv4, use_ipv6: [])


# --------------------------------------------------------------------------------------------
# Real descriptions


def test_chrome_offer_round_trips_byte_for_byte() -> None:
    parsed = sdp.parse(CHROME_OFFER)
    assert str(parsed) == CHROME_OFFER
    assert parsed.serialize() == CHROME_OFFER
    assert sdp.parse(str(parsed)) == parsed


def test_chrome_offer_session_level() -> None:
    parsed = sdp.parse(CHROME_OFFER)
    assert parsed.origin == Origin("-", 2419188247673677525, 2, "IN", "IP4", "127.0.0.1")
    assert parsed.name == "-"
    assert parsed.timing == "0 0"
    assert parsed.groups == (Group("BUNDLE", ("0", "1", "2")),)
    assert parsed.group("BUNDLE") == Group("BUNDLE", ("0", "1", "2"))
    assert parsed.group("LS") is None
    assert parsed.extmap_allow_mixed
    assert parsed.msid_semantic == MsidSemantic("WMS", ())
    assert not parsed.ice_lite
    assert parsed.ice_ufrag is None and parsed.fingerprints == ()
    assert [m.kind for m in parsed.media] == ["audio", "video", "application"]
    assert [m.mid for m in parsed.media] == ["0", "1", "2"]
    assert parsed.section("1") is parsed.media[1]
    assert parsed.section("9") is None


def test_chrome_offer_audio_section() -> None:
    audio = sdp.parse(CHROME_OFFER).media[0]
    assert (audio.port, audio.proto) == (9, "UDP/TLS/RTP/SAVPF")
    assert audio.formats == ("111", "63", "9", "0", "8", "13", "110", "126")
    assert audio.connection == Connection("IN", "IP4", "0.0.0.0")
    assert audio.rtcp == "9 IN IP4 0.0.0.0"
    assert (audio.ice_ufrag, audio.ice_pwd) == ("8Ia2", "MAMoeBGI1SkF3V0hzWeWgpyb")
    assert audio.ice_options == "trickle"
    assert audio.fingerprints == (Fingerprint("sha-256", FINGERPRINT),)
    assert audio.setup == "actpass"
    assert audio.direction == "sendrecv" == audio.effective_direction
    assert audio.msids == (Msid("-", "1a507dcb-d7a0-4e1f-89bd-0e5c8ab32426"),)
    assert audio.msid == audio.msids[0]
    assert audio.rtcp_mux and audio.rtcp_rsize
    assert audio.attributes == (Attribute("rtcp-xr", "rcvr-rtt=all"),)
    assert audio.extmaps[0] == Extmap(1, "urn:ietf:params:rtp-hdrext:ssrc-audio-level")
    assert [e.id for e in audio.extmaps] == [1, 2, 3, 4]
    opus = audio.codec(111)
    assert opus == Codec(
        111,
        "opus",
        48000,
        2,
        (("minptime", "10"), ("useinbandfec", "1")),
        ("transport-cc",),
    )
    assert opus.parameter("USEINBANDFEC") == "1" and opus.parameter("stereo") is None
    red = audio.codec(63)
    assert red is not None and red.parameters == (("111/111", None),)
    assert red.fmtp == "63 111/111"
    assert audio.codec(0) == Codec(0, "PCMU", 8000)
    assert audio.codec(42) is None
    assert audio.ssrc_ids == (3364439724,)
    assert audio.ssrc_attribute(3364439724, "cname") == "pCGsX/kv/c0Vw8Qu"
    assert audio.ssrc_attribute(3364439724, "msid") == "- 1a507dcb-d7a0-4e1f-89bd-0e5c8ab32426"
    assert audio.ssrc_attribute(3364439724, "label") is None


def test_chrome_offer_video_section() -> None:
    video = sdp.parse(CHROME_OFFER).media[1]
    assert len(video.codecs) == len(video.formats) == 23
    vp8, rtx = video.codec(96), video.codec(97)
    assert vp8 is not None and rtx is not None
    assert vp8.feedback == ("goog-remb", "transport-cc", "ccm fir", "nack", "nack pli")
    assert rtx.is_rtx and rtx.apt == 96 and not vp8.is_rtx and vp8.apt is None
    assert vp8.mime_type == "vp8"
    h264 = video.codec(108)
    assert h264 is not None and h264.parameter("profile-level-id") == "42e01f"
    assert video.ssrc_groups == (SsrcGroup("FID", (1142849503, 3162591883)),)
    assert video.ssrc_ids == (1142849503, 3162591883)
    assert video.extmaps[-1] == Extmap(11, "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id")


def test_chrome_offer_application_section() -> None:
    data = sdp.parse(CHROME_OFFER).media[2]
    assert (data.kind, data.proto, data.formats) == (
        "application",
        "UDP/DTLS/SCTP",
        ("webrtc-datachannel",),
    )
    assert (data.sctp_port, data.max_message_size) == (5000, 262144)
    assert data.direction is None and data.effective_direction == "sendrecv"
    assert data.codecs == () and data.msid is None


async def aiortc_descriptions() -> tuple[str, str]:
    """An aiortc offer (audio, video, data) and aiortc's answer to it."""
    offerer = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    answerer = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        offerer.addTrack(AudioStreamTrack())
        offerer.addTrack(VideoStreamTrack())
        offerer.createDataChannel("chat")
        await offerer.setLocalDescription(await offerer.createOffer())
        await answerer.setRemoteDescription(offerer.localDescription)
        await answerer.setLocalDescription(await answerer.createAnswer())
        return offerer.localDescription.sdp, answerer.localDescription.sdp
    finally:
        await offerer.close()
        await answerer.close()


@pytest.mark.usefixtures("no_host_addresses")
async def test_aiortc_descriptions_round_trip() -> None:
    for text in await aiortc_descriptions():
        parsed = sdp.parse(text)
        again = str(parsed)
        assert sdp.parse(again) == parsed
        assert str(sdp.parse(again)) == again
        # Same lines, except msid-semantic, which is written the way Chrome writes it.
        assert line_multiset(again) - line_multiset(text) == collections.Counter(
            {"a=msid-semantic: WMS *": 1}
        )
        assert line_multiset(text) - line_multiset(again) == collections.Counter(
            {"a=msid-semantic:WMS *": 1}
        )
        # aiortc reads what we write.
        theirs = aiortc_sdp.SessionDescription.parse(again)
        assert [m.rtp.muxId for m in theirs.media] == [m.mid for m in parsed.media]
        assert theirs.webrtc_track_id(theirs.media[0]) is not None


@pytest.mark.usefixtures("no_host_addresses")
async def test_aiortc_offer_typed_fields() -> None:
    offer, answer = await aiortc_descriptions()
    parsed = sdp.parse(offer)
    assert parsed.msid_semantic == MsidSemantic("WMS", ("*",))
    audio, video, data = parsed.media
    assert audio.codec(96) == Codec(96, "opus", 48000, 2)
    assert audio.end_of_candidates and audio.candidates == ()
    assert [f.algorithm for f in audio.fingerprints] == ["sha-256", "sha-384", "sha-512"]
    assert video.ssrc_groups[0].semantics == "FID"
    assert data.sctp_port == 5000
    assert {m.setup for m in sdp.parse(answer).media} == {"active"}


# --------------------------------------------------------------------------------------------
# Other stacks' syntax: kept, typed where it matters, stable


FIREFOX_LIKE = "\r\n".join(
    [
        "v=0",
        "o=mozilla...THIS_IS_SDPARTA-99.0 4976011306364398520 0 IN IP4 0.0.0.0",
        "s=-",
        "b=AS:2000",
        "t=0 0",
        "a=fingerprint:sha-256 AA:BB",
        "a=group:BUNDLE 0 1",
        "a=ice-options:trickle",
        "a=msid-semantic:WMS *",
        "m=audio 9 UDP/TLS/RTP/SAVPF 109 101",
        "c=IN IP4 0.0.0.0",
        "b=TIAS:64000",
        "a=candidate:0 1 UDP 2122252543 192.0.2.1 49152 typ host",
        "a=candidate:1 1 TCP 2105524479 192.0.2.1 9 typ host tcptype active",
        "a=candidate:2 1 udp 1686052607 198.51.100.7 3478 typ srflx raddr 192.0.2.1 "
        "rport 49152 generation 0 network-id 1",
        "a=end-of-candidates",
        "a=sendrecv",
        "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level",
        "a=extmap:2/recvonly urn:ietf:params:rtp-hdrext:csrc-audio-level",
        "a=extmap:3 urn:ietf:params:rtp-hdrext:sdes:mid",
        "a=fmtp:109 maxplaybackrate=48000;stereo=1; useinbandfec=1",
        "a=fmtp:101 0-15",
        "a=ice-pwd:2f6a3ff6b6e9b3b7a4d8c2f1e0a9b8c7",
        "a=ice-ufrag:70ba8c3b",
        "a=mid:0",
        "a=msid:{8c1e-stream} {5f2a-track}",
        "a=rtcp-fb:* nack",
        "a=rtcp-mux",
        "a=rtpmap:109 opus/48000/2",
        "a=rtpmap:101 telephone-event/8000",
        "a=setup:actpass",
        "a=ssrc:3414287418 cname:{a1b2}",
        "m=video 0 UDP/TLS/RTP/SAVPF 120",
        "c=IN IP4 0.0.0.0",
        "a=bundle-only",
        "a=recvonly",
        "a=mid:1",
        "a=rid:h send",
        "a=simulcast:send h;l",
        "a=rtpmap:120 VP8/90000",
        "a=rtcp-fb:120 nack  pli",
        "",
    ]
)


def test_other_syntax_is_kept_and_stable() -> None:
    parsed = sdp.parse(FIREFOX_LIKE)
    assert sdp.parse(str(parsed)) == parsed
    assert line_multiset(str(parsed)) == line_multiset(
        FIREFOX_LIKE.replace("a=msid-semantic:WMS *", "a=msid-semantic: WMS *")
        .replace("stereo=1; useinbandfec=1", "stereo=1;useinbandfec=1")
        .replace("nack  pli", "nack pli")
    )
    assert parsed.extra_lines == ("b=AS:2000",)
    assert parsed.fingerprints == (Fingerprint("sha-256", "AA:BB"),)
    assert parsed.ice_options == "trickle"
    audio, video = parsed.media
    assert audio.extra_lines == ("b=TIAS:64000",)
    assert audio.msid == Msid("{8c1e-stream}", "{5f2a-track}")
    assert audio.extmaps[1] == Extmap(
        2, "urn:ietf:params:rtp-hdrext:csrc-audio-level", direction="recvonly"
    )
    host, tcp, srflx = audio.candidates
    assert host == Candidate("0", 1, "UDP", 2122252543, "192.0.2.1", 49152, "host")
    assert tcp.extensions == (("tcptype", "active"),)
    assert (srflx.related_address, srflx.related_port) == ("192.0.2.1", 49152)
    assert srflx.extensions == (("generation", "0"), ("network-id", "1"))
    opus = audio.codec(109)
    assert opus is not None
    assert opus.parameters == (("maxplaybackrate", "48000"), ("stereo", "1"), ("useinbandfec", "1"))
    assert audio.codec(101) == Codec(101, "telephone-event", 8000, None, (("0-15", None),))
    assert audio.attribute_values("rtcp-fb") == ("* nack",)
    assert audio.has_attribute("rtcp-fb") and not audio.has_attribute("rid")
    assert video.port == 0 and video.bundle_only and not video.is_rejected
    assert video.attribute_values("rid") == ("h send",)
    assert video.codecs[0].feedback == ("nack pli",)


def test_rejected_section_and_port_count() -> None:
    text = (
        "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
        "m=audio 0 UDP/TLS/RTP/SAVPF 0\r\na=mid:a\r\n"
        "m=video 9/2 RTP/AVP 31\r\n"
    )
    parsed = sdp.parse(text)
    assert parsed.media[0].is_rejected and not parsed.media[0].bundle_only
    assert parsed.media[1].port_count == 2 and parsed.media[1].mid is None
    assert str(parsed) == text


def test_lf_line_endings_and_blank_lines_are_accepted() -> None:
    parsed = sdp.parse(CHROME_OFFER.replace("\r\n", "\n").replace("\ns=-\n", "\n\ns=-\n"))
    assert str(parsed) == CHROME_OFFER


# --------------------------------------------------------------------------------------------
# Building descriptions


def test_build_and_serialize() -> None:
    section = MediaSection(
        kind="video",
        port=40000,
        proto="UDP/TLS/RTP/SAVPF",
        formats=("96", "97"),
        connection=Connection("IN", "IP4", "192.0.2.1"),
        candidates=(Candidate("1", 1, "udp", 2130706431, "192.0.2.1", 40000, "host"),),
        end_of_candidates=True,
        ice_ufrag="abcd",
        ice_pwd="0123456789012345678901",
        fingerprints=(Fingerprint("sha-256", "AB:CD"),),
        setup="passive",
        mid="1",
        extmaps=(Extmap(4, "urn:ietf:params:rtp-hdrext:sdes:mid"),),
        direction="sendonly",
        msids=(Msid("stream", "track"),),
        rtcp_mux=True,
        rtcp_rsize=True,
        codecs=(
            Codec(96, "VP8", 90000, feedback=("nack", "nack pli")),
            Codec(97, "rtx", 90000, parameters=(("apt", "96"),)),
        ),
        ssrc_groups=(SsrcGroup("FID", (1, 2)),),
        ssrcs=(SsrcAttribute(1, "cname", "c"), SsrcAttribute(2, "cname", "c")),
    )
    description = SessionDescription(
        origin=Origin("-", 7, 1),
        ice_lite=True,
        groups=(Group("BUNDLE", ("1",)),),
        msid_semantic=MsidSemantic("WMS", ("*",)),
        media=(section,),
    )
    text = str(description)
    assert text == (
        "v=0\r\n"
        "o=- 7 1 IN IP4 127.0.0.1\r\n"
        "s=-\r\n"
        "t=0 0\r\n"
        "a=ice-lite\r\n"
        "a=group:BUNDLE 1\r\n"
        "a=msid-semantic: WMS *\r\n"
        "m=video 40000 UDP/TLS/RTP/SAVPF 96 97\r\n"
        "c=IN IP4 192.0.2.1\r\n"
        "a=candidate:1 1 udp 2130706431 192.0.2.1 40000 typ host\r\n"
        "a=end-of-candidates\r\n"
        "a=ice-ufrag:abcd\r\n"
        "a=ice-pwd:0123456789012345678901\r\n"
        "a=fingerprint:sha-256 AB:CD\r\n"
        "a=setup:passive\r\n"
        "a=mid:1\r\n"
        "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\n"
        "a=sendonly\r\n"
        "a=msid:stream track\r\n"
        "a=rtcp-mux\r\n"
        "a=rtcp-rsize\r\n"
        "a=rtpmap:96 VP8/90000\r\n"
        "a=rtcp-fb:96 nack\r\n"
        "a=rtcp-fb:96 nack pli\r\n"
        "a=rtpmap:97 rtx/90000\r\n"
        "a=fmtp:97 apt=96\r\n"
        "a=ssrc-group:FID 1 2\r\n"
        "a=ssrc:1 cname:c\r\n"
        "a=ssrc:2 cname:c\r\n"
    )
    assert sdp.parse(text) == description
    assert str(section) == text[text.index("m=video") :]


def test_models_are_frozen() -> None:
    parsed = sdp.parse(CHROME_OFFER)
    with pytest.raises(dataclasses.FrozenInstanceError):
        parsed.name = "x"  # type: ignore[misc]
    changed = dataclasses.replace(parsed, media=parsed.media[:1])
    assert sdp.parse(str(changed)) == changed


# --------------------------------------------------------------------------------------------
# Errors

MINIMAL = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty SDP"),
        ("\r\n\r\n", "empty SDP"),
        ("o=- 1 1 IN IP4 0.0.0.0\r\n", "must start with v=0"),
        ("v=1\r\n", "unsupported SDP version"),
        ("v=0\r\nv=0\r\n", "duplicate v="),
        ("v=0\r\ns=-\r\nt=0 0\r\n", "missing o="),
        ("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\nt=0 0\r\n", "missing s="),
        ("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\n", "missing t="),
        ("v=0\r\no=- x 1 IN IP4 0.0.0.0\r\n", "session id must be a decimal number"),
        ("v=0\r\no=- 1 1 IN IP4\r\n", "o= must have 6 fields"),
        ("v=0\r\nhello\r\n", "line 2: not a <type>=<value> line"),
        ("v=0\r\nX=1\r\n", "not a <type>=<value> line"),
        (MINIMAL + "m=audio\r\n", "m= must be"),
        (MINIMAL + "m=audio x RTP/AVP 0\r\n", "port must be a decimal number"),
        (MINIMAL + "m=audio 70000 RTP/AVP 0\r\n", "port 70000 is out of range"),
        (MINIMAL + "m=audio 9 RTP/AVP opus\r\n", "payload type must be a decimal number"),
        (MINIMAL + "m=audio 9 RTP/AVP 128\r\n", "payload type 128 is out of range"),
        (MINIMAL + "m=audio 9 RTP/AVP 0\r\nv=0\r\n", "unexpected v= line in a media section"),
        (MINIMAL + "m=audio 9 RTP/AVP 0\r\na=mid:0\r\na=mid:1\r\n", "duplicate a=mid"),
        (MINIMAL + "m=audio 9 RTP/AVP 0\r\na=mid\r\n", "a=mid needs a value"),
        (MINIMAL + "m=audio 9 RTP/AVP 0\r\na=mid:a b\r\n", "a=mid must be one token"),
        (MINIMAL + "m=audio 9 RTP/AVP 0\r\na=rtcp-mux:1\r\n", "a=rtcp-mux takes no value"),
        (MINIMAL + "m=audio 9 RTP/AVP 0\r\na=sendrecv\r\na=recvonly\r\n", "duplicate direction"),
        (MINIMAL + "o=- 1 1 IN IP4 0.0.0.0\r\n", "line 5: duplicate o="),
        (MINIMAL + "c=IN IP4 0.0.0.0\r\nc=IN IP4 0.0.0.0\r\n", "line 6: duplicate c="),
        (MINIMAL + "m=audio 9 RTP/AVP 0\r\nc=IN IP4 ::\r\nc=IN IP4 ::\r\n", "duplicate c="),
        (MINIMAL + "x=1\r\n", "unexpected x= line at session level"),
        (MINIMAL + "a=ice-pwd:a\r\na=ice-pwd:b\r\n", "duplicate a=ice-pwd"),
        (MINIMAL + "a=setup:active\r\na=setup:active\r\n", "duplicate a=setup"),
        (MINIMAL + "m=audio 9 RTP/AVP 0\r\na=setup:server\r\n", "unknown a=setup value"),
        (MINIMAL + "m=audio 9 RTP/AVP 0\r\na=rtpmap:0 PCMU\r\n", "a=rtpmap must be"),
        (MINIMAL + "m=audio 9 RTP/AVP 0\r\na=rtpmap:0 PCMU/0\r\n", "clock rate 0 is out"),
        (
            MINIMAL + "m=audio 9 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:0 PCMA/8000\r\n",
            "duplicate a=rtpmap for 0",
        ),
        (
            MINIMAL + "m=audio 9 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=fmtp:0 a=1\r\n"
            "a=fmtp:0 b=2\r\n",
            "duplicate a=fmtp for 0",
        ),
        (
            MINIMAL + "m=audio 9 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=rtcp-fb:0 \r\n",
            "a=rtcp-fb needs a feedback type",
        ),
        (MINIMAL + "m=audio 9 RTP/AVP 0\r\na=ssrc:1\r\n", "a=ssrc must be"),
        (MINIMAL + "m=audio 9 RTP/AVP 0\r\na=ssrc:x cname:y\r\n", "ssrc must be a decimal"),
        (MINIMAL + "m=audio 9 RTP/AVP 0\r\na=ssrc:4294967296 cname:y\r\n", "out of range"),
        (MINIMAL + "m=audio 9 RTP/AVP 0\r\na=ssrc-group:FID 1 x\r\n", "ssrc must be"),
        (MINIMAL + "m=audio 9 RTP/AVP 0\r\na=extmap:0 urn:x\r\n", "extmap id 0 is out"),
        (MINIMAL + "m=audio 9 RTP/AVP 0\r\na=extmap:1\r\n", "a=extmap must be"),
        (MINIMAL + "m=audio 9 RTP/AVP 0\r\na=extmap:1/ urn:x\r\n", "empty direction"),
        (MINIMAL + "m=audio 9 RTP/AVP 0\r\na=msid:a b c\r\n", "a=msid must be"),
        (MINIMAL + "m=audio 9 RTP/AVP 0\r\na=candidate:1 1 udp 1 h 9 x host\r\n", "candidate"),
        (MINIMAL + "m=audio 9 RTP/AVP 0\r\na=candidate:1 1 udp 1 h 9 typ host x\r\n", "without"),
        (MINIMAL + "m=audio 9 RTP/AVP 0\r\na=candidate:1 0 udp 1 h 9 typ host\r\n", "component"),
        (MINIMAL + "m=audio 9 RTP/AVP 0\r\na=fingerprint:sha-256\r\n", "a=fingerprint must"),
        (MINIMAL + "m=audio 9 RTP/AVP 0\r\na=sctp-port:x\r\n", "sctp-port must be"),
        (MINIMAL + "m=audio 9 RTP/AVP 0\r\na=:x\r\n", "attribute without a name"),
        (MINIMAL + "m=audio 9 RTP/AVP 0\r\nc=IN IP4\r\n", "c= must be"),
        (MINIMAL + "a=ice-lite\r\na=ice-lite\r\n", "duplicate a=ice-lite"),
        (MINIMAL + "a=group:\r\n", "a=group needs a value"),
        (MINIMAL + "a=msid-semantic:WMS\r\na=msid-semantic:WMS\r\n", "duplicate"),
        (MINIMAL + "m=audio 9 RTP/AVP 0\r\nz=0\r\n", "unexpected z= line in a media section"),
        ("v=0\r\nm=audio 9 RTP/AVP 0\r\n", "missing o="),
        (MINIMAL + "a=ice-ufrag:1٢3\u00a0\r\n", "a=ice-ufrag must be one token"),
        (MINIMAL + "m=audio ١ RTP/AVP 0\r\n", "port must be a decimal number"),
    ],
)
def test_bad_input_raises_sdp_error(text: str, message: str) -> None:
    with pytest.raises(SdpError, match=message):
        sdp.parse(text)


def test_sdp_error_is_a_value_error() -> None:
    assert issubclass(SdpError, ValueError)
    with pytest.raises(SdpError, match="must be a str"):
        sdp.parse(b"v=0")  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# Fuzz: untrusted input raises SdpError or parses to a stable model

CHROME_LINES = CHROME_OFFER.split("\r\n")[:-1]
SDP_ALPHABET = st.sampled_from(list("0123456789 :/=;-*.abcikmorstuvzAIPRTSUWX\r\n\t\x00é٣"))


def check(text: str) -> None:
    try:
        parsed = sdp.parse(text)
    except SdpError:
        return
    again = str(parsed)
    assert sdp.parse(again) == parsed
    assert str(sdp.parse(again)) == again


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.text())
def test_fuzz_arbitrary_text(text: str) -> None:
    check(text)
    check("v=0\r\n" + text)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=SDP_ALPHABET, max_size=200))
def test_fuzz_sdp_like_text(text: str) -> None:
    check(MINIMAL + text)
    check(MINIMAL + "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=" + text)
    check(MINIMAL.replace("t=0 0", text) + "m=audio 9 RTP/AVP 0\r\n" + text)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=len(CHROME_LINES) - 1),
            st.sampled_from(["drop", "duplicate", "truncate", "insert", "swap"]),
            st.text(alphabet=SDP_ALPHABET, max_size=12),
        ),
        max_size=6,
    )
)
def test_fuzz_mutated_chrome_offer(mutations: list[tuple[int, str, str]]) -> None:
    lines = list(CHROME_LINES)
    for index, action, junk in mutations:
        index %= len(lines)
        if action == "drop" and len(lines) > 1:
            del lines[index]
        elif action == "duplicate":
            lines.insert(index, lines[index])
        elif action == "truncate":
            lines[index] = lines[index][: len(junk) + 2]
        elif action == "insert":
            lines[index] = lines[index] + junk
        else:
            lines[index], lines[-index - 1] = lines[-index - 1], lines[index]
    check("\r\n".join(lines) + "\r\n")


def test_extra_lines_are_kept_in_rfc_order() -> None:
    text = (
        "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nb=AS:1\r\ni=info\r\nt=0 0\r\nk=clear:x\r\nr=1\r\n"
    )
    text += "m=audio 9 RTP/AVP 0\r\nk=prompt\r\nb=AS:2\r\ni=media\r\n"
    parsed = sdp.parse(text)
    assert parsed.extra_lines == ("i=info", "b=AS:1", "r=1", "k=clear:x")
    assert parsed.media[0].extra_lines == ("i=media", "b=AS:2", "k=prompt")
    assert sdp.parse(str(parsed)) == parsed
