"""Parlour Meet at `/` (the quickstart), its pre-join screen and its development endpoints.

With `parlour serve --dev` the app gets tokens from `/quickstart/token` and switches
recording through `/quickstart/recording` (a participant's own Access Token as bearer);
without `--dev` both are 404. The pre-join screen previews the fake camera, lists the fake
devices, and a Join pressed twice opens one session only; the form is gone during the call.

The app tests run in headless Chromium and in headless Firefox ESR (`browser_kind`), the same
bodies through `meet.MeetPage`: for Firefox the module's dev server is on the veth address
over HTTPS (`conftest.browser_server_options`), and the person is a window of the session's
Firefox, clicked and typed into through WebDriver BiDi's `input.performActions`.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from parlour.testing import ServerThread
from tests.browser.harness import SOCKETS
from tests.browser.meet import (
    SCREENSHOTS,
    MeetPage,
    OpenMeet,
    Rect,
    compare_screenshot,
    dev_rest,
    playing,
)

# The HTTP-only tests run without a browser; the app tests in Chromium and in Firefox.
pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def dev_server(
    tmp_path_factory: pytest.TempPathFactory, browser_server_options: dict[str, Any]
) -> Iterator[ServerThread]:
    """`parlour serve --dev`: on 127.0.0.1 (the HTTP-only tests, Chromium), or where the
    session's Firefox reaches it (the veth address, over HTTPS)."""
    data_dir: Path = tmp_path_factory.mktemp("quickstart")
    with ServerThread(data_dir, dev=True, **browser_server_options) as srv:
        yield srv


#: How many microphones each browser's fake devices are at least: Chromium has several;
#: Firefox one ("Default Audio Device", `media.navigator.streams.fake`).
FAKE_MICROPHONES = {"chromium": 2, "firefox": 1}


async def labels(person: MeetPage, kind: str) -> list[str]:
    """The labels of the browser's devices of `kind` ("audioinput"…), in its order."""
    found: list[str] = await person.page.evaluate(
        "async (kind) => (await navigator.mediaDevices.enumerateDevices())"
        ".filter((d) => d.kind === kind).map((d) => d.label)",
        kind,
    )
    return found


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


@pytest.mark.browser
async def test_prejoin_preview_devices_and_one_session_per_join(
    meet_person: OpenMeet,
    dev_server: ServerThread,
    browser_verify: ssl.SSLContext | bool,
    tmp_path: Path,
) -> None:
    async with asyncio.timeout(120):
        ada = await meet_person("Ada Lovelace")
        page = ada.page
        # Devices are listed with their labels once the page may use them.
        cameras = await ada.texts("#camera-select option")
        mics = await ada.texts("#mic-select option")
        assert cameras == await labels(ada, "videoinput") and all(cameras), cameras
        assert mics == await labels(ada, "audioinput") and all(mics), mics
        assert len(mics) >= FAKE_MICROPHONES[ada.browser], mics
        assert await page.inner_text("#preview-name") == "Ada Lovelace"
        assert await page.inner_text("#preview-initials") == "AL"
        # Every control has a name a screen reader can say.
        for control in ("#identity", "#room", "#camera-select", "#mic-select"):
            named = await page.evaluate("(s) => document.querySelector(s).labels.length", control)
            assert named == 1, control
        for button in ("#preview-mic", "#preview-camera"):
            assert await page.get_attribute(button, "aria-label"), button

        # The preview is 16:9 and beside the form on a desktop.
        preview, form = await ada.rect("#preview"), await ada.rect("#join-form")
        assert abs(preview.w / preview.h - 16 / 9) < 0.02, preview
        assert preview.right <= form.x and not preview.overlaps(form)
        await ada.check_screenshot(tmp_path, "prejoin.png")

        # Camera off in the preview: the avatar shows, and the camera button says so.
        await page.click("#preview-camera")
        assert await page.get_attribute("#preview-camera", "aria-pressed") == "false"
        assert await ada.visible("#preview .avatar")
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
        async with dev_rest(dev_server, browser_verify) as rest:
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


@pytest.mark.browser
async def test_reconnecting_and_removed_are_said_in_plain_words(
    meet: OpenMeet, dev_server: ServerThread, browser_verify: ssl.SSLContext | bool
) -> None:
    async with asyncio.timeout(90):
        cleo = await meet("cleo", init_script=SOCKETS.read_text())
        await cleo.join("blip-room")
        await cleo.wait_tiles(lambda tiles: playing(tiles, 1), "cleo's own tile")
        await cleo.watch_text("#banner")
        assert await cleo.page.evaluate("() => window.cutSignaling()") >= 1
        lost = "Your connection was lost. Reconnecting…"
        await cleo.wait_seen(
            "#banner",
            lambda seen: lost in seen and "Reconnected." in seen[seen.index(lost) :],
            "the reconnecting banner, then the reconnected one",
            within=30,
        )
        # Removed through the REST API: a page that says so, not an error code.
        room_sid = await cleo.page.evaluate("() => window.quickstart.room.sid")
        async with dev_rest(dev_server, browser_verify) as rest:
            kicked = await rest.post(
                f"/v1/Rooms/{room_sid}/Participants/cleo", data={"Status": "disconnected"}
            )
            assert kicked.is_success, kicked.text
        await cleo.page.wait_for_selector("#left:not([hidden])", timeout=20_000)
        assert await cleo.page.inner_text("#left-title") == "You were disconnected"
        detail = await cleo.page.inner_text("#left-detail")
        assert detail == "You were removed from the meeting."


