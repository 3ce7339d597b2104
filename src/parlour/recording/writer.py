"""`TrackRecorder`: one track's RTP packets → a Matroska file (`.mka` Opus, `.mkv` VP8/H.264).

::

    feed(packet, arrival)  ──►  bounded queue  ──►  writer thread:
      (caller's thread; never                        Depacketizer → frames → PyAV mux
       blocks: a full queue                          (packets copied as they are: no
       drops and counts)                             decoding, no re-encoding)

- Timestamps come from RTP (`depacketize.Frame.timestamp`), in a 1 ms time base, with the
  first written frame at 0 (for video the first keyframe: nothing before it can be decoded).
  Gaps stay gaps.
- Crash safety: the muxer closes a Matroska cluster at least every `cluster_ms` and the
  file is flushed after every packet, so a killed process leaves a file that plays up to
  its last closed cluster (the last second or so). Only its duration and cues are missing;
  `recover()` remuxes such a file into a finished one.
- `close()` drains the queue, writes the trailer (duration, cues) and reports duration and
  size. Without a single frame no file is created (size 0).
"""

from __future__ import annotations

import asyncio
import io
import logging
import math
import queue
import threading
from collections.abc import Callable, Collection
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
from av.container import OutputContainer
from av.stream import Stream

from parlour.domain.recordings import FailedOperation, RecordingResult
from parlour.recording.bitstream import opus_head, opus_packet_samples
from parlour.recording.depacketize import CODECS, Depacketizer, Frame

__all__ = ["MS", "TrackRecorder", "probe", "remux"]

log = logging.getLogger(__name__)

MS = Fraction(1, 1000)
#: PyAV codec names: only used to describe the stream; nothing is ever encoded.
_AV_CODECS = {"OPUS": "opus", "VP8": "vp8", "H264": "h264"}
_DEFAULT_VIDEO_SIZE = (640, 480)  # if a keyframe does not say (decoders use the bitstream)
_KEYFRAME_REQUEST_INTERVAL = 1.0


def _mux_options(cluster_ms: int) -> dict[str, str]:
    return {"cluster_time_limit": str(cluster_ms), "flush_packets": "1"}


def _stream_like(container: OutputContainer, codec_name: str) -> Stream:
    """A stream of `codec_name` for pre-encoded packets, whose parameters (size, extradata)
    can still be set: a template from a scratch container, so no encoder is ever opened."""
    scratch = av.open(io.BytesIO(), "w", format="matroska")
    try:
        template = scratch.add_stream(codec_name)
        return container.add_stream_from_template(template, opaque=True)
    finally:
        scratch.close()


