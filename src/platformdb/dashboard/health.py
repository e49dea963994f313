"""Health at a glance: red / amber / green per area, from the panels' rows.

The thresholds are the same as the Prometheus alerts' (deploy/prometheus/alerts.yml):
amber is "look at it today", red is "a human now". Pure functions of query results, so
they are tested without a browser.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

GREEN, AMBER, RED, GREY = "green", "amber", "red", "grey"
ORDER = {GREY: 0, GREEN: 1, AMBER: 2, RED: 3}

# seconds / ratios
QUEUE_AGE_AMBER, QUEUE_AGE_RED = 60, 300
PAYMENT_FAIL_AMBER, PAYMENT_FAIL_RED = 0.10, 0.25
PAYMENT_PENDING_AMBER = 15 * 60
PAYMENT_PROCESSING_RED = 30 * 60
WA_FAIL_AMBER, WA_FAIL_RED = 0.02, 0.10
WA_AGE_AMBER, WA_AGE_RED = 5 * 60, 15 * 60
CACHE_HIT_AMBER, CACHE_HIT_RED = 0.80, 0.50
LATENCY_RATIO_AMBER, LATENCY_RATIO_RED = 2.0, 4.0


@dataclass
class Figure:
    label: str
    value: Any
    source: str
    unit: str = ""


@dataclass
class Area:
    key: str
    title: str
    href: str
    status: str = GREY
    reasons: list[str] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)

    def worse(self, status: str, reason: str) -> None:
        if ORDER[status] > ORDER[self.status]:
            self.status = status
        if status in (AMBER, RED):
            self.reasons.append(reason)


def _f(value: Any) -> float:
    return float(value or 0)


def services(rows: list[dict[str, Any]], source: str) -> Area:
    a = Area("services", "Services", "/services")
    if not rows:
        a.reasons.append("no service registered")
        return a
    a.status = GREEN
    by: dict[str, int] = {}
    for r in rows:
        by[r["health_status"]] = by.get(r["health_status"], 0) + 1
        if r["health_status"] in ("critical", "unhealthy"):
            a.worse(RED, f"{r['service_name']} is {r['health_status']}")
        elif r["health_status"] == "warning":
            a.worse(AMBER, f"{r['service_name']}: heartbeat late or degraded")
    a.figures = [Figure("registered", len(rows), source)] + [Figure(k, v, source) for k, v in sorted(by.items())]
    return a


def _queue_like(a: Area, rows: list[dict[str, Any]], name_key: str, source: str, noun: str) -> Area:
    if not rows:
        a.reasons.append(f"no {noun} yet")
        return a
    a.status = GREEN
    depth = sum(int(r["depth"]) for r in rows)
    dead = sum(int(r["dead_letters"]) for r in rows)
    oldest = max(_f(r["oldest_ready_age_seconds"]) for r in rows)
    for r in rows:
        age = _f(r["oldest_ready_age_seconds"])
        if int(r["expired_leases"]):
            a.worse(RED, f"{r[name_key]}: {r['expired_leases']} expired leases (a worker died?)")
        if age >= QUEUE_AGE_RED:
            a.worse(RED, f"{r[name_key]}: oldest ready {age:.0f} s")
        elif age >= QUEUE_AGE_AMBER:
            a.worse(AMBER, f"{r[name_key]}: oldest ready {age:.0f} s")
        if int(r["dead_letters"]):
            a.worse(AMBER, f"{r[name_key]}: {r['dead_letters']} dead letters")
    a.figures = [
        Figure("depth", depth, source),
        Figure("oldest ready", round(oldest, 1), source, "s"),
        Figure("dead letters", dead, source),
    ]
    return a


def queues(rows: list[dict[str, Any]], source: str) -> Area:
    return _queue_like(Area("queues", "Queues", "/queues"), rows, "queue_name", source, "messages")


def jobs(rows: list[dict[str, Any]], source: str) -> Area:
    return _queue_like(Area("jobs", "Jobs", "/queues#jobs"), rows, "job_type", source, "jobs")


def payments(volume: list[dict[str, Any]], open_rows: list[dict[str, Any]], source: str, open_source: str) -> Area:
    a = Area("payments", "Payments", "/payments")
    if not volume and not any(int(r["open_count"]) for r in open_rows):
        a.reasons.append("no transactions in the last 24 hours")
        return a
    a.status = GREEN
    completed = sum(int(r["transactions"]) for r in volume if r["status"] in ("completed", "reversed"))
    failed = sum(int(r["transactions"]) for r in volume if r["status"] == "failed")
    share = failed / (completed + failed) if completed + failed else 0.0
    if share >= PAYMENT_FAIL_RED:
        a.worse(RED, f"{share:.0%} of finished payments failed (24 h)")
    elif share >= PAYMENT_FAIL_AMBER:
        a.worse(AMBER, f"{share:.0%} of finished payments failed (24 h)")
    for r in open_rows:
        age = _f(r["oldest_age_seconds"])
        if r["status"] == "processing" and int(r["open_count"]) and age >= PAYMENT_PROCESSING_RED:
            a.worse(RED, f"a payment has been processing for {age / 60:.0f} min")
        elif int(r["open_count"]) and age >= PAYMENT_PENDING_AMBER:
            a.worse(AMBER, f"a payment has been {r['status']} for {age / 60:.0f} min")
    a.figures = [
        Figure("transactions 24 h", sum(int(r["transactions"]) for r in volume), source),
        Figure("failed share", round(share * 100, 1), source, "%"),
        Figure("open", sum(int(r["open_count"]) for r in open_rows), open_source),
    ]
    return a


def whatsapp(row: dict[str, Any], source: str) -> Area:
    a = Area("whatsapp", "WhatsApp", "/whatsapp")
    sent, failed = int(row.get("sent_24h") or 0), int(row.get("failed_24h") or 0)
    if not row or (sent + failed + int(row.get("depth") or 0) + int(row.get("inbound_24h") or 0)) == 0:
        a.reasons.append("no WhatsApp traffic in the last 24 hours")
        return a
    a.status = GREEN
    share = failed / (sent + failed) if sent + failed else 0.0
    age = _f(row.get("oldest_pending_age_seconds"))
    if share >= WA_FAIL_RED:
        a.worse(RED, f"{share:.0%} of outbound messages failed (24 h)")
    elif share >= WA_FAIL_AMBER:
        a.worse(AMBER, f"{share:.1%} of outbound messages failed (24 h)")
    if age >= WA_AGE_RED:
        a.worse(RED, f"oldest pending message waits {age / 60:.0f} min")
    elif age >= WA_AGE_AMBER:
        a.worse(AMBER, f"oldest pending message waits {age / 60:.0f} min")
    if int(row.get("expired_leases") or 0):
        a.worse(RED, f"{row['expired_leases']} sends hold expired leases (sender died?)")
    a.figures = [
        Figure("sent 24 h", sent, source),
        Figure("read 24 h", int(row.get("read_24h") or 0), source),
        Figure("pending", int(row.get("depth") or 0), source),
    ]
    return a


def cache(rows: list[dict[str, Any]], route: dict[str, Any], source: str, route_source: str) -> Area:
    a = Area("cache", "Cache", "/cache")
    hits = sum(int(r["hits_24h"]) for r in rows)
    misses = sum(int(r["misses_24h"]) for r in rows)
    if hits + misses == 0:
        a.reasons.append("no cache lookups in the last 24 hours")
        return a
    a.status = GREEN
    rate = hits / (hits + misses)
    if rate < CACHE_HIT_RED:
        a.worse(RED, f"hit rate {rate:.0%} (24 h)")
    elif rate < CACHE_HIT_AMBER:
        a.worse(AMBER, f"hit rate {rate:.0%} (24 h)")
    a.figures = [
        Figure("hit rate", round(rate * 100, 1), source, "%"),
        Figure("entries", sum(int(r["live_entries"]) for r in rows), source),
    ]
    if route and route.get("hit_rate_24h") is not None:
        a.figures.append(Figure("route hit rate", round(_f(route["hit_rate_24h"]) * 100, 1), route_source, "%"))
    return a


def flags(rows: list[dict[str, Any]], source: str) -> Area:
    a = Area("flags", "Flags", "/flags")
    known = [r for r in rows if r["known"]]
    if not rows:
        a.reasons.append("no feature flag")
        return a
    a.status = GREEN
    unknown = [r for r in rows if not r["known"] and int(r["evaluations_24h"])]
    if unknown:
        keys = sorted({f"{r['key']} ({r['environment']})" for r in unknown})
        a.worse(AMBER, f"evaluated without a flag: {', '.join(keys[:3])}{' …' if len(keys) > 3 else ''}")
    a.figures = [
        Figure("flags", len(known), source),
        Figure("enabled", sum(1 for r in known if r["enabled"]), source),
        Figure("evaluations 24 h", sum(int(r["evaluations_24h"]) for r in rows), source),
    ]
    return a


def partitions(rows: list[dict[str, Any]], source: str) -> Area:
    a = Area("partitions", "Partitions", "/partitions")
    if not rows:
        a.reasons.append("no partitioned table")
        return a
    a.status = GREEN
    for r in rows:
        ahead = int(r["months_ahead"])
        if not r["current_month_covered"]:
            a.worse(RED, f"{r['parent']}: no partition for this month (rows go to DEFAULT)")
        elif ahead < 1:
            a.worse(RED, f"{r['parent']}: no partition for next month")
        elif ahead < 3:
            a.worse(AMBER, f"{r['parent']}: {ahead} months ahead (maintenance keeps 3)")
        if int(r["default_rows"]):
            a.worse(AMBER, f"{r['parent']}: {r['default_rows']} rows in DEFAULT")
    a.figures = [
        Figure("tables", len(rows), source),
        Figure("min months ahead", min(int(r["months_ahead"]) for r in rows), source),
    ]
    return a


def metrics(recent: list[dict[str, Any]], day: list[dict[str, Any]], source: str) -> Area:
    """recent: series over the last 15 minutes; day: the same over 24 hours."""
    a = Area("metrics", "Metrics", "/series")
    if not day:
        a.reasons.append("no metric in the last 24 hours")
        return a
    a.status = GREEN
    baseline = {(r["service_name"], r["metric_name"]): r for r in day}
    if not recent:
        a.worse(AMBER, "no metric sample in the last 15 minutes")
    for r in recent:
        base = baseline.get((r["service_name"], r["metric_name"]))
        if r["metric_type"] != "latency" or not base or not _f(base["p50"]):
            continue
        ratio = _f(r["p95"]) / _f(base["p50"])
        label = f"{r['service_name']} {r['metric_name']}: p95 (15 min) is {ratio:.1f}× the 24 h median"
        if ratio >= LATENCY_RATIO_RED:
            a.worse(RED, label)
        elif ratio >= LATENCY_RATIO_AMBER:
            a.worse(AMBER, label)
    a.figures = [
        Figure("series", len(day), source),
        Figure("samples 15 min", sum(int(r["samples"]) for r in recent), source),
    ]
    return a
