"""Server-side negotiation: answers to Chrome and aiortc offers, server offers, recycling, glare.

The aiortc tests run a real `RTCPeerConnection` as the client (no ICE/DTLS: it gathers no
candidates, so it never starts connecting) and check that it accepts what we write.
"""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import AsyncIterator, Iterable

import aioice.ice
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpTransceiver, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack

from parlour.media import sdp
from parlour.media.codecs import URI_TRANSPORT_CC
from parlour.media.negotiation import (
    URI_AUDIO_LEVEL,
    URI_MID,
    Answer,
    LocalTransport,
    NegotiationError,
    PeerNegotiator,
    PublishedTrackInfo,
    ServerCapabilities,
)
from parlour.media.sdp import Codec, Extmap, MediaSection, Msid, SessionDescription
from tests.unit.media.chrome_sdp import AUDIO_CODEC_LINES, transport_lines, video_codec_lines

FINGERPRINT = ("sha-256", ":".join(f"{i:02X}" for i in range(32)))
CLIENT_FP = (
    "06:7B:4B:9B:DD:29:85:6F:D9:74:B8:AE:B5:C0:83:D8:"
    "A9:1C:0D:DD:80:D7:E2:80:50:C9:48:9B:C3:4D:D2:6C"
)
AUDIO_ID = "1a507dcb-d7a0-4e1f-89bd-0e5c8ab32426"
VIDEO_ID = "cb77128e-4663-4079-871f-b010eb87d9f2"

# An excerpt of the first offer of twilio-video 2.36.0 in Chromium 156 (audio, video and data
# tracks published at connect): every line is verbatim; some codecs and header extensions of
# the original are left out.
CHROME_TRANSPORT = transport_lines(CLIENT_FP)
CHROME_AUDIO = f"""\
m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126
{CHROME_TRANSPORT}a=mid:0
a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level
a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time
a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01
a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid
a=sendrecv
a=msid:- {AUDIO_ID}
a=rtcp-mux
a=rtcp-rsize
a=rtcp-xr:rcvr-rtt=all
{AUDIO_CODEC_LINES}a=ssrc:3364439724 cname:pCGsX/kv/c0Vw8Qu
a=ssrc:3364439724 msid:- {AUDIO_ID}
"""
CHROME_VIDEO_CODECS = video_codec_lines(96, 102, 104, 108, 116, 45, 98, 118, 120)
CHROME_VIDEO_FORMATS = "96 97 102 103 104 107 108 109 116 117 45 46 98 99 118 119 120"
CHROME_VIDEO = f"""\
m=video 9 UDP/TLS/RTP/SAVPF {CHROME_VIDEO_FORMATS}
{CHROME_TRANSPORT}a=mid:1
a=extmap:14 urn:ietf:params:rtp-hdrext:toffset
a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time
a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01
a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid
a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id
a=sendrecv
a=msid:- {VIDEO_ID}
a=rtcp-mux
a=rtcp-rsize
a=rtcp-xr:rcvr-rtt=all
{CHROME_VIDEO_CODECS}a=ssrc-group:FID 1142849503 3162591883
a=ssrc:1142849503 cname:pCGsX/kv/c0Vw8Qu
a=ssrc:1142849503 msid:- {VIDEO_ID}
a=ssrc:3162591883 cname:pCGsX/kv/c0Vw8Qu
a=ssrc:3162591883 msid:- {VIDEO_ID}
"""
CHROME_DATA_TRANSPORT = transport_lines(CLIENT_FP, rtcp=False)
CHROME_DATA = f"""\
m=application 9 UDP/DTLS/SCTP webrtc-datachannel
{CHROME_DATA_TRANSPORT}a=mid:2
a=sctp-port:5000
a=max-message-size:262144
"""
CHROME_SESSION = """\
v=0
o=- 2419188247673677525 2 IN IP4 127.0.0.1
s=-
t=0 0
a=group:BUNDLE {mids}
a=extmap-allow-mixed
a=msid-semantic: WMS
"""


def chrome(*sections: str, mids: str | None = None) -> str:
    """A Chrome-style offer made of these sections (BUNDLE of all their mids by default)."""
    if mids is None:
        mids = " ".join(line[6:] for s in sections for line in s.split("\n") if "a=mid:" in line)
    return (CHROME_SESSION.format(mids=mids) + "".join(sections)).replace("\n", "\r\n")


CHROME_OFFER = chrome(CHROME_AUDIO, CHROME_VIDEO, CHROME_DATA)


def chrome_video(mid: str, direction: str, track: str | None, ssrcs: Iterable[int] = ()) -> str:
    """Another Chrome video section (a transceiver added or recycled by the client)."""
    text = CHROME_VIDEO.replace("a=mid:1", f"a=mid:{mid}").replace("a=sendrecv", f"a={direction}")
    lines = [line for line in text.split("\n") if "ssrc" not in line and "msid" not in line]
    if track is not None:
        msid = f"- {track}"
        lines.insert(lines.index(f"a={direction}") + 1, f"a=msid:{msid}")
        media, rtx = ssrcs
        lines[-1:-1] = [
            f"a=ssrc-group:FID {media} {rtx}",
            f"a=ssrc:{media} cname:pCGsX/kv/c0Vw8Qu",
            f"a=ssrc:{media} msid:{msid}",
            f"a=ssrc:{rtx} cname:pCGsX/kv/c0Vw8Qu",
            f"a=ssrc:{rtx} msid:{msid}",
        ]
    return "\n".join(lines)


def negotiator(seed: int = 7, **kwargs: object) -> PeerNegotiator:
    rng = random.Random(seed)
    local = LocalTransport.generate(FINGERPRINT, "127.0.0.1", 40000, rng=rng)
    return PeerNegotiator(local, rng=rng, **kwargs)  # type: ignore[arg-type]


def parse_answer(answer: Answer | None) -> SessionDescription:
    assert answer is not None
    return sdp.parse(answer.sdp)


CHROME_PUBLISHES = {"0": (AUDIO_ID, 3364439724, None), "1": (VIDEO_ID, 1142849503, 3162591883)}


def client_answer_to(
    offer: str, publish: dict[str, tuple[str, int, int | None]] | None = None
) -> str:
    """A Chrome-like answer to a server offer: reversed directions, active setup.

    ``publish`` maps the mids the client sends on to (track id, SSRC, RTX SSRC); by default
    the tracks of `CHROME_OFFER`.
    """
    publish = CHROME_PUBLISHES if publish is None else publish
    media = []
    for m in sdp.parse(offer).media:
        receives = m.direction in ("sendrecv", "sendonly")
        sends = m.direction in ("sendrecv", "recvonly") and m.mid in publish
        direction = {(True, True): "sendrecv", (True, False): "recvonly"}.get(
            (receives, sends), "sendonly" if sends else "inactive"
        )
        theirs = dataclasses.replace(
            m,
            port=0 if m.port == 0 else 9,
            connection=sdp.Connection(),
            candidates=(),
            end_of_candidates=False,
            ice_ufrag="8Ia2",
            ice_pwd="MAMoeBGI1SkF3V0hzWeWgpyb",
            fingerprints=(sdp.Fingerprint("sha-256", CLIENT_FP),),
            setup="active",
            direction=None if m.kind == "application" else direction,  # type: ignore[arg-type]
            msids=(),
            ssrcs=(),
            ssrc_groups=(),
        )
        if sends and m.mid is not None:
            track, ssrc, rtx = publish[m.mid]
            ssrcs = [ssrc] if rtx is None else [ssrc, rtx]
            theirs = dataclasses.replace(
                theirs,
                msids=(Msid("-", track),),
                ssrc_groups=() if rtx is None else (sdp.SsrcGroup("FID", (ssrc, rtx)),),
                ssrcs=tuple(sdp.SsrcAttribute(s, "cname", "c") for s in ssrcs),
            )
        media.append(theirs)
    return str(dataclasses.replace(sdp.parse(offer), ice_lite=False, media=tuple(media)))


