"""Relay a client's signaling WebSocket to the node that hosts its room (several nodes).

The client said `hello` here and got our `welcome`; its `connect` (or `sync`) belongs to
another node. We open a WebSocket to that node's `/signaling`, authenticated as a relay
(`RELAY_HEADER`), say `hello` with the same heartbeat timeout and the client's message as
its body, drop the node's `welcome` (the client has one) and copy frames both ways, as
they are, until one side closes; its close code is passed to the other, so the SDK never
notices the hop. A hosting node that vanishes without a close frame closes the client with
1012 (service restart), which makes the SDK resume on whichever node it reaches next.

This module and `endpoint.py` are the only ones that touch the WebSocket libraries.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable, Mapping

import websockets
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

__all__ = ["RELAY_HEADER", "RelayError", "relay"]

#: The header a relaying node sends, with the cluster's relay token (from the shared secret):
#: the hosting node then serves the connection itself instead of routing it again.
RELAY_HEADER = "x-parlour-relay"
#: A client or node that closed without a code (1005) or vanished (1006): what the other
#: side is told instead (close codes that may be sent, RFC 6455 §7.4).
CLIENT_GONE = 1001
NODE_GONE = 1012


class RelayError(Exception):
    """The hosting node could not be reached."""


def _sendable(code: int | None, default: int) -> int:
    if code is not None and (1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999):
        return code
    return default


def _is_welcome(frame: str) -> bool:
    try:
        return bool(json.loads(frame).get("type") == "welcome")
    except (ValueError, AttributeError):
        return False


async def relay(
    url: str,
    hello: str,
    *,
    headers: Mapping[str, str],
    receive: Callable[[], Awaitable[str]],
    send: Callable[[str], Awaitable[None]],
    close: Callable[[int], Awaitable[None]],
    client_code: Callable[[BaseException], int | None],
    max_size: int = 1 << 20,
) -> None:
    """Relay the client socket (`receive`/`send`/`close`) to `url` until either side closes.

    Args:
        hello: the first frame for the hosting node.
        client_code: the client's close code from the exception `receive` raised.

    Raises:
        RelayError: the node could not be reached (nothing was relayed).
    """
    try:
        upstream = await websockets.connect(
            url, additional_headers=dict(headers), open_timeout=10, max_size=max_size
        )
    except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
        raise RelayError(f"{url}: {exc}") from exc
    try:
        await upstream.send(hello)

        async def down() -> None:  # node → client
            first = True
            async for frame in upstream:
                text = frame if isinstance(frame, str) else frame.decode("utf-8", "replace")
                if first and _is_welcome(text):
                    first = False
                    continue
                first = False
                await send(text)

        async def up() -> int:  # client → node; returns the client's close code
            try:
                while True:
                    await upstream.send(await receive())
            except ConnectionClosed:
                raise
            except (ConnectionError, asyncio.IncompleteReadError) as exc:
                return _sendable(client_code(exc), CLIENT_GONE)

        to_client = asyncio.create_task(down())
        to_node = asyncio.create_task(up())
        done, pending = await asyncio.wait(
            {to_client, to_node}, return_when=asyncio.FIRST_COMPLETED
        )
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        if to_node in done and to_node.exception() is None:
            await upstream.close(to_node.result())  # the client left: the node hears how
        else:  # the node closed or vanished (or the client could not be written to)
            received = upstream.protocol.close_rcvd
            code = received.code if received is not None else NODE_GONE
            with contextlib.suppress(Exception):
                await close(_sendable(code, 1000))
    finally:
        await upstream.close()
