"""`parlour rooms|participants|recordings …`: manage a running server through its REST API.

    parlour rooms list [--status S] [--name N] [--limit 50]
    parlour rooms show ROOM
    parlour rooms end ROOM
    parlour participants list ROOM [--status S] [--limit 50]
    parlour participants kick ROOM PARTICIPANT
    parlour recordings list [--room ROOM] [--status S] [--limit 50]
    parlour recordings show RT…
    parlour recordings download RT… [--out FILE]
    parlour recordings delete RT…

Each talks to the server at `--url` (default `$PARLOUR_URL`, else http://127.0.0.1:8080)
with Basic auth: `--account-sid`/`--auth-token`, else the default account of `--data-dir`
(which `parlour.cli` reads and hands in). People get tables, scripts `--json` (the REST
resources as the server returned them). A download shows a progress bar on stderr when it is
a terminal.

A kind of resource is one `Resource` (its paths, list key, columns and filters) and the
actions it takes are entries of `ACTIONS`: adding `parlour compositions list|show|download|
delete` is one more `Resource` with its columns and a line in `RESOURCES`.

This module knows HTTP and the REST shapes only; it never opens the database.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import quote

import httpx

from parlour import __version__

__all__ = [
    "DEFAULT_URL",
    "RESOURCES",
    "ManageError",
    "Progress",
    "add_commands",
    "run",
]

DEFAULT_URL = "http://127.0.0.1:8080"
#: The largest page any list answers (Recordings allow at most 100).
PAGE_SIZE = 100
TIMEOUT = 30.0

Json = dict[str, Any]
#: Reads the default account's (SID, auth token) from the data dir, when needed.
Credentials = Callable[[], tuple[str, str]]


class ManageError(Exception):
    """A problem told to the user in one line; `parlour.cli` reports it as its own."""


# -- talking to the server ---------------------------------------------------------------------


def _seg(value: str) -> str:
    """One path segment (room names may hold any character but `/`)."""
    return quote(value, safe="")


class Api:
    """The server's REST API, as one account."""

    def __init__(self, url: str, account_sid: str, auth_token: str) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.url,
            auth=(account_sid, auth_token),
            timeout=TIMEOUT,
            headers={"User-Agent": f"parlour-cli/{__version__}"},
        )

    def close(self) -> None:
        self._http.close()

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            reason = str(exc) or type(exc).__name__
            raise ManageError(
                f"cannot reach Parlour at {self.url}: {reason} (is `parlour serve` running "
                "there? see --url or PARLOUR_URL)"
            ) from exc
        if response.is_success or response.is_redirect:
            return response
        raise ManageError(self._problem(response))

    def _problem(self, response: httpx.Response) -> str:
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code == 401:
            return (
                f"the server at {self.url} refused the credentials (401): give the --data-dir "
                "that server uses, or --account-sid and --auth-token"
            )
        if isinstance(body, dict) and "message" in body:
            code = f", code {body['code']}" if body.get("code") else ""
            return f"{body['message']} ({response.status_code}{code})"
        return f"HTTP {response.status_code} from {response.request.url}"

    def get(self, path: str, params: dict[str, str] | None = None) -> Json:
        body: Json = self._send("GET", path, params=params).json()
        return body

    def post(self, path: str, data: dict[str, str]) -> Json:
        body: Json = self._send("POST", path, data=data).json()
        return body

    def delete(self, path: str) -> None:
        self._send("DELETE", path)

    def pages(self, path: str, key: str, params: dict[str, str], limit: int) -> list[Json]:
        """Items of a list, following `meta.next_page_url`, at most `limit` (0: all)."""
        size = PAGE_SIZE if limit == 0 else min(limit, PAGE_SIZE)
        page = self.get(path, {**params, "PageSize": str(size)})
        items: list[Json] = []
        while True:
            items.extend(page.get(key, []))
            following = page.get("meta", {}).get("next_page_url")
            if not following or (limit and len(items) >= limit):
                break
            # The server's own URL for the next page (its public URL): keep only its query.
            query = httpx.URL(following).query.decode()
            page = self._send("GET", f"{path}?{query}").json()
        return items[:limit] if limit else items

    def media_url(self, path: str) -> str:
        """The signed URL a `…/Media` resource redirects to."""
        response = self._send("GET", path)
        location = response.headers.get("location")
        if location is None:
            location = response.json().get("redirect_to")
        if not location:
            raise ManageError(f"the server gave no media URL for {path}")
        return str(location)


# -- showing things ------------------------------------------------------------------------------


