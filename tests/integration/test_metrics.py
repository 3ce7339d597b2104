"""`/metrics` on a real server: the bearer token (`parlour metrics-token`) opens it, and the
room, participant, track and RTP counters follow two Python SDK participants who publish
audio and video through the SFU, and stay put after they leave."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable, Iterator

import aioice.ice
import httpx
import pytest
from aiortc import AudioStreamTrack
from prometheus_client.parser import text_string_to_metric_families

from parlour.client.media import PreEncodedVideoTrack, encode_test_clip
from parlour.client.video import LocalTrackInfo, Room
from parlour.testing import ServerThread
from tests.helpers import Account, join, new_account

pytestmark = pytest.mark.integration

Samples = dict[str, float]


@pytest.fixture(autouse=True)
def loopback_ice(monkeypatch: pytest.MonkeyPatch) -> None:
    # aioice never gathers 127.0.0.1 by itself; the server's candidate is on loopback here.
    monkeypatch.setattr(
        aioice.ice, "get_host_addresses", lambda use_ipv4=True, use_ipv6=True: ["127.0.0.1"]
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    # Status callbacks to loopback port 9 (nothing listens) wait 60 s between attempts.
    with ServerThread(
        tmp_path_factory.mktemp("metrics"),
        webhook_allow_private=True,
        webhook_retry_initial_seconds=60,
    ) as srv:
        yield srv


@pytest.fixture(scope="module")
def token(server: ServerThread) -> str:
    """What `parlour metrics-token` prints for the server's data dir (derived, not set)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARLOUR_")}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "parlour",
            "metrics-token",
            "--data-dir",
            str(server.config.data_dir),
        ],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        timeout=60,
    )
    printed = done.stdout.strip()
    assert len(printed) == 32
    return printed


@pytest.fixture
def acct(server: ServerThread) -> Account:
    return new_account(server)


def parse(text: str) -> Samples:
    """Sample name with its labels (`name{k="v"}`) → value."""
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            out[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return out


async def scrape(server: ServerThread, token: str) -> Samples:
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        response = await client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    return parse(response.text)


async def scrape_until(
    server: ServerThread, token: str, check: Callable[[Samples], str | None], limit: float = 20
) -> Samples:
    """Scrape until `check` (which says why it is not satisfied yet) returns None."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while (reason := check(got := await scrape(server, token))) is not None:
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {limit} s: {reason}")
        await asyncio.sleep(0.1)
    return got


async def test_metrics_refuse_a_missing_or_wrong_token(
    server: ServerThread, token: str, acct: Account
) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        missing = await client.get("/metrics")
        wrong = await client.get("/metrics", headers={"Authorization": "Bearer " + "0" * 32})
        account = await client.get("/metrics", auth=(acct.sid, acct.auth_token))
        right = await client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    for refused in (missing, wrong, account):
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"].startswith("Bearer ")
        assert "parlour_" not in refused.text
    assert right.status_code == 200
    assert right.headers["content-type"].startswith("text/plain")
    got = parse(right.text)
    assert got["parlour_webhook_pending_deliveries"] == 0
    assert got["process_cpu_seconds_total"] > 0
    assert got["process_resident_memory_bytes"] > 0


async def test_counters_follow_media_between_two_participants(
    server: ServerThread, token: str, acct: Account
) -> None:
    before = await scrape(server, token)
    assert (before["parlour_rooms"], before["parlour_participants"]) == (0, 0)
    assert before["parlour_signaling_sessions"] == 0
    assert before["parlour_asyncio_tasks"] >= 1  # the scrape's own task, at least

    clip = encode_test_clip(width=160, height=120, frames=30, gop=15)
    rooms: list[Room] = []
    for name in ("alice", "bob"):
        tracks = (
            LocalTrackInfo.from_track(AudioStreamTrack(), f"{name}-mic"),
            LocalTrackInfo.from_track(PreEncodedVideoTrack(clip), f"{name}-cam"),
        )
        rooms.append(await join(server, acct, name, "metrics", tracks=tracks))
    alice, bob = rooms
    try:
        await alice.wait_for(lambda: len(alice.remote_media) == 2, 20)
        await bob.wait_for(lambda: len(bob.remote_media) == 2, 20)
        for room in rooms:
            for track in room.remote_media.values():
                await track.recv()  # media really arrives, decoded

        during = await scrape(server, token)
        assert (during["parlour_rooms"], during["parlour_participants"]) == (1, 2)
        assert during["parlour_signaling_sessions"] == 2
        assert during["parlour_recordings_in_progress"] == 0
        assert during["parlour_asyncio_tasks"] > before["parlour_asyncio_tasks"]
        for direction in ("published", "subscribed"):
            for kind, count in (("audio", 2), ("video", 2), ("data", 0)):
                assert during[f'parlour_{direction}_tracks{{kind="{kind}"}}'] == count

        def flowing(now: Samples) -> str | None:
            for name in ("received", "sent"):
                packets = now[f"parlour_rtp_{name}_packets_total"]
                octets = now[f"parlour_rtp_{name}_bytes_total"]
                if packets < during[f"parlour_rtp_{name}_packets_total"] + 50:
                    return f"{name} packets: {packets}"
                if octets < packets * 12:  # an RTP header at least, each
                    return f"{name} bytes: {octets} for {packets} packets"
            return None

        assert during["parlour_rtp_received_packets_total"] > 0
        assert during["parlour_rtp_sent_packets_total"] > 0
        latest = await scrape_until(server, token, flowing)
        assert latest["parlour_rtcp_plis_sent_total"] >= 1  # keyframes asked for subscribers
        assert latest["parlour_srtp_errors_total"] == 0
    finally:
        for room in rooms:
            await room.disconnect()

    def left(now: Samples) -> str | None:
        live = (
            now["parlour_rooms"],
            now["parlour_participants"],
            now["parlour_signaling_sessions"],
        )
        return None if live == (0, 0, 0) else f"rooms, participants, sessions: {live}"

    gone = await scrape_until(server, token, left)
    # What closed peers counted stays in the totals.
    for name in (
        "parlour_rtp_received_packets_total",
        "parlour_rtp_received_bytes_total",
        "parlour_rtp_sent_packets_total",
        "parlour_rtp_sent_bytes_total",
        "parlour_rtcp_plis_sent_total",
        "parlour_rtp_lost_packets_total",
    ):
        assert gone[name] >= latest[name], name


async def test_webhook_queue_depth_counts_callbacks_waiting_for_delivery(
    server: ServerThread, token: str, acct: Account
) -> None:
    def pending_at_least(n: float) -> Callable[[Samples], str | None]:
        def check(now: Samples) -> str | None:
            pending = now["parlour_webhook_pending_deliveries"]
            return None if pending >= n else f"pending deliveries: {pending}"

        return check

    before = (await scrape(server, token))["parlour_webhook_pending_deliveries"]
    auth = (acct.sid, acct.auth_token)
    async with httpx.AsyncClient(base_url=server.base_url, auth=auth) as rest:
        created = await rest.post(
            "/v1/Rooms",
            data={"UniqueName": "hooked", "StatusCallback": "http://127.0.0.1:9/callbacks"},
        )
        assert created.status_code == 201, created.text
        await scrape_until(server, token, pending_at_least(before + 1))
        ended = await rest.post("/v1/Rooms/hooked", data={"Status": "completed"})
        assert ended.is_success, ended.text
    # room-created is retried in a minute; room-ended waits behind it, in order.
    await scrape_until(server, token, pending_at_least(before + 2))
