"""Fixtures for browser tests: a Parlour server, headless browsers, and participant pages.

Browser tests need Debian's `/usr/bin/chromium` and `node_modules/twilio-video` (both put
there by `scripts/install --tests`, which `make test` runs); without them they are skipped
with the reason.

Every test that opens its pages with `open_page` (or `open_on`, `either_side`, `meet`,
`meet_person`, or asks for `browser_kind`) runs twice, `[chromium]` and `[firefox]`
(`browser_kind`): the same test body with pages from headless Chromium, then from headless
Firefox ESR. Firefox gathers no loopback ICE candidates, so for it the module's server
(`browser_server`, or `dev_server` for `meet`) listens on a veth address, over HTTPS
(cameras need a secure origin), and its SFU advertises that address; Firefox runs in the
namespace at the other end of the veth pair. The namespace and one Firefox process serve the
whole session (one WebDriver BiDi session and new windows per test). The tests of a client
behind a router (`natted`, `either_side`) get a second Firefox, behind a masquerading
router, also for the session. A test that cannot run in Firefox says why with
`@pytest.mark.chromium_only("reason")`: its Firefox variant is skipped with that reason.
"""

from __future__ import annotations

import functools
import inspect
import ssl
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, async_playwright

from parlour.testing import ServerThread
from tests.browser.firefox import (
    Firefox,
    FirefoxNet,
    NattedFirefox,
    bidi_session,
    firefox_missing,
)
from tests.browser.firefox import firefox_process as start_firefox
from tests.browser.harness import (
    CHROMIUM,
    CHROMIUM_FLAGS,
    BrowserParticipant,
    OpenParticipant,
    missing_requirements,
    open_participant,
)
from tests.browser.launcher import headless_chromium
from tests.browser.meet import (
    LOOKS,
    MeetPage,
    OpenMeet,
    PersonBrowser,
    open_meet,
    open_meet_in_firefox,
    write_camera,
)
from tests.browser.netkit import (
    Certificate,
    NattedClient,
    OpenOn,
    chromiums_either_side,
    namespaces_missing,
    natted_client,
    self_signed,
)
from tests.browser.netkit import veth_client as make_veth_client
from tests.helpers import Account, new_account, server_fixture

#: The browsers each `open_page` test runs in (`browser_kind`).
BROWSER_KINDS = ("chromium", "firefox")
#: Fixtures whose pages are `browser_kind`'s: a test that uses one runs in each browser
#: (`meet`, `meet_person`: Parlour Meet's pages).
BROWSER_FIXTURES = frozenset({"open_page", "open_on", "either_side", "meet", "meet_person"})


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """`[chromium]` and `[firefox]` variants of each test that opens pages with one of
    `BROWSER_FIXTURES` or asks for `browser_kind` itself (or says why it is Chromium's only);
    module scope, so a module's server is made once for each browser."""
    only = metafunc.definition.get_closest_marker("chromium_only")
    asks = "browser_kind" in inspect.signature(metafunc.function).parameters
    if not BROWSER_FIXTURES.intersection(metafunc.fixturenames) and not asks and only is None:
        return
    if "browser_kind" not in metafunc.fixturenames:
        metafunc.fixturenames.append("browser_kind")
    firefox_variant: object = "firefox"
    if only is not None:
        reason = only.args[0] if only.args else only.kwargs["reason"]
        firefox_variant = pytest.param("firefox", marks=pytest.mark.skip(reason=reason))
    metafunc.parametrize(
        "browser_kind", ["chromium", firefox_variant], indirect=True, scope="module"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = missing_requirements()
    if reason is None:
        return
    for item in items:
        if item.get_closest_marker("browser") is not None:
            item.add_marker(pytest.mark.skip(reason=f"browser test: {reason}"))


@pytest.fixture(scope="module")
def browser_kind(request: pytest.FixtureRequest) -> str:
    """The browser this test's pages run in: "chromium" (unless parametrised) or "firefox"."""
    kind: str = getattr(request, "param", "chromium")
    return kind


chromium_server = server_fixture("browser")


@pytest.fixture(scope="session")
def firefox_net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FirefoxNet]:
    """One namespace on a veth pair, and headless Firefox ESR running in it, for the session."""
    if reason := firefox_missing() or namespaces_missing():
        pytest.skip(reason)
    workdir = tmp_path_factory.mktemp("firefox")
    with make_veth_client() as net:
        tls = self_signed(workdir / "tls", net.server)
        with start_firefox(workdir / "firefox", net.in_client()) as process:
            yield FirefoxNet(net, tls, process)


