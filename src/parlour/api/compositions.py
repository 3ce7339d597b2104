"""`/v1/Compositions`, `/v1/Compositions/{Sid}[/Media]` and `/v1/CompositionHooks[/{Sid}]`
(rest-api.md §3.10, §3.11, §11)."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from parlour.api.auth import authenticate
from parlour.api.context import ApiContext, context
from parlour.api.forms import Params, body_params, query_params
from parlour.api.pagination import list_response
from parlour.domain import errors
from parlour.domain.compositions import (
    Composition,
    CompositionFormat,
    CompositionHook,
    CompositionSpec,
    CompositionStatus,
)
from parlour.domain.layouts import LayoutError
from parlour.domain.paging import Page, PageRequest
from parlour.domain.ports import CompositionFilter, CompositionHookFilter
from parlour.domain.sids import AccountSid, RoomSid
from parlour.protocol.rest import format_date
from parlour.services.compositions import CompositionService

__all__ = ["composition_hook_json", "composition_json", "routes"]

T = TypeVar("T")
F = TypeVar("F")

_ROOM_SID = re.compile(r"^RM[0-9a-fA-F]{32}$")
_METHODS = ("GET", "POST")


def _service(ctx: ApiContext) -> CompositionService:
    service: CompositionService | None = getattr(ctx, "compositions", None)
    if service is None:
        raise errors.NotFoundError("Compositions are not available on this server")
    return service


def composition_json(ctx: ApiContext, c: Composition) -> dict[str, Any]:
    """`video.v1.composition`."""
    url = ctx.url(f"/v1/Compositions/{c.sid}")
    return {
        "account_sid": c.account_sid,
        "status": c.status.value,
        "date_created": format_date(c.date_created),
        "date_completed": format_date(c.date_completed) if c.date_completed else None,
        "date_deleted": format_date(c.date_deleted) if c.date_deleted else None,
        "sid": c.sid,
        "room_sid": c.room_sid,
        "audio_sources": list(c.spec.audio_sources),
        "audio_sources_excluded": list(c.spec.audio_sources_excluded),
        "video_layout": c.spec.layout_json(),
        "resolution": c.spec.resolution,
        "trim": c.spec.trim,
        "format": c.spec.format.value,
        "bitrate": c.bitrate,
        "size": c.size,
        "duration": c.duration,
        "media_external_location": c.media_external_location,
        "status_callback": c.status_callback,
        "status_callback_method": c.status_callback_method,
        "url": url,
        "links": {"media": f"{url}/Media"},
    }


def composition_hook_json(ctx: ApiContext, h: CompositionHook) -> dict[str, Any]:
    """`video.v1.composition_hook` (no `links`)."""
    return {
        "account_sid": h.account_sid,
        "friendly_name": h.friendly_name,
        "enabled": h.enabled,
        "date_created": format_date(h.date_created),
        "date_updated": format_date(h.date_updated) if h.date_updated else None,
        "sid": h.sid,
        "audio_sources": list(h.spec.audio_sources),
        "audio_sources_excluded": list(h.spec.audio_sources_excluded),
        "video_layout": h.spec.layout_json(),
        "resolution": h.spec.resolution,
        "trim": h.spec.trim,
        "format": h.spec.format.value,
        "status_callback": h.status_callback,
        "status_callback_method": h.status_callback_method,
        "url": ctx.url(f"/v1/CompositionHooks/{h.sid}"),
    }


def _layout(p: Params) -> Any:
    raw = p.text("VideoLayout")
    if raw is None or raw.strip() == "":
        return None
    try:
        return json.loads(raw)
    except ValueError:
        raise errors.InvalidParameterError("VideoLayout must be a JSON object") from None


def _spec(p: Params, base: CompositionSpec | None = None) -> CompositionSpec:
    """The spec from the form; for an update, what is not given keeps `base`'s value."""
    layout = _layout(p) if "VideoLayout" in p or base is None else base.video_layout
    audio = p.values("AudioSources")
    excluded = p.values("AudioSourcesExcluded")
    try:
        return CompositionSpec.checked(
            video_layout=layout,
            audio_sources=tuple(v for v in audio if v)
            if audio is not None
            else (base.audio_sources if base else ()),
            audio_sources_excluded=tuple(v for v in excluded if v)
            if excluded is not None
            else (base.audio_sources_excluded if base else ()),
            resolution=p.text("Resolution") or (base.resolution if base else None),
            format=p.choice("Format", CompositionFormat) or (base.format if base else None),
            trim=p.flag("Trim") if "Trim" in p else (base.trim if base else None),
            require_sources=base is None or "VideoLayout" in p or "AudioSources" in p,
        )
    except LayoutError as exc:
        raise errors.InvalidParameterError(str(exc)) from None


