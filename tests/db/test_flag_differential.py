"""Differential testing against Unleash's reference engine (`yggdrasil-engine`): Hypothesis
generates flags (strategies, constraints of every operator, segments, variants, parents) and
contexts; SQL (`is_feature_enabled`, `get_feature_variant`), the Python FlagClient and the
engine must give the same answers, variants included.

Answers that are random by definition (a random rollout, a variant without a stickiness
value) are kept out: every context carries a userId and a sessionId, and the random strategies
appear only at 0% and 100%. applicationHostname is left out (the engine's Python build has
no host name; the project corpus covers it).
"""

from __future__ import annotations

import json
from typing import Any

import psycopg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from yggdrasil_engine.engine import UnleashEngine

from platformdb.sdk import flag_io, flags

WORDS = ["RW", "UG", "rw", "pro", "Pro", "free", "acme", "ACME", "a", "", "é", "x y"]
NUMBERS = ["0", "1", "-1", "18", "18.5", "30", "1e2", "abc", "+5", ".5"]
VERSIONS = ["1.0.0", "1.2.3", "1.2.3-beta.1", "1.2.3-beta.2", "1.10.0", "2.0.0", "v1.0.0", "1.2", "x"]
TIMES = ["2025-01-01T00:00:00Z", "2026-04-01T12:00:00.000Z", "2026-04-01T13:00:00+02:00", "2030-12-31T23:59:59Z"]
IPS = ["10.0.0.1", "10.1.2.3", "192.168.1.7", "::1", "2001:db8::5", "8.8.8.8", "bad"]
CIDRS = ["10.0.0.0/8", "192.168.1.0/24", "::1", "2001:db8::/32", "8.8.8.8", "bad"]
REGEXES = ["^a", "^[a-z]+$", "(?i)^acme", "\\bpro\\b", "[[:upper:]]{2}", "^.$", "é"]
PROPS = ["country", "plan", "version", "age", "signup", "ip", "tenant"]
FIELDS = ["userId", "sessionId", "environment", "appName", "remoteAddress", "currentTime"]
USERS = ["u1", "u2", "u3", "122", "155", "ABC", "ümlaut"]
SESSIONS = ["s1", "s2", "s3"]

NAMES = ["f.a", "f.b", "f.c", "f.d", "f.e", "f.ü"]


@st.composite
def constraint(draw: st.DrawFn) -> dict[str, Any]:
    op = draw(
        st.sampled_from(
            [
                "IN", "NOT_IN", "STR_CONTAINS", "STR_STARTS_WITH", "STR_ENDS_WITH", "NUM_EQ", "NUM_GT", "NUM_GTE",
                "NUM_LT", "NUM_LTE", "DATE_AFTER", "DATE_BEFORE", "SEMVER_EQ", "SEMVER_GT", "SEMVER_GTE",
                "SEMVER_LT", "SEMVER_LTE", "REGEX", "IN_CIDR",
            ]
        )
    )  # fmt: skip
    name = draw(st.sampled_from(PROPS + FIELDS))
    c: dict[str, Any] = {"contextName": name, "operator": op}
    if op in ("IN", "NOT_IN"):
        c["values"] = draw(st.lists(st.sampled_from(WORDS + USERS + SESSIONS + NUMBERS), max_size=4, unique=True))
    elif op.startswith("STR_"):
        c["values"] = draw(st.lists(st.sampled_from(WORDS), min_size=1, max_size=3, unique=True))
    elif op.startswith("NUM_"):
        c["value"] = draw(st.sampled_from(["0", "1", "18", "18.5", "-3", "1e2", "30"]))
    elif op.startswith("DATE_"):
        c["value"] = draw(st.sampled_from(["2026-04-01T12:00:00.000Z", "2025-06-01T00:00:00Z"]))
    elif op.startswith("SEMVER_"):
        c["value"] = draw(st.sampled_from(["1.2.3", "1.2.3-beta.2", "2.0.0", "1.0.0"]))
    elif op == "REGEX":
        c["value"] = draw(st.sampled_from(REGEXES))
    else:
        c["values"] = draw(st.lists(st.sampled_from(CIDRS), min_size=1, max_size=3, unique=True))
    if draw(st.booleans()):
        c["inverted"] = draw(st.booleans())
    if op.startswith("STR_") or op == "REGEX" or draw(st.integers(0, 5)) == 0:
        c["caseInsensitive"] = draw(st.booleans())
    return c


