"""§3.4 feature flags against a real PostgreSQL: bucketing, strategies, environments, the
rule language, counting without a write per call, security, bad input, the SDK client
(parity with SQL, LISTEN/NOTIFY propagation, refresh, reconnect) and the OpenFeature provider.
"""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import mmh3
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openfeature import api as of_api
from openfeature.evaluation_context import EvaluationContext
from openfeature.event import EventDetails, ProviderEvent
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import Reason

from platformdb import db, errors
from platformdb.sdk import flags
from platformdb.sdk.openfeature import PlatformDBProvider
from tests.helpers import count, raises_sqlstate
from tests.unit.test_bucketing import CTX as RULE_CTX
from tests.unit.test_bucketing import RULE_CASES

Connect = Callable[..., psycopg.Connection[Any]]


def users(n: int, seed: int = 1) -> list[uuid.UUID]:
    rng = random.Random(seed)
    return [uuid.UUID(int=rng.getrandbits(128), version=4) for _ in range(n)]


def upsert(conn: psycopg.Connection[Any], key: str, **kw: Any) -> uuid.UUID:
    with db.as_service(conn):
        return flags.upsert_flag(conn, key, **kw)


def enabled_count(conn: psycopg.Connection[Any], key: str, ids: list[uuid.UUID], env: str = "production") -> int:
    row = conn.execute(
        "select count(*) filter (where public.is_feature_enabled(%s, u, %s)) from unnest(%s::uuid[]) u",
        (key, env, ids),
    ).fetchone()
    assert row is not None
    return int(row[0])


def enabled_set(conn: psycopg.Connection[Any], key: str, ids: list[uuid.UUID]) -> set[uuid.UUID]:
    rows = conn.execute(
        "select u from unnest(%s::uuid[]) u where public.is_feature_enabled(%s, u)", (ids, key)
    ).fetchall()
    return {r[0] for r in rows}


def is_on(
    conn: psycopg.Connection[Any],
    key: str,
    user: uuid.UUID | None = None,
    env: str = "production",
    ctx: dict[str, Any] | None = None,
) -> bool:
    with db.as_service(conn):
        return flags.is_feature_enabled(conn, key, user, env, ctx)


def evaluations(conn: psycopg.Connection[Any]) -> dict[tuple[str, str, str, str], int]:
    rows = conn.execute(
        "select flag_key, environment, reason, source, evaluations from feature_flag_evaluations"
    ).fetchall()
    return {(r[0], r[1], r[2], r[3]): r[4] for r in rows}


# ---- bucketing --------------------------------------------------------------------------


def test_bucket_gives_unleash_client_specification_vectors(conn: psycopg.Connection[Any]) -> None:
    row = conn.execute("select feature_flag_bucket('AB12A', '122'), feature_flag_bucket('AB12A', '155')").fetchone()
    assert row == (23, 100)


def test_bucket_is_mmh3_on_random_and_non_ascii_strings_of_every_length(conn: psycopg.Connection[Any]) -> None:
    rng = random.Random(42)
    alphabet = "abcXYZ019-_.:~ é€𝄞漢ßñ\u0301\U0001f600ق"
    pairs = []
    for length in range(0, 41):  # every length mod 4, in key and subject both
        for _ in range(25):
            key = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 12)))
            subject = "".join(rng.choice(alphabet) for _ in range(length))
            pairs.append((key, subject))
    pairs += [("flag", str(u)) for u in users(500)]
    rows = conn.execute(
        "select feature_flag_bucket(k, s) from unnest(%s::text[], %s::text[]) with ordinality t(k, s, i) order by i",
        ([k for k, _ in pairs], [s for _, s in pairs]),
    ).fetchall()
    expected = [mmh3.hash(f"{k}:{s}".encode(), 0, signed=False) % 100 + 1 for k, s in pairs]
    assert [r[0] for r in rows] == expected
    assert {r[0] for r in rows} == set(range(1, 101))


@pytest.mark.parametrize(("args", "message"), [("null, 'x'", "p_flag_key"), ("'x', null", "p_subject")])
def test_bucket_refuses_null(conn: psycopg.Connection[Any], args: str, message: str) -> None:
    with raises_sqlstate("22004", message):
        conn.execute(f"select feature_flag_bucket({args})")


# ---- rollout ----------------------------------------------------------------------------


def test_zero_percent_enables_nobody_hundred_everybody_fifty_about_half(conn: psycopg.Connection[Any]) -> None:
    ids = users(10_000)
    for key, pct in (("zero", 0), ("hundred", 100), ("half", 50)):
        upsert(conn, key, enabled=True, rollout_strategy="percentage", rollout_percentage=pct)
    assert enabled_count(conn, "zero", ids) == 0
    assert enabled_count(conn, "hundred", ids) == 10_000
    half = enabled_count(conn, "half", ids)
    assert 4800 <= half <= 5200, half


def test_a_user_enabled_at_20_percent_stays_enabled_at_50(conn: psycopg.Connection[Any]) -> None:
    ids = users(10_000, seed=2)
    upsert(conn, "grow", enabled=True, rollout_strategy="percentage", rollout_percentage=20)
    at20 = enabled_set(conn, "grow", ids)
    assert 1800 <= len(at20) <= 2200
    upsert(conn, "grow", rollout_percentage=50)
    at50 = enabled_set(conn, "grow", ids)
    assert 4800 <= len(at50) <= 5200
    assert at20 <= at50, f"{len(at20 - at50)} users lost the feature going from 20% to 50%"
    # and exactly those whose bucket is <= the percentage
    assert at50 == {u for u in ids if flags.bucket("grow", str(u)) <= 50}


def test_percentage_without_a_user_is_off_even_at_100(conn: psycopg.Connection[Any]) -> None:
    # Unleash: a rollout sticky on the user id is off for a call without one, also at 100%
    upsert(conn, "p99", enabled=True, rollout_strategy="percentage", rollout_percentage=99)
    upsert(conn, "p100", enabled=True, rollout_strategy="percentage", rollout_percentage=100)
    assert not is_on(conn, "p99")
    assert not is_on(conn, "p100")
    assert is_on(conn, "p100", uuid.uuid4())


