"""Inbound WebSocket adapter: the `twilio-video` signaling protocol (TCMP + RSP v2).

May import: `parlour.services`, `parlour.domain`, `parlour.protocol`, Starlette's WebSocket.
Must never import: `parlour.api`, `parlour.store`, `parlour.media` (media is reached through
the `MediaPlane` port).
"""
