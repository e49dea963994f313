"""§3.1 observability: metrics, audit log, partitions, views, security and bad input."""

from __future__ import annotations

import statistics
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from platformdb import db, errors
from platformdb.sdk import observability as obs
from tests import shared_db
from tests.helpers import count, raises_sqlstate

# the monthly partition holding a row (on a Citus coordinator tableoid is the partition's
# shard, named <partition>_<shard id>: the same partition)
PARTITION_OF = "select regexp_replace(tableoid::regclass::text, '_[0-9]+$', '') from system_metrics where id = %s"

RECORD = """select record_metric(p_service_name => 'wa-webhook', p_metric_type => 'latency',
    p_metric_name => 'message_processing', p_value => 125, p_unit => 'ms',
    p_tags => '{"status":"success"}')"""


def test_record_metric_as_service_returns_an_id_and_stores_the_sample(conn: psycopg.Connection[Any]) -> None:
    with db.as_service(conn):
        row = conn.execute(RECORD).fetchone()
    assert row is not None and isinstance(row[0], uuid.UUID)
    stored = conn.execute(
        "select service_name, metric_type, metric_name, value, unit, tags from system_metrics where id = %s",
        (row[0],),
    ).fetchone()
    assert stored == ("wa-webhook", "latency", "message_processing", 125.0, "ms", {"status": "success"})


@pytest.mark.parametrize("role", ["anon", "authenticated"])
def test_record_metric_is_refused_to_anon_and_users(conn: psycopg.Connection[Any], role: str) -> None:
    with raises_sqlstate("42501", "permission denied for function record_metric"):
        with db.acting_as(conn, role, uuid.uuid4() if role == "authenticated" else None):
            conn.execute(RECORD)
    assert count(conn, "system_metrics") == 0


@pytest.mark.parametrize(
    ("call", "state", "message"),
    [
        ("p_metric_type => 'temperature'", "22023", "p_metric_type: unknown metric type temperature"),
        ("p_metric_type => null", "22023", "p_metric_type"),
        ("p_metric_type => 'gauge', p_metric_name => null", "22004", "p_metric_name must not be empty"),
        ("p_metric_type => 'gauge', p_metric_name => ''", "22004", "p_metric_name must not be empty"),
        ("p_metric_type => 'gauge', p_value => 'NaN'", "22004", "p_value must be a number"),
        ("p_metric_type => 'gauge', p_tags => '[1,2]'", "22023", "p_tags must be a JSON object"),
        ("p_metric_type => 'gauge', p_service_name => repeat('x', 101)", "23514", "service_name_length"),
    ],
)
def test_bad_input_is_refused_with_a_clear_error_and_nothing_written(
    conn: psycopg.Connection[Any], call: str, state: str, message: str
) -> None:
    defaults = {"p_service_name": "'svc'", "p_metric_name": "'m'", "p_value": "1"}
    for part in call.split(", "):
        defaults.pop(part.split(" =>")[0], None)
    args = ", ".join([call] + [f"{k} => {v}" for k, v in defaults.items()])
    with raises_sqlstate(state, message):
        with db.as_service(conn):
            conn.execute(f"select record_metric({args})")
    assert count(conn, "system_metrics") == 0


def test_sdk_maps_bad_input_to_invalid_input(conn: psycopg.Connection[Any]) -> None:
    with pytest.raises(errors.InvalidInput, match="unknown metric type"):
        with db.as_service(conn):
            obs.record_metric(conn, "svc", "temperature", "m", 1)
    with pytest.raises(errors.PermissionDenied):
        with db.as_anon(conn):
            obs.record_metric(conn, "svc", "gauge", "m", 1)


def test_a_metric_dated_14_months_ahead_is_stored_in_the_default_partition(
    conn: psycopg.Connection[Any],
) -> None:
    future = datetime.now(UTC) + timedelta(days=14 * 31)
    with db.as_service(conn):
        mid = obs.record_metric(conn, "svc", "gauge", "future", 1, recorded_at=future)
    part = conn.execute(
        PARTITION_OF, (mid,)
    ).fetchone()
    assert part == ("system_metrics_default",)


def test_current_and_coming_months_have_their_own_partitions(conn: psycopg.Connection[Any]) -> None:
    now = datetime.now(UTC)
    with db.as_service(conn):
        ids = [
            obs.record_metric(conn, "svc", "gauge", "m", i, recorded_at=now + timedelta(days=31 * i))
            for i in range(4)
        ]
    parts = [
        conn.execute(PARTITION_OF, (i,)).fetchone()
        for i in ids
    ]
    expected = []
    for i in range(4):
        m = (now.replace(day=1) + timedelta(days=31 * i)).replace(day=1)
        expected.append((f"system_metrics_p{m:%Y%m}",))
    assert parts == expected


