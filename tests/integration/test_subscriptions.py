"""Subscription rules evaluated live by the signaling hub, reported to clients and REST.

The media plane here is a test double that "delivers" whatever it is asked to at once, so
these tests exercise the hub's rule logic and bookkeeping; real forwarding is tested with
the SFU itself.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx
import pytest

from parlour.client.video import LocalTrackInfo
from parlour.domain.ports import MediaListener, TrackDescriptor
from parlour.testing import ServerThread
from tests.helpers import Account, join, new_account

pytestmark = pytest.mark.integration


class InstantSession:
    def __init__(self, listener: MediaListener) -> None:
        self.listener = listener

    async def client_description(self, *args: object) -> str | None:
        return None

    def set_subscriptions(self, tracks: Sequence[TrackDescriptor]) -> None:
        self.listener.subscriptions_changed([(t.sid, t.id) for t in tracks])

    def published_codec(self, track_id: str) -> None:
        return None

    def published_bitrate(self, track_id: str) -> int:
        return 0

    def published_layers(self, track_id: str) -> tuple[()]:
        return ()

    def select_layers(self, layers: object) -> None:
        return None

    def downlink_estimate(self) -> tuple[int | None, bool]:
        return None, False

    def dominant_speaker(self) -> None:
        return None

    def open_signaling_channel(self, label: str) -> None:
        return None

    def send_signaling(self, label: str, message: str) -> None:
        return None

    def close(self) -> None:
        return None


class InstantMedia:
    def open_session(self, room_sid: str, participant_sid: str, listener: MediaListener, codecs):
        return InstantSession(listener)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    data_dir: Path = tmp_path_factory.mktemp("subs")
    with ServerThread(data_dir, media=InstantMedia()) as srv:
        yield srv


@pytest.fixture
def acct(server: ServerThread) -> Account:
    return new_account(server)


def subscribed(rest: httpx.Client, room: str, who: str) -> set[str]:
    body = rest.get(f"/v1/Rooms/{room}/Participants/{who}/SubscribedTracks").json()
    return {t["name"] for t in body["subscribed_tracks"]}


async def test_rules_drive_subscriptions(server: ServerThread, acct: Account) -> None:
    rest = httpx.Client(base_url=server.base_url, auth=(acct.sid, acct.auth_token))
    try:
        mic, cam, chat = (
            LocalTrackInfo(name=n, kind=k)
            for n, k in (("mic", "audio"), ("cam", "video"), ("chat", "data"))
        )
        alice = await join(server, acct, "alice", "subs", tracks=(mic, cam, chat))
        bob = await join(server, acct, "bob", "subs")
        await bob.wait_for(lambda: len(bob.subscribed) == 3)
        assert set(bob.subscribed.values()) == {mic.id, cam.id, chat.id}
        assert subscribed(rest, "subs", "bob") == {"mic", "cam", "chat"}
        assert subscribed(rest, "subs", "alice") == set()  # never its own tracks

        r = rest.post(
            "/v1/Rooms/subs/Participants/bob/SubscribeRules",
            data={"Rules": json.dumps([{"type": "include", "kind": "audio"}])},
        )
        assert r.status_code == 200
        await bob.wait_for(lambda: set(bob.subscribed.values()) == {mic.id})
        assert subscribed(rest, "subs", "bob") == {"mic"}

        extra = LocalTrackInfo(name="mic2", kind="audio")
        await alice.publish_track(extra)
        await bob.wait_for(lambda: set(bob.subscribed.values()) == {mic.id, extra.id})

        await alice.unpublish_track(mic.id)
        await bob.wait_for(lambda: set(bob.subscribed.values()) == {extra.id})
        assert subscribed(rest, "subs", "bob") == {"mic2"}

        await alice.disconnect()
        await bob.wait_for(lambda: not bob.subscribed)
        await bob.disconnect()
    finally:
        rest.close()


async def test_client_exclude_all(server: ServerThread, acct: Account) -> None:
    alice = await join(
        server, acct, "alice", "subs", tracks=(LocalTrackInfo(name="m", kind="audio"),)
    )
    bob = await join(server, acct, "bob", "subs", subscribe_all=False)
    await bob.wait_for(lambda: len(bob.participants) == 1)
    assert bob.subscribed == {}
    await alice.disconnect()
    await bob.disconnect()
