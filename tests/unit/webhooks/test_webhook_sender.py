"""The webhook sender against an in-memory HTTP transport, a fake clock and a real SQLite store:
ordering per room, retry policy, final failures, refused targets, and resuming from the store."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from urllib.parse import parse_qsl

import httpx
import pytest
from twilio.request_validator import RequestValidator

from parlour.config import Config
from parlour.domain.accounts import Account
from parlour.domain.events import (
    DeliveryStatus,
    Event,
    ParticipantConnected,
    RecordingStarted,
    RoomCreated,
    RoomEnded,
    TrackAdded,
)
from parlour.domain.participants import Participant, ParticipantStatus
from parlour.domain.recordings import Recording, RecordingCodec
from parlour.domain.rooms import Room, RoomSpec, validate_room_spec
from parlour.domain.sids import AccountSid, ParticipantSid, RecordingSid, RoomSid, TrackSid, new_sid
from parlour.domain.tracks import PublishedTrack, TrackKind
from parlour.store.schema import callback_deliveries
from parlour.store.sql import SqlStore
from parlour.testing import FakeClock
from parlour.webhooks import TargetPolicy, WebhookSender, WebhookSettings
from parlour.webhooks.sender import retry_delay

TOKEN = "token-" + "7" * 26
PUBLIC = "93.184.216.34"
SETTINGS = WebhookSettings(timeout=0.5, max_attempts=4, retry_initial=1.0, retry_max=3.0)

Handler = Callable[[httpx.Request], httpx.Response]


async def resolve(host: str, port: int) -> list[str]:
    table = {"hooks.example.com": [PUBLIC], "internal.example.com": ["10.0.0.8"]}
    if host not in table:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    return table[host]


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqlStore]:
    s = await SqlStore.open(Config(data_dir=tmp_path).db_url)
    yield s
    await s.close()


class Harness:
    def __init__(self, store: SqlStore) -> None:
        self.store = store
        self.clock = FakeClock()
        self.requests: list[httpx.Request] = []
        self.sleeps: list[float] = []
        self.respond: Callable[[httpx.Request], httpx.Response | None] = lambda r: None
        self.account = AccountSid(new_sid("AC"))

    async def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.respond(request) or httpx.Response(204)

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 3))
        self.clock.advance(seconds)
        await asyncio.sleep(0)

    async def deliver_created(self, room: Room, settings: WebhookSettings = SETTINGS) -> None:
        """A new sender delivers the room's `room-created` until it settles, then closes."""
        sender = self.sender(settings)
        await sender.start()
        await sender.emit(created(room, self.clock))
        await settle(sender)
        await sender.close()

    def sender(self, settings: WebhookSettings = SETTINGS) -> WebhookSender:
        return WebhookSender(
            self.store,
            self.clock,
            lambda sid: TOKEN,
            TargetPolicy(allow_private=False, resolver=resolve),
            settings,
            transport=httpx.MockTransport(self.handler),
            sleep=self.sleep,
        )

    async def room(self, callback: str | None, method: str = "POST") -> Room:
        if await self.store.get_account(self.account) is None:
            now = self.clock.now()
            await self.store.insert_account(Account(self.account, "t", "h" * 64, now, now))
        room = validate_room_spec(
            RoomSpec(status_callback=callback, status_callback_method=method),
            sid=RoomSid(new_sid("RM")),
            account_sid=self.account,
            now=self.clock.now(),
        )
        await self.store.insert_room(room)
        return room

    def seqs(self) -> list[tuple[str, str]]:
        out = []
        for request in self.requests:
            params = dict(parse_qsl(request.content.decode() or request.url.query.decode()))
            out.append((params["StatusCallbackEvent"], params["SequenceNumber"]))
        return out


@pytest.fixture
def h(store: SqlStore) -> Harness:
    return Harness(store)


