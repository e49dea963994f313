"""Connections: URL resolution, pools, and acting as a Supabase role.

Every command and SDK call resolves its database the same way: an explicit URL, else
``DATABASE_URL``, else the embedded dev cluster (``platformdb dev up``).

Acting as a role reproduces what PostgREST does for a request: ``SET LOCAL ROLE`` to
``anon``/``authenticated``/``service_role`` and ``request.jwt.claims`` set for the
transaction, so ``auth.uid()`` and RLS behave exactly as in production.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from uuid import UUID

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from platformdb.errors import DatabaseUnavailable, PlatformDBError

ROLES = ("anon", "authenticated", "service_role")


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


def connect(database_url: str | None = None, **kwargs: Any) -> psycopg.Connection[Any]:
    return psycopg.connect(resolve_url(database_url), **kwargs)


def pool(database_url: str | None = None, min_size: int = 1, max_size: int = 10) -> ConnectionPool:
    return ConnectionPool(
        resolve_url(database_url), min_size=min_size, max_size=max_size, open=True
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
    # SET LOCAL (not set_config(…, true)): on a Citus coordinator with
    # citus.propagate_set_commands = 'local' it reaches the workers, where the row-level
    # security of the shards reads the claims; on one PostgreSQL both are the same
    conn.execute(sql.SQL("set local request.jwt.claims = {}").format(sql.Literal(json.dumps(claims))))
    conn.execute(sql.SQL("set local role {}").format(sql.Identifier(role)))


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
