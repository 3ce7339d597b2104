"""The benchmark's load generator against a real server: lean endpoints (ICE, DTLS-SRTP,
pre-encoded media) join over the real signaling protocol, forward through the SFU, and the
receive statistics see every packet, the keyframes and the join time."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from bench.lean import LeanEndpoint
from bench.loadgen import LoadGenerator, build_layers
from parlour.media.dtls import Certificate
from parlour.media.negotiation import LocalTransport, PeerNegotiator
from parlour.testing import ServerThread
from tests.helpers import Account, ws_url

pytestmark = pytest.mark.integration


def parlour_config(
    server: ServerThread, account: Account, room: str, *, video_kbps: int
) -> dict[str, Any]:
    """A load generator's configuration for `server` (2 s loops of 320x180 video)."""
    return {
        "server": "parlour",
        "ws_url": ws_url(server),
        "creds": {
            "account_sid": account.sid,
            "key_sid": account.key_sid,
            "key_secret": account.key_secret,
        },
        "room": room,
        "loop": {"seconds": 2.0, "width": 320, "height": 180, "video_kbps": video_kbps},
    }


async def test_lean_sdp_is_what_the_sfu_negotiates() -> None:
    endpoint = LeanEndpoint(None, Certificate.generate(), send_audio=True, send_video=True)
    await endpoint.open()
    try:
        server_cert = Certificate.generate()
        negotiator = PeerNegotiator(
            LocalTransport.generate(server_cert.fingerprint(), "127.0.0.1", 9)
        )
        answer = negotiator.apply_client_offer(endpoint.offer(), 1)
        assert answer is not None
        assert [(p.kind, p.ssrcs) for p in answer.published] == [
            (t.kind, (t.ssrc,)) for t in endpoint.tracks
        ]
        endpoint.apply_answer(answer.sdp)
        assert endpoint.remote is not None and endpoint.remote.addr == ("127.0.0.1", 9)

        negotiator.send_track("remote-audio", "PA", "audio")
        negotiator.send_track("remote-video", "PA", "video")
        reply = endpoint.answer(negotiator.create_offer())
        result = negotiator.apply_client_answer(reply, 2)
        assert {s.track_id for s in result.sending} == {"remote-audio", "remote-video"}
        # The server's SSRCs (video with its RTX one) are known to be audio or video.
        assert sorted({info.kind for info in endpoint.recv.values()}) == ["audio", "video"]
    finally:
        endpoint.close()


async def test_two_lean_participants_exchange_media_through_the_sfu(
    server: ServerThread, account: Account
) -> None:
    generator = LoadGenerator(parlour_config(server, account, "bench-loadgen-test", video_kbps=300))
    await generator.setup()
    try:
        specs = [
            {"identity": f"lg{i}", "publish": "av", "subscribe": True, "expect_media": i > 0}
            for i in range(2)
        ]
        joined = await generator.join(specs)
        assert joined == {"ok": 2, "errors": []}
        await asyncio.sleep(1.0)
        generator.reset()
        await asyncio.sleep(2.0)
        report = generator.report()
    finally:
        await generator.leave()
    assert report["errors"] == [] and report["no_media"] == []
    assert report["streams"] == 4  # each receives the other's audio and video
    # 2 s of 50 audio + ~60 video packets per second, both ways, within scheduling slack.
    assert 300 < report["packets"] <= report["expected"] < 600
    assert report["lost"] == 0
    assert report["keyframes"] >= 1
    assert len(report["join_ms"]) == 1 and 0 < report["join_ms"][0] < 5000
    assert report["delays_ns"] and max(report["delays_ns"]) < 1e9


async def test_simulcast_subscribers_get_the_layer_their_render_size_fits(
    server: ServerThread, account: Account, tmp_path: Path
) -> None:
    """A lean publisher sends three VP8 layers (``a=ssrc-group:SIM``); two subscribers with
    no media-signaling channels, one rendering small and one large (``bandwidthProfile``
    render dimensions of `connect`), receive different layers."""
    layers = build_layers(tmp_path, 2.0, ((160, 90, 60), (320, 180, 150), (640, 360, 500)))
    generator = LoadGenerator(
        {
            **parlour_config(server, account, "bench-simulcast-test", video_kbps=150),
            "simulcast": layers,
        }
    )
    await generator.setup()
    try:
        specs = [
            {"identity": "pub", "publish": "av", "subscribe": False, "expect_media": False},
            *(
                {"identity": r, "publish": "", "subscribe": True, "expect_media": True, "render": r}
                for r in ("small", "large")
            ),
        ]
        joined = await generator.join(specs)
        assert joined == {"ok": 3, "errors": []}
        await asyncio.sleep(3.0)  # layers measured, keyframes seen, allocation made
        generator.reset()
        await asyncio.sleep(3.0)
        report = generator.report()
    finally:
        await generator.leave()
    assert report["errors"] == [] and report["no_media"] == []
    kbps = {r: b * 8 / 3.0 / 1000 for r, (b, n) in report["render_bytes"].items() if n == 1}
    # Small (320x180) fits the middle layer (~150 kbit/s); large fits none: the top (~500).
    assert 80 < kbps["small"] < 260, kbps
    assert kbps["large"] > 350, kbps
    assert report["lost"] == 0


async def test_a_client_that_refuses_data_channels_is_not_offered_them_again() -> None:
    """The lean endpoint rejects m=application: after that, asking for a data channel (media
    signaling, a data track) must not renegotiate for ever."""
    endpoint = LeanEndpoint(None, Certificate.generate(), send_audio=True, send_video=False)
    await endpoint.open()
    try:
        server_cert = Certificate.generate()
        negotiator = PeerNegotiator(
            LocalTransport.generate(server_cert.fingerprint(), "127.0.0.1", 9)
        )
        answer = negotiator.apply_client_offer(endpoint.offer(), 1)
        assert answer is not None
        endpoint.apply_answer(answer.sdp)
        negotiator.need_data_channel()
        assert negotiator.needs_negotiation
        offer = negotiator.create_offer()
        assert "m=application" in offer
        negotiator.apply_client_answer(endpoint.answer(offer), 2)
        assert negotiator.data_mid is None
        assert not negotiator.needs_negotiation
        negotiator.need_data_channel()  # asked again: still refused, no new offer
        assert not negotiator.needs_negotiation
        negotiator.send_track("remote-audio", "PA", "audio")
        assert negotiator.needs_negotiation
        assert "m=application 9" not in negotiator.create_offer()
    finally:
        endpoint.close()
