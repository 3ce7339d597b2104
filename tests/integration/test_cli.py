"""The `parlour` command line, run as a real subprocess, also while a server runs."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from tests.cli_support import PARLOUR, clean_env, serving, start_serve

pytestmark = pytest.mark.integration


def run(*args: str, data_dir: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*PARLOUR, *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        check=check,
        env=clean_env(),
        timeout=60,
    )


def run_json(*args: str, data_dir: Path) -> Any:
    return json.loads(run(*args, "--json", data_dir=data_dir).stdout)


def test_account_is_created_once_and_printed(tmp_path: Path) -> None:
    first = run_json("account", data_dir=tmp_path)
    assert set(first) == {"account_sid", "auth_token"}
    assert re.fullmatch(r"AC[0-9a-f]{32}", first["account_sid"])
    assert re.fullmatch(r"[0-9a-f]{32}", first["auth_token"])
    assert run_json("account", data_dir=tmp_path) == first
    text = run("account", data_dir=tmp_path).stdout
    assert first["account_sid"] in text and first["auth_token"] in text
    other = run_json("account", "create", "--friendly-name", "Other", data_dir=tmp_path)
    assert other["account_sid"] != first["account_sid"]
    assert run_json("account", data_dir=tmp_path) == first


def test_keys_create_list_delete(tmp_path: Path) -> None:
    account = run_json("account", data_dir=tmp_path)
    key = run_json("keys", "create", "--friendly-name", "backend", data_dir=tmp_path)
    assert set(key) == {"sid", "secret", "account_sid"}
    assert key["account_sid"] == account["account_sid"]
    assert re.fullmatch(r"SK[0-9a-f]{32}", key["sid"])
    listed = run_json("keys", "list", data_dir=tmp_path)
    assert [k["sid"] for k in listed] == [key["sid"]]
    assert "secret" not in listed[0] and listed[0]["friendly_name"] == "backend"
    # Only a hash of the secret is stored.
    db = (tmp_path / "parlour.db").read_bytes()
    assert key["secret"].encode() not in db and account["auth_token"].encode() not in db
    assert run_json("keys", "delete", key["sid"], data_dir=tmp_path) == {"deleted": key["sid"]}
    assert run_json("keys", "list", data_dir=tmp_path) == []
    missing = run("keys", "delete", key["sid"], data_dir=tmp_path, check=False)
    assert missing.returncode == 1 and missing.stdout == ""
    assert missing.stderr == f"parlour: no API key {key['sid']} in the default account " + (
        f"{account['account_sid']}\n"
    )


def test_token_verifies_with_pyjwt_and_has_twilio_claims(tmp_path: Path) -> None:
    account = run_json("account", data_dir=tmp_path)
    before = int(time.time())
    token = run(
        "token", "--identity", "alice", "--room", "standup", "--ttl", "600", data_dir=tmp_path
    ).stdout.strip()
    header = jwt.get_unverified_header(token)
    assert header == {"alg": "HS256", "cty": "twilio-fpa;v=1", "typ": "JWT"}
    claims = jwt.decode(token, options={"verify_signature": False})
    assert list(claims) == ["jti", "grants", "iss", "exp", "nbf", "sub"]
    assert claims["sub"] == account["account_sid"]
    assert claims["grants"] == {"video": {"room": "standup"}, "identity": "alice"}
    assert claims["jti"] == f"{claims['iss']}-{claims['nbf']}"
    assert before <= claims["nbf"] <= before + 5 and claims["exp"] == claims["nbf"] + 600
    # The key it made is reused and listed; no secret is printed by `keys list`.
    second = run("token", "--identity", "bob", data_dir=tmp_path).stdout.strip()
    assert jwt.decode(second, options={"verify_signature": False})["iss"] == claims["iss"]
    assert [k["sid"] for k in run_json("keys", "list", data_dir=tmp_path)] == [claims["iss"]]


async def test_token_signature_verifies_with_the_key_secret(tmp_path: Path) -> None:
    # Mint through the service API so the secret is known, then check with PyJWT.
    from parlour.config import Config, load_server_secret
    from parlour.domain.clock import SystemClock
    from parlour.services.accounts import AccountService
    from parlour.store.sql import SqlStore

    async def go() -> tuple[str, str]:
        config = Config(data_dir=tmp_path)
        store = await SqlStore.open(config.db_url)
        try:
            svc = AccountService(store, SystemClock(), load_server_secret(config))
            token = await svc.mint_token("carol", ttl=60)
            key = await svc.cli_key((await svc.default_account()).account_sid)
            return token, key.secret
        finally:
            await store.close()

    token, secret = await go()
    cli_token = run("token", "--identity", "carol", data_dir=tmp_path).stdout.strip()
    for t in (token, cli_token):
        claims = jwt.decode(t, secret, algorithms=["HS256"])
        assert claims["grants"] == {"video": {}, "identity": "carol"}


def test_cli_works_while_the_server_runs(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"  # serve creates it without a word
    with serving("--data-dir", str(data_dir), env=clean_env()) as (url, lines):
        assert url.startswith("http://"), url
        assert not [line for line in lines if "new data dir" in line], lines
        # The server made the data dir, so the CLI has nothing to say about it.
        assert run("account", data_dir=data_dir).stderr == ""
        account = run_json("account", data_dir=data_dir)
        key = run_json("keys", "create", data_dir=data_dir)
        with httpx.Client(base_url=url) as c:
            created = c.post(
                "/v1/Rooms", auth=(key["sid"], key["secret"]), data={"UniqueName": "x"}
            )
            assert created.status_code == 201
            assert created.json()["account_sid"] == account["account_sid"]
            other = run_json("account", "create", data_dir=data_dir)
            r = c.get("/v1/Rooms/x", auth=(other["account_sid"], other["auth_token"]))
            assert r.status_code == 404
        token = run("token", "--identity", "dave", data_dir=data_dir).stdout.strip()
        assert token.count(".") == 2


def test_serve_starts_a_media_worker_per_core_and_stops_them(tmp_path: Path) -> None:
    """Without --media-workers or PARLOUR_MEDIA_WORKERS, `serve` runs the SFU in one worker
    process per core, each on its own port; they end with the server."""
    env = clean_env()
    del env["PARLOUR_MEDIA_WORKERS"]
    with serving("--data-dir", str(tmp_path), env=env) as (url, lines):
        ready = [re.search(r"media worker (\d+) \(pid (\d+)\) on udp \S+:(\d+)", x) for x in lines]
        workers = {int(m[1]): (int(m[2]), int(m[3])) for m in ready if m}
        assert sorted(workers) == list(range(len(os.sched_getaffinity(0)))), lines
        assert len({port for _, port in workers.values()}) == len(workers)
        assert httpx.get(f"{url}/healthz").status_code == 200
    for pid, _ in workers.values():
        assert not Path(f"/proc/{pid}").exists() or "zombie" in _state(pid), pid


def test_no_media_worker_outlives_a_killed_server(tmp_path: Path) -> None:
    """`kill -9` of the server: its worker reads the end of its channel and exits."""
    proc, _, lines = start_serve(
        "--data-dir", str(tmp_path), "--media-workers", "1", env=clean_env()
    )
    try:
        [pid] = [int(m[1]) for x in lines if (m := re.search(r"media worker 0 \(pid (\d+)\)", x))]
        assert "zombie" not in _state(pid)
        proc.kill()
        proc.wait(10)
        deadline = time.monotonic() + 10
        while Path(f"/proc/{pid}").exists() and "zombie" not in _state(pid):
            assert time.monotonic() < deadline, "the worker outlived its server"
            time.sleep(0.05)
    finally:
        proc.kill()
        proc.wait(10)
        if proc.stderr is not None:
            proc.stderr.close()


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/status").read_text().split("State:")[1].split("\n")[0]
    except (OSError, IndexError):
        return "zombie"


def test_help_lists_every_command(tmp_path: Path) -> None:
    out = subprocess.run([*PARLOUR, "--help"], capture_output=True, text=True, check=True).stdout
    for cmd in ("serve", "account", "keys", "token", "migrate"):
        assert cmd in out
    serve = subprocess.run(
        [*PARLOUR, "serve", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for flag in ("--host", "--port", "--data-dir", "--public-url", "--log-level"):
        assert flag in serve
    token = subprocess.run(
        [*PARLOUR, "token", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "--ttl" in token and "86400" in token and "--log-level" in token
