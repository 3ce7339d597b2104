"""Crash safety: a process recording in real time is killed with SIGKILL; its files still
play up to the last second or so, and `remux` turns them into finished files."""

from __future__ import annotations

import textwrap
from pathlib import Path

import av
import pytest

from parlour.recording.writer import probe, remux
from tests.integration.recording_support import kill_when_fed

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from parlour.recording.writer import TrackRecorder
    from tests.recording_samples import encode_opus, encode_video, packetize

    out = Path(sys.argv[1])
    video = packetize("VP8", encode_video("VP8", 600, gop=30))
    audio = packetize("OPUS", encode_opus(20.0))
    recorders = [
        TrackRecorder(out / "v.mkv", "VP8", cluster_ms=1000),
        TrackRecorder(out / "a.mka", "OPUS", cluster_ms=1000),
    ]
    timeline = sorted(
        [(p.media_time, 0, p.data) for p in video] + [(p.media_time, 1, p.data) for p in audio],
        key=lambda item: (item[0], item[1]),
    )
    start = time.monotonic()
    reported = -1.0
    for media_time, index, data in timeline:
        delay = start + media_time - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        recorders[index].feed(data, start + media_time)
        if media_time - reported >= 0.1:
            reported = media_time
            print(f"{media_time:.3f}", flush=True)
    time.sleep(60)
    """
)

KILL_AFTER = 3.5  # seconds of media fed before the kill
ALLOWED_LOSS = 2.0  # the open cluster (≤ 1 s) plus the writer's queue


def test_sigkill_leaves_playable_files(tmp_path: Path) -> None:
    _, fed = kill_when_fed(CHILD, str(tmp_path), after=KILL_AFTER)
    assert fed >= KILL_AFTER

    for name, codec in (("v.mkv", "vp8"), ("a.mka", "opus")):
        path = tmp_path / name
        found, packets, end_ms = probe(path)
        assert found == codec
        assert packets > 0
        assert end_ms / 1000 >= fed - ALLOWED_LOSS, f"{name}: only {end_ms} ms survived"
        with av.open(str(path)) as container:
            stream = container.streams[0]
            decoded = list(container.decode(stream))
        assert decoded, f"{name} has no decodable frames"

        finished = tmp_path / f"finished-{name}"
        count, finished_end = remux(path, finished)
        assert count == packets and finished_end == end_ms
        with av.open(str(finished)) as container:
            assert container.duration is not None
            assert container.duration / 1_000_000 == pytest.approx(end_ms / 1000, abs=0.1)
