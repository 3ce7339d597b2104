"""Server nodes: this one's heartbeat, and what is left behind by a node that is gone.

Each `parlour serve` process is a node with a fresh id. It records a heartbeat in the store
every `heartbeat` seconds; participants that join through it belong to it
(`Participant.node_id`). A node that has not beaten for `stale_after` seconds is gone —
killed, crashed, or cut off — whether it was this machine's previous process or another
server of a cluster. Any running node then disconnects the gone node's participants, with
the `track-removed` and `participant-disconnected` callbacks Twilio sends, and their rooms
end by their empty-room timeouts like any other room.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import secrets

from parlour.domain.clock import Clock
from parlour.domain.ports import Store
from parlour.services.participants import ParticipantService

__all__ = ["NodeMonitor", "new_node_id"]

log = logging.getLogger(__name__)


def new_node_id() -> str:
    """A fresh id for this process (never reused: a restarted process is a new node)."""
    return "ND" + secrets.token_hex(16)


class NodeMonitor:
    """Beats for this node and recovers the participants of gone nodes.

    Args:
        heartbeat: seconds between heartbeats (and recovery sweeps).
        stale_after: seconds of silence after which a node is gone; several heartbeats, so
            that a busy or briefly paused node is not taken for dead.
    """

    def __init__(
        self,
        store: Store,
        clock: Clock,
        participants: ParticipantService,
        node_id: str,
        *,
        heartbeat: float = 10.0,
        stale_after: float = 30.0,
    ) -> None:
        self._store = store
        self._clock = clock
        self._participants = participants
        self.node_id = node_id
        self.heartbeat = heartbeat
        self.stale_after = stale_after

    async def beat(self) -> None:
        await self._store.heartbeat_node(self.node_id, self._clock.now())

    async def recover(self) -> int:
        """Disconnect every active participant of every gone node, then forget the node.

        Returns how many participants were disconnected here. Safe to run on several nodes
        at once: each participant leaves once (`Store.disconnect_participant`).
        """
        before = self._clock.now() - dt.timedelta(seconds=self.stale_after)
        count = 0
        for node in await self._store.stale_nodes(before):
            if node != self.node_id:
                count += await self.recover_node(node)
        return count

    async def recover_node(self, node: str) -> int:
        """The crash rule for one gone node: disconnect its active participants (with their
        callbacks), then forget it. Returns how many were disconnected here; safe to run
        on several nodes at once, as `recover`."""
        count = 0
        for participant in await self._store.active_participants_of_node(node):
            room = await self._store.get_room(participant.account_sid, participant.room_sid)
            if room is None:  # pragma: no cover - the room's account was deleted
                continue
            left = await self._participants.leave(room, participant)
            count += left is not participant
        await self._store.delete_node(node)
        log.info("node gone node=%s participants disconnected=%s", node, count)
        return count

    async def run(self) -> None:
        """Beat and recover every `heartbeat` seconds until cancelled; errors are logged."""
        while True:
            try:
                await self.beat()
                await self.recover()
            except Exception:
                log.exception("node heartbeat failed")
            await asyncio.sleep(self.heartbeat)

    async def stop(self) -> None:
        """This node stops for good (its participants have left): forget it."""
        await self._store.delete_node(self.node_id)
