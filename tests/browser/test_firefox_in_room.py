"""Headless Firefox ESR with the unmodified `twilio-video` SDK, beside a Chromium participant.

Firefox gathers no loopback ICE candidates, so it runs in a network namespace on a veth pair
(the test session's Firefox, `conftest.firefox_net`) and the SFU binds every address but
advertises the server's veth address. The page is served over HTTPS (self-signed), since
browsers give cameras only to secure origins. Both participants must receive each other's
audio and video (getStats), and Firefox's selected ICE pair must be the SFU's advertised
address. Parlour Meet (the app at `/`) is used in Firefox too, clicked and typed into
(`meet.MeetPage` over WebDriver BiDi).
"""

from __future__ import annotations

import asyncio
import json
import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, async_playwright

from parlour.testing import ServerThread
from tests.browser.firefox import Firefox, FirefoxNet, FirefoxPage
from tests.browser.harness import (
    CHROMIUM,
    CHROMIUM_FLAGS,
    BrowserParticipant,
    open_participant,
    poll,
)
from tests.browser.meet import open_meet, open_meet_in_firefox, playing
from tests.browser.netkit import (
    VethClient,
    assert_media_flows,
    clients_gone,
    selected_pairs,
    self_signed,
)
from tests.helpers import new_account

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def net(firefox_net: FirefoxNet) -> VethClient:
    """The session's namespace, where its Firefox runs (`conftest.firefox_net`)."""
    return firefox_net.net


@pytest.fixture
def fox(firefox_browser: Firefox) -> Firefox:
    """The session's Firefox, over a WebDriver BiDi session of this test's own."""
    return firefox_browser


@pytest.fixture
async def chromium() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=[*CHROMIUM_FLAGS, "--ignore-certificate-errors"],
        )
        try:
            yield browser
        finally:
            await browser.close()


def https_server(net: VethClient, tmp_path: Path, **config: Any) -> ServerThread:
    """Parlour on the veth address over HTTPS; the SFU binds all and advertises that address."""
    tls = self_signed(tmp_path / "tls", net.server)
    return ServerThread(
        tmp_path / "data",
        host=net.server,
        tls_cert=tls.cert,
        tls_key=tls.key,
        media_host="0.0.0.0",
        media_advertised_address=net.server,
        **config,
    )


async def assert_video_plays(page: BrowserParticipant, track_sid: str) -> None:
    """The `<video>` of a subscribed track has a size and keeps decoding new frames."""
    first = await poll(
        lambda: page.video_state(track_sid),
        lambda s: s is not None and s["videoWidth"] > 0 and s["framesDecoded"] > 0,
        within=30,
        what=f"video {track_sid} to play on {page.name}",
    )
    assert first is not None
    await poll(
        lambda: page.video_state(track_sid),
        lambda s: s is not None and s["framesDecoded"] >= first["framesDecoded"] + 10,
        within=20,
        what=f"video {track_sid} to keep decoding on {page.name}",
    )


async def test_firefox_and_chromium_see_and_hear_each_other(
    net: VethClient, fox: Firefox, chromium: Browser, tmp_path: Path
) -> None:
    with https_server(net, tmp_path) as server:
        acct = new_account(server)
        pages: list[BrowserParticipant] = []
        try:
            async with asyncio.timeout(150):
                ff = await fox.open_participant(server, "firefox")
                pages.append(ff)
                ch = await open_participant(chromium, server, "chromium")
                pages.append(ch)
                await ff.join_as_name(acct, "mixed-browsers", within=40)
                await ch.join_as_name(acct, "mixed-browsers")
                await asyncio.gather(
                    assert_media_flows(ff, "chromium", within=45),
                    assert_media_flows(ch, "firefox", within=45),
                )
                [pair] = await selected_pairs(ff)
                assert (pair["remote"]["address"], pair["remote"]["type"]) == (net.server, "host")
                # Firefox decodes Chromium's video, and Chromium Firefox's.
                for page in (ff, ch):
                    frames = await page.evaluate("() => window.inboundVideo()")
                    assert frames and all(v["framesDecoded"] > 0 for v in frames.values()), (
                        page.name,
                        frames,
                    )
                # Data tracks both ways (SCTP over Firefox's DTLS association).
                for sender, receiver in ((ff, ch), (ch, ff)):
                    name = f"chat-{sender.name}"
                    assert (await sender.evaluate("(n) => window.publishData(n)", name))[:2] == "MT"
                    await receiver.wait_for_events(
                        "trackSubscribed", participant=sender.name, kind="data", within=30
                    )
                    await sender.evaluate(
                        "([n, m]) => window.sendData(n, m)", [name, [f"hello from {sender.name}"]]
                    )
                    await receiver.wait_for_events(
                        "trackMessage", data=f"hello from {sender.name}", within=30
                    )
                for page in pages:
                    assert not await page.events("reconnecting"), page.name
                    assert not await page.events("disconnected"), page.name
        finally:
            for page in pages:
                await page.close()


