"""Drive the real `twilio-video` SDK in headless Chromium against a Parlour server.

Each `BrowserParticipant` is one page in its own browser context (its own user, fake camera
and microphone). The page is Parlour's own `/sdk/`, which loads the SDK bundle from
`/sdk/twilio-video.min.js`; `participant.js` is then added to it to record what the SDK
reports in `window.events`. Helpers here read that back with deadlines, never sleeps.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from playwright.async_api import Browser, BrowserContext, ConsoleMessage, Page
from playwright.async_api import Error as PlaywrightError

from parlour.testing import ServerThread
from tests.helpers import Account, access_token, ws_url

__all__ = [
    "CHROMIUM",
    "CHROMIUM_FLAGS",
    "SDK_BUNDLE",
    "BrowserParticipant",
    "OpenParticipant",
    "joined_pages",
    "missing_requirements",
    "open_pages",
    "open_participant",
    "poll",
]

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
SDK_BUNDLE = REPO / "node_modules" / "twilio-video" / "dist" / "twilio-video.min.js"
INSTRUMENTATION = Path(__file__).with_name("participant.js")
#: Runs before the SDK bundle loads: keeps a handle on every WebSocket (`cutSignaling()`).
SOCKETS = Path(__file__).with_name("sockets.js")

#: Headless Chromium with fake media devices that may use loopback ICE candidates.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--disable-background-networking",
    "--allow-loopback-in-peer-connection",
)

T = TypeVar("T")


def missing_requirements() -> str | None:
    """Why browser tests cannot run here (None when they can)."""
    if not CHROMIUM.is_file():
        return f"{CHROMIUM} is missing (make setup-tests puts Debian's chromium there)"
    if not SDK_BUNDLE.is_file():
        return "node_modules/twilio-video is missing (scripts/install runs npm install)"
    return None


async def poll(
    probe: Callable[[], Awaitable[T]],
    accept: Callable[[T], bool],
    *,
    within: float,
    what: str,
    interval: float = 0.1,
) -> T:
    """Call `probe` until `accept` holds for its result; AssertionError after `within` s."""
    deadline = time.monotonic() + within
    while True:
        value = await probe()
        if accept(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within} s waiting for {what}; last: {value!r}")
        await asyncio.sleep(interval)


class BrowserParticipant:
    """One browser page running the SDK as one participant."""

    def __init__(
        self, name: str, context: BrowserContext, page: Page, server: ServerThread
    ) -> None:
        self.name = name
        self.context = context
        self.page = page
        self.server = server
        self.console: list[str] = []
        #: The room SID of the last `join_as_name`.
        self.room_sid: str | None = None
        page.on("console", self._on_console)
        page.on("pageerror", lambda error: self._log(f"pageerror: {error}"))

    def _on_console(self, message: ConsoleMessage) -> None:
        self._log(f"{message.type}: {message.text}")

    def _log(self, line: str) -> None:
        self.console.append(line)
        print(f"[{self.name}] {line[:20000]}")  # shown by pytest when a test fails

    @property
    def ws_server(self) -> str:
        return ws_url(self.server)

    # -- the SDK ----------------------------------------------------------------------------

    async def join(
        self,
        token: str,
        room: str,
        *,
        debug: bool = False,
        within: float = 20.0,
        **options: Any,
    ) -> dict[str, Any]:
        """`Twilio.Video.connect(token, {name, wsServer, insights: false, ...})` in the page.

        Returns `{"sid", "participantSid"}`, or `{"error", "code"}` if connect() rejected.
        `debug` logs every signaling frame to the console (printed on failure).
        """
        connect_options: dict[str, Any] = {
            "name": room,
            "wsServer": self.ws_server,
            "insights": False,
            "audio": True,
            "video": {"width": 640, "height": 480},
            "debug": debug,
        }
        connect_options.update(options)
        result: dict[str, Any] = await asyncio.wait_for(
            self.page.evaluate("([t, o]) => window.join(t, o)", [token, connect_options]),
            within,
        )
        return result

    async def join_as_name(self, acct: Account, room: str, **options: Any) -> dict[str, Any]:
        """`join` with an Access Token for this page's name; AssertionError if it was refused."""
        joined = await self.join(access_token(acct, self.name), room, **options)
        assert "error" not in joined, joined
        self.room_sid = joined["sid"]
        return joined

    async def evaluate(self, expression: str, arg: Any = None) -> Any:
        """Evaluate JavaScript in the page (a function expression gets `arg`)."""
        return await self.page.evaluate(expression, arg)

    async def events(self, name: str | None = None) -> list[dict[str, Any]]:
        """The SDK events the page recorded so far, oldest first (optionally one kind)."""
        events: list[dict[str, Any]] = await self.page.evaluate("() => window.events")
        return [e for e in events if name is None or e["name"] == name]

    async def wait_for_events(
        self, name: str, count: int = 1, *, within: float = 20.0, **match: Any
    ) -> list[dict[str, Any]]:
        """Wait until at least `count` events `name` whose fields equal `match` were seen."""

        async def matching() -> list[dict[str, Any]]:
            return [
                e for e in await self.events(name) if all(e.get(k) == v for k, v in match.items())
            ]

        what = f"{count} {name} {json.dumps(match)} on {self.name}"
        return await poll(matching, lambda found: len(found) >= count, within=within, what=what)

    async def stats(self) -> list[dict[str, Any]]:
        """`room.getStats()` as plain JSON (one report per peer connection)."""
        stats: list[dict[str, Any]] = await self.page.evaluate(
            "async () => JSON.parse(JSON.stringify(await window.room.getStats()))"
        )
        return stats

    async def video_state(self, track_sid: str) -> dict[str, Any] | None:
        """The `<video>` playing a subscribed track: videoWidth/Height, framesDecoded…"""
        state: dict[str, Any] | None = await self.page.evaluate(
            "(sid) => window.videoState(sid)", track_sid
        )
        return state

    async def disconnect(self) -> None:
        """`room.disconnect()`: the SDK says `disconnect` and closes its socket."""
        await self.page.evaluate("() => { if (window.room) window.room.disconnect(); }")

    async def cut_signaling(self) -> int:
        """Close the SDK's signaling socket abnormally (a network blip); how many were open."""
        cut: int = await self.page.evaluate("() => window.cutSignaling()")
        return cut

    async def close(self) -> None:
        """Leave the room (if still in it) and close the page's browser context."""
        try:
            await asyncio.wait_for(self.disconnect(), 5)
        except Exception as exc:  # the page may be gone already; closing is what matters
            self._log(f"disconnect on close failed: {exc!r}")
        await self.context.close()


