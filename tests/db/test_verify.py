"""`platformdb verify`: passes on a migrated database, and fails naming the item for each
way a live database can drift from the ground rules."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from platformdb import migrate, verify
from tests.conftest import selected_migrations_dir

ROOT = Path(__file__).resolve().parents[2]
Conn = psycopg.Connection[Any]
Dir = Path | None


@pytest.fixture(scope="module")
def migrations_dir(tmp_path_factory: pytest.TempPathFactory) -> Path | None:
    """The same migration set the template was built from."""
    return selected_migrations_dir(tmp_path_factory.mktemp("verify-migrations"))


def run(url: str, migrations_dir: Dir, **kw: Any) -> verify.Report:
    return verify.run(url, migrations_dir=migrations_dir, **kw)


def failing(report: verify.Report) -> list[str]:
    return [f"{c.check}: {c.item}: {c.detail}" for c in report.failures]


def cli(url: str, migrations_dir: Dir, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if migrations_dir is not None:
        env["PLATFORMDB_MIGRATIONS_DIR"] = str(migrations_dir)
    return subprocess.run(
        [sys.executable, "-m", "platformdb.cli", "verify", "--database-url", url, *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        check=False,
    )


@pytest.fixture
def month3(conn: Conn) -> str:
    row = conn.execute(
        "select to_char(date_trunc('month', now() at time zone 'UTC') + interval '3 months', 'YYYYMM')"
    ).fetchone()
    assert row is not None
    return str(row[0])


# ---- passing --------------------------------------------------------------------------


def test_a_migrated_database_passes_every_check(db_url: str, migrations_dir: Dir) -> None:
    report = run(db_url, migrations_dir)
    assert failing(report) == []
    checks = {c.check for c in report.checks}
    assert checks >= {
        "migrations",
        "objects",
        "rls",
        "policies",
        "partitions",
        "partition grants",
        "definer",
        "anon execute",
        "views",
        "checks",
    }
    # the expected objects are what the files create, one item each
    migrations = migrate.discover(migrations_dir)
    exp = verify.expected_objects(migrations)
    objects = [c for c in report.checks if c.check == "objects"]
    assert len(objects) == len(exp.relations) + len(exp.types) + len(exp.functions)
    assert any(c.item == "table public.system_metrics" for c in objects)
    assert any(c.item.startswith("function public.record_metric(") for c in objects)
    # three months ahead plus the current one, for each partitioned table
    assert any(
        c.item.startswith("public.system_audit_logs ") and c.ok for c in report.checks if c.check == "partitions"
    )


def test_cli_exits_0_and_prints_a_table(db_url: str, migrations_dir: Dir) -> None:
    r = cli(db_url, migrations_dir)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "partitions" in r.stdout and "verify: ok" in r.stderr


def test_the_helper_checks_leave_nothing_behind(db_url: str, conn: Conn, migrations_dir: Dir) -> None:
    before = conn.execute("select count(*) from public.system_metrics").fetchone()
    report = run(db_url, migrations_dir)
    assert [c for c in report.checks if c.check == "checks" and c.ok]
    assert conn.execute("select count(*) from public.system_metrics").fetchone() == before


# ---- failing, naming the item -------------------------------------------------------------


def test_rls_disabled_fails_naming_the_table(db_url: str, conn: Conn, migrations_dir: Dir) -> None:
    conn.execute("alter table public.system_metrics disable row level security")
    r = cli(db_url, migrations_dir)
    assert r.returncode == 1
    assert "FAIL rls: public.system_metrics: row level security is disabled" in r.stderr
    data = json.loads(cli(db_url, migrations_dir, "--json").stdout)
    assert data["ok"] is False
    assert [(c["check"], c["item"]) for c in data["checks"] if not c["ok"]] == [("rls", "public.system_metrics")]


def test_a_partition_with_rls_off_fails(db_url: str, conn: Conn, migrations_dir: Dir) -> None:
    conn.execute("alter table public.system_metrics_default disable row level security")
    assert failing(run(db_url, migrations_dir)) == [
        "rls: public.system_metrics_default: partition of system_metrics: row level security is disabled"
    ]


def test_a_table_without_policies_fails(db_url: str, conn: Conn, migrations_dir: Dir) -> None:
    for (name,) in conn.execute(
        "select policyname from pg_policies where schemaname = 'public' and tablename = 'system_audit_logs'"
    ).fetchall():
        conn.execute(f'drop policy "{name}" on public.system_audit_logs')
    assert failing(run(db_url, migrations_dir)) == ["policies: public.system_audit_logs: no policy"]


def test_a_missing_function_fails(db_url: str, conn: Conn, migrations_dir: Dir) -> None:
    conn.execute("drop function public.record_metrics(jsonb)")
    fails = failing(run(db_url, migrations_dir))
    assert "objects: function public.record_metrics(jsonb): missing" in fails
    # and the helper check that calls it fails too, without stopping the checks after it
    assert any(f.startswith("checks: 20260401100000_system_observability: record_metrics") for f in fails)


def test_a_function_with_other_arguments_fails(db_url: str, conn: Conn, migrations_dir: Dir) -> None:
    conn.execute("drop function public.enable_audit(regclass)")
    conn.execute(
        "create function public.enable_audit(p_table text) returns void language sql set search_path = '' as ''"
    )
    conn.execute("revoke all on function public.enable_audit(text) from public, anon, authenticated, service_role")
    fails = failing(run(db_url, migrations_dir))
    assert fails == ["objects: function public.enable_audit(regclass): exists with other arguments: enable_audit(text)"]


def test_an_unpinned_definer_function_fails(db_url: str, conn: Conn, migrations_dir: Dir) -> None:
    conn.execute("alter function public.audit_row_change() reset search_path")
    assert failing(run(db_url, migrations_dir)) == [
        "definer: audit_row_change(): SECURITY DEFINER without a pinned search_path"
    ]


def test_a_definer_function_executable_by_public_fails(db_url: str, conn: Conn, migrations_dir: Dir) -> None:
    conn.execute("grant execute on function public.audit_row_change() to public")
    fails = failing(run(db_url, migrations_dir))
    assert "definer: audit_row_change() execute: PUBLIC may execute it" in fails
    # PUBLIC includes anon
    assert any(f.startswith("anon execute: audit_row_change()") for f in fails)


def test_anon_execute_fails_unless_allowed(
    db_url: str, conn: Conn, migrations_dir: Dir, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn.execute(
        "grant execute on function public.record_metric(text, text, text, numeric, text, jsonb, timestamptz) to anon"
    )
    fails = failing(run(db_url, migrations_dir))
    assert len(fails) == 1 and fails[0].startswith("anon execute: record_metric(")
    allowed = {**verify.anon_allowed(), "record_metric": "test: metrics from the public web page"}
    monkeypatch.setattr(verify, "anon_allowed", lambda: allowed)
    report = run(db_url, migrations_dir)
    assert failing(report) == []
    assert any(c.detail == "allowed: test: metrics from the public web page" for c in report.checks)


def test_a_missing_future_partition_fails(db_url: str, conn: Conn, migrations_dir: Dir, month3: str) -> None:
    conn.execute(f"drop table public.system_metrics_p{month3}")
    label = f"{month3[:4]}-{month3[4:]}"
    assert failing(run(db_url, migrations_dir)) == [
        f"partitions: public.system_metrics {label}: no partition covers {label} (run `platformdb maintain`)"
    ]


def test_a_missing_default_partition_fails(db_url: str, conn: Conn, migrations_dir: Dir) -> None:
    conn.execute("drop table public.system_audit_logs_default")
    assert failing(run(db_url, migrations_dir)) == [
        "partitions: public.system_audit_logs default: no DEFAULT partition"
    ]


def test_a_partition_with_grants_fails(db_url: str, conn: Conn, migrations_dir: Dir, month3: str) -> None:
    conn.execute(f"grant select on public.system_audit_logs_p{month3} to authenticated")
    assert failing(run(db_url, migrations_dir)) == [
        f"partition grants: public.system_audit_logs_p{month3}: privileges for authenticated"
    ]


def test_a_view_without_security_invoker_fails(db_url: str, conn: Conn, migrations_dir: Dir) -> None:
    conn.execute("alter view public.metric_percentiles set (security_invoker = false)")
    assert failing(run(db_url, migrations_dir)) == [
        "views: public.metric_percentiles: not security_invoker: bypasses RLS"
    ]


def test_a_changed_migration_file_fails(db_url: str, migrations_dir: Dir, tmp_path: Path) -> None:
    d = tmp_path / "m"
    shutil.copytree(migrations_dir or migrate.default_dir(), d)
    obs = d / "20260401100000_system_observability.sql"
    obs.write_text(obs.read_text() + "\n-- edited after it was applied\n")
    assert failing(run(db_url, d)) == [
        "migrations: 20260401100000_system_observability.sql: changed since it was applied (checksum differs)"
    ]


# ---- what is expected comes from the files ------------------------------------------------


@pytest.fixture
def extended_dir(migrations_dir: Dir, tmp_path: Path) -> Iterator[Path]:
    d = tmp_path / "m"
    shutil.copytree(migrations_dir or migrate.default_dir(), d)
    (d / "20991231000000_verify_extra.sql").write_text(
        "BEGIN;\n"
        "create table public.verify_extra (id int primary key);\n"
        "create function public.verify_extra_count(p_min integer) returns bigint language sql\n"
        "    as 'select count(*) from public.verify_extra where id >= p_min';\n"
        "create view public.verify_extra_view with (security_invoker = true) as select 1 as one;\n"
        "COMMIT;\n"
    )
    yield d


def test_objects_a_new_file_creates_are_expected(db_url: str, extended_dir: Path) -> None:
    fails = failing(run(db_url, extended_dir))
    assert fails == [
        "migrations: 20991231000000_verify_extra.sql: not applied",
        "objects: table public.verify_extra: missing",
        "objects: view public.verify_extra_view: missing",
        "objects: function public.verify_extra_count(integer): missing",
    ]


def test_an_object_a_later_file_drops_is_not_expected(migrations_dir: Dir, tmp_path: Path) -> None:
    d = tmp_path / "m"
    shutil.copytree(migrations_dir or migrate.default_dir(), d)
    (d / "20991231000000_drop_view.sql").write_text("BEGIN;\ndrop view public.metric_percentiles;\nCOMMIT;\n")
    exp = verify.expected_objects(migrate.discover(d))
    assert ("public", "metric_percentiles") not in exp.relations
    assert ("public", "recent_metrics_by_service") in exp.relations


# ---- helper checks --------------------------------------------------------------------------


def test_checks_run_as_service_role_continue_after_a_failure_and_roll_back(
    db_url: str, conn: Conn, migrations_dir: Dir, tmp_path: Path
) -> None:
    checks = tmp_path / "checks"
    checks.mkdir()
    (checks / "20260401100000_system_observability.sql").write_text(
        "-- check: runs as service_role\n"
        "select current_user = 'service_role';\n\n"
        "-- check: records a metric\n"
        "select public.record_metric(p_service_name => 'verify-test', p_metric_type => 'gauge',\n"
        "    p_metric_name => 'x', p_value => 1) is not null;\n\n"
        "-- check: a false result\n"
        "select false;\n\n"
        "-- check: an error\n"
        "select 1 / 0;\n\n"
        "-- check: still sees its own write\n"
        "select count(*) = 1 from public.system_metrics where service_name = 'verify-test';\n"
    )
    report = run(db_url, migrations_dir, checks_dir=checks)
    results = {c.item.split(": ", 1)[1]: (c.ok, c.detail) for c in report.checks if c.check == "checks"}
    assert results == {
        "runs as service_role": (True, "true"),
        "records a metric": (True, "true"),
        "a false result": (False, "returned false"),
        "an error": (False, "22012: division by zero"),
        "still sees its own write": (True, "true"),
    }
    assert conn.execute("select count(*) from public.system_metrics where service_name = 'verify-test'").fetchone() == (
        0,
    )


def test_someone_elses_table_without_rls_is_only_a_warning(db_url: str, conn: Conn, migrations_dir: Dir) -> None:
    conn.execute("create table public.their_notes (id int primary key, body text)")
    report = run(db_url, migrations_dir)
    assert report.ok
    # not ours to judge: no RLS, and anon may write it (Supabase's default grants), as warnings
    assert [(c.check, c.item) for c in report.warnings] == [
        ("exposed_table_rls", "public.their_notes"),
        ("anon_write", "public.their_notes"),
    ]