def assert_consistent_bundle(text: str) -> None:
    """Across the BUNDLE, a payload type or an extension id never means two things."""
    description = sdp.parse(text)
    bundle = description.group("BUNDLE")
    assert bundle is not None
    pts: dict[int, tuple[object, ...]] = {}
    ids: dict[int, str] = {}
    for media in description.media:
        if media.mid not in bundle.mids:
            continue
        for codec in media.codecs:
            meaning = (
                codec.name.lower(),
                codec.clock_rate,
                codec.channels,
                codec.apt,
                codec.parameter("packetization-mode"),
                codec.parameter("profile-level-id"),
            )
            assert pts.setdefault(codec.payload_type, meaning) == meaning, codec
        for ext in media.extmaps:
            assert ids.setdefault(ext.id, ext.uri) == ext.uri, ext


def check_server_sdp(text: str, setup: str) -> SessionDescription:
    """Invariants of every description the server writes."""
    assert text.endswith("\r\n") and "\n" not in text.replace("\r\n", "")
    description = sdp.parse(text)
    assert str(description) == text
    assert description.ice_lite
    bundle = description.group("BUNDLE")
    assert bundle is not None
    assert list(bundle.mids) == [m.mid for m in description.media if m.port != 0]
    for media in description.media:
        assert media.setup == setup
        assert media.ice_ufrag and media.ice_pwd and media.fingerprints
        if media.port != 0:
            assert media.candidates and media.end_of_candidates
    assert_consistent_bundle(text)
    return description


# --------------------------------------------------------------------------------------------
# aiortc as the client


@pytest.fixture
async def client(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[RTCPeerConnection]:
    """A real aiortc peer connection that gathers no candidates (so it never does ICE)."""
    monkeypatch.setattr(aioice.ice, "get_host_addresses", lambda use_ipv4, use_ipv6: [])
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    yield pc
    await pc.close()


async def offer_from(pc: RTCPeerConnection) -> str:
    await pc.setLocalDescription(await pc.createOffer())
    return str(pc.localDescription.sdp)


async def answer_from(pc: RTCPeerConnection, offer: str) -> str:
    await pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
    await pc.setLocalDescription(await pc.createAnswer())
    return str(pc.localDescription.sdp)


async def set_answer(pc: RTCPeerConnection, answer: Answer | None) -> None:
    assert answer is not None
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer.sdp, type="answer"))


def transceiver(pc: RTCPeerConnection, mid: str) -> RTCRtpTransceiver:
    return next(t for t in pc.getTransceivers() if t.mid == mid)


def remote_section(pc: RTCPeerConnection, mid: str) -> MediaSection:
    section = sdp.parse(pc.remoteDescription.sdp).section(mid)
    assert section is not None
    return section


async def connect(pc: RTCPeerConnection, neg: PeerNegotiator) -> Answer:
    """The client publishes audio + video + data; the negotiator answers; aiortc applies it."""
    pc.addTrack(AudioStreamTrack())
    pc.addTrack(VideoStreamTrack())
    pc.createDataChannel("chat")
    answer = neg.apply_client_offer(await offer_from(pc), revision=1)
    assert answer is not None
    await set_answer(pc, answer)
    return answer


async def test_aiortc_client_full_cycle(client: RTCPeerConnection) -> None:
    neg = negotiator()
    answer = await connect(client, neg)
    assert client.signalingState == "stable"
    description = check_server_sdp(answer.sdp, "passive")
    assert [m.kind for m in description.media] == ["audio", "video", "application"]
    assert [m.direction for m in description.media] == ["recvonly", "recvonly", None]
    audio_t, video_t = client.getTransceivers()
    assert (audio_t.currentDirection, video_t.currentDirection) == ("sendonly", "sendonly")

    # What the client publishes: identified by msid appdata, with aiortc's SSRCs.
    audio, video = answer.published
    assert (audio.mid, audio.kind, audio.track_id) == ("0", "audio", audio_t.sender.track.id)
    assert (video.mid, video.kind, video.track_id) == ("1", "video", video_t.sender.track.id)
    assert audio.ssrc == audio_t.sender._ssrc
    assert video.ssrc == video_t.sender._ssrc and video.rtx_ssrc == video_t.sender._rtx_ssrc
    assert answer.added == answer.published and answer.ended == ()
    assert audio.codec is not None and audio.codec.name == "opus"
    assert video.codec is not None and video.codec.name == "VP8"
    assert video.rtx_payload_type(video.codec.payload_type) is not None
    assert audio.extension_id(URI_AUDIO_LEVEL) == 2 and audio.extension_id(URI_MID) == 1
    assert answer.data_mid == "2" and answer.revision == 1 and not answer.ice_restart
    assert answer.remote.ice_ufrag == sdp.parse(client.localDescription.sdp).media[0].ice_ufrag

    # The server subscribes the client to a track: a new sendonly video section.
    assert not neg.needs_negotiation
    neg.send_track("trackY", "streamX", "video", "VP8")
    assert neg.needs_negotiation and neg.next_offer_revision == 2
    offer = neg.create_offer()
    assert neg.pending_offer_revision == 2 and not neg.is_stable and neg.pending_offer == offer
    offered = check_server_sdp(offer, "actpass")
    new = offered.media[3]
    assert (new.mid, new.kind, new.direction) == ("3", "video", "sendonly")
    assert new.msid == Msid("streamX", "trackY")
    assert {s.value for s in new.ssrcs if s.name == "msid"} == {"streamX trackY"}
    assert [c.name for c in new.codecs] == ["VP8", "rtx"]  # only what is forwarded
    assert [m.mid for m in offered.media[:3]] == ["0", "1", "2"]  # existing mids kept in order
    assert [m.direction for m in offered.media[:2]] == ["recvonly", "recvonly"]

    client_answer = await answer_from(client, offer)
    result = neg.apply_client_answer(client_answer, revision=2)
    assert neg.is_stable and not neg.needs_negotiation
    (sent,) = result.sending
    assert (sent.mid, sent.track_id, sent.stream_id, sent.kind) == (
        "3",
        "trackY",
        "streamX",
        "video",
    )
    assert sent.codec.name == "VP8" and sent.codec.payload_type == video.codec.payload_type
    assert sent.rtx_payload_type == video.rtx_payload_type(video.codec.payload_type)
    assert new.ssrc_groups == (sdp.SsrcGroup("FID", (sent.ssrc, sent.rtx_ssrc or 0)),)
    assert sent.extension_id(URI_MID) == 1
    assert result.published == answer.published and result.added == result.ended == ()

    # aiortc has a receiving transceiver whose remote msid is the subscribed track id.
    receiving = transceiver(client, "3")
    assert (receiving.kind, receiving.currentDirection) == ("video", "recvonly")
    assert receiving.receiver.track.id == "trackY"
    assert remote_section(client, "3").msid == Msid("streamX", "trackY")
    assert remote_section(client, "3").direction == "sendonly"
    assert [t.mid for t in neg.transceivers()] == ["0", "1", "2", "3"]


