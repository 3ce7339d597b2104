"""The Accounts API's `/v1/Credentials/AWS` and `/v1/Credentials/PublicKeys` (`CR…`), as
twilio-python's `client.accounts.v1.credentials.aws` / `.public_key` call them (served on
the same base URL as Video: set `client.accounts.base_url` too).

The AWS secret access key is write-only: no response carries it (Twilio's carry none).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from parlour.api.auth import authenticate
from parlour.api.context import ApiContext, context
from parlour.api.forms import body_params, query_params
from parlour.api.pagination import list_response
from parlour.domain.media_settings import Credential, CredentialType
from parlour.protocol.rest import format_date

__all__ = ["credential_json", "routes"]

_PATHS = {
    CredentialType.AWS: "/v1/Credentials/AWS",
    CredentialType.PUBLIC_KEY: "/v1/Credentials/PublicKeys",
}


def credential_json(ctx: ApiContext, type: CredentialType, c: Credential) -> dict[str, Any]:
    """`accounts.v1.credential_aws` / `credential_public_key`: no secret, no key material."""
    return {
        "sid": c.sid,
        "account_sid": c.account_sid,
        "friendly_name": c.friendly_name,
        "date_created": format_date(c.date_created),
        "date_updated": format_date(c.date_updated),
        "url": ctx.url(f"{_PATHS[type]}/{c.sid}"),
    }


def _handlers(type: CredentialType) -> list[Route]:
    path = _PATHS[type]
    noun = "AWS credential" if type is CredentialType.AWS else "public key"

    async def create(request: Request) -> JSONResponse:
        account = await authenticate(request)
        ctx = context(request)
        p = await body_params(request)
        service = ctx.credential_service
        if type is CredentialType.AWS:
            credential: Credential = await service.create_aws(
                account, p.text("Credentials"), p.text("FriendlyName"), p.text("AccountSid")
            )
        else:
            credential = await service.create_public_key(
                account, p.text("PublicKey"), p.text("FriendlyName"), p.text("AccountSid")
            )
        return JSONResponse(credential_json(ctx, type, credential), status_code=201)

    async def list_(request: Request) -> JSONResponse:
        account = await authenticate(request)
        ctx = context(request)
        p = query_params(request)
        return await list_response(
            request,
            p,
            key="credentials",
            find=lambda req: ctx.credential_service.find(account, type, req),
            render=lambda c: credential_json(ctx, type, c),
            max_size=1000,
        )

    async def fetch(request: Request) -> JSONResponse:
        account = await authenticate(request)
        ctx = context(request)
        credential = await ctx.credential_service.get(account, type, request.path_params["sid"])
        return JSONResponse(credential_json(ctx, type, credential))

    async def update(request: Request) -> JSONResponse:
        account = await authenticate(request)
        ctx = context(request)
        p = await body_params(request)
        sid = request.path_params["sid"]
        if "FriendlyName" not in p:  # nothing to change
            credential = await ctx.credential_service.get(account, type, sid)
        else:
            credential = await ctx.credential_service.rename(
                account, type, sid, p.text("FriendlyName")
            )
        return JSONResponse(credential_json(ctx, type, credential))

    async def delete(request: Request) -> Response:
        account = await authenticate(request)
        ctx = context(request)
        sid = request.path_params["sid"]
        await ctx.credential_service.delete(account, type, sid)
        if ctx.media_storage is not None:
            ctx.media_storage.forget(sid)
        return Response(status_code=204)

    create.__doc__ = f"Create a new {noun} (Accounts API)"
    list_.__doc__ = f"List the account's {noun}s (Accounts API)"
    fetch.__doc__ = f"Fetch a {noun} (Accounts API)"
    update.__doc__ = f"Rename a {noun} (Accounts API)"
    delete.__doc__ = f"Delete a {noun} (Accounts API)"
    return [
        Route(path, create, methods=["POST"]),
        Route(path, list_, methods=["GET"]),
        Route(f"{path}/{{sid}}", fetch, methods=["GET"]),
        Route(f"{path}/{{sid}}", update, methods=["POST"]),
        Route(f"{path}/{{sid}}", delete, methods=["DELETE"]),
    ]


routes = [*_handlers(CredentialType.AWS), *_handlers(CredentialType.PUBLIC_KEY)]