def test_screenshot_comparison_tells_layouts_apart(monkeypatch: pytest.MonkeyPatch) -> None:
    """The coarse comparison accepts a screenshot as itself and refuses another layout; the
    regions it is told to leave out do not count."""
    monkeypatch.delenv("PARLOUR_UPDATE_SCREENSHOTS", raising=False)  # never rewrite here
    call = SCREENSHOTS / "call.png"
    compare_screenshot(call, "call.png")
    for other in ("screen-share.png", "muted.png"):
        with pytest.raises(AssertionError, match="looks different"):
            compare_screenshot(SCREENSHOTS / other, "call.png")
    with pytest.raises(AssertionError, match="390×844, not 1280×800"):
        compare_screenshot(SCREENSHOTS / "phone.png", "call.png")
    # Regions may be left out (Firefox's videos), not all of them.
    with pytest.raises(AssertionError, match="every region left out"):
        compare_screenshot(call, "call.png", ignore=[Rect(0, 0, 1280, 800)])
    # Left out, the rows of tiles where the muted picture differs no longer count.
    compare_screenshot(SCREENSHOTS / "muted.png", "call.png", ignore=[Rect(0, 80, 1280, 560)])


#: Waits for the tiles' glides (CSS transitions of their places) to end.
SETTLED = """async () => {
  for (let round = 0; round < 20; round++) {
    const gliding = document.getAnimations().filter(
      (a) => a.effect && a.effect.target && a.effect.target.matches('#main-tiles > .tile'));
    if (!gliding.length) return;
    await Promise.all(gliding.map((a) => a.finished.catch(() => null)));
  }
}"""

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


@pytest.mark.browser
async def test_the_grid_fits_any_number(meet: OpenMeet) -> None:
    async with asyncio.timeout(60):
        eve = await meet("eve")
        await eve.join("crowd")
        await eve.wait_tiles(lambda tiles: playing(tiles, 1), "eve's own tile")
        total = 1
        for add in (2, 6, 16, 25):
            await eve.page.evaluate(STAND_INS, add)
            await eve.page.evaluate(SETTLED)  # the tiles glide to their places: read those
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
        await eve.page.evaluate(SETTLED)
        tiles = await eve.tiles()
        [featured] = [t for t in tiles if t["featured"]]
        shown = [t for t in tiles if t["shown"] and not t["featured"]]
        more = await eve.page.inner_text("#main-tiles .more")
        assert more == f"+{total - 1 - len(shown)} more"
        big = Rect.of(featured["rect"])
        assert all(big.w > 3 * Rect.of(t["rect"]).w for t in shown)


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


#: The microphone the page's published audio track uses.
MIC_IN_USE = (
    "() => [...window.quickstart.room.localParticipant.audioTracks.values()][0]"
    ".track.mediaStreamTrack.getSettings().deviceId"
)


@pytest.mark.browser
async def test_settings_during_the_call(meet: OpenMeet) -> None:
    """The settings dialog lists the devices, the one in use chosen; Escape closes it and
    gives the focus back to its button."""
    async with asyncio.timeout(60):
        gil = await meet("gil")
        await gil.join("settings-room")
        await gil.page.click("#settings")
        await gil.page.wait_for_selector("#settings-dialog[open]")
        assert await gil.texts("#call-mic option") == await labels(gil, "audioinput")
        assert await gil.texts("#call-camera option") == await labels(gil, "videoinput")
        assert await gil.page.input_value("#call-mic") == await gil.page.evaluate(MIC_IN_USE)
        await gil.page.keyboard.press("Escape")
        await gil.page.wait_for_selector("#settings-dialog", state="hidden", timeout=5_000)
        assert await gil.page.evaluate("() => document.activeElement.id") == "settings"


@pytest.mark.chromium_only(
    "Firefox's fake media devices (media.navigator.streams.fake) are one camera and one"
    " microphone, so there is no other microphone to switch to"
)
@pytest.mark.browser
async def test_switch_microphone_during_the_call(meet: OpenMeet) -> None:
    async with asyncio.timeout(60):
        gil = await meet("gil")
        await gil.join("devices-room")
        await gil.page.click("#settings")
        await gil.page.wait_for_selector("#settings-dialog[open]")
        mics = await gil.page.evaluate(
            "() => [...document.querySelectorAll('#call-mic option')].map((o) => o.value)"
        )
        assert len(mics) >= 2, mics
        current = await gil.page.input_value("#call-mic")
        other = next(m for m in mics if m != current)
        await gil.page.select_option("#call-mic", other)
        await gil.wait_text(
            "#settings-status", lambda text: "Microphone changed." in text, "the change", within=20
        )
        assert await gil.page.evaluate(MIC_IN_USE) == other