#: The `open_page` fixture: `await open_page("alice")` opens one participant page.
OpenParticipant = Callable[[str], Awaitable["BrowserParticipant"]]


async def goto(page: Page, url: str, attempts: int = 3) -> None:
    """`page.goto`, again after Chromium's ERR_NETWORK_CHANGED: a browser in a network
    namespace the tests have just rewired (addresses, routes) sees the change a moment
    later and aborts the navigation in flight, as a real browser would once."""
    for attempt in range(attempts):
        try:
            await page.goto(url)
            return
        except PlaywrightError as exc:
            if "ERR_NETWORK_CHANGED" not in str(exc) or attempt == attempts - 1:
                raise
            await asyncio.sleep(0.5)


async def open_participant(browser: Browser, server: ServerThread, name: str) -> BrowserParticipant:
    """A new browser context on Parlour's `/sdk/` page, the SDK loaded and instrumented."""
    context = await browser.new_context()
    await context.add_init_script(path=SOCKETS)
    page = await context.new_page()
    page.set_default_timeout(20_000)
    participant = BrowserParticipant(name, context, page, server)
    await goto(page, server.base_url + "/sdk/")
    loaded = await page.evaluate("() => !!(window.Twilio && window.Twilio.Video)")
    if not loaded:
        raise AssertionError("the page did not load twilio-video from Parlour's /sdk/")
    await page.add_script_tag(path=INSTRUMENTATION)
    return participant


async def open_pages(open_page: OpenParticipant, *names: str) -> list[BrowserParticipant]:
    """One participant page for each name, opened in that order."""
    return [await open_page(name) for name in names]


async def joined_pages(
    open_page: OpenParticipant, acct: Account, room: str, *names: str, **options: Any
) -> list[BrowserParticipant]:
    """Open a page for each name, then join them one by one to `room` with the same options."""
    pages = await open_pages(open_page, *names)
    for page in pages:
        await page.join_as_name(acct, room, **options)
    return pages
