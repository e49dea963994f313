"""Every query the dashboard and /metrics run, next to the function that runs it.

Each is a call of one ``monitoring_*`` function (migration 20260401170000), which is all
the read-only role may execute. ``SOURCES`` maps each panel to the SQL object its numbers
come from (the capability view a function exposes, or the function itself): the pages link
every number there (``/sql/<name>`` shows the definition and comment from the catalog).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import psycopg

Conn = psycopg.Connection[Any]


@dataclass(frozen=True)
class Window:
    """A selectable time window and the bucket its charts use."""

    key: str
    label: str
    span: timedelta
    bucket: timedelta


WINDOWS: dict[str, Window] = {
    w.key: w
    for w in (
        Window("1h", "1 hour", timedelta(hours=1), timedelta(minutes=1)),
        Window("6h", "6 hours", timedelta(hours=6), timedelta(minutes=5)),
        Window("24h", "24 hours", timedelta(hours=24), timedelta(minutes=30)),
        Window("7d", "7 days", timedelta(days=7), timedelta(hours=4)),
    )
}


def window(key: str | None, default: str = "24h") -> Window:
    return WINDOWS.get(key or "", WINDOWS[default])


SERVICES = "select * from public.monitoring_services(p_limit => %(limit)s)"
QUEUES = "select * from public.monitoring_queues(p_limit => %(limit)s)"
JOBS = "select * from public.monitoring_jobs(p_limit => %(limit)s)"
DEAD_LETTERS = "select * from public.monitoring_dead_letters(p_limit => %(limit)s)"
THROUGHPUT = "select * from public.monitoring_throughput(p_window => %(window)s, p_bucket => %(bucket)s)"
WHATSAPP = "select * from public.monitoring_whatsapp()"
WHATSAPP_SESSIONS = "select * from public.monitoring_whatsapp_sessions()"
WHATSAPP_FAILURES = "select * from public.monitoring_whatsapp_failures(p_window => %(window)s, p_limit => %(limit)s)"
WHATSAPP_QUARANTINE = "select * from public.monitoring_whatsapp_quarantine(p_limit => %(limit)s)"
WHATSAPP_COSTS = "select * from public.monitoring_whatsapp_costs(p_window => %(window)s, p_bucket => %(bucket)s)"
PAYMENT_VOLUME = "select * from public.monitoring_payment_volume(p_window => %(window)s, p_bucket => %(bucket)s)"
PAYMENT_OPEN = "select * from public.monitoring_payment_open()"
CACHE = "select * from public.monitoring_cache()"
ROUTE_CACHE = "select * from public.monitoring_route_cache()"
CACHE_HIT_RATE = "select * from public.monitoring_cache_hit_rate(p_window => %(window)s)"
FLAGS = "select * from public.monitoring_flags(p_limit => %(limit)s)"
FLAG_MODEL = "select * from public.monitoring_flag_model(p_limit => %(limit)s)"
FLAG_SEGMENTS = "select * from public.monitoring_flag_segments(p_limit => %(limit)s)"
PARTITIONS = "select * from public.monitoring_partitions()"
PARTITION_COVERAGE = "select * from public.monitoring_partition_coverage()"
MAINTENANCE = "select * from public.monitoring_maintenance()"
METRIC_SERIES = "select * from public.monitoring_metric_series(p_window => %(window)s, p_limit => %(limit)s)"
METRIC_TIMESERIES = """
select * from public.monitoring_metric_timeseries(
    p_service_name => %(service)s, p_metric_name => %(metric)s,
    p_window => %(window)s, p_bucket => %(bucket)s)
