"""Depacketizers (pure): frames reassembled from aiortc-packetized, PyAV-encoded media,
with reordering, loss, duplicates, sequence/timestamp wrap, gaps and source restarts."""

from __future__ import annotations

import random

import pytest
from aiortc.rtp import RtpPacket

from parlour.recording.depacketize import Depacketizer, Frame, parse_rtp
from tests.recording_samples import (
    PT,
    EncodedFrame,
    Packet,
    encode_opus,
    encode_video,
    packetize,
    split_annexb,
)


@pytest.fixture(scope="module")
def vp8() -> list[EncodedFrame]:
    return encode_video("VP8", 60, size=(320, 240), gop=15)


@pytest.fixture(scope="module")
def h264() -> list[EncodedFrame]:
    return encode_video("H264", 60, size=(320, 240), gop=15)


@pytest.fixture(scope="module")
def opus() -> list[EncodedFrame]:
    return encode_opus(1.0)


def run(codec: str, packets: list[Packet], **options: object) -> tuple[Depacketizer, list[Frame]]:
    depacketizer = Depacketizer(codec, **options)  # type: ignore[arg-type]
    frames: list[Frame] = []
    for packet in packets:
        frames += depacketizer.push(packet.data, packet.media_time)
    frames += depacketizer.flush()
    return depacketizer, frames


def timeline(frames: list[Frame]) -> list[int]:
    return [f.timestamp - frames[0].timestamp for f in frames]


# -- in order -----------------------------------------------------------------------------


def test_vp8_frames_are_the_encoded_frames(vp8: list[EncodedFrame]) -> None:
    packets = packetize("VP8", vp8)
    assert len(packets) > len(vp8)  # keyframes span several packets
    d, frames = run("VP8", packets)
    assert [f.data for f in frames] == [f.data for f in vp8]
    assert [f.keyframe for f in frames] == [f.keyframe for f in vp8]
    assert timeline(frames) == [f.timestamp for f in vp8]
    assert (frames[0].width, frames[0].height) == (320, 240)
    assert d.lost == d.incomplete == d.skipped == 0


def test_h264_access_units_keep_every_nal(h264: list[EncodedFrame]) -> None:
    packets = packetize("H264", h264)
    kinds = {parse_rtp(p.data).payload[0] & 0x1F for p in packets}  # type: ignore[union-attr]
    assert 28 in kinds and 24 in kinds  # FU-A and STAP-A both exercised
    d, frames = run("H264", packets)
    assert len(frames) == len(h264)
    for got, sent in zip(frames, h264, strict=True):
        assert got.data.startswith(b"\x00\x00\x00\x01")
        assert split_annexb(got.data) == split_annexb(sent.data)
        assert got.keyframe == sent.keyframe
    assert (frames[0].width, frames[0].height) == (320, 240)
    assert d.codec_config.startswith(b"\x00\x00\x00\x01\x67")


def test_opus_one_packet_is_one_frame(opus: list[EncodedFrame]) -> None:
    _, frames = run("OPUS", packetize("OPUS", opus))
    assert [f.data for f in frames] == [f.data for f in opus]
    assert timeline(frames) == [i * 960 for i in range(len(opus))]
    assert all(f.keyframe for f in frames)


# -- reordering, duplicates, loss ---------------------------------------------------------


def test_reordering_within_the_window_is_undone(vp8: list[EncodedFrame]) -> None:
    packets = packetize("VP8", vp8)
    shuffled = list(packets)
    rng = random.Random(7)
    for i in range(0, len(shuffled) - 4, 4):
        window = shuffled[i : i + 4]
        rng.shuffle(window)
        shuffled[i : i + 4] = window
    assert shuffled != packets
    d, frames = run("VP8", shuffled)
    assert [f.data for f in frames] == [f.data for f in vp8]
    assert d.lost == 0


def test_duplicates_are_ignored(opus: list[EncodedFrame]) -> None:
    packets = packetize("OPUS", opus)
    doubled = [p for p in packets for _ in (0, 1)]
    d, frames = run("OPUS", doubled)
    assert len(frames) == len(opus)
    # A copy of a packet already released counts as late, one still held as a duplicate.
    assert d.duplicates + d.late == len(packets) and d.duplicates > 0


