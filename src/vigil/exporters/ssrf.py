"""SSRF guard: exporter targets must be public addresses unless the operator allow-listed them."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class TargetRefused(ValueError):
    """The host is internal (loopback, link-local, private...) and not allow-listed, or does not resolve."""


@dataclass(frozen=True)
class AllowList:
    hosts: frozenset[str]
    networks: tuple[IPNetwork, ...]

    @classmethod
    def parse(cls, text: str) -> AllowList:
        """`VIGIL_EXPORTER_ALLOWED_HOSTS`: comma-separated host names, addresses or CIDRs."""
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


def is_internal(address: IPAddress) -> bool:
    """Loopback, link-local (169.254/16 metadata services), private, shared, reserved, multicast..."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return not address.is_global or address.is_multicast


async def resolve(host: str, port: int, *, timeout_s: float = 5.0) -> list[IPAddress]:
    try:
        return [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), timeout_s)
    except (OSError, TimeoutError) as exc:
        raise TargetRefused(f"host {host!r} does not resolve ({exc or type(exc).__name__})") from None
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]


async def check_target(host: str, port: int, allow: AllowList) -> None:
    """Raise TargetRefused unless every address `host` resolves to is public or allow-listed."""
    if host.lower().rstrip(".") in allow.hosts:
        return
    addresses = await resolve(host, port)
    if not addresses:
        raise TargetRefused(f"host {host!r} does not resolve")
    for address in addresses:
        if is_internal(address) and not allow.allows(address):
            raise TargetRefused(
                f"{host!r} resolves to {address}, an internal address; "
                "list it in VIGIL_EXPORTER_ALLOWED_HOSTS to allow it"
            )


def endpoints(kind: str, config: dict[str, Any]) -> list[tuple[str, int]]:
    """The (host, port) pairs an exporter of `kind` connects to; none for Kafka on the app's own broker."""
    if kind in ("webhook", "slack", "teams"):
        parts = urlsplit(config["url"])
        return [(parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80))]
    if kind == "mqtt":
        return [(config["host"], config.get("port", 1883))]
    if kind == "email":
        return [(config["host"], config.get("port") or 25)]
    if kind == "kafka" and config.get("bootstrap_servers"):
        pairs = []
        for server in config["bootstrap_servers"].split(","):
            host, _, port = server.strip().rpartition(":")
            pairs.append((host.strip("[]"), int(port)))
        return pairs
    return []


async def check_endpoints(kind: str, config: dict[str, Any], allow: AllowList) -> None:
    """Refuse (TargetRefused) if any endpoint of the exporter is a forbidden address."""
    for host, port in endpoints(kind, config):
        await check_target(host, port, allow)
