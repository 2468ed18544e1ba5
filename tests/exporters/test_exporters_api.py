"""Exporters through the real server: CRUD, validation, secrets masked, SSRF guard, enable/disable, test."""

import uuid

from tests.exporters.conftest import wait_for
from vigil.core.devstack import free_port

URL = "/api/v1/exporters"


def webhook(url: str, **kw) -> dict:
    return {"name": "hook", "kind": "webhook", "config": {"url": url}, "event_types": ["plate.event"]} | kw


async def test_crud_masks_secrets_and_keeps_them_on_update(server, client):
    from vigil.exporters.models import Exporter

    body = webhook(
        "http://127.0.0.1:9/hook",
        config={
            "url": "http://127.0.0.1:9/hook",
            "secret": "s3cr3t-key",
            "headers": {"Authorization": "Bearer tok-123", "X-Team": "ops"},
        },
        retry={"max_attempts": 3, "backoff_seconds": 0.5},
    )
    r = await client.post(URL, json=body)
    assert r.status_code == 201, r.text
    exp = r.json()
    assert exp["config"] == {
        "url": "http://127.0.0.1:9/hook",
        "secret": "***",
        "headers": {"Authorization": "***", "X-Team": "ops"},
    }
    assert exp["retry"] == {"max_attempts": 3, "backoff_seconds": 0.5} and exp["enabled"] is True
    for resp in (await client.get(f"{URL}/{exp['id']}"), await client.get(URL)):
        assert "s3cr3t-key" not in resp.text and "tok-123" not in resp.text
    # The masked config sent back to a new URL does not carry the stored secrets there (issue 12).
    moved = await client.patch(f"{URL}/{exp['id']}", json={"config": exp["config"] | {"url": "http://127.0.0.1:8/h"}})
    assert moved.status_code == 422, moved.text
    assert {tuple(e["loc"]) for e in moved.json()["errors"]} == {
        ("body", "config", "secret"), ("body", "config", "headers", "Authorization")}
    # To the same target, the masked config (with another change) keeps the stored secrets.
    patched = await client.patch(
        f"{URL}/{exp['id']}",
        json={"config": exp["config"] | {"headers": {"Authorization": "***", "X-Team": "sec"}},
              "retry": {"max_attempts": 7}},
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["retry"] == {"max_attempts": 7, "backoff_seconds": 0.5}
    async with server.ctx.sessionmaker() as session:
        stored = await session.get(Exporter, uuid.UUID(exp["id"]))
        assert stored.config == {
            "url": "http://127.0.0.1:9/hook",
            "secret": "s3cr3t-key",
            "headers": {"Authorization": "Bearer tok-123", "X-Team": "sec"},
        }
    assert (await client.post(URL, json=body)).status_code == 409
    listed = (await client.get(URL, params={"kind": "webhook"})).json()
    assert listed["total"] == 1 and (await client.get(URL, params={"kind": "mqtt"})).json()["total"] == 0
    assert (await client.delete(f"{URL}/{exp['id']}")).status_code == 204
    assert (await client.get(f"{URL}/{exp['id']}")).status_code == 404


async def test_bad_configs_and_internal_targets_are_refused(client):
    bad = [
        {"config": {}},  # webhook without url
        {"config": {"url": "ftp://127.0.0.1/x"}},  # bad scheme
        {"config": {"url": "http://127.0.0.1/x", "secret": ""}},
        {"config": {"url": "http://127.0.0.1/x", "headers": {"X-Vigil-Delivery": "x"}}},
        {"config": {"url": "http://127.0.0.1/x", "extra": 1}},
        {"config": {"url": "http://10.0.0.5/hook"}},  # private
        {"config": {"url": "http://169.254.169.254/latest/meta-data"}},  # cloud metadata (link-local)
        {"config": {"url": "http://192.168.1.20:8080/x"}},
        {"config": {"url": "http://[::1]/x"}},  # loopback, not allow-listed
        {"config": {"url": "http://no-such-host.invalid/x"}},
        {"kind": "mqtt", "config": {"host": "127.0.0.1"}},  # no topic
        {"kind": "mqtt", "config": {"topic": "t"}},  # no host
        {"kind": "mqtt", "config": {"host": "10.1.2.3", "topic": "t"}},
        {"kind": "mqtt", "config": {"host": "127.0.0.1", "topic": "plates/#"}},
        {"kind": "kafka", "config": {}},
        {"kind": "kafka", "config": {"topic": "bad topic"}},
        {"kind": "kafka", "config": {"topic": "vigil.events"}},  # would loop
        {"kind": "kafka", "config": {"topic": "t", "bootstrap_servers": "10.0.0.1:9092"}},
        {"kind": "kafka", "config": {"topic": "t", "bootstrap_servers": "nohostport"}},
        {"kind": "sftp"},
        {"event_types": ["Plate Event"]},  # (an empty list is fine: a channel only alert policies notify)
        {"retry": {"max_attempts": 0}},
        {"retry": {"backoff_seconds": 0}},
    ]
    for i, change in enumerate(bad):
        r = await client.post(URL, json=webhook("http://127.0.0.1:9/hook", name=f"x{i}") | change)
        assert r.status_code == 422, (change, r.text)
        assert r.headers["content-type"] == "application/problem+json"
    assert (await client.get(URL)).json()["total"] == 0
    ok = await client.post(URL, json=webhook("http://127.0.0.1:9/hook"))
    assert ok.status_code == 201
    exp = ok.json()
    moved = await client.patch(f"{URL}/{exp['id']}", json={"config": {"url": "http://10.9.9.9/"}})
    assert moved.status_code == 422
    assert (await client.patch(f"{URL}/{exp['id']}", json={"kind": "mqtt"})).status_code == 422
    assert (await client.patch(f"{URL}/{exp['id']}", json={"enabled": None})).status_code == 422
    assert (await client.patch(f"{URL}/{uuid.uuid4()}", json={"name": "n"})).status_code == 404


async def test_enable_disable_and_test_endpoint(client, receiver_factory):
    receiver = receiver_factory(secret="topsecret")
    await receiver.start()
    exp = (
        await client.post(
            URL, json=webhook(receiver.url, config={"url": receiver.url, "secret": "topsecret"})
        )
    ).json()
    off = await client.post(f"{URL}/{exp['id']}/disable")
    assert off.status_code == 200 and off.json()["enabled"] is False and off.json()["disabled_reason"]
    on = await client.post(f"{URL}/{exp['id']}/enable")
    assert on.json()["enabled"] is True and on.json()["disabled_reason"] is None
    result = await client.post(f"{URL}/{exp['id']}/test")
    assert result.status_code == 200, result.text
    body = result.json()
    assert body["ok"] is True and body["error"] is None and body["latency_ms"] >= 0
    [got] = receiver.received
    assert got["signature_ok"] and got["event"] == "exporter.test" and got["body"]["type"] == "exporter.test"
    # Nothing listens here: the test reports the failure instead of raising.
    closed = (await client.post(URL, json=webhook(f"http://127.0.0.1:{free_port()}/x", name="closed"))).json()
    failed = (await client.post(f"{URL}/{closed['id']}/test")).json()
    assert failed["ok"] is False and failed["error"]
    # A test is not a delivery.
    assert (await client.get(f"{URL}/{exp['id']}/deliveries")).json()["total"] == 0
    for path in ("enable", "disable", "test", "deliveries"):
        method = client.get if path == "deliveries" else client.post
        assert (await method(f"{URL}/{uuid.uuid4()}/{path}")).status_code == 404


async def test_webhook_delivery_is_signed_and_logged(client, receiver_factory):
    from tests.plates.helpers import event, make_camera

    receiver = receiver_factory(secret="whsec")
    await receiver.start()
    cam = await make_camera(client)
    exp = (
        await client.post(
            URL,
            json=webhook(
                receiver.url, config={"url": receiver.url, "secret": "whsec", "headers": {"X-Team": "ops"}}
            ),
        )
    ).json()
    ev = (await client.post("/api/v1/plates/events", json=event(cam))).json()
    await wait_for(lambda: receiver.received)
    [got] = receiver.received
    assert got["signature_ok"] and got["event"] == "plate.event" and got["headers"]["x-team"] == "ops"
    assert got["body"]["type"] == "plate.event" and got["body"]["data"]["id"] == ev["id"]

    async def delivered():
        items = (await client.get(f"{URL}/{exp['id']}/deliveries")).json()["items"]
        return items if items and items[0]["status"] == "delivered" else None

    await wait_for(delivered)
    [delivery] = await delivered()
    assert delivery["id"] == got["delivery"] and delivery["attempts"] == 1 and delivery["last_error"] is None
    assert delivery["event_type"] == "plate.event" and delivery["delivered_at"]
    assert (await client.get(f"{URL}/{exp['id']}/deliveries", params={"status": "failed"})).json()[
        "total"
    ] == 0
    assert (await client.get(f"{URL}/{exp['id']}/deliveries", params={"status": "lost"})).status_code == 422
