"""Audit log (issue 12): every write and admin action, refused ones too, in `audit_log` and
`GET /api/v1/admin/audit`, written in batches off the request path, with chunked retention."""

import uuid
from datetime import timedelta

from sqlalchemy import func, insert, select, text

from tests.conftest import auth
from tests.exporters.conftest import wait_for
from vigil.audit import service as audit
from vigil.audit.models import AuditEntry
from vigil.core.db import utcnow

AUDIT = "/api/v1/admin/audit"


async def key_of(client, name):
    keys = (await client.get("/api/v1/auth/keys")).json()["items"]
    return next(k["id"] for k in keys if k["name"] == name)


async def entries(client, **params):
    r = await client.get(AUDIT, params={"limit": 500, **params})
    assert r.status_code == 200, r.text
    return r.json()


async def test_writes_and_refusals_are_recorded_with_who_what_and_request_id(client, anon, make_key):
    writer = await make_key("write", name="ops-writer")
    reader = await make_key("read", name="ops-reader")
    writer_id, reader_id = await key_of(client, "ops-writer"), await key_of(client, "ops-reader")
    created = await anon.post("/api/v1/people", json={"global_id": 7, "name": "Ann", "zone_id": None},
                              headers=auth(writer))
    assert created.status_code == 201
    person = created.json()["id"]
    patched = await anon.patch(f"/api/v1/people/{person}", json={"name": "Anna"}, headers=auth(writer))
    assert patched.status_code == 200
    assert (await anon.delete(f"/api/v1/people/{person}", headers=auth(writer))).status_code == 204
    assert (await anon.get("/api/v1/people", headers=auth(writer))).status_code == 200  # a read: not audited
    denied = await anon.post("/api/v1/people", json={"global_id": 8, "name": "B"}, headers=auth(reader))
    assert denied.status_code == 403
    nobody = await anon.delete(f"/api/v1/people/{person}")
    assert nobody.status_code == 401

    async def written():
        return (await entries(client, key_id=writer_id))["total"] >= 3
    await wait_for(written, timeout=10)
    mine = (await entries(client, key_id=writer_id))["items"]
    assert [(e["method"], e["action"], e["status"]) for e in mine] == [
        ("DELETE", "people.delete", 204), ("PATCH", "people.update", 200), ("POST", "people.create", 201)]
    assert all(e["principal"] == "ops-writer" and e["target_id"] == person for e in mine)
    assert mine[1]["route"].startswith("/api/v1/people/{") and mine[1]["path"] == f"/api/v1/people/{person}"
    assert mine[2]["request_id"] == created.headers["x-request-id"]

    async def refused():
        return (await entries(client, key_id=reader_id))["total"] >= 1
    await wait_for(refused, timeout=10)
    [deny] = (await entries(client, key_id=reader_id))["items"]
    assert deny["status"] == 403 and deny["principal"] == "ops-reader" and deny["action"] == "people.create"
    everything = (await entries(client))["items"]
    anonymous = [e for e in everything if e["status"] == 401 and e["path"] == f"/api/v1/people/{person}"]
    assert anonymous and anonymous[0]["principal"] is None and anonymous[0]["key_id"] is None
    # Admin actions are recorded too, the env admin key as its own principal.
    admin_made = [e for e in everything
                  if e["action"] == "auth.keys.create" and e["target_id"] in (writer_id, reader_id)]
    assert len(admin_made) == 2 and all(e["principal"].startswith("admin") and e["key_id"] is None for e in admin_made)


async def test_audit_api_is_admin_only_and_filters_and_pages(client, anon, make_key, server):
    for scope in ("read", "write", "ingest"):
        assert (await anon.get(AUDIT, headers=auth(await make_key(scope)))).status_code == 403
    assert (await anon.get(AUDIT)).status_code == 401
    key_id = uuid.uuid4()
    now = utcnow()
    rows = [{"id": uuid.uuid4(), "at": now - timedelta(hours=i), "principal": "p", "key_id": key_id,
             "method": "POST", "route": "/api/v1/x", "path": "/api/v1/x", "action": "x.create",
             "target_id": None, "status": 201, "request_id": None} for i in range(5)]
    async with server.ctx.engine.begin() as conn:
        await conn.execute(insert(AuditEntry), rows)
    page = await entries(client, key_id=str(key_id), limit=2, offset=1)
    assert page["total"] == 5 and page["limit"] == 2 and page["offset"] == 1 and len(page["items"]) == 2
    assert page["items"][0]["at"] > page["items"][1]["at"], "newest first"
    since = (now - timedelta(hours=2, minutes=30)).isoformat()
    assert (await entries(client, key_id=str(key_id), since=since))["total"] == 3
    assert (await client.get(AUDIT, params={"limit": 501})).status_code == 422
    assert (await client.get(AUDIT, params={"since": "yesterday"})).status_code == 422


async def test_retention_deletes_old_entries_in_chunks_on_one_instance(server, monkeypatch):
    ctx = server.ctx
    now = utcnow()
    old = [{"id": uuid.uuid4(), "at": now - timedelta(days=100, minutes=i), "principal": None, "key_id": None,
            "method": "DELETE", "route": "r", "path": "p", "action": "a", "target_id": None, "status": 401,
            "request_id": None} for i in range(7)]
    fresh = {**old[0], "id": uuid.uuid4(), "at": now - timedelta(days=1)}
    async with ctx.engine.begin() as conn:
        await conn.execute(insert(AuditEntry), [*old, fresh])
    monkeypatch.setattr(audit, "PURGE_CHUNK", 3)

    # Another instance holds the purge lock: this one deletes nothing.
    async with ctx.engine.connect() as other:
        await other.execute(text("SELECT pg_advisory_lock(:id)"), {"id": audit.RETENTION_LOCK})
        assert await audit.purge_expired(ctx, retention_days=90) == 0
        await other.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": audit.RETENTION_LOCK})
        await other.commit()
    assert await audit.purge_expired(ctx, retention_days=90) == 7  # 3 + 3 + 1
    async with ctx.sessionmaker() as session:
        left = await session.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.id == fresh["id"]))
    assert left == 1


async def test_the_request_path_does_no_audit_io(server):
    """Recording is an append to the in-process buffer; the writer flushes it in one batch."""
    writer = server.ctx.extensions["audit"]
    async with server.ctx.engine.connect() as conn:
        count_before = await conn.scalar(select(func.count()).select_from(AuditEntry))
    record = audit.AuditRecord(at=utcnow(), principal="t", key_id=None, method="POST", route="/api/v1/t",
                               path="/api/v1/t", path_params={}, status=200, request_id="r1")
    for _ in range(3):
        writer.add(record)
    assert len(writer.buffer) >= 3, "queued in memory, not written yet"
    await writer.flush()
    async with server.ctx.engine.connect() as conn:
        count_after = await conn.scalar(select(func.count()).select_from(AuditEntry))
    assert count_after >= count_before + 3
