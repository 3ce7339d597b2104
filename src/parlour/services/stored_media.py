"""Stored media of one kind (recordings, compositions): where each file goes and where it is
(RecordingSettings / CompositionSettings: local, an S3 bucket, encrypted), its `/Media`
download links and serving them, and deleting the file for good.

`MediaShelf` does this for any record with the fields of `MediaRecord`; the recording and
composition services each keep one, and differ only in the record type, its `MediaKind` and
the `Content-Type` its media is served with.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar, cast

from parlour.domain import errors
from parlour.domain.clock import Clock
from parlour.domain.media_settings import Envelope, MediaKind
from parlour.domain.ports import MediaStorage
from parlour.domain.recordings import unix_ms
from parlour.domain.sids import AccountSid
from parlour.services.media_links import signed_link, verified_file
from parlour.services.media_storage import MediaPlan, MediaStorageResolver, StorageUnavailable

__all__ = [
    "DEFAULT_TTL",
    "ENCRYPTED_CONTENT_TYPE",
    "TTL_RANGE",
    "MediaRecord",
    "MediaShelf",
    "ServedMedia",
    "check_disposition",
]

log = logging.getLogger(__name__)

#: `Ttl` of a `/Media` link, seconds (Twilio's range and default).
TTL_RANGE = range(1, 3601)
DEFAULT_TTL = 600
#: What Twilio's bucket serves an encrypted file as.
ENCRYPTED_CONTENT_TYPE = "application/octet-stream"


class MediaRecord(Protocol):
    """What a stored-media record (`Recording`, `Composition`) has."""

    @property
    def sid(self) -> str: ...
    @property
    def account_sid(self) -> AccountSid: ...
    @property
    def file_name(self) -> str: ...
    @property
    def media_key(self) -> str: ...
    @property
    def has_media(self) -> bool: ...
    @property
    def encryption(self) -> Envelope | None: ...
    @property
    def media_credentials_sid(self) -> str | None: ...
    @property
    def media_external_location(self) -> str | None: ...
    @property
    def encryption_key_sid(self) -> str | None: ...


R = TypeVar("R", bound=MediaRecord)


@dataclass(frozen=True)
class ServedMedia(Generic[R]):
    """A record's media, ready to be served: size, type, and its bytes by range."""

    record: R
    size: int
    content_type: str
    content_disposition: str
    _storage: MediaStorage
    #: Twilio's `x-amz-meta-*` headers of an encrypted file (its envelope).
    headers: dict[str, str] = field(default_factory=dict)

    def chunks(self, start: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        return self._storage.open(self.record.media_key, start, length)


class MediaShelf(Generic[R]):
    """Where one kind of record's media is, and its links.

    Args:
        kind: which of the account's media settings apply.
        noun: the record's name in logs (`recording`, `composition`).
        storage: where media lives without a resolver (or for local media).
        resolver: the account's settings (S3, encryption); None: everything in `storage`.
        media_url_key: signs the `/Media` download URLs.
        content_type: the `Content-Type` of a record's (unencrypted) media.
    """

    def __init__(
        self,
        kind: MediaKind,
        noun: str,
        *,
        storage: MediaStorage,
        resolver: MediaStorageResolver | None,
        media_url_key: bytes,
        clock: Clock,
        content_type: Callable[[R], str],
    ) -> None:
        self._kind = kind
        self._noun = noun
        self._storage = storage
        self._resolver = resolver
        self._url_key = media_url_key
        self._clock = clock
        self._content_type = content_type

    async def planned(self, record: R) -> R:
        """The record with where its media will go (the account's settings now)."""
        if self._resolver is None:
            return record
        plan = await self._resolver.plan(record.account_sid, self._kind, record.media_key)
        return cast(
            R,
            dataclasses.replace(
                cast(Any, record),
                media_credentials_sid=plan.credentials_sid,
                media_external_location=plan.external_location,
                encryption_key_sid=plan.encryption_key_sid,
            ),
        )

    async def writer_storage(self, record: R) -> MediaStorage | None:
        """The storage the finished file is put in (None: the writer's own default).

        Raises:
            StorageUnavailable: the planned credential or public key is gone.
        """
        if self._resolver is None:
            return None
        return await self._resolver.writer(
            record.account_sid,
            MediaPlan(
                record.media_credentials_sid,
                record.media_external_location,
                record.encryption_key_sid,
            ),
        )

    async def storage_of(self, record: R) -> MediaStorage:
        """Where a stored record's media is.

        Raises:
            StorageUnavailable: its bucket's credential is gone.
        """
        if self._resolver is None:
            return self._storage
        return await self._resolver.storage_at(
            record.account_sid, record.media_credentials_sid, record.media_external_location
        )

    async def reachable(self, record: R, path: str) -> MediaStorage:
        """The record's storage; 20404 for `path` if its bucket can no longer be reached."""
        try:
            return await self.storage_of(record)
        except StorageUnavailable as exc:
            log.warning("%s media unreachable sid=%s reason=%s", self._noun, record.sid, exc)
            raise errors.NotFoundError.for_path(path) from None

    async def delete(self, record: R) -> bool:
        """Remove a record's media wherever it is (local, or its bucket); False if there
        was none or its bucket can no longer be reached (logged)."""
        try:
            storage = await self.storage_of(record)
        except StorageUnavailable as exc:
            log.warning("%s media not deleted sid=%s reason=%s", self._noun, record.sid, exc)
            return False
        return await storage.delete(record.media_key)

    def served_type(self, record: R) -> str:
        """The Content-Type its download is served with (an encrypted file is opaque)."""
        if record.encryption is not None:
            return ENCRYPTED_CONTENT_TYPE
        return self._content_type(record)

    async def link(
        self,
        fetch: Callable[[], Awaitable[R]],
        path: str,
        *,
        ttl: int | None,
        disposition: str | None,
    ) -> str:
        """The signed path (with query) of the media of the record `fetch` finds, valid
        `ttl` seconds; for media in an S3 bucket, the bucket's presigned URL (absolute).

        Raises:
            InvalidParameterError: 20001 `Ttl` outside 1–3600, bad `ContentDisposition`.
            NotFoundError: 20404 no such record (from `fetch`), or no media at `path`.
        """
        ttl = DEFAULT_TTL if ttl is None else ttl
        if ttl not in TTL_RANGE:
            raise errors.InvalidParameterError("Ttl must be between 1 and 3600")
        record = await fetch()
        if not record.has_media:
            raise errors.NotFoundError.for_path(path)
        if disposition is None:
            disposition = f'attachment; filename="{record.file_name}"'
        check_disposition(disposition)
        storage = await self.reachable(record, path)
        presigned = MediaStorageResolver.presigned(
            storage, record.media_key, ttl, disposition, self.served_type(record)
        )
        if presigned is not None:
            return presigned
        return signed_link(
            self._url_key,
            record.account_sid,
            record.file_name,
            now=unix_ms(self._clock.now()) // 1000,
            ttl=ttl,
            disposition=disposition,
        )

    async def serve(
        self,
        account_sid: str,
        file_name: str,
        lookup: Callable[[AccountSid, str], Awaitable[R | None]],
        *,
        expires: str | None,
        disposition: str | None,
        signature: str | None,
    ) -> ServedMedia[R]:
        """The media behind a signed URL from `link` (no other credentials); `lookup`
        finds a record by account and SID.

        Raises:
            ForbiddenError: 20403 missing, altered or expired signature.
            NotFoundError: 20404 the media is gone.
        """
        path, sid, disposition = verified_file(
            self._url_key,
            account_sid,
            file_name,
            now=unix_ms(self._clock.now()) // 1000,
            expires=expires,
            disposition=disposition,
            signature=signature,
        )
        record = await lookup(AccountSid(account_sid), sid)
        if record is None or record.file_name != file_name or not record.has_media:
            raise errors.NotFoundError.for_path(path)
        storage = await self.reachable(record, path)
        size = await storage.size(record.media_key)
        if size is None:
            raise errors.NotFoundError.for_path(path)
        headers = record.encryption.headers() if record.encryption is not None else {}
        return ServedMedia(record, size, self.served_type(record), disposition, storage, headers)


def check_disposition(value: str) -> None:
    """`attachment` or `inline` (RFC 6266), optionally with parameters; printable ASCII
    only (it becomes a response header).

    Raises:
        InvalidParameterError: 20001 otherwise.
    """
    kind = value.split(";", 1)[0].strip().lower()
    if (
        kind not in ("attachment", "inline")
        or len(value) > 512
        or any(not 32 <= ord(ch) < 127 for ch in value)
    ):
        raise errors.InvalidParameterError(
            "ContentDisposition must be 'attachment' or 'inline' (RFC 6266)"
        )
