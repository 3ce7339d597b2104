"""One participant's peer connection with the SFU (mediasoup's "transport").

A `Peer` is the `MediaSession` the live-rooms service (`parlour.services.live_rooms`) talks
to and the `EndpointHandler` the UDP socket delivers to. It owns the negotiation state
(`PeerNegotiator`), the DTLS-SRTP transport, the data channels, the producers its client
publishes and the consumers it receives, and it drives server-initiated renegotiation when
subscriptions change.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, Protocol

from parlour.domain import errors
from parlour.domain.bandwidth import SimulcastLayer
from parlour.domain.ports import LinkReport, MediaListener, TrackDescriptor, TrackTap
from parlour.domain.sids import ParticipantSid, TrackSid
from parlour.media import rtcp, rtp
from parlour.media.bwe import UplinkEstimator
from parlour.media.codecs import URI_TRANSPORT_CC
from parlour.media.downlink import Downlink
from parlour.media.dtls import Certificate, DtlsSrtpTransport
from parlour.media.negotiation import (
    LocalTransport,
    NegotiationError,
    NegotiationResult,
    PeerNegotiator,
    PublishedTrackInfo,
    ServerCapabilities,
)
from parlour.media.rewrite import TransportCc
from parlour.media.router import (
    ALL_TEMPORAL,
    Consumer,
    DataConsumer,
    DataProducer,
    Producer,
    Router,
)
from parlour.media.sctp import ChannelInfo, DataChannels
from parlour.media.udp import Address, MediaSocket

__all__ = ["Peer"]

log = logging.getLogger(__name__)

RTCP_INTERVAL = 1.0
CONNECT_TIMEOUT = 30.0  # first offer → DTLS-SRTP connected
CONSENT_TIMEOUT = 30.0  # RFC 7675 §5.1: consent expires 30 s after the last check
CONSENT_CHECK_INTERVAL = 1.0  # how often the consent time is looked at (at most)
REMB_BITRATE = 2_500_000
MAX_REPORT_BLOCKS = 31  # per RR (5-bit count)


class RtcpSink(Protocol):
    """Where a peer's own RTCP goes (its DTLS-SRTP transport)."""

    def send_rtcp(self, packet: bytes | bytearray) -> None: ...