async def test_aiortc_recycles_a_server_section(client: RTCPeerConnection) -> None:
    """The client publishes a new track on the server's sendonly mid (twilio-video's
    `takeRecycledTransceiver`): the mid becomes sendrecv, both directions are tracked."""
    neg = negotiator()
    await connect(client, neg)
    neg.send_track("trackY", "streamX", "video", "VP8")
    neg.apply_client_answer(await answer_from(client, neg.create_offer()), revision=2)

    recycled = transceiver(client, "3")
    new_track = VideoStreamTrack()
    recycled.sender.replaceTrack(new_track)
    recycled.direction = "sendrecv"
    answer = neg.apply_client_offer(await offer_from(client), revision=3)
    assert answer is not None
    description = check_server_sdp(answer.sdp, "passive")
    section = description.media[3]
    assert section.direction == "sendrecv"
    assert section.msid == Msid("streamX", "trackY")
    (added,) = answer.added
    assert (added.mid, added.track_id, added.kind) == ("3", new_track.id, "video")
    assert added.ssrc == recycled.sender._ssrc
    assert [s.track_id for s in answer.sending] == ["trackY"] and answer.stopped == ()
    await set_answer(client, answer)
    assert recycled.currentDirection == "sendrecv"
    assert recycled.receiver.track.id == "trackY"

    # The server stops sending there: the mid stays, the client's publication too.
    neg.stop_sending("trackY")
    assert neg.needs_negotiation
    offer = neg.create_offer()
    assert check_server_sdp(offer, "actpass").media[3].direction == "recvonly"
    assert sdp.parse(offer).media[3].msid is None
    result = neg.apply_client_answer(await answer_from(client, offer), revision=4)
    assert [s.track_id for s in result.stopped] == ["trackY"] and result.sending == ()
    assert [p.track_id for p in result.published][-1] == new_track.id
    assert result.ended == () and not neg.needs_negotiation


async def test_aiortc_unpublish_then_server_reuses_the_section(client: RTCPeerConnection) -> None:
    neg = negotiator()
    answer = await connect(client, neg)
    video_t = transceiver(client, "1")
    video_t.direction = "recvonly"  # what twilio-video does on unpublish
    video_t.sender.replaceTrack(None)
    unpublished = neg.apply_client_offer(await offer_from(client), revision=2)
    assert unpublished is not None
    assert [p.mid for p in unpublished.ended] == ["1"]
    assert unpublished.ended[0].track_id == answer.published[1].track_id
    assert parse_answer(unpublished).media[1].direction == "inactive"
    await set_answer(client, unpublished)

    neg.send_track("trackZ", "streamZ", "video", "VP8")
    offer = neg.create_offer()
    description = check_server_sdp(offer, "actpass")
    assert [m.mid for m in description.media] == ["0", "1", "2"]  # reused, no new m-line
    assert description.media[1].direction == "sendonly"
    assert description.media[1].msid == Msid("streamZ", "trackZ")
    result = neg.apply_client_answer(await answer_from(client, offer), revision=3)
    assert [(s.mid, s.track_id) for s in result.sending] == [("1", "trackZ")]
    assert video_t.receiver.track.id == "trackZ"


async def test_aiortc_data_channel_added_by_the_server(client: RTCPeerConnection) -> None:
    neg = negotiator()
    client.addTrack(AudioStreamTrack())
    answer = neg.apply_client_offer(await offer_from(client), revision=1)
    await set_answer(client, answer)
    assert neg.data_mid is None
    neg.need_data_channel()
    assert neg.needs_negotiation
    offer = neg.create_offer()
    data = check_server_sdp(offer, "actpass").media[-1]
    assert (data.kind, data.mid, data.sctp_port, data.max_message_size) == (
        "application",
        "1",
        5000,
        262144,
    )
    result = neg.apply_client_answer(await answer_from(client, offer), revision=2)
    assert result.data_mid == neg.data_mid == "1" and not neg.needs_negotiation
    assert client.sctp is not None


async def test_aiortc_glare_server_wins(client: RTCPeerConnection) -> None:
    neg = negotiator()
    await connect(client, neg)
    neg.send_track("trackY", "streamX", "audio", "opus")
    offer = neg.create_offer()
    # The client offers at the same time: ignored while ours is outstanding.
    crossing = await client.createOffer()
    assert neg.apply_client_offer(crossing.sdp, revision=2) is None
    assert neg.pending_offer_revision == 2
    # The client rolls back, answers ours with its revision, then offers again.
    result = neg.apply_client_answer(await answer_from(client, offer), revision=2)
    assert [(s.mid, s.kind) for s in result.sending] == [("3", "audio")]
    client.addTrack(VideoStreamTrack())
    reoffer = neg.apply_client_offer(await offer_from(client), revision=3)
    assert reoffer is not None and [p.mid for p in reoffer.added] == ["4"]
    await set_answer(client, reoffer)
    assert transceiver(client, "3").receiver.track.id == "trackY"


# --------------------------------------------------------------------------------------------
# The real Chrome offer


