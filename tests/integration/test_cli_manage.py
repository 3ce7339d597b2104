"""`parlour rooms|participants|recordings …` as real subprocesses against a running server:
live participants joined with the Python SDK, real recordings written by the server, the
default account read from the server's data dir (or credentials given), tables and JSON,
and every failure told in one line."""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import httpx
import pytest

from parlour.testing import ServerThread
from tests.cli_support import PARLOUR, clean_env
from tests.helpers import Account, join, new_account
from tests.integration.recording_support import feed, media_packets, publish, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def manage_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    with ServerThread(tmp_path_factory.mktemp("manage")) as srv:
        yield srv


@pytest.fixture(scope="module")
def default(manage_server: ServerThread) -> Account:
    """The data dir's default account (what the CLI uses), with an API key for tokens."""

    async def make() -> Account:
        accounts = manage_server.parlour.accounts
        creds = await accounts.default_account()
        key = await accounts.create_key(creds.account_sid, "cli test")
        return Account(creds.account_sid, creds.auth_token, key.key.sid, key.secret)

    return manage_server.call(make())


async def cli(
    server: ServerThread, *args: str, url: bool = True, extra_env: dict[str, str] | None = None
) -> tuple[int, str, str]:
    """Run `parlour ARGS --data-dir <server's>` [--url <server's>]: (status, stdout, stderr)."""
    argv = [*PARLOUR, *args, "--data-dir", str(server.config.data_dir)]
    if url:
        argv += ["--url", server.base_url]
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=clean_env(**(extra_env or {})),
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def cli_json(server: ServerThread, *args: str) -> Any:
    status, out, err = await cli(server, *args, "--json")
    assert status == 0, err
    return json.loads(out)


def rest(server: ServerThread, acct: Account) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=server.base_url, auth=(acct.sid, acct.auth_token))


async def test_rooms_and_participants(manage_server: ServerThread, default: Account) -> None:
    async with asyncio.timeout(120), rest(manage_server, default) as http:
        made = await http.post("/v1/Rooms", data={"UniqueName": "standup"})
        room = made.json()["sid"]
        alice = await join(manage_server, default, "alice", "standup")
        bob = await join(manage_server, default, "bob", "standup")
        try:
            listed = await cli_json(manage_server, "rooms", "list")
            assert [r["sid"] for r in listed] == [room]
            status, text, _ = await cli(manage_server, "rooms", "list")
            assert status == 0
            header, row = text.splitlines()
            assert header.split() == ["SID", "NAME", "STATUS", "TYPE", "CREATED", "DURATION"]
            assert row.split()[:3] == [room, "standup", "in-progress"]

            shown = await cli_json(manage_server, "rooms", "show", "standup")
            assert shown["sid"] == room
            assert sorted(p["identity"] for p in shown["participants"]) == ["alice", "bob"]
            status, text, _ = await cli(manage_server, "rooms", "show", room)
            assert re.search(r"^status +in-progress$", text, re.M) and "participants (2):" in text

            people = await cli_json(manage_server, "participants", "list", "standup")
            assert sorted(p["identity"] for p in people) == ["alice", "bob"]
            status, text, _ = await cli(manage_server, "participants", "list", room)
            assert text.splitlines()[0].split() == [
                "SID", "IDENTITY", "STATUS", "JOINED", "DURATION"
            ]  # fmt: skip

            status, text, _ = await cli(manage_server, "participants", "kick", room, "bob")
            assert status == 0 and text.startswith("disconnected bob (PA")
            await bob.wait_for(lambda: bob.state == "disconnected", within=15)
            people = await cli_json(manage_server, "participants", "list", room)
            assert [p["identity"] for p in people] == ["alice"]
            gone = await cli_json(
                manage_server, "participants", "list", room, "--status", "disconnected"
            )
            assert [p["identity"] for p in gone] == ["bob"]

            ended = await cli_json(manage_server, "rooms", "end", "standup")
            assert ended["status"] == "completed"
            await alice.wait_for(lambda: alice.state == "disconnected", within=15)
            assert await cli_json(manage_server, "rooms", "list") == []
            status, text, _ = await cli(manage_server, "rooms", "list")
            assert text.strip() == "no rooms"
            completed = await cli_json(manage_server, "rooms", "list", "--status", "completed")
            assert [r["sid"] for r in completed] == [room]
        finally:
            for participant in (alice, bob):
                if participant.state != "disconnected":
                    await participant.disconnect()


async def test_lists_page_and_limit(manage_server: ServerThread, default: Account) -> None:
    async with rest(manage_server, default) as http:
        made = [(await http.post("/v1/Rooms", data={})).json()["sid"] for _ in range(5)]
        try:
            everything = await cli_json(manage_server, "rooms", "list", "--limit", "0")
            assert set(made) <= {r["sid"] for r in everything}
            two = await cli_json(manage_server, "rooms", "list", "--limit", "2")
            assert len(two) == 2
        finally:
            for sid in made:
                await http.post(f"/v1/Rooms/{sid}", data={"Status": "completed"})


