"""examples/fastapi_app.py under uvicorn on a loopback port, exercised over HTTP: a booking
charges the rider, appends ride.booked and queues the WhatsApp confirmation in one
transaction (the confirmation only while the flag is on for the rider); repeating it is
idempotent; a conflicting or invalid one is refused with nothing written; SIGTERM stops it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from platformdb import db, devdb
from platformdb.sdk import flags

ROOT = Path(__file__).resolve().parents[2]
RIDER = uuid.UUID("6f1c1a52-4a39-4c43-9f0e-6d1f3d0c8a11")
OTHER_RIDER = uuid.UUID("3d9f2c4e-8a71-4b6e-9c05-7e2a1f4b6d93")


@pytest.fixture
def server(db_url: str, tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes], Path]]:
    port = devdb.free_port()
    log = tmp_path / "uvicorn.log"
    env = {**os.environ, "DATABASE_URL": db_url}
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--app-dir",
                "examples",
                "fastapi_app:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60  # a guard against hanging, not a timing assertion
    while True:
        assert proc.poll() is None, log.read_text()
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"uvicorn did not come up:\n{log.read_text()}"
        time.sleep(0.1)
    try:
        yield base, proc, log
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def _booking(rider: uuid.UUID = RIDER, key: str = "booking-1", amount: str = "2500", **kw: Any) -> dict[str, Any]:
    return {
        "rider_id": str(rider),
        "phone": "+250788123456",
        "amount": amount,
        "booking_key": key,
        "pickup": "Kimironko",
        "dropoff": "Nyabugogo",
        **kw,
    }


def _counts(conn: psycopg.Connection[Any]) -> tuple[int, int, int]:
    row = conn.execute(
        "select (select count(*) from public.transactions), (select count(*) from public.event_store),"
        " (select count(*) from public.whatsapp_message_queue)"
    ).fetchone()
    assert row is not None
    return row


def test_the_booking_endpoint_over_http(server: tuple[str, subprocess.Popen[bytes], Path], db_url: str) -> None:
    base, proc, log = server
    with psycopg.connect(db_url, autocommit=True) as conn:
        with db.as_service(conn):
            flags.upsert_flag(
                conn, "whatsapp_confirmations", enabled=True, rollout_strategy="user_list", target_users=[RIDER]
            )
        with httpx.Client(base_url=base, timeout=30) as http:
            first = http.post("/rides/r-100/booking", json=_booking())
            assert first.status_code == 201, first.text
            body = first.json()
            assert body["repeated"] is False and body["confirmation_message_id"] is not None

            tx = conn.execute(
                "select user_id, type, category, amount, status, metadata from public.transactions where id = %s",
                (body["transaction_id"],),
            ).fetchone()
            assert tx == (RIDER, "payment", "ride", 2500, "pending", {"ride_id": "r-100"})
            [event] = conn.execute(
                "select event_type, payload->>'transaction_id', correlation_id from public.event_store"
                " where aggregate_type = 'ride' and aggregate_id = 'r-100'"
            ).fetchall()
            assert event == ("ride.booked", body["transaction_id"], "booking-1")
            [message] = conn.execute(
                "select recipient_phone, payload->>'body', status from public.whatsapp_message_queue where id = %s",
                (body["confirmation_message_id"],),
            ).fetchall()
            assert message == ("+250788123456", "Your ride r-100 is booked: 2500 RWF.", "pending")

            # the same request again: the same booking, nothing new written
            before = _counts(conn)
            again = http.post("/rides/r-100/booking", json=_booking())
            assert again.status_code == 201 and again.json()["repeated"] is True
            assert again.json()["transaction_id"] == body["transaction_id"]
            assert _counts(conn) == before

            # the same key with another fare; another key for a booked ride; a bad fare: refused, nothing written
            conflict = http.post("/rides/r-100/booking", json=_booking(amount="9999"))
            assert conflict.status_code == 409 and conflict.json()["error"] == "IdempotencyConflict"
            rebook = http.post("/rides/r-100/booking", json=_booking(key="booking-2"))
            assert rebook.status_code == 409 and rebook.json()["error"] == "WrongExpectedVersion"
            bad = http.post("/rides/r-101/booking", json=_booking(key="booking-3", amount="-5"))
            assert bad.status_code == 422 and bad.json()["error"] == "InvalidInput"
            assert _counts(conn) == before

            # the flag is off for this rider: booked and charged, no confirmation queued
            other = http.post("/rides/r-102/booking", json=_booking(rider=OTHER_RIDER, key="booking-4"))
            assert other.status_code == 201 and other.json()["confirmation_message_id"] is None
            assert _counts(conn) == (before[0] + 1, before[1] + 1, before[2])

            read = http.get("/rides/r-100")
            assert read.status_code == 200 and [e["type"] for e in read.json()["events"]] == ["ride.booked"]
            assert http.get("/rides/nope").status_code == 404

    proc.send_signal(signal.SIGTERM)  # uvicorn shuts down cleanly, then re-raises the signal
    assert proc.wait(30) in (0, -signal.SIGTERM), log.read_text()
    assert "Application shutdown complete" in log.read_text()  # the lifespan closed the pool