def test_answer_to_chrome_offer() -> None:
    neg = negotiator()
    answer = neg.apply_client_offer(CHROME_OFFER, revision=1, track_ids=[AUDIO_ID, VIDEO_ID])
    assert answer is not None and answer.revision == 1
    description = check_server_sdp(answer.sdp, "passive")
    assert description.group("BUNDLE") == sdp.Group("BUNDLE", ("0", "1", "2"))
    assert description.msid_semantic == sdp.MsidSemantic("WMS", ("*",))
    audio, video, data = description.media
    local = neg.local
    assert "a=candidate:1 1 udp 2130706431 127.0.0.1 40000 typ host\r\n" in answer.sdp
    assert answer.sdp.count("a=end-of-candidates\r\n") == 3
    assert answer.sdp.count(f"a=ice-ufrag:{local.ice_ufrag}\r\n") == 3
    assert f"a=fingerprint:sha-256 {FINGERPRINT[1]}\r\n" in answer.sdp
    assert audio.connection == sdp.Connection("IN", "IP4", "127.0.0.1") and audio.port == 40000

    # Audio: Opus only, with the client's payload type; no transport-cc.
    assert audio.formats == ("111",)
    assert audio.codecs == (
        Codec(111, "opus", 48000, 2, (("minptime", "10"), ("useinbandfec", "1"))),
    )
    assert audio.extmaps == (Extmap(1, URI_AUDIO_LEVEL), Extmap(4, URI_MID))
    assert audio.direction == "recvonly" and audio.msids == () and audio.ssrcs == ()
    assert audio.rtcp_mux and audio.rtcp_rsize

    # Video: VP8 and packetization-mode=1 H.264 (42001f, 42e01f) with RTX, client order.
    assert video.formats == ("96", "97", "102", "103", "108", "109")
    vp8 = video.codec(96)
    # The client publishes here: no transport-cc (the SFU sends no TWCC feedback).
    assert vp8 is not None and vp8.feedback == ("goog-remb", "ccm fir", "nack", "nack pli")
    assert video.codec(97) == Codec(97, "rtx", 90000, None, (("apt", "96"),))
    h264 = video.codec(108)
    assert h264 is not None and h264.parameter("profile-level-id") == "42e01f"
    assert h264.parameter("packetization-mode") == "1"
    assert video.extmaps == (Extmap(4, URI_MID),)
    assert video.direction == "recvonly"

    assert (data.kind, data.mid, data.sctp_port, data.max_message_size) == (
        "application",
        "2",
        5000,
        262144,
    )

    first, second = answer.published
    assert (first.mid, first.track_id, first.stream_id, first.kind) == ("0", AUDIO_ID, "-", "audio")
    assert first.ssrcs == (3364439724,) and first.rtx_ssrc is None
    assert (second.mid, second.track_id, second.kind) == ("1", VIDEO_ID, "video")
    assert second.ssrc == 1142849503 and second.rtx_ssrc == 3162591883
    assert second.rtx_ssrcs == ((1142849503, 3162591883),)
    assert second.codec is not None and second.codec.payload_type == 96
    assert second.rtx_payload_type(108) == 109 and second.rtx_payload_type(1) is None
    assert second.extension_id(URI_MID) == 4 and second.extension_id(URI_AUDIO_LEVEL) is None
    assert answer.remote.ice_ufrag == "8Ia2" and answer.remote.ice_pwd == "MAMoeBGI1SkF3V0hzWeWgpyb"
    assert answer.remote.fingerprints == (("sha-256", CLIENT_FP),)
    assert answer.remote.setup == "actpass"
    assert answer.local == neg.local


@pytest.mark.parametrize(
    ("video_codecs", "formats"),
    [
        (("VP8",), ("96", "97")),
        (("h264",), ("102", "103", "108", "109")),
        (("H264", "VP8"), ("96", "97", "102", "103", "108", "109")),
    ],
)
def test_room_video_codecs_restrict_the_answer(
    video_codecs: tuple[str, ...], formats: tuple[str, ...]
) -> None:
    neg = negotiator(capabilities=ServerCapabilities.default(video_codecs))
    video = parse_answer(neg.apply_client_offer(CHROME_OFFER, revision=1)).media[1]
    assert video.formats == formats


def test_capabilities() -> None:
    caps = ServerCapabilities.default()
    h264 = Codec(1, "H264", 90000, parameters=(("packetization-mode", "1"),))
    assert caps.match("video", h264) is caps.codecs_for("video")[1]  # absent = 42e01f
    for plid in ("zz", "580032", "640c1f", "f40032", "4d001f"):
        odd = dataclasses.replace(h264, parameters=(*h264.parameters, ("profile-level-id", plid)))
        assert caps.match("video", odd) is None
    assert caps.match("audio", Codec(1, "opus", 48000)) is None  # mono Opus is not Opus/2
    assert [c.name for c in caps.codecs_for("audio")] == ["opus"]
    assert [(c.name, c.rtx) for c in caps.codecs_for("video")] == [
        ("VP8", True),
        ("H264", True),
        ("H264", True),
    ]
    assert [e.uri for e in caps.extensions_for("video")] == [URI_MID, URI_TRANSPORT_CC]
    assert [e.server_send_only for e in caps.extensions_for("video")] == [False, True]
    assert all("transport-cc" in c.feedback for c in caps.codecs_for("video"))
    with pytest.raises(NegotiationError, match="unsupported video codecs: VP9"):
        ServerCapabilities.default(["VP8", "VP9"])
    assert ServerCapabilities.default([]).codecs_for("video") == ()


def test_video_section_without_common_codec_is_rejected() -> None:
    neg = negotiator(capabilities=ServerCapabilities.default(["H264"]))
    vp9_only = (
        CHROME_VIDEO.replace(CHROME_VIDEO_FORMATS, "98 99")
        .replace(CHROME_VIDEO_CODECS, "")
        .replace("a=ssrc", "a=x-ssrc")
    )
    vp9_only = vp9_only.replace(
        "a=rtcp-xr:rcvr-rtt=all\n",
        "a=rtcp-xr:rcvr-rtt=all\na=rtpmap:98 VP9/90000\na=rtpmap:99 rtx/90000\na=fmtp:99 apt=98\n",
    )
    answer = neg.apply_client_offer(chrome(CHROME_AUDIO, vp9_only), revision=1)
    description = check_server_sdp(answer.sdp if answer else "", "passive")
    audio, video = description.media
    assert audio.port == 40000 and video.port == 0 and video.mid == "1"
    assert description.group("BUNDLE") == sdp.Group("BUNDLE", ("0",))
    assert video.candidates == () and video.direction == "inactive"
    assert [p.mid for p in neg.publications] == ["0"]
    assert neg.transceivers()[1].rejected


def test_sections_we_cannot_take_are_rejected() -> None:
    text_section = "m=text 9 UDP/TLS/RTP/SAVPF 98\na=mid:t\n"
    second_data = CHROME_DATA.replace("a=mid:2", "a=mid:d2")
    outside_bundle = CHROME_AUDIO.replace("a=mid:0", "a=mid:x")
    stopped = CHROME_AUDIO.replace("m=audio 9", "m=audio 0").replace("a=mid:0", "a=mid:s")
    offer = chrome(
        CHROME_AUDIO,
        CHROME_DATA,
        text_section,
        second_data,
        outside_bundle,
        stopped,
        mids="0 2 t d2 s",
    )
    answer = negotiator().apply_client_offer(offer, revision=1)
    description = parse_answer(answer)
    assert [(m.mid, m.port != 0) for m in description.media] == [
        ("0", True),
        ("2", True),
        ("t", False),
        ("d2", False),
        ("x", False),
        ("s", False),
    ]
    assert description.group("BUNDLE") == sdp.Group("BUNDLE", ("0", "2"))
    assert answer is not None and [p.mid for p in answer.published] == ["0"]


def test_offer_without_bundle_accepts_only_the_first_section() -> None:
    offer = CHROME_OFFER.replace("a=group:BUNDLE 0 1 2\r\n", "")
    description = parse_answer(negotiator().apply_client_offer(offer, revision=1))
    assert [m.port != 0 for m in description.media] == [True, False, False]
    assert description.groups == ()


