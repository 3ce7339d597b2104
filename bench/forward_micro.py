"""Micro-benchmark of the SFU forwarding path in this process: Python path and C fast path.

    .venv/bin/python -m bench.forward_micro [--fanout 15] [--packets 20000] [--udp]

One publisher's SRTP packets go through the real objects of a room: SRTP unprotect →
`Peer`-like demux and receive statistics → `Producer.forward` → each `Consumer` (rewrite)
→ SRTP protect → a send. Both paths run in the same process, one after the other:

- python: `Consumer.forward` → `RtpRewriter.rewrite` → `SrtpSession.protect` → the send;
- fast (`parlour.media.fastpath`, when built): `FanOut.forward` rewrites, protects and
  sends to every consumer's lane in C (`sendmmsg` with ``--udp``).

Without ``--udp`` the send only counts (no socket): CPU microseconds per egress packet of
the forwarding code alone. With ``--udp`` every packet goes to a UDP socket on 127.0.0.1
(not read: the kernel's work is counted, loopback delivery included). The end-to-end
figure, with the event loop and many processes, is `bench.run`'s.
"""

from __future__ import annotations

import argparse
import os
import socket
import time
from typing import Any

import pylibsrtp

from parlour.media import fastpath, rtp
from parlour.media.negotiation import PublishedTrackInfo, SentTrackInfo
from parlour.media.router import Router
from parlour.media.sdp import Codec
from parlour.media.srtp import SrtpSession

VP8 = Codec(96, "VP8", 90000)


class _Sink:
    """A subscriber's SRTP send side, as `DtlsSrtpTransport.send_rtp` does it (Python), or
    its C `Egress` (fast)."""

    def __init__(
        self, key: bytes, fast: bool, target: socket.socket | None, shared: socket.socket | None
    ) -> None:
        policy = pylibsrtp.Policy(
            key=key,
            ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND,
            srtp_profile=pylibsrtp.Policy.SRTP_PROFILE_AEAD_AES_128_GCM,
        )
        policy.allow_repeat_tx = True
        self.tx = SrtpSession(policy)
        self.sent = 0
        self.sock: socket.socket | None = None
        self.egress: Any = None
        if fast:  # one shared socket and an address each: the fan-out in one sendmmsg
            self.egress = fastpath.native.Egress()
            self.egress.set_srtp(self.tx, fastpath.srtp_context(self.tx))
            if target is not None:  # else: protected, then counted as not sent
                self.sock = shared
                self.egress.set_sender(None, shared, target.getsockname())
        elif target is not None:  # as the server does: a socket connected to the subscriber
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.sock.bind(("127.0.0.1", 0))
            self.sock.connect(target.getsockname())

    @property
    def count(self) -> int:
        if self.egress is None:
            return self.sent
        return int(self.egress.packets if self.sock is not None else self.egress.dropped)

    def send_rtp(self, packet: bytes) -> None:
        data = self.tx.protect(packet)
        if data is not None:
            self.sent += 1
            if self.sock is not None:
                try:
                    self.sock.send(data)
                except OSError:
                    pass

    def send_rtcp(self, packet: bytes) -> None:
        pass

    def close(self) -> None:
        if self.sock is not None and self.egress is None:
            self.sock.close()


def run(fanout: int, packets: int, *, fast: bool = False, udp: bool = False) -> dict[str, float]:
    key = os.urandom(28)
    target: socket.socket | None = None
    shared: socket.socket | None = None
    if udp:
        target = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        target.bind(("127.0.0.1", 0))
        shared = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        shared.bind(("127.0.0.1", 0))
    publisher_ssrc = 0x1234
    info = PublishedTrackInfo("1", "track", "stream", "video", (VP8,), (publisher_ssrc,), (), ())
    router = Router("RM")
    producer = router.produce("PA", info, lambda ssrc: None)
    sinks = []
    for i in range(fanout):
        sent = SentTrackInfo(str(i), "track", "stream", "video", 1000 + i, None, VP8, None, ())
        sink = _Sink(key, fast, target, shared)
        sinks.append(sink)
        consumer = router.consume(producer, sent, sink)
        assert (consumer.lane is not None) == fast
    tx = SrtpSession(
        pylibsrtp.Policy(
            key=key,
            ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND,
            srtp_profile=pylibsrtp.Policy.SRTP_PROFILE_AEAD_AES_128_GCM,
        )
    )
    rx = SrtpSession(
        pylibsrtp.Policy(
            key=key,
            ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND,
            srtp_profile=pylibsrtp.Policy.SRTP_PROFILE_AEAD_AES_128_GCM,
        )
    )
    wire = []
    for seq in range(packets):
        header = bytes([0x80, 96]) + (seq & 0xFFFF).to_bytes(2, "big")
        header += (seq // 3 * 3000).to_bytes(4, "big") + publisher_ssrc.to_bytes(4, "big")
        protected = tx.protect(header + os.urandom(1000))
        assert protected is not None
        wire.append(protected)
    by_ssrc = {publisher_ssrc: producer}
    tracker = producer.tracker[publisher_ssrc]
    start = time.process_time()
    for data in wire:
        packet = rx.unprotect(data)
        if packet is None:
            continue
        p = by_ssrc[int.from_bytes(packet[8:12], "big")]
        tracker.update(rtp.seq(packet), rtp.timestamp(packet), 0)
        p.forward(packet)
    cpu = time.process_time() - start
    egress = sum(s.count for s in sinks)
    for sink in sinks:
        sink.close()
    for sock in (target, shared):
        if sock is not None:
            sock.close()
    return {
        "fanout": fanout,
        "ingress_packets": packets,
        "egress_packets": egress,
        "us_per_egress_packet": cpu / egress * 1e6,
        "egress_pkts_per_cpu_s": egress / cpu,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fanout", type=int, default=15)
    parser.add_argument("--packets", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--udp", action="store_true", help="send to a UDP socket on loopback")
    args = parser.parse_args()
    paths = ["python"] + (["fast"] if fastpath.native is not None else [])
    results: dict[str, dict[str, float]] = {}
    for _ in range(args.repeat):  # interleaved: both paths see the same machine load
        for path in paths:
            r = run(args.fanout, args.packets, fast=path == "fast", udp=args.udp)
            best = results.get(path)
            if best is None or r["us_per_egress_packet"] < best["us_per_egress_packet"]:
                results[path] = r
    where = "with the kernel's UDP send" if args.udp else "without the kernel"
    for path, best in results.items():
        print(
            f"{path:6} fan-out {best['fanout']:.0f}: {best['us_per_egress_packet']:.2f} µs CPU "
            f"per egress packet {where} ({best['egress_pkts_per_cpu_s']:.0f} packets "
            f"per CPU-second), best of {args.repeat}"
        )
    if len(results) == 2:
        ratio = results["python"]["us_per_egress_packet"] / results["fast"]["us_per_egress_packet"]
        print(f"fast path: {ratio:.1f}x the Python path's packets per CPU-second")
    else:
        print("fast path: not built (or PARLOUR_MEDIA_FASTPATH=0)")


if __name__ == "__main__":
    main()
