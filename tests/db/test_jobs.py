"""Background jobs (SPEC §3.5): idempotent scheduling, claims whose lease is the timeout,
heartbeats, completion, failures with an error per attempt, cancellation, recurring jobs."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from platformdb import db
from platformdb.errors import IdempotencyConflict, IllegalTransition, InvalidInput, LeaseLost, NotFound
from platformdb.sdk import jobs
from tests.helpers import count, nested_plans, raises_sqlstate, refused_by_its_name

Connect = Callable[..., psycopg.Connection[Any]]


@pytest.fixture
def svc(connect: Connect) -> psycopg.Connection[Any]:
    c = connect()
    c.execute("set role service_role")
    return c


def _job(conn: psycopg.Connection[Any], job_id: uuid.UUID) -> dict[str, Any]:
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            "select *, locked_until - attempted_at as lease, scheduled_at - now() as due_in"
            " from public.background_jobs where id = %s",
            (job_id,),
        ).fetchone()
    assert row is not None
    return row


def test_a_job_runs_to_completion_with_its_timeout_as_lease(
    svc: psycopg.Connection[Any], conn: psycopg.Connection[Any]
) -> None:
    jid = jobs.schedule_job(svc, "reports.daily", "daily report", {"day": "2026-04-01"}, timeout_seconds=120)
    [j] = jobs.claim_jobs(svc, ["reports.daily"], 5, "w1")
    assert (j.id, j.attempt, j.timeout_seconds, j.job_name) == (jid, 1, 120, "daily report")
    row = _job(conn, jid)
    assert row["state"] == "running" and row["lease"] == timedelta(seconds=120)
    assert jobs.complete_job(svc, jid, {"rows": 42}, "w1") is True
    row = _job(conn, jid)
    assert (row["state"], row["result"]) == ("completed", {"rows": 42})
    assert row["finalized_at"] is not None and row["locked_until"] is None
    assert jobs.complete_job(svc, jid, None, "w1") is False


def test_scheduling_is_idempotent_by_key_per_job_type(
    svc: psycopg.Connection[Any], conn: psycopg.Connection[Any]
) -> None:
    a = jobs.schedule_job(svc, "payouts.settle", "settle", {"batch": 1}, idempotency_key="b-1")
    assert jobs.schedule_job(svc, "payouts.settle", "settle", {"batch": 1}, idempotency_key="b-1") == a
    with pytest.raises(IdempotencyConflict):
        jobs.schedule_job(svc, "payouts.settle", "settle", {"batch": 2}, idempotency_key="b-1")
    assert jobs.schedule_job(svc, "payouts.report", "settle", {"batch": 1}, idempotency_key="b-1") != a
    assert count(conn, "public.background_jobs") == 2


def test_claims_filter_by_type_and_respect_the_schedule(
    svc: psycopg.Connection[Any], conn: psycopg.Connection[Any]
) -> None:
    mail = jobs.schedule_job(svc, "mail", "m", {})
    sms = jobs.schedule_job(svc, "sms", "s", {}, priority=1)
    now = conn.execute("select now()").fetchone()[0]  # type: ignore[index]
    jobs.schedule_job(svc, "sms", "later", {}, scheduled_at=now + timedelta(minutes=5))
    assert [j.id for j in jobs.claim_jobs(svc, ["mail"])] == [mail]
    assert [j.id for j in jobs.claim_jobs(svc, None)] == [sms]
    assert jobs.claim_jobs(svc, None) == []
    with raises_sqlstate("22023", "non-empty"):
        svc.execute("select * from public.claim_jobs(array[]::text[])")


def test_heartbeats_extend_the_lease_of_the_holder_only(
    svc: psycopg.Connection[Any], conn: psycopg.Connection[Any]
) -> None:
    jid = jobs.schedule_job(svc, "geo.reindex", "reindex", {}, timeout_seconds=30)
    jobs.claim_jobs(svc, ["geo.reindex"], 1, "w1")
    until = jobs.heartbeat_job(svc, jid, 600, "w1")
    db_now = conn.execute("select now()").fetchone()[0]  # type: ignore[index]
    assert until - db_now > timedelta(seconds=500)
    assert _job(conn, jid)["heartbeat_at"] is not None
    with pytest.raises(LeaseLost):
        jobs.heartbeat_job(svc, jid, None, "intruder")
    jobs.complete_job(svc, jid, None, "w1")
    with pytest.raises(LeaseLost, match="is completed"):
        jobs.heartbeat_job(svc, jid, None, "w1")
    with pytest.raises(NotFound):
        jobs.heartbeat_job(svc, uuid.uuid4())


def test_failures_keep_one_error_per_attempt_then_dead_letter(
    svc: psycopg.Connection[Any], conn: psycopg.Connection[Any]
) -> None:
    jid = jobs.schedule_job(svc, "momo.reconcile", "reconcile", {}, max_attempts=2)
    jobs.claim_jobs(svc, ["momo.reconcile"], 1, "w1")
    assert jobs.fail_job(svc, jid, "MTN API timeout", True, "w1") == "retryable"
    row = _job(conn, jid)
    assert timedelta(seconds=0.9) <= row["due_in"] <= timedelta(seconds=2)
    conn.execute("update public.background_jobs set scheduled_at = now() where id = %s", (jid,))
    [j] = jobs.claim_jobs(svc, ["momo.reconcile"], 1, "w2")
    assert j.attempt == 2 and len(j.errors) == 1
    assert jobs.fail_job(svc, jid, "MTN API timeout again", True, "w2") == "dead_letter"
    row = _job(conn, jid)
    assert [(e["attempt"], e["worker"]) for e in row["errors"]] == [(1, "w1"), (2, "w2")]
    assert row["attempted_by"] == ["w1", "w2"]
    assert jobs.redrive_dead_letter_jobs(svc, "momo.reconcile") == 1
    assert [j.attempt for j in jobs.claim_jobs(svc, ["momo.reconcile"])] == [1]


def test_a_non_retryable_failure_goes_straight_to_dead_letter(
    svc: psycopg.Connection[Any], conn: psycopg.Connection[Any]
) -> None:
    jid = jobs.schedule_job(svc, "kyc.check", "check", {}, max_attempts=10)
    jobs.claim_jobs(svc, ["kyc.check"])
    assert jobs.fail_job(svc, jid, "invalid national id", retryable=False) == "dead_letter"
    row = _job(conn, jid)
    assert row["attempt"] == 1 and row["errors"][0]["retryable"] is False
    with pytest.raises(LeaseLost):
        jobs.fail_job(svc, jid, "again")


def test_a_job_that_outlives_its_timeout_is_claimed_again_with_the_attempt_counted(
    connect: Connect, conn: psycopg.Connection[Any]
) -> None:
    a, b = connect(), connect()
    for c in (a, b):
        c.execute("set role service_role")
    jid = jobs.schedule_job(a, "slow.job", "slow", {}, timeout_seconds=1)
    jobs.claim_jobs(a, ["slow.job"], 1, "stuck")
    # ::integer: Citus adds a pg_terminate_backend(bigint, bigint) that a small int would match too
    conn.execute("select pg_terminate_backend(%s::integer)", (a.info.backend_pid,))
    for _ in range(500):
        if conn.execute(
            "select locked_until < clock_timestamp() from public.background_jobs where id = %s", (jid,)
        ).fetchone() == (True,):
            break
        time.sleep(0.02)
    [j] = jobs.claim_jobs(b, ["slow.job"], 1, "rescuer")
    assert j.id == jid and j.attempt == 2
    assert j.errors[-1]["worker"] == "stuck" and "lease expired" in j.errors[-1]["error"]
    with pytest.raises(LeaseLost):
        jobs.complete_job(b, jid, None, "stuck")


def test_cancel_only_what_has_not_started(svc: psycopg.Connection[Any], conn: psycopg.Connection[Any]) -> None:
    waiting = jobs.schedule_job(svc, "c", "waiting", {})
    assert jobs.cancel_job(svc, waiting) is True
    assert _job(conn, waiting)["state"] == "cancelled"
    assert jobs.claim_jobs(svc, ["c"]) == []
    running = jobs.schedule_job(svc, "c", "running", {})
    jobs.claim_jobs(svc, ["c"])
    with pytest.raises(IllegalTransition):
        jobs.cancel_job(svc, running)
    jobs.complete_job(svc, running)
    assert jobs.cancel_job(svc, running) is False
    assert jobs.release_jobs(svc, [running]) == 0


def test_release_returns_a_job_without_counting_the_attempt(
    svc: psycopg.Connection[Any], conn: psycopg.Connection[Any]
) -> None:
    jid = jobs.schedule_job(svc, "r", "r", {})
    jobs.claim_jobs(svc, ["r"], 1, "w")
    assert jobs.release_jobs(svc, [jid], "other") == 0
    assert jobs.release_jobs(svc, [jid], "w") == 1
    assert (_job(conn, jid)["state"], _job(conn, jid)["attempt"]) == ("available", 0)


# ---- recurring ------------------------------------------------------------------------


def test_a_recurring_job_fires_once_per_slot(svc: psycopg.Connection[Any], conn: psycopg.Connection[Any]) -> None:
    rid = jobs.schedule_recurring_job(svc, "cache.cleanup", "cache.cleanup", "*/5 * * * *", {"scope": "all"})
    assert jobs.run_due_recurring_jobs(svc) == 0, "the first tick only computes the next slot"
    nxt = conn.execute("select next_run_at from public.recurring_jobs where id = %s", (rid,)).fetchone()[0]  # type: ignore[index]
    assert nxt.minute % 5 == 0 and nxt.second == 0 and nxt > datetime.now(UTC) - timedelta(seconds=5)
    assert jobs.run_due_recurring_jobs(svc) == 0, "not due yet"

    slot = nxt - timedelta(minutes=5)
    conn.execute("update public.recurring_jobs set next_run_at = %s where id = %s", (slot, rid))
    assert jobs.run_due_recurring_jobs(svc) == 1
    [j] = jobs.claim_jobs(svc, ["cache.cleanup"])
    assert (j.job_name, j.payload, j.recurring_job_id, j.scheduled_at) == ("cache.cleanup", {"scope": "all"}, rid, slot)
    row = conn.execute(
        "select next_run_at, last_run_at, last_job_id from public.recurring_jobs where id = %s", (rid,)
    ).fetchone()
    assert row == (nxt, slot, j.id)
    assert jobs.run_due_recurring_jobs(svc) == 0
    # firing the same slot again is refused and schedules nothing
    with raises_sqlstate("PD005", "is due at"):
        svc.execute("select public.fire_recurring_job(%s, %s, %s)", (rid, slot, nxt))
    assert count(conn, "public.background_jobs", f"recurring_job_id = '{rid}'") == 1


def test_two_workers_ticking_together_fire_a_slot_once(connect: Connect, conn: psycopg.Connection[Any]) -> None:
    a, b = connect(), connect()
    for c in (a, b):
        c.execute("set role service_role")
    rid = jobs.schedule_recurring_job(a, "hourly", "reports.hourly", "@hourly")
    conn.execute("update public.recurring_jobs set next_run_at = now() - interval '1 minute' where id = %s", (rid,))
    with a.transaction():
        assert jobs.run_due_recurring_jobs(a) == 1  # holds the schedule's row lock until commit
        assert jobs.run_due_recurring_jobs(b) == 0, "the other worker skips the locked schedule"
    assert jobs.run_due_recurring_jobs(b) == 0, "and after the commit it is no longer due"
    assert count(conn, "public.background_jobs", f"recurring_job_id = '{rid}'") == 1


def test_missed_slots_are_coalesced_into_one_run(svc: psycopg.Connection[Any], conn: psycopg.Connection[Any]) -> None:
    rid = jobs.schedule_recurring_job(svc, "every-minute", "ping", "* * * * *")
    conn.execute(
        "update public.recurring_jobs set next_run_at = date_trunc('minute', now()) - interval '1 day' where id = %s",
        (rid,),
    )
    assert jobs.run_due_recurring_jobs(svc) == 1
    assert jobs.run_due_recurring_jobs(svc) == 0
    row = conn.execute("select next_run_at > now() from public.recurring_jobs where id = %s", (rid,)).fetchone()
    assert row == (True,)


def test_cron_is_read_in_the_schedule_time_zone(svc: psycopg.Connection[Any], conn: psycopg.Connection[Any]) -> None:
    rid = jobs.schedule_recurring_job(svc, "kigali-2am", "payouts.batch", "0 2 * * *", timezone="Africa/Kigali")
    jobs.run_due_recurring_jobs(svc)
    nxt = conn.execute("select next_run_at from public.recurring_jobs where id = %s", (rid,)).fetchone()[0]  # type: ignore[index]
    assert (nxt.astimezone(UTC).hour, nxt.minute) == (0, 0), "02:00 in Kigali is 00:00 UTC"
    assert jobs.next_fire_time("0 2 * * *", "Africa/Kigali", datetime(2026, 4, 1, 1, 0, tzinfo=UTC)) == datetime(
        2026, 4, 2, 0, 0, tzinfo=UTC
    )


def test_a_new_schedule_is_computed_afresh(svc: psycopg.Connection[Any], conn: psycopg.Connection[Any]) -> None:
    rid = jobs.schedule_recurring_job(svc, "re", "x", "0 * * * *")
    jobs.run_due_recurring_jobs(svc)
    assert conn.execute(
        "select next_run_at is not null from public.recurring_jobs where id = %s", (rid,)
    ).fetchone() == (True,)
    jobs.schedule_recurring_job(svc, "re", "x", "0 * * * *", {"same": "schedule"})
    assert conn.execute(
        "select next_run_at is not null from public.recurring_jobs where id = %s", (rid,)
    ).fetchone() == (True,)
    assert jobs.schedule_recurring_job(svc, "re", "x", "30 * * * *") == rid
    assert conn.execute("select next_run_at from public.recurring_jobs where id = %s", (rid,)).fetchone() == (None,)
    assert jobs.unschedule_recurring_job(svc, "re") is True
    assert jobs.unschedule_recurring_job(svc, "re") is False


def test_an_expression_croniter_cannot_evaluate_disables_the_schedule(
    svc: psycopg.Connection[Any], conn: psycopg.Connection[Any]
) -> None:
    # syntactically a cron expression (the database accepts it) but minute 61 does not exist
    svc.execute("select public.schedule_recurring_job('broken', 'x', '61 * * * *')")
    ok = jobs.schedule_recurring_job(svc, "fine", "x", "* * * * *")
    jobs.run_due_recurring_jobs(svc)
    row = conn.execute("select enabled, last_error from public.recurring_jobs where name = 'broken'").fetchone()
    assert row is not None and row[0] is False and "61 * * * *" in row[1]
    assert conn.execute(
        "select enabled, next_run_at is not null from public.recurring_jobs where id = %s", (ok,)
    ).fetchone() == (True, True)


@pytest.mark.parametrize(
    ("args", "state", "message"),
    [
        (("n", "x", "* * * *"), "22023", "p_cron_expression"),
        (("n", "x", "every day"), "22023", "p_cron_expression"),
        (("n", "x", None), "22004", "p_cron_expression must not be null"),
        (("", "x", "* * * * *"), "22004", "p_name must not be empty"),
        (("n", "bad type!", "* * * * *"), "22023", "p_job_type"),
    ],
)
def test_bad_schedules_are_refused(
    svc: psycopg.Connection[Any], conn: psycopg.Connection[Any], args: tuple[Any, ...], state: str, message: str
) -> None:
    with raises_sqlstate(state, message):
        svc.execute("select public.schedule_recurring_job(%s, %s, %s)", args)
    with raises_sqlstate("22023", "unknown time zone"):
        svc.execute("select public.schedule_recurring_job('n', 'x', '* * * * *', p_timezone => 'Mars/Base')")
    assert count(conn, "public.recurring_jobs") == 0


def test_the_sdk_validates_cron_before_the_database(svc: psycopg.Connection[Any]) -> None:
    with pytest.raises(InvalidInput, match="cron_expression"):
        jobs.schedule_recurring_job(svc, "n", "x", "61 * * * *")


@pytest.mark.parametrize(
    ("kwargs", "state", "message"),
    [
        ({"job_type": ""}, "22004", "p_job_type must not be empty"),
        ({"job_type": "has space"}, "22023", "p_job_type must be"),
        ({"job_name": ""}, "22004", "p_job_name must not be empty"),
        ({"priority": 0}, "22003", "p_priority"),
        ({"max_attempts": 101}, "22003", "p_max_attempts"),
        ({"timeout_seconds": 0}, "22003", "p_timeout_seconds"),
        ({"payload": {"blob": "x" * 300_000}}, "22023", "p_payload is too large"),
    ],
)
def test_bad_jobs_are_refused_and_write_nothing(
    svc: psycopg.Connection[Any], conn: psycopg.Connection[Any], kwargs: dict[str, Any], state: str, message: str
) -> None:
    args: dict[str, Any] = {"job_type": "t", "job_name": "n", "payload": {}}
    args.update(kwargs)
    with pytest.raises(InvalidInput) as info:
        jobs.schedule_job(svc, args.pop("job_type"), args.pop("job_name"), args.pop("payload"), **args)
    assert info.value.sqlstate == state and message in info.value.message
    assert count(conn, "public.background_jobs") == 0


@pytest.mark.parametrize(
    ("query", "state"),
    [
        ("select * from public.claim_jobs(null, 0)", "22003"),
        ("select * from public.claim_jobs(array['a', null])", "22023"),
        ("select public.heartbeat_job(gen_random_uuid(), 0)", "22003"),
        ("select public.fail_job(gen_random_uuid(), null)", "22004"),
        ("select public.complete_job(null)", "22004"),
        ("select public.cancel_job(gen_random_uuid())", "PD004"),
        ("select public.fire_recurring_job(gen_random_uuid(), null, null)", "22004"),
        ("select public.fire_recurring_job(gen_random_uuid(), now(), now() - interval '1 minute')", "22023"),
        ("select public.claim_due_recurring_jobs(0)", "22003"),
    ],
)
def test_bad_job_calls_are_refused(svc: psycopg.Connection[Any], query: str, state: str) -> None:
    with raises_sqlstate(state):
        svc.execute(query)


def test_background_job_stats(svc: psycopg.Connection[Any]) -> None:
    for i in range(3):
        jobs.schedule_job(svc, "stats.job", f"j{i}", {})
    jobs.schedule_recurring_job(svc, "stats-recurring", "stats.job", "@daily")
    claimed = jobs.claim_jobs(svc, ["stats.job"], 2)
    jobs.complete_job(svc, claimed[0].id, {"ok": True})
    [s] = [r for r in jobs.job_stats(svc) if r["job_type"] == "stats.job"]
    assert (s["depth"], s["running"], s["completed"], s["recurring_schedules"]) == (1, 1, 1, 1)
    assert s["avg_duration_seconds_last_hour"] is not None


@pytest.mark.parametrize("role", ["anon", "authenticated"])
@pytest.mark.parametrize(
    "query",
    [
        "select public.schedule_job('t', 'n', '{}')",
        "select * from public.claim_jobs()",
        "select public.complete_job(gen_random_uuid())",
        "select public.schedule_recurring_job('n', 't', '* * * * *')",
        "select * from public.claim_due_recurring_jobs()",
        "select * from public.background_job_stats",
        "select count(*) from public.recurring_jobs",
    ],
)
def test_users_cannot_schedule_or_run_jobs(
    conn: psycopg.Connection[Any], user_a: uuid.UUID, role: str, query: str
) -> None:
    with raises_sqlstate("42501"), db.acting_as(conn, role, user_a if role == "authenticated" else None):
        conn.execute(query)
    assert count(conn, "public.background_jobs") == 0


def test_job_plans_follow_the_table_as_it_fills(svc: psycopg.Connection[Any], conn: psycopg.Connection[Any]) -> None:
    """A worker connects while background_jobs is empty (and analyzed so), then the table
    fills with no ANALYZE in between: its claims and completions still read the indexes. A
    plan PL/pgSQL keeps per connection, made on the empty table, would scan the whole table
    at every call after. Plans read from auto_explain, nested statements on."""
    conn.execute("analyze public.background_jobs")
    for _ in range(6):  # PL/pgSQL may settle on a generic plan after 5 calls
        job_id = svc.execute("select public.schedule_job('warm', 'w', '{}')").fetchone()[0]  # type: ignore[index]
        [(claimed,)] = svc.execute("select id from public.claim_jobs(array['warm'], 5, 'w')").fetchall()
        assert claimed == job_id
        assert svc.execute("select public.complete_job(%s, null, 'w')", (job_id,)).fetchone() == (True,)
    conn.execute(
        "insert into public.background_jobs (job_type, job_name, payload)"
        " select case when g <= 20000 then 'big' else 'small' || (g % 300) end, 'j', '{}'"
        " from generate_series(1, 23000) g"
    )
    with nested_plans(svc) as plans:
        for types in (["big"], None, ["small7"]):
            ids = [r[0] for r in svc.execute("select id from public.claim_jobs(%s, 5, 'w')", (types,))]
            assert len(ids) == 5
            for job_id in ids:
                assert svc.execute("select public.complete_job(%s, null, 'w')", (job_id,)).fetchone() == (True,)
    touching = [p for p in plans if "background_jobs" in p and ("Update on" in p or "LockRows" in p)]
    assert len(touching) >= 3 + 15
    for plan in touching:
        assert "Seq Scan on background_jobs" not in plan, plan


# ---- the table's own checks (20260401340000: one-column checks on domains, same names) ----

JOB_ROW = {"job_type": "'ride.receipt'", "job_name": "'send receipt'", "payload": "'{}'"}
BIG_JSON = "(select jsonb_object_agg(g::text, md5(g::text)) from generate_series(1, 8000) g)"


@pytest.mark.parametrize(
    ("column", "value", "constraint"),
    [
        ("state", "'lost'", "background_jobs_state_valid"),
        ("job_type", "'bad type!'", "background_jobs_job_type_format"),
        ("job_type", "''", "background_jobs_job_type_format"),
        ("job_type", "repeat('t', 201)", "background_jobs_job_type_format"),
        ("job_type", "'ride' || chr(10)", "background_jobs_job_type_format"),
        ("job_name", "''", "background_jobs_job_name_length"),
        ("job_name", "repeat('n', 201)", "background_jobs_job_name_length"),
        ("priority", "0", "background_jobs_priority_range"),
        ("priority", "11", "background_jobs_priority_range"),
        ("max_attempts", "0", "background_jobs_max_attempts_range"),
        ("max_attempts", "101", "background_jobs_max_attempts_range"),
        ("timeout_seconds", "0", "background_jobs_timeout_range"),
        ("timeout_seconds", "86401", "background_jobs_timeout_range"),
        ("payload", BIG_JSON, "background_jobs_payload_size"),
        ("result", BIG_JSON, "background_jobs_result_size"),
        ("idempotency_key", "''", "background_jobs_idempotency_key_length"),
        ("idempotency_key", "repeat('k', 201)", "background_jobs_idempotency_key_length"),
        # the checks that tie columns together stay on the table
        ("attempt", "6", "background_jobs_attempt_range"),
        ("state", "'running'", "background_jobs_running_has_lease"),
        ("state", "'completed'", "background_jobs_finalized_or_finalized_at_null"),
        ("result", "'{}'", "background_jobs_result_only_when_completed"),
    ],
)
def test_the_jobs_table_itself_refuses_a_bad_row_by_its_named_check(
    conn: psycopg.Connection[Any], column: str, value: str, constraint: str
) -> None:
    """The table's owner (every function of ours writes as it) cannot store a bad job either,
    by INSERT or UPDATE: the one-column checks live on the columns' domains, the others on the
    table, each under its name, with SQLSTATE 23514."""
    refused_by_its_name(conn, "public.background_jobs", JOB_ROW, column, value, constraint)


def test_a_job_type_of_the_allowed_characters_is_stored(conn: psycopg.Connection[Any]) -> None:
    """job_type's check tests a length and "no other character" on its domain: the strings
    '^[A-Za-z0-9_.:-]{1,200}$' accepted, at both ends of the length."""
    for job_type in ("a", "Ride.receipt:v2_x-1", "t" * 200):
        conn.execute(
            "insert into public.background_jobs (job_type, job_name, payload) values (%s, 'n', '{}')", (job_type,)
        )
    assert count(conn, "public.background_jobs") == 3
    typed = conn.execute(
        "select data_type from information_schema.columns where table_schema = 'public'"
        " and table_name = 'background_job_stats' and column_name = 'job_type'"
    ).fetchone()
    assert typed == ("text",)
    checks = conn.execute(
        "select count(*) from pg_constraint where conrelid = 'public.background_jobs'::regclass and contype = 'c'"
    ).fetchone()
    assert checks == (4,)
