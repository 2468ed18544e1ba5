"""Alerts: deduplicating raise (also under concurrency), acknowledge/resolve, filters, live stream."""

import asyncio
import json
import os
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import websockets
from sqlalchemy import select

from tests.conftest import ADMIN_KEY, auth
from vigil.alerts import service
from vigil.core.db import session_scope
from vigil.core.messaging.outbox import OutboxEvent, write_staged


async def raise_one(server, **kw):
    args = {"source": "reid", "kind": "intrusion", "severity": "warning", "title": "Person in zone",
            "subject": "person:7", "data": {"zone_id": "ZONE_001"}} | kw
    async with session_scope(server.ctx.sessionmaker) as session:
        alert, created = await service.raise_alert(session, **args)
        return alert, created


async def test_repeat_updates_instead_of_duplicating(server, client):
    first, created = await raise_one(server)
    assert created and first.count == 1
    again, created = await raise_one(server, severity="critical", title="Person in zone again")
    assert not created and again.id == first.id and again.count == 2 and again.severity == "critical"
    third, _ = await raise_one(server, severity="info", title="Person in zone, third time")
    assert third.count == 3 and third.severity == "critical", "severity is raised, never lowered"
    assert third.last_seen_at >= first.last_seen_at
    listed = (await client.get("/api/v1/alerts")).json()
    assert listed["total"] == 1 and listed["items"][0]["title"] == "Person in zone, third time"
    other, created = await raise_one(server, subject="person:8")
    assert created and other.id != first.id


async def test_a_batch_raises_each_spec_in_order_even_when_a_subject_repeats(server, client):
    """raise_alerts (the ReID consumer's batch) does what the same raise_alert calls would: a repeat
    counts on the first and is announced as an update, after the first's `alert.created`."""

    def spec(subject, **kw):
        return {"source": "reid", "kind": "loitering", "severity": "warning", "title": f"at {subject}",
                "subject": subject} | kw

    async with session_scope(server.ctx.sessionmaker) as session:
        raised = await service.raise_alerts(session, [
            spec("a"), spec("b"), spec("a", severity="critical", title="a again"), spec("c"), spec("a"),
        ])
        await write_staged(session)  # events are written at commit; this reads them inside the transaction
        events = (await session.execute(
            select(OutboxEvent.payload).where(OutboxEvent.status == "pending").order_by(OutboxEvent.id)
        )).scalars().all()
    assert [created for _, created in raised] == [True, True, False, True, False]
    a_ids = {raised[i][0].id for i in (0, 2, 4)}
    assert len(a_ids) == 1 and len({alert.id for alert, _ in raised}) == 3
    mine = [(e["type"], e["data"]["subject"], e["data"]["count"]) for e in events
            if e["data"].get("kind") == "loitering"]
    # Each alert's events in order (the outbox key is the alert id); different alerts may interleave.
    assert [m for m in mine if m[1] == "a"] == [("alert.created", "a", 1), ("alert.updated", "a", 2),
                                                ("alert.updated", "a", 3)]
    assert sorted(m for m in mine if m[1] != "a") == [("alert.created", "b", 1), ("alert.created", "c", 1)]
    body = (await client.get("/api/v1/alerts", params={"kind": "loitering"})).json()
    by_subject = {item["subject"]: item for item in body["items"]}
    assert by_subject["a"]["count"] == 3 and by_subject["a"]["severity"] == "critical"
    assert by_subject["a"]["title"] == "at a" and by_subject["b"]["count"] == 1 and body["total"] == 3
    history = (await client.get(f"/api/v1/alerts/{raised[0][0].id}/history")).json()
    assert [h["action"] for h in history if h["action"] == "created"] == ["created"]


async def test_fifty_concurrent_raises_leave_one_alert(server, client):
    results = await asyncio.gather(*(raise_one(server) for _ in range(50)))
    assert sum(created for _, created in results) == 1
    body = (await client.get("/api/v1/alerts", params={"source": "reid"})).json()
    assert body["total"] == 1 and body["items"][0]["count"] == 50


async def test_acknowledge_and_resolve_are_idempotent(server, client):
    alert, _ = await raise_one(server)
    url = f"/api/v1/alerts/{alert.id}"
    ack = await client.post(f"{url}/acknowledge")
    assert ack.status_code == 200 and ack.json()["status"] == "acknowledged" and ack.json()["acknowledged_at"]
    again = await client.put(f"{url}/acknowledge")
    assert again.json()["acknowledged_at"] == ack.json()["acknowledged_at"]
    # An acknowledged alert that recurs is still the same alert.
    bumped, created = await raise_one(server)
    assert not created and bumped.status == "acknowledged" and bumped.count == 2
    res = await client.post(f"{url}/resolve")
    assert res.json()["status"] == "resolved" and res.json()["resolved_at"]
    assert (await client.put(f"{url}/resolve")).json()["resolved_at"] == res.json()["resolved_at"]
    assert (await client.post(f"{url}/acknowledge")).json()["status"] == "resolved"
    # After resolution the same condition opens a new alert.
    fresh, created = await raise_one(server)
    assert created and fresh.id != alert.id


