"""`RecordingService` on a real SQLite store with a fake clock and an in-memory recording
adapter: rules, lifecycle, events, recovery, deletion and signed media URLs."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import AsyncIterator, Callable, Collection
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from parlour.config import Config
from parlour.domain import errors
from parlour.domain.accounts import Account
from parlour.domain.events import (
    Event,
    ParticipantDisconnected,
    RecordingCompleted,
    RecordingEvent,
    RecordingFailed,
    RecordingStarted,
    RoomEnded,
    TrackRemoved,
)
from parlour.domain.paging import PageRequest
from parlour.domain.participants import Participant
from parlour.domain.ports import RecordingFilter
from parlour.domain.recordings import (
    FailedOperation,
    Recording,
    RecordingResult,
    RecordingStatus,
    unix_ms,
)
from parlour.domain.rooms import Room, RoomSpec, validate_room_spec
from parlour.domain.rules import parse_rules
from parlour.domain.sids import AccountSid, RoomSid, new_sid
from parlour.domain.tracks import PublishedTrack, TrackKind
from parlour.protocol.media_urls import media_url_key
from parlour.services.recordings import RecordingService
from parlour.store.sql import SqlStore
from parlour.testing import FakeClock
from tests.unit.services.fakes import EventLog, FakeStorage, opus_recording

KEY = media_url_key(b"secret")


@dataclass
class FakeWriter:
    recording: Recording
    result: RecordingResult = field(default_factory=lambda: RecordingResult(2400, 1000, 10))
    packets: list[tuple[bytes, float]] = field(default_factory=list)
    closed: bool = False
    keyframe: Callable[[], None] | None = None
    gate: asyncio.Event | None = None  # set: close waits for it (a slow file finish)

    def feed(self, packet: bytes, arrival: float) -> None:
        self.packets.append((packet, arrival))

    async def close(self) -> RecordingResult:
        self.closed = True
        if self.gate is not None:
            await self.gate.wait()
        first = self.packets[0][1] if self.packets else None
        return replace(self.result, first_arrival=first)


class FakeMedia:
    def __init__(self) -> None:
        self.writers: dict[str, FakeWriter] = {}
        self.fail_open: Exception | None = None
        self.result: RecordingResult | None = None
        self.recovered: dict[str, RecordingResult] = {}

    def open_writer(
        self,
        recording: Recording,
        *,
        payload_types: Collection[int] = (),
        on_keyframe_needed: Callable[[], None] | None = None,
        storage: object = None,
    ) -> FakeWriter:
        if self.fail_open is not None:
            raise self.fail_open
        writer = FakeWriter(recording, keyframe=on_keyframe_needed)
        if self.result is not None:
            writer.result = self.result
        self.writers[recording.sid] = writer
        return writer

    async def recover(self, recording: Recording, *, storage: object = None) -> RecordingResult:
        return self.recovered[recording.sid]


class Sink(EventLog):
    def recording_events(self) -> list[RecordingEvent]:
        assert all(isinstance(e, RecordingEvent) for e in self.events)
        return [e for e in self.events if isinstance(e, RecordingEvent)]


@dataclass
class World:
    store: SqlStore
    clock: FakeClock
    sink: Sink
    media: FakeMedia
    storage: FakeStorage
    service: RecordingService
    account: AccountSid


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    store = await SqlStore.open(Config(data_dir=tmp_path).db_url)
    clock = FakeClock()
    account = AccountSid(new_sid("AC"))
    await store.insert_account(Account(account, "t", "h" * 64, clock.now(), clock.now()))
    sink, media, storage = Sink(), FakeMedia(), FakeStorage()
    service = RecordingService(store, clock, sink, media, storage, media_url_key=KEY)
    yield World(store, clock, sink, media, storage, service, account)
    await service.close()
    await store.close()


async def make_room(w: World, rules: list[dict[str, object]] | None = None) -> Room:
    spec = RoomSpec(
        unique_name=new_sid("XX").lower(),
        status_callback="https://example.com/cb",
        recording_rules=json.dumps(rules) if rules is not None else None,
    )
    room = validate_room_spec(
        spec, sid=RoomSid(new_sid("RM")), account_sid=w.account, now=w.clock.now()
    )
    await w.store.insert_room(room)
    return room


async def join(w: World, room: Room, identity: str) -> Participant:
    now = w.clock.now()
    participant = Participant.joining(room.sid, room.account_sid, identity, now)
    await w.store.insert_participant(participant)
    return participant


async def publish(w: World, participant: Participant, name: str, kind: TrackKind) -> PublishedTrack:
    track = PublishedTrack.published(
        participant.room_sid, participant.sid, name, kind, w.clock.now()
    )
    await w.store.insert_published_track(track)
    return track


async def recordings(w: World, **kw: object) -> list[Recording]:
    page = await w.service.find(w.account, RecordingFilter(**kw), PageRequest())  # type: ignore[arg-type]
    return page.items


ALL = [{"type": "include", "all": True}]


async def set_rules(w: World, room: Room, rules: list[Any]) -> None:
    """What `RoomService.update_recording_rules` tells the recorder (the `Recorder` port)."""
    parsed = parse_rules(json.dumps(rules), kind="recording")
    await w.service.recording_rules_changed(replace(room, recording_rules=parsed))


async def test_a_selected_track_is_recorded_until_unpublished(world: World) -> None:
    w = world
    room = await make_room(w, ALL)
    alice = await join(w, room, "alice")
    mic = await publish(w, alice, "mic", TrackKind.AUDIO)
    tap = await w.service.track_published(room, alice, mic, "opus", payload_types=[111])
    assert tap is not None
    [rec] = await recordings(w)
    assert rec.status is RecordingStatus.PROCESSING and rec.source_sid == mic.sid
    assert rec.status_callback == "https://example.com/cb"
    assert rec.offset == unix_ms(w.clock.now())
    assert w.sink.names() == ["recording-started"]
    [started] = w.sink.recording_events()
    assert isinstance(started, RecordingStarted) and started.recording == rec
    assert started.participant_identity == "alice" and started.room == room
    assert started.timestamp == w.clock.now()

    w.clock.advance(0.5)
    tap.feed(b"packet-1")
    w.clock.advance(0.02)
    tap.feed(b"packet-2")
    writer = w.media.writers[rec.sid]
    assert [p for p, _ in writer.packets] == [b"packet-1", b"packet-2"]

    w.clock.advance(3)
    await w.service.track_unpublished(mic.sid)
    assert writer.closed
    done = await w.service.get(w.account, rec.sid)
    assert done.status is RecordingStatus.COMPLETED
    assert (done.duration, done.size) == (2, 1000)
    assert done.offset == rec.offset + 500  # the first packet's arrival, not the start
    assert w.sink.names() == ["recording-started", "recording-completed"]
    completed = w.sink.recording_events()[1]
    assert isinstance(completed, RecordingCompleted) and completed.recording == done
    assert (completed.recording.duration, completed.recording.size) == (2, 1000)
    assert completed.participant_identity == "alice" and completed.room == room
    tap.feed(b"after")  # the SFU may still hold the tap: a no-op
    assert len(writer.packets) == 2


async def test_unrecordable_tracks_get_no_tap(world: World) -> None:
    w = world
    room = await make_room(w, ALL)
    alice = await join(w, room, "alice")
    data = await publish(w, alice, "chat", TrackKind.DATA)
    cam = await publish(w, alice, "cam", TrackKind.VIDEO)
    mic = await publish(w, alice, "mic", TrackKind.AUDIO)
    assert await w.service.track_published(room, alice, data, "opus") is None
    assert await w.service.track_published(room, alice, cam, "VP9") is None
    assert await w.service.track_published(room, alice, cam, "opus") is None
    assert await w.service.track_published(room, alice, mic, "VP8") is None
    assert await recordings(w) == []


async def test_rules_changes_start_and_stop_recordings_live(world: World) -> None:
    w = world
    room = await make_room(w)
    alice = await join(w, room, "alice")
    bob = await join(w, room, "bob")
    mic = await publish(w, alice, "mic", TrackKind.AUDIO)
    cam = await publish(w, alice, "cam", TrackKind.VIDEO)
    bob_mic = await publish(w, bob, "mic", TrackKind.AUDIO)
    taps = [
        await w.service.track_published(room, alice, mic, "opus"),
        await w.service.track_published(room, alice, cam, "VP8"),
        await w.service.track_published(room, bob, bob_mic, "opus"),
    ]
    assert all(t is not None for t in taps) and await recordings(w) == []

    await set_rules(w, room, [{"type": "include", "kind": "audio"}])
    live = await recordings(w, status=RecordingStatus.PROCESSING)
    assert {r.source_sid for r in live} == {mic.sid, bob_mic.sid}

    rules = [{"type": "include", "all": True}, {"type": "exclude", "publisher": "bob"}]
    await set_rules(w, room, rules)
    live = await recordings(w, status=RecordingStatus.PROCESSING)
    assert {r.source_sid for r in live} == {mic.sid, cam.sid}
    [bob_done] = await recordings(w, status=RecordingStatus.COMPLETED)
    assert bob_done.source_sid == bob_mic.sid

    await set_rules(w, room, [{"type": "include", "publisher": "bob"}])
    again = await recordings(w, source_sid=bob_mic.sid)
    assert len(again) == 2 and again[0].sid != again[1].sid  # a new RT sid for the restart
    assert again[0].status is RecordingStatus.PROCESSING
    names = w.sink.names()
    assert names.count("recording-started") == 4 and names.count("recording-completed") == 3


async def test_the_room_stops_recording_before_its_files_are_finished(world: World) -> None:
    """`on_stopped` is told, with `is_recording` already false, before the writer's slow
    close: the SDK's `recordingStopped` does not wait for the files."""
    w = world
    room = await make_room(w, ALL)
    alice = await join(w, room, "alice")
    mic = await publish(w, alice, "mic", TrackKind.AUDIO)
    assert await w.service.track_published(room, alice, mic, "opus") is not None
    [rec] = await recordings(w)
    writer = w.media.writers[rec.sid]
    seen: list[tuple[RoomSid, bool, bool]] = []
    w.service.on_stopped = lambda sid: seen.append(
        (sid, w.service.is_recording(sid), writer.closed)
    )
    assert w.service.is_recording(room.sid)
    await set_rules(w, room, [{"type": "exclude", "all": True}])
    assert seen == [(room.sid, False, False)]
    assert writer.closed and w.sink.names() == ["recording-started", "recording-completed"]


