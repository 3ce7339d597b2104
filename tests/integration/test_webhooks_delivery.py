"""Status callbacks end to end: a real Parlour server, Python SDK participants, and a real HTTP
receiver on 127.0.0.1 that checks every `X-Twilio-Signature` with twilio's `RequestValidator`.

Covers the exact ordered event sequence of a room's life (POST and GET), a receiver that
fails at first, a server restart with callbacks still undelivered, and refused targets.
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from twilio.request_validator import RequestValidator

from parlour.client.video import LocalTrackInfo, Room, connect
from parlour.domain.events import DeliveryStatus
from parlour.protocol.tokens import encode_token
from parlour.testing import ServerThread
from tests.helpers import Account, new_account
from tests.integration.recording_support import LoopbackHttp

pytestmark = pytest.mark.integration

FAST_RETRIES: dict[str, Any] = {
    "webhook_allow_private": True,
    "webhook_retry_initial_seconds": 0.05,
    "webhook_retry_max_seconds": 0.2,
    "webhook_timeout_seconds": 2.0,
    "webhook_max_attempts": 5,
}
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
COMMON = {
    "AccountSid",
    "RoomName",
    "RoomSid",
    "RoomStatus",
    "RoomType",
    "StatusCallbackEvent",
    "Timestamp",
    "SequenceNumber",
}
PARTICIPANT = {"ParticipantSid", "ParticipantStatus", "ParticipantIdentity"}
TRACK = {"TrackSid", "TrackKind", "TrackName"}


# -- the receiver -------------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    method: str
    url: str
    headers: dict[str, str]
    params: dict[str, str]
    signature_valid: bool
    answered: int
    names: tuple[str, ...] = ()  # the parameter names in the order they were sent


class Receiver(LoopbackHttp):
    """A status callback endpoint on 127.0.0.1 that records requests and checks signatures.

    Args:
        fail_first: answer this many requests with 500 before accepting any.
        port: listen here (0: any free port).
    """

    def __init__(self, auth_token: str, *, fail_first: int = 0, port: int = 0) -> None:
        self.validator = RequestValidator(auth_token)
        self.fail_first = fail_first
        self.requests: list[Received] = []
        self._lock = threading.Lock()
        super().__init__(self._handle, port)

    def url(self, path: str = "/cb") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length).decode() if length else ""
        # What a customer's handler sees: the URL it was called on, as the client named it.
        url = f"http://{handler.headers['Host']}{handler.path}"
        if handler.command == "POST":
            pairs = parse_qsl(body, keep_blank_values=True)
            params = dict(pairs)
            signed: dict[str, str] = params
        else:
            pairs = parse_qsl(urlsplit(handler.path).query, keep_blank_values=True)
            params = dict(pairs)
            signed = {}
        valid = self.validator.validate(url, signed, handler.headers.get("X-Twilio-Signature"))
        with self._lock:
            answered = 500 if len(self.requests) < self.fail_first else 204
            self.requests.append(
                Received(
                    handler.command,
                    url,
                    dict(handler.headers),
                    params,
                    valid,
                    answered,
                    tuple(name for name, _ in pairs),
                )
            )
        handler.send_response(answered)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    @property
    def delivered(self) -> list[Received]:
        with self._lock:
            return [r for r in self.requests if r.answered < 300]

    def events(self) -> list[tuple[str, str]]:
        return [
            (r.params["StatusCallbackEvent"], r.params["SequenceNumber"]) for r in self.delivered
        ]


async def wait_for(check: Callable[[], str | None], within: float = 10.0) -> None:
    """Poll `check` until it returns None; its answer says why it is not done yet."""
    deadline = time.monotonic() + within
    while (reason := check()) is not None:
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting: {reason}")
        await asyncio.sleep(0.02)


def count_at_least(receiver: Receiver, n: int) -> Callable[[], str | None]:
    def check() -> str | None:
        got = receiver.events()
        return None if len(got) >= n else f"{len(got)} of {n} callbacks: {got}"

    return check


# -- fixtures and helpers -----------------------------------------------------------------


@pytest.fixture(scope="module")
def hook_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    with ServerThread(tmp_path_factory.mktemp("webhooks"), **FAST_RETRIES) as srv:
        yield srv


@pytest.fixture
def acct(hook_server: ServerThread) -> Account:
    return new_account(hook_server)


def rest(server: ServerThread, acct: Account) -> httpx.Client:
    return httpx.Client(base_url=server.base_url, auth=(acct.sid, acct.auth_token))


async def join(server: ServerThread, acct: Account, identity: str, room: str, **kw: Any) -> Room:
    token = encode_token(
        account_sid=acct.sid,
        key_sid=acct.key_sid,
        secret=acct.key_secret,
        identity=identity,
        now=int(time.time()),
    )
    url = server.base_url.replace("http://", "ws://") + "/signaling"
    return await connect(url, token, name=room, **kw)


def deliveries(server: ServerThread, room_sid: str) -> list[Any]:
    return server.call(server.parlour.store.list_callback_deliveries(room_sid))  # type: ignore[no-any-return]


def all_recorded(server: ServerThread, room_sid: str, n: int) -> Callable[[], str | None]:
    """Every callback of the room is recorded as delivered or failed (the receiver may have
    answered a moment before the sender wrote down the answer)."""

    def check() -> str | None:
        records = deliveries(server, room_sid)
        done = [r for r in records if r.status is not DeliveryStatus.PENDING]
        return None if len(done) == n else f"{len(done)} of {n} recorded: {records}"

    return check


# -- the room lifecycle -------------------------------------------------------------------


@pytest.mark.parametrize("method", ["POST", "GET"])
async def test_room_lifecycle_produces_the_exact_ordered_events(
    hook_server: ServerThread, acct: Account, method: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    name = f"Daily standup {method}"
    with Receiver(acct.auth_token) as receiver, rest(hook_server, acct) as api:
        callback = receiver.url("/video/status?tenant=acme")
        created = api.post(
            "/v1/Rooms",
            data={"UniqueName": name, "StatusCallback": callback, "StatusCallbackMethod": method},
        )
        assert created.status_code == 201, created.text
        room_sid = created.json()["sid"]
        await wait_for(count_at_least(receiver, 1))

        alice = await join(hook_server, acct, "Alice Smith", name)
        await wait_for(count_at_least(receiver, 2))
        mic = LocalTrackInfo(name="mic", kind="audio")
        await alice.publish_track(mic)
        await alice.wait_for(lambda: mic.id in alice.published)
        mic_sid = alice.published[mic.id]
        await wait_for(count_at_least(receiver, 3))
        chat = LocalTrackInfo(name="chat", kind="data")
        bob = await join(hook_server, acct, "bob", name, tracks=(chat,))
        await bob.wait_for(lambda: chat.id in bob.published)
        chat_sid = bob.published[chat.id]
        await wait_for(count_at_least(receiver, 5))
        await alice.set_track_enabled(mic.id, False)
        await wait_for(count_at_least(receiver, 6))
        await alice.set_track_enabled(mic.id, True)
        await wait_for(count_at_least(receiver, 7))
        await alice.unpublish_track(mic.id)
        await wait_for(count_at_least(receiver, 8))
        await bob.disconnect()  # still publishing `chat`
        await wait_for(count_at_least(receiver, 10))
        await alice.disconnect()
        await wait_for(count_at_least(receiver, 11))
        ended = api.post(f"/v1/Rooms/{room_sid}", data={"Status": "completed"})
        assert ended.status_code == 202
        await wait_for(count_at_least(receiver, 12))

    a, b = alice.local_sid, bob.local_sid
    expected = [
        ("room-created", None, None),
        ("participant-connected", a, None),
        ("track-added", a, (mic_sid, "audio", "mic")),
        ("participant-connected", b, None),
        ("track-added", b, (chat_sid, "data", "chat")),
        ("track-disabled", a, (mic_sid, "audio", "mic")),
        ("track-enabled", a, (mic_sid, "audio", "mic")),
        ("track-removed", a, (mic_sid, "audio", "mic")),
        ("track-removed", b, (chat_sid, "data", "chat")),
        ("participant-disconnected", b, None),
        ("participant-disconnected", a, None),
        ("room-ended", None, None),
    ]
    got = receiver.delivered
    assert [r.params["StatusCallbackEvent"] for r in got] == [e for e, _, _ in expected]
    assert len(receiver.requests) == len(expected)  # nothing retried, nothing extra
    identities = {a: "Alice Smith", b: "bob"}
    stamps = []
    for number, (request, (event, participant, track)) in enumerate(
        zip(got, expected, strict=True)
    ):
        p = dict(request.params)
        assert request.signature_valid, (event, request.headers)
        assert request.method == method
        assert request.headers["Host"] == f"127.0.0.1:{receiver.port}"
        assert request.headers["I-Twilio-Idempotency-Token"] == f"{room_sid}-{number}"
        if method == "POST":
            assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
            assert request.url == callback
        else:
            assert request.url.startswith(callback + "&")
            assert p.pop("tenant") == "acme"
        names = set(COMMON)
        if participant is not None:
            names |= PARTICIPANT
        if track is not None:
            names |= TRACK
        if event == "participant-disconnected":
            names.add("ParticipantDuration")
        if event == "room-ended":
            names.add("RoomDuration")
        assert set(p) == names, event
        assert p["AccountSid"] == acct.sid
        assert p["RoomSid"] == room_sid and p["RoomName"] == name and p["RoomType"] == "group"
        assert p["RoomStatus"] == ("completed" if event == "room-ended" else "in-progress")
        assert p["SequenceNumber"] == str(number)
        assert TIMESTAMP.match(p["Timestamp"]), p["Timestamp"]
        stamps.append(p["Timestamp"])
        if participant is not None:
            assert p["ParticipantSid"] == participant
            assert p["ParticipantIdentity"] == identities[participant]
            status = "disconnected" if event == "participant-disconnected" else "connected"
            assert p["ParticipantStatus"] == status
        if track is not None:
            assert (p["TrackSid"], p["TrackKind"], p["TrackName"]) == track
        for duration in ("ParticipantDuration", "RoomDuration"):
            if duration in p:
                assert p[duration].isdigit()
    assert stamps == sorted(stamps)
    # In Twilio's order (docs/webhooks.md), after the URL's own query for a GET.
    assert got[1].names[-11:] == (
        "RoomStatus",
        "RoomType",
        "RoomSid",
        "RoomName",
        "ParticipantStatus",
        "ParticipantIdentity",
        "SequenceNumber",
        "StatusCallbackEvent",
        "Timestamp",
        "ParticipantSid",
        "AccountSid",
    )

    await wait_for(all_recorded(hook_server, room_sid, len(expected)))
    records = deliveries(hook_server, room_sid)
    assert [(r.sequence_number, r.status, r.attempts, r.last_status) for r in records] == [
        (n, DeliveryStatus.DELIVERED, 1, 204) for n in range(len(expected))
    ]
    # Logs carry SIDs and status codes, never identities, callback URLs or query strings.
    server_logs = [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("parlour.") and "client" not in r.name
    ]
    assert any(f"webhook delivered event=room-ended room={room_sid}" in m for m in server_logs)
    for message in server_logs:
        assert "Alice Smith" not in message and "tenant=acme" not in message
        assert str(receiver.port) not in message


async def test_a_receiver_that_fails_at_first_still_gets_everything_in_order(
    hook_server: ServerThread, acct: Account
) -> None:
    with Receiver(acct.auth_token, fail_first=2) as receiver, rest(hook_server, acct) as api:
        room = api.post("/v1/Rooms", data={"UniqueName": "flaky", "StatusCallback": receiver.url()})
        room_sid = room.json()["sid"]
        alice = await join(hook_server, acct, "alice", "flaky")
        await alice.disconnect()
        await wait_for(count_at_least(receiver, 3))
        api.post(f"/v1/Rooms/{room_sid}", data={"Status": "completed"})
        await wait_for(count_at_least(receiver, 4))

    assert receiver.events() == [
        ("room-created", "0"),
        ("participant-connected", "1"),
        ("participant-disconnected", "2"),
        ("room-ended", "3"),
    ]
    attempts = [(r.params["SequenceNumber"], r.answered) for r in receiver.requests]
    assert attempts == [("0", 500), ("0", 500), ("0", 204), ("1", 204), ("2", 204), ("3", 204)]
    assert all(r.signature_valid for r in receiver.requests)
    await wait_for(all_recorded(hook_server, room_sid, 4))
    first, *rest_ = deliveries(hook_server, room_sid)
    assert (first.status, first.attempts, first.last_status) == (DeliveryStatus.DELIVERED, 3, 204)
    assert all(r.attempts == 1 for r in rest_)


async def test_ending_a_room_reports_who_was_still_in_it_first(
    hook_server: ServerThread, acct: Account
) -> None:
    with Receiver(acct.auth_token) as receiver, rest(hook_server, acct) as api:
        room = api.post("/v1/Rooms", data={"UniqueName": "busy", "StatusCallback": receiver.url()})
        room_sid = room.json()["sid"]
        cam = LocalTrackInfo(name="cam", kind="video")
        alice = await join(hook_server, acct, "alice", "busy", tracks=(cam,))
        await alice.wait_for(lambda: cam.id in alice.published)
        await wait_for(count_at_least(receiver, 3))
        api.post(f"/v1/Rooms/{room_sid}", data={"Status": "completed"})
        await wait_for(count_at_least(receiver, 6))
        await alice.wait_for(lambda: alice.state == "disconnected")
        await alice.disconnect()  # ended by the server: waits for its media to close

    got = [r.params for r in receiver.delivered]
    assert [(p["StatusCallbackEvent"], p["SequenceNumber"]) for p in got] == [
        ("room-created", "0"),
        ("participant-connected", "1"),
        ("track-added", "2"),
        ("track-removed", "3"),
        ("participant-disconnected", "4"),
        ("room-ended", "5"),
    ]
    removed, left, ended = got[3:]
    assert (removed["TrackSid"], removed["TrackKind"], removed["TrackName"]) == (
        alice.published[cam.id],
        "video",
        "cam",
    )
    assert removed["ParticipantSid"] == left["ParticipantSid"] == alice.local_sid
    assert left["ParticipantStatus"] == "disconnected" and left["ParticipantDuration"].isdigit()
    assert left["RoomStatus"] == "in-progress" and ended["RoomStatus"] == "completed"
    assert len(receiver.requests) == 6  # the SDK's own leaving added nothing


async def test_callbacks_pending_at_shutdown_are_delivered_after_a_restart(
    tmp_path: Path,
) -> None:
    settings = FAST_RETRIES | {"webhook_max_attempts": 10_000}
    with ServerThread(tmp_path, **settings) as first:
        # A port with nobody listening: the receiver is down while the room lives.
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        acct = new_account(first)
        with rest(first, acct) as api:
            room = api.post(
                "/v1/Rooms",
                data={"UniqueName": "restart", "StatusCallback": f"http://127.0.0.1:{port}/cb"},
            )
            room_sid = room.json()["sid"]
            alice = await join(first, acct, "alice", "restart")
            await alice.disconnect()

            def left() -> str | None:
                events = [r.event for r in deliveries(first, room_sid)]
                return None if "participant-disconnected" in events else f"recorded: {events}"

            await wait_for(left)
            api.post(f"/v1/Rooms/{room_sid}", data={"Status": "completed"})

        def all_tried() -> str | None:
            records = deliveries(first, room_sid)
            tried = [r for r in records if r.attempts >= 1 and r.last_error == "connection failed"]
            return None if len(records) == 4 and tried else f"records: {records}"

        await wait_for(all_tried)
    # Stopped with every callback still pending.
    assert all(r.status is DeliveryStatus.PENDING for r in deliveries_after(tmp_path, room_sid))

    with Receiver(acct.auth_token, port=port) as receiver:
        with ServerThread(tmp_path, **settings) as second:
            await wait_for(count_at_least(receiver, 4))
            await wait_for(all_recorded(second, room_sid, 4))
            records = deliveries(second, room_sid)
    assert receiver.events() == [
        ("room-created", "0"),
        ("participant-connected", "1"),
        ("participant-disconnected", "2"),
        ("room-ended", "3"),
    ]
    assert all(r.signature_valid for r in receiver.requests)
    assert len(receiver.requests) == 4
    assert [r.status for r in records] == [DeliveryStatus.DELIVERED] * 4


def deliveries_after(data_dir: Path, room_sid: str) -> list[Any]:
    """The store of a stopped server, read directly."""
    from parlour.config import Config
    from parlour.store.sql import SqlStore

    async def read() -> list[Any]:
        store = await SqlStore.open(Config(data_dir=data_dir).db_url)
        try:
            return await store.list_callback_deliveries(room_sid)
        finally:
            await store.close()

    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.extend(asyncio.run(read())))
    thread.start()
    thread.join(10)
    return result


# -- refused targets ----------------------------------------------------------------------


async def test_the_server_itself_is_never_a_target(
    hook_server: ServerThread, acct: Account
) -> None:
    with rest(hook_server, acct) as api:
        refused = api.post("/v1/Rooms", data={"StatusCallback": f"{hook_server.base_url}/v1/Rooms"})
        assert refused.status_code == 400 and refused.json()["code"] == 53111
        port = hook_server.config.port
        room = api.post("/v1/Rooms", data={"StatusCallback": f"http://localhost:{port}/v1/Rooms"})
        assert room.status_code == 201
        room_sid = room.json()["sid"]

    def failed() -> str | None:
        records = deliveries(hook_server, room_sid)
        return None if records and records[0].status is DeliveryStatus.FAILED else str(records)

    await wait_for(failed)
    [record] = deliveries(hook_server, room_sid)
    assert (record.attempts, record.last_error) == (1, "refused target: this server")


async def test_private_targets_are_refused_unless_allowed(tmp_path: Path) -> None:
    with ServerThread(tmp_path, webhook_retry_initial_seconds=0.05) as srv:
        acct = new_account(srv)
        with Receiver(acct.auth_token) as receiver, rest(srv, acct) as api:
            for url in (
                receiver.url(),
                f"http://[::1]:{receiver.port}/cb",
                "http://10.0.0.1/cb",
                "http://169.254.169.254/latest/meta-data",
                "http://[::ffff:192.168.1.1]/cb",
            ):
                refused = api.post("/v1/Rooms", data={"StatusCallback": url})
                assert refused.status_code == 400, url
                assert refused.json()["code"] == 53111
            # A host name is checked when the callback is sent (after resolving it).
            room = api.post(
                "/v1/Rooms", data={"StatusCallback": f"http://localhost:{receiver.port}/cb"}
            )
            assert room.status_code == 201
            room_sid = room.json()["sid"]

            def failed() -> str | None:
                records = deliveries(srv, room_sid)
                done = records and records[0].status is DeliveryStatus.FAILED
                return None if done else str(records)

            await wait_for(failed)
            [record] = deliveries(srv, room_sid)
            assert (record.attempts, record.last_status) == (1, None)
            assert record.last_error == "refused target: loopback address"
            assert receiver.requests == []
