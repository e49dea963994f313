"""Storing a parsed webhook notification, item by item, and retrying the quarantine.

Each message and status is stored in its own savepoint inside one transaction: an item the
database refuses (a value its checks reject) is rolled back alone and quarantined with the
database's reason; every other item is kept. Only a failure to reach the database (or to
write the quarantine itself) fails the whole notification, which Meta then delivers again.
The functions expect a connection already acting as service_role (`db.as_service`).
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any
from uuid import UUID

import psycopg

from platformdb.errors import DatabaseUnavailable, PlatformDBError
from platformdb.sdk import whatsapp as wa
from platformdb.whatsapp_cloud.payloads import (
    BadItem,
    InboundMessage,
    QuarantinedItem,
    StatusUpdate,
    WebhookBatch,
    _contacts,
    parse_message,
    parse_status,
    parse_webhook,
    storable,
)

log = logging.getLogger("platformdb.whatsapp.webhook")


def _refused(exc: PlatformDBError) -> bool:
    """A refusal of this item's values (stored nowhere, quarantined), not an outage."""
    return not isinstance(exc, DatabaseUnavailable)


def store_message(conn: psycopg.Connection[Any], m: InboundMessage) -> bool:
    """Record one inbound message; True when new, False for a replay."""
    r = wa.record_inbound(
        conn,
        m.whatsapp_message_id,
        m.from_phone,
        m.message_type,
        m.payload,
        sent_at=m.sent_at,
        profile_name=m.profile_name,
        phone_number_id=m.phone_number_id,
        from_user_id=m.from_user_id,
        original_bytes=m.original_bytes,
        adjustments=m.adjustments,
    )
    return r.is_new


def store_status(conn: psycopg.Connection[Any], s: StatusUpdate) -> bool:
    return wa.apply_status(
        conn, s.whatsapp_message_id, s.status, s.at, s.error, pricing=s.pricing, conversation=s.conversation
    )


def quarantine(conn: psycopg.Connection[Any], notification_id: str, q: QuarantinedItem) -> UUID:
    log.warning("webhook: quarantined %s %s of notification %s: %s", q.kind, q.path, notification_id[:12], q.reason)
    return wa.quarantine_item(conn, notification_id, q.path, q.kind, q.item, q.reason, q.context)


def _in_savepoint(
    conn: psycopg.Connection[Any],
    notification_id: str,
    write: Callable[[], bool],
    path: str,
    kind: str,
    raw: Any,
    context: Any,
) -> bool | None:
    """Run one item's write in its own savepoint: its result, or None when the database
    refused the item's values and it went to the quarantine instead (an outage raises)."""
    try:
        with conn.transaction():
            return write()
    except PlatformDBError as exc:
        if not _refused(exc):
            raise
        item = QuarantinedItem(path, kind, raw, f"refused by the database: {exc.message}", context)
        quarantine(conn, notification_id, item)
        return None


def store_batch(conn: psycopg.Connection[Any], batch: WebhookBatch) -> dict[str, int]:
    """Store every item of `batch` that can be stored; quarantine the others."""
    counts = {
        "messages": 0,
        "duplicates": 0,
        "statuses_applied": 0,
        "statuses_unchanged": 0,
        "quarantined": 0,
    }
    for q in batch.quarantined:
        quarantine(conn, batch.notification_id, q)
        counts["quarantined"] += 1
    for m in batch.messages:
        new = _in_savepoint(
            conn, batch.notification_id, partial(store_message, conn, m), m.path, "message", m.payload, m.context
        )
        if new is None:
            counts["quarantined"] += 1
        else:
            counts["messages" if new else "duplicates"] += 1
    for s in batch.statuses:
        moved = _in_savepoint(
            conn, batch.notification_id, partial(store_status, conn, s), s.path, "status", s.raw, s.context
        )
        if moved is None:
            counts["quarantined"] += 1
        else:
            counts["statuses_applied" if moved else "statuses_unchanged"] += 1
    counts["statuses_ignored"] = batch.ignored_statuses
    return counts


# ---- requeue --------------------------------------------------------------------------


def _as_notification(kind: str, item: Any) -> bytes:
    """A quarantined notification, entry or change as a notification to parse again."""
    if kind == "notification":
        doc = item
    elif kind == "entry":
        doc = {"object": "whatsapp_business_account", "entry": [item]}
    else:
        doc = {"object": "whatsapp_business_account", "entry": [{"id": "", "changes": [item]}]}
    return json.dumps(doc).encode()


def _retry_one(conn: psycopg.Connection[Any], row: dict[str, Any]) -> str:
    """Store one quarantined item again: 'stored', 'duplicate' or 'discarded'; raises
    BadItem or PlatformDBError when it still cannot be stored."""
    kind, item, path = row["item_kind"], row["item"], row["item_path"]
    context = row["context"] or {}
    if kind == "message":
        value = {"contacts": context.get("contacts") or []}
        names, _ = _contacts(value, path)
        m = parse_message(item, path, names, context.get("phone_number_id"), context)
        return "stored" if store_message(conn, m) else "duplicate"
    if kind == "status":
        s = parse_status(item, path, context)
        if s is None:
            return "discarded"  # a status that moves nothing
        store_status(conn, s)
        return "stored"
    batch = parse_webhook(_as_notification(kind, item))
    if batch.quarantined:
        raise BadItem(batch.quarantined[0].reason)
    stored = 0
    for m in batch.messages:
        stored += store_message(conn, m)
    for s in batch.statuses:
        store_status(conn, s)
        stored += 1
    return "stored" if stored else "duplicate"


def requeue(conn: psycopg.Connection[Any], limit: int = 100, ids: Sequence[UUID | str] | None = None) -> Counter[str]:
    """Try the open quarantined items again (oldest first, or `ids`): each one stored is
    resolved; one that still fails stays open with the new reason. Returns the outcomes."""
    outcomes: Counter[str] = Counter()
    for row in wa.open_quarantine(conn, limit, ids):
        try:
            with conn.transaction():
                outcome = _retry_one(conn, row)
        except BadItem as exc:
            outcome, reason = "failed", str(exc)
        except PlatformDBError as exc:
            if not _refused(exc):
                raise
            outcome, reason = "failed", f"refused by the database: {exc.message}"
        if outcome == "failed":
            log.warning("requeue: quarantined %s %s still fails: %s", row["item_kind"], row["id"], reason)
            wa.settle_quarantine(conn, row["id"], "failed", reason)
        else:
            wa.settle_quarantine(conn, row["id"], outcome)
        outcomes[outcome] += 1
    return outcomes


__all__ = ["quarantine", "requeue", "store_batch", "store_message", "store_status", "storable"]