async def test_a_leave_cancelled_mid_finish_still_completes_the_recording(world: World) -> None:
    """The caller of `track_unpublished` (a signaling connection's task) is cancelled while
    the file is being finished: the recording still completes, with its callback."""
    w = world
    room = await make_room(w, ALL)
    alice = await join(w, room, "alice")
    mic = await publish(w, alice, "mic", TrackKind.AUDIO)
    assert await w.service.track_published(room, alice, mic, "opus") is not None
    [rec] = await recordings(w)
    writer = w.media.writers[rec.sid]
    writer.gate = asyncio.Event()
    leave = asyncio.create_task(w.service.track_unpublished(mic.sid))
    for _ in range(20):
        await asyncio.sleep(0)
    assert writer.closed and not leave.done()
    leave.cancel()
    with pytest.raises(asyncio.CancelledError):
        await leave
    writer.gate.set()
    await w.service.close()  # waits for what is finishing in the background
    [done] = await recordings(w)
    assert done.status is RecordingStatus.COMPLETED
    assert w.sink.names() == ["recording-started", "recording-completed"]


async def test_a_rules_change_queued_before_a_publish_does_not_start_it_twice(
    world: World,
) -> None:
    """A rules change waiting for the room's lock when a track is published sees the new tap
    first and starts its recording; the publish must not start a second one over it (the
    first would be left `processing` for ever, its writer thread running: the soak's two)."""
    w = world
    room = await make_room(w, ALL)
    alice = await join(w, room, "alice")
    mic = await publish(w, alice, "mic", TrackKind.AUDIO)
    async with w.service._lock(room.sid):  # someone holds the room's lock
        rules = asyncio.create_task(set_rules(w, room, ALL))
        await asyncio.sleep(0)  # the rules change waits for the lock first
        published = asyncio.create_task(w.service.track_published(room, alice, mic, "opus"))
        await asyncio.sleep(0)  # then the publish, its tap registered
    await rules
    assert await published is not None
    [rec] = await recordings(w)
    assert len(w.media.writers) == 1
    await w.service.track_unpublished(mic.sid)
    [done] = await recordings(w)
    assert done.sid == rec.sid and done.status is RecordingStatus.COMPLETED
    assert all(writer.closed for writer in w.media.writers.values())


