"""Parlour Meet at `/` (the quickstart), its pre-join screen and its development endpoints.

With `parlour serve --dev` the app gets tokens from `/quickstart/token` and switches
recording through `/quickstart/recording` (a participant's own Access Token as bearer);
without `--dev` both are 404. The pre-join screen previews the fake camera, lists the fake
devices, and a Join pressed twice opens one session only; the form is gone during the call.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, BrowserContext

from parlour.testing import ServerThread
from tests.browser.harness import SOCKETS
from tests.browser.meet import (
    SCREENSHOTS,
    MeetPage,
    PersonBrowser,
    Rect,
    compare_screenshot,
    dev_rest,
    open_meet,
    playing,
)

# The HTTP-only tests run without Chromium; the app tests need it.
pytestmark = pytest.mark.integration

#: The app tests' Firefox variants are skipped, with this reason.
CHROMIUM_ONLY = pytest.mark.chromium_only(
    "the app is driven through Playwright's page API (clicks, screenshots, viewports, device"
    " lists), which the small WebDriver BiDi driver for Firefox (tests/browser/firefox.py) lacks"
)


@pytest.fixture(scope="module")
def dev_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    data_dir: Path = tmp_path_factory.mktemp("quickstart")
    with ServerThread(data_dir, dev=True) as srv:
        yield srv


#: `await meet("bob")`: the app on the dev server for `name` (`open_meet`'s options too).
OpenMeet = Callable[..., Awaitable[MeetPage]]


@pytest.fixture
def meet(browser: Browser, contexts: list[BrowserContext], dev_server: ServerThread) -> OpenMeet:
    return functools.partial(open_meet, browser, contexts, dev_server)


def dev_token(http: httpx.Client, identity: str, room: str | None = None) -> str:
    params = {"identity": identity} | ({"room": room} if room else {})
    minted = http.get("/quickstart/token", params=params)
    assert minted.status_code == 200, minted.text
    token: str = minted.json()["token"]
    return token


def test_dev_endpoints_are_off_without_dev(browser_server: ServerThread) -> None:
    with httpx.Client(base_url=browser_server.base_url) as http:
        off = http.get("/quickstart/token", params={"identity": "x", "room": "y"})
        assert off.status_code == 404 and off.json()["code"] == 20404
        switch = http.post("/quickstart/recording", json={"room": "RM" + "0" * 32, "record": True})
        assert switch.status_code == 404 and switch.json()["code"] == 20404
        for path in ("/", "/quickstart", "/quickstart/quickstart.js", "/quickstart/quickstart.css"):
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


def test_recording_switch_refuses_who_is_not_in_the_room(dev_server: ServerThread) -> None:
    with httpx.Client(base_url=dev_server.base_url) as http:
        creds = dev_server.call(dev_server.parlour.accounts.default_account())
        made = http.post(
            "/v1/Rooms",
            data={"UniqueName": "switch-room"},
            auth=(creds.account_sid, creds.auth_token),
        )
        assert made.status_code == 201, made.text
        room = made.json()["sid"]
        body = {"room": room, "record": True}

        def switch(token: str | None, json: object = body) -> httpx.Response:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            return http.post("/quickstart/recording", json=json, headers=headers)

        assert switch(None).status_code == 401
        assert switch("not-a-token").status_code == 401
        # The account's own credentials are not what this endpoint takes.
        basic = http.post(
            "/quickstart/recording", json=body, auth=(creds.account_sid, creds.auth_token)
        )
        assert basic.status_code == 401
        stranger = dev_token(http, "eve")
        assert switch(stranger, {"room": room}).status_code == 400
        assert switch(stranger, ["no"]).status_code == 400
        assert switch(stranger, {"room": "RM" + "1" * 32, "record": True}).status_code == 404
        # A valid token, but eve is not in the room; a token for another room is refused too.
        refused = switch(stranger)
        assert refused.status_code == 403 and refused.json()["code"] == 20403
        assert switch(dev_token(http, "eve", "other-room")).status_code == 403
        rules = http.get(
            f"/v1/Rooms/{room}/RecordingRules", auth=(creds.account_sid, creds.auth_token)
        )
        assert rules.json()["rules"] == [], "a refused switch changed the rules"


@CHROMIUM_ONLY
@pytest.mark.browser
async def test_prejoin_preview_devices_and_one_session_per_join(
    person_browser: PersonBrowser,
    contexts: list[BrowserContext],
    dev_server: ServerThread,
    tmp_path: Path,
) -> None:
    async with asyncio.timeout(120):
        browser = await person_browser("Ada Lovelace")
        ada = await open_meet(browser, contexts, dev_server, "Ada Lovelace")
        page = ada.page
        # Devices are listed with their labels once the page may use them.
        cameras = await page.locator("#camera-select option").all_inner_texts()
        mics = await page.locator("#mic-select option").all_inner_texts()
        assert cameras and all(cameras), cameras
        assert len(mics) >= 2 and all(mics), mics
        assert await page.inner_text("#preview-name") == "Ada Lovelace"
        assert await page.inner_text("#preview-initials") == "AL"
        # Every control has a name a screen reader can say.
        for control in ("#identity", "#room", "#camera-select", "#mic-select"):
            assert await page.locator(control).evaluate("(el) => el.labels.length") == 1, control
        for button in ("#preview-mic", "#preview-camera"):
            assert await page.get_attribute(button, "aria-label"), button

        # The preview is 16:9 and beside the form on a desktop.
        preview, form = await ada.rect("#preview"), await ada.rect("#join-form")
        assert abs(preview.w / preview.h - 16 / 9) < 0.02, preview
        assert preview.right <= form.x and not preview.overlaps(form)
        shot = tmp_path / "prejoin.png"
        await page.screenshot(path=str(shot))
        compare_screenshot(shot, "prejoin.png")

        # Camera off in the preview: the avatar shows, and the camera button says so.
        await page.click("#preview-camera")
        assert await page.get_attribute("#preview-camera", "aria-pressed") == "false"
        assert await page.locator("#preview .avatar").is_visible()
        await page.click("#preview-camera")
        await page.wait_for_function("() => document.querySelector('#preview video')")

        # Join pressed twice (and Enter on top): one session.
        await page.fill("#room", "prejoin-room")
        await page.evaluate(
            "() => { const b = document.getElementById('join'); b.click(); b.click();"
            " document.getElementById('join-form').requestSubmit(); }"
        )
        await page.wait_for_selector("#call:not([hidden])")
        assert not await ada.visible("#join-form"), "the form shows during the call"
        assert not await ada.visible("#prejoin")
        await ada.wait_tiles(lambda tiles: playing(tiles, 1), "ada's own tile")
        async with dev_rest(dev_server) as rest:
            rooms = (await rest.get("/v1/Rooms", params={"UniqueName": "prejoin-room"})).json()
            [room] = rooms["rooms"]
            listed = await rest.get(f"/v1/Rooms/{room['sid']}/Participants")
            people = [p["identity"] for p in listed.json()["participants"]]
            assert people == ["Ada Lovelace"], people
        assert await page.evaluate("() => window.quickstart.room.participants.size") == 0
        # Submitting the (hidden) form again during the call does nothing either.
        await page.evaluate("() => document.getElementById('join-form').requestSubmit()")
        assert await page.evaluate("() => window.quickstart.room.state") == "connected"

        # Leave: a message, and a way back.
        await page.click("#leave")
        await page.wait_for_selector("#left:not([hidden])")
        assert await page.inner_text("#left-title") == "You left the meeting"
        assert "prejoin-room" in await page.inner_text("#left-detail")
        announced = await page.inner_text("#announcer")
        await ada.wait_text(
            "#announcer",
            lambda text: "You left the meeting" in text,
            f"the leave to be announced (was {announced!r})",
            within=5,
        )
        await page.click("#rejoin")
        await page.wait_for_selector("#call:not([hidden])")
        await ada.wait_tiles(lambda tiles: playing(tiles, 1), "ada's tile after rejoining")


@CHROMIUM_ONLY
@pytest.mark.browser
async def test_join_error_is_said_in_plain_words(meet: OpenMeet) -> None:
    async with asyncio.timeout(60):
        bob = await meet("bob")
        await bob.page.click("#token-details summary")
        await bob.page.fill("#token", "not-a-token")
        await bob.page.click("#join")
        status = await bob.wait_text(
            "#status", lambda text: text.startswith("Could not join"), "the join error", within=20
        )
        assert "access token is not valid" in status, status
        assert await bob.visible("#join-form") and not await bob.visible("#call")
        await bob.page.fill("#token", "")
        await bob.page.fill("#identity", "")
        await bob.page.click("#join")
        assert await bob.page.inner_text("#status") == "Enter your name to join."
        assert await bob.page.evaluate("() => document.activeElement.id") == "identity"


@CHROMIUM_ONLY
@pytest.mark.browser
async def test_reconnecting_and_removed_are_said_in_plain_words(
    meet: OpenMeet, dev_server: ServerThread
) -> None:
    async with asyncio.timeout(90):
        cleo = await meet("cleo", init_script=SOCKETS.read_text())
        await cleo.join("blip-room")
        await cleo.wait_tiles(lambda tiles: playing(tiles, 1), "cleo's own tile")
        assert await cleo.page.evaluate("() => window.cutSignaling()") >= 1
        banner = await cleo.wait_text(
            "#banner",
            lambda text: "Reconnecting" in text,
            "the reconnecting banner",
            within=10,
            interval=0.02,
        )
        assert banner == "Your connection was lost. Reconnecting…"
        await cleo.wait_text(
            "#banner",
            lambda text: text == "Reconnected.",
            "the reconnected banner",
            within=20,
            interval=0.02,
        )
        # Removed through the REST API: a page that says so, not an error code.
        room_sid = await cleo.page.evaluate("() => window.quickstart.room.sid")
        async with dev_rest(dev_server) as rest:
            kicked = await rest.post(
                f"/v1/Rooms/{room_sid}/Participants/cleo", data={"Status": "disconnected"}
            )
            assert kicked.is_success, kicked.text
        await cleo.page.wait_for_selector("#left:not([hidden])", timeout=20_000)
        assert await cleo.page.inner_text("#left-title") == "You were disconnected"
        detail = await cleo.page.inner_text("#left-detail")
        assert detail == "You were removed from the meeting."


def test_screenshot_comparison_tells_layouts_apart(monkeypatch: pytest.MonkeyPatch) -> None:
    """The coarse comparison accepts a screenshot as itself and refuses another layout."""
    monkeypatch.delenv("PARLOUR_UPDATE_SCREENSHOTS", raising=False)  # never rewrite here
    call = SCREENSHOTS / "call.png"
    compare_screenshot(call, "call.png")
    for other in ("screen-share.png", "muted.png"):
        with pytest.raises(AssertionError, match="looks different"):
            compare_screenshot(SCREENSHOTS / other, "call.png")
    with pytest.raises(AssertionError, match="390×844, not 1280×800"):
        compare_screenshot(SCREENSHOTS / "phone.png", "call.png")


#: Adds `n` stand-in tiles (no media) next to the page's own and lays the stage out again.
STAND_INS = """(n) => {
  const state = window.quickstart;
  const first = state.tiles.size;
  for (let i = first; i < first + n; i++) {
    const tile = document.createElement('div');
    tile.className = 'tile remote video-off';
    tile.dataset.identity = 'guest ' + i;
    tile.dataset.sid = 'PA' + i;
    tile.innerHTML = '<span class="name">guest ' + i + '</span>';
    document.getElementById('main-tiles').appendChild(tile);
    state.tiles.set('PA' + i, tile);
  }
  state.relayout();
}"""


@CHROMIUM_ONLY
@pytest.mark.browser
async def test_the_grid_fits_any_number(meet: OpenMeet) -> None:
    async with asyncio.timeout(60):
        eve = await meet("eve")
        await eve.page.emulate_media(reduced_motion="reduce")  # no gliding: read final places
        await eve.join("crowd")
        await eve.wait_tiles(lambda tiles: playing(tiles, 1), "eve's own tile")
        total = 1
        for add in (2, 6, 16, 25):
            await eve.page.evaluate(STAND_INS, add)
            total += add
            tiles = await eve.tiles()
            assert len(tiles) == total
            stage = await eve.rect("#main-tiles")
            rects = [Rect.of(t["rect"]) for t in tiles]
            assert all(r.inside(stage) for r in rects), (total, stage)
            overlaps = [
                (a, b) for i, a in enumerate(rects) for b in rects[i + 1 :] if a.overlaps(b)
            ]
            assert not overlaps, (total, overlaps)
            assert len({(round(r.w), round(r.h)) for r in rects}) == 1, total
            # Full rows, the last one centred; together they fill most of the stage.
            top = min(round(r.y) for r in rects)
            cols = sum(1 for r in rects if round(r.y) == top)
            assert len({round(r.y) for r in rects}) == -(-total // cols), total
            used = sum(r.w * r.h for r in rects) / (stage.w * stage.h)
            assert used > 0.45, f"{total} tiles use {used:.0%} of the stage"
        # Speaker view: one large tile, a strip of those that fit, and "+N more".
        await eve.page.click("#layout")
        tiles = await eve.tiles()
        [featured] = [t for t in tiles if t["featured"]]
        shown = [t for t in tiles if t["shown"] and not t["featured"]]
        more = await eve.page.inner_text("#main-tiles .more")
        assert more == f"+{total - 1 - len(shown)} more"
        big = Rect.of(featured["rect"])
        assert all(big.w > 3 * Rect.of(t["rect"]).w for t in shown)


@CHROMIUM_ONLY
@pytest.mark.browser
async def test_join_muted_without_camera_then_start_it(meet: OpenMeet) -> None:
    async with asyncio.timeout(60):
        finn = await meet("finn")
        await finn.page.click("#preview-mic")
        await finn.page.click("#preview-camera")
        assert await finn.page.get_attribute("#preview-mic", "aria-label") == "Microphone off"
        await finn.join("quiet-room")
        [tile] = await finn.tiles()
        assert tile["audioOff"] and tile["videoOff"], tile
        assert await finn.page.get_attribute("#mute", "aria-pressed") == "true"
        published = (
            "() => [...window.quickstart.room.localParticipant.tracks.values()]"
            ".map((p) => p.kind).sort()"
        )
        assert await finn.page.evaluate(published) == ["audio", "data"]
        # Starting the camera in the call publishes one.
        await finn.page.click("#camera")
        await finn.wait_tiles(lambda tiles: playing(tiles, 1), "finn's camera")
        [tile] = await finn.tiles()
        assert not tile["videoOff"] and tile["audioOff"]
        assert await finn.page.evaluate(published) == ["audio", "data", "video"]
        await finn.page.click("#mute")
        [tile] = await finn.tiles()
        assert not tile["audioOff"] and "microphone on" in tile["label"]


@CHROMIUM_ONLY
@pytest.mark.browser
async def test_switch_microphone_during_the_call(meet: OpenMeet) -> None:
    async with asyncio.timeout(60):
        gil = await meet("gil")
        await gil.join("devices-room")
        await gil.page.click("#settings")
        await gil.page.wait_for_selector("#settings-dialog[open]")
        mics = await gil.page.locator("#call-mic option").evaluate_all(
            "(options) => options.map((o) => o.value)"
        )
        assert len(mics) >= 2, mics
        current = await gil.page.input_value("#call-mic")
        other = next(m for m in mics if m != current)
        await gil.page.select_option("#call-mic", other)
        await gil.page.wait_for_selector("#settings-status:has-text('Microphone changed.')")
        in_use = await gil.page.evaluate(
            "() => [...window.quickstart.room.localParticipant.audioTracks.values()][0]"
            ".track.mediaStreamTrack.getSettings().deviceId"
        )
        assert in_use == other
        await gil.page.keyboard.press("Escape")
        assert not await gil.page.locator("#settings-dialog").is_visible()
        assert await gil.page.evaluate("() => document.activeElement.id") == "settings"
