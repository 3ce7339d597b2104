"""Real-time transcriptions: the `Transcriptions` resources and the live pipeline per room.

`TranscriptionService` keeps the REST resources (`/v1/Rooms/{RoomSid}/Transcriptions`), and
while a room's transcriptions are `started` it opens a stream of the `Transcriber` (worker
processes) for every published audio track of the room, fed by the same per-track tap the
SFU feeds recordings from (`TapFanOut` gives each track one tap for both). What the
recogniser hears goes to `deliver` (the live-rooms service: the `extension_transcriptions`
media-signaling channel of every participant that connected with `receiveTranscriptions`),
as the twilio-video SDK's `transcription` event. Starting, stopping and failing are status
callbacks (`transcription-started`, `transcription-stopped`, `transcription-failed`).

Transcript text is never stored and never logged: it goes to the clients that asked for it
and nowhere else (docs/privacy.md).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass, field, replace
from typing import Any

from parlour.domain import errors
from parlour.domain.clock import Clock
from parlour.domain.events import (
    Event,
    ParticipantDisconnected,
    RoomCreated,
    RoomEnded,
    TrackRemoved,
    TranscriptionFailed,
    TranscriptionStarted,
    TranscriptionStopped,
)
from parlour.domain.paging import Page, PageRequest
from parlour.domain.participants import Participant
from parlour.domain.ports import (
    EventSink,
    Recorder,
    Store,
    TrackTap,
    Transcriber,
    TranscriptStream,
)
from parlour.domain.rooms import RECORDABLE_TYPES, Room
from parlour.domain.sids import ParticipantSid, RoomSid, TrackSid
from parlour.domain.tracks import PublishedTrack, TrackKind
from parlour.domain.transcriptions import (
    Transcription,
    TranscriptionStatus,
    Utterance,
    new_ttid,
    normalize_configuration,
)

__all__ = ["TapFanOut", "TranscriptionService"]

log = logging.getLogger(__name__)

#: The channel and message type of twilio-video's `TranscriptionSignaling`.
MESSAGE_TYPE = "extension_transcriptions"

Deliver = Callable[[RoomSid, dict[str, Any]], None]


def sdk_timestamp(when: dt.datetime) -> str:
    """ISO 8601 in UTC with nanoseconds, as the SDK's own test messages have it."""
    when = when.astimezone(dt.UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond:06d}000Z"


class _Tap:
    """One published audio track's tap: packets go to its stream while transcribed."""

    __slots__ = (
        "closed",
        "on_close",
        "participant_sid",
        "payload_types",
        "room_sid",
        "stream",
        "track_sid",
    )

    def __init__(
        self,
        track: PublishedTrack,
        participant_sid: ParticipantSid,
        payload_types: Collection[int],
        on_close: Callable[[_Tap], None],
    ) -> None:
        self.track_sid: TrackSid = track.sid
        self.room_sid: RoomSid = track.room_sid
        self.participant_sid = participant_sid
        self.payload_types = tuple(payload_types)
        self.on_close = on_close
        self.stream: TranscriptStream | None = None
        self.closed = False

    def feed(self, packet: bytes) -> None:
        stream = self.stream
        if stream is not None:
            stream.feed(packet)

    @property
    def active(self) -> bool:
        return self.stream is not None

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.on_close(self)


@dataclass
class _RoomState:
    transcription: Transcription
    room: Room
    sequence: int = 0
    taps: set[TrackSid] = field(default_factory=set)


