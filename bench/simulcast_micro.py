"""Micro-benchmark of simulcast forwarding in this process, without the kernel.

    .venv/bin/python -m bench.simulcast_micro [--fanout 15] [--seconds 20] [--repeat 3]

One publisher sends VP8 simulcast as Chrome does (three SSRCs, 30 fps, 1 / 2 / 5 packets per
frame for the 320×180 / 640×360 / 1280×720 layers, three temporal layers, a keyframe per layer
every 2 s), through the real objects: SRTP unprotect → `Producer.forward` (layer lookup,
history, keyframe detection) → each `Consumer.forward_layer` (one layer of three, seq/timestamp
and VP8 PictureID/TL0PICIDX rewriting) → SRTP protect → a send callback that only counts.
Subscribers have mixed render sizes: a third each gets the low, middle and high layer.

Figures (CPU µs per egress packet and egress packets per CPU-second, best of ``--repeat``):

- ``single``: the same fan-out of one non-simulcast stream (the ``forward_micro`` baseline);
- ``simulcast``: steady layers;
- ``simulcast+twcc``: steady, every subscriber also stamped with transport-wide sequence
  numbers (Chrome subscribers negotiate transport-wide CC);
- ``switching``: every subscriber changes layer every second; the extra CPU over steady,
  divided by the switches done, is the cost of one switch.

The end-to-end figures beside Janus are `bench.run`'s; this isolates what simulcast adds.
"""

from __future__ import annotations

import argparse
import os
import random
import time
from typing import Any

import pylibsrtp

from parlour.media.downlink import Downlink
from parlour.media.negotiation import PublishedTrackInfo, SentTrackInfo
from parlour.media.router import Consumer, Router
from parlour.media.sdp import Codec
from parlour.media.srtp import SrtpSession

VP8 = Codec(96, "VP8", 90000)
LAYER_SSRCS = (0x1000, 0x2000, 0x3000)
PACKETS_PER_FRAME = (1, 2, 5)
SIZES = ((320, 180), (640, 360), (1280, 720))
TEMPORAL = (0, 2, 1, 2)
FPS = 30
KEYFRAME_EVERY = 60  # frames


def _policy(key: bytes, direction: int) -> pylibsrtp.Policy:
    policy = pylibsrtp.Policy(
        key=key, ssrc_type=direction, srtp_profile=pylibsrtp.Policy.SRTP_PROFILE_AEAD_AES_128_GCM
    )
    policy.allow_repeat_tx = True
    return policy


class _Sink:
    """A subscriber's SRTP send side, as `DtlsSrtpTransport.send_rtp` does it."""

    def __init__(self, key: bytes) -> None:
        self.tx = SrtpSession(_policy(key, pylibsrtp.Policy.SSRC_ANY_OUTBOUND))
        self.sent = 0

    def send_rtp(self, packet: bytes) -> None:
        if self.tx.protect(packet) is not None:
            self.sent += 1

    def send_rtcp(self, packet: bytes) -> None:
        pass


def _vp8_payload(pic: int, tl0: int, tid: int, start: bool, key: bool, layer: int) -> bytes:
    desc = bytes(
        [0x90 if start else 0x80, 0xE0, 0x80 | (pic >> 8), pic & 0xFF, tl0, (tid << 6) | 0x20]
    )
    if start and key:
        w, h = SIZES[layer]
        head = b"\x50\x01\x00\x9d\x01\x2a" + w.to_bytes(2, "little") + h.to_bytes(2, "little")
    elif start:
        head = b"\x31\x01\x00"
    else:
        head = b""
    return desc + head + os.urandom(1000 - len(head))