def test_new_partition_takes_over_rows_that_landed_in_default(conn: psycopg.Connection[Any]) -> None:
    far = datetime.now(UTC).replace(day=15) + timedelta(days=31 * 6)
    with db.as_service(conn):
        mid = obs.record_metric(conn, "svc", "gauge", "m", 7, recorded_at=far)
    assert conn.execute("select create_monthly_partitions('system_metrics', 7)").fetchone() == (4,)  # months 4..7
    part = conn.execute(PARTITION_OF, (mid,)).fetchone()
    assert part == (f"system_metrics_p{far:%Y%m}",)
    assert count(conn, "system_metrics_default") == 0
    # the moved partition is locked down like the others
    acl = conn.execute(
        "select has_table_privilege('authenticated', %s, 'select'), relrowsecurity"
        " from pg_class where oid = %s::regclass",
        (f"system_metrics_p{far:%Y%m}",) * 2,
    ).fetchone()
    assert acl == (False, True)
    # idempotent
    assert conn.execute("select create_monthly_partitions('system_metrics', 7)").fetchone() == (0,)


def test_batch_ingest_is_atomic(conn: psycopg.Connection[Any]) -> None:
    good = [obs.Metric("svc", "counter", "hits", i) for i in range(100)]
    with db.as_service(conn):
        assert obs.record_metrics(conn, good) == 100
    bad = [*good, obs.Metric("svc", "nope", "hits", 1)]
    with pytest.raises(errors.InvalidInput, match="metric_type_valid"):
        with db.as_service(conn):
            obs.record_metrics(conn, bad)
    with raises_sqlstate("22023", "each element needs"):
        with db.as_service(conn):
            conn.execute("""select record_metrics('[{"service_name": "svc"}]')""")
    assert count(conn, "system_metrics") == 100


def test_copy_ingest_stores_all_rows_and_refuses_unknown_types(conn: psycopg.Connection[Any]) -> None:
    with db.as_service(conn):
        assert obs.copy_metrics(conn, [obs.Metric("svc", "cpu", "load", 0.5, "ratio", {"host": "a"})] * 50) == 50
    assert count(conn, "system_metrics", "tags = '{\"host\": \"a\"}'") == 50
    with pytest.raises(errors.InvalidInput):
        with db.as_service(conn):
            obs.copy_metrics(conn, [obs.Metric("svc", "bogus", "load", 1)])
    assert count(conn, "system_metrics") == 50


def test_views_aggregate_the_last_hour(conn: psycopg.Connection[Any]) -> None:
    values = [float(v) for v in range(1, 201)]
    now = datetime.now(UTC)
    with db.as_service(conn):
        obs.copy_metrics(conn, [obs.Metric("api", "latency", "req", v, "ms", {}, now) for v in values])
        obs.record_metric(conn, "api", "latency", "req", 10_000, "ms", recorded_at=now - timedelta(hours=2))
        rec = conn.execute(
            "select sample_count, avg_value, min_value, max_value from recent_metrics_by_service"
            " where service_name = 'api'"
        ).fetchone()
        pct = conn.execute(
            "select p50, p95, p99 from metric_percentiles where service_name = 'api'"
        ).fetchone()
    assert rec == (200, statistics.mean(values), 1.0, 200.0)
    assert pct is not None
    q = statistics.quantiles(values, n=100, method="inclusive")
    assert pct == pytest.approx((statistics.median(values), q[94], q[98]))


def test_views_are_service_only(conn: psycopg.Connection[Any], user_a: uuid.UUID) -> None:
    for view in ("recent_metrics_by_service", "metric_percentiles"):
        with raises_sqlstate("42501"):
            with db.as_user(conn, user_a):
                conn.execute(f"select * from {view}")


def test_log_audit_event_and_users_read_only_their_own_entries(
    conn: psycopg.Connection[Any], user_a: uuid.UUID, user_b: uuid.UUID
) -> None:
    with db.as_service(conn):
        a1 = obs.log_audit_event(conn, "user", "payment.initiated", "transaction", str(user_a),
                                 "tx-1", {"amount": 5000}, "corr-1")
        obs.log_audit_event(conn, "service", "payment.completed", "transaction", "payments-api",
                            "tx-1", correlation_id="corr-1", user_id=user_a)
        obs.log_audit_event(conn, "user", "ride.requested", "ride", str(user_b))
        obs.log_audit_event(conn, "system", "maintenance", "database")
        by_corr = conn.execute(
            "select count(*) from system_audit_logs where correlation_id = 'corr-1'"
        ).fetchone()
    assert by_corr == (2,)
    with db.as_user(conn, user_a):
        mine = conn.execute("select action from system_audit_logs order by action").fetchall()
    assert mine == [("payment.completed",), ("payment.initiated",)]
    with db.as_user(conn, user_b):
        assert conn.execute("select count(*) from system_audit_logs").fetchone() == (1,)
    with raises_sqlstate("42501"):
        with db.as_anon(conn):
            conn.execute("select count(*) from system_audit_logs")
    row = conn.execute("select user_id, metadata from system_audit_logs where id = %s", (a1,)).fetchone()
    assert row == (user_a, {"amount": 5000})


