"""rls-policy: every created table has at least one policy in the same file."""

from __future__ import annotations

from platformdb.lint.context import FileContext
from platformdb.lint.rule import Rule
from platformdb.lint.sql import fmt

ID = "rls-policy"


def check_file(ctx: FileContext) -> None:
    for key, line in ctx.tables.items():
        if key not in ctx.partitions and key not in ctx.policies:
            ctx.report_at(
                ID,
                f"table {fmt(key)} has no policy in this file (create one per role and operation that is needed)",
                line,
            )


RULE = Rule(
    id=ID,
    level="error",
    message="every created table has at least one policy in the same file",
    rationale="A table with RLS and no policy is reachable by nobody but its owner; the policies state who"
    " may do what, next to the table (partitions inherit their parent's).",
    order=40,
    file=check_file,
)
