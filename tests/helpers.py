"""Helpers shared by tests: counting rows, expecting SQLSTATEs, acting as roles."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from psycopg import sql

from platformdb import db
from platformdb.errors import PlatformDBError


def count(conn: psycopg.Connection[Any], table: str, where: str = "true") -> int:
    """Rows in `table` as the owner (bypassing nothing: the owner is not subject to RLS)."""
    row = conn.execute(
        sql.SQL("select count(*) from {} where ").format(sql.Identifier(*table.split(".")))
        + sql.SQL(where)  # type: ignore[arg-type]
    ).fetchone()
    assert row is not None
    return int(row[0])


@contextmanager
def raises_sqlstate(sqlstate: str, match: str | None = None) -> Iterator[pytest.ExceptionInfo[Exception]]:
    """Expect an error with this SQLSTATE, raw (psycopg) or through the SDK (platformdb.errors),
    with a message matching `match`."""
    with pytest.raises((psycopg.Error, PlatformDBError)) as info:
        yield info  # type: ignore[misc]
    got = getattr(info.value, "sqlstate", None)
    assert got == sqlstate, f"expected SQLSTATE {sqlstate}, got {got}: {info.value}"
    if match is not None:
        assert re.search(match, str(info.value)), f"{match!r} not in {info.value}"


def as_role(conn: psycopg.Connection[Any], role: str, user_id: Any = None) -> Any:
    return db.acting_as(conn, role, user_id)


def wait_until_waiting_on_a_lock(conn: psycopg.Connection[Any], pid: int) -> None:
    """Wait until backend `pid` waits on a lock (the state a test wants, not a duration). On a
    Citus coordinator the lock is taken on the worker holding the shard: the coordinator's
    backend waits for the worker, and the lock wait shows in citus_lock_waits."""
    from tests import shared_db

    citus = shared_db.on_citus(conn)
    for _ in range(600):
        r = conn.execute("select wait_event_type from pg_stat_activity where pid = %s", (pid,)).fetchone()
        if r and r[0] == "Lock":
            return
        if citus and conn.execute("select exists (select 1 from citus_lock_waits)").fetchone() == (True,):
            return
        time.sleep(0.02)
    pytest.fail(f"backend {pid} never waited on a lock")


class ServedApp:
    """An ASGI app served by uvicorn on a free loopback port, in a thread (`with ServedApp(app) as s`)."""

    def __init__(self, app: Any):
        import uvicorn

        from platformdb.devdb import free_port

        self.port = free_port()
        self.app = app
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="error"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ServedApp:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline, "the app did not start"
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"
