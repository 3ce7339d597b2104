"""`/media/{AccountSid}/{RT…}.{mka|mkv}` and `…/{CJ…}.{mp4|webm}`: the signed, short-lived
URLs `/Media` redirects to (recordings and compositions).

No Basic auth: the signature (`parlour.protocol.media_urls`) is the credential, as with the
pre-signed S3 URLs Twilio redirects to. Serves the bytes with HTTP range support
(RFC 9110 §14: one range per request; several ranges get the whole file).
"""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from parlour.api.context import context
from parlour.api.forms import query_params
from parlour.services.compositions import CompositionMedia
from parlour.services.recordings import MediaFile

__all__ = ["parse_range", "routes"]

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


class RangeNotSatisfiable(Exception):
    pass


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(first, last) byte of a `Range: bytes=…` header, or None to send everything.

    Raises:
        RangeNotSatisfiable: the range starts past the end of the file.
    """
    if not header or "," in header:
        return None
    match = _RANGE.match(header.strip().replace(" ", ""))
    if match is None:
        return None  # unparsable or another unit: ignore it (RFC 9110 §14.2)
    first_text, last_text = match.groups()
    if not first_text:
        if not last_text:
            return None
        suffix = int(last_text)
        if suffix == 0:
            raise RangeNotSatisfiable
        return max(0, size - suffix), size - 1
    first = int(first_text)
    if last_text and int(last_text) < first:
        return None  # invalid: ignored
    if first >= size:
        raise RangeNotSatisfiable
    last = int(last_text) if last_text else size - 1
    return first, min(last, size - 1)


async def download(request: Request) -> Response:
    """A recording's media file, by signed URL (no credentials)."""
    ctx = context(request)
    p = query_params(request)
    name = request.path_params["name"]
    media: MediaFile | CompositionMedia
    if name.startswith("CJ") and ctx.compositions is not None:
        media = await ctx.compositions.open_media(
            request.path_params["account"],
            name,
            expires=p.text("Expires"),
            disposition=p.text("ContentDisposition"),
            signature=p.text("Signature"),
        )
    else:
        media = await ctx.recording_service.open_media(
            request.path_params["account"],
            name,
            expires=p.text("Expires"),
            disposition=p.text("ContentDisposition"),
            signature=p.text("Signature"),
        )
    headers = {
        "Accept-Ranges": "bytes",
        "Content-Disposition": media.content_disposition,
        "Cache-Control": "private, no-transform",
        **media.headers,
    }
    try:
        selected = parse_range(request.headers.get("range"), media.size)
    except RangeNotSatisfiable:
        headers["Content-Range"] = f"bytes */{media.size}"
        return Response(status_code=416, headers=headers, media_type=media.content_type)
    if selected is None:
        status, start, length = 200, 0, media.size
    else:
        first, last = selected
        status, start, length = 206, first, last - first + 1
        headers["Content-Range"] = f"bytes {first}-{last}/{media.size}"
    headers["Content-Length"] = str(length)
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers, media_type=media.content_type)
    return StreamingResponse(
        media.chunks(start, length),
        status_code=status,
        headers=headers,
        media_type=media.content_type,
    )


routes = [Route("/media/{account}/{name}", download, methods=["GET", "HEAD"])]
