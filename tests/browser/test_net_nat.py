"""A client behind a NAT: Chromium runs in a network namespace whose only way out is a
masquerading router (veth pairs and nftables rules made here), and joins an SFU that binds
every address but advertises one (`--advertised-address`). Its host candidate is private and
unreachable; the SFU (ICE-lite) answers the checks that arrive from the NAT's address, media
flows both ways, and consent checks keep the session alive through the NAT well past the
consent timeout. The page is served over HTTPS (a self-signed certificate made here), since
browsers give cameras only to secure origins and this one is not localhost."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser

from tests.browser.netkit import (
    NattedClient,
    assert_media_flows,
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
        "Chromium either side of the NAT router this test makes (chromiums_either_side);"
        " Firefox in that client namespace is not done yet"
    ),
]

CONSENT_TIMEOUT = 10.0
#: Drops what the client sends to the SFU's media port (signaling, on HTTPS, still passes).
CUT_MEDIA = """
table ip parlour_cut {{
  chain forward {{
    type filter hook forward priority filter; policy accept;
    udp dport {port} drop
    tcp dport {port} drop
  }}
}}
"""


@pytest.fixture
def net() -> Iterator[NattedClient]:
    if reason := namespaces_missing():
        pytest.skip(reason)
    with natted_client() as made:
        yield made


@pytest.fixture
async def browsers(net: NattedClient, tmp_path: Path) -> AsyncIterator[tuple[Browser, Browser]]:
    """Chromium behind the NAT, and Chromium on the server's own network."""
    async with chromiums_either_side(net, tmp_path / "bin") as both:
        yield both


async def test_a_client_behind_nat_joins_on_the_advertised_address(
    net: NattedClient, browsers: tuple[Browser, Browser], tmp_path: Path
) -> None:
    with tls_server_for(
        net,
        tmp_path,
        media_host="0.0.0.0",
        media_advertised_address=net.server,
        media_consent_timeout_seconds=CONSENT_TIMEOUT,
    ) as server:
        acct = new_account(server)
        async with joined_either_side(browsers, server, acct, "natted") as (alice, bob):
            [pair] = await selected_pairs(alice)
            # alice reaches the advertised address, and the SFU's answers told it the
            # address its checks arrived from: the NAT's (a peer-reflexive candidate),
            # not its own private one. The masquerade rule counted the packets.
            assert (pair["remote"]["address"], pair["remote"]["type"]) == (net.server, "host")
            local_candidate = (pair["local"]["address"], pair["local"]["type"])
            assert local_candidate == (net.public, "prflx"), pair
            assert net.client != net.public
            assert re.search(r"counter packets [1-9]\d* .* masquerade", net.router_ruleset())

            # Consent freshness through the NAT: well past the consent timeout, both are
            # still in the room and media still flows.
            await asyncio.sleep(2.5 * CONSENT_TIMEOUT)
            await asyncio.gather(assert_media_flows(alice, "bob"), assert_media_flows(bob, "alice"))
            for page in (alice, bob):
                assert not await page.events("disconnected"), page.name
                assert not await page.events("participantDisconnected"), page.name

            # The NAT stops forwarding alice's media (and her checks): the SFU's consent
            # for her lapses and she leaves the room for bob, signaling still up.
            net.router_nft(CUT_MEDIA.format(port=server.parlour.sfu.socket.candidate_address[1]))
            await bob.wait_for_events(
                "participantDisconnected", participant="alice", within=4 * CONSENT_TIMEOUT
            )
            [gone] = await alice.wait_for_events("disconnected", within=20)
            assert gone["code"] == 53405, gone
