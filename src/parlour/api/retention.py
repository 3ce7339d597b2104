"""`/v1/Parlour/Retention`: the account's retention policy (a Parlour extension; Twilio
has no such resource). Also at `/v1/Parlour/Accounts/{AccountSid}/Retention`, which
answers 20404 for any account but the one the credentials open.

GET returns the policy in force (`default: true` while the account has not set one);
POST sets `IdentityDays`, `RecordingDays` and/or `CallbackDays` (whole days from 1 to
36500, or `never`). docs/privacy.md describes what each one removes.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from parlour.api.auth import authenticate
from parlour.api.context import context
from parlour.api.forms import Params, body_params
from parlour.domain import errors
from parlour.domain.sids import AccountSid
from parlour.protocol.rest import format_date
from parlour.services.retention import MAX_DAYS, Retention, RetentionService

__all__ = ["FIELDS", "retention_json", "routes"]

#: Form parameter → policy field.
FIELDS = {
    "IdentityDays": "identity_days",
    "RecordingDays": "recording_days",
    "CallbackDays": "callback_days",
}
PATH = "/v1/Parlour/Retention"


def retention_json(request: Request, retention: Retention) -> dict[str, Any]:
    return {
        "account_sid": retention.account_sid,
        **retention.as_dict(),
        "date_created": format_date(retention.date_created),
        "date_updated": format_date(retention.date_updated),
        "url": context(request).url(PATH),
    }


def _service(request: Request) -> RetentionService:
    service: RetentionService | None = getattr(request.app.state, "retention", None)
    if service is None:
        raise errors.NotFoundError.for_path(PATH)
    return service


async def _account(request: Request) -> AccountSid:
    account = await authenticate(request)
    named = request.path_params.get("account")
    if named is not None and named != account:
        raise errors.NotFoundError.for_path(f"/Parlour/Accounts/{named}/Retention")
    return account


def _days(p: Params, name: str) -> int | None:
    text = (p.text(name) or "").strip()
    if text.lower() == "never":
        return None
    try:
        days = int(text)
    except ValueError:
        raise errors.InvalidParameterError(
            f"{name} must be a whole number of days or never"
        ) from None
    if not 1 <= days <= MAX_DAYS:
        raise errors.InvalidParameterError(f"{name} must be from 1 to {MAX_DAYS} days, or never")
    return days


async def fetch_retention(request: Request) -> JSONResponse:
    """Fetch the account's retention policy (Parlour extension)"""
    account = await _account(request)
    return JSONResponse(retention_json(request, await _service(request).get(account)))


async def update_retention(request: Request) -> JSONResponse:
    """Update the account's retention policy (Parlour extension)"""
    account = await _account(request)
    p = await body_params(request)
    changes = {field: _days(p, name) for name, field in FIELDS.items() if name in p}
    retention = await _service(request).update(account, **changes)
    return JSONResponse(retention_json(request, retention))


routes = [
    Route(PATH, fetch_retention, methods=["GET"]),
    Route(PATH, update_retention, methods=["POST"]),
    Route("/v1/Parlour/Accounts/{account}/Retention", fetch_retention, methods=["GET"]),
    Route("/v1/Parlour/Accounts/{account}/Retention", update_retention, methods=["POST"]),
]
