"""`/v1/Rooms/{RoomSid}/Transcriptions[/{Ttid}]`: a room's real-time transcriptions.

Create (202) starts transcribing every participant's audio with a `Configuration` (a JSON
object: `languageCode`, `partialResults`, …); update (202) sets `Status` to `stopped` or
`started` again; list and fetch show the resources. The text goes to the participants that
connected with `receiveTranscriptions: true` (services/transcriptions.py).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from parlour.api.context import ApiContext
from parlour.api.forms import body_params, query_params
from parlour.api.pagination import list_response
from parlour.api.participants import room_of
from parlour.domain import errors
from parlour.domain.transcriptions import Transcription, parse_configuration
from parlour.protocol.rest import format_date
from parlour.services.transcriptions import TranscriptionService

__all__ = ["routes", "transcription_json"]


def transcription_json(ctx: ApiContext, t: Transcription) -> dict[str, Any]:
    return {
        "ttid": t.ttid,
        "account_sid": t.account_sid,
        "room_sid": t.room_sid,
        "source_sid": None,  # a Call's SID on Twilio; rooms here have no calls
        "status": t.status.value,
        "date_created": format_date(t.date_created),
        "date_updated": format_date(t.date_updated),
        "start_time": format_date(t.start_time),
        "end_time": format_date(t.end_time),
        "duration": t.duration,
        "configuration": t.configuration,
        "url": ctx.url(f"/v1/Rooms/{t.room_sid}/Transcriptions/{t.ttid}"),
    }


def _service(ctx: ApiContext) -> TranscriptionService:
    if ctx.transcriptions is None:
        raise errors.NotFoundError("Transcriptions are not available on this server")
    return ctx.transcriptions


async def list_transcriptions(request: Request) -> JSONResponse:
    ctx, room = await room_of(request)
    service = _service(ctx)
    p = query_params(request)
    return await list_response(
        request,
        p,
        key="transcriptions",
        find=lambda req: service.list(room, req),
        render=lambda t: transcription_json(ctx, t),
    )


async def fetch_transcription(request: Request) -> JSONResponse:
    ctx, room = await room_of(request)
    found = await _service(ctx).get(room, request.path_params["ttid"])
    return JSONResponse(transcription_json(ctx, found))


async def create_transcription(request: Request) -> JSONResponse:
    ctx, room = await room_of(request)
    p = await body_params(request)
    text = p.text("Configuration")
    # Without one, the room's TranscriptionsConfiguration (Twilio: "default settings").
    configuration = (
        parse_configuration(text)
        if text is not None
        else dict(room.transcriptions_configuration or {})
    )
    created = await _service(ctx).create(room, configuration)
    return JSONResponse(transcription_json(ctx, created), status_code=202)


async def update_transcription(request: Request) -> JSONResponse:
    ctx, room = await room_of(request)
    p = await body_params(request)
    text = p.text("Configuration")
    configuration = None if text is None else parse_configuration(text)
    status = p.text("Status")
    if status is None and configuration is None:
        raise errors.InvalidParameterError("Status or Configuration is required")
    updated = await _service(ctx).update(room, request.path_params["ttid"], status, configuration)
    return JSONResponse(transcription_json(ctx, updated), status_code=202)


_BASE = "/v1/Rooms/{room}/Transcriptions"
routes = [
    Route(_BASE, list_transcriptions, methods=["GET"]),
    Route(_BASE, create_transcription, methods=["POST"]),
    Route(_BASE + "/{ttid}", fetch_transcription, methods=["GET"]),
    Route(_BASE + "/{ttid}", update_transcription, methods=["POST"]),
]
