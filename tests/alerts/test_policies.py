"""Alert policies, mutes, snooze, assignee, comments and history, live: real server, real clocks made fast
(the evaluator runs every 0.2 s in the tests; steps and reminders are 1-2 s apart)."""

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest_asyncio
import websockets

from tests.conftest import ADMIN_KEY, auth
from tests.exporters.conftest import Receiver, wait_for
from vigil.alerts import policies, service
from vigil.alerts.matching import DAYS
from vigil.core.db import session_scope

POLICIES = "/api/v1/alert-policies"
ALERTS = "/api/v1/alerts"


@pytest_asyncio.fixture(loop_scope="session")
async def receivers():
    made: list[Receiver] = []

    async def make() -> Receiver:
        r = Receiver()
        await r.start()
        made.append(r)
        return r

    yield make
    for r in made:
        await r.stop()


async def channel(client, receiver: Receiver, name: str, event_types=()) -> str:
    r = await client.post(
        "/api/v1/exporters",
        json={
            "name": name,
            "kind": "webhook",
            "event_types": list(event_types),
            "config": {"url": receiver.url},
            "retry": {"max_attempts": 3, "backoff_seconds": 0.2},
        },
    )
    assert r.status_code == 201, r.text
    return r.json()["id"]


async def raise_one(server, **kw):
    args = {
        "source": "test",
        "kind": "intrusion",
        "severity": "warning",
        "title": "Person in zone",
        "subject": "person:7",
        "data": {"zone_id": "ZONE_001", "camera_id": "cam-1"},
    } | kw
    async with session_scope(server.ctx.sessionmaker) as session:
        alert, _ = await service.raise_alert(session, **args)
    return str(alert.id)


def notes(receiver: Receiver, reason: str | None = None) -> list[dict]:
    out = [r["body"] for r in receiver.received if r["body"].get("type") == "alert.notification"]
    return [b for b in out if reason is None or b["data"]["reason"] == reason]


async def history(client, alert_id: str) -> list[dict]:
    r = await client.get(f"{ALERTS}/{alert_id}/history")
    assert r.status_code == 200, r.text
    return r.json()


async def test_policy_crud_and_unknown_exporters(client):
    rcv_id = str(uuid.uuid4())
    r = await client.post(
        POLICIES, json={"name": "p", "notify": [rcv_id], "escalate": [{"after_s": 5, "notify": [rcv_id]}]}
    )
    assert r.status_code == 422, r.text
    errors = r.json()["errors"]
    assert len(errors) == 2 and all(e["type"] == "unknown_reference" for e in errors)
    assert r.headers["content-type"].startswith("application/problem+json")
    exp = (
        await client.post(
            "/api/v1/exporters",
            json={
                "name": "x",
                "kind": "webhook",
                "event_types": [],
                "config": {"url": "http://127.0.0.1:9/h"},
            },
        )
    ).json()
    body = {
        "name": "night desk",
        "match": {"source": "reid", "subject": "global_id:*", "zone_id": "Z1"},
        "notify": [exp["id"]],
        "quiet_resolve_s": 600,
        "remind_every_s": 300,
        "escalate": [{"after_s": 900, "severity": "critical"}, {"after_s": 60}],
        "schedule": {
            "tz": "Europe/Paris",
            "days": {"mon": [["08:00", "18:00"]]},
            "except_dates": ["2026-12-25"],
        },
        "enabled": True,
    }
    r = await client.post(POLICIES, json=body)
    assert r.status_code == 201, r.text
    policy = r.json()
    assert policy["match"] == body["match"] and policy["notify"] == [exp["id"]]
    assert [s["after_s"] for s in policy["escalate"]] == [60, 900]  # kept in order of time
    assert (await client.post(POLICIES, json={"name": "night desk"})).status_code == 409
    assert (await client.get(POLICIES)).json()["total"] == 1
    r = await client.patch(f"{POLICIES}/{policy['id']}", json={"enabled": False, "remind_every_s": None})
    assert r.status_code == 200 and r.json()["enabled"] is False and r.json()["remind_every_s"] is None
    assert (await client.patch(f"{POLICIES}/{policy['id']}", json={"notify": [rcv_id]})).status_code == 422
    assert (
        await client.post(POLICIES, json={"name": "bad", "schedule": {"tz": "Nowhere/X", "days": {}}})
    ).status_code == 422
    assert (await client.get(f"{POLICIES}/{uuid.uuid4()}")).status_code == 404
    assert (await client.delete(f"{POLICIES}/{policy['id']}")).status_code == 204
    assert (await client.get(f"{POLICIES}/{policy['id']}")).status_code == 404


