"""`GET /metrics`: Prometheus metrics of this server, behind a bearer token.

Nothing is counted here. The media plane keeps plain integer counters on objects that are
on the forwarding path anyway (`DtlsSrtpTransport`, `Peer`, `MediaSocket`), and
`ParlourCollector` reads them at scrape time, through the snapshot callables the composition
root hands it, as Prometheus families. Each server gets its own `CollectorRegistry` (never
the process-global one), so several servers can live in one process (tests).

The metric names are listed in `docs/metrics.md`.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Callable, Iterable, Mapping
from typing import Protocol

from prometheus_client import ProcessCollector
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from parlour import __version__

__all__ = [
    "MediaCountersView",
    "MediaStatsView",
    "ParlourCollector",
    "metrics_registry",
    "metrics_routes",
]

TRACK_KINDS = ("audio", "video", "data")


class MediaCountersView(Protocol):
    """The cumulative media counters read at scrape time (`media.plane.MediaCounters`)."""

    @property
    def rtp_packets_received(self) -> int: ...
    @property
    def rtp_bytes_received(self) -> int: ...
    @property
    def rtp_packets_sent(self) -> int: ...
    @property
    def rtp_bytes_sent(self) -> int: ...
    @property
    def nacks_received(self) -> int: ...
    @property
    def nacks_sent(self) -> int: ...
    @property
    def plis_received(self) -> int: ...
    @property
    def plis_sent(self) -> int: ...
    @property
    def rtp_packets_lost(self) -> int: ...
    @property
    def srtp_errors(self) -> int: ...
    @property
    def datagrams_dropped_in(self) -> int: ...
    @property
    def datagrams_dropped_out(self) -> int: ...


class MediaStatsView(Protocol):
    """A media plane snapshot (`media.plane.MediaStats`)."""

    @property
    def rooms(self) -> int: ...
    @property
    def participants(self) -> int: ...
    @property
    def published_tracks(self) -> Mapping[str, int]: ...
    @property
    def subscribed_tracks(self) -> Mapping[str, int]: ...
    @property
    def counters(self) -> MediaCountersView: ...


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def _counter(name: str, documentation: str, value: float) -> CounterMetricFamily:
    # The exposition adds `_total` to a counter's name.
    return CounterMetricFamily(name, documentation, value=value)


def _by_kind(family: GaugeMetricFamily, values: Mapping[str, int]) -> GaugeMetricFamily:
    for kind in TRACK_KINDS:
        family.add_metric([kind], values.get(kind, 0))
    return family


class ParlourCollector(Collector):
    """Yields Parlour's metrics from snapshots taken when Prometheus scrapes.

    Args:
        media: the media plane's `stats()`; None when the server runs no SFU of its own
            (its media families are then absent).
        webhook_pending: how many status callbacks wait for delivery.
        sessions: how many signaling sessions the server holds (connected or waiting for
            their client to reconnect).
        recordings: how many recordings are being written.
        media_workers: with the SFU in worker processes, how many are up and how many
            exited without being asked to (killed, crashed; each is restarted).
    """

    def __init__(
        self,
        *,
        media: Callable[[], MediaStatsView] | None = None,
        webhook_pending: Callable[[], int] | None = None,
        sessions: Callable[[], int] | None = None,
        recordings: Callable[[], int] | None = None,
        media_workers: Callable[[], tuple[int, int]] | None = None,
    ) -> None:
        self._media = media
        self._media_workers = media_workers
        self._webhook_pending = webhook_pending
        self._sessions = sessions
        self._recordings = recordings

    def collect(self) -> Iterable[Metric]:
        yield InfoMetricFamily("parlour_build", "Parlour's version.", {"version": __version__})
        if self._webhook_pending is not None:
            yield _gauge(
                "parlour_webhook_pending_deliveries",
                "Status callbacks waiting for delivery (queued or between retries).",
                self._webhook_pending(),
            )
        if self._sessions is not None:
            yield _gauge(
                "parlour_signaling_sessions",
                "Participant sessions held (connected, or waiting for the client to resume).",
                self._sessions(),
            )
        if self._recordings is not None:
            yield _gauge(
                "parlour_recordings_in_progress", "Recordings being written.", self._recordings()
            )
        yield _gauge(
            "parlour_asyncio_tasks",
            "Tasks alive on the server's event loop (a number that grows without bound is a leak).",
            _task_count(),
        )
        if self._media is not None:
            yield from self._media_families(self._media())
        if self._media_workers is not None:
            up, exits = self._media_workers()
            yield _gauge("parlour_media_workers", "Media worker processes running.", up)
            yield _counter(
                "parlour_media_worker_exits",
                "Media worker processes that died unasked (killed, crashed) and were restarted.",
                exits,
            )

    def _media_families(self, stats: MediaStatsView) -> Iterable[Metric]:
        yield _gauge(
            "parlour_rooms", "Rooms with at least one participant on this server.", stats.rooms
        )
        yield _gauge(
            "parlour_participants",
            "Participants with a peer connection on this server.",
            stats.participants,
        )
        yield _by_kind(
            GaugeMetricFamily(
                "parlour_published_tracks", "Tracks published by participants.", labels=["kind"]
            ),
            stats.published_tracks,
        )
        yield _by_kind(
            GaugeMetricFamily(
                "parlour_subscribed_tracks",
                "Tracks forwarded to subscribers (one per subscriber and track).",
                labels=["kind"],
            ),
            stats.subscribed_tracks,
        )
        c = stats.counters
        yield _counter(
            "parlour_rtp_received_packets",
            "RTP packets received from publishers (SRTP unprotected).",
            c.rtp_packets_received,
        )
        yield _counter(
            "parlour_rtp_received_bytes",
            "Bytes of the SRTP packets received from publishers (no UDP/IP headers).",
            c.rtp_bytes_received,
        )
        yield _counter(
            "parlour_rtp_sent_packets",
            "RTP packets sent to subscribers, retransmissions included.",
            c.rtp_packets_sent,
        )
        yield _counter(
            "parlour_rtp_sent_bytes",
            "Bytes of the SRTP packets sent to subscribers (no UDP/IP headers).",
            c.rtp_bytes_sent,
        )
        yield _counter(
            "parlour_rtp_lost_packets",
            "RTP packets lost on the way from publishers (expected - received).",
            c.rtp_packets_lost,
        )
        yield _counter(
            "parlour_rtcp_nacks_received",
            "RTCP NACK messages received from subscribers.",
            c.nacks_received,
        )
        yield _counter(
            "parlour_rtcp_nacks_sent", "RTCP NACK messages sent to publishers.", c.nacks_sent
        )
        yield _counter(
            "parlour_rtcp_plis_received",
            "RTCP PLI messages received from subscribers.",
            c.plis_received,
        )
        yield _counter(
            "parlour_rtcp_plis_sent", "RTCP PLI messages sent to publishers.", c.plis_sent
        )
        yield _counter(
            "parlour_srtp_errors",
            "SRTP/SRTCP packets that failed to unprotect (dropped).",
            c.srtp_errors,
        )
        dropped = CounterMetricFamily(
            "parlour_media_dropped_datagrams",
            "Media datagrams dropped: in = unknown source, bad first byte or no keys yet; "
            "out = transport not connected or socket congested.",
            labels=["direction"],
        )
        dropped.add_metric(["in"], c.datagrams_dropped_in)
        dropped.add_metric(["out"], c.datagrams_dropped_out)
        yield dropped


def _task_count() -> int:
    """Tasks of the running event loop (scrapes run on it); 0 outside one."""
    try:
        return len(asyncio.all_tasks())
    except RuntimeError:
        return 0


def metrics_registry(collector: ParlourCollector) -> CollectorRegistry:
    """A registry of its own for one server: Parlour's metrics and the process's."""
    registry = CollectorRegistry()
    registry.register(collector)
    ProcessCollector(registry=registry)
    return registry


def _bearer(header: str) -> str | None:
    scheme, _, credentials = header.partition(" ")
    credentials = credentials.strip()
    if scheme.lower() != "bearer" or not credentials:
        return None
    return credentials


def metrics_routes(registry: CollectorRegistry, token: str) -> list[Route]:
    """`GET /metrics` (Prometheus text, or OpenMetrics when asked for), for `token` only.

    A missing or wrong `Authorization: Bearer …` answers 401 with a `WWW-Authenticate`
    challenge (RFC 6750). The token is compared in constant time and never logged.
    """
    expected = token.encode()

    async def metrics(request: Request) -> Response:
        presented = _bearer(request.headers.get("authorization", ""))
        if presented is None or not hmac.compare_digest(presented.encode(), expected):
            challenge = 'Bearer realm="parlour metrics"'
            if presented is not None:
                challenge += ', error="invalid_token"'
            return PlainTextResponse(
                "Unauthorized\n", status_code=401, headers={"WWW-Authenticate": challenge}
            )
        encoder, content_type = choose_encoder(request.headers.get("accept", ""))
        return Response(encoder(registry), media_type=content_type)

    return [Route("/metrics", metrics, methods=["GET"], name="metrics")]
