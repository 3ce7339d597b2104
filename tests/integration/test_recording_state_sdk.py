"""The room's recording state reaches the Python SDK as it reaches twilio-video:
`is_recording`, `recordingStarted` and `recordingStopped` follow RecordingRules changes."""

from __future__ import annotations

import json

import httpx
import pytest
from aiortc import AudioStreamTrack

from parlour.client.video import LocalTrackInfo, Room
from parlour.testing import ServerThread
from tests.helpers import Account, join

pytestmark = pytest.mark.integration


async def next_named(room: Room, name: str) -> None:
    while (await room.next_event(within=15)).name != name:
        pass


async def test_recording_rules_start_and_stop_recording_in_the_sdk(
    server: ServerThread, account: Account, http: httpx.Client
) -> None:
    http.post("/v1/Rooms", data={"UniqueName": "rec-state"})
    mic = LocalTrackInfo.from_track(AudioStreamTrack(), "mic")
    alice = await join(server, account, "alice", "rec-state", tracks=(mic,))
    bob = await join(server, account, "bob", "rec-state", media=False)
    try:
        assert not alice.is_recording and not bob.is_recording
        include = json.dumps([{"type": "include", "all": True}])
        r = http.post("/v1/Rooms/rec-state/RecordingRules", data={"Rules": include})
        assert r.status_code == 200, r.text
        for room in (alice, bob):
            await next_named(room, "recordingStarted")
            assert room.is_recording
        late = await join(server, account, "carol", "rec-state", media=False)
        assert late.is_recording
        exclude = json.dumps([{"type": "exclude", "all": True}])
        http.post("/v1/Rooms/rec-state/RecordingRules", data={"Rules": exclude})
        for room in (alice, bob, late):
            await next_named(room, "recordingStopped")
            assert not room.is_recording
        await late.disconnect()
    finally:
        await alice.disconnect()
        await bob.disconnect()
