"""DataChannels (SCTP + DCEP) against real aiortc peers over UDP on 127.0.0.1.

The full server stack is hand-wired here, as in `test_transport.py`: one `MediaSocket`, per
endpoint a `DtlsSrtpTransport` whose application data goes to a `DataChannels`, and an
ICE-lite answer written by `answer_sdp()` with an `m=application` section.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import secrets
from collections import Counter, defaultdict
from collections.abc import Callable

import pytest
from aiortc import (
    AudioStreamTrack,
    RTCConfiguration,
    RTCDataChannel,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.sdp import SessionDescription

from parlour.media.dtls import Certificate, DtlsSrtpTransport, parse_fingerprint
from parlour.media.sctp import (
    DEFAULT_REMOTE_MAX_MESSAGE_SIZE,
    MAX_MESSAGE_SIZE,
    SCTP_PORT,
    ChannelInfo,
    DataChannels,
    Message,
)
from parlour.media.udp import Address, MediaSocket
from tests.helpers import wait_for

pytestmark = pytest.mark.integration

TIMEOUT = 20.0  # whole test
WAIT = 10.0  # one condition


class DataEndpoint:
    """What peer.py will be for data: ICE-lite endpoint + DTLS + DataChannels on the socket."""

    def __init__(self, sock: MediaSocket, certificate: Certificate, offer: str) -> None:
        self.sock = sock
        self.ufrag = secrets.token_hex(4)
        self.pwd = secrets.token_hex(12)
        self.addr: Address | None = None
        self.states: list[str] = []
        self.channels: dict[str, ChannelInfo] = {}
        self.messages: defaultdict[str, list[Message]] = defaultdict(list)
        self.closed: list[str] = []
        # Hooks for a relay, called after the recording above.
        self.on_channel: Callable[[str, ChannelInfo], None] | None = None
        self.on_message: Callable[[str, Message], None] | None = None
        self.on_closed: Callable[[str], None] | None = None
        application = next(
            m for m in SessionDescription.parse(offer).media if m.kind == "application"
        )
        self.transport = DtlsSrtpTransport(
            certificate,
            is_server=True,
            remote_fingerprints=offer_fingerprints(offer),
            send=self._send,
            on_rtp=lambda packet: None,
            on_rtcp=lambda packet: None,
            on_data=lambda data: self.dc.data_received(data),
            on_state=self._on_state,
            label=self.ufrag,
        )
        caps = application.sctpCapabilities
        self.dc = DataChannels(
            self.transport,
            on_channel=self._on_channel,
            on_message=self._on_message,
            on_closed=self._on_closed,
            remote_port=application.sctp_port or SCTP_PORT,
            remote_max_message_size=(
                caps.maxMessageSize if caps is not None else DEFAULT_REMOTE_MAX_MESSAGE_SIZE
            ),
            label=self.ufrag,
        )
        sock.register(self.ufrag, self.pwd, self)
        self.transport.start()

    # EndpointHandler
    def ice_connected(self, addr: Address) -> None:
        self.addr = addr

    def datagram_received(self, data: bytes, addr: Address) -> None:
        self.transport.datagram_received(data)

    def _send(self, data: bytes) -> None:
        if self.addr is not None:
            self.sock.sendto(data, self.addr)

    def _on_state(self, state: str) -> None:
        self.states.append(state)
        if state == "connected":
            self.dc.start()

    def _on_channel(self, label: str, info: ChannelInfo) -> None:
        self.channels[label] = info
        if self.on_channel is not None:
            self.on_channel(label, info)

    def _on_message(self, label: str, message: Message) -> None:
        self.messages[label].append(message)
        if self.on_message is not None:
            self.on_message(label, message)

    def _on_closed(self, label: str) -> None:
        self.closed.append(label)
        if self.on_closed is not None:
            self.on_closed(label)

    async def close(self) -> None:
        await self.dc.close()  # SCTP ABORT before DTLS close_notify
        self.transport.close()
        self.sock.unregister(self.ufrag)


def offer_fingerprints(offer: str) -> list[tuple[str, str]]:
    return [
        parse_fingerprint(line.split(":", 1)[1])
        for line in offer.splitlines()
        if line.startswith("a=fingerprint:")
    ]


def answer_sdp(offer: str, endpoint: DataEndpoint, certificate: Certificate, port: int) -> str:
    """Answer an aiortc offer as the SFU will: ice-lite, passive, BUNDLE, SCTP on port 5000."""
    parsed = SessionDescription.parse(offer)
    mids = [m.rtp.muxId for m in parsed.media]
    lines = [
        "v=0",
        "o=- 1 1 IN IP4 127.0.0.1",
        "s=-",
        "t=0 0",
        f"a=group:BUNDLE {' '.join(mids)}",
        "a=ice-lite",
        "a=msid-semantic:WMS *",
    ]
    transport = [
        "c=IN IP4 127.0.0.1",
        f"a=ice-ufrag:{endpoint.ufrag}",
        f"a=ice-pwd:{endpoint.pwd}",
        f"a=fingerprint:{certificate.fingerprint()}",
        "a=setup:passive",
    ]
    candidate = [
        f"a=candidate:1 1 udp 2130706431 127.0.0.1 {port} typ host",
        "a=end-of-candidates",
    ]
    for media in parsed.media:
        if media.kind == "application":
            lines += [
                "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
                *transport,
                f"a=mid:{media.rtp.muxId}",
                f"a=sctp-port:{SCTP_PORT}",
                f"a=max-message-size:{MAX_MESSAGE_SIZE}",
                *candidate,
            ]
        else:  # audio: receive Opus only
            opus = next(c for c in media.rtp.codecs if c.mimeType.lower() == "audio/opus")
            lines += [
                f"m=audio {port} UDP/TLS/RTP/SAVPF {opus.payloadType}",
                *transport,
                f"a=mid:{media.rtp.muxId}",
                "a=recvonly",
                "a=rtcp-mux",
                f"a=rtpmap:{opus.payloadType} opus/48000/2",
                *candidate,
            ]
    return "\r\n".join(lines) + "\r\n"


class Client:
    """An aiortc peer connection and what its data channels received."""

    def __init__(self, *, always_negotiate: bool = False, audio: bool = False) -> None:
        self.pc = RTCPeerConnection(
            RTCConfiguration(iceServers=[], alwaysNegotiateDataChannels=always_negotiate)
        )
        if audio:
            self.pc.addTrack(AudioStreamTrack())
        self.remote: dict[str, RTCDataChannel] = {}  # channels the server opened
        self.messages: defaultdict[str, list[Message]] = defaultdict(list)
        self.closed: list[str] = []
        self.pc.on("datachannel", self._on_datachannel)

    def _on_datachannel(self, channel: RTCDataChannel) -> None:
        label = channel.label
        self.remote[label] = channel
        channel.on("message", lambda message: self.messages[label].append(message))
        channel.on("close", lambda: self.closed.append(label))

    def create_channel(self, label: str, **options: object) -> RTCDataChannel:
        channel = self.pc.createDataChannel(label, **options)  # type: ignore[arg-type]
        channel.on("close", lambda: self.closed.append(label))
        return channel

    async def offer(self) -> str:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return str(self.pc.localDescription.sdp)

    async def answer(self, sdp: str) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))


async def connect(
    sock: MediaSocket, certificate: Certificate, client: Client, *, answer: bool = True
) -> DataEndpoint:
    """Offer from the client, a new endpoint for it, and (unless told not to) the answer."""
    offer = await client.offer()
    assert re.search(r"^m=application \d+ UDP/DTLS/SCTP webrtc-datachannel\r$", offer, re.M)
    endpoint = DataEndpoint(sock, certificate, offer)
    if answer:
        await client.answer(answer_sdp(offer, endpoint, certificate, sock.candidate_address[1]))
    return endpoint


def is_open(*channels: RTCDataChannel) -> Callable[[], str | None]:
    def check() -> str | None:
        states = [c.readyState for c in channels]
        return None if all(s == "open" for s in states) else f"channels {states}"

    return check


def count(
    messages: defaultdict[str, list[Message]], label: str, n: int
) -> Callable[[], str | None]:
    def check() -> str | None:
        got = len(messages[label])
        return None if got >= n else f"{got}/{n} messages on {label!r}"

    return check


def mixed(prefix: str, n: int) -> list[Message]:
    """n messages alternating str and bytes, each unique."""
    return [f"{prefix} {i}" if i % 2 == 0 else f"{prefix} {i}".encode() for i in range(n)]


async def test_client_channels_reach_server_in_order_with_settings(
    media_socket: MediaSocket, clean_loop: None
) -> None:
    async with asyncio.timeout(TIMEOUT):
        certificate = Certificate.generate()
        client = Client(audio=True)  # data BUNDLEd with RTP on one DTLS transport
        reliable = client.create_channel("track-123", protocol="parlour-data")
        lossy = client.create_channel("track-lossy", ordered=False, maxRetransmits=0)
        endpoint = await connect(media_socket, certificate, client)
        try:
            await wait_for(is_open(reliable, lossy))
            assert endpoint.dc.state == "connected"
            assert endpoint.states == ["connecting", "connected"]
            # The client is the DTLS client: even stream ids (RFC 8832 §6).
            assert reliable.id is not None and reliable.id % 2 == 0
            assert lossy.id is not None and lossy.id % 2 == 0
            assert endpoint.channels == {
                "track-123": ChannelInfo(ordered=True, protocol="parlour-data"),
                "track-lossy": ChannelInfo(ordered=False, max_retransmits=0),
            }

            sent_reliable, sent_lossy = mixed("r", 50), mixed("l", 50)
            sent_reliable += ["", b"", "é" * 1000, bytes(range(256)) * 40]  # edge cases
            for a, b in zip(sent_reliable, sent_lossy, strict=False):
                reliable.send(a)
                lossy.send(b)
            for message in sent_reliable[len(sent_lossy) :]:
                reliable.send(message)
            await wait_for(count(endpoint.messages, "track-123", len(sent_reliable)))
            await wait_for(count(endpoint.messages, "track-lossy", len(sent_lossy)))
            assert endpoint.messages["track-123"] == sent_reliable  # types and order kept
            # Unordered, at most one transmission: no loss on loopback, order not promised.
            assert Counter(endpoint.messages["track-lossy"]) == Counter(sent_lossy)
            assert endpoint.dc.errors == endpoint.dc.recv_dropped == 0
            assert endpoint.transport.send_dropped == 0
        finally:
            await client.pc.close()
            await endpoint.close()


async def test_server_channel_reaches_client_with_queued_messages(
    media_socket: MediaSocket, clean_loop: None
) -> None:
    async with asyncio.timeout(TIMEOUT):
        certificate = Certificate.generate()
        client = Client(always_negotiate=True)  # m=application without a client channel
        endpoint = await connect(media_socket, certificate, client, answer=False)
        try:
            # Opened and written to before ICE, DTLS or SCTP exist: queued, not lost.
            assert endpoint.dc.open_channel("MTabc", ordered=False, max_packet_life_time=500)
            assert endpoint.dc.open_channel("MTrel")
            early = mixed("early", 10)
            for message in early:
                assert endpoint.dc.send("MTabc", message)
                assert endpoint.dc.send("MTrel", message)
            assert endpoint.dc.state == "new"

            offer = client.pc.localDescription.sdp
            port = media_socket.candidate_address[1]
            await client.answer(answer_sdp(offer, endpoint, certificate, port))
            await wait_for(lambda: None if len(client.remote) == 2 else f"{client.remote}")
            channel = client.remote["MTabc"]
            assert channel.ordered is False
            assert channel.maxPacketLifeTime == 500
            assert channel.maxRetransmits is None
            assert channel.protocol == ""
            # The server is the DTLS server: odd stream ids (RFC 8832 §6).
            assert channel.id is not None and channel.id % 2 == 1
            assert client.remote["MTrel"].ordered is True

            late = mixed("late", 10)
            await wait_for(lambda: None if endpoint.dc.is_open("MTabc") else "not acked")
            for message in late:
                assert endpoint.dc.send("MTabc", message)
                assert endpoint.dc.send("MTrel", message)
            await wait_for(count(client.messages, "MTabc", 20))
            await wait_for(count(client.messages, "MTrel", 20))
            assert Counter(client.messages["MTabc"]) == Counter(early + late)
            assert client.messages["MTrel"] == early + late
            assert endpoint.dc.dropped == 0
            assert endpoint.dc.buffered_amount("MTabc") == 0

            # The client answers on the server's channel: it reaches the SFU too.
            client.remote["MTrel"].send("ack")
            await wait_for(count(endpoint.messages, "MTrel", 1))
            assert endpoint.messages["MTrel"] == ["ack"]
            assert endpoint.channels == {}  # on_channel is for the peer's channels only
        finally:
            await client.pc.close()
            await endpoint.close()


async def test_two_clients_one_socket_relay_in_order(
    media_socket: MediaSocket, clean_loop: None
) -> None:
    async with asyncio.timeout(TIMEOUT):
        certificate = Certificate.generate()
        publisher, subscriber = Client(), Client(always_negotiate=True)
        # The subscriber's endpoint exists but is not connected while the relay starts.
        ep_sub = await connect(media_socket, certificate, subscriber, answer=False)
        channel = publisher.create_channel("track-A", ordered=True)
        ep_pub = await connect(media_socket, certificate, publisher)

        # A mini SFU: mirror the publisher's channels to the subscriber and relay messages.
        def mirror(label: str, info: ChannelInfo) -> None:
            ep_sub.dc.open_channel(label, **dataclasses.asdict(info))

        def relay(label: str, message: Message) -> None:
            assert ep_sub.dc.send(label, message)

        ep_pub.on_channel, ep_pub.on_message = mirror, relay
        ep_pub.on_closed = ep_sub.dc.close_channel
        try:
            await wait_for(is_open(channel))
            first = mixed("before", 100)
            for message in first:
                channel.send(message)
            await wait_for(count(ep_pub.messages, "track-A", 100))
            assert ep_sub.dc.buffered_amount("track-A") > 0  # queued for the subscriber

            offer = subscriber.pc.localDescription.sdp
            port = media_socket.candidate_address[1]
            await subscriber.answer(answer_sdp(offer, ep_sub, certificate, port))
            await wait_for(count(subscriber.messages, "track-A", 100))
            relayed = subscriber.remote["track-A"]
            assert relayed.ordered is True
            assert relayed.maxRetransmits is None and relayed.maxPacketLifeTime is None

            second = mixed("after", 100)
            for message in second:
                channel.send(message)
            await wait_for(count(subscriber.messages, "track-A", 200))
            assert subscriber.messages["track-A"] == first + second
            assert ep_pub.addr != ep_sub.addr
            assert ep_sub.dc.dropped == ep_pub.dc.dropped == 0

            # The publisher closes its channel: the relay closes the subscriber's.
            channel.close()
            await wait_for(lambda: None if ep_pub.closed == ["track-A"] else f"{ep_pub.closed}")
            await wait_for(lambda: None if subscriber.closed == ["track-A"] else "still open")
            assert ep_sub.dc.channels == {} and ep_pub.dc.channels == {}
            assert ep_sub.closed == []  # closed by us, not by the peer
        finally:
            for client, endpoint in ((publisher, ep_pub), (subscriber, ep_sub)):
                await client.pc.close()
                await endpoint.close()


async def test_close_and_malformed_sctp(media_socket: MediaSocket, clean_loop: None) -> None:
    async with asyncio.timeout(TIMEOUT):
        certificate = Certificate.generate()
        client = Client()
        channel = client.create_channel("track-1")
        endpoint = await connect(media_socket, certificate, client)
        try:
            await wait_for(is_open(channel))
            endpoint.dc.open_channel("MT1")
            await wait_for(lambda: None if "MT1" in client.remote else "no MT1")

            # Garbage straight into DataChannels, and through the client's DTLS session.
            endpoint.dc.data_received(b"")
            for junk in (b"\x00", b"\xff" * 40, secrets.token_bytes(300)):
                endpoint.dc.data_received(junk)
                await client.pc.sctp.transport._send_data(junk)  # type: ignore[union-attr]
            channel.send("after junk")
            await wait_for(count(endpoint.messages, "track-1", 1))
            assert endpoint.messages["track-1"] == ["after junk"]
            assert endpoint.transport.state == "connected"

            # The server closes one channel; the client sees it close.
            endpoint.dc.close_channel("MT1")
            await wait_for(lambda: None if client.closed == ["MT1"] else f"{client.closed}")

            # The server aborts the association: the client's channels and SCTP close.
            await endpoint.dc.close()
            await endpoint.dc.close()  # idempotent
            sctp = client.pc.sctp
            assert sctp is not None
            await wait_for(lambda: None if sctp.state == "closed" else sctp.state)
            await wait_for(lambda: None if channel.readyState == "closed" else "open")
            assert endpoint.closed == []  # no callbacks after close()
            assert not endpoint.dc.send("track-1", "late")
        finally:
            await client.pc.close()
            await endpoint.close()
        assert endpoint.dc.state == "closed"
        assert endpoint.transport.state == "closed"


async def test_client_close_reaches_server(media_socket: MediaSocket, clean_loop: None) -> None:
    async with asyncio.timeout(TIMEOUT):
        certificate = Certificate.generate()
        client = Client()
        channel = client.create_channel("track-1")
        endpoint = await connect(media_socket, certificate, client)
        try:
            await wait_for(is_open(channel))
            await wait_for(lambda: None if "track-1" in endpoint.channels else "no channel")
            await client.pc.close()  # aiortc sends an SCTP ABORT, then DTLS close_notify
            await wait_for(lambda: None if endpoint.closed == ["track-1"] else "not closed")
            await wait_for(lambda: None if endpoint.dc.state == "closed" else endpoint.dc.state)
            await wait_for(
                lambda: None if endpoint.transport.state == "closed" else endpoint.transport.state
            )
        finally:
            await client.pc.close()
            await endpoint.close()


def _reconfig_answer(packet: bytes) -> bool:
    """Whether an SCTP packet carries a RE-CONFIG chunk with a Re-configuration Response
    parameter (RFC 6525 §4.4: chunk type 130, parameter type 16)."""
    pos = 12  # the common header
    while pos + 4 <= len(packet):
        kind = packet[pos]
        length = int.from_bytes(packet[pos + 2 : pos + 4], "big")
        if length < 4:
            return False
        if kind == 130:
            param = pos + 4
            while param + 4 <= pos + length:
                if int.from_bytes(packet[param : param + 2], "big") == 16:
                    return True
                param += (int.from_bytes(packet[param + 2 : param + 4], "big") + 3) & ~3 or 4
        pos += (length + 3) & ~3
    return False


async def test_a_closed_stream_id_rests_before_it_is_used_again(
    media_socket: MediaSocket, clean_loop: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server closes a channel and its answer to the client's own stream reset is lost:
    the server has freed the stream id, the client holds it until it asks again (a
    retransmission, a second or more later). A channel the server opens meanwhile takes
    another id: a DATA_CHANNEL_OPEN on the one the client holds would break the client's
    SCTP (aiortc asserts; RFC 8831 §6.7), as a churning soak once saw."""
    async with asyncio.timeout(TIMEOUT):
        certificate = Certificate.generate()
        client = Client(always_negotiate=True)
        endpoint = await connect(media_socket, certificate, client)
        try:
            endpoint.dc.open_channel("MT1")
            await wait_for(lambda: None if "MT1" in client.remote else "no MT1")
            first = client.remote["MT1"].id
            assert first is not None

            adapter = endpoint.dc._adapter
            send = type(adapter)._send_data
            lost: list[bytes] = []

            async def lossy(self: object, data: bytes) -> None:
                if self is adapter and not lost and _reconfig_answer(data):
                    lost.append(data)
                    return
                await send(self, data)  # type: ignore[arg-type]

            monkeypatch.setattr(type(adapter), "_send_data", lossy)
            endpoint.dc.close_channel("MT1")
            server = endpoint.dc._sctp
            peer = client.pc.sctp
            assert server is not None and peer is not None
            await wait_for(
                lambda: None if lost and first not in server._data_channels else "not reset yet"
            )
            assert first in peer._data_channels  # the client still holds it

            endpoint.dc.open_channel("MT2")
            await wait_for(lambda: None if "MT2" in client.remote else "no MT2")
            second = client.remote["MT2"].id
            assert second is not None and second != first and second % 2 == 1
            assert endpoint.dc.send("MT2", "after the reset")
            await wait_for(count(client.messages, "MT2", 1))
            client.remote["MT2"].send("answer")
            await wait_for(count(endpoint.messages, "MT2", 1))
            # The client asks again and is answered: MT1 closes on its side too.
            await wait_for(lambda: None if "MT1" in client.closed else f"{client.closed}")
            # Were every id the peer allows in use or resting, the one closed longest ago
            # would be taken (here the peer allows only the two ids used so far).
            server._outbound_streams_count = max(first, second) + 1
            endpoint.dc.open_channel("MT3")
            await wait_for(lambda: None if "MT3" in client.remote else "no MT3")
            assert client.remote["MT3"].id == first
            assert endpoint.dc.send("MT3", "again")
            await wait_for(count(client.messages, "MT3", 1))
            assert endpoint.dc.errors == 0
        finally:
            await client.pc.close()
            await endpoint.close()
