"""definer-search-path: a SECURITY DEFINER function pins search_path."""

from __future__ import annotations

from pglast.enums.parsenodes import VariableSetKind

from platformdb.lint.context import FileContext
from platformdb.lint.rule import Rule
from platformdb.lint.sql import fmt, str_value

ID = "definer-search-path"


def check_file(ctx: FileContext) -> None:
    for key, line in ctx.functions.items():
        if not ctx.definer.get(key):
            continue
        sp = ctx.search_path.get(key)
        if sp is None:
            ctx.report_at(
                ID,
                f"SECURITY DEFINER function {fmt(key)} does not pin search_path"
                " (add `set search_path = ''` and schema-qualify every name)",
                line,
            )
        elif sp.kind == VariableSetKind.VAR_SET_CURRENT:
            ctx.report_at(
                ID,
                f"SECURITY DEFINER function {fmt(key)} takes search_path FROM CURRENT"
                " (whatever the migration session had); pin it explicitly",
                line,
            )
        elif any((str_value(a) or "").strip() == "$user" for a in sp.args or ()):
            ctx.report_at(
                ID,
                f'SECURITY DEFINER function {fmt(key)} has "$user" in its search_path:'
                " a caller's schema could shadow names; use ''",
                line,
            )


RULE = Rule(
    id=ID,
    level="error",
    message="a SECURITY DEFINER function pins search_path (SET search_path = '')",
    rationale="A definer function runs with its owner's rights; with the caller's search_path a"
    " caller's object could shadow a name it uses.",
    order=70,
    file=check_file,
)
