"""The quickstart app at `/`: with `parlour serve --dev`, two people enter a name and a room,
the app fetches tokens from the development endpoint and joins with the real SDK, and each
page shows a local and a remote video tile that play (checked on a screenshot too). Without
`--dev` the token endpoint is 404."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import av
import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, Page

from parlour.testing import ServerThread
from tests.browser.harness import poll

# The HTTP-only tests run without Chromium; the app test needs it.
pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def dev_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    data_dir: Path = tmp_path_factory.mktemp("quickstart")
    with ServerThread(data_dir, dev=True) as srv:
        yield srv


@pytest.fixture
async def contexts(browser: Browser) -> AsyncIterator[list[BrowserContext]]:
    opened: list[BrowserContext] = []
    yield opened
    for context in opened:
        await context.close()


TILES = """() => [...document.querySelectorAll('.tile')].map((tile) => {
  const video = tile.querySelector('video');
  return {
    identity: tile.dataset.identity,
    local: tile.classList.contains('local'),
    width: video ? video.videoWidth : 0,
    height: video ? video.videoHeight : 0,
    time: video ? video.currentTime : 0,
  };
})"""


async def join_quickstart(
    browser: Browser, contexts: list[BrowserContext], server: ServerThread, name: str
) -> Page:
    context = await browser.new_context(viewport={"width": 1100, "height": 700})
    contexts.append(context)
    page = await context.new_page()
    page.on("console", lambda m: print(f"[{name}] {m.type}: {m.text}"))
    await page.goto(server.base_url + "/")
    await page.fill("#identity", name)
    await page.fill("#room", "quickstart-test")
    await page.click("#join")
    await page.wait_for_selector("#call:not([hidden])", timeout=20_000)
    return page


def playing(tiles: list[dict[str, Any]], count: int) -> bool:
    return len(tiles) == count and all(t["width"] > 0 and t["time"] > 0.5 for t in tiles)


def luma_spread(png: Path) -> int:
    """Max - min of the screenshot's grey levels: 0 for a blank image."""
    with av.open(str(png)) as container:
        frame = next(container.decode(video=0)).reformat(format="gray")
    plane = frame.planes[0]
    data = bytes(plane)
    return max(data) - min(data)


def test_token_endpoint_is_off_without_dev(browser_server: ServerThread) -> None:
    with httpx.Client(base_url=browser_server.base_url) as http:
        off = http.get("/quickstart/token", params={"identity": "x", "room": "y"})
        assert off.status_code == 404 and off.json()["code"] == 20404
        for path in ("/", "/quickstart", "/quickstart/quickstart.js"):
            assert http.get(path).status_code == 200, path
        assert http.get("/quickstart/pyproject.toml").status_code == 404


def test_dev_token_endpoint(dev_server: ServerThread) -> None:
    with httpx.Client(base_url=dev_server.base_url) as http:
        minted = http.get("/quickstart/token", params={"identity": "ada", "room": "lab"})
        assert minted.status_code == 200, minted.text
        body = minted.json()
        assert body["identity"] == "ada" and body["room"] == "lab"
        assert body["ws_server"] == dev_server.base_url.replace("http", "ws") + "/signaling"
        claims = dev_server.call(dev_server.parlour.accounts.verify_access_token(body["token"]))
        assert claims.identity == "ada"
        assert http.get("/quickstart/token").status_code == 400


@pytest.mark.browser
async def test_quickstart_tiles_render(
    browser: Browser, contexts: list[BrowserContext], dev_server: ServerThread, tmp_path: Path
) -> None:
    async with asyncio.timeout(60):
        ada = await join_quickstart(browser, contexts, dev_server, "ada")
        bob = await join_quickstart(browser, contexts, dev_server, "bob")
        for page, other in ((ada, "bob"), (bob, "ada")):
            tiles = await poll(
                functools.partial(page.evaluate, TILES),
                lambda tiles: playing(tiles, 2),
                within=20,
                what="local and remote tiles to play",
            )
            assert {(t["identity"], t["local"]) for t in tiles} == {
                (page is ada and "ada" or "bob", True),
                (other, False),
            }
            assert all((t["width"], t["height"]) == (640, 480) for t in tiles), tiles
            people = await page.locator("#participants li").all_inner_texts()
            assert sorted(people) == sorted([f"{'ada' if page is ada else 'bob'} (you)", other])

        shot = tmp_path / "quickstart.png"
        await ada.locator("#tiles").screenshot(path=str(shot))
        assert luma_spread(shot) > 50, "the tiles screenshot is blank"

        # Mute and camera buttons reach the other side as disabled tracks.
        await ada.click("#mute")
        await ada.click("#camera")
        assert await ada.inner_text("#mute") == "Unmute"
        assert await ada.inner_text("#camera") == "Start camera"
        disabled = """() => [...window.quickstart.room.participants.values()][0]
            .tracks.size && [...[...window.quickstart.room.participants.values()][0]
            .tracks.values()].every((pub) => !pub.isTrackEnabled)"""
        await poll(lambda: bob.evaluate(disabled), bool, within=10, what="ada's tracks disabled")

        await ada.click("#leave")
        await ada.wait_for_selector("#join-form:not([hidden])")
        await poll(
            lambda: bob.evaluate(TILES),
            lambda tiles: len(tiles) == 1 and tiles[0]["local"],
            within=10,
            what="ada's tile to go away on bob's page",
        )
