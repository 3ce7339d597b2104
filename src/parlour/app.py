"""The composition root: `build(config)` wires every part; nothing imports this module.

::

    Parlour
    ├── SqlStore            (store/)       SQLite or PostgreSQL
    ├── AccountService      (services/)
    ├── RoomService         (services/)    + idle-room reaper task
    ├── ParticipantService  (services/)
    ├── LiveRoomService     (services/)    live sessions; implements SessionControl
    ├── NodeMonitor         (services/)    this node's heartbeat; recovers gone nodes
    ├── ClusterService      (services/)    several nodes (PARLOUR_REDIS_URL): placement, routing,
    │   └── RedisRegistry   (cluster/)     REST actions across nodes, crash rule; live-room registry
    ├── NetworkTraversal    (services/)    TURN credentials for `iced` and /2010-04-01/…/Tokens.json
    ├── signaling routes    (signaling/)   /signaling: frames ↔ LiveRoomService calls
    ├── SfuMediaPlane       (media/)       ICE-lite/DTLS-SRTP/RTP forwarding/data channels
    │   or WorkerMediaPlane (media/)       the same SFU in N worker processes (--media-workers)
    ├── WebhookSender       (webhooks/)    status callbacks; an EventSink next to the logs
    ├── RetentionService    (services/)    per-account retention + its sweeper task
    ├── MediaStorageResolver (services/)   per-account media storage: local, S3, encrypted
    ├── Starlette app       (api/)         REST v1, /openapi.json, /healthz, /signaling
    └── CollectorRegistry   (api/metrics)  /metrics: reads the SFU and webhook counters
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

from prometheus_client.registry import CollectorRegistry
from starlette.applications import Starlette

from parlour import __version__
from parlour.api.app import build_api
from parlour.api.context import ApiContext
from parlour.api.metrics import ParlourCollector, metrics_registry, metrics_routes
from parlour.cluster import RedisRegistry
from parlour.config import Config, load_metrics_token, load_server_secret
from parlour.domain.clock import Clock, SystemClock
from parlour.domain.events import Event
from parlour.domain.ports import FanOutEventSink, MediaPlane, SessionControl
from parlour.domain.sids import ParticipantSid, RoomSid
from parlour.domain.turn import TurnServers
from parlour.media.plane import SfuMediaPlane
from parlour.media.workers import WorkerMediaPlane, WorkerSettings
from parlour.protocol.media_urls import media_url_key
from parlour.recording import LocalStorage, MatroskaRecorder
from parlour.recording.composer import PoolComposer
from parlour.services.accounts import AccountService
from parlour.services.cluster import ClusterService
from parlour.services.compositions import CompositionService
from parlour.services.live_rooms import LiveRoomService
from parlour.services.media_settings import CredentialService, MediaSettingsService, SecretBox
from parlour.services.media_storage import MediaStorageResolver
from parlour.services.nodes import NodeMonitor, new_node_id
from parlour.services.participants import ParticipantService
from parlour.services.recordings import RecordingService
from parlour.services.retention import RetentionService
from parlour.services.rooms import RoomService
from parlour.services.transcriptions import TapFanOut, TranscriptionService
from parlour.services.traversal import NetworkTraversal
from parlour.signaling.endpoint import signaling_routes
from parlour.store.sql import SqlStore
from parlour.transcription import EngineSpec, TranscriberPool
from parlour.webhooks import TargetPolicy, WebhookSender, WebhookSettings

__all__ = ["LoggingEventSink", "Parlour", "SessionsProxy", "build", "open_store"]

log = logging.getLogger(__name__)


class LoggingEventSink:
    """Logs each domain event with its SIDs (no identities or other personal data)."""

    async def emit(self, event: Event) -> None:
        log.info(
            "event %s room=%s participant=%s track=%s",
            event.name,
            event.room_sid,
            event.participant_sid or "-",
            event.track_sid or "-",
        )


class SessionsProxy:
    """The `SessionControl` port for the room and participant services, bound to the
    live-rooms service once it exists (it needs those services itself), or, with several
    nodes, to the cluster service that reaches the room's node."""

    def __init__(self) -> None:
        self.live: SessionControl | None = None

    async def disconnect_participant(self, participant_sid: ParticipantSid, code: int) -> None:
        if self.live is not None:
            await self.live.disconnect_participant(participant_sid, code)

    async def end_room(self, room_sid: RoomSid, code: int) -> None:
        if self.live is not None:
            await self.live.end_room(room_sid, code)

    async def subscribe_rules_changed(self, participant_sid: ParticipantSid) -> None:
        if self.live is not None:
            await self.live.subscribe_rules_changed(participant_sid)


