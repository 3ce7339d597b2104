"""RecordingSettings, CompositionSettings and the Accounts API credentials they point at,
through the official `twilio` package (base URLs only changed) and plain HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from parlour.testing import ServerThread
from tests.compat.twilio_client import client_for
from tests.helpers import Account, new_account
from tests.s3_support import ACCESS_KEY, SECRET_KEY, S3Server, rsa_key_pair, s3

pytestmark = pytest.mark.integration

__all__ = ["s3"]  # the fixture


@pytest.fixture(scope="module")
def server(s3: S3Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    """A server of the module's own that accepts moto's endpoint in `AwsS3Url`."""
    with ServerThread(
        tmp_path_factory.mktemp("parlour-settings"),
        s3_endpoints=s3.endpoint,
        idle_sweep_seconds=0.05,
        webhook_allow_private=True,
    ) as srv:
        yield srv


def rest_error(call: object) -> TwilioRestException:
    with pytest.raises(TwilioRestException) as info:
        call()  # type: ignore[operator]
    return info.value


def test_aws_credentials_lifecycle_never_shows_the_secret(
    client: Client, server: ServerThread, account: Account, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    aws = client.accounts.v1.credentials.aws
    made = aws.create(credentials=f"{ACCESS_KEY}:{SECRET_KEY}", friendly_name="bucket writer")
    assert made.sid.startswith("CR") and len(made.sid) == 34
    assert made.account_sid == account.sid
    assert made.friendly_name == "bucket writer"
    assert made.url == f"{server.base_url}/v1/Credentials/AWS/{made.sid}"
    assert made.date_created is not None
    fetched = aws(made.sid).fetch()
    assert (fetched.sid, fetched.friendly_name) == (made.sid, "bucket writer")
    renamed = aws(made.sid).update(friendly_name="renamed")
    assert renamed.friendly_name == "renamed"
    assert aws(made.sid).update().friendly_name == "renamed"  # no FriendlyName: unchanged
    assert [c.sid for c in aws.list()] == [made.sid]
    with httpx.Client(base_url=server.base_url, auth=(account.sid, account.auth_token)) as http:
        for path in ("/v1/Credentials/AWS", f"/v1/Credentials/AWS/{made.sid}"):
            body = http.get(path).text
            assert SECRET_KEY not in body and SECRET_KEY.replace("/", "\\/") not in body
        listed = http.get("/v1/Credentials/AWS").json()
        assert listed["meta"]["key"] == "credentials"
    # Neither the database nor the logs hold the secret in clear.
    data_dir = server.parlour.config.data_dir
    for name in ("parlour.db", "parlour.db-wal"):
        path = data_dir / name
        assert not path.exists() or SECRET_KEY.encode() not in path.read_bytes()
    assert all(SECRET_KEY not in r.getMessage() for r in caplog.records)
    assert aws(made.sid).delete() is True
    assert rest_error(aws(made.sid).fetch).status == 404
    assert aws.list() == []


def test_aws_credentials_validation(client: Client) -> None:
    aws = client.accounts.v1.credentials.aws
    for bad in ("", "no-colon", "AK:short", f"{ACCESS_KEY}:has space in it!"):
        error = rest_error(lambda bad=bad: aws.create(credentials=bad))
        assert error.status == 400
        assert error.code in (20001, 70106)
    error = rest_error(lambda: aws.create(credentials="bad"))
    assert error.code == 70106
    error = rest_error(
        lambda: aws.create(credentials=f"{ACCESS_KEY}:{SECRET_KEY}", friendly_name="x" * 65)
    )
    assert (error.status, error.code) == (400, 20001)
    other = "AC" + "0" * 32
    error = rest_error(
        lambda: aws.create(credentials=f"{ACCESS_KEY}:{SECRET_KEY}", account_sid=other)
    )
    assert error.code == 20001


def test_public_keys(client: Client, server: ServerThread) -> None:
    keys = client.accounts.v1.credentials.public_key
    _, pem = rsa_key_pair()
    made = keys.create(public_key=pem, friendly_name="recordings key")
    assert made.sid.startswith("CR")
    assert made.url == f"{server.base_url}/v1/Credentials/PublicKeys/{made.sid}"
    assert keys(made.sid).fetch().friendly_name == "recordings key"
    assert keys(made.sid).update(friendly_name="k2").friendly_name == "k2"
    assert [k.sid for k in keys.list()] == [made.sid]
    # An AWS credential is not a public key, and the other way round.
    assert rest_error(client.accounts.v1.credentials.aws(made.sid).fetch).status == 404
    for bad in ("not a key", pem.replace("MII", "XXX"), rsa_key_pair(1024)[1]):
        error = rest_error(lambda bad=bad: keys.create(public_key=bad))
        assert (error.status, error.code) == (400, 20001)
    assert keys(made.sid).delete() is True
    assert keys.list() == []


def test_settings_default_then_set(client: Client, server: ServerThread, account: Account) -> None:
    for settings, path in (
        (client.video.v1.recording_settings, "RecordingSettings"),
        (client.video.v1.composition_settings, "CompositionSettings"),
    ):
        current = settings().fetch()
        assert current.account_sid == account.sid
        assert current.friendly_name is None
        assert current.aws_storage_enabled is False and current.encryption_enabled is False
        assert current.aws_credentials_sid is None and current.encryption_key_sid is None
        assert current.url == f"{server.base_url}/v1/{path}/Default"
        _, pem = rsa_key_pair()
        key = client.accounts.v1.credentials.public_key.create(public_key=pem)
        made = settings().create(
            friendly_name="Upload encrypted", encryption_enabled=True, encryption_key_sid=key.sid
        )
        assert made.friendly_name == "Upload encrypted"
        assert made.encryption_enabled is True and made.encryption_key_sid == key.sid
        fetched = settings().fetch()
        assert (fetched.encryption_enabled, fetched.encryption_key_sid) == (True, key.sid)
        # Parameters not given keep their values; FriendlyName is required every time.
        again = settings().create(friendly_name="renamed")
        assert again.encryption_enabled is True and again.friendly_name == "renamed"
        off = settings().create(friendly_name="off", encryption_enabled=False)
        assert off.encryption_enabled is False


def test_settings_validation(client: Client, account: Account, server: ServerThread) -> None:
    settings = client.video.v1.recording_settings
    aws = client.accounts.v1.credentials.aws.create(credentials=f"{ACCESS_KEY}:{SECRET_KEY}")
    _, pem = rsa_key_pair()
    key = client.accounts.v1.credentials.public_key.create(public_key=pem)
    stranger = client_for(server, new_account(server))
    foreign = stranger.accounts.v1.credentials.public_key.create(public_key=pem)
    unknown = "CR" + "1" * 32
    cases = [
        {"friendly_name": "s3", "aws_storage_enabled": True},
        {"friendly_name": "s3", "aws_storage_enabled": True, "aws_credentials_sid": aws.sid},
        {"friendly_name": "s3", "aws_storage_enabled": True, "aws_s3_url": "https://b/p"},
        {"friendly_name": "enc", "encryption_enabled": True},
        {"friendly_name": "enc", "encryption_enabled": True, "encryption_key_sid": unknown},
        {"friendly_name": "enc", "encryption_enabled": True, "encryption_key_sid": foreign.sid},
        {"friendly_name": "enc", "encryption_enabled": True, "encryption_key_sid": aws.sid},
        {"friendly_name": "x", "aws_credentials_sid": key.sid},
        {"friendly_name": "x", "aws_s3_url": "ftp://bucket/path"},
        {"friendly_name": "x", "aws_s3_url": "https://127.0.0.1:9000/"},
        # An S3-compatible endpoint the operator did not enable (PARLOUR_S3_ENDPOINTS).
        {"friendly_name": "x", "aws_s3_url": "http://169.254.169.254/latest/meta-data"},
        {"friendly_name": "x", "aws_s3_url": "http://10.0.0.1:9000/bucket/x"},
    ]
    for params in cases:
        error = rest_error(lambda params=params: settings().create(**params))
        assert (error.status, error.code) == (400, 20001), params
    assert settings().fetch().friendly_name is None  # nothing was saved
    with httpx.Client(base_url=server.base_url, auth=(account.sid, account.auth_token)) as http:
        reply = http.post("/v1/RecordingSettings/Default", data={"AwsStorageEnabled": "true"})
        assert reply.status_code == 400 and reply.json()["code"] == 20001
        reply = http.post(
            "/v1/RecordingSettings/Default", data={"FriendlyName": "x", "EncryptionKeySid": "CR1"}
        )
        assert reply.status_code == 400
        assert http.get("/v1/RecordingSettings/Default").status_code == 200
        assert http.get("/v1/Credentials/AWS/CRnope").status_code == 404
    with httpx.Client(base_url=server.base_url) as anonymous:
        for path in ("/v1/RecordingSettings/Default", "/v1/Credentials/AWS"):
            assert anonymous.get(path).status_code == 401


def test_s3_settings_write_a_test_object(client: Client, s3: S3Server) -> None:
    bucket = s3.new_bucket()
    aws = client.accounts.v1.credentials.aws.create(credentials=f"{ACCESS_KEY}:{SECRET_KEY}")
    url = f"{s3.endpoint}/{bucket}/video/recordings"
    made = client.video.v1.recording_settings().create(
        friendly_name="to my bucket",
        aws_credentials_sid=aws.sid,
        aws_s3_url=url,
        aws_storage_enabled=True,
    )
    assert (made.aws_storage_enabled, made.aws_s3_url, made.aws_credentials_sid) == (
        True,
        url,
        aws.sid,
    )
    assert s3.keys(bucket) == ["video/recordings/parlour-write-test.txt"]
    missing = f"{s3.endpoint}/no-such-bucket-here/x"
    error = rest_error(
        lambda: client.video.v1.composition_settings().create(
            friendly_name="nowhere",
            aws_credentials_sid=aws.sid,
            aws_s3_url=missing,
            aws_storage_enabled=True,
        )
    )
    assert (error.status, error.code) == (400, 20001)
    assert client.video.v1.composition_settings().fetch().aws_storage_enabled is False


def test_settings_are_per_account(client: Client, server: ServerThread) -> None:
    client.video.v1.recording_settings().create(friendly_name="mine")
    other = client_for(server, new_account(server))
    assert other.video.v1.recording_settings().fetch().friendly_name is None
    mine = client.accounts.v1.credentials.aws.create(credentials=f"{ACCESS_KEY}:{SECRET_KEY}")
    assert other.accounts.v1.credentials.aws.list() == []
    assert rest_error(other.accounts.v1.credentials.aws(mine.sid).fetch).status == 404
    assert rest_error(other.accounts.v1.credentials.aws(mine.sid).delete).status == 404
