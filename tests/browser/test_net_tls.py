"""HTTPS and WSS: Parlour serving TLS itself (`parlour serve --tls-cert/--tls-key`), and
behind nginx as docs/deployment.md configures it; the real SDK in Chromium joins through
`wss://` either way and media flows. Certificates are self-signed, made here."""

from __future__ import annotations

import asyncio
import socket
import ssl
import warnings
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser

from parlour.testing import ServerThread
from tests.browser.harness import BrowserParticipant, open_participant
from tests.browser.launcher import headless_chromium
from tests.browser.netkit import (
    Certificate,
    assert_media_flows,
    doc_block,
    free_port,
    nginx,
    nginx_missing,
    self_signed,
    wait_for_port,
)
from tests.helpers import new_account

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.chromium_only(
        "Chromium against Parlour's own HTTPS and nginx's; Firefox's pages are served"
        " over HTTPS in every [firefox] variant (its server is HTTPS)"
    ),
]


@pytest.fixture
def certificate(tmp_path: Path) -> Certificate:
    return self_signed(tmp_path / "tls", "localhost", "127.0.0.1")


@pytest.fixture
async def tls_browser() -> AsyncIterator[Browser]:
    """Chromium that accepts the tests' self-signed certificates."""
    async with headless_chromium("--ignore-certificate-errors") as chromium:
        yield chromium


async def two_join_and_see_each_other(browser: Browser, server: ServerThread, room: str) -> None:
    """alice and bob join `room` through the server's (public) `wss://` URL; media flows."""
    acct = new_account(server)
    pages: list[BrowserParticipant] = []
    try:
        async with asyncio.timeout(90):
            for name in ("alice", "bob"):
                page = await open_participant(browser, server, name)
                pages.append(page)
                assert page.ws_server.startswith("wss://"), page.ws_server
                await page.join_as_name(acct, room)
            alice, bob = pages
            await asyncio.gather(assert_media_flows(alice, "bob"), assert_media_flows(bob, "alice"))
    finally:
        for page in pages:
            await page.close()


def handshake(context: ssl.SSLContext, port: int) -> str | None:
    """A TLS handshake with 127.0.0.1:port; the version agreed."""
    with (
        socket.create_connection(("127.0.0.1", port), 10) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        return tls.version()


def client_context(certificate: Certificate) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(certificate.cert))


async def test_parlour_serves_https_and_wss(
    tmp_path: Path, certificate: Certificate, tls_browser: Browser
) -> None:
    with ServerThread(
        tmp_path / "data", tls_cert=certificate.cert, tls_key=certificate.key
    ) as server:
        assert server.base_url.startswith("https://127.0.0.1:")
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
            handshake(old, server.config.port)
        assert handshake(tls12, server.config.port) == "TLSv1.2"

        await two_join_and_see_each_other(tls_browser, server, "over-tls")


async def test_behind_nginx_as_documented(
    tmp_path: Path, certificate: Certificate, tls_browser: Browser
) -> None:
    if reason := nginx_missing():
        pytest.skip(reason)
    port = free_port()
    public = f"https://127.0.0.1:{port}"
    with ServerThread(tmp_path / "data", public_url=public) as server:
        assert server.base_url == public
        block = (
            doc_block("nginx")
            .replace("listen 443 ssl", f"listen 127.0.0.1:{port} ssl")
            .replace("/etc/letsencrypt/live/video.example.com/fullchain.pem", str(certificate.cert))
            .replace("/etc/letsencrypt/live/video.example.com/privkey.pem", str(certificate.key))
            .replace("127.0.0.1:8080", f"127.0.0.1:{server.config.port}")
        )
        with nginx(tmp_path / "nginx", block) as proxy:
            wait_for_port(port, proxy, "nginx")
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

            await two_join_and_see_each_other(tls_browser, server, "proxied")