"""
QUERY_STATS_STATUS = "select * from public.monitoring_query_stats_status()"
QUERY_STATS = "select * from public.monitoring_query_stats(p_limit => %(limit)s)"
TOP_STATEMENTS = "select * from public.monitoring_top_statements(p_limit => %(limit)s)"

# panel -> the SQL object its numbers come from
SOURCES: dict[str, str] = {
    "services": "service_health_overview",
    "queues": "message_queue_stats",
    "jobs": "background_job_stats",
    "dead_letters": "monitoring_dead_letters",
    "throughput": "monitoring_throughput",
    "whatsapp": "whatsapp_queue_stats",
    "whatsapp_sessions": "whatsapp_session_stats",
    "whatsapp_failures": "monitoring_whatsapp_failures",
    "whatsapp_quarantine": "monitoring_whatsapp_quarantine",
    "whatsapp_costs": "monitoring_whatsapp_costs",
    "payment_volume": "monitoring_payment_volume",
    "payment_open": "monitoring_payment_open",
    "cache": "cache_stats",
    "route_cache": "route_cache_stats",
    "cache_hit_rate": "monitoring_cache_hit_rate",
    "flags": "feature_flag_overview",
    "flag_model": "monitoring_flag_model",
    "flag_segments": "monitoring_flag_segments",
    "partitions": "monitoring_partitions",
    "partition_coverage": "partition_coverage",
    "maintenance": "monitoring_maintenance",
    "metric_series": "monitoring_metric_series",
    "metric_timeseries": "monitoring_metric_timeseries",
    "query_stats": "monitoring_query_stats",
    "top_statements": "monitoring_top_statements",
}
# the view a function exposes, for the definition page
EXPOSED_BY: dict[str, str] = {
    "service_health_overview": "monitoring_services",
    "message_queue_stats": "monitoring_queues",
    "background_job_stats": "monitoring_jobs",
    "whatsapp_queue_stats": "monitoring_whatsapp",
    "whatsapp_session_stats": "monitoring_whatsapp_sessions",
    "cache_stats": "monitoring_cache",
    "route_cache_stats": "monitoring_route_cache",
    "feature_flag_overview": "monitoring_flags",
    "partition_coverage": "monitoring_partition_coverage",
}


def rows(conn: Conn, query: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    return list(conn.execute(query, params or {}).fetchall())


def one(conn: Conn, query: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    row = conn.execute(query, params or {}).fetchone()
    return dict(row) if row else {}


def services(conn: Conn, limit: int = 500) -> list[dict[str, Any]]:
    return rows(conn, SERVICES, {"limit": limit})


def queues(conn: Conn, limit: int = 200) -> list[dict[str, Any]]:
    return rows(conn, QUEUES, {"limit": limit})


def jobs(conn: Conn, limit: int = 200) -> list[dict[str, Any]]:
    return rows(conn, JOBS, {"limit": limit})


def dead_letters(conn: Conn, limit: int = 50) -> list[dict[str, Any]]:
    return rows(conn, DEAD_LETTERS, {"limit": limit})


def throughput(conn: Conn, w: Window) -> list[dict[str, Any]]:
    return rows(conn, THROUGHPUT, {"window": w.span, "bucket": w.bucket})


def whatsapp(conn: Conn) -> dict[str, Any]:
    return one(conn, WHATSAPP)


def whatsapp_sessions(conn: Conn) -> list[dict[str, Any]]:
    return rows(conn, WHATSAPP_SESSIONS)


def whatsapp_failures(conn: Conn, span: timedelta = timedelta(hours=24), limit: int = 20) -> list[dict[str, Any]]:
    return rows(conn, WHATSAPP_FAILURES, {"window": span, "limit": limit})


def whatsapp_quarantine(conn: Conn, limit: int = 20) -> list[dict[str, Any]]:
    return rows(conn, WHATSAPP_QUARANTINE, {"limit": limit})


def whatsapp_costs(
    conn: Conn, span: timedelta = timedelta(days=7), bucket: timedelta = timedelta(days=1)
) -> list[dict[str, Any]]:
    return rows(conn, WHATSAPP_COSTS, {"window": span, "bucket": bucket})


def payment_volume(conn: Conn, w: Window) -> list[dict[str, Any]]:
    return rows(conn, PAYMENT_VOLUME, {"window": w.span, "bucket": w.bucket})


def payment_open(conn: Conn) -> list[dict[str, Any]]:
    return rows(conn, PAYMENT_OPEN)


def cache(conn: Conn) -> list[dict[str, Any]]:
    return rows(conn, CACHE)


def route_cache(conn: Conn) -> dict[str, Any]:
    return one(conn, ROUTE_CACHE)


def cache_hit_rate(conn: Conn, span: timedelta) -> list[dict[str, Any]]:
    return rows(conn, CACHE_HIT_RATE, {"window": span})


def flags(conn: Conn, limit: int = 200) -> list[dict[str, Any]]:
    return rows(conn, FLAGS, {"limit": limit})


def flag_model(conn: Conn, limit: int = 200) -> list[dict[str, Any]]:
    return rows(conn, FLAG_MODEL, {"limit": limit})


def flag_segments(conn: Conn, limit: int = 200) -> list[dict[str, Any]]:
    return rows(conn, FLAG_SEGMENTS, {"limit": limit})


def partitions(conn: Conn) -> list[dict[str, Any]]:
    return rows(conn, PARTITIONS)


def partition_coverage(conn: Conn) -> list[dict[str, Any]]:
    return rows(conn, PARTITION_COVERAGE)


def maintenance(conn: Conn) -> list[dict[str, Any]]:
    return rows(conn, MAINTENANCE)


def metric_series(conn: Conn, span: timedelta, limit: int = 100) -> list[dict[str, Any]]:
    return rows(conn, METRIC_SERIES, {"window": span, "limit": limit})


def metric_timeseries(conn: Conn, service: str, metric: str, w: Window) -> list[dict[str, Any]]:
    return rows(conn, METRIC_TIMESERIES, {"service": service, "metric": metric, "window": w.span, "bucket": w.bucket})


def query_stats_status(conn: Conn) -> dict[str, Any]:
    return one(conn, QUERY_STATS_STATUS)


def query_stats(conn: Conn, limit: int = 50) -> list[dict[str, Any]]:
    return rows(conn, QUERY_STATS, {"limit": limit})


def top_statements(conn: Conn, limit: int = 20) -> list[dict[str, Any]]:
    return rows(conn, TOP_STATEMENTS, {"limit": limit})


# ---- the definition page (catalog only; any role may read the catalog) ---------------

DEFINITION = """
select 'view' as kind, c.relname::text as name, pg_catalog.pg_get_viewdef(c.oid, true) as definition,
       pg_catalog.obj_description(c.oid, 'pg_class') as comment
  from pg_catalog.pg_class c
 where c.relnamespace = 'public'::regnamespace and c.relkind = 'v' and c.relname = %(name)s
