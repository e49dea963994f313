"""WhatsApp sessions and messages: a typed face over the SQL functions of §3.2.

Sessions are keyed by the user's phone in E.164 (`+250788123456`), their business-scoped
user id (BSUID, `US.13491208655302741918`) or both. Outbound messages are
queued with `enqueue_message` and drained by the sender (`platformdb.whatsapp_cloud.sender`)
through `claim_messages` → `mark_sent` / `mark_failed`; the webhook receiver records inbound
messages (`record_inbound`) and delivery statuses (`apply_status`). All of it is for services
(service_role); a signed-in user can only read their own session row (`my_session`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import dict_row

from platformdb.errors import wrap_errors

MESSAGE_TYPES = ("text", "template", "media", "interactive", "location", "reaction")
SESSION_STATUSES = ("active", "inactive", "suspended", "expired")
DELIVERY_STATUSES = ("sent", "delivered", "read", "failed")
E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")

UPDATE_SESSION_ACTIVITY = """
select public.update_whatsapp_session_activity(
    p_phone_number => %(phone)s, p_increment_message_count => %(increment)s,
    p_conversation_state => %(state)s, p_context => %(context)s::jsonb,
    p_profile_name => %(profile_name)s, p_session_ttl => %(ttl)s,
    p_business_user_id => %(business_user_id)s)
"""
SET_SESSION_STATUS = """
select public.set_whatsapp_session_status(
    p_phone_number => %(phone)s, p_status => %(status)s, p_reason => %(reason)s)
"""
LINK_SESSION_USER = """
select public.link_whatsapp_session_user(p_phone_number => %(phone)s, p_user_id => %(user_id)s)
"""
CLEANUP_EXPIRED_SESSIONS = "select public.cleanup_expired_whatsapp_sessions()"
GET_SESSION = """
select id, phone_number, business_user_id, user_id, status, status_reason, conversation_state,
       context, profile_name, message_count, error_count, last_activity_at, last_inbound_at,
       service_window_ends_at, expires_at, created_at, updated_at
  from public.whatsapp_sessions
 where phone_number = %(phone)s or business_user_id = %(business_user_id)s
 order by (phone_number = %(phone)s) desc nulls last
 limit 1
"""
MY_SESSIONS = """
select id, phone_number, business_user_id, user_id, status, status_reason, conversation_state,
       context, profile_name, message_count, error_count, last_activity_at, last_inbound_at,
       service_window_ends_at, expires_at, created_at, updated_at
  from public.whatsapp_sessions order by last_activity_at desc
"""
ENQUEUE_MESSAGE = """
select public.enqueue_whatsapp_message(
    p_recipient_phone => %(recipient)s, p_message_type => %(message_type)s,
    p_message_payload => %(payload)s::jsonb, p_priority => %(priority)s,
    p_correlation_id => %(correlation_id)s, p_scheduled_at => coalesce(%(scheduled_at)s, now()),
    p_max_retries => %(max_retries)s, p_idempotency_key => %(idempotency_key)s,
    p_recipient_user_id => %(recipient_user_id)s, p_reply_to_message_id => %(reply_to)s)
"""
CLAIM_MESSAGES = """
select id, session_id, recipient_phone, message_type, payload, priority, attempt, max_retries,
       correlation_id, scheduled_at, locked_until, recipient_user_id, reply_to_message_id
  from public.claim_whatsapp_messages(
    p_limit => %(limit)s, p_lease_seconds => %(lease_seconds)s, p_worker_id => %(worker_id)s)
"""
MARK_SENT = """
select public.mark_whatsapp_message_sent(
    p_message_id => %(id)s, p_whatsapp_message_id => %(wa_id)s)
"""
MARK_FAILED = """
select public.mark_whatsapp_message_failed(
    p_message_id => %(id)s, p_error => %(error)s, p_retryable => %(retryable)s,
    p_retry_in_seconds => %(retry_in)s, p_error_detail => %(detail)s::jsonb)
