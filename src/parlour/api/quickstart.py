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
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from parlour.api.context import context
from parlour.domain import errors

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

    return [
        Route("/", app, methods=["GET", "HEAD"]),
        Route("/quickstart", app, methods=["GET", "HEAD"]),
        Route("/quickstart/token", token, methods=["GET"]),
        Route("/quickstart/{name}", asset, methods=["GET", "HEAD"]),
    ]
