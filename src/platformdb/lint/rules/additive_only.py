"""additive-only: a migration changes only what the file set itself created.

No DROP, RENAME, ALTER, OR REPLACE, IF NOT EXISTS, CASCADE or data change on objects the file
set did not create; a .down.sql drops only what its up file created.
"""

from __future__ import annotations

from typing import Any

from pglast import ast
from pglast.enums.parsenodes import AlterTableType, ObjectType

from platformdb.lint.context import FUNC_DROP_KINDS, REL_DROP_KINDS, SUB_DROP_KINDS, FileContext
from platformdb.lint.rule import Rule
from platformdb.lint.sql import fmt, names, qual, rv, str_value, type_key

ID = "additive-only"


def not_ours(ctx: FileContext, what: str, action: str) -> None:
    if ctx.f.is_down:
        ctx.report(ID, f"{action} {what}, which its up file did not create; a .down.sql undoes exactly its own up file")
    else:
        ctx.report(
            ID,
            f"{action} {what}, which no migration of this set created (additive only:"
            " never drop, rename or alter someone else's object)",
        )


def _if_not_exists(ctx: FileContext, flag: bool, what: str) -> None:
    if flag:
        ctx.report(
            ID,
            f"IF NOT EXISTS on {what} would silently keep someone else's object of that"
            " name and go on altering it; create it plainly (the name guard names collisions)",
        )


def _cascade(ctx: FileContext, what: str) -> None:
    ctx.report(
        ID,
        f"drops {what} with CASCADE, which would also remove whatever someone else built on"
        " it; drop dependents explicitly",
    )


def _relkind_word(objtype: Any) -> str:
    return {
        ObjectType.OBJECT_VIEW: "view",
        ObjectType.OBJECT_MATVIEW: "materialized view",
        ObjectType.OBJECT_INDEX: "index",
        ObjectType.OBJECT_SEQUENCE: "sequence",
    }.get(objtype, "table")


