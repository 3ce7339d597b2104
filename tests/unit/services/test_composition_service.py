"""The composition queue on the in-memory store with a fake Composer: hooks fire on group
rooms only, a composition waits for its room and recordings, one claim per composition,
progress and failures as events, restart recovery, and an erased composition's output."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace

import pytest

from parlour.domain import errors
from parlour.domain.compositions import (
    Composition,
    CompositionFormat,
    CompositionHook,
    CompositionSpec,
    CompositionStatus,
)
from parlour.domain.events import (
    CompositionAvailable,
    CompositionEnqueued,
    CompositionFailed,
    CompositionHookFailed,
    CompositionProgress,
    CompositionStarted,
    RecordingCompleted,
    RoomEnded,
)
from parlour.domain.ports import CompositionJob, CompositionOutput
from parlour.domain.recordings import Recording, RecordingStatus
from parlour.domain.rooms import Room
from parlour.domain.sids import AccountSid
from parlour.services.compositions import CompositionService
from parlour.store.memory import MemoryStore
from parlour.testing import FakeClock
from tests.store.factories import join, make_room, new_account, publish
from tests.unit.services.fakes import EventLog, FakeStorage, opus_recording

SPEC = CompositionSpec.checked(
    video_layout={"grid": {"video_sources": ["*"]}},
    audio_sources=("*",),
    format=CompositionFormat.MP4,
)


class FakeComposer:
    """Stores a few bytes under the job's key; can be held, or made to fail."""

    def __init__(self, storage: FakeStorage) -> None:
        self.storage = storage
        self.jobs: list[CompositionJob] = []
        self.gate: asyncio.Event | None = None
        self.error: str | None = None
        self.closed = False

    async def compose(
        self, job: CompositionJob, progress: Callable[[int, float], None]
    ) -> CompositionOutput:
        self.jobs.append(job)
        progress(50, 1.0)
        await asyncio.sleep(0.01)  # the worker goes on while the progress is recorded
        if self.gate is not None:
            await self.gate.wait()
        if self.error:
            raise RuntimeError(self.error)
        self.storage.objects[job.output_key] = b"mp4!"
        return CompositionOutput(duration_ms=job.plan.duration_ms, size=4, bitrate=1)

    def release(self) -> None:
        """Let the held composition (`gate`) finish."""
        assert self.gate is not None
        self.gate.set()

    async def close(self) -> None:
        self.closed = True


class World:
    def __init__(self) -> None:
        self.store = MemoryStore()
        self.clock = FakeClock()
        self.sink = EventLog()
        self.storage = FakeStorage()
        self.composer = FakeComposer(self.storage)
        self.service = self.new_service()

    def new_service(self, composer: FakeComposer | None = None, **kw: object) -> CompositionService:
        return CompositionService(
            self.store,
            self.clock,
            self.sink,
            self.storage,
            composer or self.composer,
            media_url_key=b"k",
            **kw,  # type: ignore[arg-type]
        )

    async def room(self, *, recorded: bool = True, **kw: object) -> tuple[AccountSid, Room]:
        account = await new_account(self.store)
        room = make_room(account, **kw)
        await self.store.insert_room(room)
        if recorded:
            alice = await join(self.store, room, "alice", when=self.clock.now())
            track = await publish(self.store, alice)
            rec = opus_recording(
                account, room.sid, alice.sid, self.clock.now(), source_sid=track.sid
            )
            await self.store.insert_recording(rec)
        return account, room

    async def finish_recordings(self, room: Room) -> None:
        for rec in await self.store.recordings_with_status(RecordingStatus.PROCESSING):
            done = rec.completed(self.clock.now(), duration_ms=3000, size=10)
            await self.store.update_recording(done, expected=RecordingStatus.PROCESSING)
            await self.service.emit(
                RecordingCompleted(timestamp=self.clock.now(), recording=done, room=room)
            )

    async def end(self, room: Room) -> Room:
        ended = await self.store.complete_room(room.sid, self.clock.now())
        assert ended is not None
        await self.service.emit(RoomEnded(timestamp=self.clock.now(), room=ended))
        return ended

    async def composed(self, account: AccountSid, room: Room) -> Composition:
        """A composition of `room`, once the room has ended and the composer is done."""
        c = await self.service.create(account, room.sid, SPEC)
        await self.finish_recordings(await self.end(room))
        await self.service.wait_idle()
        return await self.service.get(account, c.sid)

    async def with_recording(self, **changes: object) -> tuple[AccountSid, Room, Recording]:
        """A recorded room whose one (processing) recording has `changes`."""
        account, room = await self.room()
        [rec] = await self.store.recordings_with_status(RecordingStatus.PROCESSING)
        rec = replace(rec, **changes)  # type: ignore[arg-type]
        await self.store.update_recording(rec, expected=RecordingStatus.PROCESSING)
        return account, room, rec

    async def held(self, account: AccountSid, room: Room) -> Composition:
        """A composition of `room` that the composer is holding mid-compose (its `gate`)."""
        self.composer.gate = asyncio.Event()
        c = await self.service.create(account, room.sid, SPEC)
        await self.finish_recordings(await self.end(room))
        await asyncio.sleep(0.05)
        return c

    async def hook(self, account: AccountSid, name: str = "h", **kw: object) -> CompositionHook:
        return await self.service.create_hook(account, name, SPEC, enabled=True, **kw)  # type: ignore[arg-type]


