"""Simulcast with the real SDK: a Chrome publisher sends VP8 simulcast
(`preferredVideoCodecs: "auto"`, adaptive simulcast: two layers for 640×480); a
subscriber that renders the video small gets the low layer, one that renders it large the
high layer (`inbound-rtp` frameWidth), each from the render dimensions the SDK sends on
`render_hints`. Switching happens at keyframes, so frames keep being decoded."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from parlour.testing import ServerThread
from tests.browser.harness import BrowserParticipant, OpenParticipant, open_pages, poll
from tests.helpers import Account

pytestmark = [pytest.mark.browser, pytest.mark.integration]

PROFILE = {"video": {"mode": "collaboration"}}


async def inbound(page: BrowserParticipant, track_sid: str) -> dict[str, Any]:
    state = await page.video_state(track_sid)
    return (state or {}).get("inbound") or {}


async def wait_for_video(
    page: BrowserParticipant,
    track_sid: str,
    what: str,
    *,
    width: int | None = None,
    decoded: int | None = None,
    within: float = 40,
) -> dict[str, Any]:
    """`track_sid`'s inbound stats on `page` once its frames are `width` wide and more than
    `decoded` of them were decoded (each when given)."""

    def accept(s: dict[str, Any]) -> bool:
        return (width is None or s.get("frameWidth") == width) and (
            decoded is None or s.get("framesDecoded", 0) > decoded
        )

    return await poll(lambda: inbound(page, track_sid), accept, within=within, what=what)


async def render_at(page: BrowserParticipant, width: int, height: int) -> None:
    """Every video element of the page is shown at this size (the SDK reports it)."""
    await page.evaluate(
        """([w, h]) => {
            const style = document.createElement('style');
            style.textContent = `video { width: ${w}px; height: ${h}px; object-fit: fill; }`;
            document.head.appendChild(style);
        }""",
        [width, height],
    )


@pytest.mark.chromium_only(
    "twilio-video 2.36 simulcasts only in Chrome and Safari (PeerConnectionV2"
    " `_shouldApplySimulcast`): in Firefox it publishes one layer, so there is none to pick"
)
async def test_small_and_large_renderers_get_different_layers(
    open_page: OpenParticipant, browser_server: ServerThread, browser_account: Account
) -> None:
    acct = browser_account
    async with asyncio.timeout(150):
        alice, small, large = await open_pages(open_page, "alice", "small", "large")
        room = "simulcast-layers"
        # Adaptive simulcast: the SDK sets each layer's scale (2 layers for 640x480) and
        # keeps simulcast only because the server offers `publisher_hints`.
        await alice.join_as_name(acct, room, audio=False, preferredVideoCodecs="auto")
        await render_at(small, 160, 120)
        await render_at(large, 640, 480)
        for page in (small, large):
            await page.join_as_name(acct, room, audio=False, video=False, bandwidthProfile=PROFILE)
        [sub_small] = await small.wait_for_events("trackSubscribed", kind="video", within=30)
        [sub_large] = await large.wait_for_events("trackSubscribed", kind="video", within=30)

        # The SFU sees the publisher's layers (two for 640x480) with their keyframe sizes.
        publisher = next(
            p
            for p in browser_server.parlour.sfu.peers.values()
            if any(pr.layers for pr in p.producers.values())
        )
        [producer] = [p for p in publisher.producers.values() if p.kind == "video"]
        assert len(producer.layers) == 3, "the SDK munges three SSRCs into the SIM group"

        async def layer_sizes() -> list[tuple[int, int]]:
            return [(layer.width, layer.height) for layer in producer.layers if layer.packets]

        sizes = await poll(layer_sizes, lambda s: len(s) >= 2, within=30, what="two layers")
        assert sizes[0][0] < sizes[-1][0], sizes

        low = await wait_for_video(
            small,
            sub_small["trackSid"],
            "the small renderer decoding the low layer",
            width=sizes[0][0],
            decoded=10,
        )
        high = await wait_for_video(
            large,
            sub_large["trackSid"],
            "the large renderer decoding the high layer",
            width=sizes[-1][0],
            decoded=10,
        )
        assert low["frameWidth"] < high["frameWidth"]

        # Frames keep coming on both after the switches (the decoder saw one clean stream).
        for page, sid in ((small, sub_small["trackSid"]), (large, sub_large["trackSid"])):
            before = (await inbound(page, sid)).get("framesDecoded", 0)
            await poll(
                lambda page=page, sid=sid: inbound(page, sid),
                lambda s, before=before: s.get("framesDecoded", 0) > before + 20,
                within=20,
                what=f"{page.name} still decoding",
            )

        # Both subscribers negotiated transport-wide CC: the SFU stamps what it sends them
        # and Chrome's transport feedback drives their downlink estimates.
        for peer in browser_server.parlour.sfu.peers.values():
            if peer is publisher:
                continue
            assert peer.downlink.transport_cc is not None, "transport-cc was not negotiated"
            await poll(
                lambda peer=peer: asyncio.sleep(0, peer.downlink.estimator.feedbacks),
                lambda n: n > 5,
                within=10,
                what="transport feedback",
            )

        # The small renderer grows: it moves up to the high layer, at a keyframe.
        await render_at(small, 640, 480)
        await wait_for_video(
            small, sub_small["trackSid"], "the small renderer switching up", width=sizes[-1][0]
        )

        # Publisher hints: when both render small, nobody watches the high layer and the
        # publisher pauses it; when one grows again, it resumes and that one gets it.
        for page in (small, large):
            await render_at(page, 160, 120)
        high_layer = producer.layers[len(sizes) - 1]
        await poll(
            lambda: asyncio.sleep(0, high_layer.active(time.monotonic())),
            lambda active: not active,
            within=40,
            what="the publisher pausing the unwatched high layer",
        )
        await render_at(large, 640, 480)
        await wait_for_video(
            large,
            sub_large["trackSid"],
            "the high layer resumed for a large renderer",
            width=sizes[-1][0],
        )

        # Nobody watches any more (both subscribers leave, nothing records): every layer
        # rests, so the publisher's encoder does; a new subscriber brings the video back.
        for page in (small, large):
            await page.disconnect()

        async def arriving() -> list[bool]:
            now = time.monotonic()
            return [layer.active(now) for layer in producer.layers[: len(sizes)]]

        await poll(arriving, lambda a: not any(a), within=40, what="every layer paused")
        await large.join_as_name(acct, room, audio=False, video=False, bandwidthProfile=PROFILE)
        await large.wait_for_events("trackSubscribed", 2, kind="video", within=30)
        await wait_for_video(
            large,
            sub_large["trackSid"],
            "video back for a new subscriber",
            decoded=10,
            within=30,
        )
