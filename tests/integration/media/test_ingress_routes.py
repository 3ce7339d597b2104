"""The C receive routes (`_fastpath.Route`/`Ingress`) against the Python path, on sockets.

A publisher `Peer` (the real Chrome offer: audio, plain VP8 video with RTX) receives one
seeded, recorded SRTP packet sequence on a connected UDP path, read by the real
`MediaSocket._read_path` (`recv_batch`): once with the routes its transport's `Ingress` got
from `Peer._sync_routes` (the video and audio SSRCs forwarded in C), once with no route
(every packet through `DtlsSrtpTransport.rtp_received` → `Peer._on_rtp` →
`Producer.forward`). The
sequence has reordering, gaps, a replayed datagram, padding-only packets, an unknown SSRC,
audio, RTX repairs, a recording tap set midway that raises once, and a subscriber without
a lane added midway (the route then leaves the packets to Python). Both runs must give the
same datagrams to each subscriber (and the same after unprotect), the same receive
statistics (received, highest, missing/NACKs, jitter), history, octets, tap feeds,
transport counters and handler errors, and the same audio levels given to the speaker
observer. `time.monotonic()` is frozen per batch (the same
value for both paths: `_fastpath.set_clock`, `peer.time`), so jitter compares exactly.
"""

from __future__ import annotations

import asyncio
import random
import socket
import types
from collections.abc import Iterator
from typing import Any

import pylibsrtp
import pytest

from parlour.media import fastpath, rtp
from parlour.media import peer as peer_module
from parlour.media.codecs import ServerCapabilities
from parlour.media.dtls import Certificate
from parlour.media.negotiation import SentTrackInfo
from parlour.media.peer import Peer
from parlour.media.router import Producer, Router
from parlour.media.sdp import Codec, Extmap
from parlour.media.srtp import SrtpSession
from parlour.media.udp import MediaSocket
from tests.unit.media.chrome_offer import AUDIO_ID, DATA_ID, OFFER, VIDEO_ID
from tests.unit.media.rtp_packets import ABS_SEND_TIME_URI, build

native = fastpath.native
pytestmark = pytest.mark.skipif(native is None, reason="the C fast path is not built")

AUDIO_SSRC, VIDEO_SSRC, VIDEO_RTX_SSRC = 3364439724, 1142849503, 3162591883
OPUS, VP8, VP8_RTX = 111, 96, 97
GCM = pylibsrtp.Policy.SRTP_PROFILE_AEAD_AES_128_GCM
KEY = bytes(range(28))


def _srtp(direction: int) -> SrtpSession:
    policy = pylibsrtp.Policy(key=KEY, ssrc_type=direction, srtp_profile=GCM)
    policy.allow_repeat_tx = True
    return SrtpSession(policy)


def recorded_batches(seed: int) -> list[list[bytes]]:
    """The publisher's RTP packets, in batches (what one `_read_path` call reads)."""
    r = random.Random(seed)
    payload = r.randbytes
    seq, ts, audio_seq, rtx_seq = r.randrange(0x10000), r.randrange(1 << 32), 7, 100
    sent: dict[int, bytes] = {}
    batches: list[list[bytes]] = []
    for _ in range(90):
        batch: list[bytes] = []
        for _ in range(r.randrange(1, 6)):
            roll = r.random()
            seq = (seq + 1) & 0xFFFF
            if r.random() < 0.3:
                ts = (ts + 3000) & 0xFFFFFFFF
            if roll < 0.08:
                seq = (seq + r.randrange(1, 4)) & 0xFFFF  # a gap: lost on the way
            ext = [(2, payload(3))] if r.random() < 0.7 else None
            if roll > 0.94:  # padding only (probing)
                packet = build(pt=VP8, seq=seq, ts=ts, ssrc=VIDEO_SSRC, payload=b"", padding=200)
            else:
                size = r.choice((1, 40, 300, 1000, 1100))
                packet = build(
                    pt=VP8,
                    marker=r.randrange(2),
                    seq=seq,
                    ts=ts,
                    ssrc=VIDEO_SSRC,
                    ext=ext,
                    payload=payload(size),
                )
            sent[seq] = packet
            batch.append(packet)
            if r.random() < 0.15:  # audio, interleaved
                audio_seq += 1
                level = [(1, bytes([r.randrange(256)]))] if r.random() < 0.7 else None
                batch.append(
                    build(pt=OPUS, seq=audio_seq, ts=960 * audio_seq, ssrc=AUDIO_SSRC, ext=level)
                )
            if r.random() < 0.05:  # a stream nobody published
                batch.append(build(pt=VP8, seq=seq, ts=ts, ssrc=0x0BADF00D, payload=payload(50)))
        if len(batch) > 1 and r.random() < 0.3:  # reordered on the way
            i = r.randrange(len(batch) - 1)
            batch[i], batch[i + 1] = batch[i + 1], batch[i]
        batches.append(batch)
        if r.random() < 0.1:  # an RTX repair of an earlier packet, in a batch of its own
            repaired = sent[r.choice(list(sent))]
            rtx_seq += 1
            batches.append(
                [rtp.wrap_rtx(repaired, ssrc=VIDEO_RTX_SSRC, payload_type=VP8_RTX, seq=rtx_seq)]
            )
    return batches


