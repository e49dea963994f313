"""The cache from one Python connection next to Redis (redis-py), and what hit counting costs.

Same payload (a ~150-byte JSON profile), same client-side work (JSON encode/decode) on both
sides, one request at a time from one connection: `get_cache`/`set_cache` through the SDK
(with a kept cursor, as sdk.cache recommends for loops) vs GET/SET with EX through one
redis-py client on the Redis at 127.0.0.1:6379. Hit counting on vs off is the same
connection switching `platformdb.cache_stats` between rounds. Rounds are interleaved and the
median round is reported, because this machine is shared; the backend's own CPU time per
get (from /proc/<pid>/schedstat, when the server is local) is reported as well, and the
counting's extra CPU as a share of a get's round trip: the steadier measure of its cost.

Targets (issue 8): get and set ≥ 0.5× Redis; hit counting costs ≤ 10%.
BENCH_CACHE_OPS and BENCH_CACHE_ROUNDS shrink it for a quick look.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import redis

from _common import database, rate, write_result
from platformdb.sdk import cache

OPS = int(os.environ.get("BENCH_CACHE_OPS", "2000"))
ROUNDS = int(os.environ.get("BENCH_CACHE_ROUNDS", "9"))
KEYS = 1000
TTL = 600
PREFIX = f"platformdb-bench:{os.getpid()}:"
PROFILE = {
    "user_id": "6f1c1a52-4a39-4c43-9f0e-6d1f3d0c8a11",
    "name": "Aline Uwase",
    "phone": "+250788123456",
    "district": "Gasabo",
    "rating": 4.8,
    "trips": 137,
    "preferred_payment": "mtn_momo",
}


def backend_cpu_ns(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def timed(op: Callable[[int], Any], n: int) -> float:
    t = time.perf_counter()
    for i in range(n):
        op(i)
    return rate(n, time.perf_counter() - t)


def main() -> None:
    rates: dict[str, list[float]] = {
        k: [] for k in ("pg_get_counting", "pg_get_not_counting", "redis_get", "pg_set", "redis_set")
    }
    cpu: dict[str, list[float]] = {"counting": [], "not_counting": []}
    r = redis.Redis(host="127.0.0.1", port=6379)
    r.ping()
    with database() as url, psycopg.connect(url, autocommit=True) as conn:
        conn.execute("set role service_role")
        pid = conn.info.backend_pid
        cur = conn.cursor()  # kept, as a service reading in a loop would (see sdk.cache)
        for i in range(KEYS):
            cache.set_cache(conn, f"bench:{i}", PROFILE, TTL, "profile")
            r.set(f"{PREFIX}{i}", json.dumps(PROFILE), ex=TTL)

        def pg_get(i: int) -> Any:
            value = cache.get_cache(cur, f"bench:{i % KEYS}")
            assert value is not None
            return value

        def pg_set(i: int) -> Any:
            return cache.set_cache(cur, f"bench:{i % KEYS}", PROFILE, TTL, "profile")

        def redis_get(i: int) -> Any:
            raw = r.get(f"{PREFIX}{i % KEYS}")
            assert raw is not None
            return json.loads(raw)  # type: ignore[arg-type]

        def redis_set(i: int) -> Any:
            return r.set(f"{PREFIX}{i % KEYS}", json.dumps(PROFILE), ex=TTL)

        for op in (pg_get, pg_set, redis_get, redis_set):  # warm up plans and connections
            timed(op, 300)
        try:
            for rnd in range(ROUNDS):
                order = [True, False] if rnd % 2 else [False, True]
                for counting in order:
                    conn.execute(
                        "select set_config('platformdb.cache_stats', %s, false)",
                        ("on" if counting else "off",),
                    )
                    before = backend_cpu_ns(pid)
                    rates["pg_get_counting" if counting else "pg_get_not_counting"].append(timed(pg_get, OPS))
                    after = backend_cpu_ns(pid)
                    if before is not None and after is not None:
                        cpu["counting" if counting else "not_counting"].append((after - before) / OPS / 1000)
                rates["redis_get"].append(timed(redis_get, OPS))
                rates["pg_set"].append(timed(pg_set, OPS))
                rates["redis_set"].append(timed(redis_set, OPS))
            conn.execute("select set_config('platformdb.cache_stats', 'on', false)")
            flushed = cache.flush_stats(conn)
            hits = conn.execute("select hits_24h from public.cache_stats where cache_type = 'profile'").fetchone()
        finally:
            r.delete(*[f"{PREFIX}{i}" for i in range(KEYS)])

    med = {k: statistics.median(v) for k, v in rates.items()}
    figures: dict[str, Any] = {f"{k}_per_s": round(v) for k, v in med.items()}
    figures["ratio_get_vs_redis"] = round(med["pg_get_counting"] / med["redis_get"], 2)
    figures["ratio_set_vs_redis"] = round(med["pg_set"] / med["redis_set"], 2)
    # counting on and off ran back to back in every round: the median of the paired ratios
    paired = [1 - on / off for on, off in zip(rates["pg_get_counting"], rates["pg_get_not_counting"], strict=True)]
    figures["hit_counting_cost_throughput"] = round(statistics.median(paired), 3)
    if cpu["counting"] and cpu["not_counting"]:
        on, off = statistics.median(cpu["counting"]), statistics.median(cpu["not_counting"])
        figures["backend_cpu_us_per_get_counting"] = round(on, 2)
        figures["backend_cpu_us_per_get_not_counting"] = round(off, 2)
        # the counting's own CPU as a share of one get's round trip from Python
        figures["hit_counting_cost_cpu_share"] = round((on - off) / (1e6 / med["pg_get_not_counting"]), 3)
    figures["counted_hits_after_flush"] = int(hits[0]) if hits else 0
    figures["flushed_rows"] = flushed
    figures["ops_per_round"] = OPS
    figures["rounds"] = ROUNDS
    figures["targets"] = {
        "get_ge_half_redis": figures["ratio_get_vs_redis"] >= 0.5,
        "set_ge_half_redis": figures["ratio_set_vs_redis"] >= 0.5,
        "counting_cost_le_10pct": figures["hit_counting_cost_throughput"] <= 0.10,
    }
    print(json.dumps(figures, indent=2))
    write_result("cache", figures)


if __name__ == "__main__":
    main()
