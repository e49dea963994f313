"""Load: pgbench driving the real SQL functions together, at 4 and then 16 clients.

The scripts in bench/pgbench/ each call one function the way a service does (as
service_role): record_metric, create_transaction, enqueue + claim + ack, append_event,
get_cache and find_nearby_locations. One pgbench run per client count mixes all six,
equally weighted, for BENCH_LOAD_SECONDS (60 by default; 5 with BENCH_PROFILE=quick),
with pgbench from the cluster's own bindir, prepared statements, and a per-transaction log
from which the latency percentiles are computed (per script and overall).

The data the reads need is there first: 10,000 public pickup points around Kigali,
1,000 cache entries, and the event streams and queue the writes fill as they go.

Target (issue 11): p99 ≤ 50 ms at 16 clients on this machine (2 cores shared by the
server, pgbench and everything else). A failed transaction fails the bench.

    .venv/bin/python bench/load.py            # fresh throw-away cluster, 60 s per phase
    BENCH_LOAD_SECONDS=5 .venv/bin/python bench/load.py
    BENCH_DATABASE_URL=postgresql://… .venv/bin/python bench/load.py   # an existing, migrated database
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

import psycopg

from _common import database, write_result
from platformdb import devdb

QUICK = os.environ.get("BENCH_PROFILE") == "quick"
SECONDS = int(os.environ.get("BENCH_LOAD_SECONDS", "5" if QUICK else "60"))
CLIENT_COUNTS = [int(c) for c in os.environ.get("BENCH_LOAD_CLIENTS", "4,16").split(",")]
SCRIPTS_DIR = Path(__file__).resolve().parent / "pgbench"
SCRIPTS = [
    "record_metric",
    "create_transaction",
    "queue",
    "append_event",
    "get_cache",
    "find_nearby_locations",
]
TARGET_P99_MS = 50.0
TARGET_CLIENTS = 16

SEED = [
    # public pickup points, 5 km either side of the centre of Kigali
    """
    select count(public.save_location(
        p_lat => -1.9536 + (random() * 2 - 1) * 0.045, p_lng => 30.0606 + (random() * 2 - 1) * 0.045,
        p_location_type => 'pickup', p_name => 'pickup ' || g, p_is_public => true))
      from generate_series(1, 10000) g
    """,
    """
    select count(public.set_cache(
        p_key => 'load-fare-' || g, p_value => jsonb_build_object('fare_rwf', 1500 + g),
        p_ttl_seconds => 86400, p_cache_type => 'fare'))
      from generate_series(1, 1000) g
    """,
]
TPS = re.compile(r"tps = ([0-9.]+) \(without initial connection time\)")
FAILED = re.compile(r"number of failed transactions: (\d+)")


def seed(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("select set_config('request.jwt.claims', '{\"role\": \"service_role\"}', false)")
        conn.execute("set role service_role")
        for statement in SEED:
            conn.execute(statement)
        conn.execute("reset role")
        conn.execute("vacuum analyze")


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    k = min(len(sorted_values) - 1, max(0, round(q / 100 * (len(sorted_values) - 1))))
    return sorted_values[k]


def latency_figures(values_us: list[float], seconds: float) -> dict[str, Any]:
    values = sorted(values_us)
    return {
        "transactions": len(values),
        "per_s": round(len(values) / seconds, 1),
        "p50_ms": round(percentile(values, 50) / 1000, 2),
        "p95_ms": round(percentile(values, 95) / 1000, 2),
        "p99_ms": round(percentile(values, 99) / 1000, 2),
        "max_ms": round((values[-1] if values else 0) / 1000, 2),
    }


def read_logs(log_dir: Path, prefix: str) -> dict[int, list[float]]:
    """Latency (µs) per script number from pgbench's per-transaction logs."""
    by_script: dict[int, list[float]] = defaultdict(list)
    for path in log_dir.glob(f"{prefix}.*"):
        for line in path.read_text().splitlines():
            # client_id transaction_no time script_no time_epoch time_us [schedule_lag] [retries]
            parts = line.split()
            if len(parts) < 6:
                continue
            if not parts[2].isdigit():  # "failed", "serialization", "deadlock"
                raise SystemExit(f"pgbench logged a failed transaction: {line}")
            by_script[int(parts[3])].append(float(parts[2]))
    return by_script


def run(url: str, clients: int, log_dir: Path) -> dict[str, Any]:
    prefix = f"load_c{clients}"
    args = [
        str(devdb.find_bindir() / "pgbench"),
        "-n",
        "-M",
        "prepared",
        "-c",
        str(clients),
        "-j",
        str(min(clients, 4)),
        "-T",
        str(SECONDS),
        "--log",
        f"--log-prefix={log_dir / prefix}",
    ]
    for name in SCRIPTS:
        args += ["-f", f"{SCRIPTS_DIR / name}.sql@1"]
    env = dict(os.environ, PGOPTIONS="-c role=service_role")
    r = subprocess.run([*args, url], capture_output=True, text=True, env=env, check=False)
    failed = FAILED.search(r.stdout)
    tps = TPS.search(r.stdout)
    if r.returncode != 0 or not tps or (failed and int(failed.group(1)) > 0):
        raise SystemExit(f"pgbench failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    by_script = read_logs(log_dir, prefix)
    figures: dict[str, Any] = {
        "clients": clients,
        "seconds": SECONDS,
        "tps": round(float(tps.group(1)), 1),
        "all": latency_figures([v for vs in by_script.values() for v in vs], SECONDS),
    }
    for number, name in enumerate(SCRIPTS):
        figures[name] = latency_figures(by_script.get(number, []), SECONDS)
    return figures


def main() -> None:
    with database() as url, tempfile.TemporaryDirectory(prefix="platformdb-load-") as tmp:
        seed(url)
        phases = {f"clients_{c}": run(url, c, Path(tmp)) for c in CLIENT_COUNTS}
        with psycopg.connect(url, autocommit=True) as conn:
            left = conn.execute(
                "select count(*) from public.message_queue where queue_name = 'load' and state <> 'completed'"
            ).fetchone()
    figures: dict[str, Any] = {"scripts": SCRIPTS, "seconds_per_phase": SECONDS, **phases}
    target = phases.get(f"clients_{TARGET_CLIENTS}")
    if target is not None:
        figures["target_p99_ms_at_16_clients"] = TARGET_P99_MS
        figures["targets"] = {"p99_le_50ms_at_16_clients": target["all"]["p99_ms"] <= TARGET_P99_MS}
    figures["queue_left_unacked"] = left[0] if left else None
    for phase, f in phases.items():
        a = f["all"]
        print(
            f"{phase:12} {f['tps']:>9,.0f} tx/s   p50 {a['p50_ms']:6.2f} ms   p95 {a['p95_ms']:6.2f} ms"
            f"   p99 {a['p99_ms']:6.2f} ms   max {a['max_ms']:7.2f} ms"
        )
        for name in SCRIPTS:
            s = f[name]
            print(f"  {name:24} {s['per_s']:>8,.0f}/s   p50 {s['p50_ms']:6.2f}   p99 {s['p99_ms']:6.2f} ms")
    if "targets" in figures:
        print(
            f"target p99 ≤ {TARGET_P99_MS:.0f} ms at {TARGET_CLIENTS} clients: "
            + ("met" if figures["targets"]["p99_le_50ms_at_16_clients"] else "NOT met")
        )
    write_result("load", figures)


if __name__ == "__main__":
    main()
