"""A trickle of activity for `make demo`, so the dashboard keeps showing life while it runs.

Every few seconds, as service_role and through the real functions: the services that were
alive keep heart-beating (the ones the demo left late stay late), each demo service reports
latency and throughput, a few payments go through their states, the WhatsApp replies that
are due are "sent" and reported delivered and read (no network: made-up wa message ids, as
the demo does), new replies and queue messages are enqueued, the cache is read and written,
and flags are evaluated. Started by `platformdb dashboard --demo-traffic`.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import psycopg

from platformdb import db
from platformdb.demo_steps.observability import SERVICES as METRIC_SERVICES
from platformdb.errors import PlatformDBError
from platformdb.sdk import cache, flags
from platformdb.sdk import observability as obs
from platformdb.sdk import payments as pay
from platformdb.sdk import queue as mq
from platformdb.sdk import registry as reg
from platformdb.sdk import whatsapp as wa

log = logging.getLogger("platformdb.dashboard.live")

PAYERS = "select user_id, id from public.payment_methods where is_default order by random() limit %s"
PHONES = "select phone_number from public.whatsapp_sessions where status = 'active' order by random() limit %s"
FLAG_KEYS = "select key, environment from public.feature_flags where environment <> 'all' order by key"
QUEUES = {"notifications": "push.trip_update", "ride-matching": "ride.requested", "payouts": "payout.driver"}


def _metrics(rng: random.Random, now: datetime) -> list[obs.Metric]:
    daily = 1 + 0.5 * math.sin((now.hour + now.minute / 60) / 24 * 2 * math.pi)
    out = []
    for service, (name, base) in METRIC_SERVICES.items():
        value = max(1.0, rng.gauss(base * daily, base * 0.15))
        out.append(obs.Metric(service, "latency", name, round(value, 2), "ms", {"status": "success"}, now))
        out.append(
            obs.Metric(service, "throughput", "requests", round(50 * daily * rng.uniform(0.8, 1.2)), "rpm", {}, now)
        )
    return out


def tick(conn: psycopg.Connection[Any], rng: random.Random, alive: set[str]) -> dict[str, int]:
    """One round of activity (inside the caller's service_role transaction)."""
    now = datetime.now(UTC)
    done = {"heartbeats": 0, "metrics": 0, "payments": 0, "whatsapp": 0, "queued": 0}
    for s in reg.health_overview(conn):
        if s["service_name"] in alive:
            reg.service_heartbeat(conn, s["service_name"], s["reported_status"], {"rps": round(rng.uniform(2, 120), 1)})
            done["heartbeats"] += 1
    done["metrics"] = obs.copy_metrics(conn, _metrics(rng, now))

    for user_id, method_id in conn.execute(PAYERS, (rng.randint(1, 3),)).fetchall():
        tx = pay.create_transaction(
            conn,
            user_id,
            "payment",
            Decimal(rng.randrange(500, 9000, 50)),
            "RWF",
            f"live-{uuid.uuid4().hex}",
            {"channel": "whatsapp"},
            category="ride",
            payment_method_id=method_id,
        )
        pay.update_transaction_status(conn, tx, "processing", provider_reference=f"mtn-{rng.getrandbits(48):012x}")
        if rng.random() < 0.1:
            pay.update_transaction_status(
                conn, tx, "failed", "MTN MoMo: payer has insufficient balance", error_code="MOMO_INSUFFICIENT_BALANCE"
            )
        elif rng.random() < 0.9:
            pay.update_transaction_status(conn, tx, "completed")
        done["payments"] += 1

    for msg in wa.claim_messages(conn, limit=25, lease_seconds=60, worker_id="demo-live"):
        wa_id = f"wamid.demo-live-{rng.getrandbits(64):016x}"
        wa.mark_sent(conn, msg.id, wa_id)
        if rng.random() < 0.95:
            wa.apply_status(conn, wa_id, "delivered", now)
            if rng.random() < 0.6:
                wa.apply_status(conn, wa_id, "read", now)
        done["whatsapp"] += 1
    for (phone,) in conn.execute(PHONES, (rng.randint(0, 3),)).fetchall():
        wa.send_text(conn, phone, "Your driver is on the way.", correlation_id=f"live-{rng.getrandbits(32):08x}")

    for queue_name, message_type in QUEUES.items():
        # some payouts get a single attempt: when the demo worker's handler fails them they
        # become dead letters, for the redrive button
        batch = [
            mq.NewMessage(
                message_type,
                {"n": rng.getrandbits(16)},
                max_attempts=1 if queue_name == "payouts" and rng.random() < 0.3 else 5,
            )
            for _ in range(rng.randint(0, 4))
        ]
        if batch:
            done["queued"] += mq.enqueue_messages(conn, queue_name, batch)

    for i in range(rng.randint(5, 20)):
        key = f"profile:{rng.randrange(400)}"
        if cache.get_cache(conn, key, cache.MISSING, cache_type="profile") is cache.MISSING and i % 2 == 0:
            cache.set_cache(conn, key, {"rating": round(rng.uniform(3.5, 5), 1)}, 600, "profile", [key])
    cache.flush_stats(conn)

    keys = conn.execute(FLAG_KEYS).fetchall()
    for _ in range(rng.randint(5, 30)) if keys else ():
        key, env = rng.choice(keys)
        flags.is_feature_enabled(conn, key, uuid.UUID(int=rng.getrandbits(128), version=4), env)
    flags.flush_evaluations(conn)
    return done


def run(url: str, stop: threading.Event, interval: float = 5.0) -> None:
    rng = random.Random()
    alive: set[str] | None = None
    while not stop.is_set():
        try:
            with psycopg.connect(url) as conn:
                while not stop.is_set():
                    with db.as_service(conn):
                        if alive is None:  # keep alive only those alive at the start
                            alive = {
                                s["service_name"]
                                for s in reg.health_overview(conn)
                                if (s["seconds_since_heartbeat"] or 10**9) < 300
                            }
                        tick(conn, rng, alive)
                    stop.wait(interval)
        except (psycopg.Error, PlatformDBError) as exc:
            log.warning("demo traffic: %s; retrying", exc)
            stop.wait(interval)
