"""partition-unique-key: a UNIQUE or PRIMARY KEY on a partitioned table includes its key."""

from __future__ import annotations

from typing import Any

from pglast import ast
from pglast.enums.parsenodes import AlterTableType, ConstrType

from platformdb.lint.context import FileContext, is_unique
from platformdb.lint.rule import Rule
from platformdb.lint.sql import fmt, names, rv

ID = "partition-unique-key"


def _what(c: Any) -> str:
    return "PRIMARY KEY" if c.contype == ConstrType.CONSTR_PRIMARY else "UNIQUE"


def _check(
    ctx: FileContext, pcols: list[str | None] | None, table: tuple[str, str], what: str, keys: list[str]
) -> None:
    if pcols is None:
        return
    if any(p is None for p in pcols):
        ctx.report(
            ID,
            f"{what} on {fmt(table)}, partitioned by an expression: PostgreSQL cannot"
            " enforce it; keep uniqueness in a non-partitioned side table",
        )
        return
    missing = [str(p) for p in pcols if p not in keys]
    if missing:
        ctx.report(
            ID,
            f"{what} ({', '.join(keys)}) on partitioned {fmt(table)} does not include the"
            f" partition key ({', '.join(missing)}): PostgreSQL refuses it; add the key or"
            " enforce global uniqueness in a non-partitioned table",
        )


def check_statement(ctx: FileContext, n: Any, i: int) -> None:
    if isinstance(n, ast.CreateStmt) and n.partspec is not None and getattr(n.relation, "relpersistence", None) != "t":
        key = rv(n.relation)
        pcols: list[str | None] = [p.name for p in n.partspec.partParams or ()]
        for el in n.tableElts or ():
            if isinstance(el, ast.ColumnDef):
                for c in el.constraints or ():
                    if is_unique(c):
                        _check(ctx, pcols, key, _what(c), [str(el.colname)])
            elif isinstance(el, ast.Constraint) and is_unique(el):
                _check(ctx, pcols, key, _what(el), names(el.keys))
    elif isinstance(n, ast.AlterTableStmt) and ctx.rel_ours(rv(n.relation)):
        key = rv(n.relation)
        for cmd in n.cmds or ():
            if cmd.subtype == AlterTableType.AT_AddConstraint and isinstance(cmd.def_, ast.Constraint):
                if is_unique(cmd.def_):
                    _check(ctx, ctx.reg.partition_keys.get(key), key, _what(cmd.def_), names(cmd.def_.keys))
    elif isinstance(n, ast.IndexStmt) and n.unique:
        key = rv(n.relation)
        if key in ctx.reg.partition_keys:
            cols = [e.name for e in n.indexParams or () if e.name]
            _check(ctx, ctx.reg.partition_keys[key], key, f"UNIQUE index {n.idxname or '(unnamed)'}", cols)


RULE = Rule(
    id=ID,
    level="error",
    message="a UNIQUE or PRIMARY KEY on a partitioned table includes the partition key",
    rationale="PostgreSQL refuses it otherwise; global uniqueness needs a non-partitioned side table.",
    order=120,
    statement=check_statement,
)