async def test_a_composition_waits_for_its_room_and_recordings() -> None:
    w = World()
    account, room = await w.room()
    c = await w.service.create(account, room.sid, SPEC, status_callback="http://example.com/c")
    assert c.status is CompositionStatus.ENQUEUED
    ended = await w.end(room)
    await w.service.wait_idle()
    assert w.composer.jobs == []  # a recording is still being written
    await w.finish_recordings(ended)
    await w.service.wait_idle()
    done = await w.service.get(account, c.sid)
    assert done.status is CompositionStatus.COMPLETED and done.duration == 3
    assert w.storage.objects[done.media_key] == b"mp4!"
    assert w.sink.names() == [
        "composition-started",
        "composition-progress",
        "composition-available",
    ]
    progress = next(e for e in w.sink.events if isinstance(e, CompositionProgress))
    assert progress.percentage == 50 and progress.seconds_remaining == 1
    # a second kick (another recording event) composes nothing twice
    await w.finish_recordings(ended)
    await w.service.emit(RoomEnded(timestamp=w.clock.now(), room=ended))
    await w.service.wait_idle()
    assert len(w.composer.jobs) == 1


async def test_hooks_fire_for_group_rooms_that_end() -> None:
    w = World()
    account, room = await w.room()
    hook = await w.hook(account, status_callback="http://example.com/h")
    await w.service.create_hook(account, "off", SPEC, enabled=False)
    ended = await w.end(room)
    await w.finish_recordings(ended)
    await w.service.wait_idle()
    enqueued = [e for e in w.sink.events if isinstance(e, CompositionEnqueued)]
    assert len(enqueued) == 1 and enqueued[0].hook == hook
    made = enqueued[0].composition
    assert made.hook_sid == hook.sid and made.status_callback == "http://example.com/h"
    assert isinstance(w.sink.events[-1], CompositionAvailable)
    assert w.sink.events[-1].hook == hook
    # a peer-to-peer room never fires a hook
    _, p2p = await w.room(type="peer-to-peer")
    await w.end(p2p)
    assert len([e for e in w.sink.events if isinstance(e, CompositionEnqueued)]) == 1


async def test_a_hook_on_a_room_with_nothing_recorded_fails_as_a_hook() -> None:
    w = World()
    account, room = await w.room(recorded=False)
    await w.hook(account)
    await w.end(room)
    [failed] = w.sink.events
    assert isinstance(failed, CompositionHookFailed) and "no recordings" in failed.error
    with pytest.raises(errors.InvalidParameterError):
        await w.service.create(account, room.sid, SPEC)


async def test_a_composer_error_fails_the_composition() -> None:
    w = World()
    account, room = await w.room()
    w.composer.error = "decoder exploded"
    failed = await w.composed(account, room)
    assert failed.status is CompositionStatus.FAILED
    assert failed.failure_reason is not None and "decoder exploded" in failed.failure_reason
    assert isinstance(w.sink.events[-1], CompositionFailed)
    with pytest.raises(errors.InvalidParameterError):
        await w.service.delete(account, failed.sid)


async def test_restart_requeues_processing_and_composes_once() -> None:
    w = World()
    account, room = await w.room()
    c = await w.held(account, room)
    assert (await w.service.get(account, c.sid)).status is CompositionStatus.PROCESSING
    await w.service.close()  # the server stops mid-composition: it stays processing
    assert w.composer.closed
    assert (await w.service.get(account, c.sid)).status is CompositionStatus.PROCESSING
    w.composer = FakeComposer(w.storage)
    again = w.new_service()
    w.service = again
    await again.recover()
    await again.recover()  # twice: still one job
    await again.wait_idle()
    assert len(w.composer.jobs) == 1
    assert (await again.get(account, c.sid)).status is CompositionStatus.COMPLETED


async def test_an_erased_composition_leaves_no_output() -> None:
    w = World()
    account, room = await w.room()
    c = await w.held(account, room)
    w.store._compositions.pop(c.sid)  # erased while it was being composed
    w.composer.release()
    await w.service.wait_idle()
    assert c.media_key not in w.storage.objects
    assert not any(isinstance(e, CompositionAvailable) for e in w.sink.events)
    assert any(isinstance(e, CompositionStarted) for e in w.sink.events)


