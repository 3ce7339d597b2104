"""Track switch-off with the real SDK: a subscriber in manual switch-off control switches a
remote video off (the SFU stops forwarding it: no more frames, `switchedOff`) and on again
(`switchedOn`, frames flowing again within seconds, from a keyframe); with a subscription
bitrate cap, the lower-priority of two videos is switched off."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from parlour.testing import ServerThread
from tests.browser.harness import BrowserParticipant, OpenParticipant, open_pages
from tests.helpers import Account

pytestmark = [pytest.mark.browser, pytest.mark.integration]


async def frames(page: BrowserParticipant, track_sid: str) -> int:
    state: dict[str, Any] | None = await page.video_state(track_sid)
    return int(state["framesDecoded"]) if state else 0


async def frames_grow(page: BrowserParticipant, track_sid: str, within: float) -> bool:
    start = await frames(page, track_sid)
    for _ in range(int(within / 0.25)):
        await asyncio.sleep(0.25)
        if await frames(page, track_sid) > start + 3:
            return True
    return False


async def test_manual_switch_off_and_on(
    open_page: OpenParticipant, browser_account: Account
) -> None:
    acct = browser_account
    async with asyncio.timeout(120):
        alice, bob = await open_pages(open_page, "alice", "bob")
        await alice.join_as_name(acct, "switch-manual", audio=False)
        profile = {"video": {"clientTrackSwitchOffControl": "manual"}}
        await bob.join_as_name(
            acct, "switch-manual", audio=False, video=False, bandwidthProfile=profile
        )
        [sub] = await bob.wait_for_events("trackSubscribed", kind="video", within=30)
        sid = sub["trackSid"]
        assert await frames_grow(bob, sid, 20), "video never played"

        await bob.evaluate("(sid) => window.remoteTracks[sid].switchOff()", sid)
        await bob.wait_for_events("switchedOff", trackSid=sid, within=20)
        await asyncio.sleep(0.5)  # what was in flight arrives
        assert not await frames_grow(bob, sid, 2), "frames still arrive when switched off"

        await bob.evaluate("(sid) => window.remoteTracks[sid].switchOn()", sid)
        await bob.wait_for_events("switchedOn", trackSid=sid, within=20)
        assert await frames_grow(bob, sid, 5), "video did not come back"


async def test_a_bitrate_cap_switches_off_the_lower_priority_video(
    open_page: OpenParticipant, browser_server: ServerThread, browser_account: Account
) -> None:
    acct = browser_account
    async with asyncio.timeout(120):
        alice, carol, bob = await open_pages(open_page, "alice", "carol", "bob")
        room = "switch-cap"
        for page in (alice, carol):
            await page.join_as_name(acct, room, audio=False)
        await carol.evaluate(
            "() => window.room.localParticipant.videoTracks.forEach((p) => p.setPriority('low'))"
        )
        profile = {"video": {"maxSubscriptionBitrate": 150_000}}
        await bob.join_as_name(acct, room, audio=False, video=False, bandwidthProfile=profile)
        subs = await bob.wait_for_events("trackSubscribed", 2, kind="video", within=30)
        by_name = {s["participant"]: s["trackSid"] for s in subs}
        await bob.wait_for_events("switchedOff", trackSid=by_name["carol"], within=30)
        assert not await bob.events("switchedOff") or all(
            e["trackSid"] != by_name["alice"] for e in await bob.events("switchedOff")
        )
        assert await frames_grow(bob, by_name["alice"], 10)
        assert not await frames_grow(bob, by_name["carol"], 2)
        # The SFU forwards only alice's video to bob now: its egress to bob is one video.
        [bob_sid] = {e["participantSid"] for e in await alice.events("participantConnected")} - {
            e["participantSid"] for e in await bob.events("participantConnected")
        }
        peer = browser_server.parlour.sfu.peers[bob_sid]
        paused = sorted(c.paused for c in peer._consumers.values() if c.info.kind == "video")
        assert paused == [False, True]
