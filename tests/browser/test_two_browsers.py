"""The real, unmodified `twilio-video` 2.36.0 SDK in two headless Chromium pages joins one
Parlour room through `wsServer`, and each page plays the other's camera.

This is what proves the protocol: the SDK, not our own Python client, decides whether
Parlour's signaling, SDP and RTP are right.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.browser.harness import BrowserParticipant, OpenParticipant, joined_pages, poll
from tests.helpers import Account

pytestmark = [pytest.mark.browser, pytest.mark.integration]

FAKE_CAMERA = (640, 480)
ROOM = "browsers"


async def remote_tracks(page: BrowserParticipant, identity: str) -> dict[str, str]:
    """kind → track SID of what `page` subscribed to from `identity`."""
    events = await page.wait_for_events("trackSubscribed", 2, participant=identity)
    return {e["kind"]: e["trackSid"] for e in events}


async def assert_video_plays(page: BrowserParticipant, track_sid: str) -> None:
    """The `<video>` attached from the remote track has a size and decodes new frames."""
    first = await poll(
        lambda: page.video_state(track_sid),
        lambda s: s is not None and s["videoWidth"] > 0 and s["framesDecoded"] > 0,
        within=20,
        what=f"video {track_sid} to play on {page.name}",
    )
    assert first is not None
    assert (first["videoWidth"], first["videoHeight"]) == FAKE_CAMERA, first
    later = await poll(
        lambda: page.video_state(track_sid),
        lambda s: s is not None and s["framesDecoded"] >= first["framesDecoded"] + 20,
        within=10,
        what=f"video {track_sid} to keep decoding on {page.name}",
    )
    assert later is not None and (later["videoWidth"], later["videoHeight"]) == FAKE_CAMERA


async def assert_stats_reported(page: BrowserParticipant, remote: dict[str, str]) -> None:
    """`room.getStats()`: remote audio and video arrive; the SFU's receiver reports give the
    publisher loss and round-trip time for its own tracks (null without them)."""

    def complete(reports: list[dict[str, Any]]) -> bool:
        [report] = reports
        received = {
            t["trackSid"]: t["packetsReceived"]
            for t in report["remoteAudioTrackStats"] + report["remoteVideoTrackStats"]
        }
        [audio], [video] = report["localAudioTrackStats"], report["localVideoTrackStats"]
        return (
            set(received) == set(remote.values())
            and all(count > 0 for count in received.values())
            and video["packetsLost"] is not None
            and video["roundTripTime"] is not None
            and audio["packetsLost"] is not None
        )

    await poll(page.stats, complete, within=15, what=f"getStats() on {page.name}")


async def test_two_browsers_see_and_play_each_other(
    open_page: OpenParticipant, browser_account: Account
) -> None:
    async with asyncio.timeout(60):
        alice, bob = await joined_pages(
            open_page, browser_account, ROOM, "alice", "bob", debug=True
        )
        assert alice.room_sid == bob.room_sid

        await alice.wait_for_events("participantConnected", participant="bob")
        await bob.wait_for_events("participantConnected", participant="alice")
        alice_sees = await remote_tracks(alice, "bob")
        bob_sees = await remote_tracks(bob, "alice")
        assert set(alice_sees) == set(bob_sees) == {"audio", "video"}

        await asyncio.gather(
            assert_video_plays(alice, alice_sees["video"]),
            assert_video_plays(bob, bob_sees["video"]),
        )
        await assert_stats_reported(alice, alice_sees)
        await assert_stats_reported(bob, bob_sees)

        await bob.disconnect()
        await alice.wait_for_events("participantDisconnected", participant="bob")
        assert not await alice.events("disconnected")