def variants(draw: st.DrawFn, overrides: bool) -> list[dict[str, Any]]:
    n = draw(st.integers(0, 3))
    out = []
    stickiness = draw(st.sampled_from(["default", "userId", "sessionId", "tenant"]))
    for i in range(n):
        v: dict[str, Any] = {"name": f"v{i}", "weight": draw(st.integers(1, 1000)), "stickiness": stickiness}
        if draw(st.booleans()):
            v["payload"] = {"type": "string", "value": f"p{i}"}
        if overrides and draw(st.integers(0, 3)) == 0:
            v["overrides"] = [
                {"contextName": draw(st.sampled_from(["userId", "tenant"])), "values": [draw(st.sampled_from(USERS))]}
            ]
        out.append(v)
    return out


@st.composite
def strategy(draw: st.DrawFn, segment_ids: list[int]) -> dict[str, Any]:
    name = draw(
        st.sampled_from(
            [
                "default", "userWithId", "gradualRolloutUserId", "gradualRolloutSessionId", "gradualRolloutRandom",
                "flexibleRollout", "flexibleRollout", "remoteAddress",
            ]
        )
    )  # fmt: skip
    pct = str(draw(st.sampled_from([0, 1, 10, 50, 90, 100])))
    params: dict[str, str] = {}
    if name == "userWithId":
        params["userIds"] = ", ".join(draw(st.lists(st.sampled_from(USERS), max_size=3)))
    elif name in ("gradualRolloutUserId", "gradualRolloutSessionId"):
        params = {"percentage": pct, "groupId": draw(st.sampled_from(["g", "AB12A"]))}
    elif name == "gradualRolloutRandom":
        params = {"percentage": draw(st.sampled_from(["0", "100"]))}
    elif name == "flexibleRollout":
        params = {
            "rollout": pct,
            "stickiness": draw(st.sampled_from(["default", "userId", "sessionId", "tenant", "plan"])),
        }
        if draw(st.booleans()):
            params["groupId"] = draw(st.sampled_from(["g", "grp"]))
    elif name == "remoteAddress":
        params["IPs"] = ", ".join(draw(st.lists(st.sampled_from(CIDRS), max_size=3)))
    s: dict[str, Any] = {"name": name, "parameters": params}
    s["constraints"] = draw(st.lists(constraint(), max_size=3))
    if segment_ids and draw(st.integers(0, 3)) == 0:
        s["segments"] = draw(st.lists(st.sampled_from(segment_ids), min_size=1, max_size=2, unique=True))
    if draw(st.integers(0, 2)) == 0:
        s["variants"] = variants(draw, False)
    return s


@st.composite
def states(draw: st.DrawFn) -> dict[str, Any]:
    segments = [
        {"id": i, "name": f"seg-{i}", "constraints": draw(st.lists(constraint(), min_size=1, max_size=2))}
        for i in range(1, draw(st.integers(0, 2)) + 1)
    ]
    ids = [s["id"] for s in segments]
    features = []
    for i, name in enumerate(NAMES[: draw(st.integers(1, len(NAMES)))]):
        f: dict[str, Any] = {
            "name": name,
            "enabled": draw(st.integers(0, 5)) > 0,
            "strategies": draw(st.lists(strategy(ids), max_size=3)),
            "variants": variants(draw, True),
        }
        if i > 0 and draw(st.integers(0, 3)) == 0:
            parent = draw(st.sampled_from(NAMES[:i]))
            dep: dict[str, Any] = {"feature": parent}
            if draw(st.booleans()):
                dep["enabled"] = draw(st.booleans())
            if draw(st.integers(0, 2)) == 0:
                dep["variants"] = draw(st.lists(st.sampled_from(["v0", "v1", "v2"]), max_size=2, unique=True))
            f["dependencies"] = [dep]
        features.append(f)
    return {"version": 2, "features": features, "segments": segments}


