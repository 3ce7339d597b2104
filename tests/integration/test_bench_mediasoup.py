"""The benchmark's mediasoup adapter forwards media end to end: a real mediasoup worker (the
peer build), the Node adapter, and lean endpoints joined by two load generators (two control
connections, so producers are announced across them). Skipped where mediasoup cannot run
(no node, no worker build, npm package not installed: `bench.mediasoup.unavailable`)."""

from __future__ import annotations

import asyncio

import pytest

from bench import mediasoup
from bench.loadgen import LoadGenerator
from bench.procstat import ProcessTree

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(mediasoup.unavailable() is not None, reason=str(mediasoup.unavailable())),
]

LOOP = {"seconds": 2.0, "width": 320, "height": 180, "video_kbps": 300}


def _spec(identity: str, expect_media: bool) -> dict[str, object]:
    return {"identity": identity, "publish": "av", "subscribe": True, "expect_media": expect_media}


async def test_three_lean_participants_exchange_media_through_mediasoup() -> None:
    async with mediasoup.MediasoupServer(workers=2) as server:
        assert len(server.worker_pids) == 2
        workers = list(server.worker_pids)
        # The workers are the Node process's children: what the benchmark's CPU covers.
        tree_pids = set(ProcessTree(server.pid).pids())
        assert set(server.worker_pids) <= tree_pids
        config = {"server": "mediasoup", "mediasoup_port": server.port, "loop": LOOP}
        first = LoadGenerator({**config, "mediasoup_room": "ms-test"})
        second = LoadGenerator({**config, "mediasoup_room": "ms-test"})
        await first.setup()
        await second.setup()
        try:
            assert await first.join([_spec("a", False), _spec("b", True)]) == {
                "ok": 2,
                "errors": [],
            }
            assert await second.join([_spec("c", True)]) == {"ok": 1, "errors": []}
            await asyncio.sleep(1.0)
            first.reset()
            second.reset()
            await asyncio.sleep(2.0)
            reports = [first.report(), second.report()]
            control = await mediasoup.MediasoupControl.connect(server.port)
            egress = await control.request("egress")
            await control.close()
        finally:
            await first.leave()
            await second.leave()
            await first.janus.close()
            await second.janus.close()
        for report in reports:
            assert report["errors"] == [] and report["no_media"] == [], report
            assert report["lost"] == 0
            assert report["keyframes"] >= 1
            assert report["delays_ns"] and max(report["delays_ns"]) < 1e9
        # Each of three receives the other two's audio and video.
        assert sum(r["streams"] for r in reports) == 12
        packets = sum(r["packets"] for r in reports)
        expected = sum(r["expected"] for r in reports)
        # 2 s of 50 audio + ~60 video packets per second per stream pair, six of them.
        assert 900 < packets <= expected < 1800
        # mediasoup's own count (since the start, the window is 2 s of it) covers every one.
        assert egress["consumers"] == 12 and egress["packets"] >= packets
        joins = [j for r in reports for j in r["join_ms"]]
        assert len(joins) == 2 and all(0 < j < 5000 for j in joins)
        assert mediasoup.process_running(server.pid)
    assert not any(
        mediasoup.process_running(pid) for pid in workers
    )  # they exited with the adapter