def check_statement(ctx: FileContext, n: Any, i: int) -> None:  # noqa: C901 - one dispatch over statement kinds
    if isinstance(n, ast.CreateStmt):
        if getattr(n.relation, "relpersistence", None) == "t":
            return
        _if_not_exists(ctx, bool(n.if_not_exists), f"table {fmt(rv(n.relation))}")
        for parent in n.inhRelations or ():
            pkey = rv(parent)
            if not ctx.rel_ours(pkey):
                not_ours(ctx, f"table {fmt(pkey)}", "attaches a partition to" if n.partbound else "inherits from")
    elif isinstance(n, ast.CreateTableAsStmt):
        into: Any = n.into
        _if_not_exists(ctx, bool(n.if_not_exists), f"relation {fmt(rv(into.rel))}")
    elif isinstance(n, ast.CreateSeqStmt):
        _if_not_exists(ctx, bool(n.if_not_exists), f"sequence {fmt(rv(n.sequence))}")
    elif isinstance(n, ast.ViewStmt):
        key = rv(n.view)
        if n.replace and ctx.reg.relation(key) is None:
            ctx.report(
                ID,
                f"CREATE OR REPLACE VIEW {fmt(key)}, which no earlier migration created, would"
                " replace someone else's view; use CREATE VIEW",
            )
    elif isinstance(n, ast.CreateFunctionStmt):
        key = qual(names(n.funcname))
        if n.replace and key not in ctx.reg.functions:
            ctx.report(
                ID,
                f"CREATE OR REPLACE FUNCTION {fmt(key)}, which no earlier migration created,"
                " would replace someone else's function; use CREATE FUNCTION",
            )
    elif isinstance(n, ast.IndexStmt):
        key = rv(n.relation)
        name = n.idxname or "(unnamed)"
        if not ctx.rel_ours(key):
            not_ours(ctx, f"table {fmt(key)}", f"creates index {name} on")
        _if_not_exists(ctx, bool(n.if_not_exists), f"index {name}")
    elif isinstance(n, ast.CreatePolicyStmt):
        if not ctx.rel_ours(rv(n.table)):
            not_ours(ctx, f"table {fmt(rv(n.table))}", "creates a policy on")
    elif isinstance(n, ast.AlterPolicyStmt):
        if not ctx.rel_ours(rv(n.table)):
            not_ours(ctx, f"policy {n.policy_name} on {fmt(rv(n.table))}", "alters")
    elif isinstance(n, ast.CreateTrigStmt):
        if not ctx.rel_ours(rv(n.relation)):
            not_ours(ctx, f"table {fmt(rv(n.relation))}", "creates a trigger on")
    elif isinstance(n, ast.RuleStmt):
        if not ctx.rel_ours(rv(n.relation)):
            not_ours(ctx, f"table {fmt(rv(n.relation))}", "creates a rule on")
    elif isinstance(n, ast.AlterTableStmt):
        _alter_table(ctx, n)
    elif isinstance(n, ast.AlterFunctionStmt):
        func: Any = n.func
        key = qual(names(func.objname))
        if not ctx.func_ours(key):
            not_ours(ctx, f"function {fmt(key)}", "alters")
    elif isinstance(n, ast.DropStmt):
        _drop(ctx, n)
    elif isinstance(n, ast.RenameStmt):
        _rename(ctx, n)
    elif isinstance(n, (ast.AlterOwnerStmt, ast.AlterObjectSchemaStmt)):
        _alter_object(ctx, n)
    elif isinstance(n, ast.AlterSeqStmt):
        if not ctx.rel_ours(rv(n.sequence)):
            not_ours(ctx, f"sequence {fmt(rv(n.sequence))}", "alters")
    elif isinstance(n, (ast.AlterEnumStmt, ast.AlterDomainStmt)):
        key = qual(names(n.typeName))
        if not ctx.type_ours(key):
            not_ours(ctx, f"type {fmt(key)}", "alters")
    elif isinstance(n, ast.AlterExtensionStmt):
        not_ours(ctx, f"extension {n.extname}", "alters")
    elif isinstance(n, (ast.UpdateStmt, ast.DeleteStmt, ast.MergeStmt)):
        key = rv(n.relation)
        if not ctx.rel_ours(key):
            verb = {"UpdateStmt": "updates rows of", "DeleteStmt": "deletes rows of"}.get(
                type(n).__name__, "merges into"
            )
            not_ours(ctx, f"table {fmt(key)}", verb)
    elif isinstance(n, ast.TruncateStmt):
        for r in n.relations or ():
            if not ctx.rel_ours(rv(r)):
                not_ours(ctx, f"table {fmt(rv(r))}", "truncates")
    elif isinstance(n, ast.AlterDefaultPrivilegesStmt):
        ctx.report(
            ID,
            "ALTER DEFAULT PRIVILEGES changes the grants of objects other people create later;"
            " grant on our own objects instead",
        )


def _alter_table(ctx: FileContext, n: Any) -> None:
    key = rv(n.relation)
    if not ctx.rel_ours(key):
        not_ours(ctx, f"{_relkind_word(n.objtype)} {fmt(key)}", "alters")
        return
    for cmd in n.cmds or ():
        if cmd.subtype == AlterTableType.AT_DropColumn:
            sub = ("column", *key, cmd.name)
            if not (ctx.droppable(ctx.reg.sub.get(sub)) or ctx.table_droppable(key)):
                not_ours(ctx, f"column {fmt(key)}.{cmd.name}", "drops")
            if getattr(cmd.behavior, "name", "") == "DROP_CASCADE":
                _cascade(ctx, f"column {fmt(key)}.{cmd.name}")
        elif cmd.subtype == AlterTableType.AT_DropConstraint:
            sub = ("constraint", *key, cmd.name)
            if not (ctx.droppable(ctx.reg.sub.get(sub)) or ctx.table_droppable(key)):
                not_ours(ctx, f"constraint {cmd.name} of {fmt(key)}", "drops")


