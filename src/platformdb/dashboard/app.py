"""The dashboard: a Starlette app of server-rendered pages, inline SVG charts and /metrics.

Every database read runs as ``platformdb_monitor`` in a read-only transaction (see
access.py); the redrive button runs as ``platformdb_operator``. With a token every request
needs it (``Authorization: Bearer …``, or the cookie set by the login form); without one
the app only answers requests addressed to a loopback host name (no DNS rebinding).
Nothing is fetched from outside: the CSS, the script and the icon are served from
``/static``, and the Content-Security-Policy allows nothing else.

Unleash's client API is mounted at ``/api`` (``/api/client/features``, ``register``,
``metrics``: Unleash's SDKs take ``http://host:8050/api`` as their URL). It runs as the role
``platformdb_flags_api`` (EXECUTE on the two functions it needs, see access.py) on the
primary, with its own tokens (client tokens per environment, an admin token), not the
dashboard's; without them it answers loopback clients only. It takes no writes.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

import psycopg
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from psycopg_pool import PoolTimeout
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from platformdb.dashboard import access, charts, exporter, health
from platformdb.dashboard import queries as q
from platformdb.sdk import unleash_api

HERE = Path(__file__).resolve().parent
COOKIE = "platformdb_dashboard"
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
ORIGIN = datetime(2000, 1, 3, tzinfo=UTC)  # the origin of date_bin in the monitoring functions
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
PAGES = [
    ("/", "Overview"),
    ("/services", "Services"),
    ("/queues", "Queues & jobs"),
    ("/payments", "Payments"),
    ("/whatsapp", "WhatsApp"),
    ("/cache", "Cache"),
    ("/flags", "Flags"),
    ("/partitions", "Partitions"),
    ("/series", "Metrics"),
    ("/queries", "Queries"),
]
STATUS_CSS = {
    "completed": "st-completed",
    "failed": "st-failed",
    "pending": "st-pending",
    "processing": "st-processing",
    "cancelled": "st-cancelled",
    "reversed": "st-reversed",
}


@dataclass
class Settings:
    database_url: str
    replica_url: str | None = None  # pages and /metrics read here when set; the redrive writes the primary
    token: str | None = None
    loopback_only: bool = True  # answer only requests addressed to a loopback host name
    setup_roles: bool | None = None  # None: when needed and the user may
    pool_size: int = 4
    secret: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    flags_client_tokens: dict[str, str] = field(default_factory=dict)  # Unleash client API: token -> environment
    flags_admin_tokens: tuple[str, ...] = ()


@dataclass
class State:
    settings: Settings
    pool: access.MonitorPool  # reads: the replica when one is set
    can_operate: bool
    setup_notes: list[str]
    write_pool: access.MonitorPool | None = None  # the primary, when reads go to a replica

    @property
    def primary_pool(self) -> access.MonitorPool:
        return self.write_pool or self.pool


def now_utc() -> datetime:
    return datetime.now(UTC)


def bin_start(t: datetime, bucket: timedelta) -> datetime:
    return ORIGIN + ((t - ORIGIN) // bucket) * bucket


def bucket_range(span: timedelta, bucket: timedelta, end: datetime | None = None) -> list[datetime]:
    end = end or now_utc()
    first, last = bin_start(end - span, bucket), bin_start(end, bucket)
    out = []
    t = first
    while t <= last:
        out.append(t)
        t += bucket
    return out


def _session_value(token: str) -> str:
    return hmac.new(token.encode(), b"platformdb-dashboard-session", hashlib.sha256).hexdigest()


def csrf_token(secret: bytes, action: str) -> str:
    return hmac.new(secret, action.encode(), hashlib.sha256).hexdigest()


async def _form(request: Request) -> dict[str, str]:
    body = (await request.body())[:65536]
    return {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()}


# ---- middleware ------------------------------------------------------------------------


def guard_middleware(settings: Settings) -> Middleware:
    async def dispatch(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        if settings.loopback_only and (request.url.hostname or "") not in LOOPBACK_HOSTS:
            return PlainTextResponse("unknown host", status_code=421)
        path = request.url.path
        # Unleash's client API checks its own tokens (its SDKs do not hold the dashboard's)
        own_auth = path == "/login" or path.startswith(("/static/", "/api/client/"))
        if settings.token and not own_auth:
            if not _authorized(request, settings.token):
                return _unauthorized(request)
        response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        # same-origin (not no-referrer): with no-referrer a browser sends "Origin: null" on our own
        # form posts, which the redrive check must refuse
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Frame-Options", "DENY")
        return response

    return Middleware(BaseHTTPMiddleware, dispatch=dispatch)


def _authorized(request: Request, token: str) -> bool:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer ") and hmac.compare_digest(auth[7:].strip().encode(), token.encode()):
        return True
    cookie = request.cookies.get(COOKIE, "")
    return bool(cookie) and hmac.compare_digest(cookie.encode(), _session_value(token).encode())


def _unauthorized(request: Request) -> Response:
    if request.url.path == "/metrics" or "text/html" not in request.headers.get("accept", ""):
        return PlainTextResponse(
            "401: a token is required (Authorization: Bearer <token>)",
            status_code=401,
            headers={"WWW-Authenticate": 'Bearer realm="platformdb"'},
        )
    templates: Jinja2Templates = request.app.state.templates
    return templates.TemplateResponse(
        request,
        "login.html",
        {"next": request.url.path, "pages": [], "active": "", "failed": False},
        status_code=401,
        headers={"WWW-Authenticate": 'Bearer realm="platformdb"'},
    )


# ---- pages -----------------------------------------------------------------------------


def _state(request: Request) -> State:
    return request.app.state.dashboard  # type: ignore[no-any-return]


@contextmanager
def _primary_conn(request: Request) -> Iterator[q.Conn]:
    """A read-only checkout on the primary: the cache's unlogged tables are not on a replica."""
    state = _state(request)
    if state.write_pool is None:
        with _conn(request) as conn:
            yield conn
        return
    with state.write_pool.connection() as conn:
        yield conn


