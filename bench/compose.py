"""`make bench` (compositions): a 4-participant room composed as a grid at 640x480.

    .venv/bin/python -m bench.compose [--quick] [--seconds 60] [--out bench/results]

Makes four participants' track recordings as the recorder writes them (VP8 in Matroska
`.mkv`, 640x480 at 30 fps and about 500 kbit/s, a moving picture; Opus in `.mka`, a tone),
their offsets staggered by 250 ms, then times:

- **parlour**: `parlour.recording.composer.compose_file` on the plan of
  `{"grid": {"video_sources": ["*"]}}` + `AudioSources=*` (2x2 grid, 640x480, MP4: H.264 +
  AAC, 15 fps): what one worker of the composition pool does for one composition;
- **ffmpeg**: the same media through `ffmpeg` alone: decode the four videos and audios,
  scale each into its quarter, `xstack` them, `amix` the audio, encode H.264 (the same x264 preset)
  + AAC at 15 fps into MP4: the raw cost of the decoding and encoding, as a yardstick.

Each is reported as a real-time factor (wall seconds / media seconds; 0.1 means ten times
faster than real time), and as CPU seconds and a CPU real-time factor (CPU seconds / media
seconds: what the work costs whatever else the machine runs; the load average at the start
is recorded beside it). Results go to `bench/results/<date>-compose.json`
and `.md` (`-compose-quick` with `--quick`: 15 s of media); the last line printed is the
headline:

    compose grid640x480 participants=4 media_s=<s> rtf parlour=<x> ffmpeg=<y> ratio=<x/y>
        cpu_rtf parlour=<x> ffmpeg=<y>
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import tempfile
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from parlour.domain.compositions import CompositionFormat
from parlour.domain.layouts import AudioSelection, Source, parse_layout, plan_composition
from parlour.recording.composer import X264_PRESET, compose_file

ROOT = Path(__file__).resolve().parent.parent
PARTICIPANTS = 4
SIZE = (640, 480)
FPS_IN = 30
STAGGER_MS = 250


def make_video(path: Path, seconds: float, seed: int) -> None:
    """A VP8 `.mkv` like a recording: a moving gradient and a bouncing square."""
    with av.open(str(path), "w", format="matroska") as out:
        stream = out.add_stream("libvpx", rate=FPS_IN)
        stream.width, stream.height, stream.pix_fmt = *SIZE, "yuv420p"
        stream.bit_rate = 500_000
        stream.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
        w, h = SIZE
        xs = np.arange(w, dtype=np.int32)[None, :]
        ys = np.arange(h, dtype=np.int32)[:, None]
        for i in range(int(seconds * FPS_IN)):
            y = ((xs + ys + 4 * i + 40 * seed) % 220 + 16).astype(np.uint8)
            bx, by = (37 * i + 50 * seed) % (w - 80), (23 * i + 30 * seed) % (h - 80)
            y[by : by + 80, bx : bx + 80] = 235
            uv = np.full((h // 2, w // 2), 128 + 20 * (seed - 1), dtype=np.uint8)
            image = np.concatenate([y, uv.reshape(h // 4, w), uv.reshape(h // 4, w)])
            frame = av.VideoFrame.from_ndarray(image, format="yuv420p")
            frame.pts = i
            frame.time_base = Fraction(1, FPS_IN)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def make_audio(path: Path, seconds: float, seed: int) -> None:
    """An Opus `.mka` like a recording: a tone, 20 ms frames."""
    with av.open(str(path), "w", format="matroska") as out:
        stream = out.add_stream("libopus", rate=48_000, layout="mono")
        stream.bit_rate = 32_000
        t = np.arange(960) / 48_000
        for i in range(int(seconds * 50)):
            wave = 0.2 * np.sin(2 * np.pi * (300 + 100 * seed) * (t + i * 0.02))
            frame = av.AudioFrame.from_ndarray(
                (wave * 32767).astype(np.int16).reshape(1, -1), format="s16", layout="mono"
            )
            frame.sample_rate, frame.pts = 48_000, i * 960
            frame.time_base = Fraction(1, 48_000)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def sources(workdir: Path, seconds: float) -> tuple[list[Source], dict[str, str]]:
    made: list[Source] = []
    paths: dict[str, str] = {}
    for n in range(PARTICIPANTS):
        start = n * STAGGER_MS
        for kind, maker, ext in (("video", make_video, "mkv"), ("audio", make_audio, "mka")):
            sid = f"RT{n:02d}{kind[0]}".ljust(34, "0")
            path = workdir / f"{sid}.{ext}"
            maker(path, seconds, n)
            paths[sid] = str(path)
            made.append(
                Source(
                    recording_sid=sid,
                    track_sid=f"MT{n:032d}",
                    participant_sid=f"PA{n:032d}",
                    track_name=kind,
                    kind=kind,
                    start=start,
                    end=start + int(seconds * 1000),
                )
            )
    return made, paths


def cpu_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_parlour(made: list[Source], paths: dict[str, str], out: Path) -> dict[str, Any]:
    plan = plan_composition(
        made,
        layout=parse_layout({"grid": {"video_sources": ["*"]}}, SIZE),
        audio=AudioSelection(("*",)),
        resolution=SIZE,
        trim=True,
    )
    cpu0, wall0 = time.process_time(), time.monotonic()
    duration_ms = compose_file(plan, paths, str(out), CompositionFormat.MP4)
    wall, cpu = time.monotonic() - wall0, time.process_time() - cpu0
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "media_s": duration_ms / 1000,
        "bytes": out.stat().st_size,
    }


def run_ffmpeg(
    made: list[Source], paths: dict[str, str], out: Path, media_s: float
) -> dict[str, Any]:
    videos = [s for s in made if s.kind == "video"]
    audios = [s for s in made if s.kind == "audio"]
    args = ["ffmpeg", "-v", "error", "-y"]
    for s in videos + audios:
        args += ["-itsoffset", f"{s.start / 1000:.3f}", "-i", paths[s.recording_sid]]
    scaled = "".join(f"[{i}:v]scale=320:240,setsar=1[v{i}];" for i in range(len(videos)))
    stack = "".join(f"[v{i}]" for i in range(len(videos)))
    mix = "".join(f"[{len(videos) + i}:a]" for i in range(len(audios)))
    graph = (
        f"{scaled}{stack}xstack=inputs=4:layout=0_0|w0_0|0_h0|w0_h0:fill=black,fps=15[v];"
        f"{mix}amix=inputs={len(audios)}:normalize=0[a]"
    )
    args += ["-filter_complex", graph, "-map", "[v]", "-map", "[a]"]
    args += ["-c:v", "libx264", "-preset", X264_PRESET, "-crf", "23", "-pix_fmt", "yuv420p"]
    args += ["-c:a", "aac", "-b:a", "96k", "-ar", "48000", "-ac", "2", str(out)]
    cpu0, wall0 = cpu_children(), time.monotonic()
    subprocess.run(args, check=True, timeout=1800)
    wall, cpu = time.monotonic() - wall0, cpu_children() - cpu0
    return {"wall_s": wall, "cpu_s": cpu, "media_s": media_s, "bytes": out.stat().st_size}


def markdown(doc: dict[str, Any]) -> str:
    rows = [
        f"# Composition benchmark — {doc['date']}",
        "",
        f"{PARTICIPANTS} participants (VP8 640x480 30 fps + Opus each, offsets staggered by "
        f"{STAGGER_MS} ms), {doc['media_s']:.1f} s of media, composed as a 2x2 grid at "
        f"640x480, 15 fps, MP4 (H.264 {X264_PRESET} + AAC). Machine: "
        f"{doc['machine']['cpus']} CPUs, {doc['machine']['platform']}.",
        "",
        f"Load average at the start: {doc['machine']['loadavg']:.2f}.",
        "",
        "| pipeline | wall s | CPU s | wall / media (RTF) | CPU / media | output bytes |",
        "|---|---|---|---|---|---|",
    ]
    for name in ("parlour", "ffmpeg"):
        r = doc[name]
        rows.append(
            f"| {name} | {r['wall_s']:.2f} | {r['cpu_s']:.2f} | {r['rtf']:.3f} "
            f"| {r['cpu_rtf']:.3f} | {r['bytes']} |"
        )
    rows += ["", f"`{doc['headline']}`", ""]
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="15 s of media instead of 60 s")
    parser.add_argument("--seconds", type=float, default=None, help="media length per track")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    opts = parser.parse_args()
    seconds = opts.seconds or (15.0 if opts.quick else 60.0)
    if shutil.which("ffmpeg") is None:
        raise SystemExit("bench.compose needs ffmpeg (Debian's ffmpeg package)")
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="parlour-compose-bench-") as tmp:
        workdir = Path(tmp)
        print(f"compose: making {PARTICIPANTS} participants' recordings, {seconds:.0f} s each")
        made, paths = sources(workdir, seconds)
        print("compose: parlour (compose_file, one worker)")
        ours = run_parlour(made, paths, workdir / "parlour.mp4")
        print("compose: ffmpeg (decode, xstack, amix, encode)")
        theirs = run_ffmpeg(made, paths, workdir / "ffmpeg.mp4", ours["media_s"])
    for r in (ours, theirs):
        r["rtf"] = r["wall_s"] / r["media_s"]
        r["cpu_rtf"] = r["cpu_s"] / r["media_s"]
    ratio = ours["rtf"] / theirs["rtf"] if theirs["rtf"] else float("inf")
    headline = (
        f"compose grid640x480 participants={PARTICIPANTS} media_s={ours['media_s']:.1f} "
        f"rtf parlour={ours['rtf']:.3f} ffmpeg={theirs['rtf']:.3f} ratio={ratio:.2f} "
        f"cpu_rtf parlour={ours['cpu_rtf']:.3f} ffmpeg={theirs['cpu_rtf']:.3f}"
    )
    doc = {
        "date": time.strftime("%Y-%m-%d"),
        "quick": bool(opts.quick),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "loadavg": load,
        },
        "media_s": ours["media_s"],
        "parlour": ours,
        "ffmpeg": theirs,
        "headline": headline,
    }
    opts.out.mkdir(parents=True, exist_ok=True)
    stem = f"{doc['date']}-compose" + ("-quick" if opts.quick else "")
    (opts.out / f"{stem}.json").write_text(json.dumps(doc, indent=2) + "\n")
    (opts.out / f"{stem}.md").write_text(markdown(doc))
    print(markdown(doc))
    print(headline)


if __name__ == "__main__":
    main()
