"""Direct vs through PgBouncer in transaction mode: `create_transaction` and the queue cycle.

Both in the same run against the same database, interleaved in rounds (direct, pooled,
direct, pooled, …) and summed, to even out a noisy shared machine. Each of CLIENTS threads
has a connection of its own, opened by platformdb.db (through the pooler: no server-side
prepared statements, as the pooler requires; directly: psycopg's default, which prepares a
statement after 5 runs). PgBouncer serves the clients with POOL_SIZE server connections.

- `create_transaction_per_s`: `payments.create_transaction` as service_role (its own
  transaction with SET LOCAL role and claims), a fresh idempotency key per call.
- `queue_cycle_per_s`: enqueue one message, claim it, ack it (three transactions) as
  service_role; the figure counts complete cycles.

Figures are client-observed calls per second; the pooled path adds PgBouncer's hop and the
loss of prepared statements, which is what the ratio shows.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import psycopg

from _common import database, rate, write_result
from platformdb import db
from platformdb.pgbouncer import PgBouncer
from platformdb.sdk import payments, queue

CALLS = int(os.environ.get("BENCH_POOLER_CALLS", "300"))  # per client and round
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "2"))
CLIENTS = 8
POOL_SIZE = 4


def _create(conn: psycopg.Connection[Any], t: int, i: int) -> None:
    with db.as_service(conn):
        payments.create_transaction(conn, uuid.uuid4(), "payment", 1000 + i, "RWF", uuid.uuid4().hex)


def _queue_cycle(conn: psycopg.Connection[Any], t: int, i: int) -> None:
    name = f"bench-pool-{t}"
    with db.as_service(conn):
        queue.enqueue_message(conn, name, "ping", {"i": i})
    with db.as_service(conn):
        [m] = queue.claim_messages(conn, name, 1, 30, f"w{t}")
    with db.as_service(conn):
        queue.ack_message(conn, m.id, f"w{t}")


def _phase(url: str, op: Callable[[psycopg.Connection[Any], int, int], None]) -> tuple[int, float]:
    conns = [db.connect(url, autocommit=True) for _ in range(CLIENTS)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(CLIENTS + 1)

    def run(t: int) -> None:
        barrier.wait()
        try:
            for i in range(CALLS):
                op(conns[t], t, i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(t,)) for t in range(CLIENTS)]
    for th in threads:
        th.start()
    barrier.wait()
    t0 = time.perf_counter()
    for th in threads:
        th.join()
    elapsed = time.perf_counter() - t0
    for c in conns:
        c.close()
    if errors:
        raise RuntimeError(f"{len(errors)} client(s) failed: {errors[0]!r}")
    return CALLS * CLIENTS, elapsed


def main() -> None:
    with database() as direct:
        port = int(psycopg.conninfo.conninfo_to_dict(direct)["port"] or 5432)
        with PgBouncer(port, pool_size=POOL_SIZE) as bouncer:
            pooled = bouncer.url_for(direct)
            assert db.pool_mode(pooled) == "transaction" and db.pool_mode(direct) == "session"
            totals: dict[str, dict[str, list[float]]] = {
                route: {"create": [0, 0.0], "queue": [0, 0.0]} for route in ("direct", "pooled")
            }
            for _ in range(ROUNDS):
                for route, url in (("direct", direct), ("pooled", pooled)):
                    for name, op in (("create", _create), ("queue", _queue_cycle)):
                        n, s = _phase(url, op)
                        totals[route][name][0] += n
                        totals[route][name][1] += s
    figures: dict[str, Any] = {
        "clients": CLIENTS,
        "pgbouncer_pool_size": POOL_SIZE,
        "calls_per_client_and_round": CALLS,
        "rounds": ROUNDS,
        "pgbouncer_pool_mode": "transaction",
    }
    for route in ("direct", "pooled"):
        figures[route] = {
            "create_transaction_per_s": rate(int(totals[route]["create"][0]), totals[route]["create"][1]),
            "queue_cycle_per_s": rate(int(totals[route]["queue"][0]), totals[route]["queue"][1]),
        }
    for key in ("create_transaction_per_s", "queue_cycle_per_s"):
        figures[f"pooled_over_direct_{key.removesuffix('_per_s')}"] = figures["pooled"][key] / figures["direct"][key]
    path = write_result("pooler", figures)
    print(f"{path}: {figures}")


if __name__ == "__main__":
    main()
