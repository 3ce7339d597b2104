"""The Recording record and its status machine (pure)."""

from __future__ import annotations

import datetime as dt

import pytest

from parlour.domain.recordings import (
    ContainerFormat,
    InvalidTransition,
    Recording,
    RecordingCodec,
    RecordingStatus,
    RecordingType,
    codec_from_name,
    duration_seconds,
    unix_ms,
)
from parlour.domain.sids import AccountSid, ParticipantSid, RecordingSid, RoomSid, TrackSid

NOW = dt.datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=dt.UTC)


def recording(codec: RecordingCodec = RecordingCodec.OPUS, name: str = "mic") -> Recording:
    return Recording.for_track(
        sid=RecordingSid("RT" + "1" * 32),
        account_sid=AccountSid("AC" + "2" * 32),
        room_sid=RoomSid("RM" + "3" * 32),
        participant_sid=ParticipantSid("PA" + "4" * 32),
        source_sid=TrackSid("MT" + "5" * 32),
        track_name=name,
        codec=codec,
        now=NOW,
        status_callback="https://example.com/cb",
    )


def test_a_new_recording_follows_its_codec() -> None:
    audio = recording()
    assert (audio.type, audio.container_format, audio.status) == (
        RecordingType.AUDIO,
        ContainerFormat.MKA,
        RecordingStatus.PROCESSING,
    )
    assert audio.offset == unix_ms(NOW) == 1704164645678
    assert audio.file_name == "RT" + "1" * 32 + ".mka"
    assert audio.media_key == "recordings/" + audio.file_name
    assert audio.grouping_sids == {
        "room_sid": audio.room_sid,
        "participant_sid": audio.participant_sid,
    }
    video = recording(RecordingCodec.H264)
    assert (video.type, video.container_format) == (RecordingType.VIDEO, ContainerFormat.MKV)
    assert ContainerFormat.MKV.content_type == "video/x-matroska"
    assert ContainerFormat.MKA.content_type == "audio/x-matroska"
    assert recording(name="").track_name == "MT" + "5" * 32  # Twilio's fallback


@pytest.mark.parametrize(
    ("ms", "seconds"), [(0, 0), (1, 1), (499, 1), (1499, 1), (1500, 2), (2500, 3), (59_999, 60)]
)
def test_duration_rounding(ms: int, seconds: int) -> None:
    assert duration_seconds(ms) == seconds


def test_codec_names() -> None:
    assert codec_from_name("opus") is RecordingCodec.OPUS
    assert codec_from_name("VP8") is RecordingCodec.VP8
    assert codec_from_name("h264") is RecordingCodec.H264
    assert codec_from_name("PCMU") is None
    assert codec_from_name("VP9") is None


def test_status_machine() -> None:
    later = NOW + dt.timedelta(seconds=5)
    done = recording().completed(later, duration_ms=4600, size=1234, offset=42)
    assert (done.status, done.duration, done.size, done.offset) == (
        RecordingStatus.COMPLETED,
        5,
        1234,
        42,
    )
    assert done.date_updated == later and done.has_media
    gone = done.deleted(later)
    assert gone.status is RecordingStatus.DELETED and not gone.has_media and gone.size == 1234
    failed = recording().failed(later, "disk full")
    assert failed.status is RecordingStatus.FAILED and failed.failure_reason == "disk full"
    assert failed.deleted(later).status is RecordingStatus.DELETED
    for bad in (
        lambda: done.completed(later, duration_ms=1, size=1),
        lambda: recording().deleted(later),
        lambda: gone.failed(later, "x"),
    ):
        with pytest.raises(InvalidTransition):
            bad()
    assert not recording().completed(later, duration_ms=0, size=0).has_media