class Tap:
    """A recording tap that remembers what it was fed, and fails once."""

    def __init__(self, fail_at: int) -> None:
        self.fed: list[bytes] = []
        self.fail_at = fail_at

    def feed(self, packet: bytes) -> None:
        self.fed.append(packet)
        if len(self.fed) == self.fail_at:
            raise ValueError("tap failed")

    def close(self) -> None:
        pass

    @property
    def active(self) -> bool:
        return True


class EgressSink:
    """A subscriber transport's send side in C (a lane), to a UDP socket."""

    def __init__(self, sender: socket.socket, receiver: socket.socket) -> None:
        self.tx = _srtp(pylibsrtp.Policy.SSRC_ANY_OUTBOUND)
        self.egress = native.Egress()
        self.egress.set_srtp(self.tx, fastpath.srtp_context(self.tx))
        assert self.egress.set_sender(None, sender, receiver.getsockname())

    def send_rtp(self, packet: bytes) -> None:
        self.egress.send_rtp(packet)

    def send_rtcp(self, packet: bytes) -> None:
        pass


class PythonSink:
    """A subscriber without an Egress (its consumer has no lane: forwarded in Python)."""

    def __init__(self, sender: socket.socket, receiver: socket.socket) -> None:
        self.tx = _srtp(pylibsrtp.Policy.SSRC_ANY_OUTBOUND)
        self.sender, self.to = sender, receiver.getsockname()

    def send_rtp(self, packet: bytes) -> None:
        data = self.tx.protect(packet)
        if data is not None:  # else dropped, as DtlsSrtpTransport.send_rtp drops it
            self.sender.sendto(data, self.to)

    def send_rtcp(self, packet: bytes) -> None:
        pass


class NoListener:
    def send_offer(self, pc_id: str, revision: int, sdp: str) -> None:
        pass

    def subscriptions_changed(self, subscribed: Any) -> None:
        pass

    def media_failed(self, reason: str) -> None:
        pass


def _udp() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    return sock


def _drain(sock: socket.socket) -> Iterator[bytes]:
    while True:
        try:
            yield sock.recv(4096)
        except BlockingIOError:
            return


def _sent(mid: str, ssrc: int, extensions: tuple[Extmap, ...] = ()) -> SentTrackInfo:
    return SentTrackInfo(
        mid, "t", "s", "video", ssrc, None, Codec(VP8, "VP8", 90000), None, extensions
    )


