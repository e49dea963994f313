"""Workers SIGKILLed at random every 1–3 s and restarted while they drain a queue and a job
table: at the end every message and job is processed (zero lost), and the only work done
twice is work a killed worker held when it died (its lease expired and it was handed out
again), counted and reported.

Full (`make chaos`): 20,000 messages and 2,000 jobs. Smoke: 800 and 80.
"""

from __future__ import annotations

import random
import signal
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from platformdb.sdk import jobs
from platformdb.sdk import queue as q
from tests.chaos import report
from tests.chaos.conftest import Proc, wait_for
from tests.chaos.worker_app import read_records

pytestmark = pytest.mark.timeout(1800)  # the full sizes run for minutes

SIZE = {
    "full": {"messages": 20_000, "jobs": 2_000, "workers": 3, "work_ms": 15, "deadline": 900},
    "smoke": {"messages": 800, "jobs": 80, "workers": 2, "work_ms": 25, "deadline": 240},
}[report.profile()]
LEASE = 5  # seconds: messages; jobs get the same through timeout_seconds
MAX_ATTEMPTS = 10
# the threaded worker with plain handlers, the asyncio worker with async def ones
WORKERS = {
    "threaded": ("worker", "tests.chaos.worker_app"),
    "aio": ("aio-worker", "tests.chaos.aio_worker_app"),
}


def _states(conn: psycopg.Connection[Any]) -> tuple[Counter[str], Counter[str]]:
    m = Counter(
        dict(
            conn.execute(
                "select state, count(*) from public.message_queue where queue_name = 'chaos' group by state"
            ).fetchall()
        )
    )
    j = Counter(
        dict(
            conn.execute(
                "select state, count(*) from public.background_jobs where job_type = 'chaos.job' group by state"
            ).fetchall()
        )
    )
    return m, j


def _seed(conn: psycopg.Connection[Any], n_messages: int, n_jobs: int) -> None:
    for start in range(0, n_messages, 1000):
        batch = [
            q.NewMessage("chaos.work", {"i": i}, max_attempts=MAX_ATTEMPTS)
            for i in range(start, min(n_messages, start + 1000))
        ]
        q.enqueue_messages(conn, "chaos", batch)
    for i in range(n_jobs):
        jobs.schedule_job(
            conn, "chaos.job", f"chaos job {i}", {"i": i}, timeout_seconds=LEASE, max_attempts=MAX_ATTEMPTS
        )