def test_log_audit_event_refuses_bad_input_and_writes_nothing(conn: psycopg.Connection[Any]) -> None:
    cases = [
        ("'robot', 'x', 'y'", "22023", "p_actor_type: unknown actor type robot"),
        ("'user', '', 'y'", "22004", "p_action must not be empty"),
        ("'user', 'x', null", "22004", "p_resource_type must not be empty"),
        ("'user', 'x', 'y', p_metadata => '\"text\"'", "22023", "p_metadata must be a JSON object"),
        ("'user', 'x', 'y', p_status => 'maybe'", "22023", "p_status: unknown status maybe"),
    ]
    for args, state, msg in cases:
        with raises_sqlstate(state, msg):
            with db.as_service(conn):
                conn.execute(f"select log_audit_event({args})")
    assert count(conn, "system_audit_logs") == 0


def test_users_cannot_write_the_audit_log(conn: psycopg.Connection[Any], user_a: uuid.UUID) -> None:
    with raises_sqlstate("42501"):
        with db.as_user(conn, user_a):
            conn.execute(
                "insert into system_audit_logs (user_id, actor_type, action, resource_type)"
                " values (%s, 'user', 'forged', 'x')",
                (user_a,),
            )
    with raises_sqlstate("42501"):
        with db.as_user(conn, user_a):
            conn.execute("select log_audit_event('user', 'forged', 'x')")


def test_audit_log_is_append_only_even_with_update_rights(conn: psycopg.Connection[Any]) -> None:
    with db.as_service(conn):
        aid = obs.log_audit_event(conn, "system", "boot", "server")
    with raises_sqlstate("42501"):
        with db.as_service(conn):
            conn.execute("update system_audit_logs set action = 'x' where id = %s", (aid,))
    # a role that was (wrongly) granted UPDATE/DELETE is still stopped by the trigger
    conn.execute("drop role if exists audit_tamperer")
    # LOGIN only on a Citus coordinator (shared-database mode), which connects to the
    # workers as the current role; on one PostgreSQL the role never logs in
    conn.execute("create role audit_tamperer" + (" login" if shared_db.given_url() else ""))
    try:
        conn.execute("grant select, update, delete on system_audit_logs to audit_tamperer")
        conn.execute("create policy tamper_all on system_audit_logs to audit_tamperer using (true)")
        for stmt in ("update system_audit_logs set action = 'x'", "delete from system_audit_logs"):
            with raises_sqlstate("PD006", "append-only"):
                with conn.transaction():
                    conn.execute("set local role audit_tamperer")
                    conn.execute(stmt)
    finally:
        conn.execute("drop policy tamper_all on system_audit_logs")
        conn.execute("revoke all on system_audit_logs from audit_tamperer")
        conn.execute("drop role audit_tamperer")
    assert conn.execute("select action from system_audit_logs where id = %s", (aid,)).fetchone() == ("boot",)


def test_generic_audit_trigger_records_changes_of_an_opted_in_table(
    conn: psycopg.Connection[Any], user_a: uuid.UUID
) -> None:
    conn.execute("create table public.listings (id uuid primary key default gen_random_uuid(), title text)")
    conn.execute("alter table public.listings enable row level security")
    conn.execute("create policy listings_all on public.listings to authenticated using (true) with check (true)")
    conn.execute("grant select, insert, update, delete on public.listings to authenticated")
    conn.execute("select enable_audit('public.listings')")
    with db.as_user(conn, user_a):
        lid = conn.execute("insert into public.listings (title) values ('bike') returning id").fetchone()[0]  # type: ignore[index]
        conn.execute("update public.listings set title = 'red bike' where id = %s", (lid,))
        conn.execute("delete from public.listings where id = %s", (lid,))
    rows = conn.execute(
        "select action, user_id, actor_type, resource_type, resource_id, old_data->>'title', new_data->>'title'"
        " from system_audit_logs order by created_at, action desc"
    ).fetchall()
    assert [r[0] for r in rows] == ["insert", "update", "delete"]
    assert {r[1] for r in rows} == {user_a}
    assert {r[2] for r in rows} == {"user"}
    assert rows[1][3:] == ("public.listings", str(lid), "bike", "red bike")
    conn.execute("select disable_audit('public.listings')")
    conn.execute("insert into public.listings (title) values ('car')")
    assert count(conn, "system_audit_logs") == 3
    # opting a table in is the owner's decision, not a user's or the service's
    for role in ("authenticated", "service_role"):
        with raises_sqlstate("42501"):
            with db.acting_as(conn, role, user_a):
                conn.execute("select enable_audit('public.listings')")


def test_sdk_records_float_values(conn: psycopg.Connection[Any]) -> None:
    with db.as_service(conn):
        mid = obs.record_metric(conn, "svc", "latency", "req", 182.5, "ms")
    assert conn.execute("select value from system_metrics where id = %s", (mid,)).fetchone() == (182.5,)


def test_an_error_swallowed_inside_acting_as_is_not_a_silent_rollback(conn: psycopg.Connection[Any]) -> None:
    with pytest.raises(errors.PlatformDBError, match="rolled back"):
        with db.as_service(conn):
            obs.record_metric(conn, "svc", "gauge", "kept?", 1)
            try:
                obs.record_metric(conn, "svc", "nope", "bad", 1)
            except errors.InvalidInput:
                pass
    assert count(conn, "system_metrics") == 0
