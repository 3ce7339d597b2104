"""The real SDK's `dominantSpeakerChanged`: in a room of three where only one page has a
microphone (Chromium's fake audio device), the two others see it as the dominant speaker."""

from __future__ import annotations

import asyncio

import pytest

from tests.browser.harness import OpenParticipant, open_pages
from tests.helpers import Account

pytestmark = [pytest.mark.browser, pytest.mark.integration]

ROOM = "dominant-speaker"


@pytest.mark.chromium_only(
    "headless Firefox's fake microphone is a steady 1 kHz tone: a level that never changes is"
    " background noise to the dominant-speaker algorithm (Jitsi's, mediasoup's, ours), and"
    " WebAudio, which could gate it into beeps as Chromium's are, never starts here (no audio"
    " output device: AudioContext stays suspended)"
)
async def test_the_only_microphone_is_the_dominant_speaker(
    open_page: OpenParticipant, browser_account: Account
) -> None:
    acct = browser_account
    async with asyncio.timeout(90):
        alice, bob, carol = await open_pages(open_page, "alice", "bob", "carol")
        for page, audio in ((alice, True), (bob, False), (carol, False)):
            await page.join_as_name(acct, ROOM, audio=audio, video=False, dominantSpeaker=True)
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
