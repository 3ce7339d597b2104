"""The transcriber: worker processes that run the speech pipeline, off the event loop.

`TranscriberPool` (the `Transcriber` port) starts `workers` processes on first use (spawned:
a fresh interpreter, nothing of the server's state shared). Each track being transcribed is
a stream pinned to the worker with the fewest streams, since its decoder, voice detector and
recogniser hold state. On the event loop a stream only parses the RTP header of each packet
and batches Opus payloads (every 200 ms) into the worker's queue; results come back on one
queue, read by a thread that hands them to the event loop.

A worker that dies fails its streams (their `on_result` never hears again, `on_error` is
called) and is replaced for new streams.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import multiprocessing
import queue
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from parlour.domain.transcriptions import Utterance

__all__ = ["EngineSpec", "TranscriberPool"]

log = logging.getLogger(__name__)

BATCH_PACKETS = 10  # Opus frames (20 ms each) per message to a worker
PARENT_CHECK_SECONDS = 2.0  # an idle worker checks this often that the server still runs


@dataclass(frozen=True, slots=True)
class EngineSpec:
    """Which engine the workers load (`engines.load_engine`) and with which model."""

    name: str = "pocketsphinx"
    model: str | None = None


def parse_rtp(packet: bytes) -> tuple[int, int, int, bytes] | None:
    """(payload type, sequence number, timestamp, payload) of an RTP packet, or None."""
    if len(packet) < 12 or packet[0] >> 6 != 2:
        return None
    pt = packet[1] & 0x7F
    if 72 <= pt <= 79:
        return None  # RTCP
    seq = int.from_bytes(packet[2:4], "big")
    ts = int.from_bytes(packet[4:8], "big")
    offset = 12 + 4 * (packet[0] & 0x0F)
    if packet[0] & 0x10:
        if len(packet) < offset + 4:
            return None
        offset += 4 + 4 * int.from_bytes(packet[offset + 2 : offset + 4], "big")
    end = len(packet)
    if packet[0] & 0x20:
        end -= packet[-1]
    if end <= offset:
        return None
    return pt, seq, ts, packet[offset:end]


def _worker_main(index: int, spec: EngineSpec, jobs: Any, results: Any) -> None:
    """A worker process: streams by id, each a `StreamPipeline`."""
    from parlour.transcription.engines import load_engine
    from parlour.transcription.pipeline import StreamPipeline

    try:
        engine = load_engine(spec.name, spec.model)
    except Exception as exc:  # the engine's own errors: report, then serve nothing
        results.put(("failed", index, f"{type(exc).__name__}: {exc}"))
        return
    results.put(("ready", index, ""))
    streams: dict[int, StreamPipeline] = {}
    parent = multiprocessing.parent_process()
    while True:
        try:
            job = jobs.get(timeout=PARENT_CHECK_SECONDS)
        except queue.Empty:
            if parent is not None and not parent.is_alive():
                return  # the server was killed: do not outlive it
            continue
        kind = job[0]
        if kind == "stop":
            return
        sid = job[1]
        try:
            if kind == "open":

                def emit(text: str, final: bool, start: float, end: float, sid: int = sid) -> None:
                    results.put(("result", sid, (text, final, start, end)))

                streams[sid] = StreamPipeline(engine, job[2], job[3], emit)
            elif kind == "audio":
                stream = streams.get(sid)
                if stream is not None:
                    for ts, payload in job[2]:
                        stream.opus(ts, payload)
            elif kind == "close":
                stream = streams.pop(sid, None)
                if stream is not None:
                    stream.close()
                results.put(("closed", sid, None))
        except Exception as exc:  # one stream's failure must not end the others
            streams.pop(sid, None)
            results.put(("error", sid, f"{type(exc).__name__}: {exc}"))


class _Stream:
    """One track's stream on the event loop side (`TranscriptStream`)."""

    __slots__ = (
        "_batch",
        "_last_seq",
        "_payload_types",
        "closed",
        "id",
        "on_error",
        "on_result",
        "worker",
    )

    def __init__(
        self,
        sid: int,
        worker: _Worker,
        payload_types: Collection[int],
        on_result: Callable[[Utterance], None],
        on_error: Callable[[str], None] | None,
    ) -> None:
        self.id = sid
        self.worker = worker
        self._payload_types = frozenset(payload_types)
        self.on_result = on_result
        self.on_error = on_error
        self._batch: list[tuple[int, bytes]] = []
        self._last_seq: int | None = None
        self.closed = False

    def feed(self, packet: bytes) -> None:
        if self.closed:
            return
        parsed = parse_rtp(packet)
        if parsed is None:
            return
        pt, seq, ts, payload = parsed
        if self._payload_types and pt not in self._payload_types:
            return
        if self._last_seq is not None and 0 < (self._last_seq - seq) & 0xFFFF < 0x8000:
            return  # older than one already taken (reordered or retransmitted)
        if self._last_seq == seq:
            return
        self._last_seq = seq
        self._batch.append((ts, payload))
        if len(self._batch) >= BATCH_PACKETS:
            self._flush()

    def _flush(self) -> None:
        if self._batch:
            self.worker.send(("audio", self.id, self._batch))
            self._batch = []

    def close(self) -> None:
        if not self.closed:
            self._flush()
            self.closed = True
            self.worker.send(("close", self.id))
            self.worker.streams.discard(self.id)


