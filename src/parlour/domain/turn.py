"""TURN credentials of the TURN REST API (draft-uberti-behave-turn-rest-00), as coturn
checks them with `use-auth-secret` / `static-auth-secret`.

The username is `EXPIRY:USER` (EXPIRY: Unix seconds after which the TURN server refuses it)
and the password `base64(HMAC-SHA1(shared secret, username))`, so the TURN server needs no
account database: anyone holding the secret (Parlour) mints credentials, and the server
checks them. Pure: the caller gives the time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

__all__ = ["MAX_TTL", "TurnCredentials", "TurnServers", "turn_password"]

#: The longest a credential may live (Twilio's Network Traversal Service default, 24 h).
MAX_TTL = 86400


def turn_password(secret: str, username: str) -> str:
    """`base64(HMAC-SHA1(secret, username))`."""
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


@dataclass(frozen=True, slots=True)
class TurnCredentials:
    """One username/password pair valid on every URL until `expires` (Unix seconds)."""

    urls: tuple[str, ...]
    username: str
    password: str
    ttl: int
    expires: int


@dataclass(frozen=True, slots=True)
class TurnServers:
    """The TURN servers clients are given, and the secret they share with Parlour."""

    urls: tuple[str, ...]
    secret: str

    def credentials(self, *, now: float, ttl: int, user: str) -> TurnCredentials:
        """Credentials for `user` (no colon in it) valid for `ttl` seconds from `now`."""
        if not 0 < ttl <= MAX_TTL:
            raise ValueError(f"ttl must be from 1 to {MAX_TTL} seconds")
        expires = int(now) + ttl
        username = f"{expires}:{user.replace(':', '')}"
        return TurnCredentials(
            self.urls, username, turn_password(self.secret, username), ttl, expires
        )
