"""`S3Storage` against moto's S3 server on 127.0.0.1: the `MediaStorage` port's contract
(put moves the file in, ranged reads, size, delete) and presigned URLs."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from parlour.domain.media_settings import S3Location
from parlour.recording.s3 import S3Storage, s3_client
from parlour.services.media_storage import MediaStorageResolver
from tests.s3_support import ACCESS_KEY, SECRET_KEY, S3Server, s3

pytestmark = pytest.mark.integration

__all__ = ["s3"]  # the fixture


def storage(s3: S3Server, prefix: str = "media/rec") -> tuple[S3Storage, str]:
    bucket = s3.new_bucket()
    location = S3Location.parse(f"{s3.endpoint}/{bucket}/{prefix}")
    return S3Storage(s3_client(location, ACCESS_KEY, SECRET_KEY), location), bucket


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


async def read(store: S3Storage, key: str, start: int = 0, length: int | None = None) -> bytes:
    return b"".join([chunk async for chunk in store.open(key, start, length)])


async def test_the_media_storage_contract(s3: S3Server, tmp_path: Path) -> None:
    store, bucket = storage(s3)
    data = bytes(range(256)) * 4000  # 1 MB: several chunks
    source = write(tmp_path / "RT1.mka", data)
    assert await store.put("recordings/RT1.mka", source, metadata={"x-amz-iv": "aXY="}) == len(data)
    assert not source.exists()
    assert s3.keys(bucket) == ["media/rec/RT1.mka"]
    head = s3.client().head_object(Bucket=bucket, Key="media/rec/RT1.mka")
    assert head["Metadata"] == {"x-amz-iv": "aXY="}
    assert await store.size("recordings/RT1.mka") == len(data)
    assert await read(store, "recordings/RT1.mka") == data
    assert await read(store, "recordings/RT1.mka", 100, 200) == data[100:300]
    assert await read(store, "recordings/RT1.mka", len(data) - 10) == data[-10:]
    assert await read(store, "recordings/RT1.mka", 5, 0) == b""
    assert store.object_url("recordings/RT1.mka") == f"{s3.endpoint}/{bucket}/media/rec/RT1.mka"
    url = store.presigned_url(
        "recordings/RT1.mka", 60, 'inline; filename="x.mka"', "audio/x-matroska"
    )
    async with httpx.AsyncClient() as http:
        reply = await http.get(url)
    assert reply.status_code == 200 and reply.content == data
    assert reply.headers["content-type"] == "audio/x-matroska"
    assert reply.headers["content-disposition"] == 'inline; filename="x.mka"'
    presigned = MediaStorageResolver.presigned(store, "recordings/RT1.mka", 60, "inline", "a/b")
    assert presigned is not None and presigned.startswith(f"{s3.endpoint}/{bucket}/media/rec/")
    assert await store.delete("recordings/RT1.mka")
    assert not await store.delete("recordings/RT1.mka")
    assert await store.size("recordings/RT1.mka") is None
    with pytest.raises(FileNotFoundError):
        await read(store, "recordings/RT1.mka")


async def test_the_bucket_root(s3: S3Server, tmp_path: Path) -> None:
    store, bucket = storage(s3, prefix="")
    await store.put("compositions/CJ1.mp4", write(tmp_path / "CJ1.mp4", b"mp4"))
    assert s3.keys(bucket) == ["CJ1.mp4"]
    assert await read(store, "compositions/CJ1.mp4") == b"mp4"


async def test_errors_other_than_missing_are_raised(s3: S3Server) -> None:
    location = S3Location.parse(f"{s3.endpoint}/no-such-bucket-here/x")
    store = S3Storage(s3_client(location, ACCESS_KEY, SECRET_KEY), location)
    with pytest.raises(Exception) as info:
        await store.probe("t.txt", b"x")
    assert "NoSuchBucket" in str(info.value)
