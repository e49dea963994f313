"""Demo service registry and feature flags: the platform's services registering and
heart-beating (a few late, one degraded, one unhealthy), and flags at several rollouts
evaluated for Kigali users through is_feature_enabled (counts batched, then flushed).
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable
from typing import Any

import psycopg

from platformdb.sdk import flags
from platformdb.sdk import registry as reg

# name, type, version, endpoint, capabilities, dependencies, status, minutes since heartbeat
SERVICES = [
    (
        "wa-webhook",
        "edge_function",
        "2.4.1",
        "https://api.example.rw/functions/v1/wa-webhook",
        ["whatsapp.inbound", "whatsapp.status"],
        [],
        "healthy",
        0,
    ),
    ("wa-sender", "worker", "2.4.1", "worker://wa-sender-1", ["whatsapp.outbound"], ["wa-webhook"], "healthy", 0),
    (
        "payments-api",
        "api",
        "1.9.0",
        "https://payments.internal:8443",
        ["momo.charge", "momo.refund", "airtel.charge"],
        ["momo-gateway"],
        "healthy",
        0,
    ),
    (
        "momo-gateway",
        "microservice",
        "0.14.2",
        "https://momo-gw.internal",
        ["mtn_momo", "airtel_money"],
        [],
        "degraded",
        0,
    ),
    (
        "rides-matcher",
        "microservice",
        "3.2.0",
        "https://rides.internal/match",
        ["match", "eta"],
        ["geo-api"],
        "healthy",
        3,
    ),
    ("geo-api", "api", "1.1.5", "https://geo.internal", ["nearby", "routes"], [], "healthy", 0),
    (
        "marketplace-api",
        "api",
        "5.0.2",
        "https://market.internal",
        ["listings", "search"],
        ["payments-api"],
        "unhealthy",
        1,
    ),
    ("notifications-worker", "worker", "0.9.0", "worker://notify-1", ["sms", "whatsapp"], ["wa-sender"], "healthy", 12),
]

# key, environment, enabled, strategy, percentage, conditions, secret, description
FLAGS: list[tuple[str, str, bool, str, int, list[dict[str, Any]] | None, bool, str]] = [
    ("new-checkout", "production", True, "percentage", 25, None, False, "Single-screen MoMo checkout"),
    ("new-checkout", "staging", True, "percentage", 100, None, False, "Single-screen MoMo checkout"),
    ("rides.surge-pricing", "production", True, "percentage", 50, None, False, "Dynamic fares at peak hours"),
    ("marketplace.search-v2", "production", True, "percentage", 10, None, False, "Typo-tolerant search"),
    ("momo.instant-refunds", "production", True, "percentage", 100, None, False, "Refunds without review"),
    ("dark-mode", "production", True, "percentage", 0, None, False, "Prepared, nobody yet"),
    ("wa.interactive-menus", "all", True, "all", 0, None, False, "List and button messages"),
    (
        "momo-v2",
        "all",
        True,
        "condition",
        0,
        [
            {"attribute": "country", "operator": "in", "values": ["RW"]},
            {"attribute": "app_version", "operator": "semver_gte", "value": "2.1.0"},
            {"attribute": "phone", "operator": "starts_with", "values": ["+25078", "+25079"]},
        ],
        False,
        "MTN subscribers on the new app",
    ),
    ("legacy-ussd-fallback", "production", False, "all", 0, None, False, "Switched off"),
    ("ops.pause-payouts", "production", False, "all", 0, None, True, "Kill switch (server side)"),
    ("new-matcher", "staging", True, "all", 0, None, False, "Matching v4, staging only"),
]
BETA_TESTERS = 12


def _uuid(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def run(conn: psycopg.Connection[Any], scale: int, rng: random.Random, tick: Callable[..., None]) -> dict[str, int]:
    for name, stype, version, endpoint, caps, deps, status, minutes in SERVICES:
        reg.register_service(
            conn,
            name,
            stype,
            version,
            endpoint,
            f"{endpoint}/health" if endpoint.startswith("https") else None,
            caps,
            deps,
        )
        reg.service_heartbeat(
            conn,
            name,
            status,
            {
                "rps": round(rng.uniform(2, 120), 1),
                "p95_ms": round(rng.uniform(20, 900)),
                "errors_per_min": rng.randrange(0, 5),
            },
        )
        if minutes:
            conn.execute(
                "update public.service_registry set last_heartbeat_at = now() - make_interval(mins => %s)"
                " where service_name = %s",
                (minutes, name),
            )
    tick(len(SERVICES), len(SERVICES))

    users = [_uuid(rng) for _ in range(400 * scale)]
    for key, env, enabled, strategy, pct, conditions, secret, description in FLAGS:
        flags.upsert_flag(
            conn,
            key,
            environment=env,
            enabled=enabled,
            rollout_strategy=strategy,
            rollout_percentage=pct,
            conditions=conditions,
            secret=secret,
            name=key.replace(".", " ").replace("-", " ").capitalize(),
            description=description,
        )
    flags.upsert_flag(
        conn,
        "beta-testers",
        environment="all",
        enabled=True,
        rollout_strategy="user_list",
        target_users=users[:BETA_TESTERS],
        name="Beta testers",
        description="Early access",
    )

    keys = sorted({f[0] for f in FLAGS} | {"beta-testers", "new_checkout"})  # one typo: an unknown key
    evaluated = 0
    for i in range(5 * scale):
        ids = [str(rng.choice(users)) for _ in range(400)]
        contexts = [
            json.dumps(
                {
                    "country": rng.choice(["RW", "RW", "RW", "UG"]),
                    "app_version": rng.choice(["2.0.3", "2.1.0", "2.2.1", "2.3.0-beta.1"]),
                    "phone": f"+2507{rng.choice('8832')}{rng.randrange(1000000, 9999999)}",
                }
            )
            for _ in ids
        ]
        for key in keys:
            env = "staging" if i % 5 == 4 else "production"
            conn.execute(
                "select count(*) filter (where public.is_feature_enabled(%s, u, %s, c))"
                " from unnest(%s::uuid[], %s::jsonb[]) as t(u, c)",
                (key, env, ids, contexts),
            )
            evaluated += len(ids)
        tick(i + 1, 5 * scale)
    flags.flush_evaluations(conn)
    return {"services": len(SERVICES), "flags": len(FLAGS) + 1, "flag_evaluations": evaluated}
