"""TURN REST API credentials (what coturn's `use-auth-secret` checks)."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from parlour.domain.turn import MAX_TTL, TurnServers, turn_password

SERVERS = TurnServers(("turn:t.example.com:3478?transport=udp",), "north")


def test_username_is_expiry_then_user() -> None:
    creds = SERVERS.credentials(now=1_700_000_000.7, ttl=600, user="AC" + "0" * 32)
    assert creds.username == "1700000600:AC" + "0" * 32
    assert (creds.expires, creds.ttl, creds.urls) == (1_700_000_600, 600, SERVERS.urls)


def test_password_is_base64_hmac_sha1_of_the_username() -> None:
    # RFC 2104 on the username with the shared secret, as coturn recomputes it.
    creds = SERVERS.credentials(now=0, ttl=1, user="someone")
    digest = hmac.new(b"north", b"1:someone", hashlib.sha1).digest()
    assert (
        creds.password == base64.b64encode(digest).decode() == turn_password("north", "1:someone")
    )
    assert len(base64.b64decode(creds.password)) == 20


def test_a_colon_in_the_user_cannot_forge_an_expiry() -> None:
    assert SERVERS.credentials(now=0, ttl=5, user="9999999999:x").username == "5:9999999999x"


@pytest.mark.parametrize("ttl", [0, -1, MAX_TTL + 1])
def test_ttl_is_bounded(ttl: int) -> None:
    with pytest.raises(ValueError, match="ttl"):
        SERVERS.credentials(now=0, ttl=ttl, user="u")
