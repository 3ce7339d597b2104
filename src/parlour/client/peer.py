"""The Python SDK's one peer connection to the SFU, negotiated with twilio-video's revisions.

One unified-plan `RTCPeerConnection` (aiortc) per room, as the JS SDK has. Local audio/video
tracks are sent on their own transceivers whose `a=msid` appdata is the track's wire id
(aiortc writes the track's `id` there, so `LocalTrackInfo.id` is the aiortc track id); data
tracks are data channels labelled with their id. Remote tracks are matched to Track SIDs
through the `a=msid` of their m-section in the remote description (signaling-protocol.md
§3.8).

Revisions (§3.7): each client offer takes the next revision; an answer echoes the offer's;
a server offer is applied only if newer than the last stable revision.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable
from typing import Any

from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCDataChannel,
    RTCPeerConnection,
    RTCRtpTransceiver,
    RTCSessionDescription,
)

__all__ = ["ClientPeer"]

log = logging.getLogger(__name__)

_MID = re.compile(r"^a=mid:(\S+)", re.M)
_MSID = re.compile(r"^a=msid:(\S+) (\S+)", re.M)


def msid_by_mid(sdp: str) -> dict[str, str]:
    """Map each m-section's mid to the appdata (track id) of its `a=msid`."""
    out: dict[str, str] = {}
    for section in sdp.split("\r\nm=")[1:]:
        mid = _MID.search(section)
        msid = _MSID.search(section)
        if mid and msid:
            out[mid.group(1)] = msid.group(2)
    return out


class ClientPeer:
    """The client side of one twilio-video peer connection.

    Args:
        pc_id: the id the server knows this peer connection by.
        on_track: called with (remote track, its wire id) when media arrives.
        on_datachannel: called with each data channel the server opens.
    """

    def __init__(
        self,
        pc_id: str,
        on_track: Callable[[MediaStreamTrack, str], None],
        on_datachannel: Callable[[RTCDataChannel], None],
    ) -> None:
        self.id = pc_id
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.revision = 0
        self._pending_revision: int | None = None
        self._lock = asyncio.Lock()
        self._on_track = on_track
        self._pending_tracks: list[tuple[MediaStreamTrack, RTCRtpTransceiver]] = []
        self.pc.on("track", self._track)
        self.pc.on("datachannel", on_datachannel)

    @property
    def awaiting_answer(self) -> bool:
        return self._pending_revision is not None

    def add_track(self, track: MediaStreamTrack) -> RTCRtpTransceiver:
        """Send a local audio/video track on a new transceiver."""
        return self.pc.addTransceiver(track, direction="sendrecv")

    def add_data_channel(self, label: str, **options: Any) -> RTCDataChannel:
        return self.pc.createDataChannel(label, **options)

    def stop_track(self, track_id: str) -> None:
        """Stop sending a local track (its transceiver becomes receive-only)."""
        for transceiver in self.pc.getTransceivers():
            track = transceiver.sender.track
            if track is not None and track.id == track_id:
                transceiver.direction = "recvonly"
                transceiver.sender.replaceTrack(None)

    async def create_offer(self) -> tuple[int, str] | None:
        """A new local offer with the next revision, unless one is already out."""
        async with self._lock:
            if self._pending_revision is not None or self.pc.signalingState != "stable":
                return None
            await self.pc.setLocalDescription(await self.pc.createOffer())
            self.revision += 1
            self._pending_revision = self.revision
            return self.revision, self.pc.localDescription.sdp

    async def apply(self, kind: str, revision: int, sdp: str | None) -> tuple[int, str] | None:
        """Apply a server description; returns our answer (revision, sdp) to an offer."""
        async with self._lock:
            if self.pc.signalingState == "closed":
                return None  # leaving: a description still in flight has nothing to apply to
            if kind in ("answer", "pranswer") and sdp is not None:
                if revision != self._pending_revision:
                    return None  # an answer to an offer we no longer have
                await self.pc.setRemoteDescription(RTCSessionDescription(sdp, "answer"))
                self._pending_revision = None
                self._flush_tracks()
                return None
            if kind == "offer" and sdp is not None:
                if revision <= self.revision and self._pending_revision is None:
                    return None  # stale
                if self._pending_revision is not None:
                    # Glare: the server wins. aiortc cannot roll back, so our offer is
                    # dropped and made again once this negotiation completes.
                    log.info("peer %s: server offer %s crossed ours", self.id, revision)
                    return None
                await self.pc.setRemoteDescription(RTCSessionDescription(sdp, "offer"))
                answer = await self.pc.createAnswer()
                for transceiver in self.pc.getTransceivers():
                    # A track added since our last negotiation is not in the server's
                    # offer: aiortc would combine its direction with the offer's direction
                    # for it, None, and fail the answer (`None is not in list`). It is
                    # not part of this answer; our next offer negotiates it.
                    if transceiver._offerDirection is None:
                        transceiver._offerDirection = "inactive"
                await self.pc.setLocalDescription(answer)
                self.revision = revision
                self._flush_tracks()
                return revision, self.pc.localDescription.sdp
            if kind == "close":
                await self.pc.close()
            return None

    def _track(self, track: MediaStreamTrack) -> None:
        for transceiver in self.pc.getTransceivers():
            if transceiver.receiver.track is track:
                self._pending_tracks.append((track, transceiver))
        self._flush_tracks()

    def _flush_tracks(self) -> None:
        remote = self.pc.remoteDescription
        if remote is None:
            return
        ids = msid_by_mid(remote.sdp)
        still = []
        for track, transceiver in self._pending_tracks:
            wire_id = ids.get(transceiver.mid or "")
            if wire_id is None:
                still.append((track, transceiver))
            else:
                self._on_track(track, wire_id)
        self._pending_tracks = still

    async def close(self) -> None:
        """Close the connection and what aiortc started for it.

        A close in the middle of ICE leaves aiortc's connect task running, and aioice then
        starts its consent checks (RFC 7675) with nobody to stop them (aiortc 1.16, aioice
        0.13): wait for that task to end, then stop the checks.
        """
        connects = [task for task in asyncio.all_tasks() if _connects(task, self.pc)]
        connections = self._ice_connections()
        await self.pc.close()
        if connects:
            await asyncio.wait(connects, timeout=5)
        for connection in connections:
            task = getattr(connection, "_query_consent_task", None)
            if isinstance(task, asyncio.Task) and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    def _ice_connections(self) -> list[Any]:
        """The aioice connections under this peer connection's ICE transports."""
        transports = [t.sender.transport for t in self.pc.getTransceivers()]
        if self.pc.sctp is not None:
            transports.append(self.pc.sctp.transport)
        found: list[Any] = []
        for dtls in transports:
            connection = getattr(getattr(dtls, "transport", None), "_connection", None)
            if connection is not None and connection not in found:
                found.append(connection)
        return found


def _connects(task: asyncio.Task[Any], pc: RTCPeerConnection) -> bool:
    """Whether `task` is aiortc's (private, unreferenced) connect task of `pc`."""
    coro = task.get_coro()
    frame = getattr(coro, "cr_frame", None)
    return (
        getattr(coro, "__qualname__", "") == "RTCPeerConnection.__connect"
        and frame is not None
        and frame.f_locals.get("self") is pc
    )
