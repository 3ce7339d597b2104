"""The REST API at the HTTP level: status codes, bodies, URLs, paging and bad input."""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
import pytest

from parlour.testing import ServerThread
from tests.helpers import Account, new_account

pytestmark = pytest.mark.integration


def test_create_is_201_update_is_202_json(http: httpx.Client) -> None:
    r = http.post("/v1/Rooms", data={"UniqueName": "codes"})
    assert r.status_code == 201
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert body["date_created"].endswith("Z") and len(body["date_created"]) == 20
    r = http.post("/v1/Rooms/codes", data={"Status": "completed"})
    assert r.status_code == 202
    assert r.json()["status"] == "completed"


def test_wrong_method_is_405(http: httpx.Client) -> None:
    r = http.delete("/v1/Rooms")
    assert r.status_code == 405
    assert r.json()["status"] == 405
    assert http.put("/v1/Rooms/RM" + "0" * 32).status_code == 405


def test_unknown_path_is_20404(http: httpx.Client) -> None:
    r = http.get("/v1/Nothing")
    assert r.status_code == 404
    assert r.json()["code"] == 20404


@pytest.mark.parametrize(
    "auth",
    [
        None,
        "Bearer abc",
        "Basic !!!notbase64",
        "Basic " + base64.b64encode(b"no-colon").decode(),
        "Basic " + base64.b64encode(b"ACnot-a-sid:token").decode(),
        "Basic " + base64.b64encode(b"SK" + b"0" * 32 + b":x").decode(),
    ],
)
def test_every_bad_credential_is_401(server: ServerThread, auth: str | None) -> None:
    headers = {"Authorization": auth} if auth else {}
    r = httpx.get(f"{server.base_url}/v1/Rooms", headers=headers)
    assert r.status_code == 401
    assert r.json() == {
        "code": 20003,
        "message": "Authenticate",
        "more_info": "https://www.twilio.com/docs/errors/20003",
        "status": 401,
    }
    assert r.headers["www-authenticate"].startswith("Basic")


def test_every_rest_path_requires_auth(server: ServerThread, http: httpx.Client) -> None:
    room = http.post("/v1/Rooms").json()["sid"]
    paths = [
        "/v1/Rooms",
        f"/v1/Rooms/{room}",
        f"/v1/Rooms/{room}/Participants",
        f"/v1/Rooms/{room}/Participants/PA{'0' * 32}",
        f"/v1/Rooms/{room}/Participants/x/PublishedTracks",
        f"/v1/Rooms/{room}/Participants/x/SubscribedTracks",
        f"/v1/Rooms/{room}/Participants/x/SubscribeRules",
        f"/v1/Rooms/{room}/RecordingRules",
    ]
    for path in paths:
        assert httpx.get(server.base_url + path).status_code == 401, path
        assert httpx.post(server.base_url + path).status_code in (401, 405), path


@pytest.mark.parametrize(
    "query",
    [
        "PageSize=0",
        "PageSize=1001",
        "PageSize=abc",
        "Page=-1",
        "PageToken=garbage",
        "Status=sleeping",
        "DateCreatedAfter=yesterday",
    ],
)
def test_bad_list_parameters_are_400(http: httpx.Client, query: str) -> None:
    r = http.get(f"/v1/Rooms?{query}")
    assert r.status_code == 400
    assert r.json()["code"] == 20001


def test_date_filters_accept_dates_and_offsets(http: httpx.Client) -> None:
    http.post("/v1/Rooms")
    for value in ("2000-01-01", "2000-01-01T00:00:00Z", "2000-01-01T00:00:00+02:00"):
        r = http.get("/v1/Rooms", params={"DateCreatedAfter": value})
        assert r.status_code == 200 and len(r.json()["rooms"]) == 1, value
    r = http.get("/v1/Rooms", params={"DateCreatedBefore": "2000-01-01"})
    assert r.json()["rooms"] == []


def test_meta_block_and_page_param(server: ServerThread, http: httpx.Client) -> None:
    sids = [http.post("/v1/Rooms").json()["sid"] for _ in range(5)]
    r = http.get("/v1/Rooms", params={"PageSize": 2, "Page": 1})
    body = r.json()
    assert [room["sid"] for room in body["rooms"]] == sids[::-1][2:4]
    meta = body["meta"]
    assert meta["key"] == "rooms" and meta["page"] == 1 and meta["page_size"] == 2
    assert meta["first_page_url"] == f"{server.base_url}/v1/Rooms?PageSize=2&Page=0"
    assert meta["url"] == f"{server.base_url}/v1/Rooms?PageSize=2&Page=1"
    assert meta["next_page_url"].startswith(f"{server.base_url}/v1/Rooms?PageSize=2&Page=2&")
    assert meta["previous_page_url"].startswith(f"{server.base_url}/v1/Rooms?PageSize=2&Page=0")
    last = http.get(meta["next_page_url"]).json()
    assert [room["sid"] for room in last["rooms"]] == sids[:1]
    assert last["meta"]["next_page_url"] is None


def test_empty_list_meta_like_twilio(server: ServerThread, http: httpx.Client) -> None:
    assert http.get("/v1/Rooms").json() == {
        "rooms": [],
        "meta": {
            "page": 0,
            "page_size": 50,
            "first_page_url": f"{server.base_url}/v1/Rooms?PageSize=50&Page=0",
            "previous_page_url": None,
            "url": f"{server.base_url}/v1/Rooms?PageSize=50&Page=0",
            "next_page_url": None,
            "key": "rooms",
        },
    }


def test_bad_bodies_get_clear_errors_and_the_server_keeps_serving(http: httpx.Client) -> None:
    r = http.post(
        "/v1/Rooms",
        content=b"UniqueName=\xff\xfe",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 400 and r.json()["code"] == 20001
    for data in (
        {"MaxParticipants": "ten"},
        {"RecordParticipantsOnConnect": "maybe"},
        {"RecordingRules": "{not json"},
        {"TranscriptionsConfiguration": "[1]"},
    ):
        r = http.post("/v1/Rooms", data=data)
        assert r.status_code == 400, data
        assert set(r.json()) == {"code", "message", "more_info", "status"}
    assert http.post("/v1/Rooms", data={"UniqueName": "still-fine"}).status_code == 201


def test_openapi_document_lists_our_paths(server: ServerThread) -> None:
    doc = httpx.get(f"{server.base_url}/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    assert {"get", "post"} <= set(doc["paths"]["/v1/Rooms"])
    assert "post" in doc["paths"]["/v1/Rooms/{RoomSid}/Participants/{Sid}/Anonymize"]
    assert doc["servers"] == [{"url": server.base_url}]


def test_public_url_is_used_in_every_url(tmp_path: Path) -> None:
    public = "https://video.example.org/parlour"
    with ServerThread(tmp_path, public_url=public + "/") as srv:
        account: Account = new_account(srv)
        with httpx.Client(base_url=srv.base_url, auth=(account.sid, account.auth_token)) as c:
            assert srv.base_url == public
            room = c.post(f"http://127.0.0.1:{srv.config.port}/v1/Rooms").json()
            assert room["url"] == f"{public}/v1/Rooms/{room['sid']}"
            assert all(v.startswith(public + "/v1/") for v in room["links"].values())
            c.post(f"http://127.0.0.1:{srv.config.port}/v1/Rooms")
            page = c.get(f"http://127.0.0.1:{srv.config.port}/v1/Rooms?PageSize=1").json()
            assert page["meta"]["next_page_url"].startswith(f"{public}/v1/Rooms?")
