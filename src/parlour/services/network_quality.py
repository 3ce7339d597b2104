"""Network quality over the `network_quality` media-signaling channel.

The SDK reports its own view of its connection about once a second (`getStats()` summed
up: ICE round trip and available send bitrate; per kind, what it sends and what it
receives with loss and jitter) and waits for one reply before the next report. Parlour
feeds each report into the participant's `NetworkQualityEstimator` (levels 0–5, smoothed;
`domain.network_quality`) and answers at once with the participant's own levels and those
of the others in the room, cut to the verbosity each side asked for
(docs/media-signaling.md). The SDK shows them as `networkQualityLevel` and
`networkQualityStats`, and fires `networkQualityLevelChanged`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from parlour.domain.network_quality import (
    Direction,
    DirectionQuality,
    LinkSample,
    MediaKind,
    MediaQuality,
    NetworkQualityEstimator,
    ParticipantQuality,
)
from parlour.domain.ports import LinkReport
from parlour.protocol import msp_network_quality as nq

__all__ = ["NetworkQuality"]

#: Media measurements older than this (seconds) are not used any more.
LINK_FRESH = 3.0
_KINDS = frozenset(kind.value for kind in MediaKind)


class NetworkQuality:
    """One participant's network quality: what it reported, its levels, its verbosity."""

    def __init__(self) -> None:
        self.estimator = NetworkQualityEstimator()
        self.report_level = nq.NetworkQualityVerbosity.MINIMAL
        self.remote_report_level = nq.NetworkQualityVerbosity.NONE

    def report(
        self, message: Mapping[str, Any], now: float, links: Sequence[LinkReport] = ()
    ) -> bool:
        """Take one client report (a parsed JSON object) and what the SFU measured of the
        participant's media lately; False if it is not a report.

        Browsers' reports carry the ICE round trip and bitrates but (Chromium 156 with
        twilio-video 2.36) no loss or jitter: those come from the SFU, `send` from its own
        receive statistics of what the participant publishes, `recv` from the
        participant's RTCP receiver reports about what it is sent.
        """
        try:
            report = nq.NetworkQualityReport.parse(message)
        except nq.NetworkQualityProtocolError:
            return False
        self.report_level = report.report_level
        self.remote_report_level = report.remote_report_level
        rtt = report.ice.rtt if report.ice is not None else None
        available = report.ice.available_send if report.ice is not None else None
        for kind, summary in ((MediaKind.AUDIO, report.audio), (MediaKind.VIDEO, report.video)):
            if summary is None:
                continue
            if summary.send is not None:
                sample = LinkSample(
                    rtt=rtt, bitrate=summary.send.bitrate, available_bitrate=available
                )
                self.estimator.observe(now, kind, Direction.SEND, sample)
            if summary.recv is not None:
                sample = LinkSample(
                    rtt=rtt,
                    bitrate=summary.recv.bitrate,
                    fraction_lost=summary.recv.fraction_lost,
                    jitter=summary.recv.jitter,
                )
                self.estimator.observe(now, kind, Direction.RECV, sample)
        for link in links:
            if now - link.at <= LINK_FRESH and link.kind in _KINDS:
                sample = LinkSample(fraction_lost=link.fraction_lost, jitter=link.jitter)
                direction = Direction.SEND if link.direction == "send" else Direction.RECV
                self.estimator.observe(now, MediaKind(link.kind), direction, sample)
        return True

    def levels(self, now: float) -> nq.NetworkQualityLevels | None:
        quality = self.estimator.quality(now)
        return None if quality is None else _levels(quality)

    def reply(
        self, now: float, others: Iterable[tuple[str, NetworkQuality]]
    ) -> nq.NetworkQualityMessage:
        """The answer to the latest report: own levels and the others' known ones."""
        remotes = [
            (sid, levels) for sid, other in others if (levels := other.levels(now)) is not None
        ]
        return nq.NetworkQualityMessage.build(
            self.levels(now),
            remotes,
            report_level=self.report_level,
            remote_report_level=self.remote_report_level,
        )


def _levels(quality: ParticipantQuality) -> nq.NetworkQualityLevels:
    return nq.NetworkQualityLevels(
        level=quality.level, audio=_media(quality.audio), video=_media(quality.video)
    )


def _media(quality: MediaQuality) -> nq.MediaLevels:
    return nq.MediaLevels(
        send=quality.send.level,
        recv=quality.recv.level,
        send_stats=_stats(quality.send),
        recv_stats=_stats(quality.recv),
    )


def _stats(d: DirectionQuality) -> nq.SendOrRecvStats:
    return nq.SendOrRecvStats(
        bandwidth=nq.BandwidthStats(
            actual=d.bitrate, available=d.available_bitrate, level=d.bandwidth_level
        ),
        fraction_lost=nq.FractionLostStats(
            fraction_lost=d.fraction_lost, level=d.fraction_lost_level
        ),
        latency=nq.LatencyStats(jitter=d.jitter, rtt=d.rtt, level=d.latency_level),
    )
