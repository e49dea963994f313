"""The SDK for asyncio: every capability awaitable, on a `psycopg.AsyncConnection`.

    from platformdb import aio
    from platformdb.aio import payments

    async with await aio.connect() as conn:
        async with aio.as_service(conn):
            tx = await payments.create_transaction(conn, user_id, "ride_payment", "ride", 1250)

`platformdb.aio.<capability>` has, for every function of `platformdb.sdk.<capability>` that
takes a connection first, an `async def` twin with the same name, parameters, return type and
exceptions; the other public names (dataclasses, pure helpers) are the synchronous module's.

How: the twin runs the unchanged synchronous function in a greenlet (`run_sync`) over a
synchronous-looking facade of the async connection whose every call awaits the real one on
the event loop (`await_`). No thread pool, no second copy of any SQL statement or parameter
mapping. Callbacks an SDK function takes (`events.catch_up`'s handler, `cache.get_or_compute`'s
compute) may be `async def` on this face. Synchronous code of your own can run the same way:
`await aio.run_sync(fn, conn_facade, ...)` with `aio.await_(coro)` inside it.

Connections, pools and roles mirror `platformdb.db`: the same URL resolution, the same
transaction-local role and JWT claims (the SQL of `db.set_role` itself runs through the bridge).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from platformdb import db
from platformdb.aio._bridge import SyncConnection, await_, facade, run_sync
from platformdb.errors import PlatformDBError

__all__ = [
    "ROLES",
    "ActingAs",
    "SyncConnection",
    "acting_as",
    "as_anon",
    "as_service",
    "as_user",
    "await_",
    "connect",
    "dict_cursor",
    "facade",
    "pool",
    "run_sync",
    "set_role",
]

ROLES = db.ROLES
# what acting_as / as_user / as_service / as_anon return
ActingAs = AbstractAsyncContextManager[psycopg.AsyncConnection[Any]]


async def connect(database_url: str | None = None, **kwargs: Any) -> psycopg.AsyncConnection[Any]:
    """`db.connect`, async: an explicit URL, else DATABASE_URL, else the embedded dev cluster;
    no server-side prepared statements when the URL is a transaction pooler."""
    url = db.resolve_url(database_url)
    for k, v in (await _connect_kwargs(url)).items():
        kwargs.setdefault(k, v)
    return await psycopg.AsyncConnection.connect(url, **kwargs)


async def _connect_kwargs(url: str) -> dict[str, Any]:
    # stated, or detected once per process with two short sync connections (off the loop)
    return await asyncio.to_thread(db.connect_kwargs, url)


async def pool(
    database_url: str | None = None, min_size: int = 1, max_size: int = 10, **kwargs: Any
) -> AsyncConnectionPool[psycopg.AsyncConnection[Any]]:
    """`db.pool`, async: an opened `AsyncConnectionPool` (close it with `await p.close()`,
    or use it as `async with await aio.pool() as p:`)."""
    url = db.resolve_url(database_url)
    kwargs["kwargs"] = {**(await _connect_kwargs(url)), **kwargs.get("kwargs", {})}
    p: AsyncConnectionPool[psycopg.AsyncConnection[Any]] = AsyncConnectionPool(
        url, min_size=min_size, max_size=max_size, open=False, **kwargs
    )
    await p.open()
    return p


async def set_role(conn: psycopg.AsyncConnection[Any], role: str, claims: dict[str, Any]) -> None:
    """`db.set_role`, async: inside the current transaction become `role` with these claims."""
    await run_sync(db.set_role, facade(conn), role, claims)


@asynccontextmanager
async def acting_as(
    conn: psycopg.AsyncConnection[Any],
    role: str,
    user_id: UUID | str | None = None,
    **claims: Any,
) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """`db.acting_as`, async: a transaction in which the connection acts as `role` (and user
    `user_id`). Role and claims are transaction-local; they end with the block, whether it
    commits (normal exit) or rolls back (exception)."""
    async with conn.transaction():
        await set_role(conn, role, db.claims_for(role, user_id, **claims))
        yield conn
        if conn.info.transaction_status == psycopg.pq.TransactionStatus.INERROR:
            # an error was caught inside the block: committing would silently roll back
            raise PlatformDBError(
                f"a statement failed inside acting_as({role!r}) and its error was caught there;"
                " the whole transaction is rolled back (catch errors outside the block)"
            )


def as_user(conn: psycopg.AsyncConnection[Any], user_id: UUID | str, **claims: Any) -> ActingAs:
    """Act as the signed-in user `user_id` (role authenticated)."""
    return acting_as(conn, "authenticated", user_id, **claims)


def as_service(conn: psycopg.AsyncConnection[Any]) -> ActingAs:
    """Act as the backend service (role service_role)."""
    return acting_as(conn, "service_role")


def as_anon(conn: psycopg.AsyncConnection[Any]) -> ActingAs:
    """Act as an anonymous caller (role anon)."""
    return acting_as(conn, "anon")


def dict_cursor(conn: psycopg.AsyncConnection[Any]) -> psycopg.AsyncCursor[dict[str, Any]]:
    return conn.cursor(row_factory=dict_row)

