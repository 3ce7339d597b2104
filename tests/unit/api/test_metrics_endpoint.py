"""`/metrics`: bearer-token auth, the collector's families, the token's derivation, and the
SFU's snapshot (`SfuMediaPlane.stats`), whose counters never go backwards."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette

from parlour import __version__
from parlour.api.metrics import ParlourCollector, metrics_registry, metrics_routes
from parlour.config import Config, load_metrics_token, load_server_secret
from parlour.domain.sids import ParticipantSid, RoomSid, TrackSid
from parlour.media.dtls import Certificate
from parlour.media.plane import MediaCounters, MediaStats, SfuMediaPlane
from parlour.media.udp import MediaSocket
from tests.unit.media.chrome_offer import AUDIO_ID, DATA_ID, OFFER, VIDEO_ID

TOKEN = "s3cret-metrics-token"
VIDEO_SSRC, VP8 = 1142849503, 96
ROOM = RoomSid("RM" + "0" * 32)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def client_for(collector: ParlourCollector) -> httpx.AsyncClient:
    app = Starlette(routes=metrics_routes(metrics_registry(collector), TOKEN))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://parlour")


def fake_stats() -> MediaStats:
    return MediaStats(
        rooms=2,
        participants=5,
        published_tracks={"audio": 5, "video": 4},
        subscribed_tracks={"audio": 20, "video": 16, "data": 1},
        counters=MediaCounters(
            rtp_packets_received=10,
            rtp_bytes_received=1000,
            rtp_packets_sent=40,
            rtp_bytes_sent=4000,
            nacks_received=1,
            nacks_sent=2,
            plis_received=3,
            plis_sent=4,
            rtp_packets_lost=6,
            srtp_errors=7,
            datagrams_dropped_in=8,
            datagrams_dropped_out=9,
        ),
    )


async def test_metrics_need_the_bearer_token() -> None:
    async with client_for(ParlourCollector()) as client:
        missing = await client.get("/metrics")
        wrong = await client.get("/metrics", headers={"Authorization": "Bearer nope"})
        basic = await client.get("/metrics", auth=("AC" + "0" * 32, TOKEN))
        ok = await client.get("/metrics", headers={"Authorization": f"bearer {TOKEN}"})
    assert missing.status_code == wrong.status_code == basic.status_code == 401
    assert missing.headers["www-authenticate"] == 'Bearer realm="parlour metrics"'
    assert wrong.headers["www-authenticate"].endswith('error="invalid_token"')
    assert TOKEN not in wrong.text
    assert ok.status_code == 200
    assert ok.headers["content-type"].startswith("text/plain; version=0.0.4")


async def test_collector_reports_media_webhooks_and_process() -> None:
    collector = ParlourCollector(media=fake_stats, webhook_pending=lambda: 3)
    async with client_for(collector) as client:
        response = await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    got = samples(response.text)
    expected = {
        ("parlour_rooms", ()): 2,
        ("parlour_participants", ()): 5,
        ("parlour_published_tracks", (("kind", "audio"),)): 5,
        ("parlour_published_tracks", (("kind", "data"),)): 0,
        ("parlour_subscribed_tracks", (("kind", "video"),)): 16,
        ("parlour_subscribed_tracks", (("kind", "data"),)): 1,
        ("parlour_rtp_received_packets_total", ()): 10,
        ("parlour_rtp_received_bytes_total", ()): 1000,
        ("parlour_rtp_sent_packets_total", ()): 40,
        ("parlour_rtp_sent_bytes_total", ()): 4000,
        ("parlour_rtcp_nacks_received_total", ()): 1,
        ("parlour_rtcp_nacks_sent_total", ()): 2,
        ("parlour_rtcp_plis_received_total", ()): 3,
        ("parlour_rtcp_plis_sent_total", ()): 4,
        ("parlour_rtp_lost_packets_total", ()): 6,
        ("parlour_srtp_errors_total", ()): 7,
        ("parlour_media_dropped_datagrams_total", (("direction", "in"),)): 8,
        ("parlour_media_dropped_datagrams_total", (("direction", "out"),)): 9,
        ("parlour_webhook_pending_deliveries", ()): 3,
    }
    assert {key: got.get(key) for key in expected} == expected
    assert got[("parlour_build_info", (("version", __version__),))] == 1
    assert ("process_cpu_seconds_total", ()) in got


async def test_openmetrics_when_asked_for() -> None:
    async with client_for(ParlourCollector(webhook_pending=lambda: 0)) as client:
        response = await client.get(
            "/metrics",
            headers={
                "Authorization": f"Bearer {TOKEN}",
                "Accept": "application/openmetrics-text; version=1.0.0",
            },
        )
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.endswith("# EOF\n")


async def test_without_an_sfu_the_media_families_are_absent() -> None:
    async with client_for(ParlourCollector(webhook_pending=lambda: 0)) as client:
        response = await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    names = {name for name, _ in samples(response.text)}
    assert "parlour_webhook_pending_deliveries" in names
    assert not {n for n in names if n.startswith(("parlour_rooms", "parlour_rtp"))}


def test_metrics_token_is_configured_or_derived_from_the_server_secret(tmp_path: Path) -> None:
    configured = Config.from_env({"PARLOUR_METRICS_TOKEN": "abc"}, data_dir=tmp_path)
    assert load_metrics_token(configured) == "abc"
    assert "abc" not in repr(configured)

    config = Config(data_dir=tmp_path)
    derived = load_metrics_token(config)
    assert len(derived) == 32 and int(derived, 16) >= 0
    assert load_metrics_token(config, load_server_secret(config)) == derived  # stable
    assert derived.encode() not in load_server_secret(config)
    other = Config(data_dir=tmp_path, secret_key="another secret")
    assert load_metrics_token(other) not in (derived, "another secret")


# -- the SFU's snapshot -----------------------------------------------------------------------


class NoListener:
    def send_offer(self, pc_id: str, revision: int, sdp: str) -> None:
        pass

    def subscriptions_changed(self, subscribed: Sequence[tuple[TrackSid, str]]) -> None:
        pass


def video_packet(seq: int) -> bytes:
    return struct.pack("!BBHII", 0x80, VP8, seq, 3000 * seq, VIDEO_SSRC) + b"\x90\x00media"


@pytest.fixture
async def plane() -> AsyncIterator[SfuMediaPlane]:
    socket = await MediaSocket.bind("127.0.0.1", 0)
    sfu = SfuMediaPlane(socket, Certificate.generate())
    try:
        yield sfu
    finally:
        sfu.close()
        await asyncio.sleep(0.01)  # the peers' DTLS shutdown tasks
        await socket.wait_closed()


async def test_plane_stats_count_live_peers_and_keep_what_closed_ones_counted(
    plane: SfuMediaPlane,
) -> None:
    empty = plane.stats()
    assert (empty.rooms, empty.participants) == (0, 0)
    assert empty.counters == MediaCounters()

    peer = plane.open_session(ROOM, ParticipantSid("PA" + "1" * 32), NoListener(), ["VP8"])
    plane.open_session(ROOM, ParticipantSid("PA" + "2" * 32), NoListener(), ["VP8"])
    assert await peer.client_description("pc", "offer", 1, OFFER, [AUDIO_ID, VIDEO_ID, DATA_ID])
    for seq in (100, 101, 104):  # 102 and 103 lost
        peer._on_rtp(video_packet(seq))  # what DtlsSrtpTransport hands over, unprotected
    assert peer.dtls is not None
    peer.dtls.rtp_packets_received, peer.dtls.rtp_bytes_received = 3, 300
    peer.plis_sent = 1
    plane.socket.dropped = 2

    live = plane.stats()
    assert (live.rooms, live.participants) == (1, 2)
    assert live.published_tracks == {"audio": 1, "video": 1, "data": 0}
    assert live.subscribed_tracks == {"audio": 0, "video": 0, "data": 0}
    assert (live.counters.rtp_packets_received, live.counters.rtp_bytes_received) == (3, 300)
    assert (live.counters.plis_sent, live.counters.datagrams_dropped_in) == (1, 2)
    assert live.counters.rtp_packets_lost == 2

    peer._on_rtp(video_packet(102))  # late: cumulative loss drops to 1, the counter holds
    assert plane.stats().counters.rtp_packets_lost == 2

    peer.close()
    after = plane.stats()
    assert (after.rooms, after.participants) == (1, 1)
    assert after.published_tracks == {"audio": 0, "video": 0, "data": 0}
    assert after.counters == live.counters
