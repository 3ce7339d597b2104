"""Real network pieces for the browser tests: self-signed certificates, nginx as a TLS
reverse proxy, coturn, and network namespaces (veth pairs, NAT, nftables rules).

Each piece is a context manager that always removes what it made (processes, namespaces,
nftables tables, files), and `*_missing()` says why a piece cannot run here, for a clean skip.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import getpass
import ipaddress
import itertools
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, async_playwright

from parlour.testing import ServerThread
from tests.browser.harness import (
    CHROMIUM,
    CHROMIUM_FLAGS,
    BrowserParticipant,
    poll,
)
from tests.helpers import Account

__all__ = [
    "DOCS",
    "TLS_FLAGS",
    "Certificate",
    "NattedClient",
    "OpenOn",
    "assert_media_flows",
    "chromium_in",
    "clients_gone",
    "chromiums_either_side",
    "joined_either_side",
    "tls_server_for",
    "coturn",
    "coturn_missing",
    "namespaces_missing",
    "natted_client",
    "VethClient",
    "veth_client",
    "selected_pairs",
    "sfu_ufrags",
    "turn_log",
    "doc_block",
    "free_port",
    "nginx",
    "nginx_missing",
    "self_signed",
    "wait_for_port",
]

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs" / "deployment.md"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
#: Chromium flags for pages served over HTTPS with a certificate from `self_signed`.
TLS_FLAGS = [*CHROMIUM_FLAGS, "--ignore-certificate-errors"]


def doc_block(name: str) -> str:
    """The fenced block after `<!-- deployment-test: NAME -->` in docs/deployment.md."""
    text = DOCS.read_text()
    match = re.search(rf"<!-- deployment-test: {name} -->\n```\w*\n(.*?)```", text, re.S)
    assert match, f"docs/deployment.md has no {name} block"
    return match.group(1)


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port free on 127.0.0.1 right now (for daemons that cannot be given a socket)."""
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_for_port(
    port: int,
    process: subprocess.Popen[bytes],
    what: str,
    within: float = 20,
    host: str = "127.0.0.1",
) -> None:
    """Until something accepts TCP connections on host:port (or `process` died)."""
    deadline = time.monotonic() + within
    while True:
        if process.poll() is not None:
            raise AssertionError(f"{what} exited with status {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection((host, port), 0.5):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not listen on port {port} in {within} s")
        time.sleep(0.05)


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after 10 s: the process is gone when this returns."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


# -- certificates ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Certificate:
    cert: Path
    key: Path


