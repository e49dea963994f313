"""Metrics ingest: single `record_metric` calls vs the batch paths, side by side in one run.

Targets (issue 2): batch ≥ 20× single, and ≥ 100,000 metrics/s on a 2-core machine.
"""

from __future__ import annotations

import os
import time

import psycopg

from _common import database, rate, write_result
from platformdb.sdk import observability as obs

SINGLE = int(os.environ.get("BENCH_SINGLE", "3000"))
BATCH = int(os.environ.get("BENCH_BATCH", "200000"))
CHUNK = 10_000


def metrics(n: int) -> list[obs.Metric]:
    return [obs.Metric("bench", "latency", f"op{i % 20}", float(i % 500), "ms", {"i": i % 7}) for i in range(n)]


def main() -> None:
    with database() as url, psycopg.connect(url, autocommit=True) as conn:
        conn.execute("set role service_role")  # session-wide for the bench
        t = time.perf_counter()
        for i in range(SINGLE):
            conn.execute(obs.RECORD_METRIC, {"service_name": "bench", "metric_type": "latency",
                                             "metric_name": "single", "value": i, "unit": "ms",
                                             "tags": "{}", "recorded_at": None})
        single = rate(SINGLE, time.perf_counter() - t)

        data = metrics(BATCH)
        t = time.perf_counter()
        for k in range(0, BATCH, CHUNK):
            with conn.transaction():
                obs.record_metrics(conn, data[k : k + CHUNK])
        array_rate = rate(BATCH, time.perf_counter() - t)

        t = time.perf_counter()
        for k in range(0, BATCH, CHUNK):
            with conn.transaction():
                obs.copy_metrics(conn, data[k : k + CHUNK])
        copy_rate = rate(BATCH, time.perf_counter() - t)

    figures = {
        "single_record_metric_per_s": round(single),
        "batch_record_metrics_jsonb_per_s": round(array_rate),
        "batch_copy_per_s": round(copy_rate),
        "ratio_jsonb_batch_vs_single": round(array_rate / single, 1),
        "ratio_copy_vs_single": round(copy_rate / single, 1),
    }
    for k, v in figures.items():
        print(f"{k:36} {v:>12,}")
    write_result("observability", figures)


if __name__ == "__main__":
    main()
