"""`WorkerMediaPlane`'s bookkeeping without processes: each worker's channel is a fake that
records the commands. Placement (least loaded, rooms pinned while they have sessions),
replaced sessions, a lost worker's sessions failing once, and stats that never go back."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from parlour.domain.sids import ParticipantSid, RoomSid, TrackSid
from parlour.media.plane import MediaCounters, MediaStats
from parlour.media.workers import MediaWorker, RemoteSession, WorkerMediaPlane, WorkerSettings


class FakeChannel:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.closing = False

    def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)

    def close(self) -> None:
        self.closing = True


class Listener:
    def __init__(self) -> None:
        self.failed: list[str] = []

    def send_offer(self, pc_id: str, revision: int, sdp: str) -> None: ...
    def subscriptions_changed(self, subscribed: Sequence[tuple[TrackSid, str]]) -> None: ...
    def dominant_speaker_changed(self, participant_sid: ParticipantSid | None) -> None: ...
    def signaling_message(self, label: str, message: str) -> None: ...

    def media_failed(self, reason: str) -> None:
        self.failed.append(reason)


def plane(count: int = 2) -> tuple[WorkerMediaPlane, list[FakeChannel]]:
    p = WorkerMediaPlane(count, WorkerSettings())
    channels = [FakeChannel() for _ in range(count)]
    for worker, channel in zip(p.workers, channels, strict=True):
        worker._channel = channel  # type: ignore[assignment]
        worker._was_ready = True
    return p, channels


def room(n: int) -> RoomSid:
    return RoomSid(f"RM{n:032d}")


def pa(n: int) -> ParticipantSid:
    return ParticipantSid(f"PA{n:032d}")


def open_(p: WorkerMediaPlane, r: int, n: int, listener: Listener | None = None) -> RemoteSession:
    session = p.open_session(room(r), pa(n), listener or Listener(), ["VP8"])
    assert isinstance(session, RemoteSession)
    return session


def test_rooms_go_to_the_least_loaded_worker_and_stay_there() -> None:
    p, channels = plane()
    a1, a2 = open_(p, 1, 1), open_(p, 1, 2)
    b1 = open_(p, 2, 3)
    assert a1.worker is a2.worker is p.workers[0]
    assert b1.worker is p.workers[1]  # fewer sessions
    c1 = open_(p, 3, 4)
    assert c1.worker is p.workers[1]  # 1 session against 2
    assert p.worker_of(room(1)) is p.workers[0] and p.worker_of(room(3)) is p.workers[1]
    assert [m["op"] for m in channels[0].sent] == ["open", "open"]
    assert channels[0].sent[0] | {"codecs": None} == {
        "op": "open",
        "s": a1.sid,
        "room": room(1),
        "participant": pa(1),
        "codecs": None,
    }
    # A room whose sessions all closed is free to go elsewhere.
    a1.close()
    a2.close()
    assert p.worker_of(room(1)) is None
    assert channels[0].sent[-1] == {"op": "close", "s": a2.sid}
    assert open_(p, 1, 5).worker is p.workers[0]  # now the least loaded


def test_a_participant_opening_again_closes_its_old_session() -> None:
    p, channels = plane()
    old = open_(p, 1, 1)
    new = open_(p, 1, 1)
    assert old.closed and not new.closed
    assert [m["op"] for m in channels[0].sent] == ["open", "close", "open"]
    old.set_subscriptions([])  # nothing is sent for a closed session
    assert channels[0].sent[-1]["op"] == "open"
    assert p.workers[0].rooms[room(1)] == 1


def test_a_lost_worker_fails_its_sessions_once_and_only_its_own() -> None:
    p, _ = plane()
    here, there = Listener(), Listener()
    s1 = open_(p, 1, 1, here)
    s2 = open_(p, 2, 2, there)
    worker: MediaWorker = p.workers[0]
    worker.stats = MediaStats(1, 1, {}, {}, MediaCounters(rtp_packets_sent=100))
    p.workers[1].stats = MediaStats(1, 1, {}, {}, MediaCounters(rtp_packets_sent=5))
    assert p.stats().counters.rtp_packets_sent == 105
    channel = worker._channel
    assert channel is not None
    assert worker._lost(channel, "media worker exited")  # restart it
    assert here.failed == ["media worker exited"] and there.failed == []
    assert s1.closed and not s2.closed and not worker.up and worker.exits == 1
    s1.lost("again")  # at most once
    assert here.failed == ["media worker exited"]
    # Its counters stay in the totals; its rooms are free.
    assert p.stats().counters.rtp_packets_sent == 105
    assert p.stats().participants == 1
    assert p.worker_of(room(1)) is None
    assert open_(p, 1, 3).worker is p.workers[1]  # the only one up
    assert p.health() == (1, 1)


async def test_with_no_worker_up_a_session_fails_at_once() -> None:
    p, channels = plane(1)
    channels[0].closing = True
    listener = Listener()
    session = open_(p, 1, 1, listener)
    assert session.worker is None and listener.failed == []  # not from inside open_session
    await asyncio.sleep(0)
    assert listener.failed == ["no media worker is running"] and session.closed
    assert await session.client_description("pc", "offer", 1, "v=0", []) is None
