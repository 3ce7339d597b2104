"""Status callbacks on the wire: rest-api.md §8.4 test vectors, twilio-python's validator
agreeing with us on any input, Twilio's parameter names and order, and request shapes."""

from __future__ import annotations

import datetime as dt
from urllib.parse import parse_qsl, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator

from parlour.protocol import webhooks as wire

TOKEN = "12345678901234567890123456789012"
URL = "https://example.com/video/status"
VECTOR_PARAMS = {
    "AccountSid": "AC00000000000000000000000000000000",
    "RoomName": "DailyStandup",
    "RoomSid": "RM22222222222222222222222222222222",
    "RoomStatus": "in-progress",
    "RoomType": "group",
    "StatusCallbackEvent": "room-created",
    "Timestamp": "2023-11-14T22:13:20.000Z",
    "SequenceNumber": "0",
}
VECTOR_STRING = (
    "https://example.com/video/statusAccountSidAC00000000000000000000000000000000"
    "RoomNameDailyStandupRoomSidRM22222222222222222222222222222222RoomStatusin-progress"
    "RoomTypegroupSequenceNumber0StatusCallbackEventroom-createdTimestamp"
    "2023-11-14T22:13:20.000Z"
)
VECTOR_POST_SIGNATURE = "Opu75PgFcLtDnaU+7/YHwPVDFh0="
VECTOR_GET_URL = (
    "https://example.com/video/status?AccountSid=AC00000000000000000000000000000000"
    "&RoomName=DailyStandup&RoomSid=RM22222222222222222222222222222222&RoomStatus=in-progress"
    "&RoomType=group&StatusCallbackEvent=room-created&Timestamp=2023-11-14T22%3A13%3A20.000Z"
    "&SequenceNumber=0"
)
VECTOR_GET_SIGNATURE = "rDbfK/48+j/bLqOJUFNsxtQr+8E="


# -- X-Twilio-Signature -------------------------------------------------------------------


def test_post_vector() -> None:
    assert wire._signed_string(URL, VECTOR_PARAMS) == VECTOR_STRING
    assert wire.compute_signature(TOKEN, URL, VECTOR_PARAMS) == VECTOR_POST_SIGNATURE
    assert wire.validate_signature(TOKEN, URL, VECTOR_PARAMS, VECTOR_POST_SIGNATURE)


def test_get_vector_signs_the_url_alone() -> None:
    assert wire.compute_signature(TOKEN, VECTOR_GET_URL) == VECTOR_GET_SIGNATURE
    assert wire.validate_signature(TOKEN, VECTOR_GET_URL, {}, VECTOR_GET_SIGNATURE)


def test_prepare_request_reproduces_the_vectors() -> None:
    callback = wire.RoomStatusCallback.parse(VECTOR_PARAMS)
    post = wire.prepare_request("POST", URL, callback.to_params(), TOKEN)
    assert post.headers[wire.SIGNATURE_HEADER] == VECTOR_POST_SIGNATURE
    assert post.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert dict(parse_qsl(post.body.decode())) == VECTOR_PARAMS
    get = wire.prepare_request("get", URL, VECTOR_PARAMS.items(), TOKEN)
    assert (get.method, get.url, get.body) == ("GET", VECTOR_GET_URL, b"")
    assert get.headers[wire.SIGNATURE_HEADER] == VECTOR_GET_SIGNATURE
    assert "Content-Type" not in get.headers


def test_default_port_variants_validate_and_others_do_not() -> None:
    sig = VECTOR_POST_SIGNATURE
    assert wire.validate_signature(
        TOKEN, "https://example.com:443/video/status", VECTOR_PARAMS, sig
    )
    assert not wire.validate_signature(TOKEN, "https://example.com:8443/video/status", {}, sig)
    plain = wire.compute_signature(TOKEN, "http://u:p@example.com/x")
    assert wire.validate_signature(TOKEN, "http://u:p@example.com:80/x", {}, plain)
    assert not wire.validate_signature(TOKEN, URL, VECTOR_PARAMS, "AAAA" + sig[4:])
    assert not wire.validate_signature("another-token", URL, VECTOR_PARAMS, sig)
    assert not wire.validate_signature(TOKEN, URL, {**VECTOR_PARAMS, "RoomName": "x"}, sig)


