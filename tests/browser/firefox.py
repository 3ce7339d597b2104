"""Headless Debian Firefox ESR driven over WebDriver BiDi, as a `BrowserParticipant` or a
Parlour Meet person (`meet.MeetPage`).

Playwright's Firefox is a patched build (its own Juggler protocol) and cannot drive Debian's
`firefox-esr`; WebDriver BiDi, which stock Firefox speaks on `--remote-debugging-port`, can.
The little BiDi client here (JSON over a WebSocket: `session.new`, `browsingContext.*`,
`script.*`, `input.performActions`, `log.entryAdded`) gives `BrowserParticipant` the
`page.evaluate()` it needs, so the Chromium helpers (`join_as_name`, `wait_for_events`,
`stats`…) work unchanged, and `MeetPage` the rest of Playwright's page API it uses: real clicks
and typing, waits for elements, the viewport, screenshots.

Firefox gathers no loopback ICE candidates, so it runs in a network namespace
(`netkit.veth_client`); its remote-debugging port is on that namespace's loopback, reached
through a relay started in the namespace on a Unix socket (a file, which every namespace sees).
Fake camera and microphone: `media.navigator.streams.fake`.

One Firefox process (`firefox_process`) serves a whole test session: each test drives it over
a WebDriver BiDi session of its own (`bidi_session`), one window per participant (a window, not
a tab: Firefox throttles background tabs' timers to one a second, which slows what a page
draws, such as a canvas track), all closed and the session ended after the test.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import websockets

from parlour.testing import ServerThread
from tests.browser.harness import INSTRUMENTATION, SOCKETS, BrowserParticipant
from tests.browser.netkit import Certificate, NattedClient, VethClient, free_port

__all__ = [
    "FIREFOX",
    "FIREFOX_PREFS",
    "Firefox",
    "FirefoxNet",
    "FirefoxPage",
    "FirefoxProcess",
    "NattedFirefox",
    "bidi_session",
    "firefox_missing",
    "firefox_process",
]

FIREFOX = Path(shutil.which("firefox-esr") or "/usr/bin/firefox-esr")

#: user.js of the test profile: fake media devices with no permission prompt, tab capture
#: (`mediaSource: 'browser'`), the only display capture headless Firefox can do, and no idle
#: keep-alive connections: Firefox outlives each test's server, and an idle TLS connection
#: that a stopping server closes is still waiting for Firefox's close_notify when the server's
#: event loop ends (an unclosed transport, or a store connection dropped mid-request).
FIREFOX_PREFS = {
    "media.navigator.streams.fake": True,
    "media.navigator.permission.disabled": True,
    "media.getusermedia.browser.enabled": True,
    "network.http.keep-alive.timeout": 0,
    "media.autoplay.default": 0,
    "media.autoplay.blocking_policy": 0,
    "browser.shell.checkDefaultBrowser": False,
    "datareporting.policy.dataSubmissionEnabled": False,
    "toolkit.telemetry.reportingpolicy.firstRun": False,
    "app.update.disabledForTesting": True,
}

#: Relays a Unix socket (argv[1]) to 127.0.0.1:argv[2]; runs inside the namespace.
RELAY = """
import asyncio, sys
async def pipe(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    finally:
        writer.close()
async def client(reader, writer):
    up_reader, up_writer = await asyncio.open_connection("127.0.0.1", int(sys.argv[2]))
    await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
async def main():
    server = await asyncio.start_unix_server(client, sys.argv[1])
    print("ready", flush=True)
    await server.serve_forever()
asyncio.run(main())
"""


def firefox_missing() -> str | None:
    """Why Firefox tests cannot run here (None when they can)."""
    if not os.access(FIREFOX, os.X_OK):
        return f"{FIREFOX} is missing (scripts/install --tests puts Debian's firefox-esr there)"
    return None


@dataclass(frozen=True)
class _Console:
    type: str
    text: str


class _Bidi:
    """One WebDriver BiDi session: commands by id, events to subscribers."""

    def __init__(self, socket: Any) -> None:
        self._socket = socket
        self._next = 0
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._listeners: list[Callable[[str, dict[str, Any]], None]] = []
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for raw in self._socket:
                message = json.loads(raw)
                if "id" in message and message["id"] in self._waiting:
                    self._waiting.pop(message["id"]).set_result(message)
                elif message.get("type") == "event":
                    for listener in self._listeners:
                        listener(message["method"], message["params"])
        finally:
            for future in self._waiting.values():
                if not future.done():
                    future.set_exception(ConnectionError("WebDriver BiDi connection closed"))

    async def send(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        self._next += 1
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[self._next] = future
        await self._socket.send(json.dumps({"id": self._next, "method": method, "params": params}))
        reply = await future
        if reply.get("type") == "error":
            raise AssertionError(f"BiDi {method}: {reply.get('error')}: {reply.get('message')}")
        result: dict[str, Any] = reply["result"]
        return result

    def listen(self, listener: Callable[[str, dict[str, Any]], None]) -> None:
        self._listeners.append(listener)

    async def close(self) -> None:
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._reader
        await self._socket.close()


#: WebDriver's codes of the keys Playwright names (`keyboard.press("Escape")`).
KEYS = {"Enter": "\ue007", "Escape": "\ue00c", "Backspace": "\ue003", "Tab": "\ue004"}

#: Playwright's idea of a visible element: a box of some size, and not `visibility: hidden`.
VISIBLE = """(el) => {
  if (!el || !el.isConnected) return false;
  if (getComputedStyle(el).visibility !== 'visible') return false;
  const box = el.getBoundingClientRect();
  return box.width > 0 && box.height > 0;
}"""

#: Waits (JSON arguments) for `selector` to be attached, visible, hidden or actionable
#: (visible and enabled; then scrolled into view if it is not), and returns the element.
WAIT_FOR = (
    """async (selectorJson, stateJson, msJson) => {
  const [selector, state, ms] = [selectorJson, stateJson, msJson].map(JSON.parse);
  const visible = """
    + VISIBLE
    + """;
  const deadline = performance.now() + ms;
  for (;;) {
    const el = document.querySelector(selector);
    const ok = state === 'attached' ? !!el
      : state === 'hidden' ? !visible(el)
      : state === 'visible' ? visible(el)
      : visible(el) && !el.disabled;
    if (ok) {
      if (state === 'actionable') {
        const box = el.getBoundingClientRect();
        if (box.top < 0 || box.left < 0 || box.bottom > innerHeight || box.right > innerWidth) {
          el.scrollIntoView({block: 'center', inline: 'center'});
        }
      }
      return el;
    }
    if (performance.now() > deadline) {
      throw new Error(`waiting for ${selector} to be ${state}: not within ${ms} ms`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}"""
)

#: Waits (JSON arguments) until `predicate` (put in for `PREDICATE`) returns something truthy
#: for `arg`.
WAIT_UNTIL = """async (argJson, msJson) => {
  const [arg, ms] = [argJson, msJson].map(JSON.parse);
  const predicate = (PREDICATE);
  const deadline = performance.now() + ms;
  for (;;) {
    if (await predicate(arg)) return true;
    if (performance.now() > deadline) {
      throw new Error(`waiting for ${predicate}: not within ${ms} ms`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}"""

FOCUS_AND_SELECT = """(selectorJson) => {
  const el = document.querySelector(JSON.parse(selectorJson));
  el.focus();
  el.select();
}"""

SELECT = """([selector, value]) => {
  const select = document.querySelector(selector);
  if (![...select.options].some((o) => o.value === value)) {
    throw new Error(`${selector} has no option ${value}`);
  }
  select.value = value;
  select.dispatchEvent(new Event('input', {bubbles: true}));
  select.dispatchEvent(new Event('change', {bubbles: true}));
}"""


class _Keyboard:
    """`page.keyboard` of a `FirefoxPage`: keys as `input.performActions` key actions."""

    def __init__(self, page: FirefoxPage) -> None:
        self._page = page

    async def press(self, key: str) -> None:
        await self.type(KEYS[key])

    async def type(self, text: str) -> None:
        actions: list[dict[str, str]] = []
        for char in text:
            actions += [{"type": "keyDown", "value": char}, {"type": "keyUp", "value": char}]
        await self._page._actions({"type": "key", "id": "keyboard", "actions": actions})


class FirefoxPage:
    """What `BrowserParticipant` and `MeetPage` use of a Playwright page, for one BiDi browsing
    context: the same names and arguments, so a test body drives either."""

    def __init__(self, bidi: _Bidi, context: str) -> None:
        self._bidi = bidi
        self.context = context
        self._timeout: float = 30_000
        self._handlers: dict[str, list[Callable[[Any], None]]] = {}
        bidi.listen(self._event)

    def on(self, name: str, handler: Callable[[Any], None]) -> None:
        self._handlers.setdefault(name, []).append(handler)

    def _event(self, method: str, params: dict[str, Any]) -> None:
        if method != "log.entryAdded" or params.get("source", {}).get("context") != self.context:
            return
        kind = params.get("level", "log") if params.get("type") == "console" else "pageerror"
        for handler in self._handlers.get("console", []):
            handler(_Console(kind, str(params.get("text"))))

    async def goto(self, url: str) -> None:
        await self._bidi.send(
            "browsingContext.navigate", {"context": self.context, "url": url, "wait": "complete"}
        )

    async def run_script(self, source: str) -> None:
        """Run a classic script's source in the page (its globals become the page's)."""
        await self._bidi.send(
            "script.evaluate",
            {
                "expression": source,
                "target": {"context": self.context},
                "awaitPromise": False,
            },
        )

    async def evaluate(self, expression: str, arg: Any = None) -> Any:
        """Like Playwright's: a function expression gets `arg`; JSON values come back; it runs
        as if from a user gesture (as Playwright's does in Chromium), which display capture
        needs."""
        wrapper = (
            "async (json) => { const f = (" + expression + ");"
            " const v = typeof f === 'function' ? await f(JSON.parse(json)) : await f;"
            " return v === undefined ? 'null' : JSON.stringify(v); }"
        )
        result = await self._bidi.send(
            "script.callFunction",
            {
                "functionDeclaration": wrapper,
                "arguments": [{"type": "string", "value": json.dumps(arg)}],
                "target": {"context": self.context},
                "awaitPromise": True,
                "resultOwnership": "none",
                "userActivation": True,
            },
        )
        if result.get("type") == "exception":
            details = result.get("exceptionDetails", {})
            raise AssertionError(f"page error: {details.get('text')}")
        return json.loads(result["result"]["value"])

    def set_default_timeout(self, ms: float) -> None:
        """How long `wait_for_selector`, `click` and the like wait, as Playwright's."""
        self._timeout = ms

    # -- the part of Playwright's page API that Parlour Meet's tests use (`meet.MeetPage`) --

    async def _call(self, function: str, *args: Any) -> dict[str, Any]:
        """`function(...args)` (JSON arguments) in the page; its remote value, unserialised
        (a node comes back as a reference that `input.performActions` can aim at)."""
        result = await self._bidi.send(
            "script.callFunction",
            {
                "functionDeclaration": function,
                "arguments": [{"type": "string", "value": json.dumps(a)} for a in args],
                "target": {"context": self.context},
                "awaitPromise": True,
                "resultOwnership": "none",
                "userActivation": True,
            },
        )
        if result.get("type") == "exception":
            details = result.get("exceptionDetails", {})
            raise AssertionError(f"page error: {details.get('text')}")
        value: dict[str, Any] = result["result"]
        return value

    async def _element(self, selector: str, state: str, ms: float | None = None) -> dict[str, Any]:
        """The element `selector` once it is in `state` (see `WAIT_FOR`), as a node reference;
        an AssertionError, as Playwright's TimeoutError, when it is not within `ms` (the
        default timeout unless given)."""
        return await self._call(WAIT_FOR, selector, state, self._timeout if ms is None else ms)

    async def wait_for_selector(
        self,
        selector: str,
        *,
        state: str = "visible",
        timeout: float | None = None,  # noqa: ASYNC109 (Playwright's: milliseconds, in the page)
    ) -> None:
        await self._element(selector, state, timeout)

    async def wait_for_function(self, expression: str, arg: Any = None) -> None:
        await self._call(WAIT_UNTIL.replace("PREDICATE", expression), arg, self._timeout)

    async def click(self, selector: str) -> None:
        """A real click: the mouse moved to the middle of the element (scrolled into view once
        it is visible and enabled), pressed and released, through `input.performActions`."""
        node = await self._element(selector, "actionable")
        origin = {"type": "element", "element": {"sharedId": node["sharedId"]}}
        await self._actions(
            {
                "type": "pointer",
                "id": "mouse",
                "parameters": {"pointerType": "mouse"},
                "actions": [
                    {"type": "pointerMove", "x": 0, "y": 0, "origin": origin},
                    {"type": "pointerDown", "button": 0},
                    {"type": "pointerUp", "button": 0},
                ],
            }
        )

    async def fill(self, selector: str, value: str) -> None:
        """Typed as a person would: the field focused and its text selected, deleted, then
        `value` key by key (each a keydown, an input event, a keyup)."""
        await self._element(selector, "actionable")
        await self._call(FOCUS_AND_SELECT, selector)
        await self.keyboard.type(KEYS["Backspace"] + value)

    async def select_option(self, selector: str, value: str) -> list[str]:
        """As Playwright's: the option chosen, then `input` and `change` dispatched."""
        await self._element(selector, "actionable")
        await self.evaluate(SELECT, [selector, value])
        return [value]

    async def inner_text(self, selector: str) -> str:
        await self._element(selector, "attached")
        text: str = await self.evaluate("(s) => document.querySelector(s).innerText", selector)
        return text

    async def input_value(self, selector: str) -> str:
        await self._element(selector, "attached")
        value: str = await self.evaluate("(s) => document.querySelector(s).value", selector)
        return value

    async def get_attribute(self, selector: str, name: str) -> str | None:
        await self._element(selector, "attached")
        value: str | None = await self.evaluate(
            "([s, name]) => document.querySelector(s).getAttribute(name)", [selector, name]
        )
        return value

    @property
    def keyboard(self) -> _Keyboard:
        return _Keyboard(self)

    async def _actions(self, *sources: dict[str, Any]) -> None:
        await self._bidi.send(
            "input.performActions", {"context": self.context, "actions": list(sources)}
        )

    async def screenshot(self, *, path: str) -> None:
        """The viewport as PNG (`browsingContext.captureScreenshot`)."""
        shot = await self._bidi.send("browsingContext.captureScreenshot", {"context": self.context})
        await asyncio.to_thread(Path(path).write_bytes, base64.b64decode(shot["data"]))

    async def set_viewport_size(self, size: dict[str, int]) -> None:
        """The page's viewport in CSS pixels, one device pixel each (`setViewport`)."""
        await self._bidi.send(
            "browsingContext.setViewport",
            {
                "context": self.context,
                "viewport": {"width": size["width"], "height": size["height"]},
                "devicePixelRatio": 1,
            },
        )

    async def add_init_script(self, source: str) -> None:
        """`source` run in this window's pages before their own scripts, from the next one
        loaded on (`script.addPreloadScript` for this browsing context)."""
        await self._bidi.send(
            "script.addPreloadScript",
            {"functionDeclaration": "() => {\n" + source + "\n}", "contexts": [self.context]},
        )

    async def close(self) -> None:
        """Close the window (its page's connections with it)."""
        with contextlib.suppress(Exception):
            await self._bidi.send("browsingContext.close", {"context": self.context})


class _Context:
    def __init__(self, bidi: _Bidi, page: FirefoxPage, opened: list[str]) -> None:
        self._bidi = bidi
        self._page = page
        self._opened = opened

    async def close(self) -> None:
        if self._page.context in self._opened:
            self._opened.remove(self._page.context)
        with contextlib.suppress(Exception):
            await self._bidi.send("browsingContext.close", {"context": self._page.context})


class Firefox:
    """A running headless Firefox: `await open_participant(server, name)` opens a window."""

    def __init__(self, bidi: _Bidi) -> None:
        self._bidi = bidi
        #: The browsing contexts (windows) opened in this session.
        self.opened: list[str] = []

    async def open_window(self, url: str) -> FirefoxPage:
        """A new window at `url` (closed with the session): `evaluate()` drives it."""
        created = await self._bidi.send("browsingContext.create", {"type": "window"})
        page = FirefoxPage(self._bidi, created["context"])
        self.opened.append(page.context)
        await page.goto(url)
        return page

    async def open_participant(self, server: ServerThread, name: str) -> BrowserParticipant:
        """A new window on Parlour's `/sdk/` page, the SDK loaded and instrumented."""
        created = await self._bidi.send("browsingContext.create", {"type": "window"})
        page = FirefoxPage(self._bidi, created["context"])
        self.opened.append(page.context)
        participant = BrowserParticipant(
            name, cast(Any, _Context(self._bidi, page, self.opened)), cast(Any, page), server
        )
        await page.goto(server.base_url + "/sdk/")
        if not await page.evaluate("() => !!(window.Twilio && window.Twilio.Video)"):
            raise AssertionError("the page did not load twilio-video from Parlour's /sdk/")
        await page.run_script(INSTRUMENTATION.read_text())
        return participant


@dataclass
class FirefoxProcess:
    """Headless Firefox running (`firefox_process()`), its BiDi port reached through `sock`."""

    browser: subprocess.Popen[bytes]
    relay: subprocess.Popen[bytes]
    port: int
    sock: Path


@dataclass(frozen=True)
class FirefoxNet:
    """The test session's Firefox (`conftest.firefox_net`): the namespace it runs in, the
    certificate of the servers it is shown, and the process."""

    net: VethClient
    tls: Certificate
    process: FirefoxProcess


@dataclass(frozen=True)
class NattedFirefox:
    """Headless Firefox behind a NAT router (`conftest.natted_firefox`): the network it runs
    in (`netkit.natted_client`) and the process."""

    net: NattedClient
    process: FirefoxProcess


@contextlib.contextmanager
def firefox_process(workdir: Path, in_namespace: list[str]) -> Iterator[FirefoxProcess]:
    """Headless Firefox ESR run with the `in_namespace` command prefix (`ip netns exec NS`),
    stopped after; `bidi_session()` drives it, one WebDriver BiDi session after another."""
    profile = workdir / "profile"
    profile.mkdir(parents=True, exist_ok=True)
    (profile / "user.js").write_text(
        "".join(f'user_pref("{k}", {json.dumps(v)});\n' for k, v in FIREFOX_PREFS.items())
    )
    port = free_port()  # on the loopback Firefox runs on (its namespace's, or this one's)
    sock = workdir / "bidi.sock"
    browser, relay = _start(workdir, in_namespace, profile, port, sock)
    try:
        assert relay.stdout is not None
        ready = relay.stdout.readline()
        assert ready.strip() == b"ready", "the BiDi relay did not start"
        yield FirefoxProcess(browser, relay, port, sock)
    finally:
        _stop(relay, browser)
        sock.unlink(missing_ok=True)


@contextlib.asynccontextmanager
async def bidi_session(process: FirefoxProcess) -> AsyncIterator[Firefox]:
    """A WebDriver BiDi session with a running Firefox; the windows it opened are closed after,
    and the session ended, so that the next test may start its own."""
    for _ in range(300):  # Firefox takes a few seconds to listen
        if process.browser.poll() is not None:
            raise AssertionError(f"firefox exited with status {process.browser.returncode}")
        try:
            socket = await websockets.unix_connect(
                str(process.sock), f"ws://127.0.0.1:{process.port}/session", max_size=None
            )
            break
        except (OSError, websockets.InvalidHandshake, EOFError):
            await asyncio.sleep(0.1)
    else:
        raise AssertionError("firefox did not accept WebDriver BiDi in 30 s")
    bidi = _Bidi(socket)
    fox = Firefox(bidi)
    try:
        await bidi.send(
            "session.new", {"capabilities": {"alwaysMatch": {"acceptInsecureCerts": True}}}
        )
        await bidi.send("session.subscribe", {"events": ["log.entryAdded"]})
        await bidi.send(
            "script.addPreloadScript",
            {"functionDeclaration": "() => {\n" + SOCKETS.read_text() + "\n}"},
        )
        yield fox
    finally:
        for context in list(fox.opened):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(bidi.send("browsingContext.close", {"context": context}), 10)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(bidi.send("session.end", {}), 10)
        with contextlib.suppress(Exception):
            await bidi.close()


def _start(
    workdir: Path, in_namespace: list[str], profile: Path, port: int, sock: Path
) -> tuple[subprocess.Popen[bytes], subprocess.Popen[bytes]]:
    """Firefox listening for BiDi on the namespace's 127.0.0.1:port, and the relay to it."""
    env = {**os.environ, "HOME": str(workdir), "MOZ_HEADLESS": "1"}
    with (workdir / "firefox.log").open("wb") as log:
        browser = subprocess.Popen(
            [
                *in_namespace,
                str(FIREFOX),
                "--headless",
                "--no-remote",
                "--profile",
                str(profile),
                f"--remote-debugging-port={port}",
                "about:blank",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    relay = subprocess.Popen(
        [*in_namespace, sys.executable, "-c", RELAY, str(sock), str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    return browser, relay


def _stop(*processes: subprocess.Popen[bytes]) -> None:
    for process in processes:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        if process.stdout is not None:
            process.stdout.close()
