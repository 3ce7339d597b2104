"""Real network pieces for the browser tests: self-signed certificates, nginx as a TLS
reverse proxy, coturn, and network namespaces (veth pairs, NAT, nftables rules).

Each piece is a context manager that always removes what it made (processes, namespaces,
nftables tables, files), and `*_missing()` says why a piece cannot run here, for a clean skip.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import getpass
import ipaddress
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.browser.harness import BrowserParticipant, poll

__all__ = [
    "DOCS",
    "Certificate",
    "assert_media_flows",
    "selected_pairs",
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
    port: int, process: subprocess.Popen[bytes], what: str, within: float = 20
) -> None:
    """Until something accepts TCP connections on 127.0.0.1:port (or `process` died)."""
    deadline = time.monotonic() + within
    while True:
        if process.poll() is not None:
            raise AssertionError(f"{what} exited with status {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
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


# -- coturn ------------------------------------------------------------------------------------

TURNSERVER = shutil.which("turnserver") or "/usr/bin/turnserver"


def coturn_missing() -> str | None:
    if not os.access(TURNSERVER, os.X_OK):
        return "turnserver is missing (scripts/install puts Debian's coturn there)"
    return None


@contextlib.contextmanager
def coturn(workdir: Path, config_text: str, port: int) -> Iterator[subprocess.Popen[bytes]]:
    """Debian's coturn on 127.0.0.1:port with `config_text`, relaying on loopback."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "turnserver.conf"
    config_text = re.sub(r"(?m)^listening-port=.*$", f"listening-port={port}", config_text)
    config_text = re.sub(r"(?m)^external-ip=.*\n", "", config_text)
    config.write_text(
        config_text
        + "listening-ip=127.0.0.1\nrelay-ip=127.0.0.1\nallow-loopback-peers\n"
        + f"pidfile={workdir / 'turnserver.pid'}\nlog-file={workdir / 'turn.log'}\n"
        + "simple-log\nno-stdout-log\nno-tls\nno-dtls\n"
    )
    process = subprocess.Popen(
        [TURNSERVER, "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_for_port(port, process, "turnserver")
        yield process
    finally:
        stop(process)


def turn_log(workdir: Path) -> str:
    log = workdir / "turn.log"
    return log.read_text(errors="replace") if log.exists() else ""
