"""Flags in and out in Unleash's admin export format (what Unleash's UI export and
/api/admin/features-batch/export produce) next to the client-API shape: the round trip,
`platformdb flags import FILE` telling the shapes apart, segments resolved by name, and the
admin-token import endpoint of `flags serve`."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import psycopg
from starlette.testclient import TestClient

from platformdb.sdk import flag_io, flags
from platformdb.sdk.unleash_api import ApiSettings, create_app

CORPUS = Path(__file__).resolve().parent.parent / "fixtures" / "flag_corpus"
PDB = [sys.executable, "-m", "platformdb.cli"]
ADMIN_KEYS = {
    "features", "featureStrategies", "featureEnvironments", "contextFields",
    "featureTags", "segments", "tagTypes", "dependencies",
}  # fmt: skip


def _load_corpus(conn: psycopg.Connection[Any]) -> None:
    for name in ("P01-strategies.json", "P02-operators.json", "P03-segments-dependencies.json", "P04-variants.json"):
        state = json.loads((CORPUS / name).read_text(encoding="utf-8"))["state"]
        assert not flag_io.import_state(conn, state, environment="all").refused


def _wipe_flags(conn: psycopg.Connection[Any]) -> None:
    conn.execute("delete from public.feature_flags")


def test_admin_export_round_trip(conn: psycopg.Connection[Any]) -> None:
    _load_corpus(conn)
    client_before = flag_io.export_state(conn, "production")
    exported = flag_io.export_admin(conn, "production")
    assert set(exported) == ADMIN_KEYS
    assert len(exported["features"]) == len(client_before["features"]) > 50
    assert {s["featureName"] for s in exported["featureStrategies"]} <= {f["name"] for f in exported["features"]}
    assert all(set(s) == {"id", "name"} for s in exported["segments"]) and exported["segments"]
    assert exported["dependencies"] and all({"feature", "dependencies"} == set(d) for d in exported["dependencies"])
    assert {e["environment"] for e in exported["featureEnvironments"]} == {"production"}
    assert flag_io.kind_of(exported) == "admin" and flag_io.kind_of(client_before) == "client"
    # stable: the same export twice (strategy ids included)
    assert flag_io.export_admin(conn, "production") == exported

    _wipe_flags(conn)
    assert flag_io.export_state(conn, "production")["features"] == []
    result = flag_io.import_any(conn, copy.deepcopy(exported), environment="production")
    assert not result.refused and len(result.features) == len(exported["features"])
    assert flag_io.export_admin(conn, "production") == exported
    assert flag_io.export_state(conn, "production") == client_before


def test_segments_are_resolved_by_name_and_a_missing_one_refuses_its_feature(conn: psycopg.Connection[Any]) -> None:
    flags.upsert_segment(conn, "rwanda", [{"contextName": "country", "operator": "IN", "values": ["RW"]}])
    sid = flags.upsert_segment(conn, "kenya", [{"contextName": "country", "operator": "IN", "values": ["KE"]}])
    document = {
        "features": [{"name": "seg-a", "project": "default", "type": "release"}, {"name": "seg-b"}],
        "featureStrategies": [
            {"id": "s1", "featureName": "seg-a", "name": "default", "segments": [77], "sortOrder": 0},
            {"id": "s2", "featureName": "seg-b", "name": "default", "segments": [78], "sortOrder": 0},
        ],
        "featureEnvironments": [
            {"name": "seg-a", "featureName": "seg-a", "environment": "production", "enabled": True},
            {"name": "seg-b", "featureName": "seg-b", "environment": "production", "enabled": True},
        ],
        "segments": [{"id": 77, "name": "kenya"}, {"id": 78, "name": "nowhere"}],
        "tagTypes": [],
    }
    # wrapped as Unleash's import request
    result = flag_io.import_any(conn, {"project": "default", "environment": "production", "data": document})
    assert result.features == ["seg-a"]
    assert result.refused["seg-b"].startswith("23503")
    assert flags.list_flags(conn)[0].strategies[0]["segments"] == [sid]
    assert flags.is_feature_enabled(conn, "seg-a", None, "production", {"country": "KE"}) is True
    assert flags.is_feature_enabled(conn, "seg-a", None, "production", {"country": "RW"}) is False


def test_unknown_fields_and_bad_features_are_refused(conn: psycopg.Connection[Any]) -> None:
    try:
        flag_io.import_any(conn, {"features": [], "featureStrategies": [], "bogus": 1})
    except ValueError as exc:
        assert "bogus" in str(exc)
    else:
        raise AssertionError("an unknown top-level field was accepted")
    document = {
        "features": [{"name": "bad-op"}],
        "featureStrategies": [
            {"featureName": "bad-op", "name": "default",
             "constraints": [{"contextName": "x", "operator": "STR_MATCHES", "values": ["a"]}]},
        ],
        "featureEnvironments": [{"name": "bad-op", "enabled": True}],
        "tagTypes": [],
    }  # fmt: skip
    result = flag_io.import_any(conn, document)
    assert result.features == [] and result.refused["bad-op"].startswith("22023")
    for malformed in (
        {"features": "x", "featureStrategies": []},
        {"features": [1], "featureStrategies": []},
        {"features": [{"name": "m"}], "featureStrategies": [], "segments": [{"name": "no id"}]},
        {
            "features": [{"name": "m"}],
            "featureStrategies": [{"featureName": "m", "name": "default", "segments": [None]}],
        },
        {"version": 2, "features": [{"name": "m", "strategies": "all"}]},
    ):
        try:
            flag_io.import_any(conn, malformed)
        except ValueError:
            pass
        else:
            raise AssertionError(f"accepted {malformed}")
    assert flags.list_flags(conn) == []


def test_cli_export_and_import_tell_the_shapes_apart(
    conn: psycopg.Connection[Any], db_url: str, tmp_path: Path
) -> None:
    _load_corpus(conn)
    admin_file, client_file = tmp_path / "admin.json", tmp_path / "client.json"
    for fmt, path in (("admin", admin_file), ("client", client_file)):
        r = subprocess.run(
            [*PDB, "flags", "export", "--database-url", db_url, "--format", fmt, "-o", str(path)],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
    admin_doc = json.loads(admin_file.read_text(encoding="utf-8"))
    assert set(admin_doc) == ADMIN_KEYS
    before = flag_io.export_state(conn, "production")
    for path, shape in ((admin_file, "Unleash admin export"), (client_file, "client-API state")):
        _wipe_flags(conn)
        r = subprocess.run(
            [*PDB, "flags", "import", str(path), "--database-url", db_url, "--environment", "production"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert r.returncode == 0, r.stdout + r.stderr
        assert r.stdout.startswith(f"{shape}: {len(before['features'])} features"), r.stdout
        assert flag_io.export_state(conn, "production") == before
    bad = subprocess.run(
        [*PDB, "flags", "export", "--database-url", db_url, "--format", "yaml"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode != 0 and "--format" in bad.stdout + bad.stderr


def test_flags_import_refuses_a_file_that_is_not_strict_json_and_writes_nothing(
    conn: psycopg.Connection[Any], db_url: str, tmp_path: Path
) -> None:
    """NaN (which Python's json reads and jsonb refuses) after a valid feature: refused as a
    whole before anything is written, not stored up to the NaN."""
    path = tmp_path / "nan.json"
    path.write_text(
        '{"version": 2, "features": [{"name": "first-ok", "enabled": true, "strategies": [{"name": "default"}]},'
        ' {"name": "nan", "enabled": true, "strategies": [{"name": "flexibleRollout",'
        ' "parameters": {"rollout": NaN}}]}]}',
        encoding="utf-8",
    )
    r = subprocess.run(
        [*PDB, "flags", "import", str(path), "--database-url", db_url],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert r.returncode != 0 and "NaN is not a JSON value" in r.stdout + r.stderr, r.stdout + r.stderr
    assert flags.list_flags(conn) == []


def test_flags_serve_admin_import_needs_the_admin_token(conn: psycopg.Connection[Any], db_url: str) -> None:
    client, admin = "client-" + uuid.uuid4().hex, "admin-" + uuid.uuid4().hex
    app = create_app(ApiSettings(db_url, {client: "production"}, (admin,)))
    document = {
        "features": [{"name": "imported"}],
        "featureStrategies": [{"featureName": "imported", "name": "default"}],
        "featureEnvironments": [{"name": "imported", "featureName": "imported", "enabled": True}],
        "tagTypes": [],
    }
    request = {"project": "default", "environment": "production", "data": document}
    with TestClient(app) as http:
        path = "/api/admin/features-batch/import"
        assert http.post(path, json=request).status_code == 401
        assert http.post(path, json=request, headers={"Authorization": client}).status_code == 403
        assert flags.list_flags(conn) == []
        r = http.post(path, json=request, headers={"Authorization": admin})
        assert r.status_code == 200 and r.json()["features"] == ["imported"]
        r = http.post(path, json={"environment": "qa", "data": document}, headers={"Authorization": admin})
        assert r.status_code == 400
    assert [(f.key, f.environment, f.enabled) for f in flags.list_flags(conn)] == [("imported", "production", True)]