def _date(value: Any) -> str:
    return str(value).replace("T", " ").removesuffix("Z") if value else "-"


def _duration(value: Any) -> str:
    if value is None or value == "":
        return "-"
    seconds = int(value)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def human_size(size: Any) -> str:
    """Bytes for people: 512 B, 1.2 kB, 3.4 MB."""
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"


@dataclass(frozen=True)
class Column:
    title: str
    value: Callable[[Json], str]


def field_of(
    name: str, show: Callable[[Any], str] = lambda v: "-" if v is None else str(v)
) -> Callable[[Json], str]:
    return lambda item: show(item.get(name))


def table(items: Sequence[Json], columns: Sequence[Column]) -> str:
    rows = [[c.title for c in columns]] + [[c.value(i) for c in columns] for i in items]
    widths = [max(len(row[n]) for row in rows) for n in range(len(columns))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def details(pairs: Sequence[tuple[str, str]]) -> str:
    width = max(len(k) for k, _ in pairs)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in pairs)


class Progress:
    """A one-line progress bar on `stream`, drawn only when it is a terminal."""

    WIDTH = 28

    def __init__(self, label: str, total: int | None, stream: TextIO | None = None) -> None:
        self.label = label
        self.total = total if total and total > 0 else None
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = self.stream.isatty()
        self.done = 0
        self._drawn = 0.0

    def advance(self, count: int) -> None:
        self.done += count
        now = time.monotonic()
        if self.enabled and now - self._drawn >= 0.1:
            self._drawn = now
            self._draw()

    def line(self) -> str:
        if self.total is None:
            return f"{self.label}  {human_size(self.done)}"
        share = min(1.0, self.done / self.total)
        filled = int(share * self.WIDTH)
        bar = "█" * filled + "░" * (self.WIDTH - filled)
        sizes = f"{human_size(self.done)} / {human_size(self.total)}"
        return f"{self.label}  {bar} {share:4.0%}  {sizes}"

    def _draw(self) -> None:
        self.stream.write("\r\x1b[2K" + self.line())
        self.stream.flush()

    def finish(self) -> None:
        if self.enabled:
            self._draw()
            self.stream.write("\n")
            self.stream.flush()


# -- resources -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Filter:
    """A list option: `--flag VALUE` sent as the REST query parameter `param`."""

    flag: str
    param: str
    help: str
    choices: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Resource:
    """One kind of REST resource the CLI manages."""

    name: str  # the command: "recordings"
    singular: str  # "recording"
    key: str  # the list's key in a page: "recordings"
    columns: tuple[Column, ...]
    describe: Callable[[Json], list[tuple[str, str]]]
    #: The actions it takes, in the order `--help` lists them.
    actions: tuple[str, ...]
    filters: tuple[Filter, ...] = ()
    #: Path of the list; `args` may hold the parent (a room).
    collection: Callable[[argparse.Namespace], str] = field(default=lambda args: "")
    #: Path of one item, by the id given on the command line.
    item: Callable[[argparse.Namespace, str], str] = field(default=lambda args, sid: "")
    #: What the `id` argument is, for `--help`.
    id_help: str = ""
    #: The parent argument (`ROOM`) that `list` takes, if any.
    parent: str | None = None
    #: File extension of a download, from the item.
    extension: Callable[[Json], str] = field(default=lambda item: "bin")


def _room_pairs(room: Json) -> list[tuple[str, str]]:
    return [
        ("sid", room["sid"]),
        ("name", room.get("unique_name") or "-"),
        ("status", room.get("status", "-")),
        ("type", room.get("type", "-")),
        ("created", _date(room.get("date_created"))),
        ("ended", _date(room.get("end_time"))),
        ("duration", _duration(room.get("duration"))),
        ("max participants", str(room.get("max_participants", "-"))),
        ("record on connect", "yes" if room.get("record_participants_on_connect") else "no"),
        ("media region", room.get("media_region") or "-"),
    ]


def _participant_pairs(p: Json) -> list[tuple[str, str]]:
    return [
        ("sid", p["sid"]),
        ("identity", p.get("identity", "-")),
        ("room", p.get("room_sid", "-")),
        ("status", p.get("status", "-")),
        ("joined", _date(p.get("start_time"))),
        ("left", _date(p.get("end_time"))),
        ("duration", _duration(p.get("duration"))),
    ]


