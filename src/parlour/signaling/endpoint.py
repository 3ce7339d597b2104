"""The only module that touches the WebSocket library: `/signaling` and `/v2/signaling`."""

from __future__ import annotations

from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from parlour.services.live_rooms import LiveRoomService
from parlour.signaling.connection import SignalingConnection

__all__ = ["signaling_routes"]

MAX_FRAME = 1 << 20  # a connect with a large SDP is ~10 kB; refuse absurd frames


def signaling_routes(rooms: LiveRoomService) -> list[WebSocketRoute]:
    """WebSocket routes for the `twilio-video` SDK's `wsServer` option."""

    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()

        async def receive() -> str:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                raise ConnectionError("closed")
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

        await SignalingConnection(rooms, receive, send, close).run()

    return [WebSocketRoute("/signaling", endpoint), WebSocketRoute("/v2/signaling", endpoint)]
