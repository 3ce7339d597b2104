"""Accounts, API keys, request authentication and Access Token minting."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from parlour.domain import errors
from parlour.domain.accounts import Account, ApiKey
from parlour.domain.clock import Clock
from parlour.domain.credentials import (
    derive_auth_token,
    derive_key_secret,
    hash_secret,
    secret_matches,
)
from parlour.domain.ports import Store
from parlour.domain.sids import AccountSid, ApiKeySid, is_sid, new_sid
from parlour.protocol import tokens

__all__ = ["AccountService", "Credentials", "NewKey"]

log = logging.getLogger(__name__)

DEFAULT_ACCOUNT_KEY = "default_account_sid"
CLI_KEY_NAME = "parlour-cli"


@dataclass(frozen=True)
class Credentials:
    account_sid: AccountSid
    auth_token: str


@dataclass(frozen=True)
class NewKey:
    key: ApiKey
    secret: str


class AccountService:
    def __init__(self, store: Store, clock: Clock, server_secret: bytes) -> None:
        self._store = store
        self._clock = clock
        self._secret = server_secret

    async def create_account(self, friendly_name: str | None = None) -> Credentials:
        """A new, separate account; returns its SID and auth token."""
        sid = AccountSid(new_sid("AC"))
        token = derive_auth_token(self._secret, sid)
        now = self._clock.now()
        await self._store.insert_account(
            Account(
                sid=sid,
                friendly_name=friendly_name or f"Parlour account {sid[-6:]}",
                auth_token_hash=hash_secret(token),
                date_created=now,
                date_updated=now,
            )
        )
        log.info("account created sid=%s", sid)
        return Credentials(sid, token)

    async def default_account(self) -> Credentials:
        """The data dir's default account, created on first use (safe against races)."""
        sid = await self._store.get_instance_value(DEFAULT_ACCOUNT_KEY)
        if sid is None:
            created = await self.create_account("Default account")
            sid = await self._store.set_instance_value_once(
                DEFAULT_ACCOUNT_KEY, created.account_sid
            )
            if sid != created.account_sid:
                await self._store.delete_account(created.account_sid)
        return Credentials(AccountSid(sid), derive_auth_token(self._secret, sid))

    def auth_token(self, account_sid: AccountSid) -> str:
        """The auth token of an account (used to sign its webhooks)."""
        return derive_auth_token(self._secret, account_sid)

    async def create_key(self, account_sid: AccountSid, friendly_name: str | None = None) -> NewKey:
        """A new API key; its secret is returned here and never stored."""
        sid = ApiKeySid(new_sid("SK"))
        secret = derive_key_secret(self._secret, sid)
        now = self._clock.now()
        key = ApiKey(
            sid=sid,
            account_sid=account_sid,
            friendly_name=friendly_name or "",
            secret_hash=hash_secret(secret),
            date_created=now,
            date_updated=now,
        )
        await self._store.insert_api_key(key)
        log.info("api key created sid=%s account=%s", sid, account_sid)
        return NewKey(key, secret)

    async def list_keys(self, account_sid: AccountSid) -> list[ApiKey]:
        return await self._store.list_api_keys(account_sid)

    async def delete_key(self, account_sid: AccountSid, sid: str) -> None:
        if not await self._store.delete_api_key(account_sid, sid):
            raise errors.NotFoundError.for_path(f"/Keys/{sid}")
        log.info("api key deleted sid=%s account=%s", sid, account_sid)

    async def authenticate(self, username: str, password: str) -> AccountSid:
        """HTTP Basic credentials (`AC…:auth_token` or `SK…:secret`) to the account they open.

        Raises:
            AuthenticationError: 20003 for anything else.
        """
        if is_sid(username, "AC"):
            account = await self._store.get_account(username)
            if account is not None and secret_matches(password, account.auth_token_hash):
                return account.sid
        elif is_sid(username, "SK"):
            key = await self._store.get_api_key(username)
            if key is not None and secret_matches(password, key.secret_hash):
                return key.account_sid
        raise errors.AuthenticationError()

    async def key_secret(self, key_sid: str) -> tuple[AccountSid, str] | None:
        """(owning account, secret) of an existing API key, to verify tokens it signed."""
        key = await self._store.get_api_key(key_sid)
        if key is None:
            return None
        return key.account_sid, derive_key_secret(self._secret, key.sid)

    async def verify_access_token(self, token: str) -> tokens.AccessToken:
        """Verify an Access Token signed with one of our API keys.

        Raises:
            TokenError: with the Twilio code (20101–20107) of the first failed check; a
                token naming an unknown or deleted key is 20103 (issuer invalid).
        """
        _header, claims, _input, _sig = tokens.decode_unverified(token)
        iss = claims.get("iss")
        found = await self.key_secret(iss) if isinstance(iss, str) else None
        if found is None:
            code = errors.Code.ACCESS_TOKEN_ISSUER_INVALID
            raise tokens.TokenError(code, errors.MESSAGES[code])
        account_sid, secret = found
        now = int(self._clock.now().timestamp())
        return tokens.verify_token(token, secret=secret, now=now, account_sid=account_sid)

    async def cli_key(self, account_sid: AccountSid) -> NewKey:
        """The key `parlour token` signs with: reused if it exists, else created."""
        for key in await self._store.list_api_keys(account_sid):
            if key.friendly_name == CLI_KEY_NAME:
                return NewKey(key, derive_key_secret(self._secret, key.sid))
        return await self.create_key(account_sid, CLI_KEY_NAME)

    async def mint_token(self, identity: str, *, room: str | None = None, ttl: int = 3600) -> str:
        """An Access Token for the default account, as Twilio's helper libraries make it."""
        account = await self.default_account()
        key = await self.cli_key(account.account_sid)
        now = int(self._clock.now().timestamp())
        return tokens.encode_token(
            account_sid=account.account_sid,
            key_sid=key.key.sid,
            secret=key.secret,
            identity=identity,
            now=now,
            ttl=ttl,
            room=room,
        )
