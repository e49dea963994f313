"""The migration runner: ledger, idempotence, checksums, concurrency, atomicity, rollback."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path
from typing import Any

import psycopg
import pytest

from platformdb import guard, migrate
from tests.catalog import snapshot

OBS = "20260401100000_system_observability"


def _copy_migrations(tmp_path: Path, only: tuple[str, ...] | None = None) -> Path:
    d = tmp_path / "migrations"
    d.mkdir()
    for f in migrate.default_dir().iterdir():
        if f.suffix == ".sql" and (only is None or any(f.name.startswith(o) for o in only)):
            shutil.copy(f, d / f.name)
    return d


def _ledger(url: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as c:
        return c.execute(
            "select l.version, l.name, l.checksum, s.name"
            "  from supabase_migrations.platformdb_ledger l"
            "  join supabase_migrations.schema_migrations s using (version) order by 1"
        ).fetchall()


def test_apply_on_empty_database_installs_compat_and_records_every_file(new_db_url: str) -> None:
    applied = migrate.up(new_db_url)
    files = migrate.discover()
    assert [m.version for m in applied] == [m.version for m in files]
    ledger = _ledger(new_db_url)
    assert [(r[0], r[1], r[2]) for r in ledger] == [(m.version, m.name, m.checksum) for m in files]
    assert all(r[1] == r[3] for r in ledger), "Supabase's schema_migrations.name matches"
    with psycopg.connect(new_db_url) as c:
        roles = c.execute(
            "select rolname, rolbypassrls from pg_roles"
            " where rolname in ('anon','authenticated','service_role') order by 1"
        ).fetchall()
        assert roles == [("anon", False), ("authenticated", False), ("service_role", True)]
        claims = '{"sub":"6f1c1a52-4a39-4c43-9f0e-6d1f3d0c8a11","role":"authenticated"}'
        c.execute("select set_config('request.jwt.claims', %s, true)", (claims,))
        assert c.execute("select auth.uid()::text, auth.role()").fetchone() == (
            "6f1c1a52-4a39-4c43-9f0e-6d1f3d0c8a11",
            "authenticated",
        )
        # the older single-claim setting is honoured too
        c.execute("select set_config('request.jwt.claims', '', true)")
        c.execute("select set_config('request.jwt.claim.sub', '0d6f2c55-5b1b-4d7e-8f61-9b1d2a3c4e5f', true)")
        assert c.execute("select auth.uid()::text").fetchone() == ("0d6f2c55-5b1b-4d7e-8f61-9b1d2a3c4e5f",)


def test_rerun_is_a_noop(new_db_url: str) -> None:
    migrate.up(new_db_url)
    before = _ledger(new_db_url)
    assert migrate.up(new_db_url) == []
    assert _ledger(new_db_url) == before


def test_changed_applied_file_is_refused(new_db_url: str, tmp_path: Path) -> None:
    d = _copy_migrations(tmp_path, (OBS,))
    migrate.up(new_db_url, d)
    f = d / f"{OBS}.sql"
    f.write_text(f.read_text() + "\n-- an innocent-looking edit\n")
    with pytest.raises(migrate.MigrationError, match=f"{OBS}.sql was changed after it was applied"):
        migrate.up(new_db_url, d)
    st = migrate.status(new_db_url, d)
    assert [(s.applied, s.checksum_ok) for s in st] == [(True, False)]
    with pytest.raises(migrate.MigrationError, match="changed"):
        migrate.down(new_db_url, d)


def test_concurrent_runners_leave_one_correct_ledger(new_db_url: str) -> None:
    n = 4
    barrier = threading.Barrier(n)
    results: list[list[migrate.Migration]] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait()
            results.append(migrate.up(new_db_url))
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    files = migrate.discover()
    applied_counts = sorted(len(r) for r in results)
    assert applied_counts == [0] * (n - 1) + [len(files)], "exactly one runner applied everything"
    assert [r[0] for r in _ledger(new_db_url)] == [m.version for m in files]


def test_a_failing_file_leaves_nothing_behind(new_db_url: str, tmp_path: Path) -> None:
    d = _copy_migrations(tmp_path, (OBS,))
    (d / "20260401100500_broken.sql").write_text(
        "-- a file whose third statement fails\nBEGIN;\n"
        "create table public.broken_one (id int);\n"
        "create table public.broken_two (id int);\n"
        "insert into public.no_such_table values (1);\n"
        "COMMIT;\n"
    )
    with pytest.raises(migrate.MigrationError, match=r"20260401100500_broken\.sql:5: .*no_such_table"):
        migrate.up(new_db_url, d)
    with psycopg.connect(new_db_url) as c:
        assert c.execute("select to_regclass('public.broken_one')").fetchone() == (None,)
    # the good file before it stays applied; the broken one is not in the ledger
    assert [r[0] for r in _ledger(new_db_url)] == ["20260401100000"]


def test_a_file_without_begin_commit_is_refused(new_db_url: str, tmp_path: Path) -> None:
    d = tmp_path / "m"
    d.mkdir()
    (d / "20260401100000_nowrap.sql").write_text("create table public.nowrap (id int);\n")
    with pytest.raises(migrate.MigrationError, match="must start with BEGIN; and end with COMMIT;"):
        migrate.up(new_db_url, d)
    (d / "20260401100000_nowrap.sql").write_text("BEGIN;\ncreate table public.x (id int);\nCOMMIT;\nBEGIN;\nCOMMIT;\n")
    with pytest.raises(migrate.MigrationError):
        migrate.up(new_db_url, d)
    with psycopg.connect(new_db_url) as c:
        assert c.execute("select to_regclass('public.x')").fetchone() == (None,)


def test_dry_run_changes_nothing(new_db_url: str) -> None:
    said: list[str] = []
    pending = migrate.up(new_db_url, dry_run=True, progress=said.append)
    assert len(pending) == len(migrate.discover())
    assert any("compatibility layer" in s for s in said)
    with psycopg.connect(new_db_url) as c:
        assert c.execute("select to_regclass('supabase_migrations.platformdb_ledger')").fetchone() == (None,)
        assert c.execute("select to_regclass('public.system_metrics')").fetchone() == (None,)
        assert c.execute("select to_regnamespace('auth')").fetchone() == (None,)


def test_name_taken_stops_before_changing_anything(new_db_url: str) -> None:
    with psycopg.connect(new_db_url, autocommit=True) as c:
        c.execute("create table public.system_metrics (theirs text)")
    with pytest.raises(guard.NameTakenError, match="table public.system_metrics"):
        migrate.up(new_db_url)
    with psycopg.connect(new_db_url) as c:
        assert c.execute("select to_regnamespace('supabase_migrations')").fetchone() == (None,)
        assert c.execute("select to_regnamespace('auth')").fetchone() == (None,)
        cols = c.execute(
            "select attname from pg_attribute where attrelid = 'public.system_metrics'::regclass and attnum > 0"
        ).fetchall()
        assert cols == [("theirs",)]


def test_the_file_itself_guards_when_run_without_the_runner(new_db_url: str) -> None:
    """Run as the Supabase CLI would (the whole file, BEGIN … COMMIT): a taken name stops it."""
    with psycopg.connect(new_db_url, autocommit=True) as c:
        c.execute(migrate.compat_sql())
        c.execute("create function public.record_metric(x int) returns int language sql as 'select x'")
        sql = (migrate.default_dir() / f"{OBS}.sql").read_text()
        with pytest.raises(psycopg.Error) as info:
            c.execute(sql)
        assert info.value.sqlstate == "42710"
        assert "public.record_metric already exists" in str(info.value)
        c.execute("rollback")
        assert c.execute("select to_regclass('public.system_metrics')").fetchone() == (None,)


def test_up_down_up_gives_an_identical_catalog(new_db_url: str) -> None:
    with psycopg.connect(new_db_url, autocommit=True) as c:
        empty = snapshot(c)
    migrate.up(new_db_url)
    with psycopg.connect(new_db_url, autocommit=True) as c:
        first = snapshot(c)
    rolled = migrate.down(new_db_url, to="0")
    assert len(rolled) == len(migrate.discover())
    assert _ledger(new_db_url) == []
    with psycopg.connect(new_db_url, autocommit=True) as c:
        assert snapshot(c) == empty
    migrate.up(new_db_url)
    with psycopg.connect(new_db_url, autocommit=True) as c:
        assert snapshot(c) == first


def test_down_rolls_back_only_the_newest(new_db_url: str, tmp_path: Path) -> None:
    d = _copy_migrations(tmp_path, (OBS,))
    (d / "20260401100500_extra.sql").write_text(
        "BEGIN;\ncreate table public.extra_thing (id int);\nCOMMIT;\n"
    )
    migrate.up(new_db_url, d)
    with pytest.raises(migrate.MigrationError, match="has no 20260401100500_extra.down.sql"):
        migrate.down(new_db_url, d)
    (d / "20260401100500_extra.down.sql").write_text(
        "BEGIN;\ndrop table public.extra_thing;\nCOMMIT;\n"
    )
    assert [m.version for m in migrate.down(new_db_url, d)] == ["20260401100500"]
    with psycopg.connect(new_db_url) as c:
        assert c.execute("select to_regclass('public.extra_thing')").fetchone() == (None,)
        assert c.execute("select to_regclass('public.system_metrics')").fetchone() is not None
    assert [r[0] for r in _ledger(new_db_url)] == ["20260401100000"]
