"""Feature flags, side by side in one run (issue 6):

- `local_evals_per_s`: FlagClient.is_enabled for a 50% percentage rollout, user ids as
  strings, counting on, one Python thread (one core). Target ≥ 500,000/s. Also the same for
  a condition flag (three rules) and for an unknown key.
- `sql_round_trips_per_s`: `select is_feature_enabled(...)` from one psycopg connection, one
  call per round trip (what a service calling the database pays).
- pgbench, 4 connections, prepared: `is_feature_enabled` as shipped (counts aggregated in
  the backend, flushed every 1000 calls / 10 s) against two peers built in this run from
  its own definition: the same function without any counting (`uncounted`, the floor) and
  with one upsert into feature_flag_evaluations per call (`write_per_call`, the design the
  batching replaces). `counting_cost_ratio` = shipped / uncounted.
- `server_us_per_call_*`: server-side cost per call without network (20,000 calls in one
  statement), shipped and uncounted.
- `propagation_ms_p50/p95/max`: from just before an UPDATE of a flag is sent to the moment a
  running FlagClient has applied it (LISTEN/NOTIFY). Target p95 ≤ 200 ms.

Phases are interleaved and repeated (BENCH_ROUNDS) on a noisy shared machine; the
ephemeral cluster runs with fsync off, which flatters `write_per_call` (a durable commit per
evaluation costs more in production).
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path

import psycopg

from _common import database, rate, write_result
from platformdb import devdb
from platformdb.sdk import flags

SECONDS = float(os.environ.get("BENCH_SECONDS", "3"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "2"))
CLIENTS = 4
LOCAL_N = int(os.environ.get("BENCH_LOCAL_N", "300000"))
ROUND_TRIPS = int(os.environ.get("BENCH_ROUND_TRIPS", "3000"))
UPDATES = int(os.environ.get("BENCH_UPDATES", "60"))
TPS = re.compile(r"tps = ([0-9.]+) \(without initial connection time\)")

SHIPPED = "public.is_feature_enabled(text,uuid,text,jsonb)"
COUNTING_START = "    perform public.feature_flag_count("
COUNTING_END = "    return v_result;\nend"
WRITE_PER_CALL = """    insert into public.feature_flag_evaluations as e
        (flag_key, environment, reason, source, bucket_start, evaluations)
    values (case when p_flag_key ~ '^[^\\x01-\\x20\\x7f|()"''\\\\/]{1,100}$' then p_flag_key else '(invalid)' end,
            p_environment, v_reason, 'sql',
            date_trunc('hour', now() at time zone 'UTC') at time zone 'UTC', 1)
    on conflict (flag_key, environment, reason, source, bucket_start)
    do update set evaluations = e.evaluations + 1, last_flushed_at = now();
