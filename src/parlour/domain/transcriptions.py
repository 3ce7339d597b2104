"""Real-time transcriptions of a room: the `Transcriptions` resource and its configuration.

A room has at most one transcriptions resource that is `started` at a time; while it is,
every participant's published audio is transcribed on this server (no audio leaves the
machine) and the text goes to the participants that asked for it (`receiveTranscriptions`)
and, as lifecycle events, to the room's status callback::

    started ◄──► stopped          (POST …/Transcriptions/{Ttid} Status=stopped|started)
       │
       └──► failed                (the speech engine could not run)

A resource is identified by its `ttid` (`video_transcriptions_<hex>`, not a SID), as on
Twilio. `start_time` is when it last started; `end_time` and `duration` (seconds it ran in
all) are set when it stops, and the room's end stops it.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import uuid
from dataclasses import dataclass, field, replace
from typing import Any

from parlour.domain import errors
from parlour.domain.sids import AccountSid, RoomSid

__all__ = [
    "DEFAULT_LANGUAGE",
    "Transcription",
    "TranscriptionStatus",
    "Utterance",
    "new_ttid",
    "parse_configuration",
]

TTID_PREFIX = "video_transcriptions_"
DEFAULT_LANGUAGE = "en-US"
#: Configuration keys Twilio documents (camelCase, as the SDK's tests send them).
KNOWN_KEYS = frozenset(
    {
        "languageCode",
        "partialResults",
        "profanityFilter",
        "speechModel",
        "transcriptionEngine",
        "hints",
        "enableAutomaticPunctuation",
    }
)
_BOOLEAN_KEYS = ("partialResults", "profanityFilter", "enableAutomaticPunctuation")
_STRING_KEYS = ("languageCode", "speechModel", "transcriptionEngine", "hints")
MAX_CONFIGURATION = 4096


class TranscriptionStatus(enum.StrEnum):
    STARTED = "started"
    STOPPED = "stopped"
    FAILED = "failed"


def new_ttid() -> str:
    return TTID_PREFIX + uuid.uuid4().hex


def _camel(key: str) -> str:
    """`LanguageCode` (the REST examples) and `languageCode` (the SDK's) are one key."""
    return key[:1].lower() + key[1:]


def parse_configuration(text: str | None, *, name: str = "Configuration") -> dict[str, Any]:
    """A `Configuration` form field (a JSON object) as a dict with camelCase keys.

    Unknown keys are kept (Twilio adds engines' options over time); the known ones must
    have their type. Raises `InvalidParameterError` (20001) otherwise.
    """
    if text is None or text == "":
        return {}
    if len(text) > MAX_CONFIGURATION:
        raise errors.InvalidParameterError(f"{name} is too long")
    try:
        loaded = json.loads(text)
    except (ValueError, RecursionError):
        loaded = None
    if not isinstance(loaded, dict):
        raise errors.InvalidParameterError(f"{name} must be a JSON object")
    return normalize_configuration(loaded, name=name)


def normalize_configuration(loaded: dict[str, Any], *, name: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in loaded.items():
        camel = _camel(str(key))
        if camel in _BOOLEAN_KEYS and not isinstance(value, bool):
            raise errors.InvalidParameterError(f"{name}.{camel} must be true or false")
        if camel in _STRING_KEYS and not isinstance(value, str):
            raise errors.InvalidParameterError(f"{name}.{camel} must be a string")
        out[camel] = value
    language = out.get("languageCode")
    if language is not None and not _valid_language(language):
        raise errors.InvalidParameterError(f"{name}.languageCode is not a BCP-47 language tag")
    return out


def _valid_language(tag: str) -> bool:
    parts = tag.split("-")
    return 0 < len(tag) <= 35 and all(p.isalnum() and 0 < len(p) <= 8 for p in parts)


def language_of(configuration: dict[str, Any]) -> str:
    """The BCP-47 tag results are labelled with (`en-US` unless configured)."""
    tag = str(configuration.get("languageCode") or DEFAULT_LANGUAGE)
    parts = tag.split("-")
    return "-".join([parts[0].lower(), *(p.upper() if len(p) == 2 else p for p in parts[1:])])


@dataclass(frozen=True, slots=True)
class Transcription:
    ttid: str
    account_sid: AccountSid
    room_sid: RoomSid
    status: TranscriptionStatus
    date_created: dt.datetime
    date_updated: dt.datetime
    start_time: dt.datetime | None = None
    end_time: dt.datetime | None = None
    duration: int | None = None
    configuration: dict[str, Any] = field(default_factory=dict)

    @property
    def started(self) -> bool:
        return self.status is TranscriptionStatus.STARTED

    @property
    def partial_results(self) -> bool:
        return bool(self.configuration.get("partialResults", False))

    @property
    def language(self) -> str:
        return language_of(self.configuration)

    def start(self, now: dt.datetime) -> Transcription:
        return replace(
            self,
            status=TranscriptionStatus.STARTED,
            start_time=now,
            end_time=None,
            date_updated=now,
        )

    def stop(self, now: dt.datetime, *, failed: bool = False) -> Transcription:
        ran = 0.0
        if self.start_time is not None and self.started:
            ran = max(0.0, (now - self.start_time).total_seconds())
        return replace(
            self,
            status=TranscriptionStatus.FAILED if failed else TranscriptionStatus.STOPPED,
            end_time=now,
            duration=(self.duration or 0) + round(ran),
            date_updated=now,
        )


@dataclass(frozen=True, slots=True)
class Utterance:
    """What the recogniser heard on one track: a partial (still speaking) or final result.

    `start` and `end` are seconds of the stream's audio (since its first packet)."""

    text: str
    final: bool
    start: float
    end: float