def test_video_loss_drops_the_frame_and_waits_for_a_keyframe(vp8: list[EncodedFrame]) -> None:
    packets = packetize("VP8", vp8)
    victim = next(p for p in packets if p.frame == 20)  # an interframe; next keyframe: 30
    assert not vp8[20].keyframe and vp8[30].keyframe
    d, frames = run("VP8", [p for p in packets if p is not victim], reorder_packets=4)
    indexes = [vp8.index(next(e for e in vp8 if e.data == f.data)) for f in frames]
    assert indexes == list(range(20)) + list(range(30, 60))
    assert d.lost == 1 and d.skipped == 9


def test_video_starts_at_the_first_keyframe(vp8: list[EncodedFrame]) -> None:
    packets = [p for p in packetize("VP8", vp8) if p.frame >= 3]  # joined mid-GOP
    _, frames = run("VP8", packets)
    assert frames[0].keyframe and frames[0].data == vp8[15].data


def test_audio_loss_is_a_gap(opus: list[EncodedFrame]) -> None:
    packets = packetize("OPUS", opus)
    kept = [p for p in packets if not 10 <= p.frame < 15]
    d, frames = run("OPUS", kept, reorder_packets=2)
    stamps = timeline(frames)
    assert len(frames) == len(opus) - 5
    assert stamps[10] - stamps[9] == 6 * 960  # the 100 ms hole stays a hole
    assert d.lost == 5


def test_a_late_packet_outside_the_window_is_dropped(opus: list[EncodedFrame]) -> None:
    packets = packetize("OPUS", opus)
    late = packets[5]
    order = packets[:5] + packets[6:20] + [late] + packets[20:]
    d, frames = run("OPUS", order, reorder_packets=8)
    assert len(frames) == len(opus) - 1
    assert d.lost == 1 and d.late == 1


def test_truncated_h264_fragments_are_incomplete(h264: list[EncodedFrame]) -> None:
    packets = packetize("H264", h264[:15])
    fu_a = [p for p in packets if parse_rtp(p.data).payload[0] & 0x1F == 28]  # type: ignore[union-attr]
    victim = fu_a[1]  # a middle or end fragment of the keyframe
    d, frames = run("H264", [p for p in packets if p is not victim], reorder_packets=2)
    assert frames == []  # no keyframe survived, so nothing can be decoded
    assert d.incomplete >= 1


# -- wrap, gaps, restarts -----------------------------------------------------------------


def test_sequence_and_timestamp_wrap(vp8: list[EncodedFrame]) -> None:
    packets = packetize("VP8", vp8, seq=65500, timestamp=2**32 - 3 * 3000)
    _, frames = run("VP8", packets)
    assert len(frames) == len(vp8)
    assert timeline(frames) == [f.timestamp for f in vp8]


def test_a_pause_keeps_its_gap(opus: list[EncodedFrame]) -> None:
    first = packetize("OPUS", opus[:25], seq=1)
    # The track pauses for 3 s: RTP timestamps and arrival times both move on.
    later = [EncodedFrame(f.data, f.timestamp + 3 * 48000, True) for f in opus[25:]]
    second = packetize("OPUS", later, seq=26)
    _, frames = run("OPUS", first + second)
    stamps = timeline(frames)
    assert stamps[25] - stamps[24] == 3 * 48000 + 960


def test_a_new_ssrc_after_silence_continues_by_arrival_time(vp8: list[EncodedFrame]) -> None:
    first = packetize("VP8", vp8[:30], ssrc=1, seq=100, timestamp=1000)
    # The publisher restarts 2 s later: new SSRC, sequence numbers and timestamps.
    second = packetize("VP8", vp8[30:], ssrc=2, seq=40000, timestamp=3_000_000_000, start=2.0 + 1.0)
    d, frames = run("VP8", first + second)
    assert len(frames) == 60
    stamps = timeline(frames)
    assert stamps == sorted(stamps)
    gap = (stamps[30] - stamps[29]) / 90000
    arrival_gap = second[0].media_time - first[-1].media_time
    assert gap == pytest.approx(arrival_gap, abs=0.01)
    assert d.restarts == 1


