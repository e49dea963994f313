"""`platformdb lint`: the ground rules of the migrations as code (SPEC §1.5, §2, §4).

Every file is parsed by PostgreSQL's own parser (pglast) and checked statement by statement
against the project's rules; each finding is reported as ``file:line rule-id message``.
The files are read as one ordered set (migration version order), so that "additive only"
knows which objects the set itself created: a later file may alter or drop what an earlier
one created, never anything else. A ``.down.sql`` file may drop exactly what its up file
created, and must drop all of it.

squawk (PyPI ``squawk-cli``) runs on the same files for general migration safety; see
`SQUAWK_EXCLUDED`, `SQUAWK_DOWN_EXCLUDED` and `SQUAWK_ADVISORY` for which of its rules are
switched off, which only inform, and why. Every other squawk finding is an error.

A rule can be waived for one statement by a comment right above it that says why::

    -- platformdb-lint: allow additive-only (the app's trigger is ours to replace: …)
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer
from pglast import ast, parse_sql
from pglast.enums.parsenodes import (
    AlterTableType,
    ConstrType,
    GrantTargetType,
    ObjectType,
    RoleSpecType,
    TransactionStmtKind,
    VariableSetKind,
)
from pglast.parser import ParseError
from pglast.stream import RawStream

from platformdb import migrate

# ---- rules ----------------------------------------------------------------------------

RULES: dict[str, str] = {
    "syntax-error": "the file does not parse (PostgreSQL's own parser)",
    "transaction-wrap": "a file is exactly one BEGIN; … COMMIT; with no other transaction control",
    "non-transactional": "no statement that cannot run inside a transaction (CONCURRENTLY, VACUUM, …)",
    "rls-enable": "every created table has row level security enabled in the same file",
    "rls-policy": "every created table has at least one policy in the same file",
    "additive-only": "no DROP, RENAME, ALTER, OR REPLACE, IF NOT EXISTS, CASCADE or data change on"
    " objects the file set did not create; a .down.sql drops only what its up file created",
    "name-guard": "an up file calls public.platformdb_assert_names_free(array[…]) with every public"
    " name it creates before creating anything",
    "definer-search-path": "a SECURITY DEFINER function pins search_path (SET search_path = '')",
    "definer-execute": "a SECURITY DEFINER function has EXECUTE revoked from public, anon,"
    " authenticated and service_role (then granted to who needs it)",
    "revoke-defaults": "every created table, view, sequence and function has Supabase's default"
    " grants revoked from public, anon, authenticated and service_role",
    "view-security-invoker": "views are created with (security_invoker = true); materialized"
    " views (which ignore RLS) are not granted to anon or authenticated",
    "index-immutable": "no non-immutable function (now(), current_date, auth.uid(), …) in an index"
    " predicate or expression",
    "partition-unique-key": "a UNIQUE or PRIMARY KEY on a partitioned table includes the partition key",
    "supabase-compat": "nothing that needs a superuser on Supabase (roles, ALTER SYSTEM, untrusted"
    " languages or extensions, server files)",
    "down-missing": "every versioned migration has its .down.sql",
    "down-incomplete": "a .down.sql drops every object its up file created",
    "comment-missing": "(warning) every created table, column, view and function has a COMMENT ON",
}
WARNING_RULES = {"comment-missing"}

# squawk: rules switched off because they contradict how the files are meant to be written
SQUAWK_EXCLUDED: dict[str, str] = {
    "require-concurrent-index-creation": "CONCURRENTLY cannot run inside the file's BEGIN … COMMIT"
    " (our own non-transactional rule refuses it); indexes are built with their new tables",
    "require-concurrent-index-deletion": "same: DROP INDEX CONCURRENTLY cannot run in a transaction",
    "prefer-robust-stmts": "IF [NOT] EXISTS would hide a name collision the additive-only guard must"
    " surface; a file is all-or-nothing, so a failed run leaves nothing half-applied",
    "prefer-bigint-over-int": "ids are uuid; integer columns are small bounded counters and"
    " priorities with CHECK constraints",
    "prefer-bigint-over-smallint": "same as prefer-bigint-over-int",
}
# squawk: additionally off for .down.sql files, whose job is to drop what the up file created
# (our additive-only and down-incomplete rules check that precisely)
SQUAWK_DOWN_EXCLUDED: tuple[str, ...] = (
    "ban-drop-table",
    "ban-drop-view",
    "ban-drop-function",
    "ban-drop-schema",
    "ban-drop-sequence",
    "ban-drop-type",
    "ban-drop-domain",
    "ban-drop-column",
    "ban-drop-constraint",
    "ban-drop-not-null",
    "ban-drop-extension",
    "renaming-table",
    "renaming-column",
    "renaming-object",
)
# squawk: shown, but do not fail the command
SQUAWK_ADVISORY: dict[str, str] = {
    "require-lock-timeout": "a migration locks only objects it creates (additive only); the"
    " deployer sets lock_timeout for the session (the Supabase CLI and `platformdb migrate` run"
    " each file in one transaction)",
    "require-statement-timeout": "same as require-lock-timeout",
}
SQUAWK_PG_VERSION = "15.0"

REQUIRED_REVOKE = frozenset({"public", "anon", "authenticated", "service_role"})
TABLE_PRIVILEGES = frozenset({"select", "insert", "update", "delete", "truncate", "references", "trigger"})
ALLOWED_EXTENSIONS = frozenset(
    {
        # SPEC §1.4 names these two; the rest are PostgreSQL's trusted extensions, which a
        # database owner may create without being a superuser
        "postgis",
        "pgcrypto",
        "btree_gin",
        "btree_gist",
        "citext",
        "cube",
        "fuzzystrmatch",
        "hstore",
        "intarray",
        "isn",
        "lo",
        "ltree",
        "pg_trgm",
        "seg",
        "tablefunc",
        "tcn",
        "tsm_system_rows",
        "tsm_system_time",
        "unaccent",
        "uuid-ossp",
        "plpgsql",
    }
)
ALLOWED_LANGUAGES = frozenset({"sql", "plpgsql"})

# Functions of pg_catalog whose every overload is STABLE or VOLATILE in PostgreSQL 15
# (tests/unit/test_lint.py checks this list against the catalog), plus the Supabase auth
# helpers and uuid-ossp generators. Names with both immutable and non-immutable overloads
# (date_trunc, age, …) depend on argument types and are left to PostgreSQL.
NON_IMMUTABLE_FUNCTIONS = frozenset(
    {
        "now",
        "clock_timestamp",
        "statement_timestamp",
        "transaction_timestamp",
        "timeofday",
        "random",
        "setseed",
        "gen_random_uuid",
        "current_setting",
        "set_config",
        "nextval",
        "currval",
        "lastval",
        "setval",
        "current_database",
        "current_query",
        "current_schema",
        "current_schemas",
        "current_user",
        "session_user",
        "version",
        "concat",
        "concat_ws",
        "format",
        "to_char",
        "to_date",
        "to_number",
        "to_json",
        "to_jsonb",
        "make_timestamptz",
        "obj_description",
        "col_description",
        "pg_backend_pid",
        "pg_postmaster_start_time",
        "txid_current",
        "pg_current_xact_id",
        "inet_client_addr",
        "inet_client_port",
    }
)
NON_IMMUTABLE_QUALIFIED = frozenset(
    {
        "auth.uid",
        "auth.role",
        "auth.jwt",
        "extensions.uuid_generate_v1",
        "extensions.uuid_generate_v4",
        "public.uuid_generate_v1",
        "public.uuid_generate_v4",
    }
)
NON_IMMUTABLE_UNQUALIFIED_EXTRA = frozenset({"uuid_generate_v1", "uuid_generate_v4"})
TIME_LITERALS = frozenset({"now", "today", "tomorrow", "yesterday"})
TIME_TYPES = frozenset({"date", "timestamp", "timestamptz", "time", "timetz"})

ALLOW_RE = re.compile(r"platformdb-lint:\s*allow\s+([a-z0-9\-]+(?:\s*,\s*[a-z0-9\-]+)*)")
PARTITION_CHILD_RE = re.compile(r"^(?P<parent>.+)_(?:default|p\d{6})$")


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    rule: str
    message: str
    severity: str = "error"  # error | warning | advisory

    def format(self) -> str:
        note = "" if self.severity == "error" else f"({self.severity}) "
        return f"{self.path}:{self.line} {self.rule} {note}{self.message}"


# ---- parsed files -------------------------------------------------------------------


@dataclass
class Stmt:
    node: Any
    line: int
    allow: frozenset[str]


@dataclass
class SqlFile:
    path: Path
    text: str
    stmts: list[Stmt] = field(default_factory=list)
    parse_error: Finding | None = None
    last_line: int = 1

    @property
    def is_down(self) -> bool:
        return self.path.name.endswith(".down.sql")

    @property
    def stem(self) -> str:
        name = self.path.name
        return name[: -len(".down.sql")] if self.is_down else name[: -len(".sql")]

    @property
    def version(self) -> str | None:
        m = re.match(r"^(\d{14})_", self.path.name)
        return m.group(1) if m else None

    @property
    def is_migration(self) -> bool:
        """A versioned file the runner would apply (`<14 digits>_<name>.sql`)."""
        return not self.is_down and migrate.FILE_RE.match(self.path.name) is not None

    def sort_key(self) -> tuple[str, str, int]:
        return (self.version or "99999999999999", self.stem, 1 if self.is_down else 0)


def _line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, max(0, offset)) + 1


def display_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def load_file(path: Path) -> SqlFile:
    text = path.read_text()
    f = SqlFile(path, text, last_line=max(1, len(text.rstrip().splitlines())))
    try:
        raw = parse_sql(text)
    except ParseError as exc:
        location = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], int) else 0
        f.parse_error = Finding(display_path(path), _line_of(text, location), "syntax-error", str(exc.args[0]))
        return f
    prev_end = 0
    for r in raw:
        loc = r.stmt_location or 0
        leading = text[prev_end:loc]
        allow: set[str] = set()
        for m in ALLOW_RE.finditer(leading):
            allow.update(p.strip() for p in m.group(1).split(","))
        f.stmts.append(Stmt(r.stmt, _line_of(text, loc), frozenset(allow)))
        prev_end = loc + (r.stmt_len or (len(text) - loc))
    return f


# ---- small AST helpers ----------------------------------------------------------------


def walk(node: Any) -> Iterator[Any]:
    """Every AST node under `node` (itself included)."""
    if isinstance(node, ast.Node):
        yield node
        slots: Iterable[str] = getattr(type(node), "__slots__", ())
        for attr in slots:
            yield from walk(getattr(node, attr, None))
    elif isinstance(node, (list, tuple)):
        for item in node:
            yield from walk(item)


def _names(items: Iterable[Any] | None) -> list[str]:
    return [str(i.sval) for i in items or () if isinstance(i, ast.String)]


def _qual(parts: Sequence[str], default_schema: str = "public") -> tuple[str, str]:
    if len(parts) >= 2:
        return parts[-2], parts[-1]
    return default_schema, parts[-1]


def _rv(rv: Any) -> tuple[str, str]:
    return (rv.schemaname or "public", rv.relname)


def _fmt(key: tuple[str, str]) -> str:
    return f"{key[0]}.{key[1]}"


def _str_value(node: Any) -> str | None:
    if isinstance(node, ast.String):
        return node.sval
    if isinstance(node, ast.A_Const) and isinstance(node.val, ast.String):
        return node.val.sval
    return None


def _truthy(arg: Any) -> bool:
    if arg is None:
        return True  # `with (security_invoker)` means true
    if isinstance(arg, ast.Boolean):
        return bool(arg.boolval)
    if isinstance(arg, ast.Integer):
        return arg.ival != 0
    s = _str_value(arg)
    return s is not None and s.lower() in ("true", "on", "1", "yes", "t", "y")


_TYPE_ALIASES = {
    "int": "int4",
    "integer": "int4",
    "bigint": "int8",
    "smallint": "int2",
    "boolean": "bool",
    "real": "float4",
    "decimal": "numeric",
}


def type_key(tn: Any) -> str:
    """A canonical spelling of a TypeName for comparing signatures (no typmods)."""
    names = _names(tn.names)
    base = names[-1].lower() if names else "?"
    base = _TYPE_ALIASES.get(base, base)
    return base + "[]" * len(tn.arrayBounds or ())


def type_sql(tn: Any) -> str:
    """A TypeName as SQL without typmods (for to_regprocedure)."""
    clone = ast.TypeName(names=tn.names, setof=False, pct_type=tn.pct_type, typemod=-1, arrayBounds=tn.arrayBounds)
    return str(RawStream()(clone))


def input_params(stmt: Any) -> list[Any]:
    """The parameters of a CREATE FUNCTION that make up its signature (not OUT/TABLE)."""
    out = []
    for p in stmt.parameters or ():
        mode = getattr(p.mode, "value", p.mode)
        if mode in ("o", "t"):
            continue
        out.append(p)
    return out


def function_signature(stmt: Any) -> str:
    schema, name = _qual(_names(stmt.funcname))
    args = ", ".join(type_sql(p.argType) for p in input_params(stmt))
    return f"{schema}.{name}({args})"


def _arg_keys_of_create(stmt: Any) -> tuple[str, ...]:
    return tuple(type_key(p.argType) for p in input_params(stmt))


def _func_options(options: Iterable[Any] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for o in options or ():
        if not isinstance(o, ast.DefElem):
            continue
        if o.defname == "security":
            out["definer"] = _truthy(o.arg)
        elif o.defname == "volatility":
            out["volatility"] = _str_value(o.arg)
        elif o.defname == "language":
            out["language"] = (_str_value(o.arg) or "").lower()
        elif o.defname == "set" and isinstance(o.arg, ast.VariableSetStmt):
            if (o.arg.name or "").lower() == "search_path":
                out["search_path"] = o.arg
        elif o.defname == "reset" or (
            o.defname == "set"
            and isinstance(o.arg, ast.VariableSetStmt)
            and o.arg.kind in (VariableSetKind.VAR_RESET, VariableSetKind.VAR_RESET_ALL)
        ):
            out["search_path"] = None
    return out


# ---- the registry of what the file set creates ------------------------------------------


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


# ---- the linter -------------------------------------------------------------------------


class _FileLint:
    """Checks one file against the registry built from the files before it."""

    def __init__(self, files: list[SqlFile], index: int, reg: Registry, up_index: int | None):
        self.files = files
        self.index = index
        self.f = files[index]
        self.reg = reg
        self.up_index = up_index  # for a .down.sql: index of its up file (or None)
        self.findings: list[Finding] = []
        self.path = display_path(self.f.path)
        self.stmt: Stmt | None = None
        # what this file creates, in order: kind -> {key: line}
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
    def report(self, rule: str, message: str, line: int | None = None) -> None:
        if self.stmt is not None and rule in self.stmt.allow and line is None:
            return
        if line is None:
            line = self.stmt.line if self.stmt else 1
        severity = "warning" if rule in WARNING_RULES else "error"
        self.findings.append(Finding(self.path, line, rule, message, severity))

    def report_at(self, rule: str, message: str, line: int) -> None:
        for s in self.f.stmts:
            if s.line == line and rule in s.allow:
                return
        self.findings.append(Finding(self.path, line, rule, message, "warning" if rule in WARNING_RULES else "error"))

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

    def not_ours(self, what: str, action: str) -> None:
        if self.f.is_down:
            self.report(
                "additive-only",
                f"{action} {what}, which its up file did not create; a .down.sql undoes exactly its own up file",
            )
        else:
            self.report(
                "additive-only",
                f"{action} {what}, which no migration of this set created (additive only:"
                " never drop, rename or alter someone else's object)",
            )

    # -- registering creations --
    def _created(self, kind: str, key: tuple[str, str], i: int) -> None:
        if self.first_create_line is None and self.stmt is not None:
            self.first_create_line = self.stmt.line
        self.created_at_index[(kind, key)] = i

    def _origin(self) -> Origin:
        return Origin(self.index, self.stmt.line if self.stmt else 1)

    # -- the walk --
    def run(self) -> list[Finding]:
        f = self.f
        self.check_transaction_wrap()
        for i, s in enumerate(f.stmts):
            self.stmt = s
            self.visit(s.node, i)
        self.stmt = None
        self.check_file_rules()
        return self.findings

    def check_transaction_wrap(self) -> None:
        stmts = self.f.stmts
        if not stmts:
            self.report_at("transaction-wrap", "empty file: expected BEGIN; … COMMIT;", 1)
            return

        def kind(s: Stmt) -> str | None:
            if not isinstance(s.node, ast.TransactionStmt):
                return None
            k = s.node.kind
            if k in (TransactionStmtKind.TRANS_STMT_BEGIN, TransactionStmtKind.TRANS_STMT_START):
                return "begin"
            if k == TransactionStmtKind.TRANS_STMT_COMMIT:
                return "commit"
            if k in (
                TransactionStmtKind.TRANS_STMT_SAVEPOINT,
                TransactionStmtKind.TRANS_STMT_RELEASE,
                TransactionStmtKind.TRANS_STMT_ROLLBACK_TO,
            ):
                return None  # savepoints are fine inside the transaction
            return "other"

        if kind(stmts[0]) != "begin":
            self.report_at(
                "transaction-wrap",
                "the file must start with BEGIN; (one transaction per file)",
                stmts[0].line,
            )
        if kind(stmts[-1]) != "commit" or len(stmts) == 1:
            self.report_at(
                "transaction-wrap",
                "the file must end with COMMIT; (without it the Supabase CLI leaves the"
                " transaction open and the runner refuses the file)",
                self.f.last_line,
            )
        for s in stmts[1:-1]:
            k = kind(s)
            if k is not None:
                self.report_at(
                    "transaction-wrap",
                    "transaction control inside BEGIN … COMMIT (a second BEGIN, COMMIT or"
                    " ROLLBACK splits the file into parts that apply separately)",
                    s.line,
                )

    def visit(self, n: Any, i: int) -> None:  # noqa: C901 - one dispatch over statement kinds
        if isinstance(n, ast.CreateStmt):
            self.on_create_table(n, i)
        elif isinstance(n, ast.CreateTableAsStmt):
            into: Any = n.into
            key = _rv(into.rel)
            self._check_if_not_exists(bool(n.if_not_exists), f"relation {_fmt(key)}")
            if n.objtype == ObjectType.OBJECT_MATVIEW:
                self.matviews[key] = self.stmt.line if self.stmt else 1
                self._created("relation", key, i)
            else:
                self.tables[key] = self.stmt.line if self.stmt else 1
                self._created("relation", key, i)
            self.reg.relations.setdefault(key, self._origin())
        elif isinstance(n, ast.ViewStmt):
            self.on_view(n, i)
        elif isinstance(n, ast.CreateSeqStmt):
            key = _rv(n.sequence)
            self._check_if_not_exists(bool(n.if_not_exists), f"sequence {_fmt(key)}")
            self.sequences[key] = self.stmt.line if self.stmt else 1
            self._created("relation", key, i)
            self.reg.relations.setdefault(key, self._origin())
        elif isinstance(n, ast.CreateFunctionStmt):
            self.on_function(n, i)
        elif isinstance(n, (ast.CreateEnumStmt, ast.CreateDomainStmt, ast.CreateRangeStmt)):
            names = _names(n.typeName if isinstance(n, (ast.CreateEnumStmt, ast.CreateRangeStmt)) else n.domainname)
            key = _qual(names)
            self.types[key] = self.stmt.line if self.stmt else 1
            self._created("type", key, i)
            self.reg.types.setdefault(key, self._origin())
        elif isinstance(n, ast.CompositeTypeStmt):
            key = _rv(n.typevar)
            self.types[key] = self.stmt.line if self.stmt else 1
            self._created("type", key, i)
            self.reg.types.setdefault(key, self._origin())
        elif isinstance(n, ast.CreateSchemaStmt):
            if n.schemaname and n.schemaname not in self.reg.schemas:
                if not n.if_not_exists:
                    self.reg.schemas[n.schemaname] = self._origin()
        elif isinstance(n, ast.CreateExtensionStmt):
            if n.extname not in ALLOWED_EXTENSIONS:
                self.report(
                    "supabase-compat",
                    f"extension {n.extname} is not one a non-superuser may create (allowed:"
                    " postgis, pgcrypto and PostgreSQL's trusted extensions)",
                )
            self.reg.extensions.setdefault(str(n.extname), self._origin())
        elif isinstance(n, ast.IndexStmt):
            self.on_index(n, i)
        elif isinstance(n, ast.CreatePolicyStmt):
            key = _rv(n.table)
            if not self.rel_ours(key):
                self.not_ours(f"table {_fmt(key)}", "creates a policy on")
            self.policies.add(key)
            self.reg.sub.setdefault(("policy", *key, str(n.policy_name)), self._origin())
        elif isinstance(n, ast.AlterPolicyStmt):
            key = _rv(n.table)
            if not self.rel_ours(key):
                self.not_ours(f"policy {n.policy_name} on {_fmt(key)}", "alters")
        elif isinstance(n, ast.CreateTrigStmt):
            key = _rv(n.relation)
            if not self.rel_ours(key):
                self.not_ours(f"table {_fmt(key)}", "creates a trigger on")
            self.reg.sub.setdefault(("trigger", *key, str(n.trigname)), self._origin())
        elif isinstance(n, ast.RuleStmt):
            key = _rv(n.relation)
            if not self.rel_ours(key):
                self.not_ours(f"table {_fmt(key)}", "creates a rule on")
            self.reg.sub.setdefault(("rule", *key, str(n.rulename)), self._origin())
        elif isinstance(n, ast.AlterTableStmt):
            self.on_alter_table(n, i)
        elif isinstance(n, ast.AlterFunctionStmt):
            func: Any = n.func
            key = _qual(_names(func.objname))
            if not self.func_ours(key):
                self.not_ours(f"function {_fmt(key)}", "alters")
            opts = _func_options(n.actions)
            if "definer" in opts:
                self.definer[key] = opts["definer"]
            if "search_path" in opts:
                self.search_path[key] = opts["search_path"]
        elif isinstance(n, ast.DropStmt):
            self.on_drop(n)
        elif isinstance(n, ast.RenameStmt):
            self.on_rename(n)
        elif isinstance(n, (ast.AlterOwnerStmt, ast.AlterObjectSchemaStmt)):
            self.on_alter_object(n)
        elif isinstance(n, ast.AlterSeqStmt):
            key = _rv(n.sequence)
            if not self.rel_ours(key):
                self.not_ours(f"sequence {_fmt(key)}", "alters")
        elif isinstance(n, (ast.AlterEnumStmt, ast.AlterDomainStmt)):
            key = _qual(_names(n.typeName))
            if not self.type_ours(key):
                self.not_ours(f"type {_fmt(key)}", "alters")
        elif isinstance(n, ast.AlterExtensionStmt):
            self.not_ours(f"extension {n.extname}", "alters")
        elif isinstance(n, (ast.UpdateStmt, ast.DeleteStmt, ast.MergeStmt)):
            key = _rv(n.relation)
            if not self.rel_ours(key):
                verb = {"UpdateStmt": "updates rows of", "DeleteStmt": "deletes rows of"}.get(
                    type(n).__name__, "merges into"
                )
                self.not_ours(f"table {_fmt(key)}", verb)
        elif isinstance(n, ast.TruncateStmt):
            for rv in n.relations or ():
                if not self.rel_ours(_rv(rv)):
                    self.not_ours(f"table {_fmt(_rv(rv))}", "truncates")
        elif isinstance(n, ast.GrantStmt):
            self.on_grant(n, i)
        elif isinstance(n, ast.AlterDefaultPrivilegesStmt):
            self.report(
                "additive-only",
                "ALTER DEFAULT PRIVILEGES changes the grants of objects other people create later;"
                " grant on our own objects instead",
            )
        elif isinstance(n, ast.CommentStmt):
            self.on_comment(n)
        elif isinstance(n, (ast.SelectStmt, ast.DoStmt)):
            self.on_guard(n)
        self.check_superuser(n)
        self.check_non_transactional(n)

    # -- statement handlers --
    def _check_if_not_exists(self, flag: bool, what: str) -> None:
        if flag:
            self.report(
                "additive-only",
                f"IF NOT EXISTS on {what} would silently keep someone else's object of that"
                " name and go on altering it; create it plainly (the name guard names collisions)",
            )

    def on_create_table(self, n: Any, i: int) -> None:
        key = _rv(n.relation)
        if n.relation.relpersistence == "t":
            return  # temporary tables vanish with the session
        self._check_if_not_exists(n.if_not_exists, f"table {_fmt(key)}")
        line = self.stmt.line if self.stmt else 1
        for parent in n.inhRelations or ():
            pkey = _rv(parent)
            if not self.rel_ours(pkey):
                self.not_ours(
                    f"table {_fmt(pkey)}",
                    "attaches a partition to" if n.partbound else "inherits from",
                )
        if n.partbound is not None:
            self.partitions.add(key)
            if n.inhRelations:
                self.reg.partition_parent.setdefault(key, _rv(n.inhRelations[0]))
        self.tables[key] = line
        self._created("relation", key, i)
        self.reg.relations.setdefault(key, self._origin())
        cols: list[str] = []
        uniques: list[tuple[str, list[str]]] = []
        for el in n.tableElts or ():
            if isinstance(el, ast.ColumnDef):
                cols.append(str(el.colname))
                for c in el.constraints or ():
                    if c.contype in (ConstrType.CONSTR_PRIMARY, ConstrType.CONSTR_UNIQUE):
                        uniques.append((self._contype(c), [str(el.colname)]))
            elif isinstance(el, ast.Constraint):
                if el.contype in (ConstrType.CONSTR_PRIMARY, ConstrType.CONSTR_UNIQUE):
                    uniques.append((self._contype(el), _names(el.keys)))
                if el.conname:
                    self.reg.sub.setdefault(("constraint", *key, el.conname), self._origin())
        self.table_columns[key] = cols
        if n.partspec is not None:
            pcols: list[str | None] = [p.name for p in n.partspec.partParams or ()]
            self.reg.partition_keys[key] = pcols
            for what, keys in uniques:
                self._check_partition_key(key, what, keys)

    @staticmethod
    def _contype(c: Any) -> str:
        return "PRIMARY KEY" if c.contype == ConstrType.CONSTR_PRIMARY else "UNIQUE"

    def _check_partition_key(self, table: tuple[str, str], what: str, keys: list[str]) -> None:
        pcols = self.reg.partition_keys.get(table)
        if pcols is None:
            return
        if any(p is None for p in pcols):
            self.report(
                "partition-unique-key",
                f"{what} on {_fmt(table)}, partitioned by an expression: PostgreSQL cannot"
                " enforce it; keep uniqueness in a non-partitioned side table",
            )
            return
        missing = [str(p) for p in pcols if p not in keys]
        if missing:
            self.report(
                "partition-unique-key",
                f"{what} ({', '.join(keys)}) on partitioned {_fmt(table)} does not include the"
                f" partition key ({', '.join(missing)}): PostgreSQL refuses it; add the key or"
                " enforce global uniqueness in a non-partitioned table",
            )

    def on_view(self, n: Any, i: int) -> None:
        key = _rv(n.view)
        if n.replace and self.reg.relation(key) is None:
            self.report(
                "additive-only",
                f"CREATE OR REPLACE VIEW {_fmt(key)}, which no earlier migration created, would"
                " replace someone else's view; use CREATE VIEW",
            )
        invoker = False
        for o in n.options or ():
            if isinstance(o, ast.DefElem) and o.defname == "security_invoker":
                invoker = _truthy(o.arg)
        self.views.setdefault(key, self.stmt.line if self.stmt else 1)
        self.invoker[key] = invoker
        self._created("relation", key, i)
        self.reg.relations.setdefault(key, self._origin())

    def on_function(self, n: Any, i: int) -> None:
        key = _qual(_names(n.funcname))
        if n.replace and key not in self.reg.functions:
            self.report(
                "additive-only",
                f"CREATE OR REPLACE FUNCTION {_fmt(key)}, which no earlier migration created,"
                " would replace someone else's function; use CREATE FUNCTION",
            )
        opts = _func_options(n.options)
        lang = opts.get("language", "sql")
        if lang not in ALLOWED_LANGUAGES:
            self.report(
                "supabase-compat",
                f"function {_fmt(key)} is LANGUAGE {lang}; only sql and plpgsql run without a superuser",
            )
        line = self.stmt.line if self.stmt else 1
        self.functions.setdefault(key, line)
        self.definer[key] = bool(opts.get("definer", False))
        self.search_path[key] = opts.get("search_path")
        self.reg.volatility[key] = (opts.get("volatility") or "volatile").lower()
        self._created("function", key, i)
        self.reg.functions.setdefault(key, self._origin())
        sig = (*key, _arg_keys_of_create(n))
        if sig not in self.reg.function_sigs:
            self.reg.function_sigs[sig] = self._origin()

    def on_index(self, n: Any, i: int) -> None:
        key = _rv(n.relation)
        name = n.idxname or "(unnamed)"
        if not self.rel_ours(key):
            self.not_ours(f"table {_fmt(key)}", f"creates index {name} on")
        self._check_if_not_exists(n.if_not_exists, f"index {name}")
        for e in n.indexParams or ():
            if e.expr is not None:
                self._check_immutable(e.expr, f"index {name} expression")
        if n.whereClause is not None:
            self._check_immutable(n.whereClause, f"index {name} predicate")
        if n.unique and key in self.reg.partition_keys:
            cols = [e.name for e in n.indexParams or () if e.name]
            self._check_partition_key(key, f"UNIQUE index {name}", cols)
        if n.idxname:
            self.reg.sub.setdefault(("index", *key, n.idxname), self._origin())
            self.reg.relations.setdefault((key[0], n.idxname), self._origin())

    def _check_immutable(self, expr: Any, where: str) -> None:
        for node in walk(expr):
            bad: str | None = None
            if isinstance(node, ast.FuncCall):
                parts = _names(node.funcname)
                name = parts[-1].lower() if parts else ""
                qualified = ".".join(parts).lower()
                created = self.reg.volatility.get(_qual(parts))
                if len(parts) == 1 or parts[0] == "pg_catalog":
                    if name in NON_IMMUTABLE_FUNCTIONS or name in NON_IMMUTABLE_UNQUALIFIED_EXTRA:
                        bad = f"{name}()"
                if qualified in NON_IMMUTABLE_QUALIFIED:
                    bad = f"{qualified}()"
                if created is not None and created != "immutable":
                    bad = f"{_fmt(_qual(parts))}() ({created})"
            elif isinstance(node, ast.SQLValueFunction):
                op = getattr(node.op, "name", str(node.op))
                bad = op.removeprefix("SVFOP_").lower()
            elif isinstance(node, ast.TypeCast):
                lit = _str_value(node.arg)
                if lit is not None and lit.strip().lower() in TIME_LITERALS and type_key(node.typeName) in TIME_TYPES:
                    bad = f"'{lit}'::{type_key(node.typeName)} (frozen at creation time)"
            if bad:
                self.report(
                    "index-immutable",
                    f"{where} uses {bad}, which is not IMMUTABLE: PostgreSQL refuses it (or"
                    " freezes its value when the index is built); compare at query time instead",
                )

    def on_alter_table(self, n: Any, i: int) -> None:
        key = _rv(n.relation)
        if not self.rel_ours(key):
            self.not_ours(f"{self._relkind_word(n.objtype)} {_fmt(key)}", "alters")
            return
        for cmd in n.cmds or ():
            st = cmd.subtype
            if st == AlterTableType.AT_EnableRowSecurity:
                self.rls[key] = True
            elif st == AlterTableType.AT_DisableRowSecurity:
                self.rls[key] = False
                self.report("rls-enable", f"disables row level security on {_fmt(key)}")
            elif st == AlterTableType.AT_SetRelOptions:
                for o in cmd.def_ or ():
                    if isinstance(o, ast.DefElem) and o.defname == "security_invoker":
                        self.invoker[key] = _truthy(o.arg)
            elif st == AlterTableType.AT_ResetRelOptions:
                for o in cmd.def_ or ():
                    if isinstance(o, ast.DefElem) and o.defname == "security_invoker":
                        self.invoker[key] = False
            elif st == AlterTableType.AT_AddColumn and isinstance(cmd.def_, ast.ColumnDef):
                col = str(cmd.def_.colname)
                self.added_columns.setdefault(key, []).append((col, self.stmt.line if self.stmt else 1))
                self.reg.sub.setdefault(("column", *key, col), self._origin())
            elif st == AlterTableType.AT_AddConstraint and isinstance(cmd.def_, ast.Constraint):
                c = cmd.def_
                if c.conname:
                    self.reg.sub.setdefault(("constraint", *key, c.conname), self._origin())
                if c.contype in (ConstrType.CONSTR_PRIMARY, ConstrType.CONSTR_UNIQUE):
                    self._check_partition_key(key, self._contype(c), _names(c.keys))
            elif st == AlterTableType.AT_DropColumn:
                sub = ("column", *key, cmd.name)
                if not (self.droppable(self.reg.sub.get(sub)) or self._table_droppable(key)):
                    self.not_ours(f"column {_fmt(key)}.{cmd.name}", "drops")
                self.dropped_sub.add(sub)
                if getattr(cmd.behavior, "name", "") == "DROP_CASCADE":
                    self._cascade(f"column {_fmt(key)}.{cmd.name}")
            elif st == AlterTableType.AT_DropConstraint:
                sub = ("constraint", *key, cmd.name)
                if not (self.droppable(self.reg.sub.get(sub)) or self._table_droppable(key)):
                    self.not_ours(f"constraint {cmd.name} of {_fmt(key)}", "drops")
                self.dropped_sub.add(sub)

    def _table_droppable(self, key: tuple[str, str]) -> bool:
        return self.droppable(self.reg.relation(key))

    @staticmethod
    def _relkind_word(objtype: Any) -> str:
        return {
            ObjectType.OBJECT_VIEW: "view",
            ObjectType.OBJECT_MATVIEW: "materialized view",
            ObjectType.OBJECT_INDEX: "index",
            ObjectType.OBJECT_SEQUENCE: "sequence",
        }.get(objtype, "table")

    def _cascade(self, what: str) -> None:
        self.report(
            "additive-only",
            f"drops {what} with CASCADE, which would also remove whatever someone else built on"
            " it; drop dependents explicitly",
        )

    def on_drop(self, n: Any) -> None:  # noqa: C901 - one branch per object kind
        t = n.removeType
        cascade = getattr(n.behavior, "name", "") == "DROP_CASCADE"
        rel_kinds = {
            ObjectType.OBJECT_TABLE: "table",
            ObjectType.OBJECT_VIEW: "view",
            ObjectType.OBJECT_MATVIEW: "materialized view",
            ObjectType.OBJECT_INDEX: "index",
            ObjectType.OBJECT_SEQUENCE: "sequence",
            ObjectType.OBJECT_FOREIGN_TABLE: "foreign table",
        }
        for obj in n.objects or ():
            if t in rel_kinds:
                key = _qual(_names(obj))
                what = f"{rel_kinds[t]} {_fmt(key)}"
                if not self.droppable(self.reg.relation(key)):
                    self.not_ours(what, "drops")
                self.dropped_rel.add(key)
            elif t in (
                ObjectType.OBJECT_FUNCTION,
                ObjectType.OBJECT_PROCEDURE,
                ObjectType.OBJECT_ROUTINE,
                ObjectType.OBJECT_AGGREGATE,
            ):
                key = _qual(_names(obj.objname))
                what = f"function {_fmt(key)}"
                args: tuple[str, ...] | None = None
                if not obj.args_unspecified:
                    args = tuple(type_key(a) for a in obj.objargs or ())
                origin = (
                    self.reg.functions.get(key)
                    if args is None
                    else self.reg.function_sigs.get((*key, args), self.reg.functions.get(key))
                )
                if not self.droppable(origin):
                    self.not_ours(what, "drops")
                self.dropped_func.add((*key, args))
            elif t in (ObjectType.OBJECT_TYPE, ObjectType.OBJECT_DOMAIN):
                key = _qual(_names(obj.names))
                what = f"type {_fmt(key)}"
                if not self.droppable(self.reg.types.get(key)):
                    self.not_ours(what, "drops")
                self.dropped_type.add(key)
            elif t in (ObjectType.OBJECT_POLICY, ObjectType.OBJECT_TRIGGER, ObjectType.OBJECT_RULE):
                parts = _names(obj)
                table = _qual(parts[:-1])
                kind = {ObjectType.OBJECT_POLICY: "policy", ObjectType.OBJECT_TRIGGER: "trigger"}.get(t, "rule")
                sub = (kind, *table, parts[-1])
                what = f"{kind} {parts[-1]} on {_fmt(table)}"
                if not (self.droppable(self.reg.sub.get(sub)) or self._table_droppable(table)):
                    self.not_ours(what, "drops")
                self.dropped_sub.add(sub)
            elif t == ObjectType.OBJECT_SCHEMA:
                name = _str_value(obj) or "?"
                what = f"schema {name}"
                if not self.droppable(self.reg.schemas.get(name)):
                    self.not_ours(what, "drops")
                self.dropped_schema.add(name)
            elif t == ObjectType.OBJECT_EXTENSION:
                what = f"extension {_str_value(obj)}"
                self.not_ours(what, "drops")
            else:
                what = f"{getattr(t, 'name', t)}".removeprefix("OBJECT_").lower()
                self.not_ours(what, "drops")
            if cascade:
                self._cascade(what)

    def on_rename(self, n: Any) -> None:
        t = n.renameType
        if n.relation is not None:
            key = _rv(n.relation)
            if not self.rel_ours(key):
                if t in (ObjectType.OBJECT_TABLE, ObjectType.OBJECT_VIEW, ObjectType.OBJECT_INDEX):
                    self.not_ours(f"{self._relkind_word(t)} {_fmt(key)}", "renames")
                else:
                    part = getattr(t, "name", str(t)).removeprefix("OBJECT_").lower()
                    self.not_ours(f"{part} {n.subname or ''} of {_fmt(key)}".replace("  ", " "), "renames")
            return
        obj = n.object
        if isinstance(obj, ast.ObjectWithArgs):
            key = _qual(_names(obj.objname))
            if not self.func_ours(key):
                self.not_ours(f"function {_fmt(key)}", "renames")
        elif t in (ObjectType.OBJECT_TYPE, ObjectType.OBJECT_DOMAIN):
            key = _qual(_names(obj))
            if not self.type_ours(key):
                self.not_ours(f"type {_fmt(key)}", "renames")
        elif t == ObjectType.OBJECT_SCHEMA:
            name = n.subname or "?"
            if not self.droppable(self.reg.schemas.get(name)):
                self.not_ours(f"schema {name}", "renames")
        else:
            self.not_ours(f"{getattr(t, 'name', t)}".removeprefix("OBJECT_").lower(), "renames")

    def on_alter_object(self, n: Any) -> None:
        verb = "changes the owner of" if isinstance(n, ast.AlterOwnerStmt) else "moves"
        if getattr(n, "relation", None) is not None:
            key = _rv(n.relation)
            if not self.rel_ours(key):
                self.not_ours(_fmt(key), verb)
            return
        obj = n.object
        if isinstance(obj, ast.ObjectWithArgs):
            key = _qual(_names(obj.objname))
            if not self.func_ours(key):
                self.not_ours(f"function {_fmt(key)}", verb)
        elif isinstance(obj, (list, tuple)):
            key = _qual(_names(obj))
            if not (self.type_ours(key) or self.rel_ours(key)):
                self.not_ours(_fmt(key), verb)
        else:
            self.not_ours(str(_str_value(obj) or "an object"), verb)

    def on_grant(self, n: Any, i: int) -> None:
        grantees = set()
        for g in n.grantees or ():
            if g.roletype == RoleSpecType.ROLESPEC_PUBLIC:
                grantees.add("public")
            elif g.rolename:
                grantees.add(g.rolename)
        privs = None if not n.privileges else {p.priv_name for p in n.privileges}
        if n.is_grant:
            if n.targtype == GrantTargetType.ACL_TARGET_OBJECT and n.objtype == ObjectType.OBJECT_TABLE:
                exposed = grantees & {"anon", "authenticated", "public"}
                for rv in n.objects or ():
                    key = _rv(rv)
                    if key in self.matviews and exposed:
                        self.report(
                            "view-security-invoker",
                            f"grants materialized view {_fmt(key)} to {', '.join(sorted(exposed))}:"
                            " a materialized view ignores RLS, so every row would be visible",
                        )
            return
        if n.targtype == GrantTargetType.ACL_TARGET_ALL_IN_SCHEMA:
            schemas = {_str_value(o) for o in n.objects or ()}
            kind = (
                "function"
                if n.objtype in (ObjectType.OBJECT_FUNCTION, ObjectType.OBJECT_ROUTINE, ObjectType.OBJECT_PROCEDURE)
                else "relation"
            )
            if not self._covers(kind, privs):
                return
            for (k, key), idx in self.created_at_index.items():
                if k == kind and key[0] in schemas and idx < i:
                    self.revoked.setdefault((kind, key), set()).update(grantees)
            return
        if n.targtype != GrantTargetType.ACL_TARGET_OBJECT:
            return
        if n.objtype in (ObjectType.OBJECT_FUNCTION, ObjectType.OBJECT_ROUTINE, ObjectType.OBJECT_PROCEDURE):
            if not self._covers("function", privs):
                return
            for o in n.objects or ():
                key = _qual(_names(o.objname))
                if self.created_at_index.get(("function", key), i) < i:
                    self.revoked.setdefault(("function", key), set()).update(grantees)
        elif n.objtype in (ObjectType.OBJECT_TABLE, ObjectType.OBJECT_SEQUENCE):
            if not self._covers("relation" if n.objtype == ObjectType.OBJECT_TABLE else "sequence", privs):
                return
            for rv in n.objects or ():
                key = _rv(rv)
                if self.created_at_index.get(("relation", key), i) < i:
                    self.revoked.setdefault(("relation", key), set()).update(grantees)

    @staticmethod
    def _covers(kind: str, privs: set[str] | None) -> bool:
        if privs is None:
            return True
        if kind == "function":
            return "execute" in privs
        if kind == "sequence":
            return {"usage", "select", "update"} <= privs
        return TABLE_PRIVILEGES <= privs

    def on_comment(self, n: Any) -> None:
        t = n.objtype
        obj = n.object
        if t == ObjectType.OBJECT_COLUMN:
            parts = _names(obj)
            table = _qual(parts[:-1])
            self.comments.add(("column", *table, parts[-1]))
        elif t in (ObjectType.OBJECT_TABLE, ObjectType.OBJECT_VIEW, ObjectType.OBJECT_MATVIEW):
            self.comments.add(("relation", *_qual(_names(obj))))
        elif t in (ObjectType.OBJECT_FUNCTION, ObjectType.OBJECT_PROCEDURE, ObjectType.OBJECT_ROUTINE):
            self.comments.add(("function", *_qual(_names(obj.objname))))

    def on_guard(self, n: Any) -> None:
        if isinstance(n, ast.DoStmt):
            body = "".join(_str_value(a.arg) or "" for a in n.args or () if isinstance(a, ast.DefElem))
            literals = set(re.findall(r"'([A-Za-z0-9_]+)'", body))
            if "already exists" in body and literals and self.guard_names is None:
                self.guard_names = literals
                self.guard_line = self.stmt.line if self.stmt else 1
            return
        for node in walk(n):
            if isinstance(node, ast.FuncCall) and _names(node.funcname)[-1:] == ["platformdb_assert_names_free"]:
                names = {v for v in (_str_value(x) for x in walk(node.args)) if v is not None}
                # '{a,b}'::text[] spelling
                for v in list(names):
                    if v.startswith("{") and v.endswith("}"):
                        names.discard(v)
                        names.update(p.strip().strip('"') for p in v[1:-1].split(","))
                if self.guard_names is None:
                    self.guard_names = set()
                    self.guard_line = self.stmt.line if self.stmt else 1
                self.guard_names |= names

    def check_superuser(self, n: Any) -> None:
        kinds = {
            "CreateRoleStmt": "creates a role",
            "AlterRoleStmt": "alters a role",
            "AlterRoleSetStmt": "alters a role",
            "DropRoleStmt": "drops a role",
            "GrantRoleStmt": "grants role membership",
            "AlterSystemStmt": "runs ALTER SYSTEM",
            "CreateEventTrigStmt": "creates an event trigger",
            "AlterEventTrigStmt": "alters an event trigger",
            "LoadStmt": "loads a shared library",
            "CreatePLangStmt": "creates a language",
            "CreateTableSpaceStmt": "creates a tablespace",
            "CreatedbStmt": "creates a database",
            "DropdbStmt": "drops a database",
            "AlterDatabaseStmt": "alters the database",
            "AlterDatabaseSetStmt": "alters the database",
            "CreateFdwStmt": "creates a foreign-data wrapper",
        }
        what = kinds.get(type(n).__name__)
        if isinstance(n, ast.CopyStmt) and (n.filename or n.is_program):
            what = "reads or writes a server-side file (COPY … FILE/PROGRAM)"
        if isinstance(n, ast.VariableSetStmt) and (n.name or "").lower() in (
            "role",
            "session_authorization",
        ):
            what = f"sets {n.name}"
        if what:
            self.report(
                "supabase-compat",
                f"{what}: needs privileges a Supabase migration does not have (SPEC §1.4)",
            )

    def check_non_transactional(self, n: Any) -> None:
        what = None
        if isinstance(n, ast.IndexStmt) and n.concurrent:
            what = "CREATE INDEX CONCURRENTLY"
        elif isinstance(n, ast.DropStmt) and n.concurrent:
            what = "DROP INDEX CONCURRENTLY"
        elif isinstance(n, ast.ReindexStmt) and any(
            isinstance(p, ast.DefElem) and p.defname == "concurrently" for p in n.params or ()
        ):
            what = "REINDEX CONCURRENTLY"
        elif isinstance(n, ast.VacuumStmt) and n.is_vacuumcmd:
            what = "VACUUM"
        elif isinstance(n, ast.AlterTableStmt):
            for cmd in n.cmds or ():
                if cmd.subtype == AlterTableType.AT_DetachPartition and getattr(cmd.def_, "concurrent", False):
                    what = "DETACH PARTITION CONCURRENTLY"
        elif isinstance(n, (ast.CreatedbStmt, ast.DropdbStmt, ast.CreateTableSpaceStmt)):
            what = type(n).__name__.removesuffix("Stmt")
        if what:
            self.report(
                "non-transactional",
                f"{what} cannot run inside the file's transaction (BEGIN … COMMIT)",
            )

    # -- end of file --
    def check_file_rules(self) -> None:
        f = self.f
        # RLS and policies on every created table
        for key, line in self.tables.items():
            if not self.rls.get(key):
                self.report_at(
                    "rls-enable",
                    f"table {_fmt(key)} is created without"
                    f" `alter table {_fmt(key)} enable row level security` in this file",
                    line,
                )
            if key not in self.partitions and key not in self.policies:
                self.report_at(
                    "rls-policy",
                    f"table {_fmt(key)} has no policy in this file (create one per role and operation that is needed)",
                    line,
                )
        # views
        for key, line in self.views.items():
            if not self.invoker.get(key):
                self.report_at(
                    "view-security-invoker",
                    f"view {_fmt(key)} is not created with (security_invoker = true): it would"
                    " run with its owner's rights and bypass RLS",
                    line,
                )
        # definer functions
        for key, line in self.functions.items():
            if self.definer.get(key):
                sp = self.search_path.get(key)
                if sp is None:
                    self.report_at(
                        "definer-search-path",
                        f"SECURITY DEFINER function {_fmt(key)} does not pin search_path"
                        " (add `set search_path = ''` and schema-qualify every name)",
                        line,
                    )
                elif sp.kind == VariableSetKind.VAR_SET_CURRENT:
                    self.report_at(
                        "definer-search-path",
                        f"SECURITY DEFINER function {_fmt(key)} takes search_path FROM CURRENT"
                        " (whatever the migration session had); pin it explicitly",
                        line,
                    )
                elif any((_str_value(a) or "").strip() == "$user" for a in sp.args or ()):
                    self.report_at(
                        "definer-search-path",
                        f'SECURITY DEFINER function {_fmt(key)} has "$user" in its search_path:'
                        " a caller's schema could shadow names; use ''",
                        line,
                    )
                missing = REQUIRED_REVOKE - self.revoked.get(("function", key), set())
                if missing:
                    self.report_at(
                        "definer-execute",
                        f"SECURITY DEFINER function {_fmt(key)}: EXECUTE is not revoked from"
                        f" {', '.join(sorted(missing))} after it is created (Supabase grants it"
                        " to everyone by default)",
                        line,
                    )
        # Supabase default grants
        objs: list[tuple[str, tuple[str, str], int, str]] = []
        objs += [("relation", k, ln, "table") for k, ln in self.tables.items()]
        objs += [("relation", k, ln, "view") for k, ln in self.views.items()]
        objs += [("relation", k, ln, "materialized view") for k, ln in self.matviews.items()]
        objs += [("relation", k, ln, "sequence") for k, ln in self.sequences.items()]
        objs += [("function", k, ln, "function") for k, ln in self.functions.items() if not self.definer.get(k)]
        for kind, key, line, word in objs:
            if key[0] != "public":
                continue
            missing = REQUIRED_REVOKE - self.revoked.get((kind, key), set())
            if missing:
                self.report_at(
                    "revoke-defaults",
                    f"{word} {_fmt(key)}: Supabase's default grants are not revoked from"
                    f" {', '.join(sorted(missing))} in this file (`revoke all on … from public,"
                    " anon, authenticated, service_role`, then grant what is needed)",
                    line,
                )
        if f.is_down:
            self.check_down_complete()
            return
        self.check_name_guard()
        self.check_comments()

    def check_name_guard(self) -> None:
        needed: dict[str, int] = {}
        for kind, table in (
            ("table", self.tables),
            ("view", self.views),
            ("view", self.matviews),
            ("sequence", self.sequences),
            ("function", self.functions),
            ("type", self.types),
        ):
            for key, line in table.items():
                if key[0] == "public" and key not in self.partitions:
                    if kind == "function" and self._function_existed_before(key):
                        continue
                    needed.setdefault(key[1], line)
        if not needed:
            return
        if self.guard_names is None or (
            self.first_create_line is not None and self.guard_line > self.first_create_line
        ):
            self.report_at(
                "name-guard",
                "no name guard before the first CREATE: start with"
                " `select public.platformdb_assert_names_free(array['…'])` listing every public"
                " name this file creates, so that someone else's object stops the file",
                self.first_create_line or 1,
            )
            return
        missing = sorted(n for n in needed if n not in self.guard_names)
        if missing:
            self.report_at(
                "name-guard",
                f"the name guard does not list {', '.join(missing)}",
                self.guard_line,
            )

    def _function_existed_before(self, key: tuple[str, str]) -> bool:
        o = self.reg.functions.get(key)
        return o is not None and o.file < self.index

    def check_comments(self) -> None:
        for key, line in self.tables.items():
            if key in self.partitions:
                continue
            if ("relation", *key) not in self.comments:
                self.report_at("comment-missing", f"table {_fmt(key)} has no COMMENT ON", line)
            cols = [c for c in self.table_columns.get(key, []) if ("column", *key, c) not in self.comments]
            if cols:
                self.report_at(
                    "comment-missing",
                    f"columns of {_fmt(key)} without COMMENT ON: {', '.join(cols)}",
                    line,
                )
        for key, added in self.added_columns.items():
            for col, line in added:
                if ("column", *key, col) not in self.comments:
                    self.report_at("comment-missing", f"column {_fmt(key)}.{col} has no COMMENT ON", line)
        for table in (self.views, self.matviews):
            for key, line in table.items():
                if ("relation", *key) not in self.comments:
                    self.report_at("comment-missing", f"view {_fmt(key)} has no COMMENT ON", line)
        for key, line in self.functions.items():
            if ("function", *key) not in self.comments:
                self.report_at("comment-missing", f"function {_fmt(key)} has no COMMENT ON", line)

    def check_down_complete(self) -> None:
        if self.up_index is None:
            self.report_at(
                "down-incomplete",
                f"no up file {self.f.stem}.sql next to this rollback script",
                1,
            )
            return
        up = self.up_index
        missing: list[str] = []
        dropped_tables = {k for k in self.dropped_rel}
        for key, o in self.reg.relations.items():
            if o.file != up or self._is_helper_partition(key):
                continue
            if key in dropped_tables:
                continue
            if self._is_index_of_dropped(key, dropped_tables):
                continue
            if self._is_partition_of_dropped(key, dropped_tables):
                continue
            missing.append(f"relation {_fmt(key)}")
        for (schema, name, args), o in self.reg.function_sigs.items():
            if o.file != up:
                continue
            if (schema, name, None) in self.dropped_func or (schema, name, args) in self.dropped_func:
                continue
            missing.append(f"function {schema}.{name}({', '.join(args)})")
        for key, o in self.reg.types.items():
            if o.file == up and key not in self.dropped_type:
                missing.append(f"type {_fmt(key)}")
        for name, o in self.reg.schemas.items():
            if o.file == up and name not in self.dropped_schema:
                missing.append(f"schema {name}")
        for sub, o in self.reg.sub.items():
            kind, schema, table, name = sub
            if o.file != up or kind == "index":
                continue
            table_origin = self.reg.relation((schema, table))
            if table_origin is not None and table_origin.file == up:
                continue  # goes with its table
            if (schema, table) in dropped_tables or sub in self.dropped_sub:
                continue
            missing.append(f"{kind} {name} of {schema}.{table}")
        if missing:
            self.report_at(
                "down-incomplete",
                "does not undo what its up file created: " + ", ".join(missing),
                self.f.stmts[0].line if self.f.stmts else 1,
            )

    def _is_helper_partition(self, key: tuple[str, str]) -> bool:
        m = PARTITION_CHILD_RE.match(key[1])
        return m is not None and (key[0], m["parent"]) in self.reg.partition_keys

    def _is_index_of_dropped(self, key: tuple[str, str], dropped: set[tuple[str, str]]) -> bool:
        for (kind, schema, table, name), _o in self.reg.sub.items():
            if kind == "index" and (schema, name) == key:
                return (schema, table) in dropped or self._is_partition_of_dropped((schema, table), dropped)
        return False

    def _is_partition_of_dropped(self, key: tuple[str, str], dropped: set[tuple[str, str]]) -> bool:
        return self.reg.partition_parent.get(key) in dropped


# ---- the whole set ----------------------------------------------------------------------


def default_files() -> list[Path]:
    """The project's migrations and their rollback scripts."""
    directory = migrate.default_dir()
    return sorted(p for p in directory.iterdir() if p.name.endswith(".sql"))


