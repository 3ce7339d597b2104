"""`/v1/Rooms/{RoomSid}/RecordingRules` (singleton; no `url`)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from parlour.api.auth import authenticate
from parlour.api.context import context
from parlour.api.forms import body_params
from parlour.domain.rooms import Room
from parlour.domain.rules import rules_to_json
from parlour.protocol.rest import format_date

__all__ = ["recording_rules_json", "routes"]


def recording_rules_json(room: Room) -> dict[str, Any]:
    return {
        "room_sid": room.sid,
        "date_created": format_date(room.date_created),
        "date_updated": format_date(room.recording_rules_updated),
        "rules": rules_to_json(room.recording_rules, kind="recording"),
    }


async def fetch_rules(request: Request) -> JSONResponse:
    account = await authenticate(request)
    room = await context(request).rooms.get(account, request.path_params["room"])
    return JSONResponse(recording_rules_json(room))


async def update_rules(request: Request) -> JSONResponse:
    account = await authenticate(request)
    p = await body_params(request)
    room = await context(request).rooms.update_recording_rules(
        account, request.path_params["room"], p.text("Rules")
    )
    return JSONResponse(recording_rules_json(room))


routes = [
    Route("/v1/Rooms/{room}/RecordingRules", fetch_rules, methods=["GET"]),
    Route("/v1/Rooms/{room}/RecordingRules", update_rules, methods=["POST"]),
]