async def test_new_alert_notifies_the_policy_channels_only(server, client, receivers):
    routed, subscribed = await receivers(), await receivers()
    routed_id = await channel(client, routed, "routed")  # no event_types: policies only
    await channel(client, subscribed, "subscribed", ["alert.created"])  # event_types keep working
    await client.post(
        POLICIES, json={"name": "zone 1", "match": {"zone_id": "ZONE_001"}, "notify": [routed_id]}
    )
    alert_id = await raise_one(server)
    await raise_one(server, subject="person:8", data={"zone_id": "ZONE_002"})  # matches no policy
    await wait_for(lambda: len(notes(routed)) == 1 and len(subscribed.received) == 2)
    note = notes(routed)[0]["data"]
    assert (
        note["alert"]["id"] == alert_id and note["reason"] == "created" and note["policy"]["name"] == "zone 1"
    )
    assert {r["body"]["type"] for r in subscribed.received} == {"alert.created"}
    [created] = await history(client, alert_id)
    assert created["action"] == "created" and created["by"] == "system"
    assert created["detail"]["policies"] == ["zone 1"] and created["detail"]["notified"] == ["zone 1"]
    await asyncio.sleep(0.5)
    assert len(notes(routed)) == 1  # a policy without reminders notifies once


async def test_escalation_steps_and_reminders_until_acknowledged(server, client, receivers):
    first, second = await receivers(), await receivers()
    first_id, second_id = await channel(client, first, "first"), await channel(client, second, "second")
    await client.post(
        POLICIES,
        json={
            "name": "escalating",
            "match": {"source": "test", "kind": "intrusion"},
            "notify": [first_id],
            "remind_every_s": 1,
            "escalate": [{"after_s": 1, "severity": "critical", "notify": [second_id]}],
        },
    )
    async with websockets.connect(
        f"{server.ws_url}/ws/alerts?source=test", additional_headers=auth(ADMIN_KEY)
    ) as ws:
        alert_id = await raise_one(server, severity="info")
        assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "alert.created"
        await wait_for(lambda: notes(second, "escalated"), timeout=10)
        msg = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert msg["type"] == "alert.updated" and msg["data"]["severity"] == "critical"
    note = notes(second, "escalated")[0]["data"]
    assert note["alert"]["severity"] == "critical" and note["step"] == 1
    assert (await client.get(f"{ALERTS}/{alert_id}")).json()["severity"] == "critical"
    await wait_for(lambda: len(notes(first, "reminder")) >= 1, timeout=10)
    actions = [h["action"] for h in await history(client, alert_id)]
    assert actions[:2] == ["created", "escalated"] and "reminded" in actions
    escalated = next(h for h in await history(client, alert_id) if h["action"] == "escalated")
    assert escalated["by"] == "policy:escalating" and escalated["detail"]["from_severity"] == "info"
    await client.post(f"{ALERTS}/{alert_id}/acknowledge")
    await asyncio.sleep(0.5)  # a pass that was already under way may still send one
    before = len(notes(first))
    await asyncio.sleep(2.5)  # more than two reminder periods
    assert len(notes(first)) == before
    assert len(notes(second)) == 1  # the only step was taken once


