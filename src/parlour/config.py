"""Configuration: one typed object, from CLI flags over `PARLOUR_*` environment variables.

| setting | flag | environment | default |
|---|---|---|---|
| data dir | `--data-dir` | `PARLOUR_DATA_DIR` | `./var` |
| host | `--host` | `PARLOUR_HOST` | `127.0.0.1` |
| port | `--port` | `PARLOUR_PORT` | `8080` |
| public URL | `--public-url` | `PARLOUR_PUBLIC_URL` | `http://HOST:PORT` |
| database | `--database-url` | `PARLOUR_DATABASE_URL` | SQLite file `DATA_DIR/parlour.db` |
| server secret | | `PARLOUR_SECRET_KEY` | random, kept in `DATA_DIR/secret.key` |
| log level | `--log-level` | `PARLOUR_LOG_LEVEL` | `info` |
| timeout minute | | `PARLOUR_TIMEOUT_MINUTE_SECONDS` | `60` |
| idle sweep | | `PARLOUR_IDLE_SWEEP_SECONDS` | `5` |
| session timeout | | `PARLOUR_SESSION_TIMEOUT_SECONDS` | `30` |
| auto-create rooms | | `PARLOUR_AUTO_CREATE_ROOMS` | `true` |
| media (UDP) host | `--media-host` | `PARLOUR_MEDIA_HOST` | the HTTP host |
| media (UDP) port | `--media-port` | `PARLOUR_MEDIA_PORT` | `0` (any free port) |
| ICE address | `--advertised-address` | `PARLOUR_MEDIA_ADVERTISED_ADDRESS` | media host |
| ICE-TCP on the media port number | | `PARLOUR_MEDIA_TCP` | `true` |
| SFU worker processes (0: in-process) | `--media-workers` | `PARLOUR_MEDIA_WORKERS` | cores |
| webhooks to private addresses | | `PARLOUR_WEBHOOK_ALLOW_PRIVATE` | `false` |
| webhook request timeout | | `PARLOUR_WEBHOOK_TIMEOUT_SECONDS` | `10` |
| webhook attempts per callback | | `PARLOUR_WEBHOOK_MAX_ATTEMPTS` | `6` |
| first webhook retry delay | | `PARLOUR_WEBHOOK_RETRY_INITIAL_SECONDS` | `1` |
| longest webhook retry delay | | `PARLOUR_WEBHOOK_RETRY_MAX_SECONDS` | `60` |
| development mode (quickstart token endpoint) | `--dev` | `PARLOUR_DEV` | `false` |
| `/metrics` bearer token | | `PARLOUR_METRICS_TOKEN` | derived from the server secret |
| retention: identities of ended rooms (days) | | `PARLOUR_RETENTION_IDENTITY_DAYS` | `30` |
| retention: recordings (days) | | `PARLOUR_RETENTION_RECORDING_DAYS` | `30` |
| retention: finished callbacks (days) | | `PARLOUR_RETENTION_CALLBACK_DAYS` | `7` |
| retention sweep interval | | `PARLOUR_RETENTION_SWEEP_SECONDS` | `3600` |
| personal data in logs | | `PARLOUR_LOG_PERSONAL_DATA` | `false` |
| transcription engine | | `PARLOUR_TRANSCRIPTION_ENGINE` | `pocketsphinx` |
| transcription model (path) | | `PARLOUR_TRANSCRIPTION_MODEL` | the engine's own |
| transcription languages | | `PARLOUR_TRANSCRIPTION_LANGUAGES` | `en-US` |
| transcription worker processes | | `PARLOUR_TRANSCRIPTION_WORKERS` | `1` |
| TLS certificate chain (PEM) | `--tls-cert` | `PARLOUR_TLS_CERT` | none (plain HTTP) |
| TLS private key (PEM) | `--tls-key` | `PARLOUR_TLS_KEY` | none |
| TURN server URLs (comma-separated `turn:`/`turns:`) | | `PARLOUR_TURN_URLS` | none (no TURN) |
| TURN REST API shared secret (coturn `static-auth-secret`) | | `PARLOUR_TURN_SECRET` | none |
| lifetime of TURN credentials in `iced` (seconds) | | `PARLOUR_TURN_TTL_SECONDS` | `86400` |
| S3-compatible endpoints accepted in `AwsS3Url` | | `PARLOUR_S3_ENDPOINTS` | none (AWS only) |
| Redis of a cluster of nodes | `--redis-url` | `PARLOUR_REDIS_URL` | none (a single node) |
| this node's URL for other nodes | `--internal-url` | `PARLOUR_INTERNAL_URL` | `http://HOST:PORT` |
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from parlour.domain.ports import RetentionPolicy

__all__ = [
    "MAX_MEDIA_WORKERS",
    "Config",
    "load_metrics_token",
    "load_server_secret",
    "server_tls_context",
]

#: The most media worker processes a server starts.
MAX_MEDIA_WORKERS = 1024


@dataclass(frozen=True)
class Config:
    data_dir: Path = Path("./var")
    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str | None = None
    database_url: str | None = None
    secret_key: str | None = field(default=None, repr=False)
    log_level: str = "info"
    #: Seconds in one minute of EmptyRoomTimeout/UnusedRoomTimeout (tests shrink it).
    timeout_minute_seconds: float = 60.0
    #: How often idle rooms are checked against their timeouts.
    idle_sweep_seconds: float = 5.0
    #: Seconds a signaling session survives a dropped socket (sent to clients as
    #: `session_timeout`).
    session_timeout_seconds: float = 30.0
    #: Seconds a participant's media transport (ICE + DTLS) has to come up after its first
    #: offer; a participant whose media never connects is disconnected with 53405.
    media_connect_timeout_seconds: float = 30.0
    #: Seconds without an ICE consent check from a connected client (RFC 7675) before its
    #: media is considered gone and the participant is disconnected with 53405.
    media_consent_timeout_seconds: float = 30.0
    #: How often this server records that it is alive (`nodes` table).
    node_heartbeat_seconds: float = 10.0
    #: A server silent for this long is gone: its participants are disconnected (with their
    #: callbacks) by any server still running, and their rooms end by their timeouts.
    node_stale_seconds: float = 30.0
    #: Create a room when a client connects to a name that has none (Twilio's default).
    auto_create_rooms: bool = True
    #: UDP address of the SFU (host defaults to `host`; port 0 picks a free one).
    media_host: str | None = None
    media_port: int = 0
    #: Address put in ICE candidates, for a server behind NAT (defaults to the media host).
    media_advertised_address: str | None = None
    #: Also accept media over TCP (ICE-TCP passive candidates, RFC 6544) on the media port
    #: number, for clients whose UDP is blocked.
    media_tcp: bool = True
    #: Worker processes running the SFU, each with its own event loop and UDP port (rooms
    #: are pinned to one; docs/deployment.md). 0 runs it in this process (`parlour serve`
    #: defaults to the number of cores).
    media_workers: int = 0
    #: Let status callbacks reach loopback, private and link-local addresses (tests, closed
    #: networks). Off in production: a StatusCallback must not probe the server's network.
    webhook_allow_private: bool = False
    #: Seconds for one status callback request (resolve, connect, send, response head).
    webhook_timeout_seconds: float = 10.0
    #: Attempts per status callback before it is marked failed (retries: 5xx, 429, network).
    webhook_max_attempts: int = 6
    #: Seconds before the first retry; each further retry waits twice as long…
    webhook_retry_initial_seconds: float = 1.0
    #: …up to this many seconds.
    webhook_retry_max_seconds: float = 60.0
    #: Development mode: the quickstart's token endpoint (`/quickstart/token`) mints Access
    #: Tokens for the default account to anyone who asks. Never on a reachable server.
    dev: bool = False
    #: The bearer token `/metrics` requires; by default derived from the server secret
    #: (`load_metrics_token`, `parlour metrics-token`).
    metrics_token: str | None = field(default=None, repr=False)
    #: The retention policy of accounts that set none (`parlour retention`,
    #: `/v1/Parlour/Retention`), in days; None keeps that data until it is deleted.
    retention_identity_days: int | None = 30
    retention_recording_days: int | None = 30
    retention_callback_days: int | None = 7
    #: How often the server applies every account's retention policy.
    retention_sweep_seconds: float = 3600.0
    #: Let identities, IP addresses and room names into the logs (off: they are masked).
    log_personal_data: bool = False
    #: The speech engine of real-time transcriptions (`pocketsphinx`, `vosk`,
    #: `faster-whisper` or `module:callable`; docs/configuration.md, "Transcriptions"),
    #: the model it loads (a path; None: the engine's own), the language codes it serves
    #: (comma-separated; `*`: any) and how many worker processes run it.
    transcription_engine: str = "pocketsphinx"
    transcription_model: str | None = None
    transcription_languages: str = "en-US"
    transcription_workers: int = 1
    #: PEM certificate chain and private key: the server answers HTTPS and WSS itself
    #: (TLS 1.2 or newer). Without them it speaks plain HTTP (behind a TLS proxy).
    tls_cert: Path | None = None
    tls_key: Path | None = None
    #: TURN servers handed to clients (`iced`, `/2010-04-01/.../Tokens.json`), with
    #: credentials minted from the TURN REST API shared secret (coturn `use-auth-secret`).
    turn_urls: tuple[str, ...] = ()
    turn_secret: str | None = field(default=None, repr=False)
    #: Seconds the TURN credentials given in `iced` stay valid.
    turn_ttl_seconds: int = 86400
    #: S3-compatible endpoints (`http://minio.internal:9000`, comma-separated; `*` any) that
    #: accounts may name in `AwsS3Url`; AWS's own hosts are always accepted. None: AWS only,
    #: so that an account cannot make the server send requests into its own network.
    s3_endpoints: str | None = None
    #: Several nodes (docs/deployment.md, "Several nodes"): the Redis that holds the
    #: live-room registry (`redis://[:password@]host:6379/0`, `rediss://…`, `unix://…`).
    #: Needs a shared PostgreSQL (`database_url`) and a shared `secret_key`.
    redis_url: str | None = field(default=None, repr=False)
    #: Where the other nodes reach this one (HTTP base URL on the private network); by
    #: default `http://HOST:PORT`, which needs a specific `host`.
    internal_url: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> Config:
        """Environment first, then explicit (non-None) overrides such as CLI flags."""
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        if "PARLOUR_DATA_DIR" in env:
            values["data_dir"] = Path(env["PARLOUR_DATA_DIR"])
        for name, key in (
            ("host", "PARLOUR_HOST"),
            ("public_url", "PARLOUR_PUBLIC_URL"),
            ("database_url", "PARLOUR_DATABASE_URL"),
            ("secret_key", "PARLOUR_SECRET_KEY"),
            ("log_level", "PARLOUR_LOG_LEVEL"),
            ("media_host", "PARLOUR_MEDIA_HOST"),
            ("media_advertised_address", "PARLOUR_MEDIA_ADVERTISED_ADDRESS"),
            ("metrics_token", "PARLOUR_METRICS_TOKEN"),
            ("transcription_engine", "PARLOUR_TRANSCRIPTION_ENGINE"),
            ("transcription_model", "PARLOUR_TRANSCRIPTION_MODEL"),
            ("transcription_languages", "PARLOUR_TRANSCRIPTION_LANGUAGES"),
            ("tls_cert", "PARLOUR_TLS_CERT"),
            ("tls_key", "PARLOUR_TLS_KEY"),
            ("turn_secret", "PARLOUR_TURN_SECRET"),
            ("s3_endpoints", "PARLOUR_S3_ENDPOINTS"),
            ("redis_url", "PARLOUR_REDIS_URL"),
            ("internal_url", "PARLOUR_INTERNAL_URL"),
        ):
            if env.get(key):
                values[name] = env[key]
        for name, key in (
            ("port", "PARLOUR_PORT"),
            ("media_port", "PARLOUR_MEDIA_PORT"),
            ("webhook_max_attempts", "PARLOUR_WEBHOOK_MAX_ATTEMPTS"),
            ("transcription_workers", "PARLOUR_TRANSCRIPTION_WORKERS"),
            ("media_workers", "PARLOUR_MEDIA_WORKERS"),
            ("turn_ttl_seconds", "PARLOUR_TURN_TTL_SECONDS"),
        ):
            if env.get(key):
                values[name] = _number(int, key, env[key])
        for name, key in (
            ("timeout_minute_seconds", "PARLOUR_TIMEOUT_MINUTE_SECONDS"),
            ("idle_sweep_seconds", "PARLOUR_IDLE_SWEEP_SECONDS"),
            ("session_timeout_seconds", "PARLOUR_SESSION_TIMEOUT_SECONDS"),
            ("media_connect_timeout_seconds", "PARLOUR_MEDIA_CONNECT_TIMEOUT_SECONDS"),
            ("media_consent_timeout_seconds", "PARLOUR_MEDIA_CONSENT_TIMEOUT_SECONDS"),
            ("node_heartbeat_seconds", "PARLOUR_NODE_HEARTBEAT_SECONDS"),
            ("node_stale_seconds", "PARLOUR_NODE_STALE_SECONDS"),
            ("webhook_timeout_seconds", "PARLOUR_WEBHOOK_TIMEOUT_SECONDS"),
            ("webhook_retry_initial_seconds", "PARLOUR_WEBHOOK_RETRY_INITIAL_SECONDS"),
            ("webhook_retry_max_seconds", "PARLOUR_WEBHOOK_RETRY_MAX_SECONDS"),
            ("retention_sweep_seconds", "PARLOUR_RETENTION_SWEEP_SECONDS"),
        ):
            if env.get(key):
                values[name] = _number(float, key, env[key])
        for name, key in (
            ("auto_create_rooms", "PARLOUR_AUTO_CREATE_ROOMS"),
            ("webhook_allow_private", "PARLOUR_WEBHOOK_ALLOW_PRIVATE"),
            ("dev", "PARLOUR_DEV"),
            ("log_personal_data", "PARLOUR_LOG_PERSONAL_DATA"),
            ("media_tcp", "PARLOUR_MEDIA_TCP"),
        ):
            if env.get(key):
                values[name] = env[key].lower() in ("1", "true", "yes")
        for name, key in (
            ("retention_identity_days", "PARLOUR_RETENTION_IDENTITY_DAYS"),
            ("retention_recording_days", "PARLOUR_RETENTION_RECORDING_DAYS"),
            ("retention_callback_days", "PARLOUR_RETENTION_CALLBACK_DAYS"),
        ):
            if env.get(key):
                values[name] = _retention_days(key, env[key])
        if env.get("PARLOUR_TURN_URLS"):
            values["turn_urls"] = _turn_urls(env["PARLOUR_TURN_URLS"])
        values.update({k: v for k, v in overrides.items() if v is not None})
        for name in ("data_dir", "tls_cert", "tls_key"):
            if name in values:
                values[name] = Path(str(values[name]))
        return cls(**values)  # type: ignore[arg-type]

    def __post_init__(self) -> None:
        """TLS files come in pairs, TURN URLs with their secret."""
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError(
                "a TLS certificate (--tls-cert, PARLOUR_TLS_CERT) needs its private key "
                "(--tls-key, PARLOUR_TLS_KEY), and the other way round"
            )
        if bool(self.turn_urls) != bool(self.turn_secret):
            raise ValueError(
                "PARLOUR_TURN_URLS and PARLOUR_TURN_SECRET go together (the TURN server's "
                "static-auth-secret signs the credentials given to clients)"
            )
        if not 0 < self.turn_ttl_seconds <= 86400:
            raise ValueError("PARLOUR_TURN_TTL_SECONDS must be from 1 to 86400")
        if not 0 <= self.media_workers <= MAX_MEDIA_WORKERS:
            raise ValueError(
                f"PARLOUR_MEDIA_WORKERS must be from 0 to {MAX_MEDIA_WORKERS}, "
                f"not {self.media_workers}"
            )
        if self.redis_url:
            self._check_cluster()

    def _check_cluster(self) -> None:
        """Several nodes share one PostgreSQL, one secret, and reach each other."""
        if not (self.database_url or "").startswith(
            ("postgresql://", "postgres://", "postgresql+")
        ):
            raise ValueError(
                "PARLOUR_REDIS_URL (several nodes) needs PARLOUR_DATABASE_URL=postgresql://… "
                "that every node shares"
            )
        if not self.secret_key:
            raise ValueError(
                "PARLOUR_REDIS_URL (several nodes) needs PARLOUR_SECRET_KEY, the same on every node"
            )
        if not self.internal_url and self.host in ("0.0.0.0", "::", ""):
            raise ValueError(
                "PARLOUR_REDIS_URL with a wildcard --host needs PARLOUR_INTERNAL_URL "
                "(--internal-url): the URL other nodes reach this one on"
            )
        if self.internal_url and not self.internal_url.startswith(("http://", "https://")):
            raise ValueError(
                f"PARLOUR_INTERNAL_URL {self.internal_url!r} is not an http:// or https:// URL"
            )

    @property
    def node_url(self) -> str:
        """This node's base URL for the other nodes (`internal_url`, or `http://HOST:PORT`)."""
        if self.internal_url:
            return self.internal_url.rstrip("/")
        host = f"[{self.host}]" if ":" in self.host else self.host
        scheme = "https" if self.tls_cert is not None else "http"
        return f"{scheme}://{host}:{self.port}"

    @property
    def retention_policy(self) -> RetentionPolicy:
        """The default retention policy (accounts that set their own override it)."""
        return RetentionPolicy(
            identity_days=self.retention_identity_days,
            recording_days=self.retention_recording_days,
            callback_days=self.retention_callback_days,
        )

    @property
    def base_url(self) -> str:
        """The externally visible base URL, without a trailing slash."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = f"[{self.host}]" if ":" in self.host else self.host
        scheme = "https" if self.tls_cert is not None else "http"
        return f"{scheme}://{host}:{self.port}"

    @property
    def db_url(self) -> str:
        if self.database_url:
            url = self.database_url
            if url.startswith(("postgresql://", "postgres://")):
                url = "postgresql+asyncpg://" + url.split("://", 1)[1]
            elif url.startswith("sqlite:///"):
                url = "sqlite+aiosqlite:///" + url.removeprefix("sqlite:///")
            return url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'parlour.db').resolve()}"


def _turn_urls(text: str) -> tuple[str, ...]:
    """`PARLOUR_TURN_URLS`: comma-separated `turn:`/`turns:` URLs (RFC 7065)."""
    urls = tuple(url.strip() for url in text.split(",") if url.strip())
    for url in urls:
        if not url.startswith(("turn:", "turns:")) or len(url) <= len("turns:"):
            raise ValueError(
                f"PARLOUR_TURN_URLS: {url!r} is not a turn: or turns: URL "
                "(e.g. turn:turn.example.com:3478?transport=udp)"
            )
    return urls


def server_tls_context(config: Config) -> ssl.SSLContext | None:
    """The server's TLS context (TLS 1.2 or newer), or None for plain HTTP.

    Raises:
        OSError, ssl.SSLError: the certificate or key cannot be read or do not match.
    """
    if config.tls_cert is None or config.tls_key is None:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(config.tls_cert, config.tls_key)
    return context


def _retention_days(key: str, text: str) -> int | None:
    """Whole days from 1 to 36500, or `never`."""
    if text.strip().lower() == "never":
        return None
    days = int(_number(int, key, text))
    if not 1 <= days <= 36500:
        raise ValueError(f"{key} must be from 1 to 36500 days or 'never', not {text!r}")
    return days


def _number(kind: type[int] | type[float], key: str, text: str) -> int | float:
    """A numeric setting; a bad value names its variable."""
    try:
        return kind(text)
    except ValueError:
        noun = "an integer" if kind is int else "a number"
        raise ValueError(f"{key} must be {noun}, not {text!r}") from None


def load_server_secret(config: Config) -> bytes:
    """The server secret that every credential is derived from.

    From `PARLOUR_SECRET_KEY` if set, else `DATA_DIR/secret.key`, created (mode 0600) on
    first use. Several servers sharing one database must share this secret.
    """
    if config.secret_key:
        return config.secret_key.encode()
    config.data_dir.mkdir(parents=True, exist_ok=True)
    path = config.data_dir / "secret.key"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        # Another process may be writing it this very moment.
        for _ in range(100):
            text = path.read_text().strip()
            if text:
                return text.encode()
            time.sleep(0.02)
        raise RuntimeError(f"{path} is empty") from None
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(32) + "\n")
    return path.read_text().strip().encode()


def load_metrics_token(config: Config, server_secret: bytes | None = None) -> str:
    """The bearer token that opens `/metrics`.

    `PARLOUR_METRICS_TOKEN` if set; else derived from the server secret like every other
    credential (``HMAC-SHA256(server_secret, purpose)``, 32 hex digits), so it is stable
    across restarts and the same on servers that share `PARLOUR_SECRET_KEY`.

    Args:
        server_secret: the secret, if already loaded (`load_server_secret`).
    """
    if config.metrics_token:
        return config.metrics_token
    secret = server_secret if server_secret is not None else load_server_secret(config)
    return hmac.new(secret, b"parlour/metrics-token/v1", hashlib.sha256).hexdigest()[:32]
