"""`PoolComposer` with a storage that is not local files (as an object store would be): the
recordings are copied to scratch for the worker process, the output is handed to `put`, the
scratch is emptied, and progress comes back from the worker."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bench.compose import make_audio, make_video
from parlour.domain.compositions import CompositionFormat
from parlour.domain.layouts import AudioSelection, Source, parse_layout, plan_composition
from parlour.domain.ports import CompositionJob
from parlour.recording.composer import PoolComposer
from tests.unit.services.fakes import FakeStorage


class ObjectStorage(FakeStorage):
    """Bytes by key, in memory: no `local_path`; `put` stores (and removes) the file."""

    async def put(self, key: str, source: Path) -> int:
        self.objects[key] = await asyncio.to_thread(source.read_bytes)
        await asyncio.to_thread(source.unlink)
        return len(self.objects[key])


async def test_pool_composer_on_an_object_storage(tmp_path: Path) -> None:
    storage = ObjectStorage()
    sources = []
    for kind, maker, ext in (("video", make_video, "mkv"), ("audio", make_audio, "mka")):
        path = tmp_path / f"in.{ext}"
        maker(path, 2.0, 0)
        sid = f"RT{kind[0]}".ljust(34, "0")
        storage.objects[f"recordings/{sid}.{ext}"] = path.read_bytes()
        sources.append(Source(sid, "MT" + "0" * 32, "PA" + "0" * 32, kind, kind, 0, 2000))
    plan = plan_composition(
        sources,
        layout=parse_layout({"g": {"video_sources": ["*"]}}, (320, 240)),
        audio=AudioSelection(("*",)),
        resolution=(320, 240),
        trim=True,
    )
    job = CompositionJob(
        composition_sid="CJ" + "1" * 32,
        plan=plan,
        media_keys={
            sources[0].recording_sid: f"recordings/{sources[0].recording_sid}.mkv",
            sources[1].recording_sid: f"recordings/{sources[1].recording_sid}.mka",
        },
        format=CompositionFormat.WEBM,
        output_key="compositions/CJ" + "1" * 32 + ".webm",
    )
    scratch = tmp_path / "compose"
    composer = PoolComposer(storage, scratch)
    reports: list[int] = []
    try:
        out = await composer.compose(job, lambda percent, _left: reports.append(percent))
    finally:
        await composer.close()
    assert out.duration_ms == 2000 and out.size == len(storage.objects[job.output_key])
    assert storage.objects[job.output_key][:4] == b"\x1a\x45\xdf\xa3"  # EBML: WebM
    assert list(scratch.iterdir()) == []
    assert reports == sorted(reports)
    await composer.close()  # twice is fine
