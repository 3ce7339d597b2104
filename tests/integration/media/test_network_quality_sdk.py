"""Network quality reaches the Python SDK as it reaches twilio-video: levels for the local
participant and for the others, over the `network_quality` channel."""

from __future__ import annotations

import pytest
from aiortc import AudioStreamTrack

from parlour.client.video import LocalTrackInfo
from tests.helpers import join, new_account
from tests.integration.media.test_dominant_speaker import sfu  # noqa: F401 - the fixture

pytestmark = pytest.mark.integration


async def test_local_and_remote_levels(sfu) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    acct = new_account(sfu)
    rooms = [
        await join(sfu, acct, name, "quality", tracks=(LocalTrackInfo.from_track(track, "mic"),))
        for name, track in (("alice", AudioStreamTrack()), ("bob", AudioStreamTrack()))
    ]
    try:
        for room in rooms:
            await room.wait_for(lambda room=room: room.network_quality_level is not None, 15)
            assert 1 <= (room.network_quality_level or 0) <= 5

            def remote_known(room=room) -> bool:  # type: ignore[no-untyped-def]
                return all(p.network_quality_level is not None for p in room.participants.values())

            await room.wait_for(remote_known, 15)
    finally:
        for room in rooms:
            await room.disconnect()
