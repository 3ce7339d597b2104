"""`worker_main.WorkerHost`, the worker's side of the channel, driven in this process over a
socketpair: commands reach a real `SfuMediaPlane`, replies and events come back framed."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection

from parlour.media.ipc import Channel, Packet, SessionState
from parlour.media.plane import SfuMediaPlane
from parlour.media.worker_main import WorkerHost

pytestmark = pytest.mark.integration

ROOM, ALICE = "RM" + "0" * 32, "PA" + "1" * 32


async def next_event(channel: Channel, name: str) -> dict[str, Any]:
    """The next control message called `name` (others, such as stats, are skipped)."""
    while True:
        frame = await asyncio.wait_for(channel.receive(), 5)
        assert not isinstance(frame, Packet)
        if frame.get("ev") == name:
            return frame


async def test_commands_replies_and_the_end_of_the_channel() -> None:
    plane = await SfuMediaPlane.start("127.0.0.1", 0)
    a, b = socket.socketpair()
    main, worker = await Channel.open(a), await Channel.open(b)
    serving = asyncio.create_task(WorkerHost(plane, worker).serve())
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        stats = await next_event(main, "stats")
        assert stats["stats"]["participants"] == 0
        main.send({"op": "open", "s": 1, "room": ROOM, "participant": ALICE, "codecs": ["VP8"]})
        # Bad SDP: a description error, as the in-process SFU raises it.
        main.send(
            {"op": "describe", "s": 1, "call": 1, "pc": "pc", "kind": "offer", "revision": 1}
            | {"sdp": "not sdp", "tracks": []}
        )
        reply = await next_event(main, "reply")
        assert reply["call"] == 1 and reply["error"] == "description"
        assert SessionState.parse(reply["state"]) == SessionState()
        # A real offer gets an answer with the plane's candidate.
        pc.createDataChannel("chat")
        await pc.setLocalDescription(await pc.createOffer())
        main.send(
            {"op": "describe", "s": 1, "call": 2, "pc": "pc", "kind": "offer", "revision": 2}
            | {"sdp": pc.localDescription.sdp, "tracks": []}
        )
        reply = await next_event(main, "reply")
        assert reply["call"] == 2 and "error" not in reply
        port = plane.socket.candidate_address[1]
        assert f"127.0.0.1 {port} typ host" in reply["sdp"]
        assert list(plane.peers) == [ALICE]
        # A command for an unknown session is ignored; a describe of one still gets a reply.
        main.send({"op": "keyframe", "s": 9, "track": "x"})
        main.send(
            {"op": "describe", "s": 9, "call": 3, "pc": "pc", "kind": "offer", "revision": 1}
            | {"sdp": "", "tracks": []}
        )
        assert (await next_event(main, "reply"))["sdp"] is None
        main.send({"op": "close", "s": 1})
        main.send({"op": "nonsense", "s": 1})  # logged, not fatal
        await asyncio.sleep(0.1)
        assert not plane.peers and not serving.done()
        # The end of the channel is the end of the worker's work.
        main.close()
        await asyncio.wait_for(serving, 5)
    finally:
        await pc.close()
        main.close()
        worker.close()
        serving.cancel()
        plane.close()
        await plane.socket.wait_closed()
        await asyncio.sleep(0.05)  # the peers' DTLS shutdown tasks
