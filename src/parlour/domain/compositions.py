"""Compositions (`CJ…`) and CompositionHooks (`HK…`): records, status machine, specs.

A composition mixes a completed group room's track recordings into one MP4 or WebM file
(`domain.layouts` decides what goes where). A hook is a template: when a group room of its
account ends, each enabled hook creates a composition of it.

::

    enqueued ──► processing ──► completed ──► deleted
        │             │
        └─────────────┴──────► failed

`enqueued` until its room has ended and every recording of it is finished; `processing`
while a worker composes it (a server stopped meanwhile puts it back to `enqueued` at the
next start: it is composed again, once); `completed` with `date_completed`, `duration`,
`size` and `bitrate`; `failed` with the reason; `deleted` once DELETE removed the media (a
failed composition cannot be deleted, as on Twilio).
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from dataclasses import dataclass, replace
from typing import Any

from parlour.domain.layouts import (
    AudioSelection,
    LayoutError,
    VideoLayout,
    parse_layout,
    parse_resolution,
)
from parlour.domain.media_settings import Envelope
from parlour.domain.sids import AccountSid, RoomSid

__all__ = [
    "Composition",
    "CompositionFormat",
    "CompositionHook",
    "CompositionSpec",
    "CompositionStatus",
    "DEFAULT_RESOLUTION",
    "InvalidTransition",
    "like_pattern",
    "name_pattern",
]

DEFAULT_RESOLUTION = "640x480"
MAX_SOURCE_NAMES = 256


def name_pattern(pattern: str) -> re.Pattern[str]:
    """A `FriendlyName` filter: case-insensitive, `*` matches any run of characters."""
    body = ".*".join(re.escape(part) for part in pattern.split("*"))
    return re.compile(f"^{body}$", re.IGNORECASE | re.DOTALL)


def like_pattern(pattern: str) -> str:
    """The same filter as a SQL `LIKE` pattern (escape character `\\`), for lower()."""
    escaped = pattern.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%")


class CompositionStatus(enum.StrEnum):
    ENQUEUED = "enqueued"
    PROCESSING = "processing"
    COMPLETED = "completed"
    DELETED = "deleted"
    FAILED = "failed"


class CompositionFormat(enum.StrEnum):
    MP4 = "mp4"
    WEBM = "webm"

    @property
    def content_type(self) -> str:
        return "video/mp4" if self is CompositionFormat.MP4 else "video/webm"

    def audio_content_type(self) -> str:
        return "audio/mp4" if self is CompositionFormat.MP4 else "audio/webm"


class InvalidTransition(ValueError):
    """A status change the composition state machine does not allow."""


_NEXT: dict[CompositionStatus, frozenset[CompositionStatus]] = {
    CompositionStatus.ENQUEUED: frozenset({CompositionStatus.PROCESSING, CompositionStatus.FAILED}),
    CompositionStatus.PROCESSING: frozenset(
        {CompositionStatus.COMPLETED, CompositionStatus.FAILED, CompositionStatus.ENQUEUED}
    ),
    CompositionStatus.COMPLETED: frozenset({CompositionStatus.DELETED}),
    CompositionStatus.FAILED: frozenset(),
    CompositionStatus.DELETED: frozenset(),
}


@dataclass(frozen=True)
class CompositionSpec:
    """What to compose, shared by compositions and hooks (validated on creation).

    `video_layout` is the layout as given (unset properties left out); `audio_sources`
    and `audio_sources_excluded` are track names / SIDs with `*` wildcards.
    """

    video_layout: dict[str, Any] | None = None
    audio_sources: tuple[str, ...] = ()
    audio_sources_excluded: tuple[str, ...] = ()
    resolution: str = DEFAULT_RESOLUTION
    format: CompositionFormat = CompositionFormat.WEBM
    trim: bool = True

    @classmethod
    def checked(
        cls,
        *,
        video_layout: Any = None,
        audio_sources: tuple[str, ...] = (),
        audio_sources_excluded: tuple[str, ...] = (),
        resolution: str | None = None,
        format: CompositionFormat | None = None,
        trim: bool | None = None,
        require_sources: bool = True,
    ) -> CompositionSpec:
        """A spec Twilio would accept.

        Raises:
            LayoutError: a bad `Resolution` or `VideoLayout`, neither `VideoLayout` nor
                `AudioSources` (when `require_sources`), or over-long source lists.
        """
        size = parse_resolution(resolution or DEFAULT_RESOLUTION)
        layout: VideoLayout | None = None
        if video_layout is not None and video_layout != {}:
            layout = parse_layout(video_layout, size)
        if require_sources and layout is None and not audio_sources:
            raise LayoutError("Either VideoLayout or AudioSources must be given")
        for names in (audio_sources, audio_sources_excluded):
            if len(names) > MAX_SOURCE_NAMES or any(not n or len(n) > 256 for n in names):
                raise LayoutError("AudioSources must be at most 256 names of 1-256 characters")
        return cls(
            video_layout=layout.stored() if layout is not None else None,
            audio_sources=tuple(audio_sources),
            audio_sources_excluded=tuple(audio_sources_excluded),
            resolution=f"{size[0]}x{size[1]}",
            format=format or CompositionFormat.WEBM,
            trim=True if trim is None else trim,
        )

    @property
    def size(self) -> tuple[int, int]:
        return parse_resolution(self.resolution)

    def layout(self) -> VideoLayout | None:
        return None if self.video_layout is None else parse_layout(self.video_layout, self.size)

    def audio(self) -> AudioSelection:
        return AudioSelection(self.audio_sources, self.audio_sources_excluded)

    def layout_json(self) -> dict[str, Any]:
        """`video_layout` as Twilio echoes it (every property filled in; `{}` if none)."""
        layout = self.layout()
        return {} if layout is None else layout.to_json()


@dataclass(frozen=True)
class Composition:
    sid: str
    account_sid: AccountSid
    room_sid: RoomSid
    spec: CompositionSpec
    status: CompositionStatus
    date_created: dt.datetime
    date_updated: dt.datetime
    date_completed: dt.datetime | None = None
    date_deleted: dt.datetime | None = None
    duration: int = 0
    size: int = 0
    bitrate: int = 0
    media_external_location: str | None = None
    status_callback: str | None = None
    status_callback_method: str = "POST"
    hook_sid: str | None = None
    failure_reason: str | None = None
    progress: int = 0  # percent done while processing
    node_id: str | None = None  # the server process composing it (while processing)
    #: Where its media goes, by the account's CompositionSettings when it was created: the
    #: bucket's credential (None: local storage, with `media_external_location` None) and
    #: the public key it is encrypted for; `encryption` is the stored file's envelope.
    media_credentials_sid: str | None = None
    encryption_key_sid: str | None = None
    encryption: Envelope | None = None

    @property
    def file_name(self) -> str:
        return f"{self.sid}.{self.spec.format.value}"

    @property
    def media_key(self) -> str:
        """Where the media lives in the `MediaStorage`."""
        return f"compositions/{self.file_name}"

    @property
    def has_media(self) -> bool:
        return self.status is CompositionStatus.COMPLETED and self.size > 0

    @property
    def encrypted(self) -> bool:
        """Its media is (or will be) encrypted for the account's public key."""
        return self.encryption is not None or self.encryption_key_sid is not None

    @property
    def content_type(self) -> str:
        if self.spec.video_layout is None:
            return self.spec.format.audio_content_type()
        return self.spec.format.content_type

    def _to(self, status: CompositionStatus, now: dt.datetime) -> Composition:
        if status not in _NEXT[self.status]:
            raise InvalidTransition(f"composition {self.sid}: {self.status} → {status}")
        return replace(self, status=status, date_updated=now)

    def processing(self, now: dt.datetime, node_id: str | None = None) -> Composition:
        return replace(self._to(CompositionStatus.PROCESSING, now), progress=0, node_id=node_id)

    def requeued(self, now: dt.datetime) -> Composition:
        return replace(self._to(CompositionStatus.ENQUEUED, now), progress=0, node_id=None)

    def with_progress(self, percent: int, now: dt.datetime) -> Composition:
        return replace(self, progress=max(0, min(100, percent)), date_updated=now)

    def completed(
        self, now: dt.datetime, *, duration_ms: int, size: int, bitrate: int
    ) -> Composition:
        done = self._to(CompositionStatus.COMPLETED, now)
        return replace(
            done,
            date_completed=now,
            duration=max(1, (duration_ms + 500) // 1000) if duration_ms > 0 else 0,
            size=size,
            bitrate=bitrate,
            progress=100,
        )

    def failed(self, now: dt.datetime, reason: str) -> Composition:
        return replace(self._to(CompositionStatus.FAILED, now), failure_reason=reason[:512])

    def deleted(self, now: dt.datetime) -> Composition:
        return replace(self._to(CompositionStatus.DELETED, now), date_deleted=now)


@dataclass(frozen=True)
class CompositionHook:
    sid: str
    account_sid: AccountSid
    friendly_name: str
    enabled: bool
    spec: CompositionSpec
    date_created: dt.datetime
    date_updated: dt.datetime | None = None
    status_callback: str | None = None
    status_callback_method: str = "POST"
