"""`…/Participants/{ParticipantSid}/SubscribeRules` (singleton; no `url`)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from parlour.api.forms import body_params
from parlour.api.participants import room_of
from parlour.domain.participants import Participant
from parlour.domain.rules import DEFAULT_SUBSCRIBE_RULES, rules_to_json
from parlour.protocol.rest import format_date

__all__ = ["routes", "subscribe_rules_json"]


def subscribe_rules_json(p: Participant) -> dict[str, Any]:
    rules = p.subscribe_rules if p.subscribe_rules is not None else DEFAULT_SUBSCRIBE_RULES
    return {
        "participant_sid": p.sid,
        "room_sid": p.room_sid,
        "date_created": format_date(p.subscribe_rules_created),
        "date_updated": format_date(p.subscribe_rules_updated),
        "rules": rules_to_json(rules, kind="subscribe"),
    }


async def fetch_rules(request: Request) -> JSONResponse:
    ctx, room = await room_of(request)
    participant = await ctx.participants.subscribe_rules(room, request.path_params["participant"])
    return JSONResponse(subscribe_rules_json(participant))


async def update_rules(request: Request) -> JSONResponse:
    ctx, room = await room_of(request)
    p = await body_params(request)
    participant = await ctx.participants.update_subscribe_rules(
        room, request.path_params["participant"], p.text("Rules")
    )
    return JSONResponse(subscribe_rules_json(participant))


_PATH = "/v1/Rooms/{room}/Participants/{participant}/SubscribeRules"
routes = [
    Route(_PATH, fetch_rules, methods=["GET"]),
    Route(_PATH, update_rules, methods=["POST"]),
]