async def settle(sender: WebhookSender) -> None:
    for _ in range(2000):
        if not sender.busy:
            return
        await asyncio.sleep(0.001)
    raise AssertionError("webhook queues did not drain")


def alice(room: Room) -> Participant:
    return Participant(
        sid=ParticipantSid(new_sid("PA")),
        room_sid=room.sid,
        account_sid=room.account_sid,
        identity="alice smith",
        status=ParticipantStatus.CONNECTED,
        date_created=room.date_created,
        date_updated=room.date_created,
    )


def created(room: Room, clock: FakeClock) -> Event:
    return RoomCreated(timestamp=clock.now(), room=room)


def room_ended(room: Room, clock: FakeClock, duration: int = 1) -> Event:
    """`room-ended` of a room that lasted `duration` seconds."""
    completed = room.completed(room.date_created + dt.timedelta(seconds=duration))
    return RoomEnded(timestamp=clock.now(), room=completed)


def recording(room: Room, clock: FakeClock) -> Recording:
    return Recording.for_track(
        sid=RecordingSid(new_sid("RT")),
        account_sid=room.account_sid,
        room_sid=room.sid,
        participant_sid=ParticipantSid(new_sid("PA")),
        source_sid=TrackSid(new_sid("MT")),
        track_name="mic",
        codec=RecordingCodec.OPUS,
        now=clock.now(),
    )


async def test_delivers_signed_callbacks_in_order_to_the_checked_address(h: Harness) -> None:
    room = await h.room("https://hooks.example.com/cb?tenant=1")
    sender = h.sender()
    await sender.start()
    p = alice(room)
    track = PublishedTrack(
        sid=TrackSid(new_sid("MT")),
        room_sid=room.sid,
        participant_sid=p.sid,
        name="mic",
        kind=TrackKind.AUDIO,
        enabled=True,
        date_created=h.clock.now(),
        date_updated=h.clock.now(),
    )
    await sender.emit(created(room, h.clock))
    await sender.emit(ParticipantConnected(timestamp=h.clock.now(), room=room, participant=p))
    await sender.emit(TrackAdded(timestamp=h.clock.now(), room=room, participant=p, track=track))
    await settle(sender)
    await sender.close()
    await sender.close()  # idempotent

    assert h.seqs() == [("room-created", "0"), ("participant-connected", "1"), ("track-added", "2")]
    validator = RequestValidator(TOKEN)
    for request in h.requests:
        assert request.url.host == PUBLIC  # connected to the address that was checked…
        assert request.headers["Host"] == "hooks.example.com"  # …for the name
        assert request.extensions["sni_hostname"] == "hooks.example.com"
        assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
        params = dict(parse_qsl(request.content.decode()))
        url = "https://hooks.example.com/cb?tenant=1"
        assert validator.validate(url, params, request.headers["X-Twilio-Signature"])
        assert request.headers["I-Twilio-Idempotency-Token"] == (
            f"{room.sid}-{params['SequenceNumber']}"
        )
    added = dict(parse_qsl(h.requests[2].content.decode()))
    assert added == {
        "AccountSid": room.account_sid,
        "RoomName": room.unique_name,
        "RoomSid": room.sid,
        "RoomStatus": "in-progress",
        "RoomType": "group",
        "StatusCallbackEvent": "track-added",
        "Timestamp": "2024-01-02T03:04:05.000Z",
        "SequenceNumber": "2",
        "ParticipantSid": p.sid,
        "ParticipantStatus": "connected",
        "ParticipantIdentity": "alice smith",
        "TrackSid": track.sid,
        "TrackKind": "audio",
        "TrackName": "mic",
    }
    records = await h.store.list_callback_deliveries(room.sid)
    assert [(r.sequence_number, r.status, r.attempts, r.last_status) for r in records] == [
        (0, DeliveryStatus.DELIVERED, 1, 204),
        (1, DeliveryStatus.DELIVERED, 1, 204),
        (2, DeliveryStatus.DELIVERED, 1, 204),
    ]


