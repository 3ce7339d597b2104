"""MediaSocket + DtlsSrtpTransport against real aiortc peers over UDP on 127.0.0.1.

The server side is hand-wired here (no Peer/negotiation yet): a `MediaSocket`, one
`DtlsSrtpTransport` per endpoint, and an answer SDP written by `answer_sdp()`.
"""

from __future__ import annotations

import asyncio
import fractions
import secrets
import struct
from collections.abc import AsyncIterator
from typing import Any

import av
import pytest
from aioice import stun
from aiortc import (
    AudioStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
    VideoStreamTrack,
)
from aiortc.sdp import SessionDescription

from parlour.media.dtls import Certificate, DtlsSrtpTransport, parse_fingerprint
from parlour.media.udp import Address, MediaSocket
from tests.helpers import wait_for

pytestmark = pytest.mark.integration

TIMEOUT = 20.0  # whole test
WAIT = 10.0  # one condition
SERVER_AUDIO_SSRC = 0x5EA7_0001


class SmallVideoTrack(VideoStreamTrack):
    """Black 160x120 frames: cheap to encode, still real VP8."""

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = av.VideoFrame(width=160, height=120)
        for plane in frame.planes:
            plane.update(bytes(plane.buffer_size))
        frame.pts = pts
        frame.time_base = time_base
        return frame