@st.composite
def contexts(draw: st.DrawFn) -> dict[str, Any]:
    ctx: dict[str, Any] = {"userId": draw(st.sampled_from(USERS)), "sessionId": draw(st.sampled_from(SESSIONS))}
    if draw(st.booleans()):
        ctx["environment"] = draw(st.sampled_from(["production", "staging", "dev"]))
    if draw(st.booleans()):
        ctx["appName"] = draw(st.sampled_from(["app", "ACME"]))
    if draw(st.booleans()):
        ctx["remoteAddress"] = draw(st.sampled_from(IPS))
    if draw(st.booleans()):
        ctx["currentTime"] = draw(st.sampled_from(TIMES))
    props = {"tenant": draw(st.sampled_from(WORDS))}
    for p in ("country", "plan"):
        if draw(st.booleans()):
            props[p] = draw(st.sampled_from(WORDS))
    if draw(st.booleans()):
        props["version"] = draw(st.sampled_from(VERSIONS))
    if draw(st.booleans()):
        props["age"] = draw(st.sampled_from(NUMBERS))
    if draw(st.booleans()):
        props["signup"] = draw(st.sampled_from(TIMES))
    if draw(st.booleans()):
        props["ip"] = draw(st.sampled_from(IPS))
    ctx["properties"] = props
    return ctx


def _sql(conn: psycopg.Connection[Any], fn: str, queries: list[tuple[str, dict[str, Any]]]) -> list[Any]:
    rows = conn.execute(
        f"select public.{fn}(k, null, 'production', c) from unnest(%s::text[], %s::jsonb[])"
        " with ordinality t(k, c, i) order by i",
        ([q[0] for q in queries], [json.dumps(q[1]) for q in queries]),
    ).fetchall()
    return [r[0] for r in rows]


def _variant(v: Any) -> dict[str, Any]:
    out = {"name": v.name, "enabled": v.enabled, "feature_enabled": v.feature_enabled}
    if v.payload is not None:
        out["payload"] = {"type": v.payload["type"], "value": v.payload["value"]}
    return out


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(state=states(), ctxs=st.lists(contexts(), min_size=5, max_size=12))
def test_sql_python_and_unleash_engine_agree(
    conn: psycopg.Connection[Any], db_url: str, state: dict[str, Any], ctxs: list[dict[str, Any]]
) -> None:
    conn.execute("delete from feature_flags")
    conn.execute("delete from feature_flag_segments")
    result = flag_io.import_state(conn, state)
    assert not result.refused, result.refused
    engine = UnleashEngine()
    engine.take_state(json.dumps(state))
    client = flags.FlagClient(db_url, record=False)
    client.refresh()
    queries = [(f["name"], c) for f in state["features"] for c in ctxs] + [("nope", ctxs[0])]
    sql_on = _sql(conn, "is_feature_enabled", queries)
    sql_var = _sql(conn, "get_feature_variant", queries)
    for (key, ctx), s_on, s_var in zip(queries, sql_on, sql_var, strict=True):
        e_on = engine.is_enabled(key, ctx).is_enabled
        e_var = _variant(engine.get_variant(key, ctx).variant)
        p_on = client.is_enabled(key, None, "production", ctx)
        p_var = client.get_variant(key, None, "production", ctx)
        assert (s_on, p_on) == (bool(e_on), bool(e_on)), (key, ctx)
        assert s_var == e_var, (key, ctx, s_var, e_var)
        assert p_var == e_var, (key, ctx, p_var, e_var)