def _stream(seconds: float, layers: tuple[int, ...]) -> list[tuple[float, bytes]]:
    """(send time, plain RTP packet) of every layer, interleaved frame by frame."""
    seqs = [random.randrange(65536) for _ in layers]
    pics = [random.randrange(32768) for _ in layers]
    tl0s = [random.randrange(256) for _ in layers]
    base_ts = [random.randrange(1 << 32) for _ in layers]
    out: list[tuple[float, bytes]] = []
    for frame in range(int(seconds * FPS)):
        key = frame % KEYFRAME_EVERY == 0
        tid = 0 if key else TEMPORAL[frame % len(TEMPORAL)]
        for i, layer in enumerate(layers):
            if tid == 0:
                tl0s[i] = (tl0s[i] + 1) & 0xFF
            count = PACKETS_PER_FRAME[layer]
            for n in range(count):
                header = bytes([0x80, 96 | (0x80 if n == count - 1 else 0)])
                header += seqs[i].to_bytes(2, "big")
                header += ((base_ts[i] + frame * 3000) & 0xFFFFFFFF).to_bytes(4, "big")
                header += LAYER_SSRCS[layer].to_bytes(4, "big")
                payload = _vp8_payload(pics[i], tl0s[i], tid, n == 0, key, layer)
                out.append((frame / FPS, header + payload))
                seqs[i] = (seqs[i] + 1) & 0xFFFF
            pics[i] = (pics[i] + 1) & 0x7FFF
    return out


def run(fanout: int, seconds: float, mode: str) -> dict[str, Any]:
    key = os.urandom(28)
    simulcast = mode != "single"
    layers = (0, 1, 2) if simulcast else (2,)
    ssrcs = tuple(LAYER_SSRCS[i] for i in layers)
    info = PublishedTrackInfo("1", "track", "stream", "video", (VP8,), ssrcs, (), ())
    router = Router("RM")
    producer = router.produce("PA", info, lambda ssrc: None)
    sinks: list[_Sink] = []
    consumers: list[Consumer] = []
    downlink = Downlink(lambda delay, cb: None)
    for i in range(fanout):
        sent = SentTrackInfo(str(i), "track", "stream", "video", 1000 + i, None, VP8, None, ())
        sink = _Sink(key)
        sinks.append(sink)
        consumer = router.consume(producer, sent, sink)
        if mode == "simulcast+twcc":
            consumer.rewriter.transport_cc = downlink.configure(3)
        consumers.append(consumer)
    tx = SrtpSession(_policy(key, pylibsrtp.Policy.SSRC_ANY_OUTBOUND))
    rx = SrtpSession(_policy(key, pylibsrtp.Policy.SSRC_ANY_INBOUND))
    wire = []
    for at, packet in _stream(seconds, layers):
        protected = tx.protect(packet)
        assert protected is not None
        wire.append((at, protected))
    for i, consumer in enumerate(consumers):
        consumer.set_layers(i % 3, 2, 0.0)
    rng = random.Random(7)
    next_switch = 1.0
    switches_before = 0
    start = time.process_time()
    for at, data in wire:
        if mode == "switching" and at >= next_switch:
            next_switch += 1.0
            for consumer in consumers:
                consumer.set_layers(rng.choice([x for x in range(3) if x != consumer.layer]), 2, at)
        packet = rx.unprotect(data)
        if packet is not None:
            producer.forward(packet)
    cpu = time.process_time() - start
    egress = sum(s.sent for s in sinks)
    switches = sum(c.switch.switches for c in consumers if c.switch is not None) - switches_before
    return {
        "mode": mode,
        "fanout": fanout,
        "ingress_packets": len(wire),
        "egress_packets": egress,
        "cpu_s": cpu,
        "switches": switches,
        "us_per_egress_packet": cpu / egress * 1e6 if egress else float("nan"),
        "egress_pkts_per_cpu_s": egress / cpu if cpu else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fanout", type=int, default=15)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    results: dict[str, dict[str, Any]] = {}
    for mode in ("single", "simulcast", "simulcast+twcc", "switching"):
        results[mode] = min(
            (run(args.fanout, args.seconds, mode) for _ in range(args.repeat)),
            key=lambda r: r["us_per_egress_packet"],
        )
        r = results[mode]
        print(
            f"simulcast micro {mode:15} fan-out {r['fanout']}: "
            f"{r['us_per_egress_packet']:.2f} µs CPU per egress packet, "
            f"{r['egress_pkts_per_cpu_s']:.0f} egress packets per CPU-second"
            + (f", {r['switches']} layer switches" if r["switches"] else "")
        )
    steady = results["simulcast"]
    switching = results["switching"]
    if switching["switches"]:
        per_packet = steady["cpu_s"] / steady["egress_packets"]
        extra = switching["cpu_s"] - per_packet * switching["egress_packets"]
        print(
            f"simulcast micro switch cost: {extra / switching['switches'] * 1e6:.0f} µs CPU "
            f"per layer switch (over steady forwarding of the same packets)"
        )


if __name__ == "__main__":
    main()
