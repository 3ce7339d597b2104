"""Recording status callbacks on the wire (rest-api.md §8.2)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from parlour.protocol import webhooks as wire

COMPLETED = wire.RecordingStatusCallback(
    account_sid="AC" + "0" * 32,
    room_sid="RM" + "1" * 32,
    room_name="DailyStandup",
    room_type="group",
    room_status="in-progress",
    event="recording-completed",
    timestamp="2024-01-02T03:04:05.678Z",
    sequence_number=7,
    recording_sid="RT" + "2" * 32,
    participant_sid="PA" + "3" * 32,
    participant_identity="alice",
    source_sid="MT" + "4" * 32,
    track_name="mic",
    recording_uri="/v1/Recordings/RT" + "2" * 32,
    container="mka",
    codec="OPUS",
    type="audio",
    offset=1704164645678,
    media_uri="/v1/Recordings/RT" + "2" * 32 + "/Media",
    duration=12,
    size=34567,
)


def test_round_trip() -> None:
    params = COMPLETED.to_params()
    names = [k for k, _ in params]
    assert len(names) == len(set(names))
    assert dict(params)["OffsetFromTwilioVideoEpoch"] == "1704164645678"
    assert {"RecordingSid", "SourceSid", "TrackName", "RecordingUri", "Container", "Codec"} <= set(
        names
    )
    assert wire.RecordingStatusCallback.parse(params) == COMPLETED
    started = replace(
        COMPLETED, event="recording-started", media_uri=None, duration=None, size=None
    )
    assert "MediaUri" not in dict(started.to_params())
    assert wire.RecordingStatusCallback.parse(started.to_params()) == started


@pytest.mark.parametrize(
    "changes",
    [
        {"event": "track-added"},
        {"event": "recording-started"},  # still has MediaUri/Duration/Size
        {"duration": None},
        {"event": "recording-failed", "media_uri": None, "duration": None, "size": None},
        {"failed_operation": "RecordingStart"},  # only on recording-failed
        {
            "event": "recording-failed",
            "media_uri": None,
            "duration": None,
            "size": None,
            "failed_operation": "Nope",
        },
        {"sequence_number": -1},
    ],
)
def test_invalid_combinations(changes: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        replace(COMPLETED, **changes)


def test_parse_requires_the_recording_parameters() -> None:
    params = dict(COMPLETED.to_params())
    del params["SourceSid"]
    with pytest.raises(ValueError):
        wire.RecordingStatusCallback.parse(params)
