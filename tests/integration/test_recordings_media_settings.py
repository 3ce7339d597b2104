"""RecordingSettings doing what they say, on a real server with recorded rooms: media in an
S3 bucket (moto's S3 server on 127.0.0.1), encrypted for the account's RSA key the way
Twilio documents, decrypted here with Twilio's own recipe (openssl, Step 5 of "Encrypting
your Stored Media"), and played by PyAV and ffprobe."""

from __future__ import annotations

import base64
import datetime as dt
import json
import subprocess
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import httpx
import pytest
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.asymmetric import padding as asym_padding
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from twilio.rest import Client

from parlour.testing import ServerThread
from tests.helpers import Account, new_account
from tests.integration.recording_support import Receiver, feed, media_packets, publish, wait_until
from tests.s3_support import ACCESS_KEY, SECRET_KEY, S3Server, private_pem, rsa_key_pair, s3

pytestmark = [pytest.mark.integration, pytest.mark.slow]

__all__ = ["s3"]  # the fixture


@pytest.fixture(scope="module")
def server(s3: S3Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    """A server of the module's own that accepts moto's endpoint in `AwsS3Url`."""
    with ServerThread(
        tmp_path_factory.mktemp("parlour-s3"),
        s3_endpoints=s3.endpoint,
        idle_sweep_seconds=0.05,
        webhook_allow_private=True,
    ) as srv:
        yield srv


SECONDS = 2.0


def client_for(server: ServerThread, account: Account) -> Client:
    client = Client(account.key_sid, account.key_secret, account_sid=account.sid)
    client.video.base_url = server.base_url
    client.accounts.base_url = server.base_url
    return client


@dataclass
class Recorded:
    account: Account
    client: Client
    room_sid: str
    recordings: list[Any]
    bucket: str | None
    private_key: rsa.RSAPrivateKey | None


def record_room(server: ServerThread, account: Account, client: Client) -> list[Any]:
    """A room where alice publishes Opus and VP8 for 2 s; its completed recordings."""
    with Receiver(account.auth_token) as receiver:
        room = client.video.v1.rooms.create(
            record_participants_on_connect=True, status_callback=receiver.url
        )
        tracks = publish(server, account.sid, room.sid, "alice", [("mic", "OPUS"), ("cam", "VP8")])
        streams = [
            (t.tap, media_packets(t.codec, SECONDS, ssrc=4000 + i)) for i, t in enumerate(tracks)
        ]
        feed(server, streams)  # type: ignore[arg-type]
        client.video.v1.rooms(room.sid).update(status="completed")
        wait_until(lambda: len(receiver.events("recording-completed")) == 2)
        # Every callback delivered before the receiver goes (erasure waits for pending ones).
        wait_until(lambda: receiver.events("room-ended") and receiver.events("participant-disc"))
        pending = server.parlour.store.pending_callback_deliveries
        wait_until(lambda: not server.call(pending()))
    listed = client.video.v1.recordings.list(grouping_sid=[room.sid])
    assert {r.status for r in listed} == {"completed"}
    return listed


def setup(server: ServerThread, s3: S3Server, *, bucket: bool, encrypted: bool) -> Recorded:
    account = new_account(server)
    client = client_for(server, account)
    params: dict[str, Any] = {"friendly_name": "media settings"}
    name = None
    if bucket:
        name = s3.new_bucket()
        aws = client.accounts.v1.credentials.aws.create(
            credentials=f"{ACCESS_KEY}:{SECRET_KEY}", friendly_name="writer"
        )
        params |= {
            "aws_credentials_sid": aws.sid,
            "aws_s3_url": f"{s3.endpoint}/{name}/video",
            "aws_storage_enabled": True,
        }
    private = None
    if encrypted:
        private, pem = rsa_key_pair()
        key = client.accounts.v1.credentials.public_key.create(public_key=pem)
        params |= {"encryption_key_sid": key.sid, "encryption_enabled": True}
    client.video.v1.recording_settings().create(**params)
    room_recordings = record_room(server, account, client)
    return Recorded(
        account,
        client,
        room_recordings[0].grouping_sids["room_sid"],
        room_recordings,
        name,
        private,
    )


@pytest.fixture(scope="module")
def in_bucket(server: ServerThread, s3: S3Server) -> Recorded:
    return setup(server, s3, bucket=True, encrypted=False)


@pytest.fixture(scope="module")
def encrypted_in_bucket(server: ServerThread, s3: S3Server) -> Recorded:
    return setup(server, s3, bucket=True, encrypted=True)


@pytest.fixture(scope="module")
def encrypted_here(server: ServerThread, s3: S3Server) -> Recorded:
    return setup(server, s3, bucket=False, encrypted=True)


def redirect(server: ServerThread, recorded: Recorded, sid: str) -> str:
    auth = (recorded.account.sid, recorded.account.auth_token)
    with httpx.Client(base_url=server.base_url, auth=auth) as http:
        reply = http.get(f"/v1/Recordings/{sid}/Media")
    assert reply.status_code == 302
    assert reply.json() == {"redirect_to": reply.headers["location"]}
    return reply.headers["location"]


def play(path: Path, codec: str) -> int:
    """Decode every frame with PyAV (and check ffprobe reads it); the number of frames."""
    with av.open(str(path)) as container:
        [stream] = container.streams
        assert stream.codec_context.name == codec
        frames = sum(1 for _ in container.decode(stream))
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-of", "json", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(probe.stdout)["streams"][0]["codec_name"] == codec
    return frames


CODECS = {"OPUS": "opus", "VP8": "vp8"}
EBML = b"\x1a\x45\xdf\xa3"  # the first bytes of every Matroska file


def test_media_goes_to_the_bucket(
    in_bucket: Recorded, server: ServerThread, s3: S3Server, tmp_path: Path
) -> None:
    assert in_bucket.bucket is not None
    keys = s3.keys(in_bucket.bucket)
    for rec in in_bucket.recordings:
        key = f"video/{rec.sid}.{rec.container_format}"
        assert key in keys
        assert rec.media_external_location == f"{s3.endpoint}/{in_bucket.bucket}/{key}"
        local = (
            server.parlour.config.data_dir
            / "media"
            / "recordings"
            / f"{rec.sid}.{rec.container_format}"
        )
        assert not local.exists()
        target = redirect(server, in_bucket, rec.sid)
        assert target.startswith(f"{s3.endpoint}/{in_bucket.bucket}/{key}?")
        with httpx.Client() as anonymous:  # a presigned URL: no credentials
            reply = anonymous.get(target)
        assert reply.status_code == 200
        assert len(reply.content) == rec.size
        assert reply.headers["content-disposition"] == (
            f'attachment; filename="{rec.sid}.{rec.container_format}"'
        )
        file = tmp_path / f"{rec.sid}.{rec.container_format}"
        file.write_bytes(reply.content)
        assert play(file, CODECS[rec.codec]) > 10


def test_deleting_a_recording_deletes_its_object(
    in_bucket: Recorded, server: ServerThread, s3: S3Server
) -> None:
    assert in_bucket.bucket is not None
    rec = in_bucket.recordings[0]
    key = f"video/{rec.sid}.{rec.container_format}"
    assert key in s3.keys(in_bucket.bucket)
    assert in_bucket.client.video.v1.recordings(rec.sid).delete() is True
    assert key not in s3.keys(in_bucket.bucket)
    assert in_bucket.client.video.v1.recordings(rec.sid).fetch().status == "deleted"
    auth = (in_bucket.account.sid, in_bucket.account.auth_token)
    with httpx.Client(base_url=server.base_url, auth=auth) as http:
        assert http.get(f"/v1/Recordings/{rec.sid}/Media").status_code == 404


def twilio_openssl_recipe(
    private_key: rsa.RSAPrivateKey, encrypted: bytes, headers: httpx.Headers, workdir: Path
) -> bytes:
    """Step 5.3 and 5.4 of Twilio's guide, with the openssl command line."""
    (workdir / "private_key.pem").write_bytes(private_pem(private_key))
    (workdir / "key.bin.enc").write_bytes(base64.b64decode(headers["x-amz-meta-x-amz-key"]))
    iv = base64.b64decode(headers["x-amz-meta-x-amz-iv"])
    (workdir / "encrypted").write_bytes(encrypted)
    subprocess.run(
        [
            "openssl",
            "rsautl",
            "-decrypt",
            "-inkey",
            "private_key.pem",
            "-in",
            "key.bin.enc",
            "-out",
            "key.bin",
        ],
        cwd=workdir,
        check=True,
        capture_output=True,
    )
    key = (workdir / "key.bin").read_bytes()
    assert len(key) == 32  # a 256-bit one-time key
    subprocess.run(
        [
            "openssl",
            "enc",
            "-d",
            "-aes-256-cbc",
            "-in",
            "encrypted",
            "-out",
            "decrypted",
            "-K",
            key.hex().upper(),
            "-iv",
            iv.hex().upper(),
        ],
        cwd=workdir,
        check=True,
        capture_output=True,
    )
    return (workdir / "decrypted").read_bytes()


def java_recipe(private_key: rsa.RSAPrivateKey, encrypted: bytes, headers: httpx.Headers) -> bytes:
    """What twilio-recordings-decrypter's Java program does: `RSA` (PKCS #1 v1.5) for the
    key, then `AES/CBC/PKCS5Padding`."""
    key = private_key.decrypt(
        base64.b64decode(headers["x-amz-meta-x-amz-key"]), asym_padding.PKCS1v15()
    )
    iv = base64.b64decode(headers["x-amz-meta-x-amz-iv"])
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    padded = decryptor.update(encrypted) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    return unpadder.update(padded) + unpadder.finalize()


@pytest.mark.parametrize("where", ["encrypted_in_bucket", "encrypted_here"])
def test_encrypted_media_decrypts_with_twilios_recipe(
    where: str, request: pytest.FixtureRequest, server: ServerThread, tmp_path: Path
) -> None:
    recorded: Recorded = request.getfixturevalue(where)
    assert recorded.private_key is not None
    for rec in recorded.recordings:
        target = redirect(server, recorded, rec.sid)
        with httpx.Client() as anonymous:
            reply = anonymous.get(target)
        assert reply.status_code == 200
        assert reply.headers["content-type"] == "application/octet-stream"
        assert reply.headers["x-amz-meta-x-amz-matdesc"] == "{}"
        encrypted = reply.content
        assert len(encrypted) == rec.size and len(encrypted) % 16 == 0
        assert not encrypted.startswith(EBML)  # not Matroska: ciphertext
        workdir = tmp_path / rec.sid
        workdir.mkdir()
        plain = twilio_openssl_recipe(recorded.private_key, encrypted, reply.headers, workdir)
        assert plain.startswith(EBML)
        assert plain == java_recipe(recorded.private_key, encrypted, reply.headers)
        assert int(reply.headers["x-amz-meta-x-amz-unencrypted-content-length"]) == len(plain)
        file = workdir / f"{rec.sid}.{rec.container_format}"
        file.write_bytes(plain)
        assert play(file, CODECS[rec.codec]) > 10
    if recorded.bucket is None:
        media = server.parlour.config.data_dir / "media"
        for rec in recorded.recordings:
            stored = media / "recordings" / f"{rec.sid}.{rec.container_format}"
            assert stored.exists()  # under its usual name, but only ciphertext
            assert not stored.read_bytes().startswith(EBML)
            assert not list((media / "spool").glob(f"{rec.sid}*"))  # no plain or scratch copy


def test_erasure_and_retention_remove_objects_from_the_bucket(
    server: ServerThread, s3: S3Server, tmp_path: Path
) -> None:
    """`parlour privacy erase` (its service, as the CLI wires it) and the retention sweep
    delete media where it is: in the account's bucket."""
    from parlour.cli import _privacy
    from parlour.domain.ports import RetentionPolicy
    from parlour.domain.sids import AccountSid
    from parlour.services.retention import RetentionService
    from parlour.testing import FakeClock

    erased = setup(server, s3, bucket=True, encrypted=False)
    swept = setup(server, s3, bucket=True, encrypted=False)
    parlour = server.parlour
    for recorded in (erased, swept):
        assert recorded.bucket is not None and len(s3.keys(recorded.bucket)) == 3

    privacy = _privacy(parlour.store, parlour.config)
    archive = tmp_path / "export.zip"
    exported = server.call(privacy.export(erased.account.sid, None, archive))
    assert sorted(exported.media_files) == sorted(
        f"media/{r.sid}.{r.container_format}" for r in erased.recordings
    )
    with zipfile.ZipFile(archive) as z:
        for r in erased.recordings:
            assert z.read(f"media/{r.sid}.{r.container_format}").startswith(EBML)
    summary = server.call(privacy.erase(erased.account.sid, None))
    assert sorted(summary.media_deleted) == sorted(r.sid for r in erased.recordings)
    assert erased.bucket is not None
    assert s3.keys(erased.bucket) == ["video/parlour-write-test.txt"]

    account = AccountSid(swept.account.sid)
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
            account,
            RetentionPolicy(identity_days=None, recording_days=1, callback_days=None),
            clock.now(),
        )
        return (await retention.sweep()).recordings_deleted

    assert sorted(server.call(sweep())) == sorted(r.sid for r in swept.recordings)
    assert swept.bucket is not None
    assert s3.keys(swept.bucket) == ["video/parlour-write-test.txt"]
    assert {r.status for r in swept.client.video.v1.recordings.list()} == {"deleted"}


