"""A room's media router: producers (published tracks) fan out to consumers (subscriptions).

Named after mediasoup's objects. The forwarding path is synchronous and allocation-light:

    Peer._on_rtp(pkt) → Producer.forward(pkt) → history → for each Consumer: rewrite → send

With the C fast path (`fastpath`), the consumers of a plain producer each have a `Lane`
that owns their rewriter's state, and the producer's `FanOut` rewrites, protects and sends
to all of them in one call; `Consumer.forward` stays the Python reference for the others.

A consumer rewrites SSRC, payload type, sequence number, timestamp and header-extension ids
(`rewrite.RtpRewriter`). The producer keeps the packets it received, once for all its consumers;
a consumer answers a NACK by mapping the sequence number back and rewriting that packet
again. The payload is never touched: no decoding, no re-packetization.

Lifecycle (as in mediasoup): the router owns its maps and nothing else edits them.
`Router.produce` / `Router.produce_data` add a producer, `Router.consume` /
`Router.consume_data` attach a consumer to one. `Producer.close()` closes its consumers (each
owner hears it through its `on_producer_closed` callback) and its recording tap, and leaves the
router; `Consumer.close()` detaches from its producer. Observers (`Router.observe`) hear every
change of the producer maps, once per `Router.batch()`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from types import MappingProxyType
from typing import Any, Protocol

from parlour.domain.ports import TrackTap
from parlour.media import fastpath, rewrite, rtcp, rtp, simulcast, stats
from parlour.media.active_speaker import ActiveSpeakerObserver
from parlour.media.negotiation import PublishedTrackInfo, SentTrackInfo
from parlour.media.speakers import audio_level

__all__ = ["Consumer", "DataConsumer", "DataProducer", "Layer", "Producer", "Router", "RtpSink"]

log = logging.getLogger(__name__)

KEYFRAME_INTERVAL = 0.3  # at most one PLI per producer per 300 ms
VIDEO_HISTORY = 1024
AUDIO_HISTORY = 128
LAYER_IDLE = 1.0  # a simulcast layer with no packet for this long is inactive
ALL_TEMPORAL = 2  # the highest VP8 temporal layer id libwebrtc uses (three layers)


class RtpSink(Protocol):
    """What a consumer sends through: its subscriber's SRTP transport."""

    def send_rtp(self, packet: bytes) -> None: ...
    def send_rtcp(self, packet: bytes) -> None: ...


def _extension_map(track: PublishedTrackInfo | SentTrackInfo) -> dict[str, int]:
    return {e.uri: e.id for e in track.header_extensions}


class Layer:
    """One simulcast layer (one SSRC) of a producer, lowest resolution first.

    Counters are written on the hot path; ``bitrate`` by the owner's RTCP loop. ``width``
    and ``height`` are those of the last VP8 keyframe (0 until one, or for other codecs).
    """

    __slots__ = (
        "bitrate",
        "height",
        "history",
        "index",
        "keyframes",
        "last_at",
        "last_keyframe_request",
        "octets",
        "packets",
        "ssrc",
        "width",
    )

    def __init__(self, index: int, ssrc: int) -> None:
        self.index = index
        self.ssrc = ssrc
        self.history = rtp.PacketHistory(VIDEO_HISTORY)  # by this layer's sequence numbers
        self.octets = 0  # since the last bitrate measurement
        self.bitrate = 0
        self.packets = 0
        self.keyframes = 0
        self.last_at = -1e9  # arrival of the last packet (monotonic seconds)
        self.last_keyframe_request = -1e9
        self.width = 0
        self.height = 0

    def active(self, now: float) -> bool:
        """Packets arrived within `LAYER_IDLE` seconds."""
        return now - self.last_at < LAYER_IDLE


