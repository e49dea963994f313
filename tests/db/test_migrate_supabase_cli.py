"""The runner sees what the Supabase CLI applied (`platformdb migrate export` + `supabase db push`).

The database here is built the way the CLI leaves it: each file run as it is by `psql` (BEGIN …
COMMIT included), and a row in `supabase_migrations.schema_migrations` created and filled with
the CLI's own statements (version, name, the file split into statements) — and no
platformdb ledger. An application's own migration recorded there must be left alone.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import psycopg
import pytest

from platformdb import devdb, migrate
from tests.catalog import snapshot

PDB = [sys.executable, "-m", "platformdb.cli"]
APP_VERSION = "20250101000000"  # the application's own migration, pushed by the same CLI

# what the Supabase CLI runs before recording a migration (pkg/migration/history.go)
CLI_LEDGER_DDL = [
    "CREATE SCHEMA IF NOT EXISTS supabase_migrations",
    "CREATE TABLE IF NOT EXISTS supabase_migrations.schema_migrations (version text NOT NULL PRIMARY KEY)",
    "ALTER TABLE supabase_migrations.schema_migrations ADD COLUMN IF NOT EXISTS statements text[]",
    "ALTER TABLE supabase_migrations.schema_migrations ADD COLUMN IF NOT EXISTS name text",
]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}  # one table row per line
    return subprocess.run([*PDB, *args], capture_output=True, text=True, timeout=300, env=env)


def _push_like_the_cli(cluster: devdb.Cluster, url: str, migrations: list[migrate.Migration]) -> None:
    with psycopg.connect(url, autocommit=True) as c:
        for stmt in CLI_LEDGER_DDL:
            c.execute(stmt)  # type: ignore[arg-type]
        c.execute(
            "insert into supabase_migrations.schema_migrations (version, name, statements)"
            " values (%s, 'app_tables', array['create table public.app_note (id int primary key)'])",
            (APP_VERSION,),
        )
        c.execute("create table public.app_note (id int primary key)")
    for m in migrations:
        r = subprocess.run(
            [str(cluster.bindir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-f", str(m.path)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert r.returncode == 0, f"psql {m.filename}: {r.stderr}"
        statements = [text for _, _, text, _ in migrate.split_statements(m.text())]
        with psycopg.connect(url, autocommit=True) as c:
            c.execute(
                "INSERT INTO supabase_migrations.schema_migrations(version, name, statements) VALUES(%s, %s, %s)",
                (m.version, m.name, statements),
            )


def _versions(url: str) -> list[str]:
    with psycopg.connect(url) as c:
        return [r[0] for r in c.execute("select version from supabase_migrations.schema_migrations order by 1")]


def test_cli_applied_migrations_are_applied_and_roll_back(cluster: devdb.Cluster, new_db_url: str) -> None:
    url = new_db_url
    with psycopg.connect(url, autocommit=True) as c:
        migrate.ensure_compat(c)  # what a Supabase database already has
    with psycopg.connect(url) as c:
        before: dict[str, list[tuple[Any, ...]]] = snapshot(c)
    files = migrate.discover()
    _push_like_the_cli(cluster, url, files)

    r = _cli("migrate", "status", "--json", "--database-url", url)
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert [(x["version"], x["state"], x["applied_by"]) for x in rows] == [
        (m.version, "applied by the Supabase CLI", "supabase-cli") for m in files
    ]
    r = _cli("migrate", "status", "--database-url", url)
    assert r.returncode == 0 and "applied by the Supabase CLI" in r.stdout
    assert "pending" not in r.stdout

    r = _cli("migrate", "up", "--database-url", url)
    assert r.returncode == 0, r.stderr
    assert "nothing to apply" in r.stderr
    with psycopg.connect(url) as c:
        # nothing was applied twice, and no platformdb ledger row was invented
        assert c.execute("select to_regclass('supabase_migrations.platformdb_ledger')").fetchone() == (None,)

    r = _cli("verify", "--json", "--database-url", url)
    report = json.loads(r.stdout)
    mig = [c for c in report["checks"] if c["check"] == "migrations"]
    assert [(c["item"], c["ok"], c["detail"]) for c in mig] == [
        (m.filename, True, "applied by the Supabase CLI (no checksum recorded)") for m in files
    ]
    assert r.returncode == 0 and report["ok"], [c for c in report["checks"] if not c["ok"]]

    r = _cli("migrate", "down", "--dry-run", "--to", "0", "--database-url", url)
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("(applied by the Supabase CLI)") == len(files)
    assert _versions(url) == sorted([APP_VERSION, *(m.version for m in files)])

    r = _cli("migrate", "down", "--to", "0", "--database-url", url)
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("rolled back") == len(files)
    assert _versions(url) == [APP_VERSION], "only the application's own migration stays recorded"
    with psycopg.connect(url) as c:
        assert c.execute("select to_regclass('public.transactions')").fetchone() == (None,)
        assert c.execute("select to_regclass('public.app_note')").fetchone() is not None
        c.execute("drop table public.app_note")
        c.execute("drop schema supabase_migrations cascade")
        c.commit()
        assert snapshot(c) == before, "the rollback leaves the catalog as it was before the push"

    # and the runner can then apply everything itself
    assert [m.version for m in migrate.up(url)] == [m.version for m in files]
    assert {a.by for a in _applied(url).values()} == {"platformdb"}


def _applied(url: str) -> dict[str, migrate.Applied]:
    with psycopg.connect(url) as c:
        return migrate.applied(c)


def test_partially_pushed_database_gets_the_rest_from_the_runner(cluster: devdb.Cluster, new_db_url: str) -> None:
    files = migrate.discover()
    with psycopg.connect(new_db_url, autocommit=True) as c:
        migrate.ensure_compat(c)
    _push_like_the_cli(cluster, new_db_url, files[:2])
    applied = migrate.up(new_db_url)
    assert [m.version for m in applied] == [m.version for m in files[2:]]
    done = _applied(new_db_url)
    assert [done[m.version].by for m in files] == ["supabase-cli"] * 2 + ["platformdb"] * (len(files) - 2)
    # down walks both ledgers, newest first
    rolled = migrate.down(new_db_url, to=files[0].version)
    assert [m.version for m in rolled] == [m.version for m in reversed(files[1:])]
    assert set(_applied(new_db_url)) == {files[0].version}


def test_a_foreign_migration_with_our_version_is_named(new_db_url: str) -> None:
    m = migrate.discover()[0]
    with psycopg.connect(new_db_url, autocommit=True) as c:
        for stmt in CLI_LEDGER_DDL:
            c.execute(stmt)  # type: ignore[arg-type]
        c.execute(
            "insert into supabase_migrations.schema_migrations (version, name) values (%s, 'someone_elses')",
            (m.version,),
        )
    with pytest.raises(migrate.MigrationError, match=f"records version {m.version} as 'someone_elses'"):
        migrate.status(new_db_url)
    with pytest.raises(migrate.MigrationError, match="two migrations share a version"):
        migrate.up(new_db_url)
