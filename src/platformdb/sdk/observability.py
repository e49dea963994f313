"""Observability: metrics (one, or a batch through COPY) and the audit log."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg

from platformdb.errors import InvalidInput, wrap_errors

METRIC_TYPES = ("latency", "error_rate", "throughput", "memory", "cpu", "counter", "gauge")
ACTOR_TYPES = ("user", "service", "system", "admin")

RECORD_METRIC = """
select public.record_metric(
    p_service_name => %(service_name)s, p_metric_type => %(metric_type)s,
    p_metric_name => %(metric_name)s, p_value => %(value)s::numeric, p_unit => %(unit)s,
    p_tags => %(tags)s::jsonb, p_recorded_at => %(recorded_at)s)
"""
RECORD_METRICS = "select public.record_metrics(p_metrics => %s::jsonb)"
COPY_METRICS = """
copy public.system_metrics
    (service_name, metric_type, metric_name, value, unit, tags, created_at) from stdin
"""
LOG_AUDIT_EVENT = """
select public.log_audit_event(
    p_actor_type => %(actor_type)s, p_action => %(action)s,
    p_resource_type => %(resource_type)s, p_actor_identifier => %(actor_identifier)s,
    p_resource_id => %(resource_id)s, p_metadata => %(metadata)s::jsonb,
    p_correlation_id => %(correlation_id)s, p_user_id => %(user_id)s, p_status => %(status)s,
    p_error_message => %(error_message)s)
"""


@dataclass(frozen=True)
class Metric:
    service_name: str
    metric_type: str
    metric_name: str
    value: float
    unit: str | None = None
    tags: Mapping[str, Any] = field(default_factory=dict)
    recorded_at: datetime | None = None

    def as_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "service_name": self.service_name,
            "metric_type": self.metric_type,
            "metric_name": self.metric_name,
            "value": self.value,
            "unit": self.unit,
            "tags": dict(self.tags),
        }
        if self.recorded_at is not None:
            d["recorded_at"] = self.recorded_at.isoformat()
        return d


def record_metric(
    conn: psycopg.Connection[Any],
    service_name: str,
    metric_type: str,
    metric_name: str,
    value: float,
    unit: str | None = None,
    tags: Mapping[str, Any] | None = None,
    recorded_at: datetime | None = None,
) -> UUID:
    """Record one sample through `record_metric`; returns its id."""
    with wrap_errors():
        row = conn.execute(
            RECORD_METRIC,
            {
                "service_name": service_name,
                "metric_type": metric_type,
                "metric_name": metric_name,
                "value": value,
                "unit": unit,
                "tags": json.dumps(dict(tags or {})),
                "recorded_at": recorded_at,
            },
        ).fetchone()
    assert row is not None
    return UUID(str(row[0]))


def record_metrics(conn: psycopg.Connection[Any], metrics: Iterable[Metric]) -> int:
    """Record many samples in one call of `record_metrics` (one statement); returns the count."""
    payload = json.dumps([m.as_json() for m in metrics])
    with wrap_errors():
        row = conn.execute(RECORD_METRICS, (payload,)).fetchone()
    return int(row[0]) if row else 0


def copy_metrics(conn: psycopg.Connection[Any], metrics: Iterable[Metric]) -> int:
    """The fastest ingest path: COPY into system_metrics (CHECK constraints still apply).

    Needs INSERT on system_metrics (service_role or the owner). Validates metric types before
    sending so a bad row fails the batch with a clear message.
    """
    n = 0
    with wrap_errors(), conn.cursor() as cur, cur.copy(COPY_METRICS) as copy:
        for m in metrics:
            if m.metric_type not in METRIC_TYPES:
                raise InvalidInput(f"metric_type: unknown metric type {m.metric_type!r}")
            copy.write_row(
                (
                    m.service_name,
                    m.metric_type,
                    m.metric_name,
                    m.value,
                    m.unit,
                    json.dumps(dict(m.tags)),
                    m.recorded_at or datetime.now().astimezone(),
                )
            )
            n += 1
    return n


def log_audit_event(
    conn: psycopg.Connection[Any],
    actor_type: str,
    action: str,
    resource_type: str,
    actor_identifier: str | None = None,
    resource_id: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    correlation_id: str | None = None,
    user_id: UUID | str | None = None,
    status: str = "success",
    error_message: str | None = None,
) -> UUID:
    """Append an audit entry through `log_audit_event`; returns its id."""
    with wrap_errors():
        row = conn.execute(
            LOG_AUDIT_EVENT,
            {
                "actor_type": actor_type,
                "action": action,
                "resource_type": resource_type,
                "actor_identifier": actor_identifier,
                "resource_id": resource_id,
                "metadata": json.dumps(dict(metadata or {})),
                "correlation_id": correlation_id,
                "user_id": str(user_id) if user_id else None,
                "status": status,
                "error_message": error_message,
            },
        ).fetchone()
    assert row is not None
    return UUID(str(row[0]))
