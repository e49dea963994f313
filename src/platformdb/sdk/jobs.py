"""Background jobs: idempotent scheduling, claims whose lease is the job's timeout,
heartbeats, completion with a result, failures with backoff or straight to dead letter,
cancellation, and recurring jobs from cron expressions.

Where cron lives: the database stores each schedule (expression, time zone, next run) and
checks the expression's shape; the fire times are computed here with croniter, by
`run_due_recurring_jobs`, which the worker calls every second. Each slot becomes exactly
one job (idempotency key `recurring:<schedule id>:<slot>`), however many workers run, and
slots missed while no worker ran are coalesced into one run.

Wake-ups: scheduling a job due now sends NOTIFY on `NOTIFY_CHANNEL` with the job type.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import psycopg
from croniter import CroniterError, croniter
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from platformdb.errors import InvalidInput, wrap_errors

log = logging.getLogger("platformdb.jobs")

NOTIFY_CHANNEL = "platformdb_jobs"

SCHEDULE_JOB = """
select public.schedule_job(
    p_job_type => %(job_type)s, p_job_name => %(job_name)s, p_payload => %(payload)s::jsonb,
    p_scheduled_at => %(scheduled_at)s, p_priority => %(priority)s,
    p_idempotency_key => %(idempotency_key)s, p_max_attempts => %(max_attempts)s,
    p_timeout_seconds => %(timeout_seconds)s)
"""
CLAIM_JOBS = """
select * from public.claim_jobs(p_job_types => %s::text[], p_limit => %s, p_worker_id => %s)
"""
HEARTBEAT_JOB = """
select public.heartbeat_job(p_job_id => %s, p_extend_seconds => %s, p_worker_id => %s)
"""
COMPLETE_JOB = "select public.complete_job(p_job_id => %s, p_result => %s, p_worker_id => %s)"
FAIL_JOB = """
select public.fail_job(
    p_job_id => %s, p_error => %s, p_retryable => %s, p_worker_id => %s,
    p_retry_in_seconds => %s)
"""
CANCEL_JOB = "select public.cancel_job(p_job_id => %s)"
RELEASE_JOBS = "select public.release_jobs(p_job_ids => %s::uuid[], p_worker_id => %s)"
REDRIVE_JOBS = "select public.redrive_dead_letter_jobs(p_job_type => %s, p_limit => %s)"
SCHEDULE_RECURRING = """
select public.schedule_recurring_job(
    p_name => %(name)s, p_job_type => %(job_type)s, p_cron_expression => %(cron)s,
    p_payload => %(payload)s::jsonb, p_priority => %(priority)s, p_timezone => %(timezone)s,
    p_max_attempts => %(max_attempts)s, p_timeout_seconds => %(timeout_seconds)s,
    p_enabled => %(enabled)s)
"""
UNSCHEDULE_RECURRING = "select public.unschedule_recurring_job(p_name => %s)"
CLAIM_DUE_RECURRING = """
select id, name, cron_expression, timezone, next_run_at
  from public.claim_due_recurring_jobs(p_limit => %s)
"""
FIRE_RECURRING = """
select public.fire_recurring_job(
    p_recurring_job_id => %s, p_scheduled_for => %s, p_next_run_at => %s)
"""
FAIL_RECURRING = "select public.fail_recurring_job(p_recurring_job_id => %s, p_error => %s)"
STATS = "select * from public.background_job_stats order by job_type"


@dataclass(frozen=True)
class Job:
    """A claimed job, as the handler sees it."""

    id: UUID
    job_type: str
    job_name: str
    payload: Any
    priority: int
    attempt: int
    max_attempts: int
    timeout_seconds: int
    errors: list[dict[str, Any]]
    idempotency_key: str | None
    recurring_job_id: UUID | None
    created_at: datetime
    scheduled_at: datetime
    locked_until: datetime | None
    claimed_by: str | None

    @classmethod
    def from_row(cls, r: Mapping[str, Any]) -> Job:
        return cls(
            id=r["id"],
            job_type=r["job_type"],
            job_name=r["job_name"],
            payload=r["payload"],
            priority=int(r["priority"]),
            attempt=int(r["attempt"]),
            max_attempts=int(r["max_attempts"]),
            timeout_seconds=int(r["timeout_seconds"]),
            errors=list(r["errors"] or []),
            idempotency_key=r["idempotency_key"],
            recurring_job_id=r["recurring_job_id"],
            created_at=r["created_at"],
            scheduled_at=r["scheduled_at"],
            locked_until=r["locked_until"],
            claimed_by=r["claimed_by"],
        )


def schedule_job(
    conn: psycopg.Connection[Any],
    job_type: str,
    job_name: str,
    payload: Any,
    *,
    scheduled_at: datetime | None = None,
    priority: int = 5,
    idempotency_key: str | None = None,
    max_attempts: int = 5,
    timeout_seconds: int = 300,
) -> UUID:
    """Schedule a job; the same idempotency key for the same type returns the same id."""
    with wrap_errors():
        row = conn.execute(
            SCHEDULE_JOB,
            {
                "job_type": job_type,
                "job_name": job_name,
                "payload": json.dumps(payload),
                "scheduled_at": scheduled_at,
                "priority": priority,
                "idempotency_key": idempotency_key,
                "max_attempts": max_attempts,
                "timeout_seconds": timeout_seconds,
            },
        ).fetchone()
    assert row is not None
    return UUID(str(row[0]))


def claim_jobs(
    conn: psycopg.Connection[Any],
    job_types: Sequence[str] | None = None,
    limit: int = 10,
    worker_id: str | None = None,
) -> list[Job]:
    """Claim up to `limit` due jobs of these types (None = all); lease = each job's timeout."""
    types = list(job_types) if job_types is not None else None
    with wrap_errors(), conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(CLAIM_JOBS, (types, limit, worker_id)).fetchall()
    return [Job.from_row(r) for r in rows]


