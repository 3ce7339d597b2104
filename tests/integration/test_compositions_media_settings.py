"""CompositionSettings doing what they say, on a real server with a recorded room: the
composed file goes to the account's S3 bucket (moto's S3 server on 127.0.0.1), `/Media`
redirects to a presigned URL, DELETE and erasure remove the object; with encryption the
download decrypts with the private key by Twilio's openssl recipe and ffprobe plays it."""

from __future__ import annotations

import json
import subprocess
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from twilio.rest import Client

from parlour.testing import ServerThread
from tests.helpers import Account, new_account
from tests.integration.recording_support import wait_until
from tests.integration.test_recordings_media_settings import (
    client_for,
    record_room,
    twilio_openssl_recipe,
)
from tests.s3_support import ACCESS_KEY, SECRET_KEY, S3Server, rsa_key_pair, s3

pytestmark = [pytest.mark.integration, pytest.mark.slow]

__all__ = ["s3"]  # the fixture

GRID = {"grid": {"video_sources": ["*"]}}
MP4_BOX = b"ftyp"  # an MP4 file's first box, at offset 4


@pytest.fixture(scope="module")
def server(s3: S3Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    with ServerThread(
        tmp_path_factory.mktemp("parlour-comp-s3"),
        s3_endpoints=s3.endpoint,
        idle_sweep_seconds=0.05,
        webhook_allow_private=True,
    ) as srv:
        yield srv


@dataclass
class Room:
    account: Account
    client: Client
    room_sid: str
    bucket: str
    aws_sid: str
    key_sid: str
    private_key: rsa.RSAPrivateKey


@pytest.fixture(scope="module")
def room(server: ServerThread, s3: S3Server) -> Room:
    return recorded_room(server, s3)


def recorded_room(server: ServerThread, s3: S3Server) -> Room:
    """A new account's recorded room (recordings local and plain), an AWS credential, a key."""
    account = new_account(server)
    client = client_for(server, account)
    recordings = record_room(server, account, client)
    bucket = s3.new_bucket()
    aws = client.accounts.v1.credentials.aws.create(
        credentials=f"{ACCESS_KEY}:{SECRET_KEY}", friendly_name="writer"
    )
    private, pem = rsa_key_pair()
    key = client.accounts.v1.credentials.public_key.create(public_key=pem)
    room_sid = recordings[0].grouping_sids["room_sid"]
    return Room(account, client, room_sid, bucket, aws.sid, key.sid, private)


def settings(room: Room, s3: S3Server, *, bucket: bool, encrypted: bool) -> None:
    room.client.video.v1.composition_settings().create(
        friendly_name="compositions",
        aws_credentials_sid=room.aws_sid,
        aws_s3_url=f"{s3.endpoint}/{room.bucket}/composed",
        aws_storage_enabled=bucket,
        encryption_key_sid=room.key_sid,
        encryption_enabled=encrypted,
    )


def compose(room: Room) -> Any:
    created = room.client.video.v1.compositions.create(
        room_sid=room.room_sid, video_layout=GRID, audio_sources=["*"], format="mp4"
    )

    def done() -> Any:
        c = room.client.video.v1.compositions(created.sid).fetch()
        return c if c.status in ("completed", "failed") else None

    finished = wait_until(done, timeout=180)
    assert finished.status == "completed", finished
    return finished


def redirect(server: ServerThread, room: Room, sid: str) -> str:
    auth = (room.account.sid, room.account.auth_token)
    with httpx.Client(base_url=server.base_url, auth=auth) as http:
        reply = http.get(f"/v1/Compositions/{sid}/Media")
    assert reply.status_code == 302
    assert reply.json() == {"redirect_to": reply.headers["location"]}
    return str(reply.headers["location"])


def probe(path: Path) -> set[str]:
    """The codecs ffprobe reads in the file."""
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-of", "json", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    return {s["codec_name"] for s in json.loads(out.stdout)["streams"]}


def local_file(server: ServerThread, sid: str) -> Path:
    return server.parlour.config.data_dir / "media" / "compositions" / f"{sid}.mp4"


def test_composition_goes_to_the_bucket_and_delete_removes_it(
    room: Room, server: ServerThread, s3: S3Server, tmp_path: Path
) -> None:
    settings(room, s3, bucket=True, encrypted=False)
    done = compose(room)
    key = f"composed/{done.sid}.mp4"
    assert key in s3.keys(room.bucket)
    assert done.media_external_location == f"{s3.endpoint}/{room.bucket}/{key}"
    assert not local_file(server, done.sid).exists()
    target = redirect(server, room, done.sid)
    assert target.startswith(f"{s3.endpoint}/{room.bucket}/{key}?")
    with httpx.Client() as anonymous:  # a presigned URL: no credentials
        reply = anonymous.get(target)
    assert reply.status_code == 200
    assert len(reply.content) == done.size
    assert reply.headers["content-type"] == "video/mp4"
    assert reply.headers["content-disposition"] == f'attachment; filename="{done.sid}.mp4"'
    file = tmp_path / f"{done.sid}.mp4"
    file.write_bytes(reply.content)
    assert probe(file) == {"h264", "aac"}

    room.client.video.v1.compositions(done.sid).delete()
    assert key not in s3.keys(room.bucket)
    assert room.client.video.v1.compositions(done.sid).fetch().status == "deleted"
    auth = (room.account.sid, room.account.auth_token)
    with httpx.Client(base_url=server.base_url, auth=auth) as http:
        assert http.get(f"/v1/Compositions/{done.sid}/Media").status_code == 404


@pytest.mark.parametrize("in_bucket", [True, False], ids=["in-bucket", "here"])
def test_encrypted_composition_decrypts_with_twilios_recipe(
    in_bucket: bool, room: Room, server: ServerThread, s3: S3Server, tmp_path: Path
) -> None:
    settings(room, s3, bucket=in_bucket, encrypted=True)
    done = compose(room)
    key = f"composed/{done.sid}.mp4"
    assert (key in s3.keys(room.bucket)) is in_bucket
    assert local_file(server, done.sid).exists() is not in_bucket
    if not in_bucket:
        assert done.media_external_location is None
        assert MP4_BOX not in local_file(server, done.sid).read_bytes()[:16]  # ciphertext
    target = redirect(server, room, done.sid)
    assert target.startswith(s3.endpoint if in_bucket else f"{server.base_url}/media/")
    with httpx.Client() as anonymous:
        reply = anonymous.get(target)
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "application/octet-stream"
    assert reply.headers["x-amz-meta-x-amz-matdesc"] == "{}"
    encrypted = reply.content
    assert len(encrypted) == done.size and len(encrypted) % 16 == 0
    assert MP4_BOX not in encrypted[:16]
    plain = twilio_openssl_recipe(room.private_key, encrypted, reply.headers, tmp_path)
    assert plain[4:8] == MP4_BOX
    assert int(reply.headers["x-amz-meta-x-amz-unencrypted-content-length"]) == len(plain)
    file = tmp_path / f"{done.sid}.mp4"
    file.write_bytes(plain)
    assert probe(file) == {"h264", "aac"}


def test_settings_changed_later_do_not_move_a_composition_and_erase_removes_it(
    room: Room, server: ServerThread, s3: S3Server, tmp_path: Path
) -> None:
    """A composition stays where it was stored; export reads it there, erasure deletes it
    (the CLI's `PrivacyService`)."""
    from parlour.cli import _privacy

    settings(room, s3, bucket=True, encrypted=False)
    done = compose(room)
    key = f"composed/{done.sid}.mp4"
    assert key in s3.keys(room.bucket)
    settings(room, s3, bucket=False, encrypted=False)
    assert redirect(server, room, done.sid).startswith(s3.endpoint)

    parlour = server.parlour
    privacy = _privacy(parlour.store, parlour.config)
    archive = tmp_path / "export.zip"
    exported = server.call(privacy.export(room.account.sid, None, archive))
    assert f"media/{done.sid}.mp4" in exported.media_files
    with zipfile.ZipFile(archive) as z:
        assert z.read(f"media/{done.sid}.mp4")[4:8] == MP4_BOX
    summary = server.call(privacy.erase(room.account.sid, None))
    assert done.sid in summary.media_deleted
    assert key not in s3.keys(room.bucket)
    assert not [k for k in s3.keys(room.bucket) if k.endswith(".mp4")]


def test_retention_sweeps_the_composition_from_the_bucket(
    server: ServerThread, s3: S3Server
) -> None:
    """Recording retention deletes compositions where they are: the account's bucket."""
    import datetime as dt

    from parlour.domain.ports import RetentionPolicy
    from parlour.domain.sids import AccountSid
    from parlour.services.retention import RetentionService
    from parlour.testing import FakeClock

    swept = recorded_room(server, s3)
    settings(swept, s3, bucket=True, encrypted=False)
    done = compose(swept)
    key = f"composed/{done.sid}.mp4"
    assert key in s3.keys(swept.bucket)
    parlour = server.parlour
    never = RetentionPolicy(identity_days=None, recording_days=None, callback_days=None)
    clock = FakeClock(dt.datetime.now(dt.UTC))
    clock.advance(2 * 86400)
    retention = RetentionService(
        parlour.store,
        clock,
        never,
        storage=parlour.asgi.state.api.media_storage.local,
        resolver=parlour.asgi.state.api.media_storage,
    )

    async def sweep() -> list[str]:
        await parlour.store.set_retention(
            AccountSid(swept.account.sid),
            RetentionPolicy(identity_days=None, recording_days=1, callback_days=None),
            clock.now(),
        )
        return (await retention.sweep()).compositions_deleted

    assert server.call(sweep()) == [done.sid]
    assert key not in s3.keys(swept.bucket)
    assert swept.client.video.v1.compositions(done.sid).fetch().status == "deleted"
