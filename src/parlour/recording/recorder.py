"""`MatroskaRecorder`: the `RecordingMedia` port. Spool files while recording, storage after.

A recording is written to `spool/RT….mka|mkv` (crash-safe, see `writer.py`); when it
completes, the finished file goes to the `MediaStorage` under `recordings/RT….mka|mkv`
(with `LocalStorage` on the same disk that is a rename). After a crash, `recover` remuxes
what the spool file holds (packets copied, never decoded) into a finished file.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Collection
from dataclasses import replace
from pathlib import Path

from parlour.domain.ports import MediaStorage
from parlour.domain.recordings import FailedOperation, Recording, RecordingResult
from parlour.recording.writer import TrackRecorder, probe, remux

__all__ = ["MatroskaRecorder"]

log = logging.getLogger(__name__)


class _SpoolWriter:
    """One recording: a `TrackRecorder` on the spool file, stored when it completes."""

    def __init__(self, recorder: TrackRecorder, storage: MediaStorage, key: str) -> None:
        self._recorder = recorder
        self._storage = storage
        self._key = key
        self._result: RecordingResult | None = None

    def feed(self, packet: bytes, arrival: float) -> None:
        self._recorder.feed(packet, arrival)

    async def close(self) -> RecordingResult:
        if self._result is None:
            self._result = await self._finish()
        return self._result

    async def _finish(self) -> RecordingResult:
        result = await self._recorder.aclose()
        path = self._recorder.path
        if result.error is not None or result.frames == 0:
            return result
        try:
            size = await self._storage.put(self._key, path)
        except Exception as exc:
            log.error("recording not stored recording=%s error=%s", path.stem, exc)
            return replace(
                result,
                error=f"storing failed: {exc}"[:400],
                failed_operation=FailedOperation.UPLOAD,
            )
        return replace(result, size=size)


class MatroskaRecorder:
    """Writers for new recordings and recovery of interrupted ones.

    Args:
        storage: where finished files go.
        spool_dir: where files are written while recording (survives a crash).
        cluster_ms: longest Matroska cluster (what a crash may lose).
        max_queue: packets a writer may fall behind before it drops.
    """

    def __init__(
        self,
        storage: MediaStorage,
        spool_dir: Path,
        *,
        cluster_ms: int = 1000,
        max_queue: int = 4096,
    ) -> None:
        self.storage = storage
        self.spool_dir = spool_dir
        self._cluster_ms = cluster_ms
        self._max_queue = max_queue

    def spool_path(self, recording: Recording) -> Path:
        return self.spool_dir / recording.file_name

    def open_writer(
        self,
        recording: Recording,
        *,
        payload_types: Collection[int] = (),
        on_keyframe_needed: Callable[[], None] | None = None,
        storage: MediaStorage | None = None,
    ) -> _SpoolWriter:
        path = self.spool_path(recording)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
        recorder = TrackRecorder(
            path,
            recording.codec.value,
            payload_types=payload_types,
            max_queue=self._max_queue,
            cluster_ms=self._cluster_ms,
            on_keyframe_needed=on_keyframe_needed,
            name=recording.sid,
        )
        return _SpoolWriter(recorder, storage or self.storage, recording.media_key)

    async def recover(
        self, recording: Recording, *, storage: MediaStorage | None = None
    ) -> RecordingResult:
        storage = storage or self.storage
        path = self.spool_path(recording)
        if not path.exists():
            return await self._recover_stored(recording, storage)
        finished = path.with_name(path.stem + ".recovered" + path.suffix)
        try:
            packets, end_ms = await asyncio.to_thread(remux, path, finished)
        except Exception as exc:
            packets, end_ms = 0, 0
            reason = f"the file left by the interrupted recording is unreadable ({exc})"
        else:
            reason = "the interrupted recording holds no playable media"
        if packets == 0:
            for leftover in (path, finished):
                leftover.unlink(missing_ok=True)
            return RecordingResult(error=reason[:400], failed_operation=FailedOperation.COMPLETE)
        path.unlink(missing_ok=True)
        try:
            size = await storage.put(recording.media_key, finished)
        except Exception as exc:
            finished.unlink(missing_ok=True)
            return RecordingResult(
                duration_ms=end_ms,
                frames=packets,
                error=f"storing failed: {exc}"[:400],
                failed_operation=FailedOperation.UPLOAD,
            )
        return RecordingResult(duration_ms=end_ms, size=size, frames=packets)

    async def _recover_stored(self, recording: Recording, storage: MediaStorage) -> RecordingResult:
        """No spool file: either nothing was ever written, or the server stopped between
        storing the file and recording that it had."""
        size = await storage.size(recording.media_key)
        if not size:
            return RecordingResult(
                error="no media was written before the server stopped",
                failed_operation=FailedOperation.COMPLETE,
            )
        copy = self.spool_path(recording).with_suffix(".probe")
        try:
            copy.parent.mkdir(parents=True, exist_ok=True)
            with copy.open("wb") as out:
                async for chunk in storage.open(recording.media_key):
                    out.write(chunk)
            _, packets, end_ms = await asyncio.to_thread(probe, copy)
        except Exception as exc:
            return RecordingResult(
                size=size,
                error=f"the stored file is unreadable ({exc})"[:400],
                failed_operation=FailedOperation.COMPLETE,
            )
        finally:
            with contextlib.suppress(OSError):
                copy.unlink()
        return RecordingResult(duration_ms=end_ms, size=size, frames=packets)
