"""`AwsS3Url` forms, AWS credential shapes, settings checks and the envelope's headers."""

from __future__ import annotations

import pytest

from parlour.domain import errors
from parlour.domain.media_settings import (
    Envelope,
    MediaKind,
    MediaSettings,
    S3Location,
    check_friendly_name,
    parse_aws_credentials,
)
from parlour.domain.sids import AccountSid
from tests.store.factories import T0


@pytest.mark.parametrize(
    ("url", "bucket", "prefix", "endpoint", "region"),
    [
        ("https://my-bucket.s3.amazonaws.com/my/path/", "my-bucket", "my/path", None, "us-east-1"),
        ("https://my-bucket.s3-us-east-2.amazonaws.com", "my-bucket", "", None, "us-east-2"),
        ("https://b.example.s3.eu-west-1.amazonaws.com/x", "b.example", "x", None, "eu-west-1"),
        (
            "https://documentation-example-twilio-bucket/recordings",
            "documentation-example-twilio-bucket",
            "recordings",
            None,
            "us-east-1",
        ),
        ("http://127.0.0.1:9000/media/rec", "media", "rec", "http://127.0.0.1:9000", "us-east-1"),
        ("https://minio.internal/media", "media", "", "https://minio.internal", "us-east-1"),
    ],
)
def test_s3_url_forms(
    url: str, bucket: str, prefix: str, endpoint: str | None, region: str
) -> None:
    location = S3Location.parse(url)
    assert (location.bucket, location.prefix, location.endpoint_url, location.region) == (
        bucket,
        prefix,
        endpoint,
        region,
    )
    key = location.key("recordings/RTabc.mka")
    assert key == (f"{prefix}/RTabc.mka" if prefix else "RTabc.mka")
    again = S3Location.parse(location.object_url(key))
    assert (again.bucket, again.endpoint_url, again.region) == (bucket, endpoint, region)
    assert again.prefix == key


@pytest.mark.parametrize(
    "url",
    [
        "ftp://bucket/path",
        "https://127.0.0.1:9000/",
        "https://host.example/UPPER",
        "https://b.s3.amazonaws.com/a?x=1",
        "https://user:pw@b.s3.amazonaws.com/a",
        "https://b.s3.amazonaws.com/a b",
        "https://b.s3.amazonaws.com/a//b",
        "https://" + "b" * 1100,
        "not a url",
    ],
)
def test_bad_s3_urls(url: str) -> None:
    with pytest.raises(errors.InvalidParameterError):
        S3Location.parse(url)


def test_aws_credentials_shapes() -> None:
    assert parse_aws_credentials(
        "AKIAIOSFODNN7EXAMPLE:wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    ) == (
        "AKIAIOSFODNN7EXAMPLE",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    )
    assert parse_aws_credentials("minioadmin:minioadmin") == ("minioadmin", "minioadmin")
    with pytest.raises(errors.InvalidParameterError) as missing:
        parse_aws_credentials(None)
    assert missing.value.code == errors.Code.INVALID_PARAMETER
    for bad in ("nocolon", "AK:short", "ok-key:has space!"):
        with pytest.raises(errors.InvalidParameterError) as info:
            parse_aws_credentials(bad)
        assert info.value.code == errors.Code.INVALID_AWS_CREDENTIALS


def test_friendly_name() -> None:
    assert check_friendly_name(None, required=False, limit=3) is None
    assert check_friendly_name("abc", required=True, limit=3) == "abc"
    for value, required in (("", True), ("abcd", False)):
        with pytest.raises(errors.InvalidParameterError):
            check_friendly_name(value, required=required, limit=3)


def test_settings_changes_are_checked() -> None:
    base = MediaSettings(AccountSid("AC" + "0" * 32), MediaKind.RECORDINGS)
    assert base.s3_location is None
    cr = "CR" + "1" * 32
    done = base.changed(
        T0,
        friendly_name="s3",
        aws_credentials_sid=cr,
        aws_s3_url="https://bk1.s3.amazonaws.com/p",
        aws_storage_enabled=True,
    )
    assert done.date_created == T0 and done.s3_location is not None
    assert done.s3_location.bucket == "bk1"
    assert done.changed(T0, aws_storage_enabled=False).s3_location is None
    for changes in (
        {"aws_storage_enabled": True},
        {"aws_storage_enabled": True, "aws_credentials_sid": cr},
        {"encryption_enabled": True},
        {"aws_s3_url": "ftp://x/y"},
    ):
        with pytest.raises(errors.InvalidParameterError):
            base.changed(T0, **changes)


def test_envelope_headers_and_json() -> None:
    envelope = Envelope("CR" + "2" * 32, "a2V5", "aXY=", 42)
    assert envelope.headers() == {
        "x-amz-meta-x-amz-key": "a2V5",
        "x-amz-meta-x-amz-iv": "aXY=",
        "x-amz-meta-x-amz-unencrypted-content-length": "42",
        "x-amz-meta-x-amz-matdesc": "{}",
    }
    assert Envelope.from_json(envelope.to_json()) == envelope


def test_s3_endpoints_setting_from_the_environment() -> None:
    from parlour.config import Config

    assert Config.from_env({}).s3_endpoints is None
    env = {"PARLOUR_S3_ENDPOINTS": "http://minio:9000,https://ceph.internal"}
    assert Config.from_env(env).s3_endpoints == "http://minio:9000,https://ceph.internal"


def test_a_recording_knows_it_is_encrypted() -> None:
    import datetime as dt
    from dataclasses import replace

    from parlour.domain.recordings import Recording, RecordingCodec
    from parlour.domain.sids import ParticipantSid, RecordingSid, RoomSid, TrackSid

    recording = Recording.for_track(
        sid=RecordingSid("RT" + "0" * 32),
        account_sid=AccountSid("AC" + "0" * 32),
        room_sid=RoomSid("RM" + "0" * 32),
        participant_sid=ParticipantSid("PA" + "0" * 32),
        source_sid=TrackSid("MT" + "0" * 32),
        track_name="mic",
        codec=RecordingCodec.OPUS,
        now=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    )
    assert not recording.encrypted
    assert replace(recording, encryption_key_sid="CR" + "1" * 32).encrypted
