"""A meeting of four people in Parlour Meet, each in their own headless Chromium context
with the fake camera and microphone: the grid, names, network-quality bars, the dominant
speaker; a participant who mutes and stops the camera; chat over the data track; a shared
screen shown large; the recording switch; speaker view; leaving. Screenshots of the call,
the muted participant and the screen share are compared with `docs/screenshots/`. Then two
people on a phone-sized screen, in Chromium and in Firefox (`meet_person`)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import BrowserContext

from parlour.testing import ServerThread
from tests.browser.harness import poll
from tests.browser.meet import (
    SLIDE_SCREEN,
    MeetPage,
    OpenMeet,
    PersonBrowser,
    Rect,
    compare_screenshot,
    dev_rest,
    open_meet,
    playing,
)

pytestmark = [pytest.mark.browser, pytest.mark.integration]

PEOPLE = ("Ada Lovelace", "Grace Hopper", "Alan Turing", "Katherine Johnson")


@pytest.fixture(scope="module")
def dev_server(
    tmp_path_factory: pytest.TempPathFactory, browser_server_options: dict[str, Any]
) -> Iterator[ServerThread]:
    """`parlour serve --dev` where `browser_kind`'s pages reach it (`meet_person`)."""
    with ServerThread(tmp_path_factory.mktemp("meet"), dev=True, **browser_server_options) as srv:
        yield srv


def check_grid(tiles: list[dict[str, Any]], stage: Rect, cols: int, rows: int) -> None:
    """Equal tiles, `cols` × `rows`, none overlapping, all inside the stage."""
    rects = [Rect.of(t["rect"]) for t in tiles]
    assert all(r.inside(stage) for r in rects), (rects, stage)
    assert all(not a.overlaps(b) for i, a in enumerate(rects) for b in rects[i + 1 :]), rects
    assert len({round(r.w) for r in rects}) == 1 and len({round(r.h) for r in rects}) == 1
    assert len({round(r.x) for r in rects}) == cols and len({round(r.y) for r in rects}) == rows
    used = sum(r.w * r.h for r in rects) / (stage.w * stage.h)
    assert used > 0.6, f"the tiles use only {used:.0%} of the stage"


async def screenshot(page: MeetPage, tmp_path: Path, name: str) -> None:
    shot = tmp_path / name
    await page.page.screenshot(path=str(shot))
    compare_screenshot(shot, name)


