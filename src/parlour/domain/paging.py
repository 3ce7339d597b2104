"""Paging requests and results, independent of storage.

Lists are paged by keyset on an internal insertion sequence: a token ``PA<seq>`` asks for
the items after `seq` in list order, ``PB<seq>`` for the items before it. Without a token,
`page * page_size` items are skipped (twilio-python's `page(page_number=…)`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Generic, TypeVar

from parlour.domain import errors

__all__ = ["Page", "PageRequest", "parse_page_token"]

T = TypeVar("T")

_TOKEN = re.compile(r"^P([AB])(\d{1,18})$")


@dataclass(frozen=True)
class PageRequest:
    page_size: int = 50
    page: int = 0
    after: int | None = None
    before: int | None = None

    @property
    def offset(self) -> int:
        return (
            0 if self.after is not None or self.before is not None else self.page * self.page_size
        )


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_token: str | None
    previous_token: str | None


def parse_page_token(token: str) -> tuple[int | None, int | None]:
    """(after, before) from a PageToken.

    Raises:
        InvalidParameterError: 20001 for a token this server did not make.
    """
    match = _TOKEN.match(token)
    if not match:
        raise errors.InvalidParameterError("PageToken is invalid")
    value = int(match.group(2))
    return (value, None) if match.group(1) == "A" else (None, value)