@contextmanager
def _conn(request: Request) -> Iterator[q.Conn]:
    with _state(request).pool.connection() as conn:
        request.state.replica = q.replica_status(conn)
        yield conn


def _render(request: Request, template: str, active: str, **ctx: Any) -> Response:
    templates: Jinja2Templates = request.app.state.templates
    base = {
        "pages": PAGES,
        "active": active,
        "generated_at": now_utc(),
        "replica": getattr(request.state, "replica", None),
        "windows": q.WINDOWS,
        "sources": q.SOURCES,
    }
    return templates.TemplateResponse(request, template, {**base, **ctx})


def overview(request: Request) -> Response:
    day = q.WINDOWS["24h"]
    hourly = q.Window("24h", "24 hours", timedelta(hours=24), timedelta(hours=1))
    with _conn(request) as conn:
        services = q.services(conn)
        queues, jobs = q.queues(conn), q.jobs(conn)
        volume, open_rows = q.payment_volume(conn, hourly), q.payment_open(conn)
        wa = q.whatsapp(conn)
        flags = q.flags(conn)
        coverage = q.partition_coverage(conn)
        recent = q.metric_series(conn, timedelta(minutes=15))
        daily = q.metric_series(conn, day.span)
        latency = [
            (r, q.metric_timeseries(conn, r["service_name"], r["metric_name"], day))
            for r in daily
            if r["metric_type"] == "latency"
        ][:8]
    with _primary_conn(request) as conn:
        cache_rows, route = q.cache(conn), q.route_cache(conn)
    s = q.SOURCES
    areas = [
        health.services(services, s["services"]),
        health.queues(queues, s["queues"]),
        health.jobs(jobs, s["jobs"]),
        health.payments(volume, open_rows, s["payment_volume"], s["payment_open"]),
        health.whatsapp(wa, s["whatsapp"]),
        health.cache(cache_rows, route, s["cache"], s["route_cache"]),
        health.flags(flags, s["flags"]),
        health.partitions(coverage, s["partition_coverage"]),
        health.metrics(recent, daily, s["metric_series"]),
    ]
    chart = _payment_count_chart(volume, hourly)
    buckets = bucket_range(day.span, day.bucket)
    lines = []
    for r, points in latency:
        by = {p["bucket"]: p["p95"] for p in points}
        lines.append(charts.Series(f"{r['service_name']} {r['metric_name']}", [(b, by.get(b)) for b in buckets]))
    latency_chart = charts.line_chart(
        lines,
        label="p95 latency per service, last 24 hours",
        x_start=buckets[0],
        x_end=buckets[-1] + day.bucket,
        unit="ms",
    )
    return _render(request, "overview.html", "/", areas=areas, payments_chart=chart, latency_chart=latency_chart)


