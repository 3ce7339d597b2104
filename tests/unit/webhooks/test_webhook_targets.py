"""Callback targets: never this server, nothing private unless allowed, checked on every
resolution (DNS rebinding), refused at room creation with 53111 when the URL alone shows it."""

from __future__ import annotations

import ipaddress

import pytest

from parlour.domain import errors
from parlour.webhooks.targets import (
    Target,
    TargetPolicy,
    TargetRefused,
    address_refusal,
    system_resolver,
)

OWN = ("http://127.0.0.1:8080", "https://video.example.com")


def resolver(table: dict[str, list[str]]):  # type: ignore[no-untyped-def]
    calls: list[str] = []

    async def resolve(host: str, port: int) -> list[str]:
        calls.append(host)
        if host not in table:
            raise OSError("no such host")
        return table[host]

    resolve.calls = calls  # type: ignore[attr-defined]
    return resolve


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback address"),
        ("::1", "loopback address"),
        ("::ffff:127.0.0.1", "loopback address"),
        ("0.0.0.0", "unspecified address"),
        ("169.254.169.254", "link-local address"),
        ("fe80::1", "link-local address"),
        ("224.0.0.1", "multicast address"),
        ("10.1.2.3", "private address"),
        ("192.168.0.1", "private address"),
        ("fd00::1", "private address"),
        ("100.64.0.1", "reserved address"),
        ("93.184.216.34", None),
        ("2606:2800:220:1:248:1893:25c8:1946", None),
    ],
)
def test_address_refusal(address: str, reason: str | None) -> None:
    assert address_refusal(ipaddress.ip_address(address)) == reason


@pytest.mark.parametrize(
    ("url", "allow_private", "refused"),
    [
        ("http://127.0.0.1:8080/cb", True, "this server"),
        ("http://127.0.0.1:8080/cb", False, "this server"),
        ("http://localhost:8080/cb", True, None),  # resolved at delivery
        ("https://VIDEO.example.com./cb", True, "this server"),
        ("https://video.example.com:443/cb", True, "this server"),
        ("http://video.example.com/cb", True, None),  # another port
        ("http://127.0.0.1:9000/cb", True, None),
        ("http://127.0.0.1:9000/cb", False, "loopback address"),
        ("http://[::1]:9000/cb", False, "loopback address"),
        ("http://[::ffff:10.0.0.1]/cb", False, "private address"),
        ("http://10.0.0.1/cb", False, "private address"),
        ("http://93.184.216.34/cb", False, None),
        ("http://hooks.example.com/cb", False, None),
        ("ftp://hooks.example.com/cb", False, "not an http(s) URL"),
    ],
)
def test_static_refusal(url: str, allow_private: bool, refused: str | None) -> None:
    policy = TargetPolicy(allow_private=allow_private, own_urls=OWN)
    assert policy.static_refusal(url) == refused
    if refused is None:
        policy.check(url)
    else:
        with pytest.raises(errors.RoomError) as err:
            policy.check(url)
        assert err.value.code == errors.Code.ROOM_STATUS_CALLBACK_INVALID == 53111


async def test_resolve_pins_a_checked_public_address() -> None:
    resolve = resolver({"hooks.example.com": ["93.184.216.34", "2606:2800:220:1::1"]})
    policy = TargetPolicy(allow_private=False, own_urls=OWN, resolver=resolve)
    target = await policy.resolve("https://hooks.example.com/cb?x=1")
    assert target == Target("https", "hooks.example.com", 443, "93.184.216.34")
    literal = await policy.resolve("http://93.184.216.34:81/")
    assert literal.address == "93.184.216.34" and literal.port == 81


async def test_a_name_resolving_to_a_private_address_is_refused_at_delivery() -> None:
    # DNS rebinding: the name looks harmless, any one of its addresses is not.
    resolve = resolver({"rebind.example.com": ["93.184.216.34", "10.0.0.7"]})
    policy = TargetPolicy(allow_private=False, own_urls=OWN, resolver=resolve)
    policy.check("http://rebind.example.com/cb")  # nothing to see statically
    with pytest.raises(TargetRefused) as err:
        await policy.resolve("http://rebind.example.com/cb")
    assert err.value.reason == "private address"
    allowed = TargetPolicy(allow_private=True, own_urls=OWN, resolver=resolve)
    assert (await allowed.resolve("http://rebind.example.com/cb")).address == "93.184.216.34"


async def test_this_server_is_refused_even_by_another_name() -> None:
    resolve = resolver(
        {
            "localhost": ["127.0.0.1"],
            "video.example.com": ["93.184.216.40"],
            "alias.example.com": ["93.184.216.40"],
            "other.example.com": ["93.184.216.41"],
        }
    )
    policy = TargetPolicy(allow_private=True, own_urls=OWN, resolver=resolve)
    with pytest.raises(TargetRefused, match="this server"):
        await policy.resolve("http://localhost:8080/cb")
    with pytest.raises(TargetRefused, match="this server"):
        await policy.resolve("https://alias.example.com/cb")
    assert (await policy.resolve("https://other.example.com/cb")).port == 443
    assert (await policy.resolve("http://localhost:8081/cb")).address == "127.0.0.1"
    with pytest.raises(TargetRefused, match="this server"):
        await policy.resolve("http://127.0.0.1:8080/cb")


async def test_wildcard_bind_means_any_local_address_on_that_port() -> None:
    policy = TargetPolicy(
        allow_private=True,
        own_urls=("http://0.0.0.0:7000", "http://localhost:7001", "http://[2001:db8::1]:7002"),
        resolver=resolver({}),
    )
    for url in ("http://127.0.0.1:7000/", "http://[::1]:7001/", "http://[2001:db8::1]:7002/"):
        assert policy.static_refusal(url) == "this server", url
    assert policy.static_refusal("http://[2001:db8::1]:7000/") is None


async def test_unresolvable_names_are_connection_errors() -> None:
    policy = TargetPolicy(
        allow_private=False,
        own_urls=("http://unresolvable.invalid:1",),
        resolver=resolver({"empty.example.com": []}),
    )
    with pytest.raises(OSError):
        await policy.resolve("http://missing.example.com/")
    with pytest.raises(OSError):
        await policy.resolve("http://empty.example.com/")
    with pytest.raises(TargetRefused, match="not an http"):
        await policy.resolve("gopher://x/")


async def test_unusable_addresses_are_refused() -> None:
    policy = TargetPolicy(allow_private=True, resolver=resolver({"odd.example.com": ["nope"]}))
    with pytest.raises(TargetRefused, match="unusable"):
        await policy.resolve("http://odd.example.com/")


async def test_system_resolver_knows_localhost() -> None:
    assert "127.0.0.1" in await system_resolver("localhost", 80) or "::1" in (
        await system_resolver("localhost", 80)
    )
