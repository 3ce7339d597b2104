"""Deriving and checking credentials without storing them.

An auth token or API key secret is ``HMAC-SHA256(server_secret, purpose + sid)``, shown as
32 characters. The store keeps only ``sha256(secret)``. Knowing the server secret (a file in
the data dir, or `PARLOUR_SECRET_KEY`) is what lets the server re-derive a key's secret to
verify the Access Tokens it signed; a copy of the database alone reveals nothing usable.
"""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["derive_auth_token", "derive_key_secret", "hash_secret", "secret_matches"]


def _derive(server_secret: bytes, purpose: str, sid: str, version: int) -> str:
    msg = f"parlour/{purpose}/v{version}/{sid}".encode()
    return hmac.new(server_secret, msg, hashlib.sha256).hexdigest()[:32]


def derive_auth_token(server_secret: bytes, account_sid: str, version: int = 1) -> str:
    """An account's auth token: 32 lower-case hex digits, like Twilio's."""
    return _derive(server_secret, "auth-token", account_sid, version)


def derive_key_secret(server_secret: bytes, key_sid: str, version: int = 1) -> str:
    """An API key's secret: 32 characters."""
    return _derive(server_secret, "api-key", key_sid, version)


def hash_secret(secret: str) -> str:
    """The only form in which a secret is stored."""
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(secret: str, stored_hash: str) -> bool:
    """Constant-time comparison of a presented secret with a stored hash."""
    return hmac.compare_digest(hash_secret(secret), stored_hash)
