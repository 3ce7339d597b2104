"""HTTP Basic auth with `AC…:auth_token` or `SK…:secret`."""

from __future__ import annotations

import base64
import binascii

from starlette.requests import Request

from parlour.api.context import context
from parlour.domain import errors
from parlour.domain.sids import AccountSid

__all__ = ["authenticate"]


async def authenticate(request: Request) -> AccountSid:
    """The account a request's credentials open.

    Raises:
        AuthenticationError: 401 / 20003 when they are missing or wrong.
    """
    header = request.headers.get("authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        raise errors.AuthenticationError()
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise errors.AuthenticationError() from None
    username, sep, password = decoded.partition(":")
    if not sep:
        raise errors.AuthenticationError()
    return await context(request).accounts.authenticate(username, password)