def services_page(request: Request) -> Response:
    with _conn(request) as conn:
        rows = q.services(conn)
    chart = charts.hbars(
        [(r["service_name"], float(r["seconds_since_heartbeat"] or 0)) for r in rows],
        label="seconds since the last heartbeat",
        unit=" s",
        css="c1",
    )
    return _render(request, "services.html", "/services", rows=rows, chart=chart)


def queues_page(request: Request) -> Response:
    w = q.window(request.query_params.get("window"), "6h")
    with _conn(request) as conn:
        queues, jobs = q.queues(conn), q.jobs(conn)
        dead = q.dead_letters(conn, 50)
        through = q.throughput(conn, w)
    buckets = bucket_range(w.span, w.bucket)
    series: dict[str, dict[datetime, float]] = {}
    for r in through:
        series.setdefault(f"{r['kind']}: {r['name']}", {})[r["bucket"]] = float(r["completed"])
    lines = [charts.Series(name, [(b, pts.get(b, 0.0)) for b in buckets]) for name, pts in sorted(series.items())]
    chart = charts.line_chart(
        lines,
        label=f"completed per {_human(w.bucket)}",
        x_start=buckets[0],
        x_end=buckets[-1] + w.bucket,
    )
    redrivable = sorted({(d["kind"], d["name"]) for d in dead})
    state = _state(request)
    return _render(
        request,
        "queues.html",
        "/queues",
        queues=queues,
        jobs=jobs,
        dead=dead,
        chart=chart,
        window=w,
        redrivable=redrivable,
        can_operate=state.can_operate,
        csrf=csrf_token(state.settings.secret, "redrive"),
        redriven=request.query_params.get("redriven"),
    )


async def redrive(request: Request) -> Response:
    state = _state(request)
    form = await _form(request)
    origin = request.headers.get("origin")
    if origin and origin.split("://", 1)[-1] != request.headers.get("host"):
        return PlainTextResponse("cross-origin request refused", status_code=403)
    if not hmac.compare_digest(form.get("csrf", ""), csrf_token(state.settings.secret, "redrive")):
        return PlainTextResponse("missing or stale form token: reload the page", status_code=403)
    if form.get("confirm") != "yes":
        return PlainTextResponse("the redrive must be confirmed", status_code=400)
    if not state.can_operate:
        return PlainTextResponse("this login is not a member of platformdb_operator", status_code=403)
    kind, name = form.get("kind", ""), form.get("name", "")
    client = request.client.host if request.client else "unknown"
    from starlette.concurrency import run_in_threadpool

    try:
        n = await run_in_threadpool(access.redrive, state.primary_pool, kind, name, 1000, f"dashboard@{client}")
    except psycopg.Error as exc:
        if exc.sqlstate and exc.sqlstate[:2] == "22":
            return PlainTextResponse(f"refused: {exc.diag.message_primary}", status_code=400)
        raise
    query = urlencode({"redriven": f"{n} {kind} dead letters of {name}"})
    return RedirectResponse(f"/queues?{query}", status_code=303)


def _payment_count_chart(volume: list[dict[str, Any]], w: q.Window) -> Any:
    buckets = bucket_range(w.span, w.bucket)
    index = {b: i for i, b in enumerate(buckets)}
    statuses = sorted({r["status"] for r in volume}, key=list(STATUS_CSS).index)
    stacks = {s: [0.0] * len(buckets) for s in statuses}
    for r in volume:
        i = index.get(r["bucket"])
        if i is not None:
            stacks[r["status"]][i] += float(r["transactions"])
    return charts.stacked_bars(
        buckets,
        stacks,
        label=f"transactions per {_human(w.bucket)} by status",
        bucket_seconds=w.bucket.total_seconds(),
        css=STATUS_CSS,
    )


