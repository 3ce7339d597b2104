"""The `parlour` command line.

    parlour serve   [--host H] [--port P] [--data-dir D] [--public-url URL] [--dev]
                    [--media-workers N] [--tls-cert FILE --tls-key FILE]
                    [--database-url URL] [--redis-url URL] [--internal-url URL] ...
    parlour account [--data-dir D] [--json]
    parlour account create [--data-dir D] [--friendly-name N] [--json]
    parlour keys create [--data-dir D] [--friendly-name N] [--json]
    parlour keys list [--data-dir D] [--json]
    parlour keys delete SID [--data-dir D] [--json]
    parlour token --identity I [--room R] [--ttl 3600] [--data-dir D] [--json]
    parlour migrate [--data-dir D]
    parlour metrics-token [--data-dir D] [--json]
    parlour export --account AC… [--identity I] --out FILE [--data-dir D] [--json]
    parlour erase --account AC… [--identity I] --yes [--data-dir D] [--json]
    parlour retention [--account AC…] [--identity-days N|never] [--recording-days N|never]
                      [--callback-days N|never] [--data-dir D] [--json]
    parlour rooms list|show|end, participants list|kick, recordings list|show|download|delete
                      [--url URL] [--account-sid AC… --auth-token T] [--data-dir D] [--json]
                      (a running server, through its REST API: `parlour.manage`)

Every subcommand takes `--log-level` and works while `parlour serve` runs on the same data
dir. A usage or start-up error is one line on stderr (`parlour: …`) and exit status 2 (usage)
or 1 (anything else); `--log-level debug` prints its traceback too.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import socket
import ssl
import sys
import threading
import traceback
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any, NoReturn
from urllib.parse import urlsplit, urlunsplit

from parlour import __version__
from parlour.config import (
    MAX_MEDIA_WORKERS,
    Config,
    load_metrics_token,
    load_server_secret,
    server_tls_context,
)

__all__ = ["CliError", "main"]

log = logging.getLogger("parlour")

LOG_LEVELS = ("debug", "info", "warning", "error")
#: Twilio refuses Access Tokens that live longer than 24 hours.
MAX_TOKEN_TTL = 86400
#: The longest retention period one can set (about 100 years); `never` keeps data for ever.
MAX_RETENTION_DAYS = 36500


class CliError(Exception):
    """A problem told to the user in one line (`parlour: …`), exit status 1."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line: no usage block above it."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see '{self.prog} --help')\n")


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port number from 0 to 65535")
    return port


def _workers(text: str) -> int:
    try:
        count = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of processes") from None
    if not 0 <= count <= MAX_MEDIA_WORKERS:
        raise argparse.ArgumentTypeError(f"{count} is not from 0 to {MAX_MEDIA_WORKERS}")
    return count


def _ttl(text: str) -> int:
    try:
        ttl = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of seconds") from None
    if not 0 < ttl <= MAX_TOKEN_TTL:
        raise argparse.ArgumentTypeError(
            f"{ttl} is not from 1 to {MAX_TOKEN_TTL} seconds (24 hours, Twilio's maximum)"
        )
    return ttl


def _days(text: str) -> int | None:
    """A retention period: whole days, or `never`."""
    if text.lower() in ("never", "none"):
        return None
    try:
        days = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of days or 'never'") from None
    if not 1 <= days <= MAX_RETENTION_DAYS:
        raise argparse.ArgumentTypeError(
            f"{days} is not from 1 to {MAX_RETENTION_DAYS} days (or 'never')"
        )
    return days


def _common(json_flag: bool) -> _Parser:
    p = _Parser(add_help=False)
    p.add_argument(
        "--data-dir",
        default=argparse.SUPPRESS,
        help="directory for the database, secret key and media (default ./var, or "
        "$PARLOUR_DATA_DIR); a command other than serve says so when it creates it",
    )
    p.add_argument(
        "--log-level",
        choices=LOG_LEVELS,
        default=argparse.SUPPRESS,
        help="log level (default info, or $PARLOUR_LOG_LEVEL; commands other than serve "
        "show only warnings at info); debug also prints the traceback of an error",
    )
    if json_flag:
        p.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print JSON")
    return p


