"""core/reads.Reads: SQLAlchemy Core statements on an asyncpg pool, as SQLAlchemy would run them, with
SQLAlchemy's errors when the database is not there or busy."""

import copy
import uuid

import pytest
from sqlalchemy import bindparam, literal_column, select, type_coerce
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.types import TypeDecorator, Unicode

from tests.conftest import auth
from vigil.core.devstack import free_port
from vigil.core.reads import Reads
from vigil.people.models import Person

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_rows_read_on_the_pool_equal_the_orm_answer(client, server, base_settings):
    person = (await client.post("/api/v1/people", json={"global_id": 91001, "name": "Reads Person"})).json()
    orm = await client.get(f"/api/v1/people/{person['id']}")
    assert orm.status_code == 200 and orm.json() == person
    assert server.app.state.ctx.reads._pool is not None  # GET /people/{id} opened the read pool

    reads = Reads(base_settings.database_url, max_size=2, acquire_timeout_s=2)
    try:
        by_id = select(Person.id, Person.name, Person.zone_id, Person.created_at).where(
            Person.id == bindparam("ident"))
        row = await reads.one(by_id, ident=uuid.UUID(person["id"]))
        assert row is not None and row["name"] == "Reads Person" and row["zone_id"] is None
        assert row["created_at"].utcoffset() is not None and str(row["id"]) == person["id"]
        assert await reads.one(by_id, ident=uuid.uuid4()) is None
        # A value bound in the statement itself (its default), one given per call, and JSONB decoded as
        # SQLAlchemy's dialect decodes it.
        named = select(Person.name).where(Person.name == "Reads Person", Person.id == bindparam("ident"))
        assert await reads.all(named, ident=uuid.UUID(person["id"])) == [{"name": "Reads Person"}]
        doc = select(type_coerce(literal_column("""'{"nested": [1, {"a": true}]}'::jsonb"""), JSONB).label("doc"),
                     type_coerce(bindparam("given"), JSONB).label("given"))
        assert await reads.one(doc, given={"x": [None]}) == {"doc": {"nested": [1, {"a": True}]},
                                                             "given": {"x": [None]}}
    finally:
        await reads.close()


async def test_statements_it_cannot_run_exactly_are_refused():
    class Shouty(TypeDecorator):
        impl = Unicode
        cache_ok = True

        def process_result_value(self, value, dialect):
            return value.upper()

    reads = Reads("postgresql+asyncpg://u@127.0.0.1:1/x", max_size=1, acquire_timeout_s=1)
    with pytest.raises(TypeError, match="plain SQLAlchemy types"):
        await reads.one(select(Person.name.cast(Shouty())))
    with pytest.raises(TypeError, match="expanding"):
        await reads.all(select(Person.id).where(Person.id.in_(bindparam("ids", expanding=True))), ids=[])


async def test_an_unreachable_database_is_operational_error_and_a_busy_pool_is_pool_timeout(base_settings):
    nowhere = Reads(f"postgresql+asyncpg://vigil@127.0.0.1:{free_port()}/vigil", max_size=1, acquire_timeout_s=2)
    with pytest.raises(OperationalError):
        await nowhere.one(select(Person.id))
    await nowhere.close()

    reads = Reads(base_settings.database_url, max_size=1, acquire_timeout_s=0.3)
    try:
        pool = await reads._get_pool()
        held = await pool.acquire()
        try:
            with pytest.raises(PoolTimeout):
                await reads.one(select(Person.id))
        finally:
            await pool.release(held)
        assert (await reads.all(select(Person.id).where(Person.name == "no such person"))) == []
    finally:
        await reads.close()


async def test_a_missing_person_is_the_same_404_as_before(client):
    ident = uuid.uuid4()
    r = await client.get(f"/api/v1/people/{ident}")
    assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["detail"] == f"Person {ident} does not exist."
    r = await client.get("/api/v1/people/not-a-uuid")
    assert r.status_code == 422


async def test_a_read_key_can_read_a_person(client, anon, make_key):
    person = (await client.post("/api/v1/people", json={"global_id": 91002, "name": "Keyed"})).json()
    key = await make_key("read")
    r = await anon.get(f"/api/v1/people/{person['id']}", headers=auth(key))
    assert r.status_code == 200 and r.json()["name"] == "Keyed"