"""
RELEASE_MESSAGE = "select public.release_whatsapp_message(p_message_id => %(id)s)"
CANCEL_MESSAGE = "select public.cancel_whatsapp_message(p_message_id => %(id)s)"
DEFER_MESSAGE = "select public.defer_whatsapp_message(p_message_id => %(id)s, p_seconds => %(seconds)s)"
APPLY_STATUS = """
select public.apply_whatsapp_status(
    p_whatsapp_message_id => %(wa_id)s, p_status => %(status)s, p_timestamp => %(at)s,
    p_error => %(error)s::jsonb, p_pricing => %(pricing)s::jsonb,
    p_conversation => %(conversation)s::jsonb)
"""
RECORD_INBOUND = """
select inbound_id, session_id, is_new from public.record_whatsapp_inbound_message(
    p_whatsapp_message_id => %(wa_id)s, p_from_phone => %(from_phone)s,
    p_message_type => %(message_type)s, p_payload => %(payload)s::jsonb,
    p_sent_at => %(sent_at)s, p_profile_name => %(profile_name)s,
    p_phone_number_id => %(phone_number_id)s, p_from_user_id => %(from_user_id)s,
    p_original_bytes => %(original_bytes)s, p_adjustments => %(adjustments)s::jsonb)
"""
MARK_INBOUND_HANDLED = "select public.mark_whatsapp_inbound_handled(p_inbound_id => %(id)s)"
UNHANDLED_INBOUND = """
select id, whatsapp_message_id, session_id, from_phone, from_user_id, message_type, body,
       payload, profile_name, sent_at, received_at, original_bytes, adjustments
  from public.whatsapp_inbound_messages
 where handled_at is null
 order by received_at
 limit %(limit)s
"""
PURGE_HISTORY = "select public.purge_whatsapp_history(p_older_than => %(older_than)s)"
SESSION_STATS = "select * from public.whatsapp_session_stats"
QUEUE_STATS = "select * from public.whatsapp_queue_stats"
QUARANTINE_ITEM = """
select public.quarantine_whatsapp_item(
    p_notification_id => %(notification_id)s, p_item_path => %(path)s, p_item_kind => %(kind)s,
    p_item => %(item)s::jsonb, p_reason => %(reason)s, p_context => %(context)s::jsonb)
"""
SETTLE_QUARANTINE = """
select public.settle_whatsapp_quarantine(p_id => %(id)s, p_outcome => %(outcome)s, p_reason => %(reason)s)
"""
OPEN_QUARANTINE = """
select id, notification_id, item_path, item_kind, item, context, reason, received_at,
       last_seen_at, seen_count, attempts, last_attempt_at
  from public.whatsapp_quarantine
 where resolved_at is null and (%(ids)s::uuid[] is null or id = any(%(ids)s::uuid[]))
 order by received_at, id
 limit %(limit)s
   for update skip locked
"""
LIST_QUARANTINE = """
select id, notification_id, item_path, item_kind, item, reason, received_at, seen_count, attempts,
       resolved_at, resolution
  from public.whatsapp_quarantine
 where %(include_resolved)s or resolved_at is null
 order by received_at desc, id
 limit %(limit)s
"""
QUARANTINE_STATS = "select * from public.whatsapp_quarantine_stats"
MESSAGE_COSTS = """
select day, category, messages, billable, pricing_unknown, conversations
  from public.whatsapp_message_costs
 where day >= (now() at time zone 'UTC')::date - %(days)s