async def run(batches: list[list[bytes]], routes: bool, monkeypatch: Any) -> dict[str, Any]:
    media = await MediaSocket.bind("127.0.0.1", 0)
    publisher = Peer(
        room_sid="RM" + "0" * 32,
        participant_sid="PA" + "1" * 32,
        router=Router("RM" + "0" * 32),
        socket=media,
        certificate=Certificate.generate(),
        listener=NoListener(),
        capabilities=ServerCapabilities.default(("VP8", "H264")),
        on_close=lambda peer: None,
    )
    socks: list[socket.socket] = []
    try:
        assert await publisher.client_description(
            "pc", "offer", 1, OFFER, [AUDIO_ID, VIDEO_ID, DATA_ID]
        )
        dtls = publisher.dtls
        assert dtls is not None and dtls.ingress is not None
        video: Producer = publisher.producers[VIDEO_ID]
        audio: Producer = publisher.producers[AUDIO_ID]
        assert video.route is not None and audio.route is not None
        assert audio.audio_level_id == 1  # Chrome's ssrc-audio-level
        routed = {VIDEO_SSRC: video.route, AUDIO_SSRC: audio.route}
        assert dtls.ingress.routes == routed  # Peer._sync_routes
        if not routes:
            dtls.ingress.set_routes({})  # every packet through Peer._on_rtp
        # Keyed as DTLS would key it: the context `recv_batch` unprotects with.
        rx = _srtp(pylibsrtp.Policy.SSRC_ANY_INBOUND)
        dtls._rx, dtls._rx_context = rx, fastpath.srtp_context(rx)
        sender = _udp()
        receivers = [_udp() for _ in range(4)]
        path, client = _udp(), _udp()
        path.connect(client.getsockname())
        client.connect(path.getsockname())
        socks += [sender, *receivers, path, client]
        publisher.router.consume(video, _sent("1", 5001), EgressSink(sender, receivers[0]))
        publisher.router.consume(
            video,
            _sent("2", 5002, (Extmap(2, ABS_SEND_TIME_URI),)),
            EgressSink(sender, receivers[1]),
        )
        publisher.router.consume(  # audio to a socket of its own (ordered per stream)
            audio,
            SentTrackInfo(
                "4", "a", "s", "audio", 5004, None, Codec(OPUS, "opus", 48000, 2), None, ()
            ),
            EgressSink(sender, receivers[3]),
        )
        levels: list[tuple[str, int]] = []
        publisher.router.speakers.level = lambda sid, level: levels.append((sid, level))  # type: ignore[method-assign]
        endpoint = types.SimpleNamespace(handler=publisher)
        clock = types.SimpleNamespace(now=1000.0)
        monkeypatch.setattr(peer_module, "time", types.SimpleNamespace(monotonic=lambda: clock.now))
        tx = _srtp(pylibsrtp.Policy.SSRC_ANY_OUTBOUND)
        tap = Tap(fail_at=20)
        route_packets = []
        for number, batch in enumerate(batches):
            if number == len(batches) // 3:
                video.set_tap(tap)
            if number == 2 * len(batches) // 3:  # the route gives way to Python
                publisher.router.consume(video, _sent("3", 5003), PythonSink(sender, receivers[2]))
            clock.now += 0.001 + (number * 7919 % 13) / 1000
            native.set_clock(clock.now)
            for packet in batch:
                data = tx.protect(packet)
                assert data is not None
                client.send(data)
            if number == 5:
                client.send(data)  # replayed: fails to unprotect
            media._read_path(path, ("127.0.0.1", client.getsockname()[1]), endpoint)  # type: ignore[arg-type]
            route_packets.append((video.route.packets, audio.route.packets))
        native.set_clock(None)
        out = []
        for receiver in receivers:
            inbound = _srtp(pylibsrtp.Policy.SSRC_ANY_INBOUND)
            wire = list(_drain(receiver))
            out.append((wire, [inbound.unprotect(d) for d in wire]))
        trackers = {
            ssrc: (t.received, t.base_seq, t.highest_seq, t.missing, t.jitter, t.lost)
            for producer in publisher.producers.values()
            for ssrc, t in producer.tracker.items()
        }
        # The routes follow the SSRC table: a producer re-created for an updated track has
        # its own route, a removed one has none.
        info = video.info
        publisher._remove_producer(VIDEO_ID, ended=False)
        assert dtls.ingress.routes == {AUDIO_SSRC: audio.route}
        publisher._add_producer(info)
        again = publisher.producers[VIDEO_ID]
        assert again is not video
        assert dtls.ingress.routes == {VIDEO_SSRC: again.route, AUDIO_SSRC: audio.route}
        return {
            "out": out,
            "trackers": trackers,
            "history": (list(video.history._packets), list(video.history._seqs)),
            "audio_history": list(publisher.producers[AUDIO_ID].history._packets),
            "octets": (video.octets, publisher.producers[AUDIO_ID].octets),
            "tap": tap.fed,
            "counters": (dtls.rtp_packets_received, dtls.rtp_bytes_received, media.dropped),
            "handler_errors": media.handler_errors,
            "levels": levels,
            "route_packets": route_packets,
        }
    finally:
        native.set_clock(None)
        publisher.close()
        await asyncio.sleep(0.01)
        media.close()
        await media.wait_closed()
        for sock in socks:
            sock.close()


@pytest.mark.parametrize("seed", [1, 2])
async def test_routes_forward_what_the_python_path_forwards(seed: int, monkeypatch: Any) -> None:
    batches = recorded_batches(seed)
    python = await run(batches, routes=False, monkeypatch=monkeypatch)
    fast = await run(batches, routes=True, monkeypatch=monkeypatch)
    # The C run forwarded the video in C until the Python-only subscriber came; the other
    # run never did.
    assert python["route_packets"][-1] == (0, 0)
    taken = [video for video, _audio in fast["route_packets"]]
    third = 2 * len(batches) // 3
    assert taken[third - 1] > 100 and taken[-1] == taken[third - 1]
    audio_taken = fast["route_packets"][-1][1]
    assert audio_taken > 20  # audio kept its route throughout
    assert len(fast["levels"]) > 10  # the audio levels reached the speaker observer
    for key in ("trackers", "history", "audio_history", "octets", "tap", "counters", "levels"):
        assert fast[key] == python[key], key
    assert fast["handler_errors"] == python["handler_errors"] == 1  # the tap's failure
    for (wire_fast, plain_fast), (wire_python, plain_python) in zip(
        fast["out"], python["out"], strict=True
    ):
        assert len(wire_fast) == len(wire_python) > 0
        assert plain_fast == plain_python
        assert wire_fast == wire_python
    # The sequence had what it should: losses still missing, RTX repairs, padding.
    received, _base, _highest, missing, jitter, _lost = fast["trackers"][VIDEO_SSRC]
    assert missing and jitter > 0 and received > 250
    # the replayed datagram: not unprotected, then unknown to the socket (no ICE here)
    assert fast["counters"][2] == 1
    assert len(fast["out"][2][0]) > 0  # the subscriber without a lane got its share


def test_ingress_refuses_what_is_not_a_route() -> None:
    ingress = native.Ingress()
    with pytest.raises(TypeError):
        ingress.set_routes({1: object()})
    with pytest.raises(TypeError):
        ingress.set_routes({1 << 40: object()})
    with pytest.raises(TypeError):
        ingress.set_routes([])
    assert ingress.routes == {}
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock, pytest.raises(TypeError):
        native.recv_batch(sock, 1, 0, object())
