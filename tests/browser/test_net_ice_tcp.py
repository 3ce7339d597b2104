"""ICE-TCP: a client whose UDP is blocked still connects to the SFU, over its passive TCP
candidate (RFC 6544, RFC 4571 framing), without TURN. Chromium runs in a network namespace
behind a router whose nftables rules drop every UDP packet (made here, removed after); the
SFU offers both candidates. Without ICE-TCP (`PARLOUR_MEDIA_TCP=false`) the same client
never gets media and is disconnected with 53405."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, async_playwright

from parlour.testing import ServerThread
from tests.browser.harness import CHROMIUM, CHROMIUM_FLAGS, BrowserParticipant, open_participant
from tests.browser.netkit import (
    NattedClient,
    assert_media_flows,
    chromium_in,
    namespaces_missing,
    natted_client,
    selected_pairs,
    self_signed,
)
from tests.helpers import new_account

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.slow]

FLAGS = [*CHROMIUM_FLAGS, "--ignore-certificate-errors"]
NO_UDP = """
table inet parlour_no_udp {
  chain forward {
    type filter hook forward priority filter; policy accept;
    meta l4proto udp counter drop
  }
}
"""


@pytest.fixture
def firewalled() -> Iterator[NattedClient]:
    """A client network whose router forwards no UDP at all."""
    if reason := namespaces_missing():
        pytest.skip(reason)
    with natted_client() as net:
        net.router_nft(NO_UDP)
        yield net


@pytest.fixture
async def browsers(
    firewalled: NattedClient, tmp_path: Path
) -> AsyncIterator[tuple[Browser, Browser]]:
    """Chromium behind the firewall, and Chromium on the server's own network."""
    async with async_playwright() as playwright:
        behind = await playwright.chromium.launch(
            executable_path=str(chromium_in(firewalled, tmp_path / "bin", CHROMIUM)),
            headless=True,
            args=FLAGS,
        )
        try:
            local = await playwright.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=FLAGS
            )
            try:
                yield behind, local
            finally:
                await local.close()
        finally:
            await behind.close()


def server_for(net: NattedClient, tmp_path: Path, **config: Any) -> ServerThread:
    tls = self_signed(tmp_path / "tls", net.server)  # cameras need a secure origin
    return ServerThread(
        tmp_path / "data",
        host=net.server,
        tls_cert=tls.cert,
        tls_key=tls.key,
        media_host=net.server,
        **config,
    )


async def test_a_client_without_udp_connects_over_tcp(
    firewalled: NattedClient, browsers: tuple[Browser, Browser], tmp_path: Path
) -> None:
    behind, local = browsers
    with server_for(firewalled, tmp_path) as server:
        acct = new_account(server)
        pages: list[BrowserParticipant] = []
        try:
            async with asyncio.timeout(120):
                alice = await open_participant(behind, server, "alice")
                pages.append(alice)
                bob = await open_participant(local, server, "bob")
                pages.append(bob)
                await alice.join_as_name(acct, "no-udp")
                await bob.join_as_name(acct, "no-udp")
                await asyncio.gather(
                    assert_media_flows(alice, "bob"), assert_media_flows(bob, "alice")
                )
                [pair] = await selected_pairs(alice)
                assert pair["local"]["protocol"] == "tcp", pair
                assert pair["remote"]["protocol"] == "tcp", pair
                assert pair["remote"]["tcpType"] == "passive", pair
                assert pair["remote"]["address"] == firewalled.server, pair
                [bob_pair] = await selected_pairs(bob)
                assert bob_pair["remote"]["protocol"] == "udp", bob_pair  # UDP still wins
                # The client did try UDP: the firewall dropped it.
                ruleset = firewalled.router_ruleset()
                assert re.search(r"udp counter packets [1-9]\d* .* drop", ruleset), ruleset
        finally:
            for page in pages:
                await page.close()


async def test_without_ice_tcp_the_same_client_gets_no_media(
    firewalled: NattedClient, browsers: tuple[Browser, Browser], tmp_path: Path
) -> None:
    behind, _ = browsers
    with server_for(
        firewalled, tmp_path, media_tcp=False, media_connect_timeout_seconds=8.0
    ) as server:
        acct = new_account(server)
        alice = await open_participant(behind, server, "alice")
        try:
            await alice.join_as_name(acct, "no-udp-no-tcp")
            [gone] = await alice.wait_for_events("disconnected", within=40)
            assert gone["code"] == 53405, gone
        finally:
            await alice.close()
