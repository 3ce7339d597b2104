"""`/sdk/twilio-video.min.js` (and `.js`): the `twilio-video` browser bundle, served by Parlour.

The bundle comes from the npm package that `scripts/install` puts in `node_modules/` (never
committed). Pages on this server can then load the unmodified SDK from the same origin as
`wsServer`. Without the package installed the route answers Twilio's 404 error body.
`/sdk/` is a blank page that loads the bundle: a place to try `Twilio.Video.connect(...)`
from the browser's console, and what the browser tests drive.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.routing import Route

from parlour.domain import errors

__all__ = ["BUNDLES", "SDK_PAGE", "default_node_modules", "find_bundle", "sdk_routes"]

#: URL file name → path of the file inside `node_modules/`.
BUNDLES = {
    "twilio-video.min.js": Path("twilio-video/dist/twilio-video.min.js"),
    "twilio-video.js": Path("twilio-video/dist/twilio-video.js"),
}

SDK_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>twilio-video on Parlour</title>
<link rel="icon" href="data:,">
<script src="/sdk/twilio-video.min.js"></script></head>
<body></body></html>
"""


def default_node_modules() -> tuple[Path, ...]:
    """Where `npm install` puts packages: the working directory, then this checkout's root."""
    checkout = Path(__file__).resolve().parents[3]  # src/parlour/api/ → repository root
    return (Path.cwd() / "node_modules", checkout / "node_modules")


def find_bundle(name: str, roots: Sequence[Path]) -> Path | None:
    """The first installed copy of bundle `name` under `roots`, if any."""
    relative = BUNDLES.get(name)
    if relative is None:
        return None
    for root in roots:
        candidate = root / relative
        if candidate.is_file():
            return candidate
    return None


def sdk_routes(node_modules: Sequence[Path] | None = None) -> list[Route]:
    """GET/HEAD `/sdk/{name}` for the bundles in `BUNDLES`, and `/sdk/` (the blank page).

    Args:
        node_modules: folders to look in, first match wins (default: `default_node_modules()`).
    """
    roots = tuple(node_modules) if node_modules is not None else default_node_modules()

    async def bundle(request: Request) -> Response:
        """The twilio-video browser SDK bundle."""
        path = find_bundle(request.path_params["name"], roots)
        if path is None:
            raise errors.NotFoundError.for_path(request.url.path)
        return FileResponse(
            path,
            media_type="text/javascript; charset=utf-8",
            headers={"Cache-Control": "public, max-age=3600"},
        )

    async def page(request: Request) -> Response:
        """A blank page that loads the twilio-video SDK."""
        return HTMLResponse(SDK_PAGE)

    return [
        Route("/sdk/", page, methods=["GET", "HEAD"]),
        Route("/sdk/{name}", bundle, methods=["GET", "HEAD"]),
    ]
