"""`/v1/Recordings`, `/v1/Recordings/{Sid}` and its `/Media` redirect."""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from parlour.api.auth import authenticate
from parlour.api.context import ApiContext, context
from parlour.api.forms import Params, query_params
from parlour.api.pagination import list_response
from parlour.domain import errors
from parlour.domain.ports import RecordingFilter
from parlour.domain.recordings import Recording, RecordingStatus, RecordingType
from parlour.domain.sids import AccountSid, RoomSid
from parlour.protocol.rest import format_date

__all__ = [
    "media_redirect",
    "recording_fields",
    "recording_filter",
    "recording_json",
    "routes",
]

_ANY_SID = re.compile(r"^[a-zA-Z]{2}[0-9a-fA-F]{32}$")


def recording_fields(ctx: ApiContext, r: Recording) -> dict[str, Any]:
    """The fields a Recording and a Room Recording share."""
    return {
        "account_sid": r.account_sid,
        "status": r.status.value,
        "date_created": format_date(r.date_created),
        "sid": r.sid,
        "source_sid": r.source_sid,
        "size": r.size,
        "type": r.type.value,
        "duration": r.duration,
        "container_format": r.container_format.value,
        "codec": r.codec.value,
        "grouping_sids": r.grouping_sids,
        "track_name": r.track_name,
        "offset": r.offset,
        "media_external_location": r.media_external_location,
    }


def recording_json(ctx: ApiContext, r: Recording) -> dict[str, Any]:
    """`video.v1.recording`: no `room_sid`, with the status callback."""
    url = ctx.url(f"/v1/Recordings/{r.sid}")
    return recording_fields(ctx, r) | {
        "status_callback": r.status_callback,
        "status_callback_method": r.status_callback_method,
        "url": url,
        "links": {"media": f"{url}/Media"},
    }


def _sid_param(value: str, name: str) -> str:
    if not _ANY_SID.match(value):
        raise errors.InvalidParameterError(f"{name} is invalid: {value}")
    return value


def recording_filter(params: Params, *, room_sid: RoomSid | None = None) -> RecordingFilter:
    """The list filters of both Recording lists (`GroupingSid`/`MediaType`: global only)."""
    source = params.text("SourceSid")
    return RecordingFilter(
        room_sid=room_sid,
        status=params.choice("Status", RecordingStatus),
        source_sid=_sid_param(source, "SourceSid") if source is not None else None,
        grouping_sids=tuple(
            _sid_param(v, "GroupingSid") for v in (params.values("GroupingSid") or ())
        ),
        media_type=params.choice("MediaType", RecordingType),
        created_after=params.date("DateCreatedAfter"),
        created_before=params.date("DateCreatedBefore"),
    )


async def media_redirect(
    request: Request, account: AccountSid, sid: str, room_sid: RoomSid | None = None
) -> Response:
    """302 to a short-lived signed URL, with the same URL as JSON `redirect_to` (§10.3)."""
    ctx = context(request)
    p = query_params(request)
    path = await ctx.recording_service.media_url(
        account,
        sid,
        room_sid=room_sid,
        ttl=p.integer("Ttl"),
        disposition=p.text("ContentDisposition"),
    )
    # A bucket's presigned URL is absolute; Parlour's own signed URLs are paths.
    target = path if path.startswith(("http://", "https://")) else ctx.url(path)
    return JSONResponse({"redirect_to": target}, status_code=302, headers={"Location": target})


async def list_recordings(request: Request) -> JSONResponse:
    """List of all Track recordings."""
    account = await authenticate(request)
    ctx = context(request)
    p = query_params(request)
    flt = recording_filter(p)
    return await list_response(
        request,
        p,
        key="recordings",
        find=lambda req: ctx.recording_service.find(account, flt, req),
        max_size=100,
        filters=(
            "Status",
            "SourceSid",
            "GroupingSid",
            "DateCreatedAfter",
            "DateCreatedBefore",
            "MediaType",
        ),
        render=lambda r: recording_json(ctx, r),
    )


async def fetch_recording(request: Request) -> JSONResponse:
    """Returns a single Recording resource identified by a Recording SID."""
    account = await authenticate(request)
    ctx = context(request)
    recording = await ctx.recording_service.get(account, request.path_params["sid"])
    return JSONResponse(recording_json(ctx, recording))


async def delete_recording(request: Request) -> Response:
    """Delete a Recording's media; the resource stays with status `deleted`."""
    account = await authenticate(request)
    await context(request).recording_service.delete(account, request.path_params["sid"])
    return Response(status_code=204)


async def recording_media(request: Request) -> Response:
    """Redirect (302) to a temporary URL of the recording's media file."""
    account = await authenticate(request)
    return await media_redirect(request, account, request.path_params["sid"])


routes = [
    Route("/v1/Recordings", list_recordings, methods=["GET"]),
    Route("/v1/Recordings/{sid}", fetch_recording, methods=["GET"]),
    Route("/v1/Recordings/{sid}", delete_recording, methods=["DELETE"]),
    Route("/v1/Recordings/{sid}/Media", recording_media, methods=["GET"]),
]
