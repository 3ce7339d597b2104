"""Scenario 5: a network blip. The page's signaling WebSocket is cut abnormally from the test;
the SDK says `reconnecting`, resumes its session (`reconnected`), stays in the room, and the
media it receives keeps decoding."""

from __future__ import annotations

import asyncio

import pytest

from tests.browser.harness import OpenParticipant, joined_pages, poll
from tests.helpers import Account

pytestmark = [pytest.mark.browser, pytest.mark.integration]

ROOM = "blip"


async def test_signaling_blip_reconnects_and_media_resumes(
    open_page: OpenParticipant, browser_account: Account
) -> None:
    async with asyncio.timeout(60):
        alice, bob = await joined_pages(
            open_page, browser_account, ROOM, "alice", "bob", debug=True
        )
        events = await alice.wait_for_events("trackSubscribed", 2, participant="bob")
        video = next(e["trackSid"] for e in events if e["kind"] == "video")

        async def frames() -> int:
            state = await alice.video_state(video)
            return 0 if state is None else int(state["framesDecoded"])

        await poll(frames, lambda n: n > 0, within=20, what="bob's video on alice")

        assert await alice.cut_signaling() >= 1
        await alice.wait_for_events("reconnecting", within=10)
        await alice.wait_for_events("reconnected", within=20)
        assert not await alice.events("disconnected")
        state = await alice.evaluate("() => window.room.state")
        assert state == "connected"

        after = await frames()
        await poll(frames, lambda n: n >= after + 20, within=15, what="video to resume")
        # The other side never lost alice, and both are still one room.
        assert not await bob.events("participantDisconnected")
        assert await alice.evaluate("() => window.room.participants.size") == 1
        assert alice.room_sid == bob.room_sid