"""

OUTBOUND_CHANNEL = "platformdb_whatsapp_outbound"
INBOUND_CHANNEL = "platformdb_whatsapp_inbound"


@dataclass(frozen=True)
class OutboundMessage:
    """A claimed message, as `claim_whatsapp_messages` returns it."""

    id: UUID
    session_id: UUID | None
    recipient_phone: str
    message_type: str
    payload: dict[str, Any]
    priority: int
    attempt: int
    max_retries: int
    correlation_id: str | None
    scheduled_at: datetime
    locked_until: datetime
    recipient_user_id: str | None = None
    reply_to_message_id: str | None = None


@dataclass(frozen=True)
class InboundResult:
    inbound_id: UUID
    session_id: UUID | None
    is_new: bool


def is_e164(phone: str) -> bool:
    return bool(E164.match(phone))


def _json(value: Mapping[str, Any] | None) -> str | None:
    return None if value is None else json.dumps(dict(value))


def _one(conn: psycopg.Connection[Any], query: str, params: Mapping[str, Any]) -> Any:
    with wrap_errors():
        row = conn.execute(query, params).fetchone()
    assert row is not None
    return row[0]


# ---- sessions -------------------------------------------------------------------------


def update_session_activity(
    conn: psycopg.Connection[Any],
    phone: str,
    increment_message_count: bool = True,
    *,
    conversation_state: str | None = None,
    context: Mapping[str, Any] | None = None,
    profile_name: str | None = None,
    ttl: timedelta = timedelta(hours=24),
    business_user_id: str | None = None,
) -> UUID:
    """Record activity on (and create if needed) the session of `phone` and/or
    `business_user_id` (phone may be None when the user id is given); returns its id."""
    return UUID(
        str(
            _one(
                conn,
                UPDATE_SESSION_ACTIVITY,
                {
                    "phone": phone,
                    "increment": increment_message_count,
                    "state": conversation_state,
                    "context": _json(context),
                    "profile_name": profile_name,
                    "ttl": ttl,
                    "business_user_id": business_user_id,
                },
            )
        )
    )


def set_session_status(conn: psycopg.Connection[Any], phone: str, status: str, reason: str | None = None) -> bool:
    """Set a session's status (e.g. 'suspended'); False when it already had it."""
    return bool(_one(conn, SET_SESSION_STATUS, {"phone": phone, "status": status, "reason": reason}))


def link_session_user(conn: psycopg.Connection[Any], phone: str, user_id: UUID | str | None) -> UUID:
    """Tie the session of `phone` to a platform user (after verifying they own the number)."""
    uid = str(user_id) if user_id is not None else None
    return UUID(str(_one(conn, LINK_SESSION_USER, {"phone": phone, "user_id": uid})))


def cleanup_expired_sessions(conn: psycopg.Connection[Any]) -> int:
    """Mark sessions past their expiry as expired; returns how many."""
    return int(_one(conn, CLEANUP_EXPIRED_SESSIONS, {}))


def get_session(
    conn: psycopg.Connection[Any], phone: str | None, *, business_user_id: str | None = None
) -> dict[str, Any] | None:
    """A session by phone or business-scoped user id (never the session_token), or None."""
    with wrap_errors(), conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(GET_SESSION, {"phone": phone, "business_user_id": business_user_id}).fetchone()


