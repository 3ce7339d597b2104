"""The composition pipeline on short real media (VP8 `.mkv`, Opus `.mka`): sources that start
and stop at different times land where the plan puts them, `Trim` removes the gap, audio is
mixed, and an audio-only composition has no video stream."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from bench.compose import make_audio, make_video
from parlour.domain.compositions import CompositionFormat
from parlour.domain.layouts import AudioSelection, Source, parse_layout, plan_composition
from parlour.recording.composer import compose_file

SIZE = (320, 240)


def source(n: int, kind: str, start: int, end: int) -> Source:
    return Source(
        recording_sid=f"RT{n}{kind[0]}".ljust(34, "0"),
        track_sid=f"MT{n:032d}",
        participant_sid=f"PA{n:032d}",
        track_name=f"{kind}{n}",
        kind=kind,
        start=start,
        end=end,
    )


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Source], dict[str, str]]:
    """Participant 0 from 0 to 2 s, participant 1 from 3 to 5 s (a gap of 1 s between)."""
    d = tmp_path_factory.mktemp("composer")
    made, paths = [], {}
    for n, start in ((0, 0), (1, 3000)):
        for kind, maker, ext in (("video", make_video, "mkv"), ("audio", make_audio, "mka")):
            s = source(n, kind, start, start + 2000)
            path = d / f"{s.recording_sid}.{ext}"
            maker(path, 2.0, n)
            made.append(s)
            paths[s.recording_sid] = str(path)
    return made, paths


def compose(
    media: tuple[list[Source], dict[str, str]], out: Path, *, trim: bool, layout: bool = True
) -> tuple[list[np.ndarray], np.ndarray | None, float]:
    made, paths = media
    plan = plan_composition(
        made,
        layout=parse_layout({"g": {"video_sources": ["video*"]}}, SIZE) if layout else None,
        audio=AudioSelection(("audio*",)),
        resolution=SIZE,
        trim=trim,
    )
    fmt = CompositionFormat.MP4 if layout else CompositionFormat.WEBM
    reports: list[int] = []
    duration = compose_file(plan, paths, str(out), fmt, lambda p, _r: reports.append(p))
    assert reports == sorted(reports) and all(0 < p < 100 for p in reports)
    frames: list[np.ndarray] = []
    audio: list[np.ndarray] = []
    with av.open(str(out)) as container:
        assert bool(container.streams.video) is layout
        for frame in container.decode(*container.streams):
            if isinstance(frame, av.VideoFrame):
                frames.append(frame.to_ndarray(format="gray"))
            elif isinstance(frame, av.AudioFrame):
                audio.append(frame.to_ndarray())
    return frames, np.concatenate(audio, axis=1) if audio else None, duration / 1000


def test_trim_removes_the_gap_and_one_tile_fills_the_frame(
    media: tuple[list[Source], dict[str, str]], tmp_path: Path
) -> None:
    frames, audio, seconds = compose(media, tmp_path / "t.mp4", trim=True)
    assert seconds == 4.0
    assert 58 <= len(frames) <= 62  # 15 fps
    # never more than one source at once: a 1x1 grid, the 4:3 picture fills 320x240
    for frame in frames[::10]:
        assert frame.std() > 10, "every output frame shows a picture"
        assert frame[:, :20].mean() > 30, "no letterbox"
    assert audio is not None
    level = np.abs(audio).mean(axis=0)
    assert level[:48_000].mean() > 0.01 and level[-48_000:].mean() > 0.01


def test_without_trim_the_gap_is_black_and_silent(
    media: tuple[list[Source], dict[str, str]], tmp_path: Path
) -> None:
    frames, audio, seconds = compose(media, tmp_path / "n.mp4", trim=False)
    assert seconds == 5.0
    gap = frames[int(2.5 * 15)]
    assert gap.max() < 30, "nothing recorded from 2 s to 3 s: black"
    assert frames[15].std() > 10 and frames[int(3.5 * 15)].std() > 10
    assert audio is not None
    silent = np.abs(audio[:, int(2.2 * 48_000) : int(2.8 * 48_000)]).max()
    assert silent < 0.01


def test_audio_only_composition(media: tuple[list[Source], dict[str, str]], tmp_path: Path) -> None:
    frames, audio, seconds = compose(media, tmp_path / "a.webm", trim=True, layout=False)
    assert frames == [] and seconds == 4.0
    assert audio is not None and audio.shape[1] == pytest.approx(4 * 48_000, abs=2000)
