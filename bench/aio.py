"""The async face next to the sync one, in the same run: SDK calls per second, and the asyncio
worker next to the threaded one.

Calls: `get_cache` (a hit, the SDK's cheapest round trip, so the bridge's overhead shows the
most) and `enqueue_message` (a write in an `as_service` transaction: three statements), from
one connection one call at a time (sync: `platformdb.sdk`; async: the `platformdb.aio` twin,
awaited), and from a pool of 8 (sync: 8 threads on a `ConnectionPool`; async: 8 tasks on one
event loop on an `AsyncConnectionPool`). Rounds are interleaved and the median is reported.

Worker: the same N messages drained by the threaded consumer (`platformdb.worker.Consumer`,
handler threads) and by the asyncio one (`platformdb.aio.worker.AsyncConsumer`, handler
tasks), each with concurrency 8, with a handler that does nothing and with one that waits
20 ms on I/O (`time.sleep` in a thread / `await asyncio.sleep` on the loop); and the asyncio
consumer at concurrency 64 with the waiting handler (a thread each would be the threaded
equivalent).

BENCH_AIO_CALLS, BENCH_AIO_ROUNDS and BENCH_AIO_MESSAGES shrink it for a quick look.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from _common import database, rate, write_result
from platformdb import aio, db, worker
from platformdb.aio import cache as acache
from platformdb.aio import queue as aqueue
from platformdb.aio.worker import AsyncConsumer
from platformdb.sdk import cache, queue
from platformdb.worker import Registry, WorkerConfig

CALLS = int(os.environ.get("BENCH_AIO_CALLS", "2000"))
ROUNDS = int(os.environ.get("BENCH_AIO_ROUNDS", "5"))
MESSAGES = int(os.environ.get("BENCH_AIO_MESSAGES", "2000"))
POOL = 8
IO_WAIT = 0.02


# ---- calls ---------------------------------------------------------------------------------


def sync_one(url: str, op: str, n: int) -> float:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("set role service_role")
        t = time.perf_counter()
        for i in range(n):
            if op == "get":
                cache.get_cache(conn, f"k{i % 100}")
            else:
                with db.as_service(conn):
                    queue.enqueue_message(conn, "bench-aio", "m", {"i": i})
        return rate(n, time.perf_counter() - t)


async def async_one(url: str, op: str, n: int) -> float:
    async with await aio.connect(url, autocommit=True) as conn:
        await conn.execute("set role service_role")
        t = time.perf_counter()
        for i in range(n):
            if op == "get":
                await acache.get_cache(conn, f"k{i % 100}")
            else:
                async with aio.as_service(conn):
                    await aqueue.enqueue_message(conn, "bench-aio", "m", {"i": i})
        return rate(n, time.perf_counter() - t)


def sync_pool(url: str, op: str, n: int) -> float:
    with ConnectionPool(url, min_size=POOL, max_size=POOL, kwargs={"autocommit": True}, open=True) as pool:
        pool.wait()
        per = n // POOL

        def run() -> None:
            for i in range(per):
                with pool.connection() as conn:
                    if op == "get":
                        with db.as_service(conn):
                            cache.get_cache(conn, f"k{i % 100}")
                    else:
                        with db.as_service(conn):
                            queue.enqueue_message(conn, "bench-aio", "m", {"i": i})

        threads = [threading.Thread(target=run) for _ in range(POOL)]
        t = time.perf_counter()
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        return rate(per * POOL, time.perf_counter() - t)


async def async_pool(url: str, op: str, n: int) -> float:
    pool = await aio.pool(url, min_size=POOL, max_size=POOL, kwargs={"autocommit": True})
    try:
        await pool.wait()
        per = n // POOL

        async def run() -> None:
            for i in range(per):
                async with pool.connection() as conn, aio.as_service(conn):
                    if op == "get":
                        await acache.get_cache(conn, f"k{i % 100}")
                    else:
                        await aqueue.enqueue_message(conn, "bench-aio", "m", {"i": i})

        t = time.perf_counter()
        await asyncio.gather(*(run() for _ in range(POOL)))
        return rate(per * POOL, time.perf_counter() - t)
    finally:
        await pool.close()


# ---- workers -------------------------------------------------------------------------------


def _seed(url: str, queue_name: str, n: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for start in range(0, n, 1000):
            batch = [queue.NewMessage("m", {"i": i}) for i in range(start, min(n, start + 1000))]
            queue.enqueue_messages(conn, queue_name, batch)


def _completed(url: str, queue_name: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "select count(*) from public.message_queue where queue_name = %s and state = 'completed'", (queue_name,)
        ).fetchone()
        return int(row[0]) if row else 0


def threaded_worker(url: str, wait: bool, n: int, concurrency: int, tag: str) -> float:
    name = f"bench-thr-{tag}"
    _seed(url, name, n)
    registry = Registry()

    @registry.queue(name)
    def handle(message: worker.Message) -> None:
        if wait:
            time.sleep(IO_WAIT)

    config = WorkerConfig(database_url=url, concurrency=concurrency, poll_interval=0.1, worker_id=name)
    consumer = worker.Consumer(config, registry, [name], [])
    stop = threading.Event()
    t = time.perf_counter()
    th = threading.Thread(target=consumer.run, args=(stop,))
    th.start()
    while _completed(url, name) < n:
        time.sleep(0.05)
    elapsed = time.perf_counter() - t
    stop.set()
    th.join()
    return rate(n, elapsed)


def async_worker(url: str, wait: bool, n: int, concurrency: int, tag: str) -> float:
    name = f"bench-aio-{tag}"
    _seed(url, name, n)
    registry = Registry()

    @registry.queue(name)
    async def handle(message: worker.Message) -> None:
        if wait:
            await asyncio.sleep(IO_WAIT)

    async def main() -> float:
        config = WorkerConfig(database_url=url, concurrency=concurrency, poll_interval=0.1, worker_id=name)
        consumer = AsyncConsumer(config, registry, [name], [])
        stop = asyncio.Event()
        t = time.perf_counter()
        running = asyncio.create_task(consumer.run(stop))
        while await asyncio.to_thread(_completed, url, name) < n:
            await asyncio.sleep(0.05)
        elapsed = time.perf_counter() - t
        stop.set()
        await running
        return rate(n, elapsed)

    return asyncio.run(main())


def median_of(rounds: list[dict[str, float]], key: str) -> float:
    return round(statistics.median(r[key] for r in rounds), 1)


def main() -> None:
    with database() as url:
        with psycopg.connect(url, autocommit=True) as conn, db.as_service(conn):
            for i in range(100):
                cache.set_cache(conn, f"k{i}", {"fare": i}, 3600)
        rounds: list[dict[str, float]] = []
        for _ in range(ROUNDS):
            r: dict[str, float] = {}
            for op in ("get", "enqueue"):
                r[f"sync_one_{op}"] = sync_one(url, op, CALLS)
                r[f"async_one_{op}"] = asyncio.run(async_one(url, op, CALLS))
                r[f"sync_pool_{op}"] = sync_pool(url, op, CALLS)
                r[f"async_pool_{op}"] = asyncio.run(async_pool(url, op, CALLS))
            rounds.append(r)
        figures: dict[str, Any] = {"calls_per_round": CALLS, "rounds": ROUNDS, "pool_size": POOL}
        for key in rounds[0]:
            figures[f"{key}_per_s"] = median_of(rounds, key)
        runs: list[tuple[str, Callable[[], float]]] = [
            ("threaded_worker_noop", lambda: threaded_worker(url, False, MESSAGES, 8, "noop")),
            ("async_worker_noop", lambda: async_worker(url, False, MESSAGES, 8, "noop")),
            ("threaded_worker_io", lambda: threaded_worker(url, True, MESSAGES, 8, "io")),
            ("async_worker_io", lambda: async_worker(url, True, MESSAGES, 8, "io")),
            ("async_worker_io_c64", lambda: async_worker(url, True, MESSAGES, 64, "io64")),
        ]
        for key, run in runs:
            figures[f"{key}_per_s"] = round(run(), 1)
        figures.update(messages=MESSAGES, handler_io_wait_ms=IO_WAIT * 1000, worker_concurrency=8)
        path = write_result("aio", figures)
        print(path.read_text())


if __name__ == "__main__":
    main()
