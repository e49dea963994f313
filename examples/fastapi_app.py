"""A ride booking service on the async SDK: FastAPI, one pool, no thread pool.

    DATABASE_URL=postgresql://… uvicorn --app-dir examples fastapi_app:app --port 8000

POST /rides/{ride_id}/booking books a ride in one transaction, acting as the backend service:

1. charges the rider: a pending `payment` transaction (idempotent per booking key: the same
   request repeated returns the same booking, a different one under the same key is a 409);
2. appends `ride.booked` to the ride's event stream (expected version 0: a ride is booked once);
3. queues the WhatsApp confirmation to the rider's phone — when the `whatsapp_confirmations`
   flag is on for that rider.

All three commit together or not at all. The SDK's errors map to HTTP statuses in one place
(`errors_as_http`). GET /rides/{ride_id} reads the ride's events back.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any
from uuid import UUID

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from platformdb import aio, errors
from platformdb.aio import events, flags, payments, whatsapp

CONFIRMATION_FLAG = "whatsapp_confirmations"


class Booking(BaseModel):
    rider_id: UUID
    phone: str = Field(description="the rider's WhatsApp number, E.164")
    amount: Decimal = Field(description="the fare, in the currency's units")
    currency: str = "RWF"
    booking_key: str = Field(description="idempotency key of this booking (one per booking attempt)")
    pickup: str = ""
    dropoff: str = ""


class Booked(BaseModel):
    ride_id: str
    transaction_id: UUID
    event_id: UUID | None
    confirmation_message_id: UUID | None
    repeated: bool


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    pool = await aio.pool(min_size=1, max_size=8, kwargs={"autocommit": True})
    app.state.pool = pool
    try:
        yield
    finally:
        await pool.close()


app = FastAPI(title="rides", lifespan=lifespan)

HTTP_STATUS: dict[type[errors.PlatformDBError], int] = {
    errors.InvalidInput: 422,
    errors.IdempotencyConflict: 409,
    errors.WrongExpectedVersion: 409,
    errors.IllegalTransition: 409,
    errors.NotFound: 404,
    errors.PermissionDenied: 403,
    errors.DatabaseUnavailable: 503,
}


@app.exception_handler(errors.PlatformDBError)
async def errors_as_http(request: Request, exc: errors.PlatformDBError) -> JSONResponse:
    status = next((code for cls, code in HTTP_STATUS.items() if isinstance(exc, cls)), 500)
    return JSONResponse({"error": type(exc).__name__, "message": exc.message, "sqlstate": exc.sqlstate}, status)


@app.post("/rides/{ride_id}/booking", status_code=201, response_model=Booked)
async def book_ride(ride_id: str, booking: Booking, request: Request) -> Booked:
    async with request.app.state.pool.connection() as conn, aio.as_service(conn):
        tx = await payments.create_transaction(
            conn,
            booking.rider_id,
            "payment",
            booking.amount,
            booking.currency,
            booking.booking_key,
            {"ride_id": ride_id},
            category="ride",
        )
        if await events.stream_version(conn, "ride", ride_id) > 0:
            # the same booking again (same key, same ride): answer as the first time did
            stream = await events.read_stream(conn, "ride", ride_id, 0, 1)
            if stream and stream[0].payload.get("transaction_id") == str(tx):
                return Booked(
                    ride_id=ride_id,
                    transaction_id=tx,
                    event_id=stream[0].id,
                    confirmation_message_id=None,
                    repeated=True,
                )
        event_id = await events.append_event(
            conn,
            "ride",
            ride_id,
            "ride.booked",
            {
                "rider_id": str(booking.rider_id),
                "transaction_id": str(tx),
                "pickup": booking.pickup,
                "dropoff": booking.dropoff,
            },
            expected_version=0,
            correlation_id=booking.booking_key,
            user_id=booking.rider_id,
        )
        message_id = None
        if await flags.is_feature_enabled(conn, CONFIRMATION_FLAG, booking.rider_id):
            message_id = await whatsapp.enqueue_message(
                conn,
                booking.phone,
                "text",
                {"body": f"Your ride {ride_id} is booked: {booking.amount} {booking.currency}."},
                correlation_id=booking.booking_key,
                idempotency_key=f"ride-booked:{ride_id}",
            )
    return Booked(
        ride_id=ride_id, transaction_id=tx, event_id=event_id, confirmation_message_id=message_id, repeated=False
    )


@app.get("/rides/{ride_id}")
async def ride(ride_id: str, request: Request) -> dict[str, Any]:
    async with request.app.state.pool.connection() as conn, aio.as_service(conn):
        stream = await events.read_stream(conn, "ride", ride_id)
    if not stream:
        raise HTTPException(404, f"no ride {ride_id}")
    return {"ride_id": ride_id, "events": [{"type": e.event_type, "payload": e.payload} for e in stream]}


@app.get("/healthz")
async def healthz(request: Request) -> dict[str, bool]:
    async with request.app.state.pool.connection() as conn:
        await conn.execute("select 1")
    return {"ok": True}