async def test_republishing_makes_a_new_recording(world: World) -> None:
    w = world
    room = await make_room(w, ALL)
    alice = await join(w, room, "alice")
    first = await publish(w, alice, "cam", TrackKind.VIDEO)
    await w.service.track_published(room, alice, first, "H264")
    await w.service.track_unpublished(first.sid)
    second = await publish(w, alice, "cam", TrackKind.VIDEO)
    await w.service.track_published(room, alice, second, "H264")
    recs = await recordings(w)
    assert [r.source_sid for r in recs] == [second.sid, first.sid]
    assert [r.status for r in recs] == [RecordingStatus.PROCESSING, RecordingStatus.COMPLETED]


async def test_recordings_end_with_their_participant_and_room(world: World) -> None:
    w = world
    room = await make_room(w, ALL)
    alice = await join(w, room, "alice")
    bob = await join(w, room, "bob")
    for participant in (alice, bob):
        track = await publish(w, participant, "mic", TrackKind.AUDIO)
        await w.service.track_published(room, participant, track, "opus")
    now = w.clock.now()
    await w.service.emit(
        ParticipantDisconnected(timestamp=now, room=room, participant=alice.disconnected(now))
    )
    statuses = {r.participant_sid: r.status for r in await recordings(w)}
    assert statuses == {alice.sid: RecordingStatus.COMPLETED, bob.sid: RecordingStatus.PROCESSING}
    await w.service.emit(RoomEnded(timestamp=now, room=room.completed(now)))
    assert {r.status for r in await recordings(w)} == {RecordingStatus.COMPLETED}
    assert room.sid not in w.service._locks
    gone = await publish(w, bob, "gone", TrackKind.AUDIO)
    await w.service.emit(TrackRemoved(timestamp=now, room=room, participant=bob, track=gone))


