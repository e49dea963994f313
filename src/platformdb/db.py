"""Connections: URL resolution, connection roles, pools, and acting as a Supabase role.

Every command and SDK call resolves its database the same way: an explicit URL, else
``DATABASE_URL``, else the embedded dev cluster (``platformdb dev up``).

Three connection roles, one configuration (see docs/operations.md, "Connecting on Supabase"):

- ``DATABASE_URL``: what the application uses. It may be a transaction-mode pooler
  (Supavisor on port 6543, PgBouncer): every statement may run on another server session.
- ``PLATFORMDB_DIRECT_URL``: a session (direct, or a session-mode pooler): LISTEN,
  migrations, session advisory locks, maintenance and pg_cron registration.
- ``PLATFORMDB_REPLICA_URL`` (optional): read-only paths (dashboard, full flag loads).

When only one URL is given everything uses it, as before. Whether a URL reaches a
transaction pooler is stated by ``PLATFORMDB_POOL_MODE`` (``transaction`` or ``session``;
it describes ``DATABASE_URL``) or detected: two client connections that are served by the
same server backend (or one whose backend changes between transactions) are pooled per
transaction. It is never guessed from a port number. Connections to a transaction pooler
are opened with ``prepare_threshold=None``: no server-side prepared statements.

Acting as a role reproduces what PostgREST does for a request: ``SET LOCAL ROLE`` to
``anon``/``authenticated``/``service_role`` and ``request.jwt.claims`` set for the
transaction, so ``auth.uid()`` and RLS behave exactly as in production.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal
from uuid import UUID

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from platformdb.errors import DatabaseUnavailable, PlatformDBError

ROLES = ("anon", "authenticated", "service_role")

DIRECT_URL_ENV = "PLATFORMDB_DIRECT_URL"
REPLICA_URL_ENV = "PLATFORMDB_REPLICA_URL"
POOL_MODE_ENV = "PLATFORMDB_POOL_MODE"
PoolMode = Literal["transaction", "session"]
POOL_MODES: tuple[PoolMode, ...] = ("transaction", "session")

log = logging.getLogger("platformdb.db")


class PoolerRefused(PlatformDBError):
    """A duty that needs a session (migrations, LISTEN, session locks) was given only a
    transaction-mode pooler."""

    sqlstate = "55000"


def resolve_url(database_url: str | None = None) -> str:
    """--database-url, else DATABASE_URL, else the embedded dev cluster."""
    if database_url:
        return database_url
    env = os.environ.get("DATABASE_URL")
    if env:
        return env
    from platformdb import devdb

    url = devdb.dev_url()
    if url is None:
        raise DatabaseUnavailable(
            "no database: pass --database-url, set DATABASE_URL, or run `platformdb dev up`"
        )
    return url


# ---- pool mode: stated or detected ------------------------------------------------------

_modes: dict[str, PoolMode] = {}  # url -> mode, stated by configure() or detected once
_modes_lock = threading.Lock()


def _check_mode(mode: str, source: str) -> PoolMode:
    m = mode.strip().lower()
    if m not in POOL_MODES:
        raise PlatformDBError(f"{source}: pool mode must be one of {', '.join(POOL_MODES)}, got {mode!r}")
    return m  # type: ignore[return-value]


def stated_pool_mode() -> PoolMode | None:
    """PLATFORMDB_POOL_MODE (describes DATABASE_URL), or None when unset."""
    raw = os.environ.get(POOL_MODE_ENV, "").strip()
    return _check_mode(raw, POOL_MODE_ENV) if raw else None


def configure(
    database_url: str | None = None,
    direct_url: str | None = None,
    replica_url: str | None = None,
    pool_mode: str | None = None,
) -> None:
    """Record the process's connection roles (the CLI calls this with its options): later
    `is_pooled`, `direct_url_for` and `replica_url` answers use them. Unset values keep
    their environment defaults."""
    if direct_url:
        os.environ[DIRECT_URL_ENV] = direct_url
    if replica_url:
        os.environ[REPLICA_URL_ENV] = replica_url
    with _modes_lock:
        if pool_mode and database_url:
            _modes[database_url] = _check_mode(pool_mode, "--pool-mode")
        if direct_url:
            _modes[direct_url] = "session"


def detect_pool_mode(url: str, rounds: int = 4) -> PoolMode:
    """'transaction' when the URL reaches a transaction-mode pooler, else 'session'.

    Two client connections each run a few one-statement transactions reading
    pg_backend_pid(): on a direct connection or a session pooler each client keeps one
    backend of its own; a transaction pooler hands the same server backend to both
    clients, or another backend to the same client.
    """
    opts: dict[str, Any] = {"autocommit": True, "prepare_threshold": None, "connect_timeout": 10}
    with psycopg.connect(url, **opts) as a, psycopg.connect(url, **opts) as b:
        seen_a: set[int] = set()
        seen_b: set[int] = set()
        for _ in range(rounds):
            for c, seen in ((a, seen_a), (b, seen_b)):
                row = c.execute("select pg_catalog.pg_backend_pid()").fetchone()
                assert row is not None
                seen.add(int(row[0]))
            if seen_a & seen_b or len(seen_a) > 1 or len(seen_b) > 1:
                return "transaction"
    return "session"


def pool_mode(url: str) -> PoolMode:
    """The URL's pool mode: stated (configure(), PLATFORMDB_POOL_MODE for DATABASE_URL,
    'session' for PLATFORMDB_DIRECT_URL) or else detected once per process."""
    with _modes_lock:
        known = _modes.get(url)
    if known is not None:
        return known
    mode: PoolMode | None = None
    if url == os.environ.get(DIRECT_URL_ENV):
        mode = "session"
    elif url == os.environ.get("DATABASE_URL"):
        mode = stated_pool_mode()
    if mode is None:
        mode = detect_pool_mode(url)
    with _modes_lock:
        _modes[url] = mode
    return mode


def is_pooled(url: str) -> bool:
    """True when `url` reaches a transaction-mode pooler (stated or detected)."""
    return pool_mode(url) == "transaction"


def connect_kwargs(url: str) -> dict[str, Any]:
    """Connection options the URL needs: no server-side prepared statements on a pooler."""
    return {"prepare_threshold": None} if is_pooled(url) else {}


# ---- the connection roles ----------------------------------------------------------------


def direct_url_for(database_url: str | None = None, direct_url: str | None = None) -> str | None:
    """The session URL for LISTEN, migrations, session locks and maintenance: `direct_url`,
    else PLATFORMDB_DIRECT_URL, else the application URL unless that is a transaction
    pooler (then None: those duties have no suitable URL)."""
    if direct_url:
        return direct_url
    env = os.environ.get(DIRECT_URL_ENV)
    if env:
        return env
    url = resolve_url(database_url)
    return None if is_pooled(url) else url


def require_direct_url(database_url: str | None = None, direct_url: str | None = None, *, duty: str) -> str:
    """The session URL for `duty`, or PoolerRefused naming PLATFORMDB_DIRECT_URL."""
    url = direct_url_for(database_url, direct_url)
    if url is None:
        raise PoolerRefused(
            f"{duty} needs a session connection, but the database URL reaches a transaction-mode"
            f" pooler (every transaction may run on another server session); set {DIRECT_URL_ENV}"
            " (or --direct-url) to a direct or session-mode URL (on Supabase: the direct"
            " connection or the session pooler on port 5432)"
        )
    return url


def replica_url(replica_url: str | None = None) -> str | None:
    """The read-replica URL (--replica-url, PLATFORMDB_REPLICA_URL), or None."""
    return replica_url or os.environ.get(REPLICA_URL_ENV) or None


def read_url(database_url: str | None = None, replica: str | None = None) -> str:
    """Where read-only paths read: the replica when one is set, else the application URL."""
    return replica_url(replica) or resolve_url(database_url)


@dataclass(frozen=True)
class Topology:
    """Which URL serves what (printed by `platformdb doctor`)."""

    database_url: str
    direct_url: str | None  # None: no session URL (DATABASE_URL is a transaction pooler)
    replica_url: str | None
    pooled: bool  # DATABASE_URL is a transaction-mode pooler

    @property
    def listen_url(self) -> str | None:
        return self.direct_url

    @property
    def read_url(self) -> str:
        return self.replica_url or self.database_url


def topology(
    database_url: str | None = None, direct_url: str | None = None, replica: str | None = None
) -> Topology:
    app = resolve_url(database_url)
    return Topology(app, direct_url_for(app, direct_url), replica_url(replica), is_pooled(app))


def connect(database_url: str | None = None, **kwargs: Any) -> psycopg.Connection[Any]:
    """A connection to the application URL (or `database_url`), pooler-safe when needed."""
    url = resolve_url(database_url)
    for k, v in connect_kwargs(url).items():
        kwargs.setdefault(k, v)
    return psycopg.connect(url, **kwargs)


def connect_direct(
    database_url: str | None = None, direct_url: str | None = None, *, duty: str = "this command", **kwargs: Any
) -> psycopg.Connection[Any]:
    """A session connection (PLATFORMDB_DIRECT_URL, or the only URL when it is no pooler)."""
    return psycopg.connect(require_direct_url(database_url, direct_url, duty=duty), **kwargs)


def pool(
    database_url: str | None = None, min_size: int = 1, max_size: int = 10, **kwargs: Any
) -> ConnectionPool:
    """A client-side pool on the application URL (pooler-safe when it is a transaction pooler)."""
    url = resolve_url(database_url)
    return ConnectionPool(
        url, min_size=min_size, max_size=max_size, open=True, kwargs={**connect_kwargs(url), **kwargs}
    )


def claims_for(role: str, user_id: UUID | str | None = None, **extra: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {"role": role, **extra}
    if user_id is not None:
        claims["sub"] = str(user_id)
    return claims


def set_role(conn: psycopg.Connection[Any], role: str, claims: dict[str, Any]) -> None:
    """Inside the current transaction: become `role` with these JWT claims (SET LOCAL)."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, got {role!r}")
    # The claims with SET LOCAL (not set_config(…, true)): on a Citus coordinator with
    # citus.propagate_set_commands = 'local' it reaches the workers, where the row-level
    # security of the shards reads the claims. The role with set_config(…, true), which Citus
    # does not forward: Citus already connects to the workers as the current user, and a
    # forwarded SET LOCAL ROLE would also switch the connections a SECURITY DEFINER function
    # opens as its owner. On one PostgreSQL both forms are the same.
    conn.execute(sql.SQL("set local request.jwt.claims = {}").format(sql.Literal(json.dumps(claims))))
    conn.execute("select pg_catalog.set_config('role', %s, true)", (role,))


