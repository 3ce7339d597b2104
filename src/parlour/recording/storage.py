"""Media storage: finished files by key. `LocalStorage` keeps them under `DATA_DIR/media/`.

The `MediaStorage` port (`parlour.domain.ports`) is path-free: callers name objects by key
(`recordings/RT….mka`) and read them back by byte range, so an S3-compatible store can
replace `LocalStorage` (`put` would upload, `open` would issue ranged GETs, and
`media_external_location` would carry the object URL).
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

from parlour.domain.ports import MediaStorage

__all__ = ["CHUNK_SIZE", "LocalStorage", "MediaStorage"]

CHUNK_SIZE = 256 * 1024
_KEY = re.compile(r"^[A-Za-z0-9_-]+(?:/[A-Za-z0-9_-]+)*\.[A-Za-z0-9]+$")


class LocalStorage:
    """Files under `root`, one per key; writes are atomic (rename into place)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        if not _KEY.match(key):
            raise ValueError(f"bad media key {key!r}")
        return self.root / key

    def local_path(self, key: str) -> Path:
        """The file of `key` (readers in other processes, e.g. the composer, open it)."""
        return self._path(key)

    async def put(
        self, key: str, source: Path, *, metadata: Mapping[str, str] | None = None
    ) -> int:
        """Move `source` into place (`metadata` is not kept: callers that need it, such as
        an encrypted recording's envelope, keep it in the database)."""
        return await asyncio.to_thread(self._put, self._path(key), source)

    @staticmethod
    def _put(target: Path, source: Path) -> int:
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(source, target)  # same file system: a rename
        except OSError:
            partial = target.with_name(target.name + ".part")
            with source.open("rb") as src, partial.open("wb") as dst:
                shutil.copyfileobj(src, dst, CHUNK_SIZE)
                dst.flush()
                os.fsync(dst.fileno())
            os.replace(partial, target)
            source.unlink()
        return target.stat().st_size

    async def size(self, key: str) -> int | None:
        path = self._path(key)
        try:
            return (await asyncio.to_thread(path.stat)).st_size
        except FileNotFoundError:
            return None

    async def open(
        self, key: str, start: int = 0, length: int | None = None
    ) -> AsyncIterator[bytes]:
        path = self._path(key)
        handle = await asyncio.to_thread(path.open, "rb")
        try:
            await asyncio.to_thread(handle.seek, start)
            remaining = length
            while remaining is None or remaining > 0:
                want = CHUNK_SIZE if remaining is None else min(CHUNK_SIZE, remaining)
                chunk = await asyncio.to_thread(handle.read, want)
                if not chunk:
                    return
                if remaining is not None:
                    remaining -= len(chunk)
                yield chunk
        finally:
            handle.close()

    async def delete(self, key: str) -> bool:
        path = self._path(key)
        try:
            await asyncio.to_thread(path.unlink)
        except FileNotFoundError:
            return False
        return True
