"""Demo mobile-money activity: Kigali users with MoMo / Airtel Money / card methods and RWF
payments moving through their states — most complete, some fail with provider reasons, a
few are cancelled, reversed or still in flight — plus idempotent retries of the same request.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import psycopg

from platformdb.sdk import payments as pay

# (type, category, low, high) in RWF; weights below
KINDS = [
    ("payment", "ride", 1500, 8000),
    ("payment", "moto_ride", 500, 2500),
    ("payment", "marketplace", 2000, 150000),
    ("transfer", "p2p", 1000, 50000),
    ("credit", "topup", 5000, 100000),
    ("debit", "airtime", 500, 5000),
]
WEIGHTS = [30, 25, 15, 15, 10, 5]
FAILURES = [
    ("MOMO_INSUFFICIENT_BALANCE", "MTN MoMo: payer has insufficient balance"),
    ("MOMO_PAYER_NOT_FOUND", "MTN MoMo: payer account not found"),
    ("AIRTEL_TIMEOUT", "Airtel Money: no confirmation from the payer within 60 s"),
    ("MOMO_NOT_ALLOWED", "MTN MoMo: payer limit reached"),
]
PROVIDERS = [("mobile_money", "mtn_momo", 70), ("mobile_money", "airtel_money", 25), ("card", "visa", 5)]


def _uuid(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def _phone(rng: random.Random) -> str:
    return f"+2507{rng.choice('2389')}{rng.randrange(10**7):07d}"


def run(
    conn: psycopg.Connection[Any], scale: int, rng: random.Random, tick: Callable[..., None]
) -> dict[str, int]:
    users = [_uuid(rng) for _ in range(60 * scale)]
    run_id = uuid.uuid4().hex[:8]  # keys stay unique when the demo runs again
    methods: dict[uuid.UUID, uuid.UUID] = {}
    added = 0
    for user in users:
        existing = pay.list_payment_methods(conn, user)
        if existing:
            methods[user] = existing[0].id
            continue
        type_, provider, _ = rng.choices(PROVIDERS, weights=[p[2] for p in PROVIDERS])[0]
        number = _phone(rng) if type_ == "mobile_money" else f"4{rng.randrange(10**15):015d}"
        methods[user] = pay.add_payment_method(
            conn, user, type_, provider, pay.mask_number(number),
            label="MoMo" if provider == "mtn_momo" else provider.replace("_", " ").title(),
            is_default=True,
            encrypted_details=rng.randbytes(48),  # stands in for the service's ciphertext
        )
        added += 1

    total = 400 * scale
    counts = {"payment_methods": added, "transactions": 0, "completed": 0, "failed": 0,
              "cancelled": 0, "reversed": 0, "in_flight": 0, "idempotent_replays": 0}
    for n in range(total):
        user = rng.choice(users)
        type_, category, low, high = rng.choices(KINDS, weights=WEIGHTS)[0]
        amount = Decimal(rng.randrange(low, high + 1, 100 if high > 5000 else 50))
        key = f"demo-{run_id}-{n}"
        currency = "USD" if category == "marketplace" and rng.random() < 0.05 else "RWF"
        if currency == "USD":
            amount = (amount / Decimal(1300)).quantize(Decimal("0.01"))
        args: dict[str, Any] = {
            "category": category,
            "payment_method_id": methods[user] if type_ in ("payment", "debit") else None,
            "destination": f"driver:{rng.randrange(1, 400)}" if "ride" in category else None,
            "correlation_id": f"wa-{rng.getrandbits(40):010x}",
        }
        tx = pay.create_transaction(conn, user, type_, amount, currency, key, {"channel": "whatsapp"}, **args)
        counts["transactions"] += 1
        if rng.random() < 0.1:  # the WhatsApp webhook delivered the same request twice
            again = pay.create_transaction(conn, user, type_, amount, currency, key, **args)
            assert again == tx
            counts["idempotent_replays"] += 1

        fate = rng.random()
        if fate < 0.06:
            counts["in_flight"] += 1  # still pending
            continue
        if fate < 0.11:
            pay.update_transaction_status(conn, tx, "cancelled", "cancelled by the user on WhatsApp")
            counts["cancelled"] += 1
            continue
        pay.update_transaction_status(conn, tx, "processing", provider_reference=f"mtn-{rng.getrandbits(48):012x}")
        if fate < 0.15:
            counts["in_flight"] += 1  # waiting for the provider's callback
            continue
        if fate < 0.27:
            code, message = rng.choice(FAILURES)
            pay.update_transaction_status(conn, tx, "failed", message, error_code=code)
            counts["failed"] += 1
            continue
        pay.update_transaction_status(conn, tx, "completed")
        counts["completed"] += 1
        if fate > 0.985:
            pay.update_transaction_status(conn, tx, "reversed", "disputed: ride not taken")
            counts["reversed"] += 1
        if n % 50 == 0:
            tick(n, total)
    tick(total, total)
    return counts
