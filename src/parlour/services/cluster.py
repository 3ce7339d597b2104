"""Several nodes: room placement, signaling routing, REST actions across nodes, and the
crash rule for a node that stops heartbeating.

With a shared PostgreSQL (records) and a shared Redis (the `LiveRoomRegistry` port), any
number of `parlour serve` processes serve one set of rooms. A live room is hosted by one
node, which holds all its signaling sessions and its media::

      client ──ws──► node B ──────── relay (ws) ──────► node A  (hosts room RM1: sessions, SFU)
                       │  route_connect: RM1 → A            ▲
                       └──── registry (Redis): room:RM1 = A ┘  heartbeats, claims, control:A

- **Placement**: the first `connect` to a room that no live node hosts claims it, atomically,
  for the least loaded live node (fewest sessions, then fewest rooms); every later `connect`
  is routed there. A `sync` (resume) goes to the node named in its session token.
- **REST actions** (the `SessionControl` port) reach the hosting node as a message on its
  Redis channel: `end_room` to the room's host, participant actions (kick, subscribe rules)
  to every live node, since the port names only the participant (each node ignores SIDs it
  does not hold). Records are written by the REST node before, in PostgreSQL.
- **Crash rule**: every node beats every `heartbeat` seconds with a key that expires after
  `stale_after`. A node whose key has expired is gone: the one survivor that wins its
  recovery claim disconnects its participants (`NodeMonitor.recover_node`, with their
  callbacks, each written once by a conditional update) and releases its rooms, which then
  end by their empty-room timeouts, as after a single server's restart — or go live again
  on a survivor if clients rejoin.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from parlour.domain import errors
from parlour.domain.events import Event, ParticipantConnected, RoomEnded
from parlour.domain.ports import LiveRoomRegistry, NodeInfo
from parlour.domain.sids import ParticipantSid, RoomSid
from parlour.protocol import signaling as sig
from parlour.services.live_rooms import LiveRoomService
from parlour.services.nodes import NodeMonitor

__all__ = ["ClusterService", "node_of_session", "signaling_url"]

log = logging.getLogger(__name__)

#: Node ids are "ND" + 32 hex digits (`services.nodes.new_node_id`).
NODE_ID_LENGTH = 34
#: Attempts at claiming a room before a `connect` is refused (each lost race re-reads).
PLACEMENT_ATTEMPTS = 5


def node_of_session(session_token: str) -> str | None:
    """The node id a session token names (`SE` + node id + random), if any."""
    node = session_token[2 : 2 + NODE_ID_LENGTH]
    if session_token.startswith("SEND") and len(node) == NODE_ID_LENGTH:
        return node
    return None


def signaling_url(node_url: str) -> str:
    """A node's WebSocket signaling URL from its internal HTTP base URL."""
    base = node_url.rstrip("/")
    if base.startswith("https://"):
        return "wss://" + base.removeprefix("https://") + "/signaling"
    return "ws://" + base.removeprefix("http://") + "/signaling"