def payments_page(request: Request) -> Response:
    w = q.window(request.query_params.get("window"), "24h")
    with _conn(request) as conn:
        volume, open_rows = q.payment_volume(conn, w), q.payment_open(conn)
    count_chart = _payment_count_chart(volume, w)
    buckets = bucket_range(w.span, w.bucket)
    index = {b: i for i, b in enumerate(buckets)}
    volume_charts = []
    totals: dict[tuple[str, str], dict[str, float]] = {}
    for currency in sorted({r["currency"] for r in volume}):
        rows = [r for r in volume if r["currency"] == currency]
        statuses = sorted({r["status"] for r in rows}, key=list(STATUS_CSS).index)
        stacks = {s: [0.0] * len(buckets) for s in statuses}
        for r in rows:
            i = index.get(r["bucket"])
            if i is not None:
                stacks[r["status"]][i] += float(r["amount"])
            t = totals.setdefault((currency, r["status"]), {"count": 0.0, "amount": 0.0})
            t["count"] += float(r["transactions"])
            t["amount"] += float(r["amount"])
        volume_charts.append(
            (
                currency,
                charts.stacked_bars(
                    buckets,
                    stacks,
                    label=f"{currency} volume per {_human(w.bucket)} by status",
                    bucket_seconds=w.bucket.total_seconds(),
                    unit=f" {currency}",
                    css=STATUS_CSS,
                ),
            )
        )
    table = [
        {"currency": c, "status": s, "count": int(v["count"]), "amount": v["amount"]}
        for (c, s), v in sorted(totals.items(), key=lambda kv: (kv[0][0], list(STATUS_CSS).index(kv[0][1])))
    ]
    return _render(
        request,
        "payments.html",
        "/payments",
        window=w,
        count_chart=count_chart,
        volume_charts=volume_charts,
        totals=table,
        open_rows=open_rows,
    )


def whatsapp_page(request: Request) -> Response:
    with _conn(request) as conn:
        stats = q.whatsapp(conn)
        sessions = q.whatsapp_sessions(conn)
        failures = q.whatsapp_failures(conn)
        quarantine = q.whatsapp_quarantine(conn)
        costs = q.whatsapp_costs(conn)
    categories = sorted({r["category"] for r in costs})
    days = sorted({r["bucket"] for r in costs}, reverse=True)
    cells = {(r["bucket"], r["category"]): (r["messages"], r["billable"]) for r in costs}
    cost_rows = [(day, {c: cells.get((day, c)) for c in categories}) for day in days]
    billable_chart = charts.hbars(
        [(c, float(sum(r["billable"] for r in costs if r["category"] == c))) for c in categories],
        label="billable messages by category, last 7 days",
        css="c2",
    )
    funnel = charts.funnel(
        [
            ("sent", int(stats.get("sent_24h") or 0)),
            ("delivered", int(stats.get("delivered_24h") or 0)),
            ("read", int(stats.get("read_24h") or 0)),
        ],
        label="delivery funnel, last 24 hours",
    )
    failure_chart = charts.hbars(
        [(r["error"], float(r["failures"])) for r in failures], label="failures by error, last 24 hours", css="c3"
    )
    return _render(
        request,
        "whatsapp.html",
        "/whatsapp",
        stats=stats,
        sessions=sessions,
        failures=failures,
        quarantine=quarantine,
        categories=categories,
        cost_rows=cost_rows,
        billable_chart=billable_chart,
        funnel=funnel,
        failure_chart=failure_chart,
    )


def cache_page(request: Request) -> Response:
    w = q.window(request.query_params.get("window"), "24h")
    span = max(w.span, timedelta(hours=1))
    with _primary_conn(request) as conn:
        rows, route = q.cache(conn), q.route_cache(conn)
        rates = q.cache_hit_rate(conn, span)
    hour = timedelta(hours=1)
    buckets = bucket_range(span, hour)
    acc: dict[str, dict[datetime, list[float]]] = {}
    for r in rates:
        name = "cache" if r["namespace"] == "cache" else "route cache"
        cell = acc.setdefault(name, {}).setdefault(r["bucket"], [0.0, 0.0])
        cell[0] += float(r["hits"])
        cell[1] += float(r["misses"])
    lines = [
        charts.Series(
            name,
            [(b, _hit_rate(pts.get(b))) for b in buckets],
        )
        for name, pts in sorted(acc.items())
    ]
    chart = charts.line_chart(
        lines, label="hit rate per hour", x_start=buckets[0], x_end=buckets[-1] + hour, unit="%", y_max=100
    )
    return _render(request, "cache.html", "/cache", rows=rows, route=route, chart=chart, window=w)