@pytest.mark.chromium_only(
    "its screenshots tell four people apart by their cameras, each a .y4m file of their own"
    " (Chromium's --use-file-for-fake-video-capture; Firefox's fake camera is one plain colour"
    " for all); the dominant speaker needs microphones that beep (Firefox's fake one is a steady"
    " tone, which the algorithm takes for background noise); and the screen share calls"
    " getDisplayMedia, which finds no screen in a headless Firefox"
)
async def test_four_people_meet(
    person_browser: PersonBrowser, dev_server: ServerThread, tmp_path: Path
) -> None:
    contexts: list[BrowserContext] = []
    async with asyncio.timeout(240):
        pages = []
        for name in PEOPLE:
            script = SLIDE_SCREEN if name == "Grace Hopper" else None
            browser = await person_browser(name)
            page = await open_meet(browser, contexts, dev_server, name, init_script=script)
            await page.join("team")
            pages.append(page)
        ada, grace, alan, katherine = pages

        # Everyone sees four playing tiles with the right names, in a 2×2 grid.
        for page in pages:
            tiles = await page.wait_tiles(lambda t: playing(t, 4), "four playing tiles", 60)
            names = sorted(t["name"] for t in tiles)
            assert names == sorted(n + (" (you)" if n == page.name else "") for n in PEOPLE)
            assert [t["identity"] for t in tiles if t["local"]] == [page.name]
            check_grid(tiles, await page.rect("#main-tiles"), cols=2, rows=2)
            assert await page.page.inner_text("#people-count") == "4 people"
        # Network quality bars on every tile (the server's network-quality feature).
        await ada.wait_tiles(
            lambda tiles: all(t["bars"] in {"1", "2", "3", "4", "5"} for t in tiles),
            "network quality on every tile",
        )
        # The dominant speaker (the fake microphones all beep) is ringed: one tile, the one
        # the SDK names (both read at the same moment).
        ringed = """() => ({
          ringed: [...document.querySelectorAll('#main-tiles .tile.speaking')]
            .map((t) => t.dataset.sid),
          dominant: window.quickstart.room.dominantSpeaker
            && window.quickstart.room.dominantSpeaker.sid,
        })"""
        await poll(
            lambda: ada.page.evaluate(ringed),
            lambda seen: seen["dominant"] is not None and seen["ringed"] == [seen["dominant"]],
            within=30,
            what="the dominant speaker ringed on ada's page",
        )
        await screenshot(ada, tmp_path, "call.png")

        # Grace mutes and stops her camera: everyone sees it on her tile.
        await grace.page.click("#mute")
        await grace.page.click("#camera")
        assert await grace.page.get_attribute("#mute", "aria-pressed") == "true"
        assert await grace.page.inner_text("#mute .label") == "Unmute"
        assert await grace.page.inner_text("#camera .label") == "Start camera"
        for page in pages:
            await poll(
                lambda page=page: page.tile("Grace Hopper"),
                lambda t: t["audioOff"] and t["videoOff"],
                within=20,
                what=f"grace muted on {page.name}'s page",
            )
            tile = await page.tile("Grace Hopper")
            assert "microphone muted" in tile["label"] and "camera off" in tile["label"]
            assert await page.page.locator(
                '#main-tiles .tile[data-identity="Grace Hopper"] .muted-icon'
            ).is_visible()
            assert await page.page.locator(
                '#main-tiles .tile[data-identity="Grace Hopper"] .avatar'
            ).is_visible()
        assert not (await ada.tile("Alan Turing"))["audioOff"]

        # Chat over the data track: Grace writes, Ada has an unread badge, then reads it.
        await grace.page.click("#chat-toggle")
        await grace.page.fill("#chat-input", "Hello everyone! Slides in a minute.")
        await grace.page.press("#chat-input", "Enter")
        await ada.page.wait_for_selector("#unread:not([hidden])")
        assert await ada.page.inner_text("#unread") == "1"
        await ada.page.click("#chat-toggle")
        assert await ada.page.evaluate("() => document.activeElement.id") == "chat-input"
        message = ada.page.locator("#messages li.theirs").last
        assert await message.locator(".from").inner_text() != ""
        assert "Grace Hopper" in await message.locator(".from").inner_text()
        assert await message.locator(".text").inner_text() == "Hello everyone! Slides in a minute."
        assert not await ada.visible("#unread")
        for page in (alan, katherine):
            await page.page.wait_for_selector("#unread:not([hidden])")
        mine = grace.page.locator("#messages li.mine .text")
        assert await mine.inner_text() == "Hello everyone! Slides in a minute."
        await ada.wait_tiles(lambda t: playing(t, 4) or True, "tiles after the chat opened")
        tiles = [t for t in await ada.tiles() if t["shown"]]
        stage = await ada.rect("#main-tiles")
        assert all(Rect.of(t["rect"]).inside(stage) for t in tiles)
        assert not stage.overlaps(await ada.rect("#chat"))
        await screenshot(ada, tmp_path, "muted.png")
        await ada.page.keyboard.press("Escape")
        assert not await ada.visible("#chat")

        # Grace shares her screen: it is shown large on every page, the others beside it.
        await grace.page.click("#share")
        await grace.page.wait_for_selector('#share[aria-pressed="true"]')
        for page in pages:
            tiles = await page.wait_tiles(
                lambda tiles: any(
                    t["screen"] and t["width"] > 0 and t["time"] > 0.3 for t in tiles
                ),
                "grace's screen",
            )
            [screen] = [t for t in tiles if t["screen"]]
            assert screen["featured"] and screen["identity"] == "Grace Hopper"
            big = Rect.of(screen["rect"])
            others = [Rect.of(t["rect"]) for t in tiles if not t["screen"]]
            assert all(big.w > 3 * r.w and not big.overlaps(r) for r in others), (big, others)
            assert (
                big.w * big.h
                > 0.5 * (await page.rect("#main-tiles")).w * (await page.rect("#main-tiles")).h
            )
        await asyncio.sleep(1)  # a few frames of the slide
        await ada.page.evaluate("() => document.activeElement.blur()")  # no focus ring
        await screenshot(ada, tmp_path, "screen-share.png")

        # Katherine records the meeting: everyone sees that it is being recorded.
        await katherine.page.click("#record")
        for page in pages:
            await page.page.wait_for_selector("#rec-pill:not([hidden])", timeout=20_000)
        assert await katherine.page.inner_text("#record .label") == "Stop recording"
        room_sid = await ada.page.evaluate("() => window.quickstart.room.sid")
        async with dev_rest(dev_server) as rest:
            rules = (await rest.get(f"/v1/Rooms/{room_sid}/RecordingRules")).json()
            assert rules["rules"] == [{"type": "include", "all": True}]
            recordings = await poll(
                lambda: rest.get(f"/v1/Rooms/{room_sid}/Recordings"),
                lambda r: len(r.json()["recordings"]) > 0,
                within=20,
                what="recordings of the room",
            )
            assert recordings.status_code == 200
        await katherine.page.click("#record")
        for page in pages:
            await page.page.wait_for_selector("#rec-pill", state="hidden", timeout=20_000)

        # Grace stops sharing; speaker view shows one person large.
        await grace.page.click("#share")
        await ada.wait_tiles(lambda t: not any(x["screen"] for x in t), "the screen to go")
        await ada.page.click("#layout")
        assert await ada.page.get_attribute("#layout", "aria-pressed") == "true"
        tiles = await ada.wait_tiles(
            lambda t: sum(x["featured"] for x in t) == 1, "one featured tile in speaker view"
        )
        [featured] = [t for t in tiles if t["featured"]]
        assert not featured["local"]
        await ada.page.click("#layout")
        tiles = await ada.wait_tiles(lambda t: not any(x["featured"] for x in t), "the grid again")
        await asyncio.sleep(0.5)  # the tiles glide back into place
        check_grid(await ada.tiles(), await ada.rect("#main-tiles"), cols=2, rows=2)

        # Alan leaves: he reads a message, the others see three tiles.
        await alan.page.click("#leave")
        await alan.page.wait_for_selector("#left:not([hidden])")
        assert await alan.page.inner_text("#left-title") == "You left the meeting"
        for page in (ada, grace, katherine):
            await page.wait_tiles(lambda t: len(t) == 3, "three tiles after alan left")
            assert await page.page.inner_text("#people-count") == "3 people"


