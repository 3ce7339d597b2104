"""Compositions and CompositionHooks: the REST use cases and the composition queue.

A composition is created `enqueued` (by REST, or by every enabled hook of the account when
a group room ends). It is composed once its room has completed and none of the room's
recordings is still `processing`: this service hears `room-ended` and the recording events
(it is an `EventSink`) and then claims each ready composition with one conditional write
(`enqueued` → `processing`), so that of any number of callers exactly one composes it. The
`Composer` port (a process pool) does the media work; progress, the result and failures
come back as Twilio's `composition-*` events, which the webhook sender delivers.

At start, `recover()` puts every composition a stopped server left `processing` back to
`enqueued` (its output was never stored) and composes every ready one: none is lost, and
none is stored twice (completion is conditional on `processing` too).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from functools import partial
from typing import Any

from parlour.domain import errors
from parlour.domain.clock import Clock
from parlour.domain.compositions import (
    Composition,
    CompositionHook,
    CompositionSpec,
    CompositionStatus,
)
from parlour.domain.events import (
    CompositionAvailable,
    CompositionEnqueued,
    CompositionEvent,
    CompositionFailed,
    CompositionHookFailed,
    CompositionProgress,
    CompositionStarted,
    Event,
    RecordingEvent,
    RoomEnded,
)
from parlour.domain.layouts import LayoutError, Source, plan_composition
from parlour.domain.media_settings import MediaKind
from parlour.domain.paging import Page, PageRequest
from parlour.domain.ports import (
    Composer,
    CompositionFilter,
    CompositionHookFilter,
    CompositionJob,
    EventSink,
    MediaStorage,
    RecordingFilter,
    StatusCallbackPolicy,
    Store,
)
from parlour.domain.recordings import Recording, RecordingStatus, RecordingType
from parlour.domain.rooms import Room, RoomType
from parlour.domain.sids import AccountSid, is_sid, new_sid
from parlour.recording.encryption import EncryptingStorage
from parlour.services.media_storage import MediaStorageResolver, StorageUnavailable
from parlour.services.stored_media import MediaShelf, ServedMedia

__all__ = ["CompositionMedia", "CompositionService"]

log = logging.getLogger(__name__)

_LIST_ALL = 1000
_GROUP_TYPES = (RoomType.GROUP, RoomType.GROUP_SMALL)


#: A composition's media, ready to be served.
CompositionMedia = ServedMedia[Composition]


class CompositionService:
    """Composition and hook use cases; an `EventSink` for room and recording events.

    Args:
        events: where composition events go (logs, webhooks).
        composer: the media pipeline (None: compositions stay `enqueued`).
        storage: where recordings are read and compositions are stored.
        media_url_key: signs the `/Media` download URLs.
        resolver: where each account's compositions go (CompositionSettings: S3,
            encryption); without one, everything is in `storage`.
    """

    def __init__(
        self,
        store: Store,
        clock: Clock,
        events: EventSink,
        storage: MediaStorage,
        composer: Composer | None,
        *,
        media_url_key: bytes,
        callback_policy: StatusCallbackPolicy | None = None,
        node_id: str | None = None,
        node_stale_after: float = 30.0,
        locate: Callable[[Recording], Awaitable[MediaStorage]] | None = None,
        resolver: MediaStorageResolver | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._events = events
        self._storage = storage
        self._composer = composer
        self._shelf: MediaShelf[Composition] = MediaShelf(
            MediaKind.COMPOSITIONS,
            "composition",
            storage=storage,
            resolver=resolver,
            media_url_key=media_url_key,
            clock=clock,
            content_type=lambda c: c.content_type,
        )
        self._policy = callback_policy
        self._node_id = node_id
        self._locate = locate
        self._stale_after = dt.timedelta(seconds=node_stale_after)
        self._tasks: set[asyncio.Task[None]] = set()
        self._running: dict[str, asyncio.Task[None]] = {}
        self._closed = False

    # -- compositions (REST) ----------------------------------------------------------------

    async def create(
        self,
        account_sid: AccountSid,
        room_sid: str,
        spec: CompositionSpec,
        *,
        status_callback: str | None = None,
        status_callback_method: str = "POST",
    ) -> Composition:
        """A new `enqueued` composition of a group room (composed once the room has ended).

        Raises:
            InvalidParameterError: 20001 not a group room, or a completed room with no
                recording to compose.
            NotFoundError: 20404 no such room.
        """
        room = await self._room(account_sid, room_sid)
        if status_callback and self._policy is not None:
            self._policy.check(status_callback)
        if not room.in_progress and not await self._has_media(room):
            raise errors.InvalidParameterError(f"Room {room.sid} has no recordings to compose")
        now = self._clock.now()
        composition = Composition(
            sid=new_sid("CJ"),
            account_sid=account_sid,
            room_sid=room.sid,
            spec=spec,
            status=CompositionStatus.ENQUEUED,
            date_created=now,
            date_updated=now,
            status_callback=status_callback or None,
            status_callback_method=status_callback_method,
        )
        composition = await self._shelf.planned(composition)
        await self._store.insert_composition(composition)
        log.info("composition created sid=%s room=%s", composition.sid, room.sid)
        await self._kick(room)
        return await self._store.get_composition(account_sid, composition.sid) or composition

    async def get(self, account_sid: AccountSid, sid: str) -> Composition:
        found = await self._store.get_composition(account_sid, sid) if is_sid(sid, "CJ") else None
        if found is None:
            raise errors.NotFoundError.for_path(f"/Compositions/{sid}")
        return found

    async def find(
        self, account_sid: AccountSid, flt: CompositionFilter, req: PageRequest
    ) -> Page[Composition]:
        return await self._store.list_compositions(account_sid, flt, req)

    async def delete(self, account_sid: AccountSid, sid: str) -> Composition:
        """Delete the media; the resource stays `deleted` (as on Twilio).

        Raises:
            NotFoundError: 20404 no such composition.
            InvalidParameterError: 20001 it is `failed` (Twilio cannot delete those) or not
                finished yet.
        """
        composition = await self.get(account_sid, sid)
        if composition.status is CompositionStatus.DELETED:
            return composition
        if composition.status is CompositionStatus.FAILED:
            raise errors.InvalidParameterError("A failed composition cannot be deleted")
        if composition.status is not CompositionStatus.COMPLETED:
            raise errors.InvalidParameterError(
                f"The composition is still {composition.status}; delete it once it has completed"
            )
        await self.delete_media(composition)
        deleted = composition.deleted(self._clock.now())
        if not await self._store.update_composition(deleted, expected=CompositionStatus.COMPLETED):
            return await self.delete(account_sid, sid)
        log.info("composition deleted sid=%s", sid)
        return deleted

    async def media_url(
        self,
        account_sid: AccountSid,
        sid: str,
        *,
        ttl: int | None = None,
        disposition: str | None = None,
    ) -> str:
        """The signed path of a completed composition's media, valid `ttl` seconds (for
        media in a bucket, the bucket's presigned URL)."""
        return await self._shelf.link(
            partial(self.get, account_sid, sid),
            f"/Compositions/{sid}/Media",
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
    ) -> CompositionMedia:
        """The media behind a signed URL from `media_url`."""
        return await self._shelf.serve(
            account_sid,
            file_name,
            self._store.get_composition,
            expires=expires,
            disposition=disposition,
            signature=signature,
        )

    async def delete_media(self, composition: Composition) -> bool:
        """Remove a composition's media wherever it is (local, or its bucket); False if
        there was none or its bucket can no longer be reached (logged)."""
        return await self._shelf.delete(composition)

    # -- hooks (REST) -----------------------------------------------------------------------

    async def create_hook(
        self,
        account_sid: AccountSid,
        friendly_name: str,
        spec: CompositionSpec,
        *,
        enabled: bool,
        status_callback: str | None = None,
        status_callback_method: str = "POST",
    ) -> CompositionHook:
        _check_friendly_name(friendly_name)
        if status_callback and self._policy is not None:
            self._policy.check(status_callback)
        hook = CompositionHook(
            sid=new_sid("HK"),
            account_sid=account_sid,
            friendly_name=friendly_name,
            enabled=enabled,
            spec=spec,
            date_created=self._clock.now(),
            status_callback=status_callback or None,
            status_callback_method=status_callback_method,
        )
        if not await self._store.insert_composition_hook(hook):
            raise errors.InvalidParameterError(
                f"A CompositionHook named {friendly_name!r} already exists"
            )
        log.info("composition hook created sid=%s enabled=%s", hook.sid, enabled)
        return hook

    async def get_hook(self, account_sid: AccountSid, sid: str) -> CompositionHook:
        found = (
            await self._store.get_composition_hook(account_sid, sid) if is_sid(sid, "HK") else None
        )
        if found is None:
            raise errors.NotFoundError.for_path(f"/CompositionHooks/{sid}")
        return found

    async def find_hooks(
        self, account_sid: AccountSid, flt: CompositionHookFilter, req: PageRequest
    ) -> Page[CompositionHook]:
        return await self._store.list_composition_hooks(account_sid, flt, req)

    async def update_hook(
        self,
        account_sid: AccountSid,
        sid: str,
        friendly_name: str,
        changes: dict[str, Any],
    ) -> CompositionHook:
        """Replace the hook's name and the given properties (`enabled`, `spec`,
        `status_callback`, `status_callback_method`)."""
        hook = await self.get_hook(account_sid, sid)
        _check_friendly_name(friendly_name)
        if changes.get("status_callback") and self._policy is not None:
            self._policy.check(changes["status_callback"])
        updated = replace(
            hook, friendly_name=friendly_name, date_updated=self._clock.now(), **changes
        )
        if not await self._store.update_composition_hook(updated):
            if await self._store.get_composition_hook(account_sid, sid) is None:
                raise errors.NotFoundError.for_path(f"/CompositionHooks/{sid}")
            raise errors.InvalidParameterError(
                f"A CompositionHook named {friendly_name!r} already exists"
            )
        return updated

    async def delete_hook(self, account_sid: AccountSid, sid: str) -> None:
        if not is_sid(sid, "HK") or not await self._store.delete_composition_hook(account_sid, sid):
            raise errors.NotFoundError.for_path(f"/CompositionHooks/{sid}")

    # -- EventSink: rooms end, recordings finish ----------------------------------------------

    async def emit(self, event: Event) -> None:
        """Hooks fire when a group room ends; compositions start once its recordings are
        finished. Never raises."""
        if isinstance(event, CompositionEvent | CompositionHookFailed) or self._closed:
            return
        try:
            if isinstance(event, RoomEnded):
                await self._run_hooks(event.room)
                await self._kick(event.room)
            elif isinstance(event, RecordingEvent) and event.name != "recording-started":
                room = event.room or await self._store.get_room(event.account_sid, event.room_sid)
                if room is not None and not room.in_progress:
                    await self._kick(room)
        except Exception:
            log.exception("compositions not updated after %s room=%s", event.name, event.room_sid)

    async def _run_hooks(self, room: Room) -> None:
        if room.type not in _GROUP_TYPES:
            return
        page = await self._store.list_composition_hooks(
            room.account_sid, CompositionHookFilter(enabled=True), PageRequest(page_size=_LIST_ALL)
        )
        for hook in reversed(page.items):  # oldest first
            now = self._clock.now()
            if not await self._has_media(room):
                await self._events.emit(
                    CompositionHookFailed(
                        timestamp=now,
                        hook=hook,
                        room=room,
                        error=f"Room {room.sid} has no recordings to compose",
                    )
                )
                continue
            composition = Composition(
                sid=new_sid("CJ"),
                account_sid=room.account_sid,
                room_sid=room.sid,
                spec=hook.spec,
                status=CompositionStatus.ENQUEUED,
                date_created=now,
                date_updated=now,
                status_callback=hook.status_callback,
                status_callback_method=hook.status_callback_method,
                hook_sid=hook.sid,
            )
            composition = await self._shelf.planned(composition)
            await self._store.insert_composition(composition)
            log.info("composition enqueued by hook sid=%s hook=%s", composition.sid, hook.sid)
            await self._events.emit(
                CompositionEnqueued(timestamp=now, composition=composition, hook=hook)
            )

    # -- the queue --------------------------------------------------------------------------

    async def recover(self) -> None:
        """At start (and then now and again): compositions left `processing` by a server
        process that is gone (stopped, or silent for the stale time) go back to `enqueued`;
        every ready one is composed. Those a live process is composing are left to it."""
        processing = await self._store.compositions_with_status(CompositionStatus.PROCESSING)
        alive: set[str] = set()
        if processing:
            now = self._clock.now()
            known = set(await self._store.stale_nodes(now + dt.timedelta(days=1)))
            alive = known - set(await self._store.stale_nodes(now - self._stale_after))
        for composition in processing:
            if composition.sid in self._running:
                continue
            owner = composition.node_id
            if owner is not None and owner != self._node_id and owner in alive:
                continue
            again = composition.requeued(self._clock.now())
            if await self._store.update_composition(again, expected=CompositionStatus.PROCESSING):
                log.info("composition requeued sid=%s", composition.sid)
        rooms: dict[str, Room] = {}
        for composition in await self._store.compositions_with_status(CompositionStatus.ENQUEUED):
            if composition.room_sid in rooms:
                continue
            room = await self._store.get_room(composition.account_sid, composition.room_sid)
            if room is None:
                await self._fail(composition, "the room is gone")
                continue
            rooms[room.sid] = room
            await self._kick(room)

    async def run(self, interval: float) -> None:
        """`recover()` every `interval` seconds, until cancelled: what a server that died
        was composing is taken over."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.recover()
            except Exception:
                log.exception("composition recovery failed")

    async def close(self) -> None:
        """Stop composing (what is in progress is composed again at the next start)."""
        self._closed = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
        if self._composer is not None:
            await self._composer.close()

    async def wait_idle(self) -> None:
        """Until no composition of this process is being composed (tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _kick(self, room: Room) -> None:
        """Start every enqueued composition of the room if the room is ready."""
        if self._composer is None or self._closed:
            return
        current = await self._store.get_room(room.account_sid, room.sid) or room
        if current.in_progress:
            return
        recordings = await self._recordings(current)
        if any(r.status is RecordingStatus.PROCESSING for r in recordings):
            return  # the last recording event kicks again
        page = await self._store.list_compositions(
            current.account_sid,
            CompositionFilter(room_sid=current.sid, status=CompositionStatus.ENQUEUED),
            PageRequest(page_size=_LIST_ALL),
        )
        for composition in reversed(page.items):
            claimed = composition.processing(self._clock.now(), self._node_id)
            if not await self._store.update_composition(
                claimed, expected=CompositionStatus.ENQUEUED
            ):
                continue
            task = asyncio.get_running_loop().create_task(
                self._compose(claimed, recordings), name=f"composition-{claimed.sid}"
            )
            self._tasks.add(task)
            self._running[claimed.sid] = task
            task.add_done_callback(self._tasks.discard)
            task.add_done_callback(partial(_forget, self._running, claimed.sid))

    async def _compose(self, composition: Composition, recordings: list[Recording]) -> None:
        assert self._composer is not None
        hook = await self._hook_of(composition)
        await self._events.emit(
            CompositionStarted(timestamp=self._clock.now(), composition=composition, hook=hook)
        )
        try:
            job = self._job(composition, recordings)
            job = await self._located(job, recordings)
        except (LayoutError, ValueError) as exc:
            await self._fail(composition, str(exc), hook)
            return
        except Exception as exc:  # a bucket that cannot be reached any more
            await self._fail(composition, f"a recording cannot be read: {exc}"[:400], hook)
            return
        try:
            output_storage = await self._shelf.writer_storage(composition)
        except StorageUnavailable as exc:  # CompositionSettings' credential or key deleted
            await self._fail(composition, f"the media cannot be stored: {exc}"[:400], hook)
            return
        job = replace(job, output_storage=output_storage)

        def progress(percent: int, remaining: float) -> None:
            if self._closed:
                return
            task = asyncio.get_running_loop().create_task(
                self._progress(composition, hook, percent, remaining)
            )
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        started = self._clock.monotonic()
        try:
            output = await self._composer.compose(job, progress)
        except asyncio.CancelledError:
            raise  # shutdown: stays processing, requeued at the next start
        except Exception as exc:
            log.warning("composition failed sid=%s error=%s", composition.sid, exc)
            await self._fail(composition, f"the media could not be composed: {exc}"[:400], hook)
            return
        now = self._clock.now()
        done = composition.completed(
            now, duration_ms=output.duration_ms, size=output.size, bitrate=output.bitrate
        )
        if isinstance(output_storage, EncryptingStorage):
            done = replace(done, encryption=output_storage.envelope)
        if not await self._store.update_composition(done, expected=CompositionStatus.PROCESSING):
            # Erased or finished elsewhere meanwhile: this output is not wanted.
            current = await self._store.get_composition(composition.account_sid, composition.sid)
            if current is None or current.status is not CompositionStatus.COMPLETED:
                await (output_storage or self._storage).delete(composition.media_key)
            return
        log.info(
            "composition available sid=%s duration=%s size=%s seconds=%.1f",
            done.sid,
            done.duration,
            done.size,
            self._clock.monotonic() - started,
        )
        await self._events.emit(CompositionAvailable(timestamp=now, composition=done, hook=hook))

    async def _progress(
        self, composition: Composition, hook: CompositionHook | None, percent: int, remaining: float
    ) -> None:
        current = await self._store.get_composition(composition.account_sid, composition.sid)
        if current is None or current.status is not CompositionStatus.PROCESSING:
            return
        updated = current.with_progress(percent, self._clock.now())
        await self._store.update_composition(updated, expected=CompositionStatus.PROCESSING)
        await self._events.emit(
            CompositionProgress(
                timestamp=self._clock.now(),
                composition=updated,
                hook=hook,
                percentage=percent,
                seconds_remaining=max(0, round(remaining)),
            )
        )

    async def _fail(
        self, composition: Composition, reason: str, hook: CompositionHook | None = None
    ) -> None:
        failed = composition.failed(self._clock.now(), reason)
        if await self._store.update_composition(failed, expected=composition.status):
            await self._events.emit(
                CompositionFailed(
                    timestamp=self._clock.now(), composition=failed, hook=hook, error=reason
                )
            )

    async def _located(self, job: CompositionJob, recordings: list[Recording]) -> CompositionJob:
        """The job with the storage of each recording kept outside the local storage."""
        if self._locate is None:
            return job
        storages: dict[str, MediaStorage] = {}
        for r in recordings:
            if r.sid in job.media_keys and r.media_credentials_sid is not None:
                storages[r.sid] = await self._locate(r)
        return replace(job, storages=storages)

    def _job(self, composition: Composition, recordings: list[Recording]) -> CompositionJob:
        usable = [
            r
            for r in recordings
            if r.has_media and r.type is not RecordingType.DATA and not r.encrypted
        ]
        if not usable:
            deleted = any(r.status is RecordingStatus.DELETED for r in recordings)
            encrypted = any(r.encrypted and r.has_media for r in recordings)
            raise ValueError(
                "the room's recordings were deleted"
                if deleted
                else "the room's recordings are encrypted for the account's public key: "
                "they cannot be composed"
                if encrypted
                else "the room has no recordings"
            )
        sources = [_source(r) for r in usable]
        spec = composition.spec
        plan = plan_composition(
            sources,
            layout=spec.layout(),
            audio=spec.audio(),
            resolution=spec.size,
            trim=spec.trim,
        )
        if plan.duration_ms <= 0:
            raise ValueError("no recording of the room matches the composition's sources")
        used = {p.source.recording_sid for p in plan.placements} | {
            s.recording_sid for s in plan.audio
        }
        return CompositionJob(
            composition_sid=composition.sid,
            plan=plan,
            media_keys={r.sid: r.media_key for r in usable if r.sid in used},
            format=spec.format,
            output_key=composition.media_key,
        )

    # -- helpers ----------------------------------------------------------------------------

    async def _room(self, account_sid: AccountSid, room_sid: str) -> Room:
        if not is_sid(room_sid, "RM"):
            raise errors.InvalidParameterError(f"RoomSid is invalid: {room_sid}")
        room = await self._store.get_room(account_sid, room_sid)
        if room is None:
            raise errors.NotFoundError.for_path(f"/Rooms/{room_sid}")
        if room.type not in _GROUP_TYPES:
            raise errors.InvalidParameterError(
                f"Room {room.sid} is not a group room: only group rooms are recorded"
            )
        return room

    async def _recordings(self, room: Room) -> list[Recording]:
        page = await self._store.list_recordings(
            room.account_sid, RecordingFilter(room_sid=room.sid), PageRequest(page_size=_LIST_ALL)
        )
        return list(page.items)

    async def _has_media(self, room: Room) -> bool:
        return any(
            r.has_media or r.status is RecordingStatus.PROCESSING
            for r in await self._recordings(room)
        )

    async def _hook_of(self, composition: Composition) -> CompositionHook | None:
        if composition.hook_sid is None:
            return None
        return await self._store.get_composition_hook(composition.account_sid, composition.hook_sid)


def _forget(running: dict[str, asyncio.Task[None]], sid: str, _task: object) -> None:
    running.pop(sid, None)


def _source(r: Recording) -> Source:
    return Source(
        recording_sid=r.sid,
        track_sid=r.source_sid,
        participant_sid=r.participant_sid,
        track_name=r.track_name,
        kind=r.type.value,
        start=r.offset,
        end=r.offset + max(r.duration, 0) * 1000,
    )


def _check_friendly_name(name: str) -> None:
    if not name or len(name) > 100:
        raise errors.InvalidParameterError("FriendlyName must be 1 to 100 characters")
