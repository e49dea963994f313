"""Idempotency storm: many connections create the same transactions at the same moment,
each with the same idempotency key and parameters. Exactly one row per key must exist at
the end, every caller must get that row's id, and no caller may see an error.

Full (`make chaos`): 64 connections × the same 1,000 transactions. Smoke: 16 × 100.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import defaultdict

import psycopg
import pytest

from tests.chaos import report
from tests.chaos.conftest import percentile

pytestmark = pytest.mark.timeout(1800)  # the full sizes run for minutes

SIZE = {"full": {"connections": 64, "keys": 1000}, "smoke": {"connections": 16, "keys": 100}}[report.profile()]

CREATE = """
select public.create_transaction(
    p_user_id => %s, p_type => 'payment', p_amount => %s, p_currency => 'RWF',
    p_idempotency_key => %s, p_metadata => %s::jsonb)
"""


def test_concurrent_creators_of_the_same_transactions_make_exactly_one_each(db_url: str) -> None:
    n_conn, n_keys = SIZE["connections"], SIZE["keys"]
    run = uuid.uuid4().hex[:8]
    rng = random.Random(7)
    plan = [
        (f"storm-{run}-{k}", uuid.UUID(int=rng.getrandbits(128)), 100 * rng.randint(1, 5000), f'{{"order": {k}}}')
        for k in range(n_keys)
    ]
    barrier = threading.Barrier(n_conn)
    results: dict[str, set[uuid.UUID]] = defaultdict(set)
    answered = [0] * n_conn
    failures: list[str] = []
    latencies: list[list[float]] = [[] for _ in range(n_conn)]
    lock = threading.Lock()

    def creator(i: int) -> None:
        # half the callers go through the keys in the same order (maximum collision), half shuffled
        order = list(plan) if i % 2 == 0 else random.Random(i).sample(plan, len(plan))
        mine: dict[str, uuid.UUID] = {}
        try:
            with psycopg.connect(db_url, autocommit=True) as conn:
                conn.execute(
                    "select set_config('request.jwt.claims', '{\"role\": \"service_role\"}', false),"
                    " set_config('role', 'service_role', false)"
                )
                barrier.wait(60)
                for key, user, amount, meta in order:
                    t = time.perf_counter()
                    row = conn.execute(CREATE, (user, amount, key, meta), prepare=True).fetchone()
                    latencies[i].append(time.perf_counter() - t)
                    assert row is not None and row[0] is not None
                    mine[key] = row[0]
        except Exception as exc:  # any error in any caller fails the scenario
            with lock:
                failures.append(f"caller {i}: {type(exc).__name__}: {exc}")
            barrier.abort()
            return
        with lock:
            answered[i] = len(mine)
            for key, tx in mine.items():
                results[key].add(tx)

    threads = [threading.Thread(target=creator, args=(i,), name=f"storm-{i}") for i in range(n_conn)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    elapsed = time.monotonic() - t0
    assert not failures, failures[:5]
    assert answered == [n_keys] * n_conn, "every caller got an answer for every key"
    split = {k: ids for k, ids in results.items() if len(ids) != 1}
    assert not split, f"{len(split)} keys answered with different ids, e.g. {list(split.items())[:2]}"

    keys = [k for k, *_ in plan]
    ids = [next(iter(results[k])) for k in keys]
    with psycopg.connect(db_url, autocommit=True) as conn:
        rows = conn.execute(
            "select count(*), count(distinct id) from public.transactions where idempotency_key = any(%s)", (keys,)
        ).fetchone()
        key_rows = conn.execute(
            "select count(*) from public.transaction_idempotency_keys where idempotency_key = any(%s)", (keys,)
        ).fetchone()
        events = conn.execute(
            "select count(*) from public.transaction_events where transaction_id = any(%s)", (ids,)
        ).fetchone()
        match = conn.execute(
            "select count(*) from public.transactions t join unnest(%s::text[], %s::uuid[]) as k(key, id)"
            " on t.idempotency_key = k.key and t.id = k.id",
            (keys, ids),
        ).fetchone()
    assert rows == (n_keys, n_keys), f"exactly {n_keys} transactions, got {rows}"
    assert key_rows == (n_keys,) and match == (n_keys,)
    assert events == (n_keys,), f"one creation event per transaction, got {events}"

    flat = [x for per in latencies for x in per]
    calls = len(flat)
    figures = {
        "connections": n_conn,
        "transactions": n_keys,
        "calls": calls,
        "elapsed_s": round(elapsed, 2),
        "calls_per_s": round(calls / elapsed),
        "latency_ms_p50": round(percentile(flat, 50) * 1000, 2),
        "latency_ms_p99": round(percentile(flat, 99) * 1000, 2),
        "rows": rows[0] if rows else 0,
        "idempotency_keys": key_rows[0] if key_rows else 0,
        "creation_events": events[0] if events else 0,
        "errors": 0,
        "keys_with_two_ids": 0,
    }
    report.write(
        "idempotency_storm",
        f"idempotency storm: {n_conn} connections × the same {n_keys} transactions ({calls} calls,"
        f" {calls / elapsed:.0f}/s): exactly {rows[0] if rows else 0} rows, one id per key, 0 errors",
        figures,
    )
