"""Media tests run on loopback: let aiortc's ICE agent gather 127.0.0.1."""

from __future__ import annotations

import aioice.ice
import pytest


@pytest.fixture(autouse=True)
def loopback_ice(monkeypatch: pytest.MonkeyPatch) -> None:
    # aioice never gathers 127.0.0.1 by itself; the server's candidate is on loopback here.
    monkeypatch.setattr(
        aioice.ice, "get_host_addresses", lambda use_ipv4=True, use_ipv6=True: ["127.0.0.1"]
    )
