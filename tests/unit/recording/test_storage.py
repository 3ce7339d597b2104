"""`LocalStorage`: keys, atomic puts, ranged reads, real deletion."""

from __future__ import annotations

from pathlib import Path

import pytest

from parlour.recording.storage import CHUNK_SIZE, LocalStorage


async def read(storage: LocalStorage, key: str, start: int = 0, length: int | None = None) -> bytes:
    return b"".join([chunk async for chunk in storage.open(key, start, length)])


async def test_put_moves_the_file_under_its_key(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "media")
    source = tmp_path / "spool.mka"
    data = bytes(range(256)) * (CHUNK_SIZE // 100)
    source.write_bytes(data)
    assert await storage.put("recordings/RT1.mka", source) == len(data)
    assert not source.exists()
    assert (tmp_path / "media" / "recordings" / "RT1.mka").read_bytes() == data
    assert await storage.size("recordings/RT1.mka") == len(data)
    assert await read(storage, "recordings/RT1.mka") == data
    assert await read(storage, "recordings/RT1.mka", 10, 20) == data[10:30]
    assert (
        await read(storage, "recordings/RT1.mka", CHUNK_SIZE - 5, CHUNK_SIZE + 10)
        == (data[CHUNK_SIZE - 5 : 2 * CHUNK_SIZE + 5])
    )
    assert await read(storage, "recordings/RT1.mka", len(data) - 3) == data[-3:]


async def test_delete_really_removes(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    source = tmp_path / "x"
    source.write_bytes(b"abc")
    await storage.put("recordings/RT2.mkv", source)
    assert await storage.delete("recordings/RT2.mkv") is True
    assert not (tmp_path / "recordings" / "RT2.mkv").exists()
    assert await storage.size("recordings/RT2.mkv") is None
    assert await storage.delete("recordings/RT2.mkv") is False
    with pytest.raises(FileNotFoundError):
        await read(storage, "recordings/RT2.mkv")


@pytest.mark.parametrize("key", ["../etc/passwd", "/abs.mka", "a/../b.mka", "noext", "a//b.mka"])
async def test_keys_cannot_escape_the_root(tmp_path: Path, key: str) -> None:
    with pytest.raises(ValueError):
        await LocalStorage(tmp_path).size(key)


async def test_put_across_file_systems_copies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    real_replace = os.replace
    calls: list[str] = []

    def replace(src: object, dst: object) -> None:
        calls.append(str(src))
        if len(calls) == 1:
            raise OSError(18, "Invalid cross-device link")
        real_replace(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "replace", replace)
    source = tmp_path / "spool.mkv"
    source.write_bytes(b"x" * 1000)
    storage = LocalStorage(tmp_path / "media")
    assert await storage.put("recordings/RT3.mkv", source) == 1000
    assert not source.exists()
    assert (tmp_path / "media" / "recordings" / "RT3.mkv").read_bytes() == b"x" * 1000
    assert not list((tmp_path / "media" / "recordings").glob("*.part"))
