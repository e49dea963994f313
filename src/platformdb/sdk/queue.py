"""Message queue: idempotent enqueue (one or a batch), SKIP LOCKED claims under a lease,
ack/nack with exponential backoff and jitter, dead letters and redrive, lease reaping and
retention. The worker (`platformdb worker`) drives these; they are usable on their own.

Wake-ups: an enqueue sends NOTIFY on `NOTIFY_CHANNEL` with the queue name as payload when
the message is ready now and its queue had no other ready message (a queue that has one
already woke its workers, or they are busy and claim again when done; their polling covers
the remaining race); a batch enqueue sends one per call. PostgreSQL coalesces identical
notifications within a transaction.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import dict_row

from platformdb.errors import wrap_errors

NOTIFY_CHANNEL = "platformdb_queue"

ENQUEUE_MESSAGE = """
select public.enqueue_message(
    p_queue_name => %(queue_name)s, p_message_type => %(message_type)s,
    p_payload => %(payload)s::jsonb, p_priority => %(priority)s,
    p_scheduled_at => %(scheduled_at)s, p_idempotency_key => %(idempotency_key)s,
    p_max_attempts => %(max_attempts)s, p_correlation_id => %(correlation_id)s)
"""
ENQUEUE_MESSAGES = "select public.enqueue_messages(p_queue_name => %s, p_messages => %s::jsonb)"
CLAIM_MESSAGES = """
select * from public.claim_messages(
    p_queue_name => %s, p_limit => %s, p_lease_seconds => %s, p_worker_id => %s)
"""
# one statement, one transaction: the acks first (the outer side of the join), then the claim;
# `commit_mode` 'off' commits this one transaction asynchronously (see ack_and_claim_messages)
ACK_AND_CLAIM_MESSAGES = """
with mode as materialized (
    select pg_catalog.set_config('synchronous_commit', %s, true) as commit_mode
), acked as materialized (
    select public.ack_messages(p_message_ids => %s::uuid[], p_worker_id => %s) as platformdb_acked
      from mode
)
select a.platformdb_acked, c.*
  from acked a
  left join lateral public.claim_messages(
      p_queue_name => %s, p_limit => %s, p_lease_seconds => %s, p_worker_id => %s) c on true
"""
ACK_MESSAGE = "select public.ack_message(p_message_id => %s, p_worker_id => %s)"
ACK_MESSAGES = "select public.ack_messages(p_message_ids => %s::uuid[], p_worker_id => %s)"
NACK_MESSAGE = """
select public.nack_message(
    p_message_id => %s, p_error => %s, p_retry_in_seconds => %s, p_worker_id => %s,
    p_retryable => %s)
"""
RELEASE_MESSAGES = "select public.release_messages(p_message_ids => %s::uuid[], p_worker_id => %s)"
EXTEND_LEASES = """
select public.extend_message_leases(
    p_message_ids => %s::uuid[], p_lease_seconds => %s, p_worker_id => %s)
