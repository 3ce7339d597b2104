"""Outbound adapter: the live-room registry of a cluster of nodes, in Redis.

`RedisRegistry` implements `domain.ports.LiveRoomRegistry`: node heartbeats (keys with a
time to live), which node hosts which room (claimed atomically), the recovery claim of a
gone node, and a pub/sub channel per node. The use cases around it (placement, routing,
recovery) are in `services.cluster`.

May import: `parlour.domain`, the `redis` package.
Must never import: `parlour.services`, `parlour.api`, `parlour.signaling`, other adapters.
"""

from parlour.cluster.redis_registry import RedisRegistry, redacted_url

__all__ = ["RedisRegistry", "redacted_url"]