def self_signed(directory: Path, *names: str) -> Certificate:
    """A self-signed certificate (EC P-256) for the DNS names and IP addresses given."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    alt: list[x509.GeneralName] = []
    for name in names:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alt.append(x509.DNSName(name))
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    out = Certificate(directory / "cert.pem", directory / "key.pem")
    out.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    out.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    out.key.chmod(0o600)
    return out


# -- nginx -------------------------------------------------------------------------------------


def nginx_missing() -> str | None:
    if not os.access(NGINX, os.X_OK):
        return "nginx is missing (scripts/install puts Debian's nginx-light there)"
    return None


@contextlib.contextmanager
def nginx(workdir: Path, server_block: str) -> Iterator[subprocess.Popen[bytes]]:
    """nginx in the foreground with `server_block` (and its `map`) in a minimal http{}."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "nginx.conf"
    temp = "\n".join(
        f"  {kind}_temp_path {workdir / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    config.write_text(
        f"daemon off;\nuser {getpass.getuser()};\nworker_processes 1;\n"
        f"pid {workdir / 'nginx.pid'};\nerror_log {workdir / 'error.log'} warn;\n"
        "events { worker_connections 256; }\n"
        f"http {{\n  access_log off;\n{temp}\n{server_block}\n}}\n"
    )
    process = subprocess.Popen(
        [NGINX, "-p", str(workdir), "-c", str(config), "-e", str(workdir / "error.log")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield process
    finally:
        stop(process)
        log = workdir / "error.log"
        if log.exists():
            print(f"[nginx error.log]\n{log.read_text()[-4000:]}")


# -- what the browser sees ---------------------------------------------------------------------

#: The local and remote candidates of every peer connection's selected pair.
SELECTED_PAIRS = """async () => {
  const out = [];
  for (const pc of window.peerConnections) {
    if (pc.connectionState === 'closed') continue;
    const stats = new Map();
    (await pc.getStats()).forEach((s) => stats.set(s.id, s));
    for (const s of stats.values()) {
      if (s.type !== 'transport' || !s.selectedCandidatePairId) continue;
      const pair = stats.get(s.selectedCandidatePairId);
      const local = stats.get(pair.localCandidateId), remote = stats.get(pair.remoteCandidateId);
      out.push({
        state: pair.state,
        local: {type: local.candidateType, protocol: local.protocol, address: local.address,
                relayProtocol: local.relayProtocol || null},
        remote: {type: remote.candidateType, protocol: remote.protocol,
                 address: remote.address, port: remote.port, tcpType: remote.tcpType || null},
      });
    }
  }
  return out;
}"""


async def selected_pairs(page: BrowserParticipant) -> list[dict[str, Any]]:
    """The selected ICE candidate pair of each of the page's live peer connections."""
    pairs: list[dict[str, Any]] = await page.evaluate(SELECTED_PAIRS)
    return pairs


async def sfu_ufrags(page: BrowserParticipant) -> list[str]:
    """The SFU's ICE ufrag in each of the page's live peer connections (its answer's
    `a=ice-ufrag`): what the server's media socket knows the page's endpoint by."""
    ufrags: list[str] = await page.evaluate(
        """() => window.peerConnections
          .filter((pc) => pc.connectionState !== 'closed' && pc.remoteDescription)
          .map((pc) => /a=ice-ufrag:(\\S+)/.exec(pc.remoteDescription.sdp)[1])"""
    )
    return ufrags


async def assert_media_flows(page: BrowserParticipant, sender: str, within: float = 30) -> None:
    """`page` subscribed to `sender`'s audio and video and keeps receiving both (getStats)."""
    events = await page.wait_for_events("trackSubscribed", 2, participant=sender, within=within)
    sids = {e["trackSid"] for e in events}

    def received(reports: list[dict[str, Any]]) -> dict[str, int]:
        return {
            t["trackSid"]: t["bytesReceived"] or 0
            for report in reports
            for t in report["remoteAudioTrackStats"] + report["remoteVideoTrackStats"]
            if t["trackSid"] in sids
        }

    first = await poll(
        page.stats,
        lambda r: set(received(r)) == sids and all(n > 0 for n in received(r).values()),
        within=within,
        what=f"media from {sender} on {page.name}",
    )
    before = received(first)
    await poll(
        page.stats,
        lambda r: all(received(r)[sid] > before[sid] + 1000 for sid in sids),
        within=within,
        what=f"media from {sender} to keep arriving on {page.name}",
    )


async def clients_gone(server: ServerThread, within: float = 10) -> None:
    """Until no client holds a TCP connection to the server's HTTP port: the clients' leaving
    is over before the server stops (a shutdown racing a client's close once failed in
    uvicorn's protocol; `parlour.serving.WebSocketProtocol` now tolerates it)."""
    port = server.config.port

    async def connections() -> int:
        listed = await asyncio.to_thread(
            subprocess.run,
            ["ss", "-Htn", f"( sport = :{port} )"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        return len([line for line in listed.stdout.splitlines() if line.strip()])

    await poll(connections, lambda n: n == 0, within=within, what=f"no client on port {port}")


# -- coturn ------------------------------------------------------------------------------------

TURNSERVER = shutil.which("turnserver") or "/usr/bin/turnserver"


def coturn_missing() -> str | None:
    if not os.access(TURNSERVER, os.X_OK):
        return "turnserver is missing (scripts/install puts Debian's coturn there)"
    return None


@contextlib.contextmanager
def coturn(
    workdir: Path, config_text: str, port: int, host: str = "127.0.0.1"
) -> Iterator[subprocess.Popen[bytes]]:
    """Debian's coturn on host:port with `config_text`, relaying from `host` (loopback peers
    allowed)."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "turnserver.conf"
    config_text = re.sub(r"(?m)^listening-port=.*$", f"listening-port={port}", config_text)
    config_text = re.sub(r"(?m)^external-ip=.*\n", "", config_text)
    config.write_text(
        config_text
        + f"listening-ip={host}\nrelay-ip={host}\nallow-loopback-peers\n"
        + f"pidfile={workdir / 'turnserver.pid'}\nlog-file={workdir / 'turn.log'}\n"
        + "simple-log\nno-stdout-log\nno-tls\nno-dtls\n"
        + f"userdb={workdir / 'turndb'}\n"  # not the system's /var/lib/turn
    )
    process = subprocess.Popen(
        [TURNSERVER, "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_for_port(port, process, "turnserver", host=host)
        yield process
    finally:
        stop(process)


def turn_log(workdir: Path) -> str:
    log = workdir / "turn.log"
    return log.read_text(errors="replace") if log.exists() else ""


# -- network namespaces ------------------------------------------------------------------------

IP = shutil.which("ip") or "/usr/sbin/ip"
NFT = shutil.which("nft") or "/usr/sbin/nft"


def _run(*args: str, stdin: str | None = None) -> str:
    result = subprocess.run(args, input=stdin, capture_output=True, text=True, timeout=30)
    if result.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


def namespaces_missing() -> str | None:
    """Why this machine cannot make network namespaces with nftables rules (None: it can)."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    for tool, package in ((IP, "iproute2"), (NFT, "nftables")):
        if not os.access(tool, os.X_OK):
            return f"{tool} is missing (scripts/install puts Debian's {package} there)"
    probe = f"plprobe{os.getpid()}"
    made = subprocess.run([IP, "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"cannot make a network namespace: {made.stderr.strip()}"
    try:
        nft = subprocess.run(
            [IP, "netns", "exec", probe, NFT, "list", "tables"], capture_output=True, text=True
        )
        if nft.returncode != 0:
            return f"nftables does not work in a namespace: {nft.stderr.strip()}"
    finally:
        subprocess.run([IP, "netns", "del", probe], capture_output=True)
    return None


@dataclass(frozen=True)
class NattedClient:
    """A client network behind a NAT router, made by `natted_client()`::

        client ns  CLIENT (10.N.1.2) ── 10.N.1.1  router ns  100.64.N.2 ── SERVER (100.64.N.1)
                   default via router             masquerade out            this namespace

    The server's side sees the client only as the router's outside address (PUBLIC); it has
    no route to the client's own network.
    """

    client_ns: str
    router_ns: str
    client: str
    public: str
    server: str
    #: The router's interface towards the server (what the masquerade rule names).
    outside_if: str

    def in_client(self, *command: str) -> list[str]:
        """`command` run inside the client's namespace."""
        return [IP, "netns", "exec", self.client_ns, *command]

    def router_nft(self, ruleset: str) -> None:
        """Load nftables rules in the router (a firewall between client and server)."""
        _run(IP, "netns", "exec", self.router_ns, NFT, "-f", "-", stdin=ruleset)

    def router_ruleset(self) -> str:
        return _run(IP, "netns", "exec", self.router_ns, NFT, "list", "ruleset")

    def reset_router(self) -> None:
        """The router's rules as made: only the masquerade, its counter at zero (a test that
        shares the network with others starts from there, and leaves no firewall behind)."""
        _run(IP, "netns", "exec", self.router_ns, NFT, "flush", "ruleset")
        self.router_nft(
            "table ip parlour_nat {\n"
            "  chain postrouting {\n"
            "    type nat hook postrouting priority srcnat; policy accept;\n"
            f'    oifname "{self.outside_if}" counter masquerade\n'
            "  }\n"
            "}\n"
        )


_natted_count = itertools.count()


@contextlib.contextmanager
def natted_client() -> Iterator[NattedClient]:
    """Namespaces, veth pairs and a masquerading router; all removed after. Several may exist
    at once (a session's, where its Firefox runs, and a test's own): each has its own subnets."""
    made = next(_natted_count)
    n = 16 + (os.getpid() + made) % 200
    tag = f"{os.getpid() % 100000}{'' if made == 0 else chr(ord('a') + made % 26)}"
    client_ns, router_ns = f"plc{tag}", f"plr{tag}"
    host_if, router_out, router_in, client_if = f"plh{tag}", f"plo{tag}", f"pli{tag}", f"plv{tag}"
    net = NattedClient(
        client_ns, router_ns, f"10.{n}.1.2", f"100.64.{n}.2", f"100.64.{n}.1", router_out
    )
    try:
        _run(IP, "netns", "add", client_ns)
        _run(IP, "netns", "add", router_ns)
        # server (this namespace) ── router
        _run(IP, "link", "add", host_if, "type", "veth", "peer", "name", router_out)
        _run(IP, "link", "set", router_out, "netns", router_ns)
        _run(IP, "addr", "add", f"{net.server}/24", "dev", host_if)
        _run(IP, "link", "set", host_if, "up")
        # router ── client
        _run(IP, "link", "add", router_in, "type", "veth", "peer", "name", client_if)
        _run(IP, "link", "set", router_in, "netns", router_ns)
        _run(IP, "link", "set", client_if, "netns", client_ns)
        in_router = (IP, "netns", "exec", router_ns)
        in_client = (IP, "netns", "exec", client_ns)
        _run(*in_router, IP, "addr", "add", f"{net.public}/24", "dev", router_out)
        _run(*in_router, IP, "addr", "add", f"10.{n}.1.1/24", "dev", router_in)
        for link in ("lo", router_out, router_in):
            _run(*in_router, IP, "link", "set", link, "up")
        _run(*in_router, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
        _run(*in_client, IP, "addr", "add", f"{net.client}/24", "dev", client_if)
        for link in ("lo", client_if):
            _run(*in_client, IP, "link", "set", link, "up")
        _run(*in_client, IP, "route", "add", "default", "via", f"10.{n}.1.1")
        net.reset_router()
        yield net
    finally:
        for ns in (router_ns, client_ns):
            subprocess.run(
                [IP, "netns", "exec", ns, NFT, "flush", "ruleset"], capture_output=True, timeout=30
            )
            subprocess.run([IP, "netns", "del", ns], capture_output=True, timeout=30)
        # Deleting the router's namespace removes its veth ends and so their peers here.
        subprocess.run([IP, "link", "del", host_if], capture_output=True, timeout=30)


def chromium_in(net: NattedClient, directory: Path, chromium: Path) -> Path:
    """An executable that runs Chromium inside the client's namespace (for Playwright)."""
    directory.mkdir(parents=True, exist_ok=True)
    wrapper = directory / "chromium-in-netns"
    command = " ".join(net.in_client(str(chromium)))
    wrapper.write_text(f'#!/bin/sh\nexec {command} "$@"\n')
    wrapper.chmod(0o755)
    return wrapper


_veth_count = itertools.count()


@dataclass(frozen=True)
class VethClient:
    """A client namespace joined to this one by one veth pair, made by `veth_client()`::

    client ns  CLIENT (10.77.N.2) ── SERVER (10.77.N.1)  this namespace
    """

    client_ns: str
    client: str
    server: str
    #: This namespace's end of the veth pair (what `tc` shapes to limit the client's downlink).
    host_if: str

    def in_client(self, *command: str) -> list[str]:
        """`command` run inside the client's namespace."""
        return [IP, "netns", "exec", self.client_ns, *command]


@contextlib.contextmanager
def veth_client() -> Iterator[VethClient]:
    """A namespace on a veth pair with this one (no router, no NAT); removed after. Several
    may exist at once (a session's shared one and a test's own): each has its own subnet."""
    made = next(_veth_count)
    n = 16 + (os.getpid() + made) % 200
    tag = f"{os.getpid() % 100000}{'' if made == 0 else chr(ord('a') + made % 26)}"
    client_ns, host_if, client_if = f"plf{tag}", f"plfh{tag}", f"plfv{tag}"
    net = VethClient(client_ns, f"10.77.{n}.2", f"10.77.{n}.1", host_if)
    try:
        _run(IP, "netns", "add", client_ns)
        _run(IP, "link", "add", host_if, "type", "veth", "peer", "name", client_if)
        _run(IP, "link", "set", client_if, "netns", client_ns)
        _run(IP, "addr", "add", f"{net.server}/24", "dev", host_if)
        _run(IP, "link", "set", host_if, "up")
        in_client = (IP, "netns", "exec", client_ns)
        _run(*in_client, IP, "addr", "add", f"{net.client}/24", "dev", client_if)
        for link in ("lo", client_if):
            _run(*in_client, IP, "link", "set", link, "up")
        yield net
    finally:
        subprocess.run([IP, "netns", "del", client_ns], capture_output=True, timeout=30)
        subprocess.run([IP, "link", "del", host_if], capture_output=True, timeout=30)


@contextlib.asynccontextmanager
async def chromiums_either_side(
    net: NattedClient, directory: Path
) -> AsyncIterator[tuple[Browser, Browser]]:
    """Chromium in the client's namespace, and Chromium on the server's own network."""
    async with async_playwright() as playwright:
        behind = await playwright.chromium.launch(
            executable_path=str(chromium_in(net, directory, CHROMIUM)),
            headless=True,
            args=TLS_FLAGS,
        )
        try:
            local = await playwright.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=TLS_FLAGS
            )
            try:
                yield behind, local
            finally:
                await local.close()
        finally:
            await behind.close()


def tls_server_for(net: NattedClient, tmp_path: Path, **config: Any) -> ServerThread:
    """A server on the server's side of `net`, over HTTPS (cameras need a secure origin)."""
    tls = self_signed(tmp_path / "tls", net.server)
    return ServerThread(
        tmp_path / "data", host=net.server, tls_cert=tls.cert, tls_key=tls.key, **config
    )


#: Opens a participant page on a server: `await open_on(server, "alice")` (`either_side`).
OpenOn = Callable[[ServerThread, str], Awaitable[BrowserParticipant]]


@contextlib.asynccontextmanager
async def joined_either_side(
    either_side: tuple[OpenOn, OpenOn],
    server: ServerThread,
    acct: Account,
    room: str,
    within: float = 120,
) -> AsyncIterator[tuple[BrowserParticipant, BrowserParticipant]]:
    """alice (opened by the first of `either_side`: behind the router) and bob (by the second)
    in `room`, with media flowing both ways; the body runs under the same `within` seconds;
    the pages close after."""
    open_behind, open_local = either_side
    pages: list[BrowserParticipant] = []
    try:
        async with asyncio.timeout(within):
            alice = await open_behind(server, "alice")
            pages.append(alice)
            bob = await open_local(server, "bob")
            pages.append(bob)
            await alice.join_as_name(acct, room)
            await bob.join_as_name(acct, room)
            await asyncio.gather(assert_media_flows(alice, "bob"), assert_media_flows(bob, "alice"))
            yield alice, bob
    finally:
        for page in pages:
            await page.close()