def test_repeated_names_and_values_count_once_in_sorted_order() -> None:
    pairs = [("b", "2"), ("a", "z"), ("a", "y"), ("a", "z")]
    assert wire._signed_string("u", pairs) == "uayazb2"


text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)


@given(
    path=st.text(st.sampled_from("abc/-_"), max_size=10),
    port=st.sampled_from(["", ":443", ":8443"]),
    params=st.dictionaries(
        st.text(st.characters(min_codepoint=33, blacklist_categories=("Cs",)), min_size=1), text
    ),
    token=text.filter(bool),
)
def test_twilio_request_validator_accepts_what_we_sign(
    path: str, port: str, params: dict[str, str], token: str
) -> None:
    url = f"https://hooks.example.com{port}/{path}"
    signature = wire.compute_signature(token, url, params)
    assert RequestValidator(token).validate(url, params, signature)
    assert wire.validate_signature(token, url, params, signature)


@given(params=st.lists(st.tuples(st.sampled_from("ab"), text), max_size=6))
def test_get_requests_validate_with_twilio(params: list[tuple[str, str]]) -> None:
    request = wire.prepare_request("GET", "http://127.0.0.1:9/cb?k=v%20w", params, TOKEN)
    assert request.url.startswith("http://127.0.0.1:9/cb?k=v%20w")
    query = parse_qsl(urlsplit(request.url).query, keep_blank_values=True)
    assert query[1:] == params
    assert RequestValidator(TOKEN).validate(request.url, {}, request.headers["X-Twilio-Signature"])


# -- parameters ---------------------------------------------------------------------------


