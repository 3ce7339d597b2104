"""Signed, expiring media URLs: what `/Media` redirects to. Pure: no clock, no I/O.

Twilio answers `GET …/Recordings/RT…/Media` with a 302 to a short-lived pre-signed URL
that needs no credentials (rest-api.md §10.3, §11.6). Parlour serves the bytes itself at

    /media/{AccountSid}/{RT…}.{mka|mkv}?Expires=<unix s>&ContentDisposition=<…>&Signature=<…>

`Signature` is base64url (no padding) of HMAC-SHA256 over ``GET\\n<path>\\n<Expires>\\n
<ContentDisposition>`` with a key derived from the server secret, so only this server (or
one sharing its secret) can issue them, nothing in the URL can be altered, and they stop
working at `Expires`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import quote, urlencode

__all__ = ["media_url_key", "sign_media_path", "signed_media_url", "verify_media_path"]


def media_url_key(server_secret: bytes) -> bytes:
    """The signing key for media URLs (separate from every other use of the secret)."""
    return hmac.new(server_secret, b"parlour media url v1", hashlib.sha256).digest()


def sign_media_path(key: bytes, path: str, expires: int, disposition: str) -> str:
    message = f"GET\n{path}\n{expires}\n{disposition}".encode()
    digest = hmac.new(key, message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def signed_media_url(key: bytes, path: str, expires: int, disposition: str) -> str:
    """`path` with its `Expires`, `ContentDisposition` and `Signature` query."""
    query = urlencode(
        [
            ("Expires", str(expires)),
            ("ContentDisposition", disposition),
            ("Signature", sign_media_path(key, path, expires, disposition)),
        ],
        quote_via=quote,
    )
    return f"{path}?{query}"


def verify_media_path(
    key: bytes, path: str, expires: int, disposition: str, signature: str, *, now: int
) -> bool:
    """Whether the signature is ours for exactly these values and has not expired."""
    if now >= expires:
        return False
    expected = sign_media_path(key, path, expires, disposition)
    return hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace"))