@dataclass
class Parlour:
    """Every wired part of one server."""

    config: Config
    store: SqlStore
    accounts: AccountService
    rooms: RoomService
    participants: ParticipantService
    live: LiveRoomService
    nodes: NodeMonitor
    asgi: Starlette

    sfu: SfuMediaPlane | None = None
    metrics: CollectorRegistry | None = None
    media_workers: WorkerMediaPlane | None = None
    cluster: ClusterService | None = None

    async def close(self) -> None:
        await self.live.close()
        if self.sfu is not None:
            self.sfu.close()
        if self.media_workers is not None:
            await self.media_workers.close()
        await self.store.close()


def relay_token(secret: bytes) -> str:
    """What a node relaying a client's signaling to another shows it (same on every node)."""
    return hmac.new(secret, b"parlour/relay-token/v1", hashlib.sha256).hexdigest()


async def open_store(config: Config) -> SqlStore:
    config.data_dir.mkdir(parents=True, exist_ok=True)
    return await SqlStore.open(config.db_url, log_personal_data=config.log_personal_data)


async def build(
    config: Config, *, clock: Clock | None = None, media: MediaPlane | None = None
) -> Parlour:
    """Open the store (migrating it) and wire the services and the ASGI app.

    Args:
        media: the media plane to attach; by default Parlour's own SFU on a UDP socket.
    """
    clock = clock or SystemClock()
    store = await open_store(config)
    secret = load_server_secret(config)
    sessions = SessionsProxy()
    accounts = AccountService(store, clock, secret)
    node_id = new_node_id()
    bind_host = f"[{config.host}]" if ":" in config.host else config.host
    callback_policy = TargetPolicy(
        allow_private=config.webhook_allow_private,
        own_urls=(config.base_url, f"http://{bind_host}:{config.port}"),
    )
    webhooks = WebhookSender(
        store,
        clock,
        accounts.auth_token,
        callback_policy,
        WebhookSettings(
            timeout=config.webhook_timeout_seconds,
            max_attempts=config.webhook_max_attempts,
            retry_initial=config.webhook_retry_initial_seconds,
            retry_max=config.webhook_retry_max_seconds,
            user_agent=f"Parlour/{__version__}",
        ),
        # Several nodes: each delivers its own callbacks and takes over a gone node's.
        node_id=node_id,
        stale_after=config.node_stale_seconds if config.redis_url else None,
    )
    callbacks = FanOutEventSink(LoggingEventSink(), webhooks)
    media_storage = LocalStorage(config.data_dir / "media")
    # Per-account media settings: S3 buckets and encryption (RecordingSettings …).
    credentials = CredentialService(store, clock, SecretBox(secret))
    storage_resolver = MediaStorageResolver(store, credentials, media_storage)
    media_settings = MediaSettingsService(
        store,
        clock,
        probe=storage_resolver.probe,
        s3_endpoints=(config.s3_endpoints or "").split(","),
    )
    recorder = MatroskaRecorder(media_storage, config.data_dir / "media" / "spool")
    recordings = RecordingService(
        store,
        clock,
        callbacks,
        recorder,
        media_storage,
        media_url_key=media_url_key(secret),
        resolver=storage_resolver,
    )
    # Several nodes share the records: a node finishes only what its own data dir holds.
    await recordings.recover(
        (lambda r: recorder.spool_path(r).exists()) if config.redis_url else None
    )
    compositions = CompositionService(
        store,
        clock,
        callbacks,
        media_storage,
        PoolComposer(media_storage, config.data_dir / "media" / "compose"),
        media_url_key=media_url_key(secret),
        callback_policy=callback_policy,
        node_id=node_id,
        node_stale_after=config.node_stale_seconds,
        locate=storage_resolver.of_recording,
        resolver=storage_resolver,
    )
    retention = RetentionService(
        store,
        clock,
        config.retention_policy,
        storage=media_storage,
        spool_dir=config.data_dir / "media" / "spool",
        resolver=storage_resolver,
    )
    languages = [x.strip() for x in config.transcription_languages.split(",") if x.strip()]
    transcriptions = TranscriptionService(
        store,
        clock,
        callbacks,
        TranscriberPool(
            EngineSpec(config.transcription_engine, config.transcription_model),
            workers=config.transcription_workers,
        ),
        languages=None if "*" in languages else languages,
    )
    # Recordings and transcriptions end with their track, participant or room (and
    # transcriptions start with it): the services hear those events.
    events = FanOutEventSink(callbacks, recordings, transcriptions)
    participants = ParticipantService(store, clock, events, sessions, node_id=node_id)
    rooms = RoomService(
        store,
        clock,
        events,
        sessions,
        participants,
        timeout_minute=config.timeout_minute_seconds,
        callback_policy=callback_policy,
        recorder=recordings,
    )
    nodes = NodeMonitor(
        store,
        clock,
        participants,
        node_id,
        heartbeat=config.node_heartbeat_seconds,
        stale_after=config.node_stale_seconds,
    )
    sfu: SfuMediaPlane | None = None
    workers: WorkerMediaPlane | None = None
    if media is None:
        media_host = config.media_host or config.host
        advertised = config.media_advertised_address or (
            None if media_host not in ("0.0.0.0", "::", "") else "127.0.0.1"
        )
        if config.media_workers > 0:
            media = workers = await WorkerMediaPlane.start(
                config.media_workers,
                WorkerSettings(
                    host=media_host,
                    port=config.media_port,
                    advertised_host=advertised,
                    connect_timeout=config.media_connect_timeout_seconds,
                    consent_timeout=config.media_consent_timeout_seconds,
                    tcp=config.media_tcp,
                    log_level=config.log_level,
                ),
            )
        else:
            media = sfu = await SfuMediaPlane.start(
                media_host,
                config.media_port,
                advertised_host=advertised,
                connect_timeout=config.media_connect_timeout_seconds,
                consent_timeout=config.media_consent_timeout_seconds,
                tcp=config.media_tcp,
            )
    traversal = NetworkTraversal(
        clock,
        TurnServers(config.turn_urls, config.turn_secret) if config.turn_secret else None,
        config.turn_ttl_seconds,
    )
    live = LiveRoomService(
        accounts,
        rooms,
        participants,
        media,
        session_timeout=config.session_timeout_seconds,
        auto_create_rooms=config.auto_create_rooms,
        recorder=TapFanOut(recordings, transcriptions),
        traversal=traversal,
        session_tag=node_id if config.redis_url else "",
    )
    transcriptions.deliver = live.send_transcription
    recordings.on_stopped = live.recording_state_changed
    sessions.live = live
    callbacks.add(live)  # the room's recording state follows the recording events
    # Compositions start when their room has ended and its recordings are finished.
    callbacks.add(compositions)
    cluster: ClusterService | None = None
    registry: RedisRegistry | None = None
    if config.redis_url:  # several nodes (docs/deployment.md, "Several nodes")
        registry = await RedisRegistry.connect(config.redis_url)
        cluster = ClusterService(
            registry,
            live,
            nodes,
            node_id=node_id,
            url=config.node_url,
            heartbeat=config.node_heartbeat_seconds,
            stale_after=config.node_stale_seconds,
        )
        sessions.live = cluster
        callbacks.add(cluster)  # rooms claimed as they go live, released as they end
    await accounts.default_account()
    await nodes.beat()
    ctx = ApiContext(
        accounts=accounts,
        rooms=rooms,
        participants=participants,
        public_url=config.base_url,
        recordings=recordings,
        compositions=compositions,
        credentials=credentials,
        media_settings=media_settings,
        media_storage=storage_resolver,
        transcriptions=transcriptions,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await webhooks.start()
        await compositions.recover()
        if cluster is not None:
            await cluster.start()
        reaper = asyncio.create_task(rooms.run_reaper(config.idle_sweep_seconds))
        heartbeat = asyncio.create_task(nodes.run())
        # Retention: every account's policy, applied now and every sweep interval.
        sweeper = asyncio.create_task(retention.run(config.retention_sweep_seconds))
        # What a server that died was composing is taken over (by the stale-node rule).
        composer = asyncio.create_task(compositions.run(config.node_stale_seconds))
        background = [reaper, heartbeat, sweeper, composer]
        if cluster is not None:  # a gone node's pending callbacks are taken over
            background.append(asyncio.create_task(webhooks.run_adoption()))
        try:
            yield
        finally:
            await live.close()  # participants here leave, with their callbacks
            if cluster is not None and registry is not None:
                await cluster.stop()
                await registry.close()
            for task in background:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await nodes.stop()
            await recordings.close()
            await transcriptions.close()
            await compositions.close()
            await webhooks.close()

    metrics = metrics_registry(
        ParlourCollector(
            media=sfu.stats if sfu is not None else workers.stats if workers is not None else None,
            webhook_pending=lambda: webhooks.pending,
            sessions=lambda: live.session_count,
            recordings=lambda: recordings.in_progress,
            media_workers=workers.health if workers is not None else None,
        )
    )
    asgi = build_api(
        ctx,
        lifespan=lifespan,
        extra_routes=[
            *signaling_routes(
                live,
                router=cluster,
                relay_token=relay_token(secret) if cluster is not None else None,
            ),
            *metrics_routes(metrics, load_metrics_token(config, secret)),
        ],
        dev=config.dev,
    )
    asgi.state.retention = retention  # /v1/Parlour/Retention
    asgi.state.traversal = traversal  # /2010-04-01/Accounts/{AccountSid}/Tokens.json
    return Parlour(
        config,
        store,
        accounts,
        rooms,
        participants,
        live,
        nodes,
        asgi,
        sfu,
        metrics,
        media_workers=workers,
        cluster=cluster,
    )
