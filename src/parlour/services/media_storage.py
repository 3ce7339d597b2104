"""Which `MediaStorage` holds an account's media: the per-account resolver.

New media follows the account's settings at the time it starts (`plan`): local storage
(`DATA_DIR/media/`) or the S3 bucket of `AwsS3Url` with the credential of
`AwsCredentialsSid`, encrypted for `EncryptionKeySid` if `EncryptionEnabled`. The plan is
written on the record (a recording's `media_credentials_sid`, `media_external_location`,
`encryption_key_sid`) so that the media is found, served, deleted and erased where it was
put even after the settings change.

Compositions use it the same way (`services.compositions`): `plan` with
`MediaKind.COMPOSITIONS` when a composition is created (kept on its row), `writer` for the
composer's output (the envelope kept once stored), `of_composition` and `presigned` to serve,
delete, export and erase it. `store` does plan, writer and put in one call.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from parlour.domain import errors
from parlour.domain.compositions import Composition
from parlour.domain.media_settings import (
    AwsCredential,
    Envelope,
    MediaKind,
    MediaSettings,
    PublicKeyCredential,
    S3Location,
)
from parlour.domain.ports import MediaStorage, Store
from parlour.domain.recordings import Recording
from parlour.domain.sids import AccountSid
from parlour.recording.encryption import EncryptingStorage
from parlour.recording.s3 import S3Storage, s3_client
from parlour.services.media_settings import CredentialService

__all__ = ["MediaPlan", "MediaStorageResolver", "StorageUnavailable", "StoredMedia"]

log = logging.getLogger(__name__)

PROBE_NAME = "parlour-write-test.txt"


class StorageUnavailable(Exception):
    """The credential or key the media was planned with is gone or unusable."""


@dataclass(frozen=True)
class MediaPlan:
    """Where one new media file goes, decided when it starts."""

    credentials_sid: str | None = None
    external_location: str | None = None
    encryption_key_sid: str | None = None


@dataclass(frozen=True)
class StoredMedia:
    """Where `store` put a file, how big it is there, and its envelope if encrypted."""

    plan: MediaPlan
    size: int
    envelope: Envelope | None = None


class MediaStorageResolver:
    """Args:
    local: the server's own storage (`LocalStorage`).
    client_factory: makes an S3 client (tests may point it elsewhere).
    """

    def __init__(
        self,
        store: Store,
        credentials: CredentialService,
        local: MediaStorage,
        *,
        client_factory: Callable[[S3Location, str, str], object] = s3_client,
    ) -> None:
        self._store = store
        self._credentials = credentials
        self.local = local
        self._client_factory = client_factory
        self._clients: dict[tuple[str, S3Location], S3Storage] = {}
        self._lock = asyncio.Lock()

    async def settings(self, account_sid: AccountSid, kind: MediaKind) -> MediaSettings:
        found = await self._store.get_media_settings(account_sid, kind)
        return found if found is not None else MediaSettings(account_sid, kind)

    async def plan(self, account_sid: AccountSid, kind: MediaKind, key: str) -> MediaPlan:
        """Where media stored under `key` goes, by the account's settings now."""
        settings = await self.settings(account_sid, kind)
        location = settings.s3_location
        encryption = settings.encryption_key_sid if settings.encryption_enabled else None
        if location is None:
            return MediaPlan(encryption_key_sid=encryption)
        return MediaPlan(
            credentials_sid=settings.aws_credentials_sid,
            external_location=location.object_url(location.key(key)),
            encryption_key_sid=encryption,
        )

    async def storage_at(
        self, account_sid: AccountSid, credentials_sid: str | None, external_location: str | None
    ) -> MediaStorage:
        """The storage holding media put under a plan's location.

        Raises:
            StorageUnavailable: the bucket's credential was deleted or cannot be read.
        """
        if credentials_sid is None or external_location is None:
            return self.local
        location = S3Location.parse(external_location)
        base, _, _ = location.prefix.rpartition("/")
        location = S3Location(location.bucket, base, location.endpoint_url, location.region)
        return await self._s3(account_sid, credentials_sid, location)

    async def writer(self, account_sid: AccountSid, plan: MediaPlan) -> MediaStorage:
        """The storage to `put` new media with: the plan's, encrypting if it says so
        (then an `EncryptingStorage`, whose `envelope` is set once stored)."""
        storage = await self.storage_at(account_sid, plan.credentials_sid, plan.external_location)
        if plan.encryption_key_sid is None:
            return storage
        key = await self._store.get_credential(account_sid, plan.encryption_key_sid)
        if not isinstance(key, PublicKeyCredential):
            raise StorageUnavailable(f"public key {plan.encryption_key_sid} no longer exists")
        return EncryptingStorage(storage, key.public_key, key.sid)

    async def store(
        self, account_sid: AccountSid, kind: MediaKind, key: str, source: Path
    ) -> StoredMedia:
        """Put a finished file (then gone from `source`) where the account's settings say.

        Raises:
            StorageUnavailable: the settings' credential or key is gone.
            Exception: the storage's own errors (an upload that failed).
        """
        plan = await self.plan(account_sid, kind, key)
        writer = await self.writer(account_sid, plan)
        size = await writer.put(key, source)
        envelope = writer.envelope if isinstance(writer, EncryptingStorage) else None
        return StoredMedia(plan, size, envelope)

    @staticmethod
    def presigned(
        storage: MediaStorage, key: str, ttl: int, disposition: str, content_type: str
    ) -> str | None:
        """The bucket's presigned GET URL for media in a bucket; None for local media
        (served by Parlour's own signed URLs)."""
        if isinstance(storage, S3Storage):
            return storage.presigned_url(key, ttl, disposition, content_type)
        return None

    async def of_recording(self, recording: Recording) -> MediaStorage:
        """Where a recording's media is."""
        return await self.storage_at(
            recording.account_sid,
            recording.media_credentials_sid,
            recording.media_external_location,
        )

    async def of_composition(self, composition: Composition) -> MediaStorage:
        """Where a composition's media is."""
        return await self.storage_at(
            composition.account_sid,
            composition.media_credentials_sid,
            composition.media_external_location,
        )

    async def probe(self, settings: MediaSettings) -> None:
        """Write a test object with new S3 settings (Twilio does the same).

        Raises:
            InvalidParameterError: 20001 the bucket cannot be written.
        """
        location = settings.s3_location
        if location is None or settings.aws_credentials_sid is None:
            return
        try:
            storage = await self._s3(settings.account_sid, settings.aws_credentials_sid, location)
            await storage.probe(
                PROBE_NAME, b"Parlour checks that it can write media to this bucket.\n"
            )
        except Exception as exc:
            log.warning(
                "s3 bucket not writable account=%s bucket=%s error=%s",
                settings.account_sid,
                location.bucket,
                type(exc).__name__,
            )
            raise errors.InvalidParameterError(
                f"Parlour could not write to the bucket {location.bucket}: check AwsS3Url "
                "and the credential's permissions"
            ) from None

    async def _s3(
        self, account_sid: AccountSid, credentials_sid: str, location: S3Location
    ) -> S3Storage:
        async with self._lock:
            cached = self._clients.get((credentials_sid, location))
            if cached is not None:
                return cached
            credential = await self._store.get_credential(account_sid, credentials_sid)
            if not isinstance(credential, AwsCredential):
                raise StorageUnavailable(f"AWS credential {credentials_sid} no longer exists")
            try:
                secret = self._credentials.secret_of(credential)
            except ValueError as exc:
                raise StorageUnavailable(str(exc)) from None
            client = await asyncio.to_thread(
                self._client_factory, location, credential.access_key_id, secret
            )
            storage = S3Storage(client, location)  # type: ignore[arg-type]
            self._clients[(credentials_sid, location)] = storage
            return storage

    def forget(self, credentials_sid: str) -> None:
        """Drop cached clients of a deleted credential."""
        for cached in [k for k in self._clients if k[0] == credentials_sid]:
            del self._clients[cached]
