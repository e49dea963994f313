"""Event appends per second with an expected version, next to a plain INSERT, same run.

Targets (issue 7): ≥ 5,000 appends/s for a single writer, ≥ 20,000/s batched.

What each figure includes (all through one connection, autocommit, prepared statements):
- `append_single_per_s`: `append_event(..., p_expected_version => v)` one event per call
  and per transaction, on a handful of streams: validation, the stream-head row lock and
  version check, the in-flight writer registration, the partitioned insert, the commit.
- `append_batched_per_s`: `append_events` with `BATCH` events per call (one version check
  per batch), one transaction per call.
- `plain_insert_single_per_s` / `plain_insert_batched_per_s`: the peer: an INSERT of the
  same columns into a plain (unpartitioned, unchecked) table with one index, one row per
  statement and `BATCH` rows per statement. The ratio to it is the cost of the guarantees.
- `append_4_writers_per_s`: four connections appending single events to their own
  streams at the same time (threads; each waits on the server, not on the GIL).
"""

from __future__ import annotations

import json
import os
import threading
import time

import psycopg

from _common import database, rate, write_result

SINGLE = int(os.environ.get("BENCH_EVENTS_SINGLE", "3000"))
BATCHED = int(os.environ.get("BENCH_EVENTS_BATCHED", "30000"))
BATCH = 100
STREAMS = 10

APPEND = """
select public.append_event(p_aggregate_id => %s, p_aggregate_type => 'bench',
    p_event_type => 'bench.appended', p_payload => %s::jsonb, p_expected_version => %s)
"""
APPEND_BATCH = """
select count(*) from public.append_events(p_aggregate_type => 'bench', p_aggregate_id => %s,
    p_events => %s::jsonb, p_expected_version => %s)
"""
PEER_DDL = """
create table if not exists bench_plain_events (
    id uuid primary key default gen_random_uuid(), created_at timestamptz not null default now(),
    global_position bigserial, aggregate_type text not null, aggregate_id text not null,
    event_type text not null, event_version integer not null, payload jsonb not null,
    metadata jsonb not null default '{}')
"""
PEER_INSERT = """
insert into bench_plain_events (aggregate_type, aggregate_id, event_type, event_version, payload)
values ('bench', %s, 'bench.appended', %s, %s::jsonb)
"""
PEER_BATCH = """
insert into bench_plain_events (aggregate_type, aggregate_id, event_type, event_version, payload)
select 'bench', %s, 'bench.appended', g, %s::jsonb from generate_series(1, %s) g
"""
PAYLOAD = json.dumps({"trip": "kigali-nyabugogo", "amount": 2500, "currency": "RWF"})


def single(conn: psycopg.Connection, prefix: str, n: int) -> float:
    versions = dict.fromkeys(range(STREAMS), 0)
    t0 = time.perf_counter()
    for i in range(n):
        s = i % STREAMS
        conn.execute(APPEND, (f"{prefix}-{s}", PAYLOAD, versions[s]))
        versions[s] += 1
    return rate(n, time.perf_counter() - t0)


def batched(conn: psycopg.Connection, prefix: str, n: int) -> float:
    events = json.dumps([{"event_type": "bench.appended", "payload": json.loads(PAYLOAD)}] * BATCH)
    versions = dict.fromkeys(range(STREAMS), 0)
    t0 = time.perf_counter()
    for i in range(n // BATCH):
        s = i % STREAMS
        conn.execute(APPEND_BATCH, (f"{prefix}-{s}", events, versions[s]))
        versions[s] += BATCH
    return rate(n // BATCH * BATCH, time.perf_counter() - t0)


def peer_single(conn: psycopg.Connection, n: int) -> float:
    t0 = time.perf_counter()
    for i in range(n):
        conn.execute(PEER_INSERT, (f"peer-{i % STREAMS}", i, PAYLOAD))
    return rate(n, time.perf_counter() - t0)


def peer_batched(conn: psycopg.Connection, n: int) -> float:
    t0 = time.perf_counter()
    for i in range(n // BATCH):
        conn.execute(PEER_BATCH, (f"peer-{i % STREAMS}", PAYLOAD, BATCH))
    return rate(n // BATCH * BATCH, time.perf_counter() - t0)


def four_writers(url: str, n_each: int) -> float:
    conns = [psycopg.connect(url, autocommit=True, prepare_threshold=0) for _ in range(4)]
    barrier = threading.Barrier(5)

    def write(i: int) -> None:
        barrier.wait()
        single(conns[i], f"w{i}", n_each)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    for c in conns:
        c.close()
    return rate(4 * n_each, elapsed)


def main() -> None:
    figures: dict[str, object] = {"single": SINGLE, "batched": BATCHED, "batch": BATCH}
    with database() as url, psycopg.connect(url, autocommit=True, prepare_threshold=0) as conn:
        conn.execute(PEER_DDL)
        conn.execute("set role service_role")
        single(conn, "warmup", 200)
        conn.execute("reset role")
        peer_single(conn, 200)
        conn.execute("set role service_role")
        figures["append_single_per_s"] = round(single(conn, "single", SINGLE))
        figures["append_batched_per_s"] = round(batched(conn, "batched", BATCHED))
        conn.execute("reset role")
        figures["plain_insert_single_per_s"] = round(peer_single(conn, SINGLE))
        figures["plain_insert_batched_per_s"] = round(peer_batched(conn, BATCHED))
        figures["append_4_writers_per_s"] = round(four_writers(url, SINGLE // 2))
        figures["single_vs_plain"] = round(
            figures["append_single_per_s"] / figures["plain_insert_single_per_s"],
            2,  # type: ignore[operator]
        )
        figures["batched_vs_plain"] = round(
            figures["append_batched_per_s"] / figures["plain_insert_batched_per_s"],
            2,  # type: ignore[operator]
        )
        with conn.cursor() as cur:
            cur.execute("select count(*) = count(distinct (aggregate_id, event_version)) from public.event_store")
            row = cur.fetchone()
            figures["versions_unique"] = bool(row and row[0])
    for k, v in figures.items():
        print(f"{k}: {v}")
    print(f"wrote {write_result('events', figures)}")


if __name__ == "__main__":
    main()
