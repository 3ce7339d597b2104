"""Accounts, API keys and instance values (memory, SQLite, PostgreSQL: see conftest.py)."""

from __future__ import annotations

from parlour.domain.accounts import Account, ApiKey
from parlour.domain.ports import Store
from parlour.domain.sids import AccountSid, ApiKeySid, new_sid
from tests.store.factories import T0, at, new_account


def key(account: AccountSid, seconds: float, name: str = "k") -> ApiKey:
    return ApiKey(
        sid=ApiKeySid(new_sid("SK")),
        account_sid=account,
        friendly_name=name,
        secret_hash="s" * 64,
        date_created=at(seconds),
        date_updated=at(seconds),
    )


async def test_accounts(store: Store) -> None:
    sid = AccountSid(new_sid("AC"))
    account = Account(sid, "Friendly ☕", "h" * 64, T0, at(1))
    await store.insert_account(account)
    assert await store.get_account(sid) == account
    assert await store.get_account(new_sid("AC")) is None
    await store.delete_account(sid)
    assert await store.get_account(sid) is None


async def test_api_keys_by_account_oldest_first(store: Store) -> None:
    account, other = await new_account(store), await new_account(store)
    late, early = key(account, 5, "late"), key(account, 1, "early")
    foreign = key(other, 0)
    for k in (late, early, foreign):
        await store.insert_api_key(k)
    assert await store.get_api_key(late.sid) == late
    assert await store.get_api_key(new_sid("SK")) is None
    assert await store.list_api_keys(account) == [early, late]
    assert await store.delete_api_key(other, late.sid) is False  # not its key
    assert await store.delete_api_key(account, late.sid) is True
    assert await store.delete_api_key(account, late.sid) is False
    assert await store.list_api_keys(account) == [early]
    assert await store.list_api_keys(other) == [foreign]


async def test_instance_value_missing(store: Store) -> None:
    assert await store.get_instance_value(new_sid("XX")) is None
