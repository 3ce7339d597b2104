"""HTTPS and WSS: Parlour serving TLS itself (`parlour serve --tls-cert/--tls-key`), and
behind nginx as docs/deployment.md configures it; the real SDK joins through `wss://` either
way and media flows, in Chromium (`[chromium]`: everything on 127.0.0.1) and, behind nginx,
in Firefox (`[firefox]`: nginx on the veth address of the session's Firefox namespace, the
SFU advertising it, since Firefox never uses loopback for ICE; every Firefox variant joins
over Parlour's own HTTPS and WSS). Certificates are self-signed, made here; both browsers are
told to accept them (`--ignore-certificate-errors`, WebDriver BiDi's `acceptInsecureCerts`)."""

from __future__ import annotations

import asyncio
import socket
import ssl
import warnings
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser

from parlour.testing import ServerThread
from tests.browser.harness import BrowserParticipant
from tests.browser.launcher import headless_chromium
from tests.browser.netkit import (
    Certificate,
    OpenOn,
    assert_media_flows,
    doc_block,
    free_port,
    nginx,
    nginx_missing,
    self_signed,
    wait_for_port,
)
from tests.helpers import new_account

pytestmark = [pytest.mark.browser, pytest.mark.integration]


@pytest.fixture
def host(browser_server_options: dict[str, Any]) -> str:
    """The address the browser reaches the server (or nginx) on."""
    address: str = browser_server_options.get("host", "127.0.0.1")
    return address


@pytest.fixture
def media_options(browser_server_options: dict[str, Any]) -> dict[str, Any]:
    """Where the SFU listens and what it advertises, for `browser_kind`."""
    return {k: v for k, v in browser_server_options.items() if k.startswith("media_")}


@pytest.fixture
def certificate(tmp_path: Path, host: str) -> Certificate:
    return self_signed(tmp_path / "tls", "localhost", *dict.fromkeys(["127.0.0.1", host]))


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """Chromium that accepts the tests' self-signed certificates (`open_on` uses it)."""
    async with headless_chromium("--ignore-certificate-errors") as chromium:
        yield chromium


async def two_join_and_see_each_other(open_on: OpenOn, server: ServerThread, room: str) -> None:
    """alice and bob join `room` through the server's (public) `wss://` URL; media flows."""
    acct = new_account(server)
    pages: list[BrowserParticipant] = []
    try:
        async with asyncio.timeout(90):
            for name in ("alice", "bob"):
                page = await open_on(server, name)
                pages.append(page)
                assert page.ws_server.startswith("wss://"), page.ws_server
                await page.join_as_name(acct, room)
            alice, bob = pages
            await asyncio.gather(assert_media_flows(alice, "bob"), assert_media_flows(bob, "alice"))
    finally:
        for page in pages:
            await page.close()


def handshake(context: ssl.SSLContext, host: str, port: int) -> str | None:
    """A TLS handshake with host:port; the version agreed."""
    with (
        socket.create_connection((host, port), 10) as raw,
        context.wrap_socket(raw, server_hostname=host) as tls,
    ):
        return tls.version()


def client_context(certificate: Certificate) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(certificate.cert))


@pytest.mark.chromium_only(
    "every [firefox] variant joins over Parlour's own HTTPS and WSS (conftest.firefox_server);"
    " the rest of this test (TLS versions, REST over HTTPS) is the server's, whatever the browser"
)
async def test_parlour_serves_https_and_wss(
    tmp_path: Path,
    certificate: Certificate,
    open_on: OpenOn,
    host: str,
    browser_server_options: dict[str, Any],
) -> None:
    with ServerThread(
        tmp_path / "data",
        **{**browser_server_options, "tls_cert": certificate.cert, "tls_key": certificate.key},
    ) as server:
        assert server.base_url.startswith(f"https://{host}:")
        async with httpx.AsyncClient(verify=client_context(certificate)) as http:
            health = await http.get(server.base_url + "/healthz")
            assert health.status_code == 200
            acct = new_account(server)
            created = await http.post(
                server.base_url + "/v1/Rooms",
                data={"UniqueName": "tls"},
                auth=(acct.sid, acct.auth_token),
            )
            assert created.status_code == 201
            assert created.json()["url"].startswith(server.base_url + "/v1/Rooms/RM")

        # Plain HTTP on the TLS port gets nothing useful, and TLS 1.1 is refused.
        with pytest.raises(httpx.HTTPError):
            async with httpx.AsyncClient() as plain:
                await plain.get(server.base_url.replace("https", "http") + "/healthz")
        tls12 = client_context(certificate)
        tls12.maximum_version = ssl.TLSVersion.TLSv1_2
        async with httpx.AsyncClient(verify=tls12) as http:
            assert (await http.get(server.base_url + "/healthz")).status_code == 200
        old = client_context(certificate)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            old.minimum_version = old.maximum_version = ssl.TLSVersion.TLSv1_1
        old.set_ciphers("DEFAULT:@SECLEVEL=0")
        # This client does speak TLS 1.1 (SECLEVEL=0): the refusal is the server's.
        with pytest.raises((ssl.SSLError, ConnectionResetError)):
            handshake(old, host, server.config.port)
        assert handshake(tls12, host, server.config.port) == "TLSv1.2"

        await two_join_and_see_each_other(open_on, server, "over-tls")


async def test_behind_nginx_as_documented(
    tmp_path: Path,
    certificate: Certificate,
    open_on: OpenOn,
    host: str,
    media_options: dict[str, Any],
) -> None:
    if reason := nginx_missing():
        pytest.skip(reason)
    port = free_port()
    public = f"https://{host}:{port}"
    with ServerThread(tmp_path / "data", public_url=public, **media_options) as server:
        assert server.base_url == public
        block = (
            doc_block("nginx")
            .replace("listen 443 ssl", f"listen {host}:{port} ssl")
            .replace("/etc/letsencrypt/live/video.example.com/fullchain.pem", str(certificate.cert))
            .replace("/etc/letsencrypt/live/video.example.com/privkey.pem", str(certificate.key))
            .replace("127.0.0.1:8080", f"127.0.0.1:{server.config.port}")
        )
        with nginx(tmp_path / "nginx", block) as proxy:
            wait_for_port(port, proxy, "nginx", host=host)
            async with httpx.AsyncClient(verify=client_context(certificate)) as http:
                acct = new_account(server)
                created = await http.post(
                    public + "/v1/Rooms",
                    data={"UniqueName": "proxied"},
                    auth=(acct.sid, acct.auth_token),
                )
                assert created.status_code == 201, created.text
                room = created.json()
                assert room["url"] == f"{public}/v1/Rooms/{room['sid']}"
                fetched = await http.get(room["url"], auth=(acct.sid, acct.auth_token))
                assert fetched.json()["sid"] == room["sid"]

            await two_join_and_see_each_other(open_on, server, "proxied")