def _recording_pairs(r: Json) -> list[tuple[str, str]]:
    grouping = r.get("grouping_sids") or {}
    return [
        ("sid", r["sid"]),
        ("room", grouping.get("room_sid", "-")),
        ("participant", grouping.get("participant_sid", "-")),
        ("track", r.get("track_name") or "-"),
        ("type", r.get("type", "-")),
        ("codec", r.get("codec") or "-"),
        ("container", r.get("container_format") or "-"),
        ("status", r.get("status", "-")),
        ("created", _date(r.get("date_created"))),
        ("duration", _duration(r.get("duration"))),
        ("size", human_size(r.get("size"))),
    ]


#: The last columns and the actions of the media resources (recordings, compositions).
_MEDIA_COLUMNS = (
    Column("DURATION", field_of("duration", _duration)),
    Column("SIZE", field_of("size", human_size)),
    Column("CREATED", field_of("date_created", _date)),
)
_MEDIA_ACTIONS = ("list", "show", "download", "delete")


def _status_filter(*statuses: str) -> Filter:
    """`--status`, one of `statuses`."""
    return Filter("--status", "Status", f"{', '.join(statuses[:-1])} or {statuses[-1]}", statuses)


def _room_of(item: Json) -> str:
    return str((item.get("grouping_sids") or {}).get("room_sid", "-"))


ROOMS = Resource(
    name="rooms",
    singular="room",
    key="rooms",
    columns=(
        Column("SID", field_of("sid")),
        Column("NAME", field_of("unique_name")),
        Column("STATUS", field_of("status")),
        Column("TYPE", field_of("type")),
        Column("CREATED", field_of("date_created", _date)),
        Column("DURATION", field_of("duration", _duration)),
    ),
    describe=_room_pairs,
    actions=("list", "show", "end"),
    filters=(
        Filter(
            "--status", "Status", "in-progress (default) or completed", ("in-progress", "completed")
        ),
        Filter("--name", "UniqueName", "only rooms with this unique name"),
    ),
    collection=lambda args: "/v1/Rooms",
    item=lambda args, sid: f"/v1/Rooms/{_seg(sid)}",
    id_help="the room: its SID (RM…) or, while in progress, its unique name",
)

PARTICIPANTS = Resource(
    name="participants",
    singular="participant",
    key="participants",
    columns=(
        Column("SID", field_of("sid")),
        Column("IDENTITY", field_of("identity")),
        Column("STATUS", field_of("status")),
        Column("JOINED", field_of("start_time", _date)),
        Column("DURATION", field_of("duration", _duration)),
    ),
    describe=_participant_pairs,
    actions=("list", "kick"),
    filters=(
        Filter(
            "--status",
            "Status",
            "connected (default for rooms in progress) or disconnected",
            ("connected", "disconnected"),
        ),
        Filter("--identity", "Identity", "only participants with this identity"),
    ),
    collection=lambda args: f"/v1/Rooms/{_seg(args.room)}/Participants",
    item=lambda args, sid: f"/v1/Rooms/{_seg(args.room)}/Participants/{_seg(sid)}",
    id_help="the participant: its SID (PA…) or identity",
    parent="room",
)

RECORDINGS = Resource(
    name="recordings",
    singular="recording",
    key="recordings",
    columns=(
        Column("SID", field_of("sid")),
        Column("ROOM", _room_of),
        Column("TRACK", field_of("track_name")),
        Column("TYPE", field_of("type")),
        Column("STATUS", field_of("status")),
        *_MEDIA_COLUMNS,
    ),
    describe=_recording_pairs,
    actions=_MEDIA_ACTIONS,
    filters=(
        _status_filter("processing", "completed", "deleted", "failed"),
        Filter("--source", "SourceSid", "only recordings of this track (MT…)"),
    ),
    collection=lambda args: (
        f"/v1/Rooms/{_seg(args.room)}/Recordings" if args.room else "/v1/Recordings"
    ),
    item=lambda args, sid: f"/v1/Recordings/{_seg(sid)}",
    id_help="the recording's SID (RT…)",
    extension=lambda item: str(item.get("container_format") or "mka"),
)


def _composition_pairs(c: Json) -> list[tuple[str, str]]:
    return [
        ("sid", c["sid"]),
        ("room", c.get("room_sid") or "-"),
        ("status", c.get("status", "-")),
        ("format", c.get("format") or "-"),
        ("resolution", c.get("resolution") or "-"),
        ("layout", json.dumps(c.get("video_layout") or {}, separators=(",", ":"))),
        ("audio sources", ", ".join(c.get("audio_sources") or []) or "-"),
        ("trim", "yes" if c.get("trim") else "no"),
        ("created", _date(c.get("date_created"))),
        ("completed", _date(c.get("date_completed"))),
        ("duration", _duration(c.get("duration"))),
        ("size", human_size(c.get("size"))),
    ]


