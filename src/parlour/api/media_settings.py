"""`/v1/RecordingSettings/Default` and `/v1/CompositionSettings/Default`: the singletons
that say where an account's media is stored (S3) and whether it is encrypted.

GET answers the settings (all null/false until set); POST ("Create", 200) needs
`FriendlyName` and changes the parameters it is given, keeping the others.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from parlour.api.auth import authenticate
from parlour.api.context import ApiContext, context
from parlour.api.forms import Params, body_params
from parlour.domain import errors
from parlour.domain.media_settings import MediaKind, MediaSettings
from parlour.domain.sids import is_sid

__all__ = ["routes", "settings_json"]

_PATHS = {
    MediaKind.RECORDINGS: "/v1/RecordingSettings/Default",
    MediaKind.COMPOSITIONS: "/v1/CompositionSettings/Default",
}


def settings_json(ctx: ApiContext, s: MediaSettings) -> dict[str, Any]:
    """`video.v1.recording_settings` / `video.v1.composition_settings`."""
    return {
        "account_sid": s.account_sid,
        "friendly_name": s.friendly_name,
        "aws_credentials_sid": s.aws_credentials_sid,
        "aws_s3_url": s.aws_s3_url,
        "aws_storage_enabled": s.aws_storage_enabled,
        "encryption_key_sid": s.encryption_key_sid,
        "encryption_enabled": s.encryption_enabled,
        "url": ctx.url(_PATHS[s.kind]),
    }


def _changes(p: Params) -> dict[str, object]:
    changes: dict[str, object] = {"friendly_name": p.text("FriendlyName")}
    for param, field in (
        ("AwsCredentialsSid", "aws_credentials_sid"),
        ("EncryptionKeySid", "encryption_key_sid"),
    ):
        if param in p:
            value = p.text(param) or None
            if value is not None and not is_sid(value, "CR"):
                raise errors.InvalidParameterError(f"{param} must be a Credential SID (CR…)")
            changes[field] = value
    if "AwsS3Url" in p:
        changes["aws_s3_url"] = p.text("AwsS3Url") or None
    for param, field in (
        ("AwsStorageEnabled", "aws_storage_enabled"),
        ("EncryptionEnabled", "encryption_enabled"),
    ):
        flag = p.flag(param)
        if flag is not None:
            changes[field] = flag
    return changes


def _handlers(kind: MediaKind) -> list[Route]:
    noun = "recording" if kind is MediaKind.RECORDINGS else "composition"

    async def fetch(request: Request) -> JSONResponse:
        account = await authenticate(request)
        ctx = context(request)
        settings = await ctx.media_settings_service.get(account, kind)
        return JSONResponse(settings_json(ctx, settings))

    async def create(request: Request) -> JSONResponse:
        account = await authenticate(request)
        ctx = context(request)
        p = await body_params(request)
        settings = await ctx.media_settings_service.update(account, kind, **_changes(p))
        return JSONResponse(settings_json(ctx, settings))

    fetch.__doc__ = f"Fetch the account's default {noun} settings"
    create.__doc__ = f"Set the account's default {noun} settings (S3 storage, encryption)"
    return [
        Route(_PATHS[kind], fetch, methods=["GET"]),
        Route(_PATHS[kind], create, methods=["POST"]),
    ]


routes = [*_handlers(MediaKind.RECORDINGS), *_handlers(MediaKind.COMPOSITIONS)]
