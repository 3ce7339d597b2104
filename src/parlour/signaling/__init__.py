"""Inbound WebSocket adapter: the `twilio-video` signaling protocol (TCMP + RSP v2).

May import: `parlour.services`, `parlour.domain`, `parlour.protocol`, Starlette's WebSocket,
and the `websockets` client (`relay.py`: a client relayed to the node hosting its room).
Must never import: `parlour.api`, `parlour.store`, `parlour.media` (media is reached through
the `MediaPlane` port), `parlour.cluster` (reached through `services.cluster`).
"""
