"""`/v1/Rooms/{RoomSid}/Participants[/{Sid}]` and `…/Anonymize`."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from parlour.api.auth import authenticate
from parlour.api.context import ApiContext, context
from parlour.api.forms import body_params, query_params
from parlour.api.pagination import list_response
from parlour.domain.participants import Participant, ParticipantStatus
from parlour.domain.ports import ParticipantFilter
from parlour.domain.rooms import Room
from parlour.protocol.rest import format_date

__all__ = ["participant_json", "room_of", "routes"]


def participant_json(ctx: ApiContext, p: Participant, *, anonymize: bool = False) -> dict[str, Any]:
    base = f"/v1/Rooms/{p.room_sid}/Participants/{p.sid}"
    out: dict[str, Any] = {
        "sid": p.sid,
        "room_sid": p.room_sid,
        "account_sid": p.account_sid,
        "status": p.status.value,
        "identity": p.identity,
        "date_created": format_date(p.date_created),
        "date_updated": format_date(p.date_updated),
        "start_time": format_date(p.start_time),
        "end_time": format_date(p.end_time),
        "duration": p.duration,
        "url": ctx.url(f"{base}/Anonymize" if anonymize else base),
    }
    if not anonymize:
        out["links"] = {
            "published_tracks": ctx.url(f"{base}/PublishedTracks"),
            "subscribed_tracks": ctx.url(f"{base}/SubscribedTracks"),
            "subscribe_rules": ctx.url(f"{base}/SubscribeRules"),
            "anonymize": ctx.url(f"{base}/Anonymize"),
        }
    return out


async def room_of(request: Request) -> tuple[ApiContext, Room]:
    """Authenticate and find the room named in the path (SID or in-progress UniqueName)."""
    account = await authenticate(request)
    ctx = context(request)
    return ctx, await ctx.rooms.get(account, request.path_params["room"])


async def list_participants(request: Request) -> JSONResponse:
    ctx, room = await room_of(request)
    p = query_params(request)
    status = p.choice("Status", ParticipantStatus)
    flt = ParticipantFilter(
        statuses=(status,) if status is not None else None,
        identity=p.text("Identity"),
        created_after=p.date("DateCreatedAfter"),
        created_before=p.date("DateCreatedBefore"),
    )
    return await list_response(
        request,
        p,
        key="participants",
        find=lambda req: ctx.participants.find(room, flt, req),
        filters=("Status", "Identity", "DateCreatedAfter", "DateCreatedBefore"),
        render=lambda x: participant_json(ctx, x),
    )


async def fetch_participant(request: Request) -> JSONResponse:
    ctx, room = await room_of(request)
    participant = await ctx.participants.get(room, request.path_params["sid"])
    return JSONResponse(participant_json(ctx, participant))


async def update_participant(request: Request) -> JSONResponse:
    ctx, room = await room_of(request)
    p = await body_params(request)
    participant = await ctx.participants.update_status(
        room, request.path_params["sid"], p.text("Status")
    )
    return JSONResponse(participant_json(ctx, participant), status_code=202)


async def anonymize_participant(request: Request) -> JSONResponse:
    ctx, room = await room_of(request)
    participant = await ctx.participants.anonymize(room, request.path_params["sid"])
    return JSONResponse(participant_json(ctx, participant, anonymize=True))


routes = [
    Route("/v1/Rooms/{room}/Participants", list_participants, methods=["GET"]),
    Route("/v1/Rooms/{room}/Participants/{sid}", fetch_participant, methods=["GET"]),
    Route("/v1/Rooms/{room}/Participants/{sid}", update_participant, methods=["POST"]),
    Route("/v1/Rooms/{room}/Participants/{sid}/Anonymize", anonymize_participant, methods=["POST"]),
]
