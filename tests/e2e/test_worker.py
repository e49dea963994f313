"""`platformdb worker` as real processes (SPEC §3.5): nothing lost when a worker is killed
with SIGKILL mid-batch (duplicates only for what it held), SIGTERM drains cleanly, long work
keeps its lease, recurring jobs fire, and a database restart during a run loses nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from platformdb import devdb
from platformdb.sdk import jobs
from platformdb.sdk import queue as q

ROOT = Path(__file__).resolve().parents[2]
APP = "tests.e2e.queue_worker_app"


class WorkerProcess:
    def __init__(self, url: str, record: Path, log: Path, worker_id: str, *args: str, sleep: float = 0.0):
        env = {**os.environ, "E2E_RECORD": str(record), "E2E_SLEEP": str(sleep)}
        env.pop("DATABASE_URL", None)
        self.log = log
        self.worker_id = worker_id
        self._out = log.open("ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "platformdb.cli",
                "worker",
                "--database-url",
                url,
                "--app",
                APP,
                "--worker-id",
                worker_id,
                *args,
            ],
            cwd=ROOT,
            env=env,
            stdout=self._out,
            stderr=subprocess.STDOUT,
        )

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        if self.alive():
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        finally:
            self._out.close()

    def tail(self) -> str:
        return self.log.read_text()[-3000:] if self.log.exists() else ""


@pytest.fixture
def workers(db_url: str, tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    started: list[WorkerProcess] = []

    def start(name: str, *args: str, sleep: float = 0.0) -> WorkerProcess:
        w = WorkerProcess(
            db_url,
            tmp_path / "processed.txt",
            tmp_path / f"{name}.log",
            f"{name}-{uuid.uuid4().hex[:6]}",
            *args,
            sleep=sleep,
        )
        started.append(w)
        return w

    yield start
    for w in started:
        if w.alive():
            w.proc.kill()
            w.proc.wait(10)


@pytest.fixture
def record(tmp_path: Path) -> Callable[[], list[tuple[str, str, int]]]:
    path = tmp_path / "processed.txt"

    def read() -> list[tuple[str, str, int]]:
        if not path.exists():
            return []
        out = []
        for line in path.read_text().splitlines():
            kind, item, _pid, attempt = line.split()
            out.append((kind, item, int(attempt)))
        return out

    return read


def wait_for(what: str, check: Callable[[], bool], timeout: float = 90, *procs: WorkerProcess) -> None:
    """Poll until `check()` holds; fail with the workers' logs otherwise (a guard, not a timing)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    logs = "\n".join(f"--- {p.worker_id}\n{p.tail()}" for p in procs)
    raise AssertionError(f"gave up waiting for: {what}\n{logs}")


def states(url: str, queue: str = "e2e") -> Counter[str]:
    with psycopg.connect(url, autocommit=True) as c:
        rows = c.execute(
            "select state, count(*) from public.message_queue where queue_name = %s group by state",
            (queue,),
        ).fetchall()
    return Counter({s: n for s, n in rows})


def enqueue(url: str, n: int, start: int = 0, **payload: Any) -> None:
    with psycopg.connect(url, autocommit=True) as c:
        q.enqueue_messages(c, "e2e", [q.NewMessage("e2e.work", {"i": i, **payload}) for i in range(start, start + n)])


