"""view-security-invoker: views run with the caller's rights; matviews stay away from users."""

from __future__ import annotations

from typing import Any

from pglast import ast
from pglast.enums.parsenodes import GrantTargetType, ObjectType

from platformdb.lint.context import FileContext, grantees
from platformdb.lint.rule import Rule
from platformdb.lint.sql import fmt, rv

ID = "view-security-invoker"


def check_statement(ctx: FileContext, n: Any, i: int) -> None:
    if not (isinstance(n, ast.GrantStmt) and n.is_grant):
        return
    if n.targtype != GrantTargetType.ACL_TARGET_OBJECT or n.objtype != ObjectType.OBJECT_TABLE:
        return
    exposed = grantees(n) & {"anon", "authenticated", "public"}
    for r in n.objects or ():
        key = rv(r)
        if key in ctx.matviews and exposed:
            ctx.report(
                ID,
                f"grants materialized view {fmt(key)} to {', '.join(sorted(exposed))}:"
                " a materialized view ignores RLS, so every row would be visible",
            )


def check_file(ctx: FileContext) -> None:
    for key, line in ctx.views.items():
        if not ctx.invoker.get(key):
            ctx.report_at(
                ID,
                f"view {fmt(key)} is not created with (security_invoker = true): it would"
                " run with its owner's rights and bypass RLS",
                line,
            )


RULE = Rule(
    id=ID,
    level="error",
    message="views are created with (security_invoker = true); materialized"
    " views (which ignore RLS) are not granted to anon or authenticated",
    rationale="A view runs with its owner's rights by default and would show every row whatever the"
    " caller's policies say.",
    order=100,
    statement=check_statement,
    file=check_file,
)