async def test_a_tap_closed_by_the_sfu_completes_in_the_background(world: World) -> None:
    w = world
    room = await make_room(w, ALL)
    alice = await join(w, room, "alice")
    mic = await publish(w, alice, "mic", TrackKind.AUDIO)
    tap = await w.service.track_published(room, alice, mic, "opus")
    assert tap is not None
    tap.close()
    tap.close()
    await w.service.close()  # waits for the background completion
    [rec] = await recordings(w)
    assert rec.status is RecordingStatus.COMPLETED
    assert await w.service.track_published(room, alice, mic, "opus") is None  # closed


async def test_a_track_ending_while_its_recording_starts_still_completes_it(
    world: World,
) -> None:
    """The SFU closes the tap while the recording is being set up (its row being written):
    the recording is finished at once, never left `processing` (found by `make soak`)."""
    w = world
    room = await make_room(w, ALL)
    alice = await join(w, room, "alice")
    mic = await publish(w, alice, "mic", TrackKind.AUDIO)
    insert = w.store.insert_recording

    async def track_ends_meanwhile(recording: Recording) -> None:
        w.service._taps[recording.source_sid].close()  # what the SFU does as a track ends
        await insert(recording)

    w.store.insert_recording = track_ends_meanwhile  # type: ignore[method-assign]
    await w.service.track_published(room, alice, mic, "opus")
    await w.service.close()
    [rec] = await recordings(w)
    assert rec.status is RecordingStatus.COMPLETED
    assert w.media.writers[rec.sid].closed
    assert w.sink.names() == ["recording-started", "recording-completed"]
    assert w.service.in_progress == 0


