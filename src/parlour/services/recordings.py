"""Track recordings: which tracks are recorded, their lifecycle, and their media.

The SFU calls `track_published` for each published audio/video track and feeds every
forwarded packet into the returned `TrackTap`. Whether a tap is recording follows the
room's recording rules (`domain.rules.evaluate`, kind "recording"), re-evaluated when the
rules change; each start of a recording gets a new `RT…` SID, as on Twilio. A recording
completes when its track is unpublished, its participant leaves or its room ends (this
service is also an `EventSink` and listens for `track-removed`, `participant-disconnected`
and `room-ended`), or when the server shuts down. Recordings a killed server left
`processing` are finished by `recover()` at the next start.

Events: `recording-started`, `recording-completed`, `recording-failed` (rest-api.md §8.2).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Collection, Coroutine
from dataclasses import replace
from functools import partial
from typing import Any

from parlour.domain import errors
from parlour.domain.clock import Clock
from parlour.domain.events import (
    Event,
    ParticipantDisconnected,
    RecordingCompleted,
    RecordingFailed,
    RecordingStarted,
    RoomEnded,
    TrackRemoved,
)
from parlour.domain.media_settings import MediaKind
from parlour.domain.paging import Page, PageRequest
from parlour.domain.participants import Participant
from parlour.domain.ports import (
    EventSink,
    MediaStorage,
    RecordingFilter,
    RecordingMedia,
    Store,
    TrackTap,
    TrackWriter,
)
from parlour.domain.recordings import (
    FailedOperation,
    Recording,
    RecordingCodec,
    RecordingResult,
    RecordingStatus,
    codec_from_name,
    unix_ms,
)
from parlour.domain.rooms import Room
from parlour.domain.rules import TrackRef, evaluate
from parlour.domain.sids import (
    AccountSid,
    ParticipantSid,
    RecordingSid,
    RoomSid,
    TrackSid,
    is_sid,
    new_sid,
)
from parlour.domain.tracks import PublishedTrack, TrackKind
from parlour.recording.encryption import EncryptingStorage
from parlour.services.media_storage import MediaStorageResolver
from parlour.services.stored_media import MediaShelf, ServedMedia

__all__ = ["MediaFile", "RecordingService"]

log = logging.getLogger(__name__)

_AUDIO_CODECS = {RecordingCodec.OPUS, RecordingCodec.PCMU}

FINISH_RETRY_DELAYS: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0)
"""Seconds between attempts to record a finished recording when the store fails (about a
minute in all); the last failure is logged as an error."""


#: A recording's media, ready to be served.
MediaFile = ServedMedia[Recording]


class _Tap:
    """A published track's tap (`TrackTap`): hands packets to its recording, if any."""

    __slots__ = (
        "closed",
        "codec",
        "identity",
        "monotonic",
        "on_close",
        "participant_sid",
        "payload_types",
        "recording",
        "request_keyframe",
        "room_sid",
        "started",
        "storage",
        "track",
        "writer",
    )

    def __init__(
        self,
        *,
        track: PublishedTrack,
        participant: Participant,
        codec: RecordingCodec,
        payload_types: Collection[int],
        request_keyframe: Callable[[], None] | None,
        monotonic: Callable[[], float],
        on_close: Callable[[_Tap], None],
    ) -> None:
        self.track = track
        self.room_sid = track.room_sid
        self.participant_sid: ParticipantSid = participant.sid
        self.identity = participant.identity
        self.codec = codec
        self.payload_types = tuple(payload_types)
        self.request_keyframe = request_keyframe
        self.monotonic = monotonic
        self.on_close = on_close
        self.closed = False
        self.writer: TrackWriter | None = None
        self.storage: MediaStorage | None = None
        self.recording: Recording | None = None
        # (monotonic, wall clock) when the current recording started, to place its offset.
        self.started: tuple[float, float] = (0.0, 0.0)

    def feed(self, packet: bytes) -> None:
        writer = self.writer
        if writer is not None:
            writer.feed(packet, self.monotonic())

    @property
    def active(self) -> bool:
        return self.writer is not None

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.on_close(self)

    @property
    def ref(self) -> TrackRef:
        return TrackRef(
            sid=self.track.sid,
            name=self.track.name,
            kind=self.track.kind.value,
            publisher_sid=self.participant_sid,
            publisher_identity=self.identity,
        )


