"""Stream contention: many writers append to a few event streams with optimistic
concurrency (each append states the version it expects). Losers get PD003 and retry from
the new version. At the end every stream is 1..n without a gap or a duplicate, and every
append a writer was told succeeded is there exactly once.

Full (`make chaos`): 32 writers × 50 appends on 10 streams. Smoke: 8 × 10 on 3.
"""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from collections import Counter
from typing import Any

import psycopg
import pytest

from tests.chaos import report

pytestmark = pytest.mark.timeout(1800)  # the full sizes run for minutes

SIZE = {
    "full": {"writers": 32, "streams": 10, "appends": 50},
    "smoke": {"writers": 8, "streams": 3, "appends": 10},
}[report.profile()]

VERSION = "select public.stream_version(p_aggregate_type => 'chaos_stream', p_aggregate_id => %s)"
APPEND = """
select public.append_event(
    p_aggregate_id => %s, p_aggregate_type => 'chaos_stream', p_event_type => 'tick',
    p_payload => %s::jsonb, p_expected_version => %s)
"""


def test_writers_racing_on_streams_leave_no_gap_and_no_duplicate(db_url: str) -> None:
    n_writers, n_streams, quota = SIZE["writers"], SIZE["streams"], SIZE["appends"]
    run = uuid.uuid4().hex[:8]
    streams = [f"{run}-{s}" for s in range(n_streams)]
    barrier = threading.Barrier(n_writers)
    written: list[tuple[str, str, int, int]] = []  # (stream, event id, writer, seq)
    conflicts = Counter[int]()
    failures: list[str] = []
    lock = threading.Lock()

    def writer(w: int) -> None:
        rng = random.Random(w)
        mine: list[tuple[str, str, int, int]] = []
        lost_races = 0
        try:
            with psycopg.connect(db_url, autocommit=True) as conn:
                conn.execute(
                    "select set_config('request.jwt.claims', '{\"role\": \"service_role\"}', false),"
                    " set_config('role', 'service_role', false)"
                )
                barrier.wait(60)
                for seq in range(quota):
                    stream = rng.choice(streams)
                    while True:
                        v = conn.execute(VERSION, (stream,)).fetchone()
                        assert v is not None
                        try:
                            row = conn.execute(APPEND, (stream, json.dumps({"writer": w, "seq": seq}), v[0])).fetchone()
                        except psycopg.Error as exc:
                            if exc.sqlstate == "PD003":
                                lost_races += 1
                                continue
                            raise
                        assert row is not None
                        mine.append((stream, str(row[0]), w, seq))
                        break
        except Exception as exc:
            with lock:
                failures.append(f"writer {w}: {type(exc).__name__}: {exc}")
            barrier.abort()
            return
        with lock:
            written.extend(mine)
            conflicts[w] = lost_races

    threads = [threading.Thread(target=writer, args=(w,), name=f"writer-{w}") for w in range(n_writers)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    elapsed = time.monotonic() - t0
    assert not failures, failures[:5]
    assert len(written) == n_writers * quota

    with psycopg.connect(db_url, autocommit=True) as conn:
        rows: list[Any] = conn.execute(
            "select aggregate_id, event_version, id::text, (payload->>'writer')::int, (payload->>'seq')::int,"
            " global_position from public.event_store"
            " where aggregate_type = 'chaos_stream' and aggregate_id = any(%s)"
            " order by aggregate_id, event_version",
            (streams,),
        ).fetchall()
        heads = dict(
            conn.execute(
                "select a, public.stream_version('chaos_stream', a) from unnest(%s::text[]) a",
                (streams,),
            ).fetchall()
        )
    by_stream: dict[str, list[int]] = {s: [] for s in streams}
    for stream, version, *_ in rows:
        by_stream[stream].append(version)
    gaps = {s: v for s, v in by_stream.items() if v != list(range(1, len(v) + 1))}
    assert not gaps, f"streams with a gap or a duplicate version: {gaps}"
    assert all(heads[s] == len(by_stream[s]) for s in streams), f"stream heads {heads} match their events"
    stored = Counter((r[2], r[3], r[4]) for r in rows)
    expected = Counter((eid, w, seq) for _, eid, w, seq in written)
    assert stored == expected, "every acknowledged append is stored exactly once, and nothing else"
    positions = [r[5] for r in rows]
    assert len(set(positions)) == len(positions), "global positions are unique"

    total_conflicts = sum(conflicts.values())
    figures = {
        "writers": n_writers,
        "streams": n_streams,
        "appends": len(written),
        "elapsed_s": round(elapsed, 2),
        "appends_per_s": round(len(written) / elapsed),
        "wrong_expected_version_retries": total_conflicts,
        "gaps": 0,
        "duplicates": 0,
        "longest_stream": max(len(v) for v in by_stream.values()),
    }
    report.write(
        "stream_contention",
        f"stream contention: {n_writers} writers on {n_streams} streams, {len(written)} appends"
        f" ({total_conflicts} PD003 retries): no gaps, no duplicates, every acknowledged append stored once",
        figures,
    )