def _parser() -> _Parser:
    parser = _Parser(
        prog="parlour",
        description="Parlour: a self-hosted, drop-in replacement for Twilio Programmable Video.",
        epilog="A usage error exits with status 2, any other error with 1, each told in one "
        "line on stderr (with its traceback under --log-level debug).",
    )
    parser.add_argument("--version", action="version", version=f"parlour {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    plain, printing = _common(False), _common(True)

    serve = sub.add_parser("serve", parents=[plain], help="run the server")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=_port, help="port to listen on (default 8080; 0 = any)")
    serve.add_argument(
        "--public-url",
        help="externally visible base URL used in every url, links and paging URL "
        "(default http://HOST:PORT)",
    )
    serve.add_argument("--media-host", help="UDP address of the SFU (default: --host)")
    serve.add_argument(
        "--media-port",
        type=_port,
        help="UDP port of the SFU (its first worker's with --media-workers; default 0 = any)",
    )
    serve.add_argument(
        "--media-workers",
        type=_workers,
        metavar="N",
        help="SFU worker processes, each with its own UDP port (--media-port + i when fixed); "
        "a room stays on one (default $PARLOUR_MEDIA_WORKERS, else the number of cores; "
        "0 = the SFU in the server process)",
    )
    serve.add_argument(
        "--advertised-address",
        help="address put in ICE candidates, for a server behind NAT (default: media host)",
    )
    serve.add_argument(
        "--tls-cert",
        metavar="FILE",
        help="PEM certificate chain: serve HTTPS and WSS (TLS 1.2+) with --tls-key "
        "(default: plain HTTP, e.g. behind a TLS reverse proxy)",
    )
    serve.add_argument("--tls-key", metavar="FILE", help="PEM private key of --tls-cert")
    serve.add_argument(
        "--database-url",
        metavar="URL",
        help="database (default: SQLite in the data dir, or $PARLOUR_DATABASE_URL); several "
        "nodes share one postgresql://user:password@host/db",
    )
    serve.add_argument(
        "--redis-url",
        metavar="URL",
        help="several nodes: the Redis holding the live-room registry, redis://host:6379/0 "
        "(or $PARLOUR_REDIS_URL; needs a shared PostgreSQL and PARLOUR_SECRET_KEY)",
    )
    serve.add_argument(
        "--internal-url",
        metavar="URL",
        help="several nodes: this node's base URL for the others (default http://HOST:PORT, "
        "or $PARLOUR_INTERNAL_URL)",
    )
    serve.add_argument(
        "--access-log", action="store_true", help="log every HTTP request (off by default)"
    )
    serve.add_argument(
        "--dev",
        action="store_true",
        default=None,
        help="development mode: the quickstart at / gets a token endpoint that mints Access "
        "Tokens for anyone (never on a reachable server)",
    )

    account = sub.add_parser(
        "account", parents=[printing], help="print the default account's SID and auth token"
    )
    account_sub = account.add_subparsers(dest="action", metavar="ACTION")
    create = account_sub.add_parser(
        "create", parents=[printing], help="create another, separate account"
    )
    create.add_argument("--friendly-name", help="a name for the account")

    keys = sub.add_parser("keys", help="manage API keys of the default account")
    keys_sub = keys.add_subparsers(dest="action", required=True, metavar="ACTION")
    kc = keys_sub.add_parser("create", parents=[printing], help="create an API key")
    kc.add_argument("--friendly-name", help="a name for the key")
    keys_sub.add_parser("list", parents=[printing], help="list API keys (no secrets)")
    kd = keys_sub.add_parser("delete", parents=[printing], help="delete an API key")
    kd.add_argument("sid", help="the key's SID (SK…)")

    token = sub.add_parser("token", parents=[printing], help="mint an Access Token")
    token.add_argument("--identity", required=True, help="participant identity")
    token.add_argument("--room", help="limit the token to this room (name or SID)")
    token.add_argument(
        "--ttl",
        type=_ttl,
        default=3600,
        help=f"lifetime in seconds, 1 to {MAX_TOKEN_TTL} (default 3600)",
    )

    sub.add_parser("migrate", parents=[plain], help="bring the database schema up to date")
    sub.add_parser(
        "metrics-token",
        parents=[printing],
        help="print the bearer token for /metrics ($PARLOUR_METRICS_TOKEN, or derived from "
        "the server secret)",
    )

    export = sub.add_parser(
        "export",
        parents=[printing],
        help="write everything held for an account, or for one identity, to a zip archive",
    )
    export.add_argument("--account", required=True, help="the account (AC…)")
    export.add_argument("--identity", help="only this participant identity, across its rooms")
    export.add_argument("--out", required=True, help="the archive to write (a .zip)")

    erase = sub.add_parser(
        "erase",
        parents=[printing],
        help="erase everything held for an account, or for one identity (cannot be undone)",
    )
    erase.add_argument("--account", required=True, help="the account (AC…)")
    erase.add_argument("--identity", help="only this participant identity, across its rooms")
    erase.add_argument("--yes", action="store_true", help="really erase (required)")

    retention = sub.add_parser(
        "retention",
        parents=[printing],
        help="show or set how long an account keeps personal data (docs/privacy.md)",
    )
    retention.add_argument("--account", help="the account (AC…; default: the default account)")
    for name, what in (
        ("identity", "identities of participants of ended rooms are anonymised"),
        ("recording", "recordings are deleted"),
        ("callback", "delivered or failed status callbacks are removed"),
    ):
        retention.add_argument(
            f"--{name}-days",
            type=_days,
            default=argparse.SUPPRESS,
            metavar="N|never",
            help=f"days after which {what}",
        )

    from parlour import manage

    actions = manage.add_commands(sub, [printing])
    progress = actions["compositions"].add_parser(
        "progress",
        parents=[printing],
        help="compositions with their progress, read from this data dir's database (the "
        "REST API has no progress field; Twilio sends it in callbacks)",
    )
    progress.add_argument("--account", help="the account (AC…; default: the default account)")
    progress.add_argument("--room", help="only the compositions of this room (RM…)")
    return parser


