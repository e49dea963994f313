"""Every SDK capability from many threads at once, each with a connection of its own.

Used by tests/db/test_pooler.py (16 threads, direct and through PgBouncer in transaction
mode) and by scripts/pooler_smoke.py. Each cycle makes several calls of one capability
(more than psycopg's prepare threshold of 5 per connection over the iterations, so
server-side prepared statements would be used — and break — if the connection allowed them)
and checks what came back: an error or a wrong answer counts as a failure.
"""

from __future__ import annotations

import threading
import traceback
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import psycopg

from platformdb import db
from platformdb.sdk import cache, events, flags, geo, jobs, observability, payments, queue, registry
from platformdb.sdk import whatsapp as wa

Conn = psycopg.Connection[Any]
_salt = uuid.uuid4().hex[:6]  # names and keys unique per run, so runs can repeat on one database


def _payments(conn: Conn, t: int, i: int) -> None:
    user = uuid.uuid4()
    with db.as_service(conn):
        tx = payments.create_transaction(conn, user, "payment", 1500 + i, "RWF", f"pool-{_salt}-{t}-{i}")
        again = payments.create_transaction(conn, user, "payment", 1500 + i, "RWF", f"pool-{_salt}-{t}-{i}")
    assert tx == again, "an idempotent repeat gave another id"
    with db.as_service(conn):
        assert payments.update_transaction_status(conn, tx, "processing")
        assert payments.update_transaction_status(conn, tx, "completed")
    with db.as_user(conn, user):
        got = payments.get_transaction(conn, tx)
        mine = payments.recent_transactions(conn, user)
    assert got is not None and got.status == "completed" and got.amount == Decimal(1500 + i)
    assert [r.id for r in mine] == [tx]


def _queue(conn: Conn, t: int, i: int) -> None:
    name = f"pool-q-{_salt}-{t}"
    with db.as_service(conn):
        ids = {queue.enqueue_message(conn, name, "ping", {"t": t, "i": i, "n": n}) for n in range(3)}
        claimed = queue.claim_messages(conn, name, 10, 30, f"w{t}")
        assert {m.id for m in claimed} == ids, "claimed other messages than were enqueued"
        assert queue.ack_messages(conn, [m.id for m in claimed], f"w{t}") == 3


def _events(conn: Conn, t: int, i: int) -> None:
    agg = f"ride-{_salt}-{t}-{i}"
    with db.as_service(conn):
        events.append_event(conn, "ride", agg, "requested", {"i": i}, expected_version=0)
        events.append_event(conn, "ride", agg, "accepted", {"i": i}, expected_version=1)
        stream = events.read_stream(conn, "ride", agg)
        assert [e.event_type for e in stream] == ["requested", "accepted"]
        assert events.stream_version(conn, "ride", agg) == 2


def _jobs(conn: Conn, t: int, i: int) -> None:
    job_type = f"pool.job.{_salt}.{t}"
    with db.as_service(conn):
        jid = jobs.schedule_job(conn, job_type, f"job {i}", {"i": i})
        [job] = jobs.claim_jobs(conn, [job_type], 5, f"w{t}")
        assert job.id == jid
        assert jobs.complete_job(conn, jid, {"ok": i}, f"w{t}") is True


def _cache(conn: Conn, t: int, i: int) -> None:
    key = f"pool:{_salt}:{t}:{i}"
    cache.set_cache(conn, key, {"v": i}, 60, "pool", [f"tag-{t}"])
    assert cache.get_cache(conn, key) == {"v": i}
    # the stampede guard: a transaction-scoped lock, so it works on a pooler too
    assert cache.get_or_compute(conn, f"computed:{_salt}:{t}:{i}", lambda: [t, i], 60, "pool") == [t, i]
    assert cache.get_or_compute(conn, f"computed:{_salt}:{t}:{i}", lambda: ["wrong"], 60, "pool") == [t, i]
    assert cache.delete_cache(conn, key) is True


