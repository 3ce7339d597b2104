"""Drive Parlour Meet (the app at `/`) in headless Chromium or Firefox, as people use it: fill
the pre-join form, press buttons, read what the page shows (tiles, indicators, chat).

A `MeetPage` drives a Playwright page (Chromium) or a `firefox.FirefoxPage` (WebDriver BiDi),
which has the part of Playwright's page API used here (`click`, `fill`, `keyboard.press`,
`select_option`, `wait_for_selector`, `screenshot`…), so a test body runs in either browser;
what it reads off the page (tiles, boxes, visibility, texts) goes through `evaluate`.

Screenshots of key states are compared with the ones committed under `docs/screenshots/`,
tolerantly: the same size, and the same coarse picture (a 16×10 grid of mean grey levels,
which the moving fake camera and the clock in it do not change much); Firefox's with its own,
under `docs/screenshots/firefox/` (`MeetPage.check_screenshot`). Run the tests with
`PARLOUR_UPDATE_SCREENSHOTS=1` to write new ones after a deliberate change of the design.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import httpx
from playwright.async_api import Browser, BrowserContext, Page

from parlour.testing import ServerThread
from tests.browser.firefox import VISIBLE, Firefox, FirefoxPage
from tests.browser.harness import REPO, SOCKETS, poll

__all__ = [
    "LOOKS",
    "SCREENSHOTS",
    "Look",
    "MeetPage",
    "OpenMeet",
    "PersonBrowser",
    "Rect",
    "compare_screenshot",
    "dev_rest",
    "open_meet",
    "open_meet_in_firefox",
    "write_camera",
]

SCREENSHOTS = REPO / "docs" / "screenshots"
DESKTOP = {"width": 1280, "height": 800}
#: Grey-level difference per coarse cell that still counts as the same picture.
CELL_TOLERANCE = 48
#: Share of coarse cells that may differ by more (a name, a message, the fake clock).
CELLS_MAY_DIFFER = 0.12

#: Stands in for a shared screen: headless Chromium's own fake screen is the same green
#: pattern as its fake camera, which says nothing in a screenshot. `getDisplayMedia` then
#: returns a canvas drawn like a slide (what people usually share).
SLIDE_SCREEN = """
navigator.mediaDevices.getDisplayMedia = async () => {
  const canvas = document.createElement('canvas');
  canvas.width = 1280; canvas.height = 720;
  const g = canvas.getContext('2d');
  let frame = 0;
  const draw = () => {
    frame += 1;
    g.fillStyle = '#f7f7fb'; g.fillRect(0, 0, 1280, 720);
    g.fillStyle = '#4f7cff'; g.fillRect(0, 0, 1280, 14);
    g.fillStyle = '#1d2030'; g.font = 'bold 60px sans-serif';
    g.fillText('Quarterly review', 90, 150);
    g.fillStyle = '#5b6172'; g.font = '32px sans-serif';
    g.fillText('Parlour Meet: screen sharing', 90, 205);
    const bars = [220, 310, 260, 400, 470];
    bars.forEach((h, i) => {
      g.fillStyle = i === 4 ? '#4f7cff' : '#b9c6f5';
      g.fillRect(120 + i * 170, 640 - h, 110, h);
    });
    g.fillStyle = '#9aa0ae'; g.fillRect(90, 640, 1100, 3);
    g.fillStyle = '#e5484d'; g.beginPath();
    g.arc(1180, 90, 10 + (frame % 10), 0, 2 * Math.PI); g.fill();
  };
  draw();
  window.setInterval(draw, 100);
  return canvas.captureStream(10);
};
"""

TILES = """() => [...document.querySelectorAll('#main-tiles > .tile')].map((tile) => {
  const video = tile.querySelector('video');
  const box = tile.getBoundingClientRect();
  const bars = tile.querySelector('.bars');
  return {
    identity: tile.dataset.identity,
    sid: tile.dataset.sid,
    local: tile.classList.contains('local'),
    screen: tile.classList.contains('screen'),
    featured: tile.classList.contains('featured'),
    speaking: tile.classList.contains('speaking'),
    audioOff: tile.classList.contains('audio-off'),
    videoOff: tile.classList.contains('video-off'),
    shown: !tile.classList.contains('overflowed') && box.width > 0,
    label: tile.getAttribute('aria-label') || '',
    name: tile.querySelector('.name').textContent,
    bars: bars ? bars.dataset.level : null,
    width: video ? video.videoWidth : 0,
    time: video ? video.currentTime : 0,
    rect: [box.left, box.top, box.width, box.height],
  };
})"""


#: Records each new text of the element a selector matches in `window.seenTexts[selector]`.
WATCH_TEXT = """(selector) => {
  const el = document.querySelector(selector);
  const seen = [el.textContent];
  (window.seenTexts = window.seenTexts || {})[selector] = seen;
  new MutationObserver(() => {
    if (el.textContent !== seen[seen.length - 1]) seen.push(el.textContent);
  }).observe(el, {childList: true, characterData: true, subtree: true});
}"""

#: The box of the element a selector matches, [x, y, width, height], or null when it has none.
RECT = """(selector) => {
  const el = document.querySelector(selector);
  if (!el || !el.getClientRects().length) return null;
  const box = el.getBoundingClientRect();
  return [box.left, box.top, box.width, box.height];
}"""


@dataclass(frozen=True)
class Rect:
    x: float
    y: float
    w: float
    h: float

    @classmethod
    def of(cls, values: list[float]) -> Rect:
        return cls(*values)

    @property
    def right(self) -> float:
        return self.x + self.w

    @property
    def bottom(self) -> float:
        return self.y + self.h

    def overlaps(self, other: Rect) -> bool:
        return (
            self.x < other.right - 1
            and other.x < self.right - 1
            and self.y < other.bottom - 1
            and other.y < self.bottom - 1
        )

    def inside(self, other: Rect) -> bool:
        return (
            self.x >= other.x - 1
            and self.y >= other.y - 1
            and self.right <= other.right + 1
            and self.bottom <= other.bottom + 1
        )


#: The `person_browser` fixture: `await person_browser("Ada Lovelace")` launches a Chromium
#: whose fake camera shows that person (`LOOKS`).
PersonBrowser = Callable[[str], Awaitable[Browser]]

#: The `meet` fixture: `await meet("bob")` opens the app on the module's `dev_server` for
#: `name` in the test's browser (`open_meet`'s options too).
OpenMeet = Callable[..., Awaitable["MeetPage"]]


class MeetPage:
    """One person using the app in a browser context (Chromium) or window (Firefox) of their
    own."""

    def __init__(self, name: str, page: Page | FirefoxPage) -> None:
        self.name = name
        self.page = page

    @property
    def browser(self) -> str:
        """The browser the page is in: "chromium" or "firefox"."""
        return "firefox" if isinstance(self.page, FirefoxPage) else "chromium"

    async def tiles(self) -> list[dict[str, Any]]:
        tiles: list[dict[str, Any]] = await self.page.evaluate(TILES)
        return tiles

    async def tile(self, identity: str, *, screen: bool = False) -> dict[str, Any]:
        for tile in await self.tiles():
            if tile["identity"] == identity and tile["screen"] == screen:
                return tile
        raise AssertionError(f"no tile for {identity} on {self.name}'s page")

    async def wait_tiles(self, accept: Any, what: str, within: float = 30) -> list[dict[str, Any]]:
        tiles: list[dict[str, Any]] = await poll(
            self.tiles, accept, within=within, what=f"{what} on {self.name}'s page"
        )
        return tiles

    async def wait_text(
        self,
        selector: str,
        accept: Callable[[str], bool],
        what: str,
        within: float,
        interval: float = 0.1,
    ) -> str:
        """The text of `selector` once `accept` holds for it."""
        return await poll(
            lambda: self.page.inner_text(selector),
            accept,
            within=within,
            what=f"{what} on {self.name}'s page",
            interval=interval,
        )

    async def watch_text(self, selector: str) -> None:
        """Keep every text `selector` shows from now on (`wait_seen`), however briefly: a
        poll, one round trip to the browser after another, can miss a short one."""
        await self.page.evaluate(WATCH_TEXT, selector)

    async def wait_seen(
        self, selector: str, accept: Callable[[list[str]], bool], what: str, within: float
    ) -> list[str]:
        """The texts `selector` showed since `watch_text`, once `accept` holds for them."""
        return await poll(
            lambda: self.page.evaluate("(s) => window.seenTexts[s]", selector),
            accept,
            within=within,
            what=f"{what} on {self.name}'s page",
        )

    async def rect(self, selector: str) -> Rect:
        """The box of `selector` in the viewport (CSS pixels)."""
        box = await self.page.evaluate(RECT, selector)
        assert box is not None, f"{selector} is not shown"
        return Rect.of(box)

    async def visible(self, selector: str) -> bool:
        """Whether `selector` is shown (Playwright's `is_visible`)."""
        shown: bool = await self.page.evaluate(
            f"(selector) => ({VISIBLE})(document.querySelector(selector))", selector
        )
        return shown

    async def texts(self, selector: str) -> list[str]:
        """The `innerText` of every element `selector` matches."""
        texts: list[str] = await self.page.evaluate(
            "(s) => [...document.querySelectorAll(s)].map((el) => el.innerText)", selector
        )
        return texts

    async def screenshot(self, path: Path) -> None:
        """The viewport as PNG."""
        await self.page.screenshot(path=str(path))

    async def check_screenshot(self, workdir: Path, name: str) -> None:
        """A screenshot compared with `docs/screenshots/<name>` (`compare_screenshot`), or in
        Firefox with `docs/screenshots/firefox/<name>`: its fonts and fake camera are its own.
        Its fake camera is one colour for the whole picture, which cycles through hues whose
        grey levels (105 to 150 here) are as far apart as the comparison's tolerance, so there
        the boxes of the page's videos are left out (where tiles are is asserted on boxes)."""
        shot = workdir / name.replace("/", "-")
        await self.screenshot(shot)
        if self.browser == "chromium":
            compare_screenshot(shot, name)
            return
        boxes = await self.page.evaluate(
            "() => [...document.querySelectorAll('video')].map((v) => v.getBoundingClientRect())"
            ".map((b) => [b.left, b.top, b.width, b.height])"
        )
        compare_screenshot(shot, f"firefox/{name}", ignore=[Rect.of(box) for box in boxes])

    async def join(self, room: str) -> None:
        await self.page.fill("#room", room)
        await self.page.click("#join")
        await self.page.wait_for_selector("#call:not([hidden])", timeout=30_000)


def playing(tiles: list[dict[str, Any]], count: int) -> bool:
    cameras = [t for t in tiles if not t["screen"]]
    return len(cameras) == count and all(t["width"] > 0 and t["time"] > 0.5 for t in cameras)


async def open_meet(
    browser: Browser,
    contexts: list[BrowserContext],
    server: ServerThread,
    name: str,
    *,
    viewport: dict[str, int] | None = None,
    init_script: str | None = None,
) -> MeetPage:
    """A page on the app with `name` typed in and the camera preview playing."""
    context = await browser.new_context(viewport=viewport or DESKTOP, device_scale_factor=1)
    contexts.append(context)
    if init_script is not None:
        await context.add_init_script(script=init_script)
    page = await context.new_page()
    return await _ready(MeetPage(name, page), server)


async def open_meet_in_firefox(
    fox: Firefox,
    server: ServerThread,
    name: str,
    *,
    viewport: dict[str, int] | None = None,
    init_script: str | None = None,
) -> MeetPage:
    """`open_meet` in a window of the test's Firefox (closed with its BiDi session); every
    page there has `sockets.js` already (`firefox.bidi_session`)."""
    page = await fox.open_window("about:blank")
    await page.set_viewport_size(viewport or DESKTOP)
    if init_script is not None and init_script != SOCKETS.read_text():
        await page.add_init_script(init_script)
    return await _ready(MeetPage(name, page), server)


async def _ready(meet: MeetPage, server: ServerThread) -> MeetPage:
    page, name = meet.page, meet.name
    page.set_default_timeout(30_000)
    page.on("console", lambda m: print(f"[{name}] {m.type}: {m.text}"))
    page.on("pageerror", lambda e: print(f"[{name}] pageerror: {e}"))
    await page.goto(server.base_url + "/")
    await page.fill("#identity", name)
    await page.wait_for_function(
        "() => { const v = document.querySelector('#preview video');"
        " return v && v.videoWidth > 0 && v.currentTime > 0.3; }"
    )
    return meet


def dev_rest(server: ServerThread, verify: ssl.SSLContext | bool = True) -> httpx.AsyncClient:
    """A REST client with the credentials of the server's default account (`verify`: the
    server's certificate, for a server over HTTPS)."""
    creds = server.call(server.parlour.accounts.default_account())
    return httpx.AsyncClient(
        base_url=server.base_url, auth=(creds.account_sid, creds.auth_token), verify=verify
    )


def _coarse(png: Path) -> tuple[int, int, bytes]:
    with av.open(str(png)) as container:
        frame = next(container.decode(video=0))
    size = (frame.width, frame.height)
    small = frame.reformat(width=16, height=10, format="gray", interpolation="AREA")
    plane = small.planes[0]
    rows = [bytes(plane)[r * plane.line_size : r * plane.line_size + 16] for r in range(10)]
    return size[0], size[1], b"".join(rows)


def compare_screenshot(shot: Path, name: str, *, ignore: Sequence[Rect] = ()) -> None:
    """Check `shot` against `docs/screenshots/<name>` (or replace it when updating), leaving
    out the coarse cells whose middle is in one of the `ignore` boxes (image pixels)."""
    committed = SCREENSHOTS / name
    if os.environ.get("PARLOUR_UPDATE_SCREENSHOTS") or not committed.exists():
        committed.parent.mkdir(parents=True, exist_ok=True)
        committed.write_bytes(shot.read_bytes())
        return
    new_w, new_h, new_cells = _coarse(shot)
    old_w, old_h, old_cells = _coarse(committed)
    assert (new_w, new_h) == (old_w, old_h), f"{name}: {new_w}×{new_h}, not {old_w}×{old_h}"
    kept = [
        i
        for i in range(len(new_cells))
        if not any(
            box.x <= (i % 16 + 0.5) * new_w / 16 <= box.right
            and box.y <= (i // 16 + 0.5) * new_h / 10 <= box.bottom
            for box in ignore
        )
    ]
    assert kept, f"{name}: every region left out, nothing to compare"
    differ = sum(abs(new_cells[i] - old_cells[i]) > CELL_TOLERANCE for i in kept)
    assert differ <= CELLS_MAY_DIFFER * len(kept), (
        f"{name} looks different from docs/screenshots/{name} ({differ} of {len(kept)} "
        "regions); if the design changed on purpose, run with PARLOUR_UPDATE_SCREENSHOTS=1"
    )


# -- a camera per person ---------------------------------------------------------------------
# Chromium's own fake camera is the same green test pattern for everyone. For screenshots,
# each person's browser plays a Y4M file of its own (`--use-file-for-fake-video-capture`):
# a flat illustration of someone at a desk, drawn here row by row.


@dataclass(frozen=True)
class Look:
    top: tuple[int, int, int]  # the wall, top and bottom of a vertical gradient
    bottom: tuple[int, int, int]
    shirt: tuple[int, int, int]
    skin: tuple[int, int, int]
    hair: tuple[int, int, int]


LOOKS = {
    "Ada Lovelace": Look((86, 98, 140), (38, 44, 66), (52, 84, 160), (236, 196, 166), (70, 46, 34)),
    "Grace Hopper": Look(
        (146, 120, 98), (70, 54, 46), (150, 60, 70), (228, 186, 152), (196, 196, 204)
    ),
    "Alan Turing": Look(
        (92, 128, 116), (36, 58, 54), (210, 170, 90), (224, 178, 140), (40, 32, 28)
    ),
    "Katherine Johnson": Look(
        (120, 96, 140), (52, 40, 66), (60, 150, 130), (150, 104, 76), (24, 20, 22)
    ),
}


def _yuv(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    r, g, b = rgb
    y = 0.257 * r + 0.504 * g + 0.098 * b + 16
    u = -0.148 * r - 0.291 * g + 0.439 * b + 128
    v = 0.439 * r - 0.368 * g - 0.071 * b + 128
    return tuple(max(0, min(255, int(c))) for c in (y, u, v))  # type: ignore[return-value]


def _mix(a: tuple[int, int, int], b: tuple[int, int, int], t: float) -> tuple[int, int, int]:
    return (
        int(a[0] + (b[0] - a[0]) * t),
        int(a[1] + (b[1] - a[1]) * t),
        int(a[2] + (b[2] - a[2]) * t),
    )


def write_camera(path: Path, look: Look, width: int = 480, height: int = 270) -> None:
    """Twelve frames (a second, looped by Chromium) of `look`, gently moving, as Y4M."""
    frames = [f"YUV4MPEG2 W{width} H{height} F12:1 Ip A1:1 C420jpeg\n".encode()]
    for bob in (0, 1, 2, 2, 1, 0, -1, -2, -2, -1, 0, 0):
        cx, head_cy, head_r = width // 2 + bob, int(height * 0.42) + bob, int(height * 0.16)
        sh_cy, sh_rx, sh_ry = int(height * 1.02), int(width * 0.26), int(height * 0.36)
        rows = []
        for row in range(height):
            wall = _mix(look.top, look.bottom, row / height)
            line = [_yuv(wall)] * width
            spans: list[tuple[int, int, tuple[int, int, int]]] = []
            if height * 0.12 < row < height * 0.62:  # a softly lit picture on the wall
                spans.append(
                    (int(width * 0.08), int(width * 0.3), _mix(wall, (255, 255, 255), 0.12))
                )
            dy = row - sh_cy
            if abs(dy) < sh_ry:  # shoulders
                half = int(sh_rx * (1 - (dy / sh_ry) ** 2) ** 0.5)
                spans.append((cx - half, cx + half, look.shirt))
            if head_cy + head_r * 0.6 < row < sh_cy - sh_ry + 8:  # neck
                spans.append((cx - head_r // 3, cx + head_r // 3, _mix(look.skin, (0, 0, 0), 0.12)))
            dy, hair_r = row - (head_cy - int(head_r * 0.06)), head_r * 1.06
            if abs(dy) < hair_r and dy < head_r * 0.15:  # hair, then the face over it
                half = int(hair_r * (1 - (dy / hair_r) ** 2) ** 0.5)
                spans.append((cx - half, cx + half, look.hair))
            dy = row - head_cy
            if abs(dy) < head_r and dy > -head_r * 0.5:
                half = int(head_r * 0.8 * (1 - (dy / head_r) ** 2) ** 0.5)
                spans.append((cx - half, cx + half, look.skin))
            for x0, x1, rgb in spans:
                x0, x1 = max(0, x0), min(width, x1)
                line[x0:x1] = [_yuv(rgb)] * (x1 - x0)
            rows.append(line)
        y = bytes(p[0] for line in rows for p in line)
        u = bytes(rows[r][x][1] for r in range(0, height, 2) for x in range(0, width, 2))
        v = bytes(rows[r][x][2] for r in range(0, height, 2) for x in range(0, width, 2))
        frames.append(b"FRAME\n" + y + u + v)
    path.write_bytes(b"".join(frames))
