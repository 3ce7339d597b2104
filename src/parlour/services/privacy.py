"""Data-subject requests: export everything held for an account or one identity, and
erase it (rows, media, spool files), then make the database drop the deleted bytes.

Both work while a server runs on the same database: erasure happens in one store
transaction that refuses (`ErasureBlocked`) while the server still uses the data — a room
of the account in progress, a participant of the identity connected, a recording being
written, a status callback pending — so nothing the server holds in memory can write
erased records back. See docs/privacy.md.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import hashlib
import json
import logging
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from parlour import __version__
from parlour.domain import errors
from parlour.domain.clock import Clock
from parlour.domain.compositions import Composition
from parlour.domain.ports import MediaStorage, PersonalData, Store
from parlour.domain.recordings import Recording
from parlour.domain.sids import AccountSid
from parlour.services.media_storage import MediaStorageResolver, StorageUnavailable

__all__ = ["ErasureSummary", "ExportSummary", "PrivacyService", "spool_files"]

log = logging.getLogger(__name__)

EXPORT_FORMAT = "parlour-export/1"
_RECORDS = (
    "rooms",
    "participants",
    "published_tracks",
    "subscribed_tracks",
    "recordings",
    "callback_deliveries",
    "transcriptions",
    "compositions",
)


def spool_files(spool_dir: Path, recording: Recording) -> list[Path]:
    """Every scratch file a recording can leave in the spool directory: the file being
    written, a recovered remux, a probe copy (`recording/recorder.py`) and the encrypted
    copies of the first two (`recording/encryption.py`)."""
    name = recording.file_name
    stem, _, suffix = name.partition(".")
    return [
        spool_dir / name,
        spool_dir / f"{stem}.recovered.{suffix}",
        spool_dir / f"{stem}.probe",
        spool_dir / f"{name}.enc",
        spool_dir / f"{stem}.recovered.{suffix}.enc",
    ]


def _plain(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if isinstance(value, enum.Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    return value


def _counts(data: PersonalData) -> dict[str, int]:
    return {name: len(getattr(data, name)) for name in _RECORDS}


@dataclass(frozen=True)
class ExportSummary:
    path: Path
    records: dict[str, int]
    media_files: list[str]
    missing_media: list[str]


@dataclass(frozen=True)
class ErasureSummary:
    records: dict[str, int]
    media_deleted: list[str]
    spool_deleted: list[str]


class PrivacyService:
    """Export and erasure for an account, or for one identity across its rooms.

    Args:
        storage: where finished recordings live (files, or an object store).
        spool_dir: where recordings are written while in progress (local scratch files).
        resolver: finds media stored elsewhere (an account's S3 bucket); without one,
            everything is in `storage`.
    """

    def __init__(
        self,
        store: Store,
        clock: Clock,
        storage: MediaStorage,
        spool_dir: Path | None,
        *,
        resolver: MediaStorageResolver | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._storage = storage
        self._spool = spool_dir
        self._resolver = resolver

    async def _storage_of(self, item: Recording | Composition) -> MediaStorage | None:
        """Where a recording's or composition's media is; None if its bucket can no
        longer be reached."""
        if self._resolver is None:
            return self._storage
        try:
            if isinstance(item, Recording):
                return await self._resolver.of_recording(item)
            return await self._resolver.of_composition(item)
        except StorageUnavailable as exc:
            log.warning("media unreachable sid=%s reason=%s", item.sid, exc)
            return None

    async def _check_account(self, account_sid: str) -> AccountSid:
        if await self._store.get_account(account_sid) is None:
            raise errors.NotFoundError(f"no account {account_sid}")
        return AccountSid(account_sid)

    async def export(self, account_sid: str, identity: str | None, out: Path) -> ExportSummary:
        """Write one zip: `manifest.json`, `records/<kind>.json` and `media/RT….mk?`.

        Written to a temporary file next to `out` (mode 0600) and renamed into place, so a
        failed export leaves no partial archive. Raises NotFoundError for an unknown
        account.
        """
        account = await self._check_account(account_sid)
        data = await self._store.personal_data(account, identity)
        partial = out.with_name(out.name + ".partial")
        media: list[str] = []
        missing: list[str] = []
        files: dict[str, str] = {}
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "wb") as raw, zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as z:
                for name in _RECORDS:
                    arcname = f"records/{name}.json"
                    body = json.dumps(_plain(getattr(data, name)), indent=2, ensure_ascii=False)
                    z.writestr(arcname, body)
                    files[arcname] = hashlib.sha256(body.encode()).hexdigest()
                stored: list[Recording | Composition] = [*data.recordings, *data.compositions]
                for item in stored:
                    storage = await self._storage_of(item)
                    if storage is None or await storage.size(item.media_key) is None:
                        if item.has_media:
                            missing.append(item.sid)
                        continue
                    arcname = f"media/{item.file_name}"
                    digest = hashlib.sha256()
                    with z.open(arcname, "w", force_zip64=True) as dst:
                        async for chunk in storage.open(item.media_key):
                            digest.update(chunk)
                            dst.write(chunk)
                    files[arcname] = digest.hexdigest()
                    media.append(arcname)
                manifest = {
                    "format": EXPORT_FORMAT,
                    "generator": f"Parlour {__version__}",
                    "generated_at": _plain(self._clock.now()),
                    "account_sid": account,
                    "identity": identity,
                    "records": _counts(data),
                    "media": media,
                    "missing_media": missing,
                    "sha256": files,
                }
                z.writestr("manifest.json", json.dumps(manifest, indent=2, ensure_ascii=False))
            os.replace(partial, out)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        log.info(
            "export account=%s identity=%s records=%d media=%d",
            account,
            "yes" if identity is not None else "-",
            sum(_counts(data).values()),
            len(media),
        )
        return ExportSummary(out, _counts(data), media, missing)

    async def erase(self, account_sid: str, identity: str | None) -> ErasureSummary:
        """Delete every record `export` would write, then the media and spool files of
        the erased recordings, then let the database drop the bytes (`reclaim_space`).

        Raises:
            NotFoundError: unknown account.
            ErasureBlocked: the server still uses the data; nothing was erased.
        """
        account = await self._check_account(account_sid)
        data = await self._store.erase_personal_data(account, identity)
        media: list[str] = []
        spool: list[str] = []
        for recording in data.recordings:
            storage = await self._storage_of(recording)
            if storage is not None and await storage.delete(recording.media_key):
                media.append(recording.sid)
            if self._spool is not None:
                for path in spool_files(self._spool, recording):
                    try:
                        path.unlink()
                    except FileNotFoundError:
                        continue
                    spool.append(path.name)
        for composition in data.compositions:
            storage = await self._storage_of(composition)
            if storage is not None and await storage.delete(composition.media_key):
                media.append(composition.sid)
        await self._store.reclaim_space()
        for kind in _RECORDS:
            for record in getattr(data, kind):
                sid = getattr(record, "sid", None) or f"#{getattr(record, 'id', '?')}"
                log.info("erased %s %s", kind, sid)
        return ErasureSummary(_counts(data), media, spool)
