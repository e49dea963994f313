"""`platformdb citus distribute` (platformdb.citus): the plan as DDL. Without Citus (as in
`make test`) it refuses before changing anything; --dry-run prints the SQL; the schema changes
themselves (everything but create_*_table) run on plain PostgreSQL and leave a schema in which
every unique key carries its distribution column. `make citus` runs the whole of it on Citus."""

from __future__ import annotations

import re
import uuid
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner

from platformdb import citus, db
from platformdb.cli import app
from platformdb.scaling import PLAN
from tests.db.test_scaling_plan import UNIQUES


def _runner_app() -> Any:
    from platformdb.cli import _register_extensions

    _register_extensions()
    return app


def test_without_citus_it_refuses_and_changes_nothing(db_url: str, conn: psycopg.Connection[Any]) -> None:
    before = conn.execute("select pg_get_constraintdef(oid) from pg_constraint where conname = 'system_metrics_pkey'"
                          " and conrelid = 'public.system_metrics'::regclass").fetchone()
    with pytest.raises(citus.CitusMissing) as exc:
        citus.distribute(db_url)
    assert exc.value.sqlstate == "0A000"
    assert "citus" in str(exc.value) and "create extension citus" in str(exc.value)
    after = conn.execute("select pg_get_constraintdef(oid) from pg_constraint where conname = 'system_metrics_pkey'"
                         " and conrelid = 'public.system_metrics'::regclass").fetchone()
    assert before == after == ("PRIMARY KEY (id, created_at)",)
    r = CliRunner().invoke(_runner_app(), ["citus", "distribute", "--database-url", db_url])
    assert r.exit_code == 1
    assert "Citus" in r.output or "citus" in r.output


def test_dry_run_prints_every_placement_in_a_valid_order(db_url: str) -> None:
    r = CliRunner().invoke(_runner_app(), ["citus", "distribute", "--dry-run", "--database-url", db_url])
    assert r.exit_code == 0, r.output
    out = r.output
    order = [m.group(1) for m in re.finditer(r"create_(?:reference|distributed)_table\('public\.(\w+)'", out)]
    assert sorted(order) == sorted(t for t, p in PLAN.items() if p.kind != "local")
    for t, p in PLAN.items():
        if p.kind == "reference":
            assert f"select create_reference_table('public.{t}');" in out
        elif p.kind == "distributed":
            assert f"select create_distributed_table('public.{t}', '{p.column}', colocate_with => " in out
    # every reference table first; a group's lead, and a referenced table, before the others
    refs = [t for t, p in PLAN.items() if p.kind == "reference"]
    assert order[: len(refs)] == refs
    assert order.index("payment_methods") < order.index("transactions")
    assert order.index("transaction_directory") < order.index("transaction_events")
    assert order.index("event_store") < order.index("event_streams")
    assert "colocate_with => 'public.payment_methods'" in out
    # the plan's constraint changes come before their table's placement
    placed = out.index("create_distributed_table('public.transactions'")
    assert out.index("PRIMARY KEY (user_id, id, created_at)") < placed
    # a foreign key that gains the distribution column: dropped before its table is placed,
    # added again once both sides are in the same co-location group
    events = out.index("create_distributed_table('public.transaction_events'")
    assert out.index('drop constraint if exists "transaction_events_transaction_fkey"') < events
    assert out.index(
        'add constraint "transaction_events_transaction_fkey" FOREIGN KEY (user_id, transaction_id)'
    ) > events
    assert "whatsapp_message_queue_session_fk" not in out  # both sides stay on the coordinator
    # a user's insert names some columns of payment_methods; the shards also accept the
    # defaults the coordinator fills in
    grant = out.index('grant insert ("id", "is_active", "created_at", "updated_at") on table %s to "authenticated"')
    assert grant > out.index("create_distributed_table('public.payment_methods'")
    # owner policies lose their (select auth.uid()) subquery, which Citus refuses
    assert re.search(
        r"alter policy \"payment_methods_owner_update\" on public\.\"payment_methods\" using \(.*auth\.uid\(\)", out
    )
    assert "SELECT auth.uid()" not in out


def test_the_schema_changes_run_and_leave_every_unique_key_distributable(
    db_url: str, conn: psycopg.Connection[Any]
) -> None:
    # everything but the placements and the grants on the shards (which only Citus has)
    steps = [s for s in citus.plan_steps(conn) if "create_reference_table" not in s.sql
             and "create_distributed_table" not in s.sql and "run_command_on_shards" not in s.sql]
    assert steps
    with conn.transaction():
        for s in steps:
            for stmt in s.sql.split(";\n"):
                conn.execute(stmt.encode())
    for t, p in PLAN.items():
        if p.kind != "distributed":
            continue
        for name, cols in conn.execute(UNIQUES, (t,)).fetchall():
            assert p.column in cols, f"{t}: {name} ({cols}) still lacks {p.column}"
    # idempotent: nothing but the placements is left to do
    left = [s for s in citus.plan_steps(conn) if "create_" not in s.sql and "run_command_on_shards" not in s.sql]
    assert left == []
    # the rewritten owner policies answer as before: a user sees their own place only
    a, b = uuid.uuid4(), uuid.uuid4()
    for u in (a, b):
        with db.as_user(conn, u):
            conn.execute("select save_location(-1.95, 30.06, 'home', 'mine')")
    with db.as_user(conn, a):
        rows = conn.execute("select user_id from locations").fetchall()
    assert rows == [(a,)]


def test_propagate_request_claims_keeps_the_claims_on_one_node(conn: psycopg.Connection[Any]) -> None:
    """The PostgREST db-pre-request hook: the claims set with set_config(…, true), as PostgREST
    sets them, are still the request's claims after it ran (on Citus they also reach the
    workers; `make citus` checks that), and every API role may call it."""
    uid = uuid.uuid4()
    claims = f'{{"sub": "{uid}", "role": "authenticated"}}'
    with conn.transaction(force_rollback=True):
        conn.execute("insert into public.locations (user_id, location_type, latitude, longitude)"
                     " values (%s, 'home', -1.95, 30.06), (gen_random_uuid(), 'home', -1.95, 30.06)", (uid,))
        conn.execute("select set_config('request.jwt.claims', %s, true), set_config('role', 'authenticated', true)",
                     (claims,))
        conn.execute("select public.propagate_request_claims()")
        row = conn.execute("select auth.uid(), (select count(*) from public.locations)").fetchone()
        assert row == (uid, 1)
    for role in ("anon", "authenticated", "service_role"):
        with conn.transaction(force_rollback=True):
            conn.execute(f"set local role {role}")
            conn.execute("select public.propagate_request_claims()")  # no claims: a no-op
            assert conn.execute("select current_setting('request.jwt.claims', true)").fetchone() in [(None,), ("",)]
