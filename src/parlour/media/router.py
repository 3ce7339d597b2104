"""A room's media router: producers (published tracks) fan out to consumers (subscriptions).

Named after mediasoup's objects. The forwarding path is synchronous and allocation-light:

    Peer.on_rtp(pkt) → Producer.forward(pkt) → history → for each Consumer: rewrite → send

A consumer rewrites SSRC, payload type, sequence number, timestamp and header-extension ids
(`rtp.RtpRewriter`). The producer keeps the packets it received, once for all its consumers;
a consumer answers a NACK by mapping the sequence number back and rewriting that packet
again. The payload is never touched: no decoding, no re-packetization.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Protocol

from parlour.domain.ports import TrackTap
from parlour.media import rtp
from parlour.media.negotiation import PublishedTrackInfo, SentTrackInfo

__all__ = ["Consumer", "DataProducer", "Producer", "Router", "RtpSink"]

log = logging.getLogger(__name__)

KEYFRAME_INTERVAL = 0.3  # at most one PLI per producer per 300 ms
VIDEO_HISTORY = 1024
AUDIO_HISTORY = 128


class RtpSink(Protocol):
    """What a consumer sends through: its subscriber's SRTP transport."""

    def send_rtp(self, packet: bytes) -> None: ...
    def send_rtcp(self, packet: bytes) -> None: ...


def _extension_map(track: PublishedTrackInfo | SentTrackInfo) -> dict[str, int]:
    return {e.uri: e.id for e in track.header_extensions}


class Consumer:
    """One subscriber's copy of one producer."""

    __slots__ = (
        "_rtx_seq",
        "info",
        "keyframe_requests",
        "pt_map",
        "producer",
        "rewriter",
        "sink",
    )

    def __init__(self, producer: Producer, info: SentTrackInfo, sink: RtpSink) -> None:
        self.producer = producer
        self.info = info
        self.sink = sink
        extensions = rtp.ExtensionRewriter(
            _extension_map(producer.info), _extension_map(info), mid=info.mid
        )
        clock = info.codec.clock_rate or 90000
        self.rewriter = rtp.RtpRewriter(
            info.ssrc, info.codec.payload_type, extensions=extensions, clock_rate=clock
        )
        # Publisher payload type → ours; only the forwarded codec maps.
        self.pt_map: dict[int, int] = {}
        for codec in producer.info.codecs:
            if not codec.is_rtx and codec.name.lower() == info.codec.name.lower():
                self.pt_map[codec.payload_type] = info.codec.payload_type
        self._rtx_seq = 0
        self.keyframe_requests = 0

    def forward(self, packet: bytes, payload_type: int) -> None:
        """Send one publisher packet to this subscriber (hot path)."""
        out_pt = self.pt_map.get(payload_type)
        if out_pt is None:
            return
        rewriter = self.rewriter
        rewriter.payload_type = out_pt
        try:
            out = rewriter.rewrite(packet)
        except rtp.RtpError:
            return
        self.sink.send_rtp(out)

    def retransmit(self, seqs: list[int]) -> None:
        """Answer a subscriber NACK from the producer's history (RTX-wrapped when negotiated).

        Our sequence numbers are the publisher's plus the rewriter's offset, so each one maps
        back to the packet the producer kept; it is rewritten again, and sent only if that
        lands on the number asked for (not after a source switch moved the offset).
        """
        info = self.info
        rewriter = self.rewriter
        history = self.producer.history
        for seq in seqs:
            original = history.get((seq - rewriter.seq_offset) & 0xFFFF)
            if original is None or rtp.ssrc(original) != rewriter.source_ssrc:
                continue
            out_pt = self.pt_map.get(original[1] & 0x7F)
            if out_pt is None:
                continue
            rewriter.payload_type = out_pt
            try:
                packet = rewriter.rewrite(original)
            except rtp.RtpError:
                continue
            if rtp.seq(packet) != seq:
                continue
            if info.rtx_ssrc is not None and info.rtx_payload_type is not None:
                self._rtx_seq = (self._rtx_seq + 1) & 0xFFFF
                packet = rtp.wrap_rtx(
                    packet,
                    ssrc=info.rtx_ssrc,
                    payload_type=info.rtx_payload_type,
                    seq=self._rtx_seq,
                )
            self.sink.send_rtp(packet)

    def sender_report(self, report: rtp.SenderReport) -> None:
        """Relay the publisher's SR, translated, so the subscriber can sync audio and video."""
        translated = self.rewriter.translate_sr(report)
        if translated is not None:
            self.sink.send_rtcp(bytes(translated))


