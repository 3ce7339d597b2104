"""Twilio Access Tokens: the JWT that Twilio's helper libraries mint, encoded and verified.

Header ``{"alg":"HS256","cty":"twilio-fpa;v=1","typ":"JWT"}`` (sorted, as PyJWT writes it);
claims ``jti, grants, iss, exp, nbf, sub`` in twilio-python's order. Signature HMAC-SHA256
with the API key secret. Verification failures carry the SDK-facing codes 20101–20107.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "CTY",
    "AccessToken",
    "TokenError",
    "VideoGrant",
    "decode_unverified",
    "encode_token",
    "verify_token",
]

CTY = "twilio-fpa;v=1"
CLOCK_SKEW = 60
#: Twilio's longest Access Token lifetime (24 h): a later `exp` is refused with 20104.
MAX_LIFETIME = 86400
#: Longer tokens are refused (20101) before they are decoded; one with a video grant and a
#: long identity is well under 2 kB.
MAX_TOKEN_LENGTH = 16384
_KEY_SID = re.compile(r"^SK[0-9a-fA-F]{32}$")


class TokenError(ValueError):
    """A token that cannot be accepted; `code` is the Twilio error code (20101–20107)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


INVALID = 20101
HEADER_INVALID = 20102
ISSUER_INVALID = 20103
EXPIRED = 20104
NOT_YET_VALID = 20105
GRANTS_INVALID = 20106
SIGNATURE_INVALID = 20107


@dataclass(frozen=True)
class VideoGrant:
    room: str | None = None


@dataclass(frozen=True)
class AccessToken:
    """The claims of a verified (or to-be-signed) Access Token."""

    account_sid: str
    key_sid: str
    identity: str | None
    issued_at: int
    expires: int
    not_before: int | None = None
    video: VideoGrant | None = None
    jti: str | None = None
    grants: dict[str, Any] = field(default_factory=dict)
    region: str | None = None


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    pad = "=" * (-len(text) % 4)
    return base64.urlsafe_b64decode(text + pad)


def _json(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def encode_token(
    *,
    account_sid: str,
    key_sid: str,
    secret: str,
    identity: str | None,
    now: int,
    ttl: int = 3600,
    room: str | None = None,
    region: str | None = None,
) -> str:
    """Mint a token exactly as `twilio.jwt.access_token.AccessToken` with a `VideoGrant` does.

    Args:
        now: issue time in whole seconds since the epoch (also the `nbf`).
    """
    header: dict[str, Any] = {"alg": "HS256", "cty": CTY}
    if region is not None:
        header["twr"] = region
    header["typ"] = "JWT"
    header = dict(sorted(header.items()))
    grants: dict[str, Any] = {"video": {"room": room} if room is not None else {}}
    if identity:
        grants["identity"] = identity
    payload = {
        "jti": f"{key_sid}-{now}",
        "grants": grants,
        "iss": key_sid,
        "exp": now + ttl,
        "nbf": now,
        "sub": account_sid,
    }
    signing_input = f"{_b64encode(_json(header))}.{_b64encode(_json(payload))}"
    sig = hmac.new(secret.encode(), signing_input.encode("ascii"), hashlib.sha256).digest()
    return f"{signing_input}.{_b64encode(sig)}"


def decode_unverified(token: str) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    """Split a token into header, claims, signing input and signature, checking only shape.

    Raises:
        TokenError: 20101 if it is not a JWT, 20102 if the header is not Twilio's.
    """
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
        raise TokenError(INVALID, "Invalid Access Token")
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenError(INVALID, "Invalid Access Token")
    try:
        header = json.loads(_b64decode(parts[0]))
        claims = json.loads(_b64decode(parts[1]))
        signature = _b64decode(parts[2])
    except (ValueError, binascii.Error, UnicodeDecodeError, RecursionError):
        # RecursionError: JSON nested deeper than the interpreter's stack (found by fuzzing).
        raise TokenError(INVALID, "Invalid Access Token") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise TokenError(INVALID, "Invalid Access Token")
    if header.get("alg") != "HS256" or header.get("cty") != CTY:
        raise TokenError(HEADER_INVALID, "Invalid Access Token header")
    return header, claims, f"{parts[0]}.{parts[1]}".encode("ascii"), signature


def verify_token(token: str, *, secret: str, now: int, account_sid: str) -> AccessToken:
    """Verify signature, issuer, times and grants of a token whose key was looked up by `iss`.

    Args:
        secret: the secret of the API key named in `iss`.
        account_sid: the account that owns that key; must equal `sub`.
        now: current time in seconds since the epoch.

    Raises:
        TokenError: with the Twilio code of the first failed check.
    """
    header, claims, signing_input, signature = decode_unverified(token)
    expected = hmac.new(secret.encode(), signing_input, hashlib.sha256).digest()
    if not hmac.compare_digest(expected, signature):
        raise TokenError(SIGNATURE_INVALID, "Invalid Access Token signature")
    iss, sub = claims.get("iss"), claims.get("sub")
    if not isinstance(iss, str) or not _KEY_SID.match(iss) or sub != account_sid:
        raise TokenError(ISSUER_INVALID, "Invalid Access Token issuer/subject")
    exp, nbf = claims.get("exp"), claims.get("nbf")
    if not isinstance(exp, int) or isinstance(exp, bool):
        raise TokenError(INVALID, "Invalid Access Token")
    if now >= exp + CLOCK_SKEW or exp > now + MAX_LIFETIME + CLOCK_SKEW:
        raise TokenError(EXPIRED, "Access Token expired or expiration date invalid")
    if nbf is not None and (not isinstance(nbf, int) or now + CLOCK_SKEW < nbf):
        raise TokenError(NOT_YET_VALID, "Access Token not yet valid")
    grants = claims.get("grants")
    if not isinstance(grants, dict):
        raise TokenError(GRANTS_INVALID, "Invalid Access Token grants")
    identity = grants.get("identity")
    video = grants.get("video")
    if not isinstance(identity, str) or not identity or not isinstance(video, dict):
        raise TokenError(GRANTS_INVALID, "Invalid Access Token grants")
    room = video.get("room")
    if room is not None and not isinstance(room, str):
        raise TokenError(GRANTS_INVALID, "Invalid Access Token grants")
    jti = claims.get("jti")
    twr = header.get("twr")
    return AccessToken(
        account_sid=account_sid,
        key_sid=iss,
        identity=identity,
        issued_at=nbf if isinstance(nbf, int) else exp,
        expires=exp,
        not_before=nbf,
        video=VideoGrant(room=room),
        jti=jti if isinstance(jti, str) else None,
        grants=grants,
        region=twr if isinstance(twr, str) else None,
    )
