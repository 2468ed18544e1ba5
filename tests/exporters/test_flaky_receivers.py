"""Exporters against receivers that flap, hang or stay down: auto-disable by time, held deliveries and
their replay, and one slow receiver never delaying another exporter. Real local HTTP receivers."""

import asyncio

import pytest

from tests.exporters.conftest import Receiver, wait_for
from tests.plates.helpers import event, make_camera

URL = "/api/v1/exporters"
pytestmark = pytest.mark.fault


async def deliveries(client, exporter_id: str, **params) -> list[dict]:
    r = await client.get(f"{URL}/{exporter_id}/deliveries", params={"limit": 500} | params)
    assert r.status_code == 200, r.text
    return r.json()["items"]


async def webhook(client, name: str, url: str, **retry) -> dict:
    body = {"name": name, "kind": "webhook", "event_types": ["plate.event"], "config": {"url": url}}
    if retry:
        body["retry"] = retry
    r = await client.post(URL, json=body)
    assert r.status_code == 201, r.text
    return r.json()


async def all_delivered(client, exporter_id: str, n: int) -> bool:
    items = await deliveries(client, exporter_id)
    return len(items) == n and all(d["status"] == "delivered" for d in items)


async def test_receiver_down_for_3s_under_10_events_per_s_disables_nothing_and_loses_nothing(
    client, receiver_factory
):
    """The issue's case: 40 events at 10/s, the receiver restarts (down 3 s) in the middle."""
    receiver: Receiver = receiver_factory()
    await receiver.start()
    cam = await make_camera(client)
    exp = await webhook(client, "flappy", receiver.url, max_attempts=20, backoff_seconds=0.2)
    ids = []
    for i in range(40):
        if i == 10:
            await receiver.stop()  # connections refused from here ...
            down_at = asyncio.get_running_loop().time()
        if i == 30:
            await asyncio.sleep(max(0.0, 3.0 - (asyncio.get_running_loop().time() - down_at)))
            await receiver.start()  # ... back after 3 s
        r = await client.post("/api/v1/plates/events", json=event(cam, plate=f"FL{i:02d}"))
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
        await asyncio.sleep(0.1)
    await wait_for(lambda: all_delivered(client, exp["id"], 40), timeout=60)
    got = (await client.get(f"{URL}/{exp['id']}")).json()
    assert got["enabled"] is True and got["disabled_reason"] is None
    assert got["consecutive_failures"] == 0 and got["failing_since"] is None
    # At least once: every event arrived, each under its own delivery id.
    assert sorted({r["body"]["data"]["id"] for r in receiver.received}) == sorted(ids)
    assert set(receiver.deliveries()) == {d["id"] for d in await deliveries(client, exp["id"])}
    assert (await client.get("/api/v1/alerts", params={"source": "exporter"})).json()["items"] == []


