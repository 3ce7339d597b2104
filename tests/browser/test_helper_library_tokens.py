"""Scenario 7: Access Tokens minted with Twilio's own Python helper library (`twilio`'s
`AccessToken` + `VideoGrant`) are accepted by the real SDK against Parlour; expired and
wrongly signed tokens make `connect()` reject with the SDK's token error codes."""

from __future__ import annotations

import asyncio
import time

import pytest
from twilio.jwt.access_token import AccessToken
from twilio.jwt.access_token.grants import VideoGrant

from tests.browser.harness import OpenParticipant
from tests.helpers import Account

pytestmark = [pytest.mark.browser, pytest.mark.integration]

ROOM = "tokens"


def twilio_token(
    acct: Account,
    identity: str,
    *,
    key_sid: str | None = None,
    secret: str | None = None,
    **lifetime: int,
) -> str:
    """A token made by `twilio`'s helper library (`lifetime`: its nbf/ttl/valid_until)."""
    token = AccessToken(
        acct.sid,
        key_sid or acct.key_sid,
        secret or acct.key_secret,
        identity=identity,
        **lifetime,
    )
    token.add_grant(VideoGrant(room=ROOM))
    jwt: str = token.to_jwt()
    return jwt


def expired_token(acct: Account, identity: str) -> str:
    """Valid from two hours ago until one hour ago: long past any clock-skew allowance."""
    now = int(time.time())
    return twilio_token(acct, identity, nbf=now - 7200, valid_until=now - 3600)


async def test_twilio_helper_library_tokens(
    open_page: OpenParticipant, browser_account: Account
) -> None:
    async with asyncio.timeout(60):
        page = await open_page("tokens")

        expired = await page.join(expired_token(browser_account, "late"), ROOM)
        assert expired.get("code") == 20104, expired

        wrong_secret = twilio_token(browser_account, "forger", secret="x" * 32)
        forged = await page.join(wrong_secret, ROOM)
        assert forged.get("code") == 20107, forged

        unknown_key = twilio_token(browser_account, "stranger", key_sid="SK" + "0" * 32)
        stranger = await page.join(unknown_key, ROOM)
        assert stranger.get("code") == 20103, stranger

        joined = await page.join(twilio_token(browser_account, "helper"), ROOM)
        assert "error" not in joined, joined
        assert joined["sid"].startswith("RM") and joined["participantSid"].startswith("PA")
        identity = await page.evaluate("() => window.room.localParticipant.identity")
        assert identity == "helper"
