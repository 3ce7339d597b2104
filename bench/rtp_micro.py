"""Micro-benchmark of the per-packet hot path in `parlour.media.rtp` (results to stdout).

Run: ``.venv/bin/python bench/rtp_micro.py [--number N]``. Not part of the test suite.
Reports the best of several repeats in ns per operation, call overhead included.
"""

from __future__ import annotations

import argparse
import platform
import sys
import timeit

from parlour.media import rewrite, rtcp, rtp, stats

CHROME = {
    rtp.AUDIO_LEVEL_URI: 1,
    "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time": 2,
    rtp.MID_URI: 4,
}
SUBSCRIBER = {rtp.MID_URI: 9, rtp.AUDIO_LEVEL_URI: 10}


def packet(*, ext: list[tuple[int, bytes]] | None = None, size: int = 1100) -> bytes:
    block = rtp.pack_extensions(ext or [])
    b0 = 0x90 if block else 0x80
    return bytes([b0, 96, 0x12, 0x34, 0, 0, 0x10, 0, 0, 0, 0, 7]) + block + bytes(size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--number", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    video = packet()
    video_mid = packet(ext=[(4, b"0")])
    audio = packet(ext=[(1, b"\x85"), (2, b"\x01\x02\x03")], size=100)
    ext = rewrite.ExtensionRewriter(CHROME, SUBSCRIBER, mid="3")

    plain = rewrite.RtpRewriter(0xABCD, 100)
    with_mid = rewrite.RtpRewriter(0xABCD, 100, extensions=ext)
    history = rtp.PacketHistory(512)
    for s in range(512):
        history.put(video[:2] + s.to_bytes(2, "big") + video[4:64])
    tracker = stats.LossTracker(7)
    for s in range(10):
        tracker.update(s, s * 3000, s * 3000)
    nack = rtcp.nack(1, 2, [100, 101, 105, 130])
    sr = rtcp.sender_report(1, 2**63, 3, 4, 5)

    ns = {
        "rtp": rtp,
        "rtcp": rtcp,
        "plain": plain.rewrite,
        "with_mid": with_mid.rewrite,
        "get": history.get,
        "put": history.put,
        "update": tracker.update,
        "video": video,
        "video_mid": video_mid,
        "audio": audio,
        "vp8": b"\x90\x80\x85\x10\x00",
        "nack": nack,
        "sr": sr,
    }
    cases = [
        ("rewrite video 1100 B, no ext, no MID", "plain(video)"),
        ("rewrite video 1100 B, insert MID block", "with_mid(video)"),
        ("rewrite video 1100 B, replace MID ext", "with_mid(video_mid)"),
        ("rewrite audio 100 B, level+abs-send-time -> level+MID", "with_mid(audio)"),
        ("PacketHistory.get (NACK lookup, hit)", "get(300)"),
        ("PacketHistory.get (miss)", "get(5000)"),
        ("PacketHistory.put", "put(video)"),
        ("LossTracker.update (duplicate seq, no gap)", "update(7, 0, 0)"),
        ("is_keyframe VP8", "rtp.is_keyframe('VP8', vp8)"),
        ("parse_rtcp NACK (4 seqs)", "rtcp.parse_rtcp(nack)"),
        ("parse_rtcp SR", "rtcp.parse_rtcp(sr)"),
        ("wrap_rtx 1100 B", "rtp.wrap_rtx(video, ssrc=5, payload_type=97, seq=1)"),
    ]
    print(f"python {sys.version.split()[0]} on {platform.machine()} ({platform.processor()})")
    for name, stmt in cases:
        best = min(timeit.repeat(stmt, globals=ns, number=args.number, repeat=args.repeat))
        print(f"{best / args.number * 1e9:8.0f} ns/op  {name}")


if __name__ == "__main__":
    main()
