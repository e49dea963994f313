"""comment-missing: every created table, column, view and function has a COMMENT ON."""

from __future__ import annotations

from platformdb.lint.context import FileContext
from platformdb.lint.rule import Rule
from platformdb.lint.sql import fmt

ID = "comment-missing"


def check_file(ctx: FileContext) -> None:
    if ctx.f.is_down:
        return
    for key, line in ctx.tables.items():
        if key in ctx.partitions:
            continue
        if ("relation", *key) not in ctx.comments:
            ctx.report_at(ID, f"table {fmt(key)} has no COMMENT ON", line)
        cols = [c for c in ctx.table_columns.get(key, []) if ("column", *key, c) not in ctx.comments]
        if cols:
            ctx.report_at(ID, f"columns of {fmt(key)} without COMMENT ON: {', '.join(cols)}", line)
    for key, added in ctx.added_columns.items():
        for col, line in added:
            if ("column", *key, col) not in ctx.comments:
                ctx.report_at(ID, f"column {fmt(key)}.{col} has no COMMENT ON", line)
    for table in (ctx.views, ctx.matviews):
        for key, line in table.items():
            if ("relation", *key) not in ctx.comments:
                ctx.report_at(ID, f"view {fmt(key)} has no COMMENT ON", line)
    for key, line in ctx.functions.items():
        if ("function", *key) not in ctx.comments:
            ctx.report_at(ID, f"function {fmt(key)} has no COMMENT ON", line)


RULE = Rule(
    id=ID,
    level="warning",
    message="(warning) every created table, column, view and function has a COMMENT ON",
    rationale="The reference docs and the dashboard read the comments from the catalog, so they cannot drift.",
    order=160,
    file=check_file,
)
