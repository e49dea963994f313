"""Service registry: register a service, send heartbeats, read health.

A service announces itself once and then keeps a heartbeat going in the background:

    with Heartbeat(url, "payments-api", "api", "1.4.2", "https://payments.internal:8443",
                   status=lambda: ("healthy", {"queue_depth": 3})):
        serve_forever()

Health (view `service_health_overview`): healthy when the last heartbeat is under 2 minutes
old, warning under 5 minutes (or when the service reports degraded), critical after that;
a service that reports unhealthy is shown unhealthy, one that stopped cleanly is stopped.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from uuid import UUID

import psycopg

from platformdb import db
from platformdb.errors import wrap_errors

log = logging.getLogger("platformdb.registry")

SERVICE_TYPES = ("microservice", "edge_function", "api", "worker")
STATUSES = ("healthy", "degraded", "unhealthy", "stopped")
APP_NAME = "platformdb-heartbeat"

REGISTER_SERVICE = """
select public.register_service(
    p_service_name => %(service_name)s, p_service_type => %(service_type)s,
    p_version => %(version)s, p_endpoint => %(endpoint)s,
    p_health_check_url => %(health_check_url)s, p_capabilities => %(capabilities)s::jsonb,
    p_dependencies => %(dependencies)s::jsonb)
"""
SERVICE_HEARTBEAT = """
select public.service_heartbeat(p_service_name => %(service_name)s, p_status => %(status)s,
    p_metrics => %(metrics)s::jsonb)
"""
HEALTH_OVERVIEW = "select * from public.service_health_overview order by service_name"
HEALTH_OF = "select * from public.service_health_overview where service_name = %s"


def register_service(
    conn: psycopg.Connection[Any],
    service_name: str,
    service_type: str,
    version: str,
    endpoint: str,
    health_check_url: str | None = None,
    capabilities: Iterable[str] = (),
    dependencies: Iterable[str] = (),
) -> UUID:
    """Register (or re-register) a service; returns its id. Service only."""
    with wrap_errors():
        row = conn.execute(
            REGISTER_SERVICE,
            {
                "service_name": service_name,
                "service_type": service_type,
                "version": version,
                "endpoint": endpoint,
                "health_check_url": health_check_url,
                "capabilities": json.dumps(list(capabilities)),
                "dependencies": json.dumps(list(dependencies)),
            },
        ).fetchone()
    assert row is not None
    return UUID(str(row[0]))


def service_heartbeat(
    conn: psycopg.Connection[Any],
    service_name: str,
    status: str = "healthy",
    metrics: Mapping[str, Any] | None = None,
) -> bool:
    """One heartbeat; False when the service is not registered. Service only."""
    with wrap_errors():
        row = conn.execute(
            SERVICE_HEARTBEAT,
            {"service_name": service_name, "status": status, "metrics": json.dumps(dict(metrics or {}))},
        ).fetchone()
    return bool(row and row[0])


def health_overview(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    """Rows of `service_health_overview`. Service only."""
    with wrap_errors(), db.dict_cursor(conn) as cur:
        return list(cur.execute(HEALTH_OVERVIEW).fetchall())


def health_of(conn: psycopg.Connection[Any], service_name: str) -> dict[str, Any] | None:
    with wrap_errors(), db.dict_cursor(conn) as cur:
        return cur.execute(HEALTH_OF, (service_name,)).fetchone()


StatusFn = Callable[[], tuple[str, Mapping[str, Any]]]


class Heartbeat:
    """Registers a service and sends heartbeats from a background thread.

    `start()` registers synchronously (bad input raises there, where the caller sees it);
    then every `interval` seconds the thread calls `status()` for (status, metrics) and sends
    a heartbeat. A heartbeat answered False (the row was removed) registers again. Database
    errors are logged and retried on the next beat with a fresh connection: a registry
    outage never takes the service down. `stop()` sends a last heartbeat with status
    "stopped" so the health view shows a clean stop rather than a dead service.

    `role` (e.g. "service_role") runs each call as that role when the login role is not the
    service itself.
    """

    def __init__(
        self,
        database_url: str | None,
        service_name: str,
        service_type: str,
        version: str,
        endpoint: str,
        *,
        health_check_url: str | None = None,
        capabilities: Iterable[str] = (),
        dependencies: Iterable[str] = (),
        interval: float = 30.0,
        status: StatusFn | None = None,
        role: str | None = None,
    ):
        if interval <= 0:
            raise ValueError("interval must be positive")
        self.database_url = db.resolve_url(database_url)
        self.service_name = service_name
        self.service_type = service_type
        self.version = version
        self.endpoint = endpoint
        self.health_check_url = health_check_url
        self.capabilities = list(capabilities)
        self.dependencies = list(dependencies)
        self.interval = interval
        self.status_fn: StatusFn = status or (lambda: ("healthy", {}))
        self.role = role
        self.service_id: UUID | None = None
        self.beats = 0  # heartbeats delivered
        self.failures = 0  # heartbeats that could not be delivered
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._conn: psycopg.Connection[Any] | None = None
        self._lock = threading.Lock()  # one call at a time on the connection

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(
                self.database_url,
                autocommit=True,
                connect_timeout=10,
                application_name=APP_NAME,
                **db.connect_kwargs(self.database_url),
            )
        return self._conn

    def _call(self, fn: Callable[[psycopg.Connection[Any]], Any]) -> Any:
        with self._lock:
            conn = self._connection()
            with conn.transaction():
                if self.role:
                    db.set_role(conn, self.role, db.claims_for(self.role))
                return fn(conn)

    def _drop_connection(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def register(self) -> UUID:
        self.service_id = self._call(
            lambda c: register_service(
                c,
                self.service_name,
                self.service_type,
                self.version,
                self.endpoint,
                self.health_check_url,
                self.capabilities,
                self.dependencies,
            )
        )
        assert self.service_id is not None
        return self.service_id

    def beat(self, status: str | None = None, metrics: Mapping[str, Any] | None = None) -> bool:
        """Send one heartbeat now (the status callback's answer unless given)."""
        if status is None:
            status, metrics = self.status_fn()
        known = bool(self._call(lambda c: service_heartbeat(c, self.service_name, status, metrics)))
        if not known and status != "stopped":
            self.register()
            known = bool(self._call(lambda c: service_heartbeat(c, self.service_name, status, metrics)))
        self.beats += 1
        return known

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.beat()
            except Exception:
                self.failures += 1
                log.warning("heartbeat of %s failed", self.service_name, exc_info=True)
                self._drop_connection()

    def start(self) -> Heartbeat:
        self.register()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{self.service_name}", daemon=True)
        self._thread.start()
        return self

    def stop(self, final_status: str = "stopped") -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.interval + 10)
            self._thread = None
        try:
            self.beat(final_status, {})
        except Exception:
            log.warning("last heartbeat of %s failed", self.service_name, exc_info=True)
        finally:
            self._drop_connection()

    def __enter__(self) -> Heartbeat:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
