"""The queue end to end beside graphile-worker and pg-boss, one cluster, one run, interleaved.

Target (issue 17): ours ≥ 1.0× graphile-worker (its documented batching on) and ≥ 1.0×
pg-boss at 1 and 4 worker processes, every job run exactly once.

What each figure is: jobs/s from just before the first add until the last job is complete,
20,000 no-op jobs added in batches of 1,000 by one producer while the workers run.
- ours: `platformdb worker` processes (concurrency 4, claims of 100), fed by
  `enqueue_messages` (bench/queue_bench.py's platformdb run); complete = state completed.
  Twice per round: with durable acks (the default) and with `--async-acks`; the figures
  name the mode (`platformdb` is durable, `platformdb_async_acks` the other).
  Exactly once: every row completed at its first attempt.
- graphile-worker (`BENCH_GRAPHILE_VERSION`): `run()` processes of concurrency 4 with its
  documented batching (`localQueue.size` 100, `completeJobBatchDelay` 0), fed by
  `addJobs`; complete = its jobs table empty. Also once on its defaults (one fetch per job).
  Exactly once: the task counters of all processes add up to the jobs added.
- pg-boss (`BENCH_PG_BOSS_VERSION`): `work()` with `batchSize` 100, `localConcurrency` 4,
  `burstWhenBatchFull`, LISTEN/NOTIFY on (`useListenNotify`, queue `notify`), polling at its
  minimum 0.5 s; fed by `insert`; complete = state completed. Exactly once: the counters.

Each system has its own database in one cluster (fsync on, as bench/peers.py). The order of
the systems rotates every round. Every run starts from its system's table emptied of the
previous run's rows and vacuumed. Node.js and npm must be on PATH: the bench installs the
pinned versions with npm into BENCH_NODE_CACHE (outside the repository; default
~/.cache/platformdb-bench-node) and says clearly that it skipped them when Node.js is missing.

Sizes: BENCH_NODE_JOBS (20000), BENCH_NODE_ROUNDS (2). The "before" of a change:
BENCH_NODE_MIGRATE_TO=<version> with PYTHONPATH=<older checkout>/src (the worker processes
then run that code).
"""

from __future__ import annotations

import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from _common import ROOT, write_result
from platformdb import migrate

JOBS = int(os.environ.get("BENCH_NODE_JOBS", "20000"))
ROUNDS = int(os.environ.get("BENCH_NODE_ROUNDS", "2"))
# graphile-worker on its defaults fetches one job per query: slow, so only when asked
GRAPHILE_DEFAULTS = os.environ.get("BENCH_NODE_GRAPHILE_DEFAULTS", "0") == "1"
# ours as of an earlier migration (with PYTHONPATH=<an older checkout>/src for its workers)
MIGRATE_TO = os.environ.get("BENCH_NODE_MIGRATE_TO") or None
GRAPHILE_VERSION = os.environ.get("BENCH_GRAPHILE_VERSION", "0.18.0")
PG_BOSS_VERSION = os.environ.get("BENCH_PG_BOSS_VERSION", "12.38.1")
PG_VERSION = "8.23.1"
CACHE = Path(os.environ.get("BENCH_NODE_CACHE", str(Path.home() / ".cache" / "platformdb-bench-node")))
SCRIPTS = ROOT / "bench" / "node_peers"
BATCH = 1000
LOGS = Path(os.environ.get("BENCH_LOG_DIR", "/tmp"))  # noqa: S108 - worker logs of a throw-away bench run


def node_ready() -> str | None:
    """None when node and npm are usable, else why not."""
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            return f"{tool} not found on PATH"
    return None


