"""Janus VideoRoom for the side-by-side benchmark: a throwaway server and its signaling.

`JanusServer` runs Debian's ``janus`` (1.1.x) from a generated config directory in a temp dir:
only the VideoRoom plugin and the plain-HTTP transport (on 127.0.0.1, a free port), ICE-lite,
half-trickle (its candidates inline in its SDP), no STUN/TURN, no event handlers or loggers.

`JanusSession` / `VideoRoomHandle` speak the Janus HTTP REST API (one long-poll loop and one
keepalive loop per session) and only move SDP strings; the caller's media endpoint makes
and applies them. Subscribers use Janus 1.x multistream: one handle (one PeerConnection) for
any number of feeds; Janus always offers, the subscriber answers with ``start``.

Loopback: Janus skips every interface flagged ``IFF_LOOPBACK`` when it gathers (ice.c,
``janus_ice_setup_local``), whatever ``ice_enforce_list`` says, and libnice pins each socket to
its interface (``IP_UNICAST_IF``), so a Janus on a LAN address cannot answer a client bound to
127.0.0.1 either (its replies leave through that interface). To gather 127.0.0.1 like Parlour,
`JanusServer` preloads a tiny shim (`LOOPBACK_SHIM`, compiled with ``cc`` at start) whose
``getifaddrs`` clears ``IFF_LOOPBACK``; nothing else in Janus changes. With ``ice_address``
set to a local non-loopback address instead (e.g. `local_ipv4()`), no shim is used and clients
must gather on that same address.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import itertools
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

JANUS_BINARY = "janus"
JANUS_LIB = Path("/usr/lib/x86_64-linux-gnu/janus")
VIDEOROOM_PLUGIN = "libjanus_videoroom.so"
HTTP_TRANSPORT = "libjanus_http.so"
VIDEOROOM = "janus.plugin.videoroom"

Json = dict[str, Any]

log = logging.getLogger(__name__)

# Room defaults for the benchmark: no bitrate cap (REMB 0), one codec per kind, no join spam.
ROOM_DEFAULTS: Json = {
    "publishers": 100,
    "bitrate": 0,
    "audiocodec": "opus",
    "videocodec": "vp8",
    "notify_joining": False,
    "permanent": False,
}


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now (racy by nature; `JanusServer` retries)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def local_ipv4() -> str:
    """This host's primary non-loopback IPv4 address (the source of its default route).

    Falls back to the first non-loopback address of the host name, then to 127.0.0.1.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        with contextlib.suppress(OSError):
            sock.connect(("192.0.2.1", 9))  # TEST-NET-1: no packet is sent for a UDP connect
            address = str(sock.getsockname()[0])
            if not address.startswith("127.") and address != "0.0.0.0":
                return address
    with contextlib.suppress(OSError):
        for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET):
            address = str(info[4][0])
            if not address.startswith("127."):
                return address
    return "127.0.0.1"


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _render(sections: dict[str, Json]) -> str:
    """libconfig-style ``.jcfg`` text: ``name: { key = value ... }`` per section."""
    lines: list[str] = []
    for name, items in sections.items():
        lines.append(f"{name}: {{")
        for key, value in items.items():
            if isinstance(value, bool):
                text = "true" if value else "false"
            elif isinstance(value, int):
                text = str(value)
            else:
                text = _quote(str(value))
            lines.append(f"\t{key} = {text}")
        lines.append("}")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class JanusConfig:
    """Everything `JanusServer` writes into its config directory.

    ``ice_address`` is the one address Janus gathers host candidates on (``ice_enforce_list``),
    also its advertised ``interface``. ``base`` is the config directory; the plugin, transport,
    event-handler and logger folders are subfolders of it holding only what is enabled.
    """

    base: Path
    http_port: int
    ice_address: str
    debug_level: int = 3
    no_media_timer: int = 3600
    session_timeout: int = 60
    event_loops: int = 0  # 0: Janus's default, one thread and event loop per handle
    lib_dir: Path = JANUS_LIB

    @property
    def log_file(self) -> Path:
        return self.base / "janus.log"

    @property
    def plugins_folder(self) -> Path:
        return self.base / "plugins"

    @property
    def transports_folder(self) -> Path:
        return self.base / "transports"

    @property
    def events_folder(self) -> Path:
        return self.base / "events"

    @property
    def loggers_folder(self) -> Path:
        return self.base / "loggers"

    def janus_jcfg(self) -> str:
        """janus.jcfg: core, media and NAT settings."""
        general: Json = {
            "configs_folder": str(self.base),
            "plugins_folder": str(self.plugins_folder),
            "transports_folder": str(self.transports_folder),
            "events_folder": str(self.events_folder),
            "loggers_folder": str(self.loggers_folder),
            "log_to_stdout": False,
            "log_to_file": str(self.log_file),
            "debug_level": self.debug_level,
            "debug_timestamps": True,
            "debug_colors": False,
            "interface": self.ice_address,
            "server_name": "parlour-bench",
            "session_timeout": self.session_timeout,
        }
        if self.event_loops:
            general["event_loops"] = self.event_loops
        return _render(
            {
                "general": general,
                "certificates": {},
                # min_nack_queue, nack_optimizations, dtls_timeout, dtls_mtu, twcc_period:
                # Janus's defaults. No rtp_port_range: ephemeral ports, no exhaustion.
                "media": {"ipv6": False, "no_media_timer": self.no_media_timer},
                "nat": {
                    "nice_debug": False,
                    "ice_lite": True,
                    "ice_tcp": False,
                    "full_trickle": False,
                    "ignore_mdns": True,
                    "ice_enforce_list": self.ice_address,
                },
                "plugins": {},
                "transports": {},
                "loggers": {},
                "events": {"broadcast": False},
            }
        )

    def http_jcfg(self) -> str:
        """janus.transport.http.jcfg: the Janus API over plain HTTP on 127.0.0.1 only."""
        return _render(
            {
                "general": {
                    "json": "plain",
                    "base_path": "/janus",
                    "http": True,
                    "port": self.http_port,
                    "ip": "127.0.0.1",
                    "https": False,
                },
                "admin": {"admin_http": False, "admin_https": False},
                "cors": {},
            }
        )

    def videoroom_jcfg(self) -> str:
        """janus.plugin.videoroom.jcfg: no static rooms (the benchmark creates them by API)."""
        return _render({"general": {}})

    def write(self) -> None:
        """Write the config files and the plugin folders (symlinks to the two .so we use)."""
        self.base.mkdir(parents=True, exist_ok=True)
        (self.base / "janus.jcfg").write_text(self.janus_jcfg())
        (self.base / "janus.transport.http.jcfg").write_text(self.http_jcfg())
        (self.base / "janus.plugin.videoroom.jcfg").write_text(self.videoroom_jcfg())
        links = {
            self.plugins_folder: self.lib_dir / "plugins" / VIDEOROOM_PLUGIN,
            self.transports_folder: self.lib_dir / "transports" / HTTP_TRANSPORT,
        }
        for folder in (self.plugins_folder, self.transports_folder):
            folder.mkdir(exist_ok=True)
        for folder in (self.events_folder, self.loggers_folder):
            folder.mkdir(exist_ok=True)
        for folder, target in links.items():
            link = folder / target.name
            if not link.exists():
                link.symlink_to(target)


