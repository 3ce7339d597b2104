"""Credentials, settings and the per-account storage resolver, on the in-memory store with
real files (no network): sealing, checks, plans, encryption, and a recording recovered
after a crash into its planned, encrypted storage."""

from __future__ import annotations

import base64
from dataclasses import replace
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from cryptography.hazmat.primitives import padding, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric import padding as asym_padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from parlour.domain import errors
from parlour.domain.accounts import Account
from parlour.domain.media_settings import AwsCredential, CredentialType, MediaKind, MediaSettings
from parlour.domain.paging import PageRequest
from parlour.domain.recordings import Recording, RecordingResult, RecordingStatus
from parlour.domain.sids import AccountSid, ParticipantSid, RoomSid, new_sid
from parlour.recording import LocalStorage
from parlour.recording.encryption import EncryptingStorage
from parlour.services.media_settings import (
    CredentialService,
    MediaSettingsService,
    SecretBox,
    load_public_key,
)
from parlour.services.media_storage import MediaPlan, MediaStorageResolver, StorageUnavailable
from parlour.services.recordings import RecordingService
from parlour.store.memory import MemoryStore
from parlour.testing import FakeClock
from tests.s3_support import rsa_key_pair
from tests.unit.services.fakes import EventLog, opus_recording

SECRET = b"s" * 32


async def account(store: MemoryStore, clock: FakeClock) -> AccountSid:
    sid = AccountSid(new_sid("AC"))
    await store.insert_account(Account(sid, "t", "h" * 64, clock.now(), clock.now()))
    return sid


def test_secret_box_binds_the_secret_to_its_credential_and_server() -> None:
    box = SecretBox(SECRET)
    sealed = box.seal("wJalrXUtnFEMI/K7MDENG", "CR1")
    assert "wJalr" not in sealed and sealed.startswith("v1:")
    assert box.unseal(sealed, "CR1") == "wJalrXUtnFEMI/K7MDENG"
    for other, sid in ((box, "CR2"), (SecretBox(b"t" * 32), "CR1")):
        with pytest.raises(ValueError):
            other.unseal(sealed, sid)
    with pytest.raises(ValueError):
        box.unseal("v2:" + sealed[3:], "CR1")


def test_public_keys_must_be_rsa_2048() -> None:
    _, pem = rsa_key_pair()
    assert load_public_key(pem).key_size == 2048
    ec_pem = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    for bad in (ec_pem, rsa_key_pair(1024)[1], "garbage"):
        with pytest.raises(errors.InvalidParameterError):
            load_public_key(bad)


class MediaWorld(NamedTuple):
    store: MemoryStore
    clock: FakeClock
    acct: AccountSid
    creds: CredentialService
    local: LocalStorage
    resolver: MediaStorageResolver


async def media_world(tmp_path: Path) -> MediaWorld:
    """An account, its credentials service, and a resolver over local files in tmp_path."""
    store, clock = MemoryStore(), FakeClock()
    acct = await account(store, clock)
    creds = CredentialService(store, clock, SecretBox(SECRET))
    local = LocalStorage(tmp_path / "media")
    return MediaWorld(store, clock, acct, creds, local, MediaStorageResolver(store, creds, local))


async def test_credentials_and_settings_checks() -> None:
    store, clock = MemoryStore(), FakeClock()
    acct = await account(store, clock)
    creds = CredentialService(store, clock, SecretBox(SECRET))
    aws = await creds.create_aws(acct, "AKIAIOSFODNN7EXAMPLE:wJalrXUtnFEMI/K7MDENG", "w", acct)
    assert isinstance(aws, AwsCredential)
    assert creds.secret_of(aws) == "wJalrXUtnFEMI/K7MDENG"
    _, pem = rsa_key_pair()
    key = await creds.create_public_key(acct, pem, None)
    with pytest.raises(errors.NotFoundError):
        await creds.get(acct, CredentialType.AWS, key.sid)
    with pytest.raises(errors.NotFoundError):
        await creds.rename(acct, CredentialType.PUBLIC_KEY, "CRnope", "x")
    for bad_key in (None, "x" * 20000):
        with pytest.raises(errors.InvalidParameterError):
            await creds.create_public_key(acct, bad_key, None)
    page = await creds.find(acct, CredentialType.PUBLIC_KEY, PageRequest())
    assert [c.sid for c in page.items] == [key.sid]

    probed: list[MediaSettings] = []

    async def probe(settings: MediaSettings) -> None:
        probed.append(settings)

    service = MediaSettingsService(store, clock, probe, s3_endpoints=["http://minio:9000/", " "])
    s3 = {"aws_credentials_sid": aws.sid, "aws_storage_enabled": True}
    ok = await service.update(
        acct, MediaKind.RECORDINGS, friendly_name="a", aws_s3_url="http://minio:9000/b1b/p", **s3
    )
    assert ok.s3_location is not None and probed == [ok]
    with pytest.raises(errors.InvalidParameterError):
        await service.update(
            acct, MediaKind.RECORDINGS, friendly_name="a", aws_s3_url="http://other:9000/bkt"
        )
    with pytest.raises(errors.InvalidParameterError):
        await service.update(acct, MediaKind.RECORDINGS, friendly_name=None)
    # The URL already set stays allowed; AWS hosts always are.
    again = await service.update(acct, MediaKind.RECORDINGS, friendly_name="b")
    assert again.aws_s3_url == "http://minio:9000/b1b/p"
    assert (await service.get(acct, MediaKind.COMPOSITIONS)).friendly_name is None
    await creds.delete(acct, CredentialType.AWS, aws.sid)
    with pytest.raises(errors.InvalidParameterError):
        await service.update(acct, MediaKind.RECORDINGS, friendly_name="c")  # CR is gone