def _drop(ctx: FileContext, n: Any) -> None:  # noqa: C901 - one branch per object kind
    t = n.removeType
    cascade = getattr(n.behavior, "name", "") == "DROP_CASCADE"
    reg = ctx.reg
    for obj in n.objects or ():
        if t in REL_DROP_KINDS:
            key = qual(names(obj))
            what = f"{REL_DROP_KINDS[t]} {fmt(key)}"
            if not ctx.droppable(reg.relation(key)):
                not_ours(ctx, what, "drops")
        elif t in FUNC_DROP_KINDS:
            key = qual(names(obj.objname))
            what = f"function {fmt(key)}"
            args = None if obj.args_unspecified else tuple(type_key(a) for a in obj.objargs or ())
            origin = (
                reg.functions.get(key) if args is None else reg.function_sigs.get((*key, args), reg.functions.get(key))
            )
            if not ctx.droppable(origin):
                not_ours(ctx, what, "drops")
        elif t in (ObjectType.OBJECT_TYPE, ObjectType.OBJECT_DOMAIN):
            key = qual(names(obj.names))
            what = f"type {fmt(key)}"
            if not ctx.droppable(reg.types.get(key)):
                not_ours(ctx, what, "drops")
        elif t in SUB_DROP_KINDS:
            parts = names(obj)
            table = qual(parts[:-1])
            sub = (SUB_DROP_KINDS[t], *table, parts[-1])
            what = f"{SUB_DROP_KINDS[t]} {parts[-1]} on {fmt(table)}"
            if not (ctx.droppable(reg.sub.get(sub)) or ctx.table_droppable(table)):
                not_ours(ctx, what, "drops")
        elif t == ObjectType.OBJECT_SCHEMA:
            name = str_value(obj) or "?"
            what = f"schema {name}"
            if not ctx.droppable(reg.schemas.get(name)):
                not_ours(ctx, what, "drops")
        elif t == ObjectType.OBJECT_EXTENSION:
            what = f"extension {str_value(obj)}"
            not_ours(ctx, what, "drops")
        else:
            what = f"{getattr(t, 'name', t)}".removeprefix("OBJECT_").lower()
            not_ours(ctx, what, "drops")
        if cascade:
            _cascade(ctx, what)


def _rename(ctx: FileContext, n: Any) -> None:
    t = n.renameType
    if n.relation is not None:
        key = rv(n.relation)
        if not ctx.rel_ours(key):
            if t in (ObjectType.OBJECT_TABLE, ObjectType.OBJECT_VIEW, ObjectType.OBJECT_INDEX):
                not_ours(ctx, f"{_relkind_word(t)} {fmt(key)}", "renames")
            else:
                part = getattr(t, "name", str(t)).removeprefix("OBJECT_").lower()
                not_ours(ctx, f"{part} {n.subname or ''} of {fmt(key)}".replace("  ", " "), "renames")
        return
    obj = n.object
    if isinstance(obj, ast.ObjectWithArgs):
        key = qual(names(obj.objname))
        if not ctx.func_ours(key):
            not_ours(ctx, f"function {fmt(key)}", "renames")
    elif t in (ObjectType.OBJECT_TYPE, ObjectType.OBJECT_DOMAIN):
        key = qual(names(obj))
        if not ctx.type_ours(key):
            not_ours(ctx, f"type {fmt(key)}", "renames")
    elif t == ObjectType.OBJECT_SCHEMA:
        name = n.subname or "?"
        if not ctx.droppable(ctx.reg.schemas.get(name)):
            not_ours(ctx, f"schema {name}", "renames")
    else:
        not_ours(ctx, f"{getattr(t, 'name', t)}".removeprefix("OBJECT_").lower(), "renames")


def _alter_object(ctx: FileContext, n: Any) -> None:
    verb = "changes the owner of" if isinstance(n, ast.AlterOwnerStmt) else "moves"
    if getattr(n, "relation", None) is not None:
        key = rv(n.relation)
        if not ctx.rel_ours(key):
            not_ours(ctx, fmt(key), verb)
        return
    obj = n.object
    if isinstance(obj, ast.ObjectWithArgs):
        key = qual(names(obj.objname))
        if not ctx.func_ours(key):
            not_ours(ctx, f"function {fmt(key)}", verb)
    elif isinstance(obj, (list, tuple)):
        key = qual(names(obj))
        if not (ctx.type_ours(key) or ctx.rel_ours(key)):
            not_ours(ctx, fmt(key), verb)
    else:
        not_ours(ctx, str(str_value(obj) or "an object"), verb)


RULE = Rule(
    id=ID,
    level="error",
    message="no DROP, RENAME, ALTER, OR REPLACE, IF NOT EXISTS, CASCADE or data change on"
    " objects the file set did not create; a .down.sql drops only what its up file created",
    rationale="platformdb moves into databases where other applications live (SPEC §1.5): it may only"
    " add, and change or remove what it added itself.",
    order=50,
    statement=check_statement,
)
