"""Accounts API credentials (`/v1/Credentials/AWS`, `/v1/Credentials/PublicKeys`) and the
`RecordingSettings`/`CompositionSettings` singletons of each account.

An AWS secret access key is a secret Parlour must be able to use (to sign S3 requests), so
it cannot be hashed like auth tokens. It is sealed with AES-256-GCM under a key derived from
the server secret (`HMAC-SHA256(server secret, "parlour/aws-secret/v1")`), with the
credential's SID as associated data: a copy of the database alone reveals no secret, and a
sealed secret cannot be moved to another credential. It is never returned (Twilio returns
none either), never logged, and unsealed only in memory to build an S3 client.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
from collections.abc import Awaitable, Callable, Collection

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from parlour.domain import errors
from parlour.domain.clock import Clock
from parlour.domain.media_settings import (
    FRIENDLY_NAME_MAX,
    SETTINGS_NAME_MAX,
    AwsCredential,
    Credential,
    CredentialType,
    MediaKind,
    MediaSettings,
    PublicKeyCredential,
    S3Location,
    check_friendly_name,
    parse_aws_credentials,
)
from parlour.domain.paging import Page, PageRequest
from parlour.domain.ports import Store
from parlour.domain.sids import AccountSid, is_sid, new_sid

__all__ = [
    "CredentialService",
    "MediaSettingsService",
    "SecretBox",
    "load_public_key",
]

log = logging.getLogger(__name__)

_PATHS = {
    CredentialType.AWS: "/Credentials/AWS",
    CredentialType.PUBLIC_KEY: "/Credentials/PublicKeys",
}
MIN_RSA_BITS = 2048
MAX_PEM = 16 * 1024


class SecretBox:
    """Seals and unseals AWS secret access keys (see the module docstring)."""

    _VERSION = "v1"

    def __init__(self, server_secret: bytes) -> None:
        key = hmac.new(server_secret, b"parlour/aws-secret/v1", hashlib.sha256).digest()
        self._aead = AESGCM(key)

    def seal(self, secret: str, sid: str) -> str:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, secret.encode(), sid.encode())
        return f"{self._VERSION}:" + base64.b64encode(nonce + sealed).decode()

    def unseal(self, sealed: str, sid: str) -> str:
        """Raises ValueError if `sealed` was not sealed for `sid` by this server secret."""
        version, _, data = sealed.partition(":")
        raw = base64.b64decode(data)
        if version != self._VERSION or len(raw) < 13:
            raise ValueError("unknown sealed secret format")
        try:
            return self._aead.decrypt(raw[:12], raw[12:], sid.encode()).decode()
        except InvalidTag:
            raise ValueError("the secret was sealed with another server secret") from None


def load_public_key(pem: str) -> rsa.RSAPublicKey:
    """An RSA public key from PEM (`BEGIN PUBLIC KEY` or `BEGIN RSA PUBLIC KEY`).

    Raises:
        InvalidParameterError: 20001 not an RSA public key of at least 2048 bits.
    """
    try:
        key = serialization.load_pem_public_key(pem.strip().encode())
    except (ValueError, TypeError):
        key = None
    if not isinstance(key, rsa.RSAPublicKey) or key.key_size < MIN_RSA_BITS:
        raise errors.InvalidParameterError(
            f"PublicKey must be an RSA public key of at least {MIN_RSA_BITS} bits, in PEM format"
        )
    return key


class CredentialService:
    """Create, read, rename and delete an account's credentials (`CR…`)."""

    def __init__(self, store: Store, clock: Clock, box: SecretBox) -> None:
        self._store = store
        self._clock = clock
        self._box = box

    async def create_aws(
        self,
        account_sid: AccountSid,
        credentials: str | None,
        friendly_name: str | None,
        owner: str | None = None,
    ) -> AwsCredential:
        """Raises InvalidParameterError: 20001 bad FriendlyName or AccountSid; 70106 bad
        `Credentials`."""
        name = check_friendly_name(friendly_name, required=False, limit=FRIENDLY_NAME_MAX)
        _check_owner(account_sid, owner)
        key_id, secret = parse_aws_credentials(credentials)
        sid = new_sid("CR")
        now = self._clock.now()
        credential = AwsCredential(
            sid, account_sid, name, key_id, self._box.seal(secret, sid), now, now
        )
        await self._store.insert_credential(credential)
        log.info("aws credential created sid=%s account=%s", sid, account_sid)
        return credential

    async def create_public_key(
        self,
        account_sid: AccountSid,
        public_key: str | None,
        friendly_name: str | None,
        owner: str | None = None,
    ) -> PublicKeyCredential:
        name = check_friendly_name(friendly_name, required=False, limit=FRIENDLY_NAME_MAX)
        _check_owner(account_sid, owner)
        if not public_key:
            raise errors.InvalidParameterError("Missing required parameter PublicKey")
        if len(public_key) > MAX_PEM:
            raise errors.InvalidParameterError("PublicKey is too long")
        load_public_key(public_key)
        sid = new_sid("CR")
        now = self._clock.now()
        credential = PublicKeyCredential(sid, account_sid, name, public_key.strip(), now, now)
        await self._store.insert_credential(credential)
        log.info("public key created sid=%s account=%s", sid, account_sid)
        return credential

    async def get(self, account_sid: AccountSid, type: CredentialType, sid: str) -> Credential:
        credential = await self._store.get_credential(account_sid, sid) if is_sid(sid) else None
        if credential is None or _type(credential) is not type:
            raise errors.NotFoundError.for_path(f"{_PATHS[type]}/{sid}")
        return credential

    async def find(
        self, account_sid: AccountSid, type: CredentialType, req: PageRequest
    ) -> Page[Credential]:
        return await self._store.list_credentials(account_sid, type, req)

    async def rename(
        self, account_sid: AccountSid, type: CredentialType, sid: str, friendly_name: str | None
    ) -> Credential:
        await self.get(account_sid, type, sid)
        name = check_friendly_name(friendly_name, required=False, limit=FRIENDLY_NAME_MAX)
        renamed = await self._store.rename_credential(account_sid, sid, name, self._clock.now())
        if renamed is None:
            raise errors.NotFoundError.for_path(f"{_PATHS[type]}/{sid}")
        return renamed

    async def delete(self, account_sid: AccountSid, type: CredentialType, sid: str) -> None:
        await self.get(account_sid, type, sid)
        await self._store.delete_credential(account_sid, sid)
        log.info("credential deleted sid=%s account=%s", sid, account_sid)

    def secret_of(self, credential: AwsCredential) -> str:
        """The secret access key, for an S3 client only (never log or serve it)."""
        return self._box.unseal(credential.secret_sealed, credential.sid)


