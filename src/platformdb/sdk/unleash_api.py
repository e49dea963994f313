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
token may do all of that for any environment (``?environment=``), and is the only one that
may write (``POST /api/admin/features-batch/import`` on `flags serve`). Without any token
configured the server answers loopback clients only, and only requests addressed to a
loopback host name (no DNS rebinding from a browser).

The database is reached through two functions only: ``feature_flags_client_state`` (read)
and ``record_feature_flag_evaluations`` (the metrics). `platformdb flags serve` runs it
(uvicorn) as the connecting user or ``--role``; the dashboard mounts the same app at
``/api`` (`create_app(..., prefix="")`) as the role ``platformdb_flags_api``, which has
EXECUTE on those two functions and nothing else (see dashboard/access.py).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from platformdb import db, strict_json
from platformdb.errors import PlatformDBError
from platformdb.sdk import flag_io, flags

log = logging.getLogger("platformdb.flags.api")


FLAGS_API_ROLE = "platformdb_flags_api"
CLIENT_STATE = "select public.feature_flags_client_state(p_environment => %s)::text"
ENVIRONMENT_NAMES = ("development", "staging", "production")
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1", "[::1]")


@dataclass
class ApiSettings:
    database_url: str
    client_tokens: Mapping[str, str] = field(default_factory=dict)  # token -> environment
    admin_tokens: tuple[str, ...] = ()
    role: str | None = None  # run the reads and writes as this role (e.g. service_role)
    default_environment: str = "production"
    writes: bool = True  # the admin import endpoint (off where the role may not write flags)


class TokenError(ValueError):
    pass


def parse_client_tokens(items: list[str]) -> dict[str, str]:
    """``ENVIRONMENT:TOKEN`` items (or comma-separated lists of them) -> {token: environment}."""
    tokens: dict[str, str] = {}
    for raw in items:
        for item in raw.split(","):
            if not item.strip():
                continue
            env, sep, token = item.strip().partition(":")
            if not sep or not token or env not in ENVIRONMENT_NAMES:
                raise TokenError(
                    f"a client token must be ENVIRONMENT:TOKEN (development, staging, production), got {item!r}"
                )
            if len(token) < 16:
                raise TokenError(f"a client token must be at least 16 characters ({env})")
            tokens[token] = env
    return tokens


def tokens_from(client: list[str] | None, admin: list[str] | None) -> tuple[dict[str, str], tuple[str, ...]]:
    """The command line's tokens plus PLATFORMDB_UNLEASH_CLIENT_TOKENS (comma-separated)."""
    import os

    raw = list(client or [])
    if os.environ.get("PLATFORMDB_UNLEASH_CLIENT_TOKENS"):
        raw.append(os.environ["PLATFORMDB_UNLEASH_CLIENT_TOKENS"])
    tokens = parse_client_tokens(raw)
    for t in admin or ():
        if len(t) < 16:
            raise TokenError("an admin token must be at least 16 characters")
    return tokens, tuple(admin or ())


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
    """A loopback client that addressed a loopback host name (a page of another site whose
    name resolves to 127.0.0.1 sends its own name: refused)."""
    host = request.client.host if request.client else ""
    try:
        client_ok = ipaddress.ip_address(host).is_loopback
    except ValueError:
        client_ok = host in ("localhost", "testclient")
    return client_ok and (request.url.hostname or "") in LOOPBACK_NAMES


class _Auth:
    def __init__(self, environment: str, admin: bool):
        self.environment = environment
        self.admin = admin