class Producer:
    """One published audio/video track, as negotiated with its publisher."""

    __slots__ = (
        "clock_rate",
        "consumers",
        "history",
        "info",
        "keyframe_deferred",
        "last_keyframe_request",
        "publisher_sid",
        "request_keyframe_cb",
        "rtx",
        "ssrcs",
        "tap",
        "tracker",
    )

    def __init__(
        self,
        publisher_sid: str,
        info: PublishedTrackInfo,
        request_keyframe: Callable[[int], None],
    ) -> None:
        self.publisher_sid = publisher_sid
        self.info = info
        self.consumers: list[Consumer] = []
        self.tap: TrackTap | None = None  # the recording tap, if the track has one
        self.request_keyframe_cb = request_keyframe
        self.last_keyframe_request = -1e9
        self.keyframe_deferred = False
        self.ssrcs = set(info.ssrcs)
        # RTX ssrc → (media ssrc, RTX payload type → media payload type).
        self.rtx: dict[int, int] = {rtx_ssrc: media for media, rtx_ssrc in info.rtx_ssrcs}
        self.tracker: dict[int, rtp.LossTracker] = {s: rtp.LossTracker(s) for s in info.ssrcs}
        codec = info.codec
        self.clock_rate = (codec.clock_rate if codec is not None else 0) or 90000
        # What was received, by the publisher's sequence number: consumers answer NACKs from
        # it, so a packet is kept once however many subscribers it went to.
        size = VIDEO_HISTORY if info.kind == "video" else AUDIO_HISTORY
        self.history = rtp.PacketHistory(size)

    @property
    def track_id(self) -> str:
        return self.info.track_id

    @property
    def kind(self) -> str:
        return self.info.kind

    def forward(self, packet: bytes) -> None:
        """Fan one publisher packet out to every consumer (hot path)."""
        tap = self.tap
        if tap is not None:
            tap.feed(packet)
        self.history.put(packet)
        payload_type = packet[1] & 0x7F
        for consumer in self.consumers:
            consumer.forward(packet, payload_type)

    def forward_rtx(self, packet: bytes) -> bytes | None:
        """A retransmission from the publisher: unwrap and forward it like the original.

        Returns the original packet (for the receive statistics), or None if not ours.
        """
        media_ssrc = self.rtx.get(rtp.ssrc(packet))
        if media_ssrc is None:
            return None
        rtx_pt = packet[1] & 0x7F
        media_pt = next(
            (
                int(c.apt)
                for c in self.info.codecs
                if c.is_rtx and c.payload_type == rtx_pt and c.apt is not None
            ),
            None,
        )
        if media_pt is None:
            return None
        try:
            original = rtp.unwrap_rtx(packet, ssrc=media_ssrc, payload_type=media_pt)
        except rtp.RtpError:
            return None
        if original is not None:
            self.forward(original)
        return original

    def request_keyframe(self, now: float) -> bool:
        """Ask the publisher for a keyframe, at most every KEYFRAME_INTERVAL.

        A request within the interval is not lost: one deferred request goes out when the
        interval ends (a subscriber that arrives just after another still starts promptly).
        Returns whether a request was sent now.
        """
        if self.kind != "video":
            return False
        wait = self.last_keyframe_request + KEYFRAME_INTERVAL - now
        if wait > 0:
            if not self.keyframe_deferred:
                self.keyframe_deferred = True
                try:
                    loop = asyncio.get_running_loop()
                except RuntimeError:  # no loop (pure unit tests): the request is dropped
                    self.keyframe_deferred = False
                else:
                    loop.call_later(wait, self._deferred_keyframe)
            return False
        self.last_keyframe_request = now
        ssrc = self.info.ssrc
        if ssrc is not None:
            self.request_keyframe_cb(ssrc)
        return True

    def _deferred_keyframe(self) -> None:
        self.keyframe_deferred = False
        if self.consumers or self.tap is not None:
            self.request_keyframe(time.monotonic())

    def sender_report(self, report: rtp.SenderReport) -> None:
        for consumer in self.consumers:
            consumer.sender_report(report)


class DataProducer:
    """A published data track: the publisher's data channel (label = track id)."""

    def __init__(
        self,
        publisher_sid: str,
        label: str,
        ordered: bool,
        max_retransmits: int | None,
        max_packet_life_time: int | None,
    ) -> None:
        self.publisher_sid = publisher_sid
        self.label = label
        self.ordered = ordered
        self.max_retransmits = max_retransmits
        self.max_packet_life_time = max_packet_life_time
        # Subscriber participant SID → how to deliver to it.
        self.subscribers: dict[str, Callable[[str | bytes], None]] = {}

    def forward(self, message: str | bytes) -> None:
        for deliver in self.subscribers.values():
            deliver(message)


class Router:
    """All producers of one room, by (publisher participant SID, track id)."""

    def __init__(self, room_sid: str) -> None:
        self.room_sid = room_sid
        self.producers: dict[tuple[str, str], Producer] = {}
        self.data_producers: dict[tuple[str, str], DataProducer] = {}
        self.listeners: list[Callable[[], None]] = []

    def changed(self) -> None:
        """Producers appeared or went: subscribers re-check their wanted tracks."""
        for listener in list(self.listeners):
            listener()

    def add_producer(self, producer: Producer) -> None:
        self.producers[(producer.publisher_sid, producer.track_id)] = producer
        self.changed()

    def remove_producer(self, publisher_sid: str, track_id: str) -> Producer | None:
        producer = self.producers.pop((publisher_sid, track_id), None)
        if producer is not None:
            producer.consumers.clear()
            self.changed()
        return producer

    def add_data_producer(self, producer: DataProducer) -> None:
        self.data_producers[(producer.publisher_sid, producer.label)] = producer
        self.changed()

    def remove_data_producer(self, publisher_sid: str, label: str) -> None:
        if self.data_producers.pop((publisher_sid, label), None) is not None:
            self.changed()