async def test_get_puts_the_parameters_in_the_signed_query_string(h: Harness) -> None:
    room = await h.room("http://hooks.example.com/cb?tenant=1", method="GET")
    await h.deliver_created(room)
    [request] = h.requests
    assert request.method == "GET" and request.content == b""
    url = str(request.url).replace(PUBLIC, "hooks.example.com")
    assert url.startswith("http://hooks.example.com/cb?tenant=1&RoomStatus=in-progress&")
    assert RequestValidator(TOKEN).validate(url, {}, request.headers["X-Twilio-Signature"])


async def test_a_failing_callback_holds_back_the_rest_of_its_room_only(h: Harness) -> None:
    slow, other = (
        await h.room("https://hooks.example.com/slow"),
        await h.room("https://hooks.example.com/other"),
    )
    state = {"failures": 0, "other": False}

    def respond(request: httpx.Request) -> httpx.Response | None:
        if request.url.path == "/other":
            state["other"] = True
        elif not state["other"] or state["failures"] < 2:
            # The slow room keeps failing until the other room got its callback: had the
            # other room waited behind it, this would never end.
            state["failures"] += 1
            return httpx.Response(503)
        return None

    h.respond = respond
    sender = h.sender(WebhookSettings(max_attempts=1000, retry_initial=1.0, retry_max=3.0))
    await sender.start()
    await sender.emit(created(slow, h.clock))
    await sender.emit(room_ended(slow, h.clock, 5))
    await sender.emit(created(other, h.clock))
    await settle(sender)
    await sender.close()
    failures = int(state["failures"])
    assert failures >= 2
    slow_requests = [
        (e, s) for (e, s), r in zip(h.seqs(), h.requests, strict=True) if r.url.path == "/slow"
    ]
    assert slow_requests == [("room-created", "0")] * (failures + 1) + [("room-ended", "1")]
    assert h.sleeps[:2] == [1.0, 2.0] and max(h.sleeps) <= 3.0
    [first, ended] = await h.store.list_callback_deliveries(slow.sid)
    assert (first.status, first.attempts, first.last_status, first.last_error) == (
        DeliveryStatus.DELIVERED,
        failures + 1,
        204,
        None,
    )
    assert ended.params["RoomDuration"] == "5" and ended.status is DeliveryStatus.DELIVERED


@pytest.mark.parametrize("status", [400, 403, 404, 301])
async def test_client_errors_are_final(h: Harness, status: int) -> None:
    room = await h.room("https://hooks.example.com/cb")
    h.respond = lambda r: httpx.Response(status) if "room-created" in r.content.decode() else None
    sender = h.sender()
    await sender.start()
    await sender.emit(created(room, h.clock))
    await sender.emit(room_ended(room, h.clock))
    await settle(sender)
    await sender.close()
    assert h.seqs() == [("room-created", "0"), ("room-ended", "1")]
    first, second = await h.store.list_callback_deliveries(room.sid)
    assert (first.status, first.attempts, first.last_error) == (
        DeliveryStatus.FAILED,
        1,
        f"HTTP {status}",
    )
    assert second.status is DeliveryStatus.DELIVERED


async def test_gives_up_after_max_attempts_with_capped_backoff(h: Harness) -> None:
    room = await h.room("https://hooks.example.com/cb")
    h.respond = lambda r: httpx.Response(500)
    await h.deliver_created(room)
    assert len(h.requests) == SETTINGS.max_attempts == 4
    assert h.sleeps == [1.0, 2.0, 3.0]
    [record] = await h.store.list_callback_deliveries(room.sid)
    assert (record.status, record.attempts, record.last_status, record.last_error) == (
        DeliveryStatus.FAILED,
        4,
        500,
        "HTTP 500",
    )