def _hit_rate(cell: list[float] | None) -> float | None:
    """Hits as a percentage of lookups; None (a gap) for an hour without lookups."""
    if not cell or cell[0] + cell[1] == 0:
        return None
    return 100 * cell[0] / (cell[0] + cell[1])


def flags_page(request: Request) -> Response:
    with _conn(request) as conn:
        rows = q.flags(conn)
        model = q.flag_model(conn)
        segments = q.flag_segments(conn)
    chart = charts.hbars(
        [(f"{r['key']} ({r['environment']})", float(r["evaluations_24h"])) for r in rows if r["evaluations_24h"]][:25],
        label="evaluations in the last 24 hours",
        css="c2",
    )
    segment_names = {s["id"]: s["name"] for s in segments}
    return _render(
        request,
        "flags.html",
        "/flags",
        rows=rows,
        chart=chart,
        model=model,
        segments=segments,
        segment_names=segment_names,
    )


def partitions_page(request: Request) -> Response:
    with _conn(request) as conn:
        coverage, parts = q.partition_coverage(conn), q.partitions(conn)
        maintenance = q.maintenance(conn)
    chart = charts.hbars(
        [(r["parent"], float(r["total_bytes"]) / 1024) for r in coverage], label="size per table", unit=" KiB", css="c4"
    )
    return _render(
        request, "partitions.html", "/partitions", coverage=coverage, parts=parts, chart=chart, maintenance=maintenance
    )


def series_page(request: Request) -> Response:
    w = q.window(request.query_params.get("window"), "6h")
    service = request.query_params.get("service") or ""
    with _conn(request) as conn:
        listing = q.metric_series(conn, w.span)
        shown = [r for r in listing if not service or r["service_name"] == service][:12]
        data = [(r, q.metric_timeseries(conn, r["service_name"], r["metric_name"], w)) for r in shown]
    buckets = bucket_range(w.span, w.bucket)
    x_end = buckets[-1] + w.bucket
    panels = []
    for r, points in data:
        by = {p["bucket"]: p for p in points}
        lines = [
            charts.Series(p, [(b, by[b][p] if b in by else None) for b in buckets], css=css)
            for p, css in (("p50", "c0"), ("p95", "c1"), ("p99", "c3"))
        ]
        panels.append(
            (
                r,
                charts.line_chart(
                    lines,
                    label=f"{r['service_name']} {r['metric_name']} p50/p95/p99",
                    x_start=buckets[0],
                    x_end=x_end,
                    unit=f" {r['unit']}" if r["unit"] else "",
                    width=640,
                    height=240,
                ),
            )
        )
    services = sorted({r["service_name"] for r in listing})
    return _render(
        request,
        "series.html",
        "/series",
        window=w,
        listing=listing,
        panels=panels,
        services=services,
        service=service,
    )


def queries_page(request: Request) -> Response:
    with _conn(request) as conn:
        status = q.query_stats_status(conn)
        objects = q.query_stats(conn, 50) if status.get("readable") else []
        top = q.top_statements(conn, 20) if status.get("readable") else []
    chart = charts.hbars(
        [(r["object_name"], float(r["total_exec_ms"] or 0)) for r in objects[:20]],
        label="total execution time per function or view",
        unit=" ms",
        css="c5",
    )
    return _render(request, "queries.html", "/queries", status=status, objects=objects, top=top, chart=chart)


