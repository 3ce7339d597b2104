"""Network traversal: twilio-python's `client.tokens.create(ttl=…)` (the 2010-04-01 NTS Token
resource) and the signaling `iced` message hand out the configured TURN servers with TURN
REST API credentials (coturn's `use-auth-secret`), and nothing when no TURN is configured.
That coturn accepts these credentials is tested in tests/browser/test_net_turn.py."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import pytest
import websockets
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from parlour.protocol import signaling as sig
from parlour.testing import ServerThread
from tests.compat.twilio_client import client_for
from tests.helpers import Account, access_token, new_account, server_fixture, ws_url

pytestmark = pytest.mark.integration

SECRET = "a-shared-secret-for-tests"
URLS = ("turn:turn.example.com:3478?transport=udp", "turns:turn.example.com:443?transport=tcp")

turn_server = server_fixture("nts", turn_urls=URLS, turn_secret=SECRET, turn_ttl_seconds=600)


def assert_turn_credentials(username: str, password: str, account: str, ttl: int) -> None:
    expiry, _, user = username.partition(":")
    assert user == account
    assert abs(int(expiry) - (time.time() + ttl)) < 30
    expected = hmac.new(SECRET.encode(), username.encode(), hashlib.sha1).digest()
    assert base64.b64decode(password) == expected


def test_tokens_create_returns_turn_servers(turn_server: ServerThread) -> None:
    account = new_account(turn_server)
    token = client_for(turn_server, account).tokens.create(ttl=3600)
    assert token.account_sid == account.sid
    assert token.ttl == "3600"
    assert token.date_created is not None and token.date_created.tzinfo is not None
    assert token.username is not None and token.password is not None
    assert_turn_credentials(token.username, token.password, account.sid, 3600)
    servers: list[dict[str, Any]] = token.ice_servers  # type: ignore[assignment]
    assert [s["urls"] for s in servers] == list(URLS)
    for server in servers:
        assert server["url"] == server["urls"]
        assert (server["username"], server["credential"]) == (token.username, token.password)


def test_tokens_default_to_24_hours(turn_server: ServerThread) -> None:
    account = new_account(turn_server)
    token = client_for(turn_server, account).tokens.create()
    assert token.ttl == "86400"
    assert token.username is not None and token.password is not None
    assert_turn_credentials(token.username, token.password, account.sid, 86400)


@pytest.mark.parametrize("ttl", [0, -5, 86401])
def test_a_ttl_out_of_range_is_refused(turn_server: ServerThread, ttl: int) -> None:
    client = client_for(turn_server, new_account(turn_server))
    with pytest.raises(TwilioRestException) as refused:
        client.tokens.create(ttl=ttl)
    assert (refused.value.status, refused.value.code) == (400, 20001)


def test_accounts_only_get_their_own_tokens(turn_server: ServerThread) -> None:
    mine, other = new_account(turn_server), new_account(turn_server)
    client = client_for(turn_server, mine)
    with pytest.raises(TwilioRestException) as refused:
        client.api.v2010.accounts(other.sid).tokens.create()
    assert refused.value.status == 404
    stranger = Client(mine.key_sid, "wrong secret", account_sid=mine.sid)
    stranger.api.base_url = turn_server.base_url
    with pytest.raises(TwilioRestException) as unauthenticated:
        stranger.tokens.create()
    assert unauthenticated.value.status == 401


def test_without_turn_there_are_no_servers(server: ServerThread, account: Account) -> None:
    token = client_for(server, account).tokens.create(ttl=60)
    assert token.ice_servers == []
    assert token.username is None and token.password is None and token.ttl == "60"


async def iced(server: ServerThread, account: Account) -> sig.Iced:
    """What the SDK's first `hello` (with its `ice` body) gets back."""
    async with websockets.connect(ws_url(server)) as ws:
        ice = sig.Ice(token=access_token(account, "alice"))
        await ws.send(sig.encode_message(sig.Hello(id="h1", timeout=5000, body=ice)))
        for _ in range(5):
            frame = sig.parse_message(str(await ws.recv()), sender="server")
            if isinstance(frame, sig.Msg) and isinstance(frame.body, sig.Iced):
                return frame.body
    raise AssertionError("no iced")


async def test_iced_carries_turn_credentials(turn_server: ServerThread) -> None:
    account = new_account(turn_server)
    answer = await iced(turn_server, account)
    assert [s.urls for s in answer.ice_servers] == list(URLS)
    for server in answer.ice_servers:
        assert server.username is not None and server.credential is not None
        assert_turn_credentials(server.username, server.credential, account.sid, 600)
    raw = json.loads(sig.encode_message(sig.Msg(body=answer)))
    assert set(raw["body"]["ice_servers"][0]) == {"urls", "username", "credential"}


async def test_iced_is_empty_without_turn(server: ServerThread, account: Account) -> None:
    assert (await iced(server, account)).ice_servers == ()
