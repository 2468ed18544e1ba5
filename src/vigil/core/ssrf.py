"""SSRF guard shared by every outbound connection a user can aim (exporters, scenario sources).

A target must resolve only to public addresses unless the operator allow-listed the host name, the
address or its network. The check is made where the socket is opened, on the addresses that socket
then uses (`vet` returns them and `PinnedBackend` connects to exactly those), so a name that resolves
to a public address when saved and to 127.0.0.1 when used (DNS rebinding) never reaches 127.0.0.1.

Every resolution goes through the module-level `resolve`, the one place tests substitute a resolver.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
import typing
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpcore
import httpx
from loguru import logger

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# What a refused target reports to clients: nothing that maps internal names, addresses or ports.
REFUSED = "refused"


class TargetRefused(ValueError):
    """The host is internal (loopback, link-local, private...) and not allow-listed, or does not resolve."""


@dataclass(frozen=True)
class AllowList:
    hosts: frozenset[str]
    networks: tuple[IPNetwork, ...]

    @classmethod
    def parse(cls, text: str) -> AllowList:
        """`VIGIL_EXPORTER_ALLOWED_HOSTS` and friends: comma-separated host names, addresses or CIDRs."""
        hosts: set[str] = set()
        networks: list[IPNetwork] = []
        for item in (part.strip() for part in text.split(",")):
            if not item:
                continue
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                hosts.add(item.lower().rstrip("."))
        return cls(frozenset(hosts), tuple(networks))

    def allows(self, address: IPAddress) -> bool:
        return any(address in net for net in self.networks)

    def allows_host(self, host: str) -> bool:
        return host.lower().rstrip(".") in self.hosts


def is_internal(address: IPAddress) -> bool:
    """Loopback, link-local (169.254/16 metadata services), private, shared, reserved, multicast..."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return not address.is_global or address.is_multicast


async def resolve(host: str, port: int, *, timeout_s: float = 5.0) -> list[IPAddress]:
    """The addresses `host` resolves to now (an IP literal resolves to itself)."""
    try:
        return [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), timeout_s)
    except (OSError, TimeoutError) as exc:
        raise TargetRefused(f"host {host!r} does not resolve ({exc or type(exc).__name__})") from None
    out: list[IPAddress] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if address not in out:
            out.append(address)
    return out


async def vet(host: str, port: int, allow: AllowList) -> list[IPAddress]:
    """Resolve `host` once and return the addresses to connect to; TargetRefused unless every one is
    public or allow-listed (an allow-listed host name vouches for whatever it resolves to)."""
    addresses = await resolve(host, port)  # a module global: tests substitute it (DNS rebinding)
    if not addresses:
        raise TargetRefused(f"host {host!r} does not resolve")
    if allow.allows_host(host):
        return addresses
    for address in addresses:
        if is_internal(address) and not allow.allows(address):
            raise TargetRefused(
                f"{host!r} resolves to {address}, an internal address; "
                "list it in the allow-list setting to allow it"
            )
    return addresses


async def check_target(host: str, port: int, allow: AllowList) -> None:
    """Raise TargetRefused unless every address `host` resolves to is public or allow-listed (a name on
    the allow-list is not even resolved: it may live only in the network the app sends from)."""
    if not allow.allows_host(host):
        await vet(host, port, allow)


def url_endpoint(url: str) -> tuple[str, int]:
    """(host, port) of an http(s)/rtsp(s) URL, with the scheme's default port."""
    parts = urlsplit(url)
    defaults = {"http": 80, "https": 443, "rtsp": 554, "rtsps": 322}
    return parts.hostname or "", parts.port or defaults.get(parts.scheme.lower(), 80)


async def check_endpoints(pairs: Iterable[tuple[str, int]], allow: AllowList) -> None:
    """Refuse (TargetRefused) if any (host, port) is a forbidden address."""
    for host, port in pairs:
        await check_target(host, port, allow)


# --- HTTP: a connection pool whose sockets go only to vetted addresses --------------------------


class PinnedBackend(httpcore.AsyncNetworkBackend):
    """httpcore network backend: resolve and vet the host when the socket is opened, then connect to
    that very address. TLS still verifies and sends SNI for the URL's host name, and the Host header
    is untouched, because httpcore takes both from the request, not from the socket."""

    def __init__(self, allow: AllowList) -> None:
        from httpcore._backends.auto import AutoBackend

        self.allow = allow
        self._inner = AutoBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's AsyncNetworkBackend.connect_tcp signature
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await vet(host, port, self.allow)
        last: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    str(address), port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except httpcore.ConnectError as exc:  # try the next vetted address, never a fresh lookup
                last = exc
        if last is None:
            raise AssertionError()
        raise last

    async def connect_unix_socket(self, *args: typing.Any, **kwargs: typing.Any) -> httpcore.AsyncNetworkStream:
        raise TargetRefused("unix sockets are not exporter targets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class PinnedTransport(httpx.AsyncHTTPTransport):
    """httpx transport on a `PinnedBackend`: no proxies from the environment, no unix sockets."""

    def __init__(self, allow: AllowList, *, verify: ssl.SSLContext | bool = True, retries: int = 0) -> None:
        super().__init__(verify=verify, retries=retries)
        # httpx builds the pool without a way to pass a network backend; the pool reads this attribute
        # for every new connection (httpcore 1.x).
        self._pool._network_backend = PinnedBackend(allow)


def pinned_client(allow: AllowList, *, timeout_s: float, headers: dict[str, str] | None = None) -> httpx.AsyncClient:
    """An httpx client that connects only to vetted addresses and never follows redirects (a 30x to an
    internal address would otherwise walk around the guard; the 30x itself is the answer)."""
    return httpx.AsyncClient(
        transport=PinnedTransport(allow), timeout=timeout_s, follow_redirects=False, trust_env=False,
        headers=headers or {},
    )


def refused(exc: TargetRefused, **ids: object) -> str:
    """Log why a target was refused (operators see it) and return what clients may see: only 'refused'."""
    logger.warning("outbound target refused {}: {}", " ".join(f"{k}={v}" for k, v in ids.items()), exc)
    return REFUSED