class ClusterService:
    """This node's part in a cluster: heartbeat, placement, routing, control, recovery.

    Implements `SessionControl` (for `RoomService`/`ParticipantService`), `EventSink`
    (rooms are claimed when a participant connects and released when they end) and the
    signaling router (`route_connect`, `route_sync`).

    Args:
        url: this node's internal base URL, where other nodes relay signaling to it.
        heartbeat: seconds between heartbeats (and checks for gone nodes).
        stale_after: seconds a heartbeat lasts: a node silent that long is gone.
    """

    def __init__(
        self,
        registry: LiveRoomRegistry,
        live: LiveRoomService,
        nodes: NodeMonitor,
        *,
        node_id: str,
        url: str,
        heartbeat: float = 10.0,
        stale_after: float = 30.0,
    ) -> None:
        self._registry = registry
        self._live = live
        self._nodes = nodes
        self.node_id = node_id
        self.url = url
        self.heartbeat = heartbeat
        self.stale_after = stale_after
        self._tasks: list[asyncio.Task[None]] = []
        self._subscribed = asyncio.Event()

    @property
    def me(self) -> NodeInfo:
        return NodeInfo(self.node_id, self.url, load=self._live.session_count)

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen on this node's channel, then beat (so that no message sent to a live node
        is missed); the heartbeat and control loops run in the background."""
        self._tasks = [asyncio.create_task(self._control_loop())]
        await asyncio.wait_for(self._subscribed.wait(), 30)
        await self._registry.beat(self.me, self.stale_after)
        self._tasks.append(asyncio.create_task(self._beat_loop()))
        log.info("cluster node %s at %s", self.node_id, self.url)

    async def stop(self) -> None:
        """A clean stop (after the local sessions have ended): stop beating and release the
        rooms hosted here, so that their next `connect` places them on another node."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        try:
            await self._registry.forget_node(self.node_id)
        except Exception:
            log.exception("cluster: leaving the registry failed node=%s", self.node_id)

    async def _beat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat)
            try:
                await self._registry.beat(self.me, self.stale_after)
                await self.reclaim()
                await self.recover_gone()
            except Exception:
                log.exception("cluster heartbeat failed node=%s", self.node_id)

    # -- placement ------------------------------------------------------------------------

    async def host_of(self, room_sid: RoomSid) -> NodeInfo:
        """The live node hosting the room; a room no live node hosts is claimed for the
        least loaded one (this node on a tie).

        Raises:
            TwilioError: 53000 if the claim kept being lost to other nodes.
        """
        for _ in range(PLACEMENT_ATTEMPTS):
            nodes = {n.node_id: n for n in await self._registry.live_nodes()}
            nodes.setdefault(self.node_id, self.me)  # our own first beat may be in flight
            current = await self._registry.room_host(room_sid)
            if current is not None and current in nodes:
                return nodes[current]
            target = min(
                nodes.values(),
                key=lambda n: (n.load, n.rooms, n.node_id != self.node_id, n.node_id),
            )
            host = await self._registry.claim_room(room_sid, target.node_id, current)
            if host == target.node_id:
                log.info("cluster: room=%s placed on node=%s", room_sid, host)
                return target
        raise errors.TwilioError(code=errors.Code.SIGNALING_CONNECTION_ERROR)

    async def reclaim(self) -> None:
        """Claim again every room with sessions here that no node claims (a Redis that
        restarted empty, or a claim released while a participant was joining), so that the
        next `connect` to it comes here rather than splitting it."""
        for room_sid in self._live.live_room_sids():
            host = await self._registry.claim_room(room_sid, self.node_id, None)
            if host != self.node_id:
                log.warning(
                    "cluster: room=%s has sessions here but node=%s hosts it", room_sid, host
                )

    # -- signaling routing ----------------------------------------------------------------

    async def route_connect(self, msg: sig.Connect) -> str | None:
        """Where a `connect` goes: the hosting node's signaling URL, or None for here.

        A `connect` this node would refuse (token, grant, identity, room) is answered here;
        a room named by nothing is created, and hosted, here. If the registry cannot be
        reached, the room is served here (a room split between nodes beats no room).

        Raises:
            TwilioError: 53000 when placement keeps losing races.
        """
        try:
            if not msg.name:
                claims = await self._live.verify(msg.token)
                if claims.video is None or claims.video.room is None:
                    return None  # a new room named by its SID: created, and hosted, here
            room, _ = await self._live.room_for(msg)
        except errors.TwilioError:
            return None  # refused: the local connect says why, with Twilio's code
        try:
            host = await self.host_of(room.sid)
        except errors.TwilioError:
            raise
        except Exception:
            log.exception("cluster: placement failed room=%s; serving it here", room.sid)
            return None
        if host.node_id == self.node_id:
            return None
        log.info("cluster: connect to room=%s relayed to node=%s", room.sid, host.node_id)
        return signaling_url(host.url)

    async def route_sync(self, msg: sig.Sync) -> str | None:
        """Where a `sync` (resume) goes: the node its session token names, while that node
        is alive; else None (here, where an unknown session gets 53001)."""
        node = node_of_session(msg.session)
        if node is None or node == self.node_id:
            return None
        try:
            nodes = {n.node_id: n for n in await self._registry.live_nodes()}
        except Exception:
            log.exception("cluster: registry unreachable; sync answered here")
            return None
        host = nodes.get(node)
        return signaling_url(host.url) if host is not None else None

    # -- SessionControl -------------------------------------------------------------------

    async def disconnect_participant(self, participant_sid: ParticipantSid, code: int) -> None:
        if self._live.holds_participant(participant_sid):
            await self._live.disconnect_participant(participant_sid, code)
        else:
            await self._to_others(
                {"op": "disconnect_participant", "sid": participant_sid, "code": int(code)}
            )

    async def subscribe_rules_changed(self, participant_sid: ParticipantSid) -> None:
        if self._live.holds_participant(participant_sid):
            await self._live.subscribe_rules_changed(participant_sid)
        else:
            await self._to_others({"op": "subscribe_rules_changed", "sid": participant_sid})

    async def end_room(self, room_sid: RoomSid, code: int) -> None:
        await self._live.end_room(room_sid, code)
        try:
            host = await self._registry.room_host(room_sid)
            if host is not None and host != self.node_id:
                message = {"op": "end_room", "sid": room_sid, "code": int(code)}
                await self._registry.publish(host, json.dumps(message))
        except Exception:
            log.exception("cluster: end_room not delivered room=%s", room_sid)

    async def _to_others(self, message: dict[str, Any]) -> None:
        """One message to every other live node (each ignores SIDs it does not hold)."""
        try:
            for node in await self._registry.live_nodes():
                if node.node_id != self.node_id:
                    await self._registry.publish(node.node_id, json.dumps(message))
        except Exception:
            log.exception("cluster: %s not delivered sid=%s", message["op"], message["sid"])

    async def _control_loop(self) -> None:
        """Apply the messages sent to this node; resubscribe after a Redis outage."""
        while True:
            try:
                async for raw in self._registry.messages(self.node_id, self._subscribed.set):
                    await self.apply(raw)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("cluster: control channel failed node=%s", self.node_id)
            await asyncio.sleep(self.heartbeat)

    async def apply(self, raw: str) -> None:
        """One control message (`{"op", "sid", "code"}`); a bad one is logged and dropped."""
        try:
            message = json.loads(raw)
            op, sid = message["op"], message["sid"]
            code = int(message.get("code", errors.Code.ROOM_COMPLETED))
            if not isinstance(sid, str):
                raise TypeError("sid")
        except (ValueError, KeyError, TypeError):
            log.warning("cluster: bad control message dropped (%d bytes)", len(raw))
            return
        if op == "end_room":
            await self._live.end_room(RoomSid(sid), code)
        elif op == "disconnect_participant":
            await self._live.disconnect_participant(ParticipantSid(sid), code)
        elif op == "subscribe_rules_changed":
            await self._live.subscribe_rules_changed(ParticipantSid(sid))
        else:
            log.warning("cluster: unknown control message op=%.40s dropped", op)

    # -- EventSink ------------------------------------------------------------------------

    async def emit(self, event: Event) -> None:
        """A room goes live here (its first participant connects through this node): claim
        it if no node does; a room that ended is hosted nowhere any more."""
        try:
            if isinstance(event, ParticipantConnected):
                host = await self._registry.claim_room(event.room.sid, self.node_id, None)
                if host != self.node_id:
                    log.warning(
                        "cluster: room=%s is hosted by node=%s and has a participant here",
                        event.room.sid,
                        host,
                    )
            elif isinstance(event, RoomEnded):
                await self._registry.release_room(event.room.sid)
        except Exception:
            log.exception("cluster: registry update failed room=%s", event.room_sid)

    # -- crash rule -----------------------------------------------------------------------

    async def recover_gone(self) -> list[str]:
        """Apply the crash rule to every node whose heartbeat ran out, once per gone node
        across the cluster (its recovery claim). Returns the nodes recovered here."""
        recovered = []
        for node in await self._registry.gone_nodes():
            if node == self.node_id:
                continue
            if not await self._registry.claim_recovery(node, self.node_id, 4 * self.stale_after):
                continue
            count = await self._nodes.recover_node(node)
            rooms = await self._registry.forget_node(node)
            log.info(
                "cluster: node=%s gone; participants disconnected=%s rooms released=%s",
                node,
                count,
                len(rooms),
            )
            recovered.append(node)
        return recovered