class TrackRecorder:
    """Records one track to `path` on a thread of its own.

    Args:
        codec: `OPUS`, `VP8` or `H264`.
        payload_types: the codec's RTP payload types (others are ignored; all if empty).
        max_queue: packets waiting for the writer before `feed` starts dropping.
        cluster_ms: longest Matroska cluster, i.e. how much a crash can lose.
        on_keyframe_needed: called (from the writer thread, at most once a second) while a
            video recording waits for a keyframe.
        name: for logs and the thread's name (the recording SID).
    """

    def __init__(
        self,
        path: Path,
        codec: str,
        *,
        payload_types: Collection[int] = (),
        max_queue: int = 4096,
        cluster_ms: int = 1000,
        on_keyframe_needed: Callable[[], None] | None = None,
        name: str = "",
    ) -> None:
        self.path = path
        self.codec = codec.upper()
        if self.codec not in CODECS:
            raise ValueError(f"cannot record {codec!r}")
        self.name = name or path.stem
        self._depacketizer = Depacketizer(self.codec, payload_types=payload_types)
        self._clock_rate = CODECS[self.codec]
        self._video = self.codec != "OPUS"
        self._max_queue = max_queue
        self._cluster_ms = cluster_ms
        self._on_keyframe_needed = on_keyframe_needed
        self._queue: queue.SimpleQueue[tuple[bytes, float] | None] = queue.SimpleQueue()
        # `_fed` is only written by the feeding thread and `_taken` by the writer thread,
        # so their difference bounds the queue without a lock.
        self._fed = 0
        self._taken = 0
        self.dropped = 0
        self._closing = False
        self._result: RecordingResult | None = None
        # writer-thread state
        self._container: OutputContainer | None = None
        self._stream: Stream | None = None
        self._first_ts = 0
        self._first_arrival: float | None = None
        self._last_pts = -1
        self._end_ms = 0
        self._pending: tuple[Frame, int] | None = None
        self._frame_ms = 33
        self._written = 0
        self._error: str | None = None
        self._keyframe_asked = -math.inf
        self._thread = threading.Thread(target=self._run, name=f"recorder-{self.name}", daemon=True)
        self._thread.start()

    # -- caller side ----------------------------------------------------------------------

    def feed(self, packet: bytes, arrival: float) -> None:
        """Queue one RTP packet (never blocks; dropped and counted when the queue is full)."""
        if self._closing:
            return
        if self._fed - self._taken >= self._max_queue:
            self.dropped += 1
            return
        self._fed += 1
        self._queue.put((packet, arrival))

    def close(self, timeout: float | None = None) -> RecordingResult:
        """Write what is queued, finish the file, and report it (blocks; safe to repeat)."""
        if not self._closing:
            self._closing = True
            self._queue.put(None)
        self._thread.join(timeout)
        if self._result is None:
            return RecordingResult(
                dropped=self.dropped,
                error="the recording writer did not finish in time",
                failed_operation=FailedOperation.COMPLETE,
            )
        return self._result

    async def aclose(self) -> RecordingResult:
        """`close()` without blocking the event loop."""
        return await asyncio.to_thread(self.close)

    # -- writer thread --------------------------------------------------------------------

    def _run(self) -> None:
        depacketizer = self._depacketizer
        try:
            while True:
                item = self._queue.get()
                if item is None:
                    break
                self._taken += 1
                if self._error is not None:
                    continue  # keep draining so feed() never sees a full queue
                packet, arrival = item
                try:
                    for frame in depacketizer.push(packet, arrival):
                        self._write(frame)
                except Exception as exc:
                    self._fail(exc)
                if self._video and depacketizer.awaiting_keyframe:
                    self._ask_keyframe(arrival)
            if self._error is None:
                try:
                    for frame in depacketizer.flush():
                        self._write(frame)
                    self._flush_pending(final=True)
                except Exception as exc:
                    self._fail(exc)
        finally:
            self._finish()

    def _ask_keyframe(self, now: float) -> None:
        callback = self._on_keyframe_needed
        if callback is None or now - self._keyframe_asked < _KEYFRAME_REQUEST_INTERVAL:
            return
        self._keyframe_asked = now
        try:
            callback()
        except Exception:
            log.exception("keyframe request failed recording=%s", self.name)

    def _fail(self, exc: BaseException) -> None:
        self._error = f"{type(exc).__name__}: {exc}"[:400]
        log.error("recording write failed recording=%s error=%s", self.name, self._error)

    def _open(self, frame: Frame) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        container = av.open(
            str(self.path),
            "w",
            format="matroska",
            container_options=_mux_options(self._cluster_ms),
        )
        try:
            stream = _stream_like(container, _AV_CODECS[self.codec])
            ctx: Any = stream.codec_context
            if self._video:
                width, height = frame.width, frame.height
                if not width or not height:
                    width, height = _DEFAULT_VIDEO_SIZE
                ctx.width, ctx.height = width, height
                if self.codec == "H264":
                    ctx.extradata = self._depacketizer.codec_config
            else:
                ctx.sample_rate = 48000
                ctx.layout = "stereo"
                # WebRTC negotiates opus/48000/2; a mono packet decodes to stereo as well.
                ctx.extradata = opus_head(channels=2)
            stream.time_base = MS
        except BaseException:
            container.close()
            raise
        self._container, self._stream = container, stream
        self._first_ts = frame.timestamp
        self._first_arrival = frame.arrival

    def _write(self, frame: Frame) -> None:
        if self._container is None:
            if self._video and not frame.keyframe:
                return
            self._open(frame)
        pts = round((frame.timestamp - self._first_ts) * 1000 / self._clock_rate)
        pts = max(pts, self._last_pts + 1)
        self._last_pts = pts
        if self._video:
            # Held back one frame, so that its duration is known.
            self._flush_pending(next_pts=pts)
            self._pending = (frame, pts)
        else:
            duration = round(opus_packet_samples(frame.data) / 48) or 20
            self._mux(frame.data, pts, duration, True)

    def _flush_pending(self, *, next_pts: int | None = None, final: bool = False) -> None:
        if self._pending is None:
            return
        frame, pts = self._pending
        self._pending = None
        if next_pts is not None:
            self._frame_ms = max(1, min(next_pts - pts, 1000))
        self._mux(frame.data, pts, self._frame_ms, frame.keyframe)

    def _mux(self, data: bytes, pts: int, duration: int, keyframe: bool) -> None:
        assert self._container is not None and self._stream is not None
        packet = av.Packet(data)
        packet.stream = self._stream
        packet.time_base = MS
        packet.pts = packet.dts = pts
        packet.duration = duration
        packet.is_keyframe = keyframe
        self._container.mux(packet)
        self._written += 1
        self._end_ms = max(self._end_ms, pts + duration)

    def _finish(self) -> None:
        """Close the container (trailer: duration, cues) and build the result."""
        container, self._container = self._container, None
        if container is not None:
            try:
                container.close()
            except Exception as exc:
                if self._error is None:
                    self._fail(exc)
        size = 0
        if self._written:
            try:
                size = self.path.stat().st_size
            except OSError as exc:
                if self._error is None:
                    self._fail(exc)
        d = self._depacketizer
        log.info(
            "recording written recording=%s frames=%d duration_ms=%d size=%d dropped=%d "
            "lost=%d incomplete=%d skipped=%d",
            self.name,
            self._written,
            self._end_ms,
            size,
            self.dropped,
            d.lost,
            d.incomplete,
            d.skipped,
        )
        self._result = RecordingResult(
            duration_ms=self._end_ms if self._written else 0,
            size=size,
            frames=self._written,
            first_arrival=self._first_arrival if self._written else None,
            dropped=self.dropped,
            error=self._error,
            failed_operation=FailedOperation.COMPLETE if self._error else None,
        )


