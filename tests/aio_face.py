"""Both faces of the SDK under the same tests: every test of a capability's SDK module that
takes the `conn` fixture (tests/db/test_<capability>.py) runs twice, `[sync]` and `[async]`.

The `[async]` run is the same test function, unchanged, executed the way `platformdb.aio`
executes an SDK call: inside `aio.run_sync` on an asyncio event loop, with `conn` the
synchronous facade of a `psycopg.AsyncConnection` to the same clone (autocommit, like the
`conn` fixture). Every SDK call, `db.as_service(conn)` / `db.as_user(...)` block, cursor, COPY
and transaction of the test then goes through the async connection and the greenlet bridge —
the code path of every `platformdb.aio` twin — and its results and refusals are asserted by the
test exactly as for the sync face. (The twins' own argument handling is tested in
tests/db/test_aio.py.)

A test that hands `conn` to other threads cannot run on one event loop; its module lists it
in `SYNC_ONLY` below with the reason, and it runs on the sync face only.
"""

from __future__ import annotations

import asyncio
import inspect
from pathlib import Path
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


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "conn" not in metafunc.fixturenames or _capability_module(Path(str(metafunc.definition.fspath))) is None:
        return
    if metafunc.definition.name in SYNC_ONLY or inspect.iscoroutinefunction(metafunc.function):
        return
    metafunc.parametrize("face", FACES, indirect=True)


def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    callspec = getattr(pyfuncitem, "callspec", None)
    if callspec is None or callspec.params.get("face") != "async":
        return None
    db_url = pyfuncitem._request.getfixturevalue("db_url")
    names = pyfuncitem._fixtureinfo.argnames
    kwargs = {name: pyfuncitem.funcargs[name] for name in names}

    async def run() -> None:
        aconn = await psycopg.AsyncConnection.connect(db_url, autocommit=True)
        try:
            kwargs["conn"] = SyncConnection(aconn)
            await run_sync(pyfuncitem.obj, **kwargs)
        finally:
            await aconn.close()

    asyncio.run(run())
    return True

