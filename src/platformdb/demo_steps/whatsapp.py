"""Demo WhatsApp traffic: Kigali users writing in, replies queued, sent, delivered, read.

Everything goes through the real functions (as service_role): inbound messages as the
webhook records them, outbound messages enqueued, claimed and marked the way the sender
does (with made-up wa message ids, no network), then delivery statuses as WhatsApp reports
them (with their pricing: free service replies, billed utility templates), a few permanent
failures, and some messages left pending for the dashboard's queue.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from platformdb.sdk import whatsapp as wa

PREFIXES = ("78", "79", "72", "73")  # MTN and Airtel Rwanda mobile ranges
NAMES = ("Aline", "Jean", "Claudine", "Eric", "Divine", "Patrick", "Grace", "Olivier", "Ange", "Emmy")
INBOUND = (
    "Muraho! I need a ride to Kimironko",
    "Ndashaka moto ijya Nyabugogo",
    "How much is the fare to Kigali Heights?",
    "Is the phone on the marketplace still available?",
    "Send 5000 RWF to my brother",
    "Thank you!",
)
PRICING_SERVICE = {"billable": False, "pricing_model": "PMP", "category": "service", "type": "free_customer_service"}
PRICING_TEMPLATE = {"billable": True, "pricing_model": "PMP", "category": "utility", "type": "regular"}
REPLIES = (
    "Your driver is on the way: Toyota RAC 123 A, 4 minutes.",
    "Fare estimate: 2,500 RWF. Reply YES to confirm.",
    "Payment of 5,000 RWF received. Murakoze!",
    "The seller will contact you shortly.",
)


def run(conn: psycopg.Connection[Any], scale: int, rng: random.Random, tick: Callable[..., None]) -> dict[str, int]:
    now = datetime.now(UTC)
    run_id = uuid.uuid4().hex[:8]  # wa message ids stay unique when the demo runs again
    users = 60 * scale
    phones = [f"+250{rng.choice(PREFIXES)}{rng.randrange(10**7):07d}" for _ in range(users)]
    phones = list(dict.fromkeys(phones))
    inbound = 0
    for i, phone in enumerate(phones):
        for _ in range(rng.randint(1, 4)):
            sent = now - timedelta(minutes=rng.randint(0, 23 * 60))
            wa_id = f"wamid.demo-{run_id}-in-{rng.getrandbits(64):016x}"
            payload = {
                "from": phone[1:],
                "id": wa_id,
                "timestamp": str(int(sent.timestamp())),
                "type": "text",
                "text": {"body": rng.choice(INBOUND)},
            }
            r = wa.record_inbound(conn, wa_id, phone, "text", payload, sent, rng.choice(NAMES))
            inbound += int(r.is_new)
        if rng.random() < 0.4:
            state = rng.choice(("ride.quote", "ride.awaiting_pickup", "market.browsing"))
            wa.update_session_activity(conn, phone, False, conversation_state=state)
        tick(i + 1, len(phones))

    queued = 0
    for phone in phones:
        for _ in range(rng.randint(1, 3)):
            wa.send_text(
                conn,
                phone,
                rng.choice(REPLIES),
                priority=rng.choice((3, 5, 5, 7)),
                correlation_id=f"demo-{rng.getrandbits(32):08x}",
            )
            queued += 1
    wa.enqueue_message(
        conn, phones[0], "location", {"latitude": -1.9536, "longitude": 30.0606, "name": "Kigali Convention Centre"}
    )
    queued += 1
    for phone in phones[: max(1, len(phones) // 10)]:  # ride receipts: a billed utility template
        wa.enqueue_message(conn, phone, "template", {"name": "ride_receipt", "language": {"code": "en_US"}})
        queued += 1

    # play the sender for most of the queue; leave the rest pending
    counts = {"sent": 0, "delivered": 0, "read": 0, "failed": 0}
    batch: list[wa.OutboundMessage] = []
    want = max(1, int(queued * 0.85))
    while len(batch) < want:  # a claim takes at most 1000 messages
        got = wa.claim_messages(conn, limit=min(1000, want - len(batch)), lease_seconds=60, worker_id="demo")
        if not got:
            break
        batch += got
    for msg in batch:
        if rng.random() < 0.03:
            wa.mark_failed(conn, msg.id, "HTTP 400 code 131026: Message undeliverable", retryable=False)
            counts["failed"] += 1
            continue
        wa_id = f"wamid.demo-{run_id}-out-{rng.getrandbits(64):016x}"
        wa.mark_sent(conn, msg.id, wa_id)
        counts["sent"] += 1
        if rng.random() < 0.9:
            # what WhatsApp says it costs: replies in the service window are free, templates billed
            pricing = PRICING_TEMPLATE if msg.message_type == "template" else PRICING_SERVICE
            wa.apply_status(conn, wa_id, "delivered", now, pricing=pricing)
            counts["delivered"] += 1
            if rng.random() < 0.6:
                wa.apply_status(conn, wa_id, "read", now)
                counts["read"] += 1
    return {"sessions": len(phones), "inbound_messages": inbound, "queued": queued, **counts}
