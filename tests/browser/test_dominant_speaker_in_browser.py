"""The real SDK's `dominantSpeakerChanged`: in a room of three where only one page has a
microphone (Chromium's fake audio device), the two others see it as the dominant speaker."""

from __future__ import annotations

import asyncio

import pytest

from parlour.testing import ServerThread
from tests.browser.harness import OpenParticipant
from tests.helpers import Account, access_token

pytestmark = [pytest.mark.browser, pytest.mark.integration]

ROOM = "dominant-speaker"


async def test_the_only_microphone_is_the_dominant_speaker(
    open_page: OpenParticipant, browser_server: ServerThread, browser_account: Account
) -> None:
    acct = browser_account
    async with asyncio.timeout(90):
        alice, bob, carol = (
            await open_page("alice"),
            await open_page("bob"),
            await open_page("carol"),
        )
        for page, audio in ((alice, True), (bob, False), (carol, False)):
            joined = await page.join(
                access_token(acct, page.name),
                ROOM,
                audio=audio,
                video=False,
                dominantSpeaker=True,
            )
            assert "error" not in joined, joined
        for page in (bob, carol):
            await page.wait_for_events("dominantSpeakerChanged", participant="alice", within=30)
        # The talk moves: alice's microphone goes quiet, bob starts one.
        await alice.evaluate(
            "() => window.room.localParticipant.audioTracks.forEach((p) => p.track.disable())"
        )
        await bob.evaluate(
            """async () => {
                const track = await window.Twilio.Video.createLocalAudioTrack();
                await window.room.localParticipant.publishTrack(track);
            }"""
        )
        for page in (alice, carol):
            await page.wait_for_events("dominantSpeakerChanged", participant="bob", within=30)
