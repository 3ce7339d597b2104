"""The benchmark's pre-encoded media loop (`bench.media_loop`): encode, packetize, account."""

from __future__ import annotations

import random
import struct
from pathlib import Path

import av
import pytest
from aiortc.codecs.vpx import VpxPayloadDescriptor

from bench.media_loop import (
    DEFAULT_MAX_PAYLOAD,
    STAMP_MAGIC,
    STAMP_SIZE,
    AudioSender,
    EncodedLoop,
    ReceiverStats,
    StreamStats,
    VideoSender,
    rtp_payload,
)

FPS = 30
KBPS = 300


@pytest.fixture(scope="module")
def loop() -> EncodedLoop:
    """1 s of 320x180 at 300 kbit/s, keyframes at frames 0 and 15."""
    return EncodedLoop.build(
        seconds=1.0, fps=FPS, video_kbps=KBPS, width=320, height=180, keyframe_every_s=0.5
    )


# -- helpers ----------------------------------------------------------------------------------


def parse_rtp(packet: bytes) -> dict[str, int | bytes]:
    """A minimal, independent RTP parser for plain packets (no CSRC/extension/padding)."""
    b0, b1, seq, ts, ssrc = struct.unpack_from(">BBHII", packet)
    assert b0 == 0x80
    return {"marker": b1 >> 7, "pt": b1 & 0x7F, "seq": seq, "ts": ts, "ssrc": ssrc}


def vp8_descriptor(payload: bytes) -> tuple[int, int, int, int]:
    """(S bit, PID, PictureID, descriptor length) of our own 4-byte descriptor."""
    assert payload[0] & 0x80, "X bit"
    assert payload[1] == 0x80, "I bit only"
    assert payload[2] & 0x80, "15-bit PictureID"
    return (payload[0] >> 4) & 1, payload[0] & 0x07, ((payload[2] & 0x7F) << 8) | payload[3], 4


def strip_stamp(payload: bytes) -> tuple[bytes, int]:
    """Split a payload into (data, stamp nanoseconds)."""
    assert payload[-STAMP_SIZE:-8] == STAMP_MAGIC
    return payload[:-STAMP_SIZE], int.from_bytes(payload[-8:], "big")


def rewrap(
    packet: bytes,
    *,
    csrcs: tuple[int, ...] = (),
    ext: tuple[int, bytes] | None = None,
    padding: int = 0,
) -> bytes:
    """Rebuild a plain RTP packet with CSRCs, a header extension block and/or padding."""
    b1, rest = packet[1], packet[2:12]
    b0 = 0x80 | len(csrcs) | (0x10 if ext else 0) | (0x20 if padding else 0)
    out = bytes([b0, b1]) + rest + b"".join(c.to_bytes(4, "big") for c in csrcs)
    if ext:
        profile, data = ext
        data += bytes(-len(data) % 4)
        out += struct.pack(">HH", profile, len(data) // 4) + data
    out += packet[12:]
    if padding:
        out += bytes(padding - 1) + bytes([padding])
    return out


def video_packets(loop: EncodedLoop, frames: int, **kw: int) -> list[bytes]:
    sender = VideoSender(loop, 0x1234, **kw)
    return [p for i in range(frames) for p in sender.next_frame(1_000 + i)]


# -- the encoded loop -------------------------------------------------------------------------


def test_loop_shape_bitrate_and_keyframes(loop: EncodedLoop) -> None:
    assert len(loop.video_frames) == FPS
    assert loop.keyframe_indices == [0, 15]
    assert len(loop.audio_frames) == 50
    assert 0.75 * KBPS * 1000 <= loop.video_bitrate_bps <= 1.25 * KBPS * 1000
    assert 16_000 <= loop.audio_bitrate_bps <= 64_000
    # The VP8 frame tag agrees: bit 0 of the first byte is 0 on keyframes.
    assert [not f[0] & 1 for f in loop.video_frames] == loop.video_keyframe
    assert all(
        f[3:6] == b"\x9d\x01\x2a"
        for f, k in zip(loop.video_frames, loop.video_keyframe, strict=True)
        if k
    )


def test_pyav_decodes_the_loop(loop: EncodedLoop) -> None:
    video = av.CodecContext.create("vp8", "r")
    pictures = [f for data in loop.video_frames for f in video.decode(av.Packet(data))]
    assert len(pictures) == len(loop.video_frames)
    assert {(f.width, f.height) for f in pictures} == {(320, 180)}
    audio = av.CodecContext.create("opus", "r")
    samples = [f.samples for data in loop.audio_frames for f in audio.decode(av.Packet(data))]
    assert sum(samples) == 960 * len(loop.audio_frames)


def test_bad_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="even"):
        EncodedLoop.build(seconds=0.1, width=321, height=180)


