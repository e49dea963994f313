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
  database outage → 500 and Meta delivers again later.
- `GET /healthz`: 200 when the database answers.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from platformdb import db
from platformdb.errors import PlatformDBError
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
    """Writes a validated batch in one transaction as service_role."""

    def __init__(self, database_url: str, max_connections: int = 8):
        self.database_url = database_url
        self.max_connections = max_connections
        self.pool: ConnectionPool = ConnectionPool(
            database_url, min_size=1, max_size=max_connections, open=False, kwargs={"autocommit": True}
        )

    def open(self) -> None:
        # each batch is one transaction (SET LOCAL role), so a transaction pooler serves too:
        # then without server-side prepared statements
        extra = db.connect_kwargs(self.database_url)
        if extra:
            self.pool = ConnectionPool(
                self.database_url,
                min_size=1,
                max_size=self.max_connections,
                open=False,
                kwargs={"autocommit": True, **extra},
            )
        self.pool.open(wait=True, timeout=30)

    def close(self) -> None:
        self.pool.close()

    def store(self, batch: WebhookBatch) -> dict[str, int]:
        with self.pool.connection() as conn, db.as_service(conn):
            return store_batch(conn, batch)

    def ping(self) -> bool:
        with self.pool.connection() as conn:
            return conn.execute("select true").fetchone() == (True,)


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
            counts = await run_in_threadpool(store.store, batch)
        except (PlatformDBError, psycopg.Error) as exc:
            log.error("webhook: could not store the notification: %s", exc)
            return JSONResponse({"error": "temporarily unable to store the notification"}, 500)
        return JSONResponse(counts)

    async def healthz(request: Request) -> Response:
        try:
            ok = await run_in_threadpool(store.ping)
        except Exception as exc:  # any failure means unhealthy
            return JSONResponse({"ok": False, "error": str(exc)}, 503)
        return JSONResponse({"ok": ok}, 200 if ok else 503)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        await run_in_threadpool(store.open)
        try:
            yield {}
        finally:
            await run_in_threadpool(store.close)

    return Starlette(
        routes=[
            Route(WEBHOOK_PATH, verify, methods=["GET"]),
            Route(WEBHOOK_PATH, receive, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
