"""A data-subject request against what real clients leave behind: two participants join
with the Python SDK (real signaling over WebSocket, real ICE/DTLS/SRTP media through the
SFU), the room records them and sends status callbacks; one leaves, her data is exported
(her recording, decoded from the archive, is her audio) and erased while the other stays
in the call; nothing of her is left in any file, and the other is still served."""

from __future__ import annotations

import asyncio
import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path

import av
import httpx
import pytest
from aiortc import AudioStreamTrack

from parlour.client.video import LocalTrackInfo, Room
from parlour.testing import ServerThread
from tests.helpers import Account, join, new_account
from tests.integration.recording_support import Receiver
from tests.integration.test_privacy_e2e import Deployment, files_holding, parlour

pytestmark = [pytest.mark.integration]

DANA = "dana-Kq81Zr@private.example"
EZRA = "ezra-Pw20Lm@private.example"
ROOM = "clients-privacy-Vb3Tn"


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Deployment:
    return Deployment(tmp_path_factory.mktemp("privacy-clients"))


@pytest.fixture(scope="module")
def server(deployment: Deployment) -> Iterator[ServerThread]:
    with ServerThread(
        deployment.data_dir, idle_sweep_seconds=0.05, webhook_allow_private=True
    ) as srv:
        yield srv


async def until(check: object, what: str, limit: float = 30.0) -> None:
    assert callable(check)
    deadline = asyncio.get_running_loop().time() + limit
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def run(deployment: Deployment, *args: str) -> dict[str, object]:
    done = await asyncio.to_thread(parlour, deployment, *args, "--json")
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


async def test_export_and_erase_what_real_clients_left(
    server: ServerThread, deployment: Deployment, tmp_path: Path
) -> None:
    account: Account = new_account(server)
    http = httpx.AsyncClient(base_url=server.base_url, auth=(account.sid, account.auth_token))
    receiver = Receiver(account.auth_token).__enter__()
    rooms: list[Room] = []
    try:
        created = await http.post(
            "/v1/Rooms",
            data={
                "UniqueName": ROOM,
                "RecordParticipantsOnConnect": "true",
                "StatusCallback": receiver.url,
            },
        )
        assert created.status_code == 201, created.text
        room_sid = created.json()["sid"]
        dana = await join(
            server,
            account,
            DANA,
            ROOM,
            tracks=(LocalTrackInfo.from_track(AudioStreamTrack(), "dana-mic"),),
        )
        rooms.append(dana)
        ezra = await join(
            server,
            account,
            EZRA,
            ROOM,
            tracks=(LocalTrackInfo.from_track(AudioStreamTrack(), "ezra-mic"),),
        )
        rooms.append(ezra)
        dana_sid = dana.local_participant.sid

        async def subscribed_to_dana() -> bool:
            r = await http.get(
                f"/v1/Rooms/{room_sid}/Participants/{ezra.local_participant.sid}/SubscribedTracks"
            )
            return any(t["name"] == "dana-mic" for t in r.json()["subscribed_tracks"])

        deadline = asyncio.get_running_loop().time() + 30
        while not await subscribed_to_dana():
            assert asyncio.get_running_loop().time() < deadline, "Ezra never got Dana's mic"
            await asyncio.sleep(0.1)
        await asyncio.sleep(2.0)  # two seconds of real media, recorded

        # Dana is in the call: her erasure is refused and nothing is erased.
        refused = await asyncio.to_thread(
            parlour, deployment, "erase", "--account", account.sid, "--identity", DANA, "--yes"
        )
        assert refused.returncode == 1 and "nothing erased" in refused.stderr

        await dana.disconnect()
        rooms.remove(dana)

        def dana_recorded() -> bool:
            return any(
                e.get("ParticipantIdentity") == DANA for e in receiver.events("recording-completed")
            )

        await until(dana_recorded, "Dana's recording-completed callback")

        def pending() -> int:
            return len(server.call(server.parlour.store.pending_callback_deliveries()))

        deadline = asyncio.get_running_loop().time() + 30
        while await asyncio.to_thread(pending):
            assert asyncio.get_running_loop().time() < deadline, "callbacks still pending"
            await asyncio.sleep(0.1)
        events = {p["StatusCallbackEvent"] for p, valid in receiver.received if valid}
        assert {"participant-connected", "participant-disconnected", "recording-completed"} <= (
            events
        )
        recording = next(
            e["RecordingSid"]
            for e in receiver.events("recording-completed")
            if e.get("ParticipantIdentity") == DANA
        )

        # Export: her records, her recording, nobody else's.
        archive = tmp_path / "dana.zip"
        summary = await run(
            deployment,
            "export",
            "--account",
            account.sid,
            "--identity",
            DANA,
            "--out",
            str(archive),
        )
        assert summary["media"] == [f"media/{recording}.mka"]
        with zipfile.ZipFile(archive) as z:
            participants = json.loads(z.read("records/participants.json"))
            deliveries = json.loads(z.read("records/callback_deliveries.json"))
            media = z.read(f"media/{recording}.mka")
        assert [p["identity"] for p in participants] == [DANA]
        assert deliveries and not any(EZRA in json.dumps(d) for d in deliveries)
        with av.open(io.BytesIO(media)) as container:
            stream = container.streams.audio[0]
            assert stream.codec_context.name == "opus"
            decoded = sum(frame.samples for frame in container.decode(stream))
        assert decoded >= 48000, f"only {decoded} samples of Dana's two seconds"

        # Erase her while Ezra is still in the call.
        needles = [DANA, dana_sid, recording]
        assert files_holding(deployment, needles)
        erased = await run(
            deployment, "erase", "--account", account.sid, "--identity", DANA, "--yes"
        )
        assert erased["media_deleted"] == [recording]
        assert files_holding(deployment, needles) == {}
        gone = await http.get(f"/v1/Rooms/{room_sid}/Participants/{dana_sid}")
        assert gone.status_code == 404
        listed = (await http.get(f"/v1/Rooms/{room_sid}/Participants")).json()["participants"]
        assert [(p["identity"], p["status"]) for p in listed] == [(EZRA, "connected")]
        assert "dana" not in json.dumps(list(ezra.participants))

        # Ezra leaves, the room ends: nothing of Dana was written back meanwhile.
        await ezra.disconnect()
        rooms.remove(ezra)
        done = await http.post(f"/v1/Rooms/{room_sid}", data={"Status": "completed"})
        assert done.json()["status"] == "completed"
        await until(lambda: len(receiver.events("recording-completed")) == 2, "Ezra's")
        assert files_holding(deployment, needles) == {}
        assert files_holding(deployment, [EZRA])  # what is not erased stays
    finally:
        for room in rooms:
            await room.disconnect()
        await http.aclose()
        receiver.__exit__(None, None, None)