async def test_meeting_on_a_phone(meet_person: OpenMeet, tmp_path: Path) -> None:
    phone = {"width": 390, "height": 844}
    async with asyncio.timeout(120):
        first = await meet_person("Ada Lovelace", viewport=phone)
        width = await first.page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= phone["width"], "the pre-join screen scrolls sideways"
        await first.join("phone")
        second = await meet_person("Grace Hopper", viewport=phone)
        await second.join("phone")
        tiles = await first.wait_tiles(lambda t: playing(t, 2), "two tiles on a phone", 60)
        stage = await first.rect("#main-tiles")
        rects = [Rect.of(t["rect"]) for t in tiles]
        # One above the other, each the full width of the screen (less its margins).
        assert rects[0].x == rects[1].x and rects[0].y != rects[1].y
        assert all(r.inside(stage) and r.w > 0.9 * stage.w for r in rects), (rects, stage)
        controls = await first.rect(".controls")
        assert controls.right <= phone["width"] and controls.bottom <= phone["height"]
        for button in ("#mute", "#camera", "#record", "#chat-toggle", "#leave"):
            box = await first.rect(button)
            assert box.w >= 40 and box.h >= 40, f"{button} is too small to tap"
            assert await first.page.get_attribute(button, "aria-label"), button
        width = await first.page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= phone["width"], "the call scrolls sideways"
        # Chat takes the whole screen on a phone.
        await first.page.click("#chat-toggle")
        chat = await first.rect("#chat")
        assert chat.w == phone["width"]
        await first.page.click("#chat-close")
        await first.check_screenshot(tmp_path, "phone.png")