# -- configuration and its checks --------------------------------------------------------


def _config(args: argparse.Namespace) -> Config:
    """The configuration, checked: a bad value is a `CliError`."""
    try:
        config = Config.from_env(
            data_dir=getattr(args, "data_dir", None),
            host=getattr(args, "host", None),
            port=getattr(args, "port", None),
            public_url=getattr(args, "public_url", None),
            log_level=getattr(args, "log_level", None),
            media_host=getattr(args, "media_host", None),
            media_port=getattr(args, "media_port", None),
            media_advertised_address=getattr(args, "advertised_address", None),
            media_workers=getattr(args, "media_workers", None),
            dev=getattr(args, "dev", None),
            tls_cert=getattr(args, "tls_cert", None),
            tls_key=getattr(args, "tls_key", None),
            database_url=getattr(args, "database_url", None),
            redis_url=getattr(args, "redis_url", None),
            internal_url=getattr(args, "internal_url", None),
        )
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    level = config.log_level.lower()
    if level not in LOG_LEVELS:
        raise CliError(
            f"log level {config.log_level!r} (PARLOUR_LOG_LEVEL) is not one of "
            + ", ".join(LOG_LEVELS)
        )
    for name, port in (("PARLOUR_PORT", config.port), ("PARLOUR_MEDIA_PORT", config.media_port)):
        if not 0 <= port <= 65535:  # the flags are checked by argparse
            raise CliError(f"{name} {port} is not a port number from 0 to 65535")
    return dataclasses.replace(config, log_level=level)


