"""Configuration: one typed object, from CLI flags over `PARLOUR_*` environment variables.

| setting | flag | environment | default |
|---|---|---|---|
| data dir | `--data-dir` | `PARLOUR_DATA_DIR` | `./var` |
| host | `--host` | `PARLOUR_HOST` | `127.0.0.1` |
| port | `--port` | `PARLOUR_PORT` | `8080` |
| public URL | `--public-url` | `PARLOUR_PUBLIC_URL` | `http://HOST:PORT` |
| database | | `PARLOUR_DATABASE_URL` | SQLite file `DATA_DIR/parlour.db` |
| server secret | | `PARLOUR_SECRET_KEY` | random, kept in `DATA_DIR/secret.key` |
| log level | `--log-level` | `PARLOUR_LOG_LEVEL` | `info` |
| timeout minute | | `PARLOUR_TIMEOUT_MINUTE_SECONDS` | `60` |
| idle sweep | | `PARLOUR_IDLE_SWEEP_SECONDS` | `5` |
| session timeout | | `PARLOUR_SESSION_TIMEOUT_SECONDS` | `30` |
| auto-create rooms | | `PARLOUR_AUTO_CREATE_ROOMS` | `true` |
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Config", "load_server_secret"]


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
    #: Create a room when a client connects to a name that has none (Twilio's default).
    auto_create_rooms: bool = True

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
        ):
            if env.get(key):
                values[name] = env[key]
        if env.get("PARLOUR_PORT"):
            values["port"] = int(env["PARLOUR_PORT"])
        for name, key in (
            ("timeout_minute_seconds", "PARLOUR_TIMEOUT_MINUTE_SECONDS"),
            ("idle_sweep_seconds", "PARLOUR_IDLE_SWEEP_SECONDS"),
            ("session_timeout_seconds", "PARLOUR_SESSION_TIMEOUT_SECONDS"),
        ):
            if env.get(key):
                values[name] = float(env[key])
        if env.get("PARLOUR_AUTO_CREATE_ROOMS"):
            values["auto_create_rooms"] = env["PARLOUR_AUTO_CREATE_ROOMS"].lower() in (
                "1",
                "true",
                "yes",
            )
        values.update({k: v for k, v in overrides.items() if v is not None})
        if "data_dir" in values:
            values["data_dir"] = Path(str(values["data_dir"]))
        return cls(**values)  # type: ignore[arg-type]

    @property
    def base_url(self) -> str:
        """The externally visible base URL, without a trailing slash."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

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
