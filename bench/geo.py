"""Nearest-location search on 1,000,000 points: with the GiST index vs without, in one run.

Builds 1,000,000 locations around Kigali with one INSERT … SELECT from generate_series
(the secondary indexes are dropped for the load and built afterwards, as for any bulk load),
then times `find_nearby_locations` from Python — p50/p95/p99 of the whole round trip — as
the service and as a signed-in user, next to the same calls in a session where the planner
may not use an index (enable_indexscan/enable_bitmapscan off: a sequential scan over the
million rows, parallel where PostgreSQL chooses). Both sessions must return the same rows.

Targets (issue 8): p95 ≤ 1 ms with the index; the index ≥ 100× faster than without.
BENCH_GEO_POINTS, BENCH_GEO_QUERIES and BENCH_GEO_SEQ_QUERIES shrink it for a quick look.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import time
from typing import Any

import psycopg
from psycopg import sql

from _common import database, write_result
from platformdb.sdk import geo

POINTS = int(os.environ.get("BENCH_GEO_POINTS", "1000000"))
QUERIES = int(os.environ.get("BENCH_GEO_QUERIES", "500"))
SEQ_QUERIES = int(os.environ.get("BENCH_GEO_SEQ_QUERIES", "12"))
CENTER = (-1.9536, 30.0606)  # Kigali
SPREAD = 0.15  # degrees either side (about 16.7 km)
USERS = 200_000

# One row per i: the first USERS rows are each user's 'current' position (one per user),
# every 100th row is a public pickup/dropoff point (no owner), 5% are inactive, the rest are
# saved places of random types.
LOAD = """
insert into public.locations
    (user_id, location_type, latitude, longitude, is_active, name)
select case when g.i %% 100 = 0 then null
            else md5('bench-user-' || (g.i %% %(users)s))::uuid end,
       case when g.i %% 100 = 0 then (array['pickup', 'dropoff'])[1 + g.i / 100 %% 2]
            when g.i < %(users)s then 'current'
            else (array['home', 'work', 'favorite', 'pickup', 'dropoff'])[1 + (g.i / 3) %% 5]
       end,
       %(lat)s + (random() * 2 - 1) * %(spread)s,
       %(lng)s + (random() * 2 - 1) * %(spread)s,
       g.i %% 20 <> 7,
       'p' || g.i
  from generate_series(0, %(n)s - 1) as g(i)
"""
# every index of locations except the primary key: dropped for the load, rebuilt after
SECONDARY_INDEXES = """
select i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
  from pg_index i
 where i.indrelid = 'public.locations'::regclass
   and not exists (select 1 from pg_constraint c where c.conindid = i.indexrelid)
"""


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    qs = statistics.quantiles(samples_ms, n=100, method="inclusive")
    return {"p50_ms": round(qs[49], 3), "p95_ms": round(qs[94], 3), "p99_ms": round(qs[98], 3)}


def build(conn: psycopg.Connection[Any]) -> dict[str, float]:
    conn.execute("set maintenance_work_mem = '256MB'")
    indexes = conn.execute(SECONDARY_INDEXES).fetchall()
    for name, _ in indexes:
        conn.execute(sql.SQL("drop index {}").format(sql.Identifier(*name.split("."))))
    t = time.perf_counter()
    conn.execute(
        LOAD,
        {"users": USERS, "lat": CENTER[0], "lng": CENTER[1], "spread": SPREAD, "n": POINTS},
    )
    load_s = time.perf_counter() - t
    t = time.perf_counter()
    for _, definition in indexes:
        conn.execute(sql.SQL(definition))  # the index's own definition, from pg_indexes
    index_s = time.perf_counter() - t
    conn.execute("vacuum analyze public.locations")
    return {"load_seconds": round(load_s, 2), "index_seconds": round(index_s, 2)}


def query_points(n: int, rng: random.Random) -> list[tuple[float, float]]:
    return [(CENTER[0] + rng.uniform(-0.1, 0.1), CENTER[1] + rng.uniform(-0.1, 0.1)) for _ in range(n)]


def timed(
    conn: psycopg.Connection[Any], points: list[tuple[float, float]], location_type: str | None
) -> tuple[list[float], list[list[Any]]]:
    samples, results = [], []
    for lat, lng in points:
        t = time.perf_counter()
        rows = geo.find_nearby_locations(conn, lat, lng, 5000, location_type, 20)
        samples.append((time.perf_counter() - t) * 1000)
        results.append([r.id for r in rows])
    return samples, results


def main() -> None:
    rng = random.Random(8)
    figures: dict[str, Any] = {"points": POINTS}
    with database() as url:
        with psycopg.connect(url, autocommit=True) as owner:
            figures |= build(owner)
            user = owner.execute(
                "select user_id from public.locations where user_id is not null"
                " group by user_id order by count(*) desc limit 1"
            ).fetchone()
            assert user is not None

        service = psycopg.connect(url, autocommit=True)
        service.execute("set role service_role")
        seqscan = psycopg.connect(url, autocommit=True, options="-c enable_indexscan=off -c enable_bitmapscan=off")
        seqscan.execute("set role service_role")
        signed_in = psycopg.connect(url, autocommit=True)
        signed_in.execute(
            "select set_config('request.jwt.claims', %s, false)",
            (json.dumps({"sub": str(user[0]), "role": "authenticated"}),),
        )
        signed_in.execute("set role authenticated")

        warm = query_points(50, rng)
        for conn in (service, signed_in):
            timed(conn, warm, "pickup")
            timed(conn, warm, None)

        points = query_points(QUERIES, rng)
        idx_pickup, idx_results = timed(service, points, "pickup")
        idx_all, _ = timed(service, points, None)
        user_pickup, user_results = timed(signed_in, points, "pickup")
        figures["service_pickup_indexed"] = percentiles(idx_pickup)
        figures["service_any_type_indexed"] = percentiles(idx_all)
        figures["user_pickup_indexed"] = percentiles(user_pickup)
        figures["rows_per_query_avg"] = round(statistics.mean(len(r) for r in idx_results), 1)
        figures["user_rows_per_query_avg"] = round(statistics.mean(len(r) for r in user_results), 1)

        seq_points = points[:SEQ_QUERIES]
        timed(seqscan, seq_points[:1], "pickup")  # plan and warm the cache once
        seq_pickup, seq_results = timed(seqscan, seq_points, "pickup")
        assert seq_results == idx_results[:SEQ_QUERIES], "index and seq scan disagree"
        figures["service_pickup_seqscan"] = percentiles(seq_pickup)

        p50_ratio = figures["service_pickup_seqscan"]["p50_ms"] / figures["service_pickup_indexed"]["p50_ms"]
        p95_ratio = figures["service_pickup_seqscan"]["p95_ms"] / figures["service_pickup_indexed"]["p95_ms"]
        figures["index_speedup_p50"] = round(p50_ratio, 1)
        figures["index_speedup_p95"] = round(p95_ratio, 1)
        figures["targets"] = {
            "p95_le_1ms": figures["service_pickup_indexed"]["p95_ms"] <= 1.0,
            "speedup_ge_100x": p50_ratio >= 100,
        }
        for c in (service, seqscan, signed_in):
            c.close()

    print(json.dumps(figures, indent=2))
    write_result("geo", figures)


if __name__ == "__main__":
    main()
