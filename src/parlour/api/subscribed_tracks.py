"""`…/Participants/{ParticipantSid}/SubscribedTracks[/{Sid}]` (read-only, MT SIDs only)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from parlour.api.context import ApiContext
from parlour.api.forms import query_params
from parlour.api.pagination import page_request, page_response
from parlour.api.participants import room_of
from parlour.domain.tracks import SubscribedTrack
from parlour.protocol.rest import format_date

__all__ = ["routes", "subscribed_track_json"]


def subscribed_track_json(ctx: ApiContext, t: SubscribedTrack) -> dict[str, Any]:
    return {
        "sid": t.sid,
        "participant_sid": t.participant_sid,
        "publisher_sid": t.publisher_sid,
        "room_sid": t.room_sid,
        "name": t.name,
        "date_created": format_date(t.date_created),
        "date_updated": format_date(t.date_updated),
        "enabled": t.enabled,
        "kind": t.kind.value,
        "url": ctx.url(
            f"/v1/Rooms/{t.room_sid}/Participants/{t.participant_sid}/SubscribedTracks/{t.sid}"
        ),
    }


async def list_subscribed(request: Request) -> JSONResponse:
    ctx, room = await room_of(request)
    p = query_params(request)
    req = page_request(p)
    _, page = await ctx.participants.subscribed_tracks(
        room, request.path_params["participant"], req
    )
    return page_response(
        request,
        key="subscribed_tracks",
        page=page,
        req=req,
        params=p,
        filters=(),
        render=lambda t: subscribed_track_json(ctx, t),
    )


async def fetch_subscribed(request: Request) -> JSONResponse:
    ctx, room = await room_of(request)
    track = await ctx.participants.subscribed_track(
        room, request.path_params["participant"], request.path_params["sid"]
    )
    return JSONResponse(subscribed_track_json(ctx, track))


_BASE = "/v1/Rooms/{room}/Participants/{participant}/SubscribedTracks"
routes = [
    Route(_BASE, list_subscribed, methods=["GET"]),
    Route(_BASE + "/{sid}", fetch_subscribed, methods=["GET"]),
]
