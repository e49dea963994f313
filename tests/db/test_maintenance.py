"""SPEC §4 maintain: partitions ahead, DEFAULT rescue, archival, cleanups, records, locks, pg_cron.

Time is moved forward (and back) by inserting rows dated months away and running the tasks
with an injected "now" (p_now); the database's own clock is never touched.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from platformdb import db, devdb, maintain, migrate
from platformdb.worker import WorkerConfig
from tests.conftest import _admin, only_migrations, selected_migrations_dir
from tests.helpers import count, raises_sqlstate

Conn = psycopg.Connection[Any]
ROOT = Path(__file__).resolve().parents[2]
PARTITIONED = ("event_store", "system_audit_logs", "system_metrics", "transactions")
SCHEDULED = ("partitions", "archive", "cache", "sessions", "purge", "reaper")
_ONLY = only_migrations()
ALL_INSTALLED = not _ONLY
needs_all = pytest.mark.skipif(not ALL_INSTALLED, reason="needs every capability's migration")

RUN_TASK = """select public.run_maintenance_task(p_task => %(task)s, p_now => %(now)s,
    p_source => 'test', p_wait => %(wait)s, p_older_than => %(older_than)s::interval)"""


# ---- helpers ------------------------------------------------------------------------


def month_start(when: datetime, plus: int = 0) -> datetime:
    """First instant (UTC) of the month `plus` months after `when`'s month."""
    m = when.astimezone(UTC).year * 12 + when.astimezone(UTC).month - 1 + plus
    return datetime(m // 12, m % 12 + 1, 1, tzinfo=UTC)


def part_name(table: str, month: datetime) -> str:
    return f"{table}_p{month:%Y%m}"


def run_task(
    conn: Conn, task: str, now: datetime | None = None, *, wait: bool = True, older_than: str | None = None
) -> dict[str, Any]:
    row = conn.execute(
        RUN_TASK,
        {"task": task, "now": now or datetime.now(UTC), "wait": wait, "older_than": older_than},
    ).fetchone()
    assert row is not None
    result: dict[str, Any] = row[0]
    return result


def run_all(conn: Conn, now: datetime | None = None, drop_older_than: str | None = None) -> dict[str, Any]:
    row = conn.execute(
        "select public.run_maintenance(p_now => %s, p_source => 'test', p_drop_archived_older_than => %s::interval)",
        (now or datetime.now(UTC), drop_older_than),
    ).fetchone()
    assert row is not None
    result: dict[str, Any] = row[0]
    return result


def coverage(conn: Conn, now: datetime | None = None) -> dict[str, dict[str, Any]]:
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        rows = cur.execute("select * from partition_coverage(%s)", (now or datetime.now(UTC),)).fetchall()
    return {r["table_name"]: r for r in rows}


def attached(conn: Conn, table: str) -> set[str]:
    rows = conn.execute(
        "select partition_name from partition_bounds(%s::regclass) where not is_default", (f"public.{table}",)
    ).fetchall()
    return {r[0] for r in rows}


def table_exists(conn: Conn, qualified: str) -> bool:
    row = conn.execute("select to_regclass(%s) is not null", (qualified,)).fetchone()
    return bool(row and row[0])


def insert_dated(conn: Conn, table: str, when: datetime, tag: str) -> uuid.UUID:
    """One row dated `when` in a partitioned table, inserted as the owner; returns its id."""
    statements = {
        "system_metrics": """insert into system_metrics (service_name, metric_type, metric_name, value, created_at)
                             values ('maint-test', 'gauge', %(tag)s, 1, %(when)s) returning id""",
        "system_audit_logs": """insert into system_audit_logs
                                    (actor_type, action, resource_type, resource_id, created_at)
                                values ('system', 'maint.test', 'test', %(tag)s, %(when)s) returning id""",
        "transactions": """insert into transactions (user_id, type, amount, currency, category, created_at)
                           values (gen_random_uuid(), 'payment', 1500, 'RWF', %(tag)s, %(when)s) returning id""",
        "event_store": """insert into event_store (aggregate_type, aggregate_id, event_type, event_version, payload,
                                                   global_position, created_at)
                          values ('maint', %(tag)s, 'maint.tested', 1, '{}',
                                  nextval('event_store_global_position_seq'), %(when)s) returning id""",
    }
    row = conn.execute(statements[table], {"tag": tag, "when": when}).fetchone()
    assert row is not None
    return uuid.UUID(str(row[0]))


def partition_of(conn: Conn, table: str, row_id: uuid.UUID) -> str:
    row = conn.execute(
        sql.SQL("select tableoid::regclass::text from {} where id = %s").format(sql.Identifier("public", table)),
        (row_id,),
    ).fetchone()
    assert row is not None, f"{table} row {row_id} is gone"
    return str(row[0])


def snapshot(conn: Conn) -> list[tuple[Any, ...]]:
    """Every partition (attached or archived) with its bounds and row count: the catalog view
    of what maintenance manages."""
    rows = conn.execute(
        """
        select p.parent, b.partition_schema, b.partition_name, b.range_from, b.range_to
          from (select unnest(%s::text[]) as parent) p
          cross join lateral partition_bounds(('public.' || p.parent)::regclass) b
        union all
        select parent_table, archive_schema, partition_name, range_from, range_to
          from archived_partitions where dropped_at is null
         order by 1, 2, 3
        """,
        (list(coverage(conn)),),
    ).fetchall()
    return [tuple(r) for r in rows]


# ---- partitions ahead ---------------------------------------------------------------


def test_a_fresh_database_is_covered_three_months_ahead_for_all_four_tables(conn: Conn) -> None:
    cov = coverage(conn)
    expected = set(PARTITIONED) if ALL_INSTALLED else {"system_audit_logs", "system_metrics"}
    assert expected <= set(cov)
    for table in expected:
        assert cov[table]["months_covered_ahead"] >= 3, cov[table]
        assert cov[table]["default_rows"] == 0
        assert cov[table]["covered_until"] == month_start(datetime.now(UTC), 4)


def test_coverage_falls_behind_as_time_passes_and_each_monthly_run_restores_it(conn: Conn) -> None:
    """Fourteen months, one maintenance run a month: before each run the coverage seen from
    that month is short (the test can fail), after it at least 3 months, and a row written
    'now' lands in its own month, never in DEFAULT."""
    start = datetime.now(UTC)
    tables = set(coverage(conn))
    for k in range(1, 15):
        now = month_start(start, k) + timedelta(days=9, hours=5)
        before = coverage(conn, now)
        assert all(before[t]["months_covered_ahead"] < 3 for t in tables), (k, before)
        result = run_task(conn, "partitions", now)
        assert result["status"] == "success", result
        assert result["affected"] == len(tables)  # one new month per table
        after = coverage(conn, now)
        for t in tables:
            assert after[t]["months_covered_ahead"] >= 3, (k, t, after[t])
        row_id = insert_dated(conn, "system_metrics", now, f"month-{k}")
        assert partition_of(conn, "system_metrics", row_id) == part_name("system_metrics", month_start(now))


def test_a_run_after_a_long_pause_catches_up_and_the_gap_stays_writable(conn: Conn) -> None:
    """Nobody ran maintenance for two years: the run covers the new 'now' and rows written
    for the skipped months are kept in DEFAULT until their month is created."""
    later = month_start(datetime.now(UTC), 24) + timedelta(days=3)
    assert coverage(conn, later)["system_metrics"]["months_covered_ahead"] == -1
    gap_row = insert_dated(conn, "system_metrics", month_start(datetime.now(UTC), 12), "gap")
    assert partition_of(conn, "system_metrics", gap_row) == "system_metrics_default"
    run_task(conn, "partitions", later)
    assert coverage(conn, later)["system_metrics"]["months_covered_ahead"] >= 3
    # the rescue gave the skipped month that had a row its own partition
    gap_month = month_start(datetime.now(UTC), 12)
    assert partition_of(conn, "system_metrics", gap_row) == part_name("system_metrics", gap_month)


@pytest.mark.parametrize("table", PARTITIONED)
def test_rows_in_default_move_into_their_month_and_nothing_is_lost(conn: Conn, table: str) -> None:
    if not ALL_INSTALLED and table in ("transactions", "event_store"):
        pytest.skip(f"{table} is not installed in this template")
    now = datetime.now(UTC)
    ahead = month_start(now, 6) + timedelta(days=2)  # beyond the 3 months kept ahead
    behind = month_start(now, -3) + timedelta(days=20)  # before the first partition
    ids = [insert_dated(conn, table, ahead, "ahead"), insert_dated(conn, table, behind, "behind")]
    default = f"public.{table}_default"
    assert [partition_of(conn, table, i) for i in ids] == [f"{table}_default"] * 2
    parent = sql.Identifier("public", table)
    before = conn.execute(
        sql.SQL("select to_jsonb(t) - 'tableoid' from {} t where id = any(%s) order by created_at").format(parent),
        (ids,),
    ).fetchall()

    # four months on: the 6-months-ahead month enters the window, the back-dated month is rescued
    result = run_task(conn, "partitions", month_start(now, 4))
    assert result["status"] == "success", result

    assert partition_of(conn, table, ids[0]) == part_name(table, month_start(ahead))
    assert partition_of(conn, table, ids[1]) == part_name(table, month_start(behind))
    assert count(conn, default.removeprefix("public.")) == 0
    after = conn.execute(
        sql.SQL("select to_jsonb(t) - 'tableoid' from {} t where id = any(%s) order by created_at").format(parent),
        (ids,),
    ).fetchall()
    assert after == before  # the same rows, every column unchanged
    assert coverage(conn, month_start(now, 4))[table]["default_rows"] == 0


@needs_all
def test_moving_transactions_out_of_default_keeps_their_directory_and_history(conn: Conn) -> None:
    ahead = month_start(datetime.now(UTC), 7)
    tx = insert_dated(conn, "transactions", ahead, "moved")
    events = count(conn, "transaction_events", f"transaction_id = '{tx}'")
    assert events == 1
    run_task(conn, "partitions", month_start(datetime.now(UTC), 5))
    assert partition_of(conn, "transactions", tx) == part_name("transactions", ahead)
    assert count(conn, "transaction_directory", f"id = '{tx}'") == 1
    assert count(conn, "transaction_events", f"transaction_id = '{tx}'") == events
    # the moved row still obeys its state machine
    with raises_sqlstate("PD002"):
        conn.execute("update transactions set status = 'reversed' where id = %s", (tx,))


# ---- retention and archive ----------------------------------------------------------


def test_retention_detaches_old_months_into_archive_and_keeps_their_rows(conn: Conn) -> None:
    now = datetime.now(UTC)
    old_metric = now - timedelta(days=200)  # month ended > 90 days ago
    recent_metric = now - timedelta(days=10)
    old_audit = now - timedelta(days=500)  # month ended > 400 days ago
    kept_audit = now - timedelta(days=300)
    old_ids = [insert_dated(conn, "system_metrics", old_metric, f"old-{i}") for i in range(3)]
    recent_id = insert_dated(conn, "system_metrics", recent_metric, "recent")
    old_audit_id = insert_dated(conn, "system_audit_logs", old_audit, "old-audit")
    kept_audit_id = insert_dated(conn, "system_audit_logs", kept_audit, "kept-audit")
    run_task(conn, "partitions", now)  # gives the back-dated rows their months
    metric_part = part_name("system_metrics", month_start(old_metric))
    audit_part = part_name("system_audit_logs", month_start(old_audit))
    assert metric_part in attached(conn, "system_metrics")

    result = run_task(conn, "archive", now)
    assert result["status"] == "success", result
    assert result["details"]["archived"]["system_metrics"] >= 1

    # detached: the parent no longer has them …
    assert metric_part not in attached(conn, "system_metrics")
    assert audit_part not in attached(conn, "system_audit_logs")
    assert count(conn, "system_metrics", f"id in ({', '.join(repr(str(i)) for i in old_ids)})") == 0
    assert count(conn, "system_audit_logs", f"id = '{old_audit_id}'") == 0
    # … but the data is in the archive schema, untouched
    assert count(conn, f"archive.{metric_part}", f"id in ({', '.join(repr(str(i)) for i in old_ids)})") == 3
    assert count(conn, f"archive.{audit_part}", f"id = '{old_audit_id}'") == 1
    rec = conn.execute(
        "select parent_table, row_count, range_from, dropped_at from archived_partitions"
        " where archive_schema = 'archive' and partition_name = %s",
        (metric_part,),
    ).fetchone()
    assert rec == ("system_metrics", 3, month_start(old_metric), None)
    comment = conn.execute("select obj_description(%s::regclass, 'pg_class')", (f"archive.{metric_part}",)).fetchone()
    assert comment is not None and str(comment[0]).startswith("platformdb archive: public.system_metrics [")
    # months within retention stay attached
    assert partition_of(conn, "system_metrics", recent_id) == part_name("system_metrics", month_start(recent_metric))
    assert partition_of(conn, "system_audit_logs", kept_audit_id) == part_name(
        "system_audit_logs", month_start(kept_audit)
    )
    cov = coverage(conn, now)
    assert cov["system_metrics"]["archived_partitions"] >= 1
    assert cov["system_metrics"]["oldest_partition_from"] > month_start(old_metric)


def test_archived_partitions_are_closed_to_every_api_role(conn: Conn) -> None:
    now = datetime.now(UTC)
    insert_dated(conn, "system_metrics", now - timedelta(days=200), "closed")
    run_task(conn, "partitions", now)
    run_task(conn, "archive", now)
    name = part_name("system_metrics", month_start(now - timedelta(days=200)))
    for role in ("anon", "authenticated", "service_role"):
        with raises_sqlstate("42501", "permission denied for schema archive"):
            with db.acting_as(conn, role, uuid.uuid4() if role == "authenticated" else None):
                conn.execute(sql.SQL("select count(*) from {}").format(sql.Identifier("archive", name)))
    for role in ("anon", "authenticated", "service_role"):
        row = conn.execute(
            "select has_schema_privilege(%s, 'archive', 'usage'), has_table_privilege(%s, %s, 'select')",
            (role, role, f"archive.{name}"),
        ).fetchone()
        assert row == (False, False), role


def test_late_rows_for_an_archived_month_join_the_archived_table(conn: Conn) -> None:
    now = datetime.now(UTC)
    month = now - timedelta(days=200)
    insert_dated(conn, "system_metrics", month, "first")
    run_task(conn, "partitions", now)
    run_task(conn, "archive", now)
    name = part_name("system_metrics", month_start(month))
    late = insert_dated(conn, "system_metrics", month, "late")
    assert partition_of(conn, "system_metrics", late) == "system_metrics_default"
    result = run_task(conn, "partitions", now)
    assert result["details"]["tables"]["system_metrics"]["moved_to_archive"] == 1
    assert count(conn, "system_metrics_default") == 0
    assert count(conn, f"archive.{name}", f"id = '{late}'") == 1
    assert name not in attached(conn, "system_metrics")  # not re-created in public
    row = conn.execute("select row_count from archived_partitions where partition_name = %s", (name,)).fetchone()
    assert row == (2,)


def test_an_archived_month_can_be_attached_again_as_docs_maintenance_md_says(conn: Conn) -> None:
    now = datetime.now(UTC)
    month = month_start(now - timedelta(days=200))
    row_id = insert_dated(conn, "system_metrics", month + timedelta(days=1), "back")
    run_task(conn, "partitions", now)
    run_task(conn, "archive", now)
    name = part_name("system_metrics", month)
    conn.execute("update partition_settings set retention = null where table_name = 'system_metrics'")
    with conn.transaction():
        conn.execute(sql.SQL("alter table {} set schema public").format(sql.Identifier("archive", name)))
        conn.execute(
            sql.SQL("alter table public.system_metrics attach partition {} for values from ({}) to ({})").format(
                sql.Identifier("public", name), sql.Literal(month), sql.Literal(month_start(month, 1))
            )
        )
        conn.execute(
            "delete from archived_partitions where archive_schema = 'archive' and partition_name = %s", (name,)
        )
    assert partition_of(conn, "system_metrics", row_id) == name
    assert run_task(conn, "archive", now)["affected"] == 0  # no retention: it stays


@needs_all
def test_transactions_and_events_are_never_archived_or_dropped(conn: Conn) -> None:
    now = datetime.now(UTC)
    five_years_ago = now - timedelta(days=5 * 365)
    tx = insert_dated(conn, "transactions", five_years_ago, "ancient")
    ev = insert_dated(conn, "event_store", five_years_ago, "ancient")
    far = now + timedelta(days=3 * 365)
    summary = run_all(conn, far, drop_older_than="1 day")
    assert summary["failed"] == 0, summary
    for table, row_id in (("transactions", tx), ("event_store", ev)):
        assert partition_of(conn, table, row_id) == part_name(table, month_start(five_years_ago))
        assert conn.execute(
            "select count(*) from archived_partitions where parent_table = %s", (table,)
        ).fetchone() == (0,)

    # even with a retention set by hand, archiving keeps the rows and dropping refuses them
    conn.execute("update partition_settings set retention = interval '30 days' where table_name = 'transactions'")
    assert run_task(conn, "archive", now)["status"] == "success"
    name = part_name("transactions", month_start(five_years_ago))
    assert count(conn, f"archive.{name}", f"id = '{tx}'") == 1
    dropped = run_task(conn, "drop_archived", far, older_than="1 day")
    assert dropped["status"] == "success"
    assert f"archive.{name}" in dropped["details"]["kept"]
    assert f"archive.{name}" not in dropped["details"]["dropped"]
    assert table_exists(conn, f"archive.{name}")
    with raises_sqlstate("23514", "archived_partitions_kept_forever"):
        conn.execute("update archived_partitions set dropped_at = now() where partition_name = %s", (name,))


def test_drop_archived_drops_only_archived_months_older_than_asked(conn: Conn) -> None:
    now = datetime.now(UTC)
    older, newer = now - timedelta(days=300), now - timedelta(days=150)
    insert_dated(conn, "system_metrics", older, "older")
    insert_dated(conn, "system_metrics", newer, "newer")
    run_task(conn, "partitions", now)
    run_task(conn, "archive", now)
    older_name = part_name("system_metrics", month_start(older))
    newer_name = part_name("system_metrics", month_start(newer))
    assert table_exists(conn, f"archive.{older_name}") and table_exists(conn, f"archive.{newer_name}")
    attached_before = attached(conn, "system_metrics")

    result = run_task(conn, "drop_archived", now, older_than="200 days")
    assert result["status"] == "success", result
    assert f"archive.{older_name}" in result["details"]["dropped"]
    assert not table_exists(conn, f"archive.{older_name}")
    assert table_exists(conn, f"archive.{newer_name}")
    assert count(conn, f"archive.{newer_name}") == 1
    assert attached(conn, "system_metrics") == attached_before
    gone = conn.execute(
        "select dropped_at is not null from archived_partitions where partition_name = %s", (older_name,)
    )
    assert gone.fetchone() == (True,)
    # nothing attached is ever dropped, however small the age
    run_task(conn, "drop_archived", now, older_than="1 second")
    assert attached(conn, "system_metrics") == attached_before


# ---- records, idempotence, failures -------------------------------------------------


def test_every_task_run_is_recorded_with_an_audit_event_and_a_metric(conn: Conn) -> None:
    summary = run_all(conn)
    assert summary["failed"] == 0, summary
    assert [t["task"] for t in summary["tasks"]] == list(SCHEDULED)
    for t in summary["tasks"]:
        run = conn.execute(
            "select task, source, status, affected, audit_id, metric_id from maintenance_runs where id = %s",
            (t["run_id"],),
        ).fetchone()
        assert run is not None and run[:4] == (t["task"], "test", "success", t["affected"])
        audit = conn.execute(
            "select action, actor_type, status, metadata ->> 'run_id' from system_audit_logs where id = %s", (run[4],)
        ).fetchone()
        assert audit == (f"maintenance.{t['task']}", "system", "success", t["run_id"])
        metric = conn.execute(
            "select service_name, metric_name, value, tags ->> 'status' from system_metrics where id = %s", (run[5],)
        ).fetchone()
        assert metric == ("platformdb-maintenance", f"maintenance.{t['task']}", float(t["affected"]), "success")
        last = conn.execute(
            "select last_run_id::text, last_status, run_count, failure_count from maintenance_tasks where task = %s",
            (t["task"],),
        ).fetchone()
        assert last == (t["run_id"], "success", 1, 0)
    never = conn.execute("select last_status, run_count from maintenance_tasks where task = 'drop_archived'")
    assert never.fetchone() == (None, 0)


def test_runs_are_idempotent(conn: Conn) -> None:
    now = datetime.now(UTC)
    insert_dated(conn, "system_metrics", now - timedelta(days=200), "old")
    insert_dated(conn, "system_metrics", month_start(now, 9), "ahead")
    later = now + timedelta(minutes=1)
    first = run_all(conn, later)
    assert first["failed"] == 0
    by_task = {t["task"]: t for t in first["tasks"]}
    assert by_task["partitions"]["affected"] > 0 and by_task["archive"]["affected"] > 0
    after_first = snapshot(conn)
    second = run_all(conn, later)
    assert second["failed"] == 0
    by_task = {t["task"]: t for t in second["tasks"]}
    assert by_task["partitions"]["affected"] == 0
    assert by_task["archive"]["affected"] == 0
    assert snapshot(conn) == after_first


def test_a_failed_archive_is_recorded_and_the_other_tables_still_archive(conn: Conn) -> None:
    now = datetime.now(UTC)
    old = now - timedelta(days=500)
    insert_dated(conn, "system_metrics", old, "blocked")
    insert_dated(conn, "system_audit_logs", old, "free")
    run_task(conn, "partitions", now)
    metric_part = part_name("system_metrics", month_start(old))
    audit_part = part_name("system_audit_logs", month_start(old))
    conn.execute("create schema if not exists archive")
    conn.execute(sql.SQL("create table {} (x int)").format(sql.Identifier("archive", metric_part)))

    result = run_task(conn, "archive", now)
    assert result["status"] == "failure"
    assert "system_metrics" in result["error"] and "already exists" in result["error"]
    assert metric_part in attached(conn, "system_metrics")  # its detach was undone
    assert count(conn, "system_metrics", "metric_name = 'blocked'") == 1
    assert table_exists(conn, f"archive.{audit_part}")  # the other table went ahead
    row = conn.execute(
        "select last_status, failure_count, last_error is not null from maintenance_tasks where task = 'archive'"
    ).fetchone()
    assert row == ("failure", 1, True)
    audit = conn.execute(
        "select status, error_message is not null from system_audit_logs"
        " where id = (select audit_id from maintenance_runs where id = %s)",
        (result["run_id"],),
    ).fetchone()
    assert audit == ("failure", True)
    st = maintain.status(conn)
    assert not st.ok and any(p.startswith("archive: last run failed") for p in st.problems)

    conn.execute(sql.SQL("drop table {}").format(sql.Identifier("archive", metric_part)))
    assert run_task(conn, "archive", now)["status"] == "success"
    assert maintain.status(conn).ok


@needs_all
def test_a_task_that_raises_is_undone_and_recorded(conn: Conn) -> None:
    conn.execute(
        "insert into cache_entries (key, value, expires_at, created_at)"
        " values ('stale', '1', now() - interval '1 minute', now() - interval '1 hour')"
    )
    # the cache cleanup deletes, then fails: the delete must not survive
    conn.execute(
        """create or replace function public.cleanup_expired_routes() returns integer
           language plpgsql set search_path = '' as $$
           begin raise exception 'routes are broken' using errcode = 'XX000'; end $$"""
    )
    result = run_task(conn, "cache")
    assert result["status"] == "failure"
    assert result["error"] == "routes are broken" and result["details"] == {"sqlstate": "XX000"}
    assert count(conn, "cache_entries", "key = 'stale'") == 1
    assert conn.execute("select last_status, last_error from maintenance_tasks where task = 'cache'").fetchone() == (
        "failure",
        "routes are broken",
    )


@pytest.mark.parametrize(
    ("call", "state", "message"),
    [
        ("p_task => 'vacuum_everything'", "22023", "p_task: unknown maintenance task vacuum_everything"),
        ("p_task => null", "22004", "p_task must not be null"),
        ("p_task => 'partitions', p_now => null", "22004", "p_now must not be null"),
        ("p_task => 'partitions', p_source => ''", "22004", "p_source must not be empty"),
        ("p_task => 'drop_archived'", "22004", "p_older_than must not be null for drop_archived"),
        ("p_task => 'drop_archived', p_older_than => '-1 day'", "22023", "p_older_than must be positive"),
        ("p_task => 'drop_archived', p_older_than => '0'", "22023", "p_older_than must be positive"),
        ("p_task => 'archive', p_older_than => '1 day'", "22023", "p_older_than applies to drop_archived only"),
        ("p_task => 'purge', p_max_batches => 0", "22003", "p_max_batches must be between 1 and 1000"),
    ],
)
def test_bad_task_input_is_refused_and_nothing_is_recorded(conn: Conn, call: str, state: str, message: str) -> None:
    with raises_sqlstate(state, message):
        conn.execute(f"select public.run_maintenance_task({call})")
    assert count(conn, "maintenance_runs") == 0
    assert count(conn, "system_audit_logs", "action like 'maintenance.%'") == 0


@pytest.mark.parametrize(
    ("call", "state", "message"),
    [
        ("p_tasks => '{}'", "22023", "p_tasks must not be empty"),
        ("p_tasks => array['cache', 'defrag']", "22023", "p_tasks: unknown maintenance task defrag"),
        ("p_tasks => array['cache', null]", "22023", "p_tasks: unknown maintenance task null"),
        ("p_tasks => array['drop_archived']", "22004", "p_drop_archived_older_than must not be null"),
        ("p_drop_archived_older_than => '-5 days'", "22023", "p_drop_archived_older_than must be positive"),
        ("p_now => null", "22004", "p_now must not be null"),
    ],
)
def test_bad_run_input_is_refused_before_any_task_runs(conn: Conn, call: str, state: str, message: str) -> None:
    with raises_sqlstate(state, message):
        conn.execute(f"select public.run_maintenance({call})")
    assert count(conn, "maintenance_runs") == 0


def test_drop_archived_partitions_refuses_bad_ages(conn: Conn) -> None:
    with raises_sqlstate("22004", "p_older_than must not be null"):
        conn.execute("select drop_archived_partitions(null)")
    with raises_sqlstate("22023", "p_older_than must be positive"):
        conn.execute("select drop_archived_partitions(interval '-1 year')")


# ---- concurrency --------------------------------------------------------------------


def _wait_for(predicate: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.05)


def test_concurrent_runs_of_a_task_serialise(connect: Callable[..., Conn]) -> None:
    """The second run waits on the task's advisory lock and then finds nothing left to do;
    without the lock it would try to create the same partitions and fail."""
    later = month_start(datetime.now(UTC), 10)
    first = connect(autocommit=False)
    second = connect()
    observer = connect()
    first_result = run_task(first, "partitions", later)  # transaction left open: holds the lock
    assert first_result["affected"] > 0
    pid_row = second.execute("select pg_backend_pid()").fetchone()
    assert pid_row is not None
    out: dict[str, Any] = {}

    def go() -> None:
        try:
            out["result"] = run_task(second, "partitions", later)
        except Exception as exc:  # reported by the assertion below
            out["error"] = exc

    t = threading.Thread(target=go)
    t.start()
    _wait_for(
        lambda: observer.execute(
            "select wait_event from pg_stat_activity where pid = %s", (pid_row[0],)
        ).fetchone()
        == ("advisory",),
        "the second run to wait on the advisory lock",
    )
    busy = run_task(observer, "partitions", later, wait=False)
    assert busy == {
        "task": "partitions",
        "status": "skipped",
        "reason": "another run of this task is in progress",
    }
    assert t.is_alive()
    first.commit()
    t.join(30)
    assert not t.is_alive()
    assert "error" not in out, out
    assert out["result"]["status"] == "success" and out["result"]["affected"] == 0, out["result"]
    assert count(observer, "maintenance_runs", "task = 'partitions'") == 2
    assert coverage(observer, later)["system_metrics"]["months_covered_ahead"] >= 3


def test_different_tasks_do_not_wait_for_each_other(connect: Callable[..., Conn]) -> None:
    first = connect(autocommit=False)
    other = connect()
    run_task(first, "partitions")  # holds the partitions lock
    assert run_task(other, "reaper", wait=False)["status"] == "success"
    first.rollback()


def test_not_run_since_skips_a_task_that_already_ran(conn: Conn) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    run_task(conn, "reaper")
    row = conn.execute(
        "select run_maintenance_task(p_task => 'reaper', p_source => 'test', p_not_run_since => %s)", (before,)
    ).fetchone()
    assert row is not None and row[0]["status"] == "skipped" and row[0]["reason"].startswith("already ran since")
    assert count(conn, "maintenance_runs", "task = 'reaper'") == 1
    later = datetime.now(UTC) + timedelta(seconds=1)
    row = conn.execute(
        "select run_maintenance_task(p_task => 'reaper', p_source => 'test', p_not_run_since => %s)", (later,)
    ).fetchone()
    assert row is not None and row[0]["status"] == "success"


# ---- the cleanups: called, with what they did recorded --------------------------------


@needs_all
def test_cache_task_removes_expired_entries_only(conn: Conn) -> None:
    conn.execute(
        "insert into cache_entries (key, value, expires_at, created_at) values"
        " ('old', '1', now() - interval '1 minute', now() - interval '1 hour'),"
        " ('live', '2', now() + interval '1 hour', now())"
    )
    result = run_task(conn, "cache")
    assert result["status"] == "success"
    assert result["details"]["cache_entries"] == 1 and result["affected"] == 1
    assert [r[0] for r in conn.execute("select key from cache_entries order by key").fetchall()] == ["live"]


@needs_all
def test_sessions_task_expires_sessions_past_their_time(conn: Conn) -> None:
    conn.execute(
        "insert into whatsapp_sessions (phone_number, expires_at) values"
        " ('+250788100001', now() - interval '1 hour'), ('+250788100002', now() + interval '1 hour')"
    )
    result = run_task(conn, "sessions")
    assert result["details"] == {"sessions_expired": 1}
    rows = conn.execute("select phone_number, status from whatsapp_sessions order by phone_number").fetchall()
    assert rows == [("+250788100001", "expired"), ("+250788100002", "active")]


@needs_all
def test_purge_task_deletes_finished_rows_past_retention_only(conn: Conn) -> None:
    conn.execute(
        """insert into message_queue (queue_name, message_type, payload, state, finalized_at) values
           ('q', 'old', '{}', 'completed', now() - interval '2 days'),
           ('q', 'recent', '{}', 'completed', now() - interval '1 hour'),
           ('q', 'waiting', '{}', 'available', null)"""
    )
    result = run_task(conn, "purge")
    assert result["status"] == "success"
    assert result["details"]["queue_rows"] == 1 and result["details"]["more"] is False
    assert sorted(r[0] for r in conn.execute("select message_type from message_queue").fetchall()) == [
        "recent",
        "waiting",
    ]


@needs_all
def test_purge_runs_in_batches_and_the_cli_side_repeats_while_there_is_more(conn: Conn) -> None:
    conn.execute(
        """insert into message_queue (queue_name, message_type, payload, state, finalized_at)
           select 'q', 'old', '{}', 'completed', now() - interval '3 days' from generate_series(1, 25000)"""
    )
    one = conn.execute(
        "select run_maintenance_task(p_task => 'purge', p_source => 'test', p_max_batches => 1)"
    ).fetchone()
    assert one is not None
    assert one[0]["details"]["queue_rows"] == 10000 and one[0]["details"]["more"] is True
    results = maintain.run_tasks(conn, ["purge"], source="test")
    assert results[0]["affected"] == 15000 and results[0]["details"]["more"] is False
    assert count(conn, "message_queue") == 0


@needs_all
def test_reaper_task_returns_expired_leases_to_the_queue(conn: Conn) -> None:
    conn.execute(
        """insert into message_queue (queue_name, message_type, payload, state, attempt, locked_until, claimed_by)
           values ('q', 'lost', '{}', 'running', 1, now() - interval '1 minute', 'gone'),
                  ('q', 'held', '{}', 'running', 1, now() + interval '1 minute', 'alive')"""
    )
    result = run_task(conn, "reaper")
    assert result["details"] == {"leases_reaped": 1}
    rows = conn.execute("select message_type, state from message_queue order by message_type").fetchall()
    assert rows == [("held", "running"), ("lost", "retryable")]


def test_a_cleanup_whose_capability_is_missing_is_reported_not_failed(conn: Conn) -> None:
    present = conn.execute("select to_regprocedure('public.reap_expired_leases()') is not null").fetchone()
    if present == (True,):
        conn.execute("drop function public.reap_expired_leases()")
    result = run_task(conn, "reaper")
    assert result["status"] == "success"
    assert result["details"] == {"not_installed": ["public.reap_expired_leases()"]}


# ---- who may do what ----------------------------------------------------------------


@pytest.mark.parametrize("role", ["anon", "authenticated", "service_role"])
@pytest.mark.parametrize(
    "call",
    [
        "run_maintenance()",
        "run_maintenance_task('partitions')",
        "create_partitions_ahead()",
        "archive_expired_partitions()",
        "drop_archived_partitions(interval '1 day')",
        "partition_bounds('public.system_metrics')",
    ],
)
def test_maintenance_functions_are_the_owners_only(conn: Conn, role: str, call: str) -> None:
    with raises_sqlstate("42501", "permission denied for function"):
        with db.acting_as(conn, role, uuid.uuid4() if role == "authenticated" else None):
            conn.execute(f"select public.{call}")
    assert count(conn, "maintenance_runs") == 0


def test_services_read_coverage_and_history_users_do_not(conn: Conn) -> None:
    run_task(conn, "reaper")
    with db.as_service(conn):
        tables = conn.execute("select table_name, months_covered_ahead from partition_coverage()").fetchall()
        runs = conn.execute("select count(*) from maintenance_runs").fetchone()
    assert tables and all(m >= 3 for _, m in tables)
    assert runs == (1,)
    for role in ("anon", "authenticated"):
        with raises_sqlstate("42501"):
            with db.acting_as(conn, role, uuid.uuid4() if role == "authenticated" else None):
                conn.execute("select * from partition_coverage()")
        with raises_sqlstate("42501"):
            with db.acting_as(conn, role, uuid.uuid4() if role == "authenticated" else None):
                conn.execute("select * from maintenance_runs")


# ---- the Python side: status, the worker's schedule -----------------------------------


def test_status_flags_coverage_below_the_threshold(conn: Conn) -> None:
    assert maintain.status(conn).ok
    later = month_start(datetime.now(UTC), 2)
    st = maintain.status(conn, now=later)
    assert not st.ok
    assert any(p.startswith("system_metrics: 1 month(s) covered ahead, fewer than 3") for p in st.problems)
    assert maintain.status(conn, now=later, min_months_ahead=1).ok
    maintain.run_tasks(conn, ["partitions"], now=later)
    assert maintain.status(conn, now=later).ok


def _duty(url: str, worker_id: str) -> maintain.MaintenanceDuty:
    return maintain.MaintenanceDuty(WorkerConfig(database_url=url, worker_id=worker_id))


def test_the_worker_runs_each_due_job_once_among_several_workers(db_url: str, connect: Callable[..., Conn]) -> None:
    conns = [connect(), connect()]
    duties = [_duty(db_url, "w1"), _duty(db_url, "w2")]
    barrier = threading.Barrier(2)
    results: list[list[dict[str, Any]]] = [[], []]

    def tick(i: int) -> None:
        barrier.wait()
        results[i] = duties[i].tick(conns[i])

    threads = [threading.Thread(target=tick, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    observer = connect()
    ran = observer.execute("select task, count(*), min(source) from maintenance_runs group by task order by task")
    by_task = {r[0]: (r[1], r[2]) for r in ran.fetchall()}
    assert set(by_task) == set(SCHEDULED)
    for task, (n, source) in by_task.items():
        # the reaper's minute may turn during the test: then it rightly runs once more
        assert n == 1 or (task == "reaper" and n == 2), (task, n)
        assert source in ("worker:w1", "worker:w2")
    # a second tick right away finds nothing due but (perhaps) the next minute's reaper
    again = duties[0].tick(conns[0])
    assert {r["task"] for r in again if r["status"] == "success"} <= {"reaper"}

    # an hour later (pretend the cache ran long ago): only what is due runs
    observer.execute("update maintenance_tasks set last_started_at = last_started_at - interval '2 hours'"
                     " where task = 'cache'")
    later = duties[1].tick(conns[1])
    assert {r["task"] for r in later if r["status"] == "success"} - {"reaper"} == {"cache"}


def test_the_worker_duty_runs_in_its_thread_and_stops_on_request(db_url: str, conn: Conn) -> None:
    duty = maintain.MaintenanceDuty(
        WorkerConfig(database_url=db_url, worker_id="loop", options={"maintenance_interval": 0.2})
    )
    stop = threading.Event()
    t = threading.Thread(target=duty.run, args=(stop,))
    t.start()
    try:
        _wait_for(
            lambda: conn.execute(
                "select count(*) from maintenance_tasks where last_source = 'worker:loop'"
            ).fetchone()
            == (len(SCHEDULED),),
            "the duty to run every scheduled task",
        )
    finally:
        stop.set()
        t.join(30)
    assert not t.is_alive()


def test_the_duty_goes_idle_with_a_clear_reason_when_its_role_is_not_the_owner(
    db_url: str, conn: Conn, caplog: pytest.LogCaptureFixture
) -> None:
    role = f"maint_api_{uuid.uuid4().hex[:8]}"
    conn.execute(sql.SQL("create role {} login").format(sql.Identifier(role)))
    try:
        url = psycopg.conninfo.make_conninfo(db_url, user=role)
        duty = maintain.MaintenanceDuty(WorkerConfig(database_url=url, worker_id="api"))
        stop = threading.Event()
        t = threading.Thread(target=duty.run, args=(stop,))
        with caplog.at_level("WARNING", logger="platformdb.maintain"):
            t.start()
            _wait_for(lambda: any("connect as the tables' owner" in r.message for r in caplog.records),
                      "the duty to say why it is idle")
            stop.set()
            t.join(30)
        assert not t.is_alive()
        assert count(conn, "maintenance_runs") == 0
    finally:
        conn.execute(sql.SQL("drop role {}").format(sql.Identifier(role)))


def test_the_duty_factory_follows_the_housekeeping_switch(db_url: str) -> None:
    assert isinstance(maintain.maintenance_duty(WorkerConfig(database_url=db_url)), maintain.MaintenanceDuty)
    assert maintain.maintenance_duty(WorkerConfig(database_url=db_url, housekeeping=False)) is None
    assert maintain.maintenance_duty(WorkerConfig(database_url=db_url, options={"maintenance": False})) is None


def test_run_tasks_refuses_unknown_tasks_before_running_any(conn: Conn) -> None:
    with pytest.raises(maintain.MaintenanceError, match="unknown maintenance task 'defrag'"):
        maintain.run_tasks(conn, ["cache", "defrag"])
    with pytest.raises(maintain.MaintenanceError, match="drop_archived needs"):
        maintain.run_tasks(conn, ["drop_archived"])
    assert count(conn, "maintenance_runs") == 0


def test_up_down_up_keeps_archived_partitions_and_lists_them_again(
    db_url: str, conn: Conn, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    insert_dated(conn, "system_metrics", now - timedelta(days=200), "survivor")
    run_task(conn, "partitions", now)
    run_task(conn, "archive", now)
    name = part_name("system_metrics", month_start(now - timedelta(days=200)))
    (tmp_path / "selected").mkdir()
    directory = selected_migrations_dir(tmp_path / "selected")
    previous = [m.version for m in migrate.discover(directory) if m.version < "20260401160000"][-1]
    migrate.down(db_url, directory, to=previous)
    assert table_exists(conn, f"archive.{name}")  # data is kept by the rollback
    assert not table_exists(conn, "public.archived_partitions")
    migrate.up(db_url, directory)
    row = conn.execute(
        "select parent_table, row_count, range_from from archived_partitions where partition_name = %s", (name,)
    ).fetchone()
    assert row == ("system_metrics", 1, month_start(now - timedelta(days=200)))


# ---- CLI ----------------------------------------------------------------------------


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "platformdb.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, "COLUMNS": "200"},
        check=False,
    )


def test_cli_maintain_then_status_exits_0_and_shows_every_table(db_url: str) -> None:
    r = cli("maintain", "--database-url", db_url)
    assert r.returncode == 0, r.stderr + r.stdout
    for task in SCHEDULED:
        assert task in r.stdout
    r = cli("maintain", "--status", "--database-url", db_url)
    assert r.returncode == 0, r.stderr + r.stdout
    assert "system_metrics" in r.stdout and "problem" not in r.stdout
    r = cli("maintain", "--status", "--json", "--database-url", db_url)
    assert r.returncode == 0
    data = json.loads(r.stdout)
    assert data["ok"] is True and data["problems"] == []
    expected = set(PARTITIONED) if ALL_INSTALLED else {"system_audit_logs", "system_metrics"}
    assert {t["table_name"] for t in data["tables"]} >= expected
    assert all(t["months_covered_ahead"] >= 3 for t in data["tables"])
    assert {t["task"]: t["last_status"] for t in data["tasks"]}["partitions"] == "success"


def test_cli_status_exits_1_when_coverage_is_short_and_0_once_maintained(db_url: str) -> None:
    later = (month_start(datetime.now(UTC), 5) + timedelta(days=1)).isoformat()
    r = cli("maintain", "--status", "--now", later, "--database-url", db_url)
    assert r.returncode == 1
    assert "fewer than 3" in r.stdout
    r = cli("maintain", "--now", later, "--task", "partitions", "--json", "--database-url", db_url)
    assert r.returncode == 0, r.stderr
    assert [t["task"] for t in json.loads(r.stdout)["tasks"]] == ["partitions"]
    assert cli("maintain", "--status", "--now", later, "--database-url", db_url).returncode == 0


def test_cli_refuses_bad_arguments(db_url: str) -> None:
    r = cli("maintain", "--task", "defrag", "--database-url", db_url)
    assert r.returncode == 1 and "unknown maintenance task 'defrag'" in r.stderr
    r = cli("maintain", "--drop-archived-older-than", "a while", "--database-url", db_url)
    assert r.returncode == 1 and "interval" in r.stderr
    r = cli("maintain", "--status", "--task", "cache", "--database-url", db_url)
    assert r.returncode == 1 and "--status changes nothing" in r.stderr


def test_cli_drop_archived_older_than(db_url: str, conn: Conn) -> None:
    now = datetime.now(UTC)
    insert_dated(conn, "system_metrics", now - timedelta(days=400), "to-drop")
    r = cli("maintain", "--database-url", db_url)
    assert r.returncode == 0, r.stderr
    name = part_name("system_metrics", month_start(now - timedelta(days=400)))
    assert table_exists(conn, f"archive.{name}")
    r = cli(
        "maintain", "--task", "archive", "--drop-archived-older-than", "300 days", "--json",
        "--database-url", db_url,
    )
    assert r.returncode == 0, r.stderr
    tasks = {t["task"]: t for t in json.loads(r.stdout)["tasks"]}
    assert list(tasks) == ["archive", "drop_archived"]
    assert f"archive.{name}" in tasks["drop_archived"]["details"]["dropped"]
    assert not table_exists(conn, f"archive.{name}")


# ---- pg_cron ------------------------------------------------------------------------

CRON_DB = devdb.DEFAULT_DB  # the embedded cluster's cron.database_name


@pytest.fixture(scope="module")
def cron_db_url(cluster: devdb.Cluster, template_url: str) -> str:
    """The database pg_cron runs in on the test cluster (`platform`), migrated."""
    template = template_url.rsplit("/", 1)[1]
    with _admin(cluster) as a:
        exists = a.execute("select 1 from pg_database where datname = %s", (CRON_DB,)).fetchone()
        if not exists:
            a.execute(
                sql.SQL("create database {} template {}").format(sql.Identifier(CRON_DB), sql.Identifier(template))
            )
    return cluster.url(CRON_DB)


@pytest.fixture
def cron_conn(cron_db_url: str) -> Iterator[Conn]:
    with psycopg.connect(cron_db_url, autocommit=True) as c:
        maintain.unschedule(cron_db_url)
        yield c
        maintain.unschedule(cron_db_url)


def _our_jobs(c: Conn, database: str) -> dict[str, tuple[int, str, str]]:
    rows = c.execute(
        "select jobname, jobid, schedule, command from cron.job where database = %s and jobname like 'platformdb-%%'",
        (database,),
    ).fetchall()
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def test_schedule_registers_every_job_idempotently_and_uninstall_removes_only_ours(
    cron_db_url: str, cron_conn: Conn
) -> None:
    jobs = maintain.schedule(cron_db_url)
    planned = cron_conn.execute("select job_name, cron_expression from maintenance_schedule").fetchall()
    assert {j.name: j.schedule for j in jobs} == {f"platformdb-maintain-{n}": e for n, e in planned}
    first = _our_jobs(cron_conn, CRON_DB)
    assert len(first) == 6
    assert first["platformdb-maintain-reaper"][2] == (
        "select public.run_maintenance(p_tasks => '{reaper}'::text[], p_source => 'pg_cron')"
    )
    assert maintain.schedule(cron_db_url) == jobs  # same ids: updated in place, not duplicated
    assert _our_jobs(cron_conn, CRON_DB) == first

    # a job dropped from the schedule is removed on the next `schedule`
    cron_conn.execute("update maintenance_schedule set enabled = false where job_name = 'cache-hourly'")
    try:
        assert "platformdb-maintain-cache-hourly" not in {j.name for j in maintain.schedule(cron_db_url)}
    finally:
        cron_conn.execute("update maintenance_schedule set enabled = true where job_name = 'cache-hourly'")

    foreign = cron_conn.execute("select cron.schedule('someone-elses-job', '0 0 * * *', 'select 1')").fetchone()
    assert foreign is not None
    try:
        assert maintain.unschedule(cron_db_url) == 5
        assert _our_jobs(cron_conn, CRON_DB) == {}
        assert maintain.scheduled_jobs(cron_db_url) == []
        assert cron_conn.execute("select count(*) from cron.job where jobid = %s", (foreign[0],)).fetchone() == (1,)
    finally:
        cron_conn.execute("select cron.unschedule(%s::bigint)", (foreign[0],))


def test_every_scheduled_command_runs_as_written(cron_db_url: str, cron_conn: Conn) -> None:
    jobs = maintain.schedule(cron_db_url)
    for job in jobs:
        row = cron_conn.execute(job.command).fetchone()  # exactly what pg_cron will run
        assert row is not None and row[0]["failed"] == 0 and row[0]["source"] == "pg_cron", job
    sources = cron_conn.execute(
        "select task from maintenance_tasks where last_source = 'pg_cron' order by run_order"
    ).fetchall()
    assert [s[0] for s in sources] == list(SCHEDULED)


@pytest.mark.slow
def test_pg_cron_itself_runs_a_scheduled_job(cron_db_url: str, cron_conn: Conn) -> None:
    """The reaper job runs every minute: wait for pg_cron's next minute (pg_cron 1.4 has no
    sub-minute schedules) and check that the run it made is recorded as pg_cron's."""
    t0 = cron_conn.execute("select clock_timestamp()").fetchone()
    assert t0 is not None
    maintain.schedule(cron_db_url)
    _wait_for(
        lambda: cron_conn.execute(
            "select count(*) > 0 from maintenance_runs where task = 'reaper' and source = 'pg_cron'"
            " and started_at > %s",
            (t0[0],),
        ).fetchone()
        == (True,),
        "pg_cron to run the reaper job",
        timeout=120,
    )
    outcomes = cron_conn.execute(
        "select d.status from cron.job_run_details d join cron.job j using (jobid)"
        " where j.jobname = 'platformdb-maintain-reaper' and d.start_time > %s",
        (t0[0],),
    ).fetchall()
    assert outcomes and all(o[0] in ("succeeded", "running") for o in outcomes), outcomes


def test_schedule_from_another_database_goes_through_schedule_in_database(
    db_url: str, cron_db_url: str, cron_conn: Conn
) -> None:
    here = db_url.rsplit("/", 1)[1]
    jobs = maintain.schedule(db_url)
    assert len(jobs) == 6
    assert all(j.database == here and j.name.endswith(f"@{here}") for j in jobs)
    assert set(_our_jobs(cron_conn, here)) == {j.name for j in jobs}
    maintain.schedule(cron_db_url)  # the cron database's own jobs
    assert maintain.unschedule(db_url) == 6
    assert _our_jobs(cron_conn, here) == {}
    assert len(_our_jobs(cron_conn, CRON_DB)) == 6  # untouched


def test_the_worker_stays_idle_while_pg_cron_holds_the_jobs(cron_db_url: str, cron_conn: Conn) -> None:
    assert not maintain.pg_cron_runs_schedule(cron_conn)
    maintain.schedule(cron_db_url)
    assert maintain.pg_cron_runs_schedule(cron_conn)
    maintain.unschedule(cron_db_url)
    assert not maintain.pg_cron_runs_schedule(cron_conn)


def test_cli_schedule_and_uninstall(cron_db_url: str, cron_conn: Conn) -> None:
    r = cli("schedule", "--json", "--database-url", cron_db_url)
    assert r.returncode == 0, r.stderr
    assert len(json.loads(r.stdout)) == 6
    assert len(_our_jobs(cron_conn, CRON_DB)) == 6
    r = cli("schedule", "--uninstall", "--database-url", cron_db_url)
    assert r.returncode == 0 and "removed 6" in r.stderr
    assert _our_jobs(cron_conn, CRON_DB) == {}


@pytest.mark.slow
def test_schedule_says_clearly_when_the_server_has_no_pg_cron() -> None:
    base = Path(tempfile.mkdtemp(prefix="platformdb-nocron-", dir=os.environ.get("PLATFORMDB_TMP")))
    os.chmod(base, 0o755)  # noqa: S103 - the postgres OS user must enter it
    devdb._chown_postgres(base)
    c = devdb.Cluster(
        base / "data", devdb.free_port(), devdb.find_bindir(), ephemeral=True,
        settings={"shared_preload_libraries": "''"},
    )
    try:
        c.init()
        c.start()
        with pytest.raises(maintain.MaintenanceError, match="pg_cron is not available here"):
            maintain.schedule(c.url("postgres"))
        assert maintain.scheduled_jobs(c.url("postgres")) == []
        assert maintain.unschedule(c.url("postgres")) == 0  # nothing to remove
    finally:
        c.destroy()
