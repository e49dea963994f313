"""The generated matcher of a flag (flag_model.compile_matcher) gives the answer of the
strategy closures it is built from, on the corpus's flags, for contexts as callers give them
(read as given) and as make_context makes them; and its source holds no value."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from platformdb.sdk import flag_model, flags

CORPUS = Path(__file__).resolve().parent.parent / "fixtures" / "flag_corpus"
ODD = [None, 5, 1.5, True, False, "", "RW", "1.2.3", "2026-01-01T00:00:00Z", [1], {"a": 1}, "ümlaut", "10.0.0.1"]


def _corpus() -> tuple[list[dict[str, Any]], dict[int, list[Any]], list[dict[str, Any]]]:
    features: list[dict[str, Any]] = []
    segments: dict[int, list[Any]] = {}
    contexts: list[dict[str, Any]] = []
    for path in sorted(CORPUS.glob("*.json")):
        spec = json.loads(path.read_text(encoding="utf-8"))
        features += spec["state"]["features"]
        segments.update({int(s["id"]): s["constraints"] for s in spec["state"].get("segments") or []})
        contexts += [t["context"] for t in spec.get("tests", []) + spec.get("variantTests", [])]
    return features, segments, contexts


def _odd_context(rng: random.Random, names: list[str]) -> dict[str, Any]:
    ctx: dict[str, Any] = {}
    for field in flag_model.FIELDS:
        if rng.random() < 0.5:
            ctx[field] = rng.choice(ODD)
    props = {n: rng.choice(ODD) for n in rng.sample(names, min(len(names), 3))}
    if rng.random() < 0.9:
        ctx["properties"] = props
    return ctx


def test_generated_matchers_answer_as_the_closures() -> None:
    features, segments, contexts = _corpus()
    rng = random.Random(18)
    names = sorted(
        {c["contextName"] for f in features for s in f.get("strategies") or [] for c in s.get("constraints") or []}
    )
    contexts += [_odd_context(rng, names) for _ in range(400)]
    checked = raw_checked = 0
    for f in features:
        compiled = flag_model.CompiledFlag(f["name"], True, f.get("strategies") or [], [], [], segments)
        matcher = compiled.matcher
        for given in contexts:
            if any(
                s.get("name") in ("gradualRolloutRandom",) or (s.get("parameters") or {}).get("stickiness") == "random"
                for s in f.get("strategies") or []
            ):
                continue  # random by definition
            ctx = flag_model.make_context(given, None, "production")
            ctx[flag_model.TOGGLE] = f["name"]
            if (
                "userId" not in ctx
                and "sessionId" not in ctx
                and any(s["name"] == "flexibleRollout" for s in f.get("strategies") or [])
            ):
                continue  # default stickiness without a user or session: random
            expected = compiled.matches(ctx)
            assert matcher.first_match(ctx, f["name"], "production") == expected, (f["name"], given)
            checked += 1
            plain = given.keys() <= flags._PLAIN_KEYS and type(given.get("properties", {})) is dict
            if matcher.raw and plain:
                assert matcher.first_match(given, f["name"], "production") == expected, (f["name"], given)
                raw_checked += 1
    assert checked > 10_000 and raw_checked > 5_000


def test_the_source_names_constants_only() -> None:
    hostile = "x') or __import__('os').system('true') or ('"
    compiled = flag_model.CompiledFlag(
        hostile,
        True,
        [
            {"name": "flexibleRollout", "parameters": {"rollout": "50", "groupId": hostile, "stickiness": "default"},
             "constraints": [{"contextName": hostile, "operator": "IN", "values": [hostile]},
                             {"contextName": "v", "operator": "SEMVER_GT", "value": "1.0.0"}]},
        ],
        [], [], {},
    )  # fmt: skip
    assert compiled.matcher.raw
    assert hostile not in compiled.matcher.source and "import" not in compiled.matcher.source
    assert compiled.matcher.first_match(
        {"properties": {hostile: hostile, "v": "2.0.0"}, "userId": "u"}, hostile, "production"
    ) in (0, None)
