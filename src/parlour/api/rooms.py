"""`/v1/Rooms` and `/v1/Rooms/{Sid}`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from parlour.api.auth import authenticate
from parlour.api.context import ApiContext, context
from parlour.api.forms import body_params, query_params
from parlour.api.pagination import list_response
from parlour.domain import errors
from parlour.domain.ports import RoomFilter
from parlour.domain.rooms import Room, RoomSpec, RoomStatus
from parlour.protocol.rest import format_date

__all__ = ["room_json", "routes"]


def room_json(ctx: ApiContext, room: Room) -> dict[str, Any]:
    base = f"/v1/Rooms/{room.sid}"
    return {
        "sid": room.sid,
        "status": room.status.value,
        "date_created": format_date(room.date_created),
        "date_updated": format_date(room.date_updated),
        "account_sid": room.account_sid,
        "enable_turn": True,
        "unique_name": room.unique_name,
        "status_callback": room.status_callback,
        "status_callback_method": room.status_callback_method,
        "end_time": format_date(room.end_time),
        "duration": room.duration,
        "type": room.type.value,
        "max_participants": room.max_participants,
        "max_participant_duration": room.max_participant_duration,
        "max_concurrent_published_tracks": room.max_concurrent_published_tracks,
        "record_participants_on_connect": room.record_participants_on_connect,
        "video_codecs": list(room.video_codecs),
        "media_region": room.media_region,
        "audio_only": room.audio_only,
        "empty_room_timeout": room.empty_room_timeout,
        "unused_room_timeout": room.unused_room_timeout,
        "large_room": room.large_room,
        "url": ctx.url(base),
        "links": {
            "participants": ctx.url(f"{base}/Participants"),
            "recordings": ctx.url(f"{base}/Recordings"),
            "transcriptions": ctx.url(f"{base}/Transcriptions"),
            "recording_rules": ctx.url(f"{base}/RecordingRules"),
        },
    }


def _room_error(code: errors.Code) -> Callable[[str], errors.TwilioError]:
    """How an out-of-range integer parameter is refused: a `RoomError` with `code`."""
    return lambda message: errors.RoomError(message, code=code)


async def create_room(request: Request) -> JSONResponse:
    account = await authenticate(request)
    ctx = context(request)
    p = await body_params(request)
    timeout_error = _room_error(errors.Code.ROOM_TIMEOUT_OUT_OF_RANGE)
    spec = RoomSpec(
        unique_name=p.text("UniqueName"),
        type=p.text("Type"),
        status_callback=p.text("StatusCallback"),
        status_callback_method=p.text("StatusCallbackMethod"),
        max_participants=p.integer(
            "MaxParticipants", _room_error(errors.Code.ROOM_MAX_PARTICIPANTS_OUT_OF_RANGE)
        ),
        record_participants_on_connect=p.flag("RecordParticipantsOnConnect"),
        transcribe_participants_on_connect=p.flag("TranscribeParticipantsOnConnect"),
        video_codecs=p.values("VideoCodecs"),
        media_region=p.text("MediaRegion"),
        recording_rules=p.text("RecordingRules"),
        transcriptions_configuration=p.text("TranscriptionsConfiguration"),
        audio_only=p.flag("AudioOnly"),
        max_participant_duration=p.integer("MaxParticipantDuration", timeout_error),
        empty_room_timeout=p.integer("EmptyRoomTimeout", timeout_error),
        unused_room_timeout=p.integer("UnusedRoomTimeout", timeout_error),
        large_room=p.flag("LargeRoom"),
    )
    p.flag("EnableTurn")  # deprecated, always true; still rejects a non-boolean
    room = await ctx.rooms.create(account, spec)
    return JSONResponse(room_json(ctx, room), status_code=201)


async def list_rooms(request: Request) -> JSONResponse:
    account = await authenticate(request)
    ctx = context(request)
    p = query_params(request)
    flt = RoomFilter(
        status=p.choice("Status", RoomStatus) or RoomStatus.IN_PROGRESS,
        unique_name=p.text("UniqueName"),
        created_after=p.date("DateCreatedAfter"),
        created_before=p.date("DateCreatedBefore"),
    )
    return await list_response(
        request,
        p,
        key="rooms",
        find=lambda req: ctx.rooms.find(account, flt, req),
        filters=("Status", "UniqueName", "DateCreatedAfter", "DateCreatedBefore"),
        render=lambda r: room_json(ctx, r),
    )


async def fetch_room(request: Request) -> JSONResponse:
    account = await authenticate(request)
    ctx = context(request)
    room = await ctx.rooms.get(account, request.path_params["sid"])
    return JSONResponse(room_json(ctx, room))


async def update_room(request: Request) -> JSONResponse:
    account = await authenticate(request)
    ctx = context(request)
    p = await body_params(request)
    room = await ctx.rooms.update_status(
        account, request.path_params["sid"], p.text("Status") or ""
    )
    return JSONResponse(room_json(ctx, room), status_code=202)


routes = [
    Route("/v1/Rooms", list_rooms, methods=["GET"]),
    Route("/v1/Rooms", create_room, methods=["POST"]),
    Route("/v1/Rooms/{sid}", fetch_room, methods=["GET"]),
    Route("/v1/Rooms/{sid}", update_room, methods=["POST"]),
]