union all
select 'function', p.oid::regprocedure::text, pg_catalog.pg_get_functiondef(p.oid),
       pg_catalog.obj_description(p.oid, 'pg_proc')
  from pg_catalog.pg_proc p
 where p.pronamespace = 'public'::regnamespace and p.proname = %(name)s and p.prokind = 'f'
"""


def definition(conn: Conn, name: str) -> list[dict[str, Any]]:
    """The catalog definition of one of the SQL objects the dashboard names (else [])."""
    allowed = set(SOURCES.values()) | set(EXPOSED_BY.values())
    if name not in allowed:
        return []
    return rows(conn, DEFINITION, {"name": name})


REPLICA_STATUS = """
select pg_catalog.pg_is_in_recovery() as in_recovery,
       case when not pg_catalog.pg_is_in_recovery() then 0.0
            when pg_catalog.pg_last_wal_receive_lsn() = pg_catalog.pg_last_wal_replay_lsn() then 0.0
            else coalesce(extract(epoch from now() - pg_catalog.pg_last_xact_replay_timestamp()), 0.0)
       end::float8 as lag_seconds
"""


def replica_status(conn: Conn) -> dict[str, Any]:
    """Whether this connection reads a standby, and its replay lag in seconds (0 when it has
    replayed all it received, or on the primary)."""
    row = conn.execute(REPLICA_STATUS).fetchone()
    assert row is not None
    return dict(row)