def _callback(p: Params) -> tuple[str | None, str]:
    url = p.text("StatusCallback") or None
    method = (p.text("StatusCallbackMethod") or "POST").upper()
    if method not in _METHODS:
        raise errors.InvalidParameterError("StatusCallbackMethod must be GET or POST")
    if url is not None and (len(url) > 1024 or not re.match(r"^https?://", url, re.I)):
        raise errors.InvalidParameterError("StatusCallback must be an http(s) URL")
    return url, method


# -- compositions ---------------------------------------------------------------------------


async def create_composition(request: Request) -> JSONResponse:
    account = await authenticate(request)
    ctx = context(request)
    p = await body_params(request)
    room_sid = p.text("RoomSid")
    if not room_sid:
        raise errors.InvalidParameterError("RoomSid is required")
    if not _ROOM_SID.match(room_sid):
        raise errors.InvalidParameterError(f"RoomSid is invalid: {room_sid}")
    spec = _spec(p)
    url, method = _callback(p)
    composition = await _service(ctx).create(
        account, room_sid, spec, status_callback=url, status_callback_method=method
    )
    return JSONResponse(composition_json(ctx, composition), status_code=201)


def _composition_filter(p: Params) -> CompositionFilter:
    room_sid = p.text("RoomSid")
    if room_sid is not None and not _ROOM_SID.match(room_sid):
        raise errors.InvalidParameterError(f"RoomSid is invalid: {room_sid}")
    return CompositionFilter(
        room_sid=RoomSid(room_sid) if room_sid else None,
        status=p.choice("Status", CompositionStatus),
        created_after=p.date("DateCreatedAfter"),
        created_before=p.date("DateCreatedBefore"),
    )


async def composition_media(request: Request) -> Response:
    """302 to a short-lived signed URL of the media, and the same URL as `redirect_to`."""
    account = await authenticate(request)
    ctx = context(request)
    p = query_params(request)
    path = await _service(ctx).media_url(
        account,
        request.path_params["sid"],
        ttl=p.integer("Ttl"),
        disposition=p.text("ContentDisposition"),
    )
    # A bucket's presigned URL is absolute; Parlour's own signed URLs are paths.
    target = path if path.startswith(("http://", "https://")) else ctx.url(path)
    return JSONResponse({"redirect_to": target}, status_code=302, headers={"Location": target})


# -- hooks ----------------------------------------------------------------------------------


def _friendly_name(p: Params) -> str:
    name = p.text("FriendlyName")
    if not name:
        raise errors.InvalidParameterError("FriendlyName is required")
    return name


async def create_hook(request: Request) -> JSONResponse:
    account = await authenticate(request)
    ctx = context(request)
    p = await body_params(request)
    name = _friendly_name(p)
    spec = _spec(p)
    url, method = _callback(p)
    hook = await _service(ctx).create_hook(
        account,
        name,
        spec,
        enabled=bool(p.flag("Enabled")) if "Enabled" in p else True,
        status_callback=url,
        status_callback_method=method,
    )
    return JSONResponse(composition_hook_json(ctx, hook), status_code=201)


