"""Micro-benchmark of the SFU's receive side in this process: the Python chain and C routes.

    .venv/bin/python -m bench.ingress_micro [--fanout 1,7] [--packets 20000] [--repeat 5]

A publisher `Peer` (the real Chromium offer: audio and plain VP8 video) receives its SRTP
video on a connected UDP path, read by the server's own `MediaSocket._read_path`
(`recv_batch`: recvmmsg, SRTP unprotect in C), and forwards it to ``fanout`` subscribers
whose consumers have C lanes (rewrite, protect, `sendmmsg` to a UDP socket on 127.0.0.1,
not read). Both ways run in the same process, interleaved:

- python: no route, every packet through `DtlsSrtpTransport.rtp_received` →
  `Peer._on_rtp` (`LossTracker.update`) → `Producer.forward` (history, octets) →
  `FanOut.forward`;
- routes: the video SSRC's `_fastpath.Route` (`Peer._sync_routes`) does the same in C
  from the receive batch; the packet never reaches Python.

Only the `_read_path` calls are timed (process CPU time): the kernel's receive and send
work is in it, the publisher side (protect, send) is not. The end-to-end figure, with the
event loop and many processes, is `bench.run`'s.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import time
import types
from typing import Any

import pylibsrtp

from parlour.media import fastpath
from parlour.media.codecs import ServerCapabilities
from parlour.media.dtls import Certificate
from parlour.media.negotiation import SentTrackInfo
from parlour.media.peer import Peer
from parlour.media.router import Router
from parlour.media.sdp import Codec
from parlour.media.srtp import SrtpSession
from parlour.media.udp import MediaSocket
from tests.unit.media.chrome_offer import AUDIO_ID, DATA_ID, OFFER, VIDEO_ID

VIDEO_SSRC = 1142849503  # the offer's
GCM = pylibsrtp.Policy.SRTP_PROFILE_AEAD_AES_128_GCM
KEY = bytes(range(28))
BATCH = 16  # datagrams waiting per readiness callback (a busy path)


def _srtp(direction: int) -> SrtpSession:
    policy = pylibsrtp.Policy(key=KEY, ssrc_type=direction, srtp_profile=GCM)
    policy.allow_repeat_tx = True
    return SrtpSession(policy)


class _Sink:
    def __init__(self, sender: socket.socket, target: socket.socket) -> None:
        self.tx = _srtp(pylibsrtp.Policy.SSRC_ANY_OUTBOUND)
        self.egress = fastpath.native.Egress()
        self.egress.set_srtp(self.tx, fastpath.srtp_context(self.tx))
        self.egress.set_sender(None, sender, target.getsockname())

    def send_rtp(self, packet: bytes) -> None:
        self.egress.send_rtp(packet)

    def send_rtcp(self, packet: bytes) -> None:
        pass


class _Listener:
    def send_offer(self, pc_id: str, revision: int, sdp: str) -> None:
        pass

    def subscriptions_changed(self, subscribed: Any) -> None:
        pass

    def media_failed(self, reason: str) -> None:
        pass


def _udp() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    return sock


async def run(fanout: int, packets: int, *, routes: bool) -> dict[str, float]:
    media = await MediaSocket.bind("127.0.0.1", 0)
    peer = Peer(
        room_sid="RM" + "0" * 32,
        participant_sid="PA" + "1" * 32,
        router=Router("RM" + "0" * 32),
        socket=media,
        certificate=Certificate.generate(),
        listener=_Listener(),
        capabilities=ServerCapabilities.default(("VP8", "H264")),
        on_close=lambda peer: None,
    )
    socks = [_udp() for _ in range(4)]
    sender, target, path, client = socks
    try:
        assert await peer.client_description("pc", "offer", 1, OFFER, [AUDIO_ID, VIDEO_ID, DATA_ID])
        dtls = peer.dtls
        assert dtls is not None and dtls.ingress is not None
        if not routes:
            dtls.ingress.set_routes({})
        rx = _srtp(pylibsrtp.Policy.SSRC_ANY_INBOUND)
        dtls._rx, dtls._rx_context = rx, fastpath.srtp_context(rx)  # keyed, as DTLS keys it
        video = peer.producers[VIDEO_ID]
        for i in range(fanout):
            info = SentTrackInfo(
                str(i), "t", "s", "video", 5000 + i, None, Codec(96, "VP8", 90000), None, ()
            )
            assert peer.router.consume(video, info, _Sink(sender, target)).lane is not None
        path.connect(client.getsockname())
        client.connect(path.getsockname())
        tx = _srtp(pylibsrtp.Policy.SSRC_ANY_OUTBOUND)
        wire = []
        for seq in range(packets):
            header = bytes([0x80, 96]) + (seq & 0xFFFF).to_bytes(2, "big")
            header += (seq // 3 * 3000).to_bytes(4, "big") + VIDEO_SSRC.to_bytes(4, "big")
            protected = tx.protect(header + bytes(1000))
            assert protected is not None
            wire.append(protected)
        endpoint = types.SimpleNamespace(handler=peer)
        addr = client.getsockname()
        read = media._read_path
        cpu = 0.0
        clock = time.process_time
        for start in range(0, packets, BATCH):
            for data in wire[start : start + BATCH]:
                client.send(data)
            before = clock()
            read(path, addr, endpoint)  # type: ignore[arg-type]
            cpu += clock() - before
        egress = sum(lane.egress.packets for lane in video._fan.lanes) if video._fan else 0
        assert video.tracker[VIDEO_SSRC].received == packets, "packets were lost on loopback"
        assert (video.route.packets > 0) == routes
        return {
            "ingress_packets": packets,
            "egress_packets": egress,
            "us_per_ingress_packet": cpu / packets * 1e6,
            "us_per_egress_packet": cpu / egress * 1e6,
        }
    finally:
        peer.close()
        await asyncio.sleep(0.01)
        media.close()
        await media.wait_closed()
        for sock in socks:
            sock.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fanout", default="1,7", help="comma-separated fan-outs")
    parser.add_argument("--packets", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    if fastpath.native is None:
        print("fast path: not built (or PARLOUR_MEDIA_FASTPATH=0)")
        return
    for fanout in (int(f) for f in args.fanout.split(",")):
        best: dict[str, dict[str, float]] = {}
        for _ in range(args.repeat):  # interleaved: both ways see the same machine load
            for way in ("python", "routes"):
                r = asyncio.run(run(fanout, args.packets, routes=way == "routes"))
                if (
                    way not in best
                    or r["us_per_ingress_packet"] < best[way]["us_per_ingress_packet"]
                ):
                    best[way] = r
        for way, r in best.items():
            print(
                f"{way:6} fan-out {fanout}: {r['us_per_ingress_packet']:.2f} µs CPU per ingress "
                f"packet, {r['us_per_egress_packet']:.2f} per egress packet "
                f"({1e6 / r['us_per_egress_packet']:.0f} egress packets per CPU-second), "
                f"best of {args.repeat}"
            )
        ratio = best["python"]["us_per_ingress_packet"] / best["routes"]["us_per_ingress_packet"]
        print(
            f"fan-out {fanout}: routes give {ratio:.2f}x the Python chain's packets per CPU-second"
        )


if __name__ == "__main__":
    main()