class Consumer:
    """One subscriber's copy of one producer (made by `Router.consume`).

    Of a simulcast producer it forwards one layer (`switch`, `set_layers`), switching at
    keyframes, with the VP8 numbering made continuous (`vp8`).
    """

    __slots__ = (
        "_lane",
        "_layer",
        "_on_producer_closed",
        "_paused_at",
        "_rtx_seq",
        "closed",
        "info",
        "keyframe_requests",
        "paused",
        "preferred_layer",
        "pt_map",
        "producer",
        "rewriter",
        "sink",
        "switch",
        "vp8",
    )

    def __init__(
        self,
        producer: Producer,
        info: SentTrackInfo,
        sink: RtpSink,
        on_producer_closed: Callable[[Consumer], None] | None = None,
    ) -> None:
        self.producer = producer
        self.info = info
        self.sink = sink
        self.closed = False
        self._on_producer_closed = on_producer_closed
        extensions = rewrite.ExtensionRewriter(
            _extension_map(producer.info), _extension_map(info), mid=info.mid
        )
        clock = info.codec.clock_rate or 90000
        self.rewriter = rewrite.RtpRewriter(
            info.ssrc, info.codec.payload_type, extensions=extensions, clock_rate=clock
        )
        # Publisher payload type → ours; only the forwarded codec maps.
        self.pt_map: dict[int, int] = {}
        for codec in producer.info.codecs:
            if not codec.is_rtx and codec.name.lower() == info.codec.name.lower():
                self.pt_map[codec.payload_type] = info.codec.payload_type
        self._rtx_seq = 0
        self.keyframe_requests = 0
        self.paused = False
        self._paused_at = 0.0
        # Simulcast: the layer wanted (None: the best there is), the switch, VP8 numbering.
        self.preferred_layer: int | None = None
        self.switch: simulcast.LayerSwitch | None = None
        self.vp8: simulcast.Vp8Rewriter | None = None
        self._layer: Layer | None = None  # the layer forwarded now
        if producer.layers:
            self.switch = simulcast.LayerSwitch(producer.best_layer(len(producer.layers) - 1))
            if producer.codec_name == "vp8":
                self.vp8 = simulcast.Vp8Rewriter()
        # The C forwarding lane (`fastpath`), which then owns the rewriter's state.
        self._lane: Any = None
        self._make_lane()

    # -- the C fast path ------------------------------------------------------------------

    @property
    def lane(self) -> Any:
        """This consumer's `_fastpath.Lane` (its producer's `FanOut` forwards through it), or
        None: forwarded in Python (fast path off or not built, VP8 temporal layers being
        dropped, transport-wide CC numbered in Python only, or a sink without a C send
        side). A simulcast consumer's lane is in the `FanOut` of the layer it forwards;
        switches between layers are decided in Python (`forward_layer`)."""
        return self._lane

    def _make_lane(self) -> None:
        native = fastpath.native
        egress = getattr(self.sink, "egress", None)
        tcc = self.rewriter.transport_cc
        vp8 = self.vp8
        if (
            native is None
            or egress is None
            or self.closed
            or (vp8 is not None and vp8.filtering)
            or (tcc is not None and tcc.state is None)
        ):
            return
        table = bytearray(b"\xff" * 128)
        for publisher_pt, our_pt in self.pt_map.items():
            table[publisher_pt & 0x7F] = our_pt
        lane = native.Lane(
            egress, bytes(table), self.rewriter.extensions, tcc.state if tcc is not None else None
        )
        lane.load(self.rewriter._dump())
        if vp8 is not None:
            lane.vp8_pic_off, lane.vp8_tl0_off = vp8.offsets
        self._lane = lane

    def _sync_lane(self) -> None:
        """Make or drop the lane as the VP8 temporal limit now calls for (temporal layers
        are dropped in Python only), and regroup the producer's fan-out if it changed."""
        vp8 = self.vp8
        if vp8 is None or fastpath.native is None:
            return
        if self._lane is not None and vp8.filtering:
            self._drop_lane()
        elif self._lane is None and not vp8.filtering:
            self._make_lane()
            if self._lane is None:
                return
        else:
            return
        self.producer._regroup()

    def _drop_lane(self) -> None:
        lane, self._lane = self._lane, None
        if lane is not None:
            self.rewriter._load(lane.dump())

    @contextmanager
    def _rewriter_state(self) -> Iterator[rewrite.RtpRewriter]:
        """The rewriter, up to date (a lane's state is handed to it and back)."""
        lane = self._lane
        if lane is None:
            yield self.rewriter
            return
        self.rewriter._load(lane.dump())
        try:
            yield self.rewriter
        finally:
            lane.load(self.rewriter._dump())

    def rewriter_state(self) -> rewrite.RtpRewriter:
        """The rewriter with the state of what was sent so far (a copy of a lane's state,
        for reading: sequence numbers, counters)."""
        with self._rewriter_state() as rewriter:
            return rewriter

    def set_transport_cc(self, tcc: rewrite.TransportCc | None) -> None:
        """Stamp transport-wide sequence numbers with ``tcc`` (None: do not). The lane (if
        any) is rebuilt: it stamps in C when ``tcc`` has C state (`TransportCc.state`)."""
        if tcc is self.rewriter.transport_cc:
            return
        self._drop_lane()
        self.rewriter.transport_cc = tcc
        self._make_lane()
        self.producer._regroup()

    @property
    def layer(self) -> int:
        """The simulcast layer forwarded now (`simulcast.NO_LAYER`: none; 0 without simulcast)."""
        return self.switch.current if self.switch is not None else 0

    @property
    def target_layer(self) -> int:
        """The simulcast layer being switched to (0 without simulcast)."""
        return self.switch.target if self.switch is not None else 0

    def set_layers(self, spatial: int | None, temporal: int, now: float) -> None:
        """Forward simulcast layer ``spatial`` (None: the best one arriving; an inactive one
        falls back to the best active one below, else above) and VP8 temporal layers up to
        ``temporal``. Switching waits for a keyframe, asked for here. No-op without simulcast."""
        switch = self.switch
        if switch is None:
            return
        self.preferred_layer = spatial
        if self.vp8 is not None:
            self.vp8.set_max_temporal(temporal)
            self._sync_lane()
        self.retarget(now)

    def retarget(self, now: float) -> None:
        """Aim at the best layer for the preference among those arriving now, and ask for a
        keyframe of it while waiting (the owner calls this about once a second)."""
        switch = self.switch
        if switch is None or self.closed:
            return
        producer = self.producer
        wanted = self.preferred_layer
        if wanted is None:
            wanted = len(producer.layers) - 1
        target = producer.best_layer(wanted, now)
        switch.set_target(target)
        self._sync_lane()  # a raised temporal limit took effect meanwhile: back to C
        producer._place(self)
        if switch.waiting and not self.paused:
            producer.request_keyframe(now, producer.layers[target])

    def request_keyframe(self, now: float) -> None:
        """The subscriber asked for a keyframe (PLI/FIR): ask the publisher, for the layer
        this consumer forwards or is switching to."""
        switch = self.switch
        if switch is None:
            self.producer.request_keyframe(now)
        else:
            self.producer.request_keyframe(now, self.producer.layers[switch.target])

    def close(self) -> None:
        """Stop receiving from the producer (idempotent; the owner is not called back)."""
        if self.closed:
            return
        self.closed = True
        self.producer._detach(self)
        self._drop_lane()

    def pause(self) -> None:
        """Stop forwarding (switched off): detached from the producer's fan-out, so a paused
        consumer costs nothing per packet. NACKs are still answered."""
        if not self.paused and not self.closed:
            self.paused = True
            self._paused_at = time.monotonic()
            self.producer._detach(self)

    def resume(self, now: float) -> None:
        """Forward again, from the next keyframe (asked for now)."""
        if self.paused and not self.closed:
            self.paused = False
            self.producer._attach(self)
            if self.switch is not None:
                self.switch.restart()  # what arrives next may be mid-GOP of any layer
                self.retarget(now)
            else:
                self.producer.request_keyframe(now)

    def _producer_closed(self) -> None:
        self.closed = True
        self._drop_lane()
        callback, self._on_producer_closed = self._on_producer_closed, None
        if callback is not None:
            callback(self)

    def forward(self, packet: bytes, payload_type: int) -> None:
        """Send one publisher packet to this subscriber (hot path)."""
        lane = self._lane
        if lane is not None:  # normally its producer's FanOut does this, for all lanes
            self._send_on_lane(lane, packet)
            return
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

    def _send_on_lane(self, lane: Any, packet: bytes) -> None:
        """Rewrite ``packet`` with the lane's numbering (in C) and send it, as the fan-out
        would (a consumer forwarded one by one: a NACK-driven or test path)."""
        out = lane.rewrite(packet)
        if out is not None:
            self.sink.send_rtp(out)

    def forward_layer(
        self, packet: bytes, payload_type: int, layer: Layer, keyframe: bool, offset: int
    ) -> None:
        """Send one packet of a simulcast producer, if it is of the layer forwarded (hot
        path of simulcast consumers); switch layers at the target's keyframe."""
        switch = self.switch
        assert switch is not None
        lane = self._lane
        if layer.index != switch.current:
            if layer.index != switch.target or not keyframe:
                return
            with self._rewriter_state():
                self._switch_to(layer, packet, offset)
            if lane is not None and self.vp8 is not None:
                lane.vp8_pic_off, lane.vp8_tl0_off = self.vp8.offsets
            switch.accept(layer.index, keyframe)
            self.producer._place(self)
        if lane is not None:  # normally the layer's FanOut does this, for all lanes
            self._send_on_lane(lane, packet)
            return
        out_pt = self.pt_map.get(payload_type)
        if out_pt is None:
            return
        rewriter = self.rewriter
        vp8 = self.vp8
        if vp8 is not None and vp8.active and not vp8.keep(packet, offset):
            rewriter.skip(packet)
            return
        rewriter.payload_type = out_pt
        try:
            out = rewriter.rewrite(packet)
        except rtp.RtpError:
            return
        if vp8 is not None and vp8.active:
            out = vp8.rewrite(out, simulcast.payload_offset(out))
        self.sink.send_rtp(out)

    def _switch_to(self, layer: Layer, packet: bytes, offset: int) -> None:
        """Continue the output stream with ``layer``, whose keyframe ``packet`` starts."""
        rewriter = self.rewriter
        old = self._layer
        last: bytes | None = None
        last_seq = rewriter.last_seq
        clock = self.producer.clock_rate
        step: int | None = None
        if last_seq is not None and old is not None and rewriter.source_ssrc == old.ssrc:
            last = old.history.get((last_seq - rewriter.seq_offset) & 0xFFFF)
        switch = self.switch
        if last_seq is None:
            pass
        elif last is not None and switch is not None and switch.current != simulcast.NO_LAYER:
            last_ts = rewriter.last_timestamp
            assert last_ts is not None and old is not None
            source_last = (last_ts - rewriter.ts_offset) & 0xFFFFFFFF
            source_step = ((rtp.timestamp(packet) - source_last + 0x80000000) & 0xFFFFFFFF) - (
                0x80000000
            )
            wall = int((layer.last_at - old.last_at) * clock)
            step = simulcast.ts_step(source_step, wall, clock)
        else:  # resumed after a pause: the gap in wall time
            step = max(1, int((layer.last_at - self._paused_at) * clock))
        if self.vp8 is not None:
            self.vp8.switched(
                packet,
                offset,
                last,
                simulcast.payload_offset(last) if last is not None else 0,
            )
        rewriter.switch_source(step)
        self._layer = layer

    def retransmit(self, seqs: list[int]) -> None:
        """Answer a subscriber NACK from the producer's history (RTX-wrapped when negotiated).

        Our sequence numbers are the publisher's plus the rewriter's offset, so each one maps
        back to the packet the producer kept; it is rewritten again, and sent only if that
        lands on the number asked for (not after a source switch moved the offset).
        """
        send = self.sink.send_rtp
        with self._rewriter_state():
            for packet in self._repairs(seqs):
                send(packet)

    def probe_packets(self, count: int) -> list[bytes]:
        """Retransmissions (RTX) of up to ``count`` packets sent last, as bandwidth-probe
        padding the subscriber discards (none without RTX)."""
        with self._rewriter_state() as rewriter:
            last = rewriter.last_seq
            if self.info.rtx_ssrc is None or last is None or self.paused or count <= 0:
                return []
            return list(self._repairs([(last - i) & 0xFFFF for i in range(count - 1, -1, -1)]))

    def _repairs(self, seqs: list[int]) -> Iterator[bytes]:
        info = self.info
        rewriter = self.rewriter
        history = self.producer.history if self._layer is None else self._layer.history
        vp8 = self.vp8 if self.vp8 is not None and self.vp8.active else None
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
            if vp8 is not None:
                packet = vp8.rewrite(packet, simulcast.payload_offset(packet))
            if info.rtx_ssrc is not None and info.rtx_payload_type is not None:
                self._rtx_seq = (self._rtx_seq + 1) & 0xFFFF
                packet = rtp.wrap_rtx(
                    packet,
                    ssrc=info.rtx_ssrc,
                    payload_type=info.rtx_payload_type,
                    seq=self._rtx_seq,
                )
            yield packet

    def sender_report(self, report: rtcp.SenderReport) -> None:
        """Relay the publisher's SR, translated, so the subscriber can sync audio and video."""
        with self._rewriter_state() as rewriter:
            translated = rewriter.translate_sr(report)
        if translated is not None:
            self.sink.send_rtcp(bytes(translated))