async def test_firefox_changes_its_tracks_and_leaves(
    net: VethClient, fox: Firefox, chromium: Browser, tmp_path: Path
) -> None:
    """What Firefox publishes changes mid-call (each a renegotiation Firefox offers): Chromium
    sees disable/enable, a shared tab (a second video track, a display capture), its
    unpublishing, a new camera, and the leave."""
    with https_server(net, tmp_path) as server:
        acct = new_account(server)
        pages: list[BrowserParticipant] = []
        try:
            async with asyncio.timeout(150):
                ff = await fox.open_participant(server, "firefox")
                pages.append(ff)
                ch = await open_participant(chromium, server, "chromium")
                pages.append(ch)
                await ch.join_as_name(acct, "firefox-tracks")
                await ff.join_as_name(acct, "firefox-tracks", within=40)
                events = await ch.wait_for_events(
                    "trackSubscribed", 2, participant="firefox", within=30
                )
                camera = next(e["trackSid"] for e in events if e["kind"] == "video")
                audio = next(e["trackSid"] for e in events if e["kind"] == "audio")
                await assert_video_plays(ch, camera)

                for kind, sid in (("video", camera), ("audio", audio)):
                    await ff.evaluate("(k) => window.setEnabled(k, false)", kind)
                    await ch.wait_for_events("trackDisabled", trackSid=sid)
                    await ff.evaluate("(k) => window.setEnabled(k, true)", kind)
                    await ch.wait_for_events("trackEnabled", trackSid=sid)

                # A display capture: what headless Firefox can share is its own tab (its
                # getDisplayMedia finds no screen or window there: docs/compatibility.md).
                tab = await ff.evaluate("() => window.publishTab('screen')")
                screen = tab["trackSid"]
                assert tab["settings"]["width"] > 640, tab  # the tab's size, not a camera's
                [shared] = await ch.wait_for_events("trackSubscribed", trackSid=screen, within=30)
                assert (shared["kind"], shared["trackName"]) == ("video", "screen")
                await assert_video_plays(ch, screen)

                await ff.evaluate("() => window.unpublish('screen')")
                await ch.wait_for_events("trackUnpublished", trackSid=screen)

                second = await ff.evaluate("() => window.publishCamera('camera-2')")
                await ch.wait_for_events("trackSubscribed", trackSid=second, within=30)
                await assert_video_plays(ch, second)

                await ff.disconnect()
                await ch.wait_for_events("participantDisconnected", participant="firefox")
                assert not await ch.events("disconnected")
                assert not await ff.events("reconnecting")
        finally:
            for page in pages:
                await page.close()


def probe_codec(path: Path) -> tuple[str, float]:
    """ffprobe's codec name and duration (s) of the file's only stream."""
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_format", "-show_streams", "-of", "json", str(path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    probed = json.loads(out.stdout)
    [stream] = probed["streams"]
    return stream["codec_name"], float(probed["format"]["duration"])


