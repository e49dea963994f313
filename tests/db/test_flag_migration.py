"""Migration 20260401200000 on a filled database: every legacy flag gets strategies that give
the same answers (the one named difference: a 100% rollout without a user is off, as in
Unleash), the legacy columns stay as they were, and its down gives back the flags and the
answers of before."""

from __future__ import annotations

import json
import random
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest

from platformdb import migrate
from tests.conftest import selected_migrations_dir

VERSION = "20260401200000"
ENVS = ("development", "staging", "production")
ATTRS = ("country", "plan", "app_version", "age", "beta")


@pytest.fixture
def migrations_dir(tmp_path: Path) -> Path:
    (tmp_path / "selected").mkdir()
    return selected_migrations_dir(tmp_path / "selected") or migrate.default_dir()


def _rule(rng: random.Random, users: list[str]) -> dict[str, Any]:
    op = rng.choice(
        [
            "in", "not_in", "starts_with", "ends_with", "contains", "num_eq", "num_gt", "num_gte", "num_lt",
            "num_lte", "semver_eq", "semver_gt", "semver_gte", "semver_lt", "semver_lte", "regex",
        ]
    )  # fmt: skip
    attr = rng.choice([*ATTRS, "user_id", "environment", "missing"])
    rule: dict[str, Any] = {"attribute": attr, "operator": op}
    if op in ("in", "not_in", "starts_with", "ends_with", "contains", "regex"):
        pool = {
            "user_id": users[:5],
            "environment": list(ENVS),
        }.get(attr, ["RW", "UG", "pro", "free", "R", "W", "", True])
        rule["values"] = rng.sample(pool, k=min(len(pool), rng.randint(0, 3)))
    elif op.startswith("num"):
        rule["value"] = rng.choice([18, 30.5, "21", "x", None])
    else:
        rule["value"] = rng.choice(["1.2.3", "2.0.0-rc.1", "v1", 3])
    if rng.random() < 0.3:
        rule["negate"] = rng.choice([True, "true"])
    return rule


def _fill(conn: psycopg.Connection[Any], rng: random.Random, users: list[str]) -> list[str]:
    keys = []
    for i in range(60):
        key = f"legacy-{i}"
        keys.append(key)
        envs = rng.sample(["all", *ENVS], k=rng.randint(1, 2))
        for env in envs:
            strategy = rng.choice(["percentage", "percentage", "user_list", "condition", "condition", "all", "none"])
            conn.execute(
                "insert into feature_flags (key, environment, name, enabled, rollout_strategy, rollout_percentage,"
                " target_users, conditions, secret) values (%s, %s, %s, %s, %s, %s, %s::uuid[], %s::jsonb, %s)",
                (
                    key,
                    env,
                    f"Legacy {i}",
                    rng.random() < 0.85,
                    strategy,
                    rng.choice([0, 1, 7, 50, 93, 99, 100]),
                    rng.sample(users, k=rng.randint(0, 6)),
                    json.dumps([_rule(rng, users) for _ in range(rng.randint(0, 3))]),
                    rng.random() < 0.2,
                ),
            )
    return keys


def _contexts(rng: random.Random, n: int) -> list[dict[str, Any]]:
    out = []
    for _ in range(n):
        ctx: dict[str, Any] = {}
        if rng.random() < 0.7:
            ctx["country"] = rng.choice(["RW", "UG", "KE"])
        if rng.random() < 0.7:
            ctx["plan"] = rng.choice(["pro", "free", "proton"])
        if rng.random() < 0.7:
            ctx["app_version"] = rng.choice(["1.2.3", "2.0.0-rc.1", "2.0.0", "1.10.0", "x"])
        if rng.random() < 0.7:
            ctx["age"] = rng.choice([17, 18, 30.5, 45, "21", "old"])
        if rng.random() < 0.5:
            ctx["beta"] = rng.choice([True, False])
        out.append(ctx)
    return out


def _answers(conn: psycopg.Connection[Any], queries: list[tuple[str, str | None, str, dict[str, Any]]]) -> list[bool]:
    rows = conn.execute(
        "select public.is_feature_enabled(k, u, e, c) from unnest(%s::text[], %s::uuid[], %s::text[], %s::jsonb[])"
        " with ordinality t(k, u, e, c, i) order by i",
        (
            [q[0] for q in queries],
            [q[1] for q in queries],
            [q[2] for q in queries],
            [json.dumps(q[3]) for q in queries],
        ),
    ).fetchall()
    return [bool(r[0]) for r in rows]


LEGACY_COLUMNS = (
    "select key, environment, name, enabled, rollout_strategy, rollout_percentage, target_users, conditions, secret"
    " from feature_flags order by key, environment"
)


def test_legacy_flags_become_strategies_with_the_same_answers_and_come_back_down(
    new_db_url: str, migrations_dir: Path
) -> None:
    migrations = migrate.discover(migrations_dir)
    versions = [m.version for m in migrations]
    assert VERSION in versions
    before_mine = versions[versions.index(VERSION) - 1]
    migrate.up(new_db_url, migrations_dir, to=before_mine)
    rng = random.Random(20260401)
    users = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(40)]
    with psycopg.connect(new_db_url, autocommit=True) as conn:
        keys = _fill(conn, rng, users)
        rows_before = conn.execute(LEGACY_COLUMNS).fetchall()
        strategies = dict(
            ((k, e), (s, p, on))
            for k, e, s, p, on in conn.execute(
                "select key, environment, rollout_strategy, rollout_percentage, enabled from feature_flags"
            ).fetchall()
        )
        queries = [
            (rng.choice([*keys, "no-such-flag"]), rng.choice([*users, None]), rng.choice(ENVS), ctx)
            for ctx in _contexts(rng, 6000)
        ]
        answers_before = _answers(conn, queries)

    migrate.up(new_db_url, migrations_dir, to=VERSION)
    with psycopg.connect(new_db_url, autocommit=True) as conn:
        assert conn.execute(LEGACY_COLUMNS).fetchall() == rows_before
        n_strategies = conn.execute(
            "select count(*) from feature_flags where rollout_strategy <> 'strategies' and strategies <> '[]'"
        ).fetchone()
        assert n_strategies == (len(rows_before),)
        answers_after = _answers(conn, queries)

    def row_for(key: str, env: str) -> tuple[str, int, bool] | None:
        return strategies.get((key, env)) or strategies.get((key, "all"))

    expected = []
    changed = 0
    for q, a in zip(queries, answers_before, strict=True):
        row = row_for(q[0], q[2])
        # the named divergence: a 100% rollout sticky on the user id is off without a user
        if row is not None and row[0] == "percentage" and row[1] == 100 and row[2] and q[1] is None:
            expected.append(False)
            changed += a
        else:
            expected.append(a)
    assert answers_after == expected
    assert changed > 0  # the divergence was exercised
    assert 0.1 < sum(answers_after) / len(answers_after) < 0.9

    rolled = migrate.down(new_db_url, migrations_dir, to=before_mine)
    assert [r.version for r in rolled] == [VERSION]
    with psycopg.connect(new_db_url, autocommit=True) as conn:
        assert conn.execute(LEGACY_COLUMNS).fetchall() == rows_before
        assert _answers(conn, queries) == answers_before