async def test_media_urls_are_signed_and_checked() -> None:
    w = World()
    account, room = await w.room()
    c = await w.service.create(account, room.sid, SPEC)
    with pytest.raises(errors.NotFoundError):
        await w.service.media_url(account, c.sid)  # not composed yet
    await w.finish_recordings(await w.end(room))
    await w.service.wait_idle()
    path = await w.service.media_url(account, c.sid, ttl=60)
    query = dict(part.split("=", 1) for part in path.split("?", 1)[1].split("&"))
    from urllib.parse import unquote

    media = await w.service.open_media(
        account,
        f"{c.sid}.mp4",
        expires=query["Expires"],
        disposition=unquote(query["ContentDisposition"]),
        signature=query["Signature"],
    )
    assert media.size == 4 and media.content_type == "video/mp4"
    with pytest.raises(errors.ForbiddenError):
        await w.service.open_media(
            account,
            f"{c.sid}.mp4",
            expires=query["Expires"],
            disposition="inline",
            signature=query["Signature"],
        )
    with pytest.raises(errors.InvalidParameterError):
        await w.service.media_url(account, c.sid, ttl=0)
    deleted = await w.service.delete(account, c.sid)
    assert deleted.status is CompositionStatus.DELETED and c.media_key not in w.storage.objects
    assert (await w.service.delete(account, c.sid)).status is CompositionStatus.DELETED


async def test_what_a_live_node_composes_is_left_to_it_until_it_goes_silent() -> None:
    w = World()
    account, room = await w.room()
    first = w.service = w.new_service(node_id="node-a")
    await w.store.heartbeat_node("node-a", w.clock.now())
    c = await w.held(account, room)
    claimed = await first.get(account, c.sid)
    assert claimed.status is CompositionStatus.PROCESSING and claimed.node_id == "node-a"
    other_composer = FakeComposer(w.storage)
    other = w.new_service(other_composer, node_id="node-b", node_stale_after=30)
    await other.recover()
    await other.wait_idle()
    assert other_composer.jobs == []  # node-a is alive: its composition is its own
    w.clock.advance(31)  # node-a fell silent (killed)
    await other.recover()
    await other.wait_idle()
    assert len(other_composer.jobs) == 1
    done = await other.get(account, c.sid)
    assert done.status is CompositionStatus.COMPLETED
    # node-a wakes up and finishes too: its completion is refused, the stored file stays
    w.composer.release()
    await first.wait_idle()
    assert (await first.get(account, c.sid)).status is CompositionStatus.COMPLETED
    assert w.storage.objects[c.media_key] == b"mp4!"


async def test_encrypted_recordings_are_not_composed_and_bucket_ones_are_located() -> None:
    w = World()
    located: list[str] = []
    bucket = FakeStorage()

    async def locate(recording: Recording) -> FakeStorage:
        located.append(recording.sid)
        return bucket

    w.service = w.new_service(locate=locate)
    account, room, rec = await w.with_recording(media_credentials_sid="CR" + "1" * 32)
    assert (await w.composed(account, room)).status is CompositionStatus.COMPLETED
    assert located == [rec.sid] and w.composer.jobs[0].storages == {rec.sid: bucket}

    account, room, _ = await w.with_recording(encryption_key_sid="CR" + "2" * 32)
    failed = await w.composed(account, room)
    assert failed.status is CompositionStatus.FAILED
    assert failed.failure_reason is not None and "encrypted" in failed.failure_reason


async def test_a_composition_keeps_its_planned_key_and_fails_once_it_is_gone() -> None:
    """CompositionSettings are planned on the composition when it is created; if the
    public key is deleted before it is composed, it fails rather than store plain media."""
    from parlour.domain.media_settings import CredentialType, MediaKind
    from parlour.services.media_settings import CredentialService, MediaSettingsService, SecretBox
    from parlour.services.media_storage import MediaStorageResolver
    from tests.s3_support import rsa_key_pair

    w = World()
    creds = CredentialService(w.store, w.clock, SecretBox(b"s" * 32))
    w.service = CompositionService(
        w.store,
        w.clock,
        w.sink,
        w.storage,
        w.composer,
        media_url_key=b"k",
        resolver=MediaStorageResolver(w.store, creds, w.storage),
    )
    account, room = await w.room()
    _, pem = rsa_key_pair()
    key = await creds.create_public_key(account, pem, None)
    await MediaSettingsService(w.store, w.clock).update(
        account,
        MediaKind.COMPOSITIONS,
        friendly_name="enc",
        encryption_enabled=True,
        encryption_key_sid=key.sid,
    )
    c = await w.service.create(account, room.sid, SPEC)
    assert c.encryption_key_sid == key.sid and c.encrypted
    assert c.media_credentials_sid is None and c.media_external_location is None
    await creds.delete(account, CredentialType.PUBLIC_KEY, key.sid)
    ended = await w.end(room)
    await w.finish_recordings(ended)
    await w.service.wait_idle()
    failed = await w.service.get(account, c.sid)
    assert failed.status is CompositionStatus.FAILED
    assert failed.failure_reason is not None and "cannot be stored" in failed.failure_reason
    assert w.composer.jobs == [] and w.storage.objects == {}
    assert isinstance(w.sink.events[-1], CompositionFailed)
