"""Bad input gets Twilio's error (or a clear 400/413), never a 5xx, a traceback or a silent
yes; input Twilio accepts is accepted. A real server on 127.0.0.1, real HTTP and WebSocket."""

from __future__ import annotations

import time

import httpx
import pytest

from parlour.client.video import SignalingClientError, connect
from parlour.testing import ServerThread
from tests.helpers import Account, access_token, ws_url

pytestmark = pytest.mark.integration

HUGE = "9223372036854775807"


def lists(http: httpx.Client) -> list[str]:
    """Every list endpoint, with real SIDs so that the deep ones are reached."""
    room = http.post("/v1/Rooms", data={"UniqueName": f"lists-{time.monotonic_ns()}"}).json()
    base = f"/v1/Rooms/{room['sid']}"
    return [
        "/v1/Rooms",
        "/v1/Recordings",
        f"{base}/Participants",
        f"{base}/Recordings",
        f"{base}/Transcriptions",
    ]


@pytest.mark.parametrize("page", [HUGE, "-1", "1" * 5000, "1000001"])
def test_absurd_pages_are_a_400_on_every_list(http: httpx.Client, page: str) -> None:
    for path in lists(http):
        r = http.get(path, params={"Page": page})
        assert r.status_code == 400, (path, r.text)
        assert r.json()["code"] == 20001
    # The keep-alive connection is still good.
    assert http.get("/v1/Rooms").status_code == 200


@pytest.mark.parametrize(
    ("path", "code"),
    [("RecordingRules", 53120), ("Participants/nobody/SubscribeRules", None)],
)
def test_deeply_nested_rules_are_a_rules_error(
    http: httpx.Client, path: str, code: int | None
) -> None:
    room = http.post("/v1/Rooms", data={"UniqueName": f"deep-{time.monotonic_ns()}"}).json()
    rules = "[" * 50_000 + "]" * 50_000
    r = http.post(f"/v1/Rooms/{room['sid']}/{path}", data={"Rules": rules})
    if code is None:  # an unknown participant: 404 before the rules are read
        assert r.status_code == 404
    else:
        assert (r.status_code, r.json()["code"]) == (400, code)


def test_a_body_over_the_limit_is_413(http: httpx.Client) -> None:
    r = http.post("/v1/Rooms", data={"UniqueName": "big", "Pad": "x" * (2 << 20)})
    assert r.status_code == 413 and r.json()["code"] == 20001
    assert http.get("/v1/Rooms", params={"UniqueName": "big"}).json()["rooms"] == []


@pytest.mark.parametrize(
    ("form", "code"),
    [
        ({"MediaRegion": "mars1"}, 53115),
        ({"TranscriptionsConfiguration": '{"partialResults": "yes"}'}, 20001),
        ({"Type": "peer-to-peer", "TranscribeParticipantsOnConnect": "true"}, 53114),
        ({"Type": "group-small", "LargeRoom": "true"}, 53114),
        ({"Type": "peer-to-peer", "RecordParticipantsOnConnect": "true"}, 53114),
        ({"Type": "go", "RecordParticipantsOnConnect": "true"}, 53114),
    ],
)
def test_parameters_that_would_do_nothing_are_refused(
    http: httpx.Client, form: dict[str, str], code: int
) -> None:
    r = http.post("/v1/Rooms", data=form)
    assert (r.status_code, r.json()["code"]) == (400, code), r.text


def test_an_empty_unique_name_is_no_name(http: httpx.Client) -> None:
    r = http.post("/v1/Rooms", data={"UniqueName": ""})
    assert r.status_code == 201 and r.json()["unique_name"] == r.json()["sid"]


def test_unknown_participant_is_404_whatever_the_status(http: httpx.Client) -> None:
    room = http.post("/v1/Rooms", data={"UniqueName": f"p-{time.monotonic_ns()}"}).json()
    r = http.post(f"/v1/Rooms/{room['sid']}/Participants/PA{'0' * 32}", data={"Status": "bogus"})
    assert r.status_code == 404 and r.json()["code"] == 20404


