"""Rooms end by themselves after UnusedRoomTimeout / EmptyRoomTimeout, as on Twilio.

One timeout "minute" is shrunk to 0.1 s here (`timeout_minute_seconds`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from parlour.testing import ServerThread
from tests.helpers import Account, new_account

pytestmark = pytest.mark.integration

MINUTE = 0.1


def wait_for(check: Callable[[], str | None], timeout: float = 10.0) -> None:
    """Poll `check` until it returns None; it returns why it is not done yet."""
    deadline = time.monotonic() + timeout
    reason = check()
    while reason is not None:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out: {reason}")
        time.sleep(0.02)
        reason = check()


@pytest.fixture(scope="module")
def fast_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    data_dir: Path = tmp_path_factory.mktemp("fast")
    with ServerThread(data_dir, timeout_minute_seconds=MINUTE, idle_sweep_seconds=0.02) as srv:
        yield srv


@pytest.fixture
def fast(fast_server: ServerThread) -> Iterator[tuple[ServerThread, Account, httpx.Client]]:
    account = new_account(fast_server)
    auth = (account.sid, account.auth_token)
    with httpx.Client(base_url=fast_server.base_url, auth=auth) as client:
        yield fast_server, account, client


def status(client: httpx.Client, sid: str) -> str:
    return str(client.get(f"/v1/Rooms/{sid}").json()["status"])


def test_unused_room_ends_after_unused_room_timeout(
    fast: tuple[ServerThread, Account, httpx.Client],
) -> None:
    _, _, client = fast
    short = client.post("/v1/Rooms", data={"UnusedRoomTimeout": 1}).json()
    long = client.post("/v1/Rooms", data={"UnusedRoomTimeout": 30}).json()
    started = time.monotonic()

    def ended() -> str | None:
        s = status(client, short["sid"])
        return None if s == "completed" else f"room is {s}"

    wait_for(ended)
    assert time.monotonic() - started >= MINUTE * 0.9
    room = client.get(f"/v1/Rooms/{short['sid']}").json()
    assert room["end_time"] is not None and room["duration"] is not None
    assert status(client, long["sid"]) == "in-progress"


def test_room_ends_after_last_participant_leaves(
    fast: tuple[ServerThread, Account, httpx.Client],
) -> None:
    server, account, client = fast
    room = client.post("/v1/Rooms", data={"EmptyRoomTimeout": 2, "UnusedRoomTimeout": 1}).json()
    svc = server.parlour
    live = server.call(svc.rooms.get(account.sid, room["sid"]))
    alice = server.call(svc.participants.join(live, "alice"))
    # Occupied: it outlives the unused-room timeout.
    time.sleep(MINUTE * 3)
    assert status(client, room["sid"]) == "in-progress"
    # Before the call: the leave happens after this instant, so the wait measured from it can
    # only be longer than the room's (taken after, a loaded machine returning the call late
    # made the wait look shorter than the timeout).
    left_at = time.monotonic()
    server.call(svc.participants.leave(live, alice))

    def ended() -> str | None:
        s = status(client, room["sid"])
        return None if s == "completed" else f"room is {s}"

    wait_for(ended)
    assert time.monotonic() - left_at >= 2 * MINUTE * 0.9