async def test_a_statement_built_per_request_compiles_once_and_keeps_its_own_values(client, base_settings):
    """Filtered pages are new statements each time: one compiled form per shape, with each statement's
    own values (never the first one's), and paginate on Reads counts and pages as on a session."""
    from vigil.core.pagination import PageParams, paginate

    for global_id, name in ((91101, "Shape A"), (91102, "Shape B"), (91103, "Shape B")):
        r = await client.post("/api/v1/people", json={"global_id": global_id, "name": name})
        assert r.status_code == 201, r.text
    reads = Reads(base_settings.database_url, max_size=2, acquire_timeout_s=2)
    try:
        def named(name: str):
            return select(Person.global_id).where(Person.name == name).order_by(Person.global_id)

        assert await reads.all(named("Shape A")) == [{"global_id": 91101}]
        assert await reads.all(named("Shape B")) == [{"global_id": 91102}, {"global_id": 91103}]
        assert await reads.all(named("Shape A")) == [{"global_id": 91101}]
        assert len(reads._compiled) == 1

        page = await paginate(reads, named("Shape B"), PageParams(limit=1, offset=1), dicts=True)
        assert page == {"items": [{"global_id": 91103}], "total": 2, "limit": 1, "offset": 1}
        # The total holds past the last page, and with no match at all.
        assert await paginate(reads, named("Shape B"), PageParams(limit=1, offset=5), dicts=True) == {
            "items": [], "total": 2, "limit": 1, "offset": 5}
        assert await paginate(reads, named("Nobody"), PageParams(), dicts=True) == {
            "items": [], "total": 0, "limit": 50, "offset": 0}
        with pytest.raises(TypeError):
            await paginate(reads, named("Shape B"), PageParams(), dicts=False)
    finally:
        await reads.close()


async def test_a_statement_with_parameters_is_one_shape_and_pages_alike_on_reads_and_on_a_session(
        client, base_settings):
    """A statement built once with `bindparam`s (a filter shape) and run with values: the same object is
    recognised without recomputing its cache key, each call gets its own values, and paginate gives the
    same page on the read pool as on a session."""
    from sqlalchemy import bindparam

    from vigil.core.db import create_engine, create_sessionmaker, session_scope
    from vigil.core.pagination import PageParams, paginate

    for global_id, name in ((91201, "Param A"), (91202, "Param B"), (91203, "Param B")):
        r = await client.post("/api/v1/people", json={"global_id": global_id, "name": name})
        assert r.status_code == 201, r.text
    named = select(Person.global_id).where(Person.name == bindparam("name")).order_by(Person.global_id)
    reads = Reads(base_settings.database_url, max_size=2, acquire_timeout_s=2)
    engine = create_engine(base_settings.database_url or "")
    try:
        assert await reads.all(named, name="Param A") == [{"global_id": 91201}]
        assert await reads.all(named, name="Param B") == [{"global_id": 91202}, {"global_id": 91203}]
        assert id(named) in reads._by_identity and len(reads._compiled) == 1
        for params in (PageParams(limit=1, offset=1), PageParams(limit=1, offset=9), PageParams()):
            on_reads = await paginate(reads, named, params, dicts=True, values={"name": "Param B"})
            async with session_scope(create_sessionmaker(engine)) as session:
                on_session = await paginate(session, named, params, dicts=True, values={"name": "Param B"})
            assert on_reads == on_session and on_reads["total"] == 2, (params, on_reads, on_session)
        assert (await paginate(reads, named, PageParams(), dicts=True, values={"name": "Param A"}))["items"] == [
            {"global_id": 91201}]
    finally:
        await reads.close()
        await engine.dispose()


