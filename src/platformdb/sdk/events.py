"""Event store: append with optimistic concurrency, read by stream, category or globally.

Appends go through `append_event`/`append_events` (the service has no direct INSERT); a
wrong expected version raises `platformdb.errors.WrongExpectedVersion` (SQLSTATE PD003)
and writes nothing. `read_all`/`read_category` never return a global position while a
lower one could still be committed by a slower writer, so a subscriber that stores the
last position it processed (`catch_up`) never skips an event.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import dict_row

from platformdb.errors import wrap_errors

APPEND_EVENT = """
select public.append_event(
    p_aggregate_id => %(aggregate_id)s, p_aggregate_type => %(aggregate_type)s,
    p_event_type => %(event_type)s, p_payload => %(payload)s::jsonb,
    p_correlation_id => %(correlation_id)s, p_metadata => %(metadata)s::jsonb,
    p_expected_version => %(expected_version)s, p_event_id => %(event_id)s,
    p_causation_id => %(causation_id)s, p_user_id => %(user_id)s)
"""
APPEND_EVENTS = """
select id, event_version, global_position from public.append_events(
    p_aggregate_type => %(aggregate_type)s, p_aggregate_id => %(aggregate_id)s,
    p_events => %(events)s::jsonb, p_expected_version => %(expected_version)s,
    p_correlation_id => %(correlation_id)s, p_user_id => %(user_id)s)
"""
GET_AGGREGATE_EVENTS = """
select * from public.get_aggregate_events(
    p_aggregate_type => %s, p_aggregate_id => %s, p_limit => %s)
"""
READ_STREAM = """
select * from public.read_stream(
    p_aggregate_type => %s, p_aggregate_id => %s, p_from_version => %s, p_limit => %s)
"""
READ_CATEGORY = """
select * from public.read_category(p_aggregate_type => %s, p_from_position => %s, p_limit => %s)
"""
READ_ALL = "select * from public.read_all(p_from_position => %s, p_limit => %s)"
STREAM_VERSION = "select public.stream_version(p_aggregate_type => %s, p_aggregate_id => %s)"
SAVE_CHECKPOINT = """
select public.save_subscription_checkpoint(
    p_subscription_name => %s, p_position => %s, p_allow_rewind => %s)