class JanusStartError(RuntimeError):
    """Janus exited, did not answer ``GET /janus/info`` in time, or could not be set up."""


# Preloaded into Janus to let it gather on 127.0.0.1: see the module docstring.
LOOPBACK_SHIM = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <stddef.h>

int getifaddrs(struct ifaddrs **ifap) {
	int (*real)(struct ifaddrs **) = (int (*)(struct ifaddrs **))dlsym(RTLD_NEXT, "getifaddrs");
	int rc = real(ifap);
	if(rc == 0)
		for(struct ifaddrs *i = *ifap; i != NULL; i = i->ifa_next)
			i->ifa_flags &= ~IFF_LOOPBACK;
	return rc;
}
"""


def build_loopback_shim(directory: Path) -> Path:
    """Compile `LOOPBACK_SHIM` into ``directory``; returns the shared object's path."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise JanusStartError(
            "no C compiler (cc) to build the loopback shim: install gcc, or start JanusServer "
            "with ice_address=local_ipv4() and bind the clients to that address"
        )
    source, shared = directory / "loopback.c", directory / "loopback.so"
    source.write_text(LOOPBACK_SHIM)
    build = subprocess.run(
        [compiler, "-shared", "-fPIC", "-O2", "-o", str(shared), str(source), "-ldl"],
        capture_output=True,
        text=True,
        check=False,
    )
    if build.returncode != 0:
        raise JanusStartError(f"building the loopback shim failed:\n{build.stderr}")
    return shared