def test_legacy_sctp_syntax_is_answered_in_kind() -> None:
    legacy = CHROME_DATA.replace("UDP/DTLS/SCTP webrtc-datachannel", "DTLS/SCTP 5000").replace(
        "a=sctp-port:5000\n", "a=sctpmap:5000 webrtc-datachannel 1024\n"
    )
    data = parse_answer(negotiator().apply_client_offer(chrome(CHROME_AUDIO, legacy), 1)).media[1]
    assert (data.proto, data.formats, data.sctp_port) == ("DTLS/SCTP", ("5000",), None)
    assert data.attribute_values("sctpmap") == ("5000 webrtc-datachannel 1024",)


def test_unknown_msid_is_not_reported_as_published() -> None:
    """Firefox adds a dummy audio track whose id is not in `participant.tracks`."""
    neg = negotiator()
    answer = neg.apply_client_offer(CHROME_OFFER, revision=1, track_ids=[VIDEO_ID])
    assert answer is not None
    assert [p.track_id for p in answer.published] == [VIDEO_ID]
    assert [p.track_id for p in answer.added] == [VIDEO_ID]
    assert parse_answer(answer).media[0].direction == "recvonly"
    assert [p.track_id for p in neg.publications] == [AUDIO_ID, VIDEO_ID]
    assert neg.publication(AUDIO_ID) is not None and neg.publication("nope") is None


def test_track_id_falls_back_to_ssrc_msid() -> None:
    offer = CHROME_OFFER.replace(f"a=msid:- {VIDEO_ID}\r\n", "")
    answer = negotiator().apply_client_offer(offer, revision=1)
    assert answer is not None and [p.track_id for p in answer.published] == [AUDIO_ID, VIDEO_ID]
    no_track = offer.replace(f"msid:- {VIDEO_ID}", "label:x")
    answer = negotiator().apply_client_offer(no_track, revision=1)
    assert answer is not None and [p.track_id for p in answer.published] == [AUDIO_ID]
    assert parse_answer(answer).media[1].direction == "recvonly"


def test_simulcast_layers() -> None:
    sim = CHROME_VIDEO.replace(
        "a=ssrc-group:FID 1142849503 3162591883\n",
        "a=ssrc-group:FID 1142849503 3162591883\na=ssrc-group:FID 11 12\n"
        "a=ssrc-group:FID 21 22\na=ssrc-group:SIM 1142849503 11 21\n",
    )
    answer = negotiator().apply_client_offer(chrome(CHROME_AUDIO, sim), revision=1)
    assert answer is not None
    video = answer.published[1]
    assert video.ssrcs == (1142849503, 11, 21)
    assert video.rtx_ssrcs == ((1142849503, 3162591883), (11, 12), (21, 22))
    assert video.ssrc == 1142849503 and video.rtx_ssrc == 3162591883
    # VP8 stays first, so twilio-video keeps simulcast.
    assert parse_answer(answer).media[1].formats[0] == "96"


# --------------------------------------------------------------------------------------------
# Server offers


def answered(neg: PeerNegotiator, offer: str = CHROME_OFFER) -> Answer:
    answer = neg.apply_client_offer(offer, revision=neg.next_offer_revision)
    assert answer is not None
    return answer


def test_server_offer_payload_types_follow_the_client() -> None:
    neg = negotiator()
    answered(neg)
    neg.send_track("a1", "PAx", "audio", "opus")
    neg.send_track("v1", "PAx", "video", "VP8")
    neg.send_track("v2", "PAy", "video", "H264")
    offer = neg.create_offer()
    description = check_server_sdp(offer, "actpass")
    _, _, _, audio, vp8, h264 = description.media
    assert [m.mid for m in description.media] == ["0", "1", "2", "3", "4", "5"]
    assert [m.direction for m in description.media[3:]] == ["sendonly"] * 3
    assert audio.codecs == (Codec(111, "opus", 48000, 2, (("useinbandfec", "1"),)),)
    assert audio.extmaps == (Extmap(1, URI_AUDIO_LEVEL), Extmap(4, URI_MID))
    assert audio.ssrc_groups == ()  # no RTX for audio
    # Transport-wide CC where only the server sends, with the client's BUNDLE-wide id.
    assert vp8.formats == ("96", "97")
    assert vp8.extmaps == (Extmap(4, URI_MID), Extmap(3, URI_TRANSPORT_CC))
    vp8_codec = vp8.codec(96)
    assert vp8_codec is not None and "transport-cc" in vp8_codec.feedback
    # H.264 profiles get the payload types Chrome gave them (108 = 42e01f, 102 = 42001f).
    assert h264.formats == ("108", "109", "102", "103")
    h264_codec = h264.codec(108)
    assert h264_codec is not None and h264_codec.parameter("profile-level-id") == "42e01f"
    assert h264.msid == Msid("PAy", "v2")

    result = neg.apply_client_answer(client_answer_to(offer), revision=2)
    assert [(s.mid, s.codec.payload_type, s.rtx_payload_type) for s in result.sending] == [
        ("3", 111, None),
        ("4", 96, 97),
        ("5", 108, 109),
    ]
    assert [s.rtx_ssrc is None for s in result.sending] == [True, False, False]
    assert len({s.ssrc for s in result.sending} | {s.rtx_ssrc for s in result.sending}) == 6


def test_send_track_with_the_publishers_codec() -> None:
    neg = negotiator()
    answered(neg)
    publisher_codec = Codec(
        126, "H264", 90000, parameters=(("packetization-mode", "1"), ("profile-level-id", "42001f"))
    )
    neg.send_track("v", "s", "video", publisher_codec)
    section = sdp.parse(neg.create_offer()).media[3]
    assert section.formats == ("102", "103")
    with pytest.raises(NegotiationError, match="no video codec matching"):
        neg.send_track("v", "s", "video", Codec(98, "VP9", 90000))


def test_new_payload_types_avoid_the_clients() -> None:
    """A codec the client never offered gets a payload type no section uses."""
    neg = negotiator()
    video_only_h264 = CHROME_VIDEO.replace(CHROME_VIDEO_FORMATS, "96 97").replace(
        CHROME_VIDEO_CODECS,
        "a=rtpmap:96 H264/90000\na=fmtp:96 packetization-mode=1;profile-level-id=42e01f\n"
        "a=rtpmap:97 rtx/90000\na=fmtp:97 apt=96\n",
    )
    answered(neg, chrome(CHROME_AUDIO, video_only_h264))
    neg.send_track("v", "s", "video", "VP8")
    offer = neg.create_offer()
    section = sdp.parse(offer).media[2]
    assert section.formats == ("98", "99")  # 96/97 mean H.264 here; 111 is Opus
    assert_consistent_bundle(offer)


def test_stopped_section_is_reused_only_after_it_is_negotiated_inactive() -> None:
    neg = negotiator()
    answered(neg)
    neg.send_track("A", "s", "video", "VP8")
    neg.apply_client_answer(client_answer_to(neg.create_offer()), revision=2)
    assert [t.mid for t in neg.transceivers()] == ["0", "1", "2", "3"]

    neg.stop_sending("A")
    neg.send_track("B", "s", "video", "VP8")
    offer = sdp.parse(neg.create_offer())
    # "3" goes inactive; B may not take it in the same offer (no `track` event would fire).
    assert [(m.mid, m.direction) for m in offer.media[3:]] == [("3", "inactive"), ("4", "sendonly")]
    assert offer.media[3].msid is None and offer.media[3].ssrcs == ()
    result = neg.apply_client_answer(client_answer_to(str(offer)), revision=3)
    assert [s.track_id for s in result.stopped] == ["A"]
    assert [(s.mid, s.track_id) for s in result.sending] == [("4", "B")]

    neg.send_track("C", "s", "video", "VP8")
    offer = sdp.parse(neg.create_offer())
    assert [(m.mid, m.direction) for m in offer.media[3:]] == [("3", "sendonly"), ("4", "sendonly")]
    assert offer.media[3].msid == Msid("s", "C")