@contextmanager
def acting_as(
    conn: psycopg.Connection[Any],
    role: str,
    user_id: UUID | str | None = None,
    **claims: Any,
) -> Iterator[psycopg.Connection[Any]]:
    """A transaction in which the connection acts as `role` (and user `user_id`).

    The role and claims are transaction-local: they end with the block, whether it commits
    (normal exit) or rolls back (exception).
    """
    with conn.transaction():
        set_role(conn, role, claims_for(role, user_id, **claims))
        yield conn
        if conn.info.transaction_status == psycopg.pq.TransactionStatus.INERROR:
            # an error was caught inside the block: committing would silently roll back
            raise PlatformDBError(
                f"a statement failed inside acting_as({role!r}) and its error was caught there;"
                " the whole transaction is rolled back (catch errors outside the block)"
            )


def as_user(conn: psycopg.Connection[Any], user_id: UUID | str, **claims: Any):  # type: ignore[no-untyped-def]
    """Act as the signed-in user `user_id` (role authenticated)."""
    return acting_as(conn, "authenticated", user_id, **claims)


def as_service(conn: psycopg.Connection[Any]):  # type: ignore[no-untyped-def]
    """Act as the backend service (role service_role)."""
    return acting_as(conn, "service_role")


def as_anon(conn: psycopg.Connection[Any]):  # type: ignore[no-untyped-def]
    """Act as an anonymous caller (role anon)."""
    return acting_as(conn, "anon")


def dict_cursor(conn: psycopg.Connection[Any]) -> psycopg.Cursor[dict[str, Any]]:
    return conn.cursor(row_factory=dict_row)