class TranscriptionService:
    """Transcriptions use cases; an `EventSink` (room and track lifecycles).

    Args:
        events: where transcription events go (logs, status callbacks).
        transcriber: the speech recogniser (worker processes).
        languages: the language codes the engine understands (None: any).
    """

    def __init__(
        self,
        store: Store,
        clock: Clock,
        events: EventSink,
        transcriber: Transcriber,
        *,
        languages: Collection[str] | None = ("en-US",),
    ) -> None:
        self._store = store
        self._clock = clock
        self._events = events
        self._transcriber = transcriber
        self._languages = None if languages is None else {lang.lower() for lang in languages}
        self._taps: dict[TrackSid, _Tap] = {}
        self._rooms: dict[RoomSid, _RoomState] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.deliver: Deliver | None = None

    # -- REST -----------------------------------------------------------------------------

    def _check_configuration(self, configuration: dict[str, Any]) -> None:
        language = configuration.get("languageCode")
        if (
            language is not None
            and self._languages is not None
            and str(language).lower() not in self._languages
        ):
            available = ", ".join(sorted(self._languages))
            raise errors.InvalidParameterError(
                f"Configuration.languageCode {language} is not available on this server"
                f" (available: {available})"
            )

    async def create(self, room: Room, configuration: dict[str, Any]) -> Transcription:
        """Start transcribing the room (202); one started resource per room at a time."""
        self._check_configuration(configuration)
        if room.type not in RECORDABLE_TYPES:
            raise errors.RoomError(
                f"Transcriptions are not available for {room.type.value} rooms",
                code=errors.Code.ROOM_INVALID_PARAMETERS,
            )
        if not room.in_progress:
            raise errors.RoomError(
                "Transcriptions can only be started in an in-progress room",
                code=errors.Code.ROOM_COMPLETED,
            )
        current = await self._started(room)
        if current is not None:
            raise errors.InvalidParameterError(
                f"The room's transcriptions {current.ttid} are already started"
            )
        now = self._clock.now()
        transcription = Transcription(
            ttid=new_ttid(),
            account_sid=room.account_sid,
            room_sid=room.sid,
            status=TranscriptionStatus.STOPPED,
            date_created=now,
            date_updated=now,
            configuration=configuration,
        ).start(now)
        await self._store.insert_transcription(transcription)
        await self._begin(room, transcription)
        return transcription

    async def list(self, room: Room, req: PageRequest) -> Page[Transcription]:
        return await self._store.list_transcriptions(room.account_sid, room.sid, req)

    async def get(self, room: Room, ttid: str) -> Transcription:
        found = await self._store.get_transcription(room.account_sid, room.sid, ttid)
        if found is None:
            raise errors.NotFoundError.for_path(f"/Rooms/{room.sid}/Transcriptions/{ttid}")
        return found

    async def update(
        self, room: Room, ttid: str, status: str | None, configuration: dict[str, Any] | None
    ) -> Transcription:
        """`Status=stopped` stops, `started` (re)starts; `Configuration` applies from the
        next start (Twilio: the settings stay in effect while started)."""
        current = await self.get(room, ttid)
        wanted: TranscriptionStatus | None = None
        if status is not None:
            try:
                wanted = TranscriptionStatus(status)
            except ValueError:
                wanted = None
            if wanted not in (TranscriptionStatus.STARTED, TranscriptionStatus.STOPPED):
                raise errors.InvalidParameterError(
                    f"Status must be started or stopped, not {status!r}"
                )
        if configuration is not None:
            self._check_configuration(configuration)
            if current.started and wanted is not TranscriptionStatus.STOPPED:
                raise errors.InvalidParameterError(
                    "Configuration can only be changed while the transcriptions are stopped"
                )
        now = self._clock.now()
        if wanted is TranscriptionStatus.STARTED and not current.started:
            if not room.in_progress:
                raise errors.RoomError(
                    "Transcriptions can only be started in an in-progress room",
                    code=errors.Code.ROOM_COMPLETED,
                )
            other = await self._started(room)
            if other is not None:
                raise errors.InvalidParameterError(
                    f"The room's transcriptions {other.ttid} are already started"
                )
            updated = current.start(now)
            if configuration is not None:
                updated = _with_configuration(updated, configuration)
            if await self._store.update_transcription(updated, expected=current.status):
                await self._begin(room, updated)
            return await self.get(room, ttid)
        if wanted is TranscriptionStatus.STOPPED and current.started:
            updated = current.stop(now)
            if configuration is not None:
                updated = _with_configuration(updated, configuration)
            if await self._store.update_transcription(updated, expected=current.status):
                await self._end(room.sid, updated)
            return await self.get(room, ttid)
        if configuration is not None:
            updated = _with_configuration(current, configuration)
            await self._store.update_transcription(updated, expected=current.status)
        return await self.get(room, ttid)

    async def _started(self, room: Room) -> Transcription | None:
        for t in await self._store.room_transcriptions(room.sid):
            if t.started:
                return t
        return None

    # -- running -------------------------------------------------------------------------

    async def _begin(self, room: Room, transcription: Transcription) -> None:
        state = _RoomState(transcription=transcription, room=room)
        self._rooms[room.sid] = state
        for tap in list(self._taps.values()):
            if tap.room_sid == room.sid and not tap.closed:
                self._open(state, tap)
        await self._events.emit(
            TranscriptionStarted(
                timestamp=self._clock.now(), room=room, transcription=transcription
            )
        )
        log.info("transcriptions started room=%s ttid=%s", room.sid, transcription.ttid)

    async def _end(self, room_sid: RoomSid, transcription: Transcription) -> None:
        state = self._rooms.pop(room_sid, None)
        for tap in self._taps.values():
            if tap.room_sid == room_sid and tap.stream is not None:
                tap.stream.close()
                tap.stream = None
        room = state.room if state is not None else await self._room(transcription)
        if room is None:
            return
        event_type = (
            TranscriptionFailed
            if transcription.status is TranscriptionStatus.FAILED
            else TranscriptionStopped
        )
        await self._events.emit(
            event_type(timestamp=self._clock.now(), room=room, transcription=transcription)
        )
        log.info(
            "transcriptions %s room=%s ttid=%s",
            transcription.status.value,
            room_sid,
            transcription.ttid,
        )

    async def _room(self, transcription: Transcription) -> Room | None:
        return await self._store.get_room(transcription.account_sid, transcription.room_sid)

    def _open(self, state: _RoomState, tap: _Tap) -> None:
        t = state.transcription
        tap.stream = self._transcriber.open_stream(
            language=t.language,
            partial_results=t.partial_results,
            payload_types=tap.payload_types,
            on_result=lambda u, tap=tap: self._heard(tap, u),  # type: ignore[misc]
            on_error=lambda message, tap=tap: self._failed(tap, message),  # type: ignore[misc]
        )

    def _heard(self, tap: _Tap, utterance: Utterance) -> None:
        state = self._rooms.get(tap.room_sid)
        if state is None or self.deliver is None:
            return
        if not utterance.final and not state.transcription.partial_results:
            return
        state.sequence += 1
        self.deliver(
            tap.room_sid,
            {
                "type": MESSAGE_TYPE,
                "language_code": state.transcription.language,
                "partial_results": not utterance.final,
                "participant": tap.participant_sid,
                "sequence_number": state.sequence,
                "timestamp": sdk_timestamp(self._clock.now()),
                "track": tap.track_sid,
                "transcription": utterance.text,
            },
        )

    def _failed(self, tap: _Tap, message: str) -> None:
        """The engine failed on a stream: the room's transcriptions fail (a callback)."""
        tap.stream = None
        state = self._rooms.get(tap.room_sid)
        if state is None:
            return
        log.error("transcription engine failed room=%s: %s", tap.room_sid, message)
        task = asyncio.get_running_loop().create_task(self._fail(state))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _fail(self, state: _RoomState) -> None:
        current = state.transcription
        failed = current.stop(self._clock.now(), failed=True)
        if await self._store.update_transcription(failed, expected=TranscriptionStatus.STARTED):
            await self._end(current.room_sid, failed)

    # -- the tap (through TapFanOut) ------------------------------------------------------

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
        """An Opus audio track's tap (None for any other track)."""
        if track.kind is not TrackKind.AUDIO or codec.lower() != "opus":
            return None
        existing = self._taps.get(track.sid)
        if existing is not None and not existing.closed:
            return existing
        tap = _Tap(track, participant.sid, payload_types, self._tap_closed)
        self._taps[track.sid] = tap
        state = self._rooms.get(room.sid)
        if state is None:
            # Started through another server process of the same database: join in.
            started = await self._started(room)
            if started is not None:
                state = self._rooms.setdefault(
                    room.sid, _RoomState(transcription=started, room=room)
                )
        if state is not None and not tap.closed:
            self._open(state, tap)
        return tap

    def _tap_closed(self, tap: _Tap) -> None:
        if self._taps.get(tap.track_sid) is tap:
            del self._taps[tap.track_sid]
        if tap.stream is not None:
            tap.stream.close()
            tap.stream = None

    # -- EventSink ------------------------------------------------------------------------

    async def emit(self, event: Event) -> None:
        """Start with the room (TranscribeParticipantsOnConnect), stop with it, close the
        streams of tracks and participants that left. Never raises."""
        try:
            if isinstance(event, RoomCreated) and event.room.transcribe_participants_on_connect:
                await self._start_on_connect(event.room)
            elif isinstance(event, TrackRemoved):
                tap = self._taps.get(event.track.sid)
                if tap is not None:
                    tap.close()
            elif isinstance(event, ParticipantDisconnected):
                for tap in list(self._taps.values()):
                    if tap.participant_sid == event.participant.sid:
                        tap.close()
            elif isinstance(event, RoomEnded):
                await self._room_ended(event.room)
        except Exception:
            log.exception("transcriptions not updated after %s room=%s", event.name, event.room_sid)

    async def _start_on_connect(self, room: Room) -> None:
        configuration = normalize_configuration(
            dict(room.transcriptions_configuration or {}), name="TranscriptionsConfiguration"
        )
        try:
            await self.create(room, configuration)
        except errors.InvalidParameterError as exc:
            # A language this server does not serve: the resource says so (failed), and
            # so does a transcription-failed callback.
            now = self._clock.now()
            failed = Transcription(
                ttid=new_ttid(),
                account_sid=room.account_sid,
                room_sid=room.sid,
                status=TranscriptionStatus.FAILED,
                date_created=now,
                date_updated=now,
                end_time=now,
                duration=0,
                configuration=configuration,
            )
            await self._store.insert_transcription(failed)
            await self._events.emit(
                TranscriptionFailed(timestamp=now, room=room, transcription=failed)
            )
            log.warning("transcriptions failed room=%s: %s", room.sid, exc.message)

    async def _room_ended(self, room: Room) -> None:
        for tap in list(self._taps.values()):
            if tap.room_sid == room.sid:
                tap.close()
        for t in await self._store.room_transcriptions(room.sid):
            if t.started:
                stopped = t.stop(room.end_time or self._clock.now())
                if await self._store.update_transcription(stopped, expected=t.status):
                    state = self._rooms.get(room.sid)
                    if state is not None:
                        state.room = room
                    await self._end(room.sid, stopped)
        self._rooms.pop(room.sid, None)

    async def close(self) -> None:
        for tap in list(self._taps.values()):
            tap.close()
        self._rooms.clear()
        for task in list(self._tasks):
            await task
        await self._transcriber.close()


