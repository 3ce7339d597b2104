"""Where recordings and compositions are stored, and how: the Accounts API credentials
(`CR…`), the `RecordingSettings`/`CompositionSettings` singletons, S3 locations and the
encryption envelope. Pure: parsing and validation only.

::

    AwsCredential  (/v1/Credentials/AWS)          PublicKeyCredential (/v1/Credentials/PublicKeys)
          ▲ aws_credentials_sid                         ▲ encryption_key_sid
          └──────────── MediaSettings (per account, kind "recordings" | "compositions")
                           aws_storage_enabled + aws_s3_url  → S3Location (bucket, prefix)
                           encryption_enabled                → Envelope per file

`S3Location` accepts Twilio's forms of `AwsS3Url` and one for self-hosted S3-compatible
stores (docs/compatibility.md, "Media settings"):

- `https://bucket.s3.amazonaws.com/path`, `https://bucket.s3-us-east-2.amazonaws.com/path`,
  `https://bucket.s3.us-east-2.amazonaws.com/path`: AWS, virtual-hosted style;
- `https://bucket/path` (a bare DNS-compliant bucket name, the spec's example): AWS;
- anything else, `scheme://host[:port]/bucket/path`: an S3-compatible endpoint (MinIO, Ceph,
  moto…) at `scheme://host[:port]`, path-style addressing.

`Envelope` is Twilio's encrypted-media format ("Encrypting your Stored Media"): a one-time
256-bit key encrypts the file with `AES/CBC/PKCS5Padding`; the key is encrypted with the
customer's RSA public key (PKCS #1 v1.5, what `openssl rsautl -decrypt` undoes); both are
given base64 in the `x-amz-meta-x-amz-key` and `x-amz-meta-x-amz-iv` headers of the download.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
import urllib.parse
from dataclasses import dataclass, replace

from parlour.domain import errors
from parlour.domain.sids import AccountSid

__all__ = [
    "AwsCredential",
    "Credential",
    "CredentialType",
    "Envelope",
    "MediaKind",
    "MediaSettings",
    "PublicKeyCredential",
    "S3Location",
    "check_friendly_name",
    "parse_aws_credentials",
]

FRIENDLY_NAME_MAX = 64  # Twilio: "It can be up to 64 characters long."
SETTINGS_NAME_MAX = 255
S3_URL_MAX = 1024

#: Twilio's shapes (error 70106), plus the shorter keys S3-compatible stores use.
_AWS_KEY_ID = re.compile(r"^[A-Za-z0-9._-]{3,128}$")
_AWS_SECRET = re.compile(r"^[A-Za-z0-9/+=._-]{8,128}$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_AWS_HOST = re.compile(
    r"^(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])\.s3(?:[.-](?P<region>[a-z0-9-]+))?"
    r"\.amazonaws\.com$"
)
_PREFIX_CHAR = re.compile(r"^[A-Za-z0-9._~!$&'()*+,;=:@/-]*$")


class MediaKind(enum.StrEnum):
    """Which settings: `RecordingSettings` or `CompositionSettings`."""

    RECORDINGS = "recordings"
    COMPOSITIONS = "compositions"


class CredentialType(enum.StrEnum):
    AWS = "aws"
    PUBLIC_KEY = "public_key"


def check_friendly_name(value: str | None, *, required: bool, limit: int) -> str | None:
    """A FriendlyName of at most `limit` characters.

    Raises:
        InvalidParameterError: 20001 missing (when required) or too long.
    """
    if value is None or value == "":
        if required:
            raise errors.InvalidParameterError("Missing required parameter FriendlyName")
        return None
    if len(value) > limit:
        raise errors.InvalidParameterError(f"FriendlyName must be at most {limit} characters")
    return value


def parse_aws_credentials(value: str | None) -> tuple[str, str]:
    """`AKIAIOSFODNN7EXAMPLE:wJalr…` → (access key id, secret access key).

    Raises:
        InvalidParameterError: 20001 missing; 70106 not a key id and secret.
    """
    if not value:
        raise errors.InvalidParameterError("Missing required parameter Credentials")
    key_id, sep, secret = value.partition(":")
    if not sep or not _AWS_KEY_ID.match(key_id) or not _AWS_SECRET.match(secret):
        raise errors.InvalidParameterError(
            "Credentials must be the access key id and the secret access key, separated by ':'",
            code=errors.Code.INVALID_AWS_CREDENTIALS,
        )
    return key_id, secret


@dataclass(frozen=True)
class AwsCredential:
    """An AWS credential (`CR…`). `secret_sealed` is the secret access key encrypted with a
    key derived from the server secret (services/credentials.py); it is never served."""

    sid: str
    account_sid: AccountSid
    friendly_name: str | None
    access_key_id: str
    secret_sealed: str
    date_created: dt.datetime
    date_updated: dt.datetime


@dataclass(frozen=True)
class PublicKeyCredential:
    """An RSA public key (`CR…`), PEM (SubjectPublicKeyInfo or PKCS #1)."""

    sid: str
    account_sid: AccountSid
    friendly_name: str | None
    public_key: str
    date_created: dt.datetime
    date_updated: dt.datetime


Credential = AwsCredential | PublicKeyCredential


@dataclass(frozen=True)
class S3Location:
    """A bucket and key prefix, and how to reach it.

    Args:
        endpoint_url: None for AWS (boto3 picks the endpoint from the region), else the
            S3-compatible endpoint (`http://127.0.0.1:9000`), addressed path-style.
        region: the AWS region (from the host, or `us-east-1`).
        prefix: the key prefix, without leading or trailing `/` ("" for the bucket's root).
    """

    bucket: str
    prefix: str
    endpoint_url: str | None
    region: str

    @classmethod
    def parse(cls, url: str) -> S3Location:
        """An `AwsS3Url` (or an object URL made by `object_url`).

        Raises:
            InvalidParameterError: 20001 not an http(s) URL of a bucket.
        """
        if len(url) > S3_URL_MAX or any(not 33 <= ord(c) < 127 for c in url):
            raise _bad_url()
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
            raise _bad_url()
        if parts.fragment or parts.username or parts.password:
            raise _bad_url()
        host = parts.hostname.lower()
        path = parts.path.strip("/")
        if not _PREFIX_CHAR.match(path) or "//" in path:
            raise _bad_url()
        aws = _AWS_HOST.match(host)
        if aws is not None:
            region = aws.group("region") or "us-east-1"
            return cls(aws.group("bucket"), path, None, region)
        if "." not in host and parts.port is None and _BUCKET.match(host):
            return cls(host, path, None, "us-east-1")  # Twilio's `https://bucket/path`
        bucket, _, prefix = path.partition("/")
        if not _BUCKET.match(bucket):
            raise _bad_url()
        netloc = parts.netloc.lower()
        return cls(bucket, prefix.strip("/"), f"{parts.scheme}://{netloc}", "us-east-1")

    def key(self, name: str) -> str:
        """The object key of a media file (`recordings/RT….mka` → `prefix/RT….mka`)."""
        base = name.rsplit("/", 1)[-1]
        return f"{self.prefix}/{base}" if self.prefix else base

    def object_url(self, key: str) -> str:
        """The object's URL (`media_external_location`); `parse` reads it back."""
        quoted = urllib.parse.quote(key, safe="/")
        if self.endpoint_url is not None:
            return f"{self.endpoint_url}/{self.bucket}/{quoted}"
        host = "s3.amazonaws.com" if self.region == "us-east-1" else f"s3.{self.region}"
        if host != "s3.amazonaws.com":
            host += ".amazonaws.com"
        return f"https://{self.bucket}.{host}/{quoted}"


def _bad_url() -> errors.InvalidParameterError:
    return errors.InvalidParameterError(
        "AwsS3Url must be an S3 bucket URL such as https://bucket.s3.amazonaws.com/path "
        "or, for an S3-compatible store, https://host:port/bucket/path"
    )


@dataclass(frozen=True)
class Envelope:
    """The encryption of one stored file (base64 values, as in Twilio's headers)."""

    key_sid: str
    wrapped_key: str
    iv: str
    plain_size: int

    def headers(self) -> dict[str, str]:
        """The `x-amz-meta-*` headers a download carries (S3 user metadata names)."""
        return {f"x-amz-meta-{k}": v for k, v in self.metadata().items()}

    def metadata(self) -> dict[str, str]:
        """S3 user metadata (S3 serves each as `x-amz-meta-<name>`)."""
        return {
            "x-amz-key": self.wrapped_key,
            "x-amz-iv": self.iv,
            "x-amz-unencrypted-content-length": str(self.plain_size),
            "x-amz-matdesc": "{}",
        }

    def to_json(self) -> dict[str, str | int]:
        return {
            "key_sid": self.key_sid,
            "key": self.wrapped_key,
            "iv": self.iv,
            "plain_size": self.plain_size,
        }

    @classmethod
    def from_json(cls, data: dict[str, str | int]) -> Envelope:
        return cls(str(data["key_sid"]), str(data["key"]), str(data["iv"]), int(data["plain_size"]))


@dataclass(frozen=True)
class MediaSettings:
    """`video.v1.recording_settings` / `video.v1.composition_settings` of one account."""

    account_sid: AccountSid
    kind: MediaKind
    friendly_name: str | None = None
    aws_credentials_sid: str | None = None
    aws_s3_url: str | None = None
    aws_storage_enabled: bool = False
    encryption_key_sid: str | None = None
    encryption_enabled: bool = False
    date_created: dt.datetime | None = None
    date_updated: dt.datetime | None = None

    @property
    def s3_location(self) -> S3Location | None:
        """Where new media goes, if in a bucket."""
        if not self.aws_storage_enabled or self.aws_s3_url is None:
            return None
        return S3Location.parse(self.aws_s3_url)

    def changed(self, now: dt.datetime, **changes: object) -> MediaSettings:
        """These settings with `changes` applied (the POST), then checked.

        Raises:
            InvalidParameterError: 20001 S3 storage enabled without a credential or URL,
                encryption enabled without a key.
        """
        updated = replace(self, **changes, date_updated=now)  # type: ignore[arg-type]
        if updated.date_created is None:
            updated = replace(updated, date_created=now)
        if updated.aws_s3_url is not None:
            S3Location.parse(updated.aws_s3_url)
        if updated.aws_storage_enabled:
            if updated.aws_credentials_sid is None:
                raise errors.InvalidParameterError(
                    "AwsCredentialsSid is required when AwsStorageEnabled is true"
                )
            if updated.aws_s3_url is None:
                raise errors.InvalidParameterError(
                    "AwsS3Url is required when AwsStorageEnabled is true"
                )
        if updated.encryption_enabled and updated.encryption_key_sid is None:
            raise errors.InvalidParameterError(
                "EncryptionKeySid is required when EncryptionEnabled is true"
            )
        return updated