def test_all_none_disabled_and_unknown(conn: psycopg.Connection[Any]) -> None:
    u = uuid.uuid4()
    upsert(conn, "on-for-all", enabled=True, rollout_strategy="all")
    upsert(conn, "on-for-none", enabled=True, rollout_strategy="none")
    upsert(conn, "switched-off", enabled=False, rollout_strategy="all")
    assert is_on(conn, "on-for-all", u) and is_on(conn, "on-for-all")
    assert not is_on(conn, "on-for-none", u)
    assert not is_on(conn, "switched-off", u)
    assert not is_on(conn, "never-created", u)
    assert not is_on(conn, "", u)
    assert not is_on(conn, "not a valid key!", u)


def test_user_list_enables_exactly_the_listed_users(conn: psycopg.Connection[Any]) -> None:
    listed, other = uuid.uuid4(), uuid.uuid4()
    upsert(conn, "beta-testers", enabled=True, rollout_strategy="user_list", target_users=[listed])
    assert is_on(conn, "beta-testers", listed)
    assert not is_on(conn, "beta-testers", other)
    assert not is_on(conn, "beta-testers", None)


def test_condition_strategy_evaluates_the_context(conn: psycopg.Connection[Any]) -> None:
    rules = [
        {"attribute": "country", "operator": "in", "values": ["RW", "UG"]},
        {"attribute": "app_version", "operator": "semver_gte", "value": "2.1.0"},
        {"attribute": "phone", "operator": "starts_with", "values": ["+25078", "+25079"]},
    ]
    upsert(conn, "momo-v2", enabled=True, rollout_strategy="condition", conditions=rules)
    good = {"country": "RW", "app_version": "2.10.0", "phone": "+250788123456"}
    assert is_on(conn, "momo-v2", None, "production", good)
    assert not is_on(conn, "momo-v2", None, "production", {**good, "country": "KE"})
    assert not is_on(conn, "momo-v2", None, "production", {**good, "app_version": "2.1.0-rc.1"})
    assert not is_on(conn, "momo-v2", None, "production", {**good, "phone": "+250722000111"})
    assert not is_on(conn, "momo-v2", None, "production", {"country": "RW"})
    assert not is_on(conn, "momo-v2")


def test_conditions_see_the_built_in_user_and_environment_not_forged_ones(conn: psycopg.Connection[Any]) -> None:
    u = uuid.uuid4()
    upsert(
        conn,
        "me-in-staging",
        environment="all",
        enabled=True,
        rollout_strategy="condition",
        conditions=[
            {"attribute": "user_id", "operator": "in", "values": [str(u)]},
            {"attribute": "environment", "operator": "in", "values": ["staging"]},
        ],
    )
    assert is_on(conn, "me-in-staging", u, "staging")
    assert not is_on(conn, "me-in-staging", u, "production")
    # environment is Unleash's context field: the environment asked for unless the context
    # names one (p_environment is the caller's choice anyway)
    assert is_on(conn, "me-in-staging", u, "production", {"environment": "staging"})
    # the legacy attribute user_id is the userId: a context key user_id is just a property
    assert not is_on(conn, "me-in-staging", None, "staging", {"user_id": str(u)})


def test_unknown_operators_and_malformed_rules_are_false_never_errors(conn: psycopg.Connection[Any]) -> None:
    # written directly by the owner: upsert_feature_flag would refuse the malformed ones
    cases = {
        "unknown-op": [{"attribute": "a", "operator": "regex", "values": [".*"]}],
        "unknown-op-negated": [{"attribute": "a", "operator": "regex", "values": [".*"], "negate": True}],
        "values-not-array": [{"attribute": "a", "operator": "in", "values": "x", "negate": True}],
        "not-an-object": ["a in x"],
        "no-attribute": [{"operator": "in", "values": ["x"]}],
        "bad-number": [{"attribute": "a", "operator": "num_gt", "value": "many"}],
        "bad-semver": [{"attribute": "a", "operator": "semver_gt", "value": "v2"}],
        "empty": [],
    }
    for key, rules in cases.items():
        conn.execute(
            "insert into feature_flags (key, name, enabled, rollout_strategy, conditions)"
            " values (%s, %s, true, 'condition', %s::jsonb)",
            (key, key, json.dumps(rules)),
        )
    for key in cases:
        assert not is_on(conn, key, uuid.uuid4(), "production", {"a": "x"}), key
    # the control: a well-formed rule on the same context does match
    conn.execute("""insert into feature_flags (key, name, enabled, rollout_strategy, conditions)
                    values ('control', 'control', true, 'condition',
                            '[{"attribute": "a", "operator": "in", "values": ["x"]}]')""")
    assert is_on(conn, "control", None, "production", {"a": "x"})


def test_environment_rows_and_the_all_fallback(conn: psycopg.Connection[Any]) -> None:
    u = uuid.uuid4()
    upsert(conn, "everywhere", environment="all", enabled=True, rollout_strategy="all")
    upsert(conn, "everywhere", environment="production", enabled=True, rollout_strategy="none")
    upsert(conn, "staging-only", environment="staging", enabled=True, rollout_strategy="all")
    assert is_on(conn, "everywhere", u, "development")
    assert is_on(conn, "everywhere", u, "staging")
    assert not is_on(conn, "everywhere", u, "production"), "the production row overrides 'all'"
    assert is_on(conn, "staging-only", u, "staging")
    assert not is_on(conn, "staging-only", u, "production")
    assert not is_on(conn, "staging-only", u, "development")


# ---- bad input ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "state", "message"),
    [
        ("null", "22004", "p_flag_key must not be null"),
        ("'f', null, 'prod'", "22023", "p_environment: unknown environment prod"),
        ("'f', null, 'all'", "22023", "p_environment: unknown environment all"),
        ("'f', null, null", "22023", "p_environment"),
        ("'f', null, 'production', '[1]'", "22023", "p_context must be a JSON object"),
        (
            "'f', null, 'production', jsonb_build_object('x', repeat('y', 9000))",
            "22023",
            "p_context must be at most 8 KiB",
        ),
        ("'f', 'not-a-uuid'", "22P02", "uuid"),
    ],
)
def test_is_feature_enabled_refuses_bad_input(
    conn: psycopg.Connection[Any], args: str, state: str, message: str
) -> None:
    upsert(conn, "f", enabled=True, rollout_strategy="all")
    with raises_sqlstate(state, message), db.as_service(conn):
        conn.execute(f"select is_feature_enabled({args})")


