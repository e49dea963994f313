"""revoke-defaults: Supabase's default grants are taken back from every created object."""

from __future__ import annotations

from platformdb.lint.context import FileContext
from platformdb.lint.rule import Rule
from platformdb.lint.rules.definer_execute import REQUIRED_REVOKE
from platformdb.lint.sql import fmt

ID = "revoke-defaults"


def check_file(ctx: FileContext) -> None:
    objs: list[tuple[str, tuple[str, str], int, str]] = []
    objs += [("relation", k, ln, "table") for k, ln in ctx.tables.items()]
    objs += [("relation", k, ln, "view") for k, ln in ctx.views.items()]
    objs += [("relation", k, ln, "materialized view") for k, ln in ctx.matviews.items()]
    objs += [("relation", k, ln, "sequence") for k, ln in ctx.sequences.items()]
    objs += [("function", k, ln, "function") for k, ln in ctx.functions.items() if not ctx.definer.get(k)]
    for kind, key, line, word in objs:
        if key[0] != "public":
            continue
        missing = REQUIRED_REVOKE - ctx.revoked.get((kind, key), set())
        if missing:
            ctx.report_at(
                ID,
                f"{word} {fmt(key)}: Supabase's default grants are not revoked from"
                f" {', '.join(sorted(missing))} in this file (`revoke all on … from public,"
                " anon, authenticated, service_role`, then grant what is needed)",
                line,
            )


RULE = Rule(
    id=ID,
    level="error",
    message="every created table, view, sequence and function has Supabase's default"
    " grants revoked from public, anon, authenticated and service_role",
    rationale="Nothing may be protected by a missing grant: each object is granted exactly what the"
    " security matrix needs after everything was taken back.",
    order=90,
    file=check_file,
)
