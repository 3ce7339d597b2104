"""Media-signaling channels on the real SFU: the peer opens a data channel with the label
signaling gave it, messages from the client on it reach the listener, and what the service
sends reaches the client. A real aiortc client over UDP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence

import pytest
from aiortc import RTCConfiguration, RTCDataChannel, RTCPeerConnection, RTCSessionDescription

from parlour.domain.sids import ParticipantSid, RoomSid, TrackSid
from parlour.media.peer import Peer
from parlour.media.plane import SfuMediaPlane
from tests.helpers import wait_for

pytestmark = pytest.mark.integration

ROOM = RoomSid("RM" + "0" * 32)
ALICE = ParticipantSid("PA" + "1" * 32)


class Listener:
    def __init__(self) -> None:
        self.messages: list[tuple[str, str]] = []
        self.offers: list[tuple[str, int, str]] = []

    def send_offer(self, pc_id: str, revision: int, sdp: str) -> None:
        self.offers.append((pc_id, revision, sdp))

    def subscriptions_changed(self, subscribed: Sequence[tuple[TrackSid, str]]) -> None:
        pass

    def signaling_message(self, label: str, message: str) -> None:
        self.messages.append((label, message))

    def dominant_speaker_changed(self, participant_sid: ParticipantSid | None) -> None:
        pass

    def media_failed(self, reason: str) -> None:
        pass


@pytest.fixture
async def plane() -> AsyncIterator[SfuMediaPlane]:
    sfu = await SfuMediaPlane.start("127.0.0.1", 0)
    try:
        yield sfu
    finally:
        sfu.close()
        await sfu.socket.wait_closed()
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("client_data_channel", [True, False])
async def test_a_signaling_channel_carries_messages_both_ways(
    plane: SfuMediaPlane, client_data_channel: bool
) -> None:
    """Whether or not the client negotiated SCTP itself (without, the server offers it)."""
    listener = Listener()
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    if client_data_channel:
        pc.createDataChannel("chat")
    else:
        pc.addTransceiver("audio", direction="recvonly")
    received: list[str] = []
    channels: list[RTCDataChannel] = []

    @pc.on("datachannel")
    def on_channel(channel: RTCDataChannel) -> None:
        channels.append(channel)
        channel.on("message", received.append)
        channel.send(json.dumps({"type": "ready"}))

    await pc.setLocalDescription(await pc.createOffer())
    peer = plane.open_session(ROOM, ALICE, listener, ("VP8",))
    assert isinstance(peer, Peer)
    try:
        peer.open_signaling_channel("active_speaker")
        answer = await peer.client_description("pc", "offer", 1, pc.localDescription.sdp, [])
        assert answer is not None
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        if not client_data_channel:  # the server's offer adds the SCTP m-section
            await wait_for(lambda: None if listener.offers else "no server offer")
            _, revision, sdp = listener.offers[-1]
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
            await pc.setLocalDescription(await pc.createAnswer())
            await peer.client_description("pc", "answer", revision, pc.localDescription.sdp, [])
        await wait_for(lambda: None if listener.messages else "no message from the client")
        assert [c.label for c in channels] == ["active_speaker"]
        assert listener.messages == [("active_speaker", '{"type": "ready"}')]
        peer.send_signaling("active_speaker", '{"type":"active_speaker","participant":null}')
        await wait_for(lambda: None if received else "nothing received")
        assert json.loads(received[0]) == {"type": "active_speaker", "participant": None}
        peer.send_signaling("no-such-channel", "{}")  # ignored
    finally:
        peer.close()
        await pc.close()
