"""TURN: the real SDK, forced to relay (`iceTransportPolicy: 'relay'`), reaches the SFU only
through a real coturn, configured as docs/deployment.md says, with the credentials Parlour
mints: alice's from the signaling `iced` message, bob's from the back end's
`client.tokens.create()` (twilio-python). Media flows both ways. In Chromium (`[chromium]`)
coturn and Parlour are on 127.0.0.1; Firefox (`[firefox]`) never uses loopback for ICE, so
there both are on the veth address of the session's Firefox namespace, which coturn must be
told it may relay to (`allowed-peer-ip`, as docs/deployment.md says for a private SFU)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from parlour.testing import ServerThread
from tests.browser.harness import BrowserParticipant
from tests.browser.netkit import (
    OpenOn,
    assert_media_flows,
    coturn,
    coturn_missing,
    doc_block,
    free_port,
    selected_pairs,
    turn_log,
)
from tests.helpers import new_account

pytestmark = [pytest.mark.browser, pytest.mark.integration]

SECRET = "test-turn-secret-0123456789"


@pytest.fixture
async def turn_and_server(
    tmp_path: Path, browser_server_options: dict[str, Any]
) -> AsyncIterator[tuple[ServerThread, Path]]:
    """coturn (the documented configuration) and a Parlour that points to it, both where
    `open_on`'s pages reach them."""
    if reason := coturn_missing():
        pytest.skip(reason)
    host = browser_server_options.get("host", "127.0.0.1")
    port = free_port()
    config = doc_block("coturn").replace("REPLACE-WITH-A-LONG-RANDOM-SECRET", SECRET)
    if host != "127.0.0.1":  # a private address, denied by the documented configuration
        config += f"allowed-peer-ip={host}\n"
    workdir = tmp_path / "coturn"
    with (
        coturn(workdir, config, port, host=host),
        ServerThread(
            tmp_path / "data",
            turn_urls=(f"turn:{host}:{port}?transport=udp",),
            turn_secret=SECRET,
            **browser_server_options,
        ) as server,
    ):
        try:
            yield server, workdir
        finally:
            print(f"[turn.log]\n{turn_log(workdir)[-6000:]}")


async def test_relayed_media_through_coturn(
    turn_and_server: tuple[ServerThread, Path], open_on: OpenOn
) -> None:
    server, _ = turn_and_server
    acct = new_account(server)
    client = Client(acct.key_sid, acct.key_secret, account_sid=acct.sid)
    client.api.base_url = server.base_url
    if server.config.tls_cert is not None:  # Firefox's server: its self-signed certificate
        assert isinstance(client.http_client, TwilioHttpClient)
        assert client.http_client.session is not None
        client.http_client.session.trust_env = False  # REQUESTS_CA_BUNDLE would win
        client.http_client.session.verify = str(server.config.tls_cert)
    token = await asyncio.to_thread(client.tokens.create, ttl=600)
    if isinstance(client.http_client, TwilioHttpClient) and client.http_client.session:
        # Not left idle on a keep-alive connection: over TLS the server's shutdown would
        # wait out asyncio's TLS shutdown timeout (30 s) for its close_notify.
        client.http_client.session.close()
    ice_servers: list[dict[str, Any]] = token.ice_servers  # type: ignore[assignment]
    assert ice_servers

    pages: list[BrowserParticipant] = []
    try:
        async with asyncio.timeout(120):
            for name in ("alice", "bob"):
                pages.append(await open_on(server, name))
            alice, bob = pages
            # alice's SDK asks signaling for ICE servers (`ice` → `iced`); bob's app passes
            # the back end's NTS token, as apps do that fetch TURN from Twilio themselves.
            await alice.join_as_name(acct, "relayed", iceTransportPolicy="relay")
            await bob.join_as_name(
                acct,
                "relayed",
                iceTransportPolicy="relay",
                iceServers=[
                    {k: s[k] for k in ("urls", "username", "credential")} for s in ice_servers
                ],
            )
            await asyncio.gather(assert_media_flows(alice, "bob"), assert_media_flows(bob, "alice"))
            for page in pages:
                pairs = await selected_pairs(page)
                assert pairs, f"{page.name} has no selected candidate pair"
                # A relay candidate exists only if coturn took the credentials Parlour minted.
                for pair in pairs:
                    assert pair["local"]["type"] == "relay", pair
    finally:
        for page in pages:
            await page.close()
