"""`…/Participants/{ParticipantSid}/PublishedTracks[/{Sid}]` and `…/SubscribedTracks[/{Sid}]`.

Both read-only; a subscribed track is served by its MT SID only.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from parlour.api.context import ApiContext
from parlour.api.forms import query_params
from parlour.api.pagination import list_response
from parlour.api.participants import room_of
from parlour.domain.paging import Page, PageRequest
from parlour.domain.participants import Participant
from parlour.domain.rooms import Room
from parlour.domain.tracks import PublishedTrack, SubscribedTrack
from parlour.protocol.rest import format_date
from parlour.services.participants import ParticipantService

__all__ = ["routes", "track_json", "track_routes"]

T = TypeVar("T", PublishedTrack, SubscribedTrack)


def track_json(
    ctx: ApiContext, t: PublishedTrack | SubscribedTrack, collection: str
) -> dict[str, Any]:
    """The fields of a track resource under `…/Participants/{sid}/{collection}`."""
    out: dict[str, Any] = {"sid": t.sid, "participant_sid": t.participant_sid}
    if isinstance(t, SubscribedTrack):
        out["publisher_sid"] = t.publisher_sid
    return out | {
        "room_sid": t.room_sid,
        "name": t.name,
        "date_created": format_date(t.date_created),
        "date_updated": format_date(t.date_updated),
        "enabled": t.enabled,
        "kind": t.kind.value,
        "url": ctx.url(
            f"/v1/Rooms/{t.room_sid}/Participants/{t.participant_sid}/{collection}/{t.sid}"
        ),
    }


def track_routes(
    collection: str,
    key: str,
    *,
    find: Callable[
        [ParticipantService, Room, str, PageRequest], Awaitable[tuple[Participant, Page[T]]]
    ],
    get: Callable[[ParticipantService, Room, str, str], Awaitable[T]],
) -> list[Route]:
    """The read-only list and fetch routes of a participant's `collection` of tracks."""

    async def list_tracks(request: Request) -> JSONResponse:
        ctx, room = await room_of(request)

        async def page(req: PageRequest) -> Page[T]:
            _, tracks = await find(ctx.participants, room, request.path_params["participant"], req)
            return tracks

        return await list_response(
            request,
            query_params(request),
            key=key,
            find=page,
            render=lambda t: track_json(ctx, t, collection),
        )

    async def fetch_track(request: Request) -> JSONResponse:
        ctx, room = await room_of(request)
        track = await get(
            ctx.participants, room, request.path_params["participant"], request.path_params["sid"]
        )
        return JSONResponse(track_json(ctx, track, collection))

    base = f"/v1/Rooms/{{room}}/Participants/{{participant}}/{collection}"
    return [
        Route(base, list_tracks, methods=["GET"]),
        Route(base + "/{sid}", fetch_track, methods=["GET"]),
    ]


routes = [
    *track_routes(
        "PublishedTracks",
        "published_tracks",
        find=ParticipantService.published_tracks,
        get=ParticipantService.published_track,
    ),
    *track_routes(
        "SubscribedTracks",
        "subscribed_tracks",
        find=ParticipantService.subscribed_tracks,
        get=ParticipantService.subscribed_track,
    ),
]
