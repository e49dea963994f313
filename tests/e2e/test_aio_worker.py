"""platformdb.aio.worker on a real database: async handlers run at most `concurrency` at a
time on one loop, results and acks are recorded, failures retried then dead-lettered, leases
kept alive past their length while a handler runs, and a stop finishes running work within
the grace period and releases what outlasts it. (SIGKILL: tests/chaos/test_worker_sigkill.py
runs against this worker too.)"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
import pytest

from platformdb import worker
from platformdb.aio.worker import AsyncConsumer
from platformdb.sdk import jobs
from platformdb.sdk import queue as q
from platformdb.worker import Registry, WorkerConfig


def _run(url: str, registry: Registry, until: Callable[[], Awaitable[bool]], **config: Any) -> None:
    """Run a consumer until `until()` holds (checked between short waits), then stop it."""
    cfg = WorkerConfig(database_url=url, worker_id="aio-test", poll_interval=0.2, **config)
    consumer = AsyncConsumer(cfg, registry, sorted(registry.queues), sorted(registry.jobs))

    async def main() -> None:
        stop = asyncio.Event()
        running = asyncio.create_task(consumer.run(stop))
        while not await until():
            assert not running.done(), running.exception()
            await asyncio.sleep(0.05)
        stop.set()
        await running

    asyncio.run(main())


def _states(conn: psycopg.Connection[Any], queue: str) -> dict[str, int]:
    return dict(
        conn.execute(
            "select state, count(*) from public.message_queue where queue_name = %s group by state", (queue,)
        ).fetchall()
    )


def test_async_handlers_run_concurrently_within_the_bound_and_results_are_recorded(db_url: str) -> None:
    registry = Registry()
    running, peak, done = 0, 0, []

    @registry.queue("rides")
    async def handle(message: worker.Message) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.05)
        running -= 1
        done.append(message.payload["i"])

    @registry.job("receipts")
    async def build(job: worker.Job) -> dict[str, Any]:
        await asyncio.sleep(0)
        return {"receipt": job.payload["i"] * 10}

    with psycopg.connect(db_url, autocommit=True) as conn:
        q.enqueue_messages(conn, "rides", [q.NewMessage("ride.booked", {"i": i}) for i in range(40)])
        job_ids = [jobs.schedule_job(conn, "receipts", f"r{i}", {"i": i}) for i in range(5)]

        async def finished() -> bool:
            return (
                len(done) == 40
                and _states(conn, "rides").get("completed") == 40
                and all(
                    r[0] == "completed"
                    for r in conn.execute("select state from public.background_jobs where job_type = 'receipts'")
                )
            )

        _run(db_url, registry, finished, concurrency=4, batch_size=10)
        results = dict(
            conn.execute("select id, result from public.background_jobs where id = any(%s)", (job_ids,)).fetchall()
        )
    assert sorted(done) == list(range(40))
    assert 1 < peak <= 4
    assert sorted(r["receipt"] for r in results.values()) == [0, 10, 20, 30, 40]


def test_failures_are_retried_then_dead_lettered(db_url: str) -> None:
    registry = Registry()
    calls: list[int] = []

    @registry.queue("flaky")
    async def handle(message: worker.Message) -> None:
        calls.append(message.attempt)
        if message.payload["kind"] == "discard":
            raise worker.Discard("not for us")
        raise worker.Retry("later", in_seconds=0)

    with psycopg.connect(db_url, autocommit=True) as conn:
        retry_id = q.enqueue_message(conn, "flaky", "m", {"kind": "retry"}, max_attempts=3)
        discard_id = q.enqueue_message(conn, "flaky", "m", {"kind": "discard"}, max_attempts=3)

        async def dead() -> bool:
            return _states(conn, "flaky").get("dead_letter") == 2

        _run(db_url, registry, dead)
        rows = dict(
            conn.execute(
                "select id, errors from public.message_queue where id = any(%s)", ([retry_id, discard_id],)
            ).fetchall()
        )
    assert [e["error"] for e in rows[retry_id]] == ["retry: later"] * 3
    assert [e["error"] for e in rows[discard_id]] == ["discarded: not for us"]
    assert sorted(calls) == [1, 1, 2, 3]


def test_a_handler_longer_than_its_lease_keeps_it(db_url: str) -> None:
    registry = Registry()
    finished: list[int] = []

    @registry.queue("slow")
    async def handle(message: worker.Message) -> None:
        await asyncio.sleep(3.5)  # the lease is 1 s: extended every 1/3 s meanwhile
        finished.append(message.attempt)

    with psycopg.connect(db_url, autocommit=True) as conn:
        mid = q.enqueue_message(conn, "slow", "m", {})

        async def acked() -> bool:
            # another worker's reaper running all along would take an expired lease
            q.reap_expired_leases(conn)
            return _states(conn, "slow").get("completed") == 1

        _run(db_url, registry, acked, lease_seconds=1)
        attempt, errors = conn.execute(
            "select attempt, errors from public.message_queue where id = %s", (mid,)
        ).fetchone()
    assert finished == [1] and attempt == 1 and not errors


@pytest.mark.parametrize("grace", [5.0, 1.5])
def test_stop_finishes_running_work_within_the_grace_period_and_releases_the_rest(db_url: str, grace: float) -> None:
    registry = Registry()
    began: list[int] = []
    ended: list[int] = []

    @registry.queue("drain")
    async def handle(message: worker.Message) -> None:
        began.append(message.payload["i"])
        await asyncio.sleep(message.payload["seconds"])
        ended.append(message.payload["i"])

    with psycopg.connect(db_url, autocommit=True) as conn:
        q.enqueue_messages(conn, "drain", [q.NewMessage("m", {"i": i, "seconds": 2.0}) for i in range(12)])

        async def two_running() -> bool:
            return len(began) >= 2

        # concurrency 2: two handlers run, the other ten are claimed but not started at the stop
        _run(db_url, registry, two_running, concurrency=2, batch_size=12, grace_seconds=grace)
        states = _states(conn, "drain")
    assert len(began) == 2
    if grace > 2.0:  # long enough: the two running handlers finish and are acked
        assert sorted(ended) == sorted(began) and states == {"completed": 2, "available": 10}
    else:  # too short: they are released with the rest, for another worker
        assert ended == [] and states == {"available": 12}
