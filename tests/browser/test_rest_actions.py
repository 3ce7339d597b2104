"""Scenario 6: REST actions reach the browser. Removing a participant with
`Status=disconnected` disconnects that page with Twilio's error 53204 (the other stays);
completing the room with `Status=completed` ends it for everyone with 53118."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.browser.harness import OpenParticipant, joined_pages
from tests.helpers import Account

pytestmark = [pytest.mark.browser, pytest.mark.integration]

ROOM = "rest-actions"


async def test_rest_disconnect_and_complete_reach_the_pages(
    open_page: OpenParticipant, browser_account: Account, browser_rest: httpx.AsyncClient
) -> None:
    acct, rest = browser_account, browser_rest
    async with asyncio.timeout(60):
        alice, bob, carol = await joined_pages(
            open_page, acct, ROOM, "alice", "bob", "carol", video=False
        )
        await alice.wait_for_events("participantConnected", 2)

        removed = await rest.post(
            f"/v1/Rooms/{ROOM}/Participants/bob", data={"Status": "disconnected"}
        )
        assert removed.status_code in (200, 202), removed.text
        assert removed.json()["status"] == "disconnected"
        [gone] = await bob.wait_for_events("disconnected")
        assert gone["code"] == 53204, gone
        await alice.wait_for_events("participantDisconnected", participant="bob")
        await carol.wait_for_events("participantDisconnected", participant="bob")
        assert not await alice.events("disconnected")

        completed = await rest.post(f"/v1/Rooms/{ROOM}", data={"Status": "completed"})
        assert completed.status_code in (200, 202), completed.text
        assert completed.json()["status"] == "completed"
        for page in (alice, carol):
            [ended] = await page.wait_for_events("disconnected")
            assert ended["code"] == 53118, ended
        assert len(await bob.events("disconnected")) == 1