def leftovers(tmp_path: Path, source: Path) -> list[Path]:
    """The plain source and any encryption scratch file left behind."""
    return [p for p in (source, *tmp_path.glob("*.enc")) if p.exists()]


def decrypt(private_key: Any, data: bytes, metadata: dict[str, str]) -> bytes:
    content_key = private_key.decrypt(
        base64.b64decode(metadata["x-amz-key"]), asym_padding.PKCS1v15()
    )
    iv = base64.b64decode(metadata["x-amz-iv"])
    decryptor = Cipher(algorithms.AES(content_key), modes.CBC(iv)).decryptor()
    unpadder = padding.PKCS7(128).unpadder()
    padded = decryptor.update(data) + decryptor.finalize()
    return unpadder.update(padded) + unpadder.finalize()


async def test_resolver_plans_local_encrypted_media(tmp_path: Path) -> None:
    store, clock, acct, creds, local, resolver = await media_world(tmp_path)
    assert await resolver.plan(acct, MediaKind.COMPOSITIONS, "compositions/CJ1.mp4") == MediaPlan()
    assert await resolver.writer(acct, MediaPlan()) is local
    private, pem = rsa_key_pair()
    key = await creds.create_public_key(acct, pem, None)
    await MediaSettingsService(store, clock).update(
        acct,
        MediaKind.COMPOSITIONS,
        friendly_name="enc",
        encryption_enabled=True,
        encryption_key_sid=key.sid,
    )
    plan = await resolver.plan(acct, MediaKind.COMPOSITIONS, "compositions/CJ1.mp4")
    assert plan == MediaPlan(encryption_key_sid=key.sid)
    writer = await resolver.writer(acct, plan)
    assert isinstance(writer, EncryptingStorage)
    source = tmp_path / "CJ1.mp4"
    plain = bytes(range(256)) * 1000 + b"tail"
    source.write_bytes(plain)
    size = await writer.put("compositions/CJ1.mp4", source)
    assert not leftovers(tmp_path, source)
    envelope = writer.envelope
    assert envelope is not None and envelope.plain_size == len(plain)
    assert size == (len(plain) // 16 + 1) * 16
    stored = (tmp_path / "media" / "compositions" / "CJ1.mp4").read_bytes()
    assert decrypt(private, stored, envelope.metadata()) == plain
    assert b"".join([c async for c in writer.open("compositions/CJ1.mp4", 0, 16)]) == stored[:16]
    assert await writer.size("compositions/CJ1.mp4") == size
    assert await writer.delete("compositions/CJ1.mp4")
    # The same in one call, as the composer stores a composition.
    second = tmp_path / "CJ2.mp4"
    second.write_bytes(plain)
    stored_media = await resolver.store(
        acct, MediaKind.COMPOSITIONS, "compositions/CJ2.mp4", second
    )
    assert stored_media.plan == plan and stored_media.size == size
    assert stored_media.envelope is not None and stored_media.envelope.plain_size == len(plain)
    assert resolver.presigned(local, "compositions/CJ2.mp4", 60, "inline", "video/mp4") is None
    await creds.delete(acct, CredentialType.PUBLIC_KEY, key.sid)
    with pytest.raises(StorageUnavailable):
        await resolver.writer(acct, plan)
    with pytest.raises(StorageUnavailable):
        await resolver.storage_at(acct, new_sid("CR"), "http://h:9/bkt/p/RT1.mka")


class RecoveringMedia:
    """A recording adapter whose recovery finds a playable spool file and stores it."""

    def __init__(self, spool: Path) -> None:
        self.spool = spool

    def open_writer(self, recording: Recording, **kw: Any) -> Any:
        raise AssertionError("not used")

    async def recover(self, recording: Recording, *, storage: Any = None) -> RecordingResult:
        path = self.spool / recording.file_name
        path.write_bytes(b"\x1a\x45\xdf\xa3 media")
        size = await storage.put(recording.media_key, path)
        return RecordingResult(duration_ms=1000, size=size, frames=10)


async def test_a_recovered_recording_goes_where_it_was_planned(tmp_path: Path) -> None:
    store, clock, acct, creds, local, resolver = await media_world(tmp_path)
    private, pem = rsa_key_pair()
    key = await creds.create_public_key(acct, pem, None)
    recording = opus_recording(
        acct, RoomSid(new_sid("RM")), ParticipantSid(new_sid("PA")), clock.now()
    )
    await store.insert_recording(replace(recording, encryption_key_sid=key.sid))
    (tmp_path / "spool").mkdir()
    service = RecordingService(
        store,
        clock,
        EventLog(),
        RecoveringMedia(tmp_path / "spool"),
        local,
        media_url_key=b"k" * 32,
        resolver=resolver,
    )
    [done] = await service.recover()
    assert done.status is RecordingStatus.COMPLETED
    assert done.encryption is not None and done.encryption.key_sid == key.sid
    stored = (tmp_path / "media" / recording.media_key).read_bytes()
    assert decrypt(private, stored, done.encryption.metadata()) == b"\x1a\x45\xdf\xa3 media"
