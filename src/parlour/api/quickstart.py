"""The quickstart: a small video app at `/` and `/quickstart`, and its development token
endpoint.

The app is plain HTML/JS in the checkout's `web/` folder: enter a name and a room, it asks
`/quickstart/token` for an Access Token, joins with the unmodified `twilio-video` SDK that
Parlour serves at `/sdk/twilio-video.min.js`, and shows local and remote video tiles.

`GET /quickstart/token?identity=I&room=R` mints a token for the default account, signed
like `parlour token` does. It exists only in development mode (`parlour serve --dev`,
`PARLOUR_DEV=true`): anyone who can reach it can join any room. Otherwise it answers 404
and the app asks for a token minted elsewhere (`parlour token`, a backend, the helper
libraries).

`POST /quickstart/recording` (dev only too) is the app's recording switch: JSON
`{"room": "RM…", "record": true|false}` with `Authorization: Bearer <Access Token>`. The
token must be valid, allow that room, and belong to a participant connected to it; the
endpoint then replaces the room's recording rules exactly as `POST
/v1/Rooms/{RoomSid}/RecordingRules` does with the account's credentials (include all, or
exclude all), so the page never holds the account's auth token.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from parlour.api.context import context
from parlour.api.recording_rules import recording_rules_json
from parlour.domain import errors
from parlour.domain.participants import ParticipantStatus
from parlour.domain.sids import AccountSid
from parlour.protocol.tokens import TokenError

__all__ = ["ASSETS", "MAX_IDENTITY", "default_web_roots", "quickstart_routes"]

#: File names the app may load from `web/` (nothing else in that folder is served).
ASSETS = {
    "index.html": "text/html; charset=utf-8",
    "quickstart.js": "text/javascript; charset=utf-8",
    "quickstart.css": "text/css; charset=utf-8",
}
#: Twilio's limit on identities (and room names): 128 characters.
MAX_IDENTITY = 128
TOKEN_TTL = 3600
#: The recording rules the app's switch sets: everything, or nothing.
RECORD_ALL = '[{"type": "include", "all": true}]'
RECORD_NONE = '[{"type": "exclude", "all": true}]'


def default_web_roots() -> tuple[Path, ...]:
    """Where the app's files are: this checkout's `web/`, then the working directory's."""
    checkout = Path(__file__).resolve().parents[3]  # src/parlour/api/ → repository root
    return (checkout / "web", Path.cwd() / "web")


def _find(name: str, roots: Sequence[Path]) -> Path | None:
    if name not in ASSETS:
        return None
    for root in roots:
        candidate = root / name
        if candidate.is_file():
            return candidate
    return None


def quickstart_routes(*, dev: bool, web_roots: Sequence[Path] | None = None) -> list[Route]:
    """`/`, `/quickstart` (the app), `/quickstart/{asset}`, and `/quickstart/token` (dev only).

    Args:
        dev: serve the token endpoint (development mode); 404 when False.
        web_roots: folders holding the app's files, first match wins.
    """
    roots = tuple(web_roots) if web_roots is not None else default_web_roots()

    def serve(name: str, request: Request) -> Response:
        path = _find(name, roots)
        if path is None:
            raise errors.NotFoundError.for_path(request.url.path)
        return FileResponse(path, media_type=ASSETS[name], headers={"Cache-Control": "no-cache"})

    async def app(request: Request) -> Response:
        """The quickstart video app."""
        return serve("index.html", request)

    async def asset(request: Request) -> Response:
        """A file of the quickstart app."""
        return serve(request.path_params["name"], request)

    async def token(request: Request) -> Response:
        """A development Access Token for the default account (only with `--dev`)."""
        if not dev:
            raise errors.NotFoundError.for_path(request.url.path)
        identity = request.query_params.get("identity", "").strip()
        room = request.query_params.get("room", "").strip() or None
        if not identity or len(identity) > MAX_IDENTITY:
            raise errors.InvalidParameterError(
                f"identity is required and at most {MAX_IDENTITY} characters"
            )
        if room is not None and len(room) > MAX_IDENTITY:
            raise errors.InvalidParameterError(f"room is at most {MAX_IDENTITY} characters")
        jwt = await context(request).accounts.mint_token(identity, room=room, ttl=TOKEN_TTL)
        base = str(request.base_url).rstrip("/")
        ws_server = base.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
        return JSONResponse(
            {
                "identity": identity,
                "room": room,
                "token": jwt,
                "ttl": TOKEN_TTL,
                "ws_server": ws_server + "/signaling",
            },
            headers={"Cache-Control": "no-store"},
        )

    async def recording(request: Request) -> Response:
        """Start or stop recording a room, for a participant in it (only with `--dev`)."""
        if not dev:
            raise errors.NotFoundError.for_path(request.url.path)
        scheme, _, bearer = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not bearer.strip():
            raise errors.AuthenticationError()
        ctx = context(request)
        try:
            claims = await ctx.accounts.verify_access_token(bearer.strip())
        except TokenError:
            raise errors.AuthenticationError() from None
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise errors.InvalidParameterError('the body is JSON {"room": "RM…", "record": true}')
        room_id, record = body.get("room"), body.get("record")
        if not isinstance(room_id, str) or not room_id or not isinstance(record, bool):
            raise errors.InvalidParameterError('the body is JSON {"room": "RM…", "record": true}')
        account = AccountSid(claims.account_sid)
        room = await ctx.rooms.get(account, room_id)
        granted = claims.video.room if claims.video is not None else None
        if granted is not None and granted not in (room.sid, room.unique_name):
            raise errors.ForbiddenError("The Access Token does not allow this room")
        identity = claims.identity or ""
        try:
            participant = await ctx.participants.get(room, identity)
        except errors.NotFoundError:
            participant = None
        if participant is None or participant.status is not ParticipantStatus.CONNECTED:
            raise errors.ForbiddenError("Only a participant connected to the room may do this")
        rules = RECORD_ALL if record else RECORD_NONE
        updated = await ctx.rooms.update_recording_rules(account, room.sid, rules)
        return JSONResponse(recording_rules_json(updated), headers={"Cache-Control": "no-store"})

    return [
        Route("/", app, methods=["GET", "HEAD"]),
        Route("/quickstart", app, methods=["GET", "HEAD"]),
        Route("/quickstart/token", token, methods=["GET"]),
        Route("/quickstart/recording", recording, methods=["POST"]),
        Route("/quickstart/{name}", asset, methods=["GET", "HEAD"]),
    ]