@pytest.mark.parametrize(
    ("kwargs", "state", "message"),
    [
        ({"key": ""}, "22004", "p_key must not be empty"),
        ({"key": "has space"}, "22023", "p_key must be"),
        ({"key": "a|b"}, "22023", "p_key must be"),
        ({"key": "(other)"}, "22023", "p_key must be"),
        ({"key": "x" * 101}, "22023", "p_key must be"),
        ({"environment": "prod"}, "22023", "p_environment: unknown environment prod"),
        ({"rollout_strategy": "gradual"}, "22023", "p_rollout_strategy: unknown strategy gradual"),
        ({"rollout_percentage": 101}, "22003", "p_rollout_percentage must be between 0 and 100"),
        ({"rollout_percentage": -1}, "22003", "p_rollout_percentage"),
        ({"conditions": [{"attribute": "a"}]}, "22023", "p_conditions must be a JSON array of rules"),
        ({"conditions": ["a in b"]}, "22023", "p_conditions"),
        ({"name": ""}, "22023", "p_name must be 1-200 characters"),
        ({"description": "d" * 2001}, "22023", "p_description"),
    ],
)
def test_upsert_feature_flag_refuses_bad_input_and_writes_nothing(
    conn: psycopg.Connection[Any], kwargs: dict[str, Any], state: str, message: str
) -> None:
    args = {"key": "ok-key", **kwargs}
    with raises_sqlstate(state, message):
        upsert(conn, **args)
    assert count(conn, "feature_flags") == 0


def test_upsert_refuses_a_null_in_target_users(conn: psycopg.Connection[Any]) -> None:
    with raises_sqlstate("22023", "p_target_users"), db.as_service(conn):
        conn.execute("select upsert_feature_flag(p_key => 'k', p_target_users => array[null]::uuid[])")
    assert count(conn, "feature_flags") == 0


def test_upsert_creates_then_changes_only_the_given_fields(conn: psycopg.Connection[Any]) -> None:
    u = uuid.uuid4()
    fid = upsert(
        conn,
        "rides-surge",
        enabled=True,
        rollout_strategy="user_list",
        target_users=[u],
        name="Surge pricing",
        description="dynamic fares",
    )
    again = upsert(conn, "rides-surge", rollout_percentage=30)
    assert again == fid
    row = conn.execute(
        "select name, description, enabled, rollout_strategy, rollout_percentage, target_users, version"
        " from feature_flags where id = %s",
        (fid,),
    ).fetchone()
    assert row == ("Surge pricing", "dynamic fares", True, "user_list", 30, [u], 2)
    created = conn.execute(
        "select name, environment, enabled, rollout_strategy from feature_flags where id = %s", (upsert(conn, "bare"),)
    ).fetchone()
    assert created == ("bare", "production", False, "none")


def test_changes_bump_version_notify_listeners_and_are_audited(conn: psycopg.Connection[Any], connect: Connect) -> None:
    listener = connect()
    listener.execute("listen platformdb_feature_flags")
    fid = upsert(conn, "audited", enabled=False, rollout_strategy="all")
    upsert(conn, "audited", enabled=True)
    upsert(conn, "audited", enabled=True)  # no real change: no new version
    with db.as_service(conn):
        conn.execute("update feature_flags set key = 'renamed' where id = %s", (fid,))
        conn.execute("delete from feature_flags where id = %s", (fid,))
    got = [json.loads(n.payload) for n in listener.notifies(timeout=2, stop_after=6)]
    assert [(g["op"], g["key"], g["version"]) for g in got] == [
        ("insert", "audited", 1),
        ("update", "audited", 2),
        ("update", "audited", 2),
        ("update", "renamed", 3),
        ("delete", "audited", 2),
        ("delete", "renamed", 3),
    ]
    audit = conn.execute(
        "select action, old_data ->> 'enabled', new_data ->> 'enabled' from system_audit_logs"
        " where resource_type = 'public.feature_flags' and resource_id = %s order by created_at, action",
        (str(fid),),
    ).fetchall()
    assert ("update", "false", "true") in audit
    assert [a[0] for a in audit].count("delete") == 1 and [a[0] for a in audit].count("insert") == 1


# ---- counting without a write per call ------------------------------------------------


def test_evaluations_are_not_written_per_call_but_in_batches(conn: psycopg.Connection[Any]) -> None:
    upsert(conn, "batched", enabled=True, rollout_strategy="percentage", rollout_percentage=50)
    ids = users(999, seed=9)
    enabled_count(conn, "batched", ids)
    assert count(conn, "feature_flag_evaluations") == 0, "999 evaluations wrote rows"
    pending = json.loads(conn.execute("select current_setting('platformdb.flag_evaluations')").fetchone()[0])
    assert pending["#n"] == 999
    assert is_on(conn, "batched", uuid.uuid4()) in (True, False)  # the 1000th flushes
    ev = evaluations(conn)
    assert sum(ev.values()) == 1000
    assert set(ev) <= {("batched", "production", "match", "sql"), ("batched", "production", "no_match", "sql")}
    assert conn.execute("select current_setting('platformdb.flag_evaluations')").fetchone() == ("",)


def test_explicit_flush_and_the_overview(conn: psycopg.Connection[Any]) -> None:
    upsert(conn, "shown", environment="all", enabled=True, rollout_strategy="all")
    upsert(conn, "shown", environment="staging", enabled=False)
    for _ in range(3):
        is_on(conn, "shown", uuid.uuid4(), "production")
    is_on(conn, "shown", uuid.uuid4(), "staging")
    for _ in range(2):
        is_on(conn, "ghost-flag", uuid.uuid4())
    upsert(conn, "prod-only", enabled=True, rollout_strategy="all")
    is_on(conn, "prod-only", uuid.uuid4(), "development")
    with db.as_service(conn):
        assert flags.flush_evaluations(conn) == 4
        rows = {(r["key"], r["environment"]): r for r in flags.overview(conn)}
    assert evaluations(conn) == {
        ("shown", "production", "match", "sql"): 3,
        ("shown", "staging", "disabled", "sql"): 1,
        ("ghost-flag", "production", "unknown", "sql"): 2,
        ("prod-only", "development", "unknown", "sql"): 1,
    }
    assert rows[("shown", "all")]["evaluations_24h"] == 3
    assert rows[("shown", "all")]["enabled_ratio_24h"] == 1
    assert rows[("shown", "staging")]["evaluations_24h"] == 1
    assert rows[("shown", "staging")]["enabled_24h"] == 0
    assert rows[("ghost-flag", "production")]["known"] is False
    assert rows[("ghost-flag", "production")]["evaluations_24h"] == 2
    assert rows[("prod-only", "development")]["known"] is False, "no flag applies in development"
    assert rows[("prod-only", "production")]["evaluations_24h"] == 0