def test_new_settings_apply_to_new_recordings_only_and_a_gone_credential_is_404(
    server: ServerThread, s3: S3Server
) -> None:
    recorded = setup(server, s3, bucket=True, encrypted=False)
    client, rec = recorded.client, recorded.recordings[0]
    # Back to local storage: the bucket's recordings stay where they are.
    client.video.v1.recording_settings().create(friendly_name="local", aws_storage_enabled=False)
    later = record_room(server, recorded.account, client)
    assert {r.media_external_location for r in later} == {None}
    assert redirect(server, recorded, later[0].sid).startswith(f"{server.base_url}/media/")
    assert redirect(server, recorded, rec.sid).startswith(s3.endpoint)
    # Without its credential, the bucket's media cannot be reached: 404, never a 5xx.
    aws_sid = client.video.v1.recording_settings().fetch().aws_credentials_sid
    client.accounts.v1.credentials.aws(aws_sid).delete()
    auth = (recorded.account.sid, recorded.account.auth_token)
    with httpx.Client(base_url=server.base_url, auth=auth) as http:
        assert http.get(f"/v1/Recordings/{rec.sid}/Media").status_code == 404
        assert http.delete(f"/v1/Recordings/{rec.sid}").status_code == 204
        assert http.get(f"/v1/Recordings/{rec.sid}").json()["status"] == "deleted"
