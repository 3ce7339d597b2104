"""Media tests run on loopback: let aiortc's ICE agent gather 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aioice.ice
import pytest

from parlour.media.udp import MediaSocket
from tests.helpers import wait_for


@pytest.fixture(autouse=True)
def loopback_ice(monkeypatch: pytest.MonkeyPatch) -> None:
    # aioice never gathers 127.0.0.1 by itself; the server's candidate is on loopback here.
    monkeypatch.setattr(
        aioice.ice, "get_host_addresses", lambda use_ipv4=True, use_ipv6=True: ["127.0.0.1"]
    )


@pytest.fixture
async def media_socket() -> AsyncIterator[MediaSocket]:
    sock = await MediaSocket.bind("127.0.0.1", 0)
    try:
        yield sock
    finally:
        sock.close()
        await sock.wait_closed()


@pytest.fixture
async def clean_loop() -> AsyncIterator[None]:
    """Fail if a test leaves tasks behind (aiortc's tasks need a moment to finish)."""
    yield
    current = asyncio.current_task()

    def leftovers() -> str | None:
        tasks = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
        return f"tasks left: {tasks}" if tasks else None

    await wait_for(leftovers, limit=5)
