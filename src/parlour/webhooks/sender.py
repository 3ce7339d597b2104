"""The webhook sender: domain events in, signed status callbacks out, in order, reliably.

::

    emit(event) ──► store: pending CallbackDelivery (SequenceNumber n) ──► wake room queue
                                                                             │
    room queue (one task per room with pending callbacks, oldest first) ◄───┘
       └─ attempt: resolve + check target → signed POST/GET (timeout) → record the attempt
            2xx            delivered, next callback
            5xx, 429,      retry the same callback after a backoff (1, 2, 4 … s, capped),
            network error  later ones of the room wait; after max attempts: failed, next
            other status,  failed, next
            refused target

`status_callback` reads Twilio's parameters from the typed event (the room as of the event,
its participant, track, durations, recording) once, when the callback is recorded; a send
only adds `SequenceNumber` and puts them in Twilio's order.

`emit` never waits for the network: it writes one row and returns, so signaling and media
are never held up by a slow receiver. Rows outlive the process: `start()` picks up every
pending callback, so callbacks pending at shutdown are delivered after a restart. With
several nodes (`stale_after`), each row names the node delivering it: a node starting, and
every `stale_after` seconds after, takes over only the pending callbacks of nodes that are
gone, each in one conditional update, so no callback is sent by two live nodes. Delivery
is at least once (a callback in flight at shutdown is sent again); receivers can
de-duplicate on `RoomSid` + `SequenceNumber`, or on `I-Twilio-Idempotency-Token`.

Logs carry SIDs, event names and HTTP status codes only: never URLs, identities or tokens.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import socket
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

import httpx

from parlour.domain.clock import Clock
from parlour.domain.compositions import CompositionHook
from parlour.domain.events import (
    CallbackDelivery,
    CompositionAvailable,
    CompositionEvent,
    CompositionFailed,
    CompositionHookFailed,
    CompositionProgress,
    DeliveryStatus,
    Event,
    ParticipantDisconnected,
    ParticipantEvent,
    RecordingCompleted,
    RecordingEvent,
    RecordingFailed,
    RoomEnded,
    RoomEvent,
    TrackEvent,
    TranscriptionEvent,
)
from parlour.domain.ports import Store
from parlour.domain.recordings import RecordingStatus
from parlour.domain.rooms import Room
from parlour.domain.sids import AccountSid
from parlour.protocol import webhooks as wire
from parlour.webhooks.targets import TargetPolicy, TargetRefused

__all__ = [
    "WebhookSender",
    "WebhookSettings",
    "composition_callback",
    "retry_delay",
    "status_callback",
]

log = logging.getLogger(__name__)

#: The account's auth token, which signs its callbacks (`AccountService.auth_token`).
AuthTokens = Callable[[AccountSid], str]
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class WebhookSettings:
    """Delivery timings and limits (every one comes from configuration).

    Args:
        timeout: seconds for one attempt: resolving, connecting, sending, the response head.
        max_attempts: attempts per callback before it is marked failed.
        retry_initial: seconds before the first retry; each retry doubles it.
        retry_max: the longest wait between two attempts.
    """

    timeout: float = 10.0
    max_attempts: int = 6
    retry_initial: float = 1.0
    retry_max: float = 60.0
    user_agent: str = "Parlour"

    def __post_init__(self) -> None:
        if self.timeout <= 0 or self.max_attempts < 1 or self.retry_initial < 0:
            raise ValueError("webhook timeout and max attempts must be positive")


def retry_delay(
    settings: WebhookSettings, attempts: int, retry_after: float | None = None
) -> float:
    """Seconds to wait after the `attempts`-th failed attempt (exponential, capped).

    A `Retry-After` from a 429/503 lengthens the wait, up to `retry_max`.
    """
    delay: float = min(settings.retry_initial * 2.0 ** max(0, attempts - 1), settings.retry_max)
    if retry_after is not None:
        delay = max(delay, min(retry_after, settings.retry_max))
    return delay


def status_callback(
    event: RoomEvent | RecordingEvent, room: Room, *, sequence_number: int = 0
) -> wire.RoomStatusCallback | wire.RecordingStatusCallback:
    """The status callback of an event: Twilio's parameters, read from its typed fields.

    Args:
        room: the room the callback describes (name, type, status as of the event):
            `event.room`, or the stored room for a recording event without one.
        sequence_number: the callback's place among its room's (the store numbers them).
    """
    if isinstance(event, RecordingEvent):
        return _recording_callback(event, room, sequence_number)
    participant = event.participant if isinstance(event, ParticipantEvent) else None
    track = event.track if isinstance(event, TrackEvent) else None
    return wire.RoomStatusCallback(
        **_room_params(event, room, sequence_number),
        participant_sid=participant.sid if participant else None,
        participant_status=participant.status.value if participant else None,
        participant_identity=participant.identity if participant else None,
        participant_duration=event.duration if isinstance(event, ParticipantDisconnected) else None,
        room_duration=event.duration if isinstance(event, RoomEnded) else None,
        track_sid=track.sid if track else None,
        track_kind=track.kind.value if track else None,
        track_name=track.name if track else None,
        transcription_ttid=(
            event.transcription.ttid if isinstance(event, TranscriptionEvent) else None
        ),
        transcription_status=(
            event.transcription.status.value if isinstance(event, TranscriptionEvent) else None
        ),
    )


def _room_params(
    event: RoomEvent | RecordingEvent, room: Room, sequence_number: int
) -> dict[str, Any]:
    """The parameters every status callback has: the account, the room, the event."""
    return {
        "account_sid": event.account_sid,
        "room_sid": event.room_sid,
        "room_name": room.unique_name,
        "room_status": room.status.value,
        "room_type": room.type.value,
        "event": event.name,
        "timestamp": wire.format_timestamp(event.timestamp),
        "sequence_number": sequence_number,
    }


def _recording_callback(
    event: RecordingEvent, room: Room, sequence_number: int
) -> wire.RecordingStatusCallback:
    """rest-api.md §8.2: relative URIs; media, duration and size once completed only."""
    recording = event.recording
    uri = f"/v1/Recordings/{recording.sid}"
    completed = (
        isinstance(event, RecordingCompleted) and recording.status is RecordingStatus.COMPLETED
    )
    return wire.RecordingStatusCallback(
        **_room_params(event, room, sequence_number),
        recording_sid=recording.sid,
        participant_sid=recording.participant_sid,
        participant_identity=event.participant_identity or "",
        source_sid=recording.source_sid,
        track_name=recording.track_name,
        recording_uri=uri,
        container=recording.container_format.value,
        codec=recording.codec.value,
        type=recording.type.value,
        offset=recording.offset,
        media_uri=f"{uri}/Media" if completed else None,
        duration=recording.duration if completed else None,
        size=recording.size if completed else None,
        media_external_location=(recording.media_external_location or None) if completed else None,
        failed_operation=(
            event.failed_operation.value if isinstance(event, RecordingFailed) else None
        ),
    )


def composition_callback(
    event: CompositionEvent | CompositionHookFailed,
) -> tuple[str | None, str, list[tuple[str, str]]]:
    """(URL, method, parameters) of a composition event (rest-api.md §8.3): to the
    composition's StatusCallback (a hook's compositions carry the hook's), or the hook's for
    `composition-hook-failed`. No `SequenceNumber`: these are not room callbacks."""
    params: list[tuple[str, str]] = [
        ("AccountSid", event.account_sid),
        ("RoomSid", event.room_sid),
        ("StatusCallbackEvent", event.name),
        ("Timestamp", wire.format_timestamp(event.timestamp)),
    ]
    hook: CompositionHook | None = event.hook
    if hook is not None and event.name in ("composition-enqueued", "composition-hook-failed"):
        params += [
            ("HookSid", hook.sid),
            ("HookUri", f"/v1/CompositionHooks/{hook.sid}"),
            ("HookFriendlyName", hook.friendly_name),
        ]
    if isinstance(event, CompositionHookFailed):
        assert hook is not None
        params += [("FailedOperation", "CompositionHook"), ("ErrorMessage", event.error)]
        return hook.status_callback, hook.status_callback_method, params
    composition = event.composition
    uri = f"/v1/Compositions/{composition.sid}"
    params += [("CompositionSid", composition.sid), ("CompositionUri", uri)]
    if isinstance(event, CompositionAvailable):
        params += [
            ("MediaUri", f"{uri}/Media"),
            ("Duration", str(composition.duration)),
            ("Size", str(composition.size)),
        ]
        if composition.media_external_location:
            params.append(("MediaExternalLocation", composition.media_external_location))
    elif isinstance(event, CompositionProgress):
        params += [
            ("PercentageDone", str(event.percentage)),
            ("SecondsRemaining", str(event.seconds_remaining)),
        ]
    elif isinstance(event, CompositionFailed):
        params += [("FailedOperation", "CompositionMediaProcessing"), ("ErrorMessage", event.error)]
    return composition.status_callback, composition.status_callback_method, params


def _request_params(delivery: CallbackDelivery) -> list[tuple[str, str]]:
    """The stored parameters with `SequenceNumber`, in Twilio's order."""
    if delivery.event.startswith("composition-"):
        return list(delivery.params.items())
    params = dict(delivery.params)
    params["SequenceNumber"] = str(delivery.sequence_number)
    if delivery.event in wire.RECORDING_EVENTS:
        return wire.RecordingStatusCallback.parse(params).to_params()
    return wire.RoomStatusCallback.parse(params).to_params()


