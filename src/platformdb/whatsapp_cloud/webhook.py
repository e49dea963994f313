"""The WhatsApp Cloud API webhook receiver (a Starlette app; `platformdb whatsapp serve`).

- `GET /webhooks/whatsapp` answers Meta's verification challenge: `hub.mode=subscribe` and
  the configured `hub.verify_token` → 200 with `hub.challenge`; a wrong token → 403.
- `POST /webhooks/whatsapp` checks `X-Hub-Signature-256` (HMAC-SHA256 of the raw body keyed
  by the app secret, compared in constant time): missing or wrong → 401 and nothing stored.
  A body that is not JSON → 400, nothing stored (and the reason logged). Every other signed
  notification → 200: it is stored in one transaction, acting as service_role, each item in
  its own savepoint: each inbound message through `record_whatsapp_inbound_message` (session
  activity + a row for the app to handle), each status through `apply_whatsapp_status`
  (with its pricing). An item that cannot be stored (no sender, a value the database
  refuses, a notification in an unknown shape) goes to `whatsapp_quarantine` with its reason,
  logged at WARNING; the others are kept (`platformdb whatsapp requeue-quarantine` retries
  the quarantine after a fix). Storing is idempotent, so Meta's redeliveries are harmless; a
  database outage → 500 and Meta delivers again later. The database work runs on an asyncio
  pool (platformdb.aio), never in a thread pool.
- `GET /healthz`: 200 when the database answers.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from platformdb import aio
from platformdb.errors import DatabaseUnavailable, PlatformDBError
from platformdb.whatsapp_cloud.payloads import (
    MalformedPayload,
    WebhookBatch,
    parse_webhook,
    signature_valid,
)
from platformdb.whatsapp_cloud.store import store_batch

log = logging.getLogger("platformdb.whatsapp.webhook")

WEBHOOK_PATH = "/webhooks/whatsapp"
MAX_BODY_BYTES = 3 * 1024 * 1024


class _Store:
    """Writes a validated batch in one transaction as service_role, on an asyncio pool.

    The batch is stored by the same code as everywhere (`store_batch`, the SDK's functions)
    run through the async face (platformdb.aio): no thread pool, and the event loop serves
    other requests while the database works.
    """

    def __init__(self, database_url: str, max_connections: int = 8):
        self.database_url = database_url
        self.max_connections = max_connections
        self.pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]] | None = None

    async def open(self) -> None:
        # each batch is one transaction (SET LOCAL role), so a transaction pooler serves too:
        # aio.pool then opens connections without server-side prepared statements
        self.pool = await aio.pool(
            self.database_url, min_size=1, max_size=self.max_connections, kwargs={"autocommit": True}
        )
        await self.pool.wait(timeout=30)

    async def close(self) -> None:
        if self.pool is not None:
            await self.pool.close()
            self.pool = None

    def _pool(self) -> AsyncConnectionPool[psycopg.AsyncConnection[Any]]:
        if self.pool is None:
            raise DatabaseUnavailable("the webhook's database pool is not open")
        return self.pool

    async def store(self, batch: WebhookBatch) -> dict[str, int]:
        async with self._pool().connection() as conn, aio.as_service(conn):
            return await aio.run_sync(store_batch, aio.facade(conn), batch)

    async def ping(self) -> bool:
        async with self._pool().connection() as conn:
            cur = await conn.execute("select true")
            return await cur.fetchone() == (True,)


async def _read_limited(request: Request, limit: int) -> bytes | None:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(
    database_url: str,
    app_secret: str,
    verify_token: str,
    *,
    max_body_bytes: int = MAX_BODY_BYTES,
    max_connections: int = 8,
) -> Starlette:
    """The receiver. Both secrets are required: an empty one would accept anything."""
    if not app_secret:
        raise ValueError("app_secret (WHATSAPP_APP_SECRET) must be set")
    if not verify_token:
        raise ValueError("verify_token (WHATSAPP_VERIFY_TOKEN) must be set")
    store = _Store(database_url, max_connections)

    async def verify(request: Request) -> Response:
        q = request.query_params
        mode, token, challenge = q.get("hub.mode"), q.get("hub.verify_token"), q.get("hub.challenge")
        if mode is None or token is None or challenge is None:
            return PlainTextResponse("hub.mode, hub.verify_token and hub.challenge are required", 400)
        if mode == "subscribe" and hmac.compare_digest(token.encode(), verify_token.encode()):
            return PlainTextResponse(challenge)
        return PlainTextResponse("verification failed", 403)

    async def receive(request: Request) -> Response:
        body = await _read_limited(request, max_body_bytes)
        if body is None:
            log.warning("webhook: refused a body over %d bytes from %s", max_body_bytes, request.client)
            return JSONResponse({"error": "body too large"}, 413)
        if not signature_valid(body, request.headers.get("x-hub-signature-256"), app_secret):
            log.warning("webhook: missing or invalid X-Hub-Signature-256 from %s", request.client)
            return JSONResponse({"error": "invalid signature"}, 401)
        try:
            batch = parse_webhook(body)
        except MalformedPayload as exc:
            log.warning("webhook: refused a signed body that is not JSON: %s", str(exc)[:300])
            return JSONResponse({"error": f"malformed notification: {exc}"}, 400)
        for err in batch.errors:
            log.warning("webhook: WhatsApp reported an error: %s", err)
        try:
            counts = await store.store(batch)
        except (PlatformDBError, psycopg.Error) as exc:
            log.error("webhook: could not store the notification: %s", exc)
            return JSONResponse({"error": "temporarily unable to store the notification"}, 500)
        return JSONResponse(counts)

    async def healthz(request: Request) -> Response:
        try:
            ok = await store.ping()
        except Exception as exc:  # any failure means unhealthy
            return JSONResponse({"ok": False, "error": str(exc)}, 503)
        return JSONResponse({"ok": ok}, 200 if ok else 503)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        await store.open()
        try:
            yield {}
        finally:
            await store.close()

    return Starlette(
        routes=[
            Route(WEBHOOK_PATH, verify, methods=["GET"]),
            Route(WEBHOOK_PATH, receive, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
