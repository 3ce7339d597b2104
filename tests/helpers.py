"""Helpers shared by tests (importable, unlike conftest)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from parlour.client.video import Room, connect
from parlour.protocol.tokens import encode_token
from parlour.services.accounts import Credentials
from parlour.testing import ServerThread


@dataclass
class Account:
    sid: str
    auth_token: str
    key_sid: str
    key_secret: str


def server_fixture(data_dir_prefix: str, **options: Any) -> Any:
    """A module-scoped fixture: a real Parlour server of the module's own, on 127.0.0.1 (port
    0), keeping its data in a fresh temporary directory named after `data_dir_prefix`.

    Assign it to `server` to override the shared one (`account` and `http` follow it)."""

    @pytest.fixture(scope="module")
    def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
        with ServerThread(tmp_path_factory.mktemp(data_dir_prefix), **options) as srv:
            yield srv

    return server


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


def ws_url(server: ServerThread) -> str:
    """The `wsServer` URL of a test server."""
    return server.base_url.replace("http", "ws", 1) + "/signaling"  # https: wss


def rest_client(server: ServerThread, acct: Account) -> httpx.AsyncClient:
    """An async REST client for a test server, authenticated as the account."""
    return httpx.AsyncClient(base_url=server.base_url, auth=(acct.sid, acct.auth_token))


def access_token(acct: Account, identity: str, room: str | None = None, **claims: Any) -> str:
    """An Access Token for `identity`, signed with the account's API key (overridable)."""
    args: dict[str, Any] = {
        "account_sid": acct.sid,
        "key_sid": acct.key_sid,
        "secret": acct.key_secret,
        "identity": identity,
        "now": int(time.time()),
        "room": room,
    }
    args.update(claims)
    return encode_token(**args)


async def join(
    server: ServerThread, acct: Account, identity: str, room: str, **options: Any
) -> Room:
    """Connect a Python SDK participant to `room` on a test server."""
    return await connect(ws_url(server), access_token(acct, identity), name=room, **options)


async def wait_for(check: Callable[[], str | None], limit: float = 10.0) -> None:
    """Poll `check`, which returns why it is not done yet, or None when done."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while (reason := check()) is not None:
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {limit} s: {reason}")
        await asyncio.sleep(0.01)
