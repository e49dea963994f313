"""The dashboard's flags: Unleash's client API mounted at /api of the running dashboard
(Unleash's Python SDK reads it and gives our SQL's answers; its own tokens; its own role
with exactly two functions), and the flags page (strategies, segments, variants,
dependencies; everything escaped)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo
from starlette.testclient import TestClient

from platformdb.dashboard import access
from platformdb.dashboard.app import Settings, create_app
from platformdb.sdk import flags
from tests.helpers import ServedApp, assert_unleash_sdk_agrees, raises_sqlstate

DASHBOARD_TOKEN = "dashboard-" + uuid.uuid4().hex
CLIENT = "client-" + uuid.uuid4().hex
STAGING = "staging-" + uuid.uuid4().hex
ADMIN = "admin-" + uuid.uuid4().hex




@pytest.fixture
def dashboard(db_url: str) -> Iterator[ServedApp]:
    settings = Settings(
        database_url=db_url,
        token=DASHBOARD_TOKEN,
        loopback_only=False,
        flags_client_tokens={CLIENT: "production", STAGING: "staging"},
        flags_admin_tokens=(ADMIN,),
    )
    with ServedApp(create_app(settings)) as running:
        yield running


def test_unleash_sdk_against_the_running_dashboard_gives_our_answers(
    conn: psycopg.Connection[Any], dashboard: ServedApp, tmp_path: Path
) -> None:
    assert_unleash_sdk_agrees(conn, dashboard.url + "/api", CLIENT, tmp_path, "platformdb-dashboard-test")


def test_the_mounted_api_has_its_own_tokens_and_counts(conn: psycopg.Connection[Any], dashboard: ServedApp) -> None:
    flags.upsert_flag(conn, "prod-only", environment="production", enabled=True, strategies=[{"name": "default"}])
    flags.upsert_flag(conn, "stage-only", environment="staging", enabled=True, strategies=[{"name": "default"}])
    with httpx.Client(base_url=dashboard.url) as http:
        # the API's tokens, not the dashboard's, in both directions
        assert http.get("/api/client/features").status_code == 401
        assert http.get("/api/client/features", headers={"Authorization": DASHBOARD_TOKEN}).status_code == 401
        assert (
            http.get("/api/client/features", headers={"Authorization": f"Bearer {DASHBOARD_TOKEN}"}).status_code == 401
        )
        assert http.get("/flags", headers={"Authorization": f"Bearer {CLIENT}"}).status_code == 401
        assert http.get("/flags", headers={"Authorization": f"Bearer {DASHBOARD_TOKEN}"}).status_code == 200
        r = http.get("/api/client/features", headers={"Authorization": CLIENT})
        assert r.status_code == 200 and [f["name"] for f in r.json()["features"]] == ["prod-only"]
        assert (
            http.get(
                "/api/client/features", headers={"Authorization": CLIENT, "If-None-Match": r.headers["etag"]}
            ).status_code
            == 304
        )
        staged = http.get("/api/client/features", headers={"Authorization": STAGING}).json()
        assert [f["name"] for f in staged["features"]] == ["stage-only"]
        r = http.get("/api/client/features?environment=staging", headers={"Authorization": CLIENT})
        assert [f["name"] for f in r.json()["features"]] == ["prod-only"]
        r = http.get("/api/client/features?environment=staging", headers={"Authorization": ADMIN})
        assert [f["name"] for f in r.json()["features"]] == ["stage-only"]
        body = {"appName": "edge", "bucket": {"toggles": {"prod-only": {"yes": 5, "no": 1}}}}
        assert http.post("/api/client/metrics", headers={"Authorization": CLIENT}, json=body).status_code == 202
        assert (
            http.post("/api/client/register", headers={"Authorization": CLIENT}, json={"appName": "edge"}).status_code
            == 202
        )
        # the dashboard's mount takes no writes, not even with the admin token
        w = http.post("/api/admin/features-batch/import", headers={"Authorization": ADMIN}, json={"features": []})
        assert w.status_code in (401, 404, 405)  # the dashboard guard answers: no such route
    rows = conn.execute(
        "select reason, source, sum(evaluations)::int from feature_flag_evaluations"
        " where flag_key = 'prod-only' group by 1, 2 order by 1"
    ).fetchall()
    assert rows == [("match", "sdk", 5), ("no_match", "sdk", 1)]


def test_the_mounted_api_runs_as_a_role_with_two_functions(db_url: str) -> None:
    with TestClient(create_app(Settings(database_url=db_url)), base_url="http://127.0.0.1") as c:
        assert c.get("/api/client/features").status_code == 200  # loopback, no tokens
        # a page of another site whose name resolves to 127.0.0.1
        assert c.get("/api/client/features", headers={"Host": "attacker.example"}).status_code == 421
    with psycopg.connect(db_url, autocommit=True) as admin:
        functions = admin.execute(
            """
            select p.proname from pg_proc p
             where p.pronamespace = 'public'::regnamespace
               and has_function_privilege('platformdb_flags_api', p.oid, 'execute')
               and not exists (select 1 from pg_depend d where d.objid = p.oid and d.deptype = 'e')
             order by 1
            """
        ).fetchall()
        assert [f for (f,) in functions] == ["feature_flags_client_state", "record_feature_flag_evaluations"]
        tables = admin.execute(
            """
            select c.relname from pg_class c where c.relnamespace = 'public'::regnamespace
               and c.relkind in ('r', 'p', 'v', 'm', 'u')
               and has_table_privilege('platformdb_flags_api', c.oid, 'select,insert,update,delete')
            """
        ).fetchall()
        assert tables == []
        with admin.transaction():
            admin.execute("set local role platformdb_flags_api")
            state = admin.execute("select public.feature_flags_client_state('production')").fetchone()
            assert state is not None and state[0]["version"] == 2
        for stmt in (
            "select count(*) from public.feature_flags",
            "select public.upsert_feature_flag(p_key => 'x', p_enabled => true)",
            "select public.is_feature_enabled('x')",
            "select * from public.monitoring_flag_model()",
        ):
            with raises_sqlstate("42501"), admin.transaction():
                admin.execute("set local role platformdb_flags_api")
                admin.execute(stmt)
        # and the monitor role still cannot read the client document
        with raises_sqlstate("42501"), admin.transaction():
            admin.execute("set local role platformdb_monitor")
            admin.execute("select public.feature_flags_client_state('production')")
        with raises_sqlstate("22023"):
            admin.execute("select public.feature_flags_client_state('qa')")


def test_a_login_outside_the_flags_role_gets_503_not_the_flags(db_url: str) -> None:
    login = f"dash_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(db_url, autocommit=True) as conn:
        access.setup_roles(conn)
        conn.execute(sql.SQL("create role {} login in role platformdb_monitor").format(sql.Identifier(login)))
    try:
        with TestClient(
            create_app(Settings(database_url=make_conninfo(db_url, user=login))), base_url="http://127.0.0.1"
        ) as c:
            assert c.get("/flags").status_code == 200
            r = c.get("/api/client/features")
            assert r.status_code == 503 and "platformdb_flags_api" in r.json()["error"]
    finally:
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute(sql.SQL("drop role {}").format(sql.Identifier(login)))


def test_the_flags_page_shows_the_model_escaped(conn: psycopg.Connection[Any], db_url: str) -> None:
    sid = flags.upsert_segment(
        conn,
        "beta <testers>",
        [{"contextName": "email", "operator": "STR_ENDS_WITH", "values": ["@x.rw"], "caseInsensitive": True}],
    )
    flags.upsert_flag(conn, "parent", environment="all", enabled=True, strategies=[])
    flags.upsert_flag(
        conn,
        "a<b>&c",
        environment="production",
        enabled=True,
        description="<img src=x onerror=alert(1)>",
        strategies=[
            {
                "name": "flexibleRollout",
                "title": "half of <b>them</b>",
                "parameters": {"rollout": "50", "stickiness": "default", "groupId": "g<1>"},
                "constraints": [
                    {"contextName": "country", "operator": "IN", "values": ["RW", "<script>alert(1)</script>"]},
                    {"contextName": "version", "operator": "SEMVER_GT", "value": "1.2.3", "inverted": True},
                ],
                "segments": [sid],
                "variants": [{"name": "s<v>", "weight": 1000, "stickiness": "default", "weightType": "variable"}],
            },
            {"name": "userWithId", "parameters": {"userIds": "u1,u2"}},
        ],
        variants=[
            {"name": "blue", "weight": 500, "weightType": "variable", "stickiness": "default",
             "payload": {"type": "json", "value": "{\"x\": \"</td><script>\"}"}},
            {"name": "red", "weight": 500, "weightType": "variable", "stickiness": "default",
             "overrides": [{"contextName": "userId", "values": ["u1"]}]},
        ],
        dependencies=[{"feature": "parent", "enabled": True}],
    )  # fmt: skip
    with TestClient(create_app(Settings(database_url=db_url)), base_url="http://127.0.0.1") as c:
        html = c.get("/flags").text
    for text in (
        "flexibleRollout",
        "userWithId",
        "SEMVER_GT",
        "STR_ENDS_WITH",
        "(case-insensitive)",
        "<em>not</em>",
        "Needs: <code>parent</code> enabled",
        "<code>blue</code>",
        "<code>red</code>",
        "<code>userId</code> in <code>u1</code>",
        "a&lt;b&gt;&amp;c",
        "beta &lt;testers&gt;",
        "&lt;script&gt;alert(1)&lt;/script&gt;",
        "&lt;img src=x onerror=alert(1)&gt;",
        "half of &lt;b&gt;them&lt;/b&gt;",
        "s&lt;v&gt;",
        "a&lt;b&gt;&amp;c@production",
        "monitoring_flag_model",
        "monitoring_flag_segments",
    ):
        assert text in html, text
    for raw in ("<script>alert", "<img src=x", "<b>them</b>", "</td><script>", "a<b>&c"):
        assert raw not in html, raw
