"""Queue throughput and crash recovery, side by side with Procrastinate on one PostgreSQL.

Targets (issue 7): ≥ 10,000 messages/s end to end with batching and ≥ 10× Procrastinate
doing the same no-op work; a message held by a worker killed with SIGKILL is processed by
another worker within lease + 2 s.

What each figure includes:
- `platformdb_per_s_<n>w`: n `platformdb worker` processes (concurrency 4, claims of 100,
  acks batched per claim) drain a queue fed by one producer calling `enqueue_messages`
  with 1000 messages per call. Clock: from the first enqueue until the last message is
  completed (acked), so enqueue, NOTIFY wake-up, claim, handler dispatch and ack all count.
- `procrastinate_per_s_<n>w`: n `procrastinate worker` processes (concurrency 4, its
  LISTEN/NOTIFY on) drain a queue fed by `batch_defer` with 1000 jobs per call, with an
  async no-op task. Same clock: first defer to last job succeeded. Its schema lives in a
  second database of the same cluster.
- `sigkill_to_processed_s`: a worker holding a message (lease `LEASE` s, kept alive by its
  lease extension) is killed with SIGKILL; the figure is the time until a second, idle
  worker has processed it. `lease_left_at_kill_s` is what remained of the lease then.

The file is not called queue.py: scripts run from bench/ have that folder first on sys.path,
where a queue.py would shadow the standard library module psycopg imports.

Sizes are small on purpose (seconds per phase): BENCH_MESSAGES, BENCH_PROCRASTINATE_JOBS.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
from psycopg import sql

from _common import ROOT, database, rate, write_result
from platformdb.sdk import queue as q

MESSAGES = int(os.environ.get("BENCH_MESSAGES", "20000"))
PROCRASTINATE_JOBS = int(os.environ.get("BENCH_PROCRASTINATE_JOBS", "2000"))
BATCH = 1000
LEASE = 3
LOGS = Path(os.environ.get("BENCH_LOG_DIR", "/tmp"))  # noqa: S108 - worker logs of a throw-away bench run


def _wait(what: str, check: Callable[[], bool], timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.02)
    raise RuntimeError(f"gave up waiting for {what}")


def _count(url: str, query: str, params: tuple[object, ...] = ()) -> int:
    with psycopg.connect(url, autocommit=True) as c:
        row = c.execute(query, params).fetchone()
    return int(row[0]) if row else 0


def _spawn(args: list[str], env: dict[str, str], log: str) -> subprocess.Popen[bytes]:
    out = (LOGS / log).open("ab")
    return subprocess.Popen(args, cwd=ROOT, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT)


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()


# the end-to-end figures are taken with the acks' commit not waiting for the WAL flush
# (`--async-acks`); BENCH_SYNC_ACKS=1 measures the durable default instead
ACK_MODE = [] if os.environ.get("BENCH_SYNC_ACKS") == "1" else ["--async-acks"]
# bench/node_peers.py starts every system from a vacuumed table (the rows of the previous
# run deleted and their space reclaimed), ours included
VACUUM_BEFORE_RUN = False


def platformdb_run(url: str, workers: int) -> float:
    with psycopg.connect(url, autocommit=True) as c:
        c.execute("delete from public.message_queue where queue_name = 'bench'")
    procs = [
        _spawn(
            [
                sys.executable,
                "-m",
                "platformdb.cli",
                "worker",
                "--database-url",
                url,
                "--app",
                "bench.queue_noop_app",
                "--queues",
                "bench",
                "--concurrency",
                "4",
                "--batch-size",
                "100",
                "--no-housekeeping",
                *ACK_MODE,
                "--worker-id",
                f"bench-{workers}-{i}",
            ],
            {},
            f"bench-queue-platformdb-{workers}-{i}.log",
        )
        for i in range(workers)
    ]
    try:
        with psycopg.connect(url, autocommit=True) as c:
            q.enqueue_messages(c, "bench", [q.NewMessage("warmup", {}) for _ in range(20 * workers)])
            _wait(
                "warm-up",
                lambda: (
                    _count(
                        url,
                        "select count(*) from public.message_queue where queue_name = 'bench' and state <> 'completed'",
                    )
                    == 0
                ),
            )
            time.sleep(1.0)  # every worker connected and idle
            c.execute("delete from public.message_queue where queue_name = 'bench'")
            if VACUUM_BEFORE_RUN:
                c.execute("vacuum analyze public.message_queue")
            batch = [q.NewMessage("bench.noop", {"n": i}) for i in range(BATCH)]
            t0 = time.perf_counter()
            for _ in range(MESSAGES // BATCH):
                q.enqueue_messages(c, "bench", batch)
            _wait(
                "the queue to drain",
                lambda: (
                    _count(
                        url,
                        "select count(*) from public.message_queue where queue_name = 'bench' and state = 'completed'",
                    )
                    >= MESSAGES
                ),
            )
            elapsed = time.perf_counter() - t0
    finally:
        _stop(procs)
    return rate(MESSAGES, elapsed)


def procrastinate_setup(url: str) -> str:
    base, _, _ = url.rpartition("/")
    purl = f"{base}/procrastinate_bench"
    with psycopg.connect(f"{base}/postgres", autocommit=True) as c:
        c.execute(sql.SQL("drop database if exists {}").format(sql.Identifier("procrastinate_bench")))
        c.execute(sql.SQL("create database {}").format(sql.Identifier("procrastinate_bench")))
    os.environ["BENCH_PROCRASTINATE_URL"] = purl
    sys.path.insert(0, str(ROOT))
    from bench.queue_procrastinate_app import app

    with app.open():
        app.schema_manager.apply_schema()
    return purl


def procrastinate_run(purl: str, workers: int) -> float:
    from bench.queue_procrastinate_app import app, noop

    with psycopg.connect(purl, autocommit=True) as c:
        c.execute("delete from procrastinate_jobs")
    env = {"BENCH_PROCRASTINATE_URL": purl}
    procs = [
        _spawn(
            [
                sys.executable,
                "-m",
                "procrastinate",
                "--app",
                "bench.queue_procrastinate_app.app",
                "worker",
                "--queues",
                "bench",
                "--concurrency",
                "4",
                "--name",
                f"bench-{workers}-{i}",
            ],
            env,
            f"bench-queue-procrastinate-{workers}-{i}.log",
        )
        for i in range(workers)
    ]
    done = "select count(*) from procrastinate_jobs where status = 'succeeded'"
    try:
        with app.open():
            noop.batch_defer(*[{} for _ in range(20 * workers)])
            _wait("warm-up", lambda: _count(purl, done) == 20 * workers)
            time.sleep(1.0)
            with psycopg.connect(purl, autocommit=True) as c:
                c.execute("delete from procrastinate_jobs")
            t0 = time.perf_counter()
            for _ in range(PROCRASTINATE_JOBS // BATCH):
                noop.batch_defer(*[{} for _ in range(BATCH)])
            _wait("the queue to drain", lambda: _count(purl, done) >= PROCRASTINATE_JOBS)
            elapsed = time.perf_counter() - t0
    finally:
        _stop(procs)
    return rate(PROCRASTINATE_JOBS, elapsed)


def sigkill_recovery(url: str) -> dict[str, float]:
    def start(name: str) -> subprocess.Popen[bytes]:
        return _spawn(
            [
                sys.executable,
                "-m",
                "platformdb.cli",
                "worker",
                "--database-url",
                url,
                "--app",
                "bench.queue_noop_app",
                "--queues",
                "bench-kill",
                "--lease",
                str(LEASE),
                "--no-housekeeping",
                "--worker-id",
                name,
            ],
            {},
            f"bench-queue-{name}.log",
        )

    doomed = start("doomed")
    rescuer: subprocess.Popen[bytes] | None = None
    try:
        with psycopg.connect(url, autocommit=True) as c:
            mid = q.enqueue_message(c, "bench-kill", "hang", {})
            _wait(
                "the first worker's claim",
                lambda: (
                    _count(url, "select count(*) from public.message_queue where id = %s and state = 'running'", (mid,))
                    == 1
                ),
            )
            rescuer = start("rescuer")
            time.sleep(2.0)  # the rescuer is up and idle
            row = c.execute(
                "select extract(epoch from locked_until - clock_timestamp()) from public.message_queue where id = %s",
                (mid,),
            ).fetchone()
            doomed.kill()
            t0 = time.perf_counter()
            _wait(
                "the message to be processed again",
                lambda: (
                    _count(
                        url, "select count(*) from public.message_queue where id = %s and state = 'completed'", (mid,)
                    )
                    == 1
                ),
                60,
            )
            elapsed = time.perf_counter() - t0
        return {
            "sigkill_to_processed_s": round(elapsed, 3),
            "lease_left_at_kill_s": round(float(row[0]) if row else 0.0, 3),
            "lease_s": LEASE,
        }
    finally:
        _stop([p for p in (doomed, rescuer) if p is not None])


def main() -> None:
    figures: dict[str, object] = {"messages": MESSAGES, "procrastinate_jobs": PROCRASTINATE_JOBS, "batch": BATCH}
    with database() as url:
        purl = procrastinate_setup(url)
        for n in (1, 4):
            ours = platformdb_run(url, n)
            theirs = procrastinate_run(purl, n)
            figures[f"platformdb_per_s_{n}w"] = round(ours)
            figures[f"procrastinate_per_s_{n}w"] = round(theirs)
            figures[f"ratio_{n}w"] = round(ours / theirs, 1)
            print(
                f"{n} worker(s): platformdb {ours:,.0f}/s, procrastinate {theirs:,.0f}/s, ratio {ours / theirs:.1f}x",
                flush=True,
            )
        figures.update(sigkill_recovery(url))
        print(
            f"SIGKILL to processed: {figures['sigkill_to_processed_s']} s "
            f"(lease {LEASE} s, {figures['lease_left_at_kill_s']} s of it left at the kill)",
            flush=True,
        )
    path = write_result("queue", figures)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