@pytest.fixture(scope="session")
def natted_firefox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NattedFirefox]:
    """Headless Firefox ESR in a client network behind a NAT router (`natted_client`), for the
    session: made when a test first needs it (the NAT and ICE-TCP tests' Firefox variants)."""
    if reason := firefox_missing() or namespaces_missing():
        pytest.skip(reason)
    workdir = tmp_path_factory.mktemp("firefox-natted")
    with natted_client() as net, start_firefox(workdir, net.in_client()) as process:
        yield NattedFirefox(net, process)


@pytest.fixture
def natted(request: pytest.FixtureRequest, browser_kind: str) -> Iterator[NattedClient]:
    """A client network behind a NAT router (`netkit.natted_client`), where `either_side`'s
    first browser runs: the test's own for Chromium; for Firefox the session's, where its
    Firefox runs, the router's rules put back as made before and after the test."""
    if reason := namespaces_missing():
        pytest.skip(reason)
    if browser_kind != "firefox":
        with natted_client() as net:
            yield net
        return
    shared: NattedFirefox = request.getfixturevalue("natted_firefox")
    shared.net.reset_router()
    try:
        yield shared.net
    finally:
        shared.net.reset_router()


@pytest.fixture
async def either_side(
    request: pytest.FixtureRequest, browser_kind: str, natted: NattedClient, tmp_path: Path
) -> AsyncIterator[tuple[OpenOn, OpenOn]]:
    """Page openers for `browser_kind` behind `natted`'s router, and for Chromium on the
    server's own network (both accept the tests' self-signed certificates)."""
    if browser_kind == "firefox":
        shared: NattedFirefox = request.getfixturevalue("natted_firefox")
        async with (
            bidi_session(shared.process) as fox,
            headless_chromium("--ignore-certificate-errors") as local,
        ):
            yield fox.open_participant, functools.partial(open_participant, local)
        return
    async with chromiums_either_side(natted, tmp_path / "bin") as (behind, local):
        yield (
            functools.partial(open_participant, behind),
            functools.partial(open_participant, local),
        )


def firefox_server_options(firefox_net: FirefoxNet) -> dict[str, Any]:
    """`ServerThread` options for a server the session's Firefox reaches: on the veth address
    over HTTPS; the SFU binds all and advertises that address."""
    net, tls = firefox_net.net, firefox_net.tls
    return {
        "host": net.server,
        "tls_cert": tls.cert,
        "tls_key": tls.key,
        "media_host": "0.0.0.0",
        "media_advertised_address": net.server,
    }


@pytest.fixture(scope="module")
def firefox_server(
    firefox_net: FirefoxNet, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerThread]:
    """Parlour on the veth address over HTTPS; the SFU binds all and advertises that address."""
    with ServerThread(
        tmp_path_factory.mktemp("browser-firefox"), **firefox_server_options(firefox_net)
    ) as server:
        yield server


@pytest.fixture(scope="module")
def browser_server_options(request: pytest.FixtureRequest, browser_kind: str) -> dict[str, Any]:
    """`ServerThread` options for a server of a test's own that `open_on`'s pages reach (none
    for Chromium: 127.0.0.1 over plain HTTP)."""
    if browser_kind != "firefox":
        return {}
    return firefox_server_options(request.getfixturevalue("firefox_net"))


@pytest.fixture(scope="module")
def browser_server(request: pytest.FixtureRequest, browser_kind: str) -> ServerThread:
    """The module's Parlour server, where `browser_kind`'s pages reach it."""
    server: ServerThread = request.getfixturevalue(f"{browser_kind}_server")
    return server


@pytest.fixture
def browser_account(browser_server: ServerThread) -> Account:
    return new_account(browser_server)


@pytest.fixture
def browser_verify(request: pytest.FixtureRequest, browser_kind: str) -> ssl.SSLContext | bool:
    """httpx's `verify` for `browser_server`: its self-signed certificate for Firefox's."""
    if browser_kind != "firefox":
        return True
    tls: Certificate = request.getfixturevalue("firefox_net").tls
    return ssl.create_default_context(cafile=tls.cert)