def _with_configuration(t: Transcription, configuration: dict[str, Any]) -> Transcription:
    return replace(t, configuration=configuration)


class _Tee:
    """Two taps fed with every packet (a recording and a transcription of one track)."""

    __slots__ = ("_taps",)

    def __init__(self, *taps: TrackTap) -> None:
        self._taps = taps

    def feed(self, packet: bytes) -> None:
        for tap in self._taps:
            tap.feed(packet)

    @property
    def active(self) -> bool:
        return any(tap.active for tap in self._taps)

    def close(self) -> None:
        for tap in self._taps:
            tap.close()


class TapFanOut:
    """The `Recorder` the live-rooms service sees: recordings, plus transcriptions' taps on
    the same track (the SFU keeps one tap per track)."""

    def __init__(self, recorder: Recorder, transcriptions: TranscriptionService) -> None:
        self._recorder = recorder
        self._transcriptions = transcriptions

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
        taps = [
            tap
            for tap in (
                await self._recorder.track_published(
                    room,
                    participant,
                    track,
                    codec,
                    payload_types=payload_types,
                    request_keyframe=request_keyframe,
                ),
                await self._transcriptions.track_published(
                    room, participant, track, codec, payload_types=payload_types
                ),
            )
            if tap is not None
        ]
        if not taps:
            return None
        return taps[0] if len(taps) == 1 else _Tee(*taps)

    async def track_unpublished(self, track_sid: TrackSid) -> None:
        await self._recorder.track_unpublished(track_sid)

    async def recording_rules_changed(self, room: Room) -> None:
        await self._recorder.recording_rules_changed(room)

    def is_recording(self, room_sid: RoomSid) -> bool:
        return self._recorder.is_recording(room_sid)
