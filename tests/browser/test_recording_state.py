"""The room's recording state reaches the real SDK: RecordingRules changed over REST fire
`recordingStarted` and `recordingStopped` in every page, and `room.isRecording` is true for
a page that joins while the room is being recorded."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from tests.browser.harness import OpenParticipant, joined_pages
from tests.helpers import Account

pytestmark = [pytest.mark.browser, pytest.mark.integration]

ROOM = "recording-state"


async def test_recording_rules_start_and_stop_recording_in_the_pages(
    open_page: OpenParticipant, browser_account: Account, browser_rest: httpx.AsyncClient
) -> None:
    acct, rest = browser_account, browser_rest
    async with asyncio.timeout(90):
        created = await rest.post("/v1/Rooms", data={"UniqueName": ROOM})
        assert created.status_code == 201, created.text
        alice, bob = await joined_pages(open_page, acct, ROOM, "alice", "bob", video=False)
        [connected] = await alice.events("connected")
        assert connected["isRecording"] is False

        def rules(kind: str) -> dict[str, str]:
            return {"Rules": json.dumps([{"type": kind, "all": True}])}

        r = await rest.post(f"/v1/Rooms/{ROOM}/RecordingRules", data=rules("include"))
        assert r.status_code == 200, r.text
        for page in (alice, bob):
            await page.wait_for_events("recordingStarted")
        carol = await open_page("carol")
        await carol.join_as_name(acct, ROOM, video=False)
        [late] = await carol.events("connected")
        assert late["isRecording"] is True

        r = await rest.post(f"/v1/Rooms/{ROOM}/RecordingRules", data=rules("exclude"))
        assert r.status_code == 200, r.text
        for page in (alice, bob, carol):
            await page.wait_for_events("recordingStopped")
        assert len(await alice.events("recordingStarted")) == 1