class Producer:
    """One published audio/video track, as negotiated with its publisher (made by
    `Router.produce`).

    `consumers` and `tap` are read on the hot path; change them only through `Router.consume`,
    `Consumer.close`, `set_tap` and `close`.
    """

    __slots__ = (
        "_fan",
        "_layer_fans",
        "_layer_slow",
        "_router",
        "_slow",
        "_tap_layer",
        "audio_level_id",
        "bitrate",
        "by_layer",
        "clock_rate",
        "closed",
        "codec_name",
        "consumers",
        "history",
        "info",
        "keyframe_deferred",
        "last_keyframe_request",
        "layer_of",
        "layers",
        "octets",
        "publisher_sid",
        "request_keyframe_cb",
        "route",
        "rtx",
        "ssrcs",
        "tap",
        "top_layer",
        "tracker",
        "waiting",
    )

    def __init__(
        self,
        publisher_sid: str,
        info: PublishedTrackInfo,
        request_keyframe: Callable[[int], None],
        router: Router | None = None,
    ) -> None:
        self.publisher_sid = publisher_sid
        self.info = info
        self._router = router
        self.closed = False
        self.consumers: list[Consumer] = []
        # The fan-out of `consumers`: those with a C lane all at once (`_fan`), the others
        # one by one (`_slow`). Rebuilt by `_regroup` whenever `consumers` changes.
        self._fan: Any = None
        self._slow: list[Consumer] = []
        self.tap: TrackTap | None = None  # the recording tap, if the track has one
        self.request_keyframe_cb = request_keyframe
        self.last_keyframe_request = -1e9
        self.keyframe_deferred = False
        self.ssrcs = set(info.ssrcs)
        # RTX ssrc → (media ssrc, RTX payload type → media payload type).
        self.rtx: dict[int, int] = {rtx_ssrc: media for media, rtx_ssrc in info.rtx_ssrcs}
        self.tracker: dict[int, stats.LossTracker] = {s: stats.LossTracker(s) for s in info.ssrcs}
        codec = info.codec
        self.clock_rate = (codec.clock_rate if codec is not None else 0) or 90000
        self.codec_name = codec.name.lower() if codec is not None else ""
        # Simulcast (a=ssrc-group:SIM): one `Layer` per SSRC, lowest first.
        self.layers: tuple[Layer, ...] = ()
        if info.kind == "video" and len(info.ssrcs) > 1:
            self.layers = tuple(Layer(i, ssrc) for i, ssrc in enumerate(info.ssrcs))
        self.layer_of: dict[int, Layer] = {layer.ssrc: layer for layer in self.layers}
        # The simulcast fan-out, per layer: the consumers forwarding it, and those waiting for
        # its keyframe to switch to it (only they look at its keyframes). Replaced, not
        # mutated, like `consumers`.
        self.by_layer: list[list[Consumer]] = [[] for _ in self.layers]
        self.waiting: list[list[Consumer]] = [[] for _ in self.layers]
        # `by_layer` split as `consumers` is: per layer, the C fan-out of the consumers with
        # a lane, and the others (forwarded in Python). Rebuilt by `_regroup_layer`.
        self._layer_fans: list[Any] = [None for _ in self.layers]
        self._layer_slow: list[list[Consumer]] = [[] for _ in self.layers]
        self.top_layer = 0  # the highest layer seen so far
        self._tap_layer: Layer | None = None  # the one layer the recording tap gets
        # What was received, by the publisher's sequence number: consumers answer NACKs from
        # it, so a packet is kept once however many subscribers it went to.
        size = VIDEO_HISTORY if info.kind == "video" else AUDIO_HISTORY
        self.history = rtp.PacketHistory(size)
        self.octets = 0  # RTP bytes received, for `bitrate`
        self.bitrate = 0  # bps over the last measurement interval (`Peer`'s RTCP loop)
        # The C route of a plain (one-SSRC) producer's SSRC (`_fastpath.Route`): its owner's
        # receive side (`Peer`, through `DtlsSrtpTransport.ingress`) does for its packets
        # what `Peer._on_rtp` and `forward` do, without Python, while no consumer lacks a
        # lane (`_slow`); it reads this producer's state (tap, history, octets, `_fan`,
        # the audio-level id) as it is. None: everything goes through `forward`
        # (simulcast; no fast path).
        self.route: Any = None
        native = fastpath.native
        if native is not None and len(info.ssrcs) == 1:
            ssrc = info.ssrcs[0]
            self.route = native.Route(self, self.tracker.get(ssrc), self.history, self.clock_rate)
        # The audio-level extension's id, for the room's active-speaker observer (audio only).
        self.audio_level_id = 0
        if info.kind == "audio" and router is not None:
            ids = _extension_map(info)
            self.audio_level_id = ids.get(rtp.AUDIO_LEVEL_URI, 0)
            if self.audio_level_id:
                router.speakers.add_producer(publisher_sid)

    @property
    def track_id(self) -> str:
        return self.info.track_id

    @property
    def kind(self) -> str:
        return self.info.kind

    def set_tap(self, tap: TrackTap | None) -> None:
        """Feed every packet to `tap` from now on (None: stop; the old tap is not closed).

        Of a simulcast producer the tap gets one layer: the highest arriving at its first
        keyframe after the tap is set (the recorder asks for one)."""
        self.tap = None if self.closed else tap
        self._tap_layer = None

    def best_layer(self, wanted: int, now: float | None = None) -> int:
        """The layer to forward for a preference: ``wanted`` if it arrives, else the best
        one arriving below it, else the lowest arriving above it, else ``wanted`` (nothing
        arrives yet; without ``now``, layers that ever had packets count as arriving)."""
        layers = self.layers
        if not layers:
            return 0
        wanted = max(0, min(wanted, len(layers) - 1))

        def arriving(layer: Layer) -> bool:
            return layer.packets > 0 if now is None else layer.active(now)

        for layer in reversed(layers[: wanted + 1]):
            if arriving(layer):
                return layer.index
        for layer in layers[wanted + 1 :]:
            if arriving(layer):
                return layer.index
        return wanted

    def close(self) -> None:
        """The track is gone: close every consumer (their owners are told), close the
        recording tap (detach it with `set_tap(None)` first to keep it) and leave the router.
        Idempotent."""
        if self.closed:
            return
        self.closed = True
        consumers, self.consumers = self.consumers, []
        self._regroup()
        tap, self.tap = self.tap, None
        for consumer in consumers:
            consumer._producer_closed()
        if tap is not None:
            tap.close()
        if self._router is not None:
            if self.audio_level_id:
                self._router.speakers.remove_producer(self.publisher_sid)
            self._router._producer_closed(self)

    def _attach(self, consumer: Consumer) -> None:
        self.consumers = [*self.consumers, consumer]
        self._regroup()
        self._place(consumer)

    def _detach(self, consumer: Consumer) -> None:
        # A new list rather than remove(): a fan-out loop running now keeps its snapshot.
        self.consumers = [c for c in self.consumers if c is not consumer]
        self._regroup()
        self._place(consumer)

    def _regroup(self) -> None:
        """Split `consumers` into the C fan-out (those with a lane) and the Python loop (of
        a simulcast producer: each layer's forwarders)."""
        if self.layers:
            for index in range(len(self.layers)):
                self._regroup_layer(index)
            return
        self._fan, self._slow = self._split(self._fan, self.consumers)

    def _regroup_layer(self, index: int) -> None:
        self._layer_fans[index], self._layer_slow[index] = self._split(
            self._layer_fans[index], self.by_layer[index]
        )

    @staticmethod
    def _split(fan: Any, consumers: list[Consumer]) -> tuple[Any, list[Consumer]]:
        """(a `FanOut` of the lanes of ``consumers`` or None, those without a lane)."""
        lanes = [c.lane for c in consumers if c.lane is not None]
        slow = [c for c in consumers if c.lane is None]
        native = fastpath.native
        if not lanes or native is None:
            return None, slow
        if fan is None:
            return native.FanOut(lanes), slow
        fan.lanes = lanes
        return fan, slow

    def _place(self, consumer: Consumer) -> None:
        """Put a simulcast consumer in the per-layer lists its state calls for."""
        switch = consumer.switch
        if switch is None or not self.layers:
            return
        attached = not consumer.closed and not consumer.paused
        for index in range(len(self.layers)):
            for lists, wanted in (
                (self.by_layer, attached and switch.current == index),
                (self.waiting, attached and switch.target == index != switch.current),
            ):
                members = lists[index]
                if (consumer in members) != wanted:
                    lists[index] = (
                        [*members, consumer]
                        if wanted
                        else [c for c in members if c is not consumer]
                    )
                    if lists is self.by_layer:
                        self._regroup_layer(index)

    def forward(self, packet: bytes) -> None:
        """Fan one publisher packet out to every consumer (hot path; `route` does the same
        in C, from the receive batch, when there is no consumer without a lane)."""
        if self.layer_of:
            self._forward_simulcast(packet)
            return
        tap = self.tap
        if tap is not None:
            tap.feed(packet)
        self.history.put(packet)
        self.octets += len(packet)
        if self.audio_level_id:
            heard = audio_level(packet, self.audio_level_id)
            if heard is not None and self._router is not None:
                self._router.speakers.level(self.publisher_sid, heard[0])
        fan = self._fan
        if fan is not None:
            fan.forward(packet)  # rewrite, protect and send to every lane, in C
        payload_type = packet[1] & 0x7F
        for consumer in self._slow:
            consumer.forward(packet, payload_type)

    def _forward_simulcast(self, packet: bytes) -> None:
        """One packet of a simulcast layer: its counters and history, then the consumers
        (each forwards its own layer)."""
        layer = self.layer_of.get(int.from_bytes(packet[8:12], "big"))
        if layer is None:
            return
        layer.last_at = time.monotonic()
        layer.packets += 1
        size = len(packet)
        layer.octets += size
        self.octets += size
        layer.history.put(packet)
        offset = simulcast.payload_offset(packet)
        keyframe = rtp.is_keyframe(self.codec_name, packet, offset)
        if keyframe:
            layer.keyframes += 1
            if self.codec_name == "vp8":
                dims = simulcast.vp8_keyframe_size(packet, offset)
                if dims is not None:
                    layer.width, layer.height = dims
        if layer.index > self.top_layer:
            self.top_layer = layer.index
        tap = self.tap
        if tap is not None:
            if self._tap_layer is None and keyframe and layer.index == self.top_layer:
                self._tap_layer = layer
            if self._tap_layer is layer:
                tap.feed(packet)
        payload_type = packet[1] & 0x7F
        index = layer.index
        fan = self._layer_fans[index]
        if fan is not None:
            fan.forward(packet)  # the steady forwarders of this layer, in C
        for consumer in self._layer_slow[index]:
            consumer.forward_layer(packet, payload_type, layer, keyframe, offset)
        if keyframe:
            for consumer in self.waiting[index]:
                consumer.forward_layer(packet, payload_type, layer, keyframe, offset)

    def measure(self, elapsed: float) -> None:
        """The bitrates over the last ``elapsed`` seconds (the owner's RTCP loop)."""
        octets, self.octets = self.octets, 0
        if 0 < elapsed < 10:
            self.bitrate = int(octets * 8 / elapsed)
        for layer in self.layers:
            octets, layer.octets = layer.octets, 0
            if 0 < elapsed < 10:
                layer.bitrate = int(octets * 8 / elapsed)

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

    def request_keyframe(self, now: float, layer: Layer | None = None) -> bool:
        """Ask the publisher for a keyframe, at most every KEYFRAME_INTERVAL.

        A request within the interval is not lost: one deferred request goes out when the
        interval ends (a subscriber that arrives just after another still starts promptly).
        Of a simulcast producer, the keyframe is of one layer (``layer``; None: the highest
        seen, for the recording), limited per layer and not deferred (consumers waiting for
        a layer ask again every second). Returns whether a request was sent now.
        """
        if self.kind != "video":
            return False
        if self.layers:
            if layer is None:
                layer = self._tap_layer or self.layers[self.top_layer]
            if now - layer.last_keyframe_request < KEYFRAME_INTERVAL:
                return False
            layer.last_keyframe_request = now
            self.request_keyframe_cb(layer.ssrc)
            return True
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

    def sender_report(self, report: rtcp.SenderReport) -> None:
        for consumer in self.consumers:
            consumer.sender_report(report)


