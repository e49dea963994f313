"""Held snapshot: a transaction left open (an analyst's REPEATABLE READ session, a stuck
client) while the queue runs at a steady load. Dead row versions cannot be cleaned while
its snapshot is held, so the queue table grows and every claim wades through more of them.
The scenario reports queue depth, throughput and table size before, during and after the
hold, and checks that nothing is lost and that the queue catches up once it ends.

Full (`make chaos`): 300 messages/s, a 120 s hold. Smoke: 100/s, a 6 s hold.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from platformdb.sdk import queue as q
from tests.chaos import report
from tests.chaos.conftest import Proc, wait_for
from tests.chaos.worker_app import read_records

pytestmark = pytest.mark.timeout(1800)  # the full sizes run for minutes

SIZE = {
    "full": {"rate": 300, "before": 20, "hold": 120, "after": 60},
    "smoke": {"rate": 100, "before": 3, "hold": 6, "after": 4},
}[report.profile()]
APP = "tests.chaos.worker_app"

SAMPLE = """
select count(*) filter (where state in ('available', 'retryable', 'running')),
       count(*) filter (where state = 'completed'),
       pg_total_relation_size('public.message_queue'),
       (select n_dead_tup from pg_stat_user_tables where relid = 'public.message_queue'::regclass)
  from public.message_queue where queue_name = 'chaos'
