"""Usage and start-up errors of the `parlour` command line, run as real subprocesses.

Every error is one line on stderr naming the problem, with exit status 2 (usage) or 1
(anything else), and no traceback unless `--log-level debug` asks for one.
"""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli_support import PARLOUR, clean_env

pytestmark = pytest.mark.integration


def parlour(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*PARLOUR, *args], capture_output=True, text=True, env=clean_env(**env), timeout=30
    )


def one_error_line(result: subprocess.CompletedProcess[str], status: int, *says: str) -> str:
    """The single stderr line of a failed command, checked for its status and words."""
    assert result.returncode == status, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert line.startswith("parlour"), line
    for word in says:
        assert word in line, line
    assert result.stdout == ""
    return line


@pytest.fixture
def tcp_port() -> Iterator[int]:
    """A port on 127.0.0.1 that a listening socket holds."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.fixture
def a_file(tmp_path: Path) -> Path:
    path = tmp_path / "a-file"
    path.write_text("not a directory\n")
    return path


# -- usage errors: status 2 --------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["serve", "--port", "99999"], ["--port", "99999", "65535"]),
        (["serve", "--port", "-1"], ["--port", "-1"]),
        (["serve", "--media-port", "70000"], ["--media-port", "70000"]),
        (["serve", "--media-workers", "-1"], ["--media-workers", "-1", "from 0"]),
        (["serve", "--media-workers", "all"], ["--media-workers", "'all'"]),
        (["serve", "--port", "http"], ["--port", "'http'"]),
        (["token", "--identity", "a", "--ttl", "0"], ["--ttl", "86400"]),
        (["token", "--identity", "a", "--ttl", "-5"], ["--ttl", "-5"]),
        (["token", "--identity", "a", "--ttl", "86401"], ["--ttl", "86401", "24 hours"]),
        (["token", "--identity", "a", "--ttl", "1h"], ["--ttl", "'1h'"]),
        (["token"], ["--identity"]),
        (["serve", "--log-level", "loud"], ["--log-level", "loud"]),
        (["frobnicate"], ["frobnicate"]),
        ([], ["COMMAND"]),
    ],
)
def test_usage_errors_are_one_line_and_status_2(args: list[str], says: list[str]) -> None:
    one_error_line(parlour(*args), 2, *says)


def test_the_largest_ttl_is_24_hours(tmp_path: Path) -> None:
    result = parlour("token", "--identity", "a", "--ttl", "86400", "--data-dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.count(".") == 2


# -- start-up errors of serve: status 1 ------------------------------------------------


def test_port_in_use(tcp_port: int, tmp_path: Path) -> None:
    result = parlour("serve", "--port", str(tcp_port), "--data-dir", str(tmp_path / "var"))
    one_error_line(
        result, 1, f"parlour: cannot listen on 127.0.0.1:{tcp_port}: address already in use"
    )
    assert not (tmp_path / "var").exists()


def test_debug_log_level_adds_the_traceback(tcp_port: int, tmp_path: Path) -> None:
    result = parlour(
        "serve", "--port", str(tcp_port), "--data-dir", str(tmp_path), "--log-level", "debug"
    )
    assert result.returncode == 1
    assert "Traceback (most recent call last)" in result.stderr
    assert "OSError" in result.stderr
    last = result.stderr.splitlines()[-1]
    assert last == f"parlour: cannot listen on 127.0.0.1:{tcp_port}: address already in use"


def test_debug_from_the_environment_adds_the_traceback(a_file: Path) -> None:
    result = parlour("account", "--data-dir", str(a_file), PARLOUR_LOG_LEVEL="debug")
    assert result.returncode == 1
    assert "Traceback" in result.stderr
    assert result.stderr.splitlines()[-1] == f"parlour: data dir {a_file} is not a directory"


@pytest.mark.parametrize(
    ("host", "says"),
    [
        ("10.255.255.1", "cannot assign requested address"),
        ("nosuchhost.invalid", "nosuchhost.invalid"),
    ],
)
def test_host_that_cannot_be_bound(host: str, says: str, tmp_path: Path) -> None:
    result = parlour("serve", "--host", host, "--port", "0", "--data-dir", str(tmp_path))
    one_error_line(result, 1, f"parlour: cannot listen on {host}:0: ", says)


def test_media_port_in_use(tmp_path: Path) -> None:
    with socket.socket(type=socket.SOCK_DGRAM) as udp:
        udp.bind(("127.0.0.1", 0))
        port = udp.getsockname()[1]
        result = parlour(
            "serve", "--port", "0", "--media-port", str(port), "--data-dir", str(tmp_path)
        )
    one_error_line(
        result, 1, f"parlour: cannot listen for media on UDP 127.0.0.1:{port}: address already"
    )


def test_media_port_of_the_second_worker_in_use(tmp_path: Path) -> None:
    """Worker i binds media port + i: each is checked before the server starts."""
    with socket.socket(type=socket.SOCK_DGRAM) as udp:
        udp.bind(("127.0.0.1", 0))
        taken = udp.getsockname()[1]
        with socket.socket(type=socket.SOCK_DGRAM) as probe:
            probe.bind(("127.0.0.1", taken - 1))  # free (else this test errs, loudly)
        result = parlour(
            "serve",
            "--port",
            "0",
            "--media-workers",
            "2",
            "--media-port",
            str(taken - 1),
            "--data-dir",
            str(tmp_path),
        )
    one_error_line(result, 1, f"cannot listen for media on UDP 127.0.0.1:{taken}: address already")


def test_media_workers_from_the_environment_are_checked(tmp_path: Path) -> None:
    result = parlour("serve", "--data-dir", str(tmp_path), PARLOUR_MEDIA_WORKERS="lots")
    one_error_line(result, 1, "PARLOUR_MEDIA_WORKERS", "'lots'")
    result = parlour("serve", "--data-dir", str(tmp_path), PARLOUR_MEDIA_WORKERS="-2")
    one_error_line(result, 1, "PARLOUR_MEDIA_WORKERS", "from 0")


def test_media_host_that_cannot_be_bound(tmp_path: Path) -> None:
    result = parlour(
        "serve", "--port", "0", "--media-host", "10.255.255.1", "--data-dir", str(tmp_path)
    )
    one_error_line(result, 1, "UDP 10.255.255.1:0", "cannot assign requested address")


def test_port_out_of_range_from_the_environment(tmp_path: Path) -> None:
    result = parlour("serve", "--data-dir", str(tmp_path), PARLOUR_PORT="99999")
    one_error_line(result, 1, "PARLOUR_PORT 99999", "65535")


def test_log_level_from_the_environment_is_checked(tmp_path: Path) -> None:
    result = parlour("account", "--data-dir", str(tmp_path), PARLOUR_LOG_LEVEL="loud")
    one_error_line(result, 1, "'loud'", "PARLOUR_LOG_LEVEL")


# -- the data dir ------------------------------------------------------------------------


@pytest.mark.parametrize("command", [["serve", "--port", "0"], ["account"], ["migrate"]])
def test_data_dir_that_is_a_file(command: list[str], a_file: Path) -> None:
    result = parlour(*command, "--data-dir", str(a_file))
    one_error_line(result, 1, f"parlour: data dir {a_file} is not a directory")


@pytest.mark.parametrize("command", [["serve", "--port", "0"], ["keys", "list"], ["metrics-token"]])
def test_data_dir_that_cannot_be_created(command: list[str], a_file: Path) -> None:
    # Under a regular file nothing can be created, not even by root.
    target = a_file / "var"
    result = parlour(*command, "--data-dir", str(target))
    one_error_line(result, 1, f"cannot create data dir {target}: {a_file} is not a directory")


def test_a_new_data_dir_is_told_once(tmp_path: Path) -> None:
    typo = tmp_path / "TYPO"
    first = parlour("account", "--data-dir", str(typo))
    assert first.returncode == 0
    assert first.stderr == f"parlour: created a new data dir {typo} (no server has used it)\n"
    assert "account_sid" in first.stdout
    again = parlour("account", "--data-dir", str(typo))
    assert again.returncode == 0 and again.stderr == ""
    assert again.stdout == first.stdout


# -- the database ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("mysql://root@127.0.0.1/parlour", "unsupported scheme 'mysql'"),
        ("postgresql://parlour:hunter2@127.0.0.1:1/parlour", "connection refused"),
        ("sqlite:////nonexistent/dir/parlour.db", "unable to open database file"),
        ("postgresql+psycopg2://127.0.0.1/parlour", "unsupported scheme 'postgresql+psycopg2'"),
        ("not a url", "not a URL"),
    ],
)
def test_bad_database_url(url: str, says: str, tmp_path: Path) -> None:
    for command in (["account"], ["serve", "--port", "0"]):
        result = parlour(*command, "--data-dir", str(tmp_path), PARLOUR_DATABASE_URL=url)
        line = one_error_line(result, 1, "parlour: cannot open the database", says)
        assert "hunter2" not in line


# -- runtime errors of the other commands --------------------------------------------------


def test_deleting_an_unknown_key(tmp_path: Path) -> None:
    assert parlour("account", "--data-dir", str(tmp_path)).returncode == 0
    sid = "SK" + "0" * 32
    for json_flag in ([], ["--json"]):
        result = parlour("keys", "delete", sid, *json_flag, "--data-dir", str(tmp_path))
        one_error_line(result, 1, f"parlour: no API key {sid}")