async def test_a_page_with_rows_is_one_query_whose_sort_still_stops_at_the_page(client, base_settings):
    """The total rides on the page's rows as a scalar subquery: one statement per page, and PostgreSQL
    plans the count once (an InitPlan) with no window over every matching row. Only an offset past the
    end counts on its own."""
    from vigil.core.pagination import PageParams, _paged, paginate

    for global_id in (91301, 91302, 91303):
        r = await client.post("/api/v1/people", json={"global_id": global_id, "name": "One Query"})
        assert r.status_code == 201, r.text
    named = select(Person.global_id).where(Person.name == "One Query").order_by(Person.global_id)
    statements: list[str] = []

    class Counting(Reads):
        async def _fetch(self, statement, params):  # type: ignore[no-untyped-def]
            statements.append(self._statement(statement)[0].compiled.string)
            return await super()._fetch(statement, params)

    reads = Counting(base_settings.database_url, max_size=2, acquire_timeout_s=2)
    try:
        page = await paginate(reads, named, PageParams(limit=2, offset=1), dicts=True)
        assert page == {"items": [{"global_id": 91302}, {"global_id": 91303}], "total": 3, "limit": 2, "offset": 1}
        assert len(statements) == 1
        assert await paginate(reads, named, PageParams(limit=2, offset=3), dicts=True) == {
            "items": [], "total": 3, "limit": 2, "offset": 3}
        assert len(statements) == 3  # the empty page, then its count

        _, page_stmt = _paged(named)
        compiled, extracted = reads._statement(page_stmt)
        async with (await reads._get_pool()).acquire() as conn:
            explained = await conn.fetchval("EXPLAIN (FORMAT JSON) " + compiled.compiled.string,
                                            *compiled.args({"__vigil_limit": 2, "__vigil_offset": 0}, extracted))
        text = str(explained)
        assert "WindowAgg" not in text and "InitPlan" in text, text
    finally:
        await reads.close()


async def test_after_the_database_drops_the_connections_reads_fail_at_most_once_and_only_with_503(base_settings):
    """A restart drops every connection. Whether the server's termination notices reached the pooled
    connections before the next read (asyncpg then reconnects, or fails with InternalClientError) or not
    (the query fails on the dead socket), at most one read fails, only as OperationalError (a 503), and the
    pool then replaces all its connections, so the next reads work."""
    import asyncio

    import asyncpg

    name = f"vigil-reads-{uuid.uuid4().hex[:8]}"
    reads = Reads(base_settings.database_url, max_size=3, acquire_timeout_s=2, application_name=name)
    admin = await asyncpg.connect(base_settings.database_url.replace("postgresql+asyncpg://", "postgresql://"))
    probe = select(Person.id).where(Person.name == "no such person")
    try:
        for delay in (0.0, 0.3, 0.0):
            pool = await reads._get_pool()
            held = [await pool.acquire() for _ in range(3)]  # three open connections in the pool
            for conn in held:
                await pool.release(conn)
            killed = await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1",
                name)
            assert killed == 3
            await asyncio.sleep(delay)
            failures = 0
            for _ in range(4):
                try:
                    assert await reads.all(probe) == []
                except OperationalError:
                    failures += 1
            assert failures <= 1, (delay, failures)
            assert await reads.all(probe) == []
    finally:
        await admin.close()
        await reads.close()


async def test_json_deeper_than_pydantic_core_parses_is_still_decoded():
    """JSONB can nest deeper than pydantic-core's parser goes (about 200 levels): the stdlib takes it."""
    import json

    from vigil.core.reads import _decode_json

    deep = "[" * 300 + "]" * 300
    assert _decode_json(deep) == json.loads(deep)
    assert _decode_json('{"a": [1, 2.5, null, true], "b": "\\u00e9"}') == {"a": [1, 2.5, None, True], "b": "é"}