@dataclass
class _Queue:
    """The pending callbacks of one room, oldest first, and the task delivering them."""

    items: deque[CallbackDelivery] = field(default_factory=deque)
    ids: set[int] = field(default_factory=set)
    task: asyncio.Task[None] | None = None


class WebhookSender:
    """The `EventSink` that turns room and recording events into status callbacks.

    Args:
        auth_token: the signing key of an account (its auth token).
        policy: which targets may be requested.
        transport: an httpx transport (tests inject a mock one).
        sleep: how to wait (tests inject one that moves a fake clock).
    """

    def __init__(
        self,
        store: Store,
        clock: Clock,
        auth_token: AuthTokens,
        policy: TargetPolicy,
        settings: WebhookSettings | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = asyncio.sleep,
        node_id: str | None = None,
        stale_after: float | None = None,
    ) -> None:
        self._store = store
        self.node_id = node_id
        self.stale_after = stale_after
        self._clock = clock
        self._auth_token = auth_token
        self._policy = policy
        self.settings = settings or WebhookSettings()
        self._transport = transport
        self._sleep = sleep
        self._client: httpx.AsyncClient | None = None
        self._queues: dict[str, _Queue] = {}
        self._emitting: dict[str, tuple[asyncio.Lock, int]] = {}
        self._started = False
        self._closed = False
        # Queue tasks wait for this, so that callbacks resumed from the store are in order
        # before anything is sent.
        self._ready = asyncio.Event()

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the HTTP client and resume every callback left pending in the store."""
        if self._started or self._closed:
            return
        self._client = httpx.AsyncClient(
            transport=self._transport,
            timeout=self.settings.timeout,
            follow_redirects=False,
            trust_env=False,
        )
        self._started = True
        pending = await self._store.pending_callback_deliveries()
        if self.node_id is not None:
            # Its own (emitted before start, e.g. by recordings recovered at start-up), and
            # those it takes over: all others' for a single server, gone nodes' in a cluster.
            pending = [d for d in pending if d.node_id == self.node_id]
            pending += await self._store.adopt_callback_deliveries(
                self.node_id, alive_since=self._alive_since()
            )
        for delivery in pending:
            self._enqueue(delivery)
        self._ready.set()
        if pending:
            log.info("webhooks resumed pending=%d rooms=%d", len(pending), len(self._queues))

    def _alive_since(self) -> dt.datetime | None:
        """Nodes not beating since then are gone (None: a single node takes over all)."""
        if self.stale_after is None:
            return None
        return self._clock.now() - dt.timedelta(seconds=self.stale_after)

    async def adopt_orphans(self) -> int:
        """Several nodes: take over the pending callbacks of gone nodes and queue them.
        Returns how many were taken here."""
        if not self._started or self._closed or self.node_id is None or self.stale_after is None:
            return 0
        taken = await self._store.adopt_callback_deliveries(
            self.node_id, alive_since=self._alive_since()
        )
        for delivery in taken:
            self._enqueue(delivery)
        if taken:
            log.info("webhooks taken over from gone nodes pending=%d", len(taken))
        return len(taken)

    async def run_adoption(self) -> None:
        """`adopt_orphans` every `stale_after` seconds until cancelled; errors are logged."""
        while True:
            await self._sleep(self.stale_after or 30.0)
            try:
                await self.adopt_orphans()
            except Exception:
                log.exception("webhooks: taking over gone nodes' callbacks failed")

    async def close(self) -> None:
        """Stop delivering (pending callbacks stay in the store) and close the client.

        Safe to call twice.
        """
        self._closed = True
        tasks = [q.task for q in self._queues.values() if q.task is not None]
        self._queues.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    @property
    def busy(self) -> bool:
        """Whether any room has callbacks waiting (for tests and shutdown logs)."""
        return bool(self._queues)

    @property
    def pending(self) -> int:
        """Callbacks waiting for delivery in this process (the queue depth, for metrics)."""
        return sum(len(queue.items) for queue in self._queues.values())

    # -- EventSink ------------------------------------------------------------------------

    async def emit(self, event: Event) -> None:
        """Record a callback for the event if its room has a StatusCallback, and wake its queue.

        Never raises: a failure to record is logged (with SIDs) and the event is dropped.
        """
        if isinstance(event, CompositionEvent | CompositionHookFailed):
            await self._emit_composition(event)
            return
        if not isinstance(event, RoomEvent | RecordingEvent):
            return
        try:
            async with self._emit_lock(event.room_sid):
                room = event.room
                if room is None:  # a recording event after its room was forgotten
                    room = await self._store.get_room(event.account_sid, event.room_sid)
                if room is None or not room.status_callback:
                    return
                params = status_callback(event, room).to_params()
                await self._record(
                    event,
                    event.room_sid,
                    room.status_callback,
                    room.status_callback_method,
                    # The store assigns SequenceNumber; the rest is final.
                    {k: v for k, v in params if k != "SequenceNumber"},
                )
        except Exception as exc:
            _log_not_recorded(event, exc)

    async def _emit_composition(self, event: CompositionEvent | CompositionHookFailed) -> None:
        """Record a composition callback (its own queue, by composition or hook SID)."""
        try:
            url, method, params = composition_callback(event)
            if not url:
                return
            key = (
                event.hook.sid
                if isinstance(event, CompositionHookFailed)
                else event.composition.sid
            )
            async with self._emit_lock(key):
                await self._record(event, key, url, method, dict(params))
        except Exception as exc:
            _log_not_recorded(event, exc)

    async def _record(
        self,
        event: RoomEvent | RecordingEvent | CompositionEvent | CompositionHookFailed,
        resource_sid: str,
        url: str,
        method: str,
        params: dict[str, str],
    ) -> None:
        """Store the delivery of one callback (under its emit lock) and queue it."""
        now = self._clock.now()
        delivery = await self._store.insert_callback_delivery(
            CallbackDelivery(
                account_sid=event.account_sid,
                resource_sid=resource_sid,
                event=event.name,
                url=url,
                method=method,
                params=params,
                date_created=now,
                next_attempt_at=now,
                node_id=self.node_id,
            )
        )
        if self._started and not self._closed:
            self._enqueue(delivery)

    @contextlib.asynccontextmanager
    async def _emit_lock(self, key: str) -> AsyncIterator[None]:
        """Serialises the emits of one room, so numbering and queue order agree."""
        lock, users = self._emitting.get(key, (asyncio.Lock(), 0))
        self._emitting[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._emitting[key]
            if users == 1:
                del self._emitting[key]
            else:
                self._emitting[key] = (lock, users - 1)

    # -- queues ---------------------------------------------------------------------------

    def _enqueue(self, delivery: CallbackDelivery) -> None:
        assert delivery.id is not None
        key = delivery.resource_sid
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = _Queue()
        if delivery.id in queue.ids:
            return
        # In sequence order: callbacks emitted while `start()` loads the older ones may be
        # queued first (nothing is sent before `start()` is done).
        position = len(queue.items)
        while position > 0 and _seq(queue.items[position - 1]) > _seq(delivery):
            position -= 1
        queue.items.insert(position, delivery)
        queue.ids.add(delivery.id)
        if queue.task is None:
            queue.task = asyncio.get_running_loop().create_task(
                self._run(key, queue), name=f"webhooks-{key}"
            )

    async def _run(self, key: str, queue: _Queue) -> None:
        """Deliver one room's callbacks in order; ends when none are left."""
        await self._ready.wait()
        try:
            while queue.items:
                head = queue.items[0]
                wait = (head.next_attempt_at - self._clock.now()).total_seconds()
                if wait > 0:
                    await self._sleep(wait)
                try:
                    done = await self._attempt(head)
                except Exception as exc:
                    # The store failed to record the attempt: keep the callback at the head
                    # (it stays pending in the store) and try again later.
                    log.error("webhook not recorded room=%s error=%s", key, type(exc).__name__)
                    await self._sleep(max(self.settings.retry_initial, 0.1))
                    continue
                # By id, not position: a gone node's older callbacks taken over meanwhile
                # (`adopt_orphans`) may have been queued in front of this one.
                index = next(i for i, d in enumerate(queue.items) if d.id == head.id)
                if done.status is DeliveryStatus.PENDING:
                    queue.items[index] = done
                else:
                    del queue.items[index]
                    assert done.id is not None
                    queue.ids.discard(done.id)
        finally:
            if self._queues.get(key) is queue:
                del self._queues[key]

    # -- one attempt ----------------------------------------------------------------------

    async def _attempt(self, delivery: CallbackDelivery) -> CallbackDelivery:
        """Send once and record the outcome; returns the updated (stored) delivery."""
        attempts = delivery.attempts + 1
        status: int | None = None
        retry_after: float | None = None
        error: str | None
        try:
            async with asyncio.timeout(self.settings.timeout):
                status, retry_after = await self._send(delivery)
        except TargetRefused as exc:
            outcome, error = DeliveryStatus.FAILED, f"refused target: {exc.reason}"
        except (httpx.TransportError, OSError, TimeoutError) as exc:
            outcome, error = DeliveryStatus.PENDING, _describe(exc)
        except Exception as exc:  # a callback that cannot be built or sent at all
            outcome, error = DeliveryStatus.FAILED, f"internal error: {type(exc).__name__}"
        else:
            if 200 <= status < 300:
                outcome, error = DeliveryStatus.DELIVERED, None
            elif status == 429 or status >= 500:
                outcome, error = DeliveryStatus.PENDING, f"HTTP {status}"
            else:
                outcome, error = DeliveryStatus.FAILED, f"HTTP {status}"
        now = self._clock.now()
        next_at = delivery.next_attempt_at
        if outcome is DeliveryStatus.PENDING:
            if attempts >= self.settings.max_attempts:
                outcome = DeliveryStatus.FAILED
            else:
                delay = retry_delay(self.settings, attempts, retry_after)
                next_at = now + dt.timedelta(seconds=delay)
        done = replace(
            delivery,
            status=outcome,
            attempts=attempts,
            last_status=status,
            last_error=error,
            next_attempt_at=next_at,
            date_updated=now,
        )
        await self._store.update_callback_delivery(done)
        log.info(
            "webhook %s event=%s room=%s seq=%s attempt=%d status=%s",
            outcome.value if outcome is not DeliveryStatus.PENDING else "retrying",
            delivery.event,
            delivery.resource_sid,
            delivery.sequence_number,
            attempts,
            status if status is not None else (error or "-"),
        )
        return done

    async def _send(self, delivery: CallbackDelivery) -> tuple[int, float | None]:
        """One HTTP request to the checked address; returns (status, Retry-After seconds)."""
        client = self._client
        if client is None:
            raise OSError("webhook sender is closed")
        target = await self._policy.resolve(delivery.url)
        request = wire.prepare_request(
            delivery.method,
            delivery.url,
            _request_params(delivery),
            self._auth_token(AccountSid(delivery.account_sid)),
            idempotency_token=f"{delivery.resource_sid}-{delivery.sequence_number}",
            user_agent=self.settings.user_agent,
        )
        built = client.build_request(
            request.method, request.url, headers=dict(request.headers), content=request.body
        )
        # Connect to the address that was checked; Host (already set) and SNI keep the name.
        built.url = built.url.copy_with(host=target.address)
        if target.scheme == "https":
            built.extensions = {**built.extensions, "sni_hostname": target.host}
        response = await client.send(built, stream=True)
        await response.aclose()  # the body is of no interest, and may be large
        return response.status_code, _retry_after(response)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


def _seq(delivery: CallbackDelivery) -> int:
    return delivery.sequence_number if delivery.sequence_number is not None else -1


def _describe(exc: BaseException) -> str:
    """An error for the delivery record: its kind only (messages may contain the URL)."""
    if isinstance(exc, TimeoutError | httpx.TimeoutException):
        return "timeout"
    if isinstance(exc, socket.gaierror):
        return "name resolution failed"
    if isinstance(exc, httpx.ConnectError | ConnectionError):
        return "connection failed"
    return f"network error: {type(exc).__name__}"


def _log_not_recorded(
    event: RoomEvent | RecordingEvent | CompositionEvent | CompositionHookFailed,
    exc: Exception,
) -> None:
    log.error(
        "webhook not recorded event=%s room=%s error=%s",
        event.name,
        event.room_sid,
        type(exc).__name__,
    )
