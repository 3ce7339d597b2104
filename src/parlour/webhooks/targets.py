"""Where status callbacks may go: never this server, and by default nowhere private.

A StatusCallback is a URL that customers choose and the server then requests, so it could
be aimed at the server itself or at services on its private network (SSRF). Two checks:

- at room creation, `TargetPolicy.check` refuses what is visible in the URL alone: this
  server's own host:port, and IP literals that are not public (unless private targets are
  allowed). It raises 53111, as Twilio does for an invalid StatusCallback.
- at every delivery, `TargetPolicy.resolve` resolves the host name and refuses the target if
  any address is this server or not public; the request then goes to the address that was
  checked (the URL's host name stays in `Host` and TLS SNI), so a DNS answer that changes
  between the check and the connection (DNS rebinding) cannot slip through.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from parlour.domain import errors

__all__ = [
    "Resolver",
    "Target",
    "TargetPolicy",
    "TargetRefused",
    "address_refusal",
    "system_resolver",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: Resolves (host, port) to IP address strings.
Resolver = Callable[[str, int], Awaitable[list[str]]]

_DEFAULT_PORTS = {"http": 80, "https": 443}


class TargetRefused(Exception):
    """A callback target that must not be requested; the reason never contains the URL."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Target:
    """A checked callback target: connect to `address`, say `host` in Host and SNI."""

    scheme: str
    host: str
    port: int
    address: str


async def system_resolver(host: str, port: int) -> list[str]:
    """The operating system's resolver, off the event loop."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _ip(host: str) -> IPAddress | None:
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def address_refusal(ip: IPAddress) -> str | None:
    """Why an address is not a public internet address, or None if it is one."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return "loopback address"
    if ip.is_unspecified:
        return "unspecified address"
    if ip.is_link_local:
        return "link-local address"
    if ip.is_multicast:
        return "multicast address"
    if ip.is_private:
        return "private address"
    if not ip.is_global:
        return "reserved address"
    return None


def _endpoint(url: str) -> tuple[str, str, int]:
    """(scheme, lower-case host, effective port) of an http(s) URL.

    Raises:
        ValueError: not an absolute http(s) URL with a host.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise ValueError("not an http(s) URL")
    port = parts.port or _DEFAULT_PORTS[scheme]
    return scheme, parts.hostname.lower().rstrip("."), port


class TargetPolicy:
    """Implements the `StatusCallbackPolicy` port, and checks targets at delivery time.

    Args:
        allow_private: allow loopback, private and link-local targets (tests, closed
            networks). The server's own address is refused even then.
        own_urls: the URLs this server answers on (public URL, bind address).
        resolver: host name resolution (the system's by default).
    """

    def __init__(
        self,
        *,
        allow_private: bool,
        own_urls: Sequence[str] = (),
        resolver: Resolver = system_resolver,
    ) -> None:
        self.allow_private = allow_private
        self._resolver = resolver
        self._own_names: set[tuple[str, int]] = set()
        self._own_addresses: set[tuple[IPAddress, int]] = set()
        # Ports on which any loopback/unspecified address reaches this server.
        self._local_ports: set[int] = set()
        self._unresolved: set[tuple[str, int]] = set()
        for url in own_urls:
            _, host, port = _endpoint(url)
            self._own_names.add((host, port))
            ip = _ip(host)
            if ip is None:
                if host == "localhost" or host.endswith(".localhost"):
                    self._local_ports.add(port)
                else:
                    self._unresolved.add((host, port))
            elif ip.is_loopback or ip.is_unspecified:
                self._local_ports.add(port)
            else:
                self._own_addresses.add((ip, port))

    def _is_self(self, ip: IPAddress, port: int) -> bool:
        if (ip, port) in self._own_addresses:
            return True
        return port in self._local_ports and (ip.is_loopback or ip.is_unspecified)

    def _refusal(self, ip: IPAddress, port: int) -> str | None:
        if self._is_self(ip, port):
            return "this server"
        if not self.allow_private:
            return address_refusal(ip)
        return None

    def static_refusal(self, url: str) -> str | None:
        """Why a URL is refused without resolving anything, or None."""
        try:
            _, host, port = _endpoint(url)
        except ValueError:
            return "not an http(s) URL"
        if (host, port) in self._own_names:
            return "this server"
        ip = _ip(host)
        return None if ip is None else self._refusal(ip, port)

    def check(self, url: str) -> None:
        """Refuse at room creation what the URL alone shows (53111).

        Raises:
            RoomError: 53111 StatusCallback is invalid.
        """
        if self.static_refusal(url) is not None:
            raise errors.RoomError(code=errors.Code.ROOM_STATUS_CALLBACK_INVALID)

    async def _resolve_own_names(self) -> None:
        while self._unresolved:
            host, port = self._unresolved.pop()
            try:
                addresses = await self._resolver(host, port)
            except OSError:
                continue
            for address in addresses:
                ip = _ip(address)
                if ip is not None:
                    self._own_addresses.add((ip, port))

    async def resolve(self, url: str) -> Target:
        """Resolve and check a target just before it is requested.

        Raises:
            TargetRefused: the URL is this server, or (unless allowed) not public.
            OSError: the name does not resolve (a connection error, worth retrying).
        """
        reason = self.static_refusal(url)
        if reason is not None:
            raise TargetRefused(reason)
        scheme, host, port = _endpoint(url)
        await self._resolve_own_names()
        literal = _ip(host)
        addresses = [str(literal)] if literal is not None else await self._resolver(host, port)
        if not addresses:
            raise OSError(f"no address for the callback host (port {port})")
        for address in addresses:
            ip = _ip(address)
            if ip is None:
                raise TargetRefused("unusable address")
            reason = self._refusal(ip, port)
            if reason is not None:
                raise TargetRefused(reason)
        return Target(scheme=scheme, host=host, port=port, address=addresses[0])
