"""The scale-out plan (SPEC §5, docs/scaling.md) as data, so a test can hold the schema to it.

Every table in `public` has a placement on a Citus cluster:
- `distributed` by a column: hash-sharded; co-located with the other tables distributed by
  the same column (user_id, …). Citus requires every PRIMARY KEY / UNIQUE of a distributed
  table to include the distribution column, and foreign keys between distributed tables to
  include it on both sides.
- `reference`: small, read-mostly, replicated to every node (joins from any shard are local).
- `local`: stays on the coordinator as a plain table (queues that need global SKIP LOCKED
  claims, counters, maintenance bookkeeping): one node carries it comfortably.

Where today's schema does not meet Citus's rule, the change is written in `changes`
(constraint name → what it becomes), in a form `platformdb citus distribute` executes
(platformdb.citus):
- `PRIMARY KEY (…)` / `UNIQUE (…)` / `FOREIGN KEY …`: the constraint is replaced, same name;
- `index (cols): why`: the unique constraint becomes a plain index of the same name;
- `drop: why`: the constraint is dropped (on the Citus cluster only).
`colocate_with` names the table whose co-location group a distributed table joins (default:
a group of its own).
`tests/db/test_scaling_plan.py` fails when a table has no placement, when a unique key or
foreign key of a distributed table breaks the rule without a written change, when a local
table keeps a foreign key to a distributed one, or when a written change names a constraint
that no longer exists.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Placement:
    kind: str  # distributed | reference | local
    column: str | None = None
    why: str = ""
    changes: dict[str, str] = field(default_factory=dict)
    colocate_with: str | None = None


def distributed(column: str, why: str, colocate_with: str | None = None, **changes: str) -> Placement:
    return Placement("distributed", column, why, dict(changes), colocate_with)


def reference(why: str, **changes: str) -> Placement:
    return Placement("reference", None, why, dict(changes))


def local(why: str, **changes: str) -> Placement:
    return Placement("local", None, why, dict(changes))


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
    "whatsapp_sessions": local(
        "one row per phone or business-scoped user: the session state the local WhatsApp queues"
        " reference by foreign key (kept on the coordinator with them); a session known only by"
        " its business-scoped user id has no phone, which no distribution column could route"
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
        colocate_with="payment_methods",
        transactions_pkey="PRIMARY KEY (user_id, id, created_at)",
    ),
    "payment_methods": distributed(
        "user_id",
        "co-located with transactions (the composite FK already carries user_id)",
        payment_methods_pkey="PRIMARY KEY (user_id, id)",
    ),
    "transaction_directory": distributed(
        "user_id",
        "global lookup by transaction id (status changes by id), co-located with the user's"
        " transactions: the insert trigger of transactions writes it on the same shard",
        colocate_with="payment_methods",
        transaction_directory_pkey="PRIMARY KEY (user_id, id)",
        transaction_directory_transaction_ref_key=(
            "index (transaction_ref): refs are unique by construction (a permuted sequence value,"
            " drawn on the coordinator where every insert is planned); the index keeps lookups by ref"
        ),
    ),
    "transaction_idempotency_keys": distributed(
        "idempotency_key",
        "global idempotency = one shard per key; create_transaction touches it and the user's shard"
        " in one distributed (2PC) transaction",
        transaction_idempotency_keys_transaction_id_key=(
            "index (transaction_id): uniqueness follows from the directory's primary key"
        ),
        transaction_idempotency_keys_transaction_fkey=(
            "drop: create_transaction writes the key and the transaction in one distributed"
            " transaction (no foreign key across co-location groups)"
        ),
    ),
    "transaction_events": distributed(
        "user_id",
        "a transaction's history next to it: the status trigger of transactions appends here on"
        " the same shard",
        colocate_with="payment_methods",
        transaction_events_pkey="PRIMARY KEY (user_id, id)",
        transaction_events_transaction_fkey=(
            "FOREIGN KEY (user_id, transaction_id) REFERENCES public.transaction_directory (user_id, id)"
        ),
    ),
    "currencies": reference("ISO 4217 minor units, read by every money function"),
    # §3.4 registry and flags
    "service_registry": reference("tens of services; read by health views everywhere"),
    "feature_flags": reference("read on every evaluation, on every node"),
    "feature_flag_segments": reference("a few named constraint sets read by every flag evaluation"),
    "feature_flag_evaluations": local("aggregated counters flushed in buckets"),
    # §3.5 events, queues, jobs
    "event_store": distributed(
        "aggregate_id",
        "a stream is read and appended as a unit; its events and head live on one shard",
        event_store_pkey="PRIMARY KEY (aggregate_id, id, created_at)",
    ),
    "event_streams": distributed(
        "aggregate_id", "stream heads co-located with their events", colocate_with="event_store"
    ),
    "event_subscriptions": local("catch-up checkpoints: a few rows written by subscribers"),
    "message_queue": local("global claims with SKIP LOCKED and leases; measured >10k msg/s on one node"),
    "background_jobs": local("as message_queue"),
    "recurring_jobs": local("the schedule of background_jobs (FK target)"),
    "queue_retention": local("settings of the purge"),
    # §3.6 location and cache
    "locations": local(
        "public pickup and dropoff points have no user (no distribution value; a table of their"
        " own would change the one-node schema), one current place per user is a unique key on"
        " user_id alone, and one node answers a nearby search in well under a millisecond on a"
        " million points: the spatial table stays on the coordinator"
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

# What Citus still refuses in today's schema, found by the static checks of
# tests/db/test_scaling_plan.py (problem prefix → why it is open and how it closes). The test
# fails on any other problem, and on an entry here that no longer matches a problem (a closed
# gap leaves the list). docs/scaling.md, "Open gaps", says the same.
KNOWN_GAPS: dict[str, str] = {}
