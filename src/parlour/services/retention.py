"""Retention: each account's policy (`RetentionPolicy`), and the sweeper that applies it.

What is due is computed from what the database already holds (a room's `end_time`, a
recording's `date_created`, a callback's `date_updated`), so the sweeper keeps no state of
its own: a restarted server, or another node, carries on where the last sweep stopped.
Every removal is logged by SID (or callback id) only, never with the data removed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from parlour.domain import errors
from parlour.domain.clock import Clock
from parlour.domain.compositions import Composition
from parlour.domain.ports import MediaStorage, RetentionPolicy, Store
from parlour.domain.recordings import Recording
from parlour.domain.sids import AccountSid
from parlour.services.media_storage import MediaStorageResolver, StorageUnavailable
from parlour.services.privacy import spool_files

__all__ = ["MAX_DAYS", "Retention", "RetentionService", "SweepResult", "check_days"]

log = logging.getLogger(__name__)

#: The longest period one can set (about 100 years); None keeps data until deleted.
MAX_DAYS = 36500
_DAY = dt.timedelta(days=1)


def check_days(name: str, days: int | None) -> int | None:
    """A number of days from 1 to `MAX_DAYS`, or None (never).

    Raises:
        InvalidParameterError: 20001 otherwise.
    """
    if days is not None and not 1 <= days <= MAX_DAYS:
        raise errors.InvalidParameterError(f"{name} must be from 1 to {MAX_DAYS} days, or never")
    return days


@dataclass(frozen=True)
class Retention:
    """An account's policy in force: its own, or the server's defaults."""

    account_sid: AccountSid
    policy: RetentionPolicy
    is_default: bool
    date_created: dt.datetime | None = None
    date_updated: dt.datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "identity_days": self.policy.identity_days,
            "recording_days": self.policy.recording_days,
            "callback_days": self.policy.callback_days,
            "default": self.is_default,
        }


@dataclass
class SweepResult:
    anonymized: list[str] = field(default_factory=list)
    recordings_deleted: list[str] = field(default_factory=list)
    callbacks_removed: list[int] = field(default_factory=list)
    compositions_deleted: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return (
            len(self.anonymized)
            + len(self.recordings_deleted)
            + len(self.callbacks_removed)
            + len(self.compositions_deleted)
        )


class RetentionService:
    """Reads and sets retention policies; `sweep` applies them to every account.

    Args:
        defaults: the policy of accounts that set none (`PARLOUR_RETENTION_*`).
        storage: where recording media lives (None: recordings are never swept, as in the
            CLI, which only reads and sets policies).
        spool_dir: the recordings' scratch directory (leftovers are removed with them).
        batch: how many records of one kind one pass handles per account.
    """

    def __init__(
        self,
        store: Store,
        clock: Clock,
        defaults: RetentionPolicy,
        *,
        storage: MediaStorage | None = None,
        spool_dir: Path | None = None,
        resolver: MediaStorageResolver | None = None,
        batch: int = 200,
    ) -> None:
        self._store = store
        self._clock = clock
        self.defaults = defaults
        self._storage = storage
        self._spool = spool_dir
        self._resolver = resolver
        self._batch = batch

    async def get(self, account_sid: str) -> Retention:
        """Raises NotFoundError (20404) for an unknown account."""
        if await self._store.get_account(account_sid) is None:
            raise errors.NotFoundError(f"no account {account_sid}")
        account = AccountSid(account_sid)
        stored = await self._store.get_retention(account)
        if stored is None:
            return Retention(account, self.defaults, True)
        return Retention(account, stored.policy, False, stored.date_created, stored.date_updated)

    async def update(self, account_sid: str, **days: int | None) -> Retention:
        """Set some of `identity_days`, `recording_days`, `callback_days` (None: never);
        the others keep their current value (the defaults' until set).

        Raises:
            NotFoundError: 20404 unknown account.
            InvalidParameterError: 20001 a number of days out of range.
        """
        current = await self.get(account_sid)
        for name, value in days.items():
            if name not in ("identity_days", "recording_days", "callback_days"):
                raise TypeError(name)
            check_days(name, value)
        policy = replace(current.policy, **days)
        stored = await self._store.set_retention(current.account_sid, policy, self._clock.now())
        log.info("retention set account=%s %s", current.account_sid, policy)
        return Retention(
            current.account_sid, stored.policy, False, stored.date_created, stored.date_updated
        )

    async def sweep(self) -> SweepResult:
        """One pass over every account. Never raises for one account's failure."""
        result = SweepResult()
        for account in await self._store.account_sids():
            try:
                await self._sweep_account(account, result)
            except Exception:
                log.exception("retention sweep failed account=%s", account)
        return result

    async def run(self, interval: float) -> None:
        """Sweep now and then every `interval` seconds, until cancelled."""
        while True:
            try:
                await self.sweep()
            except Exception:
                log.exception("retention sweep failed")
            await asyncio.sleep(interval)

    async def _delete_media(self, recording: Recording) -> None:
        """Remove the recording's media where it is (local, or its account's bucket)."""
        storage = self._storage
        if self._resolver is not None:
            try:
                storage = await self._resolver.of_recording(recording)
            except StorageUnavailable as exc:
                log.warning("recording media not deleted sid=%s reason=%s", recording.sid, exc)
                return
        if storage is not None:
            await storage.delete(recording.media_key)

    async def _delete_composition_media(self, composition: Composition) -> None:
        """Remove the composition's media where it is (local, or its account's bucket)."""
        storage = self._storage
        if self._resolver is not None:
            try:
                storage = await self._resolver.of_composition(composition)
            except StorageUnavailable as exc:
                log.warning("composition media not deleted sid=%s reason=%s", composition.sid, exc)
                return
        if storage is not None:
            await storage.delete(composition.media_key)

    async def _sweep_account(self, account: AccountSid, result: SweepResult) -> None:
        policy = (await self.get(account)).policy
        now = self._clock.now()
        if policy.identity_days is not None:
            cutoff = now - policy.identity_days * _DAY
            while due := await self._store.participants_to_anonymize(account, cutoff, self._batch):
                for p in due:
                    if await self._store.anonymize_participant(p.sid, now) is not None:
                        log.info("retention anonymized participant=%s room=%s", p.sid, p.room_sid)
                        result.anonymized.append(p.sid)
                if len(due) < self._batch:
                    break
        if policy.recording_days is not None and self._storage is not None:
            cutoff = now - policy.recording_days * _DAY
            for recording in await self._store.expired_recordings(account, cutoff, self._batch):
                await self._delete_media(recording)
                if self._spool is not None:
                    for path in spool_files(self._spool, recording):
                        path.unlink(missing_ok=True)
                deleted = recording.deleted(now)
                if await self._store.update_recording(deleted, expected=recording.status):
                    log.info("retention deleted recording=%s", recording.sid)
                    result.recordings_deleted.append(recording.sid)
            # A composition is made of recordings: it goes with them (R-recording).
            for composition in await self._store.expired_compositions(account, cutoff, self._batch):
                await self._delete_composition_media(composition)
                gone = composition.deleted(now)
                if await self._store.update_composition(gone, expected=composition.status):
                    log.info("retention deleted composition=%s", composition.sid)
                    result.compositions_deleted.append(composition.sid)
        # Callback bodies carry identities: they never outlive the identities themselves.
        days = [d for d in (policy.callback_days, policy.identity_days) if d is not None]
        if days:
            cutoff = now - min(days) * _DAY
            while ids := await self._store.purge_callback_deliveries(account, cutoff, self._batch):
                for delivery_id in ids:
                    log.info("retention removed callback=%d account=%s", delivery_id, account)
                result.callbacks_removed.extend(ids)
                if len(ids) < self._batch:
                    break
