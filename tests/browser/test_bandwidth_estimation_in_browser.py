"""Send-side bandwidth estimation with the real SDK: a subscriber whose downlink is squeezed
falls to the low simulcast layer within seconds and comes back after, while another
subscriber of the same video keeps the high layer throughout.

The squeezed subscriber runs in a network namespace on a veth pair to the host, and `tc tbf`
on the host end limits what reaches it; the publisher and the steady subscriber are Chromium
on the host (twilio-video simulcasts only in Chrome and Safari). In `[chromium]` the squeezed
one is a Chromium in a namespace this module makes: Parlour's signaling is forwarded to the
veth address by a small TCP relay here, and its media socket listens on all addresses,
advertising the veth address. In `[firefox]` it is the session's Firefox in its namespace
(`conftest.firefox_net`), against the Firefox modules' server on that veth address. Without
the rights to make namespaces (root, `ip`, `tc`) the test is skipped with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import random
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser

from parlour.testing import ServerThread
from tests.browser.firefox import Firefox
from tests.browser.harness import (
    CHROMIUM,
    INSTRUMENTATION,
    SOCKETS,
    BrowserParticipant,
    OpenParticipant,
    goto,
    open_participant,
    poll,
)
from tests.browser.launcher import headless_chromium
from tests.browser.test_simulcast_in_browser import render_at
from tests.helpers import Account

pytestmark = [pytest.mark.browser, pytest.mark.integration]

PROFILE = {"video": {"mode": "collaboration"}}
SHAPED_RATE = "250kbit"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=20, check=False)


@dataclass
class Namespace:
    name: str
    host_if: str
    host_ip: str
    ns_ip: str

    def shape(self, rate: str) -> None:
        result = _run(
            "tc", "qdisc", "replace", "dev", self.host_if, "root", "tbf",
            "rate", rate, "burst", "16kbit", "latency", "150ms",
        )  # fmt: skip
        assert result.returncode == 0, result.stderr

    def unshape(self) -> None:
        _run("tc", "qdisc", "del", "dev", self.host_if, "root")


def _why_no_namespaces() -> str | None:
    if os.geteuid() != 0:
        return "network namespaces need root"
    for tool in ("ip", "tc"):
        if shutil.which(tool) is None:
            return f"{tool} is missing"
    return None


@pytest.fixture(scope="module")
def namespace() -> Iterator[Namespace]:
    reason = _why_no_namespaces()
    if reason is not None:
        pytest.skip(f"bandwidth test: {reason}")
    tag = f"{os.getpid() % 10000}{random.randrange(100)}"
    octet = random.randrange(1, 250)
    ns = Namespace(f"plbwe{tag}", f"plbh{tag}", f"10.213.{octet}.1", f"10.213.{octet}.2")
    peer_if = f"plbn{tag}"
    made = _run("ip", "netns", "add", ns.name)
    if made.returncode != 0:
        pytest.skip(f"bandwidth test: cannot make a network namespace: {made.stderr.strip()}")
    try:
        for command in (
            ("ip", "link", "add", ns.host_if, "type", "veth", "peer", "name", peer_if),
            ("ip", "link", "set", peer_if, "netns", ns.name),
            ("ip", "addr", "add", f"{ns.host_ip}/24", "dev", ns.host_if),
            ("ip", "link", "set", ns.host_if, "up"),
            ("ip", "-n", ns.name, "addr", "add", f"{ns.ns_ip}/24", "dev", peer_if),
            ("ip", "-n", ns.name, "link", "set", peer_if, "up"),
            ("ip", "-n", ns.name, "link", "set", "lo", "up"),
            # Chromium gathers candidates only on interfaces with a route out.
            ("ip", "-n", ns.name, "route", "add", "default", "via", ns.host_ip),
        ):
            result = _run(*command)
            if result.returncode != 0:
                pytest.skip(f"bandwidth test: {' '.join(command)}: {result.stderr.strip()}")
        yield ns
    finally:
        ns.unshape()
        _run("ip", "link", "del", ns.host_if)
        _run("ip", "netns", "del", ns.name)


@pytest.fixture(scope="module")
def browser_server(
    request: pytest.FixtureRequest, browser_kind: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerThread]:
    """This module's server. For Chromium: media on every address, advertised on the veth
    address of this module's namespace. For Firefox: the Firefox modules' own
    (`conftest.firefox_server`), on the veth address of the session's Firefox namespace."""
    if browser_kind == "firefox":
        yield request.getfixturevalue("firefox_server")
        return
    namespace: Namespace = request.getfixturevalue("namespace")
    with ServerThread(
        tmp_path_factory.mktemp("bwe"),
        media_host="0.0.0.0",
        media_advertised_address=namespace.host_ip,
    ) as server:
        yield server


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