async def update_hook(request: Request) -> JSONResponse:
    account = await authenticate(request)
    ctx = context(request)
    service = _service(ctx)
    p = await body_params(request)
    name = _friendly_name(p)
    hook = await service.get_hook(account, request.path_params["sid"])
    changes: dict[str, Any] = {"spec": _spec(p, hook.spec)}
    if "Enabled" in p:
        changes["enabled"] = bool(p.flag("Enabled"))
    if "StatusCallback" in p or "StatusCallbackMethod" in p:
        url, method = _callback(p)
        if "StatusCallback" in p:
            changes["status_callback"] = url
        changes["status_callback_method"] = method
    updated = await service.update_hook(account, hook.sid, name, changes)
    return JSONResponse(composition_hook_json(ctx, updated))


def _hook_filter(p: Params) -> CompositionHookFilter:
    return CompositionHookFilter(
        enabled=p.flag("Enabled"),
        friendly_name=p.text("FriendlyName"),
        created_after=p.date("DateCreatedAfter"),
        created_before=p.date("DateCreatedBefore"),
    )


# -- list, fetch and delete, the same for both ----------------------------------------------


@dataclass(frozen=True)
class _Kind(Generic[T, F]):
    """What the list, fetch and delete endpoints of compositions or hooks differ in."""

    key: str
    max_size: int
    filters: tuple[str, ...]
    filter_of: Callable[[Params], F]
    find: Callable[[CompositionService, AccountSid, F, PageRequest], Awaitable[Page[T]]]
    get: Callable[[CompositionService, AccountSid, str], Awaitable[T]]
    delete: Callable[[CompositionService, AccountSid, str], Awaitable[object]]
    render: Callable[[ApiContext, T], dict[str, Any]]

    async def list(self, request: Request) -> JSONResponse:
        account = await authenticate(request)
        ctx = context(request)
        p = query_params(request)
        flt = self.filter_of(p)
        service = _service(ctx)
        return await list_response(
            request,
            p,
            key=self.key,
            find=lambda req: self.find(service, account, flt, req),
            max_size=self.max_size,
            filters=self.filters,
            render=lambda item: self.render(ctx, item),
        )

    async def fetch(self, request: Request) -> JSONResponse:
        account = await authenticate(request)
        ctx = context(request)
        item = await self.get(_service(ctx), account, request.path_params["sid"])
        return JSONResponse(self.render(ctx, item))

    async def remove(self, request: Request) -> Response:
        account = await authenticate(request)
        await self.delete(_service(context(request)), account, request.path_params["sid"])
        return Response(status_code=204)


_COMPOSITIONS = _Kind(
    key="compositions",
    max_size=100,
    filters=("Status", "DateCreatedAfter", "DateCreatedBefore", "RoomSid"),
    filter_of=_composition_filter,
    find=CompositionService.find,
    get=CompositionService.get,
    delete=CompositionService.delete,
    render=composition_json,
)
_HOOKS = _Kind(
    key="composition_hooks",
    max_size=1000,
    filters=("Enabled", "DateCreatedAfter", "DateCreatedBefore", "FriendlyName"),
    filter_of=_hook_filter,
    find=CompositionService.find_hooks,
    get=CompositionService.get_hook,
    delete=CompositionService.delete_hook,
    render=composition_hook_json,
)

routes = [
    Route("/v1/Compositions", _COMPOSITIONS.list, methods=["GET"]),
    Route("/v1/Compositions", create_composition, methods=["POST"]),
    Route("/v1/Compositions/{sid}", _COMPOSITIONS.fetch, methods=["GET"]),
    Route("/v1/Compositions/{sid}", _COMPOSITIONS.remove, methods=["DELETE"]),
    Route("/v1/Compositions/{sid}/Media", composition_media, methods=["GET"]),
    Route("/v1/CompositionHooks", _HOOKS.list, methods=["GET"]),
    Route("/v1/CompositionHooks", create_hook, methods=["POST"]),
    Route("/v1/CompositionHooks/{sid}", _HOOKS.fetch, methods=["GET"]),
    Route("/v1/CompositionHooks/{sid}", update_hook, methods=["POST"]),
    Route("/v1/CompositionHooks/{sid}", _HOOKS.remove, methods=["DELETE"]),
]
