"""Queue and event store side by side with pgmq and message-db, in one cluster, one run.

Targets (issue 17), ours ÷ theirs at 1 and 4 clients, pgbench `-M prepared`:
- `enqueue_message` ≥ 1.0× `pgmq.send`;
- claim 10 + `ack_messages` in one statement (one transaction) ≥ 1.0× pgmq's
  `pgmq.delete(q, array(select msg_id from pgmq.read(q, 30, 10)))`;
- `append_event` ≥ 1.0× message-db's `write_message`, without and with an expected version.
And p50/p99 latency of each call at 1, 4 and 16 clients next to the peer's.

The peers are installed from their own SQL, found in the folder BENCH_PEERS_DIR:
`pgmq-extension/sql/pgmq.sql` (pgmq's extension SQL, installed as plain SQL in schema pgmq)
and message-db's `database/` folder (its install order: role, schema, pgcrypto, table, type,
functions, indexes, privileges). A peer whose files are absent is skipped, and the bench says
so. Nothing of theirs lives in this repository: fetch their public repositories beside it.

How it measures: a cluster of its own with fsync and synchronous_commit ON (unlike the test
clusters), ours migrated into database `bench`, both peers installed into the same database.
Each pair runs, per round and client count (1, then 4), BENCH_PEERS_SLICES alternating
slices per side (ours, theirs, theirs, ours, …; the first side swaps every round) of
BENCH_PEERS_SECONDS / BENCH_PEERS_SLICES seconds each: both sides see the same stretch of a
shared machine's disk; a side's figure is the mean of its slices. BENCH_PEERS_ROUNDS rounds;
then one run per side at 16 clients for latency. Latency percentiles come from pgbench's
per-transaction logs (1 and 4 clients: pooled over the rounds). Queues read by the claim
pairs are emptied, vacuumed and refilled before every run; a run that drained its queue is
marked.

    BENCH_PEERS_DIR=/work/peers .venv/bin/python bench/peers.py
    BENCH_PEERS_MIGRATE_TO=20260401170000 …   # ours as of that migration (the "before")
    … bench/peers.py --profile   # where ours spends its time: statements and wait events

Sizes: BENCH_PEERS_SECONDS, BENCH_PEERS_ROUNDS, BENCH_PEERS_FILL (messages in the first claim
run's queue; later fills are twice the most a run consumed, at least 20,000, at most that);
BENCH_PEERS_ONLY=enqueue,claim10_ack,append,append_expected narrows the pairs.
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from _common import write_result
from platformdb import devdb, migrate

PEERS_DIR = os.environ.get("BENCH_PEERS_DIR", "")
SECONDS = int(os.environ.get("BENCH_PEERS_SECONDS", "10"))
ROUNDS = int(os.environ.get("BENCH_PEERS_ROUNDS", "2"))
SLICES = int(os.environ.get("BENCH_PEERS_SLICES", "5"))  # alternating runs per side and round
SLICE_SECONDS = max(1, SECONDS // max(1, SLICES))
FILL = int(os.environ.get("BENCH_PEERS_FILL", "100000"))
MIGRATE_TO = os.environ.get("BENCH_PEERS_MIGRATE_TO") or None
PROFILE = "--profile" in sys.argv
ONLY = [x for x in os.environ.get("BENCH_PEERS_ONLY", "").split(",") if x]  # pair names, e.g. enqueue,append
THROUGHPUT_CLIENTS = (1, 4)
LATENCY_CLIENTS = (1, 4, 16)

TPS = re.compile(r"tps = ([0-9.]+) \(without initial connection time\)")
FAILED = re.compile(r"number of failed transactions: (\d+)")

OURS_ENV = "-c role=service_role"
PGMQ_ENV = ""
MDB_ENV = "-c role=message_store -c search_path=message_store,public"

MESSAGE_DB_FILES = [
    "roles/message-store.sql",
    "schema/message-store.sql",
    "extensions/pgcrypto.sql",
    "tables/messages.sql",
    "types/message.sql",
    "functions/message-store-version.sql",
    "functions/hash-64.sql",
    "functions/acquire-lock.sql",
    "functions/category.sql",
    "functions/is-category.sql",
    "functions/id.sql",
    "functions/cardinal-id.sql",
    "functions/stream-version.sql",
    "functions/write-message.sql",
    "functions/get-stream-messages.sql",
    "functions/get-category-messages.sql",
    "functions/get-last-stream-message.sql",
    "indexes/messages-id.sql",
    "indexes/messages-stream.sql",
    "indexes/messages-category.sql",
    "privileges/functions.sql",
    "privileges/schema.sql",
    "privileges/sequence.sql",
    "privileges/table.sql",
]


@dataclass
class Side:
    who: str  # "platformdb", "pgmq", "message-db"
    script: str
    options: str  # PGOPTIONS
    defines: dict[str, str] = field(default_factory=dict)


@dataclass
class Pair:
    name: str
    peer: str
    ours: Side
    theirs: Side
    prepare: Callable[..., None] | None = None  # (url, who, run number[, size])


# ---- the peers' installation -------------------------------------------------------------


def pgmq_sql() -> Path | None:
    if not PEERS_DIR:
        return None
    p = Path(PEERS_DIR) / "pgmq-extension" / "sql" / "pgmq.sql"
    return p if p.is_file() else None


def message_db_dir() -> Path | None:
    if not PEERS_DIR:
        return None
    d = Path(PEERS_DIR) / "database"
    return d if all((d / f).is_file() for f in MESSAGE_DB_FILES) else None


def peer_version(kind: str) -> str:
    if kind == "pgmq":
        sql = pgmq_sql()
        control = sql.parent.parent / "pgmq.control" if sql else None
        if control and control.is_file():
            m = re.search(r"default_version\s*=\s*'([^']+)'", control.read_text())
            if m:
                return m.group(1)
        return "unknown"
    d = message_db_dir()
    v = d / "VERSION.txt" if d else None
    return v.read_text().strip() if v and v.is_file() else "unknown"


def install_pgmq(url: str, path: Path) -> None:
    with psycopg.connect(url, autocommit=True) as c:
        c.execute(path.read_text())  # type: ignore[arg-type]  # their file, read as is
        c.execute("select pgmq.create('bench')")
        c.execute("select pgmq.create('claim')")


def install_message_db(url: str, d: Path) -> None:
    with psycopg.connect(url, autocommit=True) as c:
        c.execute("set search_path = message_store, public")
        for f in MESSAGE_DB_FILES:
            c.execute((d / f).read_text())  # type: ignore[arg-type]
        c.execute("alter role message_store set search_path = message_store, public")


# ---- preparing runs ----------------------------------------------------------------------


# the most messages one claim run consumed so far: later fills are twice that (at least
# 20,000, at most FILL), so that a slow disk does not spend minutes filling queues
_CONSUMED = {"max": 0, "filled": 0}


def fill_size() -> int:
    if _CONSUMED["max"] == 0:
        return FILL
    return min(FILL, max(20000, 2 * _CONSUMED["max"]))


def refill(url: str, who: str, _run: int, size: int | None = None) -> None:
    """The claim queue emptied, vacuumed and filled with `size` messages (default: fill_size)."""
    fill = _CONSUMED["filled"] = size or fill_size()
    with psycopg.connect(url, autocommit=True) as c:
        if who == "platformdb":
            c.execute("delete from public.message_queue where queue_name = 'claim'")
            c.execute("vacuum analyze public.message_queue")
            for k in range(0, fill, 10000):
                n = min(10000, fill - k)
                c.execute(
                    "select public.enqueue_messages('claim', (select jsonb_agg(jsonb_build_object("
                    "'message_type', 'bench.noop', 'payload', jsonb_build_object('n', g))) "
                    "from generate_series(1, %s) g))",
                    (n,),
                )
            c.execute("vacuum analyze public.message_queue")
        else:
            c.execute("select pgmq.purge_queue('claim')")
            c.execute("vacuum analyze pgmq.q_claim")
            for k in range(0, fill, 10000):
                n = min(10000, fill - k)
                c.execute(
                    "select count(*) from pgmq.send_batch('claim', "
                    "(select array_agg(jsonb_build_object('n', g)) from generate_series(1, %s) g))",
                    (n,),
                )
            c.execute("vacuum analyze pgmq.q_claim")


def left_in_claim_queue(url: str, who: str) -> int:
    with psycopg.connect(url, autocommit=True) as c:
        if who == "platformdb":
            row = c.execute(
                "select count(*) from public.message_queue where queue_name = 'claim' and state = 'available'"
            ).fetchone()
        else:
            row = c.execute("select count(*) from pgmq.q_claim").fetchone()
    left = int(row[0]) if row else 0
    _CONSUMED["max"] = max(_CONSUMED["max"], _CONSUMED["filled"] - left)
    return left


def pairs(have_pgmq: bool, have_mdb: bool) -> list[Pair]:
    out: list[Pair] = []
    if have_pgmq:
        out.append(
            Pair(
                "enqueue",
                "pgmq",
                Side(
                    "platformdb",
                    "select public.enqueue_message(p_queue_name => 'bench', p_message_type => 'bench.noop',"
                    " p_payload => '{\"ride\": 42}');\n",
                    OURS_ENV,
                ),
                Side("pgmq", "select pgmq.send('bench', '{\"ride\": 42}');\n", PGMQ_ENV),
            )
        )
        out.append(
            Pair(
                "claim10_ack",
                "pgmq",
                Side(
                    "platformdb",
                    "select public.ack_messages(p_message_ids => array(select m.id from public.claim_messages("
                    "p_queue_name => 'claim', p_limit => 10, p_lease_seconds => 30,"
                    " p_worker_id => 'pgbench-' || :client_id) m), p_worker_id => 'pgbench-' || :client_id);\n",
                    OURS_ENV,
                ),
                Side(
                    "pgmq",
                    "select count(*) from pgmq.delete('claim',"
                    " array(select msg_id from pgmq.read('claim', 30, 10)));\n",
                    PGMQ_ENV,
                ),
                refill,
            )
        )
    if have_mdb:
        out.append(
            Pair(
                "append",
                "message-db",
                Side(
                    "platformdb",
                    "\\set s random(1, 10000)\n"
                    "select public.append_event(p_aggregate_id => 'trip-' || :s, p_aggregate_type => 'trip',"
                    " p_event_type => 'trip.location_updated', p_payload => '{\"lat\": -1.95, \"lng\": 30.06}');\n",
                    OURS_ENV,
                ),
                Side(
                    "message-db",
                    "\\set s random(1, 10000)\n"
                    "select message_store.write_message(gen_random_uuid()::text, 'trip-' || :s,"
                    " 'trip.location_updated', '{\"lat\": -1.95, \"lng\": 30.06}');\n",
                    MDB_ENV,
                ),
            )
        )
        # each client appends to a stream of its own (new every run), passing the version it
        # expects; pgbench variables persist per client, so :v counts that client's events
        out.append(
            Pair(
                "append_expected",
                "message-db",
                Side(
                    "platformdb",
                    "select public.append_event(p_aggregate_id => :tag || 'x' || :client_id,"
                    " p_aggregate_type => 'acct', p_event_type => 'acct.changed', p_payload => '{\"n\": 1}',"
                    " p_expected_version => :v);\n\\set v :v + 1\n",
                    OURS_ENV,
                    {"v": "0"},
                ),
                Side(
                    "message-db",
                    "select message_store.write_message(gen_random_uuid()::text,"
                    " 'acct-' || :tag || 'x' || :client_id, 'acct.changed', '{\"n\": 1}', null, :v);\n"
                    "\\set v :v + 1\n",
                    MDB_ENV,
                    {"v": "-1"},
                ),
            )
        )
    return out


# ---- running pgbench ---------------------------------------------------------------------


def pgbench(url: str, side: Side, clients: int, seconds: int, work: Path, tag: str) -> dict[str, Any]:
    script = work / f"{tag}.sql"
    script.write_text(side.script)
    prefix = work / f"log-{tag}"
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
        str(seconds),
        "--log",
        f"--log-prefix={prefix}",
        "-f",
        str(script),
        "-D",
        f"tag={tag.replace('-', '')}",
    ]
    for k, v in side.defines.items():
        args += ["-D", f"{k}={v}"]
    env = dict(os.environ, PGOPTIONS=side.options)
    r = subprocess.run([*args, url], capture_output=True, text=True, env=env, check=False)
    failed = FAILED.search(r.stdout)
    tps = TPS.search(r.stdout)
    if r.returncode != 0 or not tps or (failed and int(failed.group(1)) > 0):
        raise SystemExit(f"pgbench {tag} failed ({r.returncode}):\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    lat: list[float] = []
    for path in work.glob(f"log-{tag}.*"):
        for line in path.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 6 and parts[2].isdigit():
                lat.append(float(parts[2]))
        path.unlink()
    return {"tps": float(tps.group(1)), "latency_us": lat}


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def lat_ms(values: list[float]) -> dict[str, float]:
    return {"p50_ms": round(pct(values, 0.50) / 1000, 3), "p99_ms": round(pct(values, 0.99) / 1000, 3)}


# ---- main --------------------------------------------------------------------------------


def durable_cluster() -> devdb.Cluster:
    """A throw-away cluster, but durable like production: fsync and synchronous_commit on."""
    cluster = devdb.ephemeral_cluster(prefix="platformdb-bench-peers-")
    cluster.ephemeral = False
    cluster.settings.update({"fsync": "on", "synchronous_commit": "on", "max_wal_size": "4GB"})
    cluster.write_config()
    cluster.restart()
    return cluster


def profile(url: str, todo: list[Pair], work: Path) -> dict[str, Any]:
    """Where the time goes, ours and the peer's: per-statement time and WAL (pg_stat_statements,
    nested statements of the functions included), WAL per transaction (pg_stat_wal) and wait
    events sampled from pg_stat_activity every 10 ms, one 4-client run per side."""
    out: dict[str, Any] = {}
    with psycopg.connect(url, autocommit=True) as c:
        c.execute("create extension if not exists pg_stat_statements")
    for i, pair in enumerate(todo):
        for side in (pair.ours, pair.theirs):
            if pair.prepare:
                # a 2 s probe tells how fast this side drains its queue; the profiled run then
                # gets a fill that lasts it (half as much again), so that it times real claims
                pair.prepare(url, side.who, 1000 + i)
                pgbench(url, side, 4, 2, work, f"probe-{pair.name}-{side.who}")
                rate = (_CONSUMED["filled"] - left_in_claim_queue(url, side.who)) / 2
                pair.prepare(url, side.who, 1000 + i, max(20000, min(5_000_000, int(rate * SECONDS * 1.5))))
            samples: dict[str, int] = {}
            stop = threading.Event()

            def sample(samples: dict[str, int] = samples, stop: threading.Event = stop) -> None:
                with psycopg.connect(url, autocommit=True) as s:
                    while not stop.is_set():
                        for (ev,) in s.execute(
                            "select coalesce(wait_event_type || ':' || wait_event, 'CPU') from pg_stat_activity"
                            " where application_name = 'pgbench' and state = 'active'"
                        ).fetchall():
                            samples[ev] = samples.get(ev, 0) + 1
                        time.sleep(0.01)

            with psycopg.connect(url, autocommit=True) as c:
                c.execute("select pg_stat_statements_reset()")
                c.execute("select pg_stat_reset_shared('wal')")
            t = threading.Thread(target=sample, daemon=True)
            t.start()
            r = pgbench(url, side, 4, SECONDS, work, f"profile-{pair.name}-{side.who}")
            stop.set()
            t.join()
            # a claim run that emptied its queue spent the rest of it on empty claims: its tps
            # and per-call figures are then no throughput figure (the probe's rate was too low)
            drained = bool(pair.prepare) and left_in_claim_queue(url, side.who) == 0
            with psycopg.connect(url, autocommit=True) as c:
                rows = c.execute(
                    "select calls, round(total_exec_time::numeric, 1), round(mean_exec_time::numeric, 4),"
                    " round(wal_bytes / greatest(calls, 1)), round(wal_fpi::numeric / greatest(calls, 1), 3),"
                    " regexp_replace(query, '\\s+', ' ', 'g') from pg_stat_statements"
                    " where query not ilike '%pg_stat%' order by total_exec_time desc limit 8"
                ).fetchall()
                wal = c.execute("select wal_records, wal_fpi, wal_bytes from pg_stat_wal").fetchone()
            total = sum(samples.values()) or 1
            txs = max(1, len(r["latency_us"]))
            key = f"{pair.name}:{side.who}"
            out[key] = {
                "tps_4c": r["tps"],
                "drained": drained,
                "wal_bytes_per_tx": round(int(wal[2]) / txs) if wal else None,
                "wal_records_per_tx": round(int(wal[0]) / txs, 1) if wal else None,
                "wal_fpi_per_tx": round(int(wal[1]) / txs, 2) if wal else None,
                "statements": [
                    {
                        "calls": int(a),
                        "total_ms": float(b),
                        "mean_ms": float(m),
                        "wal_bytes_per_call": float(w),
                        "fpi_per_call": float(f),
                        "query": q[:300],
                    }
                    for a, b, m, w, f, q in rows
                ],
                "wait_events": {k: round(v / total, 3) for k, v in sorted(samples.items(), key=lambda kv: -kv[1])[:8]},
            }
            o = out[key]
            print(
                f"profile {key}: {r['tps']:.0f} tps at 4 clients; WAL per transaction {o['wal_bytes_per_tx']} bytes,"
                f" {o['wal_records_per_tx']} records, {o['wal_fpi_per_tx']} full-page images"
                + (
                    "  (QUEUE DRAINED during the run: empty claims inflate these figures; run it again)"
                    if drained
                    else ""
                ),
                flush=True,
            )
            for a, b, m, w, _f, q in rows:
                print(f"    {a:>8} calls {b:>10} ms total {m:>8} ms mean {w:>7} WAL B/call  {q[:120]}", flush=True)
            print(
                "    wait events (share of active samples): "
                + ", ".join(f"{k} {v:.0%}" for k, v in o["wait_events"].items()),
                flush=True,
            )
    return out


def main() -> None:
    pgmq_path, mdb_path = pgmq_sql(), message_db_dir()
    if not PEERS_DIR:
        print(
            "SKIPPED pgmq and message-db: BENCH_PEERS_DIR is not set (a folder holding "
            "pgmq-extension/sql/pgmq.sql and message-db's database/ folder)",
            flush=True,
        )
    else:
        if pgmq_path is None:
            print(f"SKIPPED pgmq: {PEERS_DIR}/pgmq-extension/sql/pgmq.sql not found", flush=True)
        if mdb_path is None:
            print(f"SKIPPED message-db: {PEERS_DIR}/database/ (its install files) not found", flush=True)
    figures: dict[str, Any] = {
        "seconds": SECONDS,
        "rounds": ROUNDS,
        "fill": FILL,
        "migrated_to": MIGRATE_TO or "all",
        "fsync": "on",
        "versions": {},
        "skipped": [],
    }
    if pgmq_path is None:
        figures["skipped"].append("pgmq")
    else:
        figures["versions"]["pgmq"] = peer_version("pgmq")
    if mdb_path is None:
        figures["skipped"].append("message-db")
    else:
        figures["versions"]["message-db"] = peer_version("message-db")
    todo = [p for p in pairs(pgmq_path is not None, mdb_path is not None) if not ONLY or p.name in ONLY]
    if not todo:
        write_result("peers", figures)
        return

    cluster = durable_cluster()
    try:
        cluster.create_database("bench")
        url = cluster.url("bench")
        migrate.up(url, to=MIGRATE_TO)
        if pgmq_path is not None:
            install_pgmq(url, pgmq_path)
        if mdb_path is not None:
            install_message_db(url, mdb_path)
        if PROFILE:
            with tempfile.TemporaryDirectory(prefix="platformdb-peers-") as tmp:
                figures["profile"] = profile(url, todo, Path(tmp))
        else:
            figures.update(run_pairs(url, todo))
    finally:
        cluster.destroy()
    path = write_result("peers_profile" if PROFILE else "peers", figures)
    print(f"wrote {path}")


def run_pairs(url: str, todo: list[Pair]) -> dict[str, Any]:
    out: dict[str, Any] = {"throughput": {}, "latency": {}}
    lat: dict[tuple[str, str, int], list[float]] = {}
    n = 0
    with tempfile.TemporaryDirectory(prefix="platformdb-peers-") as tmp:
        work = Path(tmp)
        for rnd in range(ROUNDS):
            for clients in THROUGHPUT_CLIENTS:
                for pair in todo:
                    sides = [pair.ours, pair.theirs] if rnd % 2 == 0 else [pair.theirs, pair.ours]
                    tps_sum: dict[str, float] = {}
                    drained = []
                    # SLICES short runs per side, alternating (ABAB…, then BABA… the next round),
                    # so that both sides see the same stretch of a shared machine's disk
                    for k in range(SLICES):
                        for side in sides if k % 2 == 0 else sides[::-1]:
                            n += 1
                            if pair.prepare:
                                pair.prepare(url, side.who, n)
                            r = pgbench(url, side, clients, SLICE_SECONDS, work, f"{pair.name}-{side.who}-{n}")
                            if pair.prepare and left_in_claim_queue(url, side.who) == 0:
                                drained.append(side.who)
                            tps_sum[side.who] = tps_sum.get(side.who, 0.0) + r["tps"]
                            lat.setdefault((pair.name, side.who, clients), []).extend(r["latency_us"])
                    ours, theirs = tps_sum["platformdb"] / SLICES, tps_sum[pair.theirs.who] / SLICES
                    key = f"{pair.name}_{clients}c"
                    entry = out["throughput"].setdefault(
                        key, {"peer": pair.peer, "clients": clients, "ours_tps": [], "theirs_tps": [], "ratio": []}
                    )
                    entry["ours_tps"].append(round(ours, 1))
                    entry["theirs_tps"].append(round(theirs, 1))
                    entry["ratio"].append(round(ours / theirs, 2))
                    if drained:
                        entry.setdefault("drained", []).extend(drained)
                    print(
                        f"round {rnd + 1} {key:22} platformdb {ours:9.1f} tps  {pair.peer} {theirs:9.1f} tps"
                        f"  ratio {ours / theirs:5.2f}x" + (f"  (queue drained: {drained})" if drained else ""),
                        flush=True,
                    )
        for pair in todo:
            for side in (pair.ours, pair.theirs):
                n += 1
                if pair.prepare:
                    pair.prepare(url, side.who, n)
                r = pgbench(url, side, 16, SECONDS, work, f"{pair.name}-{side.who}-{n}")
                lat[(pair.name, side.who, 16)] = r["latency_us"]
                if pair.prepare and left_in_claim_queue(url, side.who) == 0:
                    out["latency"].setdefault("drained_at_16c", []).append(f"{pair.name}:{side.who}")
                    print(f"latency run {pair.name} {side.who} at 16 clients drained its queue", flush=True)
        for pair in todo:
            entry = out["latency"].setdefault(pair.name, {"peer": pair.peer})
            for clients in LATENCY_CLIENTS:
                ours_l = lat_ms(lat.get((pair.name, "platformdb", clients), []))
                theirs_l = lat_ms(lat.get((pair.name, pair.theirs.who, clients), []))
                entry[f"{clients}c"] = {"platformdb": ours_l, pair.peer: theirs_l}
                print(
                    f"latency {pair.name:16} {clients:2}c  platformdb p50 {ours_l['p50_ms']:.3f} ms"
                    f" p99 {ours_l['p99_ms']:.3f} ms   {pair.peer} p50 {theirs_l['p50_ms']:.3f} ms"
                    f" p99 {theirs_l['p99_ms']:.3f} ms",
                    flush=True,
                )
    for entry in out["throughput"].values():
        entry["ratio_min"] = min(entry["ratio"])
        entry["ratio_median"] = round(statistics.median(entry["ratio"]), 2)
        entry["ours_tps_median"] = round(statistics.median(entry["ours_tps"]), 1)
        entry["theirs_tps_median"] = round(statistics.median(entry["theirs_tps"]), 1)
    return out


if __name__ == "__main__":
    main()
