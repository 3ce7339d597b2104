"""Scenario 4: changes mid-call reach the other page. `track.disable()`/`enable()` gives it
`trackDisabled`/`trackEnabled`; a canvas capture stream published as a second video track
(what a screen share is) is subscribed and plays, then `unpublishTrack` removes it; and
`room.disconnect()` gives it `participantDisconnected`."""

from __future__ import annotations

import asyncio

import pytest

from tests.browser.harness import BrowserParticipant, OpenParticipant, joined_pages, poll
from tests.helpers import Account

pytestmark = [pytest.mark.browser, pytest.mark.integration]

ROOM = "changes"


async def assert_plays(page: BrowserParticipant, track_sid: str, size: tuple[int, int]) -> None:
    first = await poll(
        lambda: page.video_state(track_sid),
        lambda s: s is not None and s["framesDecoded"] > 0 and s["videoWidth"] > 0,
        within=20,
        what=f"video {track_sid} to play on {page.name}",
    )
    assert first is not None and (first["videoWidth"], first["videoHeight"]) == size, first
    await poll(
        lambda: page.video_state(track_sid),
        lambda s: s is not None and s["framesDecoded"] >= first["framesDecoded"] + 10,
        within=10,
        what=f"video {track_sid} to keep decoding on {page.name}",
    )


async def test_publish_unpublish_disable_enable_screen_share_and_leave(
    open_page: OpenParticipant, browser_account: Account
) -> None:
    async with asyncio.timeout(60):
        alice, bob = await joined_pages(open_page, browser_account, ROOM, "alice", "bob")
        events = await bob.wait_for_events("trackSubscribed", 2, participant="alice")
        camera = next(e["trackSid"] for e in events if e["kind"] == "video")
        audio = next(e["trackSid"] for e in events if e["kind"] == "audio")
        await assert_plays(bob, camera, (640, 480))

        # disable()/enable(): the other side hears about both, for camera and microphone.
        await alice.evaluate("() => window.setEnabled('video', false)")
        await bob.wait_for_events("trackDisabled", trackSid=camera)
        await alice.evaluate("() => window.setEnabled('audio', false)")
        await bob.wait_for_events("trackDisabled", trackSid=audio)
        await alice.evaluate("() => window.setEnabled('video', true)")
        await bob.wait_for_events("trackEnabled", trackSid=camera)
        await alice.evaluate("() => window.setEnabled('audio', true)")
        await bob.wait_for_events("trackEnabled", trackSid=audio)

        # Screen share: a second video track from a canvas, published mid-call.
        screen = await alice.evaluate("() => window.publishCanvas('screen')")
        [shared] = await bob.wait_for_events("trackSubscribed", trackSid=screen)
        assert (shared["kind"], shared["trackName"]) == ("video", "screen")
        await assert_plays(bob, screen, (320, 240))
        await assert_plays(bob, camera, (640, 480))  # the camera is still there

        # unpublishTrack: the other side unsubscribes and sees it unpublished.
        await alice.evaluate("() => window.unpublish('screen')")
        await bob.wait_for_events("trackUnsubscribed", trackSid=screen)
        await bob.wait_for_events("trackUnpublished", trackSid=screen)

        # And a new camera track published mid-call plays too.
        second = await alice.evaluate("() => window.publishCamera('camera-2')")
        await bob.wait_for_events("trackSubscribed", trackSid=second)
        await assert_plays(bob, second, (640, 480))

        await alice.disconnect()
        await bob.wait_for_events("participantDisconnected", participant="alice")
        assert not await bob.events("disconnected")