class DataConsumer:
    """One subscriber's delivery of a data producer's messages (made by `Router.consume_data`)."""

    __slots__ = ("_on_producer_closed", "closed", "deliver", "producer", "subscriber_sid")

    def __init__(
        self,
        producer: DataProducer,
        subscriber_sid: str,
        deliver: Callable[[str | bytes], None],
        on_producer_closed: Callable[[DataConsumer], None] | None = None,
    ) -> None:
        self.producer = producer
        self.subscriber_sid = subscriber_sid
        self.deliver = deliver
        self.closed = False
        self._on_producer_closed = on_producer_closed

    def close(self) -> None:
        """Stop receiving (idempotent; the owner is not called back)."""
        if self.closed:
            return
        self.closed = True
        self.producer._detach(self)

    def _producer_closed(self) -> None:
        self.closed = True
        callback, self._on_producer_closed = self._on_producer_closed, None
        if callback is not None:
            callback(self)


class DataProducer:
    """A published data track: the publisher's data channel (label = track id)."""

    def __init__(
        self,
        publisher_sid: str,
        label: str,
        ordered: bool,
        max_retransmits: int | None,
        max_packet_life_time: int | None,
        router: Router | None = None,
    ) -> None:
        self.publisher_sid = publisher_sid
        self.label = label
        self.ordered = ordered
        self.max_retransmits = max_retransmits
        self.max_packet_life_time = max_packet_life_time
        self.closed = False
        self.consumers: list[DataConsumer] = []
        self._router = router

    def forward(self, message: str | bytes) -> None:
        for consumer in self.consumers:
            consumer.deliver(message)

    def close(self) -> None:
        """The channel is gone: close every data consumer (owners are told), leave the router."""
        if self.closed:
            return
        self.closed = True
        consumers, self.consumers = self.consumers, []
        for consumer in consumers:
            consumer._producer_closed()
        if self._router is not None:
            self._router._data_producer_closed(self)

    def _detach(self, consumer: DataConsumer) -> None:
        self.consumers = [c for c in self.consumers if c is not consumer]


