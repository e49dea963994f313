"""Every SDK capability through PgBouncer in transaction mode from many threads: 0 errors.

    .venv/bin/python scripts/pooler_smoke.py [--threads 16] [--iterations 10] [--pool-size 4]

Starts a throw-away cluster with every migration, a PgBouncer (transaction mode, a pool
smaller than the threads) in front of it, and runs tests/pooler_workload.py through it —
each thread on a connection of its own opened by platformdb.db (which detects the pooler and
turns server-side prepared statements off). With --database-url it runs against that
database instead (it must be migrated; the pool mode is detected or PLATFORMDB_POOL_MODE).
--control also runs the same load with prepared statements left on, to show what breaks.
Exit 1 on any error.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from tests import pooler_workload  # noqa: E402

from platformdb import db, devdb, migrate  # noqa: E402
from platformdb.pgbouncer import PgBouncer  # noqa: E402


def _report(label: str, out: pooler_workload.Outcome, seconds: float) -> None:
    cycles = sum(out.calls.values())
    print(f"{label}: {cycles} cycles passed, {len(out.errors)} errors, {seconds:.1f}s")
    for name in pooler_workload.CAPABILITIES:
        print(f"  {name:<14} {out.calls.get(name, 0):>5} cycles ok")
    for e in out.errors[:10]:
        print(f"  error: {e[:300]}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=16)
    ap.add_argument("--iterations", type=int, default=10)
    ap.add_argument("--pool-size", type=int, default=4)
    ap.add_argument("--database-url", default=None)
    ap.add_argument("--control", action="store_true", help="also run with prepared statements on")
    args = ap.parse_args()

    if args.database_url:
        url = args.database_url
        print(f"pool mode of the URL: {db.pool_mode(url)}")
        t0 = time.monotonic()
        out = pooler_workload.run(url, args.threads, args.iterations)
        _report(f"{args.threads} threads", out, time.monotonic() - t0)
        return 0 if out.ok else 1

    cluster = devdb.ephemeral_cluster("platformdb-pooler-smoke-")
    try:
        with psycopg.connect(cluster.url("postgres"), autocommit=True) as c:
            c.execute("create database pooler_smoke")
        direct = cluster.url("pooler_smoke")
        migrate.up(direct)
        with PgBouncer(cluster.port, pool_size=args.pool_size) as bouncer:
            url = bouncer.url("pooler_smoke")
            print(f"PgBouncer pool_mode=transaction, default_pool_size={args.pool_size}, clients={args.threads}")
            detected, server = db.detect_pool_mode(url), db.detect_pool_mode(direct)
            print(f"detected pool mode: {detected}  (the server directly: {server})")
            t0 = time.monotonic()
            out = pooler_workload.run(url, args.threads, args.iterations)
            _report(f"pooled, {args.threads} threads x {args.iterations} iterations", out, time.monotonic() - t0)
            if args.control:
                db.configure(url, pool_mode="session")  # pretend it is a session: prepared statements on
                t0 = time.monotonic()
                bad = pooler_workload.run(url, args.threads, args.iterations)
                _report("control (prepared statements on, through the same pooler)", bad, time.monotonic() - t0)
        return 0 if out.ok else 1
    finally:
        cluster.destroy()


if __name__ == "__main__":
    raise SystemExit(main())
