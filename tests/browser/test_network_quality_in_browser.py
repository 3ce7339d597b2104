"""The real SDK's network quality: with `networkQuality: {local: 1, remote: 1}` each page
gets levels for itself and for the other page (`networkQualityLevelChanged`), and its own
level drops when a fifth of the media sent to it is lost (dropped in a test hook on the
server's egress)."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from parlour.media.plane import SfuMediaPlane
from parlour.testing import ServerThread
from tests.browser.harness import OpenParticipant, joined_pages
from tests.helpers import Account

pytestmark = [pytest.mark.browser, pytest.mark.integration]

ROOM = "network-quality"
OPTIONS = {"networkQuality": {"local": 1, "remote": 1}}


async def test_levels_for_local_and_remote_participants_and_their_fall(
    open_page: OpenParticipant, browser_server: ServerThread, browser_account: Account
) -> None:
    acct = browser_account
    async with asyncio.timeout(120):
        alice, bob = await joined_pages(open_page, acct, ROOM, "alice", "bob", **OPTIONS)
        for page, other in ((alice, "bob"), (bob, "alice")):
            [mine] = (await page.wait_for_events("networkQuality", local=True, within=30))[:1]
            assert 1 <= mine["level"] <= 5, mine
            await page.wait_for_events("networkQuality", participant=other, within=30)

        # A fifth of what the SFU sends to bob is lost: bob's receive quality falls.
        sfu: SfuMediaPlane = browser_server.parlour.sfu
        [bob_sid] = [e["participantSid"] for e in await alice.events("participantConnected")]
        peer = sfu.peers[bob_sid]
        assert peer.dtls is not None
        send_rtp = peer.dtls.send_rtp
        lossy = random.Random(5)

        def drop_some(packet: bytes) -> None:
            if lossy.random() >= 0.2:
                send_rtp(packet)

        browser_server.call(_patch(peer, drop_some))
        for _ in range(80):
            levels = [e["level"] for e in await bob.events("networkQuality") if e["local"]]
            if levels and levels[-1] <= 2:
                break
            await asyncio.sleep(0.5)

        assert levels and levels[-1] <= 2, levels


async def _patch(peer: Any, send_rtp: object) -> None:
    """Everything sent to `peer` through `send_rtp`: its transport's C send side and its
    consumers' C lanes (the fast path) are set aside, so the Python path carries it all."""
    dtls = peer.dtls
    dtls._egress = None
    for consumer in peer._consumers.values():
        consumer._drop_lane()
        consumer.producer._regroup()
    dtls.send_rtp = send_rtp