def install() -> Path:
    """The pinned packages in the cache folder (npm install once per version set)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    wanted = {"graphile-worker": GRAPHILE_VERSION, "pg-boss": PG_BOSS_VERSION, "pg": PG_VERSION}
    stamp = CACHE / ".installed"
    key = " ".join(f"{k}@{v}" for k, v in sorted(wanted.items()))
    if not stamp.exists() or stamp.read_text() != key:
        subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--silent", *key.split()],
            cwd=CACHE,
            check=True,
        )
        stamp.write_text(key)
    for script in SCRIPTS.glob("*.mjs"):  # run from the cache so that imports resolve there
        shutil.copyfile(script, CACHE / script.name)
    return CACHE


def _count(url: str, query: str) -> int:
    with psycopg.connect(url, autocommit=True) as c:
        row = c.execute(query).fetchone()  # type: ignore[arg-type]  # constant queries of this file
    return int(row[0]) if row else 0


def _wait(what: str, check: Any, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.02)
    raise RuntimeError(f"gave up waiting for {what}")


def _node(script: str, env: dict[str, str], log: str) -> subprocess.Popen[str]:
    out = (LOGS / log).open("a")
    return subprocess.Popen(
        ["node", str(CACHE / script)],
        cwd=CACHE,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=out,
        text=True,
    )


def _wait_ready(p: subprocess.Popen[str]) -> None:
    assert p.stdout is not None
    for line in p.stdout:
        if line.strip() == "READY":
            return
    raise RuntimeError(f"worker did not start (see {LOGS}/bench-node-*.log)")


def _stop_and_count(procs: list[subprocess.Popen[str]]) -> int:
    total = 0
    for p in procs:
        p.send_signal(signal.SIGTERM)
    for p in procs:
        out, _ = p.communicate(timeout=60)
        for line in out.splitlines():
            if line.startswith("COUNT "):
                total += int(line.split()[1])
    return total


def _produce(script: str, url: str) -> float:
    r = subprocess.run(
        ["node", str(CACHE / script)],
        cwd=CACHE,
        env={**os.environ, "BENCH_URL": url, "BENCH_JOBS": str(JOBS), "BENCH_BATCH": str(BATCH)},
        capture_output=True,
        text=True,
        check=True,
    )
    return next(int(x.split()[1]) for x in r.stdout.splitlines() if x.startswith("T0 ")) / 1000.0


def graphile_run(url: str, workers: int, local_queue: int) -> tuple[float, int]:
    pending = "select count(*) from graphile_worker._private_jobs"
    with psycopg.connect(url, autocommit=True) as c:
        c.execute("delete from graphile_worker._private_jobs")
        c.execute("vacuum analyze graphile_worker._private_jobs")
    env = {"BENCH_URL": url, "BENCH_CONCURRENCY": "4", "BENCH_LOCAL_QUEUE": str(local_queue)}
    procs = [_node("graphile_worker.mjs", env, f"bench-node-graphile-{workers}-{i}.log") for i in range(workers)]
    try:
        for p in procs:
            _wait_ready(p)
        time.sleep(1.0)
        t0 = _produce("graphile_produce.mjs", url)
        _wait("graphile-worker to drain", lambda: _count(url, pending) == 0)
        elapsed = time.time() - t0
    finally:
        ran = _stop_and_count(procs)
    return JOBS / elapsed, ran


def pg_boss_run(url: str, workers: int) -> tuple[float, int]:
    done = "select count(*) from pgboss.job where name = 'bench' and state = 'completed'"
    with psycopg.connect(url, autocommit=True) as c:
        c.execute("delete from pgboss.job where name = 'bench'")
        c.execute("vacuum analyze pgboss.job")
    env = {"BENCH_URL": url, "BENCH_CONCURRENCY": "4", "BENCH_BATCH_SIZE": "100"}
    procs = [_node("pg_boss_worker.mjs", env, f"bench-node-pgboss-{workers}-{i}.log") for i in range(workers)]
    try:
        for p in procs:
            _wait_ready(p)
        time.sleep(1.0)
        t0 = _produce("pg_boss_produce.mjs", url)
        _wait("pg-boss to drain", lambda: _count(url, done) >= JOBS)
        elapsed = time.time() - t0
    finally:
        ran = _stop_and_count(procs)
    return JOBS / elapsed, ran


PROFILES: dict[int, list[dict[str, Any]]] = {}


# ours runs twice per round: with the durable default (each ack-and-claim commit waits for
# the WAL flush) and with `--async-acks`; every figure says which
ACK_MODES = {
    "platformdb": "durable acks (the default: each ack-and-claim commit waits for the WAL flush)",
    "platformdb_async_acks": "--async-acks (ack-and-claim commits do not wait for the WAL flush)",
}


def ours_run(url: str, workers: int, durable: bool = True) -> tuple[float, int]:
    os.environ["BENCH_MESSAGES"] = str(JOBS)
    import queue_bench

    queue_bench.MESSAGES = JOBS
    queue_bench.ACK_MODE = [] if durable else ["--async-acks"]
    queue_bench.VACUUM_BEFORE_RUN = True
    with psycopg.connect(url, autocommit=True) as c:
        c.execute("create extension if not exists pg_stat_statements")
        c.execute("select pg_stat_statements_reset()")
    rate = queue_bench.platformdb_run(url, workers)
    # the consuming side as the database saw it: the workers' statements, their number per
    # 1,000 messages, time and rows per call (one round trip each)
    with psycopg.connect(url, autocommit=True) as c:
        rows = c.execute(
            "select regexp_replace(query, '\\s+', ' ', 'g'), calls, total_exec_time, rows from pg_stat_statements"
            " where toplevel and query ~ '(claim_messages|ack_messages|extend_message_leases|nack_message)'"
            " and query !~ 'pg_stat' order by calls desc"
        ).fetchall()
    PROFILES.setdefault(workers, []).append(
        {
            "ack_mode": "durable" if durable else "async",
            "statements": [
                {
                    "query": q[:160],
                    "per_1000_messages": round(calls * 1000 / JOBS, 1),
                    "mean_ms": round(total / calls, 3),
                    "rows_per_call": round(n / calls, 1),
                }
                for q, calls, total, n in rows
            ]
        }
    )
    once = _count(
        url,
        "select count(*) from public.message_queue"
        " where queue_name = 'bench' and state = 'completed' and attempt = 1",
    )
    return rate, once


def main() -> None:
    figures: dict[str, Any] = {
        "jobs": JOBS,
        "rounds": ROUNDS,
        "batch": BATCH,
        "fsync": "on",
        "migrated_to": MIGRATE_TO or "all",
        "ack_modes": ACK_MODES,
    }
    why = node_ready()
    if why:
        print(f"SKIPPED graphile-worker and pg-boss: {why} (Node.js and npm are needed)", flush=True)
        figures["skipped"] = why
        write_result("node_peers", figures)
        return
    install()
    figures["versions"] = {"graphile-worker": GRAPHILE_VERSION, "pg-boss": PG_BOSS_VERSION, "node": node_version()}
    from peers import durable_cluster

    cluster = durable_cluster()
    try:
        cluster.create_database("bench")
        url = cluster.url("bench")
        migrate.up(url, to=MIGRATE_TO)
        urls = {"bench": url}
        for db in ("graphile_bench", "pgboss_bench"):
            with psycopg.connect(cluster.url("postgres"), autocommit=True) as c:
                c.execute(sql.SQL("create database {}").format(sql.Identifier(db)))
            urls[db] = cluster.url(db)
        env = {"BENCH_MIGRATE": "1"}
        subprocess.run(
            ["node", str(CACHE / "graphile_produce.mjs")],
            cwd=CACHE,
            env={**os.environ, **env, "BENCH_URL": urls["graphile_bench"]},
            check=True,
        )
        subprocess.run(
            ["node", str(CACHE / "pg_boss_produce.mjs")],
            cwd=CACHE,
            env={**os.environ, **env, "BENCH_URL": urls["pgboss_bench"]},
            check=True,
        )
        figures.update(rounds_of(urls))
    finally:
        cluster.destroy()
    path = write_result("node_peers", figures)
    print(f"wrote {path}")


def node_version() -> str:
    return subprocess.run(["node", "--version"], capture_output=True, text=True, check=True).stdout.strip()


def rounds_of(urls: dict[str, str]) -> dict[str, Any]:
    systems = {
        "platformdb": lambda w: ours_run(urls["bench"], w, durable=True),
        "platformdb_async_acks": lambda w: ours_run(urls["bench"], w, durable=False),
        "graphile_batched": lambda w: graphile_run(urls["graphile_bench"], w, 100),
        "pg_boss": lambda w: pg_boss_run(urls["pgboss_bench"], w),
    }
    if GRAPHILE_DEFAULTS:
        systems["graphile_defaults"] = lambda w: graphile_run(urls["graphile_bench"], w, -1)
    names = list(systems)
    rates: dict[str, dict[int, list[float]]] = {n: {1: [], 4: []} for n in names}
    not_once: list[str] = []
    for rnd in range(ROUNDS):
        order = names[rnd % len(names) :] + names[: rnd % len(names)]
        for workers in (1, 4):
            for name in order:
                rate, ran = systems[name](workers)
                rates[name][workers].append(round(rate))
                if ran != JOBS:
                    not_once.append(f"{name} {workers}w round {rnd + 1}: {ran} runs for {JOBS} jobs")
                print(
                    f"round {rnd + 1} {workers} worker(s) {name:18} {rate:9,.0f} jobs/s"
                    f"  ({ran} runs for {JOBS} jobs)",
                    flush=True,
                )
    out: dict[str, Any] = {
        "jobs_per_s": {n: {f"{w}w": v for w, v in r.items()} for n, r in rates.items()},
        "median_jobs_per_s": {
            n: {f"{w}w": round(statistics.median(v)) for w, v in r.items()} for n, r in rates.items()
        },
    }
    ratios: dict[str, Any] = {}
    for ours_name, suffix in (("platformdb", ""), ("platformdb_async_acks", "_async_acks")):
        for peer in [n for n in names if n not in ACK_MODES]:
            for w in (1, 4):
                rs = [round(o / t, 2) for o, t in zip(rates[ours_name][w], rates[peer][w], strict=True)]
                ratios[f"vs_{peer}_{w}w{suffix}"] = {
                    "per_round": rs,
                    "min": min(rs),
                    "median": round(statistics.median(rs), 2),
                }
                print(
                    f"ours ({'durable' if not suffix else 'async'} acks) / {peer} at {w} worker(s):"
                    f" {', '.join(f'{r:.2f}x' for r in rs)}",
                    flush=True,
                )
        for w in (1, 4):
            ours = rates[ours_name][w]
            out[f"{ours_name}_spread_{w}w"] = {"min": min(ours), "max": max(ours)}
    out["ratios"] = ratios
    out["platformdb_worker_statements"] = {f"{w}w": PROFILES.get(w, [])[-2:] for w in (1, 4)}
    for w in (1, 4):
        for prof in PROFILES.get(w, [])[-2:]:
            for st in prof.get("statements", []):
                print(
                    f"ours {w}w ({prof['ack_mode']} acks): {st['per_1000_messages']:7.1f} calls per 1,000"
                    f" messages, {st['mean_ms']:.3f} ms, {st['rows_per_call']} rows per call: {st['query'][:90]}",
                    flush=True,
                )
    out["exactly_once_violations"] = not_once
    if not_once:
        print("NOT EXACTLY ONCE: " + "; ".join(not_once), flush=True)
    return out


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "bench"))
    main()