async def test_quiet_resolve_after_no_recurrence(server, client):
    await client.post(POLICIES, json={"name": "quiet", "match": {"kind": "loitering"}, "quiet_resolve_s": 3})
    alert_id = await raise_one(server, kind="loitering", subject="cam-9")
    other = await raise_one(server, kind="intrusion", subject="cam-9")
    for _ in range(3):  # it keeps recurring (well within 3 s): it stays open
        await asyncio.sleep(0.3)
        await raise_one(server, kind="loitering", subject="cam-9")
        assert (await client.get(f"{ALERTS}/{alert_id}")).json()["status"] == "open"

    async def resolved() -> bool:
        return (await client.get(f"{ALERTS}/{alert_id}")).json()["status"] == "resolved"

    await wait_for(resolved, timeout=10)
    alert = (await client.get(f"{ALERTS}/{alert_id}")).json()
    assert alert["resolved_by"] == "policy:quiet" and alert["count"] == 4
    last = (await history(client, alert_id))[-1]
    assert (
        last["action"] == "resolved" and last["detail"]["reason"] == "quiet" and last["by"] == "policy:quiet"
    )
    assert (await client.get(f"{ALERTS}/{other}")).json()["status"] == "open"  # not matched


def _day_boundary_zone(now: datetime) -> ZoneInfo:
    """A zone whose local date is not today's UTC date right now (UTC+14 late in the UTC day, else UTC-11)."""
    for name in ("Pacific/Kiritimati", "Pacific/Pago_Pago"):
        if now.astimezone(ZoneInfo(name)).date() != now.date():
            return ZoneInfo(name)
    raise AssertionError("unreachable: one of the two is always on another date")


async def test_schedule_suppresses_outside_active_hours_across_a_day_boundary(server, client, receivers):
    rcv = await receivers()
    rcv_id = await channel(client, rcv, "desk")
    now = datetime.now(UTC)
    zone = _day_boundary_zone(now)
    local_day, utc_day = DAYS[now.astimezone(zone).weekday()], DAYS[now.weekday()]
    all_day = [["00:00", "24:00"]]
    # Active on the UTC weekday only: in that zone it is already (or still) another day -> suppressed.
    await client.post(
        POLICIES,
        json={
            "name": "utc day",
            "match": {"kind": "k1"},
            "notify": [rcv_id],
            "schedule": {"tz": zone.key, "days": {utc_day: all_day}},
        },
    )
    # Active on the zone's local weekday -> notified.
    await client.post(
        POLICIES,
        json={
            "name": "local day",
            "match": {"kind": "k2"},
            "notify": [rcv_id],
            "schedule": {"tz": zone.key, "days": {local_day: all_day}},
        },
    )
    async with websockets.connect(
        f"{server.ws_url}/ws/alerts?source=test", additional_headers=auth(ADMIN_KEY)
    ) as ws:
        quiet = await raise_one(server, kind="k1")
        msg = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert (
            msg["type"] == "alert.updated" and msg["data"]["suppressed"] is True
        )  # stored, not pushed as new
        loud = await raise_one(server, kind="k2")
        msg = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert (
            msg["type"] == "alert.created"
            and msg["data"]["id"] == loud
            and msg["data"]["suppressed"] is False
        )
    await wait_for(lambda: notes(rcv))
    await asyncio.sleep(0.5)
    assert [n["data"]["alert"]["id"] for n in notes(rcv)] == [loud]
    listed = (await client.get(ALERTS, params={"source": "test"})).json()
    assert {a["id"] for a in listed["items"]} == {quiet, loud}


