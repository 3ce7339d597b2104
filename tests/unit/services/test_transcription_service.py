"""`TranscriptionService` on the memory store with a fake clock and a fake transcriber: the
resource's life, the taps, what reaches clients and which events are emitted."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field, replace

import pytest

from parlour.domain import errors
from parlour.domain.accounts import Account
from parlour.domain.events import (
    ParticipantDisconnected,
    RoomCreated,
    RoomEnded,
    TrackRemoved,
    TranscriptionFailed,
    TranscriptionStarted,
    TranscriptionStopped,
)
from parlour.domain.paging import PageRequest
from parlour.domain.participants import Participant, ParticipantStatus
from parlour.domain.ports import TrackTap
from parlour.domain.rooms import Room, RoomSpec, validate_room_spec
from parlour.domain.sids import AccountSid, ParticipantSid, RoomSid, TrackSid, new_sid
from parlour.domain.tracks import PublishedTrack, TrackKind
from parlour.domain.transcriptions import Transcription, TranscriptionStatus, Utterance
from parlour.services.transcriptions import TapFanOut, TranscriptionService
from parlour.store.memory import MemoryStore
from parlour.testing import FakeClock
from tests.unit.services.fakes import EventLog


@dataclass
class FakeStream:
    language: str
    partial_results: bool
    on_result: Callable[[Utterance], None]
    on_error: Callable[[str], None] | None
    packets: list[bytes] = field(default_factory=list)
    closed: bool = False

    def feed(self, packet: bytes) -> None:
        self.packets.append(packet)

    def close(self) -> None:
        self.closed = True


class FakeTranscriber:
    def __init__(self) -> None:
        self.streams: list[FakeStream] = []
        self.closed = False

    def open_stream(
        self,
        *,
        language: str,
        partial_results: bool,
        payload_types: Collection[int],
        on_result: Callable[[Utterance], None],
        on_error: Callable[[str], None] | None = None,
    ) -> FakeStream:
        stream = FakeStream(language, partial_results, on_result, on_error)
        self.streams.append(stream)
        return stream

    async def close(self) -> None:
        self.closed = True


@dataclass
class World:
    store: MemoryStore
    clock: FakeClock
    events: EventLog
    transcriber: FakeTranscriber
    service: TranscriptionService
    delivered: list[tuple[RoomSid, dict[str, object]]]


@pytest.fixture
async def world() -> World:
    store, clock, events, transcriber = MemoryStore(), FakeClock(), EventLog(), FakeTranscriber()
    service = TranscriptionService(store, clock, events, transcriber, languages=["en-US"])
    delivered: list[tuple[RoomSid, dict[str, object]]] = []
    service.deliver = lambda room, message: delivered.append((room, message))
    return World(store, clock, events, transcriber, service, delivered)


async def new_room(w: World, **spec: object) -> Room:
    account = AccountSid(new_sid("AC"))
    await w.store.insert_account(Account(account, "t", "h" * 64, w.clock.now(), w.clock.now()))
    room = validate_room_spec(
        RoomSpec(**spec),  # type: ignore[arg-type]
        sid=RoomSid(new_sid("RM")),
        account_sid=account,
        now=w.clock.now(),
    )
    await w.store.insert_room(room)
    return room


def speaker(room: Room) -> tuple[Participant, PublishedTrack]:
    participant = Participant(
        sid=ParticipantSid(new_sid("PA")),
        room_sid=room.sid,
        account_sid=room.account_sid,
        identity="alice",
        status=ParticipantStatus.CONNECTED,
        date_created=room.date_created,
        date_updated=room.date_created,
    )
    track = PublishedTrack(
        sid=TrackSid(new_sid("MT")),
        room_sid=room.sid,
        participant_sid=participant.sid,
        name="mic",
        kind=TrackKind.AUDIO,
        enabled=True,
        date_created=room.date_created,
        date_updated=room.date_created,
    )
    return participant, track


async def created_transcribing(w: World, configuration: str) -> tuple[Room, Transcription]:
    """A room that transcribes on connect (with `configuration`), created: its transcription."""
    room = await new_room(
        w,
        transcribe_participants_on_connect=True,
        transcriptions_configuration=configuration,
    )
    await w.service.emit(RoomCreated(timestamp=w.clock.now(), room=room))
    (transcription,) = (await w.service.list(room, PageRequest())).items
    return room, transcription


async def tap_of(w: World, room: Room, kind: TrackKind = TrackKind.AUDIO) -> TrackTap | None:
    participant, track = speaker(room)
    if kind is not TrackKind.AUDIO:
        track = replace(track, kind=kind)
    return await w.service.track_published(room, participant, track, "opus")


async def test_a_started_room_transcribes_its_audio_and_delivers_finals(world: World) -> None:
    w = world
    room = await new_room(w)
    tap = await tap_of(w, room)
    assert tap is not None
    tap.feed(b"before")  # not transcribed yet: nothing opened
    assert w.transcriber.streams == []
    created = await w.service.create(room, {"languageCode": "en-us"})
    assert created.status is TranscriptionStatus.STARTED
    (stream,) = w.transcriber.streams
    assert stream.language == "en-US" and not stream.partial_results
    tap.feed(b"rtp")
    assert stream.packets == [b"rtp"]
    stream.on_result(Utterance("hello wor", final=False, start=1.0, end=1.5))
    stream.on_result(Utterance("hello world", final=True, start=1.0, end=2.0))
    assert len(w.delivered) == 1  # partials only when partialResults
    room_sid, message = w.delivered[0]
    assert room_sid == room.sid
    assert message["transcription"] == "hello world"
    assert message["partial_results"] is False
    assert message["sequence_number"] == 1
    assert message["type"] == "extension_transcriptions"
    assert str(message["participant"]).startswith("PA") and str(message["track"]).startswith("MT")
    assert message["timestamp"] == "2024-01-02T03:04:05.000000000Z"
    assert w.events.names() == ["transcription-started"]
    assert isinstance(w.events.events[0], TranscriptionStarted)


async def test_partials_stop_and_restart(world: World) -> None:
    w = world
    room = await new_room(w)
    created = await w.service.create(room, {"partialResults": True})
    tap = await tap_of(w, room)
    assert tap is not None
    (stream,) = w.transcriber.streams
    stream.on_result(Utterance("hel", final=False, start=0, end=1))
    assert w.delivered[-1][1]["partial_results"] is True
    w.clock.advance(30)
    stopped = await w.service.update(room, created.ttid, "stopped", None)
    assert stopped.status is TranscriptionStatus.STOPPED and stopped.duration == 30
    assert stream.closed
    stream.on_result(Utterance("late", final=True, start=0, end=1))
    assert len(w.delivered) == 1  # nothing after the stop
    with pytest.raises(errors.InvalidParameterError):
        await w.service.update(room, created.ttid, "failed", None)
    changed = await w.service.update(room, created.ttid, None, {"languageCode": "en-US"})
    assert changed.configuration == {"languageCode": "en-US"}
    restarted = await w.service.update(room, created.ttid, "started", None)
    assert restarted.status is TranscriptionStatus.STARTED
    assert len(w.transcriber.streams) == 2 and not w.transcriber.streams[1].partial_results
    with pytest.raises(errors.InvalidParameterError):
        await w.service.update(room, created.ttid, None, {"languageCode": "en-US"})
    with pytest.raises(errors.InvalidParameterError):
        await w.service.create(room, {})
    same = await w.service.update(room, created.ttid, "started", None)
    assert same.status is TranscriptionStatus.STARTED
    assert w.events.names() == [
        "transcription-started",
        "transcription-stopped",
        "transcription-started",
    ]
    page = await w.service.list(room, PageRequest())
    assert [t.ttid for t in page.items] == [created.ttid]


async def test_the_room_starts_and_ends_them(world: World) -> None:
    w = world
    room, started = await created_transcribing(w, '{"LanguageCode": "en-US"}')
    assert started.configuration == {"languageCode": "en-US"}
    tap = await tap_of(w, room)
    assert tap is not None and len(w.transcriber.streams) == 1
    w.clock.advance(5)
    ended = await w.store.complete_room(room.sid, w.clock.now())
    assert ended is not None
    await w.service.emit(RoomEnded(timestamp=w.clock.now(), room=ended))
    assert w.transcriber.streams[0].closed
    after = await w.service.get(room, started.ttid)
    assert after.status is TranscriptionStatus.STOPPED and after.duration == 5
    assert w.events.names() == ["transcription-started", "transcription-stopped"]
    assert isinstance(w.events.events[1], TranscriptionStopped)
    with pytest.raises(errors.RoomError) as err:
        await w.service.update(ended, started.ttid, "started", None)
    assert err.value.code == errors.Code.ROOM_COMPLETED
    with pytest.raises(errors.RoomError):
        await w.service.create(ended, {})
    with pytest.raises(errors.NotFoundError):
        await w.service.get(room, "video_transcriptions_nope")


async def test_tracks_and_participants_that_leave_close_their_streams(world: World) -> None:
    w = world
    room = await new_room(w)
    await w.service.create(room, {})
    participant, track = speaker(room)
    tap = await w.service.track_published(room, participant, track, "opus")
    assert tap is not None
    assert await w.service.track_published(room, participant, track, "opus") is tap
    await w.service.emit(
        TrackRemoved(timestamp=w.clock.now(), room=room, participant=participant, track=track)
    )
    assert w.transcriber.streams[0].closed
    other, other_track = speaker(room)
    await w.service.track_published(room, other, other_track, "opus")
    await w.service.emit(
        ParticipantDisconnected(timestamp=w.clock.now(), room=room, participant=other)
    )
    assert w.transcriber.streams[1].closed
    video = replace(track, kind=TrackKind.VIDEO)
    assert await w.service.track_published(room, participant, video, "VP8") is None


async def test_an_engine_failure_fails_the_transcriptions(world: World) -> None:
    w = world
    room = await new_room(w)
    created = await w.service.create(room, {})
    await tap_of(w, room)
    stream = w.transcriber.streams[0]
    assert stream.on_error is not None
    stream.on_error("no model")
    await w.service.close()
    failed = await w.service.get(room, created.ttid)
    assert failed.status is TranscriptionStatus.FAILED
    assert isinstance(w.events.events[-1], TranscriptionFailed)
    assert w.transcriber.closed


async def test_languages_and_room_types_are_checked(world: World) -> None:
    w = world
    room = await new_room(w)
    with pytest.raises(errors.InvalidParameterError) as err:
        await w.service.create(room, {"languageCode": "fr-FR"})
    assert "available: en-us" in err.value.message
    p2p = await new_room(w, type="peer-to-peer")
    with pytest.raises(errors.RoomError) as room_err:
        await w.service.create(p2p, {})
    assert room_err.value.code == errors.Code.ROOM_INVALID_PARAMETERS


class FakeRecorder:
    def __init__(self, tap: TrackTap | None) -> None:
        self.tap = tap
        self.calls: list[str] = []

    async def track_published(self, *args: object, **kwargs: object) -> TrackTap | None:
        return self.tap

    async def track_unpublished(self, track_sid: TrackSid) -> None:
        self.calls.append(f"unpublished {track_sid}")

    async def recording_rules_changed(self, room: Room) -> None:
        self.calls.append("rules")

    def is_recording(self, room_sid: RoomSid) -> bool:
        return True


class ListTap:
    def __init__(self) -> None:
        self.packets: list[bytes] = []
        self.closed = False

    def feed(self, packet: bytes) -> None:
        self.packets.append(packet)

    def close(self) -> None:
        self.closed = True


async def test_one_tap_feeds_the_recording_and_the_transcription(world: World) -> None:
    w = world
    room = await new_room(w)
    await w.service.create(room, {})
    recording_tap = ListTap()
    recorder = FakeRecorder(recording_tap)
    fan = TapFanOut(recorder, w.service)
    participant, track = speaker(room)
    tap = await fan.track_published(room, participant, track, "opus", payload_types=(111,))
    assert tap is not None
    tap.feed(b"p")
    assert recording_tap.packets == [b"p"] and w.transcriber.streams[0].packets == [b"p"]
    tap.close()
    assert recording_tap.closed and w.transcriber.streams[0].closed
    video = replace(track, kind=TrackKind.VIDEO)
    assert await fan.track_published(room, participant, video, "VP8") is recording_tap
    assert (
        await TapFanOut(FakeRecorder(None), w.service).track_published(
            room, participant, video, "VP8"
        )
        is None
    )
    await fan.track_unpublished(track.sid)
    await fan.recording_rules_changed(room)
    assert fan.is_recording(room.sid)
    assert recorder.calls == [f"unpublished {track.sid}", "rules"]


async def test_a_track_joins_transcriptions_another_process_started(world: World) -> None:
    w = world
    room = await new_room(w)
    elsewhere = TranscriptionService(w.store, w.clock, EventLog(), FakeTranscriber())
    await elsewhere.create(room, {"partialResults": True})
    tap = await tap_of(w, room)
    assert tap is not None
    (stream,) = w.transcriber.streams
    assert stream.partial_results
    assert w.events.names() == []  # the other process announced it


async def test_a_language_the_engine_lacks_fails_on_connect(world: World) -> None:
    w = world
    room, failed = await created_transcribing(w, '{"languageCode": "fr-FR"}')
    assert failed.status is TranscriptionStatus.FAILED
    assert w.events.names() == ["transcription-failed"]
    assert await tap_of(w, room) is not None and w.transcriber.streams == []
