"""The SFU: implements the `MediaPlane` port in this process (one UDP socket, one router per
room). Worker processes, one per core, can later host several of these behind the same port.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from parlour.domain.ports import MediaListener, MediaSession
from parlour.domain.sids import ParticipantSid, RoomSid
from parlour.media.dtls import Certificate
from parlour.media.negotiation import ServerCapabilities
from parlour.media.peer import Peer
from parlour.media.router import Router
from parlour.media.udp import MediaSocket

__all__ = ["SfuMediaPlane"]

log = logging.getLogger(__name__)


class SfuMediaPlane:
    """Parlour's own selective forwarding unit.

    Create it with `await SfuMediaPlane.start(host, port, advertised_host=...)`.
    """

    def __init__(self, socket: MediaSocket, certificate: Certificate) -> None:
        self.socket = socket
        self.certificate = certificate
        self.routers: dict[str, Router] = {}
        self.peers: dict[str, Peer] = {}

    @classmethod
    async def start(
        cls, host: str = "127.0.0.1", port: int = 0, *, advertised_host: str | None = None
    ) -> SfuMediaPlane:
        socket = await MediaSocket.bind(host, port, advertised_host=advertised_host)
        log.info("media plane on udp %s:%s", *socket.candidate_address)
        return cls(socket, Certificate.generate())

    def open_session(
        self,
        room_sid: RoomSid,
        participant_sid: ParticipantSid,
        listener: MediaListener,
        video_codecs: Sequence[str],
    ) -> MediaSession:
        router = self.routers.get(room_sid)
        if router is None:
            router = self.routers[room_sid] = Router(room_sid)
        old = self.peers.get(participant_sid)
        if old is not None:
            old.close()
        peer = Peer(
            room_sid=room_sid,
            participant_sid=participant_sid,
            router=router,
            socket=self.socket,
            certificate=self.certificate,
            listener=listener,
            capabilities=ServerCapabilities.default(tuple(video_codecs)),
            on_close=self._closed,
        )
        self.peers[participant_sid] = peer
        return peer

    def _closed(self, peer: Peer) -> None:
        if self.peers.get(peer.participant_sid) is peer:
            del self.peers[peer.participant_sid]
        router = self.routers.get(peer.room_sid)
        if router is not None and not any(p.room_sid == peer.room_sid for p in self.peers.values()):
            del self.routers[peer.room_sid]

    def close(self) -> None:
        for peer in list(self.peers.values()):
            peer.close()
        self.socket.close()