def my_sessions(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    """As a signed-in user (`db.as_user`): the sessions linked to them (RLS decides)."""
    with wrap_errors(), conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(MY_SESSIONS).fetchall()


# ---- outbound -------------------------------------------------------------------------


def enqueue_message(
    conn: psycopg.Connection[Any],
    recipient_phone: str | None,
    message_type: str,
    payload: Mapping[str, Any],
    priority: int = 5,
    correlation_id: str | None = None,
    scheduled_at: datetime | None = None,
    *,
    max_retries: int = 5,
    idempotency_key: str | None = None,
    recipient_user_id: str | None = None,
    reply_to: str | None = None,
) -> UUID:
    """Queue an outbound message to a phone and/or business-scoped user id; returns its id.
    `reply_to` (a wa message id) sends it as a reply: WhatsApp shows that message quoted.

    A non-template message to a user whose customer-service window has closed raises
    OutsideServiceWindow (PDW01): send a template then."""
    return UUID(
        str(
            _one(
                conn,
                ENQUEUE_MESSAGE,
                {
                    "recipient": recipient_phone,
                    "message_type": message_type,
                    "payload": json.dumps(dict(payload)),
                    "priority": priority,
                    "correlation_id": correlation_id,
                    "scheduled_at": scheduled_at,
                    "max_retries": max_retries,
                    "idempotency_key": idempotency_key,
                    "recipient_user_id": recipient_user_id,
                    "reply_to": reply_to,
                },
            )
        )
    )


def send_text(conn: psycopg.Connection[Any], recipient_phone: str | None, body: str, **kwargs: Any) -> UUID:
    """Shorthand: queue a text message."""
    return enqueue_message(conn, recipient_phone, "text", {"body": body}, **kwargs)


def send_reaction(
    conn: psycopg.Connection[Any], recipient_phone: str | None, message_id: str, emoji: str, **kwargs: Any
) -> UUID:
    """Shorthand: queue a reaction to the wa message `message_id` (an empty emoji removes it)."""
    return enqueue_message(conn, recipient_phone, "reaction", {"message_id": message_id, "emoji": emoji}, **kwargs)


def claim_messages(
    conn: psycopg.Connection[Any],
    limit: int = 50,
    lease_seconds: int = 60,
    worker_id: str | None = None,
) -> list[OutboundMessage]:
    """Claim a batch of due messages under a lease (FOR UPDATE SKIP LOCKED)."""
    with wrap_errors():
        rows = conn.execute(
            CLAIM_MESSAGES, {"limit": limit, "lease_seconds": lease_seconds, "worker_id": worker_id}
        ).fetchall()
    return [OutboundMessage(*r) for r in rows]


def mark_sent(conn: psycopg.Connection[Any], message_id: UUID | str, whatsapp_message_id: str) -> bool:
    """Record the wa message id WhatsApp returned; False for a replay of the same id."""
    return bool(_one(conn, MARK_SENT, {"id": str(message_id), "wa_id": whatsapp_message_id}))


def mark_failed(
    conn: psycopg.Connection[Any],
    message_id: UUID | str,
    error: str,
    retryable: bool = True,
    *,
    retry_in_seconds: int | None = None,
    detail: Mapping[str, Any] | None = None,
) -> str:
    """Record a failed attempt; returns the new status ('pending' to retry, or 'failed')."""
    return str(
        _one(
            conn,
            MARK_FAILED,
            {
                "id": str(message_id),
                "error": error,
                "retryable": retryable,
                "retry_in": retry_in_seconds,
                "detail": _json(detail),
            },
        )
    )


def release_message(conn: psycopg.Connection[Any], message_id: UUID | str) -> bool:
    """Give a claimed message back without counting the attempt."""
    return bool(_one(conn, RELEASE_MESSAGE, {"id": str(message_id)}))


def defer_message(conn: psycopg.Connection[Any], message_id: UUID | str, seconds: int) -> bool:
    """Give a claimed message back to be sent in `seconds`, the attempt not counted."""
    return bool(_one(conn, DEFER_MESSAGE, {"id": str(message_id), "seconds": seconds}))


def cancel_message(conn: psycopg.Connection[Any], message_id: UUID | str) -> bool:
    """Cancel a pending message; False when it is already being sent or finished."""
    return bool(_one(conn, CANCEL_MESSAGE, {"id": str(message_id)}))


def apply_status(
    conn: psycopg.Connection[Any],
    whatsapp_message_id: str,
    status: str,
    at: datetime,
    error: Mapping[str, Any] | list[Any] | None = None,
    *,
    pricing: Mapping[str, Any] | None = None,
    conversation: Mapping[str, Any] | None = None,
) -> bool:
    """Apply a delivery status callback (keeping its pricing and conversation with the
    message); True when the message moved forward."""
    return bool(
        _one(
            conn,
            APPLY_STATUS,
            {
                "wa_id": whatsapp_message_id,
                "status": status,
                "at": at,
                "error": None if error is None else json.dumps(error),
                "pricing": _json(pricing),
                "conversation": _json(conversation),
            },
        )
    )


# ---- inbound --------------------------------------------------------------------------


def record_inbound(
    conn: psycopg.Connection[Any],
    whatsapp_message_id: str,
    from_phone: str | None,
    message_type: str,
    payload: Mapping[str, Any],
    sent_at: datetime | None = None,
    profile_name: str | None = None,
    phone_number_id: str | None = None,
    *,
    from_user_id: str | None = None,
    original_bytes: int | None = None,
    adjustments: Sequence[Mapping[str, Any]] | None = None,
) -> InboundResult:
    """Record a user's message (idempotent on its wa id) and update their session; the
    sender is a phone, a business-scoped user id or both."""
    with wrap_errors():
        row = conn.execute(
            RECORD_INBOUND,
            {
                "wa_id": whatsapp_message_id,
                "from_phone": from_phone,
                "message_type": message_type,
                "payload": json.dumps(dict(payload)),
                "sent_at": sent_at,
                "profile_name": profile_name,
                "phone_number_id": phone_number_id,
                "from_user_id": from_user_id,
                "original_bytes": original_bytes,
                "adjustments": None if adjustments is None else json.dumps([dict(a) for a in adjustments]),
            },
        ).fetchone()
    assert row is not None
    return InboundResult(UUID(str(row[0])), UUID(str(row[1])) if row[1] else None, bool(row[2]))


def unhandled_inbound(conn: psycopg.Connection[Any], limit: int = 100) -> list[dict[str, Any]]:
    """Inbound messages the app has not handled yet, oldest first."""
    with wrap_errors(), conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(UNHANDLED_INBOUND, {"limit": limit}).fetchall()


def mark_inbound_handled(conn: psycopg.Connection[Any], inbound_id: UUID | str) -> bool:
    return bool(_one(conn, MARK_INBOUND_HANDLED, {"id": str(inbound_id)}))


# ---- maintenance and views ------------------------------------------------------------


def purge_history(conn: psycopg.Connection[Any], older_than: timedelta = timedelta(days=30)) -> int:
    """Delete finished messages past retention (table owner only)."""
    return int(_one(conn, PURGE_HISTORY, {"older_than": older_than}))


def session_stats(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    with wrap_errors(), conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(SESSION_STATS).fetchall()


def queue_stats(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    with wrap_errors(), conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(QUEUE_STATS).fetchone()
    assert row is not None
    return row


# ---- webhook quarantine and costs -----------------------------------------------------


def quarantine_item(
    conn: psycopg.Connection[Any],
    notification_id: str,
    path: str,
    kind: str,
    item: Any,
    reason: str,
    context: Mapping[str, Any] | None = None,
) -> UUID:
    """Keep an item of a signed notification that could not be stored; returns its id."""
    params = {
        "notification_id": notification_id,
        "path": path,
        "kind": kind,
        "item": json.dumps(item),
        "reason": reason,
        "context": _json(context),
    }
    return UUID(str(_one(conn, QUARANTINE_ITEM, params)))


def settle_quarantine(
    conn: psycopg.Connection[Any], item_id: UUID | str, outcome: str, reason: str | None = None
) -> bool:
    """Record a requeue: 'stored', 'duplicate', 'discarded' resolve the item; 'failed' keeps it."""
    return bool(_one(conn, SETTLE_QUARANTINE, {"id": str(item_id), "outcome": outcome, "reason": reason}))


def open_quarantine(
    conn: psycopg.Connection[Any], limit: int = 100, ids: Sequence[UUID | str] | None = None
) -> list[dict[str, Any]]:
    """Open quarantined items, oldest first, locked for this transaction (SKIP LOCKED)."""
    params = {"limit": limit, "ids": None if ids is None else [str(i) for i in ids]}
    with wrap_errors(), conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(OPEN_QUARANTINE, params).fetchall()


def list_quarantine(
    conn: psycopg.Connection[Any], limit: int = 50, include_resolved: bool = False
) -> list[dict[str, Any]]:
    """Quarantined items, newest first (open ones only unless include_resolved)."""
    with wrap_errors(), conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(LIST_QUARANTINE, {"limit": limit, "include_resolved": include_resolved}).fetchall()


def quarantine_stats(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    with wrap_errors(), conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(QUARANTINE_STATS).fetchone()
    assert row is not None
    return row


def message_costs(conn: psycopg.Connection[Any], days: int = 30) -> list[dict[str, Any]]:
    """Messages and billable messages per UTC day and pricing category (newest day first)."""
    with wrap_errors(), conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(MESSAGE_COSTS, {"days": days}).fetchall()
