"""The room's recording state reaches the real SDK: RecordingRules changed over REST fire
`recordingStarted` and `recordingStopped` in every page, and `room.isRecording` is true for
a page that joins while the room is being recorded."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from parlour.testing import ServerThread
from tests.browser.harness import OpenParticipant
from tests.helpers import Account, access_token

pytestmark = [pytest.mark.browser, pytest.mark.integration]

ROOM = "recording-state"


async def test_recording_rules_start_and_stop_recording_in_the_pages(
    open_page: OpenParticipant, browser_server: ServerThread, browser_account: Account
) -> None:
    acct = browser_account
    async with (
        asyncio.timeout(90),
        httpx.AsyncClient(
            base_url=browser_server.base_url, auth=(acct.sid, acct.auth_token)
        ) as rest,
    ):
        created = await rest.post("/v1/Rooms", data={"UniqueName": ROOM})
        assert created.status_code == 201, created.text
        alice, bob = await open_page("alice"), await open_page("bob")
        for page in (alice, bob):
            joined = await page.join(access_token(acct, page.name), ROOM, video=False)
            assert "error" not in joined, joined
        [connected] = await alice.events("connected")
        assert connected["isRecording"] is False

        def rules(kind: str) -> dict[str, str]:
            return {"Rules": json.dumps([{"type": kind, "all": True}])}

        r = await rest.post(f"/v1/Rooms/{ROOM}/RecordingRules", data=rules("include"))
        assert r.status_code == 200, r.text
        for page in (alice, bob):
            await page.wait_for_events("recordingStarted")
        carol = await open_page("carol")
        joined = await carol.join(access_token(acct, "carol"), ROOM, video=False)
        assert "error" not in joined, joined
        [late] = await carol.events("connected")
        assert late["isRecording"] is True

        r = await rest.post(f"/v1/Rooms/{ROOM}/RecordingRules", data=rules("exclude"))
        assert r.status_code == 200, r.text
        for page in (alice, bob, carol):
            await page.wait_for_events("recordingStopped")
        assert len(await alice.events("recordingStarted")) == 1