async def test_a_read_is_its_one_statement_with_no_reset_round_trip_when_the_connection_goes_back(base_settings):
    """asyncpg's pool sends `... RESET ALL` on every release unless told otherwise: a second round trip per
    read. The reads pool's connections go back as they are, so the last statement the server saw on one is
    the read itself; and a connection left inside a transaction is still rolled back on release."""
    import asyncpg

    name = f"vigil-reads-{uuid.uuid4().hex[:8]}"
    reads = Reads(base_settings.database_url, max_size=1, acquire_timeout_s=2, application_name=name)
    admin = await asyncpg.connect(base_settings.database_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        marker = f"reads-marker-{uuid.uuid4().hex[:8]}"
        assert await reads.one(select(literal_column(f"'{marker}'").label("m"))) == {"m": marker}
        last = await admin.fetchval("SELECT query FROM pg_stat_activity WHERE application_name = $1", name)
        assert marker in last and "RESET" not in last, last

        pool = await reads._get_pool()
        conn = await pool.acquire()
        await conn.execute("BEGIN")
        await pool.release(conn)
        state = await admin.fetchval("SELECT state FROM pg_stat_activity WHERE application_name = $1", name)
        assert state == "idle", state  # not "idle in transaction"
    finally:
        await admin.close()
        await reads.close()


async def test_uuids_come_back_as_plain_uuids_and_go_in_as_uuids_or_text(client, base_settings):
    """Plain `uuid.UUID`s (not asyncpg's subclass, which pydantic-core encodes about 15x slower), equal to
    the stored ids; a UUID parameter may be given as a UUID or as its text."""
    person = (await client.post("/api/v1/people", json={"global_id": 91077, "name": "Plain UUID"})).json()
    reads = Reads(base_settings.database_url, max_size=1, acquire_timeout_s=2)
    try:
        by_id = select(Person.id, Person.name).where(Person.id == bindparam("ident"))
        for ident in (uuid.UUID(person["id"]), person["id"]):
            row = await reads.one(by_id, ident=ident)
            assert row is not None and type(row["id"]) is uuid.UUID and str(row["id"]) == person["id"]
        # Built slot by slot (core/reads._decode_uuid): it must behave as one made from its text.
        made = uuid.UUID(person["id"])
        got = row["id"]
        assert (got == made and hash(got) == hash(made) and got.bytes == made.bytes and got.int == made.int
                and got.version == made.version and got.is_safe == made.is_safe and repr(got) == repr(made))
        assert {got: 1}[made] == 1 and copy.deepcopy(got) == made and uuid.UUID(str(got)) == made
    finally:
        await reads.close()


async def test_rows_encode_to_the_bytes_pydantic_writes():
    """`rows_to_json` (orjson) against pydantic-core's `to_json`, which the response models use: the same
    bytes for every value a row holds, floats of every magnitude included; and an integer beyond 64 bits,
    which orjson refuses, is still encoded."""
    import json
    from datetime import UTC, datetime, timedelta, timezone

    import pydantic_core

    from vigil.core.reads import rows_to_json

    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    row = {
        "id": uuid.uuid4(), "name": 'Zoë "Q" \\ \n\t\u0000\u2028 </script>', "count": 2**63 - 1, "none": None,
        "times": [at, at.replace(microsecond=1), at.replace(microsecond=120000),
                  at.astimezone(timezone(timedelta(hours=2)))],
        "data": {"nested": {"list": [1, 2.5, -0.0, 0.1, 1e-7, 123456789.125, None, True, False], "empty": {}}},
    }
    page = {"items": [row, row], "total": 2, "limit": 50, "offset": 0}
    assert rows_to_json(page) == pydantic_core.to_json(page)
    assert b'"2026-01-02T03:04:05Z"' in rows_to_json(row) and b'"2026-01-02T03:04:05.120000Z"' in rows_to_json(row)
    floats = {"values": [1e16, 1e22, 5e-324, 1.7976931348623157e308, 1 / 3, 9007199254740993.0, 1e-5, -2.5e-12]}
    assert rows_to_json(floats) == pydantic_core.to_json(floats)
    huge = {"data": {"n": 2**64, "m": -(10**30)}}
    assert rows_to_json(huge) == pydantic_core.to_json(huge) and json.loads(rows_to_json(huge)) == huge


async def test_a_reader_that_arrives_as_a_connection_comes_back_waits_behind_those_already_waiting(base_settings):
    """asyncpg's pool hands a just-released connection to whoever asks first, so a request arriving at that
    moment takes it from a reader already woken for it, who then queues again behind everyone: under load,
    the long tail. `Reads` serves readers in arrival order. One connection: H holds it, W waits, and N asks
    the moment H gives it back; W must be served before N."""
    import asyncio

    reads = Reads(base_settings.database_url, max_size=1, acquire_timeout_s=30)
    served: list[str] = []
    probe = select(Person.id).where(Person.name == "no such person")
    slow = select(literal_column("pg_sleep(0.3)").label("slept"))

    async def read(name: str, statement=probe) -> None:
        await reads.all(statement)
        served.append(name)

    try:
        pool = await reads._get_pool()
        holder = asyncio.create_task(read("H", slow))
        await asyncio.sleep(0.1)
        assert pool._queue.qsize() == 0  # H has the one connection
        waiter = asyncio.create_task(read("W"))
        await asyncio.sleep(0.05)

        async def newcomer() -> None:
            while pool._queue.qsize() == 0:  # noqa: ASYNC110 - the pool queue has no event to wait on
                await asyncio.sleep(0)
            await read("N")

        await asyncio.gather(holder, waiter, newcomer())
    finally:
        await reads.close()
    assert served == ["H", "W", "N"]
