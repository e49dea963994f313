"""Each lint rule of the registry (platformdb.lint.rules, one module per rule) with its two
fixtures: a failing one, whose findings of the rule are exactly the lines marked
`-- expect: <rule-id>`, and a passing one (tests/fixtures/lint/pass/) with no finding at all.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import pytest

from platformdb import lint, migrate
from platformdb.lint import rules as rules_pkg

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "lint"
OBS = sorted(migrate.default_dir().glob("20260401100000_system_observability*.sql"))
EXPECT_RE = re.compile(r"--\s*expect:\s*([a-z\-]+(?:\s*,\s*[a-z\-]+)*)")
RULES = lint.all_rules()
IDS = [r.id for r in RULES]

# the rules whose fixtures do not follow <rule_id>.sql
FAILING = {
    "down-missing": FIXTURES / "20990101000001_down_missing.sql",
    "down-incomplete": FIXTURES / "down_incomplete.down.sql",
}
PASSING = {
    "down-missing": FIXTURES / "20990101000000_good.sql",
    "down-incomplete": FIXTURES / "pass" / "down_complete.down.sql",
}


def failing(rule_id: str) -> Path:
    return FAILING.get(rule_id, FIXTURES / f"{rule_id.replace('-', '_')}.sql")


def passing(rule_id: str) -> Path:
    return PASSING.get(rule_id, FIXTURES / "pass" / f"{rule_id.replace('-', '_')}.sql")


def marked(path: Path, rule_id: str) -> set[int]:
    out = set()
    for number, line in enumerate(path.read_text().splitlines(), 1):
        m = EXPECT_RE.search(line)
        if m and rule_id in {r.strip() for r in m.group(1).split(",")}:
            out.add(number)
    return out


def test_the_registry_finds_one_rule_per_module() -> None:
    modules = [i.name for i in pkgutil.iter_modules(rules_pkg.__path__)]
    assert sorted(modules) == sorted(r.id.replace("-", "_") for r in RULES)
    for name in modules:
        rule = importlib.import_module(f"{rules_pkg.__name__}.{name}").RULE
        assert rule.level in ("error", "warning")
        assert rule.message and rule.rationale
    assert set(lint.RULES) == set(IDS)


@pytest.mark.parametrize("rule_id", IDS)
def test_the_failing_fixture_breaks_the_rule_exactly_where_marked(rule_id: str) -> None:
    path = failing(rule_id)
    lines = marked(path, rule_id)
    assert lines, f"{path.name} marks no line with `-- expect: {rule_id}`"
    got = {f.line for f in lint.lint_files([path], context=OBS) if f.rule == rule_id}
    assert got == lines


@pytest.mark.parametrize("rule_id", IDS)
def test_the_passing_fixture_is_clean(rule_id: str) -> None:
    path = passing(rule_id)
    assert path.exists(), f"no passing fixture for {rule_id}"
    assert [f.format() for f in lint.lint_files([path], context=OBS)] == []
