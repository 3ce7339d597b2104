"""TCMP / RSP v2 wire contract: golden frames from the real SDK, round trips, validation, fuzz."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from parlour.protocol import signaling as sig
from parlour.protocol.signaling import (
    Bad,
    Busy,
    Bye,
    ClientUpdate,
    Connect,
    Connected,
    ConnectedOptions,
    Disconnect,
    Disconnected,
    ErrorInfo,
    ErrorMessage,
    Heartbeat,
    Hello,
    Ice,
    IceCandidate,
    Iced,
    IceServer,
    IceState,
    LocalParticipantState,
    LocalTrackState,
    MediaSignalingChannel,
    MediaSignalingTransport,
    MediaStates,
    Msg,
    ParticipantInfo,
    ParticipantState,
    PeerConnectionState,
    Published,
    PublishedTrack,
    PublishedTrackState,
    Recording,
    RemoteParticipantState,
    RemoteTrackState,
    SdpType,
    ServerUpdate,
    SessionDescription,
    SignalingProtocolError,
    Subscribed,
    SubscribedTrack,
    SubscribeRule,
    Subscriptions,
    Synced,
    TrackKind,
    TrackPriority,
    UnknownMessageTypeError,
    WarningMessage,
    Welcome,
    encode_message,
    parse_frame,
    parse_message,
    parse_rsp,
)
from tests.unit.protocol import json_fuzz
from tests.unit.protocol.json_fuzz import FUZZ

TRANSCRIPTS = Path(__file__).resolve().parents[3].parent / "shared" / "reference" / "transcripts"
CONNECT_TRANSCRIPT = TRANSCRIPTS / "chromium156-twilio-video-2.36.0-connect.json"

# ---------------------------------------------------------------------------------------------
# Golden frames, copied from the real twilio-video 2.36.0 / Chromium 156 transcript
# (shared/reference/transcripts/chromium156-twilio-video-2.36.0-connect.json). Only the SDP is
# shortened; every other member is verbatim.

TOKEN = "eyJhbGciOiJIUzI1NiIsImN0eSI6InR3aWxpby1mcGE7dj0xIiwidHlwIjoiSldUIn0.e30.sig"
AUDIO_ID = "1a507dcb-d7a0-4e1f-89bd-0e5c8ab32426"
VIDEO_ID = "cb77128e-4663-4079-871f-b010eb87d9f2"
DATA_ID = "1fb67338-af82-4e68-a20e-4e5f9a59c91d"
PC_ID = "5f2fffe5-259f-48bf-b1e2-2797db5fae2d"
OFFER_SDP = (
    "v=0\r\no=- 2419188247673677525 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
    "a=group:BUNDLE 0 1 2\r\na=extmap-allow-mixed\r\na=msid-semantic: WMS\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:8Ia2\r\n"
    "a=ice-pwd:MAMoeBGI1SkF3V0hzWeWgpyb\r\na=ice-options:trickle\r\na=setup:actpass\r\n"
    "a=mid:0\r\na=sendrecv\r\na=msid:- 1a507dcb-d7a0-4e1f-89bd-0e5c8ab32426\r\n"
    "a=rtcp-mux\r\na=rtpmap:111 opus/48000/2\r\n"
    "m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\na=sendrecv\r\n"
    "a=msid:- cb77128e-4663-4079-871f-b010eb87d9f2\r\na=rtcp-mux\r\na=rtpmap:96 VP8/90000\r\n"
    "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=mid:2\r\n"
    "a=sctp-port:5000\r\na=max-message-size:262144\r\n"
)

HELLO: dict[str, Any] = {
    "id": "18e26bbe-93f2-460c-9fcd-96bac700f820",
    "timeout": 5000,
    "type": "hello",
    "version": 2,
    "body": {"edge": "roaming", "token": TOKEN, "type": "ice", "version": 1},
}
WELCOME: dict[str, Any] = {"type": "welcome", "negotiatedTimeout": 5000}
ICED: dict[str, Any] = {"type": "msg", "body": {"type": "iced", "ice_servers": [], "version": 1}}
CONNECT_BODY: dict[str, Any] = {
    "name": "demo",
    "participant": {
        "revision": 4,
        "tracks": [
            {
                "enabled": True,
                "id": AUDIO_ID,
                "kind": "audio",
                "name": "ac49b5f7-fe47-41da-bedc-fb0d0e1acd5c",
                "priority": "standard",
            },
            {
                "enabled": True,
                "id": VIDEO_ID,
                "kind": "video",
                "name": "cfc56906-137e-442e-8443-7a8c12d8e1fe",
                "priority": "standard",
            },
            {
                "enabled": True,
                "id": DATA_ID,
                "kind": "data",
                "name": "chat",
                "priority": "standard",
            },
        ],
    },
    "peer_connections": [
        {"description": {"type": "offer", "revision": 1, "sdp": OFFER_SDP}, "id": PC_ID}
    ],
    "type": "connect",
    "version": 2,
    "ice_servers": "acquire",
    "publisher": {
        "name": "twilio-video.js",
        "sdk_version": "2.36.0",
        "user_agent": (
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "HeadlessChrome/156.0.0.0 Safari/537.36"
        ),
    },
    "media_signaling": {},
    "subscribe": {"rules": [{"type": "include", "all": True}], "revision": 1},
    "format": "unified",
    "token": TOKEN,
}
CONNECT: dict[str, Any] = {"body": CONNECT_BODY, "type": "msg"}
ERROR: dict[str, Any] = {
    "type": "msg",
    "body": {
        "type": "error",
        "code": 53000,
        "message": "transcript recorder: stop here",
        "version": 2,
    },
}
DISCONNECT: dict[str, Any] = {
    "body": {"session": None, "type": "disconnect", "version": 2},
    "type": "msg",
}
BYE: dict[str, Any] = {"type": "bye"}

# (sender, frame, frame class, body class)
GOLDEN: list[tuple[sig.Sender, dict[str, Any], type, type | None]] = [
    ("client", HELLO, Hello, Ice),
    ("server", WELCOME, Welcome, None),
    ("server", ICED, Msg, Iced),
    ("client", CONNECT, Msg, Connect),
    ("server", ERROR, Msg, ErrorMessage),
    ("client", DISCONNECT, Msg, Disconnect),
    ("client", BYE, Bye, None),
]

# ---------------------------------------------------------------------------------------------
# Server messages as signaling-protocol.md §3.4–3.10 and the SDK's unit tests show them.

ROOM_SID = "RM0123456789abcdef0123456789abcdef"
ALICE = "PA11111111111111111111111111111111"
BOB = "PA22222222222222222222222222222222"
MT_A, MT_B, MT_C, MT_D = (f"MT{c * 32}" for c in "abcd")

CONNECTED_BODY: dict[str, Any] = {
    "type": "connected",
    "version": 2,
    "session": "SE-opaque-resume-token",
    "sid": ROOM_SID,
    "name": "my-room",
    "participant": {"sid": ALICE, "identity": "alice"},
    "participants": [
        {
            "sid": BOB,
            "identity": "bob",
            "state": "connected",
            "revision": 4,
            "tracks": [
                {
                    "sid": MT_A,
                    "name": "bob-mic",
                    "kind": "audio",
                    "enabled": True,
                    "priority": "standard",
                },
                {
                    "sid": MT_B,
                    "name": "bob-cam",
                    "kind": "video",
                    "enabled": False,
                    "priority": "high",
                },
            ],
        }
    ],
    "peer_connections": [
        {"id": PC_ID, "description": {"type": "answer", "revision": 1, "sdp": "v=0\r\n"}}
    ],
    "published": {
        "revision": 1,
        "tracks": [
            {"id": AUDIO_ID, "sid": MT_C, "state": "ready"},
            {"id": VIDEO_ID, "state": "failed", "error": {"code": 53304, "message": "dup"}},
        ],
    },
    "subscribed": {
        "revision": 1,
        "tracks": [
            {"sid": MT_A, "id": MT_A},
            {"sid": MT_B, "error": {"code": 53117, "message": "nope"}},
        ],
    },
    "recording": {"is_recording": False, "revision": 1},
    "media_signaling": {
        "active_speaker": {"transport": {"type": "data-channel", "label": "msp-as"}}
    },
    "options": {
        "session_timeout": 30,
        "media_region": "local",
        "signaling_region": "local",
        "audio_processors": ["krisp"],
        "signaling_edge": "loopback",
    },
}


def connected_object() -> Connected:
    """The same message as CONNECTED_BODY, built with the constructors."""
    return Connected(
        session="SE-opaque-resume-token",
        sid=ROOM_SID,
        name="my-room",
        participant=ParticipantInfo(sid=ALICE, identity="alice"),
        participants=(
            RemoteParticipantState(
                sid=BOB,
                identity="bob",
                state=ParticipantState.CONNECTED,
                revision=4,
                tracks=(
                    RemoteTrackState(sid=MT_A, name="bob-mic", kind=TrackKind.AUDIO),
                    RemoteTrackState(
                        sid=MT_B,
                        name="bob-cam",
                        kind=TrackKind.VIDEO,
                        enabled=False,
                        priority=TrackPriority.HIGH,
                    ),
                ),
            ),
        ),
        peer_connections=(
            PeerConnectionState(
                id=PC_ID,
                description=SessionDescription(type=SdpType.ANSWER, revision=1, sdp="v=0\r\n"),
            ),
        ),
        published=Published(
            revision=1,
            tracks=(
                PublishedTrack(id=AUDIO_ID, sid=MT_C, state=PublishedTrackState.READY),
                PublishedTrack(
                    id=VIDEO_ID,
                    state=PublishedTrackState.FAILED,
                    error=ErrorInfo(code=53304, message="dup"),
                ),
            ),
        ),
        subscribed=Subscribed(
            revision=1,
            tracks=(
                SubscribedTrack(sid=MT_A, id=MT_A),
                SubscribedTrack(sid=MT_B, error=ErrorInfo(code=53117, message="nope")),
            ),
        ),
        recording=Recording(is_recording=False, revision=1),
        media_signaling={
            "active_speaker": MediaSignalingChannel(
                transport=MediaSignalingTransport(label="msp-as")
            )
        },
        options=ConnectedOptions(
            session_timeout=30,
            media_region="local",
            signaling_region="local",
            audio_processors=("krisp",),
            extra={"signaling_edge": "loopback"},
        ),
    )


SERVER_BODIES: list[dict[str, Any]] = [
    CONNECTED_BODY,
    {
        "type": "iced",
        "version": 1,
        "ice_servers": [
            {"urls": "stun:turn.example.com:3478"},
            {
                "urls": ["turn:turn.example.com:3478?transport=udp"],
                "username": "u",
                "credential": "p",
            },
        ],
    },
    {
        "type": "update",
        "version": 2,
        "participants": [
            {"sid": BOB, "identity": "bob", "state": "disconnected", "revision": 5, "tracks": []}
        ],
        "peer_connections": [
            {"id": PC_ID, "description": {"type": "offer", "revision": 2, "sdp": "v=0\r\n"}},
            {"id": "p2p-2", "description": {"type": "create-offer", "revision": 0}},
            {
                "id": "p2p-3",
                "ice": {
                    "candidates": [
                        {
                            "candidate": "candidate:1 1 udp 1 192.0.2.1 3478 typ host",
                            "sdpMid": "0",
                            "sdpMLineIndex": 0,
                            "usernameFragment": "srv1",
                        }
                    ],
                    "revision": 1,
                    "ufrag": "srv1",
                    "complete": True,
                },
            },
        ],
        "subscribed": {"revision": 2, "tracks": []},
    },
    {"type": "synced", "version": 2, "participants": [], "peer_connections": []},
    {"type": "synced", "version": 2},
    {"type": "disconnected", "status": "completed", "version": 2},
    {"type": "disconnected", "version": 2},
    {
        "type": "error",
        "code": 53205,
        "message": "Participant disconnected because of duplicate identity",
        "version": 2,
    },
    {
        "type": "warning",
        "version": 2,
        "states": {"revision": 1, "tracks": {MT_C: {"recordings": "NO_MEDIA"}}},
    },
]

CLIENT_BODIES: list[dict[str, Any]] = [
    {
        "type": "update",
        "version": 2,
        "session": "SE-1",
        "participant": {"revision": 5, "tracks": []},
        "peer_connections": [
            {
                "id": PC_ID,
                "ice": {
                    "candidates": [
                        {
                            "candidate": "candidate:1 1 udp 2122260223 192.0.2.10 54321 typ host",
                            "sdpMid": "0",
                            "sdpMLineIndex": 0,
                            "usernameFragment": "aBcD",
                        }
                    ],
                    "ufrag": "aBcD",
                    "revision": 1,
                },
            }
        ],
    },
    {
        "type": "sync",
        "version": 2,
        "session": "SE-1",
        "token": TOKEN,
        "name": None,
        "participant": {
            "revision": 7,
            "tracks": [
                {
                    "enabled": True,
                    "id": AUDIO_ID,
                    "kind": "audio",
                    "name": "mic",
                    "priority": "low",
                    "audio_processor": "krisp",
                }
            ],
            "media_warnings": ["recordings"],
        },
        "peer_connections": [
            {"id": PC_ID, "description": {"type": "answer", "revision": 4, "sdp": "v=0\r\n"}}
        ],
    },
    {"type": "disconnect", "version": 2, "session": "SE-1"},
    {"edge": "roaming", "preflight": True, "token": TOKEN, "type": "ice"},
]


def frames(sender: sig.Sender) -> list[dict[str, Any]]:
    """Every golden frame a given side sends."""
    bodies = CLIENT_BODIES if sender == "client" else SERVER_BODIES
    golden = [frame for who, frame, _, _ in GOLDEN if who == sender]
    return golden + [{"type": "msg", "body": body} for body in bodies]


# ---------------------------------------------------------------------------------------------
# Golden tests


@pytest.mark.parametrize(
    ("sender", "frame", "frame_cls", "body_cls"),
    GOLDEN,
    ids=[f"{who}-{f['type']}-{f.get('body', {}).get('type', '')}" for who, f, _, _ in GOLDEN],
)
def test_real_sdk_frames_parse_and_round_trip_exactly(
    sender: sig.Sender, frame: dict[str, Any], frame_cls: type, body_cls: type | None
) -> None:
    parsed = parse_message(json.dumps(frame), sender=sender)
    assert type(parsed) is frame_cls
    if body_cls is not None:
        assert type(getattr(parsed, "body", None)) is body_cls
    assert parsed.to_json() == frame
    assert parse_message(encode_message(parsed), sender=sender) == parsed


@pytest.mark.parametrize("sender", ["client", "server"])
def test_documented_messages_round_trip_exactly(sender: sig.Sender) -> None:
    for frame in frames(sender):
        parsed = parse_message(json.dumps(frame), sender=sender)
        assert parsed.to_json() == frame, frame
        assert parse_frame(parsed.to_json(), sender=sender) == parsed


def test_real_hello_carries_the_ice_request() -> None:
    hello = parse_message(json.dumps(HELLO))
    assert isinstance(hello, Hello)
    assert hello.timeout == 5000
    assert hello.version == sig.TCMP_VERSION
    assert hello.cookie is None
    assert hello.body == Ice(token=TOKEN, edge="roaming", version=sig.ICE_VERSION)


def test_real_connect_is_fully_typed() -> None:
    msg = parse_message(json.dumps(CONNECT))
    assert isinstance(msg, Msg)
    connect = msg.body
    assert isinstance(connect, Connect)
    assert connect.token == TOKEN
    assert connect.name == "demo"
    assert connect.participant.revision == 4
    assert [t.kind for t in connect.participant.tracks] == [
        TrackKind.AUDIO,
        TrackKind.VIDEO,
        TrackKind.DATA,
    ]
    assert [t.id for t in connect.participant.tracks] == [AUDIO_ID, VIDEO_ID, DATA_ID]
    assert all(
        t.priority is TrackPriority.STANDARD and t.enabled for t in connect.participant.tracks
    )
    (pc,) = connect.peer_connections
    assert pc.id == PC_ID
    assert pc.ice is None
    assert pc.description == SessionDescription(type=SdpType.OFFER, revision=1, sdp=OFFER_SDP)
    assert connect.ice_servers == "acquire"
    assert connect.publisher is not None and connect.publisher.sdk_version == "2.36.0"
    assert connect.media_signaling == {}
    assert connect.subscribe == Subscriptions(rules=(SubscribeRule(type="include", all=True),))
    assert connect.format == "unified"
    assert connect.bandwidth_profile is None
    assert connect.extra == {}


def test_real_disconnect_before_connected_has_a_null_session() -> None:
    msg = parse_message(json.dumps(DISCONNECT))
    assert isinstance(msg, Msg)
    assert msg.body == Disconnect(session=None)
    assert msg.to_json()["body"]["session"] is None


def test_connect_name_is_always_written_even_when_null() -> None:
    body = {**CONNECT_BODY, "name": None}
    connect = parse_rsp(body)
    assert isinstance(connect, Connect)
    assert connect.name is None
    assert connect.to_json() == body


@pytest.mark.skipif(not CONNECT_TRANSCRIPT.exists(), reason="shared/ transcripts not checked out")
def test_against_the_recorded_transcript_file() -> None:
    entries = json.loads(CONNECT_TRANSCRIPT.read_text())
    for entry in entries:
        sender: sig.Sender = "client" if entry["dir"] == "C->S" else "server"
        parsed = parse_message(json.dumps(entry["frame"]), sender=sender)
        assert parsed.to_json() == entry["frame"]
    connect = next(
        parse_rsp(e["frame"]["body"])
        for e in entries
        if e["frame"].get("body", {}).get("type") == "connect"
    )
    assert isinstance(connect, Connect)
    # The contract the server relies on: each audio/video track id is the msid appdata of an
    # m-section of the offer (signaling-protocol.md §3.3).
    description = connect.peer_connections[0].description
    assert description is not None and description.sdp is not None
    sdp = description.sdp
    msids = set(re.findall(r"^a=msid:\S+ (\S+)\r$", sdp, flags=re.M))
    media_ids = {t.id for t in connect.participant.tracks if t.kind is not TrackKind.DATA}
    assert media_ids == msids


# ---------------------------------------------------------------------------------------------
# Building server messages


def test_connected_built_from_constructors_matches_the_documented_shape() -> None:
    message = connected_object()
    assert message.to_json() == CONNECTED_BODY
    assert Connected.parse(CONNECTED_BODY) == message
    assert parse_rsp(CONNECTED_BODY, sender="server") == message


def test_minimal_connected_writes_the_members_the_sdk_needs() -> None:
    message = Connected(
        session="SE1",
        sid=ROOM_SID,
        name="r",
        participant=ParticipantInfo(sid=ALICE, identity="alice"),
        options=ConnectedOptions(session_timeout=30),
    )
    assert message.to_json() == {
        "type": "connected",
        "session": "SE1",
        "sid": ROOM_SID,
        "name": "r",
        "participant": {"sid": ALICE, "identity": "alice"},
        "participants": [],
        "peer_connections": [],
        "options": {"session_timeout": 30},
        "version": 2,
    }


def test_encode_message_is_compact_json_with_type_first() -> None:
    text = encode_message(Msg(body=Disconnected(status="completed")))
    assert text == '{"type":"msg","body":{"type":"disconnected","status":"completed","version":2}}'
    assert encode_message(Heartbeat()) == '{"type":"heartbeat"}'
    assert encode_message(Welcome(negotiated_timeout=5000)) == (
        '{"type":"welcome","negotiatedTimeout":5000}'
    )


def test_server_tcmp_frames_round_trip() -> None:
    for frame in (
        Welcome(negotiated_timeout=4000),
        Busy(retry_after=-1),
        Busy(retry_after=100, keep_alive=True, cookie="c00kie"),
        Bad(reason="hello expected"),
        Heartbeat(),
        Bye(),
        Msg(body=ServerUpdate(recording=Recording(is_recording=True, revision=2))),
    ):
        assert parse_message(encode_message(frame), sender="server") == frame
    assert Busy(retry_after=5).to_json() == {"type": "busy", "retryAfter": 5, "keepAlive": False}


def test_client_tcmp_frames_round_trip() -> None:
    connect = parse_rsp(CONNECT_BODY)
    assert isinstance(connect, Connect)
    for frame in (
        Hello(id="h1", timeout=5000, body=connect, cookie="c00kie"),
        Hello(id="h2", timeout=5000),
        Heartbeat(),
        Bye(),
        Msg(body=Disconnect(session="SE1")),
    ):
        assert parse_message(encode_message(frame)) == frame


def test_frames_and_messages_are_hashable_and_frozen() -> None:
    message = connected_object()
    assert hash(message) == hash(Connected.parse(CONNECTED_BODY))
    with pytest.raises(AttributeError):
        message.session = "other"  # type: ignore[misc]


def test_type_member_cannot_be_overridden_by_extra() -> None:
    assert Heartbeat(extra={"type": "bye", "x": 1}).to_json() == {"type": "heartbeat", "x": 1}


def test_known_members_win_over_extra() -> None:
    info = ParticipantInfo(sid=ALICE, identity="alice", extra={"sid": "PAother", "x": 1})
    assert info.to_json() == {"sid": ALICE, "identity": "alice", "x": 1}


# ---------------------------------------------------------------------------------------------
# Direction: which side may send what, and the two shapes of `update`


def test_update_shape_depends_on_the_sender() -> None:
    client = parse_rsp(CLIENT_BODIES[0])
    assert isinstance(client, ClientUpdate)
    assert client.session == "SE-1"
    assert client.participant == LocalParticipantState(revision=5)
    assert client.peer_connections is not None
    ice = client.peer_connections[0].ice
    assert ice is not None
    assert ice.ufrag == "aBcD"
    assert ice.complete is False
    assert ice.candidates[0].sdp_m_line_index == 0

    server = parse_rsp(SERVER_BODIES[2], sender="server")
    assert isinstance(server, ServerUpdate)
    assert server.participants is not None
    assert server.participants[0].state is ParticipantState.DISCONNECTED
    assert server.published is None


def test_server_update_omits_absent_parts() -> None:
    update = ServerUpdate(subscribed=Subscribed(revision=3))
    assert update.to_json() == {
        "type": "update",
        "subscribed": {"revision": 3, "tracks": []},
        "version": 2,
    }


def test_synced_keeps_absent_and_empty_apart() -> None:
    # Absent participants mean "no change"; an empty list disconnects everyone client-side.
    assert Synced.parse({"type": "synced"}).participants is None
    assert Synced.parse({"type": "synced", "participants": []}).participants == ()
    assert Synced(peer_connections=()).to_json() == {
        "type": "synced",
        "peer_connections": [],
        "version": 2,
    }


@pytest.mark.parametrize(
    ("sender", "frame"),
    [
        ("client", {"type": "welcome", "negotiatedTimeout": 5000}),
        ("client", {"type": "busy", "retryAfter": 1}),
        ("client", {"type": "bad", "reason": "x"}),
        ("server", {"type": "hello", "id": "x", "timeout": 1, "version": 2}),
        ("client", {"type": "msg", "body": {"type": "connected"}}),
        ("client", {"type": "msg", "body": {"type": "iced", "ice_servers": []}}),
        ("server", {"type": "msg", "body": {"type": "connect"}}),
        ("server", {"type": "msg", "body": {"type": "ice", "token": "t"}}),
        ("client", {"type": "msg", "body": {"type": "future-thing"}}),
        ("client", {"type": "ping"}),
        (
            "client",
            {
                "type": "hello",
                "id": "x",
                "timeout": 1,
                "version": 2,
                "body": {"type": "update", "session": "s"},
            },
        ),
    ],
)
def test_types_the_sender_may_not_send_are_unknown(sender: sig.Sender, frame: object) -> None:
    with pytest.raises(UnknownMessageTypeError) as info:
        parse_message(json.dumps(frame), sender=sender)
    assert isinstance(info.value, SignalingProtocolError)
    assert isinstance(info.value.message_type, str)


def test_unknown_type_error_names_the_type() -> None:
    with pytest.raises(UnknownMessageTypeError, match="'future-thing'") as info:
        parse_message('{"type":"msg","body":{"type":"future-thing"}}', sender="server")
    assert info.value.message_type == "future-thing"


# ---------------------------------------------------------------------------------------------
# Tolerance: real clients send more than we model


def test_unknown_members_are_kept_everywhere_and_written_back() -> None:
    body = copy.deepcopy(CONNECT_BODY)
    body["future_top"] = {"a": [1, 2]}
    body["participant"]["future_participant"] = True
    body["participant"]["tracks"][0]["future_track"] = "x"
    body["peer_connections"][0]["description"]["future_desc"] = 1
    body["bandwidth_profile"] = {"video": {"mode": "grid", "max_tracks": 4}}
    body["media_signaling"] = {"active_speaker": {"transports": [{"type": "data-channel"}]}}
    frame = {"type": "msg", "body": body, "future_frame": None}
    parsed = parse_message(json.dumps(frame))
    assert isinstance(parsed, Msg)
    connect = parsed.body
    assert isinstance(connect, Connect)
    assert connect.extra == {"future_top": {"a": [1, 2]}}
    assert connect.participant.extra == {"future_participant": True}
    assert connect.participant.tracks[0].extra == {"future_track": "x"}
    assert connect.bandwidth_profile == {"video": {"mode": "grid", "max_tracks": 4}}
    assert parsed.extra == {"future_frame": None}
    assert parsed.to_json() == frame


def test_optional_members_may_be_null() -> None:
    ice = parse_rsp({"type": "ice", "token": "t", "edge": None, "version": None})
    assert ice == Ice(token="t", edge=None, version=None)
    assert ice.to_json() == {"type": "ice", "token": "t"}


def test_ice_candidates_may_be_missing_and_complete_is_written_only_when_true() -> None:
    state = IceState.parse({"revision": 3, "ufrag": "u", "complete": True})
    assert state == IceState(revision=3, ufrag="u", complete=True)
    assert state.to_json() == {"candidates": [], "revision": 3, "ufrag": "u", "complete": True}
    assert "complete" not in IceState(revision=1).to_json()


def test_ice_candidate_uses_w3c_member_names() -> None:
    candidate = IceCandidate(candidate="candidate:x", sdp_mid="0")
    assert candidate.to_json() == {
        "candidate": "candidate:x",
        "sdpMid": "0",
        "sdpMLineIndex": None,
        "usernameFragment": None,
    }


def test_ice_server_urls_may_be_a_string_or_a_list() -> None:
    assert IceServer.parse({"urls": "stun:a"}).urls == "stun:a"
    assert IceServer.parse({"urls": ["stun:a", "stun:b"]}).urls == ("stun:a", "stun:b")
    assert IceServer(urls=("turn:a",), username="u", credential="p").to_json() == {
        "urls": ["turn:a"],
        "username": "u",
        "credential": "p",
    }


def test_session_timeout_accepts_integers_and_floats() -> None:
    assert ConnectedOptions.parse({"session_timeout": 30}).session_timeout == 30
    assert ConnectedOptions.parse({"session_timeout": 2.5}).session_timeout == 2.5
    with pytest.raises(SignalingProtocolError, match="session_timeout: expected a number"):
        ConnectedOptions.parse({"session_timeout": "30"})


def test_warning_states_are_typed() -> None:
    warning = parse_rsp(SERVER_BODIES[-1], sender="server")
    assert isinstance(warning, WarningMessage)
    assert warning.states == MediaStates(revision=1, tracks={MT_C: {"recordings": "NO_MEDIA"}})


def test_media_signaling_request_defaults_to_a_data_channel() -> None:
    assert sig.MediaSignalingRequest().to_json() == {"transports": [{"type": "data-channel"}]}


# ---------------------------------------------------------------------------------------------
# Error codes


def test_error_message_round_trip() -> None:
    kick = ErrorMessage(
        code=53205, message="Participant disconnected because of duplicate identity"
    )
    assert kick.to_json() == {
        "type": "error",
        "code": 53205,
        "message": "Participant disconnected because of duplicate identity",
        "version": 2,
    }


def test_missing_error_message_parses_as_empty() -> None:
    error = parse_rsp({"type": "error", "code": 53105, "version": 2}, sender="server")
    assert error == ErrorMessage(code=53105, message="")


# ---------------------------------------------------------------------------------------------
# Validation


def _connect_with(**changes: Any) -> str:
    body = copy.deepcopy(CONNECT_BODY)
    for path, value in changes.items():
        *parents, last = path.split("__")
        target: Any = body
        for key in parents:
            target = target[int(key)] if key.isdigit() else target[key]
        if value is ...:
            del target[last]
        else:
            target[last] = value
    return json.dumps({"type": "msg", "body": body})


@pytest.mark.parametrize(
    ("raw", "sender", "message"),
    [
        ("", "client", "not a UTF-8 JSON text"),
        ("{", "client", "not a UTF-8 JSON text"),
        (b"\xff\xfe{}", "client", "not a UTF-8 JSON text"),
        ('{"type":"heartbeat","x":NaN}', "client", "NaN is not valid JSON"),
        ('{"type":"heartbeat","x":-Infinity}', "client", "-Infinity is not valid JSON"),
        ('{"type":"heartbeat","x":1e999}', "client", "out of range"),
        ('{"type":"heartbeat","x":' + "1" * 5000 + "}", "client", "not a UTF-8 JSON text"),
        ("[" * 100_000 + "]" * 100_000, "client", "not a UTF-8 JSON text"),
        ("[]", "client", "frame: expected an object, got an array"),
        ('"hello"', "server", "frame: expected an object, got a string"),
        ("{}", "client", "frame.type: expected a string, got nothing"),
        ('{"type":7}', "client", "frame.type: expected a string, got a number"),
        ('{"type":"welcome"}', "server", "welcome.negotiatedTimeout: expected an integer"),
        ('{"type":"welcome","negotiatedTimeout":0}', "server", "must be positive"),
        ('{"type":"welcome","negotiatedTimeout":5e3}', "server", "expected an integer"),
        ('{"type":"hello","id":"x","timeout":-1,"version":2}', "client", "must not be negative"),
        ('{"type":"hello","id":"x","timeout":true,"version":2}', "client", "expected an integer"),
        ('{"type":"hello","timeout":1,"version":2}', "client", "hello.id: expected a string"),
        ('{"type":"msg"}', "client", "msg.body: expected an object, got nothing"),
        ('{"type":"msg","body":[]}', "client", "msg.body: expected an object, got an array"),
        ('{"type":"bad"}', "server", "bad.reason"),
        ('{"type":"busy","retryAfter":1,"keepAlive":"yes"}', "server", "busy.keepAlive"),
        (_connect_with(token=None), "client", "msg.body.token: expected a string, got null"),
        (_connect_with(participant=...), "client", "msg.body.participant: expected an object"),
        (
            _connect_with(participant__tracks__1__kind="screen"),
            "client",
            "msg.body.participant.tracks[1].kind: expected one of 'audio', 'video', 'data'",
        ),
        (
            _connect_with(participant__tracks__0__priority="urgent"),
            "client",
            "tracks[0].priority: expected one of 'low', 'standard', 'high'",
        ),
        (_connect_with(participant__tracks__0__id=""), "client", "non-empty string"),
        (_connect_with(participant__tracks__0__enabled=1), "client", "expected a boolean"),
        (_connect_with(participant__tracks={}), "client", "tracks: expected an array"),
        (_connect_with(participant__tracks=[1]), "client", "tracks[0]: expected an object"),
        (_connect_with(participant__revision=True), "client", "revision: expected an integer"),
        (_connect_with(participant__revision=-1), "client", "must not be negative"),
        (_connect_with(participant__revision=1.5), "client", "revision: expected an integer"),
        (
            _connect_with(peer_connections__0__description__sdp=...),
            "client",
            "sdp: required for type 'offer'",
        ),
        (
            _connect_with(peer_connections__0__description__type="rollback"),
            "client",
            "peer_connections[0].description.type: expected one of",
        ),
        (_connect_with(peer_connections__0__id=None), "client", "peer_connections[0].id"),
        (_connect_with(peer_connections="x"), "client", "peer_connections: expected an array"),
        (_connect_with(subscribe__rules__0__type="maybe"), "client", "'include' or 'exclude'"),
        (_connect_with(media_signaling__x=1), "client", "media_signaling.x: expected an object"),
        (_connect_with(participant__media_warnings=[1]), "client", "media_warnings[0]"),
        (_connect_with(name=3), "client", "msg.body.name: expected a string, got a number"),
        ('{"type":"msg","body":{"type":"update"}}', "client", "msg.body.session"),
        ('{"type":"msg","body":{"type":"sync","session":"s"}}', "client", "msg.body.token"),
        ('{"type":"msg","body":{"type":"error"}}', "server", "msg.body.code"),
        ('{"type":"msg","body":{"type":"iced"}}', "server", "msg.body.ice_servers"),
        (
            '{"type":"msg","body":{"type":"iced","ice_servers":[{"urls":[]}]}}',
            "server",
            "urls: must not be empty",
        ),
        (
            '{"type":"msg","body":{"type":"update","participants":[{"sid":"PA1"}]}}',
            "server",
            "participants[0].identity",
        ),
        (
            '{"type":"msg","body":{"type":"update","published":{"revision":1,'
            '"tracks":[{"id":"t","state":"ready"}]}}}',
            "server",
            "sid: required when state is 'ready'",
        ),
        (
            '{"type":"msg","body":{"type":"update","published":{"revision":1,'
            '"tracks":[{"id":"t","state":"failed"}]}}}',
            "server",
            "error: required when state is 'failed'",
        ),
        (
            '{"type":"msg","body":{"type":"warning","states":{"revision":1,'
            '"tracks":{"MT1":{"recordings":5}}}}}',
            "server",
            "msg.body.states.tracks.MT1.recordings: expected a string",
        ),
        (
            '{"type":"msg","body":{"type":"connected","session":"s","sid":"RM1","name":"n",'
            '"participant":{"sid":"PA1","identity":"a"}}}',
            "server",
            "msg.body.options: expected an object, got nothing",
        ),
        (
            '{"type":"msg","body":{"type":"connected","session":"s","sid":"RM1","name":"n",'
            '"participant":{"sid":"PA1","identity":"a"},"options":{"session_timeout":-1}}}',
            "server",
            "session_timeout: must be a finite number >= 0",
        ),
        (
            '{"type":"msg","body":{"type":"connected","session":"s","sid":"RM1","name":"n",'
            '"participant":{"sid":"PA1","identity":"a"},"options":{"session_timeout":'
            + "9" * 400
            + "}}}",
            "server",
            "",  # a huge integer is finite: accepted
        ),
    ],
)
def test_invalid_input_raises_a_clear_protocol_error(
    raw: str | bytes, sender: sig.Sender, message: str
) -> None:
    if not message:
        parse_message(raw, sender=sender)
        return
    with pytest.raises(SignalingProtocolError) as info:
        parse_message(raw, sender=sender)
    assert message in str(info.value)
    assert isinstance(info.value, ValueError)


def test_constructors_validate_too() -> None:
    with pytest.raises(SignalingProtocolError, match="required for type 'answer'"):
        SessionDescription(type=SdpType.ANSWER, revision=1)
    with pytest.raises(SignalingProtocolError, match="must be positive"):
        Welcome(negotiated_timeout=0)
    with pytest.raises(SignalingProtocolError, match="finite"):
        ConnectedOptions(session_timeout=float("nan"))
    with pytest.raises(SignalingProtocolError, match="must not be empty"):
        LocalTrackState(
            id="", kind=TrackKind.AUDIO, name="m", enabled=True, priority=TrackPriority.LOW
        )
    with pytest.raises(SignalingProtocolError, match="'include' or 'exclude'"):
        SubscribeRule(type="all")  # type: ignore[arg-type]
    # A description without SDP is fine for the types that carry none.
    assert SessionDescription(type=SdpType.CREATE_OFFER, revision=2).sdp is None
    assert SessionDescription(type=SdpType.CLOSE, revision=2).to_json() == {
        "type": "close",
        "revision": 2,
    }


def test_class_parse_checks_the_type_member() -> None:
    with pytest.raises(SignalingProtocolError, match=r"connect\.type: expected 'connect'"):
        Connect.parse({**CONNECT_BODY, "type": "sync"})
    with pytest.raises(SignalingProtocolError, match=r"^track: expected an object, got a string$"):
        LocalTrackState.parse("nope")
    # Python callers may pass anything, not only decoded JSON.
    with pytest.raises(SignalingProtocolError, match=r"^options: expected an object, got set$"):
        ConnectedOptions.parse(set())


def test_msg_parse_takes_the_sender() -> None:
    synced = {"type": "msg", "body": {"type": "synced", "version": 2}}
    assert Msg.parse(synced, sender="server") == Msg(body=Synced())
    with pytest.raises(UnknownMessageTypeError):
        Msg.parse(synced)


def test_all_is_complete_and_accurate() -> None:
    public = {
        name
        for name, value in vars(sig).items()
        if not name.startswith("_")
        and getattr(value, "__module__", None) == sig.__name__
        and isinstance(value, type | type(parse_message))
    }
    assert public <= set(sig.__all__)
    assert all(hasattr(sig, name) for name in sig.__all__)


# ---------------------------------------------------------------------------------------------
# Fuzzing: untrusted input either parses (and then round-trips) or raises the protocol error

JSON_LEAVES = json_fuzz.json_leaves(
    ["audio", "video", "data", "offer", "answer", "ready", "standard", ""],
    int_bits=70,
    text_size=12,
)
JSON_VALUES = json_fuzz.json_values(JSON_LEAVES)
KNOWN_KEYS = sorted(
    {
        "type", "body", "id", "timeout", "version", "cookie", "negotiatedTimeout", "retryAfter",
        "keepAlive", "reason", "token", "edge", "preflight", "name", "participant",
        "participants", "peer_connections", "ice_servers", "publisher", "media_signaling",
        "subscribe", "format", "bandwidth_profile", "session", "revision", "tracks", "kind",
        "enabled", "priority", "sid", "identity", "state", "description", "ice", "sdp",
        "candidates", "ufrag", "complete", "published", "subscribed", "recording", "options",
        "session_timeout", "code", "message", "status", "states", "urls", "rules", "all",
        "is_recording", "error", "transport", "transports", "label", "candidate", "sdpMid",
    }
)  # fmt: skip
TYPES = [
    "hello", "welcome", "msg", "heartbeat", "bye", "busy", "bad", "ice", "iced", "connect",
    "connected", "update", "sync", "synced", "disconnect", "disconnected", "error", "warning",
]  # fmt: skip
SHAPED_OBJECTS = json_fuzz.shaped(JSON_LEAVES, KNOWN_KEYS, TYPES)
SENDERS = st.sampled_from(["client", "server"])


def check_parses_or_rejects(raw: str | bytes, sender: sig.Sender) -> None:
    json_fuzz.parses_and_round_trips(
        lambda r: parse_message(r, sender=sender), raw, SignalingProtocolError, encode_message
    )


@FUZZ
@given(raw=st.text() | st.binary(), sender=SENDERS)
def test_fuzz_arbitrary_text_and_bytes(raw: str | bytes, sender: sig.Sender) -> None:
    check_parses_or_rejects(raw, sender)


@FUZZ
@given(value=JSON_VALUES, sender=SENDERS)
def test_fuzz_arbitrary_json(value: object, sender: sig.Sender) -> None:
    check_parses_or_rejects(json.dumps(value), sender)


@FUZZ
@given(
    frame_type=st.sampled_from(TYPES),
    body_type=st.sampled_from(TYPES),
    frame=st.dictionaries(st.sampled_from(KNOWN_KEYS), SHAPED_OBJECTS, max_size=8),
    body=st.dictionaries(st.sampled_from(KNOWN_KEYS), SHAPED_OBJECTS, max_size=10),
    sender=SENDERS,
)
def test_fuzz_frames_shaped_like_the_protocol(
    frame_type: str,
    body_type: str,
    frame: dict[str, Any],
    body: dict[str, Any],
    sender: sig.Sender,
) -> None:
    frame = {**frame, "type": frame_type, "body": {**body, "type": body_type}}
    check_parses_or_rejects(json.dumps(frame), sender)


GOLDEN_FRAMES: list[tuple[sig.Sender, dict[str, Any]]] = [
    (sender, frame) for sender in ("client", "server") for frame in frames(sender)
]


@FUZZ
@given(data=st.data(), replacement=JSON_VALUES, delete=st.booleans())
def test_fuzz_mutated_golden_frames(data: st.DataObject, replacement: object, delete: bool) -> None:
    sender, golden = data.draw(st.sampled_from(GOLDEN_FRAMES))
    check_parses_or_rejects(
        json.dumps(json_fuzz.mutated(data, golden, replacement, delete)), sender
    )


@FUZZ
@given(
    revision=st.integers(min_value=0, max_value=2**40),
    ids=st.lists(st.text(min_size=1, max_size=8), max_size=4),
    kind=st.sampled_from(TrackKind),
    priority=st.sampled_from(TrackPriority),
    enabled=st.booleans(),
    sdp=st.text(max_size=40),
    session=st.text(max_size=10),
)
def test_fuzz_built_client_updates_round_trip(
    revision: int,
    ids: list[str],
    kind: TrackKind,
    priority: TrackPriority,
    enabled: bool,
    sdp: str,
    session: str,
) -> None:
    update = ClientUpdate(
        session=session,
        participant=LocalParticipantState(
            revision=revision,
            tracks=tuple(
                LocalTrackState(id=i, kind=kind, name=i, enabled=enabled, priority=priority)
                for i in ids
            ),
        ),
        peer_connections=(
            PeerConnectionState(
                id="pc",
                description=SessionDescription(type=SdpType.OFFER, revision=revision, sdp=sdp),
                ice=IceState(revision=revision, candidates=(IceCandidate(candidate=sdp),)),
            ),
        ),
    )
    assert parse_message(encode_message(Msg(body=update))) == Msg(body=update)