@pytest.mark.parametrize("kind", sorted(WORKERS))
def test_workers_killed_at_random_lose_nothing(
    kind: str, db_url: str, spawn: Callable[..., Proc], tmp_path: Path
) -> None:
    command, app = WORKERS[kind]
    record = tmp_path / "processed.txt"
    with psycopg.connect(db_url, autocommit=True) as conn:
        _seed(conn, SIZE["messages"], SIZE["jobs"])
    total = SIZE["messages"] + SIZE["jobs"]
    rng = random.Random(11)
    serial = iter(range(10_000))

    def start_worker() -> Proc:
        wid = f"chaos-{next(serial)}"
        return spawn(
            wid,
            [
                command,
                "--database-url",
                db_url,
                "--app",
                app,
                "--worker-id",
                wid,
                "--concurrency",
                "4",
                "--batch-size",
                "20",
                "--lease",
                str(LEASE),
                "--poll-interval",
                "0.5",
            ],
            CHAOS_RECORD=str(record),
            CHAOS_WORK_MS=str(SIZE["work_ms"]),
        )

    workers = [start_worker() for _ in range(SIZE["workers"])]
    killed: list[Proc] = []
    t0 = time.monotonic()
    wait_for("work under way", lambda: len(read_records(record)) >= 20, 120, workers)
    next_kill = time.monotonic() + rng.uniform(1, 3)
    with psycopg.connect(db_url, autocommit=True) as conn:
        while True:
            m, j = _states(conn)
            if m["completed"] == SIZE["messages"] and j["completed"] == SIZE["jobs"]:
                break
            assert not (m["dead_letter"] or j["dead_letter"]), f"dead letters: {m}, {j}"
            assert time.monotonic() - t0 < SIZE["deadline"], f"not done after {SIZE['deadline']} s: {m}, {j}"
            for w in workers:
                assert w.alive(), f"{w.name} died on its own:\n{w.tail()}"
            if time.monotonic() >= next_kill:
                victim = rng.choice(workers)
                victim.kill()
                killed.append(victim)
                workers[workers.index(victim)] = start_worker()
                next_kill = time.monotonic() + rng.uniform(1, 3)
            time.sleep(0.1)
        elapsed = time.monotonic() - t0
        # the SIGTERM below checks a clean drain: wait until a replacement started moments ago
        # is up (a process still importing holds nothing, and Python's default SIGTERM ends it)
        wait_for("every worker up", lambda: all(w.tail() for w in workers), 120, workers)
        for w in workers:
            assert w.stop() == 0, w.tail()

        messages = {
            str(r[0]): r[1:]
            for r in conn.execute(
                "select id, attempt, errors from public.message_queue where queue_name = 'chaos'"
            ).fetchall()
        }
        job_rows = {
            str(r[0]): r[1:]
            for r in conn.execute(
                "select id, attempt, errors from public.background_jobs where job_type = 'chaos.job'"
            ).fetchall()
        }

    records = read_records(record)
    seen = Counter((kind, item) for kind, item, _pid, _attempt, _t in records)
    done_messages = {item for kind, item in seen if kind == "message"}
    done_jobs = {item for kind, item in seen if kind == "job"}
    lost = (set(messages) - done_messages) | (set(job_rows) - done_jobs)
    assert not lost, f"{len(lost)} lost: {sorted(lost)[:10]}"
    assert len(messages) == SIZE["messages"] and len(job_rows) == SIZE["jobs"]

    killed_ids = {p.name for p in killed}
    assert len(killed) >= 1, "at least one worker was killed mid-run"

    def reclaimed_from(rows: dict[str, Any]) -> tuple[set[str], set[str]]:
        """(handed out again after a killed worker's lease expired, … after a live one's)."""
        from_killed, from_live = set(), set()
        for item, (_attempt, errors) in rows.items():
            for e in errors or []:
                if str(e.get("error", "")).startswith("lease expired"):
                    (from_killed if e.get("worker") in killed_ids else from_live).add(item)
        return from_killed, from_live

    msg_killed, msg_live = reclaimed_from(messages)
    job_killed, job_live = reclaimed_from(job_rows)
    dup_messages = {item for (kind, item), n in seen.items() if kind == "message" and n > 1}
    dup_jobs = {item for (kind, item), n in seen.items() if kind == "job" and n > 1}
    assert dup_messages <= msg_killed, (
        f"messages done twice without a killed holder: {sorted(dup_messages - msg_killed)[:5]}"
    )
    assert dup_jobs <= job_killed, f"jobs done twice without a killed holder: {sorted(dup_jobs - job_killed)[:5]}"
    assert not msg_live and not job_live, f"live workers lost leases: {len(msg_live)} messages, {len(job_live)} jobs"
    assert msg_killed or job_killed, "the killed workers held claims when they died"

    figures = {
        "messages": SIZE["messages"],
        "jobs": SIZE["jobs"],
        "workers": SIZE["workers"],
        "handler_ms": SIZE["work_ms"],
        "lease_s": LEASE,
        "kills": len(killed),
        "elapsed_s": round(elapsed, 1),
        "processed_per_s": round(total / elapsed, 1),
        "lost": len(lost),
        "in_flight_at_kill_messages": len(msg_killed),
        "in_flight_at_kill_jobs": len(job_killed),
        "duplicates_messages": len(dup_messages),
        "duplicates_jobs": len(dup_jobs),
        "duplicates_outside_killed_work": 0,
        "max_attempt": max([a for a, _ in messages.values()] + [a for a, _ in job_rows.values()]),
        "signal": signal.Signals.SIGKILL.name,
    }
    report.write(
        "worker_sigkill" if kind == "threaded" else f"worker_sigkill_{kind}",
        f"{kind} worker SIGKILL loop: {SIZE['messages']} messages + {SIZE['jobs']} jobs, {len(killed)} kills in"
        f" {elapsed:.0f} s: 0 lost, {len(dup_messages)} + {len(dup_jobs)} duplicates, all of them work a killed"
        f" worker held ({len(msg_killed)} + {len(job_killed)} in flight at the kills)",
        figures,
    )
