"""Typed SIDs: two upper-case letters and 32 lower-case hex digits.

`new_sid` draws from `secrets`, so SIDs are unguessable as well as unique.
"""

from __future__ import annotations

import re
import secrets
from typing import NewType

__all__ = [
    "AccountSid",
    "ApiKeySid",
    "ParticipantSid",
    "RecordingSid",
    "RoomSid",
    "TrackSid",
    "is_sid",
    "new_sid",
]

AccountSid = NewType("AccountSid", str)
ApiKeySid = NewType("ApiKeySid", str)
RoomSid = NewType("RoomSid", str)
ParticipantSid = NewType("ParticipantSid", str)
TrackSid = NewType("TrackSid", str)
RecordingSid = NewType("RecordingSid", str)

_SID_RE = re.compile(r"^[A-Z]{2}[0-9a-fA-F]{32}$")


def new_sid(prefix: str) -> str:
    """A fresh SID with the given two-letter prefix (``RM``, ``PA``, ``MT`` …)."""
    if len(prefix) != 2 or not prefix.isalpha() or not prefix.isupper():
        raise ValueError(f"bad SID prefix {prefix!r}")
    return prefix + secrets.token_hex(16)


def is_sid(value: str, prefix: str | None = None) -> bool:
    """Whether `value` has the shape of a SID (with this prefix, if given)."""
    if not _SID_RE.match(value):
        return False
    return prefix is None or value[:2] == prefix
