"""Joins a `LeanEndpoint` to a Parlour room over the real twilio-video signaling protocol.

The signaling is the Python SDK's own (`parlour.client.video.Room`: TCMP/RSP v2 over a
WebSocket, heartbeats, renegotiation); only its peer connection is swapped for the lean
endpoint, through the small interface `Room` expects of `ClientPeer`.
"""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace
from typing import Any

from bench.lean import LeanEndpoint
from parlour.client.video import LocalTrackInfo, Room
from parlour.protocol import signaling as sig
from parlour.protocol.tokens import encode_token


class LeanPeer:
    """What `Room` needs of a peer connection, backed by a `LeanEndpoint`."""

    def __init__(self, pc_id: str, endpoint: LeanEndpoint, recv_only: bool) -> None:
        self.id = pc_id
        self.endpoint = endpoint
        self.recv_only = recv_only
        self.pc = SimpleNamespace(localDescription=None)  # Room._needs_reoffer reads it
        self.revision = 0
        self._pending_revision: int | None = None
        self._offered = False

    @property
    def awaiting_answer(self) -> bool:
        return self._pending_revision is not None

    async def create_offer(self) -> tuple[int, str] | None:
        if self._offered or self._pending_revision is not None:
            return None  # one offer, at join; later changes come as server offers
        self._offered = True
        kinds = ("audio", "video") if self.recv_only else ()
        sdp = self.endpoint.offer(direction="sendrecv", recv_kinds=kinds)
        self.revision += 1
        self._pending_revision = self.revision
        return self.revision, sdp

    async def apply(self, kind: str, revision: int, sdp: str | None) -> tuple[int, str] | None:
        if kind in ("answer", "pranswer") and sdp is not None:
            if revision != self._pending_revision:
                return None
            self.endpoint.apply_answer(sdp)
            self._pending_revision = None
            return None
        if kind == "offer" and sdp is not None:
            if revision <= self.revision or self._pending_revision is not None:
                return None
            answer = self.endpoint.answer(sdp)
            self.revision = revision
            return revision, answer
        return None

    async def close(self) -> None:
        self.endpoint.close()


class ParlourCredentials:
    """An account's API key, to mint Access Tokens as a Twilio back end would."""

    def __init__(self, account_sid: str, key_sid: str, key_secret: str) -> None:
        self.account_sid = account_sid
        self.key_sid = key_sid
        self.key_secret = key_secret

    def token(self, identity: str, room: str) -> str:
        return encode_token(
            account_sid=self.account_sid,
            key_sid=self.key_sid,
            secret=self.key_secret,
            identity=identity,
            now=int(time.time()),
            room=room,
        )


async def join(
    ws_url: str,
    creds: ParlourCredentials,
    identity: str,
    room_name: str,
    endpoint: LeanEndpoint,
    *,
    subscribe: bool = True,
    bandwidth_profile: dict[str, Any] | None = None,
) -> Room:
    """Connect `endpoint` as participant `identity` of `room_name` (with twilio-video's
    ``bandwidthProfile``, in its wire form, if given); returns the Room."""
    token = creds.token(identity, room_name)
    room = Room(ws_url, token, 5000)
    room.name = room_name
    room.subscribe_all = subscribe
    room.bandwidth_profile = bandwidth_profile
    room.peer = LeanPeer(f"pc-{identity}", endpoint, recv_only=not endpoint.tracks)  # type: ignore[assignment]
    for track in endpoint.tracks:
        info = LocalTrackInfo(name=track.kind, kind=track.kind, id=track.track_id)
        room.local_tracks[info.id] = info
    await asyncio.wait_for(room._open(sig.Ice(token=token)), 30)
    return room