def test_a_second_ssrc_is_ignored_while_the_first_is_alive(opus: list[EncodedFrame]) -> None:
    main = packetize("OPUS", opus, ssrc=1)
    other = packetize("OPUS", opus, ssrc=2, seq=9000)
    mixed = [p for pair in zip(main, other, strict=True) for p in pair]
    d, frames = run("OPUS", mixed)
    assert [f.data for f in frames] == [f.data for f in opus]
    assert d.ignored == len(other)


def test_timestamps_that_disagree_with_arrival_are_rebased(opus: list[EncodedFrame]) -> None:
    first = packetize("OPUS", opus[:10], seq=1, timestamp=0)
    # Same SSRC and sequence, but the timestamp jumps an hour ahead within 20 ms.
    second = packetize("OPUS", opus[10:], seq=11, timestamp=3600 * 48000, start=0.0)
    _, frames = run("OPUS", first + second)
    stamps = timeline(frames)
    assert stamps[10] - stamps[9] < 48000


def test_payload_type_filter(opus: list[EncodedFrame]) -> None:
    packets = packetize("OPUS", opus)
    d, frames = run("OPUS", packets, payload_types=[PT["OPUS"] + 1])
    assert frames == [] and d.ignored == len(packets)
    _, frames = run("OPUS", packets, payload_types=[PT["OPUS"]])
    assert len(frames) == len(opus)


def test_h264_keyframe_without_parameter_sets_gets_the_last_ones(
    h264: list[EncodedFrame],
) -> None:
    def without_parameter_sets(frame: EncodedFrame) -> EncodedFrame:
        nals = [n for n in split_annexb(frame.data) if n[0] & 0x1F not in (7, 8)]
        return EncodedFrame(
            b"".join(b"\x00\x00\x00\x01" + n for n in nals), frame.timestamp, frame.keyframe
        )

    stripped = h264[:15] + [without_parameter_sets(f) for f in h264[15:]]
    _, frames = run("H264", packetize("H264", stripped))
    second_key = frames[15]
    assert second_key.keyframe
    kinds = [n[0] & 0x1F for n in split_annexb(second_key.data)]
    assert kinds[:2] == [7, 8] and 5 in kinds


# -- RTP parsing --------------------------------------------------------------------------


def test_parse_rtp_handles_csrcs_extensions_and_padding() -> None:
    rtp = RtpPacket(payload_type=96, marker=1, sequence_number=7, timestamp=9, ssrc=5)
    rtp.csrc = [1, 2]
    rtp.payload = b"hello"
    rtp.padding_size = 3
    plain = rtp.serialize()
    # Insert a one-byte-header extension (RFC 8285) after the CSRCs and set X.
    extension = b"\xbe\xde\x00\x01" + b"\x10\x30\x00\x00"
    packet = bytes([plain[0] | 0x10]) + plain[1:20] + extension + plain[20:]
    parsed = parse_rtp(packet)
    assert parsed is not None
    assert (parsed.payload_type, parsed.marker, parsed.seq, parsed.timestamp, parsed.ssrc) == (
        96,
        True,
        7,
        9,
        5,
    )
    assert parsed.payload == b"hello"


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x80\x60\x00",  # too short
        b"\x40" + b"\x00" * 11,  # version 1
        b"\x80\xc8" + b"\x00" * 10,  # RTCP sender report
        b"\x90\x60" + b"\x00" * 10 + b"\xbe\xde\x00\x05",  # extension longer than the packet
        b"\xa0\x60" + b"\x00" * 10 + b"\x00",  # padding of 0
        b"\xa0\x60" + b"\x00" * 10 + b"\x20",  # padding past the header
    ],
)
def test_parse_rtp_rejects_garbage(data: bytes) -> None:
    assert parse_rtp(data) is None


def test_garbage_is_counted_not_raised(vp8: list[EncodedFrame]) -> None:
    d = Depacketizer("VP8")
    rng = random.Random(3)
    for _ in range(500):
        blob = bytes(rng.randrange(256) for _ in range(rng.randrange(40)))
        assert d.push(blob, 0.0) == [] or True
    frames = []
    for packet in packetize("VP8", vp8[:15], ssrc=99, seq=5):
        frames += d.push(packet.data, 1.5 + packet.media_time)
    assert d.malformed > 0


def test_unknown_codec_is_refused() -> None:
    with pytest.raises(ValueError):
        Depacketizer("PCMU")
