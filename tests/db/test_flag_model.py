"""The Unleash model's writes and access: everything is validated when written (refusals with
their SQLSTATE, nothing half-written), segments, the legacy parameters, and what a signed-in
user may evaluate."""

from __future__ import annotations

import json
import uuid
from typing import Any

import psycopg
import pytest

from platformdb import db
from platformdb.errors import PlatformDBError
from platformdb.sdk import flags

DEFAULT = [{"name": "default"}]


def c(op: str, **kw: Any) -> dict[str, Any]:
    return {"contextName": "x", "operator": op, **kw}


@pytest.mark.parametrize(
    ("strategies", "state", "message"),
    [
        ([{"name": "custom"}], "22023", "unknown strategy custom"),
        ([{"name": "default", "sortOrder": 1}], "22023", "unknown field sortOrder"),
        ([{"name": "flexibleRollout", "parameters": {"rollout": "50", "x": "1"}}], "22023", "unknown parameter x"),
        ([{"name": "flexibleRollout", "parameters": {"rollout": "101"}}], "22003", "rollout must be an integer 0-100"),
        ([{"name": "flexibleRollout", "parameters": {}}], "22023", "needs the parameter rollout"),
        ([{"name": "default", "constraints": [c("NOT_A_VALID_OPERATOR", value="1")]}], "22023", "unknown operator"),
        ([{"name": "default", "constraints": [c("IN", values=["a"], foo=1)]}], "22023", "unknown field foo"),
        ([{"name": "default", "constraints": [c("IN", value="a")]}], "22023", 'takes "values"'),
        ([{"name": "default", "constraints": [c("STR_CONTAINS", values=[])]}], "22023", "needs at least one value"),
        ([{"name": "default", "constraints": [c("NUM_GT", value="ten")]}], "22023", "needs a number"),
        ([{"name": "default", "constraints": [c("DATE_AFTER", value="yesterday")]}], "22023", "RFC 3339"),
        ([{"name": "default", "constraints": [c("SEMVER_GT", value="v1.2.3")]}], "22023", "semantic version"),
        ([{"name": "default", "constraints": [c("REGEX", value="(regex")]}], "22023", "invalid regular expression"),
        ([{"name": "default", "constraints": [c("REGEX", value="^(?=a)b")]}], "22023", "unsupported syntax"),
        ([{"name": "default", "constraints": [c("REGEX", value="^(a)\\1$")]}], "22023", "unsupported syntax"),
        ([{"name": "default", "constraints": [c("IN", values=["a"], inverted="yes")]}], "22023", "must be booleans"),
        ([{"name": "default", "segments": [999]}], "23503", "no segment with id 999"),
        ([{"name": "default", "variants": [{"name": "a", "weight": 0}]}], "22023", "add up to 0"),
        ([{"name": "default", "variants": [{"name": "a", "weight": 1, "overrides": []}]}], "22023", "unknown field"),
    ],
)
def test_unknown_or_invalid_parts_are_refused_when_written(
    conn: psycopg.Connection[Any], strategies: list[Any], state: str, message: str
) -> None:
    with pytest.raises(PlatformDBError) as info:
        flags.upsert_flag(conn, "refused", enabled=True, strategies=strategies)
    assert info.value.sqlstate == state, info.value
    assert message in str(info.value)
    assert conn.execute("select count(*) from feature_flags where key = 'refused'").fetchone() == (0,)


def test_the_table_itself_validates_and_normalizes(conn: psycopg.Connection[Any]) -> None:
    with pytest.raises(psycopg.errors.InvalidParameterValue):
        conn.execute(
            "insert into feature_flags (key, name, strategies) values ('t', 't', %s::jsonb)",
            (json.dumps([{"name": "default", "constraints": [c("LIKE", value="a")]}]),),
        )
    conn.execute(
        "insert into feature_flags (key, name, enabled, strategies) values ('t', 't', true, %s::jsonb)",
        (json.dumps([{"name": "flexibleRollout", "parameters": {"rollout": 40}}]),),
    )
    row = conn.execute("select rollout_strategy, strategies from feature_flags where key = 't'").fetchone()
    assert row is not None
    assert row[0] == "strategies"
    assert row[1] == [
        {
            "name": "flexibleRollout",
            "parameters": {"rollout": "40", "stickiness": "default"},
            "constraints": [],
            "segments": [],
            "variants": [],
        }
    ]


def test_variants_weights_from_weight_types(conn: psycopg.Connection[Any]) -> None:
    flags.upsert_flag(
        conn,
        "w",
        enabled=True,
        strategies=DEFAULT,
        variants=[
            {"name": "fixed", "weight": 100, "weightType": "fix"},
            {"name": "a", "weightType": "variable"},
            {"name": "b", "weightType": "variable", "payload": {"type": "json", "value": '{"x": 1}'}},
        ],
    )
    row = conn.execute("select variants from feature_flags where key = 'w'").fetchone()
    assert row is not None
    assert [(v["name"], v["weight"]) for v in row[0]] == [("fixed", 100), ("a", 450), ("b", 450)]
    with pytest.raises(PlatformDBError) as info:
        flags.upsert_flag(conn, "w", variants=[{"name": "j", "weight": 1, "payload": {"type": "json", "value": "{"}}])
    assert info.value.sqlstate == "22023"


