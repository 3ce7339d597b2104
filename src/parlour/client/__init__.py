"""The Parlour Python SDK: join rooms (`parlour.client.video`) like twilio-video does.

May import: `parlour.protocol` only (plus websockets, httpx, aiortc), so that it can become
its own distribution. Must never import the server (services, api, store, media, …).
"""