COMPOSITIONS = Resource(
    name="compositions",
    singular="composition",
    key="compositions",
    columns=(
        Column("SID", field_of("sid")),
        Column("ROOM", field_of("room_sid")),
        Column("STATUS", field_of("status")),
        Column("FORMAT", field_of("format")),
        *_MEDIA_COLUMNS,
    ),
    describe=_composition_pairs,
    actions=_MEDIA_ACTIONS,
    filters=(
        _status_filter("enqueued", "processing", "completed", "deleted", "failed"),
        Filter("--room", "RoomSid", "only the compositions of this room (RM…)"),
    ),
    collection=lambda args: "/v1/Compositions",
    item=lambda args, sid: f"/v1/Compositions/{_seg(sid)}",
    id_help="the composition's SID (CJ…)",
    extension=lambda item: str(item.get("format") or "mp4"),
)

#: Every resource the CLI manages, by command name.
RESOURCES: dict[str, Resource] = {
    r.name: r for r in (ROOMS, PARTICIPANTS, RECORDINGS, COMPOSITIONS)
}


# -- actions -------------------------------------------------------------------------------------


@dataclass
class Session:
    api: Api
    args: argparse.Namespace
    resource: Resource
    out: TextIO

    @property
    def json(self) -> bool:
        return bool(getattr(self.args, "json", False))

    def emit(self, data: Any, text: str) -> None:
        print(json.dumps(data, indent=2) if self.json else text, file=self.out)


def _list(s: Session) -> None:
    r = s.resource
    params = {f.param: getattr(s.args, f.param) for f in r.filters if getattr(s.args, f.param)}
    items = s.api.pages(r.collection(s.args), r.key, params, s.args.limit)
    s.emit(items, table(items, r.columns) if items else f"no {r.name}")


def _show(s: Session) -> None:
    r = s.resource
    item = s.api.get(r.item(s.args, s.args.id))
    if r is ROOMS:
        people = s.api.pages(f"/v1/Rooms/{item['sid']}/Participants", "participants", {}, 0)
        text = details(r.describe(item)) + f"\n\nparticipants ({len(people)})"
        if people:
            text += ":\n" + table(people, PARTICIPANTS.columns)
        s.emit({**item, "participants": people}, text)
        return
    s.emit(item, details(r.describe(item)))


def _end(s: Session) -> None:
    room = s.api.post(ROOMS.item(s.args, s.args.id), {"Status": "completed"})
    name = f" ({room['unique_name']})" if room.get("unique_name") else ""
    s.emit(room, f"ended {room['sid']}{name}")


def _kick(s: Session) -> None:
    p = s.api.post(PARTICIPANTS.item(s.args, s.args.id), {"Status": "disconnected"})
    s.emit(p, f"disconnected {p.get('identity')} ({p['sid']}) from {p.get('room_sid')}")


def _delete(s: Session) -> None:
    r = s.resource
    s.api.delete(r.item(s.args, s.args.id))
    s.emit({"deleted": s.args.id}, f"deleted {s.args.id}")


def _download(s: Session) -> None:
    r = s.resource
    path = r.item(s.args, s.args.id)
    item = s.api.get(path)
    out = Path(s.args.out) if s.args.out else Path(f"{item['sid']}.{r.extension(item)}")
    if out.is_dir():
        out = out / f"{item['sid']}.{r.extension(item)}"
    if out.exists() and not s.args.force:
        raise ManageError(f"{out} exists; add --force to replace it, or --out another file")
    if not out.parent.is_dir():
        raise ManageError(f"cannot write {out}: {out.parent} is not a directory")
    url = s.api.media_url(f"{path}/Media")
    part = out.with_name(out.name + ".part")
    try:
        size = _fetch(url, part, label=out.name)
        os.replace(part, out)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    data = {"sid": item["sid"], "path": str(out), "bytes": size}
    s.emit(data, f"saved {out} ({human_size(size)})")


