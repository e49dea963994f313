"""Run the synchronous SDK code on an asyncio event loop, without threads.

`run_sync(fn, *args)` starts `fn` in a greenlet. Whenever the code inside needs the database
it calls `await_(coroutine)`: the greenlet switches back to `run_sync`, which awaits the
coroutine on the event loop and switches the result (or the exception) back in. From the
synchronous code's point of view the call simply returned or raised; from the event loop's
point of view `run_sync` is an ordinary coroutine that yields whenever the database is busy.

The SDK functions see a `SyncConnection`: a small facade of `psycopg.AsyncConnection` with
the synchronous method names the SDK uses (execute, cursor with a row factory, fetch*,
transaction(), copy, info), each of which awaits the real asynchronous call through
`await_`. So every SQL statement and parameter mapping of the SDK is written once and runs
unchanged on either face; the errors are the same because `errors.wrap_errors` inside the
SDK sees the same psycopg exceptions.
"""

from __future__ import annotations

import contextvars
import sys
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Any, TypeVar, cast

import greenlet
import psycopg
from psycopg import sql as _sql

T = TypeVar("T")
Query = str | bytes | _sql.SQL | _sql.Composed
Params = Sequence[Any] | dict[str, Any] | None


class _Bridge(greenlet.greenlet):  # type: ignore[misc]
    """The greenlet a synchronous function runs in; its parent is the event loop's task."""


def await_(awaitable: Awaitable[T]) -> T:
    """From synchronous code running under `run_sync`: await `awaitable` and return its result.

    Outside `run_sync` there is no event loop to hand the awaitable to: RuntimeError.
    """
    current = greenlet.getcurrent()
    if not isinstance(current, _Bridge):
        close = getattr(awaitable, "close", None)
        if close is not None:
            close()  # no "coroutine was never awaited" warning on top of the error
        raise RuntimeError("await_() called outside platformdb.aio.run_sync (no event loop to await on)")
    return cast(T, current.parent.switch(awaitable))


