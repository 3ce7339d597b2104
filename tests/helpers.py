"""Helpers shared by tests (importable, unlike conftest)."""

from __future__ import annotations

from dataclasses import dataclass

from parlour.services.accounts import Credentials
from parlour.testing import ServerThread


@dataclass
class Account:
    sid: str
    auth_token: str
    key_sid: str
    key_secret: str


def new_account(server: ServerThread) -> Account:
    async def make() -> Account:
        creds: Credentials = await server.parlour.accounts.create_account("test")
        key = await server.parlour.accounts.create_key(creds.account_sid, "test key")
        return Account(creds.account_sid, creds.auth_token, key.key.sid, key.secret)

    return server.call(make())
