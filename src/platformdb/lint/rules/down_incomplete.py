"""down-incomplete: a .down.sql drops every object its up file created."""

from __future__ import annotations

from platformdb.lint.context import FileContext
from platformdb.lint.rule import Rule
from platformdb.lint.sql import PARTITION_CHILD_RE, fmt

ID = "down-incomplete"


def _is_helper_partition(ctx: FileContext, key: tuple[str, str]) -> bool:
    m = PARTITION_CHILD_RE.match(key[1])
    return m is not None and (key[0], m["parent"]) in ctx.reg.partition_keys


def _is_partition_of_dropped(ctx: FileContext, key: tuple[str, str], dropped: set[tuple[str, str]]) -> bool:
    return ctx.reg.partition_parent.get(key) in dropped


def _is_index_of_dropped(ctx: FileContext, key: tuple[str, str], dropped: set[tuple[str, str]]) -> bool:
    for (kind, schema, table, name), _o in ctx.reg.sub.items():
        if kind == "index" and (schema, name) == key:
            return (schema, table) in dropped or _is_partition_of_dropped(ctx, (schema, table), dropped)
    return False


def check_file(ctx: FileContext) -> None:  # noqa: C901 - one pass per kind of object
    if not ctx.f.is_down:
        return
    if ctx.up_index is None:
        ctx.report_at(ID, f"no up file {ctx.f.stem}.sql next to this rollback script", 1)
        return
    up = ctx.up_index
    reg = ctx.reg
    missing: list[str] = []
    dropped = set(ctx.dropped_rel)
    for key, o in reg.relations.items():
        if o.file != up or _is_helper_partition(ctx, key) or key in dropped:
            continue
        if _is_index_of_dropped(ctx, key, dropped) or _is_partition_of_dropped(ctx, key, dropped):
            continue
        missing.append(f"relation {fmt(key)}")
    for (schema, name, args), o in reg.function_sigs.items():
        if o.file != up:
            continue
        if (schema, name, None) in ctx.dropped_func or (schema, name, args) in ctx.dropped_func:
            continue
        missing.append(f"function {schema}.{name}({', '.join(args)})")
    for key, o in reg.types.items():
        if o.file == up and key not in ctx.dropped_type:
            missing.append(f"type {fmt(key)}")
    for schema_name, o in reg.schemas.items():
        if o.file == up and schema_name not in ctx.dropped_schema:
            missing.append(f"schema {schema_name}")
    for sub, o in reg.sub.items():
        kind, schema, table, name = sub
        if o.file != up or kind == "index":
            continue
        table_origin = reg.relation((schema, table))
        if table_origin is not None and table_origin.file == up:
            continue  # goes with its table
        if (schema, table) in dropped or sub in ctx.dropped_sub:
            continue
        missing.append(f"{kind} {name} of {schema}.{table}")
    if missing:
        ctx.report_at(
            ID,
            "does not undo what its up file created: " + ", ".join(missing),
            ctx.f.stmts[0].line if ctx.f.stmts else 1,
        )


RULE = Rule(
    id=ID,
    level="error",
    message="a .down.sql drops every object its up file created",
    rationale="Up, down and up again must give the same catalog (the rollback tests compare them).",
    order=150,
    file=check_file,
)
