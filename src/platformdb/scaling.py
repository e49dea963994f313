"""The scale-out plan (SPEC §5, docs/scaling.md) as data, so a test can hold the schema to it.

Every table in `public` has a placement on a Citus cluster:
- `distributed` by a column: hash-sharded; co-located with the other tables distributed by
  the same column (user_id, …). Citus requires every PRIMARY KEY / UNIQUE of a distributed
  table to include the distribution column, and foreign keys between distributed tables to
  include it on both sides.
- `reference`: small, read-mostly, replicated to every node (joins from any shard are local).
- `local`: stays on the coordinator as a plain table (queues that need global SKIP LOCKED
  claims, counters, maintenance bookkeeping): one node carries it comfortably.

Where today's schema does not yet meet Citus's rule, the change it needs is written down in
`changes` (constraint name → what it becomes). `tests/db/test_scaling_plan.py` fails when a
table has no placement, when a unique key or foreign key of a distributed table breaks the rule
without a written change, or when a written change names a constraint that no longer exists.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Placement:
    kind: str  # distributed | reference | local
    column: str | None = None
    why: str = ""
    changes: dict[str, str] = field(default_factory=dict)


def distributed(column: str, why: str, **changes: str) -> Placement:
    return Placement("distributed", column, why, dict(changes))


def reference(why: str) -> Placement:
    return Placement("reference", None, why)


def local(why: str) -> Placement:
    return Placement("local", None, why)


PLAN: dict[str, Placement] = {
    # §3.1 observability
    "system_metrics": distributed(
        "service_name",
        "append-only time series; queries are per service and time window",
        system_metrics_pkey="PRIMARY KEY (service_name, id, created_at)",
    ),
    "system_audit_logs": distributed(
        "id",
        "append-only; spread evenly by id, reads by user or resource fan out (rare, indexed per shard)",
    ),
    "partition_settings": reference("a handful of rows read by maintenance everywhere"),
    # §3.2 WhatsApp
    "whatsapp_sessions": distributed(
        "phone_number",
        "one row per phone; every webhook and activity update is keyed by the phone",
        whatsapp_sessions_pkey="PRIMARY KEY (phone_number, id) — or drop the surrogate id",
        whatsapp_sessions_business_user_id_key=(
            "a directory table whatsapp_user_directory (business_user_id PRIMARY KEY, phone_number,"
            " session id) distributed by business_user_id; a session known only by its"
            " business-scoped user id (phone_number null, which Citus refuses as a distribution"
            " value) is then keyed by a placeholder phone_number = business_user_id"
        ),
    ),
    "whatsapp_message_queue": local(
        "an outbound queue claimed globally by priority with SKIP LOCKED; thousands/s fit one node"
    ),
    "whatsapp_inbound_messages": local("work queue for the app; small and short-lived"),
    "whatsapp_status_backlog": local("tiny buffer for statuses that outran the sender"),
    "whatsapp_quarantine": local("a handful of webhook items waiting for a fix; read by operators"),
    "whatsapp_templates": reference("the account's templates: a few hundred rows, read by every enqueue"),
    # §3.3 payments
    "transactions": distributed(
        "user_id",
        "a user's money lives on one shard: their history, payment methods and checks are local",
        transactions_pkey="PRIMARY KEY (user_id, id, created_at)",
    ),
    "payment_methods": distributed(
        "user_id",
        "co-located with transactions (the composite FK already carries user_id)",
        payment_methods_pkey="PRIMARY KEY (user_id, id) (UNIQUE (id, user_id) already qualifies)",
    ),
    "transaction_directory": distributed(
        "id",
        "global lookup by transaction id (status changes by id) — a second, id-keyed co-location group",
        transaction_directory_transaction_ref_key=(
            "derive transaction_ref from the id (it is unique by construction) or keep refs in a"
            " table distributed by transaction_ref"
        ),
    ),
    "transaction_idempotency_keys": distributed(
        "idempotency_key",
        "global idempotency = one shard per key; create_transaction touches it and the user's shard"
        " in one distributed (2PC) transaction",
        transaction_idempotency_keys_transaction_id_key="a plain index (uniqueness follows from the directory)",
        transaction_idempotency_keys_transaction_fkey="checked by create_transaction (no cross-group FK)",
    ),
    "transaction_events": distributed(
        "transaction_id",
        "co-located with transaction_directory (both hash the transaction id)",
        transaction_events_pkey="PRIMARY KEY (transaction_id, id)",
    ),
    "currencies": reference("ISO 4217 minor units, read by every money function"),
    # §3.4 registry and flags
    "service_registry": reference("tens of services; read by health views everywhere"),
    "feature_flags": reference("read on every evaluation, on every node"),
    "feature_flag_evaluations": local("aggregated counters flushed in buckets"),
    # §3.5 events, queues, jobs
    "event_store": distributed(
        "aggregate_id",
        "a stream is read and appended as a unit; its events and head live on one shard",
        event_store_pkey="PRIMARY KEY (aggregate_id, id, created_at)",
    ),
    "event_streams": distributed("aggregate_id", "stream heads co-located with their events"),
    "event_subscriptions": local("catch-up checkpoints: a few rows written by subscribers"),
    "message_queue": local("global claims with SKIP LOCKED and leases; measured >10k msg/s on one node"),
    "background_jobs": local("as message_queue"),
    "recurring_jobs": local("the schedule of background_jobs (FK target)"),
    "queue_retention": local("settings of the purge"),
    # §3.6 location and cache
    "locations": distributed(
        "user_id",
        "a user's places together; nearby search fans out and merges KNN per shard",
        locations_pkey="PRIMARY KEY (user_id, id); public points (no user) move to a reference table",
    ),
    "routes": distributed("id", "a cache of routing answers; matched by endpoints on every shard"),
    "cache_entries": distributed("key", "key-value access by key only"),
    "cache_counters": local("per-backend hit/miss counters flushed periodically"),
    # §4 operations
    "maintenance_tasks": local("maintenance bookkeeping on the coordinator"),
    "maintenance_runs": local("maintenance history"),
    "maintenance_schedule": local("maintenance schedule"),
    "archived_partitions": local("catalog of detached partitions"),
    "extension_privileges_revoked": local("what the security migration revoked on extension objects"),
}