def test_transcriptions_refuse_bad_input_clearly(http: httpx.Client) -> None:
    room = http.post("/v1/Rooms", data={"UniqueName": f"t-{time.monotonic_ns()}"}).json()
    link = room["links"]["transcriptions"]
    listed = http.get(link)
    assert listed.status_code == 200
    assert listed.json()["transcriptions"] == []
    assert listed.json()["meta"]["key"] == "transcriptions"
    assert http.get(f"{link}/video_transcriptions_1").json()["code"] == 20404
    for configuration in ("[1]", "{not json", '{"languageCode": 7}', '{"languageCode": "xx-YY"}'):
        r = http.post(link, data={"Configuration": configuration})
        assert (r.status_code, r.json()["code"]) == (400, 20001), configuration
    started = http.post(link, data={"Configuration": "{}"})
    assert started.status_code == 202
    again = http.post(link)
    assert again.status_code == 400 and "already started" in again.json()["message"]
    ttid = started.json()["ttid"]
    for form in ({"Status": "failed"}, {"Status": "paused"}, {}):
        r = http.post(f"{link}/{ttid}", data=form)
        assert (r.status_code, r.json()["code"]) == (400, 20001), form
    p2p = http.post("/v1/Rooms", data={"Type": "peer-to-peer"}).json()
    r = http.post(p2p["links"]["transcriptions"])
    assert (r.status_code, r.json()["code"]) == (400, 53114)
    http.post(f"/v1/Rooms/{room['sid']}", data={"Status": "completed"})
    ended = http.get(f"{link}/{ttid}").json()
    assert ended["status"] == "stopped" and ended["end_time"] is not None
    r = http.post(f"{link}/{ttid}", data={"Status": "started"})
    assert (r.status_code, r.json()["code"]) == (400, 53118)


# -- signaling ----------------------------------------------------------------------------


@pytest.mark.parametrize("identity", ["\ud800", "nul\x00", "new\nline", "del\x7f", "rtl\u202eabc"])
async def test_identities_with_invalid_characters_are_53202(
    server: ServerThread, account: Account, identity: str
) -> None:
    with pytest.raises(SignalingClientError) as err:
        await connect(ws_url(server), access_token(account, identity), name="ids", media=False)
    assert err.value.code == 53202


@pytest.mark.parametrize(
    ("claims", "code"),
    [({"ttl": 10**22}, 20104), ({"ttl": 86400 * 2}, 20104), ({"identity": "x" * 700_000}, 20101)],
)
async def test_tokens_past_the_limits_are_refused(
    server: ServerThread, account: Account, claims: dict[str, object], code: int
) -> None:
    args: dict[str, object] = {"identity": "alice"} | claims
    token = access_token(account, room="limits", **args)
    with pytest.raises(SignalingClientError) as err:
        await connect(ws_url(server), token, name="limits", media=False)
    assert err.value.code == code


async def test_a_connect_naming_no_room_gets_a_new_one(
    server: ServerThread, account: Account, http: httpx.Client
) -> None:
    first = await connect(ws_url(server), access_token(account, "a"), media=False)
    second = await connect(ws_url(server), access_token(account, "b"), media=False)
    try:
        assert first.sid != second.sid  # each its own room, named by its SID
        room = http.get(f"/v1/Rooms/{first.sid}").json()
        assert room["unique_name"] == first.sid and room["status"] == "in-progress"
    finally:
        await first.disconnect()
        await second.disconnect()


async def test_connected_reports_the_rooms_media_region(
    server: ServerThread, account: Account, http: httpx.Client
) -> None:
    http.post("/v1/Rooms", data={"UniqueName": "in-frankfurt", "MediaRegion": "de1"})
    room = await connect(
        ws_url(server), access_token(account, "a"), name="in-frankfurt", media=False
    )
    try:
        assert room.media_region == "de1"
    finally:
        await room.disconnect()
