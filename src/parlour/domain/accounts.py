"""Accounts and API keys.

Secrets are never stored. Each is derived from the server's secret key with HMAC and the
SID (`parlour.protocol.secrets`), and the store keeps only a SHA-256 hash of it, so a leaked
database reveals no credential, while `parlour account` can still print the auth token and
the signaling server can verify Access Tokens signed with any of an account's keys.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from parlour.domain.sids import AccountSid, ApiKeySid

__all__ = ["Account", "ApiKey"]


@dataclass(frozen=True)
class Account:
    sid: AccountSid
    friendly_name: str
    auth_token_hash: str
    date_created: dt.datetime
    date_updated: dt.datetime


@dataclass(frozen=True)
class ApiKey:
    sid: ApiKeySid
    account_sid: AccountSid
    friendly_name: str
    secret_hash: str
    date_created: dt.datetime
    date_updated: dt.datetime
