"""Joins load-generator participants to a mediasoup meeting with `LeanEndpoint`s.

What a mediasoup-client app does, per participant: a send transport with one producer per
track (audio, video), and a receive transport with a consumer for every other participant's
producer, added as the room announces them (the adapter pushes ``newProducer`` to every
control connection in the room). Consumers are created paused and resumed once the endpoint
has their description, as mediasoup's demo does (resuming a video consumer asks its producer
for a keyframe). Each transport is one `LeanEndpoint`, the same media, pacing and receive
statistics as against Parlour and Janus; the SDP it needs is made by `bench.mediasoup`.

With simulcast (``layers``), each producer has one encoding per layer and each consumer is
made with the ``preferredLayers`` of its subscriber's render size. Consumers then offer no
``goog-remb``: the endpoints send no REMB, and mediasoup would otherwise hold every subscriber
to its initial estimate (600 kbps) instead of the layer asked for.

One `MediasoupRoomClient` per load-generator process and room, one control connection each.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from bench.lean import LeanEndpoint
from bench.loadgen import RENDER_LAYER, open_publisher
from bench.media_loop import EncodedLoop
from bench.mediasoup import (
    RTP_CAPABILITIES,
    ConsumerInfo,
    MediasoupControl,
    TransportInfo,
    client_dtls_parameters,
    producer_parameters,
    publish_answer,
    subscribe_offer,
)
from parlour.media import sdp as sdplib
from parlour.media.dtls import Certificate

log = logging.getLogger(__name__)

DTLS_TIMEOUT = 20.0


class _Member:
    def __init__(self, identity: str) -> None:
        self.identity = identity
        self.sub_endpoint: LeanEndpoint | None = None
        self.sub_transport: TransportInfo | None = None
        self.consumers: list[ConsumerInfo] = []
        self.queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue()  # (producer id, peer)
        self.task: asyncio.Task[None] | None = None
        self.layer: int | None = None  # simulcast: the spatial layer this subscriber wants


def _without_remb(capabilities: dict[str, Any]) -> dict[str, Any]:
    codecs = [
        {**c, "rtcpFeedback": [f for f in c["rtcpFeedback"] if f["type"] != "goog-remb"]}
        for c in capabilities["codecs"]
    ]
    return {**capabilities, "codecs": codecs}


class MediasoupRoomClient:
    """All participants of one load-generator process in one mediasoup room (router)."""

    def __init__(self, port: int, room: str) -> None:
        self.port = port
        self.room = room
        self.control: MediasoupControl | None = None
        self.producers: dict[str, str] = {}  # producer id → its peer, as the room announced
        self.members: dict[str, _Member] = {}
        self._lock = asyncio.Lock()

    async def _ensure(self) -> MediasoupControl:
        async with self._lock:
            if self.control is None:
                control = await MediasoupControl.connect(self.port)
                control.on_event = self._on_event
                joined = await control.request("join", room=self.room)
                for entry in joined["producers"]:
                    self.producers[entry["producerId"]] = entry["peer"]
                self.control = control
            return self.control

    def _on_event(self, event: dict[str, Any]) -> None:
        if event.get("event") != "newProducer" or event.get("room") != self.room:
            return
        producer, peer = str(event["producerId"]), str(event["peer"])
        self.producers[producer] = peer
        for member in self.members.values():
            if member.sub_endpoint is not None and member.identity != peer:
                member.queue.put_nowait((producer, peer))

    async def _transport(self, control: MediasoupControl, peer: str, cert: Certificate) -> Any:
        data = await control.request("createTransport", room=self.room, peer=peer)
        info = TransportInfo.parse(data)
        # The endpoint is always the DTLS client (it answers `passive` and is answered
        # `actpass`), so the transport can be connected before it sees any description.
        await control.request(
            "connectTransport",
            transportId=info.id,
            dtlsParameters=client_dtls_parameters(cert.fingerprint("sha-256")),
        )
        return info

    async def join(
        self,
        p: Any,
        media: EncodedLoop,
        certificate: Certificate,
        send_audio: bool,
        send_video: bool,
        layers: tuple[EncodedLoop, ...] = (),
    ) -> None:
        control = await self._ensure()
        member = _Member(p.identity)
        if layers and p.render:
            member.layer = RENDER_LAYER[p.render]
        p.room = member
        if send_audio or send_video:
            endpoint = await open_publisher(p, media, certificate, send_audio, send_video, layers)
            transport = await self._transport(control, p.identity, certificate)
            offer = sdplib.parse(endpoint.offer(direction="sendonly"))
            produced: dict[str, dict[str, Any]] = {}
            for section in offer.media:
                params = producer_parameters(section)
                await control.request(
                    "produce", transportId=transport.id, kind=section.kind, rtpParameters=params
                )
                produced[section.mid or ""] = params
            endpoint.apply_answer(publish_answer(offer, transport, produced))
            await asyncio.wait_for(endpoint.dtls_connected.wait(), DTLS_TIMEOUT)
        if p.subscribe:
            sub = LeanEndpoint(media, certificate, label=f"{p.identity}-sub")
            await sub.open()
            p.endpoints.append(sub)
            member.sub_transport = await self._transport(control, p.identity, certificate)
            member.sub_endpoint = sub
            others = [(pid, peer) for pid, peer in self.producers.items() if peer != p.identity]
            for entry in others:
                member.queue.put_nowait(entry)
            self.members[p.identity] = member
            member.task = asyncio.get_running_loop().create_task(self._follow(control, member))
            if others:
                # Others already publish: joining means receiving them.
                await asyncio.wait_for(sub.dtls_connected.wait(), DTLS_TIMEOUT)
        else:
            self.members[p.identity] = member

    async def _follow(self, control: MediasoupControl, member: _Member) -> None:
        """Consume every producer announced to `member`, a burst at a time."""
        while True:
            batch = [await member.queue.get()]
            while not member.queue.empty():
                batch.append(member.queue.get_nowait())
            try:
                await self._consume(control, member, batch)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("mediasoup: %s could not consume %s", member.identity, batch)

    async def _consume(
        self, control: MediasoupControl, member: _Member, batch: list[tuple[str, str]]
    ) -> None:
        endpoint, transport = member.sub_endpoint, member.sub_transport
        assert endpoint is not None and transport is not None
        added: list[ConsumerInfo] = []
        extra: dict[str, Any] = {"rtpCapabilities": RTP_CAPABILITIES}
        if member.layer is not None:
            extra = {
                "rtpCapabilities": _without_remb(RTP_CAPABILITIES),
                "preferredLayers": {"spatialLayer": member.layer},
            }
        for producer, peer in batch:
            data = await control.request(
                "consume", transportId=transport.id, producerId=producer, paused=True, **extra
            )
            added.append(ConsumerInfo(data["id"], data["kind"], peer, data["rtpParameters"]))
        member.consumers.extend(added)
        endpoint.answer(subscribe_offer(transport, member.consumers))
        for consumer in added:
            await control.request("resumeConsumer", consumerId=consumer.id)

    async def set_render(self, p: Any, render: str) -> None:
        """Simulcast: `p` now shows others at ``render`` size: its consumers' layer changes."""
        member = self.members.get(p.identity)
        if member is None or self.control is None:
            return
        member.layer = RENDER_LAYER[render]
        for consumer in list(member.consumers):
            if consumer.kind == "video":
                await self.control.request(
                    "setPreferredLayers", consumerId=consumer.id, spatialLayer=member.layer
                )

    async def leave(self, p: Any) -> None:
        member = self.members.pop(p.identity, None)
        if member is not None and member.task is not None:
            member.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await member.task
        if self.control is not None:
            with contextlib.suppress(Exception):
                await self.control.request("closePeer", room=self.room, peer=p.identity)

    async def close(self) -> None:
        for identity in list(self.members):
            member = self.members.pop(identity)
            if member.task is not None:
                member.task.cancel()
        if self.control is not None:
            control, self.control = self.control, None
            with contextlib.suppress(Exception):
                await control.request("closeRoom", room=self.room, timeout=5)
            await control.close()
