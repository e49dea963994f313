"""Demo metrics with a daily pattern and a latency spike, plus audit events."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from platformdb.sdk import observability as obs

SERVICES = {
    "wa-webhook": ("message_processing", 120.0),
    "payments-api": ("momo_charge", 850.0),
    "rides-matcher": ("driver_match", 45.0),
    "marketplace-api": ("listing_search", 60.0),
}


def run(
    conn: psycopg.Connection[Any], scale: int, rng: random.Random, tick: Callable[..., None]
) -> dict[str, int]:
    now = datetime.now(UTC)
    metrics: list[obs.Metric] = []
    minutes = 24 * 60
    step = max(1, 10 // scale)  # one sample per service every `step` minutes for a day
    for service, (name, base) in SERVICES.items():
        for m in range(0, minutes, step):
            at = now - timedelta(minutes=minutes - m)
            daily = 1 + 0.5 * math.sin((at.hour + at.minute / 60) / 24 * 2 * math.pi)
            spike = 4.0 if minutes - m < 45 and service == "payments-api" else 1.0
            value = max(1.0, rng.gauss(base * daily * spike, base * 0.15))
            tags = {"status": "success" if rng.random() > 0.03 else "error"}
            metrics.append(obs.Metric(service, "latency", name, round(value, 2), "ms", tags, at))
            metrics.append(
                obs.Metric(service, "throughput", "requests", round(50 * daily * rng.uniform(0.8, 1.2)), "rpm", {}, at)
            )
    n = obs.copy_metrics(conn, metrics)
    tick(n, n)
    actions = ["user.login", "payment.initiated", "ride.requested", "listing.created", "session.started"]
    audits = 0
    for _ in range(200 * scale):
        user = f"{rng.getrandbits(128):032x}"
        uid = f"{user[:8]}-{user[8:12]}-4{user[13:16]}-a{user[17:20]}-{user[20:32]}"
        obs.log_audit_event(
            conn,
            "user",
            rng.choice(actions),
            "user_action",
            actor_identifier=uid,
            metadata={"channel": "whatsapp"},
            correlation_id=f"demo-{rng.getrandbits(32):08x}",
        )
        audits += 1
    return {"metrics": n, "audit_events": audits}