def test_save_load_round_trip(loop: EncodedLoop, tmp_path: Path) -> None:
    path = tmp_path / "loop.bin"
    loop.save(path)
    again = EncodedLoop.load(path)
    assert again.video_frames == loop.video_frames
    assert again.video_keyframe == loop.video_keyframe
    assert again.audio_frames == loop.audio_frames
    assert (again.fps, again.width, again.height, again.video_kbps) == (FPS, 320, 180, KBPS)
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(ValueError, match="truncated"):
        EncodedLoop.load(path)


# -- sending ----------------------------------------------------------------------------------


def test_video_packetization_round_trip(loop: EncodedLoop) -> None:
    sender = VideoSender(
        loop,
        0xCAFEBABE,
        98,
        first_seq=65_530,
        first_timestamp=2**32 - 6000,
        first_picture_id=0x7FFE,
    )
    seq, ts, pid = 65_530, 2**32 - 6000, 0x7FFE
    total = 0
    for i in range(2 * len(loop.video_frames) + 1):  # wraps the loop, seq, ts and PictureID
        now = 10**12 + i
        packets = sender.next_frame(now)
        assert packets
        data = b""
        for j, packet in enumerate(packets):
            header = parse_rtp(packet)
            assert header == {
                "marker": int(j == len(packets) - 1),
                "pt": 98,
                "seq": seq,
                "ts": ts,
                "ssrc": 0xCAFEBABE,
            }
            assert len(packet) - 12 <= DEFAULT_MAX_PAYLOAD
            payload, stamp = strip_stamp(packet[12:])
            assert stamp == now
            s_bit, part, picture_id, size = vp8_descriptor(payload)
            assert (s_bit, part, picture_id) == (int(j == 0), 0, pid)
            # aiortc's parser reads the same descriptor.
            descriptor, rest = VpxPayloadDescriptor.parse(payload)
            assert descriptor.partition_start == s_bit
            assert descriptor.partition_id == 0
            assert descriptor.picture_id == pid
            assert rest == payload[size:]
            data += rest
            seq = (seq + 1) & 0xFFFF
        assert data == loop.video_frames[i % len(loop.video_frames)]
        ts = (ts + 3000) & 0xFFFFFFFF
        pid = (pid + 1) & 0x7FFF
        total += len(packets)
    assert sender.seq == seq and sender.timestamp == ts and sender.picture_id == pid
    assert sender.packets_sent == total
    assert sender.frames_sent == 2 * len(loop.video_frames) + 1
    assert sender.frame_interval_ns == 33_333_333
    # Balanced split: no packet in a frame is more than one byte bigger than another.
    for frame in loop.video_chunks():
        sizes = [len(chunk) for chunk, _, _ in frame]
        assert max(sizes) - min(sizes) <= 1


def test_small_max_payload_splits_more(loop: EncodedLoop) -> None:
    sender = VideoSender(loop, 1, max_payload=300)
    packets = sender.next_frame(0)
    assert max(len(p) for p in packets) <= 12 + 300
    assert b"".join(strip_stamp(p[12:])[0][4:] for p in packets) == loop.video_frames[0]
    with pytest.raises(ValueError, match="no room"):
        loop.video_chunks(16)


def _frame_index(loop: EncodedLoop, packets: list[bytes]) -> int:
    data = b"".join(strip_stamp(p[12:])[0][4:] for p in packets)
    return loop.video_frames.index(data)


def test_request_keyframe_jumps_to_the_nearest_keyframe(loop: EncodedLoop) -> None:
    sender = VideoSender(loop, 1, first_seq=0, first_timestamp=0)
    for expected_index, before in ((0, 3), (15, 10), (15, 15), (0, 26)):
        while sender.frame_index != before:
            sender.next_frame(0)
        seq, ts = sender.seq, sender.timestamp
        sender.request_keyframe()
        packets = sender.next_frame(0)
        assert _frame_index(loop, packets) == expected_index
        assert loop.video_keyframe[expected_index]
        payload, _ = strip_stamp(packets[0][12:])
        assert not payload[4] & 1  # VP8 keyframe
        header = parse_rtp(packets[0])
        assert (header["seq"], header["ts"]) == (seq, ts)  # RTP carries on seamlessly
        assert sender.frame_index == expected_index + 1
        assert _frame_index(loop, sender.next_frame(0)) == expected_index + 1
    assert sender.keyframe_requests == 4


