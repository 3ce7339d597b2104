"""Twilio paging: `PageSize`/`Page`/`PageToken` in, `meta` out."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import JSONResponse

from parlour.api.context import context
from parlour.api.forms import Params
from parlour.domain import errors
from parlour.domain.paging import Page, PageRequest, parse_page_token
from parlour.protocol.rest import page_meta

__all__ = ["list_response", "page_request", "page_response"]

T = TypeVar("T")

#: The largest `Page` (with `PageSize` up to 1000, at most 10^9 items are skipped); deeper
#: lists are read with the `PageToken`s of `meta.next_page_url`, as Twilio's libraries do.
MAX_PAGE = 1_000_000


def page_request(params: Params, *, max_size: int = 1000) -> PageRequest:
    """Parse paging parameters (PageSize 1–max_size, default 50; Page 0–MAX_PAGE)."""
    size = params.integer("PageSize")
    if size is None:
        size = 50
    if not 1 <= size <= max_size:
        raise errors.InvalidParameterError(f"PageSize must be between 1 and {max_size}")
    page = params.integer("Page") or 0
    if not 0 <= page <= MAX_PAGE:
        raise errors.InvalidParameterError(f"Page must be between 0 and {MAX_PAGE}")
    after = before = None
    token = params.text("PageToken")
    if token:
        after, before = parse_page_token(token)
    return PageRequest(page_size=size, page=page, after=after, before=before)


def page_response(
    request: Request,
    *,
    key: str,
    page: Page[T],
    req: PageRequest,
    params: Params,
    filters: Sequence[str],
    render: Callable[[T], dict[str, Any]],
) -> JSONResponse:
    ctx = context(request)
    meta = page_meta(
        base_url=ctx.url(request.url.path),
        key=key,
        filters=params.filters(*filters),
        page=req.page,
        page_size=req.page_size,
        page_token=params.text("PageToken") or None,
        next_token=page.next_token,
        previous_token=page.previous_token,
    )
    return JSONResponse({key: [render(item) for item in page.items], "meta": meta})


async def list_response(
    request: Request,
    params: Params,
    *,
    key: str,
    find: Callable[[PageRequest], Awaitable[Page[T]]],
    render: Callable[[T], dict[str, Any]],
    filters: Sequence[str] = (),
    max_size: int = 1000,
) -> JSONResponse:
    """A list endpoint: parse the paging parameters, `find` that page, and render it."""
    req = page_request(params, max_size=max_size)
    page = await find(req)
    return page_response(
        request, key=key, page=page, req=req, params=params, filters=filters, render=render
    )
