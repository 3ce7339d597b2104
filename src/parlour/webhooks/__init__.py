"""Outbound adapter: status callbacks (webhooks), signed, ordered per room, retried, durable.

`WebhookSender` implements the `EventSink` port; `TargetPolicy` implements the
`StatusCallbackPolicy` port and guards every request against SSRF. See `docs/webhooks.md`.

May import: `parlour.domain`, `parlour.protocol`, httpx.
Must never import: `parlour.services`, `parlour.api`, `parlour.signaling`, `parlour.store`,
`parlour.media` (the store is reached through the `Store` port).
"""

from parlour.webhooks.sender import WebhookSender, WebhookSettings
from parlour.webhooks.targets import TargetPolicy, TargetRefused

__all__ = ["TargetPolicy", "TargetRefused", "WebhookSender", "WebhookSettings"]
