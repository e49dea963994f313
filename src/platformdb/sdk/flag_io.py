"""Flags in and out in Unleash's client API shape ({"version": 2, "features": [...],
"segments": [...]}), the shape `GET /api/client/features` serves and Unleash's SDKs read.

`import_state` writes every feature through `upsert_feature_flag` (so everything is
validated) and every segment through `upsert_feature_flag_segment`, each in a savepoint of
its own: one refused feature does not stop the others, and its refusal is reported.
`export_state` reads them back in the same shape.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import psycopg

from platformdb.errors import PlatformDBError
from platformdb.sdk import flags

# metadata of Unleash's features that the evaluation does not use (kept out on import)
FEATURE_METADATA = frozenset(
    {"project", "type", "stale", "impressionData", "createdAt", "lastSeenAt", "segments", "description", "name"}
)
STRATEGY_DROPPED = frozenset({"id", "sortOrder", "featureName", "environment", "projectId"})


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
    for seg in state.get("segments") or []:
        with conn.transaction():
            sid = flags.upsert_segment(
                conn,
                str(seg.get("name") or f"segment-{seg['id']}"),
                seg.get("constraints") or [],
                description=seg.get("description"),
                segment_id=int(seg["id"]) if seg.get("id") is not None else None,
            )
        result.segments.append(sid)
    for f in state.get("features") or []:
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


EXPORT_FLAGS = """
select key, environment, enabled, description, strategies, variants, dependencies
  from public.feature_flags
 where environment in (%s, 'all')
 order by key, environment = 'all'
"""


def export_state(conn: psycopg.Connection[Any], environment: str = "production") -> dict[str, Any]:
    """The flags that apply in `environment` (its own rows, else 'all') with the segments they use."""
    seen: set[str] = set()
    features = []
    used: set[int] = set()
    for key, _env, enabled, description, strategies, variants, dependencies in conn.execute(
        EXPORT_FLAGS, (environment,)
    ).fetchall():
        if key in seen:
            continue
        seen.add(key)
        feature: dict[str, Any] = {
            "name": key,
            "type": "release",
            "enabled": enabled,
            "project": "default",
            "stale": False,
            "impressionData": False,
            "strategies": strategies,
            "variants": variants,
        }
        if description:
            feature["description"] = description
        if dependencies:
            feature["dependencies"] = dependencies
        for s in strategies:
            used.update(int(x) for x in s.get("segments") or [])
        features.append(feature)
    segments = [
        {"id": s["id"], "name": s["name"], "constraints": s["constraints"]}
        for s in flags.list_segments(conn)
        if s["id"] in used
    ]
    return {"version": 2, "features": features, "segments": segments}


def dumps(state: Mapping[str, Any]) -> str:
    return json.dumps(state, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
