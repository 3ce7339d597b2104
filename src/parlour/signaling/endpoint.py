"""The server side of the WebSocket library: `/signaling` and `/v2/signaling` (`relay.py`
is the client side, to other nodes)."""

from __future__ import annotations

import hmac

from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from parlour.services.live_rooms import LiveRoomService
from parlour.signaling.connection import Router, SignalingConnection, SocketClosed
from parlour.signaling.relay import RELAY_HEADER

__all__ = ["signaling_routes"]

MAX_FRAME = 1 << 20  # a connect with a large SDP is ~10 kB; refuse absurd frames


def signaling_routes(
    rooms: LiveRoomService, *, router: Router | None = None, relay_token: str | None = None
) -> list[WebSocketRoute]:
    """WebSocket routes for the `twilio-video` SDK's `wsServer` option.

    Args:
        router: several nodes: where each `connect`/`sync` belongs (`ClusterService`).
        relay_token: the cluster's relay token: a connection that carries it comes from a
            node relaying a client here, and is served here without routing.
    """
    relay_headers = {RELAY_HEADER: relay_token} if relay_token else None

    def relayed(websocket: WebSocket) -> bool:
        given = websocket.headers.get(RELAY_HEADER)
        return (
            relay_token is not None
            and given is not None
            and hmac.compare_digest(given.encode("latin-1"), relay_token.encode("latin-1"))
        )

    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()

        async def receive() -> str:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                raise SocketClosed(int(message.get("code") or 1005))
            text = message.get("text")
            if text is None:
                data = message.get("bytes") or b""
                text = data.decode("utf-8", errors="replace")
            if len(text) > MAX_FRAME:
                return "{}"  # rejected by the parser as an invalid frame
            return str(text)

        async def send(text: str) -> None:
            try:
                await websocket.send_text(text)
            except (WebSocketDisconnect, RuntimeError) as exc:
                raise ConnectionError("closed") from exc

        async def close(code: int) -> None:
            await websocket.close(code)

        await SignalingConnection(
            rooms,
            receive,
            send,
            close,
            router=None if relayed(websocket) else router,
            relay_headers=relay_headers,
        ).run()

    return [WebSocketRoute("/signaling", endpoint), WebSocketRoute("/v2/signaling", endpoint)]
