"""Unleash's client specification through SQL, the Python FlagClient and the OpenFeature
provider.

Two corpora in the specification's own format ({name, state, tests, variantTests}):

- tests/fixtures/flag_corpus/*.json, written for this project: every strategy, every
  constraint operator (with caseInsensitive and inverted), segments, variants (weights,
  overrides, payloads, strategy variants, stickiness), dependencies, UTF-8 names. Always run.
- Unleash's own specification (repository Unleash/client-specification, not vendored): run
  when UNLEASH_SPEC_DIR points at its specifications/ directory (or the repository), skipped
  with that reason otherwise.

Each file's state is written through `upsert_feature_flag` / `upsert_feature_flag_segment`
(flag_io.import_state). A feature the write refuses (an unknown operator, an invalid regular
expression or version: refused when written, never ignored when read) must be one the
specification expects to be off for every context; anything else is a failure.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from openfeature import api as of_api
from openfeature.evaluation_context import EvaluationContext

from platformdb.sdk import flag_io, flags
from platformdb.sdk.openfeature import PlatformDBProvider

CORPUS = Path(__file__).resolve().parent.parent / "fixtures" / "flag_corpus"


def spec_dir() -> Path | None:
    raw = os.environ.get("UNLEASH_SPEC_DIR", "")
    if not raw:
        return None
    p = Path(raw)
    if (p / "specifications").is_dir():
        p = p / "specifications"
    return p if p.is_dir() else None


def spec_files(d: Path | None) -> list[Path]:
    if d is None:
        return []
    return sorted(f for f in d.glob("*.json") if f.name != "index.json")


def fold_state(state: dict[str, Any]) -> dict[str, Any]:
    """A state, or the result of a list of delta events (hydration, feature/segment updates
    and removals), as one {features, segments}."""
    if "events" not in state:
        return state
    features: dict[str, Any] = {}
    segments: dict[int, Any] = {}
    for e in state["events"]:
        t = e["type"]
        if t == "hydration":
            features = {f["name"]: f for f in e.get("features", [])}
            segments = {s["id"]: s for s in e.get("segments", [])}
        elif t == "feature-updated":
            features[e["feature"]["name"]] = e["feature"]
        elif t == "feature-removed":
            features.pop(e["featureName"], None)
        elif t == "segment-updated":
            segments[e["segment"]["id"]] = e["segment"]
        elif t == "segment-removed":
            segments.pop(e["segmentId"], None)
        else:
            raise AssertionError(f"unknown delta event {t}")
    return {"features": list(features.values()), "segments": list(segments.values())}


def expected_variant(v: dict[str, Any]) -> dict[str, Any]:
    out = {"name": v["name"], "enabled": v["enabled"]}
    if v.get("payload") is not None:
        out["payload"] = v["payload"]
    fe = v.get("feature_enabled", v.get("featureEnabled"))
    if fe is not None:
        out["feature_enabled"] = fe
    return out


def actual_variant(v: dict[str, Any], expected: dict[str, Any]) -> dict[str, Any]:
    out = {"name": v["name"], "enabled": v["enabled"]}
    if v.get("payload") is not None:
        out["payload"] = v["payload"]
    if "feature_enabled" in expected:
        out["feature_enabled"] = v["feature_enabled"]
    return out


def run_file(path: Path, conn: psycopg.Connection[Any], db_url: str) -> dict[str, int]:
    """Runs one file on the three paths; returns pass counts; raises on any disagreement."""
    spec = json.loads(path.read_text(encoding="utf-8"))
    state = fold_state(spec["state"])
    result = flag_io.import_state(conn, state, environment="all")
    tests = spec.get("tests", [])
    variant_tests = spec.get("variantTests", [])
    failures: list[str] = []
    for name, why in result.refused.items():
        # refused at write: acceptable only where the specification expects off for every context
        for t in tests:
            if t["toggleName"] == name and t["expectedResult"] is not False:
                failures.append(f"{path.name}: {name} was refused ({why}) but {t['description']!r} expects on")
        for t in variant_tests:
            if t["toggleName"] == name and t["expectedResult"].get("enabled"):
                failures.append(f"{path.name}: {name} was refused ({why}) but {t['description']!r} expects a variant")
    client = flags.FlagClient(db_url, record=False, refresh_interval=3600).start()
    provider = PlatformDBProvider(client)
    domain = f"spec-{path.stem}"
    of_api.set_provider_and_wait(provider, domain)
    of_client = of_api.get_client(domain)
    counts = {"tests": 0, "sql": 0, "python": 0, "openfeature": 0, "variant_tests": 0}
    try:
        assert client.ready, client.last_error
        for t in tests:
            counts["tests"] += 1
            key, ctx, want = t["toggleName"], t["context"], t["expectedResult"]
            got_sql = flags.is_feature_enabled(conn, key, None, "production", ctx)
            got_py = client.is_enabled(key, None, "production", ctx)
            of_ctx = EvaluationContext(attributes=ctx)
            got_of = of_client.get_boolean_value(key, False, of_ctx)
            for path_name, got in (("sql", got_sql), ("python", got_py), ("openfeature", got_of)):
                if got == want:
                    counts[path_name] += 1
                else:
                    failures.append(f"{path.name} [{path_name}] {t['description']!r}: got {got}, expected {want}")
        for t in variant_tests:
            counts["variant_tests"] += 1
            key, ctx = t["toggleName"], t["context"]
            want = expected_variant(t["expectedResult"])
            got_sql = actual_variant(flags.get_feature_variant(conn, key, None, "production", ctx), want)
            got_py = actual_variant(client.get_variant(key, None, "production", ctx), want)
            details = of_client.get_string_details(key, "disabled", EvaluationContext(attributes=ctx))
            got_of_name = details.variant or "disabled"
            for path_name, ok, got in (
                ("sql", got_sql == want, got_sql),
                ("python", got_py == want, got_py),
                ("openfeature", got_of_name == want["name"], got_of_name),
            ):
                if ok:
                    counts[f"variant_{path_name}"] = counts.get(f"variant_{path_name}", 0) + 1
                else:
                    failures.append(f"{path.name} [{path_name}] {t['description']!r}: got {got}, expected {want}")
    finally:
        provider.shutdown()
        client.stop()
    assert not failures, "\n".join(failures)
    return counts


@pytest.mark.parametrize("path", sorted(CORPUS.glob("*.json")), ids=lambda p: p.stem)
def test_project_corpus_passes_on_sql_python_and_openfeature(
    path: Path, conn: psycopg.Connection[Any], db_url: str
) -> None:
    counts = run_file(path, conn, db_url)
    assert counts["tests"] + counts["variant_tests"] > 0


def test_the_corpus_covers_every_strategy_and_operator() -> None:
    strategies: set[str] = set()
    operators: set[tuple[str, bool, bool]] = set()
    for path in CORPUS.glob("*.json"):
        state = fold_state(json.loads(path.read_text(encoding="utf-8"))["state"])
        constraints = [c for s in state.get("segments", []) for c in s["constraints"]]
        for f in state["features"]:
            for s in f.get("strategies", []):
                strategies.add(s["name"])
                constraints.extend(s.get("constraints", []))
        for c in constraints:
            operators.add((c["operator"], bool(c.get("inverted")), bool(c.get("caseInsensitive"))))
    from platformdb.sdk import flag_model

    assert strategies >= set(flag_model.STRATEGY_NAMES)
    assert {o for o, _, _ in operators} >= set(flag_model.OPERATORS)
    assert any(inv for _, inv, _ in operators)
    assert {o for o, _, ci in operators if ci} >= {"STR_CONTAINS", "STR_STARTS_WITH", "STR_ENDS_WITH", "REGEX"}


SPEC_DIR = spec_dir()


@pytest.fixture(scope="module")
def spec_totals() -> Iterator[dict[str, int]]:
    totals: dict[str, int] = {}
    yield totals
    if totals:
        print(f"\nUnleash client specification ({SPEC_DIR}): {json.dumps(totals, sort_keys=True)}")


@pytest.mark.skipif(SPEC_DIR is None, reason="UNLEASH_SPEC_DIR is not set to Unleash's client-specification")
@pytest.mark.parametrize("path", spec_files(SPEC_DIR) or [Path("unavailable.json")], ids=lambda p: p.stem)
def test_unleash_client_specification_passes_on_sql_python_and_openfeature(
    path: Path, conn: psycopg.Connection[Any], db_url: str, spec_totals: dict[str, int]
) -> None:
    counts = run_file(path, conn, db_url)
    for k, v in counts.items():
        spec_totals[k] = spec_totals.get(k, 0) + v
