"""Participants: the record, their status, and identity rules.

A participant exists from the moment a client connects with an Access Token; there is no
REST create. `connected` → (`reconnecting` ↔ `connected`) → `disconnected`, which is final.
"""

from __future__ import annotations

import datetime as dt
import enum
import unicodedata
from dataclasses import dataclass, replace

from parlour.domain import errors
from parlour.domain.rules import Rule
from parlour.domain.sids import AccountSid, ParticipantSid, RoomSid, new_sid

__all__ = [
    "MAX_IDENTITY_LENGTH",
    "Participant",
    "ParticipantStatus",
    "parse_participant_status_update",
    "validate_identity",
]

MAX_IDENTITY_LENGTH = 128


class ParticipantStatus(enum.StrEnum):
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    RECONNECTING = "reconnecting"


@dataclass(frozen=True)
class Participant:
    """A participant as stored and served (`video.v1.room.room_participant`)."""

    sid: ParticipantSid
    room_sid: RoomSid
    account_sid: AccountSid
    identity: str
    status: ParticipantStatus
    date_created: dt.datetime
    date_updated: dt.datetime
    start_time: dt.datetime | None = None
    end_time: dt.datetime | None = None
    duration: int | None = None
    subscribe_rules: tuple[Rule, ...] | None = None
    subscribe_rules_created: dt.datetime | None = None
    subscribe_rules_updated: dt.datetime | None = None
    node_id: str | None = None  # the server node holding its session (never served)

    @classmethod
    def joining(
        cls,
        room_sid: RoomSid,
        account_sid: AccountSid,
        identity: str,
        now: dt.datetime,
        *,
        node_id: str | None = None,
    ) -> Participant:
        """A participant connecting at `now`, with a fresh SID."""
        return cls(
            sid=ParticipantSid(new_sid("PA")),
            room_sid=room_sid,
            account_sid=account_sid,
            identity=identity,
            status=ParticipantStatus.CONNECTED,
            date_created=now,
            date_updated=now,
            start_time=now,
            node_id=node_id,
        )

    @property
    def active(self) -> bool:
        return self.status is not ParticipantStatus.DISCONNECTED

    def disconnected(self, now: dt.datetime) -> Participant:
        """This participant left at `now` (no-op if it already had)."""
        if not self.active:
            return self
        start = self.start_time or self.date_created
        return replace(
            self,
            status=ParticipantStatus.DISCONNECTED,
            end_time=now,
            duration=max(0, int((now - start).total_seconds())),
            date_updated=now,
        )


def validate_identity(identity: str) -> None:
    """An identity must be non-blank and at most 128 UTF-16 code units (Twilio's limit).

    Raises:
        TwilioError: 53200 blank, 53201 too long, 53202 control characters, lone surrogates
            or bidirectional controls.
    """
    if not identity or not identity.strip():
        raise errors.TwilioError(code=errors.Code.PARTICIPANT_IDENTITY_INVALID)
    if len(identity.encode("utf-16-le", errors="surrogatepass")) // 2 > MAX_IDENTITY_LENGTH:
        raise errors.TwilioError(code=errors.Code.PARTICIPANT_IDENTITY_TOO_LONG)
    if any(_forbidden(ch) for ch in identity):
        raise errors.TwilioError(code=errors.Code.PARTICIPANT_IDENTITY_CHARS_INVALID)


#: Bidirectional formatting characters: they make an identity read as another one.
_BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)


def _forbidden(ch: str) -> bool:
    """Control characters (NUL, newline, DEL …), lone surrogates and bidi controls; other
    format characters stay allowed (the zero-width joiner of emoji sequences)."""
    return unicodedata.category(ch) in ("Cc", "Cs") or ch in _BIDI_CONTROLS


def parse_participant_status_update(value: str | None) -> ParticipantStatus:
    """REST may only set `Status=disconnected` (53209 otherwise)."""
    if value != ParticipantStatus.DISCONNECTED.value:
        raise errors.ParticipantStatusError()
    return ParticipantStatus.DISCONNECTED
