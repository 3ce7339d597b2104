"""`/v1/Rooms/{RoomSid}/Recordings[/{Sid}]` and its `/Media` redirect."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from parlour.api.context import ApiContext
from parlour.api.forms import query_params
from parlour.api.pagination import list_response
from parlour.api.participants import room_of
from parlour.api.recordings import media_redirect, recording_fields, recording_filter
from parlour.domain.recordings import Recording

__all__ = ["room_recording_json", "routes"]


def room_recording_json(ctx: ApiContext, r: Recording) -> dict[str, Any]:
    """`video.v1.room.room_recording`: with `room_sid`, no status callback."""
    url = ctx.url(f"/v1/Rooms/{r.room_sid}/Recordings/{r.sid}")
    return recording_fields(ctx, r) | {
        "room_sid": r.room_sid,
        "url": url,
        "links": {"media": f"{url}/Media"},
    }


async def list_room_recordings(request: Request) -> JSONResponse:
    """The recordings of a room."""
    ctx, room = await room_of(request)
    p = query_params(request)
    flt = recording_filter(p, room_sid=room.sid)
    return await list_response(
        request,
        p,
        key="recordings",
        find=lambda req: ctx.recording_service.find(room.account_sid, flt, req),
        filters=("Status", "SourceSid", "DateCreatedAfter", "DateCreatedBefore"),
        render=lambda r: room_recording_json(ctx, r),
    )


async def fetch_room_recording(request: Request) -> JSONResponse:
    """One recording of a room."""
    ctx, room = await room_of(request)
    recording = await ctx.recording_service.get(
        room.account_sid, request.path_params["sid"], room_sid=room.sid
    )
    return JSONResponse(room_recording_json(ctx, recording))


async def delete_room_recording(request: Request) -> Response:
    """Delete a room recording's media; the resource stays with status `deleted`."""
    ctx, room = await room_of(request)
    await ctx.recording_service.delete(
        room.account_sid, request.path_params["sid"], room_sid=room.sid
    )
    return Response(status_code=204)


async def room_recording_media(request: Request) -> Response:
    """Redirect (302) to a temporary URL of the room recording's media file."""
    ctx, room = await room_of(request)
    return await media_redirect(request, room.account_sid, request.path_params["sid"], room.sid)


_BASE = "/v1/Rooms/{room}/Recordings"
routes = [
    Route(_BASE, list_room_recordings, methods=["GET"]),
    Route(_BASE + "/{sid}", fetch_room_recording, methods=["GET"]),
    Route(_BASE + "/{sid}", delete_room_recording, methods=["DELETE"]),
    Route(_BASE + "/{sid}/Media", room_recording_media, methods=["GET"]),
]
