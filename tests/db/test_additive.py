"""Additive-only proof (SPEC §1.5): platformdb moves into a database where someone else's
application already lives, and leaves every one of its objects and rows exactly as it was.
When one of our names is already taken, nothing is changed and the error names it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from platformdb import devdb, guard, migrate
from tests.conftest import only_migrations, selected_migrations_dir
from tests.db import existing_app

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def app_url(new_db_url: str) -> str:
    """An empty database holding only the existing application (and Supabase's basics)."""
    with psycopg.connect(new_db_url, autocommit=True) as conn:
        existing_app.create(conn)
    return new_db_url


@pytest.fixture
def migrations_dir(tmp_path: Path) -> Path:
    return selected_migrations_dir(tmp_path / "selected") or migrate.default_dir()


def test_migrating_leaves_the_existing_application_untouched(
    cluster: devdb.Cluster, app_url: str, migrations_dir: Path, tmp_path: Path
) -> None:
    definitions = existing_app.dump_objects(cluster, app_url, tmp_path / "before")
    data = existing_app.data_checksums(app_url)
    behaviour = existing_app.works(app_url)

    applied = migrate.up(app_url, migrations_dir)
    assert [m.version for m in applied] == [m.version for m in migrate.discover(migrations_dir)]
    with psycopg.connect(app_url) as conn:  # we really are there too
        assert conn.execute("select to_regclass('public.system_metrics') is not null").fetchone() == (True,)

    assert existing_app.dump_objects(cluster, app_url, tmp_path / "after") == definitions
    assert existing_app.data_checksums(app_url) == data
    assert existing_app.works(app_url) == behaviour


def _new_names(m: migrate.Migration, earlier: list[migrate.Migration]) -> list[guard.CreatedObject]:
    """What `m` creates under names of its own (what its guard must check)."""
    return guard.new_names(m, earlier)


def _last_created(migrations_dir: Path) -> tuple[migrate.Migration, guard.CreatedObject]:
    """The last table or function the last migration creating one creates (the latest point a
    guard can stop; a later file that only replaces function bodies creates no name)."""
    every = migrate.discover(migrations_dir)
    for i in range(len(every) - 1, -1, -1):
        objs = [o for o in _new_names(every[i], every[:i]) if o.kind in ("table", "function")]
        if objs:
            return every[i], objs[-1]
    raise AssertionError("no migration creates a table or function")


def _take(conn: psycopg.Connection[Any], obj: guard.CreatedObject) -> None:
    """Someone else's object under our name (a function with another signature: the case
    where a plain CREATE FUNCTION would silently add an overload)."""
    ident = sql.Identifier(obj.schema, obj.name)
    if obj.kind == "table":
        conn.execute(sql.SQL("create table {} (theirs text)").format(ident))
    else:
        conn.execute(
            sql.SQL("create function {}(theirs text) returns text language sql as 'select theirs'").format(ident)
        )


def _ours_present(url: str, migrations_dir: Path, taken: guard.CreatedObject) -> list[str]:
    present = []
    with psycopg.connect(url) as conn:
        for m in migrate.discover(migrations_dir):
            for obj in guard.created_objects(m.text()):
                if obj.schema != "public" or obj == taken:
                    continue
                row = conn.execute(guard.TAKEN_SQL, {"schema": obj.schema, "name": obj.name}).fetchone()
                if row:
                    present.append(str(obj))
    return present


def test_a_taken_name_stops_migrate_up_before_anything_changes(
    cluster: devdb.Cluster, app_url: str, migrations_dir: Path, tmp_path: Path
) -> None:
    last, taken = _last_created(migrations_dir)
    with psycopg.connect(app_url, autocommit=True) as conn:
        _take(conn, taken)
    definitions = existing_app.dump_objects(cluster, app_url, tmp_path / "before")
    data = existing_app.data_checksums(app_url)

    r = subprocess.run(
        [sys.executable, "-m", "platformdb.cli", "migrate", "up", "--database-url", app_url],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PLATFORMDB_MIGRATIONS_DIR": str(migrations_dir)},
        check=False,
    )
    assert r.returncode == 1
    message = " ".join(r.stderr.split())
    assert f"{last.filename} creates {taken.kind} public.{taken.name}" in message
    assert "nothing was changed" in message

    assert _ours_present(app_url, migrations_dir, taken) == []
    with psycopg.connect(app_url) as conn:
        assert conn.execute("select to_regclass('supabase_migrations.platformdb_ledger')").fetchone() == (None,)
    assert existing_app.dump_objects(cluster, app_url, tmp_path / "after") == definitions
    assert existing_app.data_checksums(app_url) == data


_ONLY = only_migrations()
MIGRATIONS = [
    m for m in migrate.discover() if not _ONLY or "system_observability" in m.name or any(o in m.name for o in _ONLY)
]


def _creates_names(m: migrate.Migration) -> bool:
    earlier = [e for e in MIGRATIONS if e.version < m.version]
    return any(o.kind in ("table", "function") for o in _new_names(m, earlier))


CREATING = [m for m in MIGRATIONS if _creates_names(m)]
REPLACING = [m for m in MIGRATIONS if not _creates_names(m)]


@pytest.mark.parametrize("m", REPLACING, ids=[m.name for m in REPLACING])
def test_a_file_creating_no_name_only_replaces_functions_created_before(m: migrate.Migration) -> None:
    """A file that creates no table or function only gives earlier functions of ours new
    bodies (or creates types, under names its guard checks): every CREATE OR REPLACE
    FUNCTION names a function (same signature) that an earlier migration created."""
    earlier: set[str] = set()
    for e in MIGRATIONS:
        if e.version < m.version:
            earlier |= set(_function_signatures(e.text(), replace=False))
    replaced = _function_signatures(m.text(), replace=True)
    # a file may also create only types (the domains that carry a table's checks): names of
    # its own that its guard checks
    others = [o for o in _new_names(m, [e for e in MIGRATIONS if e.version < m.version]) if o.kind == "type"]
    assert replaced or others, f"{m.filename} creates nothing and replaces nothing"
    assert [f for f in replaced if f not in earlier] == []


def _function_signatures(text: str, *, replace: bool) -> list[str]:
    from pglast import ast as pg_ast
    from pglast import parse_sql

    from platformdb.lint import function_signature

    return [
        function_signature(raw.stmt)
        for raw in parse_sql(text)
        if isinstance(raw.stmt, pg_ast.CreateFunctionStmt) and bool(raw.stmt.replace) == replace
    ]


@pytest.mark.parametrize("m", CREATING, ids=[m.name for m in CREATING])
def test_each_file_guards_itself_when_run_without_the_runner(app_url: str, m: migrate.Migration) -> None:
    """As the Supabase CLI runs it (the whole file, BEGIN … COMMIT, no platformdb runner): the
    file's own name guard stops it when its last table or function name is taken."""
    earlier = [e for e in MIGRATIONS if e.version < m.version]
    for e in earlier:
        with psycopg.connect(app_url, autocommit=True) as conn:
            conn.execute(e.text())  # type: ignore[arg-type]
    taken = [o for o in _new_names(m, earlier) if o.kind in ("table", "function")][-1]
    with psycopg.connect(app_url, autocommit=True) as conn:
        _take(conn, taken)
        # functions an earlier file created and this one replaces or recreates exist already, rightly
        mine = [o for o in _new_names(m, earlier) if o != taken]
        with pytest.raises(psycopg.Error) as info:
            conn.execute(m.text())  # type: ignore[arg-type]
        conn.execute("rollback")
        assert info.value.sqlstate == "42710", info.value
        assert f"public.{taken.name} already exists" in str(info.value)
        for obj in mine:
            row = conn.execute(guard.TAKEN_SQL, {"schema": obj.schema, "name": obj.name}).fetchone()
            assert row is None, f"{obj} exists after the guard stopped {m.filename}"