"""

SCRIPT = """
\\set u random(1, 10000000)
select {fn}('bench-pct', md5(:u::text)::uuid, 'production');
"""


def _variant(conn: psycopg.Connection, name: str, counting: str) -> None:
    """A copy of is_feature_enabled under another name with its counting block replaced."""
    row = conn.execute("select pg_get_functiondef(%s::regprocedure)", (SHIPPED,)).fetchone()
    assert row is not None
    text: str = row[0]
    start, end = text.find(COUNTING_START), text.find(COUNTING_END)
    if start < 0 or end < start or text.count("FUNCTION public.is_feature_enabled(") != 1:
        raise SystemExit("is_feature_enabled changed shape; update bench/flags.py")
    text = text[:start] + counting + text[end:]
    conn.execute(text.replace("FUNCTION public.is_feature_enabled(", f"FUNCTION public.{name}("))


def pgbench(url: str, script: Path) -> float:
    r = subprocess.run(
        [
            str(devdb.find_bindir() / "pgbench"),
            "-n",
            "-M",
            "prepared",
            "-c",
            str(CLIENTS),
            "-j",
            "2",
            "-T",
            str(int(SECONDS)),
            "-f",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    m = TPS.search(r.stdout)
    if r.returncode != 0 or not m:
        raise SystemExit(f"pgbench failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    return float(m.group(1))


def local_rate(client: flags.FlagClient, key: str, users: list[str], ctx: dict[str, object] | None) -> float:
    n = 0
    t0 = time.perf_counter()
    while n < LOCAL_N:
        for u in users:
            client.is_enabled(key, u, None, ctx)
        n += len(users)
    return rate(n, time.perf_counter() - t0)


def propagation(url: str, client: flags.FlagClient, applied: threading.Event) -> list[float]:
    out = []
    with psycopg.connect(url, autocommit=True) as conn:
        for i in range(UPDATES):
            applied.clear()
            t0 = time.perf_counter()
            conn.execute("update public.feature_flags set rollout_percentage = %s where key = 'bench-live'", (i % 100,))
            if not applied.wait(10):
                raise SystemExit("a flag change never reached the client")
            out.append((time.perf_counter() - t0) * 1000)
            time.sleep(0.01)
    return out


def main() -> None:
    with database() as url, tempfile.TemporaryDirectory() as tmp:
        with psycopg.connect(url, autocommit=True) as conn:
            for key, strategy, pct, conditions in (
                ("bench-pct", "percentage", 50, None),
                ("bench-live", "percentage", 0, None),
                (
                    "bench-cond",
                    "condition",
                    None,
                    '[{"attribute": "country", "operator": "in", "values": ["RW", "UG"]},'
                    ' {"attribute": "app_version", "operator": "semver_gte", "value": "2.1.0"},'
                    ' {"attribute": "phone", "operator": "starts_with", "values": ["+25078"]}]',
                ),
            ):
                conn.execute(
                    "select public.upsert_feature_flag(p_key => %s, p_enabled => true,"
                    " p_rollout_strategy => %s, p_rollout_percentage => %s, p_conditions => %s::jsonb)",
                    (key, strategy, pct, conditions),
                )
            _variant(conn, "bench_is_feature_enabled_uncounted", "")
            _variant(conn, "bench_is_feature_enabled_write_per_call", WRITE_PER_CALL)

        # local evaluation
        users = [str(uuid.uuid4()) for _ in range(10_000)]
        client = flags.FlagClient(url)
        client.refresh()
        ctx: dict[str, object] = {"country": "RW", "app_version": "2.3.0", "phone": "+250788123456"}
        local_pct = max(local_rate(client, "bench-pct", users, None) for _ in range(ROUNDS))
        local_cond = max(local_rate(client, "bench-cond", users, ctx) for _ in range(ROUNDS))
        local_unknown = max(local_rate(client, "bench-missing", users, None) for _ in range(ROUNDS))
        client.flush()

        # SQL, one call per round trip
        with psycopg.connect(url, autocommit=True) as conn:
            t0 = time.perf_counter()
            for i in range(ROUND_TRIPS):
                conn.execute("select public.is_feature_enabled(%s, %s)", ("bench-pct", users[i % len(users)]))
            round_trips = rate(ROUND_TRIPS, time.perf_counter() - t0)
            server = {}
            for name, fn in (
                ("shipped", "public.is_feature_enabled"),
                ("uncounted", "public.bench_is_feature_enabled_uncounted"),
            ):
                t0 = time.perf_counter()
                conn.execute(
                    f"select count(*) filter (where {fn}('bench-pct', gen_random_uuid()))"  # noqa: S608
                    " from generate_series(1, 20000)"
                )
                server[name] = (time.perf_counter() - t0) / 20000 * 1e6

        # SQL under 4 connections: shipped vs its two peers, interleaved
        fns = {
            "shipped": "public.is_feature_enabled",
            "uncounted": "public.bench_is_feature_enabled_uncounted",
            "write_per_call": "public.bench_is_feature_enabled_write_per_call",
        }
        scripts = {}
        for name, fn in fns.items():
            scripts[name] = Path(tmp) / f"{name}.sql"
            scripts[name].write_text(SCRIPT.format(fn=fn))
        totals = dict.fromkeys(fns, 0.0)
        for _ in range(ROUNDS):
            for name in fns:
                totals[name] += pgbench(url, scripts[name])
        tps = {k: v / ROUNDS for k, v in totals.items()}

        # propagation of a change to a running client
        applied = threading.Event()
        live = flags.FlagClient(
            url,
            refresh_interval=3600,
            record=False,
            on_change=lambda keys: applied.set() if "bench-live" in keys else None,
        )
        live.start()
        try:
            lat = propagation(url, live, applied)
        finally:
            live.stop()
        with psycopg.connect(url, autocommit=True) as conn:
            counted = conn.execute(
                "select source, sum(evaluations) from public.feature_flag_evaluations group by source order by source"
            ).fetchall()

    lat.sort()
    figures = {
        "local_evals_per_s": round(local_pct),
        "local_condition_evals_per_s": round(local_cond),
        "local_unknown_flag_evals_per_s": round(local_unknown),
        "target_local_evals_per_s": 500_000,
        "sql_round_trips_per_s": round(round_trips),
        "ratio_local_vs_sql_round_trip": round(local_pct / round_trips),
        "pgbench_connections": CLIENTS,
        "pgbench_seconds_per_phase": SECONDS,
        "rounds": ROUNDS,
        "sql_shipped_per_s": round(tps["shipped"]),
        "sql_uncounted_per_s": round(tps["uncounted"]),
        "sql_write_per_call_per_s": round(tps["write_per_call"]),
        "counting_cost_ratio": round(tps["shipped"] / tps["uncounted"], 2),
        "ratio_shipped_vs_write_per_call": round(tps["shipped"] / tps["write_per_call"], 2),
        "server_us_per_call_shipped": round(server["shipped"], 1),
        "server_us_per_call_uncounted": round(server["uncounted"], 1),
        "propagation_updates": len(lat),
        "propagation_ms_p50": round(statistics.median(lat), 1),
        "propagation_ms_p95": round(lat[int(0.95 * (len(lat) - 1))], 1),
        "propagation_ms_max": round(lat[-1], 1),
        "target_propagation_ms_p95": 200,
        "evaluations_counted": {src: int(n) for src, n in counted},
    }
    for k, v in figures.items():
        print(f"{k:36} {v:>12,}" if isinstance(v, int) else f"{k:36} {v!s:>12}")
    write_result("flags", figures)


if __name__ == "__main__":
    main()