"""
GET_CHECKPOINT = "select public.get_subscription_checkpoint(p_subscription_name => %s)"


@dataclass(frozen=True)
class Event:
    id: UUID
    event_type: str
    event_version: int
    payload: dict[str, Any]
    created_at: datetime
    aggregate_type: str
    aggregate_id: str
    metadata: dict[str, Any]
    correlation_id: str | None
    causation_id: str | None
    user_id: UUID | None
    global_position: int


@dataclass(frozen=True)
class NewEvent:
    """One event of an `append_events` batch."""

    event_type: str
    payload: Mapping[str, Any]
    metadata: Mapping[str, Any] = field(default_factory=dict)
    event_id: UUID | None = None
    causation_id: str | None = None
    correlation_id: str | None = None

    def as_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "event_type": self.event_type,
            "payload": dict(self.payload),
            "metadata": dict(self.metadata),
        }
        if self.event_id is not None:
            d["event_id"] = str(self.event_id)
        if self.causation_id is not None:
            d["causation_id"] = self.causation_id
        if self.correlation_id is not None:
            d["correlation_id"] = self.correlation_id
        return d


@dataclass(frozen=True)
class Appended:
    id: UUID
    event_version: int
    global_position: int


def append_event(
    conn: psycopg.Connection[Any],
    aggregate_type: str,
    aggregate_id: str,
    event_type: str,
    payload: Mapping[str, Any],
    *,
    expected_version: int | None = None,
    event_id: UUID | None = None,
    correlation_id: str | None = None,
    causation_id: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    user_id: UUID | str | None = None,
) -> UUID:
    """Append one event; returns its id. `expected_version=0` means a new stream."""
    with wrap_errors():
        row = conn.execute(
            APPEND_EVENT,
            {
                "aggregate_id": aggregate_id,
                "aggregate_type": aggregate_type,
                "event_type": event_type,
                "payload": json.dumps(dict(payload)),
                "correlation_id": correlation_id,
                "metadata": json.dumps(dict(metadata or {})),
                "expected_version": expected_version,
                "event_id": event_id,
                "causation_id": causation_id,
                "user_id": str(user_id) if user_id else None,
            },
        ).fetchone()
    assert row is not None
    return UUID(str(row[0]))


def append_events(
    conn: psycopg.Connection[Any],
    aggregate_type: str,
    aggregate_id: str,
    events: Sequence[NewEvent],
    *,
    expected_version: int | None = None,
    correlation_id: str | None = None,
    user_id: UUID | str | None = None,
) -> list[Appended]:
    """Append a batch to one stream atomically (one expected-version check)."""
    with wrap_errors():
        rows = conn.execute(
            APPEND_EVENTS,
            {
                "aggregate_type": aggregate_type,
                "aggregate_id": aggregate_id,
                "events": json.dumps([e.as_json() for e in events]),
                "expected_version": expected_version,
                "correlation_id": correlation_id,
                "user_id": str(user_id) if user_id else None,
            },
        ).fetchall()
    return [Appended(UUID(str(r[0])), int(r[1]), int(r[2])) for r in rows]


def _events(conn: psycopg.Connection[Any], query: str, params: Sequence[Any]) -> list[Event]:
    with wrap_errors(), conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(query, params).fetchall()
    return [Event(**r) for r in rows]


def get_aggregate_events(
    conn: psycopg.Connection[Any], aggregate_type: str, aggregate_id: str, limit: int = 100
) -> list[Event]:
    """The first `limit` events of a stream, in version order."""
    return _events(conn, GET_AGGREGATE_EVENTS, (aggregate_type, aggregate_id, limit))


def read_stream(
    conn: psycopg.Connection[Any],
    aggregate_type: str,
    aggregate_id: str,
    from_version: int = 0,
    limit: int = 1000,
) -> list[Event]:
    """Events of a stream after `from_version`, in version order."""
    return _events(conn, READ_STREAM, (aggregate_type, aggregate_id, from_version, limit))


def read_category(
    conn: psycopg.Connection[Any], aggregate_type: str, from_position: int = 0, limit: int = 1000
) -> list[Event]:
    """Events of one aggregate type after `from_position`, in global order (safe bound)."""
    return _events(conn, READ_CATEGORY, (aggregate_type, from_position, limit))


def read_all(conn: psycopg.Connection[Any], from_position: int = 0, limit: int = 1000) -> list[Event]:
    """Every event after `from_position`, in global order (safe bound)."""
    return _events(conn, READ_ALL, (from_position, limit))


def stream_version(conn: psycopg.Connection[Any], aggregate_type: str, aggregate_id: str) -> int:
    with wrap_errors():
        row = conn.execute(STREAM_VERSION, (aggregate_type, aggregate_id)).fetchone()
    return int(row[0]) if row else 0


def save_checkpoint(conn: psycopg.Connection[Any], subscription: str, position: int, allow_rewind: bool = False) -> int:
    """Store a subscription's last processed position (forward only unless allow_rewind)."""
    with wrap_errors():
        row = conn.execute(SAVE_CHECKPOINT, (subscription, position, allow_rewind)).fetchone()
    assert row is not None
    return int(row[0])


def get_checkpoint(conn: psycopg.Connection[Any], subscription: str) -> int:
    with wrap_errors():
        row = conn.execute(GET_CHECKPOINT, (subscription,)).fetchone()
    return int(row[0]) if row else 0


def catch_up(
    conn: psycopg.Connection[Any],
    subscription: str,
    handler: Callable[[Event], None],
    *,
    category: str | None = None,
    batch_size: int = 500,
    max_batches: int | None = None,
) -> int:
    """Feed every event after the subscription's checkpoint to `handler`, in global order.

    Each batch runs in one transaction with its checkpoint: when the handler writes to the
    same database through `conn`, its writes and the checkpoint commit together (a crash
    replays the batch, never half of it). Returns how many events were handled.
    """
    handled = 0
    batches = 0
    while max_batches is None or batches < max_batches:
        with conn.transaction():
            position = get_checkpoint(conn, subscription)
            if category is None:
                events = read_all(conn, position, batch_size)
            else:
                events = read_category(conn, category, position, batch_size)
            for event in events:
                handler(event)
            if events:
                save_checkpoint(conn, subscription, events[-1].global_position)
        handled += len(events)
        batches += 1
        if len(events) < batch_size:
            break
    return handled