async def test_mute_silences_until_it_expires(server, client, receivers):
    rcv = await receivers()
    rcv_id = await channel(client, rcv, "desk")
    await client.post(
        POLICIES, json={"name": "cams", "match": {"source": "test"}, "notify": [rcv_id], "remind_every_s": 1}
    )
    until = datetime.now(UTC) + timedelta(seconds=2)
    r = await client.post(
        f"{ALERTS}/mutes", json={"match": {"camera_id": "cam-1"}, "until": until.isoformat()}
    )
    assert r.status_code == 201, r.text
    mute = r.json()
    listed = await client.get(f"{ALERTS}/mutes")  # not taken for an alert id
    assert listed.status_code == 200 and [m["id"] for m in listed.json()["items"]] == [mute["id"]]
    muted = await raise_one(server, subject="cam-1")
    await raise_one(server, subject="cam-1")  # counted while muted
    alert = (await client.get(f"{ALERTS}/{muted}")).json()
    assert alert["muted"] is True and alert["count"] == 2
    await wait_for(lambda: notes(rcv, "reminder"), timeout=10)  # the mute ended: reminders resume
    assert notes(rcv, "created") == []  # a muted alert is never announced to the channels as new
    # Nothing was sent while the mute held (each notification carries the time it was made).
    assert all(datetime.fromisoformat(n["ts"]) >= until for n in notes(rcv))
    assert notes(rcv, "reminder")[0]["data"]["alert"]["id"] == muted
    fresh = await raise_one(server, subject="cam-2")
    await wait_for(lambda: any(n["data"]["alert"]["id"] == fresh for n in notes(rcv, "created")))
    assert (
        await client.post(f"{ALERTS}/mutes", json={"match": {}, "until": until.isoformat()})
    ).status_code == 422
    assert (await client.delete(f"{ALERTS}/mutes/{mute['id']}")).status_code == 204
    assert (await client.delete(f"{ALERTS}/mutes/{mute['id']}")).status_code == 404


async def test_people_on_alerts_snooze_and_history(server, client, receivers, make_key):
    rcv = await receivers()
    rcv_id = await channel(client, rcv, "desk")
    await client.post(
        POLICIES,
        json={"name": "remind", "match": {"source": "test"}, "notify": [rcv_id], "remind_every_s": 1},
    )
    alice = {"Authorization": f"Bearer {await make_key('write', name='alice')}"}
    alert_id = await raise_one(server)
    await wait_for(lambda: notes(rcv, "created"))
    until = datetime.now(UTC) + timedelta(seconds=2)
    r = await client.post(f"{ALERTS}/{alert_id}/snooze", json={"until": until.isoformat()}, headers=alice)
    assert r.status_code == 200 and r.json()["id"] == alert_id and r.json()["snoozed_until"] is not None
    snoozed_at = datetime.now(UTC)
    await wait_for(lambda: [n for n in notes(rcv, "reminder") if datetime.fromisoformat(n["ts"]) >= until],
                   timeout=10)  # reminders resume once the snooze is over
    # None was made while the snooze held (one may have gone out before the snooze, on a loaded machine).
    assert not [n for n in notes(rcv, "reminder") if snoozed_at < datetime.fromisoformat(n["ts"]) < until]
    r = await client.patch(f"{ALERTS}/{alert_id}", json={"assignee": "bob"}, headers=alice)
    assert r.status_code == 200 and r.json()["assignee"] == "bob"
    r = await client.post(f"{ALERTS}/{alert_id}/comments", json={"text": "on my way"}, headers=alice)
    assert r.status_code == 201 and r.json()["text"] == "on my way" and r.json()["by"] == "alice"
    assert (await client.post(f"{ALERTS}/{alert_id}/comments", json={"text": ""})).status_code == 422
    assert (await client.post(f"{ALERTS}/{uuid.uuid4()}/comments", json={"text": "x"})).status_code == 404
    await client.post(f"{ALERTS}/{alert_id}/acknowledge", headers=alice)
    await client.post(f"{ALERTS}/{alert_id}/resolve", headers=alice)
    steps = [(h["action"], h["by"]) for h in await history(client, alert_id) if h["action"] != "reminded"]
    assert steps == [
        ("created", "system"),
        ("snoozed", "alice"),
        ("updated", "alice"),
        ("commented", "alice"),
        ("acknowledged", "alice"),
        ("resolved", "alice"),
    ]
    entries = {h["action"]: h for h in await history(client, alert_id)}
    assert entries["updated"]["detail"] == {"assignee": {"from": None, "to": "bob"}}
    assert entries["resolved"]["detail"]["reason"] == "manual"
    assert (
        await client.post(f"{ALERTS}/{alert_id}/snooze", json={"until": until.isoformat()})
    ).status_code == 409
    assert (await client.get(f"{ALERTS}/{uuid.uuid4()}/history")).status_code == 404