class Router:
    """All producers of one room, by (publisher participant SID, track id / label).

    The maps are read-only views; they change through `produce`, `produce_data` and the
    producers' `close()`. Observers are called with no arguments whenever a producer appears
    or goes (subscribers re-check their wanted tracks), once at the end of a `batch()`.
    """

    def __init__(self, room_sid: str) -> None:
        self.room_sid = room_sid
        self._producers: dict[tuple[str, str], Producer] = {}
        self._data_producers: dict[tuple[str, str], DataProducer] = {}
        self._observers: list[Callable[[], None]] = []
        self._batch = 0
        self._dirty = False
        self.speakers = ActiveSpeakerObserver()

    @property
    def producers(self) -> Mapping[tuple[str, str], Producer]:
        return MappingProxyType(self._producers)

    @property
    def data_producers(self) -> Mapping[tuple[str, str], DataProducer]:
        return MappingProxyType(self._data_producers)

    @property
    def observers(self) -> int:
        """How many observers are registered."""
        return len(self._observers)

    def is_empty(self) -> bool:
        """No producer, data producer or observer is left."""
        return not (
            self._producers or self._data_producers or self._observers or self.speakers.observers
        )

    # -- observers ------------------------------------------------------------------------

    def observe(self, observer: Callable[[], None]) -> None:
        self._observers.append(observer)

    def unobserve(self, observer: Callable[[], None]) -> None:
        if observer in self._observers:
            self._observers.remove(observer)

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Tell observers once, at the end, about every change made inside."""
        self._batch += 1
        try:
            yield
        finally:
            self._batch -= 1
            if not self._batch and self._dirty:
                self._changed()

    def _changed(self) -> None:
        if self._batch:
            self._dirty = True
            return
        self._dirty = False
        for observer in list(self._observers):
            observer()

    # -- media ----------------------------------------------------------------------------

    def produce(
        self, publisher_sid: str, info: PublishedTrackInfo, request_keyframe: Callable[[int], None]
    ) -> Producer:
        """Add a producer; one with the same publisher and track id is closed first."""
        old = self._producers.get((publisher_sid, info.track_id))
        if old is not None:
            old.close()
        producer = Producer(publisher_sid, info, request_keyframe, self)
        self._producers[(publisher_sid, info.track_id)] = producer
        self._changed()
        return producer

    def consume(
        self,
        producer: Producer,
        info: SentTrackInfo,
        sink: RtpSink,
        on_producer_closed: Callable[[Consumer], None] | None = None,
    ) -> Consumer:
        """Attach a consumer to a live producer; `on_producer_closed` runs if the producer
        closes first (then the consumer is closed already)."""
        if producer.closed:
            raise ValueError(f"producer {producer.track_id} is closed")
        consumer = Consumer(producer, info, sink, on_producer_closed)
        producer._attach(consumer)
        return consumer

    def _producer_closed(self, producer: Producer) -> None:
        key = (producer.publisher_sid, producer.track_id)
        if self._producers.get(key) is producer:
            del self._producers[key]
            self._changed()

    # -- data -----------------------------------------------------------------------------

    def produce_data(
        self,
        publisher_sid: str,
        label: str,
        *,
        ordered: bool = True,
        max_retransmits: int | None = None,
        max_packet_life_time: int | None = None,
    ) -> DataProducer:
        """Add a data producer; one with the same publisher and label is closed first."""
        old = self._data_producers.get((publisher_sid, label))
        if old is not None:
            old.close()
        producer = DataProducer(
            publisher_sid, label, ordered, max_retransmits, max_packet_life_time, self
        )
        self._data_producers[(publisher_sid, label)] = producer
        self._changed()
        return producer

    def consume_data(
        self,
        producer: DataProducer,
        subscriber_sid: str,
        deliver: Callable[[str | bytes], None],
        on_producer_closed: Callable[[DataConsumer], None] | None = None,
    ) -> DataConsumer:
        if producer.closed:
            raise ValueError(f"data producer {producer.label} is closed")
        consumer = DataConsumer(producer, subscriber_sid, deliver, on_producer_closed)
        producer.consumers = [*producer.consumers, consumer]
        return consumer

    def _data_producer_closed(self, producer: DataProducer) -> None:
        key = (producer.publisher_sid, producer.label)
        if self._data_producers.get(key) is producer:
            del self._data_producers[key]
            self._changed()
