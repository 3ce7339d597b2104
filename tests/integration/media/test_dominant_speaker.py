"""The dominant speaker, end to end on the real SFU: Python SDK participants publish audio
(aiortc encodes Opus and sends the RFC 6464 audio level), one of them talks, and every other
participant hears `dominantSpeakerChanged` over the `active_speaker` channel; when the talk
moves, so does the dominant speaker."""

from __future__ import annotations

import array
import math
import random
from collections.abc import Iterator

import pytest
from aiortc import AudioStreamTrack
from av import AudioFrame

from parlour.client.video import LocalTrackInfo, Room
from parlour.testing import ServerThread
from tests.helpers import Account, join, new_account

pytestmark = pytest.mark.integration


class Voice(AudioStreamTrack):
    """A microphone: room noise (about -64 dBov), and while `talking` a syllable-like tone
    whose loudness varies frame by frame (a steady level counts as noise, not speech)."""

    def __init__(self) -> None:
        super().__init__()
        self.talking = False
        self._random = random.Random(7)
        self._phase = 0.0

    async def recv(self) -> AudioFrame:
        frame = await super().recv()
        if self.talking:
            amplitude = self._random.choice((1500, 4000, 9000, 16000))
            samples = array.array(
                "h",
                (
                    int(amplitude * math.sin(self._phase + i * 2 * math.pi * 220 / 8000))
                    for i in range(frame.samples)
                ),
            )
            self._phase += frame.samples * 2 * math.pi * 220 / 8000
        else:
            samples = array.array(
                "h", (self._random.randint(-30, 30) for _ in range(frame.samples))
            )
        frame.planes[0].update(samples.tobytes())
        return frame


@pytest.fixture(scope="module")
def sfu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    with ServerThread(tmp_path_factory.mktemp("speakers")) as srv:
        yield srv


async def dominant(room: Room, identity: str | None, within: float = 15) -> None:
    def check() -> bool:
        speaker = room.dominant_speaker
        return (speaker.identity if speaker else None) == identity

    await room.wait_for(check, within)


async def test_the_talker_is_the_dominant_speaker_everywhere(sfu: ServerThread) -> None:
    acct: Account = new_account(sfu)
    voices = {name: Voice() for name in ("alice", "bob", "carol")}
    rooms = {
        name: await join(
            sfu, acct, name, "speakers", tracks=(LocalTrackInfo.from_track(voice, "mic"),)
        )
        for name, voice in voices.items()
    }
    try:
        voices["alice"].talking = True
        for name in ("bob", "carol"):
            await dominant(rooms[name], "alice")
        voices["alice"].talking = False
        voices["bob"].talking = True
        for name in ("alice", "carol"):
            await dominant(rooms[name], "bob")
        voices["bob"].talking = False
        for name in ("alice", "carol"):
            await dominant(rooms[name], None)  # nobody speaks any more
    finally:
        for room in rooms.values():
            await room.disconnect()