def _fetch(url: str, to: Path, *, label: str) -> int:
    """Stream a signed media URL into `to` (no credentials: the URL carries its signature)."""
    try:
        with httpx.stream("GET", url, timeout=TIMEOUT, follow_redirects=True) as response:
            if not response.is_success:
                raise ManageError(f"the media download failed: HTTP {response.status_code}")
            total = int(response.headers.get("content-length") or 0) or None
            progress = Progress(label, total)
            with to.open("wb") as sink:
                for chunk in response.iter_bytes(64 * 1024):
                    sink.write(chunk)
                    progress.advance(len(chunk))
            progress.finish()
            return progress.done
    except httpx.HTTPError as exc:
        raise ManageError(f"the media download failed: {exc or type(exc).__name__}") from exc
    except OSError as exc:
        raise ManageError(f"cannot write {to}: {exc.strerror or exc}") from exc


ACTIONS: dict[str, tuple[Callable[[Session], None], str]] = {
    "list": (_list, "list {name}"),
    "show": (_show, "show one {singular}"),
    "end": (_end, "end a room now (Status=completed): everyone in it is disconnected"),
    "kick": (_kick, "disconnect a participant from its room (Status=disconnected)"),
    "download": (_download, "download the {singular}'s media file"),
    "delete": (_delete, "delete the {singular}'s media (the resource stays, as deleted)"),
}


# -- the command line ----------------------------------------------------------------------------


def _limit(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError("the limit is 0 (everything) or more")
    return value


def _server_options() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument(
        "--url",
        default=argparse.SUPPRESS,
        help=f"the server's base URL (default $PARLOUR_URL, else {DEFAULT_URL}); https "
        "trusts the system's CAs, or the bundle in $SSL_CERT_FILE",
    )
    p.add_argument(
        "--account-sid",
        default=argparse.SUPPRESS,
        help="account SID (AC…) or API key SID (SK…) to authenticate with (default: the "
        "data dir's default account)",
    )
    p.add_argument(
        "--auth-token",
        default=argparse.SUPPRESS,
        help="its auth token or API key secret (with --account-sid)",
    )
    return p


def add_commands(
    sub: argparse._SubParsersAction[Any], parents: Sequence[argparse.ArgumentParser]
) -> dict[str, argparse._SubParsersAction[Any]]:
    """Add a command per resource (`rooms`, …) with its actions to `parlour`'s subparsers;
    returns each command's action subparsers (the CLI adds local actions to some)."""
    common = [*parents, _server_options()]
    added: dict[str, argparse._SubParsersAction[Any]] = {}
    for resource in RESOURCES.values():
        command = sub.add_parser(
            resource.name, help=f"manage {resource.name} of a running server (REST API)"
        )
        actions = command.add_subparsers(dest="action", required=True, metavar="ACTION")
        added[resource.name] = actions
        for name in resource.actions:
            _, what = ACTIONS[name]
            action = actions.add_parser(
                name,
                parents=common,
                help=what.format(name=resource.name, singular=resource.singular),
            )
            if resource.parent is not None:
                action.add_argument(resource.parent, help=ROOMS.id_help)
            elif name == "list" and resource is RECORDINGS:
                action.add_argument(
                    "--room", help="only this room's recordings (its SID or unique name)"
                )
            if name == "list":
                for f in resource.filters:
                    action.add_argument(
                        f.flag, dest=f.param, choices=f.choices, help=f.help, default=None
                    )
                action.add_argument(
                    "--limit",
                    type=_limit,
                    default=50,
                    help="show at most N (default 50; 0 = all)",
                )
            else:
                action.add_argument("id", metavar=resource.singular.upper(), help=resource.id_help)
            if name == "download":
                action.add_argument(
                    "--out", help="the file (or folder) to write (default ./SID.<its format>)"
                )
                action.add_argument(
                    "--force", action="store_true", help="replace the file if it exists"
                )
    return added


def server_url(args: argparse.Namespace) -> str:
    url = getattr(args, "url", None) or os.environ.get("PARLOUR_URL") or DEFAULT_URL
    parsed = httpx.URL(url)
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ManageError(f"{url!r} is not an http(s) URL (see --url, PARLOUR_URL)")
    return url


def run(args: argparse.Namespace, credentials: Credentials, out: TextIO | None = None) -> None:
    """Run `parlour <resource> <action>`; `credentials()` is asked only if none were given."""
    resource = RESOURCES[args.command]
    url = server_url(args)
    sid, token = getattr(args, "account_sid", None), getattr(args, "auth_token", None)
    if (sid is None) != (token is None):
        raise ManageError("give both --account-sid and --auth-token, or neither")
    if sid is None or token is None:
        sid, token = credentials()
    api = Api(url, sid, token)
    try:
        handler, _ = ACTIONS[args.action]
        handler(Session(api, args, resource, out if out is not None else sys.stdout))
    finally:
        api.close()