async def run_sync(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """Run the synchronous `fn(*args, **kwargs)` on this event loop; its `await_` calls yield."""
    child = _Bridge(fn, greenlet.getcurrent())
    child.gr_context = contextvars.copy_context()
    request = child.switch(*args, **kwargs)
    while not child.dead:
        try:
            value = await request
        except BaseException:  # noqa: BLE001 - delivered to the synchronous code, which decides
            request = child.throw(*sys.exc_info())
        else:
            request = child.switch(value)
    return cast(T, request)


def maybe_await(value: Any) -> Any:
    """A callback's result: awaited when the callback was `async def`, as is otherwise."""
    if isinstance(value, Awaitable):
        return await_(value)
    return value


class SyncCopy:
    """`psycopg.Copy` over an `AsyncCopy`."""

    def __init__(self, manager: Any) -> None:
        self._manager = manager
        self._copy: psycopg.AsyncCopy | None = None

    def __enter__(self) -> SyncCopy:
        self._copy = await_(self._manager.__aenter__())
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        return cast("bool | None", await_(self._manager.__aexit__(exc_type, exc, tb)))

    @property
    def _active(self) -> psycopg.AsyncCopy:
        if self._copy is None:
            raise RuntimeError("copy used outside its with block")
        return self._copy

    def write_row(self, row: Sequence[Any]) -> None:
        await_(self._active.write_row(row))

    def write(self, buffer: bytes | str) -> None:
        await_(self._active.write(buffer))

    def read(self) -> bytes | bytearray | memoryview:
        return await_(self._active.read())

    def read_row(self) -> tuple[Any, ...] | None:
        return await_(self._active.read_row())

    def rows(self) -> Iterator[tuple[Any, ...]]:
        while (row := self.read_row()) is not None:
            yield row

    def set_types(self, types: Sequence[int | str]) -> None:
        self._active.set_types(types)


class SyncCursor:
    """`psycopg.Cursor` over an `AsyncCursor`: the methods the SDK calls, same semantics."""

    def __init__(self, cursor: psycopg.AsyncCursor[Any], connection: SyncConnection, owned: bool = True) -> None:
        self._cursor = cursor
        self._connection = connection
        self._owned = owned  # a cursor the caller passed in is left open

    @property
    def connection(self) -> SyncConnection:
        return self._connection

    def __enter__(self) -> SyncCursor:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._owned:
            self.close()

    def close(self) -> None:
        await_(self._cursor.close())

    @property
    def closed(self) -> bool:
        return self._cursor.closed

    def execute(
        self, query: Query, params: Params = None, *, prepare: bool | None = None, binary: bool | None = None
    ) -> SyncCursor:
        await_(self._cursor.execute(query, params, prepare=prepare, binary=binary))
        return self

    def executemany(self, query: Query, params_seq: Any, *, returning: bool = False) -> None:
        await_(self._cursor.executemany(query, params_seq, returning=returning))

    def fetchone(self) -> Any:
        return await_(self._cursor.fetchone())

    def fetchmany(self, size: int = 0) -> list[Any]:
        return await_(self._cursor.fetchmany(size))

    def fetchall(self) -> list[Any]:
        return await_(self._cursor.fetchall())

    def __iter__(self) -> Iterator[Any]:
        while (row := self.fetchone()) is not None:
            yield row

    def nextset(self) -> bool | None:
        return self._cursor.nextset()

    def copy(self, statement: Query, params: Params = None) -> SyncCopy:
        return SyncCopy(self._cursor.copy(statement, params))

    @property
    def row_factory(self) -> Any:
        return self._cursor.row_factory

    @row_factory.setter
    def row_factory(self, factory: Any) -> None:
        self._cursor.row_factory = factory

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def rownumber(self) -> int | None:
        return self._cursor.rownumber

    @property
    def description(self) -> list[psycopg.Column] | None:
        return self._cursor.description

    @property
    def statusmessage(self) -> str | None:
        return self._cursor.statusmessage

    @property
    def pgresult(self) -> Any:
        return self._cursor.pgresult


class SyncTransaction:
    """`psycopg.Transaction` over an `AsyncTransaction`."""

    def __init__(self, transaction: AbstractAsyncContextManager[psycopg.AsyncTransaction]) -> None:
        self._transaction = transaction
        self._entered: psycopg.AsyncTransaction | None = None

    def __enter__(self) -> SyncTransaction:
        self._entered = await_(self._transaction.__aenter__())
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        return bool(await_(self._transaction.__aexit__(exc_type, exc, tb)))

    @property
    def savepoint_name(self) -> str | None:
        return self._entered.savepoint_name if self._entered is not None else None


class SyncConnection:
    """`psycopg.Connection` over an `AsyncConnection`: what the SDK functions are handed."""

    def __init__(self, connection: psycopg.AsyncConnection[Any]) -> None:
        self._connection = connection

    @property
    def async_connection(self) -> psycopg.AsyncConnection[Any]:
        return self._connection

    def execute(
        self, query: Query, params: Params = None, *, prepare: bool | None = None, binary: bool = False
    ) -> SyncCursor:
        cur = await_(self._connection.execute(query, params, prepare=prepare, binary=binary))
        return SyncCursor(cur, self)

    def cursor(self, *, row_factory: Any = None, binary: bool = False) -> SyncCursor:
        if row_factory is None:
            return SyncCursor(self._connection.cursor(binary=binary), self)
        return SyncCursor(self._connection.cursor(binary=binary, row_factory=row_factory), self)

    def transaction(self, savepoint_name: str | None = None, force_rollback: bool = False) -> SyncTransaction:
        return SyncTransaction(self._connection.transaction(savepoint_name, force_rollback))

    def commit(self) -> None:
        await_(self._connection.commit())

    def rollback(self) -> None:
        await_(self._connection.rollback())

    def close(self) -> None:
        await_(self._connection.close())

    @property
    def autocommit(self) -> bool:
        return self._connection.autocommit

    @autocommit.setter
    def autocommit(self, value: bool) -> None:
        await_(self._connection.set_autocommit(value))

    @property
    def info(self) -> psycopg.ConnectionInfo:
        return self._connection.info

    @property
    def closed(self) -> bool:
        return self._connection.closed

    @property
    def broken(self) -> bool:
        return self._connection.broken

    @property
    def pgconn(self) -> Any:
        return self._connection.pgconn

    @property
    def adapters(self) -> Any:
        return self._connection.adapters

    @property
    def row_factory(self) -> Any:
        return self._connection.row_factory

    def add_notice_handler(self, callback: Callable[[psycopg.errors.Diagnostic], None]) -> None:
        self._connection.add_notice_handler(callback)

    def remove_notice_handler(self, callback: Callable[[psycopg.errors.Diagnostic], None]) -> None:
        self._connection.remove_notice_handler(callback)

    def add_notify_handler(self, callback: Callable[[psycopg.Notify], None]) -> None:
        self._connection.add_notify_handler(callback)

    def remove_notify_handler(self, callback: Callable[[psycopg.Notify], None]) -> None:
        self._connection.remove_notify_handler(callback)


def facade(conn: Any) -> SyncConnection | SyncCursor:
    """The synchronous face of an async connection (or of a cursor the caller keeps)."""
    if isinstance(conn, psycopg.AsyncConnection):
        return SyncConnection(conn)
    if isinstance(conn, psycopg.AsyncCursor):
        return SyncCursor(conn, SyncConnection(conn.connection), owned=False)
    if isinstance(conn, SyncConnection | SyncCursor):
        return conn
    raise TypeError(
        f"platformdb.aio functions take a psycopg.AsyncConnection (or AsyncCursor), got {type(conn).__name__}"
    )