"""
REDRIVE = "select public.redrive_dead_letters(p_queue_name => %s, p_limit => %s)"
REAP = "select public.reap_expired_leases()"
PURGE = "select public.purge_finished_queue_rows(p_older_than => %s, p_batch_size => %s)"
STATS = "select * from public.message_queue_stats order by queue_name"


@dataclass(frozen=True)
class Message:
    """A claimed message, as the handler sees it."""

    id: UUID
    queue_name: str
    message_type: str
    payload: Any
    priority: int
    attempt: int
    max_attempts: int
    errors: list[dict[str, Any]]
    idempotency_key: str | None
    correlation_id: str | None
    created_at: datetime
    scheduled_at: datetime
    locked_until: datetime | None
    claimed_by: str | None

    @classmethod
    def from_row(cls, r: Mapping[str, Any]) -> Message:
        return cls(
            id=r["id"],
            queue_name=r["queue_name"],
            message_type=r["message_type"],
            payload=r["payload"],
            priority=int(r["priority"]),
            attempt=int(r["attempt"]),
            max_attempts=int(r["max_attempts"]),
            errors=list(r["errors"] or []),
            idempotency_key=r["idempotency_key"],
            correlation_id=r["correlation_id"],
            created_at=r["created_at"],
            scheduled_at=r["scheduled_at"],
            locked_until=r["locked_until"],
            claimed_by=r["claimed_by"],
        )


@dataclass(frozen=True)
class NewMessage:
    """One message of an `enqueue_messages` batch."""

    message_type: str
    payload: Any
    priority: int | None = None
    scheduled_at: datetime | None = None
    idempotency_key: str | None = None
    max_attempts: int | None = None
    correlation_id: str | None = None

    def as_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"message_type": self.message_type, "payload": self.payload}
        if self.priority is not None:
            d["priority"] = self.priority
        if self.scheduled_at is not None:
            d["scheduled_at"] = self.scheduled_at.isoformat()
        if self.idempotency_key is not None:
            d["idempotency_key"] = self.idempotency_key
        if self.max_attempts is not None:
            d["max_attempts"] = self.max_attempts
        if self.correlation_id is not None:
            d["correlation_id"] = self.correlation_id
        return d


def enqueue_message(
    conn: psycopg.Connection[Any],
    queue_name: str,
    message_type: str,
    payload: Any,
    *,
    priority: int = 5,
    scheduled_at: datetime | None = None,
    idempotency_key: str | None = None,
    max_attempts: int = 5,
    correlation_id: str | None = None,
) -> UUID:
    """Enqueue one message; the same idempotency key on the same queue returns the same id."""
    with wrap_errors():
        row = conn.execute(
            ENQUEUE_MESSAGE,
            {
                "queue_name": queue_name,
                "message_type": message_type,
                "payload": json.dumps(payload),
                "priority": priority,
                "scheduled_at": scheduled_at,
                "idempotency_key": idempotency_key,
                "max_attempts": max_attempts,
                "correlation_id": correlation_id,
            },
        ).fetchone()
    assert row is not None
    return UUID(str(row[0]))


def enqueue_messages(conn: psycopg.Connection[Any], queue_name: str, messages: Iterable[NewMessage]) -> int:
    """Enqueue a batch in one statement (at most 10000); returns how many were new."""
    payload = json.dumps([m.as_json() for m in messages])
    with wrap_errors():
        row = conn.execute(ENQUEUE_MESSAGES, (queue_name, payload)).fetchone()
    return int(row[0]) if row else 0


def claim_messages(
    conn: psycopg.Connection[Any],
    queue_name: str,
    limit: int = 10,
    lease_seconds: int = 30,
    worker_id: str | None = None,
) -> list[Message]:
    """Claim up to `limit` ready messages under a lease (priority, then schedule order)."""
    with wrap_errors(), conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(CLAIM_MESSAGES, (queue_name, limit, lease_seconds, worker_id)).fetchall()
    return [Message.from_row(r) for r in rows]


def ack_and_claim_messages(
    conn: psycopg.Connection[Any],
    ack_ids: Sequence[UUID],
    queue_name: str,
    limit: int = 10,
    lease_seconds: int = 30,
    worker_id: str | None = None,
    synchronous: bool = True,
) -> tuple[int, list[Message]]:
    """`ack_messages(ack_ids)` then `claim_messages(...)` in one statement (one round trip,
    one commit): returns how many were completed and the newly claimed messages.

    `synchronous=False` commits it without waiting for the WAL flush (it is visible at once;
    only a database crash within the next few hundred ms can forget it, and then those
    messages are delivered again, as after a worker crash). Use it only when the statement
    runs in its own transaction (autocommit), as the worker does: inside a caller's
    transaction it would apply to that whole transaction.
    """
    mode = "on" if synchronous else "off"
    with wrap_errors(), conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            ACK_AND_CLAIM_MESSAGES, (mode, list(ack_ids), worker_id, queue_name, limit, lease_seconds, worker_id)
        ).fetchall()
    acked = int(rows[0]["platformdb_acked"]) if rows else 0
    return acked, [Message.from_row(r) for r in rows if r["id"] is not None]


def ack_message(conn: psycopg.Connection[Any], message_id: UUID, worker_id: str | None = None) -> bool:
    """Complete a claimed message. False when it already was; LeaseLost when lost."""
    with wrap_errors():
        row = conn.execute(ACK_MESSAGE, (message_id, worker_id)).fetchone()
    return bool(row and row[0])


def ack_messages(conn: psycopg.Connection[Any], message_ids: Sequence[UUID], worker_id: str | None = None) -> int:
    """Complete many claimed messages in one statement; returns how many were completed."""
    with wrap_errors():
        row = conn.execute(ACK_MESSAGES, (list(message_ids), worker_id)).fetchone()
    return int(row[0]) if row else 0


def nack_message(
    conn: psycopg.Connection[Any],
    message_id: UUID,
    error: str,
    *,
    retry_in_seconds: int | None = None,
    worker_id: str | None = None,
    retryable: bool = True,
) -> str:
    """Record a failed attempt; returns the new state (retryable or dead_letter)."""
    with wrap_errors():
        row = conn.execute(NACK_MESSAGE, (message_id, error, retry_in_seconds, worker_id, retryable)).fetchone()
    assert row is not None
    return str(row[0])


def release_messages(conn: psycopg.Connection[Any], message_ids: Sequence[UUID], worker_id: str | None = None) -> int:
    """Return claimed messages to the queue without counting the attempt."""
    with wrap_errors():
        row = conn.execute(RELEASE_MESSAGES, (list(message_ids), worker_id)).fetchone()
    return int(row[0]) if row else 0


def extend_message_leases(
    conn: psycopg.Connection[Any],
    message_ids: Sequence[UUID],
    lease_seconds: int,
    worker_id: str | None = None,
) -> int:
    with wrap_errors():
        row = conn.execute(EXTEND_LEASES, (list(message_ids), lease_seconds, worker_id)).fetchone()
    return int(row[0]) if row else 0


def redrive_dead_letters(conn: psycopg.Connection[Any], queue_name: str, limit: int = 100) -> int:
    """Move dead letters back to the queue (attempt reset, error history kept)."""
    with wrap_errors():
        row = conn.execute(REDRIVE, (queue_name, limit)).fetchone()
    return int(row[0]) if row else 0


def reap_expired_leases(conn: psycopg.Connection[Any]) -> int:
    """Return expired messages and jobs to their queues (counting the attempt)."""
    with wrap_errors():
        row = conn.execute(REAP).fetchone()
    return int(row[0]) if row else 0


def purge_finished(
    conn: psycopg.Connection[Any],
    older_than: timedelta | None = None,
    batch_size: int = 10000,
    max_batches: int = 1000,
) -> int:
    """Delete finished queue and job rows past retention, batch by batch; returns the total.

    Each batch is its own statement (and transaction when `conn` is in autocommit), so a
    big backlog never holds locks for long.
    """
    total = 0
    for _ in range(max_batches):
        with wrap_errors():
            row = conn.execute(PURGE, (older_than, batch_size)).fetchone()
        n = int(row[0]) if row else 0
        total += n
        if n == 0:
            break
    return total


def queue_stats(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    with wrap_errors(), conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(STATS).fetchall()