def _wants_debug(args: argparse.Namespace) -> bool:
    level = getattr(args, "log_level", None) or os.environ.get("PARLOUR_LOG_LEVEL", "")
    return level.lower() == "debug"


def _prepare_data_dir(config: Config, *, announce: bool) -> None:
    """Make sure the data dir is a writable directory, creating it if missing.

    Args:
        announce: say on stderr when the directory is new, so a mistyped `--data-dir` (whose
            fresh credentials a running server would reject) does not go unnoticed.
    """
    path = config.data_dir
    if path.is_dir():
        if not os.access(path, os.W_OK | os.X_OK):
            raise CliError(f"data dir {path} is not writable")
        return
    if path.exists() or path.is_symlink():
        raise CliError(f"data dir {path} is not a directory")
    for parent in path.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise CliError(f"cannot create data dir {path}: {parent} is not a directory")
            if not os.access(parent, os.W_OK | os.X_OK):
                raise CliError(f"cannot create data dir {path}: {parent} is not writable")
            break
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CliError(f"cannot create data dir {path}: {_reason(exc)}") from exc
    if announce:
        print(f"parlour: created a new data dir {path} (no server has used it)", file=sys.stderr)


# -- describing errors ---------------------------------------------------------------------


def _reason(exc: BaseException) -> str:
    """One line saying what went wrong, without the exception's type where it says nothing."""
    if isinstance(exc, OSError) and exc.strerror:
        # asyncio puts the address in strerror ("Connect call failed (…)"): the errno says it.
        errno = exc.errno if isinstance(exc.errno, int) and exc.errno > 0 else None
        reason = os.strerror(errno) if errno else exc.strerror
        reason = reason[:1].lower() + reason[1:]
        return f"{exc.filename}: {reason}" if exc.filename else reason
    orig = getattr(exc, "orig", None)  # SQLAlchemy wraps the driver's error
    if isinstance(orig, BaseException):
        return _reason(orig)
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _database(config: Config) -> str:
    """The database, for a message: its URL without a password, or the SQLite file."""
    if not config.database_url:
        return str(config.data_dir / "parlour.db")
    try:
        parts = urlsplit(config.database_url)
        if parts.password is None:
            return config.database_url
        host = parts.netloc.rpartition("@")[2]
        return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))
    except ValueError:
        return "(PARLOUR_DATABASE_URL)"


#: The database URL schemes Parlour's async store runs on, as `Config.db_url` spells them.
_DATABASE_SCHEMES = ("sqlite+aiosqlite", "postgresql+asyncpg")


def _check_database_url(config: Config) -> None:
    scheme, colon_slashes, _ = config.db_url.partition("://")
    if not colon_slashes:
        raise CliError(f"cannot open the database {_database(config)}: not a URL")
    if scheme not in _DATABASE_SCHEMES:
        raise CliError(
            f"cannot open the database {_database(config)}: unsupported scheme "
            f"{scheme!r} (use postgresql:// or sqlite:///)"
        )


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


# -- commands ------------------------------------------------------------------------------


def _print(args: argparse.Namespace, data: dict[str, Any] | list[Any], text: str) -> None:
    if getattr(args, "json", False):
        print(json.dumps(data, indent=2))
    else:
        print(text)


def _join_sqlite_threads() -> None:
    """Let aiosqlite's worker threads end while the event loop still runs.

    An aiosqlite connection that failed to open stops its thread without waiting for it; the
    thread then reports to the loop, and if that loop has closed meanwhile it prints a
    traceback ("Event loop is closed") under our one-line error.
    """
    for thread in threading.enumerate():
        if "_connection_worker_thread" in thread.name and thread is not threading.current_thread():
            thread.join(timeout=2)


async def _open_store(config: Config) -> Any:
    # The store alone, not `parlour.app` (the whole server: the SFU, aiortc, PyAV…): a
    # management command starts in a fraction of the time.
    from parlour.store.sql import SqlStore

    _check_database_url(config)
    try:
        config.data_dir.mkdir(parents=True, exist_ok=True)
        return await SqlStore.open(config.db_url, log_personal_data=config.log_personal_data)
    except Exception as exc:
        _join_sqlite_threads()
        raise CliError(f"cannot open the database {_database(config)}: {_reason(exc)}") from exc


