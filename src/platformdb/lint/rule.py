"""A lint rule and the registry that discovers them.

Every module of `platformdb.lint.rules` defines one `RULE = Rule(...)`: its id (what a finding
prints), its level (`error` fails the command, `warning` is shown), a one-line message (what
the rule requires, `platformdb lint --rules`), the rationale, and its checks:

- `statement(ctx, node, index)`: called for each statement in file order, before the
  statement's own facts are collected (so it sees the registry as it was before it);
- `file(ctx)`: called once after the file's last statement, on the complete facts.

A rule that only names findings produced elsewhere (`syntax-error`, by the parser) has neither.
The registry orders rules by `order`, then id.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from platformdb.lint.context import FileContext

StatementCheck = Callable[[FileContext, Any, int], None]
FileCheck = Callable[[FileContext], None]


@dataclass(frozen=True)
class Rule:
    id: str
    level: str  # error | warning
    message: str
    rationale: str
    order: int
    statement: StatementCheck | None = None
    file: FileCheck | None = None


@cache
def all_rules() -> tuple[Rule, ...]:
    """Every rule of platformdb.lint.rules, discovered by module."""
    from platformdb.lint import rules

    found: list[Rule] = []
    for info in pkgutil.iter_modules(rules.__path__):
        mod = importlib.import_module(f"{rules.__name__}.{info.name}")
        rule = getattr(mod, "RULE", None)
        if not isinstance(rule, Rule):
            raise TypeError(f"{mod.__name__} defines no RULE")
        found.append(rule)
    ids = [r.id for r in found]
    if len(ids) != len(set(ids)):
        raise ValueError(f"two lint rules share an id: {sorted(ids)}")
    return tuple(sorted(found, key=lambda r: (r.order, r.id)))


def levels() -> dict[str, str]:
    return {r.id: r.level for r in all_rules()}