def test_counts_follow_the_transaction(conn: psycopg.Connection[Any]) -> None:
    upsert(conn, "tx", enabled=True, rollout_strategy="all")
    with pytest.raises(RuntimeError), conn.transaction():
        for _ in range(5):
            conn.execute("select is_feature_enabled('tx')")
        raise RuntimeError("roll back")
    with conn.transaction():
        for _ in range(2):
            conn.execute("select is_feature_enabled('tx')")
    conn.execute("select flush_feature_flag_evaluations()")
    assert evaluations(conn) == {("tx", "production", "match", "sql"): 2}


def test_a_read_only_transaction_counts_but_never_writes(conn: psycopg.Connection[Any]) -> None:
    upsert(conn, "ro", enabled=True, rollout_strategy="all")
    with conn.transaction():
        conn.execute("set transaction read only")
        conn.execute("select count(*) filter (where is_feature_enabled('ro')) from generate_series(1, 2500)")
    assert count(conn, "feature_flag_evaluations") == 0
    conn.execute("select is_feature_enabled('ro')")  # read-write again: past 1000, it flushes
    assert evaluations(conn) == {("ro", "production", "match", "sql"): 2501}


def test_a_busy_counts_lock_never_makes_an_evaluation_wait(conn: psycopg.Connection[Any], connect: Connect) -> None:
    upsert(conn, "busy", enabled=True, rollout_strategy="all")
    holder = connect(autocommit=False)
    holder.execute("select feature_flag_store_counts('{}', 'sql', true)")  # holds the lock
    conn.execute("set lock_timeout = '200ms'")  # a wait would fail and lose the counts
    conn.execute("select count(*) filter (where is_feature_enabled('busy')) from generate_series(1, 1500)")
    assert count(conn, "feature_flag_evaluations") == 0
    pending = json.loads(conn.execute("select current_setting('platformdb.flag_evaluations')").fetchone()[0])
    assert pending["#n"] == 1500, "the counts are kept for a later flush"
    holder.rollback()
    conn.execute("select flush_feature_flag_evaluations()")
    assert evaluations(conn) == {("busy", "production", "match", "sql"): 1500}


def test_invented_keys_cannot_grow_the_counts_without_bound(conn: psycopg.Connection[Any]) -> None:
    with conn.transaction():
        conn.execute("select is_feature_enabled('no such key')")
        conn.execute("select count(*) from generate_series(1, 300) i where is_feature_enabled('k' || i)")
        state = json.loads(conn.execute("select current_setting('platformdb.flag_evaluations')").fetchone()[0])
        assert len(state) - 2 <= 257  # without "#n" and "#t"
        conn.execute("select flush_feature_flag_evaluations()")
    ev = evaluations(conn)
    assert ev[("(invalid)", "production", "unknown", "sql")] == 1
    assert ev[("(other)", "production", "unknown", "sql")] == 300 - 255
    assert sum(ev.values()) == 301 and len(ev) == 257


@pytest.mark.parametrize(
    "payload",
    [
        "{}",
        '[{"flag_key": "a", "environment": "prod", "reason": "match", "count": 1}]',
        '[{"flag_key": "a", "environment": "production", "reason": "maybe", "count": 1}]',
        '[{"flag_key": "a", "environment": "production", "reason": "match", "count": 0}]',
        '[{"flag_key": "a", "environment": "production", "reason": "match", "count": 1.5}]',
        '[{"flag_key": "a b", "environment": "production", "reason": "match", "count": 1}]',
        '[{"flag_key": "a", "environment": "production", "reason": "match", "count": 1}, 7]',
    ],
)
def test_record_feature_flag_evaluations_refuses_bad_entries(conn: psycopg.Connection[Any], payload: str) -> None:
    with raises_sqlstate("22023", "p_counts"), db.as_service(conn):
        conn.execute("select record_feature_flag_evaluations(%s::jsonb)", (payload,))
    assert count(conn, "feature_flag_evaluations") == 0


def test_purge_deletes_old_buckets_only(conn: psycopg.Connection[Any]) -> None:
    conn.execute("""insert into feature_flag_evaluations
                        (flag_key, environment, reason, source, bucket_start, evaluations)
                    values ('old', 'production', 'match', 'sql', date_trunc('hour', now()) - interval '100 days', 5),
                           ('new', 'production', 'match', 'sql', date_trunc('hour', now()), 5)""")
    with raises_sqlstate("22023", "p_older_than"), db.as_service(conn):
        conn.execute("select purge_feature_flag_evaluations(interval '1 minute')")
    assert count(conn, "feature_flag_evaluations") == 2
    with db.as_service(conn):
        assert conn.execute("select purge_feature_flag_evaluations()").fetchone() == (1,)
    assert [k[0] for k in evaluations(conn)] == ["new"]


# ---- security -------------------------------------------------------------------------


def test_a_signed_in_user_evaluates_for_themself_only(
    conn: psycopg.Connection[Any], user_a: uuid.UUID, user_b: uuid.UUID
) -> None:
    upsert(conn, "vip", enabled=True, rollout_strategy="user_list", target_users=[user_b])
    with db.as_user(conn, user_a):
        assert conn.execute("select is_feature_enabled('vip')").fetchone() == (False,)
        assert conn.execute("select is_feature_enabled('vip', %s)", (user_a,)).fetchone() == (False,)
    with db.as_user(conn, user_b):
        assert conn.execute("select is_feature_enabled('vip')").fetchone() == (True,)
    with raises_sqlstate("42501", "p_user_id must be the signed-in user"), db.as_user(conn, user_a):
        conn.execute("select is_feature_enabled('vip', %s)", (user_b,))


def test_secret_flags_are_invisible_and_off_for_users(conn: psycopg.Connection[Any], user_a: uuid.UUID) -> None:
    upsert(conn, "internal-kill-switch", enabled=True, rollout_strategy="all", secret=True)
    upsert(conn, "public-feature", enabled=True, rollout_strategy="all")
    with db.as_user(conn, user_a):
        assert conn.execute("select is_feature_enabled('internal-kill-switch')").fetchone() == (False,)
        assert conn.execute("select is_feature_enabled('public-feature')").fetchone() == (True,)
        assert conn.execute("select key from feature_flags order by key").fetchall() == [("public-feature",)]
    assert is_on(conn, "internal-kill-switch"), "the service sees it on"
    conn.execute("select flush_feature_flag_evaluations()")
    assert ("internal-kill-switch", "production", "hidden", "sql") in evaluations(conn)


