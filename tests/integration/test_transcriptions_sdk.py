"""Real-time transcriptions end to end with real clients: a Python SDK participant publishes
a sentence espeak-ng spoke (aiortc encodes it to Opus, the SFU forwards and taps it), the
server transcribes it in its worker process, and the participants that connected with
`receive_transcriptions` get twilio-video's `transcription` messages on their
`extension_transcriptions` channel; REST stop/start works through the official `twilio`
package and the status callbacks arrive, signed."""

from __future__ import annotations

import asyncio
import json
import tempfile
from pathlib import Path

import pytest
from aiortc.contrib.media import MediaPlayer
from twilio.rest import Client

from parlour.client.video import LocalTrackInfo, Room
from parlour.testing import ServerThread
from tests.helpers import Account, join
from tests.integration.recording_support import Receiver
from tests.speech_samples import have_espeak, speak_wav, word_error_rate

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not have_espeak(), reason="espeak-ng is not installed"),
]

SENTENCE = "i would like to order a pizza"


def twilio_client(server: ServerThread, account: Account) -> Client:
    client = Client(account.key_sid, account.key_secret, account_sid=account.sid)
    client.video.base_url = server.base_url
    return client


async def transcriptions(room: Room, *, final: int, within: float) -> list[dict[str, object]]:
    """The `transcription` messages `room` hears until `final` final ones arrived."""
    got: list[dict[str, object]] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while sum(1 for m in got if not m["partial_results"]) < final:
        left = deadline - loop.time()
        if left <= 0:
            raise AssertionError(f"only {got} heard in {within} s")
        try:
            event = await room.next_event(within=left)
        except TimeoutError:
            continue
        if event.name == "transcription":
            assert event.transcription is not None
            got.append(event.transcription)
    return got


async def test_a_spoken_sentence_reaches_the_participants_that_asked(
    server: ServerThread, account: Account
) -> None:
    client = twilio_client(server, account)
    with tempfile.TemporaryDirectory() as tmp, Receiver(account.auth_token) as receiver:
        wav = speak_wav(SENTENCE, Path(tmp) / "speech.wav", pad_seconds=1.5)
        room = await asyncio.to_thread(
            client.video.v1.rooms.create,
            unique_name="captions",
            status_callback=receiver.url,
            transcribe_participants_on_connect=True,
            transcriptions_configuration={"languageCode": "en-US", "partialResults": True},
        )
        bob = await join(server, account, "bob", "captions", receive_transcriptions=True)
        carol = await join(server, account, "carol", "captions")
        player = MediaPlayer(str(wav), loop=False)
        assert player.audio is not None
        mic = LocalTrackInfo.from_track(player.audio, "mic")
        alice = await join(
            server, account, "alice", "captions", tracks=(mic,), receive_transcriptions=True
        )
        try:
            heard_by_bob, heard_by_alice = await asyncio.gather(
                transcriptions(bob, final=1, within=90),
                transcriptions(alice, final=1, within=90),
            )
            final = [m for m in heard_by_bob if not m["partial_results"]][-1]
            wer = word_error_rate(SENTENCE, str(final["transcription"]))
            print(f"heard {final['transcription']!r}: WER {wer:.0%}")
            assert wer <= 0.5
            assert final["participant"] == alice.local_sid
            assert final["track"] == alice.published[mic.id]
            assert final["language_code"] == "en-US"
            assert final["type"] == "extension_transcriptions"
            assert str(final["timestamp"]).endswith("Z")
            numbers = [m["sequence_number"] for m in heard_by_bob]
            assert numbers == sorted(numbers) and numbers[0] >= 1
            assert [m for m in heard_by_alice if not m["partial_results"]][-1][
                "transcription"
            ] == final["transcription"]
            # Carol did not ask: nothing on her side.
            while True:
                try:
                    event = await carol.next_event(within=0.5)
                except TimeoutError:
                    break
                assert event.name != "transcription"

            # REST through the twilio package: the room's resource, stopped and restarted.
            listed = await asyncio.to_thread(client.video.v1.rooms(room.sid).transcriptions.list)
            assert len(listed) == 1
            ttid = listed[0].ttid
            assert listed[0].status == "started"
            assert listed[0].configuration == {"languageCode": "en-US", "partialResults": True}
            stopped = await asyncio.to_thread(
                client.video.v1.rooms(room.sid).transcriptions(ttid).update, status="stopped"
            )
            assert stopped.status == "stopped" and stopped.end_time is not None
            assert stopped.duration is not None and stopped.duration >= 1
            restarted = await asyncio.to_thread(
                client.video.v1.rooms(room.sid).transcriptions(ttid).update, status="started"
            )
            assert restarted.status == "started" and restarted.end_time is None
        finally:
            for participant in (alice, bob, carol):
                await participant.disconnect()
            player.audio.stop()
        await asyncio.to_thread(client.video.v1.rooms(room.sid).update, status="completed")

        def events() -> list[tuple[str, str, str]]:
            return [
                (p["StatusCallbackEvent"], p.get("TranscriptionTtid", ""), p["TranscriptionStatus"])
                for p, valid in receiver.received
                if valid and p["StatusCallbackEvent"].startswith("transcription-")
            ]

        for _ in range(100):
            if len(events()) >= 4:
                break
            await asyncio.sleep(0.1)
        assert events() == [
            ("transcription-started", ttid, "started"),
            ("transcription-stopped", ttid, "stopped"),
            ("transcription-started", ttid, "started"),
            ("transcription-stopped", ttid, "stopped"),
        ]
        assert all(valid for _, valid in receiver.received)
        # No transcript text in any callback.
        assert not any("pizza" in json.dumps(p) for p, _ in receiver.received)
