"""`/v1/Rooms/{RoomSid}/Transcriptions[/{Ttid}]`: Parlour has no transcriptions yet.

Every room links to this resource, as on Twilio, so it answers: the list is empty (a
Twilio page with `meta`), a `Ttid` is not found, and starting one is refused with a clear
message instead of a silent yes.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from parlour.api.forms import query_params
from parlour.api.pagination import page_request, page_response
from parlour.api.participants import room_of
from parlour.domain import errors
from parlour.domain.paging import Page

__all__ = ["routes"]

NOT_AVAILABLE = "Transcriptions are not available on this server yet"


async def list_transcriptions(request: Request) -> JSONResponse:
    await room_of(request)  # 20404 for a room this account does not have
    p = query_params(request)
    req = page_request(p)
    empty: Page[object] = Page(items=[], next_token=None, previous_token=None)
    return page_response(
        request,
        key="transcriptions",
        page=empty,
        req=req,
        params=p,
        filters=(),
        render=lambda _: {},
    )


async def fetch_transcription(request: Request) -> JSONResponse:
    _, room = await room_of(request)
    ttid = request.path_params["ttid"]
    raise errors.NotFoundError.for_path(f"/Rooms/{room.sid}/Transcriptions/{ttid}")


async def create_transcription(request: Request) -> JSONResponse:
    await room_of(request)
    raise errors.InvalidParameterError(NOT_AVAILABLE)


_BASE = "/v1/Rooms/{room}/Transcriptions"
routes = [
    Route(_BASE, list_transcriptions, methods=["GET"]),
    Route(_BASE, create_transcription, methods=["POST"]),
    Route(_BASE + "/{ttid}", fetch_transcription, methods=["GET", "POST"]),
]
