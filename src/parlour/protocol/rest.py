"""REST wire shapes shared by the server and the SDK: dates and the paging `meta` block."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any
from urllib.parse import urlencode

__all__ = ["format_date", "page_meta", "parse_date_filter"]

_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def format_date(value: dt.datetime | None) -> str | None:
    """`YYYY-MM-DDTHH:MM:SSZ`, the only form twilio-python parses into a datetime."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_date_filter(text: str) -> dt.datetime:
    """Parse a `DateCreatedAfter`/`Before` value: `YYYY-MM-DD`, `…THH:MM:SSZ` or `…±hh:mm`.

    Raises:
        ValueError: if it is none of those.
    """
    text = text.strip()
    if _DATE_ONLY.match(text):
        return dt.datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=dt.UTC)
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    value = dt.datetime.fromisoformat(text)
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def page_meta(
    *,
    base_url: str,
    key: str,
    filters: list[tuple[str, str]],
    page: int,
    page_size: int,
    page_token: str | None,
    next_token: str | None,
    previous_token: str | None,
) -> dict[str, Any]:
    """The Video v1 paging envelope; every URL absolute on our own public base URL."""

    def url(pg: int, token: str | None) -> str:
        query = [*filters, ("PageSize", str(page_size)), ("Page", str(pg))]
        if token is not None:
            query.append(("PageToken", token))
        return f"{base_url}?{urlencode(query)}"

    return {
        "page": page,
        "page_size": page_size,
        "first_page_url": url(0, None),
        "previous_page_url": (
            url(page - 1, previous_token) if page > 0 and previous_token is not None else None
        ),
        "url": url(page, page_token),
        "next_page_url": url(page + 1, next_token) if next_token is not None else None,
        "key": key,
    }
