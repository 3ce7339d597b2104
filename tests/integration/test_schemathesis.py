"""Schemathesis against the server's own `/openapi.json`, with real resources behind the paths.

A real server gets a room with two participants (one publishing audio and video, one
subscribed to them), a completed room with two finished recordings, and the SIDs, unique
names and identities of all of them are mixed into the generated path parameters, so the
generated requests reach the deep paths (tracks, rules, recordings, `/Media`) and not only
their 404s. Every operation gets Schemathesis's examples, coverage and fuzzing phases
(`MAX_EXAMPLES` fuzzed cases each, a fixed seed) with Basic auth, and each answer is checked:
never a 5xx, only documented status codes, the declared content types and headers, the
declared JSON shapes, and no answer without credentials but 401.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ensure_resource_availability,
    ignored_auth,
    missing_required_header,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
    use_after_free,
)

from parlour.domain.paging import PageRequest
from parlour.domain.participants import Participant
from parlour.domain.sids import AccountSid
from parlour.domain.tracks import TrackKind
from parlour.testing import ServerThread
from tests.helpers import Account, new_account
from tests.integration.recording_support import feed, media_packets, publish, wait_until

pytestmark = [pytest.mark.integration]

MAX_EXAMPLES = 15
SEED = 20_240_512
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    ignored_auth,
    unsupported_method,
    negative_data_rejection,
    missing_required_header,
    use_after_free,
    ensure_resource_availability,
]


@dataclass
class World:
    """Real resources, by the path parameter names of `/openapi.json`."""

    account: Account
    #: (method, path) → parameter → values to mix into what Schemathesis generates.
    values: dict[tuple[str, str], dict[str, list[str]]]
    #: The same for query parameters (a real signed media URL's).
    query: dict[tuple[str, str], dict[str, list[str]]]


def _build_world(server: ServerThread) -> World:
    account = new_account(server)
    auth = (account.sid, account.auth_token)
    with httpx.Client(base_url=server.base_url, auth=auth) as http:
        live = http.post("/v1/Rooms", data={"UniqueName": "fuzz-live"}).json()
        spare = http.post("/v1/Rooms", data={"UniqueName": "fuzz-spare"}).json()
        recorded = http.post(
            "/v1/Rooms", data={"UniqueName": "fuzz-rec", "RecordParticipantsOnConnect": "true"}
        ).json()
    services = server.parlour

    async def people() -> tuple[Participant, Participant, Participant, list[str], str]:
        room = await services.rooms.get(AccountSid(account.sid), live["sid"])
        alice = await services.participants.join(room, "alice")
        bob = await services.participants.join(room, "bob")
        carol = await services.participants.join(room, "carol")
        tracks = [
            await services.participants.publish(room, alice, "mic", TrackKind.AUDIO),
            await services.participants.publish(room, alice, "cam", TrackKind.VIDEO),
        ]
        for track in tracks:
            await services.participants.subscribe(bob, track)
        _, page = await services.participants.subscribed_tracks(room, bob.sid, PageRequest())
        return alice, bob, carol, [t.sid for t in tracks], page.items[0].sid

    alice, bob, carol, published, subscribed = server.call(people())

    rec_tracks = publish(
        server, account.sid, recorded["sid"], "dave", [("mic", "OPUS"), ("mic2", "OPUS")]
    )
    streams = [(t.tap, media_packets("OPUS", 0.5, ssrc=7000 + i)) for i, t in enumerate(rec_tracks)]
    feed(server, streams, realtime=False)  # type: ignore[arg-type]
    with httpx.Client(base_url=server.base_url, auth=auth) as http:
        http.post(f"/v1/Rooms/{recorded['sid']}", data={"Status": "completed"})

        def recordings() -> list[str] | None:
            page = http.get("/v1/Recordings", params={"Status": "completed"}).json()
            sids = [r["sid"] for r in page["recordings"]]
            return sids if len(sids) == 2 else None

        kept, doomed = sorted(wait_until(recordings))

    rooms = [live["sid"], "fuzz-live", recorded["sid"]]
    participants = [alice.sid, "alice", bob.sid, "bob"]
    room_part = {"RoomSid": rooms[:2], "ParticipantSid": participants}
    values: dict[tuple[str, str], dict[str, list[str]]] = {
        ("GET", "/v1/Rooms/{Sid}"): {"Sid": rooms},
        # Ending a room: the spare one, so that the live room stays live for the others.
        ("POST", "/v1/Rooms/{Sid}"): {"Sid": [spare["sid"], "fuzz-spare"]},
        ("GET", "/v1/Rooms/{RoomSid}/Participants"): {"RoomSid": rooms},
        ("GET", "/v1/Rooms/{RoomSid}/Participants/{Sid}"): {
            "RoomSid": rooms[:2],
            "Sid": participants,
        },
        # Disconnecting and anonymizing: carol only.
        ("POST", "/v1/Rooms/{RoomSid}/Participants/{Sid}"): {
            "RoomSid": rooms[:2],
            "Sid": [carol.sid, "carol"],
        },
        ("POST", "/v1/Rooms/{RoomSid}/Participants/{Sid}/Anonymize"): {
            "RoomSid": rooms[:2],
            "Sid": [carol.sid, "carol"],
        },
        ("GET", "/v1/Rooms/{RoomSid}/Participants/{ParticipantSid}/PublishedTracks"): room_part,
        ("GET", "/v1/Rooms/{RoomSid}/Participants/{ParticipantSid}/PublishedTracks/{Sid}"): {
            **room_part,
            "Sid": [*published, "mic", "cam"],
        },
        ("GET", "/v1/Rooms/{RoomSid}/Participants/{ParticipantSid}/SubscribedTracks"): room_part,
        ("GET", "/v1/Rooms/{RoomSid}/Participants/{ParticipantSid}/SubscribedTracks/{Sid}"): {
            **room_part,
            "Sid": [subscribed, *published],
        },
        ("GET", "/v1/Rooms/{RoomSid}/Participants/{ParticipantSid}/SubscribeRules"): room_part,
        ("POST", "/v1/Rooms/{RoomSid}/Participants/{ParticipantSid}/SubscribeRules"): room_part,
        ("GET", "/v1/Rooms/{RoomSid}/RecordingRules"): {"RoomSid": rooms},
        ("POST", "/v1/Rooms/{RoomSid}/RecordingRules"): {"RoomSid": rooms},
        ("GET", "/v1/Rooms/{RoomSid}/Transcriptions"): {"RoomSid": rooms},
        ("POST", "/v1/Rooms/{RoomSid}/Transcriptions"): {"RoomSid": rooms},
        ("GET", "/v1/Rooms/{RoomSid}/Transcriptions/{Ttid}"): {"RoomSid": rooms},
        ("POST", "/v1/Rooms/{RoomSid}/Transcriptions/{Ttid}"): {"RoomSid": rooms},
        ("GET", "/v1/Rooms/{RoomSid}/Recordings"): {"RoomSid": [recorded["sid"], live["sid"]]},
        ("GET", "/v1/Rooms/{RoomSid}/Recordings/{Sid}"): {
            "RoomSid": [recorded["sid"]],
            "Sid": [kept, doomed],
        },
        ("GET", "/v1/Rooms/{RoomSid}/Recordings/{Sid}/Media"): {
            "RoomSid": [recorded["sid"]],
            "Sid": [kept],
        },
        # Deleting: one recording only, so that the other keeps its media.
        ("DELETE", "/v1/Rooms/{RoomSid}/Recordings/{Sid}"): {
            "RoomSid": [recorded["sid"]],
            "Sid": [doomed],
        },
        ("GET", "/v1/Recordings/{Sid}"): {"Sid": [kept, doomed]},
        ("GET", "/v1/Recordings/{Sid}/Media"): {"Sid": [kept]},
        ("DELETE", "/v1/Recordings/{Sid}"): {"Sid": [doomed]},
    }
    with httpx.Client(base_url=server.base_url, auth=auth) as http:
        media = http.get(f"/v1/Recordings/{kept}/Media").headers["location"]
    url = urlsplit(media)
    path = url.path.split("/")
    download = ("GET", "/media/{AccountSid}/{FileName}")
    values[download] = {"AccountSid": [path[2]], "FileName": [path[3]]}
    signed = {k: [v] for k, v in parse_qsl(url.query)}
    return World(account, values, {download: signed})


@pytest.fixture(scope="module")
def world(server: ServerThread) -> World:
    return _build_world(server)


@pytest.fixture(scope="module")
def api_schema(server: ServerThread, world: World) -> Iterator[schemathesis.BaseSchema]:
    config = schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "base-url": server.base_url,
            "auth": {
                "basic": {"username": world.account.sid, "password": world.account.auth_token}
            },
            "generation": {"max-examples": MAX_EXAMPLES, "database": "none"},
        }
    )
    schema = schemathesis.openapi.from_url(f"{server.base_url}/openapi.json", config=config)

    def mixed(
        real: dict[str, list[str]], generated: dict[str, Any] | None
    ) -> st.SearchStrategy[dict[str, Any]]:
        """Each parameter: one of the real values, or what Schemathesis generated."""
        generated = generated or {}
        return st.fixed_dictionaries(
            {
                name: st.sampled_from(
                    [*real.get(name, []), *([generated[name]] if name in generated else [])]
                )
                for name in sorted({*generated, *real})
            }
        )

    @schema.hook
    def flatmap_path_parameters(
        context: schemathesis.HookContext, path_parameters: dict[str, Any]
    ) -> st.SearchStrategy[dict[str, Any]]:
        assert context.operation is not None
        real = world.values.get((context.operation.method.upper(), context.operation.path), {})
        # Only the parameters the path has (no new ones), so that real and generated mix.
        real = {k: v for k, v in real.items() if k in (path_parameters or {})}
        return mixed(real, path_parameters)

    @schema.hook
    def flatmap_query(
        context: schemathesis.HookContext, query: dict[str, Any] | None
    ) -> st.SearchStrategy[dict[str, Any]]:
        assert context.operation is not None
        real = world.query.get((context.operation.method.upper(), context.operation.path), {})
        return mixed(real, query)

    yield schema


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    deadline=None,
    derandomize=True,
    database=None,
    max_examples=MAX_EXAMPLES,
    suppress_health_check=list(HealthCheck),
)
def test_no_server_errors_and_answers_as_documented(case: schemathesis.Case) -> None:
    case.call_and_validate(checks=CHECKS, timeout=10)


# -- what the fuzzing found, pinned -----------------------------------------------------------


@pytest.mark.parametrize("name", ["DateCreatedAfter", "DateCreatedBefore"])
@pytest.mark.parametrize(
    "value", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"], ids=["min", "max"]
)
@pytest.mark.parametrize(
    "path", ["/v1/Rooms", "/v1/Rooms/fuzz-live/Participants", "/v1/Recordings"]
)
def test_dates_out_of_range_in_utc_are_400_not_500(
    server: ServerThread, world: World, path: str, name: str, value: str
) -> None:
    """A valid ISO 8601 date-time that leaves datetime's range once moved to UTC was a 500
    (OverflowError from `astimezone`)."""
    auth = (world.account.sid, world.account.auth_token)
    r = httpx.get(f"{server.base_url}{path}", params={name: value}, auth=auth)
    assert r.status_code == 400, r.text
    assert r.json()["code"] == 20001


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", "/v1/Rooms", "GET, HEAD, POST"),
        ("PUT", "/v1/Rooms/RM00000000000000000000000000000000", "GET, HEAD, POST"),
        ("POST", "/v1/Recordings/RT00000000000000000000000000000000", "DELETE, GET, HEAD"),
        ("TRACE", "/v1/Rooms/x/Transcriptions/y", "GET, HEAD, POST"),
    ],
)
def test_405_names_every_method_of_the_path_in_allow(
    server: ServerThread, world: World, method: str, path: str, allowed: str
) -> None:
    """RFC 9110 §15.5.6: a 405 carries `Allow`; it had none (and Starlette's own names only
    the methods of the first of the path's routes)."""
    auth = (world.account.sid, world.account.auth_token)
    r = httpx.request(method, f"{server.base_url}{path}", auth=auth)
    assert r.status_code == 405
    assert r.json()["code"] == 20004
    assert r.headers["allow"] == allowed


def test_openapi_document_describes_every_operation(server: ServerThread) -> None:
    from parlour.api.app import REST_ROUTES

    doc = httpx.get(f"{server.base_url}/openapi.json").json()
    served = {
        (method, route.path)
        for route in REST_ROUTES
        for method in route.methods or ()
        if method != "HEAD"
    }
    assert len(served) == sum(len(ops) for ops in doc["paths"].values())
    ids = [op["operationId"] for ops in doc["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids))
    create = doc["paths"]["/v1/Rooms"]["post"]
    form = create["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]
    assert {"UniqueName", "Type", "RecordingRules", "VideoCodecs"} <= set(form["properties"])
    assert set(create["responses"]) == {"201", "400", "401", "413"}
    listing = doc["paths"]["/v1/Rooms/{RoomSid}/Participants"]["get"]
    assert [p["name"] for p in listing["parameters"]] == [
        "RoomSid",
        "Status",
        "Identity",
        "DateCreatedAfter",
        "DateCreatedBefore",
        "PageSize",
        "Page",
        "PageToken",
    ]
    media = doc["paths"]["/v1/Recordings/{Sid}/Media"]["get"]
    assert "Location" in media["responses"]["302"]["headers"]
    assert doc["paths"]["/media/{AccountSid}/{FileName}"]["get"]["security"] == []