def expand(paths: Iterable[Path]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out += sorted(q for q in p.iterdir() if q.name.endswith(".sql"))
        else:
            out.append(p)
    return out


def lint_files(paths: Sequence[Path], *, context: Sequence[Path] | None = None) -> list[Finding]:
    """Lint `paths` (reported) read together with `context` (the earlier migrations).

    Files are ordered by version (unversioned files last, by name); a `.down.sql` is paired
    with the `<same stem>.sql` among them or next to it on disk.
    """
    wanted = {p.resolve() for p in paths}
    all_paths: dict[Path, Path] = {}
    for p in list(context or []) + list(paths):
        all_paths.setdefault(p.resolve(), p)
    # a down file needs its up file in the set; an up file its down (for down-missing)
    for rp in list(all_paths):
        if rp.name.endswith(".down.sql"):
            up = rp.with_name(rp.name[: -len(".down.sql")] + ".sql")
            if up.exists():
                all_paths.setdefault(up, up)
    files = [load_file(p) for p in all_paths.values()]
    files.sort(key=lambda f: f.sort_key())
    findings: list[Finding] = []
    reg = Registry()
    up_of: dict[str, int] = {}
    for idx, f in enumerate(files):
        if not f.is_down:
            up_of[f.stem] = idx
    for idx, f in enumerate(files):
        report = f.path.resolve() in wanted
        if f.parse_error is not None:
            if report:
                findings.append(f.parse_error)
            continue
        up_index = up_of.get(f.stem) if f.is_down else None
        result = _FileLint(files, idx, reg, up_index).run()
        if not report:
            continue
        findings += result
        if f.is_migration:
            down = f.path.with_name(f.stem + ".down.sql")
            if not down.exists():
                findings.append(
                    Finding(
                        display_path(f.path),
                        1,
                        "down-missing",
                        f"no rollback script {down.name} (`platformdb migrate down` needs it)",
                    )
                )
    return sorted(findings, key=lambda x: (x.path, x.line, x.rule))


# ---- squawk ------------------------------------------------------------------------------


def squawk_binary() -> str | None:
    local = Path(sys.executable).parent / "squawk"
    if local.exists():
        return str(local)
    return shutil.which("squawk")


def run_squawk(paths: Sequence[Path]) -> list[Finding]:
    """squawk's findings for `paths` (none when squawk is not installed)."""
    binary = squawk_binary()
    if binary is None or not paths:
        return []
    ups = [p for p in paths if not p.name.endswith(".down.sql")]
    downs = [p for p in paths if p.name.endswith(".down.sql")]
    out: list[Finding] = []
    for group, excluded in ((ups, list(SQUAWK_EXCLUDED)), (downs, [*SQUAWK_EXCLUDED, *SQUAWK_DOWN_EXCLUDED])):
        if not group:
            continue
        cmd = [
            binary,
            "--reporter",
            "json",
            f"--pg-version={SQUAWK_PG_VERSION}",
            "--exclude=" + ",".join(excluded),
            *[str(p) for p in group],
        ]
        r = subprocess.run(cmd, capture_output=True, text=True, check=False)
        try:
            items = json.loads(r.stdout or "[]")
        except json.JSONDecodeError:
            items = None
        if r.returncode not in (0, 1) or items is None:
            raise LintToolError(f"squawk failed (exit {r.returncode}): {r.stderr.strip() or r.stdout.strip()}")
        for v in items:
            rule = v.get("rule_name") or "unknown"
            severity = "advisory" if rule in SQUAWK_ADVISORY else "error"
            message = v.get("message", "")
            if v.get("help"):
                message += f" ({v['help']})"
            out.append(
                Finding(
                    display_path(Path(v.get("file", ""))),
                    int(v.get("line", 0)) + 1,  # squawk's JSON lines count from 0
                    f"squawk/{rule}",
                    message,
                    severity,
                )
            )
    return out


class LintToolError(RuntimeError):
    """An external linter could not run."""


# ---- entry points -----------------------------------------------------------------------


@dataclass
class LintResult:
    findings: list[Finding]
    files: list[str]
    squawk: bool

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]