def test_client_publishing_section_is_never_taken_for_sending() -> None:
    neg = negotiator()
    answered(neg)
    neg.send_track("v", "s", "video", "VP8")
    description = sdp.parse(neg.create_offer())
    # mid 1 carries the client's camera: the server adds a section instead.
    assert description.media[1].direction == "recvonly"
    assert description.media[1].formats == ("96", "97", "102", "103", "108", "109")
    assert description.media[3].direction == "sendonly"


def test_recvonly_client_sections_are_reused() -> None:
    """Chrome without local tracks offers recvonly audio and video; the server sends there."""
    recv_audio = CHROME_AUDIO.replace("a=sendrecv", "a=recvonly")
    recv_audio = "".join(
        line + "\n" for line in recv_audio.split("\n") if "msid" not in line and line
    )
    recv_video = chrome_video("1", "recvonly", None)
    neg = negotiator()
    answer = answered(neg, chrome(recv_audio, recv_video))
    assert answer.published == ()
    assert [m.direction for m in parse_answer(answer).media] == ["inactive", "inactive"]
    neg.send_track("a", "s", "audio", "opus")
    neg.send_track("v", "s", "video", "VP8")
    description = sdp.parse(neg.create_offer())
    assert [(m.mid, m.direction) for m in description.media] == [
        ("0", "sendonly"),
        ("1", "sendonly"),
    ]
    # Only the forwarded codec, with the payload type negotiated on that mid.
    assert description.media[1].formats == ("96", "97")


def test_recycled_section_in_a_chrome_reoffer() -> None:
    """A Chrome re-offer turns the server's sendonly mid into sendrecv with a new msid."""
    neg = negotiator()
    answered(neg)
    neg.send_track("MTremote", "PAremote", "video", "VP8")
    neg.apply_client_answer(client_answer_to(neg.create_offer()), revision=2)

    reoffer = chrome(
        CHROME_AUDIO, CHROME_VIDEO, CHROME_DATA, chrome_video("3", "sendrecv", "new-cam", (5, 6))
    )
    answer = neg.apply_client_offer(reoffer, revision=3)
    assert answer is not None
    section = check_server_sdp(answer.sdp, "passive").media[3]
    assert section.direction == "sendrecv"
    assert section.msid == Msid("PAremote", "MTremote")
    assert [p.track_id for p in answer.added] == ["new-cam"]
    assert answer.added[0].ssrcs == (5,) and answer.added[0].rtx_ssrc == 6
    assert [s.mid for s in answer.sending] == ["3"] and answer.stopped == ()
    table = {t.mid: t for t in neg.transceivers()}
    assert table["3"].client_direction == "sendrecv"
    publication = table["3"].publication
    sending = table["3"].sending
    assert publication is not None and sending is not None
    assert (publication.track_id, sending.track_id) == ("new-cam", "MTremote")

    # The server re-offers: mid 3 stays sendrecv, keeping both tracks.
    neg.send_track("MTaudio", "PAremote", "audio", "opus")
    offer = neg.create_offer()
    description = check_server_sdp(offer, "actpass")
    assert description.media[3].direction == "sendrecv"
    assert description.media[4].kind == "audio" and description.media[4].mid == "4"
    result = neg.apply_client_answer(
        client_answer_to(offer, {**CHROME_PUBLISHES, "3": ("new-cam", 5, 6)}), revision=4
    )
    assert [p.track_id for p in result.published][-1] == "new-cam"
    assert result.added == result.ended == () and len(result.sending) == 2

    # Unpublishing the recycled track: back to the server's sendonly section.
    back = chrome(
        CHROME_AUDIO,
        CHROME_VIDEO,
        CHROME_DATA,
        chrome_video("3", "recvonly", None),
        CHROME_AUDIO.replace("a=mid:0", "a=mid:4").replace("a=sendrecv", "a=recvonly"),
    )
    answer = neg.apply_client_offer(back, revision=5)
    assert answer is not None and [p.track_id for p in answer.ended] == ["new-cam"]
    assert parse_answer(answer).media[3].direction == "sendonly"


def test_client_refusing_a_send_ends_it() -> None:
    neg = negotiator()
    answered(neg)
    neg.send_track("v", "s", "video", "VP8")
    offer = neg.create_offer()
    refused = client_answer_to(offer).replace(
        "a=recvonly\r\na=rtcp-mux", "a=inactive\r\na=rtcp-mux"
    )
    result = neg.apply_client_answer(refused, revision=2)
    assert result.sending == () and [s.track_id for s in result.stopped] == ["v"]
    assert not neg.needs_negotiation  # the request is dropped, not retried forever


def test_client_rejecting_a_section_in_its_answer() -> None:
    neg = negotiator()
    answered(neg)
    neg.send_track("v", "s", "video", "VP8")
    offer = neg.create_offer()
    answer = sdp.parse(client_answer_to(offer))
    media = list(answer.media)
    media[3] = dataclasses.replace(media[3], port=0)
    result = neg.apply_client_answer(str(dataclasses.replace(answer, media=tuple(media))), 2)
    assert result.sending == () and neg.transceivers()[3].rejected
    neg.send_track("w", "s", "video", "VP8")
    description = sdp.parse(neg.create_offer())
    assert [(m.mid, m.port == 0) for m in description.media[3:]] == [("3", True), ("4", False)]
    result = neg.apply_client_answer(client_answer_to(str(description)), 3)
    assert [s.mid for s in result.sending] == ["4"] and neg.transceivers()[3].rejected


def test_a_client_offer_can_end_a_send() -> None:
    neg = negotiator()
    answered(neg)
    neg.send_track("v", "s", "video", "VP8")
    neg.apply_client_answer(client_answer_to(neg.create_offer()), revision=2)
    stopped = chrome(
        CHROME_AUDIO,
        CHROME_VIDEO,
        CHROME_DATA,
        chrome_video("3", "sendonly", "cam2", (7, 8)),
    )
    answer = neg.apply_client_offer(stopped, revision=3)
    assert answer is not None
    assert [s.track_id for s in answer.stopped] == ["v"] and answer.sending == ()
    assert parse_answer(answer).media[3].direction == "recvonly"
    assert neg.needs_negotiation  # still requested: the next offer places it again