def probe(path: Path) -> tuple[str, int, int]:
    """(codec name, packets, media end in ms) of a Matroska file, by demuxing only (no
    decoding). A file cut short by a crash is read up to its last complete block.

    Raises:
        av.FFmpegError / OSError: not a readable media file.
    """
    with av.open(str(path), "r") as container:
        stream = container.streams[0]
        codec = stream.codec_context.name if stream.codec_context is not None else ""
        count = 0
        end = 0
        try:
            for packet in container.demux(stream):
                if packet.pts is None or packet.time_base is None:
                    continue
                count += 1
                ms = int((packet.pts + (packet.duration or 0)) * packet.time_base * 1000)
                end = max(end, ms)
        except (av.FFmpegError, EOFError):
            pass  # truncated by a crash: what was read before is good
    return codec, count, end


def remux(source: Path, target: Path) -> tuple[int, int]:
    """Copy every readable packet of `source` into a finished Matroska file `target`
    (duration and cues written). Returns (packets, media end in ms).

    Raises:
        av.FFmpegError / OSError: `source` is not readable media.
    """
    count = 0
    end = 0
    with av.open(str(source), "r") as src:
        in_stream = src.streams[0]
        with av.open(str(target), "w", format="matroska") as dst:
            out_stream = dst.add_stream_from_template(in_stream)
            try:
                for packet in src.demux(in_stream):
                    if packet.pts is None or packet.time_base is None:
                        continue
                    ms = int((packet.pts + (packet.duration or 0)) * packet.time_base * 1000)
                    packet.stream = out_stream
                    dst.mux(packet)
                    count += 1
                    end = max(end, ms)
            except (av.FFmpegError, EOFError):
                pass  # the crash cut the last block short
    return count, end