async def test_a_start_cancelled_after_its_track_ended_still_completes_it(
    world: World,
) -> None:
    """The SFU closes the tap while the recording is set up, and the publish that started it
    is cancelled (its client went away) while the start is announced: the recording is
    finished all the same (the soak's last one: a writer thread and a `processing` row that
    nobody would ever finish)."""
    w = world
    room = await make_room(w, ALL)
    alice = await join(w, room, "alice")
    mic = await publish(w, alice, "mic", TrackKind.AUDIO)
    insert, emit = w.store.insert_recording, w.service._events.emit
    announcing = asyncio.Event()

    async def track_ends_meanwhile(recording: Recording) -> None:
        w.service._taps[recording.source_sid].close()  # what the SFU does as a track ends
        await insert(recording)

    async def slow_emit(event: Event) -> None:
        await emit(event)
        announcing.set()
        await asyncio.sleep(10)  # cancelled here

    w.store.insert_recording = track_ends_meanwhile  # type: ignore[method-assign]
    w.service._events.emit = slow_emit  # type: ignore[method-assign]
    publishing = asyncio.create_task(w.service.track_published(room, alice, mic, "opus"))
    await announcing.wait()
    publishing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await publishing
    await w.service.close()
    [rec] = await recordings(w)
    assert rec.status is RecordingStatus.COMPLETED
    assert w.media.writers[rec.sid].closed
    assert w.service.in_progress == 0


async def test_video_recordings_ask_for_keyframes(world: World) -> None:
    w = world
    room = await make_room(w, ALL)
    alice = await join(w, room, "alice")
    cam = await publish(w, alice, "cam", TrackKind.VIDEO)
    asked: list[str] = []
    await w.service.track_published(
        room, alice, cam, "VP8", request_keyframe=lambda: asked.append("now")
    )
    assert asked == ["now"]
    [rec] = await recordings(w)
    writer = w.media.writers[rec.sid]
    assert writer.keyframe is not None
    writer.keyframe()  # from the writer thread: scheduled on the loop
    await asyncio_sleep0()
    assert asked == ["now", "now"]


async def asyncio_sleep0() -> None:
    import asyncio

    await asyncio.sleep(0)


async def test_failures_are_recorded_with_their_operation(world: World) -> None:
    w = world
    room = await make_room(w, ALL)
    alice = await join(w, room, "alice")
    w.media.fail_open = OSError("disk full")
    mic = await publish(w, alice, "mic", TrackKind.AUDIO)
    await w.service.track_published(room, alice, mic, "opus")
    [failed] = await recordings(w)
    assert failed.status is RecordingStatus.FAILED and "disk full" in (failed.failure_reason or "")
    last = w.sink.recording_events()[-1]
    assert isinstance(last, RecordingFailed) and last.recording == failed
    assert last.failed_operation is FailedOperation.START
    assert last.participant_identity == "alice" and last.room == room

    w.media.fail_open = None
    w.media.result = RecordingResult(
        error="upload refused", failed_operation=FailedOperation.UPLOAD
    )
    cam = await publish(w, alice, "cam", TrackKind.VIDEO)
    await w.service.track_published(room, alice, cam, "VP8")
    await w.service.track_unpublished(cam.sid)
    [cam_rec] = await recordings(w, source_sid=cam.sid)
    assert cam_rec.status is RecordingStatus.FAILED
    last = w.sink.recording_events()[-1]
    assert isinstance(last, RecordingFailed) and last.recording == cam_rec
    assert last.failed_operation is FailedOperation.UPLOAD


async def test_recover_finishes_what_a_killed_server_left(world: World) -> None:
    w = world
    room = await make_room(w, ALL)
    alice = await join(w, room, "alice")
    left = []
    for i in range(3):
        rec = opus_recording(w.account, room.sid, alice.sid, w.clock.now(), track_name=f"t{i}")
        await w.store.insert_recording(rec)
        left.append(rec)
    w.media.recovered = {
        left[0].sid: RecordingResult(duration_ms=3000, size=500, frames=150),
        left[1].sid: RecordingResult(error="no media", failed_operation=FailedOperation.START),
    }
    # left[2] makes recover() raise (KeyError): still failed, never left processing.
    done = await w.service.recover()
    assert [r.status for r in done] == [
        RecordingStatus.COMPLETED,
        RecordingStatus.FAILED,
        RecordingStatus.FAILED,
    ]
    assert await w.store.recordings_with_status(RecordingStatus.PROCESSING) == []
    assert done[0].duration == 3 and done[0].size == 500
    assert w.sink.names() == ["recording-completed", "recording-failed", "recording-failed"]
    events = w.sink.recording_events()
    assert [e.recording for e in events] == done
    assert {e.participant_identity for e in events} == {"alice"}  # read from the store
    assert all(e.room == room for e in events)
    assert [e.failed_operation for e in events[1:] if isinstance(e, RecordingFailed)] == [
        FailedOperation.START,
        FailedOperation.COMPLETE,
    ]


