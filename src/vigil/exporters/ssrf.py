"""SSRF guard for exporters: which (host, port) pairs an exporter connects to; the rules are core's."""

from __future__ import annotations

from typing import Any

from vigil.core.ssrf import (  # noqa: F401 - re-exported for the exporter modules and their tests
    REFUSED,
    AllowList,
    IPAddress,
    TargetRefused,
    check_target,
    is_internal,
    resolve,
    url_endpoint,
    vet,
)
from vigil.core.ssrf import check_endpoints as _check_pairs


def endpoints(kind: str, config: dict[str, Any]) -> list[tuple[str, int]]:
    """The (host, port) pairs an exporter of `kind` connects to; none for Kafka on the app's own broker."""
    if kind in ("webhook", "slack", "teams"):
        return [url_endpoint(config["url"])]
    if kind == "mqtt":
        return [(config["host"], config.get("port", 1883))]
    if kind == "email":
        return [(config["host"], config.get("port") or 25)]
    if kind == "kafka" and config.get("bootstrap_servers"):
        return kafka_servers(config["bootstrap_servers"])
    return []


def kafka_servers(bootstrap: str) -> list[tuple[str, int]]:
    """`host:port[,host:port]` as pairs (IPv6 in brackets)."""
    pairs = []
    for server in bootstrap.split(","):
        host, _, port = server.strip().rpartition(":")
        pairs.append((host.strip("[]"), int(port)))
    return pairs


async def check_endpoints(kind: str, config: dict[str, Any], allow: AllowList) -> None:
    """Refuse (TargetRefused) if any endpoint of the exporter is a forbidden address."""
    await _check_pairs(endpoints(kind, config), allow)