def test_audio_packets(loop: EncodedLoop) -> None:
    sender = AudioSender(loop, 0xA0D10, first_seq=65_535, first_timestamp=2**32 - 960)
    seq, ts = 65_535, 2**32 - 960
    for i in range(2 * len(loop.audio_frames) + 3):
        packet = sender.next_packet(5_000 + i)
        assert parse_rtp(packet) == {
            "marker": int(i == 0),
            "pt": 111,
            "seq": seq,
            "ts": ts,
            "ssrc": 0xA0D10,
        }
        opus, stamp = strip_stamp(packet[12:])
        assert opus == loop.audio_frames[i % len(loop.audio_frames)]
        assert stamp == 5_000 + i
        seq, ts = (seq + 1) & 0xFFFF, (ts + 960) & 0xFFFFFFFF
    assert sender.packet_interval_ns == 20_000_000


# -- receiving --------------------------------------------------------------------------------


def test_in_order_stream(loop: EncodedLoop) -> None:
    packets = video_packets(loop, 2 * len(loop.video_frames), first_seq=100)
    stats = StreamStats("video")
    for i, packet in enumerate(packets):
        stats.feed(packet, 2_000 + i)
    summary = stats.summary()
    assert summary["packets"] == summary["expected"] == len(packets)
    assert summary["lost"] == 0 and summary["loss_pct"] == 0.0
    assert summary["duplicates"] == summary["late"] == summary["malformed"] == 0
    assert summary["keyframes"] == 4
    assert summary["bytes"] == sum(map(len, packets))
    assert summary["payload_bytes"] == sum(map(len, packets)) - 12 * len(packets)
    assert summary["first_packet_ns"] == summary["first_keyframe_ns"] == 2_000
    assert summary["ssrc"] == 0x1234 and summary["payload_type"] == 96
    assert summary["highest_seq"] == 100 + len(packets) - 1


def test_first_keyframe_time_waits_for_a_keyframe(loop: EncodedLoop) -> None:
    sender = VideoSender(loop, 7)
    stats = StreamStats()
    sender.next_frame(0)  # frame 0 (a keyframe) never arrives
    for i in range(1, 16):
        for packet in sender.next_frame(i):
            stats.feed(packet, i)
    assert stats.keyframes == 1
    assert stats.first_packet_ns == 1
    assert stats.first_keyframe_ns == 15


def test_loss_gaps(loop: EncodedLoop) -> None:
    packets = video_packets(loop, 30)
    dropped = {3, 4, 5, 17, len(packets) - 2}
    stats = StreamStats()
    for i, packet in enumerate(packets):
        if i not in dropped:
            stats.feed(packet, 0)
    assert (stats.expected, stats.packets, stats.lost) == (len(packets), len(packets) - 5, 5)
    assert stats.summary()["loss_pct"] == pytest.approx(100 * 5 / len(packets))


def test_reordering_and_duplicates_are_not_loss(loop: EncodedLoop) -> None:
    packets = video_packets(loop, 30)
    rng = random.Random(7)
    shuffled = []
    for start in range(0, len(packets), 5):  # shuffle within small windows
        window = packets[start : start + 5]
        rng.shuffle(window)
        shuffled += window
    dups = [packets[0], packets[10], packets[10], packets[-1]]
    stats = StreamStats()
    for packet in shuffled[:20] + dups + shuffled[20:] + dups:
        stats.feed(packet, 0)
    assert stats.packets == stats.expected == len(packets)
    assert stats.lost == 0
    # packets[-1] is new the first time, then a duplicate when the shuffled tail repeats it
    assert stats.duplicates == 2 * len(dups)
    assert stats.keyframes == 2  # frames 0 and 15, each counted once


def test_sequence_wrap_with_loss_and_reordering(loop: EncodedLoop) -> None:
    packets = video_packets(loop, 60, first_seq=65_500)
    assert len(packets) > 100  # crosses 65535 -> 0
    order = list(range(len(packets)))
    order[30], order[40] = order[40], order[30]  # reorder across the wrap (seq 65530/65540)
    del order[50]
    stats = StreamStats()
    for i in order:
        stats.feed(packets[i], 0)
    assert (stats.expected, stats.packets, stats.lost) == (len(packets), len(packets) - 1, 1)
    assert stats.highest_seq == 65_500 + len(packets) - 1


def test_packet_before_the_first_one_counts(loop: EncodedLoop) -> None:
    packets = video_packets(loop, 2, first_seq=0)
    stats = StreamStats()
    for packet in packets[1:] + packets[:1]:  # seq 0 arrives last, after 1, 2, ...
        stats.feed(packet, 0)
    assert (stats.expected, stats.packets, stats.lost) == (len(packets),) * 2 + (0,)


