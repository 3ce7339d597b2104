"""Fixtures for browser tests: a Parlour server, headless Chromium, and participant pages.

Browser tests need Debian's `/usr/bin/chromium` and `node_modules/twilio-video` (both put
there by `scripts/install --tests`, which `make test` runs); without them they are skipped
with the reason.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, async_playwright

from parlour.testing import ServerThread
from tests.browser.harness import (
    CHROMIUM,
    CHROMIUM_FLAGS,
    BrowserParticipant,
    OpenParticipant,
    missing_requirements,
    open_participant,
)
from tests.browser.launcher import headless_chromium
from tests.browser.meet import LOOKS, PersonBrowser, write_camera
from tests.helpers import Account, new_account, rest_client, server_fixture


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = missing_requirements()
    if reason is None:
        return
    for item in items:
        if item.get_closest_marker("browser") is not None:
            item.add_marker(pytest.mark.skip(reason=f"browser test: {reason}"))


browser_server = server_fixture("browser")


@pytest.fixture
def browser_account(browser_server: ServerThread) -> Account:
    return new_account(browser_server)


@pytest.fixture
async def browser_rest(
    browser_server: ServerThread, browser_account: Account
) -> AsyncIterator[httpx.AsyncClient]:
    """An async REST client for the browser tests' server, as `browser_account`."""
    async with rest_client(browser_server, browser_account) as rest:
        yield rest


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """Headless Debian Chromium driven by Playwright (no browser download)."""
    async with headless_chromium() as chromium:
        yield chromium


@pytest.fixture
async def open_page(
    browser: Browser, browser_server: ServerThread
) -> AsyncIterator[OpenParticipant]:
    """`await open_page("alice")`: a new participant page with the SDK loaded from Parlour."""
    opened: list[BrowserParticipant] = []

    async def open_one(name: str) -> BrowserParticipant:
        participant = await open_participant(browser, browser_server, name)
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
