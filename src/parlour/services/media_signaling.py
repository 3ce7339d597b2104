"""One participant's media-signaling channels (twilio-video's Media Signaling Protocol).

In `connect` the SDK asks for channels by name (`media_signaling: {active_speaker:
{transports: [{type: "data-channel"}]}, …}`). For each one Parlour serves, `connected`
answers `{transport: {type: "data-channel", label}}` and the SFU opens a data channel with
that label to the client. The client then sends `{"type": "ready"}` on it; messages before
that would be lost (the SDK listens only once its transport is set up), so nothing is sent
on a channel until it is ready. Messages are JSON objects with a `type`, both ways
(docs/compatibility.md, "Media signaling").
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection, Mapping
from typing import Any

from parlour.domain.ports import MediaSession
from parlour.protocol import signaling as sig

__all__ = ["MediaSignalingChannels"]

log = logging.getLogger(__name__)

#: Largest message accepted from a client on a media-signaling channel.
MAX_MESSAGE = 65536


class MediaSignalingChannels:
    """The channels one session asked for and this server serves, by name and label.

    Args:
        requested: `connect.media_signaling` as the client sent it.
        served: the channel names this server implements.
    """

    def __init__(
        self,
        requested: Mapping[str, sig.MediaSignalingRequest] | None,
        served: Collection[str],
    ) -> None:
        self.labels: dict[str, str] = {}
        for name, request in (requested or {}).items():
            if name in served and any(t.type == "data-channel" for t in request.transports):
                self.labels[name] = name  # one channel per name and session: unique
        self._channel_of = {label: name for name, label in self.labels.items()}
        self._ready: set[str] = set()

    def open(self, media: MediaSession) -> None:
        for label in self.labels.values():
            media.open_signaling_channel(label)

    def answer(self) -> dict[str, sig.MediaSignalingChannel]:
        """`connected.media_signaling`: the transport of each channel served."""
        return {
            name: sig.MediaSignalingChannel(transport=sig.MediaSignalingTransport(label=label))
            for name, label in self.labels.items()
        }

    def wants(self, name: str) -> bool:
        return name in self.labels

    def ready(self, name: str) -> bool:
        """The client said `ready` on this channel: messages sent now reach it."""
        return name in self._ready

    def received(self, label: str, text: str) -> tuple[str, dict[str, Any]] | None:
        """A client message: (channel name, JSON object), or None if it is not one (bad JSON
        is dropped, as the SDK drops it). A `ready` marks the channel ready and is returned
        too, so that the caller can send the channel's current state."""
        name = self._channel_of.get(label)
        if name is None or len(text) > MAX_MESSAGE:
            return None
        try:
            message = json.loads(text)
        except (ValueError, RecursionError):
            return None
        if not isinstance(message, dict):
            return None
        if message.get("type") == "ready":
            self._ready.add(name)
        return name, message

    def send(self, media: MediaSession | None, name: str, message: Mapping[str, Any]) -> bool:
        """Send on a ready channel; False (nothing sent) if it is not (yet)."""
        if media is None or name not in self._ready:
            return False
        media.send_signaling(self.labels[name], json.dumps(message, separators=(",", ":")))
        return True