async def _with_services(config: Config, fn: Callable[[Any], Awaitable[None]]) -> None:
    from parlour.domain.clock import SystemClock
    from parlour.services.accounts import AccountService

    store = await _open_store(config)
    try:
        await fn(AccountService(store, SystemClock(), load_server_secret(config)))
    finally:
        await store.close()


def _run_services(config: Config, fn: Callable[[Any], Awaitable[None]]) -> None:
    _prepare_data_dir(config, announce=True)
    asyncio.run(_with_services(config, fn))


def _cmd_account(args: argparse.Namespace, config: Config) -> None:
    async def run(accounts: Any) -> None:
        if args.action == "create":
            creds = await accounts.create_account(getattr(args, "friendly_name", None))
        else:
            creds = await accounts.default_account()
        data = {"account_sid": creds.account_sid, "auth_token": creds.auth_token}
        _print(args, data, f"account_sid {creds.account_sid}\nauth_token  {creds.auth_token}")

    _run_services(config, run)


def _cmd_keys(args: argparse.Namespace, config: Config) -> None:
    async def run(accounts: Any) -> None:
        account = (await accounts.default_account()).account_sid
        if args.action == "create":
            new = await accounts.create_key(account, getattr(args, "friendly_name", None))
            data = {"sid": new.key.sid, "secret": new.secret, "account_sid": account}
            _print(
                args,
                data,
                f"sid         {new.key.sid}\nsecret      {new.secret}\naccount_sid {account}\n"
                "The secret is shown only now; store it safely.",
            )
        elif args.action == "list":
            keys = await accounts.list_keys(account)
            rows = [
                {
                    "sid": k.sid,
                    "friendly_name": k.friendly_name,
                    "account_sid": k.account_sid,
                    "date_created": k.date_created.strftime("%Y-%m-%dT%H:%M:%SZ"),
                }
                for k in keys
            ]
            text = "\n".join(f"{r['sid']}  {r['date_created']}  {r['friendly_name']}" for r in rows)
            _print(args, rows, text or "no API keys")
        else:
            from parlour.domain.errors import NotFoundError

            try:
                await accounts.delete_key(account, args.sid)
            except NotFoundError:
                raise CliError(f"no API key {args.sid} in the default account {account}") from None
            _print(args, {"deleted": args.sid}, f"deleted {args.sid}")

    _run_services(config, run)


def _cmd_token(args: argparse.Namespace, config: Config) -> None:
    async def run(accounts: Any) -> None:
        token = await accounts.mint_token(args.identity, room=args.room, ttl=args.ttl)
        data = {"token": token, "identity": args.identity, "room": args.room, "ttl": args.ttl}
        _print(args, data, token)

    _run_services(config, run)


def _cmd_migrate(args: argparse.Namespace, config: Config) -> None:
    async def run(accounts: Any) -> None:
        return None

    _run_services(config, run)
    print("database is up to date")


def _cmd_metrics_token(args: argparse.Namespace, config: Config) -> None:
    if not config.metrics_token:
        _prepare_data_dir(config, announce=True)
    token = load_metrics_token(config)
    _print(args, {"metrics_token": token}, token)


