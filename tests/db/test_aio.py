"""platformdb.aio: every SDK function has an awaitable twin, the twins' stubs are current, each
capability's representative calls and refusals give the same results through both faces, and
the async connection helpers keep db.py's role semantics. (The capability test modules
themselves also run through the async face: see tests/aio_face.py.)"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import inspect
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import date, datetime
from typing import Any

import psycopg
import pytest

from platformdb import aio, db, devdb, errors
from platformdb.aio import _generate, _twin
from platformdb.aio._bridge import await_, facade, run_sync
from tests.conftest import _admin, _clone, _drop

USER = uuid.UUID("00000000-0000-4000-8000-00000000000a")
OTHER = uuid.UUID("00000000-0000-4000-8000-00000000000b")


# -- every function has its twin ------------------------------------------------------------


def test_every_sdk_function_that_takes_a_connection_has_an_async_twin() -> None:
    checked = 0
    for mod in _twin.sdk_modules():
        sync = importlib.import_module(f"platformdb.sdk.{mod}")
        for name, fn in _twin.public_functions(sync).items():
            if not _twin.takes_connection(fn):
                continue
            twin_module = importlib.import_module(f"platformdb.aio.{mod}")
            twin = getattr(twin_module, name, None)
            assert twin is not None, f"platformdb.aio.{mod}.{name} is missing"
            assert inspect.iscoroutinefunction(twin), f"platformdb.aio.{mod}.{name} is not async"
            assert twin.__sync__ is fn
            assert inspect.signature(twin) == inspect.signature(fn)
            assert name in twin_module.__twins__
            checked += 1
    assert checked >= 80  # the SDK's connection functions at the time of writing: 90+


def test_pure_helpers_and_types_are_the_sync_modules_own() -> None:
    from platformdb.aio import payments as apay
    from platformdb.sdk import payments as pay

    assert apay.mask_number is pay.mask_number and apay.Transaction is pay.Transaction
    assert apay.IdempotencyConflict is errors.IdempotencyConflict
    assert not inspect.iscoroutinefunction(apay.next_statuses)


def test_generated_twin_modules_and_stubs_are_current() -> None:
    stale = _generate.stale()
    assert not stale, f"stale: {[p.name for p in stale]}; run `python -m platformdb.aio._generate`"


def test_a_function_added_to_an_sdk_module_gets_its_twin_on_import() -> None:
    namespace: dict[str, Any] = {}
    sync = importlib.import_module("platformdb.sdk.cache")

    def added_later(conn: psycopg.Connection[Any], x: int) -> int:
        return x

    added_later.__module__ = sync.__name__
    sync.added_later = added_later  # type: ignore[attr-defined]
    try:
        _twin.populate(namespace, sync.__name__)
    finally:
        del sync.added_later  # type: ignore[attr-defined]
    assert "added_later" in namespace["__twins__"] and inspect.iscoroutinefunction(namespace["added_later"])


def test_a_sync_connection_is_refused_by_a_twin(conn: psycopg.Connection[Any]) -> None:
    from platformdb.aio import cache as acache

    with pytest.raises(TypeError, match="AsyncConnection"):
        asyncio.run(acache.get_cache(conn, "k"))  # type: ignore[arg-type]


def test_await_outside_the_bridge_is_an_error() -> None:
    async def noop() -> int:
        return 1

    with pytest.raises(RuntimeError, match="outside platformdb.aio.run_sync"):
        await_(noop())


# -- the same calls through both faces -----------------------------------------------------


class SyncFace:
    """The calls of a scenario through platformdb.sdk with a psycopg.Connection."""

    name = "sync"

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn

    def sdk(self, module: str) -> Any:
        return importlib.import_module(f"platformdb.sdk.{module}")

    def role(self, role: str, user_id: uuid.UUID | None = None) -> AbstractContextManager[Any]:
        return db.acting_as(self.conn, role, user_id)


class _Awaiting:
    def __init__(self, module: Any) -> None:
        self._module = module

    def __getattr__(self, name: str) -> Callable[..., Any]:
        twin = getattr(self._module, name)
        assert inspect.iscoroutinefunction(twin), name
        return lambda *args, **kwargs: await_(twin(*args, **kwargs))


class AsyncFace:
    """The same calls through the platformdb.aio twins with a psycopg.AsyncConnection (the
    scenario runs under run_sync; each twin call is awaited on the event loop)."""

    name = "async"

    def __init__(self, conn: psycopg.AsyncConnection[Any]) -> None:
        self.conn = conn

    def sdk(self, module: str) -> Any:
        return _Awaiting(importlib.import_module(f"platformdb.aio.{module}"))

    @contextmanager
    def role(self, role: str, user_id: uuid.UUID | None = None) -> Iterator[Any]:
        manager = aio.acting_as(self.conn, role, user_id)
        value = await_(manager.__aenter__())
        try:
            yield value
        except BaseException:
            if not await_(manager.__aexit__(*sys.exc_info())):
                raise
        else:
            await_(manager.__aexit__(None, None, None))


def refusal(f: Any, role: str, call: Callable[[], Any], user_id: uuid.UUID | None = None) -> tuple[str, str | None]:
    """The exception class and SQLSTATE of `call` refused inside an acting_as block."""
    try:
        with f.role(role, user_id):
            call()
    except errors.PlatformDBError as exc:
        return type(exc).__name__, exc.sqlstate
    raise AssertionError("expected a refusal")


def shape(value: Any) -> Any:
    """The result with its generated parts (ids, clocks) replaced by their type."""
    if isinstance(value, uuid.UUID):
        return value if value in (USER, OTHER) else "<uuid>"
    if isinstance(value, datetime | date):
        return f"<{type(value).__name__}>"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return (type(value).__name__, shape(dataclasses.asdict(value)))
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(shape(v) for v in value)
    return value


def payments(f: Any) -> Any:
    pay = f.sdk("payments")
    with f.role("service_role"):
        tx = pay.create_transaction(f.conn, USER, "payment", "1250", "RWF", "ride-1", {"ride": 7}, category="ride")
        again = pay.create_transaction(f.conn, USER, "payment", "1250", "RWF", "ride-1", {"ride": 7}, category="ride")
        moved = pay.update_transaction_status(f.conn, tx, "processing")
        got = pay.get_transaction(f.conn, tx)
        history = pay.transaction_events(f.conn, tx)
        currencies = pay.currencies(f.conn)
    with f.role("authenticated", USER):
        mine = pay.recent_transactions(f.conn)
    with f.role("service_role"):
        pm = pay.add_payment_method(f.conn, USER, "card", "visa", "**** 4242", is_default=True)
        methods = pay.list_payment_methods(f.conn, USER)
    refusals = []
    refusals.append(
        refusal(f, "service_role", lambda: pay.create_transaction(f.conn, USER, "payment", "1", "RWF", "ride-1"))
    )
    refusals.append(refusal(f, "service_role", lambda: pay.update_transaction_status(f.conn, tx, "reversed")))
    refusals.append(refusal(f, "service_role", lambda: pay.create_transaction(f.conn, USER, "payment", "-5", "RWF")))
    refusals.append(
        refusal(f, "authenticated", lambda: pay.create_transaction(f.conn, OTHER, "payment", "5", "RWF"), USER)
    )
    refusals.append(refusal(f, "service_role", lambda: pay.get_transaction(f.conn, "not-a-uuid")))
    return [tx == again, moved, got, history, currencies, mine, pm is not None, methods, refusals]


def events(f: Any) -> Any:
    ev = f.sdk("events")
    seen: list[str] = []

    async def handler(event: Any) -> None:  # an async callback is awaited by the twin
        await asyncio.sleep(0)
        seen.append(event.event_type)

    with f.role("service_role"):
        first = ev.append_event(f.conn, "trip", "t-1", "trip.requested", {"from": "A"}, expected_version=0)
        ev.append_event(f.conn, "trip", "t-1", "trip.accepted", {"driver": "d"}, expected_version=1)
        stream = ev.read_stream(f.conn, "trip", "t-1")
        version = ev.stream_version(f.conn, "trip", "t-1")
        handled = ev.catch_up(
            f.conn, "projector", handler if f.name == "async" else lambda e: seen.append(e.event_type)
        )
        checkpoint = ev.get_checkpoint(f.conn, "projector")
    conflict = refusal(
        f, "service_role", lambda: ev.append_event(f.conn, "trip", "t-1", "trip.done", {}, expected_version=0)
    )
    return [first is not None, stream, version, handled, seen, checkpoint > 0, conflict]


def queue_and_jobs(f: Any) -> Any:
    q, jobs = f.sdk("queue"), f.sdk("jobs")
    with f.role("service_role"):
        mid = q.enqueue_message(f.conn, "rides", "ride.booked", {"ride": 1}, idempotency_key="k1")
        same = q.enqueue_message(f.conn, "rides", "ride.booked", {"ride": 1}, idempotency_key="k1")
        claimed = q.claim_messages(f.conn, "rides", 5, 30, "w1")
    lost = refusal(f, "service_role", lambda: q.ack_message(f.conn, mid, "someone-else"))
    with f.role("service_role"):
        acked = q.ack_message(f.conn, mid, "w1")
        stats = q.queue_stats(f.conn)
        jid = jobs.schedule_job(f.conn, "reports.daily", "daily", {"day": 1})
        [job] = jobs.claim_jobs(f.conn, ["reports.daily"], 5, "w1")
        done = jobs.complete_job(f.conn, jid, {"rows": 3}, "w1")
    conflict = refusal(
        f, "service_role", lambda: q.enqueue_message(f.conn, "rides", "ride.booked", {"ride": 2}, idempotency_key="k1")
    )
    denied = refusal(f, "anon", lambda: q.enqueue_message(f.conn, "rides", "x", {}))
    return [mid == same, claimed, acked, stats, job.id == jid, done, conflict, lost, denied]


def flags_cache_geo(f: Any) -> Any:
    flags, cache, geo = f.sdk("flags"), f.sdk("cache"), f.sdk("geo")
    with f.role("service_role"):
        flags.upsert_flag(f.conn, "fast_booking", enabled=True, rollout_strategy="all")
        on = flags.is_feature_enabled(f.conn, "fast_booking", USER)
        off = flags.is_feature_enabled(f.conn, "missing_flag", USER)
        ev = flags.evaluate_feature_flag(f.conn, "fast_booking", USER)
        listed = flags.list_flags(f.conn)
        cache.set_cache(f.conn, "fare:1", {"amount": 1250}, 60, "fares", ["fares"])
        hit = cache.get_cache(f.conn, "fare:1")
        calls: list[int] = []

        async def compute_async() -> dict[str, int]:
            calls.append(1)
            return {"v": 42}

        def compute() -> dict[str, int]:
            calls.append(1)
            return {"v": 42}

        computed = cache.get_or_compute(f.conn, "fare:2", compute_async if f.name == "async" else compute)
        cached = cache.get_or_compute(f.conn, "fare:2", compute)
        dropped = cache.invalidate_by_tag(f.conn, "fares")
        loc = geo.save_location(f.conn, -1.9536, 30.0606, "pickup", "Kigali", is_public=True)
        near = geo.find_nearby_locations(f.conn, -1.9540, 30.0600, 1000)
    bad_flag = refusal(f, "service_role", lambda: flags.upsert_flag(f.conn, "x", rollout_percentage=101))
    bad_loc = refusal(f, "service_role", lambda: geo.save_location(f.conn, 91, 0, "pickup"))
    return [on, off, ev, listed, hit, computed, cached, len(calls), dropped, loc is not None, near, bad_flag, bad_loc]


def observability_registry_whatsapp(f: Any) -> Any:
    obs, reg, wa = f.sdk("observability"), f.sdk("registry"), f.sdk("whatsapp")
    metric = importlib.import_module("platformdb.sdk.observability").Metric
    with f.role("service_role"):
        copied = obs.copy_metrics(
            f.conn, [metric("api", "latency", "req", float(v), "ms", {"r": "/"}) for v in range(25)]
        )
        recorded = obs.record_metric(f.conn, "api", "counter", "hits", 3)
        reg.register_service(f.conn, "rides-api", "api", "1.0.0", "http://127.0.0.1:9")
        beat = reg.service_heartbeat(f.conn, "rides-api", "healthy")
        health = reg.health_of(f.conn, "rides-api")
        session = wa.update_session_activity(f.conn, "+250788000001", profile_name="Ana")
        out = wa.enqueue_message(f.conn, "+250788000001", "text", {"body": "Your ride is booked"}, idempotency_key="b1")
        claimed = wa.claim_messages(f.conn, 10, 60, "sender-1")
        sent = wa.mark_sent(f.conn, out, "wamid.1")
    bad_metric = refusal(f, "service_role", lambda: obs.copy_metrics(f.conn, [metric("api", "bogus", "x", 1.0)]))
    bad_phone = refusal(f, "service_role", lambda: wa.enqueue_message(f.conn, "0788", "text", {"body": "x"}))
    denied = refusal(f, "authenticated", lambda: obs.copy_metrics(f.conn, [metric("api", "latency", "x", 1.0)]), USER)
    return [
        copied,
        recorded is not None,
        beat,
        health,
        session is not None,
        claimed,
        sent,
        bad_metric,
        bad_phone,
        denied,
    ]


SCENARIOS = [payments, events, queue_and_jobs, flags_cache_geo, observability_registry_whatsapp]


@pytest.fixture
def second_db_url(cluster: devdb.Cluster, template_url: str) -> Iterator[str]:
    url = _clone(cluster, template_url)
    yield url
    with _admin(cluster) as conn:
        _drop(conn, url.rsplit("/", 1)[1])


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__)
def test_both_faces_give_the_same_results_and_refusals(
    scenario: Callable[[Any], Any], db_url: str, second_db_url: str
) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        via_sync = scenario(SyncFace(conn))

    async def run() -> Any:
        async with await aio.connect(second_db_url, autocommit=True) as aconn:
            return await run_sync(scenario, AsyncFace(aconn))

    via_async = asyncio.run(run())
    assert shape(via_async) == shape(via_sync)


# -- connections, pools and roles ----------------------------------------------------------


def test_acting_as_is_transaction_local_like_db(db_url: str) -> None:
    async def run() -> list[Any]:
        async with await aio.connect(db_url, autocommit=True) as conn:
            async with aio.as_user(conn, USER, phone="+250788000001") as c:
                inside = await (await c.execute("select current_user, auth.uid(), auth.jwt()->>'phone'")).fetchone()
            after = await (await conn.execute("select current_user = session_user, auth.uid()")).fetchone()
            async with aio.as_service(conn):
                svc = await (await conn.execute("select current_user")).fetchone()
            async with aio.as_anon(conn):
                anon = await (await conn.execute("select current_user")).fetchone()
            return [inside, after, svc, anon]

    inside, after, svc, anon = asyncio.run(run())
    assert inside == ("authenticated", USER, "+250788000001")
    assert after == (True, None)
    assert svc == ("service_role",) and anon == ("anon",)


def test_acting_as_rolls_back_on_error_and_refuses_a_swallowed_error(db_url: str) -> None:
    from platformdb.aio import cache as acache

    async def run() -> tuple[Any, Any]:
        async with await aio.connect(db_url, autocommit=True) as conn:
            with pytest.raises(errors.InvalidInput):
                async with aio.as_service(conn):
                    await acache.set_cache(conn, "kept?", 1)
                    await acache.set_cache(conn, "bad", 1, ttl_seconds=-1)
            with pytest.raises(errors.PlatformDBError, match="caught there"):
                async with aio.as_service(conn):
                    await acache.set_cache(conn, "kept too?", 1)
                    try:
                        await acache.set_cache(conn, "bad", 1, ttl_seconds=-1)
                    except errors.InvalidInput:
                        pass
            with pytest.raises(ValueError, match="role must be one of"):
                async with aio.acting_as(conn, "postgres"):
                    pass
            async with aio.as_service(conn):
                return await acache.get_cache(conn, "kept?"), await acache.get_cache(conn, "kept too?")

    assert asyncio.run(run()) == (None, None)


def test_pool_serves_twins_concurrently_on_one_loop(db_url: str) -> None:
    """Eight tasks share a pool of four; one of them waits on a lock another task holds, which
    only works when a waiting twin yields the event loop instead of blocking it."""
    from platformdb.aio import queue as aqueue

    async def run() -> tuple[int, int]:
        pool = await aio.pool(db_url, min_size=2, max_size=4, kwargs={"autocommit": True})
        try:
            async with pool.connection() as holder:
                await holder.execute("select pg_advisory_lock(20)")

                async def waiter() -> None:
                    async with pool.connection() as c:
                        await run_sync(lambda f: f.execute("select pg_advisory_lock(20)"), facade(c))
                        await c.execute("select pg_advisory_unlock(20)")

                waiting = asyncio.create_task(waiter())
                while True:  # the waiter is blocked in the database, the loop still runs us
                    row = await (await holder.execute("select count(*) from pg_locks where not granted")).fetchone()
                    if row and row[0] > 0:
                        break
                    await asyncio.sleep(0.01)
                await holder.execute("select pg_advisory_unlock(20)")
                await waiting

            async def enqueue(i: int) -> Any:
                async with pool.connection() as c, aio.as_service(c):
                    return await aqueue.enqueue_message(c, "fanout", "m", {"i": i})

            ids = await asyncio.gather(*(enqueue(i) for i in range(8)))
            async with pool.connection() as c, aio.as_service(c):
                stats = {s["queue_name"]: s for s in await aqueue.queue_stats(c)}
            return len(set(ids)), stats["fanout"]["depth"]
        finally:
            await pool.close()

    assert asyncio.run(run()) == (8, 8)


def test_a_cursor_kept_by_the_caller_serves_cache_calls(db_url: str) -> None:
    from platformdb.aio import cache as acache

    async def run() -> tuple[Any, bool]:
        async with await aio.connect(db_url, autocommit=True) as conn:
            await conn.execute("set role service_role")
            async with conn.cursor() as cur:
                await acache.set_cache(cur, "k", [1, 2])
                value = await acache.get_cache(cur, "k")
                return value, cur.closed

    assert asyncio.run(run()) == ([1, 2], False)