async def test_failing_for_longer_than_the_limit_disables_then_holds_and_replays(
    server, client, receiver_factory, monkeypatch
):
    monkeypatch.setattr(server.ctx.settings, "exporter_disable_after_s", 1.5)
    receiver: Receiver = receiver_factory(status=503)
    await receiver.start()
    cam = await make_camera(client)
    exp = await webhook(client, "down", receiver.url, max_attempts=100, backoff_seconds=0.05)
    await client.post("/api/v1/plates/events", json=event(cam, plate="DN00"))

    async def disabled():
        return not (await client.get(f"{URL}/{exp['id']}")).json()["enabled"]

    await wait_for(disabled, timeout=30)
    got = (await client.get(f"{URL}/{exp['id']}")).json()
    assert got["failing_since"] is not None and "failing since" in got["disabled_reason"]
    assert "HTTP 503" in got["disabled_reason"]
    [alert] = (await client.get("/api/v1/alerts", params={"source": "exporter"})).json()["items"]
    assert alert["kind"] == "exporter_disabled" and alert["subject"] == exp["id"]
    # The delivery queued while enabled waits as pending; events arriving now are held, not sent.
    held_ids = [
        (await client.post("/api/v1/plates/events", json=event(cam, plate=f"DN{i:02d}"))).json()["id"]
        for i in range(1, 4)
    ]
    await wait_for(lambda: _count(client, exp["id"], 3, status="held"))
    held = await deliveries(client, exp["id"], status="held")
    assert len(held) == 3 and {d["attempts"] for d in held} == {0}
    seen = len(receiver.received)
    await asyncio.sleep(0.5)
    assert len(receiver.received) == seen  # disabled: nothing is attempted
    receiver.status = 200
    r = await client.post(f"{URL}/{exp['id']}/enable", params={"replay": "true"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["enabled"] is True and body["replayed"] == 3 and body["discarded"] == 0
    assert body["failing_since"] is None and body["consecutive_failures"] == 0
    await wait_for(lambda: all_delivered(client, exp["id"], 4))
    assert set(held_ids) <= {r["body"]["data"]["id"] for r in receiver.received if receiver.status == 200}
    assert (await client.get(f"/api/v1/alerts/{alert['id']}")).json()["status"] == "resolved"


async def test_enable_without_replay_discards_held_deliveries(client, receiver_factory):
    receiver: Receiver = receiver_factory()
    await receiver.start()
    cam = await make_camera(client)
    exp = await webhook(client, "paused", receiver.url)
    assert (await client.post(f"{URL}/{exp['id']}/disable")).json()["enabled"] is False
    for i in range(3):
        await client.post("/api/v1/plates/events", json=event(cam, plate=f"PA{i:02d}"))
    await wait_for(lambda: _count(client, exp["id"], 3, status="held"))
    body = (await client.post(f"{URL}/{exp['id']}/enable")).json()
    assert body["enabled"] is True and body["replayed"] == 0 and body["discarded"] == 3
    assert await deliveries(client, exp["id"]) == []
    await client.post("/api/v1/plates/events", json=event(cam, plate="PA99"))
    await wait_for(lambda: all_delivered(client, exp["id"], 1))
    assert len(receiver.received) == 1


async def test_held_deliveries_are_bounded_oldest_dropped(server, client, receiver_factory, monkeypatch):
    monkeypatch.setattr(server.ctx.settings, "exporter_max_held", 3)
    receiver: Receiver = receiver_factory()
    await receiver.start()
    cam = await make_camera(client)
    exp = await webhook(client, "bounded", receiver.url)
    await client.post(f"{URL}/{exp['id']}/disable")
    for i in range(6):
        await client.post("/api/v1/plates/events", json=event(cam, plate=f"BD{i:02d}"))
    metrics = ""

    async def six_seen():
        nonlocal metrics
        metrics = (await client.get("/metrics")).text
        return 'vigil_exporter_held_dropped_total{exporter_id="' + exp["id"] + '"} 3.0' in metrics

    await wait_for(six_seen)
    held = await deliveries(client, exp["id"], status="held")
    assert len(held) == 3
    body = (await client.post(f"{URL}/{exp['id']}/enable", params={"replay": "true"})).json()
    assert body["replayed"] == 3
    await wait_for(lambda: all_delivered(client, exp["id"], 3))
    sent = sorted(r["body"]["data"]["plate"] for r in receiver.received)
    assert len(sent) == 3 and sent == sorted(h["payload"]["data"]["plate"] for h in held)
    # The newest three were kept.
    newest = {h["payload"]["data"]["plate"] for h in held}
    assert all(p.endswith(("03", "04", "05")) for p in newest), newest


async def test_a_hanging_receiver_does_not_delay_another_exporter(server, client, receiver_factory):
    slow: Receiver = receiver_factory(hang_first=True)
    fast: Receiver = receiver_factory()
    await slow.start()
    await fast.start()
    cam = await make_camera(client)
    s = await webhook(client, "slow", slow.url)
    f = await webhook(client, "fast", fast.url)
    await client.post("/api/v1/plates/events", json=event(cam, plate="HG00"))
    await wait_for(lambda: slow.received)  # the slow one now hangs for its whole timeout
    for i in range(1, 6):
        await client.post("/api/v1/plates/events", json=event(cam, plate=f"HG{i:02d}"))
    # While the slow receiver still has its first request open, the fast one gets all six.
    await wait_for(lambda: all_delivered(client, f["id"], 6), timeout=8)
    assert len(await deliveries(client, s["id"])) == 6


async def _count(client, exporter_id: str, n: int, **params) -> bool:
    return len(await deliveries(client, exporter_id, **params)) == n