def test_users_read_flag_state_but_never_targeting(conn: psycopg.Connection[Any], user_a: uuid.UUID) -> None:
    upsert(
        conn,
        "readable",
        enabled=True,
        rollout_strategy="user_list",
        target_users=[user_a],
        conditions=[{"attribute": "a", "operator": "in", "values": ["b"]}],
    )
    with db.as_user(conn, user_a):
        row = conn.execute("select key, enabled, rollout_strategy, rollout_percentage from feature_flags").fetchone()
        assert row == ("readable", True, "user_list", 0)
    for column in ("target_users", "conditions", "secret", "*"):
        with raises_sqlstate("42501", "permission denied"), db.as_user(conn, user_a):
            conn.execute(f"select {column} from feature_flags")


def test_anon_can_neither_evaluate_nor_read(conn: psycopg.Connection[Any]) -> None:
    upsert(conn, "anon-test", enabled=True, rollout_strategy="all")
    for sql in (
        "select is_feature_enabled('anon-test')",
        "select key from feature_flags",
        "select feature_flag_bucket('a', 'b')",
    ):
        with raises_sqlstate("42501", "permission denied"), db.as_anon(conn):
            conn.execute(sql)


@pytest.mark.parametrize(
    "sql",
    [
        "select upsert_feature_flag(p_key => 'mine', p_enabled => true, p_rollout_strategy => 'all')",
        "select * from evaluate_feature_flag('x')",
        "select flush_feature_flag_evaluations()",
        """select record_feature_flag_evaluations('[{"flag_key": "x", "environment": "production",
           "reason": "match", "count": 1000000}]')""",
        "select purge_feature_flag_evaluations()",
        "select feature_flag_store_counts('{\"x|production|match\": 5}', 'sql', true)",
        "select * from feature_flag_overview",
        "select * from feature_flag_evaluations",
        "update feature_flags set enabled = true",
        "insert into feature_flags (key, name) values ('mine', 'mine')",
    ],
)
def test_users_cannot_manage_flags_or_touch_the_counts(
    conn: psycopg.Connection[Any], user_a: uuid.UUID, sql: str
) -> None:
    upsert(conn, "x", enabled=False, rollout_strategy="all")
    with raises_sqlstate("42501", "permission denied"), db.as_user(conn, user_a):
        conn.execute(sql)
    assert conn.execute("select count(*), bool_or(enabled) from feature_flags").fetchone() == (1, False)
    assert count(conn, "feature_flag_evaluations") == 0


def test_definer_functions_are_pinned(conn: psycopg.Connection[Any]) -> None:
    rows = conn.execute(
        """select p.proname, p.proconfig from pg_proc p
            where p.pronamespace = 'public'::regnamespace and p.prosecdef
              and p.proname in ('is_feature_enabled', 'flush_feature_flag_evaluations',
                                'record_feature_flag_evaluations', 'purge_feature_flag_evaluations')"""
    ).fetchall()
    assert len(rows) == 4
    assert all(r[1] == ['search_path=""'] for r in rows), rows


# ---- the SDK client: parity with SQL ---------------------------------------------------

POOL_USERS = [str(u) for u in users(6, seed=77)]
KEYS = ["a", "b.c", "K~1"]
ATTRS = ["country", "app_version", "age", "beta", "user_id", "environment", "é"]
TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=6)
VALUE_POOL = [
    "RW",
    "UG",
    "R",
    "",
    "+250788123456",
    "+25078",
    "456",
    "true",
    "false",
    "2.10.0",
    "2.1.0-rc.1",
    "2.1.0",
    "1.0.0-alpha.1",
    "1.0.0-alpha.beta",
    "1.0.0+build",
    "v2",
    "10",
    "-3.50",
    "007",
    "1e3",
    "30",
    "production",
    "staging",
    "development",
    "é",
    *POOL_USERS[:2],
]
SCALARS = st.one_of(
    st.sampled_from(VALUE_POOL),
    st.sampled_from(VALUE_POOL),
    TEXT,
    st.integers(-40, 40),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.none(),
)
OPS = sorted(flags.OPERATORS) + ["regex", "IN", ""]
NEGATE = st.sampled_from([None, None, None, True, False, "true", 1])


@st.composite
def rules(draw: st.DrawFn) -> Any:
    """Mostly well-formed rules over a small shared pool of attributes and values (so that
    matches happen), some malformed ones."""
    if draw(st.integers(0, 25)) == 0:
        return draw(st.one_of(st.none(), TEXT, st.integers(), st.just({"operator": "in", "values": []})))
    op = draw(st.sampled_from(OPS))
    rule: dict[str, Any] = {
        "attribute": draw(st.sampled_from(ATTRS)) if draw(st.integers(0, 25)) else draw(st.integers()),
        "operator": op,
    }
    if op in flags.STRING_OPS or draw(st.integers(0, 6)) == 0:
        rule["values"] = draw(st.lists(SCALARS, max_size=4)) if draw(st.integers(0, 10)) else draw(SCALARS)
    if op not in flags.STRING_OPS or draw(st.integers(0, 6)) == 0:
        rule["value"] = draw(SCALARS)
    negate = draw(NEGATE)
    if negate is not None:
        rule["negate"] = negate
    return rule


@st.composite
def contexts(draw: st.DrawFn) -> dict[str, Any]:
    """Most attributes present (so that rules see values), each from the shared pool."""
    return {a: draw(SCALARS) for a in ATTRS if draw(st.integers(0, 3))}


CONTEXTS = contexts()


@st.composite
def flag_rows(draw: st.DrawFn) -> dict[tuple[str, str], dict[str, Any]]:
    keys = draw(
        st.lists(
            st.tuples(st.sampled_from(KEYS), st.sampled_from(flags.FLAG_ENVIRONMENTS)),
            min_size=1,
            max_size=6,
            unique=True,
        )
    )
    out = {}
    for key, env in keys:
        out[(key, env)] = {
            "enabled": draw(st.integers(0, 5)) > 0,
            "strategy": draw(st.sampled_from([*flags.STRATEGIES, "condition", "condition", "percentage"])),
            "percentage": draw(st.one_of(st.integers(0, 100), st.sampled_from([0, 1, 99, 100]))),
            "target_users": draw(st.lists(st.sampled_from(POOL_USERS), unique=True, max_size=4)),
            "conditions": draw(st.lists(rules(), max_size=3)),
        }
    return out


