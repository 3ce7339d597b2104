"""`media.ipc`: the framing between the main process and a media worker, over a socketpair,
and the JSON shapes of the state and stats a worker pushes."""

from __future__ import annotations

import json
import socket
import struct
from collections.abc import AsyncIterator

import pytest

from parlour.domain.bandwidth import SimulcastLayer
from parlour.domain.ports import LinkReport
from parlour.domain.sids import ParticipantSid
from parlour.media import ipc
from parlour.media.ipc import Channel, Packet, ProtocolError, SessionState
from parlour.media.plane import MediaCounters, MediaStats


@pytest.fixture
async def ends() -> AsyncIterator[tuple[Channel, socket.socket]]:
    """A channel and the raw socket at the other end."""
    ours, theirs = socket.socketpair()
    channel = await Channel.open(ours)
    try:
        yield channel, theirs
    finally:
        channel.close()
        await channel.wait_closed()
        theirs.close()


async def pair() -> tuple[Channel, Channel]:
    a, b = socket.socketpair()
    return await Channel.open(a), await Channel.open(b)


async def test_control_messages_and_packets_arrive_in_order() -> None:
    a, b = await pair()
    try:
        a.send({"op": "describe", "sdp": "v=0\r\n…", "tracks": ["t1"]})
        assert a.send_packet(7, b"\x80\x60rtp")
        a.send({"op": "close", "s": 1})
        assert await b.receive() == {"op": "describe", "sdp": "v=0\r\n…", "tracks": ["t1"]}
        assert await b.receive() == Packet(7, b"\x80\x60rtp")
        assert await b.receive() == {"op": "close", "s": 1}
        a.close()
        with pytest.raises(EOFError):
            await b.receive()
    finally:
        a.close()
        b.close()


@pytest.mark.parametrize(
    ("frame", "says"),
    [
        (struct.pack("!BI", 1, ipc.MAX_FRAME + 1), "over"),
        (struct.pack("!BI", 9, 2) + b"{}", "kind 9"),
        (struct.pack("!BI", 1, 2) + b"[]", "not a JSON object"),
        (struct.pack("!BI", 1, 3) + b"\xff{}", "not JSON"),
        (struct.pack("!BI", 2, 2) + b"ab", "without a tap id"),
    ],
)
async def test_a_broken_stream_is_a_protocol_error(
    ends: tuple[Channel, socket.socket], frame: bytes, says: str
) -> None:
    channel, raw = ends
    raw.sendall(frame)
    with pytest.raises(ProtocolError, match=says):
        await channel.receive()


async def test_a_frame_cut_short_is_the_end(ends: tuple[Channel, socket.socket]) -> None:
    channel, raw = ends
    raw.sendall(struct.pack("!BI", 1, 10) + b"{}")
    raw.close()
    with pytest.raises(EOFError):
        await channel.receive()


async def test_packets_are_dropped_not_queued_when_the_reader_lags(
    ends: tuple[Channel, socket.socket], monkeypatch: pytest.MonkeyPatch
) -> None:
    channel, _ = ends
    monkeypatch.setattr(ipc, "PACKET_BUFFER_LIMIT", -1)
    assert not channel.send_packet(1, b"x")
    assert channel.packets_dropped == 1


def test_session_state_survives_json() -> None:
    state = SessionState(
        codecs={"cam": ("VP8", (96,)), "mic": ("opus", (111,))},
        bitrates={"cam": 300_000, "mic": 0},
        layers={"cam": (SimulcastLayer(width=320, height=180, bitrate=150_000, active=False),)},
        downlink=(1_200_000, True),
        links=(LinkReport("video", "send", 0.25, 0.004, 1234.5),),
        dominant_speaker=ParticipantSid("PA" + "1" * 32),
    )
    assert SessionState.parse(json.loads(json.dumps(state.to_json()))) == state
    assert SessionState.parse(json.loads(json.dumps(SessionState().to_json()))) == SessionState()


@pytest.mark.parametrize("bad", [None, {}, {"codecs": []}, "state", {"downlink": [1]}])
def test_a_malformed_state_is_a_protocol_error(bad: object) -> None:
    with pytest.raises(ProtocolError):
        SessionState.parse(bad)


def test_stats_survive_json() -> None:
    stats = MediaStats(
        rooms=2,
        participants=5,
        published_tracks={"audio": 5, "video": 4, "data": 1},
        subscribed_tracks={"audio": 9, "video": 8, "data": 0},
        counters=MediaCounters(rtp_packets_sent=10, rtp_bytes_sent=12_000, nacks_received=3),
    )
    assert ipc.parse_stats(json.loads(json.dumps(ipc.stats_to_json(stats)))) == stats
    with pytest.raises(ProtocolError):
        ipc.parse_stats({"rooms": "many"})