class JanusServer:
    """A private Janus (VideoRoom + HTTP) in a temp dir, for the duration of a benchmark.

    Use ``async with JanusServer() as janus:`` or `start` / `stop`. ``janus.url`` is the API
    base (``http://127.0.0.1:<port>/janus``), ``janus.pid`` the process for /proc accounting,
    ``janus.ice_address`` the only address its host candidates use (127.0.0.1 by default).
    """

    def __init__(
        self,
        *,
        binary: str = JANUS_BINARY,
        ice_address: str = "127.0.0.1",
        debug_level: int = 3,
        no_media_timer: int = 3600,
        event_loops: int = 0,
        startup_timeout: float = 15.0,
        keep_dir: bool = False,
    ) -> None:
        self.binary = binary
        self.ice_address = ice_address
        self.debug_level = debug_level
        self.no_media_timer = no_media_timer
        self.event_loops = event_loops
        self.startup_timeout = startup_timeout
        self.keep_dir = keep_dir
        self.config: JanusConfig | None = None
        self._tmp: Path | None = None
        self._proc: asyncio.subprocess.Process | None = None

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise RuntimeError("Janus is not running")
        return self._proc.pid

    @property
    def url(self) -> str:
        if self.config is None:
            raise RuntimeError("Janus is not running")
        return f"http://127.0.0.1:{self.config.http_port}/janus"

    @property
    def log_file(self) -> Path | None:
        return self.config.log_file if self.config else None

    def log_tail(self, lines: int = 40) -> str:
        """The end of Janus's log, for error messages."""
        path = self.log_file
        if path is None or not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    async def start(self, attempts: int = 3) -> None:
        """Write the config, start Janus and wait for its API (a new port per attempt)."""
        binary = shutil.which(self.binary)
        if binary is None:
            raise JanusStartError(f"{self.binary!r} not found")
        self._tmp = Path(tempfile.mkdtemp(prefix="janus-bench-"))
        env = dict(os.environ)
        if ipaddress.ip_address(self.ice_address).is_loopback:
            shim = await asyncio.to_thread(build_loopback_shim, self._tmp)
            env["LD_PRELOAD"] = " ".join(filter(None, [str(shim), env.get("LD_PRELOAD")]))
        error: Exception | None = None
        for attempt in range(attempts):
            self.config = JanusConfig(
                base=self._tmp / f"run{attempt}",
                http_port=free_port(),
                ice_address=self.ice_address,
                debug_level=self.debug_level,
                no_media_timer=self.no_media_timer,
                event_loops=self.event_loops,
            )
            self.config.write()
            with (self.config.base / "janus.stderr").open("wb") as stderr:
                self._proc = await asyncio.create_subprocess_exec(
                    binary,
                    "-F",
                    str(self.config.base),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=stderr,
                    env=env,
                    cwd=self.config.base,  # where a core dump would land
                    start_new_session=True,  # no terminal signals from the benchmark's console
                )
            try:
                await self._wait_ready()
                return
            except JanusStartError as exc:
                error = exc
                await self._terminate()
        await self.stop()
        raise JanusStartError(f"Janus did not start: {error}")

    async def _wait_ready(self) -> None:
        assert self._proc is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.startup_timeout
        async with httpx.AsyncClient(trust_env=False, timeout=2.0) as client:
            while loop.time() < deadline:
                if self._proc.returncode is not None:
                    raise JanusStartError(f"exited with {self._proc.returncode}\n{self.log_tail()}")
                with contextlib.suppress(httpx.HTTPError, ValueError):
                    reply = await client.get(f"{self.url}/info")
                    if reply.status_code == 200 and reply.json().get("janus") == "server_info":
                        return
                await asyncio.sleep(0.05)
        raise JanusStartError(f"no answer on {self.url}/info\n{self.log_tail()}")

    async def _terminate(self, grace: float = 5.0) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.returncode is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), grace)
        except TimeoutError:
            proc.kill()
            await proc.wait()

    async def stop(self) -> None:
        """SIGTERM, then SIGKILL after 5 s; the temp dir goes unless ``keep_dir``."""
        await self._terminate()
        if self._tmp is not None and not self.keep_dir:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    async def __aenter__(self) -> JanusServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


# --- signaling --------------------------------------------------------------------------


