"""Demo trips and orders as event streams, queue traffic with a few dead letters, and jobs."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from typing import Any

import psycopg

from platformdb.sdk import events as ev
from platformdb.sdk import jobs
from platformdb.sdk import queue as q

PLACES = {
    "Kigali Convention Centre": (-1.9536, 30.0927),
    "Nyabugogo Bus Park": (-1.9397, 30.0445),
    "Kimironko Market": (-1.9494, 30.1260),
    "Kigali International Airport": (-1.9686, 30.1395),
    "Remera": (-1.9577, 30.1127),
    "Kacyiru": (-1.9441, 30.0619),
}
QUEUES = {
    "notifications": ["push.trip_update", "sms.receipt", "whatsapp.order_status"],
    "ride-matching": ["ride.requested", "ride.rematch"],
    "payouts": ["payout.driver", "payout.merchant"],
}


def _trip(rng: random.Random, rider: uuid.UUID) -> list[ev.NewEvent]:
    origin, dest = rng.sample(list(PLACES), 2)
    fare = rng.randrange(1500, 9000, 100)
    driver = f"driver-{rng.randrange(1, 60):03d}"
    out = [
        ev.NewEvent(
            "trip.requested",
            {"from": origin, "to": dest, "lat": PLACES[origin][0], "lng": PLACES[origin][1], "rider": str(rider)},
        ),
        ev.NewEvent("trip.matched", {"driver": driver, "eta_minutes": rng.randint(2, 12)}),
    ]
    if rng.random() < 0.1:
        return [*out, ev.NewEvent("trip.cancelled", {"by": rng.choice(["rider", "driver"])})]
    return [
        *out,
        ev.NewEvent("trip.started", {"driver": driver}),
        ev.NewEvent(
            "trip.completed", {"fare": fare, "currency": "RWF", "distance_km": round(rng.uniform(1.5, 14.0), 1)}
        ),
    ]


def _order(rng: random.Random) -> list[ev.NewEvent]:
    total = rng.randrange(2000, 150000, 500)
    out = [
        ev.NewEvent("order.placed", {"items": rng.randint(1, 5), "total": total, "currency": "RWF"}),
        ev.NewEvent("order.paid", {"provider": rng.choice(["mtn_momo", "airtel_money"]), "amount": total}),
    ]
    if rng.random() < 0.8:
        out.append(ev.NewEvent("order.shipped", {"courier": rng.choice(["moto", "bike", "van"])}))
    return out


def run(conn: psycopg.Connection[Any], scale: int, rng: random.Random, tick: Callable[..., None]) -> dict[str, int]:
    streams = events = 0
    run_id = uuid.uuid4().hex[:8]  # new streams each time the demo runs (expected_version=0)
    for i in range(40 * scale):
        rider = uuid.UUID(int=rng.getrandbits(128), version=4)
        trip = _trip(rng, rider)
        ev.append_events(
            conn,
            "trip",
            f"trip-{run_id}-{i:05d}",
            trip,
            expected_version=0,
            user_id=rider,
            correlation_id=f"demo-trip-{run_id}-{i}",
        )
        streams, events = streams + 1, events + len(trip)
    for i in range(20 * scale):
        order = _order(rng)
        ev.append_events(conn, "order", f"order-{run_id}-{i:05d}", order, expected_version=0)
        streams, events = streams + 1, events + len(order)
    tick(events)

    messages = dead = 0
    for queue_name, types in QUEUES.items():
        batch = [
            q.NewMessage(
                rng.choice(types), {"n": n}, priority=rng.randint(1, 9), max_attempts=1 if rng.random() < 0.1 else 5
            )
            for n in range(60 * scale)
        ]
        messages += q.enqueue_messages(conn, queue_name, batch)
        taken = q.claim_messages(conn, queue_name, 45 * scale, 60, "demo-worker")
        # in enqueue order: a claim returns messages of equal priority and schedule in no set
        # order, and the seeded draws below must fall on the same messages in every run
        for m in sorted(taken, key=lambda m: m.payload["n"]):
            if rng.random() < 0.06:
                state = q.nack_message(conn, m.id, "HTTP 503 from provider", worker_id="demo-worker")
                dead += state == "dead_letter"
            elif rng.random() < 0.9:
                q.ack_message(conn, m.id, "demo-worker")
            # the rest stay in flight, as on a busy afternoon

    scheduled = 0
    for i in range(15 * scale):
        job_type = rng.choice(["reports.daily", "payouts.settle", "geo.refresh_routes"])
        jid = jobs.schedule_job(conn, job_type, f"{job_type} #{i}", {"batch": i}, priority=rng.randint(3, 7))
        scheduled += 1
        if rng.random() < 0.6:
            claimed = jobs.claim_jobs(conn, [job_type], 1, "demo-worker")
            if claimed and claimed[0].id == jid:
                if rng.random() < 0.85:
                    jobs.complete_job(conn, jid, {"rows": rng.randint(10, 5000)}, "demo-worker")
                else:
                    jobs.fail_job(conn, jid, "MTN MoMo API timeout", True, "demo-worker")
    jobs.schedule_recurring_job(conn, "cache.cleanup", "cache.cleanup", "*/5 * * * *")
    jobs.schedule_recurring_job(
        conn, "reports.nightly", "reports.daily", "0 2 * * *", {"scope": "all"}, timezone="Africa/Kigali"
    )
    return {
        "event_streams": streams,
        "events": events,
        "messages": messages,
        "dead_letters": dead,
        "jobs": scheduled,
        "recurring_schedules": 2,
    }