async def test_filters_pagination_and_errors(server, client, anon, make_key):
    await raise_one(server, source="plate", kind="watchlist_hit", severity="critical", subject="AB123")
    await raise_one(server, source="asset", kind="low_battery", severity="info", subject="tag-1")
    a, _ = await raise_one(server)
    await client.post(f"/api/v1/alerts/{a.id}/resolve")

    async def ids(**params):
        return [x["source"] for x in (await client.get("/api/v1/alerts", params=params)).json()["items"]]

    assert sorted(await ids()) == ["asset", "plate", "reid"]
    assert await ids(severity="critical") == ["plate"]
    assert await ids(status="resolved") == ["reid"]
    assert sorted(await ids(status="open")) == ["asset", "plate"]
    assert await ids(source="asset") == ["asset"]
    assert await ids(since="2999-01-01T00:00:00Z") == []
    # A naive `since` means UTC whatever the server's local zone (the driver would read it as local time).
    old_tz = os.environ.get("TZ")
    os.environ["TZ"] = "Asia/Kolkata"  # UTC+5:30
    time.tzset()
    try:
        hour_ago = (datetime.now(UTC) - timedelta(hours=1)).replace(tzinfo=None).isoformat()
        assert len(await ids(since=hour_ago)) == 3
        hour_ahead = (datetime.now(UTC) + timedelta(hours=1)).replace(tzinfo=None).isoformat()
        assert await ids(since=hour_ahead) == []
    finally:
        if old_tz is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = old_tz
        time.tzset()
    assert len(await ids(limit=1)) == 1
    for bad in ({"status": "closed"}, {"severity": "loud"}, {"since": "yesterday"}, {"limit": 501}):
        r = await client.get("/api/v1/alerts", params=bad)
        assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    missing = await client.get(f"/api/v1/alerts/{uuid.uuid4()}")
    assert missing.status_code == 404
    assert (await client.post(f"/api/v1/alerts/{uuid.uuid4()}/acknowledge")).status_code == 404
    read = await make_key("read")
    assert (await anon.post(f"/api/v1/alerts/{a.id}/acknowledge", headers=auth(read))).status_code == 403


async def test_the_page_is_encoded_exactly_as_its_response_model_would_encode_it(server, client):
    """The alerts page skips validating its rows into `Page[AlertRead]` (core/reads.json_rows): its bytes
    must still be the model's own encoding, for every state an alert can be in, and filters that combine
    and a total past the last page must still hold."""
    from pydantic import TypeAdapter

    from vigil.alerts.schemas import AlertRead
    from vigil.core.pagination import Page

    round_second = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)  # no microseconds: "...05Z", not ".000000Z"
    await raise_one(server, source="page", kind="k1", subject="open", at=round_second,
                    data={"zone_id": "Z", "nested": {"list": [1, 2.5, None, True], "text": "é\"\n"}})
    acked, _ = await raise_one(server, source="page", kind="k1", subject="acked")
    resolved, _ = await raise_one(server, source="page", kind="k2", subject="resolved", severity="critical")
    assert (await client.post(f"/api/v1/alerts/{acked.id}/acknowledge")).status_code == 200
    assert (await client.patch(f"/api/v1/alerts/{acked.id}", json={"assignee": "ops"})).status_code == 200
    assert (await client.post(f"/api/v1/alerts/{resolved.id}/resolve")).status_code == 200

    adapter = TypeAdapter(Page[AlertRead])
    r = await client.get("/api/v1/alerts", params={"source": "page"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert r.content == adapter.dump_json(adapter.validate_json(r.content))
    items = r.json()["items"]
    assert {i["subject"] for i in items} == {"open", "acked", "resolved"} and r.json()["total"] == 3
    by_subject = {i["subject"]: i for i in items}
    assert by_subject["open"]["last_seen_at"] == "2026-01-02T03:04:05Z"
    assert by_subject["acked"]["assignee"] == "ops" and by_subject["acked"]["acknowledged_by"]
    assert by_subject["resolved"]["resolved_at"].endswith("Z")

    async def subjects(**params):
        page = (await client.get("/api/v1/alerts", params={"source": "page", **params})).json()
        return sorted(i["subject"] for i in page["items"]), page["total"]

    assert await subjects(kind="k1") == (["acked", "open"], 2)
    assert await subjects(kind="k1", status="open") == (["open"], 1)
    assert await subjects(kind="k2", severity="critical", status="resolved") == (["resolved"], 1)
    assert await subjects(kind="k1", subject="acked", status="acknowledged") == (["acked"], 1)
    assert await subjects(limit=2, offset=2) == ([items[2]["subject"]], 3)
    assert await subjects(limit=2, offset=10) == ([], 3)


async def test_bad_severity_is_rejected(server):
    from vigil.core.errors import ValidationFailed

    with pytest.raises(ValidationFailed):
        await raise_one(server, severity="loud")


async def test_ws_alerts_streams_created_and_updated_with_filters(server, client):
    base = f"{server.ws_url}/ws/alerts"
    query = "severity=critical&zone_id=ZONE_009&source=reid&kind=intrusion"
    async with websockets.connect(f"{base}?{query}", additional_headers=auth(ADMIN_KEY)) as ws:
        # Each of these misses exactly one filter.
        await raise_one(server, severity="warning", subject="p1", data={"zone_id": "ZONE_009"})
        await raise_one(server, severity="critical", subject="p2", data={"zone_id": "ZONE_001"})
        await raise_one(server, severity="critical", subject="p4", source="plate", data={"zone_id": "ZONE_009"})
        await raise_one(server, severity="critical", subject="p5", kind="loitering", data={"zone_id": "ZONE_009"})
        alert, _ = await raise_one(server, severity="critical", subject="p3", data={"zone_id": "ZONE_009"})
        msg = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert msg["type"] == "alert.created" and msg["data"]["id"] == str(alert.id)
        assert msg["data"]["status"] == "open"
        await client.post(f"/api/v1/alerts/{alert.id}/acknowledge")
        msg = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert msg["type"] == "alert.updated" and msg["data"]["status"] == "acknowledged"
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(ws.recv(), 0.5)
