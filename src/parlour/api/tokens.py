"""`POST /2010-04-01/Accounts/{AccountSid}/Tokens.json`: Twilio's Network Traversal Service
Token resource, as twilio-python's `client.tokens.create(ttl=…)` calls it.

Answers 201 with the configured TURN servers and TURN REST API credentials valid for `Ttl`
seconds (default 86400, at most 86400), in Twilio's shape: `ice_servers[]` with `url`,
`urls`, `username`, `credential`, plus the `username`/`password` pair and `ttl` as a string;
dates in RFC 2822 like every resource of the 2010-04-01 API. A server without TURN answers
an empty `ice_servers` (its clients reach the SFU directly) and null credentials.
"""

from __future__ import annotations

import email.utils
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from parlour.api.auth import authenticate
from parlour.api.forms import body_params
from parlour.domain import errors
from parlour.domain.clock import SystemClock
from parlour.domain.turn import MAX_TTL
from parlour.services.traversal import NetworkTraversal

__all__ = ["routes"]

PATH = "/2010-04-01/Accounts/{account}/Tokens.json"


def _traversal(request: Request) -> NetworkTraversal:
    traversal: NetworkTraversal | None = getattr(request.app.state, "traversal", None)
    return traversal if traversal is not None else NetworkTraversal(SystemClock())


async def create_token(request: Request) -> JSONResponse:
    """Create network traversal credentials (Twilio's NTS Token resource)"""
    account = await authenticate(request)
    named = request.path_params["account"]
    if named != account:
        raise errors.NotFoundError.for_path(f"/Accounts/{named}/Tokens.json")
    p = await body_params(request)
    ttl = p.integer("Ttl")
    if ttl is None:
        ttl = MAX_TTL
    elif not 0 < ttl <= MAX_TTL:
        raise errors.InvalidParameterError(f"Ttl must be from 1 to {MAX_TTL} seconds")
    traversal = _traversal(request)
    now = email.utils.format_datetime(traversal.clock.now().replace(microsecond=0))
    credentials = traversal.credentials(account, ttl)
    servers: list[dict[str, Any]] = []
    if credentials is not None:
        servers = [
            {
                "url": url,
                "urls": url,
                "username": credentials.username,
                "credential": credentials.password,
            }
            for url in credentials.urls
        ]
    return JSONResponse(
        {
            "account_sid": account,
            "date_created": now,
            "date_updated": now,
            "ice_servers": servers,
            "password": credentials.password if credentials else None,
            "ttl": str(ttl),
            "username": credentials.username if credentials else None,
        },
        status_code=201,
    )


routes = [Route(PATH, create_token, methods=["POST"])]