"""


class Producer(threading.Thread):
    """Enqueues `rate` messages per second in ten batches a second, until stopped."""

    def __init__(self, url: str, rate: int):
        super().__init__(name="producer", daemon=True)
        self.url, self.rate = url, rate
        self.stop = threading.Event()
        self.sent = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        per_tick = max(1, self.rate // 10)
        try:
            with psycopg.connect(self.url, autocommit=True) as conn:
                next_tick = time.monotonic()
                while not self.stop.is_set():
                    batch = [q.NewMessage("chaos.load", {"n": self.sent + i}) for i in range(per_tick)]
                    q.enqueue_messages(conn, "chaos", batch)
                    self.sent += per_tick
                    next_tick += 0.1
                    self.stop.wait(max(0.0, next_tick - time.monotonic()))
        except BaseException as exc:
            self.error = exc


def test_a_held_snapshot_slows_the_queue_but_loses_nothing_and_it_recovers(
    db_url: str, spawn: Callable[..., Proc], tmp_path: Path
) -> None:
    record = tmp_path / "processed.txt"
    workers = [
        spawn(
            f"snap-{i}",
            [
                "worker",
                "--database-url",
                db_url,
                "--app",
                APP,
                "--worker-id",
                f"snap-{i}",
                "--concurrency",
                "4",
                "--lease",
                "30",
                "--poll-interval",
                "0.2",
            ],
            CHAOS_RECORD=str(record),
            CHAOS_WORK_MS="1",
        )
        for i in range(2)
    ]
    producer = Producer(db_url, SIZE["rate"])
    samples: list[dict[str, Any]] = []
    phase = ["warmup"]
    done = threading.Event()

    def sampler() -> None:
        with psycopg.connect(db_url, autocommit=True) as conn:
            last_completed, last_t = 0, time.monotonic()
            while not done.is_set():
                row = conn.execute(SAMPLE).fetchone()
                assert row is not None
                now = time.monotonic()
                samples.append(
                    {
                        "phase": phase[0],
                        "t": now,
                        "depth": row[0],
                        "per_s": (row[1] - last_completed) / (now - last_t) if now > last_t else 0.0,
                        "table_bytes": row[2],
                        "dead_tuples": row[3] or 0,
                    }
                )
                last_completed, last_t = row[1], now
                done.wait(1.0)

    watcher = threading.Thread(target=sampler, name="sampler", daemon=True)
    producer.start()
    watcher.start()
    try:
        wait_for("the workers to be consuming", lambda: len(read_records(record)) >= SIZE["rate"], 120, workers)
        phase[0] = "before"
        time.sleep(SIZE["before"])
        with psycopg.connect(db_url) as holder:
            holder.execute("set transaction isolation level repeatable read")
            holder.execute("select count(*) from public.message_queue").fetchone()  # the snapshot is taken
            xmin = holder.execute("select backend_xmin from pg_stat_activity where pid = pg_backend_pid()").fetchone()
            phase[0] = "held"
            time.sleep(SIZE["hold"])
            holder.rollback()
        phase[0] = "after"
        time.sleep(SIZE["after"])
    finally:
        producer.stop.set()
        producer.join(30)
    assert producer.error is None, producer.error
    assert xmin is not None and xmin[0] is not None, "the holder really held a snapshot"
    sent = producer.sent
    with psycopg.connect(db_url, autocommit=True) as conn:

        def completed() -> bool:
            row = conn.execute(
                "select count(*) from public.message_queue where queue_name = 'chaos' and state = 'completed'"
            ).fetchone()
            return row is not None and row[0] == sent

        catch_up = wait_for("the queue to drain after the load", completed, 300, workers)
        done.set()
        watcher.join(10)
        for w in workers:
            assert w.stop() == 0, w.tail()
        ids = {str(r[0]) for r in conn.execute("select id from public.message_queue where queue_name = 'chaos'")}
        dead_before_vacuum = conn.execute(
            "select n_dead_tup from pg_stat_user_tables where relid = 'public.message_queue'::regclass"
        ).fetchone()
        conn.execute("vacuum public.message_queue")
        after_vacuum = conn.execute(
            "select pg_total_relation_size('public.message_queue'),"
            " (select n_dead_tup from pg_stat_user_tables where relid = 'public.message_queue'::regclass)"
        ).fetchone()

    processed = {item for kind, item, *_ in read_records(record) if kind == "message"}
    assert len(ids) == sent and processed == ids, f"lost: {len(ids - processed)} of {sent}"

    def summary(name: str) -> dict[str, Any]:
        rows = [s for s in samples if s["phase"] == name][1:] or [s for s in samples if s["phase"] == name]
        return {
            "seconds": round(rows[-1]["t"] - rows[0]["t"], 1) if rows else 0,
            "depth_avg": round(statistics.mean(s["depth"] for s in rows), 1) if rows else 0,
            "depth_max": max((s["depth"] for s in rows), default=0),
            "throughput_per_s": round(statistics.mean(s["per_s"] for s in rows), 1) if rows else 0,
            "table_mb_start": round(rows[0]["table_bytes"] / 2**20, 2) if rows else 0,
            "table_mb_end": round(rows[-1]["table_bytes"] / 2**20, 2) if rows else 0,
            "dead_tuples_end": rows[-1]["dead_tuples"] if rows else 0,
            "table_mb_per_min": round(
                (rows[-1]["table_bytes"] - rows[0]["table_bytes"])
                / 2**20
                / max(1e-9, rows[-1]["t"] - rows[0]["t"])
                * 60,
                2,
            )
            if len(rows) > 1
            else 0,
        }

    after_depths = [s["depth"] for s in samples if s["phase"] == "after"]
    assert after_depths and min(after_depths) <= SIZE["rate"], (
        f"the queue caught up after the snapshot ended (at most a second of backlog): {after_depths}"
    )
    phases = {name: summary(name) for name in ("before", "held", "after")}
    recovered = phases["after"]["depth_max"] <= max(phases["before"]["depth_max"], phases["held"]["depth_max"])
    figures = {
        "rate_per_s": SIZE["rate"],
        "hold_s": SIZE["hold"],
        "messages": sent,
        "lost": 0,
        "phases": phases,
        "drained_after_load_s": round(catch_up, 1),
        "dead_tuples_before_vacuum": dead_before_vacuum[0] if dead_before_vacuum else None,
        "table_mb_after_vacuum": round(after_vacuum[0] / 2**20, 2) if after_vacuum else None,
        "dead_tuples_after_vacuum": after_vacuum[1] if after_vacuum else None,
        "depth_after_within_earlier_peak": recovered,
    }
    held, after = phases["held"], phases["after"]
    report.write(
        "held_snapshot",
        f"held snapshot: {SIZE['hold']} s open transaction at {SIZE['rate']} msg/s: depth avg {held['depth_avg']}"
        f" (max {held['depth_max']}) during, {after['depth_avg']} after; throughput {held['throughput_per_s']}/s"
        f" during, {after['throughput_per_s']}/s after; table {held['table_mb_start']} → {held['table_mb_end']} MB"
        f" during; 0 lost of {sent}",
        figures,
    )