def test_a_client_offer_without_the_sent_codec_ends_the_send() -> None:
    neg = negotiator()
    answered(neg)
    neg.send_track("v", "s", "video", "VP8")
    neg.apply_client_answer(client_answer_to(neg.create_offer()), revision=2)
    assert neg.remote is not None and neg.remote.ice_ufrag == "8Ia2"
    h264_only = chrome_video("3", "recvonly", None).replace(CHROME_VIDEO_FORMATS, "108 109")
    h264_only = h264_only.replace(
        CHROME_VIDEO_CODECS,
        "a=rtpmap:108 H264/90000\na=fmtp:108 packetization-mode=1;profile-level-id=42e01f\n"
        "a=rtpmap:109 rtx/90000\na=fmtp:109 apt=108\n",
    )
    answer = neg.apply_client_offer(chrome(CHROME_AUDIO, CHROME_VIDEO, CHROME_DATA, h264_only), 3)
    assert answer is not None and [s.track_id for s in answer.stopped] == ["v"]
    assert parse_answer(answer).media[3].direction == "inactive"
    # The next offer puts VP8 back on the same (now idle) section.
    section = sdp.parse(neg.create_offer()).media[3]
    assert (section.mid, section.direction, section.formats) == ("3", "sendonly", ("96", "97"))


# --------------------------------------------------------------------------------------------
# Revisions, glare, state


def test_revisions() -> None:
    neg = negotiator()
    assert (neg.last_revision, neg.next_offer_revision, neg.is_stable) == (0, 1, True)
    first = neg.apply_client_offer(CHROME_OFFER, revision=1)
    assert first is not None and first.revision == 1
    # Re-delivery of the same offer (e.g. in a `sync`) gets the same answer again.
    assert neg.apply_client_offer(CHROME_OFFER, revision=1) is first
    # A stale or replayed-but-different offer is ignored.
    assert neg.apply_client_offer(CHROME_OFFER.replace("8Ia2", "zzzz"), revision=1) is None
    assert neg.apply_client_offer(CHROME_OFFER, revision=0) is None
    assert neg.next_offer_revision == 2

    with pytest.raises(NegotiationError, match="revision 1 is not after 1"):
        neg.create_offer(revision=1)
    offer = neg.create_offer()
    assert neg.pending_offer_revision == 2 and neg.last_revision == 2
    with pytest.raises(NegotiationError, match="still outstanding"):
        neg.create_offer()
    # Glare: a client offer crossing ours is ignored ("server wins").
    assert neg.apply_client_offer(CHROME_OFFER, revision=2) is None
    assert neg.apply_client_offer(CHROME_OFFER, revision=3) is None
    with pytest.raises(NegotiationError, match="no server offer with revision 3"):
        neg.apply_client_answer(client_answer_to(offer), revision=3)
    result = neg.apply_client_answer(client_answer_to(offer), revision=2)
    assert result.revision == 2 and neg.is_stable and neg.pending_offer is None
    with pytest.raises(NegotiationError, match="no server offer with revision 2"):
        neg.apply_client_answer(client_answer_to(offer), revision=2)
    again = neg.apply_client_offer(CHROME_OFFER, revision=3)
    assert again is not None and again.revision == 3 and neg.next_offer_revision == 4


def test_cancel_offer() -> None:
    neg = negotiator()
    answered(neg)
    neg.send_track("v", "s", "video", "VP8")
    neg.create_offer()
    neg.cancel_offer()
    assert neg.is_stable and neg.needs_negotiation and neg.sending == ()
    assert sdp.parse(neg.create_offer(revision=5)).media[3].mid == "4"  # "3" stays burnt


def test_server_offer_before_any_client_offer() -> None:
    neg = negotiator()
    neg.send_track("v", "s", "video", "VP8")
    neg.need_data_channel()
    description = check_server_sdp(neg.create_offer(), "actpass")
    assert [(m.mid, m.kind) for m in description.media] == [("0", "video"), ("1", "application")]
    assert description.media[0].formats == ("96", "97")
    result = neg.apply_client_answer(client_answer_to(str(description)), revision=1)
    assert [s.mid for s in result.sending] == ["0"] and result.data_mid == "1"


def test_ice_restart_gets_fresh_credentials() -> None:
    neg = negotiator()
    first = answered(neg)
    restart = CHROME_OFFER.replace("a=ice-ufrag:8Ia2", "a=ice-ufrag:N3w+").replace(
        "MAMoeBGI1SkF3V0hzWeWgpyb", "Zm9vYmFyYmF6cXV4cXV1eA"
    )
    second = neg.apply_client_offer(restart, revision=2)
    assert second is not None and second.ice_restart and not first.ice_restart
    assert second.remote.ice_ufrag == "N3w+"
    assert second.local.ice_ufrag != first.local.ice_ufrag
    assert second.local.ice_pwd != first.local.ice_pwd
    assert second.local.fingerprint == first.local.fingerprint
    assert f"a=ice-ufrag:{second.local.ice_ufrag}\r\n" in second.sdp
    assert neg.local == second.local
    # Or the caller provides the new transport (a new port, say).
    mine = dataclasses.replace(second.local, port=40002)
    third = neg.apply_client_offer(CHROME_OFFER, revision=3, local_transport=mine)
    assert third is not None and third.ice_restart and "127.0.0.1 40002 typ host" in third.sdp


def test_deterministic_given_seeds() -> None:
    def run() -> tuple[str, str]:
        neg = negotiator(seed=42, cname="parlour")
        answer = answered(neg)
        neg.send_track("v", "s", "video", "VP8")
        return answer.sdp, neg.create_offer()

    assert run() == run()
    assert "a=ssrc:" in run()[1] and "cname:parlour" in run()[1]


def test_table_is_inspectable_and_json_serializable() -> None:
    neg = negotiator()
    answered(neg)
    neg.send_track("v", "s", "video", "VP8")
    neg.apply_client_answer(client_answer_to(neg.create_offer()), revision=2)
    state = neg.to_dict()
    assert json.loads(json.dumps(state)) == json.loads(json.dumps(state))
    assert state["revision"] == 2 and state["data_mid"] == "2" and state["requested"] == ["v"]
    rows = state["transceivers"]
    assert isinstance(rows, list) and [r["mid"] for r in rows] == ["0", "1", "2", "3"]
    assert rows[1]["publication"]["track_id"] == VIDEO_ID
    assert rows[3]["sending"]["track_id"] == "v" and rows[3]["client_direction"] == "recvonly"
    info = neg.transceivers()[1]
    assert isinstance(info.publication, PublishedTrackInfo)
    assert (info.kind, info.rejected, info.client_direction) == ("video", False, "sendonly")


# --------------------------------------------------------------------------------------------
# Invalid input


@pytest.mark.parametrize(
    ("offer", "message"),
    [
        (CHROME_OFFER.replace("a=mid:1\r\n", ""), "m-section 1 has no a=mid"),
        (CHROME_OFFER.replace("a=mid:2", "a=mid:1"), "duplicate mid '1'"),
        (CHROME_OFFER.replace("a=setup:actpass", "a=setup:passive"), "a=setup:passive"),
        (CHROME_OFFER.replace("a=ice-pwd:MAMoeBGI1SkF3V0hzWeWgpyb\r\n", ""), "no ICE ufrag/pwd"),
        (CHROME_OFFER.replace(f"a=fingerprint:sha-256 {CLIENT_FP}\r\n", ""), "no DTLS"),
        (chrome(CHROME_AUDIO.replace("m=audio 9", "m=audio 0")), "no usable m-section"),
    ],
)
def test_invalid_offers(offer: str, message: str) -> None:
    with pytest.raises(NegotiationError, match=message):
        negotiator().apply_client_offer(offer, revision=1)


