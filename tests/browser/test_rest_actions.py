"""Scenario 6: REST actions reach the browser. Removing a participant with
`Status=disconnected` disconnects that page with Twilio's error 53204 (the other stays);
completing the room with `Status=completed` ends it for everyone with 53118."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from parlour.testing import ServerThread
from tests.browser.harness import OpenParticipant
from tests.helpers import Account, access_token

pytestmark = [pytest.mark.browser, pytest.mark.integration]

ROOM = "rest-actions"


async def test_rest_disconnect_and_complete_reach_the_pages(
    open_page: OpenParticipant, browser_server: ServerThread, browser_account: Account
) -> None:
    acct = browser_account
    async with (
        asyncio.timeout(60),
        httpx.AsyncClient(
            base_url=browser_server.base_url, auth=(acct.sid, acct.auth_token)
        ) as rest,
    ):
        alice, bob, carol = (
            await open_page("alice"),
            await open_page("bob"),
            await open_page("carol"),
        )
        for page in (alice, bob, carol):
            joined = await page.join(access_token(acct, page.name), ROOM, video=False)
            assert "error" not in joined, joined
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
