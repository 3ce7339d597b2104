"""Scenario 3: a mixed room. One browser page (the real SDK) and one Python SDK participant
(aiortc) publish audio and video; each receives the other's media and decodes it."""

from __future__ import annotations

import asyncio

import aioice.ice
import av
import pytest
from aiortc import AudioStreamTrack, VideoStreamTrack

from parlour.client.video import LocalTrackInfo
from parlour.testing import ServerThread
from tests.browser.harness import OpenParticipant, poll
from tests.helpers import Account, access_token, join

pytestmark = [pytest.mark.browser, pytest.mark.integration]

ROOM = "mixed"


@pytest.fixture(autouse=True)
def python_side(
    monkeypatch: pytest.MonkeyPatch, browser_kind: str, browser_server: ServerThread
) -> None:
    """Where the Python participant's ICE candidate is: the server's own address (aioice never
    gathers 127.0.0.1 by itself), the veth one for Firefox's server; and for that server,
    served over HTTPS, its self-signed certificate is the one the Python SDK trusts."""
    address = browser_server.config.host
    monkeypatch.setattr(
        aioice.ice, "get_host_addresses", lambda use_ipv4=True, use_ipv6=True: [address]
    )
    if browser_kind == "firefox":
        monkeypatch.setenv("SSL_CERT_FILE", str(browser_server.config.tls_cert))


async def test_browser_and_python_participants_exchange_media(
    open_page: OpenParticipant, browser_server: ServerThread, browser_account: Account
) -> None:
    async with asyncio.timeout(60):
        page = await open_page("browser")
        joined = await page.join(access_token(browser_account, "browser"), ROOM)
        assert "error" not in joined, joined

        mic, cam = AudioStreamTrack(), VideoStreamTrack()
        python = await join(
            browser_server,
            browser_account,
            "python",
            ROOM,
            tracks=(LocalTrackInfo.from_track(mic, "mic"), LocalTrackInfo.from_track(cam, "cam")),
        )
        try:
            # The browser plays the Python participant's video (aiortc's 640x480 frames).
            events = await page.wait_for_events("trackSubscribed", 2, participant="python")
            sids = {e["kind"]: e["trackSid"] for e in events}
            assert set(sids) == {"audio", "video"}
            first = await poll(
                lambda: page.video_state(sids["video"]),
                lambda s: s is not None and s["framesDecoded"] > 0 and s["videoWidth"] > 0,
                within=20,
                what="the Python participant's video to play in the browser",
            )
            assert first is not None
            assert (first["videoWidth"], first["videoHeight"]) == (640, 480), first
            await poll(
                lambda: page.video_state(sids["video"]),
                lambda s: s is not None and s["framesDecoded"] >= first["framesDecoded"] + 10,
                within=10,
                what="the browser to keep decoding",
            )

            # The Python participant decodes the browser's camera and microphone.
            await python.wait_for(lambda: len(python.remote_media) == 2, 20)
            kinds = set()
            for track in python.remote_media.values():
                frame = await asyncio.wait_for(track.recv(), 15)
                kinds.add(track.kind)
                if track.kind == "video":
                    assert isinstance(frame, av.VideoFrame)
                    assert (frame.width, frame.height) == (640, 480)
            assert kinds == {"audio", "video"}
        finally:
            await python.disconnect()
        await page.wait_for_events("participantDisconnected", participant="python")
