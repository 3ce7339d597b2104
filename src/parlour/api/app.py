"""The REST application: the routes table, error mapping, and `/openapi.json`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from parlour import __version__
from parlour.api import (
    compositions,
    credentials,
    media_downloads,
    media_settings,
    participants,
    quickstart,
    recording_rules,
    recordings,
    retention,
    room_recordings,
    rooms,
    sdk_assets,
    subscribe_rules,
    tokens,
    tracks,
    transcriptions,
)
from parlour.api.context import ApiContext
from parlour.api.errors import (
    http_exception_handler,
    twilio_error_handler,
    unexpected_error_handler,
)
from parlour.api.openapi import openapi_paths
from parlour.domain.errors import TwilioError

__all__ = ["build_api", "openapi_document"]

REST_ROUTES: list[Route] = [
    *rooms.routes,
    *participants.routes,
    *tracks.routes,
    *subscribe_rules.routes,
    *recording_rules.routes,
    *transcriptions.routes,
    *room_recordings.routes,
    *recordings.routes,
    *compositions.routes,
    *media_downloads.routes,
    *retention.routes,
    *media_settings.routes,
    *credentials.routes,
]


def openapi_document(routes: Sequence[Route], server_url: str) -> dict[str, Any]:
    """An OpenAPI 3 description of the routes this server actually serves."""
    paths = openapi_paths(routes)
    return {
        "openapi": "3.0.1",
        "info": {
            "title": "Parlour Video v1 REST API",
            "version": __version__,
            "description": "Twilio Programmable Video v1 compatible REST API.",
        },
        "servers": [{"url": server_url}],
        "components": {"securitySchemes": {"basic": {"type": "http", "scheme": "basic"}}},
        "paths": paths,
    }


def build_api(
    ctx: ApiContext,
    *,
    extra_routes: Sequence[BaseRoute] = (),
    lifespan: Callable[[Starlette], AbstractAsyncContextManager[None]] | None = None,
    dev: bool = False,
) -> Starlette:
    """The ASGI app for the REST API (plus whatever other routes the root adds).

    `dev` turns on the quickstart's development token endpoint (`parlour serve --dev`).
    """
    document = openapi_document(REST_ROUTES, ctx.public_url)

    async def openapi(request: Request) -> JSONResponse:
        return JSONResponse(document)

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "version": __version__})

    app = Starlette(
        routes=[
            *REST_ROUTES,
            Route("/openapi.json", openapi, methods=["GET"]),
            Route("/healthz", health, methods=["GET"]),
            *sdk_assets.sdk_routes(),
            *quickstart.quickstart_routes(dev=dev),
            *tokens.routes,  # Twilio's Network Traversal Service (2010-04-01 API, not Video v1)
            *extra_routes,
        ],
        exception_handlers={
            TwilioError: twilio_error_handler,
            HTTPException: http_exception_handler,
            Exception: unexpected_error_handler,
        },
        lifespan=lifespan,
    )
    app.state.api = ctx
    return app