def test_invalid_sdp_raises_sdp_error() -> None:
    with pytest.raises(sdp.SdpError):
        negotiator().apply_client_offer("v=0\r\nnonsense", revision=1)


def test_offers_must_keep_the_negotiated_sections() -> None:
    neg = negotiator()
    answered(neg)
    with pytest.raises(NegotiationError, match="2 m-sections, 3 are negotiated"):
        neg.apply_client_offer(chrome(CHROME_AUDIO, CHROME_VIDEO), revision=2)
    moved = chrome(CHROME_AUDIO, CHROME_VIDEO.replace("a=mid:1", "a=mid:9"), CHROME_DATA)
    with pytest.raises(NegotiationError, match="changed mid '1'"):
        neg.apply_client_offer(moved, revision=2)
    kind = chrome(CHROME_AUDIO, CHROME_AUDIO.replace("a=mid:0", "a=mid:1"), CHROME_DATA)
    with pytest.raises(NegotiationError, match="changed kind video"):
        neg.apply_client_offer(kind, revision=2)
    reused = chrome(CHROME_AUDIO, CHROME_VIDEO, CHROME_DATA, chrome_video("0", "recvonly", None))
    with pytest.raises(NegotiationError, match="duplicate mid"):
        neg.apply_client_offer(reused, revision=2)


def test_rejected_m_line_may_be_recycled_with_a_new_mid() -> None:
    neg = negotiator(capabilities=ServerCapabilities.default(["VP8"]))
    h264_only = CHROME_VIDEO.replace(CHROME_VIDEO_FORMATS, "108").replace(
        CHROME_VIDEO_CODECS, "a=rtpmap:108 H264/90000\n"
    )
    answered(neg, chrome(CHROME_AUDIO, h264_only))
    assert neg.transceivers()[1].rejected
    answer = answered(neg, chrome(CHROME_AUDIO, CHROME_VIDEO.replace("a=mid:1", "a=mid:7")))
    assert [p.mid for p in answer.added] == ["7"]
    moved = chrome(
        CHROME_AUDIO,
        CHROME_VIDEO.replace("a=mid:1", "a=mid:8"),
        chrome_video("7", "sendrecv", None),
    )
    with pytest.raises(NegotiationError, match="changed mid '7'"):
        neg.apply_client_offer(moved, revision=9)


def test_a_recycled_m_line_cannot_take_another_sections_mid() -> None:
    neg = negotiator(capabilities=ServerCapabilities.default(["VP8"]))
    h264_only = CHROME_VIDEO.replace(CHROME_VIDEO_FORMATS, "108").replace(
        CHROME_VIDEO_CODECS, "a=rtpmap:108 H264/90000\n"
    )
    answered(neg, chrome(CHROME_AUDIO, h264_only, CHROME_DATA))
    stolen = chrome(CHROME_AUDIO, CHROME_DATA, CHROME_DATA.replace("a=mid:2", "a=mid:9"))
    with pytest.raises(NegotiationError, match="mid '2' moved to another m-section"):
        neg.apply_client_offer(stolen, revision=2)


def test_invalid_answers() -> None:
    neg = negotiator()
    answered(neg)
    with pytest.raises(NegotiationError, match="no server offer"):
        neg.apply_client_answer(CHROME_OFFER, revision=1)
    neg.send_track("v", "s", "video", "VP8")
    offer = neg.create_offer()
    with pytest.raises(NegotiationError, match="do not match the offer"):
        neg.apply_client_answer(client_answer_to(CHROME_OFFER), revision=2)
    passive = client_answer_to(offer).replace("a=setup:active", "a=setup:passive")
    with pytest.raises(NegotiationError, match="it must be active"):
        neg.apply_client_answer(passive, revision=2)
    assert neg.pending_offer_revision == 2  # a bad answer leaves the offer outstanding


def test_send_track_validation() -> None:
    neg = negotiator(capabilities=ServerCapabilities.default(["VP8"]))
    with pytest.raises(NegotiationError, match="kind 'data'"):
        neg.send_track("t", "s", "data")
    with pytest.raises(NegotiationError, match="track_id must be an msid token"):
        neg.send_track("a b", "s", "video")
    with pytest.raises(NegotiationError, match="stream_id must be an msid token"):
        neg.send_track("t", "", "video")
    with pytest.raises(NegotiationError, match="no video codec matching 'H264'"):
        neg.send_track("t", "s", "video", "H264")
    neg.send_track("t", "s", "video")
    first = sdp.parse(neg.create_offer()).media[0]
    neg.cancel_offer()
    neg.send_track("t", "s2", "video", "vp8")  # updated in place, same SSRCs
    second = sdp.parse(neg.create_offer()).media[0]
    assert second.msid == Msid("s2", "t") and second.ssrc_ids == first.ssrc_ids
    neg.cancel_offer()
    neg.stop_sending("t")
    neg.stop_sending("never-sent")
    assert not neg.needs_negotiation


# --------------------------------------------------------------------------------------------
# LocalTransport


def test_local_transport_generate() -> None:
    local = LocalTransport.generate("SHA-256 " + FINGERPRINT[1], "::1", 5000, rng=random.Random(1))
    assert len(local.ice_ufrag) == 8 and len(local.ice_pwd) == 24
    assert local.fingerprint == FINGERPRINT
    assert local.connection == sdp.Connection("IN", "IP6", "::1")
    assert str(local.candidate) == "1 1 udp 2130706431 ::1 5000 typ host"
    again = LocalTransport.generate(FINGERPRINT, "::1", 5000, rng=random.Random(1))
    assert again == local
    assert LocalTransport.generate(FINGERPRINT, "::1", 5000) != local  # OS randomness


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"ice_ufrag": "abc"}, "ice_ufrag must be"),
        ({"ice_ufrag": "abcd-"}, "ice_ufrag must be"),
        ({"ice_pwd": "x" * 21}, "ice_pwd must be"),
        ({"ice_pwd": "x" * 21 + "!"}, "ice_pwd must be"),
        ({"ice_ufrag": "x" * 300}, "at most 256"),
        ({"fingerprint": ("md5", "AB:CD")}, "invalid DTLS fingerprint"),
        ({"fingerprint": ("sha-256", "ABCD")}, "invalid DTLS fingerprint"),
        ({"host": "example.com"}, "host must be an IP address"),
        ({"port": 0}, "port must be"),
    ],
)
def test_local_transport_validation(changes: dict[str, object], message: str) -> None:
    valid = LocalTransport("abcd", "a" * 22, FINGERPRINT, "192.0.2.1", 9)
    with pytest.raises(NegotiationError, match=message):
        dataclasses.replace(valid, **changes)  # type: ignore[arg-type]
    with pytest.raises(NegotiationError, match="fingerprint must be"):
        LocalTransport.generate("sha-256", "192.0.2.1", 9)
