"""`MediaListener.media_failed`: a transport that never comes up, or whose ICE consent expires
(RFC 7675), is reported once; a healthy one never is. Real aiortc clients over UDP on
127.0.0.1 against `SfuMediaPlane`, with the timeouts shrunk."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import aioice.ice
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from parlour.domain.sids import ParticipantSid, RoomSid, TrackSid
from parlour.media.peer import Peer
from parlour.media.plane import SfuMediaPlane
from tests.helpers import wait_for

pytestmark = pytest.mark.integration

ROOM = RoomSid("RM" + "0" * 32)
ALICE = ParticipantSid("PA" + "1" * 32)
CONSENT_TIMEOUT = 1.5
CHECK_INTERVAL = 0.3  # aioice's consent interval in these tests (5 s by default)


class Listener:
    def __init__(self) -> None:
        self.failed: list[str] = []

    def send_offer(self, pc_id: str, revision: int, sdp: str) -> None:
        pass

    def subscriptions_changed(self, subscribed: Sequence[tuple[TrackSid, str]]) -> None:
        pass

    def media_failed(self, reason: str) -> None:
        self.failed.append(reason)


@pytest.fixture(autouse=True)
def fast_consent_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aioice.ice, "CONSENT_INTERVAL", CHECK_INTERVAL / 1.2)


@pytest.fixture
async def plane() -> AsyncIterator[SfuMediaPlane]:
    sfu = await SfuMediaPlane.start(
        "127.0.0.1", 0, connect_timeout=1.0, consent_timeout=CONSENT_TIMEOUT
    )
    try:
        yield sfu
    finally:
        sfu.close()
        await sfu.socket.wait_closed()
        await asyncio.sleep(0.05)  # the peers' DTLS shutdown tasks


async def offer(plane: SfuMediaPlane, listener: Listener) -> tuple[RTCPeerConnection, Peer, str]:
    """An aiortc client with a data channel; its offer applied, the answer returned."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.createDataChannel("chat")
    await pc.setLocalDescription(await pc.createOffer())
    session = plane.open_session(ROOM, ALICE, listener, ("VP8",))
    assert isinstance(session, Peer)
    answer = await session.client_description("pc", "offer", 1, pc.localDescription.sdp, [])
    assert answer is not None
    return pc, session, answer


async def connect(plane: SfuMediaPlane, listener: Listener) -> tuple[RTCPeerConnection, Peer]:
    pc, peer, answer = await offer(plane, listener)
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
    await wait_for(lambda: None if peer.dtls and peer.dtls.state == "connected" else "dtls")
    return pc, peer


async def test_a_client_that_never_does_ice_fails_after_the_connect_timeout(
    plane: SfuMediaPlane,
) -> None:
    listener = Listener()
    pc, peer, _answer = await offer(plane, listener)  # the answer never reaches the client
    try:
        await wait_for(lambda: None if listener.failed else "no media_failed", limit=10)
        assert len(listener.failed) == 1 and "not connected" in listener.failed[0]
        await asyncio.sleep(0.3)
        assert len(listener.failed) == 1  # at most once
    finally:
        peer.close()
        await pc.close()


async def test_a_client_that_goes_silent_fails_when_consent_expires(
    plane: SfuMediaPlane,
) -> None:
    listener = Listener()
    pc, peer = await connect(plane, listener)
    try:
        # The client's ICE agent stops its consent checks; nothing says goodbye (no DTLS
        # close_notify), as when a laptop lid shuts or the network goes away.
        connection = pc.sctp.transport.transport._connection  # type: ignore[union-attr]
        connection._query_consent_task.cancel()
        await wait_for(lambda: None if listener.failed else "no media_failed", limit=15)
        assert len(listener.failed) == 1 and "consent" in listener.failed[0]
        assert peer.dtls is not None and peer.dtls.state == "connected"  # only ICE knew
    finally:
        peer.close()
        await pc.close()


async def test_a_healthy_client_never_fails(plane: SfuMediaPlane) -> None:
    listener = Listener()
    pc, peer = await connect(plane, listener)
    try:
        await asyncio.sleep(3 * CONSENT_TIMEOUT)  # several consent timeouts of checks
        assert listener.failed == []
        last = plane.socket.last_consent(peer.local.ice_ufrag)
        assert last is not None
    finally:
        peer.close()
        await pc.close()
    await asyncio.sleep(CONSENT_TIMEOUT + 0.5)
    assert listener.failed == []  # nor after close


async def test_a_dtls_close_from_the_client_fails_the_media() -> None:
    # Consent that never expires here, so that a slow close on a loaded machine is still
    # reported as what it is.
    plane = await SfuMediaPlane.start("127.0.0.1", 0, connect_timeout=5.0, consent_timeout=60)
    listener = Listener()
    pc, peer = await connect(plane, listener)
    try:
        # The client's end too (it sends close_notify only once its handshake is done).
        await wait_for(lambda: None if pc.connectionState == "connected" else pc.connectionState)
        await pc.close()  # DTLS close_notify
        await wait_for(lambda: None if listener.failed else "no media_failed", limit=10)
        assert listener.failed == ["DTLS transport closed"]
    finally:
        peer.close()
        plane.close()
        await plane.socket.wait_closed()
