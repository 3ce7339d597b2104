"""Self-check of `bench.janus`: aiortc publishers and a subscriber through a private Janus.

Run: ``.venv/bin/python -m bench.janus_check [--sdp] [--limit S] [--ice-address A]``.

1. Start Janus (ICE on 127.0.0.1 by default, as Parlour), create a room.
2. Publisher "alice" (aiortc's synthetic audio + video) publishes; a subscriber joins her feed
   (Janus 1.x multistream: Janus offers, aiortc answers with ``start``) and must receive
   frames on both tracks within the limit (10 s).
3. Publisher "bob" publishes; alice's handle must hear of him; the subscriber adds him with
   ``subscribe_more`` (Janus's ``updated`` offer) and must then receive four tracks.
4. Bob leaves; Janus renegotiates the subscriber on its own (an unsolicited ``updated``
   offer, answered through ``on_offer``), and alice's media must keep flowing.

aiortc gathers on the ICE address only (127.0.0.1 needs a patch: aioice skips loopback). It is
the full ICE agent on both PeerConnections (Janus runs ICE-lite), so it must be the
controlling agent as offerer (publisher) and as answerer (subscriber): checked too.
Prints PASS or FAIL (exit status 0 or 1).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import sys
import traceback
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import aioice.ice
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError, VideoStreamTrack

from bench.janus import JanusServer, JanusSession, VideoRoomHandle

ROOM = 4242
INTERESTING = re.compile(
    r"^(m=|c=|a=(candidate|setup|mid|msid|ssrc|ssrc-group|group|ice-lite|extmap|rtcp-fb|"
    r"rtcp-mux|rtpmap|fmtp|end-of-candidates|sendonly|recvonly|sendrecv|inactive))"
)


@contextlib.contextmanager
def gather_only(address: str) -> Iterator[None]:
    """Let aioice gather host candidates on ``address`` only (it never gathers loopback)."""
    original = aioice.ice.get_host_addresses

    def only(use_ipv4: bool = True, use_ipv6: bool = True) -> list[str]:
        return [address]

    aioice.ice.get_host_addresses = only
    try:
        yield
    finally:
        aioice.ice.get_host_addresses = original


def interesting_lines(label: str, sdp: str) -> str:
    """The SDP lines that matter for interop (candidates, setup, mids, ssrcs, codecs...)."""
    lines = [line for line in sdp.splitlines() if INTERESTING.match(line)]
    return f"--- {label} ---\n" + "\n".join(lines)


def directions(sdp: str) -> dict[str, str]:
    """mid → direction of each m-section."""
    result: dict[str, str] = {}
    for section in sdp.split("\nm=")[1:]:
        mid = re.search(r"^a=mid:(\S+)", section, re.M)
        direction = re.search(r"^a=(sendrecv|sendonly|recvonly|inactive)\b", section, re.M)
        if mid:
            result[mid.group(1)] = direction.group(1) if direction else "sendrecv"
    return result


def setup_values(sdp: str) -> set[str]:
    return set(re.findall(r"^a=setup:(\w+)", sdp, re.MULTILINE))


@dataclass
class Receiver:
    """The subscriber's PeerConnection and the frames it decoded, per kind."""

    pc: RTCPeerConnection
    counts: Counter[str] = field(default_factory=Counter)
    tracks: list[MediaStreamTrack] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def attach(self) -> None:
        @self.pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            self.tracks.append(track)
            self.tasks.append(asyncio.create_task(self._consume(track)))

    async def _consume(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                await track.recv()
                self.counts[track.kind] += 1
                self.changed.set()

    async def answer(self, offer: str) -> str:
        await self.pc.setRemoteDescription(RTCSessionDescription(offer, "offer"))
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        return str(self.pc.localDescription.sdp)

    async def wait_for(self, done: Counter[str], tracks: int, limit: float) -> bool:
        """Until at least ``done`` frames per kind arrived (and ``tracks`` tracks exist)."""

        async def reached() -> None:
            while not (
                len(self.tracks) >= tracks and all(self.counts[k] >= n for k, n in done.items())
            ):
                self.changed.clear()
                await self.changed.wait()

        try:
            await asyncio.wait_for(reached(), limit)
        except TimeoutError:
            return False
        return True


async def publish(
    session: JanusSession, display: str, config: RTCConfiguration
) -> tuple[VideoRoomHandle, RTCPeerConnection, str]:
    """Join and publish aiortc's synthetic audio + video; returns handle, pc, Janus's answer."""
    handle = await session.attach_videoroom()
    await handle.join_publisher(ROOM, display)
    pc = RTCPeerConnection(config)
    pc.addTrack(AudioStreamTrack())
    pc.addTrack(VideoStreamTrack())
    await pc.setLocalDescription(await pc.createOffer())
    answer = await handle.publish(pc.localDescription.sdp)
    await pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
    # Janus lets anyone subscribe to a feed only once its PeerConnection is up.
    await asyncio.wait_for(handle.webrtc_up.wait(), 10)
    return handle, pc, answer


def ice_roles(name: str, pc: RTCPeerConnection) -> tuple[bool, str]:
    """Whether aiortc is the controlling ICE agent, and a line describing ICE/DTLS roles."""
    dtls = pc.getTransceivers()[0].receiver.transport
    controlling = bool(dtls.transport._connection.ice_controlling)
    role = "controlling" if controlling else "controlled"
    return controlling, f"{name}: aiortc ICE {role}, DTLS {dtls._role}"


async def run(limit: float, ice_address: str, show_sdp: bool) -> list[str]:
    """The check itself; returns the failures (empty: pass)."""
    failures: list[str] = []
    config = RTCConfiguration(iceServers=[])  # aiortc's default is Google's STUN server
    pcs: list[RTCPeerConnection] = []
    sessions: list[JanusSession] = []
    receiver: Receiver | None = None
    sub: VideoRoomHandle | None = None
    async with JanusServer(ice_address=ice_address) as janus:
        print(f"janus pid {janus.pid}, API {janus.url}, ICE on {janus.ice_address}")
        try:
            admin = await JanusSession.create(janus.url)
            sessions.append(admin)
            await (await admin.attach_videoroom()).create_room(ROOM)

            # 2. alice publishes, the subscriber receives her audio and video.
            sessions.append(await JanusSession.create(janus.url))
            alice, alice_pc, alice_answer = await publish(sessions[-1], "alice", config)
            pcs.append(alice_pc)
            sessions.append(await JanusSession.create(janus.url))
            sub = await sessions[-1].attach_videoroom()
            receiver = Receiver(RTCPeerConnection(config))
            pcs.append(receiver.pc)
            receiver.attach()
            assert alice.feed_id is not None
            offer = await sub.join_subscriber(ROOM, [alice.feed_id])
            sub_answer = await receiver.answer(offer)
            await sub.start(sub_answer)
            sdps = {
                "publisher offer (aiortc)": str(alice_pc.localDescription.sdp),
                "publisher answer (Janus)": alice_answer,
                "subscriber offer (Janus)": offer,
                "subscriber answer (aiortc)": sub_answer,
            }
            if show_sdp:
                for label, sdp in sdps.items():
                    print(interesting_lines(label, sdp))
            for label in ("publisher answer (Janus)", "subscriber offer (Janus)"):
                sdp = sdps[label]
                print(f"{label}: a=setup {sorted(setup_values(sdp))}")
                if "a=ice-lite" not in sdp:
                    failures.append(f"{label}: no a=ice-lite")
                if not re.search(
                    rf"^a=candidate:.* {re.escape(ice_address)} \d+ typ host", sdp, re.M
                ):
                    failures.append(f"{label}: no host candidate on {ice_address}")
            if not await receiver.wait_for(Counter(audio=10, video=10), 2, limit):
                failures.append(f"alice: frames {dict(receiver.counts)} after {limit:.0f} s")
            print(f"alice's feed: frames received {dict(receiver.counts)}")
            for name, pc in (("publisher", alice_pc), ("subscriber", receiver.pc)):
                controlling, line = ice_roles(name, pc)
                print(line)
                if not controlling:
                    failures.append(f"{name}: aiortc is not the controlling ICE agent")

            # 3. bob publishes: alice hears of him, the subscriber adds him.
            sessions.append(await JanusSession.create(janus.url))
            bob, bob_pc, _ = await publish(sessions[-1], "bob", config)
            pcs.append(bob_pc)
            change = await asyncio.wait_for(alice.publisher_changes.get(), limit)
            while not change.added:  # the join reply's (empty) list comes first
                change = await asyncio.wait_for(alice.publisher_changes.get(), limit)
            if [p.display for p in change.added] != ["bob"] or bob.feed_id not in alice.publishers:
                failures.append(f"alice's handle: unexpected publisher change {change}")
            assert bob.feed_id is not None
            more = await sub.subscribe_more([bob.feed_id])
            if more is None:
                failures.append("subscribe_more: Janus sent no offer")
            else:
                await sub.start(await receiver.answer(more))
                target = receiver.counts + Counter(audio=20, video=20)
                if not await receiver.wait_for(target, 4, limit):
                    failures.append(
                        f"after subscribe_more: {len(receiver.tracks)} tracks, "
                        f"frames {dict(receiver.counts)}"
                    )
                print(f"after subscribe_more: {len(receiver.tracks)} tracks")

            # 4. bob leaves: Janus offers on its own, on_offer answers, alice keeps flowing.
            offers: list[str] = []
            offered = asyncio.Event()

            async def on_offer(sdp: str) -> str:
                offers.append(sdp)
                offered.set()
                return await receiver.answer(sdp)

            sub.on_offer = on_offer
            await bob.unpublish()
            await bob_pc.close()
            try:
                await asyncio.wait_for(offered.wait(), limit)
                await asyncio.wait_for(sub.wait_negotiated(), limit)
            except TimeoutError:
                failures.append("bob left: no offer from Janus, or not answered")
            if offers:
                print(
                    f"bob left: Janus offered {len(offers)}x, directions {directions(offers[-1])}"
                )
                if show_sdp:
                    print(interesting_lines("bob left: Janus's offer", offers[-1]))
            before = receiver.counts["video"]
            await asyncio.sleep(1.0)
            if receiver.counts["video"] - before < 15:
                failures.append("after bob left: alice's video stalled")
        finally:
            if sub is not None:
                sub.on_offer = None
            for session in sessions:
                await session.destroy()
            if receiver is not None:
                for task in receiver.tasks:
                    task.cancel()
            for pc in pcs:
                await pc.close()
    return failures


def main() -> None:
    parser = argparse.ArgumentParser(description="Check bench.janus against a real Janus.")
    parser.add_argument("--limit", type=float, default=10.0, help="seconds per media wait")
    parser.add_argument("--ice-address", default="127.0.0.1", help="Janus's and aiortc's")
    parser.add_argument("--sdp", action="store_true", help="print the interesting SDP lines")
    args = parser.parse_args()
    try:
        with gather_only(args.ice_address):
            failures = asyncio.run(run(args.limit, args.ice_address, args.sdp))
    except Exception as exc:  # the check reports any failure as FAIL
        traceback.print_exc()
        failures = [f"{type(exc).__name__}: {exc}"]
    for failure in failures:
        print(f"  - {failure}")
    print("FAIL" if failures else "PASS")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
