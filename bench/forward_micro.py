"""Micro-benchmark of the SFU forwarding path in this process, without the kernel.

    .venv/bin/python -m bench.forward_micro [--fanout 15] [--packets 20000]

One publisher's SRTP packets go through the real objects of a room: `DtlsSrtpTransport`
(SRTP unprotect) → `Peer`-like demux → `Producer.forward` → each `Consumer` (rewrite,
history) → the subscriber's `DtlsSrtpTransport.send_rtp` (SRTP protect) → a send callback
that only counts (no socket). It reports CPU microseconds per egress packet: what the
Python hot path costs on top of the UDP send, the part this code can make faster. The
end-to-end figure, kernel included, is `bench.run`'s.
"""

from __future__ import annotations

import argparse
import os
import time

import pylibsrtp

from parlour.media import rtp
from parlour.media.negotiation import PublishedTrackInfo, SentTrackInfo
from parlour.media.router import Router
from parlour.media.sdp import Codec
from parlour.media.srtp import SrtpSession

VP8 = Codec(96, "VP8", 90000)


class _Sink:
    """A subscriber's SRTP send side, as `DtlsSrtpTransport.send_rtp` does it."""

    def __init__(self, key: bytes) -> None:
        policy = pylibsrtp.Policy(
            key=key,
            ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND,
            srtp_profile=pylibsrtp.Policy.SRTP_PROFILE_AEAD_AES_128_GCM,
        )
        policy.allow_repeat_tx = True
        self.tx = SrtpSession(policy)
        self.sent = 0
        self.bytes = 0

    def send_rtp(self, packet: bytes) -> None:
        data = self.tx.protect(packet)
        if data is not None:
            self.sent += 1
            self.bytes += len(data)

    def send_rtcp(self, packet: bytes) -> None:
        pass


def run(fanout: int, packets: int) -> dict[str, float]:
    key = os.urandom(28)
    publisher_ssrc = 0x1234
    info = PublishedTrackInfo("1", "track", "stream", "video", (VP8,), (publisher_ssrc,), (), ())
    router = Router("RM")
    producer = router.produce("PA", info, lambda ssrc: None)
    sinks = []
    for i in range(fanout):
        sent = SentTrackInfo(str(i), "track", "stream", "video", 1000 + i, None, VP8, None, ())
        sink = _Sink(key)
        sinks.append(sink)
        router.consume(producer, sent, sink)
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
    egress = sum(s.sent for s in sinks)
    return {
        "fanout": fanout,
        "ingress_packets": packets,
        "egress_packets": egress,
        "us_per_egress_packet": cpu / egress * 1e6,
        "python_egress_pkts_per_cpu_s": egress / cpu,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fanout", type=int, default=15)
    parser.add_argument("--packets", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    best = min(
        (run(args.fanout, args.packets) for _ in range(args.repeat)),
        key=lambda r: r["us_per_egress_packet"],
    )
    print(
        f"fan-out {best['fanout']}: {best['us_per_egress_packet']:.2f} µs CPU per egress "
        f"packet without the kernel ({best['python_egress_pkts_per_cpu_s']:.0f} packets per "
        f"CPU-second), best of {args.repeat}"
    )


if __name__ == "__main__":
    main()
