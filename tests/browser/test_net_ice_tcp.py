"""ICE-TCP: a client whose UDP is blocked still connects to the SFU, over its passive TCP
candidate (RFC 6544, RFC 4571 framing), without TURN. Chromium runs in a network namespace
behind a router whose nftables rules drop every UDP packet (made here, removed after); the
SFU offers both candidates. Without ICE-TCP (`PARLOUR_MEDIA_TCP=false`) the same client
never gets media and is disconnected with 53405."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser

from tests.browser.harness import open_participant
from tests.browser.netkit import (
    NattedClient,
    chromiums_either_side,
    joined_either_side,
    namespaces_missing,
    natted_client,
    selected_pairs,
    tls_server_for,
)
from tests.helpers import new_account

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.chromium_only(
        "Chromium either side of the UDP firewall this test makes (chromiums_either_side);"
        " Firefox in that client namespace is not done yet"
    ),
]

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
    async with chromiums_either_side(firewalled, tmp_path / "bin") as both:
        yield both


async def test_a_client_without_udp_connects_over_tcp(
    firewalled: NattedClient, browsers: tuple[Browser, Browser], tmp_path: Path
) -> None:
    with tls_server_for(firewalled, tmp_path, media_host=firewalled.server) as server:
        acct = new_account(server)
        async with joined_either_side(browsers, server, acct, "no-udp") as (alice, bob):
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


async def test_without_ice_tcp_the_same_client_gets_no_media(
    firewalled: NattedClient, browsers: tuple[Browser, Browser], tmp_path: Path
) -> None:
    behind, _ = browsers
    with tls_server_for(
        firewalled,
        tmp_path,
        media_host=firewalled.server,
        media_tcp=False,
        media_connect_timeout_seconds=8.0,
    ) as server:
        acct = new_account(server)
        alice = await open_participant(behind, server, "alice")
        try:
            await alice.join_as_name(acct, "no-udp-no-tcp")
            [gone] = await alice.wait_for_events("disconnected", within=40)
            assert gone["code"] == 53405, gone
        finally:
            await alice.close()