def _type(credential: Credential) -> CredentialType:
    return (
        CredentialType.AWS if isinstance(credential, AwsCredential) else CredentialType.PUBLIC_KEY
    )


def _check_owner(account_sid: AccountSid, owner: str | None) -> None:
    """`AccountSid` names a subaccount on Twilio; Parlour has none, so only the caller's."""
    if owner and owner != account_sid:
        raise errors.InvalidParameterError("AccountSid must be the SID of your own account")


#: Checks that new settings can write to their bucket (the resolver's `probe`).
BucketProbe = Callable[[MediaSettings], Awaitable[None]]


class MediaSettingsService:
    """`RecordingSettings/Default` and `CompositionSettings/Default` of each account.

    Args:
        probe: called with settings that enable S3 storage before they are saved; writes a
            test object as Twilio does, raising InvalidParameterError if that fails.
        s3_endpoints: the S3-compatible endpoints (`scheme://host[:port]`) an `AwsS3Url`
            may name (`*`: any); AWS's hosts are always accepted.
    """

    def __init__(
        self,
        store: Store,
        clock: Clock,
        probe: BucketProbe | None = None,
        *,
        s3_endpoints: Collection[str] = (),
    ) -> None:
        self._store = store
        self._clock = clock
        self._probe = probe
        self._endpoints = {e.strip().rstrip("/").lower() for e in s3_endpoints if e.strip()}

    async def get(self, account_sid: AccountSid, kind: MediaKind) -> MediaSettings:
        """The account's settings (defaults, all off, if it never set them)."""
        settings = await self._store.get_media_settings(account_sid, kind)
        return settings if settings is not None else MediaSettings(account_sid, kind)

    async def update(
        self, account_sid: AccountSid, kind: MediaKind, **changes: object
    ) -> MediaSettings:
        """The POST: `friendly_name` (required) and any of the other fields; the fields not
        given keep their values.

        Raises:
            InvalidParameterError: 20001 missing FriendlyName, a bad URL, a credential SID
                that is not one of the account's credentials of the right type, S3 enabled
                without credential or URL, encryption enabled without key, a bucket that
                cannot be written.
        """
        name = changes.get("friendly_name")
        check_friendly_name(
            name if isinstance(name, str) else None, required=True, limit=SETTINGS_NAME_MAX
        )
        current = await self.get(account_sid, kind)
        updated = current.changed(self._clock.now(), **changes)
        if updated.aws_s3_url is not None and updated.aws_s3_url != current.aws_s3_url:
            endpoint = S3Location.parse(updated.aws_s3_url).endpoint_url
            if endpoint is not None and not {"*", endpoint} & self._endpoints:
                raise errors.InvalidParameterError(
                    f"AwsS3Url: the S3-compatible endpoint {endpoint} is not enabled on this "
                    "server (PARLOUR_S3_ENDPOINTS)"
                )
        for field, wanted in (
            ("aws_credentials_sid", AwsCredential),
            ("encryption_key_sid", PublicKeyCredential),
        ):
            sid = getattr(updated, field)
            if sid is None:
                continue
            credential = await self._store.get_credential(account_sid, sid) if is_sid(sid) else None
            if not isinstance(credential, wanted):
                what = "an AWS credential" if wanted is AwsCredential else "a public key"
                param = (
                    "AwsCredentialsSid" if field == "aws_credentials_sid" else "EncryptionKeySid"
                )
                raise errors.InvalidParameterError(f"{param} {sid} is not {what} of this account")
        if updated.aws_storage_enabled and self._probe is not None:
            await self._probe(updated)
        await self._store.put_media_settings(updated)
        location = updated.s3_location
        log.info(
            "media settings updated account=%s kind=%s s3=%s encryption=%s",
            account_sid,
            kind,
            location.bucket if location is not None else "-",
            updated.encryption_enabled,
        )
        return updated
