"""Joins load-generator participants to a Janus VideoRoom with `LeanEndpoint`s.

Janus's model differs from twilio-video's in one way that matters here: a participant has
two peer connections, one to publish (Janus answers its offer) and one multistream
subscription to every other publisher (Janus offers, we answer). Each is a `LeanEndpoint`;
the media, the pacing and the receive statistics are exactly those used against Parlour.

Every participant joins as a VideoRoom "publisher" (the way to be told about the room's
publishers, even for a pure subscriber that never publishes) and subscribes to every other
publisher as Janus announces it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from bench.janus import JanusError, JanusSession, VideoRoomHandle
from bench.lean import LeanEndpoint
from bench.loadgen import RENDER_LAYER, open_publisher
from bench.media_loop import EncodedLoop
from parlour.media.dtls import Certificate

log = logging.getLogger(__name__)


class _Member:
    def __init__(self, session: JanusSession, pub: VideoRoomHandle) -> None:
        self.session = session
        self.pub = pub
        self.sub: VideoRoomHandle | None = None
        self.sub_endpoint: LeanEndpoint | None = None
        self.task: asyncio.Task[None] | None = None
        self.subscribed: set[int] = set()
        self.substream: int | None = None  # simulcast: the layer this subscriber receives


class JanusRoomClient:
    """All participants of one load-generator process in one Janus room."""

    def __init__(self, url: str, room_id: int) -> None:
        self.url = url
        self.room_id = room_id
        self._room_ready = False
        self.members: dict[str, _Member] = {}

    async def _ensure_room(self, handle: VideoRoomHandle) -> None:
        if self._room_ready:
            return
        try:
            await handle.create_room(self.room_id)
        except JanusError as exc:
            if exc.code != 427:  # 427: the room already exists (another process made it)
                raise
        self._room_ready = True

    async def join(
        self,
        p: Any,
        media: EncodedLoop,
        certificate: Certificate,
        send_audio: bool,
        send_video: bool,
        layers: tuple[EncodedLoop, ...] = (),
    ) -> None:
        session = await JanusSession.create(self.url)
        pub = await session.attach_videoroom()
        member = _Member(session, pub)
        if layers and p.render:
            member.substream = RENDER_LAYER[p.render]
        self.members[p.identity] = member
        p.room = member
        await self._ensure_room(pub)
        await pub.join_publisher(self.room_id, p.identity)
        if send_audio or send_video:
            endpoint = await open_publisher(p, media, certificate, send_audio, send_video, layers)
            answer = await pub.publish(endpoint.offer(direction="sendonly"))
            endpoint.apply_answer(answer)
            await asyncio.wait_for(endpoint.dtls_connected.wait(), 20)
            await asyncio.wait_for(pub.webrtc_up.wait(), 20)
        if p.subscribe:
            sub_endpoint = LeanEndpoint(media, certificate, label=f"{p.identity}-sub")
            await sub_endpoint.open()
            p.endpoints.append(sub_endpoint)
            member.sub_endpoint = sub_endpoint
            member.task = asyncio.get_running_loop().create_task(self._follow(member))
            if pub.publishers:
                # Others already publish: joining means receiving them.
                await asyncio.wait_for(sub_endpoint.dtls_connected.wait(), 20)

    async def _follow(self, member: _Member) -> None:
        """Subscribe to every publisher Janus announces (the join reply's list first)."""
        endpoint = member.sub_endpoint
        assert endpoint is not None
        session = member.session

        async def answer(offer: str) -> str:
            return endpoint.answer(offer)

        while True:
            try:
                await self._follow_once(member, session, answer)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("janus subscription failed")

    async def _follow_once(self, member: _Member, session: JanusSession, answer: Any) -> None:
        pub = member.pub
        endpoint = member.sub_endpoint
        assert endpoint is not None
        change = await pub.publisher_changes.get()
        feeds = [x.feed_id for x in change.added if x.feed_id not in member.subscribed]
        # Coalesce a burst of announcements into one renegotiation.
        while not pub.publisher_changes.empty():
            more = pub.publisher_changes.get_nowait()
            feeds.extend(x.feed_id for x in more.added if x.feed_id not in member.subscribed)
        feeds = [f for f in dict.fromkeys(feeds) if f in pub.publishers]
        if not feeds:
            return
        for attempt in range(20):
            try:
                if member.sub is None:
                    sub = await session.attach_videoroom()
                    sub.on_offer = answer
                    offer = await sub.join_subscriber(self.room_id, feeds)
                    member.sub = sub
                else:
                    offer = await member.sub.subscribe_more(feeds)
                if offer is not None:
                    assert member.sub is not None
                    await member.sub.start(endpoint.answer(offer))
                if member.substream is not None and member.sub is not None:
                    await member.sub.configure_substream(member.substream)
                member.subscribed.update(feeds)
                break
            except JanusError as exc:
                if exc.code != 428 or attempt == 19:  # 428: feed not up yet
                    log.warning("janus subscribe failed: %s", exc)
                    return
                await asyncio.sleep(0.1)

    async def set_render(self, p: Any, render: str) -> None:
        """Simulcast: `p` now shows others at ``render`` size: its layer changes."""
        member = self.members.get(p.identity)
        if member is None:
            return
        member.substream = RENDER_LAYER[render]
        if member.sub is not None:
            await member.sub.configure_substream(member.substream)

    async def leave(self, p: Any) -> None:
        member = self.members.pop(p.identity, None)
        if member is None:
            return
        if member.sub is not None:
            member.sub.on_offer = None  # Janus re-offers as others leave: nothing to answer
        if member.task is not None:
            member.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await member.task
        with contextlib.suppress(Exception):
            await member.session.destroy()

    async def close(self) -> None:
        for identity in list(self.members):
            member = self.members.pop(identity)
            if member.task is not None:
                member.task.cancel()
            with contextlib.suppress(Exception):
                await member.session.destroy()
