"""The Python SDK's peer connection answers a server offer that crosses a track the client
has just added: aiortc, given a transceiver that is in neither the offer nor any earlier
negotiation, failed the answer (`ValueError: None is not in list`; found by the soak, where
a participant published a track while the SFU offered it another's)."""

from __future__ import annotations

from aiortc import AudioStreamTrack, RTCPeerConnection, VideoStreamTrack

from parlour.client.peer import ClientPeer


async def test_a_server_offer_is_answered_while_a_new_track_waits_for_its_own() -> None:
    server = RTCPeerConnection()
    server.addTransceiver(AudioStreamTrack(), direction="sendonly")
    await server.setLocalDescription(await server.createOffer())
    client = ClientPeer("pc-1", lambda *a: None, lambda *a: None)
    try:
        camera = client.add_track(VideoStreamTrack())  # not in the server's offer
        answer = await client.apply("offer", 1, server.localDescription.sdp)
        assert answer is not None and answer[0] == 1
        assert "m=audio" in answer[1] and "m=video" not in answer[1]
        assert camera.mid is None  # negotiated by the client's own next offer
        next_offer = await client.create_offer()
        assert next_offer is not None and "m=video" in next_offer[1]
    finally:
        await client.close()
        await server.close()


async def test_a_description_arriving_after_close_is_ignored() -> None:
    """The room is leaving (peer closed) when the server's offer arrives: nothing to apply
    it to, and no error (the soak saw `InvalidStateError` escape the SDK's read loop)."""
    server = RTCPeerConnection()
    server.addTransceiver(AudioStreamTrack(), direction="sendonly")
    await server.setLocalDescription(await server.createOffer())
    client = ClientPeer("pc-2", lambda *a: None, lambda *a: None)
    try:
        await client.close()
        assert await client.apply("offer", 1, server.localDescription.sdp) is None
        assert await client.apply("answer", 1, server.localDescription.sdp) is None
    finally:
        await server.close()
