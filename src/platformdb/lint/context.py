"""What the rules look at: the registry of what the file set creates, and one file's facts.

The files are read as one ordered set (migration version order). For each file the engine
walks its statements in order; for each statement every rule's statement check runs first
(seeing the registry and the facts as they were *before* the statement), then `collect`
records what the statement creates, drops, grants, revokes or comments. After the last
statement every rule's file check runs on the complete facts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pglast import ast
from pglast.enums.parsenodes import AlterTableType, ConstrType, GrantTargetType, ObjectType, RoleSpecType

from platformdb.lint.sql import (
    PARTITION_CHILD_RE,
    Finding,
    SqlFile,
    Stmt,
    arg_keys_of_create,
    display_path,
    func_options,
    names,
    qual,
    rv,
    str_value,
    truthy,
    type_key,
    walk,
)

TABLE_PRIVILEGES = frozenset({"select", "insert", "update", "delete", "truncate", "references", "trigger"})


@dataclass
class Origin:
    file: int  # index of the creating file in the ordered set
    line: int


@dataclass
class Registry:
    """Objects created by the file set so far, with the file that created them."""

    relations: dict[tuple[str, str], Origin] = field(default_factory=dict)
    functions: dict[tuple[str, str], Origin] = field(default_factory=dict)
    function_sigs: dict[tuple[str, str, tuple[str, ...]], Origin] = field(default_factory=dict)
    volatility: dict[tuple[str, str], str] = field(default_factory=dict)
    types: dict[tuple[str, str], Origin] = field(default_factory=dict)
    schemas: dict[str, Origin] = field(default_factory=dict)
    extensions: dict[str, Origin] = field(default_factory=dict)
    # (kind, schema, table, name) for columns, constraints, indexes, policies, triggers, rules
    sub: dict[tuple[str, str, str, str], Origin] = field(default_factory=dict)
    partition_keys: dict[tuple[str, str], list[str | None]] = field(default_factory=dict)
    partition_parent: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)

    def relation(self, key: tuple[str, str]) -> Origin | None:
        if key in self.relations:
            return self.relations[key]
        m = PARTITION_CHILD_RE.match(key[1])
        if m and (key[0], m["parent"]) in self.partition_keys:
            return self.relations[(key[0], m["parent"])]
        return None


class FileContext:
    """One file being linted: its facts so far, ownership questions and reporting."""

    def __init__(self, files: list[SqlFile], index: int, reg: Registry, up_index: int | None, levels: dict[str, str]):
        self.files = files
        self.index = index
        self.f = files[index]
        self.reg = reg
        self.up_index = up_index  # for a .down.sql: index of its up file (or None)
        self.levels = levels  # rule id -> error | warning
        self.findings: list[Finding] = []
        self.path = display_path(self.f.path)
        self.stmt: Stmt | None = None
        # what this file creates, in order: key -> line
        self.tables: dict[tuple[str, str], int] = {}
        self.partitions: set[tuple[str, str]] = set()
        self.table_columns: dict[tuple[str, str], list[str]] = {}
        self.added_columns: dict[tuple[str, str], list[tuple[str, int]]] = {}
        self.views: dict[tuple[str, str], int] = {}
        self.matviews: dict[tuple[str, str], int] = {}
        self.sequences: dict[tuple[str, str], int] = {}
        self.functions: dict[tuple[str, str], int] = {}
        self.types: dict[tuple[str, str], int] = {}
        self.created_at_index: dict[tuple[str, tuple[str, str]], int] = {}
        self.definer: dict[tuple[str, str], bool] = {}
        self.search_path: dict[tuple[str, str], Any] = {}
        self.invoker: dict[tuple[str, str], bool] = {}
        self.rls: dict[tuple[str, str], bool] = {}
        self.policies: set[tuple[str, str]] = set()
        self.revoked: dict[tuple[str, tuple[str, str]], set[str]] = {}
        self.comments: set[tuple[str, ...]] = set()
        self.guard_names: set[str] | None = None
        self.guard_line = 0
        self.first_create_line: int | None = None
        # for down files
        self.dropped_rel: set[tuple[str, str]] = set()
        self.dropped_func: set[tuple[str, str, tuple[str, ...] | None]] = set()
        self.dropped_type: set[tuple[str, str]] = set()
        self.dropped_schema: set[str] = set()
        self.dropped_sub: set[tuple[str, str, str, str]] = set()

    # -- reporting --
    def report(self, rule: str, message: str) -> None:
        """A finding at the current statement (unless a comment above it allows the rule)."""
        if self.stmt is not None and rule in self.stmt.allow:
            return
        self.findings.append(Finding(self.path, self.stmt.line if self.stmt else 1, rule, message, self._level(rule)))

    def report_at(self, rule: str, message: str, line: int) -> None:
        """A finding at `line` (unless the statement starting there allows the rule)."""
        for s in self.f.stmts:
            if s.line == line and rule in s.allow:
                return
        self.findings.append(Finding(self.path, line, rule, message, self._level(rule)))

    def _level(self, rule: str) -> str:
        return self.levels.get(rule, "error")

    @property
    def line(self) -> int:
        return self.stmt.line if self.stmt else 1

    # -- ownership --
    def _ours_file_limit(self) -> int:
        return self.up_index if (self.f.is_down and self.up_index is not None) else self.index

    def rel_ours(self, key: tuple[str, str]) -> bool:
        o = self.reg.relation(key)
        return o is not None and o.file <= self._ours_file_limit()

    def func_ours(self, key: tuple[str, str]) -> bool:
        o = self.reg.functions.get(key)
        return o is not None and o.file <= self._ours_file_limit()

    def type_ours(self, key: tuple[str, str]) -> bool:
        o = self.reg.types.get(key)
        return o is not None and o.file <= self._ours_file_limit()

    def droppable(self, origin: Origin | None) -> bool:
        """May this file drop an object created at `origin`?"""
        if origin is None:
            return False
        if self.f.is_down:
            return origin.file in (self.index, self.up_index)
        return origin.file <= self.index

    def table_droppable(self, key: tuple[str, str]) -> bool:
        return self.droppable(self.reg.relation(key))

    def function_existed_before(self, key: tuple[str, str]) -> bool:
        o = self.reg.functions.get(key)
        return o is not None and o.file < self.index

    def relation_existed_before(self, key: tuple[str, str]) -> bool:
        o = self.reg.relations.get(key)
        return o is not None and o.file < self.index

    def _origin(self) -> Origin:
        return Origin(self.index, self.line)

    def _created(self, kind: str, key: tuple[str, str], i: int) -> None:
        if self.first_create_line is None and self.stmt is not None:
            self.first_create_line = self.stmt.line
        self.created_at_index[(kind, key)] = i


def covers(kind: str, privs: set[str] | None) -> bool:
    """Does a REVOKE of `privs` (None: ALL) take back every default grant of `kind`?"""
    if privs is None:
        return True
    if kind == "function":
        return "execute" in privs
    if kind == "sequence":
        return {"usage", "select", "update"} <= privs
    return TABLE_PRIVILEGES <= privs


def grantees(n: Any) -> set[str]:
    out = set()
    for g in n.grantees or ():
        if g.roletype == RoleSpecType.ROLESPEC_PUBLIC:
            out.add("public")
        elif g.rolename:
            out.add(g.rolename)
    return out


# ---- collecting the facts ------------------------------------------------------------------


def collect(ctx: FileContext, n: Any, i: int) -> None:  # noqa: C901 - one dispatch over statement kinds
    """Record what statement `n` (the i-th of the file) creates, drops, grants and comments."""
    reg = ctx.reg
    line = ctx.line
    if isinstance(n, ast.CreateStmt):
        if getattr(n.relation, "relpersistence", None) == "t":
            return  # temporary tables vanish with the session
        key = rv(n.relation)
        if n.partbound is not None:
            ctx.partitions.add(key)
            if n.inhRelations:
                reg.partition_parent.setdefault(key, rv(n.inhRelations[0]))
        ctx.tables[key] = line
        ctx._created("relation", key, i)
        reg.relations.setdefault(key, ctx._origin())
        cols: list[str] = []
        for el in n.tableElts or ():
            if isinstance(el, ast.ColumnDef):
                cols.append(str(el.colname))
            elif isinstance(el, ast.Constraint) and el.conname:
                reg.sub.setdefault(("constraint", *key, el.conname), ctx._origin())
        ctx.table_columns[key] = cols
        if n.partspec is not None:
            reg.partition_keys[key] = [p.name for p in n.partspec.partParams or ()]
    elif isinstance(n, ast.CreateTableAsStmt):
        into: Any = n.into
        key = rv(into.rel)
        if n.objtype == ObjectType.OBJECT_MATVIEW:
            ctx.matviews[key] = line
        else:
            ctx.tables[key] = line
        ctx._created("relation", key, i)
        reg.relations.setdefault(key, ctx._origin())
    elif isinstance(n, ast.ViewStmt):
        key = rv(n.view)
        invoker = False
        for o in n.options or ():
            if isinstance(o, ast.DefElem) and o.defname == "security_invoker":
                invoker = truthy(o.arg)
        ctx.views.setdefault(key, line)
        ctx.invoker[key] = invoker
        ctx._created("relation", key, i)
        reg.relations.setdefault(key, ctx._origin())
    elif isinstance(n, ast.CreateSeqStmt):
        key = rv(n.sequence)
        ctx.sequences[key] = line
        ctx._created("relation", key, i)
        reg.relations.setdefault(key, ctx._origin())
    elif isinstance(n, ast.CreateFunctionStmt):
        key = qual(names(n.funcname))
        opts = func_options(n.options)
        ctx.functions.setdefault(key, line)
        ctx.definer[key] = bool(opts.get("definer", False))
        ctx.search_path[key] = opts.get("search_path")
        reg.volatility[key] = (opts.get("volatility") or "volatile").lower()
        ctx._created("function", key, i)
        reg.functions.setdefault(key, ctx._origin())
        sig = (*key, arg_keys_of_create(n))
        if sig not in reg.function_sigs:
            reg.function_sigs[sig] = ctx._origin()
    elif isinstance(n, (ast.CreateEnumStmt, ast.CreateDomainStmt, ast.CreateRangeStmt)):
        key = qual(names(n.typeName if isinstance(n, (ast.CreateEnumStmt, ast.CreateRangeStmt)) else n.domainname))
        ctx.types[key] = line
        ctx._created("type", key, i)
        reg.types.setdefault(key, ctx._origin())
    elif isinstance(n, ast.CompositeTypeStmt):
        key = rv(n.typevar)
        ctx.types[key] = line
        ctx._created("type", key, i)
        reg.types.setdefault(key, ctx._origin())
    elif isinstance(n, ast.CreateSchemaStmt):
        if n.schemaname and n.schemaname not in reg.schemas and not n.if_not_exists:
            reg.schemas[n.schemaname] = ctx._origin()
    elif isinstance(n, ast.CreateExtensionStmt):
        reg.extensions.setdefault(str(n.extname), ctx._origin())
    elif isinstance(n, ast.IndexStmt):
        if n.idxname:
            key = rv(n.relation)
            reg.sub.setdefault(("index", *key, n.idxname), ctx._origin())
            reg.relations.setdefault((key[0], n.idxname), ctx._origin())
    elif isinstance(n, ast.CreatePolicyStmt):
        key = rv(n.table)
        ctx.policies.add(key)
        reg.sub.setdefault(("policy", *key, str(n.policy_name)), ctx._origin())
    elif isinstance(n, ast.CreateTrigStmt):
        reg.sub.setdefault(("trigger", *rv(n.relation), str(n.trigname)), ctx._origin())
    elif isinstance(n, ast.RuleStmt):
        reg.sub.setdefault(("rule", *rv(n.relation), str(n.rulename)), ctx._origin())
    elif isinstance(n, ast.AlterTableStmt):
        _collect_alter_table(ctx, n)
    elif isinstance(n, ast.AlterFunctionStmt):
        func: Any = n.func
        key = qual(names(func.objname))
        opts = func_options(n.actions)
        if "definer" in opts:
            ctx.definer[key] = opts["definer"]
        if "search_path" in opts:
            ctx.search_path[key] = opts["search_path"]
    elif isinstance(n, ast.DropStmt):
        _collect_drop(ctx, n)
    elif isinstance(n, ast.GrantStmt) and not n.is_grant:
        _collect_revoke(ctx, n, i)
    elif isinstance(n, ast.CommentStmt):
        _collect_comment(ctx, n)
    elif isinstance(n, (ast.SelectStmt, ast.DoStmt)):
        _collect_guard(ctx, n)


def _collect_alter_table(ctx: FileContext, n: Any) -> None:
    key = rv(n.relation)
    if not ctx.rel_ours(key):
        return
    for cmd in n.cmds or ():
        st = cmd.subtype
        if st == AlterTableType.AT_EnableRowSecurity:
            ctx.rls[key] = True
        elif st == AlterTableType.AT_DisableRowSecurity:
            ctx.rls[key] = False
        elif st == AlterTableType.AT_SetRelOptions:
            for o in cmd.def_ or ():
                if isinstance(o, ast.DefElem) and o.defname == "security_invoker":
                    ctx.invoker[key] = truthy(o.arg)
        elif st == AlterTableType.AT_ResetRelOptions:
            for o in cmd.def_ or ():
                if isinstance(o, ast.DefElem) and o.defname == "security_invoker":
                    ctx.invoker[key] = False
        elif st == AlterTableType.AT_AddColumn and isinstance(cmd.def_, ast.ColumnDef):
            col = str(cmd.def_.colname)
            ctx.added_columns.setdefault(key, []).append((col, ctx.line))
            ctx.reg.sub.setdefault(("column", *key, col), ctx._origin())
        elif st == AlterTableType.AT_AddConstraint and isinstance(cmd.def_, ast.Constraint):
            if cmd.def_.conname:
                ctx.reg.sub.setdefault(("constraint", *key, cmd.def_.conname), ctx._origin())
        elif st == AlterTableType.AT_DropColumn:
            ctx.dropped_sub.add(("column", *key, cmd.name))
        elif st == AlterTableType.AT_DropConstraint:
            ctx.dropped_sub.add(("constraint", *key, cmd.name))


REL_DROP_KINDS = {
    ObjectType.OBJECT_TABLE: "table",
    ObjectType.OBJECT_VIEW: "view",
    ObjectType.OBJECT_MATVIEW: "materialized view",
    ObjectType.OBJECT_INDEX: "index",
    ObjectType.OBJECT_SEQUENCE: "sequence",
    ObjectType.OBJECT_FOREIGN_TABLE: "foreign table",
}
FUNC_DROP_KINDS = (
    ObjectType.OBJECT_FUNCTION,
    ObjectType.OBJECT_PROCEDURE,
    ObjectType.OBJECT_ROUTINE,
    ObjectType.OBJECT_AGGREGATE,
)
SUB_DROP_KINDS = {
    ObjectType.OBJECT_POLICY: "policy",
    ObjectType.OBJECT_TRIGGER: "trigger",
    ObjectType.OBJECT_RULE: "rule",
}


def _collect_drop(ctx: FileContext, n: Any) -> None:
    t = n.removeType
    for obj in n.objects or ():
        if t in REL_DROP_KINDS:
            ctx.dropped_rel.add(qual(names(obj)))
        elif t in FUNC_DROP_KINDS:
            key = qual(names(obj.objname))
            args = None if obj.args_unspecified else tuple(type_key(a) for a in obj.objargs or ())
            ctx.dropped_func.add((*key, args))
        elif t in (ObjectType.OBJECT_TYPE, ObjectType.OBJECT_DOMAIN):
            ctx.dropped_type.add(qual(names(obj.names)))
        elif t in SUB_DROP_KINDS:
            parts = names(obj)
            ctx.dropped_sub.add((SUB_DROP_KINDS[t], *qual(parts[:-1]), parts[-1]))
        elif t == ObjectType.OBJECT_SCHEMA:
            ctx.dropped_schema.add(str_value(obj) or "?")


def _collect_revoke(ctx: FileContext, n: Any, i: int) -> None:
    who = grantees(n)
    privs = None if not n.privileges else {p.priv_name for p in n.privileges}
    function_kinds = (ObjectType.OBJECT_FUNCTION, ObjectType.OBJECT_ROUTINE, ObjectType.OBJECT_PROCEDURE)
    if n.targtype == GrantTargetType.ACL_TARGET_ALL_IN_SCHEMA:
        schemas = {str_value(o) for o in n.objects or ()}
        kind = "function" if n.objtype in function_kinds else "relation"
        if not covers(kind, privs):
            return
        for (k, key), idx in ctx.created_at_index.items():
            if k == kind and key[0] in schemas and idx < i:
                ctx.revoked.setdefault((kind, key), set()).update(who)
        return
    if n.targtype != GrantTargetType.ACL_TARGET_OBJECT:
        return
    if n.objtype in function_kinds:
        if not covers("function", privs):
            return
        for o in n.objects or ():
            key = qual(names(o.objname))
            if ctx.created_at_index.get(("function", key), i) < i:
                ctx.revoked.setdefault(("function", key), set()).update(who)
    elif n.objtype in (ObjectType.OBJECT_TABLE, ObjectType.OBJECT_SEQUENCE):
        if not covers("relation" if n.objtype == ObjectType.OBJECT_TABLE else "sequence", privs):
            return
        for r in n.objects or ():
            key = rv(r)
            if ctx.created_at_index.get(("relation", key), i) < i:
                ctx.revoked.setdefault(("relation", key), set()).update(who)


def _collect_comment(ctx: FileContext, n: Any) -> None:
    t = n.objtype
    obj = n.object
    if t == ObjectType.OBJECT_COLUMN:
        parts = names(obj)
        ctx.comments.add(("column", *qual(parts[:-1]), parts[-1]))
    elif t in (ObjectType.OBJECT_TABLE, ObjectType.OBJECT_VIEW, ObjectType.OBJECT_MATVIEW):
        ctx.comments.add(("relation", *qual(names(obj))))
    elif t in (ObjectType.OBJECT_FUNCTION, ObjectType.OBJECT_PROCEDURE, ObjectType.OBJECT_ROUTINE):
        ctx.comments.add(("function", *qual(names(obj.objname))))


def _collect_guard(ctx: FileContext, n: Any) -> None:
    import re

    if isinstance(n, ast.DoStmt):
        body = "".join(str_value(a.arg) or "" for a in n.args or () if isinstance(a, ast.DefElem))
        literals = set(re.findall(r"'([A-Za-z0-9_]+)'", body))
        if "already exists" in body and literals and ctx.guard_names is None:
            ctx.guard_names = literals
            ctx.guard_line = ctx.line
        return
    for node in walk(n):
        if isinstance(node, ast.FuncCall) and names(node.funcname)[-1:] == ["platformdb_assert_names_free"]:
            found = {v for v in (str_value(x) for x in walk(node.args)) if v is not None}
            for v in list(found):  # '{a,b}'::text[] spelling
                if v.startswith("{") and v.endswith("}"):
                    found.discard(v)
                    found.update(p.strip().strip('"') for p in v[1:-1].split(","))
            if ctx.guard_names is None:
                ctx.guard_names = set()
                ctx.guard_line = ctx.line
            ctx.guard_names |= found


def is_unique(c: Any) -> bool:
    return c.contype in (ConstrType.CONSTR_PRIMARY, ConstrType.CONSTR_UNIQUE)