@pytest.mark.pooled
def test_a_worker_killed_mid_batch_loses_nothing_and_repeats_only_what_it_held(
    db_url: str, workers: Callable[..., WorkerProcess], record: Callable[[], list[tuple[str, str, int]]]
) -> None:
    total = 300
    enqueue(db_url, total)
    a = workers("doomed", "--concurrency", "4", "--batch-size", "20", "--lease", "3", sleep=0.02)
    wait_for("the first worker to process a batch", lambda: len(record()) >= 40, 90, a)
    a.stop(signal.SIGKILL)
    done_by_a = {item for _, item, _ in record()}
    assert len(done_by_a) < total, "killed mid-run"

    b = workers("rescuer", "--concurrency", "4", "--lease", "3")
    wait_for("every message completed", lambda: states(db_url)["completed"] == total, 120, b)
    b.stop()

    seen = Counter(item for kind, item, _ in record() if kind == "message")
    with psycopg.connect(db_url, autocommit=True) as c:
        rows = c.execute(
            "select id::text, attempt, attempted_by, errors from public.message_queue where queue_name = 'e2e'"
        ).fetchall()
    assert len(rows) == total
    assert set(seen) == {r[0] for r in rows}, "every message was processed"
    held_by_a = {r[0] for r in rows if r[2][0] == a.worker_id and len(r[2]) > 1}
    duplicates = {item for item, n in seen.items() if n > 1}
    assert duplicates <= held_by_a, "only work the killed worker held ran twice"
    assert len(held_by_a) <= 4 + 20, "at most one batch plus the running handlers was in flight"
    assert held_by_a, "the killed worker held claims when it died"
    for item, attempt, by, errors in rows:
        if item in held_by_a:
            assert attempt == 2 and by == [a.worker_id, b.worker_id]
            assert errors[-1]["error"] == "lease expired" and errors[-1]["worker"] == a.worker_id
        else:
            assert attempt == 1 and not errors


def test_sigterm_finishes_running_work_releases_the_rest_and_exits_cleanly(
    db_url: str, workers: Callable[..., WorkerProcess], record: Callable[[], list[tuple[str, str, int]]]
) -> None:
    total = 40
    enqueue(db_url, total)
    w = workers("draining", "--concurrency", "2", "--batch-size", "6", "--grace", "20", sleep=0.2)
    wait_for("some work done", lambda: len(record()) >= 4, 90, w)
    assert w.stop(signal.SIGTERM, timeout=30) == 0, w.tail()

    with psycopg.connect(db_url, autocommit=True) as c:
        rows = c.execute(
            "select id::text, state, attempt, claimed_by from public.message_queue where queue_name = 'e2e'"
        ).fetchall()
    done = {item for _, item, _ in record()}
    assert not [r for r in rows if r[1] == "running"], "nothing is left holding a lease"
    for item, state, attempt, claimed_by in rows:
        if item in done:
            assert state == "completed", "finished work was acked before exit"
        else:
            assert (state, attempt, claimed_by) == ("available", 0, None), "the rest was released"
    assert len(done) < total

    again = workers("finisher", "--concurrency", "4")
    wait_for("the rest completed", lambda: states(db_url)["completed"] == total, 90, again)
    again.stop()
    seen = Counter(item for _, item, _ in record())
    assert len(seen) == total and max(seen.values()) == 1, "a clean drain repeats nothing"


def test_sigterm_releases_work_that_outlasts_the_grace_period(
    db_url: str, workers: Callable[..., WorkerProcess]
) -> None:
    enqueue(db_url, 1, sleep=60)
    w = workers("impatient", "--grace", "2")
    wait_for("the message to be claimed", lambda: states(db_url)["running"] == 1, 60, w)
    assert w.stop(signal.SIGTERM, timeout=30) == 0, w.tail()
    with psycopg.connect(db_url, autocommit=True) as c:
        row = c.execute(
            "select state, attempt, claimed_by from public.message_queue where queue_name = 'e2e'"
        ).fetchone()
    assert row == ("available", 0, None), "released without counting the interrupted attempt"


@pytest.mark.pooled
def test_long_work_keeps_its_lease_and_jobs_return_results(
    db_url: str, workers: Callable[..., WorkerProcess], record: Callable[[], list[tuple[str, str, int]]]
) -> None:
    with psycopg.connect(db_url, autocommit=True) as c:
        mid = q.enqueue_message(c, "e2e", "slow", {"sleep": 5})
        jid = jobs.schedule_job(c, "e2e.job", "slow job", {"sleep": 5}, timeout_seconds=3)
    w = workers("patient", "--lease", "2")
    wait_for("both done", lambda: len(record()) == 2, 90, w)
    with psycopg.connect(db_url, autocommit=True) as c:
        wait_for(
            "both settled",
            lambda: (
                c.execute(
                    "select (select state from public.message_queue where id = %s),"
                    " (select state from public.background_jobs where id = %s)",
                    (mid, jid),
                ).fetchone()
                == ("completed", "completed")
            ),
            30,
            w,
        )
        m = c.execute("select attempt, errors from public.message_queue where id = %s", (mid,)).fetchone()
        j = c.execute("select attempt, errors, result from public.background_jobs where id = %s", (jid,)).fetchone()
    w.stop()
    assert m == (1, []), "the 2 s lease was extended while the 5 s handler ran"
    assert j == (1, [], {"done": True, "attempt": 1}), "heartbeats kept the 3 s job alive"