def lint(paths: Sequence[Path] | None = None, *, squawk: bool = True) -> LintResult:
    """Lint `paths` (default: the project's migrations) with the project's migrations as
    context, plus squawk on the same files."""
    project = default_files()
    targets = expand(paths) if paths else project
    missing = [p for p in targets if not p.exists()]
    if missing:
        raise FileNotFoundError(", ".join(str(p) for p in missing))
    findings = lint_files(targets, context=project)
    ran_squawk = False
    if squawk and squawk_binary() is not None:
        unparsable = {f.path for f in findings if f.rule == "syntax-error"}
        findings += run_squawk([p for p in targets if display_path(p) not in unparsable])
        ran_squawk = True
    findings.sort(key=lambda x: (x.path, x.line, x.rule))
    return LintResult(findings, [display_path(p) for p in targets], ran_squawk)


def register(app: typer.Typer) -> None:
    @app.command("lint")
    def lint_cmd(
        files: Annotated[
            list[Path] | None,
            typer.Argument(help="SQL files or folders (default: the project's migrations)."),
        ] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
        no_squawk: Annotated[bool, typer.Option("--no-squawk", help="Skip squawk.")] = False,
        rules: Annotated[bool, typer.Option("--rules", help="List the rules and exit.")] = False,
    ) -> None:
        """Check migrations against the ground rules (file:line rule-id message); exit 1 on errors."""
        from platformdb.cli import console, err_console, fail, print_json

        if rules:
            for rid, text in RULES.items():
                console.print(f"[bold]{rid}[/]  {text}", highlight=False)
            console.print(
                "[bold]squawk/<rule>[/]  squawk's findings; off: "
                + ", ".join(SQUAWK_EXCLUDED)
                + "; advisory: "
                + ", ".join(SQUAWK_ADVISORY),
                highlight=False,
            )
            raise typer.Exit(0)
        try:
            result = lint(files or None, squawk=not no_squawk)
        except (FileNotFoundError, LintToolError) as exc:
            fail(str(exc))
            return
        if as_json:
            print_json(
                {
                    "ok": not result.errors,
                    "files": result.files,
                    "squawk": result.squawk,
                    "findings": [asdict(f) for f in result.findings],
                }
            )
        else:
            for finding in result.findings:
                sys.stdout.write(finding.format() + "\n")
            if not result.squawk and not no_squawk:
                err_console.print("note: squawk is not installed; only platformdb's rules ran")
            n_err = len(result.errors)
            n_other = len(result.findings) - n_err
            err_console.print(
                f"{len(result.files)} files: {n_err} error{'s' if n_err != 1 else ''},"
                f" {n_other} warning{'s' if n_other != 1 else ''}/advisory"
            )
        raise typer.Exit(1 if result.errors else 0)
