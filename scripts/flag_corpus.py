"""Writes tests/fixtures/flag_corpus/*.json: flags and contexts in the format of Unleash's
client specification, with the expected answers computed by Unleash's reference engine
(`yggdrasil-engine`, a dev dependency), never by platformdb's code.

    .venv/bin/python scripts/flag_corpus.py            # rewrite the corpus
    .venv/bin/python scripts/flag_corpus.py --check    # fail when the files are stale

The flags cover every strategy, every constraint operator (with caseInsensitive and
inverted), segments, dependencies, variants (weights, fixed weights, stickiness, overrides,
payloads, strategy variants) and UTF-8 names. Random strategies appear only at 0% and 100%.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from yggdrasil_engine.engine import UnleashEngine

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "flag_corpus"

USERS = ["122", "155", "user-1", "user-2", "7", "ABCDEF01-0000-4000-8000-000000000001", "ümlaut", ""]


def c(name: str, op: str, *, values: list[str] | None = None, value: str | None = None, **kw: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"contextName": name, "operator": op}
    if values is not None:
        out["values"] = values
    if value is not None:
        out["value"] = value
    out.update(kw)
    return out


def f(name: str, strategies: list[dict[str, Any]], **kw: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "enabled": kw.pop("enabled", True), "strategies": strategies}
    out.update(kw)
    return out


def one(name: str, *constraints: dict[str, Any]) -> dict[str, Any]:
    return f(name, [{"name": "default", "constraints": list(constraints)}])


def props(**p: str) -> dict[str, Any]:
    return {"properties": p}


STRATEGIES = {
    "name": "P01-strategies",
    "features": [
        f("S.default", [{"name": "default", "parameters": {}}]),
        f("S.none", []),
        f("S.disabled", [{"name": "default"}], enabled=False),
        f("S.userWithId", [{"name": "userWithId", "parameters": {"userIds": "122, user-1,ümlaut ,x"}}]),
        f("S.gradualUser", [{"name": "gradualRolloutUserId", "parameters": {"percentage": "30", "groupId": "AB12A"}}]),
        f("S.gradualUser.nogroup", [{"name": "gradualRolloutUserId", "parameters": {"percentage": "100"}}]),
        f(
            "S.gradualSession",
            [{"name": "gradualRolloutSessionId", "parameters": {"percentage": "50", "groupId": "g"}}],
        ),
        f("S.random0", [{"name": "gradualRolloutRandom", "parameters": {"percentage": "0"}}]),
        f("S.random100", [{"name": "gradualRolloutRandom", "parameters": {"percentage": "100"}}]),
        f(
            "S.flex.default",
            [{"name": "flexibleRollout", "parameters": {"rollout": "50", "stickiness": "default", "groupId": "AB12A"}}],
        ),
        f("S.flex.nogroup", [{"name": "flexibleRollout", "parameters": {"rollout": "40", "stickiness": "userId"}}]),
        f(
            "S.flex.session",
            [{"name": "flexibleRollout", "parameters": {"rollout": "50", "stickiness": "sessionId", "groupId": "x"}}],
        ),
        f(
            "S.flex.custom",
            [{"name": "flexibleRollout", "parameters": {"rollout": "50", "stickiness": "tenant", "groupId": "x"}}],
        ),
        f(
            "S.flex.random100",
            [{"name": "flexibleRollout", "parameters": {"rollout": "100", "stickiness": "random", "groupId": "x"}}],
        ),
        f(
            "S.flex.zero",
            [{"name": "flexibleRollout", "parameters": {"rollout": "0", "stickiness": "default", "groupId": "x"}}],
        ),
        f(
            "S.remoteAddress",
            [{"name": "remoteAddress", "parameters": {"IPs": "10.0.0.1, 192.168.0.0/16,2001:db8::/32, bad"}}],
        ),
        f("S.hostname", [{"name": "applicationHostname", "parameters": {"hostNames": "web-1, API-2"}}]),
        f(
            "S.or",
            [
                {"name": "userWithId", "parameters": {"userIds": "user-2"}},
                {"name": "default", "constraints": [c("appName", "IN", values=["app"])]},
            ],
        ),
        f("Feature.UTF-8.Hellø_Wørld.😊_你好", [{"name": "default"}]),
    ],
    "contexts": [
        *({"userId": u} for u in USERS),
        {},
        {"sessionId": "s-1"},
        {"sessionId": "s-2", "userId": "155"},
        {"sessionId": "abc"},
        props(tenant="acme"),
        props(tenant="globex"),
        {"remoteAddress": "10.0.0.1"},
        {"remoteAddress": "192.168.44.3"},
        {"remoteAddress": "2001:db8::7"},
        {"remoteAddress": "10.0.0.2"},
        {"remoteAddress": "not-an-ip"},
        props(hostname="web-1"),
        props(hostname="Api-2"),
        props(hostname="web-2"),
        {"appName": "app"},
    ],
}

OPERATORS = {
    "name": "P02-operators",
    "features": [
        one("O.in", c("country", "IN", values=["RW", "UG"])),
        one("O.in.empty", c("country", "IN", values=[])),
        one("O.not_in", c("country", "NOT_IN", values=["RW"])),
        one("O.not_in.empty", c("country", "NOT_IN", values=[])),
        one("O.in.inverted", c("country", "IN", values=["RW"], inverted=True)),
        one("O.in.userId", c("userId", "IN", values=["122", "user-1"])),
        one("O.in.env", c("environment", "IN", values=["staging"])),
        one("O.contains", c("email", "STR_CONTAINS", values=["@acme."])),
        f(
            "O.contains.ci",
            [{"name": "default", "constraints": [c("email", "STR_CONTAINS", values=["@ACME."], caseInsensitive=True)]}],
        ),
        one("O.starts", c("phone", "STR_STARTS_WITH", values=["+250", "+256"])),
        f(
            "O.starts.ci.inv",
            [
                {
                    "name": "default",
                    "constraints": [
                        c("email", "STR_STARTS_WITH", values=["ADMIN"], caseInsensitive=True, inverted=True)
                    ],
                }
            ],
        ),
        one("O.ends", c("email", "STR_ENDS_WITH", values=[".rw"])),
        f(
            "O.ends.ci",
            [{"name": "default", "constraints": [c("email", "STR_ENDS_WITH", values=[".RW"], caseInsensitive=True)]}],
        ),
        one("O.num_eq", c("age", "NUM_EQ", value="30")),
        one("O.num_gt", c("age", "NUM_GT", value="18.5")),
        one("O.num_gte", c("age", "NUM_GTE", value="30")),
        one("O.num_lt", c("age", "NUM_LT", value="-1e1")),
        one("O.num_lte.inv", c("age", "NUM_LTE", value="30", inverted=True)),
        f(
            "O.date_after",
            [{"name": "default", "constraints": [c("currentTime", "DATE_AFTER", value="2026-04-01T00:00:00.000Z")]}],
        ),
        f(
            "O.date_before",
            [{"name": "default", "constraints": [c("currentTime", "DATE_BEFORE", value="2026-04-01T12:00:00+02:00")]}],
        ),
        f(
            "O.date_prop",
            [{"name": "default", "constraints": [c("signup", "DATE_AFTER", value="2025-01-01T00:00:00Z")]}],
        ),
        one("O.semver_eq", c("version", "SEMVER_EQ", value="1.2.3")),
        one("O.semver_gt", c("version", "SEMVER_GT", value="1.2.3-beta.2")),
        one("O.semver_gte", c("version", "SEMVER_GTE", value="1.2.3")),
        one("O.semver_lt", c("version", "SEMVER_LT", value="2.0.0")),
        f(
            "O.semver_lte.inv",
            [{"name": "default", "constraints": [c("version", "SEMVER_LTE", value="1.2.3", inverted=True)]}],
        ),
        one("O.regex", c("email", "REGEX", value="^[a-z]+@acme\\.(com|rw)$")),
        f(
            "O.regex.ci",
            [{"name": "default", "constraints": [c("email", "REGEX", value="^ADMIN", caseInsensitive=True)]}],
        ),
        one("O.regex.flag", c("email", "REGEX", value="(?i)^bob@")),
        one("O.regex.word", c("phone", "REGEX", value="\\b250\\b")),
        one("O.regex.posix", c("country", "REGEX", value="^[[:upper:]]{2}$")),
        f(
            "O.cidr",
            [{"name": "default", "constraints": [c("remoteAddress", "IN_CIDR", values=["10.0.0.0/8", "bad", "::1"])]}],
        ),
        f(
            "O.cidr.prop.inv",
            [{"name": "default", "constraints": [c("ip", "IN_CIDR", values=["192.168.1.0/24"], inverted=True)]}],
        ),
        f(
            "O.and",
            [
                {
                    "name": "default",
                    "constraints": [
                        c("country", "IN", values=["RW"]),
                        c("version", "SEMVER_GT", value="1.0.0"),
                        c("email", "STR_STARTS_WITH", values=["bob"]),
                    ],
                }
            ],
        ),
    ],
    "contexts": [
        {},
        props(country="RW"),
        props(country="UG", email="bob@acme.com", phone="+250788", age="30"),
        props(country="KE", email="ADMIN@ACME.RW", phone="+256 1", age="18.5"),
        props(country="rw", email="alice@acme.rw", phone="250", age="31"),
        props(email="bob@other.com", age="-11", version="1.2.3"),
        props(version="1.2.3-beta.3", age="1e2"),
        props(version="1.2.3-beta.1", age="abc"),
        props(version="2.0.0", country="RW", email="bob@x"),
        props(version="1.10.0", country="RW", email="bob@acme.com"),
        props(version="v1.2.3", age="30.0"),
        {"userId": "122", "environment": "staging"},
        {"userId": "user-1", "environment": "production"},
        {"currentTime": "2026-03-31T23:59:59Z"},
        {"currentTime": "2026-04-01T10:00:00.001Z"},
        {"currentTime": "2026-04-01T11:00:00+00:00"},
        {"currentTime": "not a time"},
        props(signup="2025-06-01T00:00:00Z"),
        props(signup="2024-06-01T00:00:00Z"),
        {"remoteAddress": "10.1.2.3"},
        {"remoteAddress": "::1"},
        {"remoteAddress": "11.0.0.1", "properties": {"ip": "192.168.1.7"}},
        props(ip="192.168.2.7"),
        props(phone="x 250 y"),
        props(phone="12502"),
    ],
}

SEGMENTS_DEPENDENCIES = {
    "name": "P03-segments-dependencies",
    "segments": [
        {"id": 1, "name": "rwanda", "constraints": [c("country", "IN", values=["RW"])]},
        {"id": 2, "name": "new-app", "constraints": [c("version", "SEMVER_GTE", value="2.0.0")]},
    ],
    "features": [
        f("D.segment", [{"name": "default", "segments": [1]}]),
        f("D.segments.and", [{"name": "default", "segments": [1, 2]}]),
        f(
            "D.segment.constraint",
            [{"name": "default", "segments": [1], "constraints": [c("userId", "IN", values=["122"])]}],
        ),
        f("D.parent", [{"name": "userWithId", "parameters": {"userIds": "122,155"}}]),
        f("D.parent.off", [{"name": "default"}], enabled=False),
        f(
            "D.parent.variants",
            [{"name": "default"}],
            variants=[
                {"name": "blue", "weight": 500, "stickiness": "default"},
                {"name": "red", "weight": 500, "stickiness": "default"},
            ],
        ),
        f("D.child", [{"name": "default"}], dependencies=[{"feature": "D.parent"}]),
        f("D.child.of.off", [{"name": "default"}], dependencies=[{"feature": "D.parent.off", "enabled": False}]),
        f("D.child.variant", [], dependencies=[{"feature": "D.parent.variants", "variants": ["blue"]}]),
        f("D.child.missing", [], dependencies=[{"feature": "D.nope"}]),
        f("D.grandchild", [], dependencies=[{"feature": "D.child"}]),
        f(
            "D.child.two",
            [{"name": "default", "segments": [2]}],
            dependencies=[{"feature": "D.parent"}, {"feature": "D.parent.off", "enabled": False}],
        ),
    ],
    "contexts": [
        {},
        {"userId": "122"},
        {"userId": "155", "properties": {"country": "RW"}},
        {"userId": "122", "properties": {"country": "RW", "version": "2.1.0"}},
        {"userId": "user-1", "properties": {"country": "RW", "version": "1.9.0"}},
        {"userId": "user-2", "properties": {"version": "2.0.0"}},
        *({"userId": u} for u in USERS[2:]),
    ],
}

VARIANTS = {
    "name": "P04-variants",
    "features": [
        f(
            "V.weights",
            [{"name": "default"}],
            variants=[
                {"name": "a", "weight": 100, "payload": {"type": "string", "value": "A"}},
                {"name": "b", "weight": 300, "payload": {"type": "json", "value": '{"n": 1}'}},
                {"name": "c", "weight": 600, "payload": {"type": "number", "value": "42"}},
            ],
        ),
        f(
            "V.stickiness.tenant",
            [{"name": "default"}],
            variants=[
                {"name": "x", "weight": 500, "stickiness": "tenant", "payload": {"type": "csv", "value": "1,2"}},
                {"name": "y", "weight": 500, "stickiness": "tenant"},
            ],
        ),
        f(
            "V.overrides",
            [{"name": "default"}],
            variants=[
                {"name": "a", "weight": 500, "overrides": [{"contextName": "userId", "values": ["155"]}]},
                {"name": "b", "weight": 500, "overrides": [{"contextName": "tenant", "values": ["acme"]}]},
            ],
        ),
        f(
            "V.strategy",
            [
                {
                    "name": "flexibleRollout",
                    "parameters": {"rollout": "100", "stickiness": "default", "groupId": "grp"},
                    "constraints": [c("country", "IN", values=["RW"])],
                    "variants": [
                        {"name": "rw-1", "weight": 1, "payload": {"type": "string", "value": "one"}},
                        {"name": "rw-2", "weight": 3},
                    ],
                },
                {"name": "default"},
            ],
            variants=[{"name": "flag-level", "weight": 1000}],
        ),
        f(
            "V.strategy.sticky",
            [
                {
                    "name": "flexibleRollout",
                    "parameters": {"rollout": "100", "stickiness": "sessionId", "groupId": "s"},
                    "variants": [{"name": "s1", "weight": 50}, {"name": "s2", "weight": 50}],
                }
            ],
        ),
        f("V.none", [{"name": "default"}]),
        f("V.off", [{"name": "default"}], enabled=False, variants=[{"name": "never", "weight": 1}]),
    ],
    "contexts": [
        *({"userId": u} for u in USERS),
        {"sessionId": "s-1"},
        {"sessionId": "s-9", "userId": "122"},
        props(tenant="acme"),
        props(tenant="globex"),
        props(tenant="initech", country="RW"),
        {"userId": "7", "properties": {"country": "RW"}},
        {"userId": "155", "properties": {"country": "RW"}},
    ],
}

FILES = [STRATEGIES, OPERATORS, SEGMENTS_DEPENDENCIES, VARIANTS]


def build(spec: dict[str, Any]) -> dict[str, Any]:
    state = {"version": 2, "features": spec["features"], "segments": spec.get("segments", [])}
    engine = UnleashEngine()
    engine.take_state(json.dumps(state))
    tests, variant_tests = [], []
    for feature in spec["features"]:
        name = feature["name"]
        has_variants = bool(feature.get("variants")) or any(s.get("variants") for s in feature["strategies"])
        for i, ctx in enumerate(spec["contexts"]):
            # a case whose answer is random (no stickiness value) is left out: asked 25 times,
            # the engine must give one answer
            answers = {bool(engine.is_enabled(name, ctx).is_enabled) for _ in range(25)}
            hosts = [s for s in feature["strategies"] if s["name"] == "applicationHostname"]
            if hosts:
                # the engine's Python build has no hostname (always off); the definition it
                # implements: the host name, lower-cased, among the trimmed lower-cased names
                host = (ctx.get("properties") or {}).get("hostname")
                names = {h.strip().lower() for h in hosts[0]["parameters"].get("hostNames", "").split(",")}
                answers = {feature["enabled"] and host is not None and host.lower() in names}
            if len(answers) == 1:
                tests.append(
                    {"description": f"{name} #{i}", "context": ctx, "toggleName": name, "expectedResult": answers.pop()}
                )
            if has_variants:
                seen = set()
                for _ in range(25):
                    v = engine.get_variant(name, ctx).variant
                    want: dict[str, Any] = {"name": v.name, "enabled": v.enabled, "feature_enabled": v.feature_enabled}
                    if v.payload is not None:
                        want["payload"] = {"type": v.payload["type"], "value": v.payload["value"]}
                    seen.add(json.dumps(want, sort_keys=True))
                if len(seen) == 1:
                    variant_tests.append(
                        {
                            "description": f"{name} variant #{i}",
                            "context": ctx,
                            "toggleName": name,
                            "expectedResult": json.loads(seen.pop()),
                        }
                    )
    return {"name": spec["name"], "state": state, "tests": tests, "variantTests": variant_tests}


def main(argv: list[str]) -> int:
    check = "--check" in argv
    OUT.mkdir(parents=True, exist_ok=True)
    stale = []
    for spec in FILES:
        text = json.dumps(build(spec), ensure_ascii=False, indent=1) + "\n"
        path = OUT / f"{spec['name']}.json"
        if check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(path.name)
        else:
            path.write_text(text, encoding="utf-8")
    if stale:
        print("stale:", ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
