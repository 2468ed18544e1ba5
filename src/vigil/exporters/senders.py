"""How a message leaves: webhook POST (signed), MQTT publish (QoS 1), Kafka send. No database here.

`Senders` holds the long-lived clients (one HTTP client, Kafka producers per foreign broker) and is
used by the delivery worker for its whole life, and by the `test` endpoint for one call.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import uuid
from typing import Any

import aiomqtt
import httpx
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from vigil.core.messaging import Bus, ensure_topics
from vigil.core.ssrf import pinned_client, refused
from vigil.exporters import channels
from vigil.exporters.outgoing import Outgoing, Target
from vigil.exporters.ssrf import AllowList, TargetRefused, check_endpoints, vet

USER_AGENT = "vigil-exporter/1"


def body_of(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


def signature(secret: str, body: bytes) -> str:
    """`sha256=<hex HMAC-SHA256 of the body>`, the `X-Vigil-Signature` header value."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def kafka_auth(config: dict[str, Any]) -> dict[str, Any]:
    """aiokafka client arguments for a Kafka exporter's security settings (SASL/TLS), if any."""
    protocol = config.get("security_protocol", "PLAINTEXT")
    out: dict[str, Any] = {}
    if protocol != "PLAINTEXT":
        out["security_protocol"] = protocol
    if protocol in ("SSL", "SASL_SSL"):
        from aiokafka.helpers import create_ssl_context

        out["ssl_context"] = create_ssl_context()
    if protocol.startswith("SASL"):
        out["sasl_mechanism"] = config.get("sasl_mechanism", "PLAIN")
        out["sasl_plain_username"] = config.get("sasl_username")
        out["sasl_plain_password"] = config.get("sasl_password")
    return out


def _error(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}"[:1000] if text else type(exc).__name__