def _listen(host: str, port: int) -> socket.socket:
    """The server's listening TCP socket, bound before anything else starts."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
            sock.listen(2048)  # connections wait in the backlog until the app accepts
        except OSError:
            sock.close()
            raise
    except OSError as exc:
        raise CliError(f"cannot listen on {_address(host, port)}: {_reason(exc)}") from exc
    return sock


def _check_media_address(host: str, port: int, tcp: bool = False) -> None:
    """Fail now, in one line, if the SFU could not bind its UDP address (or, with a fixed
    port and ICE-TCP, the same TCP port)."""
    kinds = [("UDP", socket.SOCK_DGRAM)]
    if tcp and port:
        kinds.append(("TCP", socket.SOCK_STREAM))
    for name, sock_type in kinds:
        try:
            family, kind, proto, _, address = socket.getaddrinfo(
                host, port, type=sock_type, flags=socket.AI_PASSIVE
            )[0]
            with socket.socket(family, kind, proto) as probe:
                if sock_type == socket.SOCK_STREAM:
                    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                probe.bind(address)
        except OSError as exc:
            raise CliError(
                f"cannot listen for media on {name} {_address(host, port)}: {_reason(exc)}"
            ) from exc


def _tls_context(config: Config) -> ssl.SSLContext | None:
    """The TLS context of --tls-cert/--tls-key, checked before anything starts."""
    try:
        return server_tls_context(config)
    except OSError as exc:  # ssl.SSLError is one: its errno is OpenSSL's, not the OS's
        reason = (exc.reason or str(exc)) if isinstance(exc, ssl.SSLError) else _reason(exc)
        raise CliError(
            f"cannot use TLS certificate {config.tls_cert} with key {config.tls_key}: "
            f"{str(reason).lower().replace('_', ' ')}"
        ) from exc


def _cores() -> int:
    """The cores this process may run on (its CPU affinity: a container's or taskset's
    limit, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _cmd_serve(args: argparse.Namespace, config: Config) -> None:
    import uvicorn
    import uvloop

    from parlour.serving import uvicorn_config

    if args.media_workers is None and not os.environ.get("PARLOUR_MEDIA_WORKERS"):
        config = dataclasses.replace(config, media_workers=_cores())
    tls = _tls_context(config)
    sock = _listen(config.host, config.port)
    try:
        # Worker i binds media port + i (when the port is fixed).
        for i in range(max(1, config.media_workers) if config.media_port else 1):
            _check_media_address(
                config.media_host or config.host, config.media_port + i, config.media_tcp
            )
        _prepare_data_dir(config, announce=False)
    except BaseException:
        sock.close()
        raise
    config = dataclasses.replace(config, port=sock.getsockname()[1])

    async def serve() -> None:
        from parlour.app import build

        # Open (and migrate) the database first, so that a bad one is told as such.
        await (await _open_store(config)).close()
        if config.redis_url:  # and the cluster's Redis (its password is never printed)
            from parlour.cluster import RedisRegistry

            try:
                await (await RedisRegistry.connect(config.redis_url)).close()
            except ValueError as exc:
                raise CliError(str(exc)) from None
        parlour = await build(config)
        server = uvicorn.Server(
            uvicorn_config(
                parlour.asgi,
                loop="uvloop",
                access_log=bool(args.access_log),
                log_level=config.log_level,
                tls=tls,
            )
        )
        log.info(
            "Parlour %s listening on %s (data dir %s)",
            __version__,
            config.base_url,
            config.data_dir,
        )
        try:
            await server.serve(sockets=[sock])
        finally:
            await parlour.close()

    try:
        uvloop.run(serve())
    finally:
        sock.close()


def _run_store(config: Config, fn: Callable[[Any], Awaitable[None]]) -> None:
    """Run `fn(store)` on the data dir's database (which must exist already)."""
    if not config.database_url and not (config.data_dir / "parlour.db").exists():
        raise CliError(f"no Parlour database in {config.data_dir} (see --data-dir)")

    async def go() -> None:
        store = await _open_store(config)
        try:
            await fn(store)
        finally:
            await store.close()

    asyncio.run(go())


def _privacy(store: Any, config: Config) -> Any:
    from parlour.domain.clock import SystemClock
    from parlour.recording import LocalStorage
    from parlour.services.media_settings import CredentialService, SecretBox
    from parlour.services.media_storage import MediaStorageResolver
    from parlour.services.privacy import PrivacyService

    media = config.data_dir / "media"
    local = LocalStorage(media)
    # Media in an account's S3 bucket is exported and erased there too.
    box = SecretBox(load_server_secret(config))
    resolver = MediaStorageResolver(store, CredentialService(store, SystemClock(), box), local)
    return PrivacyService(store, SystemClock(), local, media / "spool", resolver=resolver)


def _check_account_sid(text: str) -> str:
    from parlour.domain.sids import is_sid

    if not is_sid(text, "AC"):
        raise CliError(f"{text!r} is not an account SID (AC followed by 32 hex digits)")
    return text


@contextlib.contextmanager
def _known_account(account: str | None) -> Iterator[None]:
    """Report the store's not-found for `account` as the CLI does."""
    from parlour.domain.errors import NotFoundError

    try:
        yield
    except NotFoundError:
        raise CliError(f"no account {account} in this database") from None


def _record_counts(records: dict[str, int]) -> str:
    return ", ".join(f"{n} {k}" for k, n in records.items())


def _cmd_export(args: argparse.Namespace, config: Config) -> None:
    from pathlib import Path

    account = _check_account_sid(args.account)
    out = Path(args.out)
    if out.is_dir():
        raise CliError(f"{out} is a directory; give the archive's file name")
    if not out.parent.is_dir():
        raise CliError(f"cannot write {out}: {out.parent} is not a directory")

    async def run(store: Any) -> None:
        try:
            with _known_account(account):
                done = await _privacy(store, config).export(account, args.identity, out)
        except OSError as exc:
            raise CliError(f"cannot write {out}: {_reason(exc)}") from exc
        data = {
            "out": str(done.path),
            "account_sid": account,
            "identity": args.identity,
            "records": done.records,
            "media": done.media_files,
            "missing_media": done.missing_media,
        }
        counts = _record_counts(done.records)
        _print(args, data, f"wrote {done.path}: {counts}, {len(done.media_files)} media files")

    _run_store(config, run)


def _cmd_erase(args: argparse.Namespace, config: Config) -> None:
    from parlour.domain.ports import ErasureBlocked

    account = _check_account_sid(args.account)
    if not args.yes:
        whom = f"identity {args.identity!r} of" if args.identity is not None else "all data of"
        raise CliError(f"erasing {whom} account {account} cannot be undone; add --yes")

    async def run(store: Any) -> None:
        try:
            with _known_account(account):
                done = await _privacy(store, config).erase(account, args.identity)
        except ErasureBlocked as exc:
            raise CliError(f"nothing erased: {exc}") from exc
        data = {
            "account_sid": account,
            "identity": args.identity,
            "erased": done.records,
            "media_deleted": done.media_deleted,
            "spool_files_deleted": done.spool_deleted,
        }
        counts = _record_counts(done.records)
        _print(args, data, f"erased {counts}; {len(done.media_deleted)} media files")

    _run_store(config, run)


def _cmd_retention(args: argparse.Namespace, config: Config) -> None:
    from parlour.services.retention import RetentionService

    changes = {
        f"{name}_days": getattr(args, f"{name}_days")
        for name in ("identity", "recording", "callback")
        if hasattr(args, f"{name}_days")
    }

    account = None if args.account is None else _check_account_sid(args.account)

    async def run(store: Any) -> None:
        from parlour.domain.clock import SystemClock
        from parlour.services.accounts import AccountService

        nonlocal account
        clock = SystemClock()
        if account is None:
            secret = load_server_secret(config)
            account = (await AccountService(store, clock, secret).default_account()).account_sid
        service = RetentionService(store, clock, config.retention_policy)
        with _known_account(account):
            if changes:
                current = await service.update(account, **changes)
            else:
                current = await service.get(account)
        data = {"account_sid": account, **current.as_dict()}
        lines = [f"account_sid     {account}"] + [
            f"{k:<15} {'never' if v is None else v}"
            for k, v in current.as_dict().items()
            if k.endswith("_days")
        ]
        _print(args, data, "\n".join(lines))

    _run_store(config, run)


def _cmd_manage(args: argparse.Namespace, config: Config) -> None:
    """`parlour rooms|participants|recordings …` against a running server."""
    from parlour import manage

    def default_credentials() -> tuple[str, str]:
        if not config.database_url and not (config.data_dir / "parlour.db").exists():
            raise CliError(
                f"no Parlour database in {config.data_dir} to take the default account from: "
                "give the server's --data-dir, or --account-sid and --auth-token"
            )
        found: list[tuple[str, str]] = []

        async def run(accounts: Any) -> None:
            creds = await accounts.default_account()
            found.append((creds.account_sid, creds.auth_token))

        asyncio.run(_with_services(config, run))
        return found[0]

    try:
        manage.run(args, default_credentials)
    except manage.ManageError as exc:
        raise CliError(str(exc)) from exc


def _cmd_compositions(args: argparse.Namespace, config: Config) -> None:
    account = None if args.account is None else _check_account_sid(args.account)

    async def run(store: Any) -> None:
        from parlour.domain.clock import SystemClock
        from parlour.domain.paging import PageRequest
        from parlour.domain.ports import CompositionFilter
        from parlour.services.accounts import AccountService

        nonlocal account
        if account is None:
            secret = load_server_secret(config)
            account = (
                await AccountService(store, SystemClock(), secret).default_account()
            ).account_sid
        if await store.get_account(account) is None:
            raise CliError(f"no account {account} in this database")
        flt = CompositionFilter(room_sid=args.room)
        page = await store.list_compositions(account, flt, PageRequest(page_size=1000))
        rows = [
            {
                "sid": c.sid,
                "room_sid": c.room_sid,
                "status": c.status.value,
                "progress": c.progress,
                "duration": c.duration,
                "size": c.size,
                "format": c.spec.format.value,
                "date_created": c.date_created.strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
            for c in page.items
        ]
        text = "\n".join(
            f"{r['sid']}  {r['room_sid']}  {r['status']:<10} "
            + (f"{r['progress']:>3}%" if r["status"] == "processing" else f"{r['duration']:>4}s")
            + f"  {r['format']}  {r['date_created']}"
            for r in rows
        )
        _print(args, rows, text or "no compositions")

    _run_store(config, run)


_COMMANDS: dict[str, Callable[[argparse.Namespace, Config], None]] = {
    "serve": _cmd_serve,
    "account": _cmd_account,
    "keys": _cmd_keys,
    "token": _cmd_token,
    "migrate": _cmd_migrate,
    "metrics-token": _cmd_metrics_token,
    "export": _cmd_export,
    "erase": _cmd_erase,
    "retention": _cmd_retention,
    "rooms": _cmd_manage,
    "participants": _cmd_manage,
    "recordings": _cmd_manage,
    "compositions": lambda args, config: (
        _cmd_compositions if args.action == "progress" else _cmd_manage
    )(args, config),
}


def _setup_logging(config: Config, command: str) -> None:
    level = config.log_level
    if command != "serve" and level == "info":
        level = "warning"  # the other commands print their result, not a log
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)


def _fail(message: str, exc: BaseException, *, debug: bool) -> int:
    sys.stdout.flush()
    if debug:
        traceback.print_exception(exc, file=sys.stderr)
    print(f"parlour: {message}", file=sys.stderr)
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return its exit status (a usage error exits with 2 right away)."""
    args = _parser().parse_args(argv)
    debug = _wants_debug(args)
    try:
        config = _config(args)
        _setup_logging(config, args.command)
        _COMMANDS[args.command](args, config)
    except KeyboardInterrupt:
        return 130
    except CliError as exc:
        return _fail(str(exc), exc, debug=debug)
    except Exception as exc:
        what = _reason(exc) if isinstance(exc, OSError) else f"{type(exc).__name__}: {_reason(exc)}"
        hint = "" if debug else " (--log-level debug shows the traceback)"
        return _fail(f"{what}{hint}", exc, debug=debug)
    return 0
