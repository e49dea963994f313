"""name-guard: an up file checks every public name it creates before creating anything."""

from __future__ import annotations

from platformdb.lint.context import FileContext
from platformdb.lint.rule import Rule

ID = "name-guard"


def check_file(ctx: FileContext) -> None:
    if ctx.f.is_down:
        return
    needed: dict[str, int] = {}
    for kind, table in (
        ("table", ctx.tables),
        ("view", ctx.views),
        ("view", ctx.matviews),
        ("sequence", ctx.sequences),
        ("function", ctx.functions),
        ("type", ctx.types),
    ):
        for key, line in table.items():
            if key[0] == "public" and key not in ctx.partitions:
                if kind == "function" and ctx.function_existed_before(key):
                    continue  # CREATE OR REPLACE of an earlier file's function
                if table is ctx.views and ctx.relation_existed_before(key):
                    continue  # CREATE OR REPLACE VIEW of an earlier file's view
                needed.setdefault(key[1], line)
    if not needed:
        return
    if ctx.guard_names is None or (ctx.first_create_line is not None and ctx.guard_line > ctx.first_create_line):
        ctx.report_at(
            ID,
            "no name guard before the first CREATE: start with"
            " `select public.platformdb_assert_names_free(array['…'])` listing every public"
            " name this file creates, so that someone else's object stops the file",
            ctx.first_create_line or 1,
        )
        return
    missing = sorted(n for n in needed if n not in ctx.guard_names)
    if missing:
        ctx.report_at(ID, f"the name guard does not list {', '.join(missing)}", ctx.guard_line)


RULE = Rule(
    id=ID,
    level="error",
    message="an up file calls public.platformdb_assert_names_free(array[…]) with every public"
    " name it creates before creating anything",
    rationale="When a name is taken by someone else's object the file must stop before changing"
    " anything, naming the object (additive only).",
    order=60,
    file=check_file,
)