def test_legacy_parameters_and_strategies_are_exclusive(conn: psycopg.Connection[Any]) -> None:
    with pytest.raises(PlatformDBError) as info:
        flags.upsert_flag(conn, "both", rollout_strategy="all", strategies=DEFAULT)
    assert info.value.sqlstate == "22023"
    flags.upsert_flag(conn, "legacy", enabled=True, rollout_strategy="percentage", rollout_percentage=30)
    row = conn.execute("select rollout_strategy, strategies from feature_flags where key = 'legacy'").fetchone()
    assert row is not None and row[0] == "percentage"
    assert row[1][0]["parameters"] == {"rollout": "30", "stickiness": "userId", "groupId": "legacy"}
    # now described by strategies: the legacy columns are cleared
    flags.upsert_flag(conn, "legacy", strategies=DEFAULT)
    row = conn.execute(
        "select rollout_strategy, rollout_percentage, strategies from feature_flags where key = 'legacy'"
    ).fetchone()
    assert row is not None and row[:2] == ("strategies", 0)
    # and back to a legacy rollout
    flags.upsert_flag(conn, "legacy", rollout_strategy="all")
    assert flags.is_feature_enabled(conn, "legacy")


def test_segments_are_shared_and_a_used_one_cannot_be_deleted(conn: psycopg.Connection[Any]) -> None:
    sid = flags.upsert_segment(conn, "rwanda", [{"contextName": "country", "operator": "IN", "values": ["RW"]}])
    flags.upsert_flag(conn, "seg", enabled=True, strategies=[{"name": "default", "segments": [sid]}])
    assert flags.is_feature_enabled(conn, "seg", None, "production", {"country": "RW"})
    assert not flags.is_feature_enabled(conn, "seg", None, "production", {"country": "UG"})
    with pytest.raises(PlatformDBError) as info:
        flags.delete_segment(conn, "rwanda")
    assert info.value.sqlstate == "23503"
    flags.upsert_segment(conn, "rwanda", [{"contextName": "country", "operator": "IN", "values": ["UG"]}])
    assert flags.is_feature_enabled(conn, "seg", None, "production", {"country": "UG"})
    with pytest.raises(PlatformDBError) as info2:
        flags.upsert_segment(conn, "bad", [{"contextName": "c", "operator": "LIKE", "value": "x"}])
    assert info2.value.sqlstate == "22023"
    flags.upsert_flag(conn, "seg", strategies=DEFAULT)
    assert flags.delete_segment(conn, "rwanda")


def test_user_ids_are_any_text_and_hashed_as_given(conn: psycopg.Connection[Any]) -> None:
    flags.upsert_flag(conn, "AB12A", enabled=True, strategies=[{"name": "gradualRolloutUserId",
                      "parameters": {"percentage": "23", "groupId": "AB12A"}}])  # fmt: skip
    # Unleash's vectors: bucket(AB12A, 122) = 23, bucket(AB12A, 155) = 100
    assert flags.is_feature_enabled(conn, "AB12A", "122")
    assert not flags.is_feature_enabled(conn, "AB12A", "155")
    u = uuid.uuid4()
    upper = str(u).upper()
    flags.upsert_flag(conn, "case", enabled=True, strategies=[{"name": "userWithId", "parameters": {"userIds": upper}}])
    assert flags.is_feature_enabled(conn, "case", upper)
    assert not flags.is_feature_enabled(conn, "case", u)  # the uuid's canonical text is lower case
    client = flags.FlagClient(conn.info.dsn, record=False)
    client.refresh()
    assert client.is_enabled("case", upper) and not client.is_enabled("case", u)


def test_a_signed_in_user_gets_variants_for_themself_only(
    connect: Any, conn: psycopg.Connection[Any], user_a: uuid.UUID, user_b: uuid.UUID
) -> None:
    flags.upsert_flag(conn, "v", enabled=True, strategies=DEFAULT, variants=[{"name": "only", "weight": 1}])
    flags.upsert_flag(conn, "secret-v", enabled=True, strategies=DEFAULT, secret=True,
                      variants=[{"name": "only", "weight": 1}])  # fmt: skip
    user = connect()
    with db.as_user(user, user_a):
        assert flags.get_feature_variant(user, "v")["name"] == "only"
        assert flags.get_feature_variant(user, "secret-v") == {
            "name": "disabled",
            "enabled": False,
            "feature_enabled": False,
        }
    with pytest.raises(PlatformDBError) as info, db.as_user(user, user_a):
        flags.get_feature_variant(user, "v", None, "production", {"userId": str(user_b)})
    assert info.value.sqlstate == "42501"
    with pytest.raises(PlatformDBError) as info2, db.as_user(user, user_a):
        flags.is_feature_enabled(user, "v", None, "production", {"userId": str(user_b)})
    assert info2.value.sqlstate == "42501"
    # the strategies are not readable by users
    with pytest.raises(psycopg.errors.InsufficientPrivilege), db.as_user(user, user_a):
        user.execute("select strategies from feature_flags")


