"""`parlour serve` with TLS (`--tls-cert`/`--tls-key`) and TURN settings, as a subprocess:
it serves HTTPS itself, and a bad certificate or half a setting is one line at start-up."""

from __future__ import annotations

import re
import ssl
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.browser.netkit import self_signed
from tests.cli_support import PARLOUR, clean_env, serving

pytestmark = pytest.mark.integration


def failed_start(*args: str, **env: str) -> str:
    """The one stderr line of a `parlour serve` that refused to start (status 1)."""
    result = subprocess.run(
        [*PARLOUR, "serve", "--port", "0", *args],
        capture_output=True,
        text=True,
        env=clean_env(**env),
        timeout=30,
    )
    assert result.returncode == 1, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def test_serve_speaks_https_with_a_certificate(tmp_path: Path) -> None:
    cert = self_signed(tmp_path / "tls", "127.0.0.1")
    with serving(
        "--data-dir",
        str(tmp_path / "var"),
        "--tls-cert",
        str(cert.cert),
        "--tls-key",
        str(cert.key),
        env=clean_env(),
    ) as (url, _):
        assert url.startswith("https://127.0.0.1:"), url
        context = ssl.create_default_context(cafile=str(cert.cert))
        with httpx.Client(verify=context) as http:
            assert http.get(url + "/healthz").json()["status"] == "ok"


def test_a_certificate_needs_its_key(tmp_path: Path) -> None:
    cert = self_signed(tmp_path / "tls", "127.0.0.1")
    line = failed_start("--data-dir", str(tmp_path / "var"), "--tls-cert", str(cert.cert))
    assert "--tls-key" in line, line
    line = failed_start("--data-dir", str(tmp_path / "var"), PARLOUR_TLS_KEY=str(cert.key))
    assert "--tls-cert" in line, line


def test_unusable_certificates_are_one_line(tmp_path: Path) -> None:
    cert = self_signed(tmp_path / "tls", "127.0.0.1")
    other = self_signed(tmp_path / "other", "127.0.0.1")
    data = ("--data-dir", str(tmp_path / "var"))
    line = failed_start(*data, "--tls-cert", str(tmp_path / "nope.pem"), "--tls-key", str(cert.key))
    assert "cannot use TLS certificate" in line and "no such file" in line, line
    line = failed_start(*data, "--tls-cert", str(cert.cert), "--tls-key", str(other.key))
    assert "cannot use TLS certificate" in line and "key values mismatch" in line, line
    assert not (tmp_path / "var").exists()  # refused before anything was made


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"PARLOUR_TURN_URLS": "turn:turn.example.com:3478"}, "PARLOUR_TURN_SECRET"),
        ({"PARLOUR_TURN_SECRET": "s3cret"}, "PARLOUR_TURN_URLS"),
        (
            {"PARLOUR_TURN_URLS": "http://turn.example.com", "PARLOUR_TURN_SECRET": "s"},
            "is not a turn: or turns: URL",
        ),
        (
            {
                "PARLOUR_TURN_URLS": "turn:t.example.com",
                "PARLOUR_TURN_SECRET": "s",
                "PARLOUR_TURN_TTL_SECONDS": "0",
            },
            "PARLOUR_TURN_TTL_SECONDS",
        ),
    ],
)
def test_turn_settings_are_checked(tmp_path: Path, env: dict[str, str], says: str) -> None:
    assert says in failed_start("--data-dir", str(tmp_path / "var"), **env)


def test_the_readme_production_setup_uses_real_flags_and_settings() -> None:
    root = Path(__file__).resolve().parents[2]
    readme = (root / "README.md").read_text()
    section = readme.split("## Production set-up", 1)[1].split("\n## ", 1)[0]
    command = re.search(r"```bash\n(.*?)```", section, re.S)
    assert command, "README's production set-up has no command"
    flags = set(re.findall(r"(--[a-z-]+)", command.group(1)))
    assert {"--tls-cert", "--tls-key", "--advertised-address"} <= flags
    serve_help = subprocess.run(
        [*PARLOUR, "serve", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for flag in flags:
        assert flag in serve_help, flag
    config = (root / "src" / "parlour" / "config.py").read_text()
    for setting in re.findall(r"(PARLOUR_[A-Z_]+)", command.group(1)):
        assert f'"{setting}"' in config, setting
