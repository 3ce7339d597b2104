"""`MatroskaRecorder`: spool while recording, storage when done, recovery after a crash."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import av
import pytest

from parlour.domain.recordings import FailedOperation, Recording, RecordingCodec
from parlour.domain.sids import AccountSid, ParticipantSid, RecordingSid, RoomSid, TrackSid, new_sid
from parlour.recording import LocalStorage, MatroskaRecorder, TrackRecorder
from tests.recording_samples import encode_opus, encode_video, packetize

NOW = dt.datetime(2024, 1, 2, tzinfo=dt.UTC)


def recording(codec: RecordingCodec) -> Recording:
    return Recording.for_track(
        sid=RecordingSid(new_sid("RT")),
        account_sid=AccountSid(new_sid("AC")),
        room_sid=RoomSid(new_sid("RM")),
        participant_sid=ParticipantSid(new_sid("PA")),
        source_sid=TrackSid(new_sid("MT")),
        track_name="t",
        codec=codec,
        now=NOW,
    )


@pytest.fixture
def recorder(tmp_path: Path) -> MatroskaRecorder:
    return MatroskaRecorder(LocalStorage(tmp_path / "media"), tmp_path / "media" / "spool")


async def test_a_finished_recording_moves_into_storage(
    recorder: MatroskaRecorder, tmp_path: Path
) -> None:
    rec = recording(RecordingCodec.VP8)
    writer = recorder.open_writer(rec, payload_types=[96])
    for packet in packetize("VP8", encode_video("VP8", 30)):
        writer.feed(packet.data, packet.media_time)
    result = await writer.close()
    assert await writer.close() is result
    assert result.error is None and result.frames == 30
    stored = tmp_path / "media" / rec.media_key
    assert stored.stat().st_size == result.size
    assert not recorder.spool_path(rec).exists()


async def test_nothing_recorded_stores_nothing(recorder: MatroskaRecorder, tmp_path: Path) -> None:
    rec = recording(RecordingCodec.OPUS)
    result = await recorder.open_writer(rec).close()
    assert (result.frames, result.size, result.error) == (0, 0, None)
    assert not (tmp_path / "media" / rec.media_key).exists()


async def test_storage_failure_is_an_upload_failure(tmp_path: Path) -> None:
    class Broken(LocalStorage):
        async def put(self, key: str, source: Path) -> int:
            raise OSError("bucket unreachable")

    recorder = MatroskaRecorder(Broken(tmp_path), tmp_path / "spool")
    writer = recorder.open_writer(recording(RecordingCodec.OPUS))
    for packet in packetize("OPUS", encode_opus(0.5)):
        writer.feed(packet.data, packet.media_time)
    result = await writer.close()
    assert result.failed_operation is FailedOperation.UPLOAD
    assert "bucket unreachable" in (result.error or "")


def unfinished_file(path: Path, seconds: float = 3.0) -> None:
    """A spool file as a killed process leaves it: clusters written, no trailer."""
    recorder = TrackRecorder(path, "OPUS", cluster_ms=500)
    for packet in packetize("OPUS", encode_opus(seconds)):
        recorder.feed(packet.data, packet.media_time)
    recorder.close()
    # Cut off the cues and the tail, as a crash would.
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * 0.8)])


async def test_recover_remuxes_the_spool_file(recorder: MatroskaRecorder, tmp_path: Path) -> None:
    rec = recording(RecordingCodec.OPUS)
    unfinished_file(recorder.spool_path(rec))
    result = await recorder.recover(rec)
    assert result.error is None and 1500 <= result.duration_ms <= 3000
    stored = tmp_path / "media" / rec.media_key
    assert stored.stat().st_size == result.size
    with av.open(str(stored)) as container:
        assert container.duration is not None
        assert sum(f.samples for f in container.decode(container.streams.audio[0])) > 0
    assert not list(recorder.spool_dir.iterdir())


async def test_recover_garbage_or_nothing_fails(recorder: MatroskaRecorder) -> None:
    garbage = recording(RecordingCodec.VP8)
    path = recorder.spool_path(garbage)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"\x00" * 1000)
    result = await recorder.recover(garbage)
    assert result.error is not None and result.failed_operation is FailedOperation.COMPLETE
    assert not path.exists()
    missing = await recorder.recover(recording(RecordingCodec.H264))
    assert missing.error == "no media was written before the server stopped"


async def test_recover_a_file_stored_just_before_the_crash(
    recorder: MatroskaRecorder, tmp_path: Path
) -> None:
    rec = recording(RecordingCodec.OPUS)
    source = tmp_path / "finished.mka"
    writer = TrackRecorder(source, "OPUS")
    for packet in packetize("OPUS", encode_opus(2.0)):
        writer.feed(packet.data, packet.media_time)
    finished = writer.close()
    (tmp_path / "media" / "recordings").mkdir(parents=True)
    shutil.copy(source, tmp_path / "media" / rec.media_key)
    result = await recorder.recover(rec)
    assert result.error is None
    assert result.size == finished.size and result.duration_ms == finished.duration_ms
