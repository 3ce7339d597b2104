"""The composition media pipeline: track recordings in, one MP4 or WebM out.

`PoolComposer` implements the `Composer` port. Each job runs `compose_file` in a worker
process (a `ProcessPoolExecutor`, spawned: the server's event loop and the SFU never wait
for a composition); progress comes back over a queue. The worker decodes the recordings
with PyAV (Opus from `.mka`, VP8/H.264 from `.mkv`), draws each output frame from the
`CompositionPlan` (`domain.layouts`: who is where, when), mixes the audio, and encodes
H.264 + AAC in MP4 or VP8 + Opus in WebM straight into the output file: decoded pictures
and samples stay in memory, one frame at a time (no raw intermediate file). The finished
file goes to the `MediaStorage` under the job's key.

Pictures are composed in YUV 4:2:0 with numpy: black (Y 16, U/V 128) where no source is
shown, each source scaled into its cell keeping its aspect ratio (`object-fit: contain`).
Audio is decoded, resampled to 48 kHz stereo and summed (clipped) at the place its
recording's `offset` puts it. Output time skips the spans `Trim` removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import multiprocessing
import os
import queue as queue_module
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from parlour.domain.compositions import CompositionFormat
from parlour.domain.layouts import CompositionPlan, Placement, Source, contain
from parlour.domain.ports import CompositionJob, CompositionOutput, MediaStorage

__all__ = ["PoolComposer", "compose_file"]

log = logging.getLogger(__name__)

FPS = 15
RATE = 48_000
#: x264's speed/size trade-off (bench/compose.py gives ffmpeg the same).
X264_PRESET = "superfast"
_BLACK_Y, _BLACK_C = 16, 128
_VIDEO_CODEC = {CompositionFormat.MP4: "libx264", CompositionFormat.WEBM: "libvpx"}
_AUDIO_CODEC = {CompositionFormat.MP4: "aac", CompositionFormat.WEBM: "libopus"}

Report = Callable[[int, float], None]


# -- readers --------------------------------------------------------------------------------


class _VideoReader:
    """Decodes one video recording in order; `at(t)` is the picture showing at room time t,
    scaled for a cell (cached until the next picture)."""

    def __init__(self, path: str, source: Source) -> None:
        self.source = source
        self._container = av.open(path)
        stream = self._container.streams.video[0]
        stream.thread_type = "AUTO"
        self._tb = float(stream.time_base or Fraction(1, 1000))
        self._frames = self._decode(stream)
        self._current: av.VideoFrame | None = None
        self._current_t = -math.inf
        self._next = self._pull()
        self._scaled: tuple[int, tuple[int, int], np.ndarray] | None = None
        # one scaler per source: it keeps its swscale context between pictures
        self._scaler = VideoReformatter()
        self._serial = 0

    def _decode(self, stream: Any) -> Iterator[av.VideoFrame]:
        try:
            yield from self._container.decode(stream)
        except av.error.FFmpegError as exc:  # a damaged tail: what was decoded stays
            log.warning("composition source %s: %s", self.source.recording_sid, exc)

    def _pull(self) -> tuple[float, av.VideoFrame] | None:
        frame = next(self._frames, None)
        if frame is None:
            return None
        pts = frame.pts if frame.pts is not None else 0
        return self.source.start + pts * self._tb * 1000, frame

    def at(self, t: float, width: int, height: int) -> np.ndarray | None:
        while self._next is not None and self._next[0] <= t:
            self._current_t, self._current = self._next
            self._serial += 1
            self._next = self._pull()
        if self._current is None:
            if self._next is None:
                return None
            # Before the first decodable picture (a late keyframe): show the first one.
            self._current_t, self._current = self._next
            self._serial += 1
            self._next = self._pull()
        cached = self._scaled
        if cached is not None and cached[0] == self._serial and cached[1] == (width, height):
            return cached[2]
        picture = self._scaler.reformat(
            self._current,
            width=width,
            height=height,
            format="yuv420p",
            interpolation="BILINEAR",
        )
        array = picture.to_ndarray()
        self._scaled = (self._serial, (width, height), array)
        return array

    def size(self) -> tuple[int, int]:
        frame = self._current or (self._next[1] if self._next else None)
        return (frame.width, frame.height) if frame is not None else (0, 0)

    def close(self) -> None:
        self._container.close()


class _AudioReader:
    """Decodes one audio recording to 48 kHz stereo float, placed on the room clock."""

    def __init__(self, path: str, source: Source) -> None:
        self.source = source
        self._container = av.open(path)
        stream = self._container.streams.audio[0]
        self._tb = float(stream.time_base or Fraction(1, 1000))
        self._frames = self._container.decode(stream)
        self._resampler = av.AudioResampler(format="flt", layout="stereo", rate=RATE)
        self._buffer = np.zeros((0, 2), dtype=np.float32)
        self._buffer_start = round(source.start * RATE / 1000)
        self._done = False

    def _decode_one(self) -> bool:
        try:
            frame = next(self._frames, None)
        except av.error.FFmpegError:
            frame = None
        if frame is None:
            self._done = True
            return False
        at: int | None = None
        if frame.pts is not None:
            at = round((self.source.start + frame.pts * self._tb * 1000) * RATE / 1000)
        for out in self._resampler.resample(frame):
            samples = out.to_ndarray().reshape(-1, 2)
            end = self._buffer_start + len(self._buffer)
            if at is not None and at > end:  # a gap (DTX, loss): silence
                gap = np.zeros((at - end, 2), dtype=np.float32)
                self._buffer = np.concatenate([self._buffer, gap])
            elif at is not None and at < end:  # overlap: drop what is already there
                samples = samples[min(len(samples), end - at) :]
            self._buffer = np.concatenate([self._buffer, samples])
            at = None
        return True

    def read(self, start: int, count: int) -> np.ndarray | None:
        """Samples [start, start+count) on the room clock (zeros where there are none)."""
        while not self._done and self._buffer_start + len(self._buffer) < start + count:
            self._decode_one()
        # forget what is before `start`
        drop = start - self._buffer_start
        if drop > 0:
            self._buffer = self._buffer[drop:]
            self._buffer_start = start
        if self._buffer_start >= start + count or not len(self._buffer):
            return None
        out = np.zeros((count, 2), dtype=np.float32)
        offset = self._buffer_start - start
        take = self._buffer[: count - offset]
        out[offset : offset + len(take)] = take
        return out

    def close(self) -> None:
        self._container.close()


# -- the worker -----------------------------------------------------------------------------


def _room_time(spans: tuple[tuple[int, int], ...], out_ms: float) -> float:
    """The room time of an output time (the kept spans laid end to end)."""
    elapsed = 0.0
    for a, b in spans:
        if out_ms < elapsed + (b - a):
            return a + (out_ms - elapsed)
        elapsed += b - a
    return float(spans[-1][1]) if spans else 0.0


def _paste(
    canvas: tuple[np.ndarray, np.ndarray, np.ndarray],
    picture: np.ndarray,
    x: int,
    y: int,
    w: int,
    h: int,
) -> None:
    cy, cu, cv = canvas
    cy[y : y + h, x : x + w] = picture[:h]
    chroma = picture[h:].reshape(2, h // 2, w // 2)
    cu[y // 2 : (y + h) // 2, x // 2 : (x + w) // 2] = chroma[0]
    cv[y // 2 : (y + h) // 2, x // 2 : (x + w) // 2] = chroma[1]


def _audio_frame(mixed: np.ndarray, fmt: str, pts: int) -> av.AudioFrame:
    if fmt == "fltp":
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(mixed.T), format="fltp", layout="stereo"
        )
    elif fmt == "flt":
        frame = av.AudioFrame.from_ndarray(mixed.reshape(1, -1), format="flt", layout="stereo")
    else:
        ints = (mixed * 32767).astype(np.int16).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(ints, format="s16", layout="stereo")
    frame.sample_rate = RATE
    frame.pts = pts
    frame.time_base = Fraction(1, RATE)
    return frame


def compose_file(
    plan: CompositionPlan,
    inputs: dict[str, str],
    output: str,
    fmt: CompositionFormat,
    report: Report | None = None,
    fps: int = FPS,
) -> int:
    """Encode the composition of `plan` into `output`; returns its duration in ms.

    Args:
        inputs: recording SID → local path of its media file.
        report: called with (percent done, seconds remaining) about every 10 %.
    """
    duration = plan.duration_ms
    if duration <= 0:
        raise ValueError("nothing to compose: no media in the selected recordings")
    width, height = plan.resolution[0] & ~1, plan.resolution[1] & ~1
    out = av.open(output, "w", format="mp4" if fmt is CompositionFormat.MP4 else "webm")
    video_readers: dict[str, _VideoReader] = {}
    audio_readers: list[_AudioReader] = []
    started = time.monotonic()
    try:
        vstream: Any = None
        if plan.has_video:
            vstream = out.add_stream(_VIDEO_CODEC[fmt], rate=fps)
            vstream.width, vstream.height, vstream.pix_fmt = width, height, "yuv420p"
            if fmt is CompositionFormat.MP4:
                vstream.options = {"preset": X264_PRESET, "crf": "23"}
            else:
                vstream.bit_rate = 1_000_000
                vstream.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
            for source in plan.video_sources:
                video_readers[source.recording_sid] = _VideoReader(
                    inputs[source.recording_sid], source
                )
        astream: Any = None
        if plan.audio:
            astream = out.add_stream(_AUDIO_CODEC[fmt], rate=RATE, layout="stereo")
            astream.bit_rate = 96_000
            for source in plan.audio:
                audio_readers.append(_AudioReader(inputs[source.recording_sid], source))
        if astream is not None:
            # the encoder's frame size (AAC 1024, Opus 960) and sample format
            astream.codec_context.open()
            block = astream.codec_context.frame_size or 960
            afmt = astream.codec_context.format.name
        else:
            block, afmt = 960, "flt"
        total_samples = round(duration * RATE / 1000)
        total_frames = max(1, math.ceil(duration * fps / 1000)) if vstream else 0
        frame_index = sample_index = 0
        next_report = 10
        canvas_shape = ((height, width), (height // 2, width // 2))

        def progress_at(out_ms: float) -> None:
            nonlocal next_report
            percent = int(100 * out_ms / duration)
            if report is not None and percent >= next_report and percent < 100:
                spent = time.monotonic() - started
                remaining = spent * (duration - out_ms) / max(out_ms, 1.0)
                report(percent, remaining)
                next_report = (percent // 10 + 1) * 10

        while frame_index < total_frames or (astream is not None and sample_index < total_samples):
            video_ms = frame_index * 1000 / fps if frame_index < total_frames else math.inf
            audio_ms = sample_index * 1000 / RATE if astream is not None else math.inf
            if sample_index >= total_samples:
                audio_ms = math.inf
            if vstream is not None and video_ms <= audio_ms:
                t = _room_time(plan.spans, video_ms)
                cy = np.full(canvas_shape[0], _BLACK_Y, dtype=np.uint8)
                cu = np.full(canvas_shape[1], _BLACK_C, dtype=np.uint8)
                cv = np.full(canvas_shape[1], _BLACK_C, dtype=np.uint8)
                for placement in plan.visible(round(t)):
                    _draw(placement, video_readers, (cy, cu, cv), t, width, height)
                image = np.concatenate(
                    [cy, cu.reshape(height // 4, width), cv.reshape(height // 4, width)]
                )
                frame = av.VideoFrame.from_ndarray(image, format="yuv420p")
                frame.pts = frame_index
                frame.time_base = Fraction(1, fps)
                for packet in vstream.encode(frame):
                    out.mux(packet)
                frame_index += 1
                progress_at(video_ms)
            else:
                assert astream is not None
                count = min(block, total_samples - sample_index)
                out_ms = sample_index * 1000 / RATE
                room_start = round(_room_time(plan.spans, out_ms) * RATE / 1000)
                mixed = np.zeros((block, 2), dtype=np.float32)
                for reader in audio_readers:
                    samples = reader.read(room_start, count)
                    if samples is not None:
                        mixed[:count] += samples
                np.clip(mixed, -1.0, 1.0, out=mixed)
                for packet in astream.encode(_audio_frame(mixed, afmt, sample_index)):
                    out.mux(packet)
                sample_index += count
                progress_at(out_ms)
        if vstream is not None:
            for packet in vstream.encode(None):
                out.mux(packet)
        if astream is not None:
            for packet in astream.encode(None):
                out.mux(packet)
    finally:
        out.close()
        for video in video_readers.values():
            video.close()
        for audio in audio_readers:
            audio.close()
    return duration


def _draw(
    placement: Placement,
    readers: dict[str, _VideoReader],
    canvas: tuple[np.ndarray, np.ndarray, np.ndarray],
    t: float,
    width: int,
    height: int,
) -> None:
    reader = readers.get(placement.source.recording_sid)
    if reader is None:
        return
    src_w, src_h = reader.size()
    if not src_w:
        return
    x, y, w, h = contain(placement.cell, src_w, src_h)
    w, h = min(w, width - x) & ~1, min(h, height - y) & ~1
    if w < 2 or h < 2:
        return
    picture = reader.at(t, w, h)
    if picture is not None:
        _paste(canvas, picture, x, y, w, h)


# -- the pool -------------------------------------------------------------------------------

_progress_queue: Any = None


def _init_worker(progress: Any) -> None:
    global _progress_queue
    _progress_queue = progress


def _run_job(job: CompositionJob, inputs: dict[str, str], output: str) -> int:
    """In the worker process."""

    def report(percent: int, remaining: float) -> None:
        if _progress_queue is not None:
            _progress_queue.put((job.composition_sid, percent, remaining))

    return compose_file(job.plan, inputs, output, job.format, report)


class PoolComposer:
    """The `Composer` port on a process pool.

    Args:
        storage: where the recordings are read from and the composition is stored (unless
            the job names other storages: `storages`, `output_storage`).
        scratch_dir: where the output is written before it is stored (and where recordings
            of a non-local storage are copied to be read).
        workers: processes composing at once.
    """

    def __init__(self, storage: MediaStorage, scratch_dir: Path, *, workers: int = 1) -> None:
        self._storage = storage
        self._scratch = scratch_dir
        self._workers = workers
        self._progress: Any = None
        self._pool: ProcessPoolExecutor | None = None
        self._listeners: dict[str, Callable[[int, float], None]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._reader: threading.Thread | None = None
        self._closed = False

    def _read_progress(self) -> None:
        while not self._closed:
            try:
                item = self._progress.get(timeout=0.5)
            except queue_module.Empty:
                continue
            except (EOFError, OSError, ValueError):
                return
            sid, percent, remaining = item
            listener = self._listeners.get(sid)
            loop = self._loop
            if listener is not None and loop is not None:
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(listener, percent, remaining)

    async def compose(
        self, job: CompositionJob, progress: Callable[[int, float], None]
    ) -> CompositionOutput:
        if self._closed:
            raise RuntimeError("the composer is closed")
        self._loop = asyncio.get_running_loop()
        if self._pool is None:
            # Made on first use: a server that never composes starts no process.
            context = multiprocessing.get_context("spawn")
            self._progress = context.Queue()
            self._pool = ProcessPoolExecutor(
                max_workers=self._workers,
                mp_context=context,
                initializer=_init_worker,
                initargs=(self._progress,),
            )
            await asyncio.to_thread(_scratch_leftovers, self._scratch)
        pool = self._pool
        if self._reader is None:
            self._reader = threading.Thread(
                target=self._read_progress, name="composer-progress", daemon=True
            )
            self._reader.start()
        self._scratch.mkdir(parents=True, exist_ok=True)
        workdir = Path(await asyncio.to_thread(tempfile.mkdtemp, dir=self._scratch))
        try:
            inputs = {}
            for sid, key in job.media_keys.items():
                source = job.storages.get(sid, self._storage)
                inputs[sid] = str(await self._local(source, key, workdir))
            output = workdir / f"{job.composition_sid}.{job.format.value}"
            self._listeners[job.composition_sid] = progress
            try:
                duration = await asyncio.wrap_future(
                    pool.submit(
                        _run_job,
                        replace(job, storages={}, output_storage=None),
                        inputs,
                        str(output),
                    )
                )
            finally:
                self._listeners.pop(job.composition_sid, None)
            target = job.output_storage if job.output_storage is not None else self._storage
            size = await target.put(job.output_key, output)
            bitrate = round(size * 8 / max(duration, 1))  # bits per ms = kbps
            return CompositionOutput(duration_ms=duration, size=size, bitrate=bitrate)
        finally:
            await asyncio.to_thread(shutil.rmtree, workdir, True)

    async def _local(self, storage: MediaStorage, key: str, workdir: Path) -> Path:
        """A local path of a stored recording (a copy if the storage is not local files)."""
        local = getattr(storage, "local_path", None)
        if local is not None:
            path: Path = local(key)
            if await asyncio.to_thread(path.exists):
                return path
        copy = workdir / key.replace("/", "_")
        with copy.open("wb") as handle:
            async for chunk in storage.open(key):
                await asyncio.to_thread(handle.write, chunk)
        return copy

    async def close(self) -> None:
        """Stop the workers (a composition in progress stays `processing` in the store and
        is composed again at the next start)."""
        if self._closed:
            return
        self._closed = True
        if self._pool is None:
            return
        processes = list((getattr(self._pool, "_processes", None) or {}).values())
        self._pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            with contextlib.suppress(Exception):
                process.terminate()
        for process in processes:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(process.join, 5)
        self._progress.close()
        if self._reader is not None:
            await asyncio.to_thread(self._reader.join, 2)


def _scratch_leftovers(scratch: Path) -> None:
    """Remove work directories a killed server left (called at start)."""
    if scratch.is_dir():
        for entry in scratch.iterdir():
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    os.unlink(entry)