class Senders:
    def __init__(self, *, bus: Bus, timeout_s: float, allow: AllowList,
                 telegram_api_base: str = "https://api.telegram.org") -> None:
        self.bus = bus
        self.telegram_api_base = telegram_api_base
        self.timeout_s = timeout_s
        self.allow = allow
        self.http: httpx.AsyncClient | None = None
        self._producers: dict[str, AIOKafkaProducer] = {}
        self._topics_ready: set[tuple[str, str]] = set()

    async def __aenter__(self) -> Senders:
        # Sockets only to vetted addresses (checked when each connection opens), and no redirects.
        self.http = pinned_client(self.allow, timeout_s=self.timeout_s, headers={"user-agent": USER_AGENT})
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.http is not None:
            await self.http.aclose()
        for producer in self._producers.values():
            await producer.stop()
        self._producers.clear()

    async def send(self, target: Target, items: list[Outgoing]) -> list[str | None]:
        """Send items in order; one error (or None) per item. After the first failure the rest are not
        tried (the target is likely down) and report the same error, prefixed 'not tried:'."""
        results: list[str | None] = []
        try:
            await self._guard(target)
        except TargetRefused as exc:
            return [refused(exc, exporter_id=target.id)] * len(items)
        sender = {"webhook": self._webhook, "mqtt": self._mqtt, "kafka": self._kafka, "email": self._email,
                  "slack": self._chat, "teams": self._chat, "telegram": self._chat}[target.kind]
        try:
            await sender(target, items, results)
        except asyncio.CancelledError:
            raise
        except TargetRefused as exc:  # refused at the socket (rebinding) or by a broker's metadata
            results.append(refused(exc, exporter_id=target.id))
        except Exception as exc:  # any failure of a target is a failed delivery
            results.append(_error(exc))
        if len(results) < len(items):
            failure = next((r for r in results if r), "unknown error")
            results.extend([f"not tried: {failure}"] * (len(items) - len(results)))
        return results

    async def _guard(self, target: Target) -> None:
        """Checked again at send time (a name that resolved to a public address may not any more); the
        sockets themselves are pinned to vetted addresses below, so this is the early, cheap refusal."""
        await check_endpoints(target.kind, target.config, self.allow)

    async def _webhook(self, target: Target, items: list[Outgoing], results: list[str | None]) -> None:
        if self.http is None:
            raise AssertionError("Senders used outside `async with`")
        config = target.config
        for item in items:
            body, content_type = channels.webhook_body(config, item.payload, body_of(item.payload))
            headers = {
                **(config.get("headers") or {}),
                "content-type": content_type,
                "X-Vigil-Delivery": str(item.delivery_id),
                "X-Vigil-Event": item.event_type,
            }
            if config.get("secret"):
                headers["X-Vigil-Signature"] = signature(config["secret"], body)
            response = await self.http.post(config["url"], content=body, headers=headers)
            if not 200 <= response.status_code < 300:
                results.append(f"HTTP {response.status_code} from the webhook")
                return
            results.append(None)

    async def _email(self, target: Target, items: list[Outgoing], results: list[str | None]) -> None:
        await channels.send_email(target, items, results, timeout_s=self.timeout_s)

    async def _chat(self, target: Target, items: list[Outgoing], results: list[str | None]) -> None:
        if self.http is None:
            raise AssertionError("Senders used outside `async with`")
        await channels.send_chat(self.http, target, items, results, telegram_api_base=self.telegram_api_base)

    async def _mqtt(self, target: Target, items: list[Outgoing], results: list[str | None]) -> None:
        config = target.config
        port = config.get("port", 1883)
        # Connect to the address that was vetted, not to whatever the name resolves to a moment later.
        [address, *_] = await vet(config["host"], port, self.allow)
        client = aiomqtt.Client(
            hostname=str(address),
            port=port,
            username=config.get("username"),
            password=config.get("password"),
            identifier=f"vigil-{target.id.hex[:8]}-{uuid.uuid4().hex[:8]}",
            timeout=self.timeout_s,
        )
        async with asyncio.timeout(self.timeout_s * max(1, len(items))):
            async with client:
                for item in items:
                    # QoS 1: publish returns once the broker acknowledged (PUBACK).
                    await client.publish(
                        config["topic"], payload=body_of(item.payload), qos=1, timeout=self.timeout_s
                    )
                    results.append(None)

    async def _check_brokers(self, producer: AIOKafkaProducer) -> None:
        """Every broker the cluster's metadata advertises must pass the guard too: bootstrap servers
        on a public address could otherwise point the client at internal ones."""
        for broker in producer.client.cluster.brokers():
            await vet(broker.host, broker.port, self.allow)

    async def _producer(self, bootstrap: str, auth: dict[str, Any]) -> AIOKafkaProducer:
        cache_key = bootstrap + "|" + repr(sorted((k, v) for k, v in auth.items() if k != "ssl_context"))
        producer = self._producers.get(cache_key)
        if producer is None:
            producer = AIOKafkaProducer(
                bootstrap_servers=bootstrap, acks="all", request_timeout_ms=int(self.timeout_s * 1000), **auth
            )
            try:
                # start() talks to the (vetted) bootstrap servers only: it fetches the metadata.
                await asyncio.wait_for(producer.start(), self.timeout_s)
                await self._check_brokers(producer)
            except BaseException:
                await producer.stop()
                raise
            self._producers[cache_key] = producer
        else:
            await self._check_brokers(producer)  # metadata refreshes may have brought new brokers
        return producer

    async def _ensure_foreign_topic(self, bootstrap: str, topic: str, auth: dict[str, Any]) -> None:
        admin = AIOKafkaAdminClient(
            bootstrap_servers=bootstrap, request_timeout_ms=int(self.timeout_s * 1000), **auth
        )
        await asyncio.wait_for(admin.start(), self.timeout_s)
        try:
            if topic not in set(await admin.list_topics()):
                try:
                    await admin.create_topics([NewTopic(topic, 1, 1)])
                except TopicAlreadyExistsError:
                    pass
        finally:
            await admin.close()

    async def _kafka(self, target: Target, items: list[Outgoing], results: list[str | None]) -> None:
        config = target.config
        bootstrap = config.get("bootstrap_servers")
        auth = kafka_auth(config)
        servers = bootstrap or self.bus.bootstrap_servers or ""
        producer = None
        if bootstrap:
            # Producer first: its metadata is checked before any client talks to an advertised broker.
            producer = await self._producer(bootstrap, auth)
        if (servers, config["topic"]) not in self._topics_ready:
            if bootstrap:
                await self._ensure_foreign_topic(bootstrap, config["topic"], auth)
            else:
                await ensure_topics(servers, {config["topic"]: 1}, timeout_s=self.timeout_s)
            self._topics_ready.add((servers, config["topic"]))
        if producer is not None:
            # The topic's partition leaders, fetched from an already vetted broker, are vetted before the
            # producer opens a connection to any of them.
            await asyncio.wait_for(producer.partitions_for(config["topic"]), self.timeout_s)
            await self._check_brokers(producer)
        for item in items:
            headers = [
                ("x-vigil-delivery", str(item.delivery_id).encode()),
                ("x-vigil-event", item.event_type.encode()),
            ]
            key, value = str(item.delivery_id).encode(), body_of(item.payload)
            async with asyncio.timeout(self.timeout_s):
                if producer is not None:
                    await (await producer.send(config["topic"], value=value, key=key, headers=headers))
                else:  # the app's own broker: the shared producer
                    await self.bus.publish(config["topic"], value, key=key, headers=headers)
            results.append(None)
