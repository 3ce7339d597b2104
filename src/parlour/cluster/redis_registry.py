"""The live-room registry in Redis (`domain.ports.LiveRoomRegistry`).

Keys (all under one prefix, `parlour:` by default)::

    nodes                  SET    every registered node id (until forgotten)
    node:{node_id}         STRING JSON {"url", "load"}; expires `ttl` after the last beat
    room:{room_sid}        STRING the node id hosting the room
    rooms:{node_id}        SET    the room SIDs a node hosts (its crash recovery reads it)
    recovery:{node_id}     STRING the node recovering a gone node (SET NX, expires)
    control:{node_id}      pub/sub channel of messages to a node

Every change that two nodes may race for is one Lua script (Redis runs a script alone), so
a room has one host and a gone node one recoverer. A node is gone when its `node:` key has
expired while it is still in `nodes`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any, cast
from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as redis
from redis.exceptions import RedisError

from parlour.domain.ports import NodeInfo
from parlour.domain.sids import RoomSid

__all__ = ["RedisRegistry", "redacted_url"]

log = logging.getLogger(__name__)

# KEYS: room key, new host's rooms set, old host's rooms set (or the new one's again)
# ARGV: new host, expected host ('' = unclaimed), room sid
_CLAIM = """
local current = redis.call('GET', KEYS[1])
if (current == false and ARGV[2] == '') or current == ARGV[2] then
  redis.call('SET', KEYS[1], ARGV[1])
  redis.call('SADD', KEYS[2], ARGV[3])
  if current ~= false and current ~= ARGV[1] then redis.call('SREM', KEYS[3], ARGV[3]) end
  return ARGV[1]
end
if current == false then return '' end
return current
"""

# KEYS: room key; ARGV: prefix, room sid
_RELEASE = """
local current = redis.call('GET', KEYS[1])
if current ~= false then
  redis.call('DEL', KEYS[1])
  redis.call('SREM', ARGV[1] .. 'rooms:' .. current, ARGV[2])
end
return 1
"""

# KEYS: the node's rooms set, the nodes set; ARGV: prefix, node id
_FORGET = """
local released = {}
for _, sid in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local key = ARGV[1] .. 'room:' .. sid
  if redis.call('GET', key) == ARGV[2] then
    redis.call('DEL', key)
    table.insert(released, sid)
  end
end
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[2])
return released
"""


def redacted_url(url: str) -> str:
    """The URL without its password, for logs and errors (`redis://:***@host:6379/0`)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, f"{user}:***@{host}", parts.path, parts.query, ""))


class RedisRegistry:
    """The registry on one Redis server (`redis://`, `rediss://` or `unix://` URL).

    Args:
        prefix: put before every key and channel, so that clusters can share a Redis.
    """

    def __init__(self, client: redis.Redis, *, prefix: str = "parlour:") -> None:
        self._redis = client
        self._prefix = prefix
        self._claim = client.register_script(_CLAIM)
        self._release = client.register_script(_RELEASE)
        self._forget = client.register_script(_FORGET)

    @classmethod
    async def connect(cls, url: str, *, prefix: str = "parlour:") -> RedisRegistry:
        """Connect and check that the server answers.

        Raises:
            ValueError: the URL is not a Redis URL, or the server does not answer (the
                message names the URL without its password).
        """
        try:
            client = redis.Redis.from_url(url, decode_responses=True, socket_connect_timeout=5)
        except ValueError as exc:
            raise ValueError(f"PARLOUR_REDIS_URL {redacted_url(url)!r}: {exc}") from None
        try:
            await client.ping()
        except (RedisError, OSError) as exc:
            await client.aclose()
            raise ValueError(f"cannot reach Redis at {redacted_url(url)}: {exc}") from None
        return cls(client, prefix=prefix)

    def _key(self, *parts: str) -> str:
        return self._prefix + ":".join(parts)

    async def beat(self, node: NodeInfo, ttl: float) -> None:
        value = json.dumps({"url": node.url, "load": node.load})
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(self._key("node", node.node_id), value, px=max(1, int(ttl * 1000)))
            pipe.sadd(self._key("nodes"), node.node_id)
            await pipe.execute()

    async def _registered(self) -> list[str]:
        return sorted(await cast(Any, self._redis.smembers(self._key("nodes"))))

    async def live_nodes(self) -> list[NodeInfo]:
        ids = await self._registered()
        if not ids:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for node_id in ids:
                pipe.get(self._key("node", node_id))
                pipe.scard(self._key("rooms", node_id))
            replies = await pipe.execute()
        nodes = []
        for i, node_id in enumerate(ids):
            raw, rooms = replies[2 * i], replies[2 * i + 1]
            if raw is None:
                continue
            try:
                data = json.loads(raw)
                nodes.append(NodeInfo(node_id, str(data["url"]), int(data["load"]), int(rooms)))
            except (ValueError, KeyError, TypeError):
                log.warning("cluster: unreadable heartbeat of node=%s", node_id)
        return nodes

    async def gone_nodes(self) -> list[str]:
        ids = await self._registered()
        if not ids:
            return []
        alive = await self._redis.mget([self._key("node", i) for i in ids])
        return [node_id for node_id, value in zip(ids, alive, strict=True) if value is None]

    async def room_host(self, room_sid: RoomSid) -> str | None:
        host = await self._redis.get(self._key("room", room_sid))
        return str(host) if host is not None else None

    async def claim_room(self, room_sid: RoomSid, node_id: str, expected: str | None) -> str | None:
        old = expected or node_id
        keys = [self._key("room", room_sid), self._key("rooms", node_id), self._key("rooms", old)]
        host = await self._claim(keys=keys, args=[node_id, expected or "", room_sid])
        return str(host) or None

    async def release_room(self, room_sid: RoomSid) -> None:
        await self._release(keys=[self._key("room", room_sid)], args=[self._prefix, room_sid])

    async def claim_recovery(self, node_id: str, by: str, ttl: float) -> bool:
        won = await self._redis.set(
            self._key("recovery", node_id), by, nx=True, px=max(1, int(ttl * 1000))
        )
        return bool(won)

    async def forget_node(self, node_id: str) -> list[RoomSid]:
        released = await self._forget(
            keys=[self._key("rooms", node_id), self._key("nodes")], args=[self._prefix, node_id]
        )
        return [RoomSid(str(sid)) for sid in released]

    async def publish(self, node_id: str, message: str) -> None:
        await self._redis.publish(self._key("control", node_id), message)

    async def messages(
        self, node_id: str, subscribed: Callable[[], None] | None = None
    ) -> AsyncIterator[str]:
        pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(self._key("control", node_id))
        if subscribed is not None:
            subscribed()
        try:
            while True:
                message = await pubsub.get_message(timeout=None)
                if message is not None and message.get("type") == "message":
                    yield str(message["data"])
        finally:
            await cast(Any, pubsub).aclose()

    async def close(self) -> None:
        await self._redis.aclose()