async def test_too_many_requests_waits_for_retry_after(h: Harness) -> None:
    room = await h.room("https://hooks.example.com/cb")
    answers = [httpx.Response(429, headers={"Retry-After": "2.5"}), httpx.Response(200)]
    h.respond = lambda r: answers.pop(0)
    await h.deliver_created(room)
    assert h.sleeps == [2.5]
    [record] = await h.store.list_callback_deliveries(room.sid)
    assert record.status is DeliveryStatus.DELIVERED and record.attempts == 2


def test_retry_delay() -> None:
    s = WebhookSettings(retry_initial=0.5, retry_max=4.0)
    assert [retry_delay(s, n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 4.0, 4.0]
    assert retry_delay(s, 1, retry_after=3.0) == 3.0
    assert retry_delay(s, 1, retry_after=600.0) == 4.0
    with pytest.raises(ValueError):
        WebhookSettings(max_attempts=0)


async def test_network_errors_and_timeouts_are_retried(h: Harness) -> None:
    room = await h.room("https://hooks.example.com/cb")
    calls = {"n": 0}

    async def flaky(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        if calls["n"] == 1:
            raise httpx.ConnectError("refused", request=request)
        if calls["n"] == 2:
            await asyncio.sleep(5)  # longer than the 0.1 s attempt timeout
        return httpx.Response(200)

    sender = WebhookSender(
        h.store,
        h.clock,
        lambda sid: TOKEN,
        TargetPolicy(allow_private=False, resolver=resolve),
        WebhookSettings(timeout=0.1, max_attempts=4),
        transport=httpx.MockTransport(flaky),
        sleep=h.sleep,
    )
    await sender.start()
    await sender.emit(created(room, h.clock))
    await settle(sender)
    await sender.close()
    assert calls["n"] == 3
    [record] = await h.store.list_callback_deliveries(room.sid)
    assert (record.status, record.attempts, record.last_status) == (
        DeliveryStatus.DELIVERED,
        3,
        200,
    )


async def test_unresolvable_host_is_retried_as_a_connection_error(h: Harness) -> None:
    room = await h.room("https://nowhere.example.com/cb")
    await h.deliver_created(room, WebhookSettings(max_attempts=2, retry_initial=0.0))
    [record] = await h.store.list_callback_deliveries(room.sid)
    assert (record.status, record.attempts) == (DeliveryStatus.FAILED, 2)
    assert record.last_error == "name resolution failed"


async def test_refused_target_fails_without_a_request(h: Harness) -> None:
    room = await h.room("https://internal.example.com/cb")
    await h.deliver_created(room)
    assert h.requests == []
    [record] = await h.store.list_callback_deliveries(room.sid)
    assert (record.status, record.attempts, record.last_error) == (
        DeliveryStatus.FAILED,
        1,
        "refused target: private address",
    )


async def test_rooms_without_a_callback_record_nothing(h: Harness) -> None:
    room = await h.room(None)
    sender = h.sender()
    await sender.start()
    await sender.emit(created(room, h.clock))
    await sender.emit(RecordingStarted(timestamp=h.clock.now(), recording=recording(room, h.clock)))
    await sender.emit(
        RecordingStarted(timestamp=h.clock.now(), recording=recording(room, h.clock), room=room)
    )
    await sender.close()
    assert await h.store.list_callback_deliveries(room.sid) == []


async def test_a_recording_event_without_its_room_reads_the_stored_room(h: Harness) -> None:
    room = await h.room("https://hooks.example.com/rec", method="GET")
    sender = h.sender()
    await sender.start()
    rec = recording(room, h.clock)
    await sender.emit(created(room, h.clock))
    await sender.emit(RecordingStarted(timestamp=h.clock.now(), recording=rec))
    await settle(sender)
    await sender.close()
    assert h.seqs() == [("room-created", "0"), ("recording-started", "1")]
    [_, started] = await h.store.list_callback_deliveries(room.sid)
    assert (started.url, started.method) == ("https://hooks.example.com/rec", "GET")
    assert started.params["RoomName"] == room.unique_name
    assert started.params["RoomStatus"] == "in-progress"
    assert started.params["RecordingSid"] == rec.sid
    assert started.params["ParticipantIdentity"] == ""  # not known to the emitter


async def test_pending_callbacks_survive_a_restart_in_order(h: Harness) -> None:
    room = await h.room("https://hooks.example.com/cb")
    h.respond = lambda r: httpx.Response(502)
    first = h.sender(WebhookSettings(max_attempts=100, retry_initial=1.0))
    await first.emit(created(room, h.clock))  # recorded before start: sent once started
    await first.start()
    await first.emit(room_ended(room, h.clock, 9))
    for _ in range(1000):
        if len(h.requests) >= 3:
            break
        await asyncio.sleep(0.001)
    await first.close()
    assert {s for s in h.seqs()} == {("room-created", "0")}

    h.respond = lambda r: None
    h.requests.clear()
    second = h.sender()
    await second.start()
    await settle(second)
    await second.close()
    assert h.seqs() == [("room-created", "0"), ("room-ended", "1")]
    records = await h.store.list_callback_deliveries(room.sid)
    assert [r.status for r in records] == [DeliveryStatus.DELIVERED] * 2
    assert records[0].attempts >= 3  # an attempt cut short by close() is not recorded


async def test_nodes_deliver_their_own_callbacks_and_take_over_a_gone_nodes(
    h: Harness,
) -> None:
    """Several nodes on one database: a node records the callbacks it delivers; one that
    starts takes over none of a live node's, and a gone node's only once it is stale."""

    def node(node_id: str) -> WebhookSender:
        sender = h.sender(WebhookSettings(max_attempts=100, retry_initial=1.0))
        sender.node_id, sender.stale_after = node_id, 30.0
        return sender

    room = await h.room("https://hooks.example.com/cb")
    a, b = "ND" + "a" * 32, "ND" + "b" * 32
    await h.store.heartbeat_node(a, h.clock.now())
    first = node(a)
    await first.emit(created(room, h.clock))  # recorded by a, never sent: a dies
    [pending] = await h.store.pending_callback_deliveries()
    assert pending.node_id == a

    await h.store.heartbeat_node(b, h.clock.now())
    second = node(b)
    await second.start()
    await settle(second)
    assert h.requests == []  # a is alive: its callback is its own
    h.clock.advance(31)  # a is silent past the stale time
    await h.store.heartbeat_node(b, h.clock.now())
    assert await second.adopt_orphans() == 1
    await settle(second)
    assert await second.adopt_orphans() == 0
    await second.close()
    assert h.seqs() == [("room-created", "0")]
    [record] = await h.store.list_callback_deliveries(room.sid)
    assert record.status is DeliveryStatus.DELIVERED and record.node_id == b


async def test_a_nodes_own_callbacks_emitted_before_start_are_sent(h: Harness) -> None:
    room = await h.room("https://hooks.example.com/cb")
    for stale_after in (None, 30.0):  # a single server, a node of a cluster
        sender = h.sender()
        sender.node_id, sender.stale_after = "ND" + "c" * 32, stale_after
        await h.store.heartbeat_node(sender.node_id, h.clock.now())
        await sender.emit(created(room, h.clock))  # e.g. a recording recovered at start-up
        await sender.start()
        await settle(sender)
        await sender.close()
    assert h.seqs() == [("room-created", "0"), ("room-created", "1")]


async def test_callbacks_taken_over_while_one_is_in_flight_are_each_sent_once(
    h: Harness,
) -> None:
    room = await h.room("https://hooks.example.com/cb")
    a, b = "ND" + "a" * 32, "ND" + "b" * 32
    for node_id in (a, b):
        await h.store.heartbeat_node(node_id, h.clock.now())
    dead = h.sender()
    dead.node_id = a
    await dead.emit(created(room, h.clock))  # seq 0, a's: a dies before sending it
    entered, gate = asyncio.Event(), asyncio.Event()
    deliver = h.handler

    async def slow(request: httpx.Request) -> httpx.Response:
        entered.set()
        await gate.wait()
        return await deliver(request)

    h.handler = slow  # type: ignore[method-assign]
    live = h.sender()
    live.node_id, live.stale_after = b, 30.0
    await live.start()
    await live.emit(room_ended(room, h.clock))  # seq 1, b's, now in flight
    await entered.wait()
    h.clock.advance(31)
    await h.store.heartbeat_node(b, h.clock.now())
    assert await live.adopt_orphans() == 1  # seq 0 queued in front of the one in flight
    gate.set()
    await settle(live)
    await live.close()
    assert sorted(h.seqs()) == [("room-created", "0"), ("room-ended", "1")]
    records = await h.store.list_callback_deliveries(room.sid)
    assert [r.status for r in records] == [DeliveryStatus.DELIVERED] * 2


async def test_emits_after_close_are_kept_for_the_next_start(h: Harness) -> None:
    room = await h.room("https://hooks.example.com/cb")
    sender = h.sender()
    await sender.start()
    await sender.close()
    await sender.emit(created(room, h.clock))
    await sender.start()  # a closed sender stays closed
    assert h.requests == []
    [record] = await h.store.pending_callback_deliveries()
    assert record.status is DeliveryStatus.PENDING and record.attempts == 0


class BrokenStore:
    async def insert_callback_delivery(self, delivery: object) -> None:
        raise RuntimeError("database is gone")


async def test_emit_never_raises(h: Harness, caplog: pytest.LogCaptureFixture) -> None:
    sender = WebhookSender(
        BrokenStore(),  # type: ignore[arg-type]
        h.clock,
        lambda sid: TOKEN,
        TargetPolicy(allow_private=False),
    )
    room = validate_room_spec(
        RoomSpec(status_callback="https://hooks.example.com/cb"),
        sid=RoomSid("RM" + "1" * 32),
        account_sid=AccountSid("AC" + "0" * 32),
        now=h.clock.now(),
    )
    await sender.emit(created(room, h.clock))
    assert "webhook not recorded event=room-created room=RM" in caplog.text
    assert "RuntimeError" in caplog.text


async def test_concurrent_emits_of_one_room_are_numbered_and_sent_in_order(h: Harness) -> None:
    room = await h.room("https://hooks.example.com/cb")
    sender = h.sender()
    await sender.start()
    p = alice(room)
    events = [created(room, h.clock)] + [
        ParticipantConnected(timestamp=h.clock.now(), room=room, participant=p) for _ in range(9)
    ]
    await asyncio.gather(*(sender.emit(e) for e in events))
    await settle(sender)
    await sender.close()
    assert [s for _, s in h.seqs()] == [str(n) for n in range(10)]
    assert sender._emitting == {}


async def test_callbacks_queued_before_start_are_sorted_by_sequence(h: Harness) -> None:
    room = await h.room("https://hooks.example.com/cb")
    recorder = h.sender()
    await recorder.emit(created(room, h.clock))
    await recorder.emit(room_ended(room, h.clock))
    first, second = await h.store.list_callback_deliveries(room.sid)
    sender = h.sender()
    sender._started = True
    sender._enqueue(second)  # as if emitted while start() was loading the older ones
    sender._started = False
    await sender.start()
    await settle(sender)
    await sender.close()
    assert h.seqs() == [("room-created", "0"), ("room-ended", "1")]


async def test_a_callback_that_cannot_be_built_fails_and_the_queue_moves_on(h: Harness) -> None:
    room = await h.room("https://hooks.example.com/cb")
    recorder = h.sender()
    await recorder.emit(created(room, h.clock))
    await recorder.emit(room_ended(room, h.clock))
    broken, _ = await h.store.list_callback_deliveries(room.sid)
    async with h.store.engine.begin() as conn:
        t = callback_deliveries
        await conn.execute(t.update().where(t.c.seq == broken.id).values(params={"RoomSid": "x"}))
    sender = h.sender()
    await sender.start()
    await settle(sender)
    await sender.close()
    assert h.seqs() == [("room-ended", "1")]
    first, second = await h.store.list_callback_deliveries(room.sid)
    assert (first.status, first.last_error) == (DeliveryStatus.FAILED, "internal error: ValueError")
    assert second.status is DeliveryStatus.DELIVERED


class FlakyStore:
    """Fails to record the first attempt, as a database briefly gone would."""

    def __init__(self, store: SqlStore) -> None:
        self._store = store
        self.failures = 1

    def __getattr__(self, name: str) -> object:
        return getattr(self._store, name)

    async def update_callback_delivery(self, delivery: object) -> None:
        if self.failures:
            self.failures -= 1
            raise RuntimeError("database is locked")
        await self._store.update_callback_delivery(delivery)  # type: ignore[arg-type]


async def test_a_store_failure_keeps_the_callback_at_the_head(h: Harness) -> None:
    room = await h.room("https://hooks.example.com/cb")
    sender = WebhookSender(
        FlakyStore(h.store),  # type: ignore[arg-type]
        h.clock,
        lambda sid: TOKEN,
        TargetPolicy(allow_private=False, resolver=resolve),
        SETTINGS,
        transport=httpx.MockTransport(h.handler),
        sleep=h.sleep,
    )
    await sender.start()
    await sender.emit(created(room, h.clock))
    await sender.emit(room_ended(room, h.clock))
    await settle(sender)
    await sender.close()
    # Sent again (at least once), and still in order.
    assert h.seqs() == [("room-created", "0"), ("room-created", "0"), ("room-ended", "1")]
    assert h.sleeps == [1.0]


@pytest.mark.parametrize(
    ("error", "recorded"),
    [
        (httpx.ReadError("reset"), "network error: ReadError"),
        (httpx.ReadTimeout("slow"), "timeout"),
        (ConnectionResetError(), "connection failed"),
    ],
)
async def test_network_errors_are_recorded_by_kind(
    h: Harness, error: Exception, recorded: str
) -> None:
    room = await h.room("https://hooks.example.com/cb")

    def fail(request: httpx.Request) -> httpx.Response:
        raise error

    h.respond = fail
    await h.deliver_created(room, WebhookSettings(max_attempts=1))
    [record] = await h.store.list_callback_deliveries(room.sid)
    assert (record.status, record.last_error) == (DeliveryStatus.FAILED, recorded)


async def test_an_unreadable_retry_after_is_ignored(h: Harness) -> None:
    room = await h.room("https://hooks.example.com/cb")
    answers = [httpx.Response(503, headers={"Retry-After": "soon"}), httpx.Response(200)]
    h.respond = lambda r: answers.pop(0)
    await h.deliver_created(room)
    assert h.sleeps == [1.0]


def test_settings_come_from_the_environment() -> None:
    config = Config.from_env(
        {
            "PARLOUR_WEBHOOK_ALLOW_PRIVATE": "true",
            "PARLOUR_WEBHOOK_TIMEOUT_SECONDS": "2.5",
            "PARLOUR_WEBHOOK_MAX_ATTEMPTS": "3",
            "PARLOUR_WEBHOOK_RETRY_INITIAL_SECONDS": "0.25",
            "PARLOUR_WEBHOOK_RETRY_MAX_SECONDS": "8",
            "PARLOUR_AUTO_CREATE_ROOMS": "false",
        }
    )
    assert config.webhook_allow_private is True and config.auto_create_rooms is False
    assert (
        config.webhook_timeout_seconds,
        config.webhook_max_attempts,
        config.webhook_retry_initial_seconds,
        config.webhook_retry_max_seconds,
    ) == (2.5, 3, 0.25, 8.0)
    defaults = Config.from_env({})
    assert defaults.webhook_allow_private is False and defaults.auto_create_rooms is True