def create_app(settings: ApiSettings, prefix: str = "/api") -> Starlette:
    """The client API; its routes under `prefix` ("" when mounted at /api by another app)."""
    pool = ConnectionPool(
        settings.database_url,
        min_size=0,
        max_size=4,
        open=False,
        kwargs={
            "autocommit": True,
            "application_name": "platformdb-flags-api",
            **db.connect_kwargs(settings.database_url),
        },
        name="platformdb-flags-api",
    )
    registrations: dict[str, dict[str, Any]] = {}
    lock = threading.Lock()
    anonymous = not settings.client_tokens and not settings.admin_tokens

    def authorize(request: Request) -> _Auth | Response:
        if anonymous:
            if not _loopback(request):
                return JSONResponse(
                    {"error": "no tokens configured: loopback clients addressing a loopback host only"},
                    status_code=403,
                )
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

    @contextmanager
    def transaction() -> Iterator[psycopg.Connection[Any]]:
        """One transaction as the configured role (SET LOCAL: right on a transaction pooler)."""
        # opened on first use: a mounted app's lifespan does not run
        if pool.closed:
            with opened:
                if pool.closed:
                    pool.open()
        with pool.connection() as conn, conn.transaction():
            if settings.role in db.ROLES:
                db.set_role(conn, settings.role, db.claims_for(settings.role))
            elif settings.role:
                conn.execute("select pg_catalog.set_config('role', %s, true)", (settings.role,))
            conn.execute("select pg_catalog.set_config('statement_timeout', '10s', true)")
            yield conn

    def _db_refusal(exc: psycopg.Error) -> Response:
        # 42501: the login may not become the role; 22023: the role does not exist (yet)
        if exc.sqlstate == "42501" or (settings.role and exc.sqlstate == "22023" and "role" in str(exc)):
            log.error("flags API: %s", exc)
            return JSONResponse(
                {
                    "error": f"the database refused the flags API's role {settings.role or '(login)'}: "
                    f"{exc.diag.message_primary}"
                },
                status_code=503,
            )
        raise exc

    def client_state(environment: str) -> dict[str, Any]:
        with transaction() as conn:
            row = conn.execute(CLIENT_STATE, (environment,)).fetchone()
        return json.loads(row[0]) if row else {"version": 2, "features": [], "segments": []}

    async def features(request: Request) -> Response:
        auth = authorize(request)
        if isinstance(auth, Response):
            return auth
        if auth.environment not in flags.ENVIRONMENTS:
            return JSONResponse({"error": f"unknown environment {auth.environment!r}"}, status_code=400)
        try:
            state = await run_in_threadpool(client_state, auth.environment)
        except psycopg.Error as exc:
            return _db_refusal(exc)
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
            payload = strict_json.loads((await request.body())[:1_000_000] or b"{}")
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

    def store_counts(counts: dict[tuple[str, str, str], int]) -> None:
        with transaction() as conn:
            flags.record_evaluations(conn, counts)

    async def metrics(request: Request) -> Response:
        auth = authorize(request)
        if isinstance(auth, Response):
            return auth
        if auth.environment not in flags.ENVIRONMENTS:
            return JSONResponse({"error": f"unknown environment {auth.environment!r}"}, status_code=400)
        try:
            payload = strict_json.loads(await request.body() or b"{}")
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
            try:
                await run_in_threadpool(store_counts, counts)
            except psycopg.Error as exc:
                return _db_refusal(exc)
        return Response(status_code=202)

    def import_admin(state: Mapping[str, Any], environment: str) -> flag_io.ImportResult:
        with transaction() as conn:
            return flag_io.import_any(conn, state, environment=environment)

    async def admin_import(request: Request) -> Response:
        """Unleash's import request {project?, environment, data: <admin export>} (or a bare
        export / client-API state); admin token only."""
        auth = authorize(request)
        if isinstance(auth, Response):
            return auth
        if not auth.admin or anonymous:
            return JSONResponse({"error": "writes need the admin token"}, status_code=403)
        if not settings.writes:
            return JSONResponse({"error": "this server does not take writes"}, status_code=403)
        try:
            payload = strict_json.loads((await request.body())[:16_000_000] or b"{}")
            assert isinstance(payload, dict)
        except (ValueError, AssertionError):
            return JSONResponse({"error": "body must be a JSON object"}, status_code=400)
        data = payload.get("data", payload)
        environment = payload.get("environment") or request.query_params.get("environment") or "all"
        if environment not in flags.FLAG_ENVIRONMENTS or not isinstance(data, dict):
            return JSONResponse({"error": "environment: development, staging, production or all"}, status_code=400)
        try:
            result = await run_in_threadpool(import_admin, data, environment)
        except psycopg.Error as exc:
            return _db_refusal(exc)
        except (PlatformDBError, ValueError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(
            {"features": result.features, "segments": result.segments, "refused": result.refused},
            status_code=200 if not result.refused else 422,
        )

    async def health(request: Request) -> Response:
        return JSONResponse({"health": "GOOD"})

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            pool.close()

    routes = [
        Route(prefix + "/client/features", features),
        Route(prefix + "/client/register", register, methods=["POST"]),
        Route(prefix + "/client/metrics", metrics, methods=["POST"]),
    ]
    if settings.writes:
        routes.append(Route(prefix + "/admin/features-batch/import", admin_import, methods=["POST"]))
    if prefix:
        routes.append(Route("/health", health))
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.registrations = registrations
    app.state.pool = pool
    return app


def _utf8_key(name: str) -> bool:
    return 1 <= len(name) <= 100 and not any(ch <= " " or ch in "\x7f|()\"'\\/" for ch in name)
