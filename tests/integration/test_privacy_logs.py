"""Logs carry no personal data: a real server, two Python SDK clients with distinctive
identities in a room with a distinctive name, publishing audio and data; every log record
of every logger (Parlour, uvicorn, aiortc, aioice …) is captured at debug level and must
not contain the identities or the room name."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiortc import AudioStreamTrack

from parlour.client.video import LocalTrackInfo
from parlour.testing import ServerThread
from tests.helpers import join, new_account

pytestmark = [pytest.mark.integration]

IDENTITIES = ("gina-Kq7Vb@private.example", "hank-W3rTy@private.example")
ROOM = "secret-room-Pz8Lm"


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.name}: {self.format(record)}")


@pytest.fixture
def collected() -> Iterator[Collect]:
    handler = Collect()
    handler.setFormatter(logging.Formatter("%(message)s"))
    root = logging.getLogger()
    old = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(old)


async def test_no_identity_or_room_name_in_any_log(tmp_path: Path, collected: Collect) -> None:
    # An async test (not asyncio.run inside a sync one, which would orphan the event loop
    # pytest-asyncio manages, and its sockets with it).
    with ServerThread(tmp_path, idle_sweep_seconds=0.05, log_level="debug") as server:
        account = new_account(server)
        a = await join(
            server,
            account,
            IDENTITIES[0],
            ROOM,
            tracks=(
                LocalTrackInfo.from_track(AudioStreamTrack(), "mic"),
                LocalTrackInfo(name="chat", kind="data"),
            ),
        )
        b = await join(server, account, IDENTITIES[1], ROOM)
        while (await b.next_event(within=20)).name != "trackSubscribed":
            pass
        await a.disconnect()
        await b.disconnect()
    text = "\n".join(collected.lines)
    assert len(collected.lines) > 20  # the capture works
    leaks = [line for line in collected.lines if any(s in line for s in (*IDENTITIES, ROOM))]
    assert leaks == [], "\n".join(leaks[:20])
    assert "participant=PA" in text  # SIDs are there instead
