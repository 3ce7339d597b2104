"""A server is killed with SIGKILL mid-recording; after a restart on the same data dir every
recording is completed (playable file, REST fields, callbacks) or failed, none `processing`."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import av
import httpx
import pytest
from twilio.rest import Client

from parlour.testing import ServerThread
from tests.integration.recording_support import Receiver, kill_when_fed, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CHILD = textwrap.dedent(
    """
    import asyncio, json, sys, time
    from pathlib import Path
    from parlour.domain.rooms import RoomSpec
    from parlour.domain.sids import AccountSid
    from parlour.testing import ServerThread
    from tests.helpers import new_account
    from tests.integration.recording_support import media_packets, publish

    data_dir, callback = Path(sys.argv[1]), sys.argv[2]
    with ServerThread(data_dir, webhook_allow_private=True) as server:
        account = new_account(server)
        spec = RoomSpec(
            unique_name="doomed", record_participants_on_connect=True, status_callback=callback
        )
        room = server.call(server.parlour.rooms.create(AccountSid(account.sid), spec))
        tracks = publish(
            server, account.sid, room.sid, "erin",
            [("mic", "OPUS"), ("cam", "VP8"), ("idle", "H264")],
        )
        print(json.dumps({"account": vars(account), "room": room.sid}), flush=True)
        streams = [
            (t.tap, media_packets(t.codec, 20.0, ssrc=i + 1)) for i, t in enumerate(tracks[:2])
        ]
        timeline = sorted(
            (p.media_time, i, p.data) for i, (_, ps) in enumerate(streams) for p in ps
        )

        async def run():
            loop = asyncio.get_running_loop()
            start, reported = loop.time(), -1.0
            for media_time, index, data in timeline:
                delay = start + media_time - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                streams[index][0].feed(data)
                if media_time - reported >= 0.1:
                    reported = media_time
                    print(f"{media_time:.3f}", flush=True)

        server.call(run(), timeout=60)
        time.sleep(60)
    """
)

KILL_AFTER = 3.5


def test_sigkill_then_restart_recovers_every_recording(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with Receiver("unused") as receiver:
        first, fed = kill_when_fed(
            CHILD, str(data_dir), receiver.url, after=KILL_AFTER, header=True
        )
        setup = json.loads(first)
        assert fed >= KILL_AFTER
        spool = data_dir / "media" / "spool"
        assert len(list(spool.glob("RT*.mk?"))) == 2  # the idle track never wrote a file

        with ServerThread(data_dir, webhook_allow_private=True) as server:
            account = setup["account"]
            client = Client(account["key_sid"], account["key_secret"], account_sid=account["sid"])
            client.video.base_url = server.base_url
            recordings = client.video.v1.recordings.list()
            assert len(recordings) == 3
            assert client.video.v1.recordings.list(status="processing") == []
            by_codec = {r.codec: r for r in recordings}
            assert by_codec["H264"].status == "failed"
            for codec, name in (("OPUS", "opus"), ("VP8", "vp8")):
                rec = by_codec[codec]
                assert rec.status == "completed"
                assert fed - 2.5 <= rec.duration <= fed + 0.5
                auth = (account["sid"], account["auth_token"])
                with httpx.Client(base_url=server.base_url, auth=auth) as http:
                    target = http.get(f"/v1/Recordings/{rec.sid}/Media").headers["location"]
                    content = httpx.get(target).content
                assert len(content) == rec.size
                path = tmp_path / f"{rec.sid}.{rec.container_format}"
                path.write_bytes(content)
                with av.open(str(path)) as file:
                    stream = file.streams[0]
                    assert stream.codec_context.name == name
                    assert file.duration is not None  # remuxed: duration and cues written
                    assert file.duration / 1e6 == pytest.approx(rec.duration, abs=0.6)
                    assert list(file.decode(stream))
            assert not list(spool.glob("RT*"))  # nothing left behind

            def recovered() -> list[dict[str, str]] | None:
                done = [
                    e
                    for e in receiver.events()
                    if e["StatusCallbackEvent"] in ("recording-completed", "recording-failed")
                ]
                return done if len(done) == 3 else None

            events = wait_until(recovered, timeout=20)
            failed = [e for e in events if e["StatusCallbackEvent"] == "recording-failed"]
            assert [e["Codec"] for e in failed] == ["H264"]
            assert failed[0]["FailedOperation"] == "RecordingComplete"
            assert failed[0]["ParticipantIdentity"] == "erin"
