"""`make citus`: every capability's tests and the security matrix on a 3-node Citus cluster.

1. a coordinator and 2 workers on loopback (platformdb.citus_cluster: free ports, private data
   directories under a temporary folder, removed at the end; PLATFORMDB_CITUS_KEEP=1 keeps them);
2. the migrations applied on the coordinator (`platformdb migrate up`), the API roles allowed
   to log in (Citus connects to the workers as the current role), `platformdb citus distribute`;
3. the SDK tests of every capability and the security matrix against the coordinator
   (PLATFORMDB_TEST_DATABASE_URL: the test harness's shared-database mode);
4. `platformdb verify` on the coordinator;
5. a small throughput table: the same calls on the 3-node cluster and on one PostgreSQL
   (a correctness run on whatever machine runs it, not a scaling claim).

Prints one summary line at the end (the line docs/scaling.md quotes). Exit 1 when a step failed.
scripts/citus.sh installs Citus first when it is missing (from CITUS_SRC).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg

from platformdb import citus, citus_cluster, devdb, migrate

ROOT = Path(__file__).resolve().parents[1]
PDB = str(ROOT / ".venv" / "bin" / "platformdb")
TESTS = [
    "tests/db/test_observability.py",
    "tests/db/test_whatsapp.py",
    "tests/db/test_payments.py",
    "tests/db/test_registry.py",
    "tests/db/test_flags.py",
    "tests/db/test_events.py",
    "tests/db/test_queue.py",
    "tests/db/test_jobs.py",
    "tests/db/test_geo.py",
    "tests/db/test_cache.py",
    "tests/security/test_matrix.py",
]


def log(msg: str) -> None:
    print(f"[citus] {msg}", flush=True)


def prepare(url: str) -> None:
    migrate.up(url, progress=lambda m: log(m))
    citus_cluster.allow_api_roles_to_connect(url)
    steps = citus.distribute(url, progress=lambda m: log(f"distribute: {m}"))
    log(f"distribute: {len(steps)} statements")
    again = citus.distribute(url)
    log(f"distribute again: {len(again)} statements (idempotent)")


def run_tests(url: str) -> tuple[int, dict[str, int], str]:
    env = {**os.environ, "PLATFORMDB_TEST_DATABASE_URL": url}
    extra = os.environ.get("PLATFORMDB_CITUS_PYTEST_ARGS", "").split()
    (ROOT / ".platformdb").mkdir(exist_ok=True)
    logfile = ROOT / ".platformdb" / "citus-pytest.log"
    log(f"tests: {len(TESTS)} files, output in {logfile}")
    with logfile.open("w") as fh:
        r = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rfEs", *extra, *TESTS],
            cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT, text=True, check=False,
        )
    out = logfile.read_text()
    counts: dict[str, int] = {}
    tail = out.strip().splitlines()[-1] if out.strip() else ""
    for n, what in re.findall(r"(\d+) (passed|failed|skipped|errors?|xfailed|xpassed)", tail):
        counts[what.rstrip("s") if what.startswith("error") else what] = int(n)
    return r.returncode, counts, tail


def run_verify(url: str) -> tuple[int, str]:
    r = subprocess.run([PDB, "verify", "--database-url", url], capture_output=True, text=True, check=False)
    (ROOT / ".platformdb" / "citus-verify.log").write_text(r.stdout + r.stderr)
    last = [ln for ln in r.stderr.splitlines() if ln.startswith("verify:")]
    return r.returncode, last[-1] if last else (r.stderr.strip().splitlines() or ["verify: no output"])[-1]


# name: (setup run once, statement run n times with a fresh uuid for every %s) — as the service
CALLS: dict[str, tuple[str, str]] = {
    "create_transaction": ("select 1", "select create_transaction(%s, 'credit', 100)"),
    "set_cache + get_cache": (
        "select 1",
        "select set_cache('k' || %s::text, '{\"v\": 1}'::jsonb, 60), get_cache('k' || %s::text)",
    ),
    "append_event": ("select 1", "select append_event(%s::text, 'order', 'created', '{}'::jsonb)"),
    "find_nearby_locations (2 km, 500 points)": (
        "select save_location(52.50 + random() / 20, 13.38 + random() / 20, 'home',"
        " p_user_id => gen_random_uuid()) from generate_series(1, 500)",
        "select count(*) from find_nearby_locations(52.52, 13.40, 2000) where %s is not null",
    ),
}


def throughput(url: str, n: int) -> dict[str, float]:
    """Calls per second of a few capability calls, one connection, `n` calls each."""
    out: dict[str, float] = {}
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("set role service_role")
        for name, spec in CALLS.items():
            setup, stmt = spec
            try:
                conn.execute(setup)
                t0 = time.perf_counter()
                for _ in range(n):
                    u = uuid.uuid4()
                    conn.execute(stmt.encode(), [u] * stmt.count("%s"))
                out[name] = n / (time.perf_counter() - t0)
            except psycopg.Error as exc:
                log(f"throughput {name}: {exc.diag.sqlstate} {str(exc).splitlines()[0]}")
                out[name] = float("nan")
    return out


def main() -> int:
    t0 = time.monotonic()
    cc = citus_cluster.start(progress=log)
    single: devdb.Cluster | None = None
    ok = True
    try:
        url = cc.url()
        prepare(url)
        rc, counts, tail = run_tests(url)
        log(f"tests: {tail}")
        ok &= rc == 0
        vrc, vline = run_verify(url)
        log(vline)
        ok &= vrc == 0
        n = int(os.environ.get("PLATFORMDB_CITUS_CALLS", "300"))
        single = devdb.ephemeral_cluster(prefix="platformdb-single-")
        single.create_database(devdb.DEFAULT_DB)
        migrate.up(single.url())
        one = throughput(single.url(), n)
        three = throughput(url, n)
        print("\n| call (one connection, calls/s) | 1 node | 3 nodes (coordinator + 2 workers) |")
        print("|---|---:|---:|")
        for name in one:
            print(f"| {name} | {one[name]:.0f} | {three[name]:.0f} |")
        summary = (
            f"make citus: {cc.version} on PostgreSQL 15, coordinator + {len(cc.workers)} workers;"
            f" tests {counts.get('passed', 0)} passed, {counts.get('failed', 0)} failed,"
            f" {counts.get('error', 0)} errors, {counts.get('skipped', 0)} skipped;"
            f" {vline}; {time.monotonic() - t0:.0f} s"
        )
        print("\n" + summary)
    finally:
        if single is not None:
            single.destroy()
        if os.environ.get("PLATFORMDB_CITUS_KEEP") == "1":
            log(f"kept: {cc.url()} (data under {cc.coordinator.datadir.parent.parent})")
        else:
            cc.destroy()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