def record_room(server: ServerThread, acct: Account, name: str) -> str:
    """A room whose one participant published 2 s of Opus and VP8, recorded, then ended."""
    http = httpx.Client(base_url=server.base_url, auth=(acct.sid, acct.auth_token))
    with http:
        made = http.post(
            "/v1/Rooms", data={"UniqueName": name, "RecordParticipantsOnConnect": "true"}
        )
        room: str = made.json()["sid"]
        tracks = publish(server, acct.sid, room, "ada", [("mic", "OPUS"), ("cam", "VP8")])
        streams = [(t.tap, media_packets(t.codec, 2.0, ssrc=500 + i)) for i, t in enumerate(tracks)]
        feed(server, streams)  # type: ignore[arg-type]
        http.post(f"/v1/Rooms/{room}", data={"Status": "completed"})

        def done() -> bool:
            listed = http.get(f"/v1/Rooms/{room}/Recordings").json()["recordings"]
            return len(listed) == 2 and all(r["status"] == "completed" for r in listed)

        wait_until(done, timeout=30)
    return room


async def test_recordings_list_show_download_delete(
    manage_server: ServerThread, default: Account, tmp_path: Path
) -> None:
    room = await asyncio.to_thread(record_room, manage_server, default, "recorded")
    async with asyncio.timeout(120):
        listed = await cli_json(manage_server, "recordings", "list", "--room", room)
        assert sorted(r["type"] for r in listed) == ["audio", "video"]
        assert all(r["grouping_sids"]["room_sid"] == room for r in listed)
        status, text, _ = await cli(manage_server, "recordings", "list")
        assert status == 0
        assert text.splitlines()[0].split() == [
            "SID", "ROOM", "TRACK", "TYPE", "STATUS", "DURATION", "SIZE", "CREATED"
        ]  # fmt: skip
        video = next(r for r in listed if r["type"] == "video")
        audio = next(r for r in listed if r["type"] == "audio")
        status, text, _ = await cli(manage_server, "recordings", "show", video["sid"])
        assert re.search(rf"^room +{room}$", text, re.M)
        assert re.search(r"^container +mkv$", text, re.M)

        # Download: the default name in the working directory… (no TTY: no progress bar)
        argv = [*PARLOUR, "recordings", "download", video["sid"], "--url", manage_server.base_url]
        argv += ["--data-dir", str(manage_server.config.data_dir)]
        proc = await asyncio.create_subprocess_exec(
            *argv, cwd=tmp_path, env=clean_env(), stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await proc.communicate()
        assert proc.returncode == 0, err
        saved = tmp_path / f"{video['sid']}.mkv"
        assert out.decode().startswith(f"saved {saved.name} (") and err == b""
        assert saved.stat().st_size == video["size"]
        with av.open(str(saved)) as container:
            assert container.streams.video[0].codec_context.name == "vp8"
            assert sum(1 for _ in container.demux(video=0)) > 10
        assert not [name for name in os.listdir(tmp_path) if name.endswith(".part")]
        # … or where --out says; an existing file is kept unless --force.
        target = tmp_path / "mic.mka"
        got = await cli_json(
            manage_server, "recordings", "download", audio["sid"], "--out", str(target)
        )
        assert got == {"sid": audio["sid"], "path": str(target), "bytes": audio["size"]}
        status, _, err = await cli(
            manage_server, "recordings", "download", audio["sid"], "--out", str(target)
        )
        assert status == 1 and "exists; add --force" in err
        status, _, err = await cli(
            manage_server, "recordings", "download", audio["sid"], "--out", str(target), "--force"
        )
        assert status == 0, err

        status, text, _ = await cli(manage_server, "recordings", "delete", audio["sid"])
        assert status == 0 and text.strip() == f"deleted {audio['sid']}"
        shown = await cli_json(manage_server, "recordings", "show", audio["sid"])
        assert shown["status"] == "deleted"
        deleted = await cli_json(manage_server, "recordings", "list", "--status", "deleted")
        assert [r["sid"] for r in deleted] == [audio["sid"]]
        status, _, err = await cli(
            manage_server, "recordings", "download", audio["sid"], "--out", str(tmp_path / "x")
        )
        assert status == 1 and err.startswith("parlour: ") and "(404" in err
        assert not (tmp_path / "x").exists()


async def test_credentials_url_and_failures(manage_server: ServerThread, tmp_path: Path) -> None:
    other = new_account(manage_server)
    async with rest(manage_server, other) as http:
        mine = (await http.post("/v1/Rooms", data={"UniqueName": "elsewhere"})).json()["sid"]
    # Given credentials (an API key here) open that account, and only that one.
    status, out, err = await cli(
        manage_server, "rooms", "list", "--json",
        "--account-sid", other.key_sid, "--auth-token", other.key_secret,
    )  # fmt: skip
    assert status == 0, err
    assert [r["sid"] for r in json.loads(out)] == [mine]
    status, _, err = await cli(manage_server, "rooms", "show", mine)
    assert status == 1 and "(404, code 20404)" in err, err

    # PARLOUR_URL is the default --url.
    status, out, err = await cli(
        manage_server, "rooms", "list", "--json", url=False,
        extra_env={"PARLOUR_URL": manage_server.base_url},
    )  # fmt: skip
    assert status == 0, err

    # Failures: one line each, exit status 1.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    status, out, err = await cli(
        manage_server, "rooms", "list", url=False,
        extra_env={"PARLOUR_URL": f"http://127.0.0.1:{free}"},
    )  # fmt: skip
    assert status == 1 and out == ""
    assert err.startswith(f"parlour: cannot reach Parlour at http://127.0.0.1:{free}")
    assert len(err.strip().splitlines()) == 1
    status, _, err = await cli(
        manage_server, "rooms", "list", "--account-sid", other.sid, "--auth-token", "wrong"
    )
    assert status == 1 and "refused the credentials (401)" in err
    status, _, err = await cli(manage_server, "rooms", "list", "--account-sid", other.sid)
    assert status == 1 and "both --account-sid and --auth-token" in err
    status, _, err = await cli(manage_server, "rooms", "list", "--url", "ftp://x", url=False)
    assert status == 1 and "not an http(s) URL" in err
    empty = tmp_path / "empty"
    empty.mkdir()
    argv = [*PARLOUR, "rooms", "list", "--url", manage_server.base_url, "--data-dir", str(empty)]
    proc = await asyncio.create_subprocess_exec(
        *argv, env=clean_env(), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    _, err_bytes = await proc.communicate()
    assert proc.returncode == 1 and b"no Parlour database in" in err_bytes
    status, _, err = await cli(manage_server, "rooms", "list", "--limit", "-1")
    assert status == 2 and "the limit is 0" in err
    status, _, err = await cli(manage_server, "recordings", "list", "--status", "bogus")
    assert status == 2


def test_progress_bar_draws_only_on_a_terminal() -> None:
    from io import StringIO

    from parlour.manage import Progress

    class Terminal(StringIO):
        def isatty(self) -> bool:
            return True

    tty, pipe = Terminal(), StringIO()
    for stream in (tty, pipe):
        bar = Progress("RT1.mka", 2_000_000, stream)
        bar.advance(1_000_000)
        time.sleep(0.11)
        bar.advance(500_000)
        bar.finish()
    assert pipe.getvalue() == ""
    drawn = tty.getvalue()
    assert "RT1.mka" in drawn and " 75%" in drawn and "1.5 MB / 2.0 MB" in drawn
    assert drawn.endswith("\n") and "\r" in drawn
    unknown = Progress("x", None, Terminal())
    unknown.advance(1500)
    assert unknown.line() == "x  1.5 kB"


def test_in_process_with_given_credentials(
    manage_server: ServerThread, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same commands through `parlour.cli.main` in this process (credentials given, so
    no database is opened): tables, details, JSON, kicking, ending, downloading."""
    from parlour.cli import main

    acct = new_account(manage_server)
    room = record_room(manage_server, acct, "in-process")
    given = ["--url", manage_server.base_url, "--account-sid", acct.sid]
    given += ["--auth-token", acct.auth_token, "--data-dir", str(tmp_path / "unused")]

    def parlour(*args: str) -> str:
        assert main([*args, *given]) == 0, capsys.readouterr().err
        return capsys.readouterr().out

    assert room in parlour("rooms", "list", "--status", "completed")
    assert re.search(r"^status +completed$", parlour("rooms", "show", room), re.M)
    people = json.loads(parlour("participants", "list", room, "--json", "--status", "disconnected"))
    assert [p["identity"] for p in people] == ["ada"]
    listed = json.loads(parlour("recordings", "list", "--json", "--limit", "1"))
    assert len(listed) == 1
    table_text = parlour("recordings", "list", "--room", room)
    assert len(table_text.splitlines()) == 3
    sid = listed[0]["sid"]
    assert re.search(rf"^sid +{sid}$", parlour("recordings", "show", sid), re.M)
    out = parlour("recordings", "download", sid, "--out", str(tmp_path))
    assert out.startswith(f"saved {tmp_path / sid}.")
    assert parlour("recordings", "delete", sid).strip() == f"deleted {sid}"

    with httpx.Client(base_url=manage_server.base_url, auth=(acct.sid, acct.auth_token)) as http:
        live = http.post("/v1/Rooms", data={"UniqueName": "live"}).json()["sid"]
    publish(manage_server, acct.sid, live, "zoe", [])
    assert "zoe" in parlour("participants", "list", "live")
    assert parlour("participants", "kick", "live", "zoe").startswith("disconnected zoe (PA")
    assert parlour("rooms", "end", live).strip() == f"ended {live} (live)"
    assert main(["rooms", "show", "nope", *given]) == 1
    assert "(404, code 20404)" in capsys.readouterr().err
    wrong = [*given[:-4], "--auth-token", "wrong", "--data-dir", str(tmp_path / "unused")]
    assert main(["rooms", "list", *wrong]) == 1
    assert "refused the credentials (401)" in capsys.readouterr().err
    unreachable = ["--url", "http://127.0.0.1:9", *given[2:]]
    assert main(["recordings", "list", *unreachable]) == 1
    assert "cannot reach Parlour at http://127.0.0.1:9" in capsys.readouterr().err