async def test_recover_leaves_other_nodes_recordings_alone(world: World) -> None:
    """Several nodes: a node finishes only the recordings it holds the files of; another
    node's recording in progress stays `processing`."""
    w = world
    room = await make_room(w, ALL)
    alice = await join(w, room, "alice")
    mine, theirs = (
        opus_recording(w.account, room.sid, alice.sid, w.clock.now(), track_name=name)
        for name in ("mine", "theirs")
    )
    for rec in (mine, theirs):
        await w.store.insert_recording(rec)
    w.media.recovered = {mine.sid: RecordingResult(duration_ms=1000, size=10, frames=50)}
    done = await w.service.recover(lambda r: r.sid == mine.sid)
    assert [(r.sid, r.status) for r in done] == [(mine.sid, RecordingStatus.COMPLETED)]
    left = await w.store.recordings_with_status(RecordingStatus.PROCESSING)
    assert [r.sid for r in left] == [theirs.sid]


async def completed_recording(w: World) -> Recording:
    room = await make_room(w, ALL)
    alice = await join(w, room, "alice")
    mic = await publish(w, alice, "mic", TrackKind.AUDIO)
    await w.service.track_published(room, alice, mic, "opus")
    [rec] = await recordings(w, source_sid=mic.sid)
    with pytest.raises(errors.InvalidParameterError):
        await w.service.delete(w.account, rec.sid)  # still processing
    with pytest.raises(errors.NotFoundError):
        await w.service.media_url(w.account, rec.sid)
    await w.service.track_unpublished(mic.sid)
    w.storage.objects[rec.media_key] = bytes(range(200)) * 5
    return await w.service.get(w.account, rec.sid)


async def test_delete_removes_the_media_and_keeps_the_resource(world: World) -> None:
    w = world
    rec = await completed_recording(w)
    with pytest.raises(errors.NotFoundError):
        await w.service.delete(w.account, rec.sid, room_sid=RoomSid(new_sid("RM")))
    deleted = await w.service.delete(w.account, rec.sid)
    assert deleted.status is RecordingStatus.DELETED
    assert rec.media_key not in w.storage.objects
    assert (await w.service.delete(w.account, rec.sid)).status is RecordingStatus.DELETED
    with pytest.raises(errors.NotFoundError):
        await w.service.media_url(w.account, rec.sid)


async def test_signed_media_urls(world: World) -> None:
    w = world
    rec = await completed_recording(w)
    for ttl in (0, 3601):
        with pytest.raises(errors.InvalidParameterError):
            await w.service.media_url(w.account, rec.sid, ttl=ttl)
    for bad in ("form-data", "attachment\r\nX-Evil: 1", 'inline; filename="é"'):
        with pytest.raises(errors.InvalidParameterError):
            await w.service.media_url(w.account, rec.sid, disposition=bad)
    url = await w.service.media_url(w.account, rec.sid, ttl=60)
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    assert parts.path == f"/media/{w.account}/{rec.file_name}"
    assert query["ContentDisposition"] == f'attachment; filename="{rec.file_name}"'

    async def open_(**changes: str) -> object:
        values = {
            "expires": query["Expires"],
            "disposition": query["ContentDisposition"],
            "signature": query["Signature"],
        }
        values.update(changes)
        return await w.service.open_media(w.account, rec.file_name, **values)  # type: ignore[arg-type]

    media = await open_()
    assert media.size == 1000 and media.content_type == "audio/x-matroska"  # type: ignore[attr-defined]
    chunks = [c async for c in media.chunks(10, 5)]  # type: ignore[attr-defined]
    assert chunks == [bytes(range(10, 15))]
    for changes in (
        {"expires": str(int(query["Expires"]) + 1)},
        {"disposition": "inline"},
        {"signature": "x"},
        {"expires": "soon"},
    ):
        with pytest.raises(errors.ForbiddenError):
            await open_(**changes)
    w.clock.advance(61)
    with pytest.raises(errors.ForbiddenError):
        await open_()