async def test_one_evaluator_at_a_time(server):
    """The pass takes a transaction-scoped advisory lock: a second one meanwhile does nothing."""
    async with server.ctx.sessionmaker() as a, server.ctx.sessionmaker() as b, a.begin():
        await _held(a)
        async with b.begin():
            assert await policies.evaluate(b) is None


async def _held(session) -> None:
    for _ in range(100):  # the server's own evaluator may hold it for a moment
        from sqlalchemy import func, select

        if await session.scalar(select(func.pg_try_advisory_xact_lock(policies.LOCK_KEY))):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("could not take the evaluator lock")


async def _evaluate_at(server, now: datetime) -> dict:
    """One pass with an injected clock (the server's own evaluator may hold the lock for a moment)."""
    for _ in range(100):
        async with session_scope(server.ctx.sessionmaker) as session:
            counts = await policies.evaluate(session, now=now)
        if counts is not None:
            return counts
        await asyncio.sleep(0.05)
    raise AssertionError("the evaluator lock stayed taken")


async def test_passes_with_an_injected_clock(server, client, receivers):
    rcv = await receivers()
    rcv_id = await channel(client, rcv, "desk")
    await client.post(POLICIES, json={
        "name": "steps", "match": {"kind": "k-steps"}, "notify": [rcv_id], "remind_every_s": 300,
        "escalate": [{"after_s": 1200, "severity": "critical"}, {"after_s": 600, "severity": "warning"}]})
    await client.post(POLICIES, json={"name": "quiet", "match": {"kind": "k-quiet"}, "quiet_resolve_s": 7200,
                                      "remind_every_s": 30})
    stepped = await raise_one(server, kind="k-steps", severity="info")
    quiet = await raise_one(server, kind="k-quiet")
    start = datetime.now(UTC)
    counts = await _evaluate_at(server, start + timedelta(minutes=30))  # both steps are due: taken in order
    assert (counts["escalated"], counts["reminded"], counts["resolved"]) == (2, 1, 0)
    entries = [h for h in await history(client, stepped) if h["action"] == "escalated"]
    assert [(h["detail"]["step"], h["detail"]["severity"]) for h in entries] == [(1, "warning"), (2, "critical")]
    assert (await client.get(f"{ALERTS}/{stepped}")).json()["severity"] == "critical"
    counts = await _evaluate_at(server, start + timedelta(minutes=36))  # > 5 min after the steps' notification
    assert (counts["escalated"], counts["reminded"]) == (0, 2)
    # Three hours on: for "quiet", quiet resolve and a due reminder meet in one pass: resolved, not reminded.
    counts = await _evaluate_at(server, start + timedelta(hours=3))
    assert (counts["resolved"], counts["reminded"]) == (1, 1)
    alert = (await client.get(f"{ALERTS}/{quiet}")).json()
    assert alert["status"] == "resolved" and alert["resolved_by"] == "policy:quiet"
    assert [h["action"] for h in await history(client, quiet)][-1] == "resolved"
    assert (await client.get(f"{ALERTS}/{stepped}")).json()["status"] == "open"
    await wait_for(lambda: len(notes(rcv, "escalated")) == 2 and len(notes(rcv, "reminder")) == 2)