QUERIES = st.lists(
    st.tuples(
        st.sampled_from([*KEYS, *KEYS, "missing", "bad key"]),
        st.one_of(st.none(), st.sampled_from(POOL_USERS), st.uuids().map(str)),
        st.sampled_from(flags.ENVIRONMENTS),
        CONTEXTS,
    ),
    min_size=10,
    max_size=30,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cases=st.lists(st.tuples(rules(), CONTEXTS), min_size=20, max_size=60))
def test_the_rule_language_agrees_with_sql_rule_by_rule(
    conn: psycopg.Connection[Any], cases: list[tuple[Any, dict[str, Any]]]
) -> None:
    rows = conn.execute(
        "select feature_flag_rule_matches(r, c) from unnest(%s::jsonb[], %s::jsonb[])"
        " with ordinality t(r, c, i) order by i",
        ([json.dumps(r) for r, _ in cases], [json.dumps(c) for _, c in cases]),
    ).fetchall()
    assert [flags.rule_matches(json.loads(json.dumps(r), parse_float=Decimal), c) for r, c in cases] == [
        r[0] for r in rows
    ]


@pytest.mark.parametrize(("rule", "expected"), RULE_CASES)
def test_the_rule_language_in_sql(conn: psycopg.Connection[Any], rule: object, expected: bool) -> None:
    row = conn.execute(
        "select feature_flag_rule_matches(%s::jsonb, %s::jsonb)", (json.dumps(rule), json.dumps(RULE_CTX))
    ).fetchone()
    assert row == (expected,)


SEMVERISH = st.one_of(
    st.sampled_from(VALUE_POOL),
    st.from_regex(
        r"(0|[1-9][0-9]{0,2}|01)\.(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})"
        r"(-[0-9A-Za-z.-]{1,12})?(\+[0-9A-Za-z.-]{1,6})?",
        fullmatch=True,
    ),
    TEXT,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pairs=st.lists(st.tuples(SEMVERISH, SEMVERISH), min_size=20, max_size=80))
def test_semver_precedence_agrees_with_sql(conn: psycopg.Connection[Any], pairs: list[tuple[str, str]]) -> None:
    rows = conn.execute(
        "select feature_flag_semver_cmp(a, b) from unnest(%s::text[], %s::text[])"
        " with ordinality t(a, b, i) order by i",
        ([a for a, _ in pairs], [b for _, b in pairs]),
    ).fetchall()
    assert [flags.semver_cmp(a, b) for a, b in pairs] == [r[0] for r in rows]


def _load(conn: psycopg.Connection[Any], rows: dict[tuple[str, str], dict[str, Any]]) -> None:
    conn.execute("delete from feature_flags")
    for (key, env), f in rows.items():
        conn.execute(
            "insert into feature_flags (key, environment, name, enabled, rollout_strategy,"
            " rollout_percentage, target_users, conditions) values (%s, %s, %s, %s, %s, %s, %s::uuid[], %s::jsonb)",
            (
                key,
                env,
                key,
                f["enabled"],
                f["strategy"],
                f["percentage"],
                f["target_users"],
                json.dumps(f["conditions"]),
            ),
        )


def _sql_answers(
    conn: psycopg.Connection[Any], queries: list[tuple[str, str | None, str, dict[str, Any]]]
) -> list[tuple[bool, bool, str]]:
    with db.as_service(conn):
        rows = conn.execute(
            """select public.is_feature_enabled(k, u, e, c), (public.evaluate_feature_flag(k, u, e, c)).*
                 from unnest(%s::text[], %s::uuid[], %s::text[], %s::jsonb[]) with ordinality t(k, u, e, c, i)
                order by i""",
            (
                [q[0] for q in queries],
                [q[1] for q in queries],
                [q[2] for q in queries],
                [json.dumps(q[3]) for q in queries],
            ),
        ).fetchall()
    return [(r[0], r[1], r[2]) for r in rows]


def _local_answers(
    client: flags.FlagClient, queries: list[tuple[str, str | None, str, dict[str, Any]]]
) -> list[tuple[bool, bool, str]]:
    out = []
    for key, user, env, ctx in queries:
        ev = client.evaluate(key, user, env, ctx)
        out.append((client.is_enabled(key, user, env, ctx), ev.enabled, ev.reason))
    return out


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(rows=flag_rows(), queries=QUERIES)
def test_local_evaluation_agrees_with_sql_on_random_flags_users_and_contexts(
    conn: psycopg.Connection[Any],
    db_url: str,
    rows: dict[tuple[str, str], dict[str, Any]],
    queries: list[tuple[str, str | None, str, dict[str, Any]]],
) -> None:
    _load(conn, rows)
    client = flags.FlagClient(db_url, record=False)
    client.refresh()
    assert _local_answers(client, queries) == _sql_answers(conn, queries)


