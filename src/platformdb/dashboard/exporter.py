"""`GET /metrics`: the platform's state in Prometheus text format (prometheus-client).

Read at each scrape through the same read-only monitoring functions as the pages (a few
milliseconds; see bench/dashboard.py). Gauges only: the database holds the state, Prometheus
keeps the history. Families (all prefixed ``platformdb_``) are listed in FAMILIES and
documented in docs/dashboard.md; the alert rules in deploy/prometheus/alerts.yml use them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from datetime import timedelta
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from platformdb.dashboard import queries as q

DAY = q.Window("24h", "24 hours", timedelta(hours=24), timedelta(hours=24))
SERVICE_STATES = ("healthy", "warning", "unhealthy", "critical", "stopped")
WA_STATUSES = ("sent", "delivered", "read", "failed", "cancelled")

FAMILIES: dict[str, str] = {
    "platformdb_up": "1 when the database answered this scrape's queries, else 0.",
    "platformdb_scrape_duration_seconds": "Time spent reading the database for this scrape.",
    "platformdb_queue_depth": "Messages waiting (available or retryable) per queue.",
    "platformdb_queue_ready": "Messages due now per queue.",
    "platformdb_queue_in_flight": "Messages claimed by a worker per queue.",
    "platformdb_queue_expired_leases": "Claimed messages whose lease ran out (a worker died) per queue.",
    "platformdb_queue_oldest_ready_age_seconds": "Age of the oldest due message per queue.",
    "platformdb_queue_completed_last_hour": "Messages completed in the last hour per queue.",
    "platformdb_dead_letters": "Dead letters kept, per kind (message or job) and queue or job type.",
    "platformdb_jobs": "Background jobs per job type and state.",
    "platformdb_job_oldest_ready_age_seconds": "Age of the oldest due job per job type.",
    "platformdb_job_expired_leases": "Running jobs whose lease ran out per job type.",
    "platformdb_transactions_24h": "Transactions created in the last 24 hours by currency and current status.",
    "platformdb_transaction_amount_24h": "Amount of transactions created in the last 24 hours by currency and status.",
    "platformdb_transactions_open": "Transactions still pending or processing.",
    "platformdb_transaction_oldest_open_age_seconds": "Age of the oldest pending or processing transaction.",
    "platformdb_whatsapp_messages_24h": "Outbound WhatsApp messages reaching each status in the last 24 hours.",
    "platformdb_whatsapp_queue_depth": "Outbound WhatsApp messages due and not yet claimed.",
    "platformdb_whatsapp_oldest_pending_age_seconds": "Age of the oldest due outbound WhatsApp message.",
    "platformdb_whatsapp_expired_leases": "Outbound WhatsApp messages claimed by a sender whose lease ran out.",
    "platformdb_whatsapp_inbound_24h": "Inbound WhatsApp messages received in the last 24 hours.",
    "platformdb_whatsapp_billable_messages_24h": "Outbound WhatsApp messages sent in the last 24 hours that WhatsApp"
    " bills, by pricing category.",
    "platformdb_whatsapp_sent_by_category_24h": "Outbound WhatsApp messages sent in the last 24 hours, by pricing"
    " category (unknown until a status with pricing arrives).",
    "platformdb_whatsapp_quarantine_open": "Webhook items waiting in quarantine (could not be stored).",
    "platformdb_cache_hit_ratio": "Cache hit ratio over the last 24 hours per namespace and cache type.",
    "platformdb_cache_lookups_24h": "Cache lookups in the last 24 hours per namespace, cache type and result.",
    "platformdb_cache_entries": "Live cache entries per cache type.",
    "platformdb_service_health": "1 for the current health of the service (healthy/warning/unhealthy/critical/stopped)",
    "platformdb_service_heartbeat_age_seconds": "Seconds since the service's last heartbeat.",
    "platformdb_partition_months_ahead": "Months after the current one covered without a gap (-1: not even this one).",
    "platformdb_partition_current_month_covered": "1 when the current month has its own partition, per table.",
    "platformdb_partition_default_rows": "Rows in the DEFAULT partition (rows no month partition took).",
    "platformdb_reading_replica": "1 when the dashboard reads a standby (PLATFORMDB_REPLICA_URL), else 0.",
    "platformdb_replica_lag_seconds": "Replay lag of the standby the dashboard reads (0 on the primary or caught up).",
}


def _g(name: str, labels: list[str] | None = None) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, FAMILIES[name], labels=labels or [])


def _f(v: Any) -> float:
    return float(v or 0)


def collect(conn: q.Conn, primary: q.Conn | None = None) -> list[Metric]:
    """Every family from one connection (as platformdb_monitor). `primary`: a connection to
    the primary when `conn` reads a replica — the cache's entries and counters live in
    unlogged tables, which a standby does not have."""
    out: list[Metric] = []
    rep = q.replica_status(conn)
    reading, lag = _g("platformdb_reading_replica"), _g("platformdb_replica_lag_seconds")
    reading.add_metric([], 1.0 if rep["in_recovery"] else 0.0)
    lag.add_metric([], _f(rep["lag_seconds"]))
    out += [reading, lag]

    depth, ready = _g("platformdb_queue_depth", ["queue"]), _g("platformdb_queue_ready", ["queue"])
    inflight = _g("platformdb_queue_in_flight", ["queue"])
    expired = _g("platformdb_queue_expired_leases", ["queue"])
    age = _g("platformdb_queue_oldest_ready_age_seconds", ["queue"])
    completed = _g("platformdb_queue_completed_last_hour", ["queue"])
    dead = _g("platformdb_dead_letters", ["kind", "name"])
    for r in q.queues(conn, 1000):
        labels = [r["queue_name"]]
        depth.add_metric(labels, _f(r["depth"]))
        ready.add_metric(labels, _f(r["ready"]))
        inflight.add_metric(labels, _f(r["in_flight"]))
        expired.add_metric(labels, _f(r["expired_leases"]))
        age.add_metric(labels, _f(r["oldest_ready_age_seconds"]))
        completed.add_metric(labels, _f(r["completed_last_hour"]))
        dead.add_metric(["message", r["queue_name"]], _f(r["dead_letters"]))

    jobs = _g("platformdb_jobs", ["job_type", "state"])
    job_age = _g("platformdb_job_oldest_ready_age_seconds", ["job_type"])
    job_expired = _g("platformdb_job_expired_leases", ["job_type"])
    for r in q.jobs(conn, 1000):
        t = r["job_type"]
        states = {
            "available": _f(r["depth"]) - _f(r["retrying"]),
            "retryable": _f(r["retrying"]),
            "running": _f(r["running"]),
            "completed": _f(r["completed"]),
            "cancelled": _f(r["cancelled"]),
            "dead_letter": _f(r["dead_letters"]),
        }
        for state, v in states.items():
            jobs.add_metric([t, state], v)
        job_age.add_metric([t], _f(r["oldest_ready_age_seconds"]))
        job_expired.add_metric([t], _f(r["expired_leases"]))
        dead.add_metric(["job", t], _f(r["dead_letters"]))
    out += [depth, ready, inflight, expired, age, completed, dead, jobs, job_age, job_expired]

    tx = _g("platformdb_transactions_24h", ["currency", "status"])
    amount = _g("platformdb_transaction_amount_24h", ["currency", "status"])
    sums: dict[tuple[str, str], tuple[float, float]] = {}
    for r in q.payment_volume(conn, DAY):
        k = (r["currency"], r["status"])
        n, a = sums.get(k, (0.0, 0.0))
        sums[k] = (n + _f(r["transactions"]), a + _f(r["amount"]))
    for (currency, status), (n, a) in sorted(sums.items()):
        tx.add_metric([currency, status], n)
        amount.add_metric([currency, status], a)
    open_ = _g("platformdb_transactions_open", ["status"])
    open_age = _g("platformdb_transaction_oldest_open_age_seconds", ["status"])
    for r in q.payment_open(conn):
        open_.add_metric([r["status"]], _f(r["open_count"]))
        open_age.add_metric([r["status"]], _f(r["oldest_age_seconds"]))
    out += [tx, amount, open_, open_age]

    w = q.whatsapp(conn)
    wa = _g("platformdb_whatsapp_messages_24h", ["status"])
    for s in WA_STATUSES:
        wa.add_metric([s], _f(w.get(f"{s}_24h")))
    wa_depth = _g("platformdb_whatsapp_queue_depth")
    wa_depth.add_metric([], _f(w.get("depth")))
    wa_age = _g("platformdb_whatsapp_oldest_pending_age_seconds")
    wa_age.add_metric([], _f(w.get("oldest_pending_age_seconds")))
    wa_expired = _g("platformdb_whatsapp_expired_leases")
    wa_expired.add_metric([], _f(w.get("expired_leases")))
    wa_in = _g("platformdb_whatsapp_inbound_24h")
    wa_in.add_metric([], _f(w.get("inbound_24h")))
    billable = _g("platformdb_whatsapp_billable_messages_24h", ["category"])
    by_category = _g("platformdb_whatsapp_sent_by_category_24h", ["category"])
    per_category: dict[str, tuple[float, float]] = {}
    for r in q.whatsapp_costs(conn, timedelta(hours=24), timedelta(hours=24)):
        m, b = per_category.get(r["category"], (0.0, 0.0))
        per_category[r["category"]] = (m + _f(r["messages"]), b + _f(r["billable"]))
    for category, (m, b) in sorted(per_category.items()):
        by_category.add_metric([category], m)
        billable.add_metric([category], b)
    quarantined = _g("platformdb_whatsapp_quarantine_open")
    newest = q.whatsapp_quarantine(conn, 1)
    quarantined.add_metric([], _f(newest[0]["open_total"]) if newest else 0.0)
    out += [wa, wa_depth, wa_age, wa_expired, wa_in, billable, by_category, quarantined]

    ratio = _g("platformdb_cache_hit_ratio", ["namespace", "cache_type"])
    lookups = _g("platformdb_cache_lookups_24h", ["namespace", "cache_type", "result"])
    entries = _g("platformdb_cache_entries", ["cache_type"])
    for r in q.cache(primary or conn):
        hits, misses = _f(r["hits_24h"]), _f(r["misses_24h"])
        lookups.add_metric(["cache", r["cache_type"], "hit"], hits)
        lookups.add_metric(["cache", r["cache_type"], "miss"], misses)
        if hits + misses:
            ratio.add_metric(["cache", r["cache_type"]], hits / (hits + misses))
        entries.add_metric([r["cache_type"]], _f(r["live_entries"]))
    route = q.route_cache(primary or conn)
    if route:
        hits, misses = _f(route["hits_24h"]), _f(route["misses_24h"])
        lookups.add_metric(["route", "route", "hit"], hits)
        lookups.add_metric(["route", "route", "miss"], misses)
        if hits + misses:
            ratio.add_metric(["route", "route"], hits / (hits + misses))
    out += [ratio, lookups, entries]

    health = _g("platformdb_service_health", ["service", "status"])
    beat = _g("platformdb_service_heartbeat_age_seconds", ["service"])
    for r in q.services(conn, 1000):
        for s in SERVICE_STATES:
            health.add_metric([r["service_name"], s], 1.0 if r["health_status"] == s else 0.0)
        if r["seconds_since_heartbeat"] is not None:
            beat.add_metric([r["service_name"]], _f(r["seconds_since_heartbeat"]))
    out += [health, beat]

    ahead = _g("platformdb_partition_months_ahead", ["table"])
    covered = _g("platformdb_partition_current_month_covered", ["table"])
    default_rows = _g("platformdb_partition_default_rows", ["table"])
    for r in q.partition_coverage(conn):
        ahead.add_metric([r["parent"]], _f(r["months_ahead"]))
        covered.add_metric([r["parent"]], 1.0 if r["current_month_covered"] else 0.0)
        default_rows.add_metric([r["parent"]], _f(r["default_rows"]))
    out += [ahead, covered, default_rows]
    return out


class PlatformCollector(Collector):
    """Reads the database at each scrape; `platformdb_up` 0 (and nothing else) when it cannot."""

    def __init__(self, connection: Callable[[], Any], primary: Callable[[], Any] | None = None):
        self.connection = connection  # a context manager factory yielding a connection
        self.primary = primary  # the same for the primary, when `connection` reads a replica

    def collect(self) -> Iterator[Metric]:
        t0 = time.perf_counter()
        up = _g("platformdb_up")
        try:
            with self.connection() as conn, (self.primary() if self.primary else nullcontext()) as pconn:
                families = collect(conn, pconn)
        except Exception:  # the scrape must answer even when the database does not
            families = []
            up.add_metric([], 0.0)
        else:
            up.add_metric([], 1.0)
        duration = _g("platformdb_scrape_duration_seconds")
        duration.add_metric([], time.perf_counter() - t0)
        yield up
        yield duration
        yield from families


def registry(connection: Callable[[], Any], primary: Callable[[], Any] | None = None) -> CollectorRegistry:
    reg = CollectorRegistry(auto_describe=False)
    reg.register(PlatformCollector(connection, primary))
    return reg
