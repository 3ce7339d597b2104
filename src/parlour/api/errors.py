"""TwilioError → Twilio's legacy JSON error body, in one place.

``{"code": 20404, "message": "...", "more_info": "https://www.twilio.com/docs/errors/20404",
"status": 404}``. Never `type`+`title`, so twilio-python raises `TwilioRestException`.
"""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Match, Route

from parlour.domain import errors

__all__ = ["http_exception_handler", "twilio_error_handler", "unexpected_error_handler"]

log = logging.getLogger(__name__)


def error_response(exc: errors.TwilioError) -> JSONResponse:
    headers = {}
    if isinstance(exc, errors.AuthenticationError):
        headers["WWW-Authenticate"] = 'Basic realm="Twilio API"'
    return JSONResponse(
        {
            "code": exc.code,
            "message": exc.message,
            "more_info": exc.more_info,
            "status": exc.status,
        },
        status_code=exc.status,
        headers=headers,
    )


async def twilio_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, errors.TwilioError)
    return error_response(exc)


async def http_exception_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return error_response(errors.NotFoundError.for_path(request.url.path))
    if exc.status_code == 405:
        response = error_response(errors.MethodNotAllowedError())
        response.headers["Allow"] = ", ".join(allowed_methods(request))
        return response
    err = errors.TwilioError(str(exc.detail), code=exc.status_code)
    err.status = exc.status_code
    return error_response(err)


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path (RFC 9110 §15.5.6 wants them in `Allow`;
    Starlette names only those of the first route that matched the path)."""
    methods: set[str] = set()
    for route in request.app.routes:
        if isinstance(route, Route) and route.methods:
            match, _ = route.matches({**request.scope, "method": "GET"})
            if match != Match.NONE:
                methods |= route.methods
    return sorted(methods)


async def unexpected_error_handler(request: Request, exc: Exception) -> Response:
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(errors.TwilioError())