def test_failures_are_retried_then_dead_lettered_by_the_worker(
    db_url: str, workers: Callable[..., WorkerProcess]
) -> None:
    with psycopg.connect(db_url, autocommit=True) as c:
        mid = q.enqueue_message(c, "e2e", "bad", {"fail": True}, max_attempts=2)
    w = workers("failing")
    wait_for("the dead letter", lambda: states(db_url)["dead_letter"] == 1, 90, w)
    w.stop()
    with psycopg.connect(db_url, autocommit=True) as c:
        row = c.execute("select attempt, errors from public.message_queue where id = %s", (mid,)).fetchone()
    assert row is not None and row[0] == 2
    assert [e["attempt"] for e in row[1]] == [1, 2]
    assert all("RuntimeError: asked to fail" in e["error"] for e in row[1])


@pytest.mark.pooled
def test_the_worker_fires_recurring_jobs(
    db_url: str, route: str, workers: Callable[..., WorkerProcess], record: Callable[[], list[tuple[str, str, int]]]
) -> None:
    with psycopg.connect(db_url, autocommit=True) as c:
        rid = jobs.schedule_recurring_job(c, "e2e-every-minute", "e2e.job", "* * * * *", {"sleep": 0})
        slot = c.execute(
            "update public.recurring_jobs set next_run_at = date_trunc('second', now()) - interval '1 second'"
            " where id = %s returning next_run_at",
            (rid,),
        ).fetchone()[0]  # type: ignore[index]
    w = workers("cron")
    wait_for("the recurring job to run", lambda: any(kind == "job" for kind, _, _ in record()), 90, w)
    w.stop()
    with psycopg.connect(db_url, autocommit=True) as c:
        fired = c.execute(
            "select state from public.background_jobs where recurring_job_id = %s and scheduled_at = %s",
            (rid, slot),
        ).fetchall()
        schedule = c.execute(
            "select last_run_at >= %s, next_run_at > %s from public.recurring_jobs where id = %s", (slot, slot, rid)
        ).fetchone()
    assert fired == [("completed",)], "the due slot became exactly one job, and it ran"
    assert schedule == (True, True), "the schedule moved on to a later slot"
    # through the pooler without PLATFORMDB_DIRECT_URL there is no LISTEN: it polls, and says so once
    log = w.log.read_text(errors="replace")
    assert log.count("no session connection for LISTEN") == (1 if route == "pooled" else 0), log[-3000:]
    assert "prepared statement" not in log


def test_a_database_restart_during_a_run_loses_nothing(
    cluster: devdb.Cluster,
    db_url: str,
    workers: Callable[..., WorkerProcess],
    record: Callable[[], list[tuple[str, str, int]]],
) -> None:
    if not cluster.datadir.exists():
        pytest.skip("PLATFORMDB_TEST_CLUSTER_PORT points at an external cluster this run cannot restart")
    enqueue(db_url, 150)
    w = workers("survivor", "--concurrency", "4", "--lease", "5", sleep=0.02)
    wait_for("work under way", lambda: len(record()) >= 20, 90, w)
    cluster.restart()  # fast shutdown: every connection is cut
    assert w.alive(), "the worker survives the restart"
    enqueue(db_url, 150, start=150)  # new work after the restart
    wait_for("every message completed", lambda: states(db_url)["completed"] == 300, 120, w)
    assert w.alive()
    assert w.stop(signal.SIGTERM, timeout=30) == 0, w.tail()
    seen = Counter(item for _, item, _ in record())
    assert len(seen) == 300, "every message was processed"
    assert "reconnect" in w.tail() or "connection lost" in w.tail(), "the worker did see the restart"
