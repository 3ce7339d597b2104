"""Parsing Twilio's form-encoded PascalCase parameters (bodies and query strings)."""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Callable
from typing import TypeVar
from urllib.parse import parse_qsl

from starlette.requests import Request

from parlour.domain import errors
from parlour.protocol.rest import parse_date_filter

__all__ = ["Params", "body_params", "query_params"]

ErrorFactory = Callable[[str], errors.TwilioError]
E = TypeVar("E", bound=enum.Enum)


def _invalid(message: str) -> errors.TwilioError:
    return errors.InvalidParameterError(message)


class Params:
    """Repeated-key parameters, as Twilio's helper libraries send them."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self.pairs = pairs
        self._map: dict[str, list[str]] = {}
        for key, value in pairs:
            self._map.setdefault(key, []).append(value)

    def __contains__(self, name: str) -> bool:
        return name in self._map

    def text(self, name: str) -> str | None:
        values = self._map.get(name)
        return values[-1] if values else None

    def values(self, name: str) -> list[str] | None:
        return self._map.get(name)

    def flag(self, name: str, error: ErrorFactory = _invalid) -> bool | None:
        value = self.text(name)
        if value is None:
            return None
        lowered = value.strip().lower()
        if lowered in ("true", "1"):
            return True
        if lowered in ("false", "0"):
            return False
        raise error(f"{name} must be true or false")

    def integer(self, name: str, error: ErrorFactory = _invalid) -> int | None:
        value = self.text(name)
        if value is None:
            return None
        try:
            return int(value.strip())
        except ValueError:
            raise error(f"{name} must be an integer") from None

    def choice(self, name: str, kind: type[E]) -> E | None:
        """One of the values of the enum `kind` (None when absent)."""
        value = self.text(name)
        if value is None:
            return None
        try:
            return kind(value)
        except ValueError:
            raise errors.InvalidParameterError(f"{name} is invalid: {value}") from None

    def date(self, name: str) -> dt.datetime | None:
        value = self.text(name)
        if value is None:
            return None
        try:
            return parse_date_filter(value)
        except (ValueError, OverflowError):  # OverflowError: out of range once in UTC
            raise errors.InvalidParameterError(
                f"{name} must be a date (YYYY-MM-DD) or ISO 8601 date-time"
            ) from None

    def filters(self, *names: str) -> list[tuple[str, str]]:
        """The given filters as sent (for paging URLs), in request order."""
        return [(k, v) for k, v in self.pairs if k in names]


def query_params(request: Request) -> Params:
    return Params(parse_qsl(request.url.query, keep_blank_values=True))


#: The largest request body accepted (the largest legitimate one, a `Rules` document, is a
#: few kB); a larger one is refused with 413 before it is all read.
MAX_BODY = 1 << 20


async def body_params(request: Request) -> Params:
    """A form-encoded body (also accepted without the Content-Type header).

    Raises:
        RequestTooLargeError: 413 for a body over `MAX_BODY` bytes.
    """
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        raise errors.RequestTooLargeError(f"Request body larger than {MAX_BODY} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise errors.RequestTooLargeError(f"Request body larger than {MAX_BODY} bytes")
        chunks.append(chunk)
    body = b"".join(chunks)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise errors.InvalidParameterError("Request body must be UTF-8") from None
    return Params(parse_qsl(text, keep_blank_values=True))
