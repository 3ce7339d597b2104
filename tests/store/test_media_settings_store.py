"""Credentials and Recording/CompositionSettings, and where a recording's media is
(memory, SQLite, PostgreSQL: see conftest.py)."""

from __future__ import annotations

from dataclasses import replace

from parlour.domain.media_settings import (
    AwsCredential,
    CredentialType,
    Envelope,
    MediaKind,
    MediaSettings,
    PublicKeyCredential,
)
from parlour.domain.paging import PageRequest
from parlour.domain.ports import Store
from parlour.domain.recordings import Recording, RecordingCodec, RecordingStatus
from parlour.domain.sids import ParticipantSid, RecordingSid, TrackSid, new_sid
from tests.store.factories import T0, at, new_account, new_room


async def test_credentials_per_account_and_type(store: Store) -> None:
    account, other = await new_account(store), await new_account(store)
    aws = AwsCredential(new_sid("CR"), account, "aws", "AKID", "v1:sealed", T0, T0)
    key = PublicKeyCredential(new_sid("CR"), account, None, "-----BEGIN PUBLIC KEY-----", T0, T0)
    foreign = AwsCredential(new_sid("CR"), other, None, "AKID2", "v1:x", T0, T0)
    for c in (aws, key, foreign):
        await store.insert_credential(c)
    assert await store.get_credential(account, aws.sid) == aws
    assert await store.get_credential(account, key.sid) == key
    assert await store.get_credential(account, foreign.sid) is None
    page = await store.list_credentials(account, CredentialType.AWS, PageRequest())
    assert page.items == [aws]
    page = await store.list_credentials(account, CredentialType.PUBLIC_KEY, PageRequest())
    assert page.items == [key]
    renamed = await store.rename_credential(account, aws.sid, "new", at(5))
    assert renamed == replace(aws, friendly_name="new", date_updated=at(5))
    assert await store.rename_credential(other, aws.sid, "x", at(6)) is None
    assert not await store.delete_credential(other, aws.sid)
    assert await store.delete_credential(account, aws.sid)
    assert await store.get_credential(account, aws.sid) is None


async def test_credentials_page_in_order(store: Store) -> None:
    account = await new_account(store)
    made = [
        PublicKeyCredential(new_sid("CR"), account, str(i), "pem", at(i), at(i)) for i in range(5)
    ]
    for c in made:
        await store.insert_credential(c)
    first = await store.list_credentials(account, CredentialType.PUBLIC_KEY, PageRequest(2))
    assert first.items == made[:2] and first.next_token is not None


async def test_media_settings_insert_then_replace(store: Store) -> None:
    account = await new_account(store)
    assert await store.get_media_settings(account, MediaKind.RECORDINGS) is None
    settings = MediaSettings(
        account,
        MediaKind.RECORDINGS,
        friendly_name="s3",
        aws_credentials_sid=new_sid("CR"),
        aws_s3_url="https://bucket.s3.amazonaws.com/path",
        aws_storage_enabled=True,
        date_created=T0,
        date_updated=T0,
    )
    await store.put_media_settings(settings)
    assert await store.get_media_settings(account, MediaKind.RECORDINGS) == settings
    assert await store.get_media_settings(account, MediaKind.COMPOSITIONS) is None
    changed = replace(settings, encryption_enabled=True, encryption_key_sid=new_sid("CR"))
    await store.put_media_settings(replace(changed, date_updated=at(3)))
    got = await store.get_media_settings(account, MediaKind.RECORDINGS)
    assert got == replace(changed, date_updated=at(3))


async def test_recording_keeps_its_media_location_and_envelope(store: Store) -> None:
    room = await new_room(store)
    recording = Recording.for_track(
        sid=RecordingSid(new_sid("RT")),
        account_sid=room.account_sid,
        room_sid=room.sid,
        participant_sid=ParticipantSid(new_sid("PA")),
        source_sid=TrackSid(new_sid("MT")),
        track_name="mic",
        codec=RecordingCodec.OPUS,
        now=T0,
    )
    key_sid = new_sid("CR")
    planned = replace(
        recording,
        media_credentials_sid=new_sid("CR"),
        media_external_location="http://127.0.0.1:9000/bucket/p/RT.mka",
        encryption_key_sid=key_sid,
    )
    await store.insert_recording(planned)
    assert await store.get_recording(room.account_sid, planned.sid) == planned
    done = replace(
        planned.completed(at(3), duration_ms=3000, size=100),
        encryption=Envelope(key_sid, "a2V5", "aXY=", 90),
    )
    assert await store.update_recording(done, expected=RecordingStatus.PROCESSING)
    assert await store.get_recording(room.account_sid, planned.sid) == done