@pytest.mark.parametrize(
    ("csrcs", "ext", "padding"),
    [
        ((), (0xBEDE, bytes([0x10, 0x85, 0x40, 0x30])), 0),  # one-byte: audio level, mid "0"
        ((), (0x1000, bytes([4, 2, 0x31, 0x32])), 0),  # two-byte header extension
        ((), None, 7),
        ((1, 2, 3), None, 0),
        ((9,), (0xBEDE, bytes([0x22, 1, 2, 3, 0x40, 0x31])), 255),
    ],
)
def test_header_extensions_csrcs_and_padding(
    loop: EncodedLoop, csrcs: tuple[int, ...], ext: tuple[int, bytes] | None, padding: int
) -> None:
    packets = video_packets(loop, 30)
    plain, wrapped = StreamStats(), StreamStats()
    for i, packet in enumerate(packets):
        plain.feed(packet, 10**9 + i)
        other = rewrap(packet, csrcs=csrcs, ext=ext, padding=padding)
        assert rtp_payload(other) == packet[12:]
        wrapped.feed(other, 10**9 + i)
    a, b = plain.summary(include_samples=True), wrapped.summary(include_samples=True)
    for key in ("packets", "expected", "lost", "keyframes", "payload_bytes", "delays_ns"):
        assert a[key] == b[key], key
    assert b["keyframes"] == 2 and b["malformed"] == 0
    assert b["bytes"] > a["bytes"]


def test_stamp_delay(loop: EncodedLoop) -> None:
    sender = AudioSender(loop, 5)
    stats = StreamStats("audio")
    for i in range(100):
        stats.feed(sender.next_packet(10**9 + i * 20_000_000), 10**9 + i * 20_000_000 + 1_000 * i)
    # The next packet in sequence, but without a stamp: counted, no delay sample.
    foreign = struct.pack(">BBHII", 0x80, 111, sender.seq, 0, 5) + bytes(40)
    stats.feed(foreign, 0)
    assert stats.packets == 101 and stats.keyframes == 0 and stats.first_keyframe_ns is None
    assert list(stats.delays_ns) == [1_000 * i for i in range(100)]
    summary = stats.summary()
    assert summary["delay_count"] == 100
    assert summary["delay_ms"]["p50"] == pytest.approx(0.049)
    assert summary["delay_ms"]["p99"] == pytest.approx(0.098)
    assert summary["delay_ms"]["max"] == pytest.approx(0.099)
    assert "delays_ns" not in summary


def test_delay_samples_are_bounded(loop: EncodedLoop) -> None:
    sender = AudioSender(loop, 5)
    stats = StreamStats("audio", max_delay_samples=10)
    for i in range(1000):
        stats.feed(sender.next_packet(0), i)
    assert len(stats.delays_ns) == 10 and stats.delay_count == 1000
    assert all(0 <= d < 1000 for d in stats.delays_ns)


def test_reset_window(loop: EncodedLoop) -> None:
    packets = video_packets(loop, 30)
    stats = StreamStats()
    for packet in packets[:10]:
        stats.feed(packet, 0)
    held_back = packets[10]
    for packet in packets[11:20]:
        stats.feed(packet, 0)
    stats.reset_window()
    assert stats.summary()["packets"] == stats.expected == stats.lost == 0
    stats.feed(held_back, 0)  # from before the window: late, neither received nor lost
    for i, packet in enumerate(packets[20:]):
        if i != 3:
            stats.feed(packet, 5)
    summary = stats.summary()
    assert summary["late"] == 1
    assert (summary["expected"], summary["packets"], summary["lost"]) == (
        len(packets) - 20,
        len(packets) - 21,
        1,
    )
    assert summary["delay_count"] == len(packets) - 21
    assert stats.first_packet_ns == 0  # lifetime figures survive the reset


def test_malformed_packets() -> None:
    stats = StreamStats()
    stats.feed(b"\x80\x60\x00", 0)  # too short
    stats.feed(bytes([0x40, 96]) + bytes(20), 0)  # version 1
    stats.feed(bytes([0x90, 96]) + bytes(10) + b"\xbe\xde\x00\x09" + bytes(8), 0)  # ext too long
    stats.feed(bytes([0xA0, 96]) + bytes(10) + b"\x01\x02\x40", 0)  # padding longer than packet
    assert stats.malformed == 4 and stats.packets == 0 and stats.expected == 0
    with pytest.raises(ValueError):
        rtp_payload(b"\x80")


def test_receiver_stats_dispatches_by_ssrc(loop: EncodedLoop) -> None:
    video, audio = VideoSender(loop, 1), AudioSender(loop, 2)
    receiver = ReceiverStats()
    for i in range(10):
        for packet in video.next_frame(i):
            receiver.feed(packet, i)
        receiver.feed(audio.next_packet(i), i)
    assert receiver.feed(b"\x80", 0) is None
    assert {s: st.kind for s, st in receiver.streams.items()} == {1: "video", 2: "audio"}
    assert receiver.streams[2].packets == 10
    assert receiver.streams[1].keyframes == 1
    receiver.reset_window()
    assert receiver.streams[1].packets == 0
