"""definer-execute: a SECURITY DEFINER function has EXECUTE revoked from the API roles."""

from __future__ import annotations

from platformdb.lint.context import FileContext
from platformdb.lint.rule import Rule
from platformdb.lint.sql import fmt

ID = "definer-execute"
REQUIRED_REVOKE = frozenset({"public", "anon", "authenticated", "service_role"})


def check_file(ctx: FileContext) -> None:
    for key, line in ctx.functions.items():
        if not ctx.definer.get(key):
            continue
        missing = REQUIRED_REVOKE - ctx.revoked.get(("function", key), set())
        if missing:
            ctx.report_at(
                ID,
                f"SECURITY DEFINER function {fmt(key)}: EXECUTE is not revoked from"
                f" {', '.join(sorted(missing))} after it is created (Supabase grants it"
                " to everyone by default)",
                line,
            )


RULE = Rule(
    id=ID,
    level="error",
    message="a SECURITY DEFINER function has EXECUTE revoked from public, anon, authenticated"
    " and service_role (then granted to who needs it)",
    rationale="Supabase's default privileges let every API role execute a new function; a definer"
    " function is a door with its owner's rights.",
    order=80,
    file=check_file,
)