@pytest.fixture
async def browser_rest(
    browser_server: ServerThread, browser_account: Account, browser_verify: ssl.SSLContext | bool
) -> AsyncIterator[httpx.AsyncClient]:
    """An async REST client for the browser tests' server, as `browser_account`."""
    async with httpx.AsyncClient(
        base_url=browser_server.base_url,
        auth=(browser_account.sid, browser_account.auth_token),
        verify=browser_verify,
    ) as rest:
        yield rest


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """Headless Debian Chromium driven by Playwright (no browser download)."""
    async with headless_chromium() as chromium:
        yield chromium


@pytest.fixture
async def firefox_browser(firefox_net: FirefoxNet) -> AsyncIterator[Firefox]:
    """The session's Firefox, driven over a WebDriver BiDi session of this test's own."""
    async with bidi_session(firefox_net.process) as fox:
        yield fox


@pytest.fixture
def open_on(request: pytest.FixtureRequest, browser_kind: str) -> OpenOn:
    """`await open_on(server, "alice")`: a participant page in `browser_kind` on a server of
    the test's own (made with `browser_server_options`); the test closes it."""
    if browser_kind == "firefox":
        fox: Firefox = request.getfixturevalue("firefox_browser")
        return fox.open_participant
    chromium: Browser = request.getfixturevalue("browser")
    return functools.partial(open_participant, chromium)


@pytest.fixture
def launch_page(open_on: OpenOn, browser_server: ServerThread) -> OpenParticipant:
    """Opens one participant page in `browser_kind` on the module's server: a Chromium
    browser context, or a Firefox window."""
    return functools.partial(open_on, browser_server)


@pytest.fixture
async def open_page(launch_page: OpenParticipant) -> AsyncIterator[OpenParticipant]:
    """`await open_page("alice")`: a new participant page with the SDK loaded from Parlour."""
    opened: list[BrowserParticipant] = []

    async def open_one(name: str) -> BrowserParticipant:
        participant = await launch_page(name)
        opened.append(participant)
        return participant

    yield open_one
    for participant in opened:
        await participant.close()


@pytest.fixture
async def contexts(browser: Browser) -> AsyncIterator[list[BrowserContext]]:
    """Browser contexts a test opens (one person each), closed after it."""
    opened: list[BrowserContext] = []
    yield opened
    for context in opened:
        await context.close()


@pytest.fixture
async def person_browser(tmp_path: Path) -> AsyncIterator[PersonBrowser]:
    """Headless Chromium per person, each playing its own fake camera (`meet.LOOKS`)."""
    launched: list[Browser] = []
    async with async_playwright() as playwright:

        async def launch(name: str) -> Browser:
            camera = tmp_path / f"camera-{len(launched)}.y4m"
            write_camera(camera, LOOKS[name])
            flags = [*CHROMIUM_FLAGS, f"--use-file-for-fake-video-capture={camera}"]
            chromium = await playwright.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=flags
            )
            launched.append(chromium)
            return chromium

        try:
            yield launch
        finally:
            for chromium in launched:
                await chromium.close()


@pytest.fixture
def meet(request: pytest.FixtureRequest, browser_kind: str, dev_server: ServerThread) -> OpenMeet:
    """`await meet("bob")`: Parlour Meet on the module's `dev_server` (`parlour serve --dev`,
    made with `browser_server_options`) for a person: a Chromium context of their own, or a
    window of the session's Firefox; closed after the test."""
    if browser_kind == "firefox":
        fox: Firefox = request.getfixturevalue("firefox_browser")
        return functools.partial(open_meet_in_firefox, fox, dev_server)
    chromium: Browser = request.getfixturevalue("browser")
    opened: list[BrowserContext] = request.getfixturevalue("contexts")
    return functools.partial(open_meet, chromium, opened, dev_server)


@pytest.fixture
def meet_person(
    request: pytest.FixtureRequest, browser_kind: str, dev_server: ServerThread
) -> OpenMeet:
    """`meet`, for one of `meet.LOOKS`: in Chromium a browser of their own whose camera shows
    them, for screenshots; Firefox has its own fake camera (`media.navigator.streams.fake`)."""
    if browser_kind == "firefox":
        meet: OpenMeet = request.getfixturevalue("meet")
        return meet
    # Its browsers closed after their contexts are.
    person_browser: PersonBrowser = request.getfixturevalue("person_browser")
    opened: list[BrowserContext] = request.getfixturevalue("contexts")

    async def open_person(name: str, **options: Any) -> MeetPage:
        return await open_meet(await person_browser(name), opened, dev_server, name, **options)

    return open_person
