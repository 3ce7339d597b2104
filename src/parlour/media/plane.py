"""The SFU: implements the `MediaPlane` port in this process (one UDP socket, one router per
room). Worker processes, one per core, can later host several of these behind the same port.

`SfuMediaPlane.stats()` is what the metrics endpoint reads at scrape time: it walks the live
peers and adds the totals of the closed ones, so that nothing on the forwarding path does
more than the plain integer increments of `DtlsSrtpTransport` and `Peer`.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from parlour.domain.ports import MediaListener, MediaSession
from parlour.domain.sids import ParticipantSid, RoomSid
from parlour.media.codecs import ServerCapabilities
from parlour.media.dtls import Certificate
from parlour.media.peer import CONNECT_TIMEOUT, CONSENT_TIMEOUT, Peer
from parlour.media.router import Router
from parlour.media.udp import MediaSocket

__all__ = ["MediaCounters", "MediaStats", "SfuMediaPlane"]

log = logging.getLogger(__name__)


@dataclass
class MediaCounters:
    """Cumulative media counts; as `SfuMediaPlane.stats()` reports them, none ever decreases.

    Attributes:
        rtp_packets_received, rtp_bytes_received: SRTP packets from publishers, unprotected,
            and their size as received (no UDP/IP headers).
        rtp_packets_sent, rtp_bytes_sent: RTP packets to subscribers (retransmissions
            included), protected, and their SRTP size.
        nacks_received, plis_received: RTCP NACK / PLI messages from subscribers.
        nacks_sent, plis_sent: RTCP NACK / PLI messages to publishers.
        rtp_packets_lost: RTP loss on the way in, per the receive trackers (see
            `SfuMediaPlane.stats`).
        srtp_errors: SRTP/SRTCP packets that failed to unprotect.
        datagrams_dropped_in: datagrams dropped on the way in (unknown source address or
            first byte, no SRTP keys yet, too short, unusable DTLS).
        datagrams_dropped_out: packets dropped on the way out (transport not connected,
            protection failed, socket closed or its send buffer full).
    """

    rtp_packets_received: int = 0
    rtp_bytes_received: int = 0
    rtp_packets_sent: int = 0
    rtp_bytes_sent: int = 0
    nacks_received: int = 0
    nacks_sent: int = 0
    plis_received: int = 0
    plis_sent: int = 0
    rtp_packets_lost: int = 0
    srtp_errors: int = 0
    datagrams_dropped_in: int = 0
    datagrams_dropped_out: int = 0

    def add(self, other: MediaCounters) -> None:
        """Add every count of `other` to this one."""
        for f in dataclasses.fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    @classmethod
    def of_peer(cls, peer: Peer) -> MediaCounters:
        """What one peer has counted so far (its transport's counters included)."""
        counters = cls(
            nacks_received=peer.nacks_received,
            nacks_sent=peer.nacks_sent,
            plis_received=peer.plis_received,
            plis_sent=peer.plis_sent,
            rtp_packets_lost=peer.lost_packets(),
        )
        dtls = peer.dtls
        if dtls is not None:
            counters.rtp_packets_received = dtls.rtp_packets_received
            counters.rtp_bytes_received = dtls.rtp_bytes_received
            counters.rtp_packets_sent = dtls.rtp_packets_sent
            counters.rtp_bytes_sent = dtls.rtp_bytes_sent
            counters.srtp_errors = dtls.srtp_errors
            counters.datagrams_dropped_in = dtls.dropped
            counters.datagrams_dropped_out = dtls.send_dropped
        return counters


@dataclass(frozen=True)
class MediaStats:
    """A snapshot of the media plane (`SfuMediaPlane.stats()`).

    Attributes:
        rooms: rooms with at least one participant on this media plane.
        participants: participants with a peer connection here (connected or reconnecting).
        published_tracks: producers by kind ("audio", "video", "data").
        subscribed_tracks: tracks delivered to subscribers (consumers), by kind.
        counters: the cumulative counts.
    """

    rooms: int
    participants: int
    published_tracks: dict[str, int]
    subscribed_tracks: dict[str, int]
    counters: MediaCounters


class SfuMediaPlane:
    """Parlour's own selective forwarding unit.

    Create it with `await SfuMediaPlane.start(host, port, advertised_host=...)`.

    Attributes:
        connect_timeout: seconds from a participant's first offer until its DTLS-SRTP
            transport must be connected, else `MediaListener.media_failed`.
        consent_timeout: seconds without an ICE connectivity check from a connected
            participant (consent freshness, RFC 7675) before `media_failed`.
    """

    def __init__(
        self,
        socket: MediaSocket,
        certificate: Certificate,
        *,
        connect_timeout: float = CONNECT_TIMEOUT,
        consent_timeout: float = CONSENT_TIMEOUT,
    ) -> None:
        self.socket = socket
        self.certificate = certificate
        self.connect_timeout = connect_timeout
        self.consent_timeout = consent_timeout
        self.routers: dict[str, Router] = {}
        self.peers: dict[str, Peer] = {}
        # What closed peers counted, so that totals never go backwards.
        self._ended = MediaCounters()
        self._lost_reported = 0

    @classmethod
    async def start(
        cls,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        advertised_host: str | None = None,
        connect_timeout: float = CONNECT_TIMEOUT,
        consent_timeout: float = CONSENT_TIMEOUT,
        tcp: bool = False,
    ) -> SfuMediaPlane:
        """Bind the SFU's UDP socket (and with `tcp`, its ICE-TCP listener on the same port
        number; with `port` 0, on any port if that number is taken over TCP)."""
        socket = await MediaSocket.bind(host, port, advertised_host=advertised_host)
        log.info("media plane on udp %s:%s", *socket.candidate_address)
        if tcp:
            udp_port = socket.candidate_address[1]
            try:
                try:
                    await socket.listen_tcp(host, udp_port)
                except OSError:
                    if port:
                        raise
                    await socket.listen_tcp(host, 0)
            except BaseException:
                socket.close()
                raise
            log.info(
                "media plane on tcp %s:%s (ICE-TCP)", socket.candidate_address[0], socket.tcp_port
            )
        return cls(
            socket,
            Certificate.generate(),
            connect_timeout=connect_timeout,
            consent_timeout=consent_timeout,
        )

    def open_session(
        self,
        room_sid: RoomSid,
        participant_sid: ParticipantSid,
        listener: MediaListener,
        video_codecs: Sequence[str],
    ) -> MediaSession:
        old = self.peers.get(participant_sid)
        if old is not None:
            old.close()  # first: it may take the room's router with it
        router = self.routers.get(room_sid)
        if router is None:
            router = self.routers[room_sid] = Router(room_sid)
        peer = Peer(
            room_sid=room_sid,
            participant_sid=participant_sid,
            router=router,
            socket=self.socket,
            certificate=self.certificate,
            listener=listener,
            capabilities=ServerCapabilities.default(tuple(video_codecs)),
            on_close=self._closed,
            connect_timeout=self.connect_timeout,
            consent_timeout=self.consent_timeout,
        )
        self.peers[participant_sid] = peer
        return peer

    def stats(self) -> MediaStats:
        """Live counts and cumulative counters, for the metrics endpoint.

        Cumulative RTP loss (expected − received) shrinks when a retransmission repairs a
        loss; the reported total is held at its highest value, so it never decreases.
        """
        counters = MediaCounters()
        counters.add(self._ended)
        published: Counter[str] = Counter()
        subscribed: Counter[str] = Counter()
        for peer in self.peers.values():
            counters.add(MediaCounters.of_peer(peer))
            published.update(producer.kind for producer in peer.producers.values())
            published["data"] += len(peer.data_producers)
            subscribed.update(peer.subscribed_kinds())
        socket = self.socket
        counters.datagrams_dropped_in += socket.dropped
        counters.datagrams_dropped_out += socket.send_dropped
        self._lost_reported = max(self._lost_reported, counters.rtp_packets_lost)
        counters.rtp_packets_lost = self._lost_reported
        kinds = ("audio", "video", "data")
        return MediaStats(
            rooms=len(self.routers),
            participants=len(self.peers),
            published_tracks={kind: published[kind] for kind in kinds},
            subscribed_tracks={kind: subscribed[kind] for kind in kinds},
            counters=counters,
        )

    def _closed(self, peer: Peer) -> None:
        # Peer.close() runs once and has removed its producers (folding their loss) already.
        self._ended.add(MediaCounters.of_peer(peer))
        if self.peers.get(peer.participant_sid) is peer:
            del self.peers[peer.participant_sid]
        router = self.routers.get(peer.room_sid)
        if router is not None and not any(p.room_sid == peer.room_sid for p in self.peers.values()):
            router.speakers.close()
            del self.routers[peer.room_sid]

    def close(self) -> None:
        for peer in list(self.peers.values()):
            peer.close()
        self.socket.close()