def test_local_evaluation_agrees_with_sql_on_5000_random_cases(conn: psycopg.Connection[Any], db_url: str) -> None:
    rng = random.Random(2026)
    pool = [str(u) for u in users(300, seed=5)]
    rows = [
        ("p-7", "all", True, "percentage", 7, [], []),
        ("p-50", "production", True, "percentage", 50, [], []),
        ("p-50", "staging", True, "percentage", 93, [], []),
        ("users", "all", True, "user_list", 0, pool[:100], []),
        (
            "cond",
            "all",
            True,
            "condition",
            0,
            [],
            [
                {"attribute": "country", "operator": "in", "values": ["RW"]},
                {"attribute": "app_version", "operator": "semver_gte", "value": "2.1.0"},
                {"attribute": "age", "operator": "num_lt", "value": 30.5, "negate": True},
            ],
        ),
        (
            "built-ins",
            "all",
            True,
            "condition",
            0,
            [],
            [
                {"attribute": "environment", "operator": "in", "values": ["staging", "development"]},
                {"attribute": "user_id", "operator": "not_in", "values": pool[:150]},
            ],
        ),
        (
            "edges",
            "all",
            True,
            "condition",
            0,
            [],
            [
                {"attribute": "phone", "operator": "contains", "values": [""]},
                {"attribute": "phone", "operator": "ends_with", "values": ["56", "9"], "negate": "true"},
                {"attribute": "beta", "operator": "num_lt", "value": 1, "negate": True},
            ],
        ),
        ("off", "all", False, "all", 0, [], []),
    ]
    for key, env, on, strategy, pct, targets, conditions in rows:
        conn.execute(
            "insert into feature_flags (key, environment, name, enabled, rollout_strategy,"
            " rollout_percentage, target_users, conditions) values (%s, %s, %s, %s, %s, %s, %s::uuid[], %s::jsonb)",
            (key, env, key, on, strategy, pct, targets, json.dumps(conditions)),
        )
    versions = ["2.1.0", "2.0.9", "2.1.0-rc.1", "10.0.0", "x"]
    keys = sorted({r[0] for r in rows} | {"nope"})
    queries = []
    for _ in range(5000):
        ctx: dict[str, Any] = {
            "country": rng.choice(["RW", "UG"]),
            "app_version": rng.choice(versions),
            "age": rng.choice([18, 30.5, 31, "45", "old"]),
            "phone": rng.choice(["+250788123456", "+250788123459", "", 7, None]),
            "beta": rng.choice([True, False, 0, 1, "1"]),
        }
        if rng.random() < 0.3:
            ctx["environment"] = rng.choice(flags.ENVIRONMENTS)
        if rng.random() < 0.3:
            ctx["user_id"] = rng.choice(pool)
        queries.append((rng.choice(keys), rng.choice([*pool, None]), rng.choice(flags.ENVIRONMENTS), ctx))
    client = flags.FlagClient(db_url, record=False)
    client.refresh()
    local, sql = _local_answers(client, queries), _sql_answers(conn, queries)
    assert local == sql
    for key in keys:  # every flag gives both answers somewhere (else the case proves little)
        answers = {a[0] for a, q in zip(sql, queries, strict=True) if q[0] == key}
        assert answers == ({False} if key in ("off", "nope") else {True, False}), key


# ---- the SDK client: freshness ----------------------------------------------------------


