"""Flags in and out in two of Unleash's shapes:

- the client API shape ({"version": 2, "features": [...], "segments": [...]}), the one
  `GET /api/client/features` serves and Unleash's SDKs read (`export_state`/`import_state`);
- Unleash's admin export format, what Unleash's UI "export" and
  `POST /api/admin/features-batch/export` produce and its import takes ({features,
  featureStrategies, featureEnvironments, contextFields, featureTags, segments, tagTypes,
  dependencies}: one environment; segments by id and name only) (`export_admin`/`import_admin`).

`import_any` tells them apart (an Unleash import request {project, environment, data} is
unwrapped). Every feature is written through `upsert_feature_flag` (so everything is
validated) and every segment through `upsert_feature_flag_segment`, each in a savepoint of
its own: one refused feature does not stop the others, and its refusal is reported.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import psycopg

from platformdb.errors import PlatformDBError, wrap_errors
from platformdb.sdk import flags

# metadata of Unleash's features that the evaluation does not use (kept out on import)
FEATURE_METADATA = frozenset(
    {"project", "type", "stale", "impressionData", "createdAt", "lastSeenAt", "segments", "description", "name"}
)
STRATEGY_DROPPED = frozenset({"id", "sortOrder", "featureName", "environment", "projectId"})


def objects(document: Mapping[str, Any], name: str) -> list[Mapping[str, Any]]:
    """document[name]: a list of JSON objects (absent or null: none), else ValueError."""
    items = document.get(name) or []
    if not isinstance(items, list) or not all(isinstance(x, Mapping) for x in items):
        raise ValueError(f"{name} must be a list of objects")
    return items


@dataclass
class ImportResult:
    features: list[str] = field(default_factory=list)
    segments: list[int] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)  # feature name -> "SQLSTATE: message"


def _strategy(s: Mapping[str, Any]) -> dict[str, Any] | None:
    if s.get("disabled") is True:
        return None  # a disabled strategy is not evaluated by Unleash's SDKs
    return {k: v for k, v in s.items() if k not in STRATEGY_DROPPED and k != "disabled"}


def import_state(conn: psycopg.Connection[Any], state: Mapping[str, Any], *, environment: str = "all") -> ImportResult:
    """Write the features and segments of a client-API state into `environment`."""
    result = ImportResult()
    for seg in objects(state, "segments"):
        with conn.transaction():
            sid = flags.upsert_segment(
                conn,
                str(seg.get("name") or f"segment-{seg['id']}"),
                seg.get("constraints") or [],
                description=seg.get("description"),
                segment_id=int(seg["id"]) if seg.get("id") is not None else None,
            )
        result.segments.append(sid)
    for f in objects(state, "features"):
        name = f.get("name")
        if not isinstance(name, str):
            result.refused[repr(name)] = "22023: a feature needs a name"
            continue
        unknown = set(f) - FEATURE_METADATA - {"enabled", "strategies", "variants", "dependencies"}
        if unknown:
            result.refused[name] = f"22023: unknown field(s) {', '.join(sorted(unknown))}"
            continue
        strategies = [x for x in (_strategy(s) for s in f.get("strategies") or []) if x is not None]
        try:
            with conn.transaction():
                flags.upsert_flag(
                    conn,
                    name,
                    environment=environment,
                    enabled=bool(f.get("enabled")),
                    description=f.get("description") or None,
                    strategies=strategies,
                    variants=f.get("variants") or [],
                    dependencies=f.get("dependencies") or [],
                )
            result.features.append(name)
        except PlatformDBError as exc:
            result.refused[name] = f"{exc.sqlstate}: {exc}"
    return result


CLIENT_STATE = "select public.feature_flags_client_state(p_environment => %s)::text"


def export_state(conn: psycopg.Connection[Any], environment: str = "production") -> dict[str, Any]:
    """The flags that apply in `environment` (its own rows, else 'all') with the segments they
    use: `feature_flags_client_state`, the body of GET /api/client/features."""
    with wrap_errors():
        row = conn.execute(CLIENT_STATE, (environment,)).fetchone()
    return json.loads(row[0]) if row else {"version": 2, "features": [], "segments": []}


# ---- Unleash's admin export format -------------------------------------------------------

ADMIN_KEYS = frozenset(
    {"features", "featureStrategies", "featureEnvironments", "contextFields", "featureTags", "segments"}
    | {"tagTypes", "dependencies", "links"}
)
STRATEGY_NAMESPACE = uuid.UUID("5d0b8a4e-4c1f-4d53-9a43-6f2d1c0f7a10")
BUILTIN_CONTEXT = ("appName", "currentTime", "environment", "remoteAddress", "sessionId", "userId")


def kind_of(document: Mapping[str, Any]) -> str:
    """'admin' (Unleash's admin export), 'request' (its import request wrapping one) or 'client'."""
    if isinstance(document.get("data"), Mapping) and "featureStrategies" in document["data"]:
        return "request"
    if "featureStrategies" in document or "featureEnvironments" in document:
        return "admin"
    return "client"


def export_admin(conn: psycopg.Connection[Any], environment: str = "production") -> dict[str, Any]:
    """The flags of `environment` in Unleash's admin export format (an 'all' row is exported
    as that environment's). Strategy ids are stable (a UUID of flag, environment, position)."""
    state = export_state(conn, environment)
    features, strategies, environments, dependencies = [], [], [], []
    context: dict[str, None] = {}
    for f in state["features"]:
        name = f["name"]
        features.append(
            {
                "name": name,
                "description": f.get("description", ""),
                "type": f.get("type", "release"),
                "project": "default",
                "stale": False,
                "impressionData": False,
                "archived": False,
            }
        )
        for i, st in enumerate(f["strategies"]):
            strategies.append(
                {
                    "id": str(uuid.uuid5(STRATEGY_NAMESPACE, f"{name}\x00{environment}\x00{i}")),
                    "featureName": name,
                    "name": st["name"],
                    "title": st.get("title"),
                    "parameters": st.get("parameters", {}),
                    "constraints": st.get("constraints", []),
                    "segments": st.get("segments", []),
                    "variants": st.get("variants", []),
                    "disabled": False,
                    "sortOrder": i,
                }
            )
            for c in st.get("constraints", []):
                context.setdefault(c["contextName"])
            stickiness = (st.get("parameters") or {}).get("stickiness")
            if stickiness and stickiness not in ("default", "random"):
                context.setdefault(stickiness)
        environments.append(
            {
                "name": name,
                "featureName": name,
                "environment": environment,
                "enabled": f["enabled"],
                "variants": f.get("variants", []),
            }
        )
        if f.get("dependencies"):
            dependencies.append({"feature": name, "dependencies": f["dependencies"]})
    for seg in state["segments"]:
        for c in seg.get("constraints", []):
            context.setdefault(c["contextName"])
    return {
        "features": features,
        "featureStrategies": strategies,
        "featureEnvironments": environments,
        "contextFields": [
            {"name": n, "stickiness": n not in BUILTIN_CONTEXT, "sortOrder": i, "legalValues": []}
            for i, n in enumerate(sorted(context))
        ],
        "featureTags": [],
        "segments": [{"id": s["id"], "name": s["name"]} for s in state["segments"]],
        "tagTypes": [],
        "dependencies": dependencies,
    }


def admin_to_client(document: Mapping[str, Any], environment: str | None = None) -> dict[str, Any]:
    """An admin export as a client-API state (segments: references only, resolved on import).
    `environment`: which featureEnvironments entry to take (else the only/first one)."""
    unknown = set(document) - ADMIN_KEYS
    if unknown:
        raise ValueError(f"not Unleash's admin export format: unknown field(s) {', '.join(sorted(unknown))}")
    by_feature: dict[str, list[Mapping[str, Any]]] = {}
    for st in objects(document, "featureStrategies"):
        by_feature.setdefault(str(st.get("featureName")), []).append(st)
    envs: dict[str, Mapping[str, Any]] = {}
    for fe in objects(document, "featureEnvironments"):
        key = str(fe.get("featureName") or fe.get("name"))
        if key not in envs or fe.get("environment") == environment:
            envs[key] = fe
    deps = {str(d.get("feature")): d.get("dependencies") or [] for d in objects(document, "dependencies")}
    features = []
    for f in objects(document, "features"):
        name = f.get("name")
        if f.get("archived"):
            continue
        fe = envs.get(str(name), {})
        strategies = sorted(by_feature.get(str(name), []), key=lambda st: st.get("sortOrder") or 0)
        feature: dict[str, Any] = {
            "name": name,
            "enabled": bool(fe.get("enabled", False)),
            "strategies": [
                {
                    k: v
                    for k, v in st.items()
                    if k in ("name", "parameters", "constraints", "segments", "variants", "title", "disabled")
                }
                for st in strategies
            ],
            "variants": fe.get("variants") or [],
        }
        if f.get("description"):
            feature["description"] = f["description"]
        if deps.get(str(name)):
            feature["dependencies"] = deps[str(name)]
        features.append(feature)
    return {"version": 2, "features": features, "segments": objects(document, "segments")}


def import_admin(
    conn: psycopg.Connection[Any], document: Mapping[str, Any], *, environment: str = "all"
) -> ImportResult:
    """Write an admin export into `environment`. Its segments carry no constraints: each is an
    existing segment of the same name (else of the same id); a feature whose strategy uses
    one that does not exist is refused (23503)."""
    state = admin_to_client(document, None if environment == "all" else environment)
    existing = flags.list_segments(conn)
    by_name = {s["name"]: s["id"] for s in existing}
    ids = {s["id"] for s in existing}
    mapping: dict[int, int | None] = {}
    for seg in state["segments"]:
        sid = seg.get("id")
        mapping[int(sid)] = by_name.get(seg.get("name")) or (int(sid) if int(sid) in ids else None)
    result = ImportResult(segments=sorted({v for v in mapping.values() if v is not None}))
    client_features = []
    for f in state["features"]:
        missing = [
            x
            for st in f["strategies"]
            for x in st.get("segments") or []
            if mapping.get(int(x), int(x) if int(x) in ids else None) is None
        ]
        if missing:
            result.refused[str(f["name"])] = f"23503: segment(s) {', '.join(map(str, missing))} do not exist here"
            continue
        for st in f["strategies"]:
            if st.get("segments"):
                st["segments"] = [mapping.get(int(x)) or int(x) for x in st["segments"]]
        client_features.append(f)
    written = import_state(conn, {"features": client_features, "segments": []}, environment=environment)
    result.features = written.features
    result.refused.update(written.refused)
    return result


def import_any(conn: psycopg.Connection[Any], document: Mapping[str, Any], *, environment: str = "all") -> ImportResult:
    """A client-API state, an admin export or an import request, told apart by `kind_of`."""
    kind = kind_of(document)
    try:
        if kind == "request":
            return import_admin(conn, document["data"], environment=environment)
        if kind == "admin":
            return import_admin(conn, document, environment=environment)
        return import_state(conn, document, environment=environment)
    except (TypeError, KeyError, AttributeError) as exc:  # a field of the wrong JSON type
        raise ValueError(f"malformed {kind} document: {type(exc).__name__}: {exc}") from exc


def dumps(state: Mapping[str, Any]) -> str:
    return json.dumps(state, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
