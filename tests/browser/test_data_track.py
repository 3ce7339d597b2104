"""Scenario 2: a `LocalDataTrack` published by one page: the other page subscribes to it and
receives its messages, all of them, in the order they were sent."""

from __future__ import annotations

import asyncio

import pytest

from tests.browser.harness import OpenParticipant, joined_pages, poll
from tests.helpers import Account

pytestmark = [pytest.mark.browser, pytest.mark.integration]

ROOM = "data"
MESSAGES = [f"message {i} " + "x" * (i % 7) for i in range(50)]


async def test_data_track_messages_arrive_in_order(
    open_page: OpenParticipant, browser_account: Account
) -> None:
    async with asyncio.timeout(60):
        alice, bob = await joined_pages(
            open_page, browser_account, ROOM, "alice", "bob", audio=False, video=False
        )
        await alice.wait_for_events("participantConnected", participant="bob")

        track_sid = await alice.evaluate("() => window.publishData('chat')")
        assert track_sid.startswith("MT")
        [subscribed] = await bob.wait_for_events("trackSubscribed", participant="alice")
        assert (subscribed["kind"], subscribed["trackName"]) == ("data", "chat")

        await alice.evaluate("(m) => window.sendData('chat', m)", MESSAGES)

        async def received() -> list[str]:
            return [e["data"] for e in await bob.events("trackMessage")]

        got = await poll(
            received, lambda got: len(got) >= len(MESSAGES), within=15, what="data messages"
        )
        assert got == MESSAGES

        await alice.evaluate("() => window.sendData('chat', ['after'])")
        await bob.wait_for_events("trackMessage", data="after")