@pytest.fixture
async def relay(browser_server: ServerThread, namespace: Namespace) -> AsyncIterator[str]:
    """`http://<veth address>:<port>`: a TCP relay to the server's HTTP/WebSocket port."""
    port = browser_server.config.port
    tasks: set[asyncio.Task[None]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)
        for task in (
            asyncio.create_task(_pipe(reader, up_writer)),
            asyncio.create_task(_pipe(up_reader, writer)),
        ):
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    server = await asyncio.start_server(handle, namespace.host_ip, 0)
    bound = server.sockets[0].getsockname()[1]
    try:
        yield f"http://{namespace.host_ip}:{bound}"
    finally:
        server.close()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()


@pytest.fixture
async def ns_browser(namespace: Namespace, tmp_path: Path) -> AsyncIterator[Browser]:
    """Chromium inside the namespace (Playwright drives it over the inherited pipe)."""
    wrapper = tmp_path / "chromium-in-namespace"
    wrapper.write_text(f'#!/bin/sh\nexec ip netns exec {namespace.name} {CHROMIUM} "$@"\n')
    wrapper.chmod(0o755)
    async with headless_chromium(executable=wrapper) as browser:
        yield browser


class RelayedParticipant(BrowserParticipant):
    """A participant page that reaches Parlour through the relay's address."""

    base = ""

    @property
    def ws_server(self) -> str:
        return self.base.replace("http://", "ws://") + "/signaling"


async def open_in_namespace(
    browser: Browser, server: ServerThread, base: str, name: str
) -> RelayedParticipant:
    context = await browser.new_context()
    await context.add_init_script(path=SOCKETS)
    page = await context.new_page()
    page.set_default_timeout(20_000)
    participant = RelayedParticipant(name, context, page, server)
    participant.base = base
    await goto(page, base + "/sdk/")
    assert await page.evaluate("() => !!(window.Twilio && window.Twilio.Video)")
    await page.add_script_tag(path=INSTRUMENTATION)
    return participant


async def inbound(page: BrowserParticipant, track_sid: str) -> dict[str, Any]:
    state = await page.video_state(track_sid)
    return (state or {}).get("inbound") or {}


@dataclass
class Squeeze:
    """The test's pages (`squeeze`): the publisher and a steady subscriber in Chromium on the
    server's own network, and the squeezed subscriber in `browser_kind` behind `link`, whose
    host end `tc` shapes. All are closed after the test."""

    open_local: OpenParticipant
    open_squeezed: OpenParticipant
    link: Namespace


@pytest.fixture
async def tls_chromium() -> AsyncIterator[Browser]:
    """Chromium on the host that accepts the Firefox server's self-signed certificate."""
    async with headless_chromium("--ignore-certificate-errors") as chromium:
        yield chromium


@pytest.fixture
def squeeze_openers(
    request: pytest.FixtureRequest, browser_kind: str, browser_server: ServerThread
) -> Squeeze:
    """`squeeze`'s openers (a sync fixture: it picks the async browser fixtures it needs by
    name)."""
    if browser_kind == "firefox":
        # The session's Firefox is the squeezed one; its namespace's veth is the link.
        net = request.getfixturevalue("firefox_net").net
        fox: Firefox = request.getfixturevalue("firefox_browser")
        local: Browser = request.getfixturevalue("tls_chromium")
        return Squeeze(
            functools.partial(open_participant, local, browser_server),
            functools.partial(fox.open_participant, browser_server),
            Namespace(net.client_ns, net.host_if, net.server, net.client),
        )
    namespace: Namespace = request.getfixturevalue("namespace")
    relay: str = request.getfixturevalue("relay")
    ns_browser: Browser = request.getfixturevalue("ns_browser")
    local_browser: Browser = request.getfixturevalue("browser")
    return Squeeze(
        functools.partial(open_participant, local_browser, browser_server),
        functools.partial(open_in_namespace, ns_browser, browser_server, relay),
        namespace,
    )


