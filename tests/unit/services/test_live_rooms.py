"""The live-rooms service with fakes of its ports: the memory store, a fake media plane and
fake client channels. Real sockets and the real SFU are in tests/integration."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

import pytest

from parlour.domain import errors
from parlour.domain.events import (
    ParticipantConnected,
    ParticipantDisconnected,
    RecordingCompleted,
    RecordingStarted,
    RoomEnded,
    TrackAdded,
    TrackRemoved,
)
from parlour.domain.participants import ParticipantStatus
from parlour.domain.ports import MediaListener, TrackDescriptor
from parlour.domain.recordings import Recording, RecordingCodec
from parlour.domain.rooms import RoomSpec, RoomStatus
from parlour.domain.sids import AccountSid, ParticipantSid, RecordingSid, RoomSid, TrackSid
from parlour.protocol import signaling as sig
from parlour.services.accounts import AccountService
from parlour.services.live_rooms import LiveRoomService, ParticipantSession
from parlour.services.nodes import NodeMonitor
from parlour.services.participants import ParticipantService
from parlour.services.rooms import RoomService
from parlour.store.memory import MemoryStore
from parlour.testing import FakeClock
from tests.unit.services.fakes import EventLog


class Channel:
    def __init__(self) -> None:
        self.sent: list[sig.RspMessage] = []
        self.closed: int | None = None

    def send(self, message: sig.RspMessage) -> None:
        self.sent.append(message)

    def close(self, code: int) -> None:
        self.closed = code

    def states(self, sid: str) -> list[sig.RemoteParticipantState]:
        return [
            p
            for m in self.sent
            if isinstance(m, sig.ServerUpdate)
            for p in m.participants or ()
            if p.sid == sid
        ]


@dataclass
class FakeSession:
    listener: MediaListener
    wanted: list[TrackDescriptor] = field(default_factory=list)
    closed: bool = False
    fail_descriptions: bool = False
    signaling: dict[str, list[dict[str, object]]] = field(default_factory=dict)
    speaker: ParticipantSid | None = None
    layers: dict[str, tuple[int | None, int]] = field(default_factory=dict)
    codecs: dict[str, tuple[str, tuple[int, ...]]] = field(default_factory=dict)
    taps: dict[str, object] = field(default_factory=dict)
    off: list[str] = field(default_factory=list)

    async def client_description(
        self, pc_id: str, kind: str, revision: int, sdp: str, track_ids: Sequence[str]
    ) -> str | None:
        if self.fail_descriptions:
            raise errors.MediaDescriptionError()
        return "v=0 answer" if kind == "offer" else None

    def set_subscriptions(self, tracks: Sequence[TrackDescriptor]) -> None:
        self.wanted = list(tracks)
        self.listener.subscriptions_changed([(t.sid, t.id) for t in tracks])

    def published_codec(self, track_id: str) -> tuple[str, tuple[int, ...]] | None:
        return self.codecs.get(track_id)

    def attach_tap(self, track_id: str, tap: object) -> None:
        self.taps[track_id] = tap

    def request_keyframe(self, track_id: str) -> None:
        return None

    def dominant_speaker(self) -> ParticipantSid | None:
        return self.speaker

    def published_bitrate(self, track_id: str) -> int:
        return 0

    def published_layers(self, track_id: str) -> Sequence[object]:
        return ()

    def select_layers(self, layers: Mapping[str, tuple[int | None, int]]) -> None:
        self.layers = dict(layers)

    def downlink_estimate(self) -> tuple[int | None, bool]:
        return None, False

    def switch_off(self, track_ids: Collection[str]) -> None:
        self.off = list(track_ids)

    def open_signaling_channel(self, label: str) -> None:
        self.signaling[label] = []

    def send_signaling(self, label: str, message: str) -> None:
        self.signaling[label].append(json.loads(message))

    def close(self) -> None:
        self.closed = True


class FakeMedia:
    def __init__(self) -> None:
        self.sessions: dict[str, FakeSession] = {}

    def open_session(
        self,
        room_sid: RoomSid,
        participant_sid: str,
        listener: MediaListener,
        video_codecs: Sequence[str],
    ) -> FakeSession:
        session = FakeSession(listener)
        self.sessions[participant_sid] = session
        return session


class Proxy:
    live: LiveRoomService

    async def disconnect_participant(self, participant_sid: str, code: int) -> None:
        await self.live.disconnect_participant(participant_sid, code)  # type: ignore[arg-type]

    async def end_room(self, room_sid: RoomSid, code: int) -> None:
        await self.live.end_room(room_sid, code)

    async def subscribe_rules_changed(self, participant_sid: str) -> None:
        await self.live.subscribe_rules_changed(participant_sid)  # type: ignore[arg-type]


@dataclass
class World:
    store: MemoryStore
    clock: FakeClock
    events: EventLog
    accounts: AccountService
    rooms: RoomService
    participants: ParticipantService
    media: FakeMedia
    live: LiveRoomService
    account: AccountSid

    async def token(self, identity: str, room: str | None = None) -> str:
        return await self.accounts.mint_token(identity, room=room)

    async def connect(
        self,
        identity: str,
        room: str = "standup",
        *,
        tracks: Sequence[tuple[str, str]] = (),
        grant: str | None = None,
        offer: bool = True,
        media_signaling: tuple[str, ...] = (),
    ) -> tuple[Channel, sig.Connected]:
        channel = Channel()
        pcs = (
            (
                sig.PeerConnectionState(
                    id="pc1",
                    description=sig.SessionDescription(
                        type=sig.SdpType.OFFER, revision=1, sdp="v=0 offer"
                    ),
                ),
            )
            if offer
            else ()
        )
        msg = sig.Connect(
            token=await self.token(identity, grant),
            name=room,
            participant=sig.LocalParticipantState(
                revision=1,
                tracks=tuple(
                    sig.LocalTrackState(
                        id=f"{identity}-{name}",
                        kind=sig.TrackKind(kind),
                        name=name,
                        enabled=True,
                        priority=sig.TrackPriority.STANDARD,
                    )
                    for name, kind in tracks
                ),
            ),
            peer_connections=pcs,
            media_signaling={name: sig.MediaSignalingRequest() for name in media_signaling},
        )
        return channel, await self.live.connect(channel, msg)

    def session(self, connected: sig.Connected) -> ParticipantSession:
        session = self.live.session(connected.session)
        assert session is not None
        return session


@pytest.fixture
async def world() -> World:
    store = MemoryStore()
    clock = FakeClock()
    events = EventLog()
    accounts = AccountService(store, clock, b"k" * 32)
    account = (await accounts.default_account()).account_sid
    proxy = Proxy()
    participants = ParticipantService(store, clock, events, proxy, node_id="NDhere")
    rooms = RoomService(store, clock, events, proxy, participants, timeout_minute=1.0)
    media = FakeMedia()
    live = LiveRoomService(accounts, rooms, participants, media, session_timeout=0.05)
    proxy.live = live
    return World(store, clock, events, accounts, rooms, participants, media, live, account)


async def test_connect_announces_and_answers(world: World) -> None:
    a_channel, a = await world.connect("alice", tracks=[("mic", "audio")])
    assert a.peer_connections[0].description is not None
    assert a.peer_connections[0].description.sdp == "v=0 answer"
    assert a.participants == ()
    b_channel, b = await world.connect("bob")
    assert [p.identity for p in b.participants] == ["alice"]
    assert [t.name for t in b.participants[0].tracks] == ["mic"]
    assert a_channel.states(b.participant.sid)[-1].state is sig.ParticipantState.CONNECTED
    assert [type(e) for e in world.events.events[1:]] == [
        ParticipantConnected,
        TrackAdded,
        ParticipantConnected,
    ]
    # Each receives the other's tracks, never its own.
    assert [t.id for t in world.media.sessions[b.participant.sid].wanted] == ["alice-mic"]
    assert world.media.sessions[a.participant.sid].wanted == []


async def test_grant_for_another_room_creates_nothing(world: World) -> None:
    with pytest.raises(errors.TwilioError) as exc:
        await world.connect("alice", room="other", grant="standup")
    assert exc.value.code == errors.Code.ACCESS_TOKEN_GRANTS_INVALID
    assert await world.store.get_room(world.account, "other") is None
    assert world.events.events == []


async def test_grant_by_sid_matches_the_room(world: World) -> None:
    room = await world.rooms.create(world.account, RoomSpec(unique_name="standup"))
    _, connected = await world.connect("alice", room="standup", grant=room.sid)
    assert connected.sid == room.sid


async def test_bad_identity_creates_nothing(world: World) -> None:
    with pytest.raises(errors.TwilioError) as exc:
        await world.connect("x" * 129, room="fresh")
    assert exc.value.code == errors.Code.PARTICIPANT_IDENTITY_TOO_LONG
    assert await world.store.get_room(world.account, "fresh") is None


async def test_leaving_participant_keeps_its_last_tracks(world: World) -> None:
    _, a = await world.connect("alice", tracks=[("mic", "audio"), ("cam", "video")])
    b_channel, _ = await world.connect("bob")
    await world.live.disconnect(world.session(a))
    last = b_channel.states(a.participant.sid)[-1]
    assert last.state is sig.ParticipantState.DISCONNECTED
    assert {t.name for t in last.tracks} == {"mic", "cam"}
    assert world.media.sessions[a.participant.sid].closed
    removed = world.events.of(TrackRemoved)
    assert len(removed) == 2
    assert len(world.events.of(ParticipantDisconnected)) == 1


async def test_media_failure_disconnects_with_53405(world: World) -> None:
    a_channel, a = await world.connect("alice", tracks=[("mic", "audio")])
    b_channel, _ = await world.connect("bob")
    session = world.session(a)
    world.media.sessions[a.participant.sid].listener.media_failed("ICE never connected")
    for _ in range(50):
        await asyncio.sleep(0)
    errors_sent = [m for m in a_channel.sent if isinstance(m, sig.ErrorMessage)]
    assert [m.code for m in errors_sent] == [errors.Code.MEDIA_CONNECTION_ERROR]
    assert a_channel.closed == 1000
    record = await world.participants.get(session.room, a.participant.sid)
    assert record.status is ParticipantStatus.DISCONNECTED
    assert b_channel.states(a.participant.sid)[-1].state is sig.ParticipantState.DISCONNECTED
    assert len(world.events.of(TrackRemoved)) == 1
    # Called again (or late), nothing more happens.
    world.media.sessions[a.participant.sid].listener.media_failed("again")
    await asyncio.sleep(0)
    assert len(world.events.of(ParticipantDisconnected)) == 1


async def test_bad_description_in_update_leaves(world: World) -> None:
    _, a = await world.connect("alice")
    session = world.session(a)
    world.media.sessions[a.participant.sid].fail_descriptions = True
    update = sig.ClientUpdate(
        session=a.session,
        peer_connections=(
            sig.PeerConnectionState(
                id="pc1",
                description=sig.SessionDescription(type=sig.SdpType.OFFER, revision=2, sdp="x"),
            ),
        ),
    )
    with pytest.raises(errors.MediaDescriptionError):
        await world.live.update(session, update)
    assert session.ended
    assert len(world.events.of(ParticipantDisconnected)) == 1
    assert world.live.live_room(session.room.sid) is None


@pytest.mark.parametrize("order", ["end-first", "leave-first", "together"])
async def test_completion_and_leaving_race(world: World, order: str) -> None:
    """REST completion and the last participant's leaving, in any order: the room ends
    completed, with exactly one room-ended, and every participant leaves once."""
    for attempt in range(10):
        name = f"race{attempt}"
        _, a = await world.connect("alice", room=name, tracks=[("mic", "audio")])
        _, b = await world.connect("bob", room=name)
        room = world.session(a).room
        alice = world.session(a)
        leave = world.live.disconnect(alice)
        end = world.rooms.update_status(world.account, room.sid, "completed")
        if order == "end-first":
            await end
            await leave
        elif order == "leave-first":
            await leave
            await end
        else:
            await asyncio.gather(leave, end)
        await world.rooms.sweep_idle()
        stored = await world.rooms.get(world.account, room.sid)
        assert stored.status is RoomStatus.COMPLETED
        assert stored.end_time is not None
        ended = [e for e in world.events.of(RoomEnded) if e.room_sid == room.sid]
        assert len(ended) == 1
        gone = [e for e in world.events.of(ParticipantDisconnected) if e.room_sid == room.sid]
        assert sorted(e.participant_sid for e in gone) == sorted(
            [a.participant.sid, b.participant.sid]
        )
        # Nothing brings it back: a join is refused, the name is free again.
        with pytest.raises(errors.TwilioError) as exc:
            await world.live.connect(
                Channel(),
                sig.Connect(
                    token=await world.token("carol"),
                    name=room.sid,
                    participant=sig.LocalParticipantState(revision=1),
                ),
            )
        assert exc.value.code == errors.Code.ROOM_COMPLETED


async def test_end_room_tells_clients_completed(world: World) -> None:
    a_channel, a = await world.connect("alice")
    room = world.session(a).room
    await world.rooms.update_status(world.account, room.sid, "completed")
    assert any(isinstance(m, sig.Disconnected) and m.status == "completed" for m in a_channel.sent)
    assert a_channel.closed == 1000
    assert world.live.live_participants(room.sid) == []


async def test_duplicate_identity_replaces_the_old_session(world: World) -> None:
    old_channel, old = await world.connect("alice")
    _, new = await world.connect("alice")
    assert [m.code for m in old_channel.sent if isinstance(m, sig.ErrorMessage)] == [
        errors.Code.PARTICIPANT_DUPLICATE_IDENTITY
    ]
    assert world.live.session(old.session) is None
    assert world.live.session(new.session) is not None
    assert len(world.events.of(ParticipantDisconnected)) == 1


async def test_dropped_socket_expires_after_session_timeout(world: World) -> None:
    a_channel, a = await world.connect("alice")
    b_channel, _ = await world.connect("bob")
    session = world.session(a)
    await world.live.connection_lost(session, a_channel)
    assert b_channel.states(a.participant.sid)[-1].state is sig.ParticipantState.RECONNECTING
    record = await world.participants.get(session.room, a.participant.sid)
    assert record.status is ParticipantStatus.RECONNECTING
    for _ in range(100):
        if session.ended:
            break
        await asyncio.sleep(0.01)
    assert session.ended
    assert b_channel.states(a.participant.sid)[-1].state is sig.ParticipantState.DISCONNECTED
    record = await world.participants.get(session.room, a.participant.sid)
    assert record.status is ParticipantStatus.DISCONNECTED


async def test_resume_before_timeout_keeps_the_session(world: World) -> None:
    a_channel, a = await world.connect("alice")
    session = world.session(a)
    await world.live.connection_lost(session, a_channel)
    fresh = Channel()
    resumed, synced = await world.live.sync(
        fresh,
        sig.Sync(
            session=a.session,
            token=await world.token("alice"),
            participant=sig.LocalParticipantState(revision=1),
        ),
    )
    assert resumed is session and synced.participant.sid == a.participant.sid
    await asyncio.sleep(0.1)
    assert not session.ended
    record = await world.participants.get(session.room, a.participant.sid)
    assert record.status is ParticipantStatus.CONNECTED


async def test_unknown_session_is_53001(world: World) -> None:
    with pytest.raises(errors.TwilioError) as exc:
        await world.live.sync(
            Channel(),
            sig.Sync(
                session="SEnope",
                token=await world.token("alice"),
                participant=sig.LocalParticipantState(revision=1),
            ),
        )
    assert exc.value.code == errors.Code.SIGNALING_CONNECTION_DISCONNECTED


async def test_gone_node_participants_are_disconnected(world: World) -> None:
    """Participants of a node that stopped heartbeating leave with their callbacks; a node
    still beating keeps its own."""
    _, a = await world.connect("alice", tracks=[("mic", "audio")])
    session = world.session(a)
    room = session.room
    old = NodeMonitor(world.store, world.clock, world.participants, "NDhere", stale_after=30)
    await old.beat()
    # A new process (a new node) on the same store: the old one is not gone yet.
    new_participants = ParticipantService(
        world.store, world.clock, world.events, Proxy(), node_id="NDnew"
    )
    monitor = NodeMonitor(world.store, world.clock, new_participants, "NDnew", stale_after=30)
    await monitor.beat()
    assert await monitor.recover() == 0
    world.clock.advance(31)
    await monitor.beat()
    assert await monitor.recover() == 1
    record = await world.participants.get(room, a.participant.sid)
    assert record.status is ParticipantStatus.DISCONNECTED
    assert [e.track_sid for e in world.events.of(TrackRemoved)] == [
        session.tracks["alice-mic"].record.sid
    ]
    stored = await world.store.get_room(world.account, room.sid)
    assert stored is not None and stored.empty_since == world.clock.now()
    # The room then ends by its empty-room timeout (1 minute = 1 s here).
    world.clock.advance(dt.timedelta(minutes=5).total_seconds())
    assert [r.sid for r in await world.rooms.sweep_idle()] == [room.sid]
    assert await monitor.recover() == 0


class Recorder:
    """The `Recorder` port, as far as the recording state goes."""

    def __init__(self) -> None:
        self.recording: set[str] = set()

    def is_recording(self, room_sid: str) -> bool:
        return room_sid in self.recording

    async def track_published(self, *args: object, **kwargs: object) -> None:
        return None

    async def track_unpublished(self, track_sid: str) -> None:
        return None

    async def recording_rules_changed(self, room: object) -> None:
        return None


async def test_recording_state_follows_the_recordings(world: World) -> None:
    recorder = Recorder()
    world.live._recorder = recorder  # type: ignore[assignment]
    a_channel, a = await world.connect("alice")
    assert a.recording == sig.Recording(is_recording=False, revision=1)
    room = world.session(a).room
    recording = Recording.for_track(
        sid=RecordingSid("RT" + "1" * 32),
        account_sid=room.account_sid,
        room_sid=room.sid,
        participant_sid=a.participant.sid,
        source_sid=TrackSid("MT" + "1" * 32),
        track_name="mic",
        codec=RecordingCodec.OPUS,
        now=world.clock.now(),
    )
    recorder.recording.add(room.sid)
    await world.live.emit(RecordingStarted(recording=recording, timestamp=world.clock.now()))
    started = sig.Recording(is_recording=True, revision=2)
    assert [m.recording for m in a_channel.sent if isinstance(m, sig.ServerUpdate)] == [started]
    _, b = await world.connect("bob")
    assert b.recording == started
    recorder.recording.clear()
    await world.live.emit(RecordingCompleted(recording=recording, timestamp=world.clock.now()))
    await world.live.emit(RecordingCompleted(recording=recording, timestamp=world.clock.now()))
    updates = [m.recording for m in a_channel.sent if isinstance(m, sig.ServerUpdate)]
    assert [u for u in updates if u is not None][-2:] == [
        started,
        sig.Recording(is_recording=False, revision=3),
    ]


async def test_media_signaling_channels_are_negotiated_and_wait_for_ready(world: World) -> None:
    _, a = await world.connect("alice", media_signaling=("active_speaker", "made_up"))
    served = a.media_signaling or {}
    assert set(served) == {"active_speaker"}  # what was asked for and is served
    label = served["active_speaker"].transport.label  # type: ignore[union-attr]
    media = world.media.sessions[a.participant.sid]
    assert media.signaling == {label: []}
    listener = media.listener
    media.speaker = a.participant.sid  # the room's speaker, as the media plane has it
    listener.dominant_speaker_changed(a.participant.sid)  # type: ignore[arg-type]
    assert media.signaling[label] == []  # not ready yet: nothing sent
    listener.signaling_message(label, "{not json")
    listener.signaling_message("other", '{"type": "ready"}')
    listener.signaling_message(label, '{"type": "ready"}')
    assert media.signaling[label] == [{"type": "active_speaker", "participant": a.participant.sid}]
    listener.dominant_speaker_changed(None)
    assert media.signaling[label][-1] == {"type": "active_speaker", "participant": None}


async def test_a_late_joiner_hears_who_is_speaking_when_its_channel_opens(world: World) -> None:
    """The media plane decided the speaker before this participant's session observed it
    (no change will come): the `ready` answer carries the current one, not null."""
    _, b = await world.connect("bob", media_signaling=("active_speaker",))
    label = (b.media_signaling or {})["active_speaker"].transport.label  # type: ignore[union-attr]
    media = world.media.sessions[b.participant.sid]
    media.speaker = ParticipantSid("PA" + "a" * 32)
    media.listener.signaling_message(label, '{"type": "ready"}')
    assert media.signaling[label] == [{"type": "active_speaker", "participant": media.speaker}]


async def test_no_media_signaling_when_not_asked(world: World) -> None:
    _, a = await world.connect("alice")
    assert a.media_signaling == {}
    assert world.media.sessions[a.participant.sid].signaling == {}


class _Tap:
    def __init__(self) -> None:
        self.closed = False

    def close(self) -> None:
        self.closed = True


class SlowRecorder(Recorder):
    """Records every track; the first `track_published` waits for `gate`."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.taps: dict[str, _Tap] = {}

    async def track_published(self, *args: object, **kwargs: object) -> _Tap:  # type: ignore[override]
        track = args[2]
        if not self.taps:
            await self.gate.wait()
        tap = self.taps[track.sid] = _Tap()  # type: ignore[attr-defined]
        return tap


async def test_a_tap_made_while_its_participant_left_is_closed(world: World) -> None:
    """A participant leaving while its tracks' recordings are being set up: the tap made
    meanwhile is closed (its recording finished) and no other track is tapped any more.
    Before, such a tap was neither attached nor closed: its recording stayed `processing`
    for ever (the soak's last two)."""
    recorder = SlowRecorder()
    world.live._recorder = recorder  # type: ignore[assignment]
    _, a = await world.connect("alice", tracks=[("mic", "audio"), ("cam", "video")])
    session = world.session(a)
    fake = world.media.sessions[a.participant.sid]
    fake.codecs = {t: ("opus", (111,)) for t in session.tracks}
    attaching = asyncio.create_task(world.live._attach_taps(session))
    await asyncio.sleep(0.01)
    await world.live.disconnect(session)
    recorder.gate.set()
    await attaching
    assert len(recorder.taps) == 1  # the second track, reached after the leave: no tap
    [tap] = recorder.taps.values()
    assert tap.closed and fake.taps == {}