async def test_firefox_is_recorded_and_survives_a_signaling_blip(
    net: VethClient, fox: Firefox, chromium: Browser, tmp_path: Path
) -> None:
    """A room recorded on connect: Firefox's signaling socket is cut, it reconnects and its
    media still flows; after the room ends its audio and video recordings play in ffprobe."""
    with https_server(net, tmp_path) as server:
        acct = new_account(server)
        pages: list[BrowserParticipant] = []
        rest = httpx.AsyncClient(
            base_url=server.base_url,
            auth=(acct.sid, acct.auth_token),
            verify=ssl.create_default_context(cafile=tmp_path / "tls" / "cert.pem"),
        )
        try:
            async with asyncio.timeout(180):
                created = await rest.post(
                    "/v1/Rooms",
                    data={"UniqueName": "recorded", "RecordParticipantsOnConnect": "true"},
                )
                assert created.status_code == 201, created.text
                room_sid = created.json()["sid"]
                ff = await fox.open_participant(server, "firefox")
                pages.append(ff)
                ch = await open_participant(chromium, server, "chromium")
                pages.append(ch)
                firefox_sid = (await ff.join_as_name(acct, "recorded", within=40))["participantSid"]
                await ch.join_as_name(acct, "recorded")
                await assert_media_flows(ch, "firefox", within=45)

                assert await ff.cut_signaling() >= 1
                await ff.wait_for_events("reconnecting", within=15)
                await ff.wait_for_events("reconnected", within=30)
                assert await ff.evaluate("() => window.room.state") == "connected"
                await asyncio.gather(
                    assert_media_flows(ch, "firefox", within=30),
                    assert_media_flows(ff, "chromium", within=30),
                )
                assert not await ch.events("participantDisconnected")

                await asyncio.sleep(3)
                ended = await rest.post(f"/v1/Rooms/{room_sid}", data={"Status": "completed"})
                assert ended.status_code == 202, ended.text

                async def firefox_recordings() -> list[dict[str, object]]:
                    r = await rest.get("/v1/Recordings", params={"GroupingSid": room_sid})
                    return [
                        x
                        for x in r.json()["recordings"]
                        if x["grouping_sids"]["participant_sid"] == firefox_sid
                    ]

                recordings = await poll(
                    firefox_recordings,
                    lambda rs: len(rs) == 2 and all(x["status"] == "completed" for x in rs),
                    within=60,
                    what="Firefox's two completed recordings",
                )
                probed = set()
                for rec in recordings:
                    media = await rest.get(f"/v1/Recordings/{rec['sid']}/Media")
                    assert media.status_code == 302, media.text
                    body = await rest.get(media.json()["redirect_to"])
                    assert body.status_code == 200
                    path = tmp_path / f"{rec['sid']}.{rec['container_format']}"
                    path.write_bytes(body.content)
                    codec, seconds = probe_codec(path)
                    assert seconds >= 2, (rec, seconds)
                    probed.add((rec["type"], codec))
                assert probed == {("audio", "opus"), ("video", "vp8")}
        finally:
            for page in pages:
                await page.close()
            await rest.aclose()


async def test_parlour_meet_in_firefox_beside_chromium(
    net: VethClient, fox: Firefox, chromium: Browser, tmp_path: Path
) -> None:
    """The meeting app at `/` (`--dev` tokens) in Firefox, with a Chromium person: each sees
    both cameras play, Firefox's mute on its tile, chat both ways, Firefox's leave."""
    with https_server(net, tmp_path, dev=True) as server:
        contexts: list[BrowserContext] = []
        windows: list[FirefoxPage] = []
        try:
            async with asyncio.timeout(120):
                fiona, chris = await asyncio.gather(
                    open_meet_in_firefox(fox, server, "Fiona"),
                    open_meet(chromium, contexts, server, "Chris"),
                )
                page = cast(FirefoxPage, fiona.page)
                windows.append(page)
                await asyncio.gather(fiona.join("fox-meet"), chris.join("fox-meet"))
                for person in (fiona, chris):
                    await person.wait_tiles(lambda t: playing(t, 2), "both cameras", within=45)

                await page.click("#mute")
                await poll(
                    lambda: chris.tile("Fiona"),
                    lambda tile: tile["audioOff"] and not tile["videoOff"],
                    within=20,
                    what="Fiona muted on Chris's page",
                )

                # Chat over the data track, both ways.
                await page.click("#chat-toggle")
                await page.fill("#chat-input", "Hello from Firefox")
                await page.keyboard.press("Enter")
                await chris.page.wait_for_selector("#unread:not([hidden])")
                await chris.page.click("#chat-toggle")
                theirs = chris.page.locator("#messages li.theirs .text").last
                assert await theirs.inner_text() == "Hello from Firefox"
                await chris.page.fill("#chat-input", "Hello from Chromium")
                await chris.page.press("#chat-input", "Enter")
                await poll(
                    lambda: fiona.texts("#messages li.theirs .text"),
                    lambda texts: texts == ["Hello from Chromium"],
                    within=20,
                    what="Chris's message on Fiona's page",
                )

                await page.click("#leave")
                await page.wait_for_selector("#left:not([hidden])", timeout=20_000)
                assert await page.inner_text("#left-title") == "You left the meeting"
                await chris.wait_tiles(lambda t: len(t) == 1, "one tile after Fiona left")
                await chris.page.click("#leave")
                await chris.page.wait_for_selector("#left:not([hidden])")
        finally:
            for window in windows:  # before the server stops: nothing of it left open
                await window.close()
            for context in contexts:
                await context.close()
            await clients_gone(server)