def heartbeat_job(
    conn: psycopg.Connection[Any],
    job_id: UUID,
    extend_seconds: int | None = None,
    worker_id: str | None = None,
) -> datetime:
    """Extend a running job's lease; returns its new end. LeaseLost when it was lost."""
    with wrap_errors():
        row = conn.execute(HEARTBEAT_JOB, (job_id, extend_seconds, worker_id)).fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


def complete_job(
    conn: psycopg.Connection[Any],
    job_id: UUID,
    result: Any = None,
    worker_id: str | None = None,
) -> bool:
    """Complete a running job. False when it already was; LeaseLost when lost."""
    with wrap_errors():
        row = conn.execute(COMPLETE_JOB, (job_id, Jsonb(result) if result is not None else None, worker_id)).fetchone()
    return bool(row and row[0])


def fail_job(
    conn: psycopg.Connection[Any],
    job_id: UUID,
    error: str,
    retryable: bool = True,
    worker_id: str | None = None,
    retry_in_seconds: int | None = None,
) -> str:
    """Record a failed attempt; returns the new state (retryable or dead_letter)."""
    with wrap_errors():
        row = conn.execute(FAIL_JOB, (job_id, error, retryable, worker_id, retry_in_seconds)).fetchone()
    assert row is not None
    return str(row[0])


def cancel_job(conn: psycopg.Connection[Any], job_id: UUID) -> bool:
    with wrap_errors():
        row = conn.execute(CANCEL_JOB, (job_id,)).fetchone()
    return bool(row and row[0])


def release_jobs(conn: psycopg.Connection[Any], job_ids: Sequence[UUID], worker_id: str | None = None) -> int:
    """Return running jobs to the queue without counting the attempt."""
    with wrap_errors():
        row = conn.execute(RELEASE_JOBS, (list(job_ids), worker_id)).fetchone()
    return int(row[0]) if row else 0


def redrive_dead_letter_jobs(conn: psycopg.Connection[Any], job_type: str, limit: int = 100) -> int:
    with wrap_errors():
        row = conn.execute(REDRIVE_JOBS, (job_type, limit)).fetchone()
    return int(row[0]) if row else 0


def job_stats(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    with wrap_errors(), conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(STATS).fetchall()


# ---- recurring jobs -----------------------------------------------------------------


def next_fire_time(cron_expression: str, timezone: str, after: datetime) -> datetime:
    """The first slot of `cron_expression` (read in `timezone`) strictly after `after`, in UTC."""
    tz = ZoneInfo(timezone)
    nxt: datetime = croniter(cron_expression, after.astimezone(tz)).get_next(datetime)
    return nxt.astimezone(UTC)


def schedule_recurring_job(
    conn: psycopg.Connection[Any],
    name: str,
    job_type: str,
    cron_expression: str,
    payload: Any = None,
    *,
    priority: int = 5,
    timezone: str = "UTC",
    max_attempts: int = 5,
    timeout_seconds: int = 300,
    enabled: bool = True,
) -> UUID:
    """Create or update (by name) a recurring schedule; croniter validates the expression."""
    if not croniter.is_valid(cron_expression):
        raise InvalidInput(f"cron_expression: {cron_expression!r} is not a valid cron expression")
    with wrap_errors():
        row = conn.execute(
            SCHEDULE_RECURRING,
            {
                "name": name,
                "job_type": job_type,
                "cron": cron_expression,
                "payload": json.dumps({} if payload is None else payload),
                "priority": priority,
                "timezone": timezone,
                "max_attempts": max_attempts,
                "timeout_seconds": timeout_seconds,
                "enabled": enabled,
            },
        ).fetchone()
    assert row is not None
    return UUID(str(row[0]))


def unschedule_recurring_job(conn: psycopg.Connection[Any], name: str) -> bool:
    with wrap_errors():
        row = conn.execute(UNSCHEDULE_RECURRING, (name,)).fetchone()
    return bool(row and row[0])


def run_due_recurring_jobs(conn: psycopg.Connection[Any], limit: int = 100) -> int:
    """Fire every due recurring schedule once; returns how many jobs were scheduled.

    One transaction: the due schedules are locked (SKIP LOCKED) so concurrent workers split
    them; each gets its next slot from croniter, computed after max(now, slot) so a backlog
    of missed slots fires once. A schedule croniter cannot evaluate is disabled with the
    reason in `last_error`.
    """
    fired = 0
    with wrap_errors(), conn.transaction():
        now_row = conn.execute("select now()").fetchone()
        assert now_row is not None
        now: datetime = now_row[0]
        due = conn.execute(CLAIM_DUE_RECURRING, (limit,)).fetchall()
        for rid, name, expr, tz, next_run_at in due:
            try:
                if next_run_at is None:
                    slot = None
                    nxt = next_fire_time(expr, tz, now)
                else:
                    slot = next_run_at
                    nxt = next_fire_time(expr, tz, max(now, next_run_at))
            except (CroniterError, ValueError, KeyError, ZoneInfoNotFoundError) as exc:
                log.warning("recurring job %s: cannot evaluate %r: %s", name, expr, exc)
                conn.execute(FAIL_RECURRING, (rid, f"cannot evaluate {expr!r}: {exc}"))
                continue
            try:
                with conn.transaction():
                    row = conn.execute(FIRE_RECURRING, (rid, slot, nxt)).fetchone()
            except psycopg.Error as exc:  # e.g. fired meanwhile: skip this one, keep the rest
                log.warning("recurring job %s: not fired: %s", name, exc)
                continue
            if row is not None and row[0] is not None:
                fired += 1
    return fired