class RecordingService:
    """Recording use cases; implements the `Recorder` port and listens as an `EventSink`.

    Args:
        events: where recording events go (logs, webhooks) — not this service itself.
        media: the recording adapter (writers, crash recovery).
        storage: where finished media lives (deleted and served from here).
        media_url_key: signs the short-lived download URLs `/Media` redirects to.
        resolver: where each account's media goes (RecordingSettings: S3, encryption);
            without one, everything is in `storage`.
    """

    def __init__(
        self,
        store: Store,
        clock: Clock,
        events: EventSink,
        media: RecordingMedia,
        storage: MediaStorage,
        *,
        media_url_key: bytes,
        resolver: MediaStorageResolver | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._events = events
        self._media = media
        self._shelf: MediaShelf[Recording] = MediaShelf(
            MediaKind.RECORDINGS,
            "recording",
            storage=storage,
            resolver=resolver,
            media_url_key=media_url_key,
            clock=clock,
            content_type=lambda r: r.container_format.content_type,
        )
        self._taps: dict[TrackSid, _Tap] = {}
        self._locks: dict[RoomSid, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        # Told the moment a room's recordings stop being written, before their files are
        # finished (which may take a while): the room's `isRecording` follows at once.
        self.on_stopped: Callable[[RoomSid], None] | None = None

    @property
    def in_progress(self) -> int:
        """Recordings being written (taps of tracks being recorded)."""
        return sum(1 for tap in self._taps.values() if tap.writer is not None)

    # -- the Recorder port (called by the SFU and the room service) ----------------------

    async def track_published(
        self,
        room: Room,
        participant: Participant,
        track: PublishedTrack,
        codec: str,
        *,
        payload_types: Collection[int] = (),
        request_keyframe: Callable[[], None] | None = None,
    ) -> TrackTap | None:
        """A published track's tap; recording now if the room's rules select it.

        Returns None for tracks that can never be recorded: data tracks, codecs other than
        Opus (audio), VP8 and H.264 (video), and tracks of rooms that have ended. Calling it
        again for the same track returns the same tap (its recording goes on).
        """
        recording_codec = codec_from_name(codec)
        if self._closed or recording_codec is None or track.kind is TrackKind.DATA:
            return None
        if (track.kind is TrackKind.AUDIO) != (recording_codec in _AUDIO_CODECS):
            return None
        existing = self._taps.get(track.sid)
        if existing is not None and not existing.closed:
            return existing
        tap = _Tap(
            track=track,
            participant=participant,
            codec=recording_codec,
            payload_types=payload_types,
            request_keyframe=request_keyframe,
            monotonic=self._clock.monotonic,
            on_close=self._tap_closed,
        )
        self._taps[track.sid] = tap
        async with self._lock(room.sid):
            current = await self._store.get_room(room.account_sid, room.sid) or room
            if not current.in_progress:
                tap.closed = True
                await self._stop(tap)  # if a rules change started it meanwhile
            elif not tap.closed and tap.writer is None and self._selected(current, [tap]):
                # (A rules change that held the lock first may have started it already.)
                await self._start(tap, current)
        if tap.closed:
            if self._taps.get(track.sid) is tap:
                del self._taps[track.sid]
            return None
        return tap

    async def track_unpublished(self, track_sid: TrackSid) -> None:
        tap = self._taps.pop(track_sid, None)
        if tap is not None:
            tap.closed = True
            await self._stop_locked(tap)

    def is_recording(self, room_sid: RoomSid) -> bool:
        """Whether a recording of one of the room's tracks is being written now."""
        return any(
            t.room_sid == room_sid and t.writer is not None and not t.closed
            for t in self._taps.values()
        )

    async def recording_rules_changed(self, room: Room) -> None:
        async with self._lock(room.sid):
            taps = [t for t in self._taps.values() if t.room_sid == room.sid and not t.closed]
            selected = self._selected(room, taps) if room.in_progress else set()
            for tap in taps:
                wanted = tap.track.sid in selected
                if wanted and tap.writer is None:
                    await self._start(tap, room)
                elif not wanted and tap.writer is not None:
                    await self._stop(tap)

    # -- EventSink: the end of tracks, participants and rooms ------------------------------

    async def emit(self, event: Event) -> None:
        """Complete the recordings whose track, participant or room ended. Never raises."""
        try:
            if isinstance(event, TrackRemoved):
                await self.track_unpublished(event.track.sid)
            elif isinstance(event, ParticipantDisconnected):
                for tap in list(self._taps.values()):
                    if tap.participant_sid == event.participant.sid:
                        await self.track_unpublished(tap.track.sid)
            elif isinstance(event, RoomEnded):
                for tap in list(self._taps.values()):
                    if tap.room_sid == event.room.sid:
                        await self.track_unpublished(tap.track.sid)
                lock = self._locks.get(event.room.sid)
                if lock is not None and not lock.locked():
                    del self._locks[event.room.sid]
        except Exception:
            log.exception("recordings not updated after %s room=%s", event.name, event.room_sid)

    # -- lifecycle ------------------------------------------------------------------------

    async def recover(self, only: Callable[[Recording], bool] | None = None) -> list[Recording]:
        """Finish every recording a stopped server left `processing` (call at startup):
        completed if its file is playable, else failed with the reason. Never left
        processing.

        Args:
            only: which recordings are this server's to finish (several nodes: those
                whose spool file is in this node's data dir; the others are being written
                by other nodes, or wait for their own node's data dir).
        """
        active = {t.recording.sid for t in self._taps.values() if t.recording is not None}
        finished = []
        for recording in await self._store.recordings_with_status(RecordingStatus.PROCESSING):
            if recording.sid in active or (only is not None and not only(recording)):
                continue
            storage: MediaStorage | None = None
            try:
                storage = await self._shelf.writer_storage(recording)
                result = await self._media.recover(recording, storage=storage)
            except Exception as exc:
                result = RecordingResult(
                    error=f"recovery failed: {exc}"[:400],
                    failed_operation=FailedOperation.COMPLETE,
                )
            done = await self._finish(
                recording, result, started=None, identity=None, storage=storage
            )
            log.info(
                "recording recovered sid=%s status=%s duration=%s",
                done.sid,
                done.status,
                done.duration,
            )
            finished.append(done)
        return finished

    async def close(self) -> None:
        """Complete every recording in progress (shutdown). Safe to call twice."""
        self._closed = True
        taps = list(self._taps.values())
        self._taps.clear()
        for tap in taps:
            tap.closed = True
            await self._stop_locked(tap)
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # -- REST -----------------------------------------------------------------------------

    async def get(
        self, account_sid: AccountSid, sid: str, *, room_sid: RoomSid | None = None
    ) -> Recording:
        """A recording of the account (and of the room, if given); 20404 otherwise."""
        recording = await self._store.get_recording(account_sid, sid) if is_sid(sid) else None
        if recording is None or (room_sid is not None and recording.room_sid != room_sid):
            raise errors.NotFoundError.for_path(_path(sid, room_sid))
        return recording

    async def find(
        self, account_sid: AccountSid, flt: RecordingFilter, req: PageRequest
    ) -> Page[Recording]:
        return await self._store.list_recordings(account_sid, flt, req)

    async def delete(
        self, account_sid: AccountSid, sid: str, *, room_sid: RoomSid | None = None
    ) -> Recording:
        """Remove the media for good; the resource stays, `deleted` (as on Twilio).

        Raises:
            NotFoundError: 20404 no such recording.
            InvalidParameterError: 20001 the recording is still `processing`.
        """
        recording = await self.get(account_sid, sid, room_sid=room_sid)
        if recording.status is RecordingStatus.DELETED:
            return recording
        if recording.status is RecordingStatus.PROCESSING:
            raise errors.InvalidParameterError(
                "The recording is still processing; delete it once it has completed"
            )
        await self.delete_media(recording)
        deleted = recording.deleted(self._clock.now())
        if not await self._store.update_recording(deleted, expected=recording.status):
            return await self.delete(account_sid, sid, room_sid=room_sid)  # changed meanwhile
        log.info("recording deleted sid=%s room=%s", deleted.sid, deleted.room_sid)
        return deleted

    async def media_url(
        self,
        account_sid: AccountSid,
        sid: str,
        *,
        room_sid: RoomSid | None = None,
        ttl: int | None = None,
        disposition: str | None = None,
    ) -> str:
        """The signed path (with query) of a completed recording's media, valid `ttl` s;
        for media in an S3 bucket, the bucket's presigned URL (absolute).

        Raises:
            InvalidParameterError: 20001 `Ttl` outside 1–3600, bad `ContentDisposition`.
            NotFoundError: 20404 no such recording, or no media (processing, deleted,
                failed, or nothing was recorded).
        """
        return await self._shelf.link(
            partial(self.get, account_sid, sid, room_sid=room_sid),
            _path(sid, room_sid) + "/Media",
            ttl=ttl,
            disposition=disposition,
        )

    async def open_media(
        self,
        account_sid: str,
        file_name: str,
        *,
        expires: str | None,
        disposition: str | None,
        signature: str | None,
    ) -> MediaFile:
        """The media behind a signed URL from `media_url` (no other credentials).

        Raises:
            ForbiddenError: 20403 missing, altered or expired signature.
            NotFoundError: 20404 the media is gone.
        """
        return await self._shelf.serve(
            account_sid,
            file_name,
            self._store.get_recording,
            expires=expires,
            disposition=disposition,
            signature=signature,
        )

    async def delete_media(self, recording: Recording) -> bool:
        """Remove a recording's media wherever it is (local, or its bucket); False if
        there was none or its bucket can no longer be reached (logged)."""
        return await self._shelf.delete(recording)

    # -- internals ------------------------------------------------------------------------

    def _lock(self, room_sid: RoomSid) -> asyncio.Lock:
        lock = self._locks.get(room_sid)
        if lock is None:
            lock = self._locks[room_sid] = asyncio.Lock()
        return lock

    @staticmethod
    def _selected(room: Room, taps: list[_Tap]) -> set[str]:
        return evaluate(room.recording_rules, [t.ref for t in taps])

    def _tap_closed(self, tap: _Tap) -> None:
        """The SFU closed a tap (sync): complete its recording in the background."""
        if self._taps.get(tap.track.sid) is tap:
            del self._taps[tap.track.sid]
        if tap.writer is None:
            return
        self._background(self._stop_locked(tap))

    def _keyframe_requester(self, tap: _Tap) -> Callable[[], None] | None:
        """`request_keyframe` made callable from the writer's thread."""
        request = tap.request_keyframe
        if request is None or tap.codec in _AUDIO_CODECS:
            return None
        loop = asyncio.get_running_loop()

        def ask() -> None:
            if not tap.closed:
                with contextlib.suppress(RuntimeError):  # the loop is gone: nobody to ask
                    loop.call_soon_threadsafe(request)

        return ask

    async def _start(self, tap: _Tap, room: Room) -> None:
        if tap.writer is not None:  # one recording at a time per tap: a second would orphan it
            return
        now = self._clock.now()
        started = (self._clock.monotonic(), unix_ms(now) / 1000)
        recording = Recording.for_track(
            sid=RecordingSid(new_sid("RT")),
            account_sid=room.account_sid,
            room_sid=room.sid,
            participant_sid=tap.participant_sid,
            source_sid=tap.track.sid,
            track_name=tap.track.name,
            codec=tap.codec,
            now=now,
            status_callback=room.status_callback,
            status_callback_method=room.status_callback_method,
        )
        storage: MediaStorage | None = None
        try:
            recording = await self._shelf.planned(recording)
            storage = await self._shelf.writer_storage(recording)
            writer = self._media.open_writer(
                recording,
                payload_types=tap.payload_types,
                on_keyframe_needed=self._keyframe_requester(tap),
                storage=storage,
            )
        except Exception as exc:
            failed = recording.failed(now, f"the recording could not be started: {exc}")
            await self._store.insert_recording(failed)
            log.error(
                "recording not started sid=%s track=%s error=%s", failed.sid, tap.track.sid, exc
            )
            await self._events.emit(
                RecordingFailed(
                    timestamp=self._clock.now(),
                    recording=failed,
                    room=room,
                    participant_identity=tap.identity,
                    failed_operation=FailedOperation.START,
                )
            )
            return
        insert = asyncio.ensure_future(self._store.insert_recording(recording))
        try:
            await asyncio.shield(insert)
        except asyncio.CancelledError:
            # The row may be written anyway: finish it (and the file) in the background.
            self._background(self._abandon(insert, writer, recording, storage))
            raise
        except BaseException:
            await writer.close()
            raise
        tap.writer, tap.recording, tap.started = writer, recording, started
        tap.storage = storage
        log.info(
            "recording started sid=%s room=%s track=%s codec=%s",
            recording.sid,
            room.sid,
            tap.track.sid,
            tap.codec,
        )
        try:
            await self._events.emit(
                RecordingStarted(
                    timestamp=self._clock.now(),
                    recording=recording,
                    room=room,
                    participant_identity=tap.identity,
                )
            )
        finally:
            # Even when the caller is cancelled while the start is announced (its client
            # went away): if the track ended while the recording was being set up
            # (`_tap_closed` saw no writer yet), finish it now, or it stays `processing` for
            # ever (the soak found three). We hold the room's lock, as `_stop_locked` would;
            # `_stop` shields the completion itself.
            if tap.closed and tap.writer is writer:
                await self._stop(tap)
        if tap.closed:
            return
        if tap.request_keyframe is not None and tap.codec not in _AUDIO_CODECS:
            try:
                tap.request_keyframe()
            except Exception:
                log.exception("keyframe request failed track=%s", tap.track.sid)

    async def _stop_locked(self, tap: _Tap) -> None:
        async with self._lock(tap.room_sid):
            await self._stop(tap)

    async def _stop(self, tap: _Tap) -> None:
        writer, recording, storage = tap.writer, tap.recording, tap.storage
        if writer is None or recording is None:
            return
        tap.writer = tap.recording = tap.storage = None
        if self.on_stopped is not None:
            self.on_stopped(tap.room_sid)
        # Finishing is shielded: the caller is often a signaling connection's task, cancelled
        # when its client goes away mid-leave; cancelled here, the file would be closed and
        # its recording left `processing` for ever (the soak found two).
        await asyncio.shield(
            self._background(self._complete(writer, recording, storage, tap.started, tap.identity))
        )

    async def _complete(
        self,
        writer: TrackWriter,
        recording: Recording,
        storage: MediaStorage | None,
        started: tuple[float, float] | None,
        identity: str | None,
    ) -> None:
        try:
            result = await writer.close()
        except Exception as exc:
            result = RecordingResult(
                error=f"the recording could not be finished: {exc}"[:400],
                failed_operation=FailedOperation.COMPLETE,
            )
        # The file is written; its row must say so. A store busy for longer than its own
        # timeout (SQLite's lock, under load) would otherwise leave the recording
        # `processing` until the next restart (the soak found two): try again, a while.
        for delay in (*FINISH_RETRY_DELAYS, None):
            try:
                await self._finish(
                    recording, result, started=started, identity=identity, storage=storage
                )
                return
            except Exception:
                if delay is None:
                    log.exception("recording sid=%s not finished", recording.sid)
                    return
                log.warning(
                    "recording sid=%s not finished yet, trying again in %g s",
                    recording.sid,
                    delay,
                    exc_info=True,
                )
                await asyncio.sleep(delay)

    async def _abandon(
        self,
        insert: asyncio.Future[None],
        writer: TrackWriter,
        recording: Recording,
        storage: MediaStorage | None,
    ) -> None:
        """A start cancelled while its row was being inserted: complete it once inserted."""
        try:
            await insert
        except Exception:
            await writer.close()
            return
        await self._complete(writer, recording, storage, None, None)

    def _background(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """A task that `close` waits for."""
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _finish(
        self,
        recording: Recording,
        result: RecordingResult,
        *,
        started: tuple[float, float] | None,
        identity: str | None,
        storage: MediaStorage | None = None,
    ) -> Recording:
        """Record how a recording ended (completed or failed) and emit the event; an
        encrypted file's envelope comes from the `EncryptingStorage` it was put in."""
        now = self._clock.now()
        if result.error is not None:
            done = recording.failed(
                now, result.error, duration_ms=result.duration_ms, size=result.size
            )
        else:
            offset = None
            if started is not None and result.first_arrival is not None:
                monotonic, wall = started
                offset = round((wall + result.first_arrival - monotonic) * 1000)
            done = recording.completed(
                now, duration_ms=result.duration_ms, size=result.size, offset=offset
            )
            if isinstance(storage, EncryptingStorage):
                done = replace(done, encryption=storage.envelope)
        if not await self._store.update_recording(done, expected=RecordingStatus.PROCESSING):
            log.info("recording sid=%s was finished elsewhere", recording.sid)
            return done
        room = await self._store.get_room(recording.account_sid, recording.room_sid)
        if identity is None:
            participant = await self._store.get_participant(
                recording.room_sid, recording.participant_sid
            )
            identity = participant.identity if participant is not None else None
        if done.status is RecordingStatus.COMPLETED:
            log.info(
                "recording completed sid=%s duration=%s size=%s frames=%d dropped=%d",
                done.sid,
                done.duration,
                done.size,
                result.frames,
                result.dropped,
            )
            await self._events.emit(
                RecordingCompleted(
                    timestamp=self._clock.now(),
                    recording=done,
                    room=room,
                    participant_identity=identity,
                )
            )
        else:
            log.warning("recording failed sid=%s reason=%s", done.sid, done.failure_reason)
            await self._events.emit(
                RecordingFailed(
                    timestamp=self._clock.now(),
                    recording=done,
                    room=room,
                    participant_identity=identity,
                    failed_operation=result.failed_operation or FailedOperation.COMPLETE,
                )
            )
        return done


def _path(sid: str, room_sid: RoomSid | None) -> str:
    return f"/Recordings/{sid}" if room_sid is None else f"/Rooms/{room_sid}/Recordings/{sid}"
