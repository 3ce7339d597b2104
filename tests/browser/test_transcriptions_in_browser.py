"""Real-time transcriptions with the real SDK in Chromium: alice's microphone is a WAV that
espeak-ng spoke (`--use-file-for-fake-audio-capture`, this test's own browser), the room
transcribes on connect, and bob's `room.on('transcription')` (connected with
`receiveTranscriptions: true`) carries most of the sentence's words; carol, who did not
ask, gets none."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser

from parlour.testing import ServerThread
from tests.browser.harness import BrowserParticipant, open_participant
from tests.browser.launcher import headless_chromium
from tests.helpers import Account
from tests.speech_samples import have_espeak, speak_wav, word_error_rate

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.skipif(not have_espeak(), reason="espeak-ng is not installed"),
    pytest.mark.chromium_only(
        "the words come from a WAV file played as Chromium's microphone"
        " (--use-file-for-fake-audio-capture); Firefox's fake microphone is a steady 1 kHz tone"
    ),
]

ROOM = "captions-in-browser"
SENTENCE = "i would like to order a pizza"


@pytest.fixture
async def speaking_browser(tmp_path: Path) -> AsyncIterator[Browser]:
    """Chromium whose fake microphone plays the spoken sentence (looped)."""
    wav = speak_wav(SENTENCE, tmp_path / "speech.wav", pad_seconds=1.5)
    async with headless_chromium(f"--use-file-for-fake-audio-capture={wav}") as chromium:
        yield chromium


async def test_the_sdk_hears_what_was_said(
    speaking_browser: Browser,
    browser_server: ServerThread,
    browser_account: Account,
    browser_rest: httpx.AsyncClient,
) -> None:
    created = await browser_rest.post(
        "/v1/Rooms",
        data={
            "UniqueName": ROOM,
            "TranscribeParticipantsOnConnect": "true",
            "TranscriptionsConfiguration": '{"languageCode": "en-US", "partialResults": true}',
        },
    )
    assert created.status_code == 201, created.text
    pages: list[BrowserParticipant] = []
    try:
        async with asyncio.timeout(150):
            for name in ("bob", "carol", "alice"):
                pages.append(await open_participant(speaking_browser, browser_server, name))
            bob, carol, alice = pages
            await bob.join_as_name(
                browser_account, ROOM, audio=False, video=False, receiveTranscriptions=True
            )
            await carol.join_as_name(browser_account, ROOM, audio=False, video=False)
            joined = await alice.join_as_name(browser_account, ROOM, audio=True, video=False)
            finals = await bob.wait_for_events("transcription", partial_results=False, within=120)
            final = finals[0]
            wer = word_error_rate(SENTENCE, final["transcription"])
            print(f"the SDK heard {final['transcription']!r}: WER {wer:.0%}")
            print(
                "partial results:", [e["transcription"] for e in await bob.events("transcription")]
            )
            assert wer <= 0.5, final
            assert final["participant"] == joined["participantSid"]
            assert final["track"].startswith("MT")
            assert final["type"] == "extension_transcriptions"
            assert final["language_code"] == "en-US"
            assert isinstance(final["sequence_number"], int)
            assert final["timestamp"].endswith("Z")
            partials = await bob.events("transcription")
            assert all(e["participant"] == joined["participantSid"] for e in partials)
            assert await carol.events("transcription") == []
    finally:
        for page in pages:
            await page.close()
