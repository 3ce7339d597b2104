"""A client behind a NAT: the browser (Chromium, or Firefox: `[chromium]`/`[firefox]`) runs in
a network namespace whose only way out is a masquerading router (veth pairs and nftables
rules: `conftest.natted`), and joins an SFU that binds every address but advertises one
(`--advertised-address`), beside a Chromium on the server's own network. Its host candidate
is private and unreachable; the SFU (ICE-lite) answers the checks that arrive from the NAT's
address, media flows both ways, and consent checks keep the session alive through the NAT
past the consent timeout. The page is served over HTTPS (a self-signed certificate made
here), since browsers give cameras only to secure origins and this one is not localhost."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

import pytest

from tests.browser.netkit import (
    NattedClient,
    OpenOn,
    assert_media_flows,
    joined_either_side,
    selected_pairs,
    sfu_ufrags,
    tls_server_for,
)
from tests.helpers import new_account

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.slow]

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


async def test_a_client_behind_nat_joins_on_the_advertised_address(
    natted: NattedClient, either_side: tuple[OpenOn, OpenOn], browser_kind: str, tmp_path: Path
) -> None:
    net = natted
    with tls_server_for(
        net,
        tmp_path,
        media_host="0.0.0.0",
        media_advertised_address=net.server,
        media_consent_timeout_seconds=CONSENT_TIMEOUT,
    ) as server:
        acct = new_account(server)
        before_any_check = time.monotonic()
        async with joined_either_side(either_side, server, acct, "natted") as (alice, bob):
            [pair] = await selected_pairs(alice)
            # alice reaches the advertised address, and the SFU's answers told it the
            # address its checks arrived from: the NAT's (a peer-reflexive candidate),
            # not its own private one. The masquerade rule counted the packets.
            assert (pair["remote"]["address"], pair["remote"]["type"]) == (net.server, "host")
            assert pair["local"]["type"] == "prflx", pair
            if browser_kind == "chromium":  # Firefox shows "(redacted)" for a prflx address
                assert pair["local"]["address"] == net.public, pair
            assert net.client != net.public
            assert re.search(r"counter packets [1-9]\d* .* masquerade", net.router_ruleset())
            # The SFU sends her media to the NAT's address, where her checks came from.
            [ufrag] = await sfu_ufrags(alice)
            selected = server.parlour.sfu.socket.selected_address(ufrag)
            assert selected is not None and selected[0] == net.public, selected

            # Consent freshness through the NAT: well past the consent timeout counted from
            # before her first check, both are still in the room and media still flows; the
            # SFU saw her consent renewed (through the NAT) meanwhile.
            first_consent = server.parlour.sfu.socket.last_consent(ufrag)
            await asyncio.sleep(before_any_check + 1.5 * CONSENT_TIMEOUT - time.monotonic())
            await asyncio.gather(assert_media_flows(alice, "bob"), assert_media_flows(bob, "alice"))
            assert server.parlour.sfu.socket.last_consent(ufrag) > first_consent
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
