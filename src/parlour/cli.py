"""The `parlour` command line.

    parlour serve   [--host H] [--port P] [--data-dir D] [--public-url URL] [--dev]
    parlour account [--data-dir D] [--json]
    parlour account create [--data-dir D] [--friendly-name N] [--json]
    parlour keys create [--data-dir D] [--friendly-name N] [--json]
    parlour keys list [--data-dir D] [--json]
    parlour keys delete SID [--data-dir D] [--json]
    parlour token --identity I [--room R] [--ttl 3600] [--data-dir D] [--json]
    parlour migrate [--data-dir D]
    parlour metrics-token [--data-dir D] [--json]

Every subcommand works while `parlour serve` runs on the same data dir.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import socket
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from parlour import __version__
from parlour.config import Config, load_metrics_token, load_server_secret

__all__ = ["main"]

log = logging.getLogger("parlour")


def _common(json_flag: bool) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument(
        "--data-dir",
        default=argparse.SUPPRESS,
        help="directory for the database, secret key and media (default ./var, or "
        "$PARLOUR_DATA_DIR)",
    )
    if json_flag:
        p.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print JSON")
    return p


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="parlour",
        description="Parlour: a self-hosted, drop-in replacement for Twilio Programmable Video.",
    )
    parser.add_argument("--version", action="version", version=f"parlour {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    plain, printing = _common(False), _common(True)

    serve = sub.add_parser("serve", parents=[plain], help="run the server")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default 8080; 0 = any)")
    serve.add_argument(
        "--public-url",
        help="externally visible base URL used in every url, links and paging URL "
        "(default http://HOST:PORT)",
    )
    serve.add_argument("--media-host", help="UDP address of the SFU (default: --host)")
    serve.add_argument("--media-port", type=int, help="UDP port of the SFU (default 0 = any)")
    serve.add_argument(
        "--advertised-address",
        help="address put in ICE candidates, for a server behind NAT (default: media host)",
    )
    serve.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
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
    token.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds (3600)")

    sub.add_parser("migrate", parents=[plain], help="bring the database schema up to date")
    sub.add_parser(
        "metrics-token",
        parents=[printing],
        help="print the bearer token for /metrics ($PARLOUR_METRICS_TOKEN, or derived from "
        "the server secret)",
    )
    return parser


def _config(args: argparse.Namespace) -> Config:
    return Config.from_env(
        data_dir=getattr(args, "data_dir", None),
        host=getattr(args, "host", None),
        port=getattr(args, "port", None),
        public_url=getattr(args, "public_url", None),
        log_level=getattr(args, "log_level", None),
        media_host=getattr(args, "media_host", None),
        media_port=getattr(args, "media_port", None),
        media_advertised_address=getattr(args, "advertised_address", None),
        dev=getattr(args, "dev", None),
    )


def _print(args: argparse.Namespace, data: dict[str, Any] | list[Any], text: str) -> None:
    if getattr(args, "json", False):
        print(json.dumps(data, indent=2))
    else:
        print(text)


async def _with_services(config: Config, fn: Callable[[Any], Awaitable[None]]) -> None:
    from parlour.app import open_store
    from parlour.domain.clock import SystemClock
    from parlour.services.accounts import AccountService

    store = await open_store(config)
    try:
        await fn(AccountService(store, SystemClock(), load_server_secret(config)))
    finally:
        await store.close()


def _cmd_account(args: argparse.Namespace) -> None:
    async def run(accounts: Any) -> None:
        if args.action == "create":
            creds = await accounts.create_account(getattr(args, "friendly_name", None))
        else:
            creds = await accounts.default_account()
        data = {"account_sid": creds.account_sid, "auth_token": creds.auth_token}
        _print(args, data, f"account_sid {creds.account_sid}\nauth_token  {creds.auth_token}")

    asyncio.run(_with_services(_config(args), run))


def _cmd_keys(args: argparse.Namespace) -> int:
    status = 0

    async def run(accounts: Any) -> None:
        nonlocal status
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
                _print(args, {"error": "not found", "sid": args.sid}, f"no such key: {args.sid}")
                status = 1
                return
            _print(args, {"deleted": args.sid}, f"deleted {args.sid}")

    asyncio.run(_with_services(_config(args), run))
    return status


def _cmd_token(args: argparse.Namespace) -> None:
    async def run(accounts: Any) -> None:
        token = await accounts.mint_token(args.identity, room=args.room, ttl=args.ttl)
        data = {"token": token, "identity": args.identity, "room": args.room, "ttl": args.ttl}
        _print(args, data, token)

    asyncio.run(_with_services(_config(args), run))


def _cmd_migrate(args: argparse.Namespace) -> None:
    async def run(accounts: Any) -> None:
        return None

    asyncio.run(_with_services(_config(args), run))
    print("database is up to date")


def _cmd_metrics_token(args: argparse.Namespace) -> None:
    token = load_metrics_token(_config(args))
    _print(args, {"metrics_token": token}, token)


def _cmd_serve(args: argparse.Namespace) -> None:
    import uvicorn
    import uvloop

    config = _config(args)
    sock = socket.socket(socket.AF_INET6 if ":" in config.host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((config.host, config.port))
    sock.listen(2048)  # connections wait in the backlog until the app is ready to accept
    config = Config(**{**vars(config), "port": sock.getsockname()[1]})

    async def serve() -> None:
        from parlour.app import build

        parlour = await build(config)
        server = uvicorn.Server(
            uvicorn.Config(
                parlour.asgi,
                loop="uvloop",
                http="httptools",
                lifespan="on",
                access_log=bool(args.access_log),
                log_level=config.log_level,
                server_header=False,
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

    uvloop.run(serve())


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    config = _config(args)
    logging.basicConfig(
        level=config.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)
    if args.command != "serve":
        logging.getLogger().setLevel(logging.WARNING)
    if args.command == "serve":
        _cmd_serve(args)
    elif args.command == "account":
        _cmd_account(args)
    elif args.command == "keys":
        return _cmd_keys(args)
    elif args.command == "token":
        _cmd_token(args)
    elif args.command == "migrate":
        _cmd_migrate(args)
    elif args.command == "metrics-token":
        _cmd_metrics_token(args)
    return 0
