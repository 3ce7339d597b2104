"""`/sdk/…`: the twilio-video bundle from node_modules, the blank SDK page, Twilio 404s."""

from __future__ import annotations

from pathlib import Path

import httpx
from starlette.applications import Starlette

from parlour.api.errors import twilio_error_handler
from parlour.api.sdk_assets import SDK_PAGE, default_node_modules, sdk_routes
from parlour.domain.errors import TwilioError

BUNDLE = b"/*! twilio-video.js 2.36.0 */ window.Twilio = {Video: {}};"


def app_with(roots: list[Path]) -> httpx.AsyncClient:
    app = Starlette(
        routes=sdk_routes(roots), exception_handlers={TwilioError: twilio_error_handler}
    )
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://parlour")


def install_bundle(root: Path) -> Path:
    dist = root / "node_modules" / "twilio-video" / "dist"
    dist.mkdir(parents=True)
    (dist / "twilio-video.min.js").write_bytes(BUNDLE)
    return root / "node_modules"


async def test_bundle_is_served_from_the_first_node_modules_that_has_it(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    installed = install_bundle(tmp_path / "checkout")
    async with app_with([empty / "node_modules", installed]) as client:
        response = await client.get("/sdk/twilio-video.min.js")
        head = await client.head("/sdk/twilio-video.min.js")
    assert response.status_code == 200
    assert response.content == BUNDLE
    assert response.headers["content-type"] == "text/javascript; charset=utf-8"
    assert head.status_code == 200 and head.content == b""


async def test_missing_bundle_is_a_twilio_404(tmp_path: Path) -> None:
    async with app_with([tmp_path / "node_modules"]) as client:
        missing = await client.get("/sdk/twilio-video.min.js")
        unknown = await client.get("/sdk/other.js")
    for response, path in ((missing, "/sdk/twilio-video.min.js"), (unknown, "/sdk/other.js")):
        assert response.status_code == 404
        body = response.json()
        assert body["code"] == 20404 and body["status"] == 404
        assert path in body["message"]


async def test_sdk_page_loads_the_bundle_from_parlour(tmp_path: Path) -> None:
    async with app_with([tmp_path]) as client:
        response = await client.get("/sdk/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.text == SDK_PAGE
    assert '<script src="/sdk/twilio-video.min.js"></script>' in response.text


def test_default_locations_are_cwd_then_this_checkout() -> None:
    cwd, checkout = default_node_modules()
    assert cwd == Path.cwd() / "node_modules"
    assert (checkout.parent / "pyproject.toml").is_file()