class JanusError(RuntimeError):
    """An error reply from the Janus core or the VideoRoom plugin."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"Janus error {code}: {reason}")
        self.code = code
        self.reason = reason


@dataclass(frozen=True)
class Publisher:
    """A publisher in the room, as Janus lists it (``streams``: its m-lines, raw)."""

    feed_id: int
    display: str | None
    streams: tuple[Json, ...] = ()

    @classmethod
    def parse(cls, data: Json) -> Publisher:
        return cls(int(data["id"]), data.get("display"), tuple(data.get("streams") or ()))


@dataclass(frozen=True)
class PublisherChange:
    """Publishers Janus reported as having started (``added``) or stopped publishing."""

    added: tuple[Publisher, ...] = ()
    removed: tuple[int, ...] = ()


_transactions = itertools.count()


def _transaction() -> str:
    return f"{secrets.token_hex(4)}{next(_transactions)}"


class JanusSession:
    """A Janus API session over HTTP, with its long-poll and keepalive tasks.

    Create with `JanusSession.create`; events are routed to the `VideoRoomHandle` they are
    for (by ``sender``), replies to asynchronous requests to their caller (by ``transaction``).
    Pass a shared ``client`` to pool connections across sessions (it is then not closed).
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        url: str,
        session_id: int,
        *,
        owns_client: bool,
        keepalive_interval: float,
        request_timeout: float,
    ) -> None:
        self.url = url.rstrip("/")
        self.session_id = session_id
        self.request_timeout = request_timeout
        self._client = client
        self._owns_client = owns_client
        self._pending: dict[str, asyncio.Future[Json]] = {}
        self._handles: dict[int, VideoRoomHandle] = {}
        self._closed = False
        self._poll_task = asyncio.create_task(self._poll_loop())
        self._keepalive_task = asyncio.create_task(self._keepalive_loop(keepalive_interval))

    @classmethod
    async def create(
        cls,
        url: str,
        *,
        client: httpx.AsyncClient | None = None,
        keepalive_interval: float = 20.0,
        request_timeout: float = 15.0,
    ) -> JanusSession:
        """``POST /janus {"janus": "create"}`` and start polling the new session."""
        owns = client is None
        if client is None:
            client = httpx.AsyncClient(trust_env=False, timeout=request_timeout)
        try:
            reply = await _post(client, url.rstrip("/"), {"janus": "create"}, request_timeout)
        except BaseException:
            if owns:
                await client.aclose()
            raise
        return cls(
            client,
            url,
            int(reply["data"]["id"]),
            owns_client=owns,
            keepalive_interval=keepalive_interval,
            request_timeout=request_timeout,
        )

    @property
    def session_url(self) -> str:
        return f"{self.url}/{self.session_id}"

    async def attach_videoroom(self) -> VideoRoomHandle:
        """A new handle on the VideoRoom plugin (one PeerConnection's worth)."""
        reply = await self.request({"janus": "attach", "plugin": VIDEOROOM})
        handle = VideoRoomHandle(self, int(reply["data"]["id"]))
        self._handles[handle.handle_id] = handle
        return handle

    async def request(self, body: Json, handle_id: int | None = None) -> Json:
        """A Janus-level request answered in the HTTP reply (``success`` or ``ack``)."""
        url = self.session_url if handle_id is None else f"{self.session_url}/{handle_id}"
        return await _post(self._client, url, body, self.request_timeout)

    async def message(
        self, handle_id: int, body: Json, jsep: Json | None = None
    ) -> tuple[Json, Json | None]:
        """A plugin message; returns the plugin's data and JSEP, waiting for the event if the
        plugin handles the request asynchronously (``ack`` first, then an ``event``)."""
        transaction = _transaction()
        future: asyncio.Future[Json] = asyncio.get_running_loop().create_future()
        self._pending[transaction] = future
        request: Json = {"janus": "message", "transaction": transaction, "body": body}
        if jsep is not None:
            request["jsep"] = jsep
        try:
            url = f"{self.session_url}/{handle_id}"
            reply = await _post(self._client, url, request, self.request_timeout, transaction)
            if reply.get("janus") == "ack":
                reply = await asyncio.wait_for(future, self.request_timeout)
        finally:
            self._pending.pop(transaction, None)
            if future.done() and not future.cancelled():
                future.exception()  # failed by `destroy` while the POST was in flight
        _raise_for_janus_error(reply)
        data = reply.get("plugindata", {}).get("data", {})
        if "error_code" in data:
            raise JanusError(int(data["error_code"]), str(data.get("error")))
        return data, reply.get("jsep")

    async def destroy(self) -> None:
        """Destroy the session on Janus (its handles and PeerConnections go with it)."""
        if self._closed:
            return
        self._closed = True
        self._keepalive_task.cancel()
        for handle in list(self._handles.values()):
            handle._close()
        try:
            with contextlib.suppress(httpx.HTTPError, JanusError):
                await self.request({"janus": "destroy"})
        finally:
            self._poll_task.cancel()
            await asyncio.gather(self._poll_task, self._keepalive_task, return_exceptions=True)
            self._fail_pending(ConnectionError("Janus session destroyed"))
            if self._owns_client:
                await self._client.aclose()

    def _fail_pending(self, error: Exception) -> None:
        for future in self._pending.values():
            if not future.done():
                future.set_exception(error)

    async def _keepalive_loop(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            with contextlib.suppress(httpx.HTTPError, JanusError):
                await self.request({"janus": "keepalive"})

    async def _poll_loop(self) -> None:
        # Janus answers a long poll after at most 30 s (with a keepalive if nothing happened).
        timeout = httpx.Timeout(self.request_timeout, read=60.0)
        params = {"maxev": "10"}
        while not self._closed:
            try:
                reply = await self._client.get(self.session_url, params=params, timeout=timeout)
            except httpx.HTTPError:
                await asyncio.sleep(0.2)
                continue
            if reply.status_code == 404:  # the session is gone (timed out or destroyed)
                self._fail_pending(ConnectionError("Janus session not found"))
                return
            try:
                events = reply.json()
            except ValueError:
                continue
            for event in events if isinstance(events, list) else [events]:
                self._dispatch(event)

    def _dispatch(self, event: Json) -> None:
        kind = event.get("janus")
        if kind == "keepalive":
            return
        future = self._pending.get(str(event.get("transaction")))
        if future is not None and not future.done() and kind in ("event", "error", "success"):
            future.set_result(event)
            return
        handle = self._handles.get(int(event.get("sender") or 0))
        if handle is not None:
            handle._on_event(event)


async def _post(
    client: httpx.AsyncClient, url: str, body: Json, limit_s: float, transaction: str | None = None
) -> Json:
    body = {**body, "transaction": transaction or _transaction()}
    response = await client.post(url, json=body, timeout=limit_s)
    response.raise_for_status()
    reply: Json = response.json()
    _raise_for_janus_error(reply)
    return reply


def _raise_for_janus_error(reply: Json) -> None:
    if reply.get("janus") == "error":
        error = reply.get("error") or {}
        raise JanusError(int(error.get("code", 0)), str(error.get("reason", "unknown")))


@dataclass
class _Negotiation:
    """A subscriber's offer bookkeeping: offers Janus made, and whether the last is answered."""

    offered: int = 0
    stable: asyncio.Event = field(default_factory=asyncio.Event)

    def offer(self) -> None:
        self.offered += 1
        self.stable.clear()

    def answer(self) -> None:
        self.stable.set()


class VideoRoomHandle:
    """A handle on the VideoRoom plugin: a room admin, a publisher or a subscriber.

    Publisher side: ``publishers`` is the room's current publishers as Janus reported them
    (others only), ``publisher_changes`` queues each report (the one in the join reply too).

    Subscriber side: Janus always offers, the caller answers with `start`. Offers Janus sends
    on its own (a subscribed publisher left: its m-lines turn ``a=inactive``; or an update it
    had postponed) go to ``on_offer`` if set (an ``async`` callable offer → answer: the adapter
    then sends ``start`` itself, skipping offers a newer one superseded), otherwise to the
    ``offers`` queue. ``streams`` is Janus's mid → feed layout after its latest offer.
    """

    def __init__(self, session: JanusSession, handle_id: int) -> None:
        self.session = session
        self.handle_id = handle_id
        self.room_id: int | None = None
        self.feed_id: int | None = None
        self.private_id: int | None = None
        self.publishers: dict[int, Publisher] = {}
        self.publisher_changes: asyncio.Queue[PublisherChange] = asyncio.Queue()
        self.streams: list[Json] = []  # subscriber: Janus's m-line layout after the last offer
        self.offers: asyncio.Queue[str] = asyncio.Queue()
        self.on_offer: Callable[[str], Awaitable[str]] | None = None
        self.webrtc_up = asyncio.Event()
        self.hangup_reason: str | None = None
        self._negotiation = _Negotiation()
        self._negotiation.stable.set()
        self._subscribe_lock = asyncio.Lock()
        self._latest_unsolicited: str | None = None
        self._answer_task: asyncio.Task[None] | None = None

    async def message(self, body: Json, jsep: Json | None = None) -> tuple[Json, Json | None]:
        """Send a VideoRoom request; returns the plugin's reply data and JSEP (if any)."""
        return await self.session.message(self.handle_id, body, jsep)

    # --- rooms ---

    async def create_room(self, room_id: int, **options: Any) -> int:
        """Create a (non-permanent) room; ``options`` override `ROOM_DEFAULTS`."""
        body = {"request": "create", "room": room_id, **ROOM_DEFAULTS, **options}
        data, _ = await self.message(body)
        return int(data["room"])

    async def destroy_room(self, room_id: int) -> None:
        await self.message({"request": "destroy", "room": room_id})

    # --- publisher ---

    async def join_publisher(self, room_id: int, display: str | None = None) -> int:
        """Join as a publisher (not yet publishing); returns this publisher's feed id."""
        body: Json = {"request": "join", "ptype": "publisher", "room": room_id}
        if display is not None:
            body["display"] = display
        data, _ = await self.message(body)
        if data.get("videoroom") != "joined":
            raise JanusError(0, f"unexpected join reply: {data}")
        self.room_id = room_id
        self.feed_id = int(data["id"])
        self.private_id = int(data["private_id"]) if "private_id" in data else None
        self._publishers_added(data.get("publishers") or [], always=True)
        return self.feed_id

    async def publish(self, offer_sdp: str, **options: Any) -> str:
        """Publish (Janus 1.x ``publish`` with a JSEP offer); returns Janus's answer SDP."""
        data, jsep = await self.message(
            {"request": "publish", **options}, {"type": "offer", "sdp": offer_sdp}
        )
        if jsep is None or jsep.get("type") != "answer":
            raise JanusError(0, f"publish: no answer from Janus ({data})")
        return str(jsep["sdp"])

    async def unpublish(self) -> None:
        await self.message({"request": "unpublish"})

    async def leave(self) -> None:
        """Leave the room (publisher or subscriber); the handle stays attached."""
        await self.message({"request": "leave"})

    # --- subscriber ---

    async def join_subscriber(
        self,
        room_id: int,
        feed_ids: list[int],
        *,
        private_id: int | None = None,
        use_msid: bool = False,
    ) -> str:
        """Join as a multistream subscriber to all streams of ``feed_ids``; returns Janus's
        offer (answer it with `start`).

        ``streams`` then maps each of the offer's mids to its publisher (``feed_id``,
        ``feed_mid``). Janus's msid is ``janus janus<mid>`` for every feed unless
        ``use_msid``: then ``<feed_id> <mid>``.
        """
        body: Json = {
            "request": "join",
            "ptype": "subscriber",
            "room": room_id,
            "streams": [{"feed": feed} for feed in feed_ids],
        }
        if private_id is not None:
            body["private_id"] = private_id
        if use_msid:
            body["use_msid"] = True
        data, jsep = await self.message(body)
        if data.get("videoroom") != "attached" or jsep is None:
            raise JanusError(0, f"unexpected subscriber join reply: {data}")
        self.room_id = room_id
        return self._take_offer(data, jsep)

    async def start(self, answer_sdp: str) -> None:
        """Answer Janus's latest offer (``start`` with a JSEP answer); media then flows."""
        self._negotiation.answer()
        await self.message({"request": "start"}, {"type": "answer", "sdp": answer_sdp})

    @property
    def negotiating(self) -> bool:
        """Whether an offer from Janus is still waiting for its answer (`start`)."""
        return not self._negotiation.stable.is_set()

    async def wait_negotiated(self) -> None:
        """Until every offer Janus made has been answered."""
        await self._negotiation.stable.wait()

    async def subscribe_more(self, feed_ids: list[int]) -> str | None:
        """Add all streams of ``feed_ids`` to this subscription; returns Janus's new offer.

        Waits first until every offer Janus made has been answered (Janus 1.1 would otherwise
        send overlapping offers). None means no renegotiation now: Janus had nothing to change,
        or postponed the update (``updating``), in which case its offer comes unsolicited
        (``on_offer`` / ``offers``) once the offer it waits on is answered.
        """
        async with self._subscribe_lock:
            await asyncio.wait_for(self._negotiation.stable.wait(), self.session.request_timeout)
            streams = [{"feed": feed} for feed in feed_ids]
            data, jsep = await self.message({"request": "subscribe", "streams": streams})
            if data.get("videoroom") == "updated" and jsep is not None:
                return self._take_offer(data, jsep)
            return None

    async def unsubscribe(self, feed_ids: list[int]) -> str | None:
        """Remove all streams of ``feed_ids``; returns Janus's new offer, if any."""
        async with self._subscribe_lock:
            await asyncio.wait_for(self._negotiation.stable.wait(), self.session.request_timeout)
            streams = [{"feed": feed} for feed in feed_ids]
            data, jsep = await self.message({"request": "unsubscribe", "streams": streams})
            if data.get("videoroom") == "updated" and jsep is not None:
                return self._take_offer(data, jsep)
            return None

    async def configure_substream(self, substream: int) -> None:
        """Simulcast: receive layer ``substream`` (0 the smallest) of every video stream of
        this subscription (``configure`` with ``streams: [{mid, substream}]``)."""
        streams = [
            {"mid": str(s["mid"]), "substream": substream}
            for s in self.streams
            if s.get("type") == "video" and s.get("active", True) and "mid" in s
        ]
        if streams:
            await self.message({"request": "configure", "streams": streams})

    async def detach(self) -> None:
        """Detach the handle (hangs up its PeerConnection)."""
        with contextlib.suppress(JanusError):
            await self.session.request({"janus": "detach"}, self.handle_id)
        self._close()

    # --- events ---

    def _take_offer(self, data: Json, jsep: Json, *, solicited: bool = True) -> str:
        """Note an offer from Janus. Each offer describes the whole subscription, so a newer
        one makes older unanswered ones moot: a solicited offer drops those still queued."""
        if jsep.get("type") != "offer":
            raise JanusError(0, f"expected an offer from Janus, got {jsep.get('type')}")
        if "streams" in data:
            self.streams = list(data["streams"])
        self._negotiation.offer()
        if solicited:
            self._latest_unsolicited = None
            while not self.offers.empty():
                self.offers.get_nowait()
        return str(jsep["sdp"])

    def _publishers_added(self, entries: list[Json], *, always: bool = False) -> None:
        added = tuple(Publisher.parse(entry) for entry in entries)
        for publisher in added:
            self.publishers[publisher.feed_id] = publisher
        if added or always:
            self.publisher_changes.put_nowait(PublisherChange(added=added))

    def _publisher_removed(self, feed_id: Any) -> None:
        if isinstance(feed_id, int) and not isinstance(feed_id, bool):
            self.publishers.pop(feed_id, None)
            self.publisher_changes.put_nowait(PublisherChange(removed=(feed_id,)))

    def _on_event(self, event: Json) -> None:
        kind = event.get("janus")
        if kind == "webrtcup":
            self.webrtc_up.set()
        elif kind == "hangup":
            self.hangup_reason = str(event.get("reason", "hangup"))
            self.webrtc_up.clear()
        elif kind == "event":
            data = event.get("plugindata", {}).get("data", {})
            jsep = event.get("jsep")
            if "publishers" in data:
                self._publishers_added(data["publishers"])
            for key in ("unpublished", "leaving", "kicked"):
                if key in data:
                    self._publisher_removed(data[key])
            if data.get("videoroom") == "updated" and jsep is not None:
                self._unsolicited_offer(self._take_offer(data, jsep, solicited=False))

    def _unsolicited_offer(self, sdp: str) -> None:
        if self.on_offer is None:
            self.offers.put_nowait(sdp)
            return
        self._latest_unsolicited = sdp
        if self._answer_task is None or self._answer_task.done():
            self._answer_task = asyncio.create_task(self._answer_unsolicited())

    async def _answer_unsolicited(self) -> None:
        try:
            while self._latest_unsolicited is not None and self.on_offer is not None:
                offer, self._latest_unsolicited = self._latest_unsolicited, None
                seq = self._negotiation.offered
                answer = await self.on_offer(offer)
                if self._negotiation.offered == seq:  # no newer offer meanwhile: answer this one
                    await self.start(answer)
        except Exception:
            log.exception("handle %s: answering Janus's offer failed", self.handle_id)

    def _close(self) -> None:
        self.session._handles.pop(self.handle_id, None)
        if self._answer_task is not None:
            self._answer_task.cancel()