def sql_page(request: Request) -> Response:
    name = request.path_params["name"]
    with _conn(request) as conn:
        defs = q.definition(conn, name)
    if not defs:
        return _render(request, "sql.html", "", name=name, defs=[], exposed_by=None, panels=[])
    panels = [p for p, src in q.SOURCES.items() if src == name]
    return _render(request, "sql.html", "", name=name, defs=defs, exposed_by=q.EXPOSED_BY.get(name), panels=panels)


def metrics_endpoint(request: Request) -> Response:
    reg = request.app.state.registry
    return Response(generate_latest(reg), media_type=CONTENT_TYPE_LATEST)


async def login(request: Request) -> Response:
    settings = _state(request).settings
    if request.method == "GET" or not settings.token:
        return RedirectResponse("/", status_code=303)
    form = await _form(request)
    nxt = form.get("next") or "/"
    if not nxt.startswith("/") or nxt.startswith("//"):
        nxt = "/"
    if not hmac.compare_digest(form.get("token", "").encode(), settings.token.encode()):
        templates: Jinja2Templates = request.app.state.templates
        return templates.TemplateResponse(
            request, "login.html", {"next": nxt, "pages": [], "active": "", "failed": True}, status_code=401
        )
    response = RedirectResponse(nxt, status_code=303)
    response.set_cookie(COOKIE, _session_value(settings.token), httponly=True, samesite="strict", path="/")
    return response


def healthz(request: Request) -> Response:
    with _conn(request) as conn:
        conn.execute("select 1")
    return PlainTextResponse("ok")


def _human(d: timedelta) -> str:
    s = int(d.total_seconds())
    if s % 86400 == 0:
        return f"{s // 86400} d"
    if s % 3600 == 0:
        return "hour" if s == 3600 else f"{s // 3600} h"
    if s % 60 == 0:
        return "minute" if s == 60 else f"{s // 60} min"
    return f"{s} s"


async def _unavailable(request: Request, exc: Exception) -> Response:
    return HTMLResponse(
        "<!doctype html><title>platformdb</title><h1>Database unavailable</h1>"
        "<p>The dashboard cannot reach PostgreSQL right now; it retries on the next request.</p>",
        status_code=503,
    )


# ---- the app ---------------------------------------------------------------------------


def create_app(settings: Settings) -> Starlette:
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.globals["fmt"] = charts.fmt_number
    flags_api = unleash_api.create_app(
        unleash_api.ApiSettings(
            settings.database_url,
            settings.flags_client_tokens,
            settings.flags_admin_tokens,
            role=access.FLAGS_API_ROLE,
            writes=False,
        ),
        prefix="",
    )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        notes = access.ensure_access(settings.database_url, settings.setup_roles)
        # reads go to the replica when there is one; nothing that writes goes there
        pool = access.monitor_pool(settings.replica_url or settings.database_url, settings.pool_size)
        write_pool = access.monitor_pool(settings.database_url, 2) if settings.replica_url else None
        try:
            primary = write_pool or pool
            app.state.dashboard = State(settings, pool, access.can_operate(primary), notes, write_pool)
            app.state.registry = exporter.registry(pool.connection, write_pool.connection if write_pool else None)
            yield
        finally:
            pool.close()
            if write_pool is not None:
                write_pool.close()
            flags_api.state.pool.close()

    routes = [
        Route("/", overview),
        Route("/services", services_page),
        Route("/queues", queues_page),
        Route("/queues/redrive", redrive, methods=["POST"]),
        Route("/payments", payments_page),
        Route("/whatsapp", whatsapp_page),
        Route("/cache", cache_page),
        Route("/flags", flags_page),
        Route("/partitions", partitions_page),
        Route("/series", series_page),
        Route("/queries", queries_page),
        Route("/sql/{name:str}", sql_page),
        Route("/metrics", metrics_endpoint),
        Route("/login", login, methods=["GET", "POST"]),
        Route("/healthz", healthz),
        Mount("/static", app=StaticFiles(directory=str(HERE / "static")), name="static"),
        Mount("/api", app=flags_api, name="unleash-client-api"),
    ]
    app = Starlette(
        routes=routes,
        middleware=[guard_middleware(settings)],
        lifespan=lifespan,
        exception_handlers={
            psycopg.OperationalError: _unavailable,
            PoolTimeout: _unavailable,
        },
    )
    app.state.templates = templates
    return app
