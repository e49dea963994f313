"""Test harness: one throw-away PostgreSQL cluster per run, a template database with every
migration applied, and a fresh clone of it per test (CREATE DATABASE … TEMPLATE).

Fixtures:
- `cluster`: the running cluster (platformdb.devdb.Cluster).
- `template_url`: URL of the migrated template (read-only by convention).
- `db_url`: URL of a fresh clone for this test.
- `conn`: an autocommit superuser connection to that clone (the table owner).
- `connect`: a factory of more connections to the same clone (for concurrency tests).
- `new_db_url`: an empty, unmigrated database (for migration tests).
- `pgbouncer`: a real PgBouncer (Debian's package) in transaction mode on a free loopback
  port in front of the cluster, with a pool (POOL_SIZE server connections per database)
  smaller than the clients the tests open — what Supabase's pooler on port 6543 is.
- `route`: "direct" or "pooled". Tests marked `pooled` (`pytestmark = pytest.mark.pooled`
  in a module) run twice: directly and through `pgbouncer`; then `db_url`, `conn` and
  `connect` reach the clone through PgBouncer (connections without server-side prepared
  statements, as platformdb.db opens them for a pooler). `server_url` is always direct.

PLATFORMDB_TEST_DATABASE_URL=URL (`make citus`): no cluster, no template, no clones: every test
runs in that one database, put back to its starting rows before each test (tests/shared_db.py);
tests that need a database or cluster of their own are skipped with the reason.

PLATFORMDB_ONLY_MIGRATIONS=name1,name2 builds the template from the observability
migration plus only the named ones (substring match) — for working on one capability while
another's migration is unfinished. Full runs (make test, CI) never set it.
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from platformdb import db, devdb, migrate
from platformdb.pgbouncer import PgBouncer
from tests import aio_face, shared_db
from tests.aio_face import face, pytest_pyfunc_call  # noqa: F401 (both SDK faces)

TEMPLATE = "platformdb_template"
POOL_SIZE = 4  # PgBouncer server connections per database: fewer than the 16 concurrent clients
_counter = itertools.count()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "route" in metafunc.fixturenames and metafunc.definition.get_closest_marker("pooled"):
        metafunc.parametrize("route", ["direct", "pooled"], indirect=True)
    aio_face.pytest_generate_tests(metafunc)  # the capability SDK tests through both faces


@pytest.fixture
def route(request: pytest.FixtureRequest) -> str:
    """How this test reaches its database: "direct", or "pooled" (through PgBouncer)."""
    return str(getattr(request, "param", "direct"))


@pytest.fixture(scope="session")
def pgbouncer(cluster: devdb.Cluster) -> Iterator[PgBouncer]:
    bouncer = PgBouncer(cluster.port, pool_size=POOL_SIZE, pool_mode="transaction")
    bouncer.start()
    try:
        yield bouncer
    finally:
        bouncer.destroy()


@pytest.fixture(scope="session")
def cluster() -> Iterator[devdb.Cluster]:
    if shared_db.given_url():
        pytest.skip(shared_db.NO_CLUSTER)
    external = os.environ.get("PLATFORMDB_TEST_CLUSTER_PORT")
    if external:  # reuse a running ephemeral cluster (for fast local iteration)
        c = devdb.Cluster(devdb.Path("/nonexistent"), int(external), devdb.find_bindir())
        yield c
        return
    c = devdb.ephemeral_cluster()
    try:
        yield c
    finally:
        c.destroy()


def _admin(cluster: devdb.Cluster) -> psycopg.Connection[Any]:
    return psycopg.connect(cluster.url("postgres"), autocommit=True)


def _drop(conn: psycopg.Connection[Any], name: str) -> None:
    conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def template_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    given = shared_db.given_url()
    if given:
        return given
    cluster: devdb.Cluster = request.getfixturevalue("cluster")
    name = f"{TEMPLATE}_{os.getpid()}"
    with _admin(cluster) as conn:
        _drop(conn, name)
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    url = cluster.url(name)
    migrate.up(url, selected_migrations_dir(tmp_path_factory.mktemp("migrations")))
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("vacuum analyze")
    return url


def only_migrations() -> list[str]:
    raw = os.environ.get("PLATFORMDB_ONLY_MIGRATIONS", "")
    return [p.strip() for p in raw.split(",") if p.strip()]


def selected_migrations_dir(tmp: Path) -> Path | None:
    """None (all migrations) unless PLATFORMDB_ONLY_MIGRATIONS narrows them."""
    only = only_migrations()
    if not only:
        return None
    for f in migrate.default_dir().iterdir():
        keep = "system_observability" in f.name or any(o in f.name for o in only)
        if keep:
            (tmp / f.name).symlink_to(f)
    return tmp


def _clone(cluster: devdb.Cluster, template_url: str, prefix: str = "t") -> str:
    name = f"{prefix}_{os.getpid()}_{next(_counter)}"
    template = template_url.rsplit("/", 1)[1]
    with _admin(cluster) as conn:
        conn.execute(
            sql.SQL("create database {} template {} strategy file_copy").format(
                sql.Identifier(name), sql.Identifier(template)
            )
        )
    return cluster.url(name)


@pytest.fixture(scope="session")
def _baseline(template_url: str) -> shared_db.Baseline | None:
    return shared_db.Baseline(template_url) if shared_db.given_url() else None


@pytest.fixture
def server_url(
    request: pytest.FixtureRequest, template_url: str, _baseline: shared_db.Baseline | None
) -> Iterator[str]:
    """A fresh clone of the template, reached directly (whatever the route); in the
    shared-database mode (`make citus`), that database put back to its starting rows."""
    if _baseline is not None:
        _baseline.reset()
        yield template_url
        return
    cluster: devdb.Cluster = request.getfixturevalue("cluster")
    url = _clone(cluster, template_url)
    yield url
    with _admin(cluster) as conn:
        _drop(conn, url.rsplit("/", 1)[1])


@pytest.fixture
def db_url(server_url: str, route: str, request: pytest.FixtureRequest) -> str:
    """The clone as the application reaches it: directly, or through PgBouncer."""
    if route != "pooled":
        return server_url
    bouncer: PgBouncer = request.getfixturevalue("pgbouncer")
    url = bouncer.url_for(server_url)
    db.configure(url, pool_mode="transaction")
    return url


@pytest.fixture
def new_db_url(cluster: devdb.Cluster) -> Iterator[str]:
    name = f"e_{os.getpid()}_{next(_counter)}"
    with _admin(cluster) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    yield cluster.url(name)
    with _admin(cluster) as conn:
        _drop(conn, name)


@pytest.fixture
def connect(db_url: str, route: str) -> Iterator[Callable[..., psycopg.Connection[Any]]]:
    opened: list[psycopg.Connection[Any]] = []

    def factory(**kwargs: Any) -> psycopg.Connection[Any]:
        kwargs.setdefault("autocommit", True)
        if route == "pooled":
            kwargs.setdefault("prepare_threshold", None)
        c = psycopg.connect(db_url, **kwargs)
        opened.append(c)
        return c

    yield factory
    for c in opened:
        c.close()


@pytest.fixture
def conn(connect: Callable[..., psycopg.Connection[Any]]) -> psycopg.Connection[Any]:
    return connect()


@pytest.fixture
def user_a() -> uuid.UUID:
    return uuid.uuid4()


@pytest.fixture
def user_b() -> uuid.UUID:
    return uuid.uuid4()