async def test_cross_account_and_cross_room_are_not_found(world: World) -> None:
    w = world
    rec = await completed_recording(w)
    other = AccountSid(new_sid("AC"))
    for call in (
        w.service.get(other, rec.sid),
        w.service.get(w.account, rec.sid, room_sid=RoomSid(new_sid("RM"))),
        w.service.get(w.account, "not-a-sid"),
        w.service.delete(other, rec.sid),
        w.service.media_url(other, rec.sid),
    ):
        with pytest.raises(errors.NotFoundError):
            await call
    assert (await w.service.get(w.account, rec.sid, room_sid=rec.room_sid)).sid == rec.sid


async def test_recording_time_is_the_clock(world: World) -> None:
    w = world
    w.clock.advance(3600)
    room = await make_room(w, ALL)
    alice = await join(w, room, "alice")
    mic = await publish(w, alice, "mic", TrackKind.AUDIO)
    await w.service.track_published(room, alice, mic, "opus")
    [rec] = await recordings(w)
    assert rec.date_created == dt.datetime(2024, 1, 2, 4, 4, 5, tzinfo=dt.UTC)


async def test_publishing_twice_keeps_the_recording_and_ended_rooms_get_no_tap(
    world: World,
) -> None:
    w = world
    room = await make_room(w, ALL)
    alice = await join(w, room, "alice")
    mic = await publish(w, alice, "mic", TrackKind.AUDIO)
    first = await w.service.track_published(room, alice, mic, "opus")
    assert await w.service.track_published(room, alice, mic, "opus") is first
    assert len(await recordings(w)) == 1
    ended = validate_room_spec(
        RoomSpec(), sid=RoomSid(new_sid("RM")), account_sid=w.account, now=w.clock.now()
    ).completed(w.clock.now())
    await w.store.insert_room(ended)
    bob = await join(w, ended, "bob")
    cam = await publish(w, bob, "cam", TrackKind.VIDEO)
    assert await w.service.track_published(ended, bob, cam, "VP8") is None
    await w.service.emit(RoomEnded(timestamp=w.clock.now(), room=room.completed(w.clock.now())))
    assert {r.status for r in await recordings(w)} == {RecordingStatus.COMPLETED}


async def test_a_store_failing_at_the_finish_is_tried_again(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file is written but recording it fails (SQLite busy past its timeout, under
    load): the finish is tried again, and the recording ends `completed`, not `processing`
    (the soak's last two)."""
    import parlour.services.recordings as recordings_module

    monkeypatch.setattr(recordings_module, "FINISH_RETRY_DELAYS", (0.01, 0.01, 0.01))
    w = world
    room = await make_room(w, ALL)
    alice = await join(w, room, "alice")
    mic = await publish(w, alice, "mic", TrackKind.AUDIO)
    update = w.store.update_recording
    failures = [RuntimeError("database is locked"), RuntimeError("database is locked")]

    async def busy(recording: Recording, *, expected: RecordingStatus | None = None) -> bool:
        if failures:
            raise failures.pop(0)
        return await update(recording, expected=expected)

    w.store.update_recording = busy  # type: ignore[method-assign]
    tap = await w.service.track_published(room, alice, mic, "opus")
    assert tap is not None
    await w.service.track_unpublished(mic.sid)
    await w.service.close()
    [rec] = await recordings(w)
    assert rec.status is RecordingStatus.COMPLETED
    assert failures == []
    assert w.sink.names() == ["recording-started", "recording-completed"]


async def test_a_store_that_keeps_failing_leaves_it_to_recovery(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    import parlour.services.recordings as recordings_module

    monkeypatch.setattr(recordings_module, "FINISH_RETRY_DELAYS", (0.01,))
    w = world
    room = await make_room(w, ALL)
    alice = await join(w, room, "alice")
    mic = await publish(w, alice, "mic", TrackKind.AUDIO)
    calls = 0

    async def broken(recording: Recording, *, expected: RecordingStatus | None = None) -> bool:
        nonlocal calls
        calls += 1
        raise RuntimeError("database is locked")

    w.store.update_recording = broken  # type: ignore[method-assign]
    await w.service.track_published(room, alice, mic, "opus")
    await w.service.track_unpublished(mic.sid)
    await w.service.close()
    assert calls == 2  # once, then once more after the one delay
    [rec] = await recordings(w)
    assert rec.status is RecordingStatus.PROCESSING  # `recover()` finishes it at the next start
