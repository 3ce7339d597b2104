"""ICE-TCP: a client whose UDP is blocked still connects to the SFU, over its passive TCP
candidate (RFC 6544, RFC 4571 framing), without TURN. The browser (Chromium, or Firefox:
`[chromium]`/`[firefox]`) runs in a network namespace behind a router whose nftables rules drop
every UDP packet (`conftest.natted`, the rules removed after), beside a Chromium on the
server's own network; the SFU offers both candidates. Without ICE-TCP
(`PARLOUR_MEDIA_TCP=false`) the same client never gets media and is disconnected with 53405."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser.netkit import (
    NattedClient,
    OpenOn,
    joined_either_side,
    selected_pairs,
    tls_server_for,
)
from tests.helpers import new_account

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.slow]

NO_UDP = """
table inet parlour_no_udp {
  chain forward {
    type filter hook forward priority filter; policy accept;
    meta l4proto udp counter drop
  }
}
"""


@pytest.fixture
def firewalled(natted: NattedClient) -> Iterator[NattedClient]:
    """A client network whose router forwards no UDP at all."""
    natted.router_nft(NO_UDP)
    yield natted


async def test_a_client_without_udp_connects_over_tcp(
    firewalled: NattedClient, either_side: tuple[OpenOn, OpenOn], tmp_path: Path
) -> None:
    with tls_server_for(firewalled, tmp_path, media_host=firewalled.server) as server:
        acct = new_account(server)
        async with joined_either_side(either_side, server, acct, "no-udp") as (alice, bob):
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


@pytest.mark.chromium_only(
    "what it checks is the SFU's connect timeout ending a session with no ICE path (53405),"
    " whatever the browser; Firefox's SDK reporting 53405 when the SFU ends its media is"
    " test_net_nat.py's [firefox] variant"
)
async def test_without_ice_tcp_the_same_client_gets_no_media(
    firewalled: NattedClient, either_side: tuple[OpenOn, OpenOn], tmp_path: Path
) -> None:
    open_behind, _ = either_side
    with tls_server_for(
        firewalled,
        tmp_path,
        media_host=firewalled.server,
        media_tcp=False,
        media_connect_timeout_seconds=5.0,
    ) as server:
        acct = new_account(server)
        alice = await open_behind(server, "alice")
        try:
            await alice.join_as_name(acct, "no-udp-no-tcp")
            [gone] = await alice.wait_for_events("disconnected", within=40)
            assert gone["code"] == 53405, gone
        finally:
            await alice.close()
