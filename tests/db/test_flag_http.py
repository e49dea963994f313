"""Unleash's client API (`platformdb flags serve`) read by Unleash's own Python SDK
(`UnleashClient` from PyPI): on a population of flags and contexts its answers equal the SQL
ones; tokens, ETag, register and metrics."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from platformdb.sdk import flags
from platformdb.sdk.unleash_api import ApiSettings, create_app
from tests.helpers import ServedApp, assert_unleash_sdk_agrees, load_flag_corpus

CLIENT = "client-" + uuid.uuid4().hex
STAGING = "staging-" + uuid.uuid4().hex
ADMIN = "admin-" + uuid.uuid4().hex


@pytest.fixture
def server(db_url: str) -> Iterator[ServedApp]:
    settings = ApiSettings(db_url, {CLIENT: "production", STAGING: "staging"}, (ADMIN,))
    with ServedApp(create_app(settings)) as s:
        yield s


def test_unleash_python_sdk_gives_our_answers(conn: psycopg.Connection[Any], server: ServedApp, tmp_path: Path) -> None:
    assert_unleash_sdk_agrees(conn, server.url + "/api", CLIENT, tmp_path, "platformdb-test")


def test_tokens_environments_and_etag(conn: psycopg.Connection[Any], server: ServedApp) -> None:
    flags.upsert_flag(conn, "prod-only", environment="production", enabled=True, strategies=[{"name": "default"}])
    flags.upsert_flag(conn, "stage-only", environment="staging", enabled=True, strategies=[{"name": "default"}])
    with httpx.Client(base_url=server.url) as http:
        assert http.get("/api/client/features").status_code == 401
        assert http.get("/api/client/features", headers={"Authorization": "nope"}).status_code == 401
        r = http.get("/api/client/features", headers={"Authorization": CLIENT})
        assert r.status_code == 200
        assert [f["name"] for f in r.json()["features"]] == ["prod-only"]
        assert r.json()["version"] == 2
        etag = r.headers["etag"]
        r2 = http.get("/api/client/features", headers={"Authorization": CLIENT, "If-None-Match": etag})
        assert r2.status_code == 304
        staged = http.get("/api/client/features", headers={"Authorization": STAGING}).json()
        assert [f["name"] for f in staged["features"]] == ["stage-only"]
        # a client token cannot choose another environment; the admin token can
        r3 = http.get("/api/client/features?environment=staging", headers={"Authorization": CLIENT})
        assert [f["name"] for f in r3.json()["features"]] == ["prod-only"]
        r4 = http.get("/api/client/features?environment=staging", headers={"Authorization": ADMIN})
        assert [f["name"] for f in r4.json()["features"]] == ["stage-only"]
        # a change changes the ETag
        flags.upsert_flag(conn, "prod-only", enabled=False)
        r5 = http.get("/api/client/features", headers={"Authorization": CLIENT, "If-None-Match": etag})
        assert r5.status_code == 200 and r5.json()["features"][0]["enabled"] is False


def test_register_and_metrics_go_into_the_evaluation_counts(conn: psycopg.Connection[Any], server: ServedApp) -> None:
    flags.upsert_flag(conn, "counted", enabled=True, strategies=[{"name": "default"}])
    with httpx.Client(base_url=server.url) as http:
        r = http.post(
            "/api/client/register",
            headers={"Authorization": CLIENT},
            json={"appName": "edge", "instanceId": "i-1", "strategies": ["default"], "interval": 15000},
        )
        assert r.status_code == 202
        assert server.app.state.registrations["edge"]["environment"] == "production"
        body = {
            "appName": "edge",
            "instanceId": "i-1",
            "bucket": {"start": "2026-01-01T00:00:00Z", "stop": "2026-01-01T00:01:00Z",
                       "toggles": {"counted": {"yes": 7, "no": 2, "variants": {}}}},
        }  # fmt: skip
        assert http.post("/api/client/metrics", headers={"Authorization": STAGING}, json=body).status_code == 202
        assert http.post("/api/client/metrics", headers={"Authorization": "bad"}, json=body).status_code == 401
        assert http.post("/api/client/metrics", headers={"Authorization": CLIENT}, json={"x": 1}).status_code == 400
    rows = conn.execute(
        "select environment, reason, source, sum(evaluations) from feature_flag_evaluations"
        " where flag_key = 'counted' group by 1, 2, 3 order by 1, 2"
    ).fetchall()
    assert rows == [("staging", "match", "sdk", 7), ("staging", "no_match", "sdk", 2)]


NESTED = b"[" * 100_000 + b"]" * 100_000  # deeper than Python's json parser recurses
NAN_IMPORT = (
    b'{"environment": "production", "data": {"version": 2, "features": [{"name": "nan-flag", "enabled": true,'
    b' "strategies": [{"name": "flexibleRollout", "parameters": {"rollout": NaN}}]}]}}'
)


@pytest.mark.parametrize(
    ("path", "admin", "body"),
    [
        pytest.param("/api/client/register", False, NESTED, id="register-nested"),
        pytest.param(
            "/api/client/register", False, b'{"appName": "edge", "interval": Infinity}', id="register-infinity"
        ),
        pytest.param("/api/client/metrics", False, NESTED, id="metrics-nested"),
        pytest.param(
            "/api/client/metrics",
            False,
            b'{"bucket": {"toggles": {"counted": {"yes": NaN, "no": 1}}}}',
            id="metrics-nan",
        ),
        pytest.param("/api/client/metrics", False, b"\xff\xfe not utf-8", id="metrics-not-utf8"),
        pytest.param("/api/admin/features-batch/import", True, NESTED, id="import-nested"),
        pytest.param("/api/admin/features-batch/import", True, NAN_IMPORT, id="import-nan"),
    ],
)
def test_hostile_bodies_are_refused_never_a_500(
    conn: psycopg.Connection[Any], server: ServedApp, path: str, admin: bool, body: bytes
) -> None:
    """Bodies Python's json reads but JSON and jsonb do not (NaN, Infinity), bodies nested
    deeper than the parser recurses and bytes that are not UTF-8: a 400, nothing written."""
    with httpx.Client(base_url=server.url) as http:
        token = ADMIN if admin else CLIENT
        r = http.post(path, headers={"Authorization": token, "Content-Type": "application/json"}, content=body)
    assert r.status_code == 400, r.text
    assert conn.execute("select count(*) from feature_flags where key = 'nan-flag'").fetchone() == (0,)
    assert conn.execute("select count(*) from feature_flag_evaluations where flag_key = 'counted'").fetchone() == (0,)
    assert "edge" not in server.app.state.registrations


def test_without_tokens_only_loopback_clients_are_answered(db_url: str, conn: psycopg.Connection[Any]) -> None:
    from starlette.testclient import TestClient

    flags.upsert_flag(conn, "open", enabled=True, strategies=[])
    app = create_app(ApiSettings(db_url))
    with TestClient(app, client=("203.0.113.9", 5000)) as remote:
        assert remote.get("/api/client/features").status_code == 403
    with TestClient(app, client=("127.0.0.1", 5000), base_url="http://127.0.0.1:4242") as local:
        r = local.get("/api/client/features")
        assert r.status_code == 200 and [f["name"] for f in r.json()["features"]] == ["open"]
        # DNS rebinding: a page of another site whose name resolves to 127.0.0.1
        rebound = local.get("/api/client/features", headers={"Host": "attacker.example:4242"})
        assert rebound.status_code == 403
        assert local.get("/api/client/features", headers={"Host": "localhost:4242"}).status_code == 200


# ---- Unleash's Node SDK ------------------------------------------------------------------

NODE_SDK_VERSION = "6.12.2"  # unleash-client on npm, pinned
NODE_CACHE = Path(
    os.environ.get("PLATFORMDB_TEST_NODE_CACHE", str(Path.home() / ".cache" / "platformdb-test-unleash-node"))
)
NODE_SCRIPT = Path(__file__).resolve().parent.parent / "fixtures" / "unleash_node" / "answers.cjs"


def _node_sdk() -> Path:
    """unleash-client at the pinned version in a cache folder outside the repository (npm
    install once); skips, saying why, only when node/npm are missing or the install fails."""
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not found on PATH: Unleash's Node SDK cannot run here")
    NODE_CACHE.mkdir(parents=True, exist_ok=True)
    stamp = NODE_CACHE / ".installed"
    wanted = f"unleash-client@{NODE_SDK_VERSION}"
    if not stamp.exists() or stamp.read_text() != wanted:
        r = subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--silent", wanted],
            cwd=NODE_CACHE, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        if r.returncode != 0:
            pytest.skip(f"npm install {wanted} failed: {(r.stderr or r.stdout).strip()[-500:]}")
        stamp.write_text(wanted)
    shutil.copyfile(NODE_SCRIPT, NODE_CACHE / NODE_SCRIPT.name)  # run from the cache: require resolves there
    return NODE_CACHE / NODE_SCRIPT.name


def test_unleash_node_sdk_gives_our_answers(conn: psycopg.Connection[Any], server: ServedApp, tmp_path: Path) -> None:
    script = _node_sdk()
    names = ("P02-operators.json", "P03-segments-dependencies.json", "P04-variants.json")
    specs = [load_flag_corpus(conn, n) for n in names]
    cases: list[dict[str, Any]] = []
    ours: list[Any] = []
    for spec in specs:
        for t in spec["tests"]:
            cases.append({"kind": "enabled", "toggle": t["toggleName"], "context": t["context"]})
            ours.append(flags.is_feature_enabled(conn, t["toggleName"], None, "production", t["context"]))
            assert ours[-1] == t["expectedResult"], t["description"]
        for t in spec["variantTests"]:
            cases.append({"kind": "variant", "toggle": t["toggleName"], "context": t["context"]})
            v = flags.get_feature_variant(conn, t["toggleName"], None, "production", t["context"])
            ours.append({"name": v["name"], "enabled": v["enabled"], "payload": v.get("payload")})
    path = tmp_path / "cases.json"
    path.write_text(json.dumps({"url": server.url + "/api", "token": CLIENT, "cases": cases}), encoding="utf-8")
    r = subprocess.run(["node", str(script), str(path)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    theirs = json.loads(r.stdout)
    assert len(theirs) == len(cases) > 1000
    dated = {
        f["name"]
        for spec in specs
        for f in spec["state"]["features"]
        if any(
            c["operator"] in ("DATE_AFTER", "DATE_BEFORE") and c["contextName"] != "currentTime"
            for st in f.get("strategies") or []
            for c in st.get("constraints") or []
        )
    }
    differ = [(c, o, t) for c, o, t in zip(cases, ours, theirs, strict=True) if o != t]
    unexplained = [(c, o, t) for c, o, t in differ if _node_sdk_rule(c, dated) is None]
    assert not unexplained, unexplained[:5]
    assert len(differ) < len(cases) // 20


def _node_sdk_rule(case: dict[str, Any], dated: set[str]) -> str | None:
    """Where Unleash's Node SDK itself departs from Unleash's engine (yggdrasil) and from the
    client specification, read in its source (unleash-client 6.12.2), or None:
    - DATE_AFTER / DATE_BEFORE compare currentTime whatever the constraint's contextName;
    - an empty userId / sessionId counts as missing (a random stickiness value instead);
    - stickiness values are hashed as UTF-16 code units (murmurhash3js), so a value that is
      not ASCII lands in another bucket than with the UTF-8 bytes the engine hashes."""
    if case["toggle"] in dated:
        return "date operator on a field other than currentTime"
    ctx = case["context"]
    values = [ctx.get(k) for k in ("userId", "sessionId", "remoteAddress")]
    values += list((ctx.get("properties") or {}).values())
    if any(v == "" for v in values[:2]):
        return "empty stickiness value"
    if any(isinstance(v, str) and not v.isascii() for v in values):
        return "non-ASCII stickiness value"
    return None
