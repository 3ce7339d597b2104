"""`S3Storage`: the `MediaStorage` port on an S3 bucket (AWS or an S3-compatible store).

Keys are mapped into the bucket under the location's prefix by file name
(`recordings/RT….mka` → `<prefix>/RT….mka`, `compositions/CJ….mp4` → `<prefix>/CJ….mp4`),
as Twilio writes media into the path of `AwsS3Url`. boto3 is synchronous: every call runs
on a worker thread. Reads by byte range are ranged GETs; `presigned_url` makes the URL
`/Media` redirects to (S3 itself serves it, with the object's `x-amz-meta-*` metadata).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from parlour.domain.media_settings import S3Location

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

__all__ = ["S3Storage", "s3_client"]

CHUNK_SIZE = 256 * 1024
_MISSING = {"404", "NoSuchKey", "NotFound"}
MULTIPART_THRESHOLD = 64 * 1024 * 1024


def s3_client(location: S3Location, access_key_id: str, secret_access_key: str) -> S3Client:
    """A boto3 client for the location's endpoint (path-style for S3-compatible stores).

    boto3 is imported here, not with the module: it takes a quarter of a second, which the
    servers and commands that never meet a bucket should not pay."""
    import boto3
    from botocore.config import Config

    session = boto3.session.Session()
    return session.client(
        "s3",
        endpoint_url=location.endpoint_url,
        region_name=location.region,
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret_access_key,
        config=Config(
            signature_version="s3v4",
            s3={"addressing_style": "path" if location.endpoint_url else "virtual"},
            retries={"max_attempts": 3, "mode": "standard"},
            connect_timeout=10,
            read_timeout=60,
        ),
    )


class S3Storage:
    """Media objects in one bucket under one prefix."""

    def __init__(self, client: S3Client, location: S3Location) -> None:
        self.client = client
        self.location = location

    def object_key(self, key: str) -> str:
        return self.location.key(key)

    def object_url(self, key: str) -> str:
        """`media_external_location` of what is stored under `key`."""
        return self.location.object_url(self.object_key(key))

    async def put(
        self, key: str, source: Path, *, metadata: Mapping[str, str] | None = None
    ) -> int:
        return await asyncio.to_thread(self._upload, key, source, metadata)

    def _upload(self, key: str, source: Path, metadata: Mapping[str, str] | None) -> int:
        from boto3.s3.transfer import TransferConfig

        transfer = TransferConfig(multipart_threshold=MULTIPART_THRESHOLD, use_threads=False)
        size = source.stat().st_size
        extra: dict[str, Any] = {"ContentType": "application/octet-stream"}
        if metadata:
            extra["Metadata"] = dict(metadata)
        self.client.upload_file(
            str(source),
            self.location.bucket,
            self.object_key(key),
            ExtraArgs=extra,
            Config=transfer,
        )
        source.unlink()
        return size

    async def size(self, key: str) -> int | None:
        try:
            head = await asyncio.to_thread(
                self.client.head_object, Bucket=self.location.bucket, Key=self.object_key(key)
            )
        except Exception as exc:
            if _missing(exc):
                return None
            raise
        return int(head["ContentLength"])

    async def open(
        self, key: str, start: int = 0, length: int | None = None
    ) -> AsyncIterator[bytes]:
        if length == 0:
            return
        end = "" if length is None else str(start + length - 1)
        args: dict[str, Any] = {"Bucket": self.location.bucket, "Key": self.object_key(key)}
        if start or length is not None:
            args["Range"] = f"bytes={start}-{end}"
        try:
            response = await asyncio.to_thread(lambda: self.client.get_object(**args))
        except Exception as exc:
            if _missing(exc):
                raise FileNotFoundError(key) from None
            raise
        body = response["Body"]
        try:
            while True:
                chunk = await asyncio.to_thread(body.read, CHUNK_SIZE)
                if not chunk:
                    return
                yield chunk
        finally:
            with contextlib.suppress(Exception):
                body.close()

    async def delete(self, key: str) -> bool:
        if await self.size(key) is None:
            return False
        await asyncio.to_thread(
            self.client.delete_object, Bucket=self.location.bucket, Key=self.object_key(key)
        )
        return True

    def presigned_url(self, key: str, ttl: int, disposition: str, content_type: str) -> str:
        """A GET URL valid `ttl` seconds that needs no other credentials."""
        return self.client.generate_presigned_url(
            "get_object",
            Params={
                "Bucket": self.location.bucket,
                "Key": self.object_key(key),
                "ResponseContentDisposition": disposition,
                "ResponseContentType": content_type,
            },
            ExpiresIn=ttl,
        )

    async def probe(self, name: str, body: bytes) -> None:
        """Write a small object (Twilio writes a `.txt` test file when S3 is enabled)."""
        await asyncio.to_thread(
            self.client.put_object,
            Bucket=self.location.bucket,
            Key=self.object_key(name),
            Body=body,
            ContentType="text/plain",
        )


def _missing(exc: Exception) -> bool:
    """Whether a botocore `ClientError` says there is no such object."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return False
    return str(response.get("Error", {}).get("Code")) in _MISSING