class _Worker:
    def __init__(self, index: int, process: Any, jobs: Any) -> None:
        self.index = index
        self.process = process
        self.jobs = jobs
        self.streams: set[int] = set()
        self.alive = True

    def send(self, job: tuple[Any, ...]) -> None:
        if self.alive:
            with contextlib.suppress(ValueError, OSError):
                self.jobs.put_nowait(job)


class TranscriberPool:
    """`workers` speech-recognition processes (the `Transcriber` port)."""

    def __init__(self, spec: EngineSpec, *, workers: int = 1) -> None:
        self.spec = spec
        self._size = max(1, workers)
        self._ctx = multiprocessing.get_context("spawn")
        self._workers: list[_Worker] = []
        self._streams: dict[int, _Stream] = {}
        self._ids = itertools.count(1)
        self._results: Any = None
        self._reader: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self.failure: str | None = None  # why the engine could not be loaded, if it could not

    def _start(self) -> None:
        if self._results is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._results = self._ctx.Queue()
        for i in range(self._size):
            self._workers.append(self._spawn(i))
        self._reader = threading.Thread(target=self._read, name="transcriber-results", daemon=True)
        self._reader.start()

    def _spawn(self, index: int) -> _Worker:
        jobs = self._ctx.Queue()
        process = self._ctx.Process(
            target=_worker_main,
            args=(index, self.spec, jobs, self._results),
            name=f"parlour-transcriber-{index}",
            daemon=True,
        )
        process.start()
        return _Worker(index, process, jobs)

    def open_stream(
        self,
        *,
        language: str,
        partial_results: bool,
        payload_types: Collection[int],
        on_result: Callable[[Utterance], None],
        on_error: Callable[[str], None] | None = None,
    ) -> _Stream:
        self._start()
        self._replace_dead()
        worker = min(self._workers, key=lambda w: len(w.streams))
        stream = _Stream(next(self._ids), worker, payload_types, on_result, on_error)
        self._streams[stream.id] = stream
        worker.streams.add(stream.id)
        worker.send(("open", stream.id, language, partial_results))
        return stream

    def _replace_dead(self) -> None:
        for i, worker in enumerate(self._workers):
            if not worker.process.is_alive():
                worker.alive = False
                for sid in list(worker.streams):
                    self._stream_error(sid, "the transcription worker stopped")
                self._workers[i] = self._spawn(worker.index)

    def _read(self) -> None:
        results = self._results
        while True:
            try:
                item = results.get()
            except (EOFError, OSError, ValueError):
                return
            if item is None:
                return
            loop = self._loop
            if loop is None or loop.is_closed():
                return
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(self._deliver, item)

    def _deliver(self, item: tuple[str, int, Any]) -> None:
        kind, sid, value = item
        if kind == "result":
            stream = self._streams.get(sid)
            if stream is not None:
                text, final, start, end = value
                stream.on_result(Utterance(text=text, final=final, start=start, end=end))
        elif kind == "closed":
            self._streams.pop(sid, None)
        elif kind == "error":
            self._stream_error(sid, value)
        elif kind == "failed":
            self.failure = value
            log.error("transcription engine %s could not be loaded: %s", self.spec.name, value)
            for worker in self._workers:
                if worker.index == sid:
                    for stream_id in list(worker.streams):
                        self._stream_error(stream_id, value)

    def _stream_error(self, sid: int, message: str) -> None:
        stream = self._streams.pop(sid, None)
        if stream is not None:
            stream.closed = True
            stream.worker.streams.discard(sid)
            if stream.on_error is not None:
                stream.on_error(message)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for worker in self._workers:
            worker.send(("stop",))
        for worker in self._workers:
            await asyncio.to_thread(worker.process.join, 5)
            if worker.process.is_alive():
                worker.process.kill()
                await asyncio.to_thread(worker.process.join, 5)
            worker.jobs.close()
            worker.jobs.join_thread()
        if self._results is not None:
            self._results.put(None)
            if self._reader is not None:
                await asyncio.to_thread(self._reader.join, 5)
            self._results.close()
            self._results.join_thread()