def test_the_fast_path_of_is_feature_enabled_answers_as_the_general_one(conn: psycopg.Connection[Any]) -> None:
    """Flags without parents whose strategies are unconstrained default / flexibleRollout /
    userWithId are
    decided by is_feature_enabled itself (20260401250000); evaluate_feature_flag always takes
    the general path (feature_flag_outcome): both must agree."""
    rollouts: list[list[dict[str, Any]]] = [
        [],
        [{"name": "default"}],
        [{"name": "flexibleRollout", "parameters": {"rollout": "37", "stickiness": "default", "groupId": "g"}}],
        [{"name": "flexibleRollout", "parameters": {"rollout": "61"}}],
        [
            {"name": "flexibleRollout", "parameters": {"rollout": "10", "stickiness": "default"}},
            {"name": "flexibleRollout", "parameters": {"rollout": "30", "groupId": "other"}},
        ],
        [{"name": "flexibleRollout", "parameters": {"rollout": "0"}}, {"name": "default"}],
        # general path after a fast one that does not match
        [
            {"name": "flexibleRollout", "parameters": {"rollout": "20"}},
            {"name": "default", "constraints": [{"contextName": "country", "operator": "IN", "values": ["RW"]}]},
        ],
        [{"name": "flexibleRollout", "parameters": {"rollout": "50", "stickiness": "sessionId"}}],
        [{"name": "flexibleRollout", "parameters": {"rollout": "45", "stickiness": "userId"}}],
        [
            {"name": "userWithId", "parameters": {"userIds": "user-3, 4,true ,p5"}},
            {"name": "flexibleRollout", "parameters": {"rollout": "5"}},
        ],
    ]
    for i, strategies in enumerate(rollouts):
        flags.upsert_flag(conn, f"fast-{i}", environment="all", enabled=True, strategies=strategies)
    contexts: list[dict[str, Any]] = []
    for n in range(60):
        contexts += [
            {"userId": f"user-{n}"},
            {"userId": n},
            {"userId": n % 2 == 0, "sessionId": f"s{n}"},
            {"sessionId": f"s-{n}", "country": "RW" if n % 2 else "KE"},
            {"userId": {"x": n}, "sessionId": n * 7},
            {"properties": {"userId": f"p{n}"}, "sessionId": f"q{n}"},
        ]
    checked = 0
    for i in range(len(rollouts)):
        key = f"fast-{i}"
        for ctx in contexts:
            general = flags.evaluate_feature_flag(conn, key, None, "production", ctx).enabled
            assert flags.is_feature_enabled(conn, key, None, "production", ctx) is general, (key, ctx)
            checked += 1
        for n in range(30):
            user = uuid.UUID(int=n * 7919) if n else uuid.UUID("00000000-0000-0000-0000-000000000000")
            general = flags.evaluate_feature_flag(conn, key, user, "production").enabled
            assert flags.is_feature_enabled(conn, key, user, "production") is general, (key, user)
    assert checked == len(rollouts) * len(contexts)


def test_feature_flag_context_is_make_context(conn: psycopg.Connection[Any]) -> None:
    """The SQL context document (feature_flag_context, one pass over the keys since
    20260401250000) and the Python one (flag_model.make_context) are the same."""
    import random

    from platformdb.sdk import flag_model

    rng = random.Random(250000)
    values: list[Any] = [None, "", "RW", 5, -1.5, 1e20, True, False, [1], {"a": 1}, "ümlaut"]
    keys = [*flag_model.FIELDS, "country", "tier", "userId", "properties"]
    contexts: list[Any] = [{}, {"properties": "x"}, {"properties": None}, {"properties": {}}]
    for _ in range(300):
        ctx: dict[str, Any] = {k: rng.choice(values) for k in rng.sample(keys, rng.randint(0, 5))}
        if rng.random() < 0.6:
            ctx["properties"] = {k: rng.choice(values) for k in rng.sample(keys, rng.randint(0, 4))}
        contexts.append(ctx)
    for ctx in contexts:
        for user, env in ((None, "production"), ("u-1", "staging")):
            row = conn.execute(
                "select public.feature_flag_context(%s::jsonb, %s, %s)", (json.dumps(ctx), user, env)
            ).fetchone()
            assert row is not None
            assert row[0] == flag_model.make_context(ctx, user, env), (ctx, user, env)