class ServerEndpoint:
    """What peer.py will be: one ICE-lite endpoint on the shared socket + its DTLS-SRTP."""

    def __init__(
        self,
        sock: MediaSocket,
        certificate: Certificate,
        remote_fingerprints: list[tuple[str, str]],
        *,
        forward_audio_from: int | None = None,
    ) -> None:
        self.sock = sock
        self.ufrag = secrets.token_hex(4)
        self.pwd = secrets.token_hex(12)
        self.addr: Address | None = None
        self.rtp: list[bytes] = []
        self.rtcp: list[bytes] = []
        self.states: list[str] = []
        self.forward_audio_from = forward_audio_from
        self.forwarded = 0
        self.transport = DtlsSrtpTransport(
            certificate,
            is_server=True,
            remote_fingerprints=remote_fingerprints,
            send=self._send,
            on_rtp=self._on_rtp,
            on_rtcp=self.rtcp.append,
            on_data=lambda data: None,
            on_state=self.states.append,
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

    def _on_rtp(self, packet: bytes) -> None:
        self.rtp.append(packet)
        if ssrc_of(packet) == self.forward_audio_from:
            # Echo the audio back under our own SSRC: proves SRTP protect on the way out.
            echoed = bytearray(packet)
            struct.pack_into("!I", echoed, 8, SERVER_AUDIO_SSRC)
            self.transport.send_rtp(echoed)
            self.forwarded += 1

    def ssrcs(self) -> set[int]:
        return {ssrc_of(p) for p in self.rtp}

    def close(self) -> None:
        self.transport.close()
        self.sock.unregister(self.ufrag)


def ssrc_of(packet: bytes) -> int:
    return int.from_bytes(packet[8:12], "big")


def answer_sdp(
    offer: str,
    endpoint: ServerEndpoint,
    certificate: Certificate,
    port: int,
    *,
    send_audio_ssrc: int | None = None,
) -> str:
    """Answer an aiortc offer as the SFU will: ice-lite, passive, BUNDLE, rtcp-mux."""
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
    for media in parsed.media:
        if media.kind == "audio":
            codecs = [c for c in media.rtp.codecs if c.mimeType.lower() == "audio/opus"]
        else:
            vp8 = next(c for c in media.rtp.codecs if c.mimeType.lower() == "video/vp8")
            codecs = [vp8] + [
                c
                for c in media.rtp.codecs
                if c.mimeType.lower() == "video/rtx" and c.parameters.get("apt") == vp8.payloadType
            ]
        sending = media.kind == "audio" and send_audio_ssrc is not None
        pts = [str(c.payloadType) for c in codecs]
        lines += [
            f"m={media.kind} {port} UDP/TLS/RTP/SAVPF {' '.join(pts)}",
            "c=IN IP4 127.0.0.1",
            f"a=mid:{media.rtp.muxId}",
            "a=sendrecv" if sending else "a=recvonly",
            "a=rtcp-mux",
            f"a=ice-ufrag:{endpoint.ufrag}",
            f"a=ice-pwd:{endpoint.pwd}",
            f"a=fingerprint:{certificate.fingerprint()}",
            "a=setup:passive",
        ]
        for codec in codecs:
            name = codec.mimeType.split("/")[1]
            channels = f"/{codec.channels}" if codec.channels else ""
            lines.append(f"a=rtpmap:{codec.payloadType} {name}/{codec.clockRate}{channels}")
            if codec.parameters:
                params = ";".join(f"{k}={v}" for k, v in codec.parameters.items())
                lines.append(f"a=fmtp:{codec.payloadType} {params}")
            for feedback in codec.rtcpFeedback:
                fb = feedback.type + (f" {feedback.parameter}" if feedback.parameter else "")
                lines.append(f"a=rtcp-fb:{codec.payloadType} {fb}")
        if sending:
            lines += [
                f"a=msid:parlour-stream parlour-audio-{media.rtp.muxId}",
                f"a=ssrc:{send_audio_ssrc} cname:parlour",
            ]
        lines += [
            f"a=candidate:1 1 udp 2130706431 127.0.0.1 {port} typ host",
            "a=end-of-candidates",
        ]
    return "\r\n".join(lines) + "\r\n"


def offer_fingerprints(offer: str) -> list[tuple[str, str]]:
    return [
        parse_fingerprint(line.split(":", 1)[1])
        for line in offer.splitlines()
        if line.startswith("a=fingerprint:")
    ]


def offer_ssrcs(offer: str) -> dict[str, int]:
    """kind → the primary (first) SSRC aiortc announced for it."""
    return {m.kind: m.ssrc[0].ssrc for m in SessionDescription.parse(offer).media}


async def connect_client(
    sock: MediaSocket,
    certificate: Certificate,
    *,
    video: bool = True,
    echo_audio: bool = False,
    wrong_fingerprint: bool = False,
) -> tuple[RTCPeerConnection, ServerEndpoint, dict[str, int]]:
    """Create an aiortc client, answer its offer from a new ServerEndpoint."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTrack(AudioStreamTrack())
    if video:
        pc.addTrack(SmallVideoTrack())
    await pc.setLocalDescription(await pc.createOffer())
    offer = pc.localDescription.sdp
    ssrcs = offer_ssrcs(offer)
    fingerprints = offer_fingerprints(offer)
    if wrong_fingerprint:
        fingerprints = [parse_fingerprint(Certificate.generate().fingerprint())]
    endpoint = ServerEndpoint(
        sock,
        certificate,
        fingerprints,
        forward_audio_from=ssrcs["audio"] if echo_audio else None,
    )
    answer = answer_sdp(
        offer,
        endpoint,
        certificate,
        sock.candidate_address[1],
        send_audio_ssrc=SERVER_AUDIO_SSRC if echo_audio else None,
    )
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
    return pc, endpoint, ssrcs


async def test_aiortc_client_media_both_ways(media_socket: MediaSocket, clean_loop: None) -> None:
    async with asyncio.timeout(TIMEOUT):
        certificate = Certificate.generate()
        pc, endpoint, ssrcs = await connect_client(media_socket, certificate, echo_audio=True)
        try:
            audio_ssrc, video_ssrc = ssrcs["audio"], ssrcs["video"]

            def connected() -> str | None:
                dtls = pc.getTransceivers()[0].sender.transport.state
                if pc.iceConnectionState not in ("completed", "connected"):
                    return f"ICE {pc.iceConnectionState}"
                if dtls != "connected" or endpoint.transport.state != "connected":
                    return f"DTLS client {dtls}, server {endpoint.transport.state}"
                return None

            await wait_for(connected)
            assert endpoint.addr is not None
            assert media_socket.selected_address(endpoint.ufrag) == endpoint.addr
            assert endpoint.states == ["connecting", "connected"]
            assert endpoint.transport.srtp_profile == "SRTP_AEAD_AES_128_GCM"

            # Decrypted RTP from both announced SSRCs, and RTCP sender reports.
            def media_arrived() -> str | None:
                missing = {audio_ssrc, video_ssrc} - endpoint.ssrcs()
                if missing:
                    return f"no RTP from {missing} (got {endpoint.ssrcs()})"
                if audio_ssrc not in {int.from_bytes(p[4:8], "big") for p in sr(endpoint)}:
                    return f"no SR from audio ({len(endpoint.rtcp)} RTCP packets)"
                return None

            await wait_for(media_arrived)
            assert all(p[0] >> 6 == 2 for p in endpoint.rtp)  # RTP version 2, in the clear
            assert endpoint.transport.srtp_errors == 0

            # aiortc decodes the audio we protected and sent back.
            receiver = next(t.receiver for t in pc.getTransceivers() if t.kind == "audio")
            frame = await asyncio.wait_for(receiver.track.recv(), WAIT)
            assert isinstance(frame, av.AudioFrame)
            assert frame.time_base == fractions.Fraction(1, 48000)
            assert endpoint.forwarded > 0
        finally:
            await pc.close()
            endpoint.close()
            endpoint.close()
        assert endpoint.transport.state == "closed"
        assert media_socket.valid_addresses(endpoint.ufrag) == {}


def sr(endpoint: ServerEndpoint) -> list[bytes]:
    return [p for p in endpoint.rtcp if len(p) >= 8 and p[1] == 200]


async def test_two_clients_share_one_socket(media_socket: MediaSocket, clean_loop: None) -> None:
    async with asyncio.timeout(TIMEOUT):
        certificate = Certificate.generate()
        first = await connect_client(media_socket, certificate, video=False)
        second = await connect_client(media_socket, certificate, video=False)
        try:
            (_, ep1, ssrcs1), (_, ep2, ssrcs2) = first, second
            assert ep1.ufrag != ep2.ufrag

            def both_receive() -> str | None:
                if ssrcs1["audio"] not in ep1.ssrcs() or ssrcs2["audio"] not in ep2.ssrcs():
                    return f"endpoint SSRCs {ep1.ssrcs()} / {ep2.ssrcs()}"
                return None

            await wait_for(both_receive)
            assert ep1.addr != ep2.addr
            # Each endpoint got only its own client's media.
            assert ep1.ssrcs() == {ssrcs1["audio"]}
            assert ep2.ssrcs() == {ssrcs2["audio"]}
        finally:
            for pc, ep, _ in (first, second):
                await pc.close()
                ep.close()


async def test_wrong_remote_fingerprint_fails(media_socket: MediaSocket, clean_loop: None) -> None:
    async with asyncio.timeout(TIMEOUT):
        certificate = Certificate.generate()
        pc, endpoint, _ = await connect_client(
            media_socket, certificate, video=False, wrong_fingerprint=True
        )
        try:
            await wait_for(
                lambda: None if endpoint.transport.state == "failed" else endpoint.transport.state
            )
            await wait_for(lambda: None if pc.connectionState == "failed" else pc.connectionState)
            assert "connected" not in endpoint.states
            assert endpoint.rtp == []
        finally:
            await pc.close()
            endpoint.close()
        assert endpoint.transport.state == "failed"


class RawClient(asyncio.DatagramProtocol):
    """A bare UDP client that collects what the server sends back."""

    def __init__(self) -> None:
        self.received: asyncio.Queue[bytes] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None
        self.lost = asyncio.get_running_loop().create_future()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost.set_result(None)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.received.put_nowait(data)

    @property
    def address(self) -> Address:
        assert self.transport is not None
        host, port = self.transport.get_extra_info("sockname")[:2]
        return host, port

    async def check(self, server: Address, username: str, pwd: str) -> stun.Message:
        request = stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.REQUEST)
        request.attributes["USERNAME"] = username
        request.attributes["PRIORITY"] = 1853817087
        request.attributes["ICE-CONTROLLING"] = 7
        request.attributes["USE-CANDIDATE"] = None
        request.add_message_integrity(pwd.encode())
        assert self.transport is not None
        self.transport.sendto(bytes(request), server)
        response = stun.parse_message(await asyncio.wait_for(self.received.get(), 5))
        assert response.transaction_id == request.transaction_id
        return response


class RecordingHandler:
    def __init__(self) -> None:
        self.connected: list[Address] = []
        self.datagrams: list[bytes] = []

    def ice_connected(self, addr: Address) -> None:
        self.connected.append(addr)

    def datagram_received(self, data: bytes, addr: Address) -> None:
        self.datagrams.append(data)


@pytest.fixture
async def raw_client() -> AsyncIterator[RawClient]:
    loop = asyncio.get_running_loop()
    transport, client = await loop.create_datagram_endpoint(RawClient, local_addr=("127.0.0.1", 0))
    try:
        yield client
    finally:
        transport.close()
        await client.lost  # the socket is closed in connection_lost


async def test_stun_auth_and_garbage_over_udp(
    media_socket: MediaSocket, raw_client: RawClient, clean_loop: None
) -> None:
    async with asyncio.timeout(TIMEOUT):
        server = media_socket.candidate_address
        handler = RecordingHandler()
        media_socket.register("ufragA", "pwd-aaaaaaaaaaaaaaaaaaaaaa", handler)
        assert raw_client.transport is not None

        # Wrong password: 401, and the address stays invalid.
        response = await raw_client.check(server, "ufragA:cli", "wrong-pwd-xxxxxxxxxxxxxx")
        assert response.message_class == stun.Class.ERROR and response.error_code == 401
        assert media_socket.valid_addresses("ufragA") == {}
        raw_client.transport.sendto(b"\x80\x60" + b"\x00" * 30, server)

        # Garbage of every class must not break the socket.
        for junk in (b"", b"\x00", b"\x01" * 30, b"\x16" * 30, b"\x80" * 30, b"\xff" * 30):
            raw_client.transport.sendto(junk, server)

        # A valid check still works and validates the client's address.
        response = await raw_client.check(server, "ufragA:cli", "pwd-aaaaaaaaaaaaaaaaaaaaaa")
        assert response.message_class == stun.Class.RESPONSE
        assert response.attributes["XOR-MAPPED-ADDRESS"] == raw_client.address
        assert response.check_message_integrity(b"pwd-aaaaaaaaaaaaaaaaaaaaaa")
        assert handler.connected == [raw_client.address]
        assert handler.datagrams == []  # nothing before validation was delivered

        raw_client.transport.sendto(b"\x80\x60after", server)
        await wait_for(lambda: None if handler.datagrams else "no datagram", limit=5)
        assert handler.datagrams == [b"\x80\x60after"]
        media_socket.unregister("ufragA")


async def test_selected_address_gets_a_connected_socket_on_the_same_port(
    media_socket: MediaSocket, raw_client: RawClient, clean_loop: None
) -> None:
    async with asyncio.timeout(TIMEOUT):
        server = media_socket.candidate_address
        pwd = "pwd-bbbbbbbbbbbbbbbbbbbbbb"
        handler = RecordingHandler()
        media_socket.register("ufragB", pwd, handler)
        assert media_socket.connected_sender("ufragB") is None  # nothing selected yet
        assert raw_client.transport is not None

        response = await raw_client.check(server, "ufragB:cli", pwd)
        assert response.message_class == stun.Class.RESPONSE
        send = media_socket.connected_sender("ufragB")
        assert send is not None and media_socket.paths_failed == 0

        # Media from the client now lands on the connected socket and reaches the handler
        # like before; what we send through it arrives from the server's one port.
        raw_client.transport.sendto(b"\x80\x60via-path", server)
        await wait_for(lambda: None if handler.datagrams else "no datagram", limit=5)
        assert handler.datagrams == [b"\x80\x60via-path"]
        send(b"\x80\x60to-client")
        assert await asyncio.wait_for(raw_client.received.get(), 5) == b"\x80\x60to-client"

        # Consent checks keep working through it.
        response = await raw_client.check(server, "ufragB:cli", pwd)
        assert response.message_class == stun.Class.RESPONSE
        assert media_socket.connected_sender("ufragB") is not None

        # Forgetting the address (consent expired) or the endpoint closes the socket.
        media_socket.forget_address("ufragB", raw_client.address)
        assert media_socket.connected_sender("ufragB") is None
        raw_client.transport.sendto(b"\x80\x60dropped", server)  # no longer valid
        response = await raw_client.check(server, "ufragB:cli", pwd)
        assert media_socket.connected_sender("ufragB") is not None
        media_socket.unregister("ufragB")
        assert media_socket.connected_sender("ufragB") is None
        assert handler.datagrams == [b"\x80\x60via-path"]


async def test_a_taken_media_port_fails_to_bind_despite_port_sharing(
    media_socket: MediaSocket,
) -> None:
    host, port = media_socket.candidate_address
    with pytest.raises(OSError):
        await MediaSocket.bind(host, port)