def _wait(predicate: Callable[[], bool], timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


@pytest.mark.pooled
def test_a_running_client_sees_a_change_through_listen_notify(conn: psycopg.Connection[Any], db_url: str) -> None:
    u = users(1, seed=3)[0]
    upsert(conn, "live", enabled=True, rollout_strategy="none")
    changed: list[list[str]] = []
    with flags.FlagClient(db_url, refresh_interval=3600, on_change=changed.append) as client:
        assert client.ready and not client.is_enabled("live", u)
        upsert(conn, "live", rollout_strategy="all")
        assert _wait(lambda: client.is_enabled("live", u)), "the change never arrived"
        assert ["live"] in changed
        assert client.flag("live").version == 2  # type: ignore[union-attr]
        upsert(conn, "born-later", enabled=True, rollout_strategy="all")
        assert _wait(lambda: client.is_enabled("born-later", u))
        with db.as_service(conn):
            flags.delete_flag(conn, "live")
        assert _wait(lambda: client.flag("live") is None)
        with db.as_service(conn):
            conn.execute("update feature_flags set key = 'moved' where key = 'born-later'")
        assert _wait(lambda: client.flag("born-later") is None and client.flag("moved") is not None)


def test_the_periodic_refresh_catches_a_change_that_sent_no_notification(
    conn: psycopg.Connection[Any], db_url: str
) -> None:
    upsert(conn, "quiet", enabled=False, rollout_strategy="all")
    with flags.FlagClient(db_url, refresh_interval=0.5) as client:
        assert not client.is_enabled("quiet")
        with conn.transaction():
            conn.execute("alter table feature_flags disable trigger feature_flags_notify_change")
            conn.execute("update feature_flags set enabled = true where key = 'quiet'")
            conn.execute("alter table feature_flags enable trigger feature_flags_notify_change")
        assert _wait(lambda: client.is_enabled("quiet")), "the full refresh never ran"


def test_the_client_reconnects_and_catches_up(conn: psycopg.Connection[Any], db_url: str) -> None:
    upsert(conn, "resilient", enabled=False, rollout_strategy="all")
    with flags.FlagClient(db_url, refresh_interval=3600) as client:
        killed = conn.execute(
            "select count(pg_terminate_backend(pid)) from pg_stat_activity"
            " where application_name = %s and datname = current_database()",
            (flags.APP_NAME,),
        ).fetchone()
        assert killed == (1,)
        upsert(conn, "resilient", enabled=True)  # while the client is reconnecting
        assert not client.is_enabled("resilient") or True  # answers from its copy meanwhile
        assert _wait(lambda: client.is_enabled("resilient")), "never caught up after reconnecting"
        assert client.last_error is not None


@pytest.mark.pooled
def test_the_client_reports_its_counts_as_sdk(conn: psycopg.Connection[Any], db_url: str) -> None:
    upsert(conn, "counted", enabled=True, rollout_strategy="percentage", rollout_percentage=50)
    client = flags.FlagClient(db_url)
    client.refresh()
    ids = users(1000, seed=4)
    on = sum(client.is_enabled("counted", u) for u in ids)
    client.is_enabled("missing-flag")
    client.is_enabled("bad key!")
    assert client.flush() == 4
    assert client.pending_counts() == {}
    assert client.flush() == 0, "nothing is reported twice"
    assert evaluations(conn) == {
        ("counted", "production", "match", "sdk"): on,
        ("counted", "production", "no_match", "sdk"): 1000 - on,
        ("missing-flag", "production", "unknown", "sdk"): 1,
        ("(invalid)", "production", "unknown", "sdk"): 1,
    }


@pytest.mark.pooled
def test_concurrent_threads_lose_no_count(conn: psycopg.Connection[Any], db_url: str) -> None:
    upsert(conn, "threads", enabled=True, rollout_strategy="all")
    client = flags.FlagClient(db_url)
    client.refresh()
    barrier = threading.Barrier(4)

    def work() -> None:
        barrier.wait()
        for _ in range(20_000):
            client.is_enabled("threads")

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert client.pending_counts() == {("threads", "production", "match"): 80_000}


def test_the_client_refuses_an_unknown_environment(db_url: str) -> None:
    with pytest.raises(errors.InvalidInput, match="environment"):
        flags.FlagClient(db_url, environment="prod")
    client = flags.FlagClient(db_url)
    client.refresh()
    with pytest.raises(errors.InvalidInput, match="unknown environment"):
        client.is_enabled("x", None, "all")


def test_an_unreachable_database_gives_false_not_an_exception(cluster: Any) -> None:
    client = flags.FlagClient(cluster.url("no_such_database"), record=False)
    client.start(timeout=1)
    try:
        assert not client.ready
        assert client.is_enabled("anything", uuid.uuid4()) is False
    finally:
        client.stop()


# ---- OpenFeature ------------------------------------------------------------------------


@pytest.fixture
def provider(db_url: str) -> Iterator[PlatformDBProvider]:
    p = PlatformDBProvider(database_url=db_url, refresh_interval=3600)
    domain = f"test-{uuid.uuid4()}"
    of_api.set_provider_and_wait(p, domain)
    p.domain = domain  # type: ignore[attr-defined]
    yield p
    p.shutdown()


def test_openfeature_reasons(conn: psycopg.Connection[Any], provider: PlatformDBProvider) -> None:
    listed, other = users(2, seed=8)
    upsert(conn, "static-on", enabled=True, rollout_strategy="all")
    upsert(conn, "static-off", enabled=True, rollout_strategy="none")
    upsert(conn, "split", enabled=True, rollout_strategy="percentage", rollout_percentage=50)
    upsert(conn, "listed", enabled=True, rollout_strategy="user_list", target_users=[listed])
    upsert(
        conn,
        "cond",
        enabled=True,
        rollout_strategy="condition",
        conditions=[{"attribute": "country", "operator": "in", "values": ["RW"]}],
    )
    upsert(conn, "off", enabled=False, rollout_strategy="all")
    provider.client.refresh()
    client = of_api.get_client(provider.domain)  # type: ignore[attr-defined]

    def details(key: str, user: uuid.UUID, **attrs: Any) -> tuple[bool, str | None, str | None]:
        d = client.get_boolean_details(key, True, EvaluationContext(str(user), attrs))
        return d.value, d.reason, d.variant

    assert details("static-on", other) == (True, Reason.STATIC, "on")
    assert details("static-off", other) == (False, Reason.STATIC, "off")
    expected = flags.bucket("split", str(other)) <= 50
    assert details("split", other) == (expected, Reason.SPLIT, "on" if expected else "off")
    assert details("listed", listed) == (True, Reason.TARGETING_MATCH, "on")
    assert details("listed", other) == (False, Reason.DEFAULT, "off")
    assert details("cond", other, country="RW") == (True, Reason.TARGETING_MATCH, "on")
    assert details("cond", other, country="KE") == (False, Reason.DEFAULT, "off")
    assert details("off", other) == (False, Reason.DISABLED, "off")
    d = client.get_boolean_details("split", False, EvaluationContext(str(other)))
    assert d.flag_metadata["bucket"] == flags.bucket("split", str(other))
    assert d.flag_metadata["strategy"] == "percentage"


def test_openfeature_never_raises(conn: psycopg.Connection[Any], provider: PlatformDBProvider) -> None:
    upsert(conn, "exists", enabled=True, rollout_strategy="all")
    provider.client.refresh()
    client = of_api.get_client(provider.domain)  # type: ignore[attr-defined]
    d = client.get_boolean_details("does-not-exist", True)
    assert (d.value, d.reason, d.error_code) == (True, Reason.ERROR, ErrorCode.FLAG_NOT_FOUND)
    # Unleash's userId is any text: a phone number is a user id like another
    d = client.get_boolean_details("exists", False, EvaluationContext("+250788123456"))
    assert (d.value, d.error_code) == (True, None)
    d = client.get_boolean_details("exists", False, EvaluationContext("+250788123456", {"userId": "someone-else"}))
    assert (d.value, d.reason, d.error_code) == (False, Reason.ERROR, ErrorCode.INVALID_CONTEXT)
    # typed values come from variants: a flag without variants answers the default
    s = client.get_string_details("exists", "fallback")
    assert (s.value, s.reason, s.error_code) == ("fallback", Reason.DEFAULT, None)
    assert client.get_integer_value("exists", 7) == 7
    assert client.get_boolean_value("exists", False) is True

    def broken(*_: Any) -> Any:
        raise RuntimeError("boom")

    provider.client.evaluate = broken  # type: ignore[method-assign]
    d = client.get_boolean_details("exists", False)
    assert (d.value, d.reason, d.error_code) == (False, Reason.ERROR, ErrorCode.GENERAL)


def test_openfeature_answers_the_default_until_flags_are_loaded(cluster: Any) -> None:
    p = PlatformDBProvider(database_url=cluster.url("no_such_database"), start_timeout=0.5)
    domain = f"test-{uuid.uuid4()}"
    of_api.set_provider(p, domain)
    try:
        d = of_api.get_client(domain).get_boolean_details("anything", True)
        assert d.value is True and d.reason == Reason.ERROR
        assert d.error_code in (ErrorCode.PROVIDER_NOT_READY, ErrorCode.GENERAL)
    finally:
        p.shutdown()


def test_openfeature_emits_configuration_changed(conn: psycopg.Connection[Any], provider: PlatformDBProvider) -> None:
    seen: list[list[str] | None] = []

    def handler(details: EventDetails) -> None:
        seen.append(details.flags_changed)

    client = of_api.get_client(provider.domain)  # type: ignore[attr-defined]
    client.add_handler(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED, handler)
    upsert(conn, "evented", enabled=True, rollout_strategy="all")
    assert _wait(lambda: ["evented"] in seen), seen
    assert client.get_boolean_value("evented", False) is True


def test_a_client_that_may_not_report_counts_keeps_its_flags_fresh(conn: psycopg.Connection[Any], db_url: str) -> None:
    upsert(conn, "fresh", enabled=False, rollout_strategy="all")
    conn.execute("revoke execute on function record_feature_flag_evaluations(jsonb) from service_role")
    listener = "select pid from pg_stat_activity where application_name = %s and datname = current_database()"
    with flags.FlagClient(db_url, role="service_role", refresh_interval=3600, flush_interval=0.05) as client:
        pid = conn.execute(listener, (flags.APP_NAME,)).fetchall()
        client.is_enabled("fresh")
        assert _wait(lambda: isinstance(client.last_error, errors.PermissionDenied))
        upsert(conn, "fresh", enabled=True)
        assert _wait(lambda: client.is_enabled("fresh")), "the failed report broke the subscription"
        pending = client.pending_counts()  # kept for a later report, not dropped
        assert pending[("fresh", "production", "disabled")] >= 1 and pending[("fresh", "production", "match")] >= 1
        assert not client.stale
        assert conn.execute(listener, (flags.APP_NAME,)).fetchall() == pid, "it reconnected"
