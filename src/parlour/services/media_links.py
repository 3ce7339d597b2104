"""Signed links to stored media (recordings and compositions): `/media/{AccountSid}/{file}`
with an expiry, a `Content-Disposition` and an HMAC signature (`protocol/media_urls.py`), so
that a download needs no other credentials, as Twilio's `/Media` redirects."""

from __future__ import annotations

from parlour.domain import errors
from parlour.protocol.media_urls import signed_media_url, verify_media_path

__all__ = ["media_path", "signed_link", "verified_file"]


def media_path(account_sid: str, file_name: str) -> str:
    return f"/media/{account_sid}/{file_name}"


def signed_link(
    key: bytes, account_sid: str, file_name: str, *, now: int, ttl: int, disposition: str
) -> str:
    """The link to `file_name`, valid `ttl` seconds from `now` (Unix seconds)."""
    return signed_media_url(key, media_path(account_sid, file_name), now + ttl, disposition)


def verified_file(
    key: bytes,
    account_sid: str,
    file_name: str,
    *,
    now: int,
    expires: str | None,
    disposition: str | None,
    signature: str | None,
) -> tuple[str, str, str]:
    """The path, the SID (`RT…`, `CJ…`) and the disposition of the file a link names, if
    its signature holds.

    Raises:
        ForbiddenError: 20403 missing, altered or expired signature.
    """
    path = media_path(account_sid, file_name)
    try:
        expiry = int(expires or "")
    except ValueError:
        expiry = 0
    if (
        disposition is None
        or signature is None
        or not verify_media_path(key, path, expiry, disposition, signature, now=now)
    ):
        raise errors.ForbiddenError("The media URL is invalid or has expired")
    return path, file_name.partition(".")[0], disposition
