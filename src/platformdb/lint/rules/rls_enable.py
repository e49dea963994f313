"""rls-enable: every created table has row level security enabled in the same file."""

from __future__ import annotations

from typing import Any

from pglast import ast
from pglast.enums.parsenodes import AlterTableType

from platformdb.lint.context import FileContext
from platformdb.lint.rule import Rule
from platformdb.lint.sql import fmt, rv

ID = "rls-enable"


def check_statement(ctx: FileContext, n: Any, i: int) -> None:
    if isinstance(n, ast.AlterTableStmt) and ctx.rel_ours(rv(n.relation)):
        for cmd in n.cmds or ():
            if cmd.subtype == AlterTableType.AT_DisableRowSecurity:
                ctx.report(ID, f"disables row level security on {fmt(rv(n.relation))}")


def check_file(ctx: FileContext) -> None:
    for key, line in ctx.tables.items():
        if not ctx.rls.get(key):
            ctx.report_at(
                ID,
                f"table {fmt(key)} is created without `alter table {fmt(key)} enable row level security` in this file",
                line,
            )


RULE = Rule(
    id=ID,
    level="error",
    message="every created table has row level security enabled in the same file",
    rationale="Supabase grants anon and authenticated ALL on new tables in public: without RLS every row"
    " is readable and writable through the API.",
    order=30,
    statement=check_statement,
    file=check_file,
)
