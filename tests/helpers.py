"""Helpers shared by tests (importable, unlike conftest)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
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


async def eventually(check: Callable[[], bool], within: float = 10.0) -> None:
    """Poll `check` until it holds (for state that raises no event to wait on)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not check():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)
