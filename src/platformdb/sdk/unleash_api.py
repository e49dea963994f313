"""Unleash's client API over HTTP, served from feature_flags, so that Unleash's own SDKs
(Node, Python, Go, mobile...) read platformdb's flags and evaluate them as the SQL does.

- ``GET /api/client/features``: client API v2 ({"version": 2, "features", "segments"}) of
  the token's environment (its own rows, else 'all'), with an ETag (304 on If-None-Match).
- ``POST /api/client/register``: the SDK announces itself (202; kept in memory, logged).
- ``POST /api/client/metrics``: the SDK's yes/no counts per flag; they go into the same
  evaluation counts as SQL and FlagClient evaluations (`record_feature_flag_evaluations`,
  source sdk).

Tokens (``Authorization: <token>``, compared in constant time): client tokens, one per
environment, read the features of their environment and send register/metrics; an admin
token may do all of that for any environment (``?environment=``). Without any token
configured the server answers loopback clients only (production environment).

`platformdb flags serve` runs it (uvicorn); `create_app` returns the Starlette app to mount
elsewhere (the dashboard mounts it when given a database URL that may read the flags).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from platformdb import db
from platformdb.sdk import flag_io, flags

log = logging.getLogger("platformdb.flags.api")


@dataclass
class ApiSettings:
    database_url: str
    client_tokens: Mapping[str, str] = field(default_factory=dict)  # token -> environment
    admin_tokens: tuple[str, ...] = ()
    role: str | None = None  # run the reads and writes as this role (e.g. service_role)
    default_environment: str = "production"


def _constant_time_lookup(given: str, tokens: Mapping[str, str]) -> str | None:
    """The environment of a client token; every token is compared (no early exit)."""
    found = None
    g = given.encode()
    for token, env in tokens.items():
        if hmac.compare_digest(g, token.encode()):
            found = env
    return found


def _is_admin(given: str, tokens: tuple[str, ...]) -> bool:
    ok = False
    g = given.encode()
    for token in tokens:
        ok |= hmac.compare_digest(g, token.encode())
    return ok


def _loopback(request: Request) -> bool:
    host = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host in ("localhost", "testclient")


class _Auth:
    def __init__(self, environment: str, admin: bool):
        self.environment = environment
        self.admin = admin


def create_app(settings: ApiSettings) -> Starlette:
    pool = ConnectionPool(settings.database_url, min_size=0, max_size=4, open=False, kwargs={"autocommit": True})
    registrations: dict[str, dict[str, Any]] = {}
    lock = threading.Lock()
    anonymous = not settings.client_tokens and not settings.admin_tokens

    def authorize(request: Request) -> _Auth | Response:
        if anonymous:
            if not _loopback(request):
                return JSONResponse({"error": "no tokens configured: loopback clients only"}, status_code=403)
            return _Auth(request.query_params.get("environment") or settings.default_environment, True)
        given = request.headers.get("authorization", "")
        if given.lower().startswith("bearer "):
            given = given[7:]
        if given and _is_admin(given, settings.admin_tokens):
            return _Auth(request.query_params.get("environment") or settings.default_environment, True)
        client_env = _constant_time_lookup(given, settings.client_tokens) if given else None
        if client_env is None:
            return JSONResponse({"error": "invalid or missing API token"}, status_code=401)
        return _Auth(client_env, False)

    opened = threading.Lock()

    def connection() -> Any:
        # opened on first use: a mounted app's lifespan does not run
        if pool.closed:
            with opened:
                if pool.closed:
                    pool.open()
        return pool.connection()

    def _conn_setup(conn: psycopg.Connection[Any]) -> None:
        if settings.role:
            db.set_role(conn, settings.role, db.claims_for(settings.role))

    async def features(request: Request) -> Response:
        auth = authorize(request)
        if isinstance(auth, Response):
            return auth
        if auth.environment not in flags.ENVIRONMENTS:
            return JSONResponse({"error": f"unknown environment {auth.environment!r}"}, status_code=400)
        with connection() as conn, conn.transaction():
            _conn_setup(conn)
            state = flag_io.export_state(conn, auth.environment)
        body = flag_io.dumps(state).encode()
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers={"ETag": etag})
        return Response(body, media_type="application/json", headers={"ETag": etag})

    async def register(request: Request) -> Response:
        auth = authorize(request)
        if isinstance(auth, Response):
            return auth
        try:
            payload = json.loads(await request.body() or b"{}")
        except ValueError:
            return JSONResponse({"error": "body must be JSON"}, status_code=400)
        if not isinstance(payload, dict):
            return JSONResponse({"error": "body must be a JSON object"}, status_code=400)
        app_name = str(payload.get("appName") or "unknown")[:200]
        with lock:
            if len(registrations) < 10_000 or app_name in registrations:
                registrations[app_name] = {
                    "appName": app_name,
                    "instanceId": str(payload.get("instanceId") or "")[:200],
                    "sdkVersion": str(payload.get("sdkVersion") or "")[:100],
                    "strategies": [str(s)[:100] for s in (payload.get("strategies") or [])][:50],
                    "environment": auth.environment,
                    "at": time.time(),
                }
        return Response(status_code=202)

    async def metrics(request: Request) -> Response:
        auth = authorize(request)
        if isinstance(auth, Response):
            return auth
        if auth.environment not in flags.ENVIRONMENTS:
            return JSONResponse({"error": f"unknown environment {auth.environment!r}"}, status_code=400)
        try:
            payload = json.loads(await request.body() or b"{}")
            toggles = payload["bucket"]["toggles"]
            assert isinstance(toggles, dict)
        except (ValueError, KeyError, TypeError, AssertionError):
            return JSONResponse({"error": "body must be {bucket: {toggles: {name: {yes, no}}}}"}, status_code=400)
        counts: dict[tuple[str, str, str], int] = {}
        for name, c in list(toggles.items())[:10_000]:
            if not isinstance(name, str) or not isinstance(c, dict):
                continue
            for field_name, reason in (("yes", "match"), ("no", "no_match")):
                n = c.get(field_name)
                if isinstance(n, int) and not isinstance(n, bool) and 0 < n < 10**15:
                    key = name if flags.KEY_RE.fullmatch(name) or _utf8_key(name) else "(invalid)"
                    counts[(key, auth.environment, reason)] = counts.get((key, auth.environment, reason), 0) + n
        if counts:
            with connection() as conn, conn.transaction():
                _conn_setup(conn)
                flags.record_evaluations(conn, counts)
        return Response(status_code=202)

    async def health(request: Request) -> Response:
        return JSONResponse({"health": "GOOD"})

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            pool.close()

    app = Starlette(
        routes=[
            Route("/api/client/features", features),
            Route("/api/client/register", register, methods=["POST"]),
            Route("/api/client/metrics", metrics, methods=["POST"]),
            Route("/health", health),
        ],
        lifespan=lifespan,
    )
    app.state.registrations = registrations
    app.state.pool = pool
    return app


def _utf8_key(name: str) -> bool:
    return 1 <= len(name) <= 100 and not any(ch <= " " or ch in "\x7f|()\"'\\/" for ch in name)