def test_timestamp_is_utc_with_milliseconds() -> None:
    t = dt.datetime(2025, 10, 27, 18, 16, 1, 876543, tzinfo=dt.UTC)
    assert wire.format_timestamp(t) == "2025-10-27T18:16:01.876Z"
    east = dt.datetime(2025, 10, 27, 20, 16, 1, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert wire.format_timestamp(east) == "2025-10-27T18:16:01.000Z"


PARTICIPANT_CONNECTED = wire.RoomStatusCallback(
    account_sid="AC" + "0" * 32,
    room_sid="RM" + "1" * 32,
    room_name="Daily standup",
    room_status="in-progress",
    room_type="group",
    event="participant-connected",
    timestamp="2025-10-27T18:16:01.876Z",
    sequence_number=1,
    participant_sid="PA" + "2" * 32,
    participant_status="connected",
    participant_identity="Alice Smith",
)


def test_participant_connected_matches_twilios_observed_body() -> None:
    request = wire.prepare_request("POST", URL, PARTICIPANT_CONNECTED.to_params(), TOKEN)
    # rest-api.md §8.1: a real body, parameter order as Twilio sent it.
    assert request.body.decode() == (
        "RoomStatus=in-progress&RoomType=group&RoomSid=RM" + "1" * 32
        + "&RoomName=Daily%20standup&ParticipantStatus=connected"
        "&ParticipantIdentity=Alice%20Smith&SequenceNumber=1"
        "&StatusCallbackEvent=participant-connected&Timestamp=2025-10-27T18%3A16%3A01.876Z"
        "&ParticipantSid=PA" + "2" * 32 + "&AccountSid=AC" + "0" * 32
    )  # fmt: skip


@pytest.mark.parametrize(
    ("event", "extra", "names"),
    [
        ("room-created", {}, set()),
        ("room-ended", {"room_duration": 42}, {"RoomDuration"}),
        ("participant-connected", {"participant": True}, {"Participant*"}),
        (
            "participant-disconnected",
            {"participant": True, "participant_duration": 7},
            {"Participant*", "ParticipantDuration"},
        ),
        ("track-added", {"participant": True, "track": True}, {"Participant*", "Track*"}),
        ("track-removed", {"participant": True, "track": True}, {"Participant*", "Track*"}),
        ("track-enabled", {"participant": True, "track": True}, {"Participant*", "Track*"}),
        ("track-disabled", {"participant": True, "track": True}, {"Participant*", "Track*"}),
    ],
)
def test_each_event_has_exactly_its_parameters(
    event: str, extra: dict[str, object], names: set[str]
) -> None:
    fields: dict[str, object] = {}
    if extra.pop("participant", False):
        fields |= {
            "participant_sid": "PA" + "2" * 32,
            "participant_status": "connected",
            "participant_identity": "alice",
        }
    if extra.pop("track", False):
        fields |= {"track_sid": "MT" + "3" * 32, "track_kind": "audio", "track_name": "mic"}
    callback = wire.RoomStatusCallback(
        account_sid="AC" + "0" * 32,
        room_sid="RM" + "1" * 32,
        room_name="r",
        room_status="in-progress",
        room_type="group",
        event=event,
        timestamp="2025-10-27T18:16:01.876Z",
        sequence_number=3,
        **fields,  # type: ignore[arg-type]
        **extra,  # type: ignore[arg-type]
    )
    params = dict(callback.to_params())
    expected = {
        "AccountSid",
        "RoomName",
        "RoomSid",
        "RoomStatus",
        "RoomType",
        "StatusCallbackEvent",
        "Timestamp",
        "SequenceNumber",
    }
    if "Participant*" in names:
        expected |= {"ParticipantSid", "ParticipantStatus", "ParticipantIdentity"}
    if "Track*" in names:
        expected |= {"TrackSid", "TrackKind", "TrackName"}
    expected |= names - {"Participant*", "Track*"}
    assert set(params) == expected
    assert params["StatusCallbackEvent"] == event and params["SequenceNumber"] == "3"
    assert wire.RoomStatusCallback.parse(params) == callback


@pytest.mark.parametrize(
    "change",
    [
        {"event": "room-exploded"},
        {"sequence_number": -1},
        {"participant_sid": None},
        {"event": "room-created"},
        {"event": "track-added"},
        {"participant_duration": 3},
        {"event": "room-ended", "participant_sid": None, "participant_status": None,
         "participant_identity": None},
        {"event": "participant-disconnected"},
        {"track_name": "mic"},
    ],
)  # fmt: skip
def test_inconsistent_callbacks_are_refused(change: dict[str, object]) -> None:
    values = vars(PARTICIPANT_CONNECTED) | change
    with pytest.raises(ValueError):
        wire.RoomStatusCallback(**values)


def test_parse_needs_every_common_parameter() -> None:
    params = dict(PARTICIPANT_CONNECTED.to_params())
    del params["RoomType"]
    with pytest.raises(ValueError, match="RoomType"):
        wire.RoomStatusCallback.parse(params)
    with pytest.raises(ValueError):
        wire.RoomStatusCallback.parse(
            {**dict(PARTICIPANT_CONNECTED.to_params()), "SequenceNumber": "x"}
        )


def test_post_drops_a_fragment_and_only_get_and_post_exist() -> None:
    request = wire.prepare_request("POST", URL + "?a=1#frag", {}, TOKEN, idempotency_token="t")
    assert request.url == URL + "?a=1"
    assert request.headers[wire.IDEMPOTENCY_HEADER] == "t"
    assert RequestValidator(TOKEN).validate(request.url, {}, request.headers[wire.SIGNATURE_HEADER])
    with pytest.raises(ValueError):
        wire.prepare_request("PUT", URL, {}, TOKEN)


def test_naive_timestamps_are_taken_as_utc() -> None:
    assert wire.format_timestamp(dt.datetime(2024, 1, 2, 3, 4, 5, 6000)) == (
        "2024-01-02T03:04:05.006Z"
    )


def test_urls_without_a_default_port_validate_as_given() -> None:
    signature = wire.compute_signature(TOKEN, "ws://example.com/x")
    assert wire.validate_signature(TOKEN, "ws://example.com/x", {}, signature)
