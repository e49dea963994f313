"""Both faces of the SDK under the same tests: every test of a capability's SDK module
(tests/db/test_<capability>.py) that takes a connection fixture (`conn`, or a module's own
fixture returning a `psycopg.Connection`, like `svc`) runs twice, `[sync]` and `[async]`.

The `[async]` run is the same test function, unchanged, executed the way `platformdb.aio`
executes an SDK call: inside `aio.run_sync` on an asyncio event loop, with each connection
argument the synchronous facade of a `psycopg.AsyncConnection` to the same clone, in the same
state (autocommit, the role and settings the fixture set for its session). Every SDK call,
`db.as_service(conn)` / `db.as_user(...)` block, cursor, COPY and transaction of the test then
goes through the async connection and the greenlet bridge — the code path of every
`platformdb.aio` twin — and its results and refusals are asserted by the test exactly as for
the sync face. (The twins' own argument handling is tested in tests/db/test_aio.py.)

A test that hands `conn` to other threads cannot run on one event loop; its module lists it
in `SYNC_ONLY` below with the reason, and it runs on the sync face only.
"""

from __future__ import annotations

import asyncio
import inspect
from pathlib import Path
from typing import Any

import psycopg
import pytest

from platformdb.aio._bridge import SyncConnection, run_sync
from platformdb.aio._twin import sdk_modules

HERE = Path(__file__).resolve().parent
FACES = ("sync", "async")

# tests whose body shares `conn` with threads (a facade belongs to its event loop's task)
SYNC_ONLY: dict[str, str] = {}


def _capability_module(path: Path) -> str | None:
    if path.parent != HERE / "db" or not path.name.startswith("test_"):
        return None
    name = path.stem.removeprefix("test_")
    return name if name in sdk_modules() else None


@pytest.fixture(autouse=True)
def face(request: pytest.FixtureRequest) -> str:
    """Which face of the SDK the test runs through (`sync` unless parametrized)."""
    return getattr(request, "param", "sync")


def _connection_fixtures(metafunc: pytest.Metafunc) -> list[str]:
    """The test's own arguments whose fixtures return a psycopg connection."""
    names = []
    for name in metafunc.definition._fixtureinfo.argnames:
        for fixturedef in metafunc._arg2fixturedefs.get(name, ()):
            returns = fixturedef.func.__annotations__.get("return", "")
            if "Connection" in str(returns) and "Callable" not in str(returns):
                names.append(name)
                break
    return names


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if _capability_module(Path(str(metafunc.definition.fspath))) is None:
        return
    if metafunc.definition.name in SYNC_ONLY or inspect.iscoroutinefunction(metafunc.function):
        return
    if _connection_fixtures(metafunc):
        metafunc.parametrize("face", FACES, indirect=True)


async def _async_twin_of(conn: psycopg.Connection[Any]) -> psycopg.AsyncConnection[Any]:
    """A new async connection in the state of `conn`: same database, autocommit, and the
    settings the fixture made for the session (role, custom GUCs)."""
    settings = conn.execute(
        "select name, setting from pg_settings where source = 'session' and name <> 'application_name'"
    ).fetchall()
    role = conn.execute("select current_user::text, session_user::text").fetchone()
    aconn = await psycopg.AsyncConnection.connect(
        conn.info.dsn,
        password=conn.info.password,
        autocommit=conn.autocommit,
        prepare_threshold=conn.prepare_threshold,  # None through the pooler, as the fixture made it
    )
    for name, value in settings:
        if name != "role":
            await aconn.execute("select set_config(%s, %s, false)", (name, value))
    if role is not None and role[0] != role[1]:
        await aconn.execute("select set_config('role', %s, false)", (role[0],))
    return aconn


def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    callspec = getattr(pyfuncitem, "callspec", None)
    if callspec is None or callspec.params.get("face") != "async":
        return None
    names = pyfuncitem._fixtureinfo.argnames
    kwargs = {name: pyfuncitem.funcargs[name] for name in names}

    async def run() -> None:
        opened = []
        try:
            for name, value in list(kwargs.items()):
                if isinstance(value, psycopg.Connection):
                    aconn = await _async_twin_of(value)
                    opened.append(aconn)
                    kwargs[name] = SyncConnection(aconn)
            await run_sync(pyfuncitem.obj, **kwargs)
        finally:
            for aconn in opened:
                await aconn.close()

    asyncio.run(run())
    return True
