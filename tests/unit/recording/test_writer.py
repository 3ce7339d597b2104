"""`TrackRecorder`: real RTP in, real Matroska out, reopened and decoded with PyAV."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import av
import pytest

from parlour.domain.recordings import FailedOperation
from parlour.recording.depacketize import Frame
from parlour.recording.writer import TrackRecorder, probe, remux
from tests.recording_samples import EncodedFrame, Packet, encode_opus, encode_video, packetize

SECONDS = 3.0
AV_NAMES = {"VP8": "vp8", "H264": "h264", "OPUS": "opus"}


def media(codec: str, seconds: float = SECONDS) -> list[EncodedFrame]:
    if codec == "OPUS":
        return encode_opus(seconds)
    return encode_video(codec, int(seconds * 30), size=(320, 240), gop=30)


def record(path: Path, codec: str, packets: list[Packet], **options: object) -> TrackRecorder:
    recorder = TrackRecorder(path, codec, **options)  # type: ignore[arg-type]
    for packet in packets:
        recorder.feed(packet.data, 100.0 + packet.media_time)
    return recorder


def read_back(path: Path) -> tuple[str, str, float, list[tuple[int, bool]], int]:
    """(format, codec, duration s, [(pts ms, keyframe)], decoded frames or samples)."""
    with av.open(str(path)) as container:
        stream = container.streams[0]
        fmt = container.format.name
        codec = stream.codec_context.name
        duration = (container.duration or 0) / 1_000_000
        packets = [
            (int(p.pts * p.time_base * 1000), p.is_keyframe)
            for p in container.demux(stream)
            if p.pts is not None and p.time_base is not None
        ]
    with av.open(str(path)) as container:
        stream = container.streams[0]
        if stream.type == "audio":
            decoded = sum(f.samples for f in container.decode(stream))
        else:
            decoded = sum(1 for _ in container.decode(stream))
    return fmt, codec, duration, packets, decoded


@pytest.mark.parametrize("codec", ["VP8", "H264", "OPUS"])
def test_records_a_playable_matroska_file(tmp_path: Path, codec: str) -> None:
    frames = media(codec)
    suffix = "mka" if codec == "OPUS" else "mkv"
    path = tmp_path / f"RT1.{suffix}"
    result = record(path, codec, packetize(codec, frames)).close()

    assert result.error is None and result.dropped == 0
    assert result.frames == len(frames)
    assert result.size == path.stat().st_size > 0
    assert result.duration_ms == pytest.approx(SECONDS * 1000, rel=0.1)
    assert result.first_arrival == 100.0

    fmt, name, duration, packets, decoded = read_back(path)
    assert fmt.startswith("matroska")
    assert name == AV_NAMES[codec]
    assert duration == pytest.approx(SECONDS, rel=0.1)
    assert packets[0] == (0, True)
    assert [pts for pts, _ in packets] == sorted(pts for pts, _ in packets)
    if codec == "OPUS":
        assert decoded == pytest.approx(SECONDS * 48000, rel=0.1)
    else:
        assert decoded == len(frames)
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            assert (stream.width, stream.height) == (320, 240)


def test_a_pause_stays_a_gap_in_the_file(tmp_path: Path) -> None:
    frames = encode_opus(2.0)
    first = packetize("OPUS", frames[:50], seq=1)
    later = [EncodedFrame(f.data, f.timestamp + 2 * 48000, True) for f in frames[50:]]
    second = packetize("OPUS", later, seq=51)
    result = record(tmp_path / "gap.mka", "OPUS", first + second).close()
    assert result.duration_ms == pytest.approx(4000, abs=40)
    _, _, duration, packets, _ = read_back(tmp_path / "gap.mka")
    assert duration == pytest.approx(4.0, abs=0.05)
    stamps = [pts for pts, _ in packets]
    assert stamps[50] - stamps[49] == pytest.approx(2020, abs=2)


def test_video_starts_at_the_first_keyframe(tmp_path: Path) -> None:
    frames = encode_video("VP8", 90, gop=30)
    packets = [p for p in packetize("VP8", frames) if p.frame >= 10]
    result = record(tmp_path / "late.mkv", "VP8", packets).close()
    assert result.frames == 60
    assert result.first_arrival == pytest.approx(100.0 + 30 / 30)
    _, _, duration, packets_read, decoded = read_back(tmp_path / "late.mkv")
    assert packets_read[0] == (0, True)
    assert decoded == 60
    assert duration == pytest.approx(2.0, rel=0.1)


def test_nothing_recorded_means_no_file(tmp_path: Path) -> None:
    frames = encode_video("VP8", 30, gop=0)
    interframes = [p for p in packetize("VP8", frames) if p.frame > 0]
    path = tmp_path / "none.mkv"
    asked = threading.Event()
    result = record(path, "VP8", interframes, on_keyframe_needed=asked.set).close()
    assert result.frames == 0 and result.size == 0 and result.duration_ms == 0
    assert result.first_arrival is None and result.error is None
    assert not path.exists()
    assert asked.is_set()  # it asked for the keyframe it was waiting for


class _StalledRecorder(TrackRecorder):
    """A writer that hangs on its first frame until released (a slow disk)."""

    release = threading.Event()

    def _write(self, frame: Frame) -> None:
        self.release.wait(10)
        super()._write(frame)


def test_feed_never_blocks_and_counts_drops(tmp_path: Path) -> None:
    packets = packetize("OPUS", encode_opus(4.0))
    recorder = _StalledRecorder(tmp_path / "slow.mka", "OPUS", max_queue=16)
    start = time.perf_counter()
    for packet in packets:
        recorder.feed(packet.data, packet.media_time)
    elapsed = time.perf_counter() - start
    assert elapsed < 0.05 * len(packets) / 100  # well under 0.5 ms per packet
    assert recorder.dropped >= len(packets) - 16 - 8  # queue bound + the start hold
    _StalledRecorder.release.set()
    result = recorder.close()
    assert result.dropped == recorder.dropped
    assert 0 < result.frames <= 16 + 8


def test_close_is_idempotent_and_feed_after_close_is_ignored(tmp_path: Path) -> None:
    packets = packetize("OPUS", encode_opus(0.5))
    recorder = record(tmp_path / "twice.mka", "OPUS", packets)
    first = recorder.close()
    recorder.feed(packets[0].data, 999.0)
    assert recorder.close() == first


def test_an_unwritable_file_fails_with_a_reason(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    packets = packetize("OPUS", encode_opus(0.5))
    result = record(blocker / "sub" / "x.mka", "OPUS", packets).close()
    assert result.error is not None
    assert result.failed_operation is FailedOperation.COMPLETE


def test_unknown_codec_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        TrackRecorder(tmp_path / "x.mka", "PCMU")


def test_probe_and_remux_a_finished_file(tmp_path: Path) -> None:
    source = tmp_path / "src.mkv"
    record(source, "H264", packetize("H264", media("H264", 2.0))).close()
    assert probe(source)[:2] == ("h264", 60)
    count, end = remux(source, tmp_path / "copy.mkv")
    assert count == 60 and end == pytest.approx(2000, rel=0.05)
    _, name, duration, _, decoded = read_back(tmp_path / "copy.mkv")
    assert name == "h264" and decoded == 60 and duration == pytest.approx(2.0, rel=0.1)
