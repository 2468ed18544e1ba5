"""SSRF closed at the socket (issue 12): the address that was vetted is the one connected to, DNS
rebinding is refused, Kafka metadata brokers are checked, redirects are not followed, `/test` on a
refused target says only 'refused'.

The resolver is substituted through `vigil.core.ssrf.resolve`, the one function the guard resolves
names with: that tests our pinning, not a mock of a service (the receivers are real sockets)."""

import ipaddress
import uuid

import pytest

from vigil.core import ssrf
from vigil.exporters.outgoing import Outgoing, Target
from vigil.exporters.senders import Senders

URL = "/api/v1/exporters"
PUBLIC = ipaddress.ip_address("93.184.216.34")


def patch_resolver(monkeypatch, answer):
    """Install `answer(host, port, calls)` as the resolver; returns the list of (host, port) asked."""
    calls: list[tuple[str, int]] = []

    async def fake(host: str, port: int, *, timeout_s: float = 5.0):
        calls.append((host, port))
        return answer(host, port, len(calls))

    monkeypatch.setattr(ssrf, "resolve", fake)
    # Today's (pre-fix) guard resolved through the exporters module; patch it too so this test fails there.
    monkeypatch.setattr("vigil.exporters.ssrf.resolve", fake, raising=False)
    return calls


async def test_dns_rebinding_between_check_and_connect_is_refused(client, monkeypatch, listener_factory):
    internal = await listener_factory("127.0.0.2")  # loopback, not in the tests' allow-list (127.0.0.1 only)
    # A rebinding name: public for the checks at save and before sending, loopback when connecting.
    patch_resolver(monkeypatch, lambda host, port, n: [PUBLIC] if n <= 2 else [ipaddress.ip_address("127.0.0.2")])
    created = await client.post(URL, json={"name": "rebind", "kind": "webhook", "event_types": ["plate.event"],
                                           "config": {"url": internal.url}})
    assert created.status_code == 201, created.text
    result = (await client.post(f"{URL}/{created.json()['id']}/test")).json()
    assert internal.requests == [], "the request reached the internal address"
    assert result == {"ok": False, "latency_ms": 0.0, "error": "refused"}


async def test_the_socket_goes_to_the_vetted_address_with_the_host_name_kept(monkeypatch, listener_factory):
    hook = await listener_factory("127.0.0.1")
    # A name only our resolver knows: if anything else resolved it, the connection would fail.
    calls = patch_resolver(monkeypatch, lambda host, port, n: [ipaddress.ip_address("127.0.0.1")])
    target = Target(uuid.uuid4(), "webhook", {"url": f"http://hooks.vigil.test:{hook.port}/hook"})
    async with Senders(bus=None, timeout_s=5, allow=ssrf.AllowList.parse("127.0.0.1")) as senders:  # type: ignore[arg-type]
        [error] = await senders.send(target, [Outgoing(uuid.uuid4(), "exporter.test", {"x": 1})])
    assert error is None
    [head] = hook.requests
    assert f"host: hooks.vigil.test:{hook.port}".encode() in head.lower()
    assert ("hooks.vigil.test", hook.port) in calls


async def test_an_allowed_host_redirecting_to_an_internal_one_is_not_followed(client, listener_factory):
    internal = await listener_factory("127.0.0.2")
    bouncer = await listener_factory("127.0.0.1", reply=(
        f"HTTP/1.1 307 Temporary Redirect\r\nlocation: {internal.url}\r\ncontent-length: 0\r\n"
        "connection: close\r\n\r\n").encode())
    exp = (await client.post(URL, json={"name": "bounce", "kind": "webhook", "event_types": ["plate.event"],
                                        "config": {"url": bouncer.url}})).json()
    result = (await client.post(f"{URL}/{exp['id']}/test")).json()
    assert result["ok"] is False and "307" in result["error"]
    assert len(bouncer.requests) == 1 and internal.requests == []


async def test_mqtt_connects_to_the_vetted_address(monkeypatch, mqtt_broker):
    calls = patch_resolver(monkeypatch, lambda host, port, n: [ipaddress.ip_address("127.0.0.1")])
    target = Target(uuid.uuid4(), "mqtt", {"host": "broker.vigil.test", "port": mqtt_broker, "topic": "sec/t"})
    async with Senders(bus=None, timeout_s=5, allow=ssrf.AllowList.parse("127.0.0.1")) as senders:  # type: ignore[arg-type]
        [error] = await senders.send(target, [Outgoing(uuid.uuid4(), "exporter.test", {"x": 1})])
    assert error is None, error
    assert calls and all(host == "broker.vigil.test" for host, _ in calls)
    # Rebinding to a forbidden address at connect time is refused before any socket opens.
    patch_resolver(monkeypatch, lambda host, port, n: [PUBLIC] if n == 1 else [ipaddress.ip_address("10.0.0.7")])
    async with Senders(bus=None, timeout_s=5, allow=ssrf.AllowList.parse("")) as senders:  # type: ignore[arg-type]
        [error] = await senders.send(target, [Outgoing(uuid.uuid4(), "exporter.test", {"x": 1})])
    assert error == "refused"


async def test_kafka_brokers_in_metadata_are_vetted(stack):
    """The bootstrap server passed its check; the brokers its metadata advertises must pass too."""
    bootstrap = stack.settings.kafka_bootstrap_servers
    async with Senders(bus=None, timeout_s=10, allow=ssrf.AllowList.parse("")) as senders:  # type: ignore[arg-type]
        with pytest.raises(ssrf.TargetRefused):
            await senders._producer(bootstrap, {})  # the embedded broker advertises loopback
        assert senders._producers == {}, "a refused producer is stopped, not kept"
    async with Senders(bus=None, timeout_s=10, allow=ssrf.AllowList.parse("127.0.0.1")) as senders:  # type: ignore[arg-type]
        assert await senders._producer(bootstrap, {}) is not None


async def test_refused_at_send_reports_only_refused(client, monkeypatch, server):
    exp = (await client.post(URL, json={"name": "r", "kind": "webhook", "event_types": ["plate.event"],
                                        "config": {"url": "http://hooks.vigil.test:8443/x"}}))
    assert exp.status_code == 422, "a name that does not resolve is refused at save"
    patch_resolver(monkeypatch, lambda host, port, n: [PUBLIC] if n == 1 else [ipaddress.ip_address("10.1.2.3")])
    exp = (await client.post(URL, json={"name": "r", "kind": "webhook", "event_types": ["plate.event"],
                                        "config": {"url": "http://hooks.vigil.test:8443/x"}})).json()
    result = (await client.post(f"{URL}/{exp['id']}/test")).json()
    assert result == {"ok": False, "latency_ms": 0.0, "error": "refused"}
    assert "10.1.2.3" not in str(result) and "8443" not in str(result)