@pytest.fixture
async def squeeze(squeeze_openers: Squeeze) -> AsyncIterator[Squeeze]:
    """The test's pages, closed after it, and its link, unshaped after it."""
    opened: list[BrowserParticipant] = []

    def keep(opener: OpenParticipant) -> OpenParticipant:
        async def open_one(name: str) -> BrowserParticipant:
            opened.append(await opener(name))
            return opened[-1]

        return open_one

    try:
        yield Squeeze(
            keep(squeeze_openers.open_local),
            keep(squeeze_openers.open_squeezed),
            squeeze_openers.link,
        )
    finally:
        squeeze_openers.link.unshape()
        for page in opened:
            await page.close()


async def test_a_squeezed_subscriber_falls_to_the_low_layer_and_recovers(
    squeeze: Squeeze,
    browser_kind: str,
    browser_server: ServerThread,
    browser_account: Account,
) -> None:
    """The squeezed subscriber is `browser_kind` (Firefox negotiates transport-wide CC on what
    it receives, and sends its feedback, as Chromium does); the publisher is Chromium, whose
    SDK simulcasts (in Firefox twilio-video 2.36 publishes one layer)."""
    acct = browser_account
    room = "bwe-squeeze"
    namespace = squeeze.link
    async with asyncio.timeout(240):
        alice = await squeeze.open_local("alice")
        steady = await squeeze.open_local("steady")
        squeezed = await squeeze.open_squeezed("squeezed")
        agent = await squeezed.evaluate("() => navigator.userAgent")
        assert ("Firefox/" in agent) == (browser_kind == "firefox"), agent
        try:
            # Audio too: only video is stamped with transport-wide numbers (audio does not
            # negotiate them), so the subscriber's feedback shows no false loss.
            await alice.join_as_name(acct, room, preferredVideoCodecs="auto")
            joined = {}
            for page in (steady, squeezed):
                await render_at(page, 640, 480)
                joined[page.name] = await page.join_as_name(
                    acct, room, audio=False, video=False, bandwidthProfile=PROFILE, within=40
                )
            [sub] = await squeezed.wait_for_events("trackSubscribed", kind="video", within=40)
            [steady_sub] = await steady.wait_for_events("trackSubscribed", kind="video", within=30)
            peers = browser_server.parlour.sfu.peers
            squeezed_peer = peers[joined["squeezed"]["participantSid"]]
            steady_peer = peers[joined["steady"]["participantSid"]]

            def layer(peer: Any) -> int:
                video = [c for c in peer._consumers.values() if c.info.kind == "video"]
                return int(video[0].layer) if video else -2

            async def layers() -> tuple[int, int]:
                return layer(squeezed_peer), layer(steady_peer)

            await poll(layers, lambda ls: ls == (1, 1), within=60, what="both on the high layer")
            await asyncio.sleep(3)
            assert squeezed_peer.downlink.estimator.loss < 0.05, "no loss before squeezing"
            high = await poll(
                lambda: inbound(squeezed, sub["trackSid"]),
                lambda s: s.get("frameWidth", 0) >= 640,
                within=30,
                what="the squeezed subscriber decoding 640 wide",
            )

            namespace.shape(SHAPED_RATE)
            await poll(layers, lambda ls: ls[0] == 0, within=30, what="the low layer when squeezed")
            assert layer(steady_peer) == 1, "the other subscriber kept the high layer"
            [audio] = [c for c in steady_peer._consumers.values() if c.info.kind == "audio"]
            assert audio.rewriter.transport_cc is None
            estimate = squeezed_peer.downlink.estimator.estimate
            assert estimate < 600_000, estimate
            await poll(
                lambda: inbound(squeezed, sub["trackSid"]),
                lambda s: 0 < s.get("frameWidth", 0) < high["frameWidth"],
                within=30,
                what="the squeezed subscriber decoding the low layer",
            )

            namespace.unshape()
            await poll(
                layers, lambda ls: ls == (1, 1), within=60, what="recovery to the high layer"
            )
            await poll(
                lambda: inbound(squeezed, sub["trackSid"]),
                lambda s: s.get("frameWidth", 0) == high["frameWidth"],
                within=30,
                what="the squeezed subscriber decoding the high layer again",
            )
            steady_state = await inbound(steady, steady_sub["trackSid"])
            assert steady_state.get("frameWidth") == high["frameWidth"]
        finally:
            namespace.unshape()
