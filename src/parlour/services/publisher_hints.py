"""Publisher hints: which simulcast layers of its video tracks a publisher should encode.

With adaptive simulcast (``preferredVideoCodecs: "auto"``) the SDK asks for the
``publisher_hints`` media-signaling channel (and keeps simulcast only if it gets it). The
server then tells it, per track, which encodings to keep active (`msp_tracks.PublisherHints`;
the SDK sets ``RTCRtpEncodingParameters.active`` and answers with the results). Parlour
keeps the layers up to the highest one any subscriber is forwarded and pauses those above
(a recording of the room counts as watching the best); a layer never seen arriving stays on
(its size is unknown until it has). A track nobody watches, not recorded, has every layer
paused: its encoder rests until someone subscribes or switches it on again, when the
allocation picks a layer, the hint resumes it and the subscriber asks for a keyframe.

A layer the publisher paused because of a hint no longer arrives, yet must stay a choice
for the allocation, or nobody would ever ask for it again: `PublisherHints.layers` reports
it as it last arrived (size, bitrate) and active. A subscriber whose allocation picks it is
forwarded the best arriving layer until the publisher resumes it (``media/router.py``,
`Consumer.retarget`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from parlour.domain.bandwidth import SimulcastLayer
from parlour.protocol import msp_tracks as msp
from parlour.protocol.signaling import SignalingProtocolError

__all__ = ["PublisherHints"]

log = logging.getLogger(__name__)

#: How many times in a row a hint the publisher could not apply is sent again.
MAX_RETRIES = 3


class PublisherHints:
    """One publisher's hints: what was last sent per track, and the layers as last seen."""

    def __init__(self) -> None:
        self._sent: dict[str, tuple[bool, ...]] = {}
        self._failures: dict[str, int] = {}
        self._seen: dict[str, list[SimulcastLayer]] = {}
        self._next_id = 1

    def layers(
        self, track_sid: str, measured: Sequence[SimulcastLayer]
    ) -> tuple[SimulcastLayer, ...]:
        """The layers of a track for the allocation: as measured, except that a layer this
        server paused counts as active, as it last arrived."""
        seen = self._seen.setdefault(track_sid, [])
        sent = self._sent.get(track_sid, ())
        out: list[SimulcastLayer] = []
        for i, layer in enumerate(measured):
            if layer.active:
                if i < len(seen):
                    seen[i] = layer
                else:
                    seen.extend([SimulcastLayer(active=False)] * (i - len(seen)))
                    seen.append(layer)
                out.append(layer)
            elif i < len(sent) and not sent[i] and i < len(seen) and seen[i].active:
                out.append(replace(seen[i], active=True))
            else:
                out.append(layer)
        return tuple(out)

    def update(self, needs: Mapping[str, tuple[int, int]]) -> dict[str, Any] | None:
        """The `publisher_hints` message for what changed, or None.

        Args:
            needs: per simulcast track SID, ``(layers, highest)``: its number of layers and
                the highest layer index any subscriber is forwarded (-1: nobody).
        """
        hints: list[msp.PublisherHint] = []
        for sid, (count, highest) in needs.items():
            seen = self._seen.get(sid, [])
            # A layer never seen arriving stays on: until it has, nobody can choose it.
            # Nobody watching (and no recording): every seen layer rests, the encoder too.
            enabled = tuple(
                i <= highest or i >= len(seen) or not seen[i].active for i in range(count)
            )
            if self._sent.get(sid) == enabled:
                continue
            self._sent[sid] = enabled
            hints.append(
                msp.PublisherHint(
                    track=sid,
                    encodings=tuple(
                        msp.LayerEncoding(layer_index=i, enabled=on) for i, on in enumerate(enabled)
                    ),
                )
            )
        for sid in [s for s in self._sent if s not in needs]:
            del self._sent[sid]  # unpublished: a republished track starts afresh
            self._seen.pop(sid, None)
            self._failures.pop(sid, None)
        if not hints:
            return None
        message = msp.PublisherHints(id=self._next_id, hints=tuple(hints))
        self._next_id += 1
        return message.to_json()

    def received(self, body: Mapping[str, Any]) -> None:
        """A message from the publisher: a reply (logged) or a `client_reset` (its track's
        sender went back to default encodings: the hint is sent again next time)."""
        try:
            message = msp.parse_msp("publisher_hints", "client", body)
        except SignalingProtocolError:
            return
        if isinstance(message, msp.ClientReset):
            self._sent.pop(message.track, None)
        elif isinstance(message, msp.PublisherHintsReply):
            for result in message.hints:
                if result.result == "OK":
                    self._failures.pop(result.track, None)
                    continue
                # Chrome sometimes refuses setParameters right after a renegotiation: send
                # the hint again with the next update, a few times.
                failures = self._failures.get(result.track, 0) + 1
                self._failures[result.track] = failures
                if failures <= MAX_RETRIES:
                    self._sent.pop(result.track, None)
                log.info("publisher hint not applied: %s", result.result)