class Peer:
    """The SFU side of one participant's single bidirectional peer connection.

    Attributes:
        nacks_received, plis_received: RTCP NACK and PLI messages from this participant
            (as a subscriber, about the media we send it).
        nacks_sent, plis_sent: RTCP NACK and PLI messages sent to it (as a publisher).
        lost_packets_ended: ingress RTP loss of the producers this peer no longer has
            (see `lost_packets`). The SFU reads these counters at metrics scrape time.
    """

    def __init__(
        self,
        *,
        room_sid: str,
        participant_sid: str,
        router: Router,
        socket: MediaSocket,
        certificate: Certificate,
        listener: MediaListener,
        capabilities: ServerCapabilities,
        on_close: Callable[[Peer], None],
        connect_timeout: float = CONNECT_TIMEOUT,
        consent_timeout: float = CONSENT_TIMEOUT,
    ) -> None:
        self.room_sid = room_sid
        self.participant_sid = participant_sid
        self.router = router
        self._socket = socket
        self._certificate = certificate
        self._listener = listener
        self._on_close = on_close
        self._connect_timeout = connect_timeout
        self._consent_timeout = consent_timeout
        host, port = socket.candidate_address
        self.local = LocalTransport.generate(
            certificate.fingerprint(), host, port, tcp_port=socket.tcp_port
        )
        self.negotiator = PeerNegotiator(self.local, capabilities)
        self.pc_id: str | None = None
        self.addr: Address | None = None
        self.dtls: DtlsSrtpTransport | None = None
        self.channels: DataChannels | None = None
        self.rtcp_ssrc = random.getrandbits(32)
        # Publishing side: SSRC → producer; RTX SSRC → producer.
        self._by_ssrc: dict[int, Producer] = {}
        self._by_rtx: dict[int, Producer] = {}
        self._producers: dict[str, Producer] = {}
        self._taps: dict[str, TrackTap] = {}  # recording taps by published track id
        self._data_producers: dict[str, DataProducer] = {}
        # Receiving side.
        self._wanted: dict[TrackSid, TrackDescriptor] = {}
        self._consumers: dict[str, Consumer] = {}  # by track id
        self._consumer_by_ssrc: dict[int, Consumer] = {}
        self._data_wanted: dict[str, DataConsumer] = {}  # label → what we relay
        self._switched_off: frozenset[str] = frozenset()  # received track ids not forwarded
        # Simulcast layers chosen for received tracks: track id → (spatial, temporal).
        self._layers: dict[str, tuple[int | None, int]] = {}
        # Send-side bandwidth estimation of what we send it (transport-wide CC).
        self.downlink = Downlink(self._call_later)
        # … and of what it sends us (the REMB it gets).
        self.uplink = UplinkEstimator(REMB_BITRATE, maximum=REMB_BITRATE)
        self._octets_at = 0.0  # when the producers' bitrates were last measured
        # Loss and jitter by (kind, direction): the worst stream of the last report each.
        self._links: dict[tuple[str, str], LinkReport] = {}
        self._signaling: set[str] = set()  # media-signaling channel labels (ours)
        self._signaling_open: set[str] = set()  # … opened on the association
        self._reported: dict[TrackSid, str] = {}
        self._closed = False
        self._offer_scheduled = False
        self._rtcp_task: asyncio.Task[None] | None = None
        # Transport liveness (`media_failed`): one timer at a time, never per packet.
        self._timer: asyncio.TimerHandle | None = None
        self._connected_at: float | None = None
        self._failed = False
        # Counters (RTCP feedback is rare: these are off the per-packet path).
        self.nacks_received = 0
        self.nacks_sent = 0
        self.plis_received = 0
        self.plis_sent = 0
        self.lost_packets_ended = 0
        socket.register(self.local.ice_ufrag, self.local.ice_pwd, self)
        router.observe(self._router_changed)
        router.speakers.observe(self._dominant_speaker)

    @property
    def producers(self) -> Mapping[str, Producer]:
        """The tracks this participant publishes, by track id."""
        return self._producers

    @property
    def data_producers(self) -> Mapping[str, DataProducer]:
        """The data tracks this participant publishes, by label."""
        return self._data_producers

    # -- MediaSession ---------------------------------------------------------------------

    async def client_description(
        self, pc_id: str, kind: str, revision: int, sdp: str, track_ids: Sequence[str]
    ) -> str | None:
        if self._closed:
            return None
        if self.pc_id is None:
            self.pc_id = pc_id
        elif pc_id != self.pc_id:
            return None  # one peer connection per participant
        try:
            if kind == "offer":
                answer = self.negotiator.apply_client_offer(sdp, revision, track_ids=track_ids)
                if answer is None:
                    return None
                self._start_transport(answer)
                if self._timer is None and self._connected_at is None:
                    self._timer = asyncio.get_running_loop().call_later(
                        self._connect_timeout, self._connect_expired
                    )
                self._apply_publications(answer)
                self._schedule_offer()
                return answer.sdp
            if kind == "answer":
                negotiator = self.negotiator
                if (
                    revision != negotiator.pending_offer_revision
                    and revision <= negotiator.last_revision
                ):
                    # A resuming client (`sync`) re-sends its current local description: an
                    # answer already applied (or to an offer since superseded). Nothing to do.
                    return None
                result = self.negotiator.apply_client_answer(sdp, revision, track_ids=track_ids)
                self._apply_publications(result)
                self._apply_sending(result)
                self._schedule_offer()
        except ValueError as exc:  # NegotiationError, SdpError: bad or unsupported SDP
            log.info("peer %s: cannot apply %s: %s", self.participant_sid, kind, str(exc)[:200])
            raise errors.MediaDescriptionError() from None
        return None

    def set_subscriptions(self, tracks: Sequence[TrackDescriptor]) -> None:
        self._wanted = {t.sid: t for t in tracks}
        self._sync_wanted()

    def published_codec(self, track_id: str) -> tuple[str, tuple[int, ...]] | None:
        producer = self._producers.get(track_id)
        codec = producer.info.codec if producer is not None else None
        if producer is None or codec is None:
            return None
        types = tuple(c.payload_type for c in producer.info.codecs if not c.is_rtx)
        return codec.name, types

    def attach_tap(self, track_id: str, tap: TrackTap) -> None:
        if self._closed:
            tap.close()  # nothing will ever feed it: its recording is finished now
            return
        self._taps[track_id] = tap
        producer = self._producers.get(track_id)
        if producer is not None:
            producer.set_tap(tap)

    def _dominant_speaker(self, publisher_sid: str | None) -> None:
        if not self._closed:
            self._listener.dominant_speaker_changed(
                None if publisher_sid is None else ParticipantSid(publisher_sid)
            )

    def dominant_speaker(self) -> ParticipantSid | None:
        dominant = self.router.speakers.dominant
        return None if dominant is None else ParticipantSid(dominant)

    def published_bitrate(self, track_id: str) -> int:
        producer = self._producers.get(track_id)
        return producer.bitrate if producer is not None else 0

    def published_layers(self, track_id: str) -> list[SimulcastLayer]:
        producer = self._producers.get(track_id)
        if producer is None:
            return []
        now = time.monotonic()
        return [
            SimulcastLayer(
                width=layer.width,
                height=layer.height,
                bitrate=layer.bitrate,
                active=layer.active(now),
            )
            for layer in producer.layers
        ]

    def select_layers(self, layers: Mapping[str, tuple[int | None, int]]) -> None:
        self._layers = dict(layers)
        now = time.monotonic()
        for track_id, consumer in self._consumers.items():
            spatial, temporal = self._layers.get(track_id, (None, ALL_TEMPORAL))
            consumer.set_layers(spatial, temporal, now)

    def downlink_estimate(self) -> tuple[int | None, bool]:
        return self.downlink.limit(time.monotonic())

    def _call_later(self, delay: float, callback: Callable[[], None]) -> object:
        return asyncio.get_running_loop().call_later(delay, callback)

    def _transport_cc(self) -> TransportCc | None:
        """The transport-wide CC stamping of what we send, when the client negotiated it."""
        ext_id = next(
            (
                e.id
                for s in self.negotiator.sending
                for e in s.header_extensions
                if e.uri == URI_TRANSPORT_CC
            ),
            None,
        )
        return self.downlink.configure(ext_id)

    def _stamp(self, consumer: Consumer, tcc: TransportCc | None) -> None:
        """Stamp a consumer's packets with transport-wide numbers if its section negotiated
        them: a receiver that does not read them on a stream (audio) would report the
        numbers those packets took as lost."""
        sent = next((s for s in self.negotiator.sending if s.mid == consumer.info.mid), None)
        negotiated = sent is not None and sent.extension_id(URI_TRANSPORT_CC) is not None
        consumer.set_transport_cc(tcc if negotiated else None)

    def switch_off(self, track_ids: Collection[str]) -> None:
        self._switched_off = frozenset(track_ids)
        now = time.monotonic()
        for track_id, consumer in self._consumers.items():
            if track_id in self._switched_off:
                consumer.pause()
            else:
                consumer.resume(now)

    def link_reports(self) -> list[LinkReport]:
        return list(self._links.values())

    def _link(self, kind: str, direction: str, block: rtcp.ReportBlock, clock: int) -> None:
        """Keep the worse of this report block and the one of the same round (0.5 s)."""
        now = time.monotonic()
        report = LinkReport(kind, direction, block.fraction_lost / 256, block.jitter / clock, now)
        old = self._links.get((kind, direction))
        if old is not None and now - old.at < 0.5 and old.fraction_lost > report.fraction_lost:
            return
        self._links[(kind, direction)] = report

    def open_signaling_channel(self, label: str) -> None:
        if self._closed or label in self._signaling:
            return
        self._signaling.add(label)
        self.negotiator.need_data_channel()
        self._open_signaling()
        self._schedule_offer()

    def send_signaling(self, label: str, message: str) -> None:
        if label in self._signaling_open and self.channels is not None:
            self.channels.send(label, message)

    def _open_signaling(self) -> None:
        channels = self.channels
        if channels is None or self.negotiator.data_mid is None:
            return
        for label in sorted(self._signaling - self._signaling_open):
            if channels.open_channel(label, ordered=True):
                self._signaling_open.add(label)

    def request_keyframe(self, track_id: str) -> None:
        producer = self._producers.get(track_id)
        if producer is not None:
            producer.request_keyframe(time.monotonic())

    def lost_packets(self) -> int:
        """RTP packets lost on the way in from this participant, over every stream it has
        published: RFC 3550 cumulative loss (expected − received) per receive tracker,
        never below zero per stream. Repairs by retransmission lower it again.
        """
        live = sum(
            max(0, tracker.lost)
            for producer in self._producers.values()
            for tracker in producer.tracker.values()
        )
        return self.lost_packets_ended + live

    def subscribed_kinds(self) -> list[str]:
        """The kind ("audio", "video", "data") of every track this participant receives."""
        kinds: list[str] = [consumer.info.kind for consumer in self._consumers.values()]
        kinds.extend("data" for _ in self._data_wanted)
        return kinds

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._socket.unregister(self.local.ice_ufrag)
        self.router.unobserve(self._router_changed)
        self.router.speakers.unobserve(self._dominant_speaker)
        for consumer in self._consumers.values():
            consumer.close()
        self._consumers.clear()
        self._consumer_by_ssrc.clear()
        for data_consumer in self._data_wanted.values():
            data_consumer.close()
        self._data_wanted.clear()
        with self.router.batch():
            for track_id in list(self._producers):
                self._remove_producer(track_id)
            for data_producer in self._data_producers.values():
                data_producer.close()
            self._data_producers.clear()
        for tap in self._taps.values():
            tap.close()  # one whose track never produced: finished too (closing is idempotent)
        self._taps.clear()
        if self._rtcp_task is not None:
            self._rtcp_task.cancel()
        self._cancel_timer()
        channels, dtls = self.channels, self.dtls
        self.channels = None
        self._on_close(self)
        asyncio.get_running_loop().create_task(_shutdown(channels, dtls)).add_done_callback(
            _log_failure
        )

    # -- EndpointHandler ------------------------------------------------------------------

    def ice_connected(self, addr: Address) -> None:
        self.addr = addr
        if self.dtls is not None:
            self.dtls.use_sender(self._sender(), self._socket.udp_target(self.local.ice_ufrag))

    def _sender(self) -> Callable[[bytes], object]:
        """The fastest way to the selected address: its connected socket, else `_send`."""
        return self._socket.connected_sender(self.local.ice_ufrag) or self._send

    def srtp_receiver(self) -> tuple[int, Callable[[bytes, int], None], Any] | None:
        """For a socket that unprotects SRTP itself (`MediaSocket` with the C fast path):
        the receiving libsrtp context, where the RTP goes and the transport's C receive
        side (`DtlsSrtpTransport.ingress`, whose routes forward the packets of plain video
        producers without Python), or None (not keyed yet)."""
        dtls = self.dtls
        if dtls is None:
            return None
        context = dtls.receive_context
        return (context, dtls.rtp_received, dtls.ingress) if context else None

    def datagram_received(self, data: bytes, addr: Address) -> None:
        dtls = self.dtls
        if dtls is not None:
            dtls.datagram_received(data)

    # -- transport ------------------------------------------------------------------------

    def _send(self, data: bytes) -> None:
        if self.addr is not None:
            self._socket.sendto(data, self.addr)

    def _start_transport(self, result: NegotiationResult) -> None:
        if self.dtls is not None:
            return
        self.dtls = DtlsSrtpTransport(
            self._certificate,
            is_server=True,
            remote_fingerprints=list(result.remote.fingerprints),
            send=self._sender(),
            on_rtp=self._on_rtp,
            on_rtcp=self._on_rtcp,
            on_data=self._on_data,
            on_state=self._on_dtls_state,
            label=self.participant_sid,
        )
        self.dtls.use_sender(self._sender(), self._socket.udp_target(self.local.ice_ufrag))
        self._sync_routes()
        self.dtls.start()

    def _on_dtls_state(self, state: str) -> None:
        log.info("peer %s: dtls %s", self.participant_sid, state)
        if state == "connected":
            assert self.dtls is not None
            self._cancel_timer()
            self._connected_at = time.monotonic()
            self._schedule_consent_check()
            self.channels = DataChannels(
                self.dtls,
                on_channel=self._on_channel,
                on_message=self._on_message,
                on_closed=self._on_channel_closed,
            )
            self.channels.start()
            self._rtcp_task = asyncio.get_running_loop().create_task(self._rtcp_loop())
            self._sync_wanted()
            now = time.monotonic()
            for producer in self._producers.values():
                producer.request_keyframe(now)
            # What was sent to us before the transport was up was dropped: start the video
            # we receive from a keyframe rather than at the publisher's next one.
            for consumer in self._consumers.values():
                consumer.producer.request_keyframe(now)
        elif state in ("failed", "closed") and not self._closed:
            log.info("peer %s: media transport %s", self.participant_sid, state)
            self._fail(f"DTLS transport {state}")

    # -- liveness -------------------------------------------------------------------------

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _connect_expired(self) -> None:
        self._timer = None
        dtls = self.dtls
        if dtls is None or dtls.state != "connected":
            self._fail(f"media transport not connected within {self._connect_timeout:g} s")

    def _schedule_consent_check(self) -> None:
        delay = min(CONSENT_CHECK_INTERVAL, self._consent_timeout / 4)
        self._timer = asyncio.get_running_loop().call_later(delay, self._check_consent)

    def _check_consent(self) -> None:
        """ICE-lite: the client's connectivity checks on the selected pair are its consent
        (RFC 7675). The socket stamps each valid one; none for `consent_timeout` is fatal."""
        self._timer = None
        if self._closed or self._failed or self._connected_at is None:
            return
        last = self._socket.last_consent(self.local.ice_ufrag)
        since = max(last or 0.0, self._connected_at)
        if time.monotonic() - since > self._consent_timeout:
            self._fail(f"ICE consent expired (no check for {self._consent_timeout:g} s)")
            return
        self._schedule_consent_check()

    def _fail(self, reason: str) -> None:
        """Tell the listener, once, that the media transport is lost for good."""
        if self._failed or self._closed:
            return
        self._failed = True
        self._cancel_timer()
        log.info("peer %s: media failed: %s", self.participant_sid, reason)
        self._listener.media_failed(reason)

    def _on_data(self, data: bytes) -> None:
        if self.channels is not None:
            self.channels.data_received(data)

    # -- publishing side ------------------------------------------------------------------

    def _apply_publications(self, result: NegotiationResult) -> None:
        with self.router.batch():  # subscribers re-check their tracks once, at the end
            for info in result.ended:
                self._remove_producer(info.track_id)
            for info in (*result.added, *result.updated):
                self._remove_producer(info.track_id, ended=False)
                self._add_producer(info)

    def _add_producer(self, info: PublishedTrackInfo) -> None:
        producer = self.router.produce(self.participant_sid, info, self._send_pli)
        producer.set_tap(self._taps.get(info.track_id))
        self._producers[info.track_id] = producer
        for ssrc in info.ssrcs:
            self._by_ssrc[ssrc] = producer
        for _media, rtx_ssrc in info.rtx_ssrcs:
            self._by_rtx[rtx_ssrc] = producer
        self._sync_routes()

    def _remove_producer(self, track_id: str, ended: bool = True) -> None:
        """Close a producer: for good (`ended`: its recording tap is closed too) or to
        re-create it for an updated track (the tap is kept for the new one)."""
        producer = self._producers.pop(track_id, None)
        if producer is None:
            return
        self.lost_packets_ended += sum(max(0, t.lost) for t in producer.tracker.values())
        for ssrc in producer.info.ssrcs:
            self._by_ssrc.pop(ssrc, None)
        for _media, rtx_ssrc in producer.info.rtx_ssrcs:
            self._by_rtx.pop(rtx_ssrc, None)
        self._sync_routes()
        if ended:
            self._taps.pop(track_id, None)
        else:
            producer.set_tap(None)
        producer.close()  # closes the tap it still has

    def _sync_routes(self) -> None:
        """Give the transport's C receive side the routes of `_by_ssrc` as it is now: the
        SSRCs of plain video producers (`Producer.route`), whose packets `recv_batch` then
        forwards as `_on_rtp` would, without Python. Call whenever `_by_ssrc` changes."""
        ingress = self.dtls.ingress if self.dtls is not None else None
        if ingress is not None:
            ingress.set_routes(
                {ssrc: p.route for ssrc, p in self._by_ssrc.items() if p.route is not None}
            )

    def _on_rtp(self, packet: bytes) -> None:
        """Hot path: a decrypted RTP packet from this participant (`Producer.route` does the
        same in C for the packets of plain video producers read with `recv_batch`)."""
        ssrc = int.from_bytes(packet[8:12], "big")
        producer = self._by_ssrc.get(ssrc)
        if producer is not None:
            tracker = producer.tracker.get(ssrc)
            if tracker is not None:
                arrival = int(time.monotonic() * producer.clock_rate)
                tracker.update(rtp.seq(packet), rtp.timestamp(packet), arrival)
            producer.forward(packet)
            return
        producer = self._by_rtx.get(ssrc)
        if producer is not None:
            original = producer.forward_rtx(packet)
            if original is not None:
                # A repaired loss: received after all, so no more NACKs and not lost in RRs.
                tracker = producer.tracker.get(rtp.ssrc(original))
                if tracker is not None:
                    arrival = int(time.monotonic() * producer.clock_rate)
                    tracker.update(rtp.seq(original), rtp.timestamp(original), arrival)

    def _send_pli(self, media_ssrc: int) -> None:
        if self.dtls is not None:
            self.plis_sent += 1
            self.dtls.send_rtcp(rtcp.pli(self.rtcp_ssrc, media_ssrc))

    async def _rtcp_loop(self) -> None:
        """Every RTCP_INTERVAL: the publisher's feedback (`send_feedback`)."""
        while not self._closed:
            await asyncio.sleep(RTCP_INTERVAL)
            dtls = self.dtls
            if dtls is None or dtls.state != "connected":
                continue
            now = time.monotonic()
            self.send_feedback(dtls, now)
            self._measure_bitrates(now)
            for consumer in self._consumers.values():
                if consumer.switch is not None:
                    consumer.retarget(now)  # layers come and go; waiting ones need keyframes
            self._probe(now)

    def _probe(self, now: float) -> None:
        """Probe the downlink when its estimate keeps this subscriber below its best: the
        best layer of every track it is forwarded."""
        wanted = 0
        video: list[Consumer] = []
        for consumer in self._consumers.values():
            if consumer.paused:
                continue
            producer = consumer.producer
            rates = [layer.bitrate for layer in producer.layers if layer.active(now)]
            wanted += rates[-1] if rates else producer.bitrate
            if consumer.info.kind == "video":
                video.append(consumer)
        if self.dtls is not None:
            self.downlink.tick(wanted, video, self.dtls, now)

    def _measure_bitrates(self, now: float) -> None:
        """Each producer's bitrate over the interval since the last measurement."""
        elapsed = now - self._octets_at
        self._octets_at = now
        for producer in self._producers.values():
            producer.measure(elapsed)

    def send_feedback(self, dtls: RtcpSink, now: float) -> None:
        """Receiver reports and REMB about the streams this participant publishes, NACKs for
        what is missing, and keyframe requests after losses retransmission will not repair.

        The receiver reports (RFC 3550 §6.4.2, with LSR/DLSR from the publisher's sender
        reports) are what the publisher's `getStats()` turns into `remote-inbound-rtp`:
        the loss, jitter and round-trip time the twilio-video SDK reports for local tracks.
        """
        blocks: list[rtcp.ReportBlock] = []
        video_ssrcs: list[int] = []
        worst_loss = 0.0
        received = 0
        for producer in self._producers.values():
            for ssrc, tracker in producer.tracker.items():
                missing = tracker.nacks()
                if missing:
                    self.nacks_sent += 1
                    dtls.send_rtcp(rtcp.nack(self.rtcp_ssrc, ssrc, missing))
                if tracker.take_keyframe_request():
                    producer.request_keyframe(now, producer.layer_of.get(ssrc))
                if tracker.received:
                    block = tracker.report_block(now)
                    blocks.append(block)
                    self._link(producer.kind, "send", block, producer.clock_rate)
                    if producer.kind == "video":
                        worst_loss = max(worst_loss, block.fraction_lost / 256)
            if producer.kind == "video":
                video_ssrcs.extend(producer.info.ssrcs)
                received += producer.bitrate
        remb = b""
        if video_ssrcs:
            bitrate = self.uplink.update(worst_loss, received, now)
            remb = rtcp.remb(self.rtcp_ssrc, bitrate, video_ssrcs)
        for start in range(0, len(blocks), MAX_REPORT_BLOCKS):
            report = rtcp.receiver_report(self.rtcp_ssrc, blocks[start : start + MAX_REPORT_BLOCKS])
            dtls.send_rtcp(report + remb)  # a compound packet starts with the RR
            remb = b""
        if remb:
            dtls.send_rtcp(remb)

    # -- receiving side -------------------------------------------------------------------

    def _router_changed(self) -> None:
        self._sync_wanted()

    def _sync_wanted(self) -> None:
        """Match wanted tracks with producers; ask for renegotiation when that changes."""
        if self._closed:
            return
        want_media: dict[str, Producer] = {}
        want_data: dict[str, DataProducer] = {}
        for desc in self._wanted.values():
            key = (desc.publisher_sid, desc.id)
            if desc.kind == "data":
                data = self.router.data_producers.get(key)
                if data is not None:
                    want_data[desc.id] = data
            else:
                producer = self.router.producers.get(key)
                if producer is not None and producer.info.codec is not None:
                    want_media[desc.id] = producer
        sending = {s.track_id for s in self.negotiator.sending}
        for track_id, producer in want_media.items():
            consumer = self._consumers.get(track_id)
            if consumer is not None and consumer.producer is not producer:
                self._drop_consumer(track_id)
            if track_id not in sending or track_id not in self._consumers:
                codec = producer.info.codec
                assert codec is not None
                self.negotiator.send_track(track_id, producer.publisher_sid, producer.kind, codec)
            if track_id in sending and track_id not in self._consumers:
                self._attach_consumer(track_id, producer)
        for track_id in [t for t in self._consumers if t not in want_media]:
            self._drop_consumer(track_id)
            self.negotiator.stop_sending(track_id)
        for track_id in [t for t in sending if t not in want_media]:
            self.negotiator.stop_sending(track_id)
        self._sync_data(want_data)
        self._open_signaling()
        self._report()
        self._schedule_offer()

    def _sync_data(self, want: dict[str, DataProducer]) -> None:
        if want:
            self.negotiator.need_data_channel()
        channels = self.channels
        for label in [x for x, c in self._data_wanted.items() if want.get(x) is not c.producer]:
            self._data_wanted.pop(label).close()
            if channels is not None:
                channels.close_channel(label)
        for label, producer in want.items():
            if label in self._data_wanted:
                continue
            if channels is None or self.negotiator.data_mid is None:
                continue
            channels.open_channel(
                label,
                ordered=producer.ordered,
                max_retransmits=producer.max_retransmits,
                max_packet_life_time=producer.max_packet_life_time,
            )
            self._data_wanted[label] = self.router.consume_data(
                producer, self.participant_sid, self._relay_to(label), self._data_source_closed
            )

    def _relay_to(self, label: str) -> Callable[[str | bytes], None]:
        def deliver(message: str | bytes) -> None:
            if self.channels is not None:
                self.channels.send(label, message)

        return deliver

    def _attach_consumer(self, track_id: str, producer: Producer) -> None:
        info = next((s for s in self.negotiator.sending if s.track_id == track_id), None)
        if info is None or self.dtls is None:
            return
        consumer = self.router.consume(producer, info, self.dtls, self._source_closed)
        self._stamp(consumer, self._transport_cc())
        self._consumers[track_id] = consumer
        self._consumer_by_ssrc[info.ssrc] = consumer
        now = time.monotonic()
        spatial, temporal = self._layers.get(track_id, (None, ALL_TEMPORAL))
        consumer.set_layers(spatial, temporal, now)
        if track_id in self._switched_off:
            consumer.pause()
        else:
            consumer.request_keyframe(now)

    def _drop_consumer(self, track_id: str) -> None:
        consumer = self._consumers.pop(track_id, None)
        if consumer is None:
            return
        if self._consumer_by_ssrc.get(consumer.info.ssrc) is consumer:
            del self._consumer_by_ssrc[consumer.info.ssrc]
        consumer.close()

    def _source_closed(self, consumer: Consumer) -> None:
        """A producer we receive from closed (and closed our consumer): forget it, then
        match the wanted tracks again (renegotiating) once the router's changes are done."""
        track_id = consumer.info.track_id
        if self._consumers.get(track_id) is consumer:
            self._drop_consumer(track_id)
        self._schedule_sync()

    def _data_source_closed(self, consumer: DataConsumer) -> None:
        label = consumer.producer.label
        if self._data_wanted.get(label) is consumer:
            del self._data_wanted[label]
            if self.channels is not None:
                self.channels.close_channel(label)
        self._schedule_sync()

    def _schedule_sync(self) -> None:
        if not self._closed:
            asyncio.get_running_loop().call_soon(self._sync_wanted)

    def _apply_sending(self, result: NegotiationResult) -> None:
        for info in result.stopped:
            self._drop_consumer(info.track_id)
        tcc = self._transport_cc()
        for consumer in self._consumers.values():
            self._stamp(consumer, tcc)
        self._sync_wanted()

    def _report(self) -> None:
        """Tell signaling which wanted tracks are now actually delivered."""
        delivered: dict[TrackSid, str] = {}
        sending = {s.track_id for s in self.negotiator.sending}
        for sid, desc in self._wanted.items():
            if desc.kind == "data":
                if desc.id in self._data_wanted:
                    delivered[sid] = desc.id
            elif desc.id in sending and desc.id in self._consumers:
                delivered[sid] = desc.id
        if delivered != self._reported:
            self._reported = delivered
            self._listener.subscriptions_changed(list(delivered.items()))

    def _schedule_offer(self) -> None:
        if self._offer_scheduled or self._closed:
            return
        self._offer_scheduled = True
        asyncio.get_running_loop().call_soon(self._maybe_offer)

    def _maybe_offer(self) -> None:
        self._offer_scheduled = False
        negotiator = self.negotiator
        if self._closed or self.pc_id is None or negotiator.remote is None:
            return
        if not negotiator.is_stable or not negotiator.needs_negotiation:
            return
        revision = negotiator.next_offer_revision
        try:
            sdp = negotiator.create_offer(revision)
        except NegotiationError as exc:
            log.warning("peer %s: cannot make an offer: %s", self.participant_sid, exc)
            return
        self._listener.send_offer(self.pc_id, revision, sdp)

    def _on_rtcp(self, packet: bytes) -> None:
        now = time.monotonic()
        for item in rtcp.parse_rtcp(packet):
            if isinstance(item, rtcp.Pli | rtcp.Fir):
                media = item.media_ssrc if isinstance(item, rtcp.Pli) else None
                if media is not None:
                    self.plis_received += 1
                targets = (
                    [self._consumer_by_ssrc[media]]
                    if media is not None and media in self._consumer_by_ssrc
                    else list(self._consumers.values())
                )
                for consumer in targets:
                    consumer.request_keyframe(now)
            elif isinstance(item, rtcp.Nack):
                self.nacks_received += 1
                nacked = self._consumer_by_ssrc.get(item.media_ssrc)
                if nacked is not None:
                    nacked.retransmit(list(item.seqs))
            elif isinstance(item, rtcp.TransportFeedback):
                self.downlink.on_feedback(item)
            elif isinstance(item, rtcp.ReceiverReport):
                self._receiver_reports(item.reports)
            elif isinstance(item, rtcp.SenderReport):
                self._receiver_reports(item.reports)
                producer = self._by_ssrc.get(item.ssrc)
                if producer is not None:
                    tracker = producer.tracker.get(item.ssrc)
                    if tracker is not None:
                        tracker.on_sender_report(item.ntp, now)  # LSR/DLSR of our RRs
                    producer.sender_report(item)

    def _receiver_reports(self, blocks: Sequence[rtcp.ReportBlock]) -> None:
        """The subscriber's reports about what we send it: its receive quality."""
        for block in blocks:
            consumer = self._consumer_by_ssrc.get(block.ssrc)
            if consumer is not None:
                clock = consumer.info.codec.clock_rate or 90000
                self._link(consumer.info.kind, "recv", block, clock)

    # -- data channels --------------------------------------------------------------------

    def _on_channel(self, label: str, info: ChannelInfo) -> None:
        producer = self.router.produce_data(
            self.participant_sid,
            label,
            ordered=info.ordered,
            max_retransmits=info.max_retransmits,
            max_packet_life_time=info.max_packet_life_time,
        )
        self._data_producers[label] = producer

    def _on_message(self, label: str, message: str | bytes) -> None:
        producer = self._data_producers.get(label)
        if producer is not None:
            producer.forward(message)
        elif label in self._signaling_open and isinstance(message, str):
            self._listener.signaling_message(label, message)

    def _on_channel_closed(self, label: str) -> None:
        producer = self._data_producers.pop(label, None)
        if producer is not None:
            producer.close()


async def _shutdown(channels: DataChannels | None, dtls: DtlsSrtpTransport | None) -> None:
    """SCTP ABORT first, so it still gets out, then DTLS close_notify."""
    if channels is not None:
        await channels.close()
    if dtls is not None:
        dtls.close()


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("media task failed", exc_info=task.exception())