def _geo(conn: Conn, t: int, i: int) -> None:
    lat, lng = -1.95 + t * 0.001, 30.06 + i * 0.001
    with db.as_service(conn):
        loc = geo.save_location(conn, lat, lng, "pickup", name=f"p{t}-{i}", is_public=True)
        near = geo.find_nearby_locations(conn, lat, lng, 50)
        assert loc in [r.id for r in near]
        geo.cache_route(conn, (lat, lng), (lat + 0.01, lng + 0.01), 1500.0, 300, [(lat, lng), (lat + 0.01, lng + 0.01)])
        assert geo.get_cached_route(conn, (lat, lng), (lat + 0.01, lng + 0.01)) is not None


def _observability(conn: Conn, t: int, i: int) -> None:
    with db.as_service(conn):
        observability.record_metric(conn, f"svc-{t}", "counter", "pool.requests", float(i), "count", {"t": t})
        n = observability.record_metrics(
            conn,
            [observability.Metric(f"svc-{t}", "gauge", "pool.depth", float(k)) for k in range(3)],
        )
        assert n == 3


def _registry(conn: Conn, t: int, i: int) -> None:
    name = f"svc-{_salt}-{t}"
    with db.as_service(conn):
        registry.register_service(conn, name, "api", f"1.{i}", f"http://svc-{t}.internal")
        assert registry.service_heartbeat(conn, name, "healthy", {"i": i})
    with db.as_service(conn):
        h = registry.health_of(conn, name)
    assert h is not None


def _whatsapp(conn: Conn, t: int, i: int) -> None:
    phone = f"+25078{t:03d}{i:04d}"
    with db.as_service(conn):
        r = wa.record_inbound(conn, f"wamid.pool.{_salt}.{t}.{i}", phone, "text", {"body": f"hi {i}"})
        again = wa.record_inbound(conn, f"wamid.pool.{_salt}.{t}.{i}", phone, "text", {"body": f"hi {i}"})
        assert r.is_new and not again.is_new
        mid = wa.send_text(conn, phone, f"reply {i}")
        assert wa.get_session(conn, phone) is not None
        assert wa.cancel_message(conn, mid) is True


def _flags(conn: Conn, t: int, i: int) -> None:
    key = f"pool-flag-{_salt}-{t}"
    with db.as_service(conn):
        flags.upsert_flag(conn, key, enabled=True, rollout_strategy="percentage", rollout_percentage=100)
        assert flags.is_feature_enabled(conn, key, uuid.uuid4()) is True
        flags.upsert_flag(conn, key, enabled=False)
        assert flags.is_feature_enabled(conn, key, uuid.uuid4()) is False


CAPABILITIES: dict[str, Callable[[Conn, int, int], None]] = {
    "payments": _payments,
    "queue": _queue,
    "events": _events,
    "jobs": _jobs,
    "cache": _cache,
    "geo": _geo,
    "observability": _observability,
    "registry": _registry,
    "whatsapp": _whatsapp,
    "flags": _flags,
}


@dataclass
class Outcome:
    calls: Counter[str] = field(default_factory=Counter)  # cycles that passed, by capability
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def run(url: str, threads: int = 16, iterations: int = 6, capabilities: list[str] | None = None) -> Outcome:
    """`threads` threads, each on a connection of its own opened as platformdb.db opens them
    (no server-side prepared statements when `url` is a transaction pooler), each running
    every capability's cycle `iterations` times."""
    global _salt
    _salt = uuid.uuid4().hex[:6]
    names = capabilities or list(CAPABILITIES)
    out = Outcome()
    lock = threading.Lock()
    start = threading.Barrier(threads)

    def worker(t: int) -> None:
        try:
            conn = db.connect(url, autocommit=True)
        except Exception as exc:
            with lock:
                out.errors.append(f"thread {t}: connect: {exc}")
            start.abort()
            return
        with conn:
            try:
                start.wait(60)
            except threading.BrokenBarrierError:
                return
            for i in range(iterations):
                for name in names:
                    try:
                        CAPABILITIES[name](conn, t, i)
                    except Exception as exc:
                        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
                        with lock:
                            out.errors.append(f"{name} (thread {t}, iteration {i}): {detail}")
                        if conn.closed or conn.broken:
                            return
                    else:
                        with lock:
                            out.calls[name] += 1

    ts = [threading.Thread(target=worker, args=(t,), name=f"pool-{t}") for t in range(threads)]
    for th in ts:
        th.start()
    for th in ts:
        th.join()
    return out
