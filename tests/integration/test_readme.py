"""The README's curl and twilio examples work as written (only the port is the test's)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from parlour.testing import ServerThread
from tests.helpers import new_account

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def block(name: str) -> str:
    match = re.search(rf"<!-- readme-test: {name} -->\n```\w+\n(.*?)```", README, re.S)
    assert match, f"README has no {name} example"
    return match.group(1).replace("http://127.0.0.1:8080", "{BASE}")


def env_for(server: ServerThread) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PARLOUR_", "TWILIO_"))}
    env["PARLOUR_DATA_DIR"] = str(server.config.data_dir)
    return env


def test_curl_example(tmp_path: Path) -> None:
    with ServerThread(tmp_path) as server:
        script = block("curl").replace("{BASE}", server.base_url)
        script = script.replace(".venv/bin/parlour", f"{sys.executable} -m parlour")
        out = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            capture_output=True,
            text=True,
            check=True,
            env=env_for(server),
            cwd=ROOT,
            timeout=60,
        ).stdout
        created, listed, ended = [json.loads(x) for x in out.replace("}{", "}\n{").splitlines()]
        assert created["unique_name"] == "DailyStandup" and created["max_participants"] == 10
        assert [r["sid"] for r in listed["rooms"]] == [created["sid"]]
        assert ended["status"] == "completed"


def test_python_example(tmp_path: Path) -> None:
    with ServerThread(tmp_path) as server:
        account = new_account(server)
        env = env_for(server) | {
            "TWILIO_API_KEY": account.key_sid,
            "TWILIO_API_SECRET": account.key_secret,
            "TWILIO_ACCOUNT_SID": account.sid,
        }
        script = block("python").replace("{BASE}", server.base_url)
        out = subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            check=True,
            env=env,
            cwd=ROOT,
            timeout=60,
        ).stdout.splitlines()
        sid, status, _date = out[0].split(" ", 2)
        assert sid.startswith("RM") and status == "in-progress"
        assert out[1:] == ["Standup"]
