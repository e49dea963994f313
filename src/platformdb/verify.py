"""`platformdb verify`: after a deploy, check the live database against the ground rules (SPEC §4).

What is expected comes from the migration files themselves (parsed with PostgreSQL's parser,
see `platformdb.guard.created_objects`), never from a hand-kept list:

- migrations: every file is applied, with the checksum it was applied with;
- objects: every table, view, sequence, type, index and function the files create (and no
  later file drops) is present — functions with their argument types;
- rls: row level security is on for each of our tables and each of their partitions;
- policies: each of our tables has at least one policy;
- partitions: every table in `partition_settings` has a DEFAULT partition and a partition
  for the current month and each of the coming 3 months;
- partition grants: partitions carry no privileges for anon/authenticated/service_role
  (a partition read directly would bypass its parent's policies);
- definer: SECURITY DEFINER functions pin search_path and are not executable by PUBLIC;
- anon execute: anon may execute none of our functions unless a capability's security
  module lists it in `ANON_EXECUTE` (name → why), the documented allow list;
- views: our views run with security_invoker;
- checks: every `verify_checks/<version>_<name>.sql` statement runs as service_role in a
  transaction that is rolled back; each must succeed and a single boolean must be true.
- the exposed surface, whoever created it, extension objects included
  (`platformdb.verify_surface`).

Every result carries its check's stable id (`check`), a level (`error` fails verify,
`warning` and `info` are reported) and the fix hint of `CATALOG`.

Objects in `public` that the migrations did not create belong to someone else: a missing
RLS or an unpinned definer function there is reported as a warning, not a failure.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import psycopg
import psycopg.sql
import typer
from pglast import ast, parse_sql
from pglast.enums.parsenodes import ObjectType

from platformdb import db, guard, migrate, verify_surface
from platformdb.cli_options import DirectUrl, PoolMode, ReplicaUrl
from platformdb.lint import function_signature, input_params, type_sql

MONTHS_AHEAD = 3


@dataclass(frozen=True)
class CheckInfo:
    title: str
    fix: str


# Every check verify runs: its stable id (the `check` of each result), what it asserts and
# how to fix a failure. The level is per result: error (fails verify), warning, info.
CATALOG: dict[str, CheckInfo] = {
    "migrations": CheckInfo(
        "every migration file is applied with the checksum it was applied with",
        "run `platformdb migrate up`; never edit an applied file, add a new migration",
    ),
    "objects": CheckInfo(
        "every table, view, sequence, type, index and function the files create is present",
        "run `platformdb migrate up`, or restore the object from its migration",
    ),
    "rls": CheckInfo(
        "row level security is on for each of our tables and partitions", "alter table … enable row level security"
    ),
    "policies": CheckInfo(
        "each of our tables has at least one policy", "re-create the table's policies from its migration"
    ),
    "partitions": CheckInfo(
        "each partitioned table has a DEFAULT partition and the months ahead",
        "run `platformdb maintain` (or schedule it)",
    ),
    "partition grants": CheckInfo(
        "partitions carry no privileges for the API roles",
        "revoke all on the partition from anon, authenticated, service_role",
    ),
    "definer": CheckInfo(
        "SECURITY DEFINER functions pin search_path and are not executable by PUBLIC",
        "alter function … set search_path = ''; revoke execute … from public",
    ),
    "anon execute": CheckInfo(
        "anon executes none of our functions unless ANON_EXECUTE lists it",
        "revoke execute … from anon, or list it with a reason in ANON_EXECUTE",
    ),
    "views": CheckInfo("our views run with security_invoker", "alter view … set (security_invoker = true)"),
    "checks": CheckInfo(
        "each verify_checks statement succeeds (and returns true)",
        "see the statement's error; re-apply the migration's function",
    ),
    "exposed_table_rls": CheckInfo(
        "tables in an exposed schema that platformdb did not create have row level security",
        "alter table … enable row level security (and add policies), or move it out of the exposed schema",
    ),
    "exposed_view_invoker": CheckInfo(
        "views in an exposed schema run with security_invoker; materialized views are not readable by the API roles",
        "alter view … set (security_invoker = true); revoke select on a materialized view from anon, authenticated",
    ),
    "extension_in_exposed_schema": CheckInfo(
        "no extension lives in an exposed schema",
        "create extensions `with schema extensions`; one that cannot be moved (PostGIS) must"
        " grant the API roles nothing (migration 20260401180000_security_hardening)",
    ),
    "extension_object_writable": CheckInfo(
        "no extension table or view is writable by PUBLIC, anon or authenticated",
        "revoke insert, update, delete, truncate, references, trigger on it from public, anon,"
        " authenticated (`platformdb migrate up` applies 20260401180000_security_hardening)",
    ),
    "definer_executable": CheckInfo(
        "no SECURITY DEFINER function (exposed schema or extension) is executable by anon or"
        " authenticated unless the security matrix lists it",
        "revoke execute on function … from public, anon, authenticated; or list it with a reason"
        " in DEFINER_EXECUTE / ANON_EXECUTE of src/platformdb/security/<capability>.py",
    ),
    "anon_write": CheckInfo(
        "anon holds no write privilege on any relation of a schema it can use, beyond the matrix",
        "revoke insert, update, delete, truncate, references, trigger on … from anon",
    ),
    "function_search_path": CheckInfo(
        "every function in an exposed schema pins its search_path",
        "alter function … set search_path = '' (and qualify every name in its body)",
    ),
    "role_statement_timeout": CheckInfo(
        "anon and authenticated have a statement_timeout (Supabase: 3 s and 8 s)",
        "run `platformdb migrate up` (compat layer), or: alter role anon set statement_timeout = '3s';"
        " alter role authenticated set statement_timeout = '8s'",
    ),
    "unindexed_foreign_key": CheckInfo(
        "each foreign key in an exposed schema has an index leading with its first column",
        "create an index on the referencing columns (deletes and updates of the referenced row scan otherwise)",
    ),
    "policy_auth_per_row": CheckInfo(
        "policies call auth.uid()/auth.jwt()/current_setting() once per statement, not per row",
        "wrap the call in a scalar subquery: (select auth.uid())",
    ),
}


@dataclass
class Check:
    check: str  # the stable id, a key of CATALOG
    item: str
    ok: bool
    detail: str = ""
    severity: str = "error"  # the level: error | warning | info

    @property
    def failed(self) -> bool:
        return not self.ok and self.severity == "error"

    @property
    def fix(self) -> str:
        info = CATALOG.get(self.check)
        return info.fix if info and not self.ok else ""

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "id": self.check, "level": self.severity, "fix": self.fix}


@dataclass
class Report:
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if c.failed]

    @property
    def warnings(self) -> list[Check]:
        return [c for c in self.checks if not c.ok and c.severity == "warning"]

    def add(self, check: str, item: str, ok: bool, detail: str = "", severity: str = "error") -> None:
        self.checks.append(Check(check, item, ok, detail, severity))

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "failures": len(self.failures),
            "warnings": len(self.warnings),
            "checks": [c.as_dict() for c in self.checks],
        }


# ---- what the files promise -----------------------------------------------------------


@dataclass
class Expected:
    relations: dict[tuple[str, str], str] = field(default_factory=dict)  # key -> kind
    # signature -> (schema, name, argument types)
    functions: dict[str, tuple[str, str, tuple[str, ...]]] = field(default_factory=dict)
    tables: set[tuple[str, str]] = field(default_factory=set)
    views: set[tuple[str, str]] = field(default_factory=set)
    function_names: set[tuple[str, str]] = field(default_factory=set)
    types: set[tuple[str, str]] = field(default_factory=set)
    partitions: set[tuple[str, str]] = field(default_factory=set)


def _dropped(stmt: Any) -> Iterable[tuple[str, tuple[str, str], tuple[str, ...] | None]]:
    """(kind, key, args) of each object a DROP statement removes."""
    if not isinstance(stmt, ast.DropStmt):
        return
    t = stmt.removeType
    for obj in stmt.objects or ():
        if t in (
            ObjectType.OBJECT_TABLE,
            ObjectType.OBJECT_VIEW,
            ObjectType.OBJECT_MATVIEW,
            ObjectType.OBJECT_INDEX,
            ObjectType.OBJECT_SEQUENCE,
        ):
            parts = [s.sval for s in obj]
            yield "relation", (parts[-2] if len(parts) > 1 else "public", parts[-1]), None
        elif t in (ObjectType.OBJECT_FUNCTION, ObjectType.OBJECT_PROCEDURE, ObjectType.OBJECT_ROUTINE):
            parts = [s.sval for s in obj.objname]
            yield "function", (parts[-2] if len(parts) > 1 else "public", parts[-1]), None
        elif t in (ObjectType.OBJECT_TYPE, ObjectType.OBJECT_DOMAIN):
            parts = [s.sval for s in obj.names]
            yield "type", (parts[-2] if len(parts) > 1 else "public", parts[-1]), None


def expected_objects(migrations: list[migrate.Migration]) -> Expected:
    """What the up files leave behind when applied in order (created, minus dropped later)."""
    exp = Expected()
    for m in migrations:
        text = m.text()
        for obj in guard.created_objects(text):
            key = (obj.schema, obj.name)
            if obj.kind in ("table", "view", "sequence", "index"):
                exp.relations[key] = obj.kind
                if obj.kind == "table":
                    exp.tables.add(key)
                elif obj.kind == "view":
                    exp.views.add(key)
            elif obj.kind == "type":
                exp.types.add(key)
            elif obj.kind == "function":
                exp.function_names.add(key)
        for raw in parse_sql(text):
            s = raw.stmt
            if isinstance(s, ast.CreateFunctionStmt):
                sig = function_signature(s)
                parts = [p.sval for p in s.funcname or ()]
                key = (parts[-2] if len(parts) > 1 else "public", parts[-1])
                exp.functions[sig] = (key[0], key[1], tuple(type_sql(p.argType) for p in input_params(s)))
            elif isinstance(s, ast.CreateTableAsStmt) and s.objtype == ObjectType.OBJECT_MATVIEW:
                into: Any = s.into
                exp.views.discard(_rel(into.rel))  # no security_invoker on a matview
            elif isinstance(s, ast.CreateStmt) and s.partbound is not None:
                # an explicit partition: reached through its parent, whose policies apply
                exp.tables.discard(_rel(s.relation))
                exp.partitions.add(_rel(s.relation))
            for kind, key, _ in _dropped(s):
                if kind == "relation":
                    exp.relations.pop(key, None)
                    exp.tables.discard(key)
                    exp.views.discard(key)
                elif kind == "function":
                    exp.function_names.discard(key)
                    for sig in [k for k, v in exp.functions.items() if (v[0], v[1]) == key]:
                        exp.functions.pop(sig)
                elif kind == "type":
                    exp.types.discard(key)
    return exp


def _rel(rv: Any) -> tuple[str, str]:
    return (rv.schemaname or "public", rv.relname)


def anon_allowed() -> dict[str, str]:
    """Functions anon may execute: `ANON_EXECUTE = {name: why}` in platformdb.security.*."""
    from platformdb import security

    out: dict[str, str] = {}
    for info in sorted(pkgutil.iter_modules(security.__path__), key=lambda i: i.name):
        mod = importlib.import_module(f"{security.__name__}.{info.name}")
        allowed = getattr(mod, "ANON_EXECUTE", None) or {}
        if isinstance(allowed, dict):
            out.update({str(k): str(v) for k, v in allowed.items()})
        else:
            out.update({str(k): "" for k in allowed})
    return out


# ---- catalog queries --------------------------------------------------------------------

RELATIONS_SQL = """
select n.nspname, c.relname, c.relkind, c.relrowsecurity, c.relispartition,
       coalesce(c.reloptions, '{}')::text[]
  from pg_class c join pg_namespace n on n.oid = c.relnamespace
 where n.nspname not in ('pg_catalog', 'information_schema', 'pg_toast')
   and not exists (select 1 from pg_depend d where d.classid = 'pg_class'::regclass
                    and d.objid = c.oid and d.deptype = 'e')
"""
PARTITIONS_SQL = """
select p.relname as parent, c.relname as child, pn.nspname as parent_schema,
       cn.nspname as child_schema, pg_get_expr(c.relpartbound, c.oid) as bound
  from pg_inherits i
  join pg_class c on c.oid = i.inhrelid join pg_namespace cn on cn.oid = c.relnamespace
  join pg_class p on p.oid = i.inhparent join pg_namespace pn on pn.oid = p.relnamespace
 where p.relkind = 'p'
"""
POLICY_COUNT_SQL = """
select schemaname, tablename, count(*) from pg_policies group by schemaname, tablename
"""
FUNCTIONS_SQL = """
select n.nspname, p.proname, p.oid::regprocedure::text, p.prosecdef,
       coalesce(p.proconfig, '{}'), p.pronargs,
       has_function_privilege('anon', p.oid, 'execute'),
       exists (select 1 from aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
                where a.grantee = 0 and a.privilege_type = 'EXECUTE')
  from pg_proc p join pg_namespace n on n.oid = p.pronamespace
 where n.nspname = 'public' and p.prokind in ('f', 'p')
   and not exists (select 1 from pg_depend d where d.classid = 'pg_proc'::regclass
                    and d.objid = p.oid and d.deptype = 'e')
"""
TYPES_SQL = """
select n.nspname, t.typname from pg_type t join pg_namespace n on n.oid = t.typnamespace
 where n.nspname = 'public'
"""
REGPROC_SQL = "select to_regprocedure(%s) is not null"
REGTYPE_SQL = "select to_regtype(%s)"
PARTITION_SETTINGS_SQL = """
select table_name from public.partition_settings order by table_name
"""
MONTHS_SQL = """
select (date_trunc('month', now() at time zone 'UTC') + make_interval(months => m))
           at time zone 'UTC' as month_start,
       (date_trunc('month', now() at time zone 'UTC') + make_interval(months => m + 1))
           at time zone 'UTC' as month_end
  from generate_series(0, %s) m order by 1
"""
BOUND_RE = re.compile(r"FOR VALUES FROM \((?P<lo>.+)\) TO \((?P<hi>.+)\)$")
TS_SQL = "select %s::timestamptz"
PRIVS_SQL = """
select r.rolname from pg_roles r
 where r.rolname in ('anon', 'authenticated', 'service_role')
   and has_table_privilege(r.rolname, %s::regclass, 'select,insert,update,delete,truncate,references,trigger')
"""


# ---- the checks ---------------------------------------------------------------------------


def run(
    url: str,
    *,
    migrations_dir: Path | None = None,
    checks_dir: Path | None = None,
    months_ahead: int = MONTHS_AHEAD,
) -> Report:
    report = Report()
    migrations = migrate.discover(migrations_dir)
    exp = expected_objects(migrations)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("set timezone = 'UTC'")
        applied = _check_migrations(conn, migrations, report)
        _check_objects(conn, exp, report)
        _check_rls(conn, exp, report)
        _check_partitions(conn, exp, report, months_ahead)
        _check_functions(conn, exp, report)
        _check_views(conn, exp, report)
        verify_surface.check(conn, set(exp.relations) | exp.tables | exp.views, exp.function_names, report.add)
        _check_helpers(conn, checks_dir, {m.version for m in migrations}, applied, report)
    return report


def _check_migrations(conn: psycopg.Connection[Any], migrations: list[migrate.Migration], report: Report) -> set[str]:
    done = migrate.applied(conn, migrations)
    for m in migrations:
        a = done.get(m.version)
        if a is None:
            report.add("migrations", m.filename, False, "not applied")
        elif a.checksum is not None and a.checksum != m.checksum:
            report.add("migrations", m.filename, False, "changed since it was applied (checksum differs)")
        elif a.by == "supabase-cli":
            report.add("migrations", m.filename, True, "applied by the Supabase CLI (no checksum recorded)")
        else:
            report.add("migrations", m.filename, True, "applied (platformdb ledger)")
    return set(done)


def _relations(conn: psycopg.Connection[Any]) -> dict[tuple[str, str], tuple[str, bool, bool, list[str]]]:
    return {(r[0], r[1]): (r[2], r[3], r[4], list(r[5])) for r in conn.execute(RELATIONS_SQL)}


def _check_objects(conn: psycopg.Connection[Any], exp: Expected, report: Report) -> None:
    rels = _relations(conn)
    kinds = {"table": "rp", "view": "vm", "sequence": "S", "index": "iI"}
    for key, kind in sorted(exp.relations.items()):
        got = rels.get(key)
        name = f"{key[0]}.{key[1]}"
        if got is None:
            report.add("objects", f"{kind} {name}", False, "missing")
        elif got[0] not in kinds[kind] and not (kind == "table" and got[0] == "u"):
            report.add("objects", f"{kind} {name}", False, f"exists but is relkind {got[0]!r}")
        else:
            report.add("objects", f"{kind} {name}", True)
    present_types = {(r[0], r[1]) for r in conn.execute(TYPES_SQL)}
    for key in sorted(exp.types):
        report.add(
            "objects", f"type {key[0]}.{key[1]}", key in present_types, "" if key in present_types else "missing"
        )
    funcs = [tuple(r) for r in conn.execute(FUNCTIONS_SQL)]
    for sig, (schema, name, types) in sorted(exp.functions.items()):
        try:
            row = conn.execute(REGPROC_SQL, (sig,)).fetchone()
        except psycopg.Error:
            row = None  # a type name that does not parse here
        if row and row[0]:
            report.add("objects", f"function {sig}", True)
            continue
        same = [f for f in funcs if f[0] == schema and f[1] == name]
        unresolved = [t for t in types if not _type_resolves(conn, t)]
        if unresolved and any(f[5] == len(types) for f in same):
            # a type that does not resolve by this name here (e.g. PostGIS installed in the
            # `extensions` schema, as on Supabase): the name and the number of arguments match
            report.add("objects", f"function {sig}", True, "matched by name and arity")
        elif same:
            others = ", ".join(str(f[2]) for f in same)
            report.add("objects", f"function {sig}", False, f"exists with other arguments: {others}")
        else:
            report.add("objects", f"function {sig}", False, "missing")


def _type_resolves(conn: psycopg.Connection[Any], type_name: str) -> bool:
    try:
        row = conn.execute(REGTYPE_SQL, (type_name,)).fetchone()
    except psycopg.Error:
        return False
    return bool(row and row[0])


def _check_rls(conn: psycopg.Connection[Any], exp: Expected, report: Report) -> None:
    rels = _relations(conn)
    parents = [tuple(r) for r in conn.execute(PARTITIONS_SQL)]
    policies = {(r[0], r[1]): int(r[2]) for r in conn.execute(POLICY_COUNT_SQL)}
    ours_partitions = {(str(p[3]), str(p[1])): (str(p[2]), str(p[0])) for p in parents if (p[2], p[0]) in exp.tables}
    for key in sorted(exp.tables):
        got = rels.get(key)
        if got is None:
            continue  # reported by objects
        name = f"{key[0]}.{key[1]}"
        report.add("rls", name, got[1], "" if got[1] else "row level security is disabled")
        n = policies.get(key, 0)
        report.add("policies", name, n > 0, f"{n} polic{'y' if n == 1 else 'ies'}" if n else "no policy")
    for child, parent in sorted(ours_partitions.items()):
        got = rels.get(child)
        if got is None:
            continue
        name = f"{child[0]}.{child[1]}"
        report.add(
            "rls", name, got[1], f"partition of {parent[1]}" + ("" if got[1] else ": row level security is disabled")
        )
        granted = [r[0] for r in conn.execute(PRIVS_SQL, (name,))]
        report.add(
            "partition grants",
            name,
            not granted,
            "reachable only through its parent" if not granted else "privileges for " + ", ".join(granted),
        )


def _bound(conn: psycopg.Connection[Any], expr: str) -> tuple[Any, Any] | None:
    m = BOUND_RE.match(expr or "")
    if not m:
        return None

    def value(text: str) -> Any:
        text = text.strip()
        if text.upper() == "MINVALUE":
            return datetime.min.replace(tzinfo=UTC)
        if text.upper() == "MAXVALUE":
            return datetime.max.replace(tzinfo=UTC)
        try:
            row = conn.execute(TS_SQL, (text.strip("'"),)).fetchone()
        except psycopg.Error:
            return None  # not a single timestamp bound: not a monthly partition
        return row[0] if row else None

    lo, hi = value(m["lo"]), value(m["hi"])
    return (lo, hi) if lo is not None and hi is not None else None


def _check_partitions(conn: psycopg.Connection[Any], exp: Expected, report: Report, months_ahead: int) -> None:
    if conn.execute("select to_regclass('public.partition_settings')").fetchone() in (None, (None,)):
        return
    tables = [r[0] for r in conn.execute(PARTITION_SETTINGS_SQL)]
    parts = [tuple(r) for r in conn.execute(PARTITIONS_SQL)]
    months = conn.execute(MONTHS_SQL, (months_ahead,)).fetchall()
    for table in tables:
        children = [p for p in parts if p[2] == "public" and p[0] == table]
        if not children and conn.execute("select to_regclass(%s)", (f"public.{table}",)).fetchone() == (None,):
            report.add("partitions", f"public.{table}", False, "listed in partition_settings but missing")
            continue
        has_default = any(str(p[4]) == "DEFAULT" for p in children)
        report.add(
            "partitions",
            f"public.{table} default",
            has_default,
            "DEFAULT partition present" if has_default else "no DEFAULT partition",
        )
        bounds = [b for b in (_bound(conn, str(p[4])) for p in children) if b]
        for start, end in months:
            covered = any(lo <= start and hi >= end for lo, hi in bounds)
            label = f"public.{table} {start:%Y-%m}"
            report.add(
                "partitions",
                label,
                covered,
                "" if covered else f"no partition covers {start:%Y-%m} (run `platformdb maintain`)",
            )


def _check_functions(conn: psycopg.Connection[Any], exp: Expected, report: Report) -> None:
    allowed = anon_allowed()
    for schema, name, sig, definer, config, _nargs, anon_exec, public_exec in conn.execute(FUNCTIONS_SQL):
        ours = (schema, name) in exp.function_names
        if definer:
            pinned = any(str(c).startswith("search_path=") for c in config)
            report.add(
                "definer",
                sig,
                pinned,
                "search_path pinned" if pinned else "SECURITY DEFINER without a pinned search_path",
                "error" if ours else "warning",
            )
            if ours:
                report.add(
                    "definer",
                    f"{sig} execute",
                    not public_exec,
                    "not executable by PUBLIC" if not public_exec else "PUBLIC may execute it",
                )
        if not ours:
            continue
        if anon_exec and name not in allowed:
            report.add("anon execute", sig, False, "anon may execute it and it is not in any ANON_EXECUTE allow list")
        else:
            report.add("anon execute", sig, True, f"allowed: {allowed[name]}" if anon_exec else "")


def _check_views(conn: psycopg.Connection[Any], exp: Expected, report: Report) -> None:
    rels = _relations(conn)
    for key in sorted(exp.views):
        got = rels.get(key)
        if got is None or got[0] != "v":
            continue
        invoker = any(
            o.lower() in ("security_invoker=true", "security_invoker=on", "security_invoker=1") for o in got[3]
        )
        report.add("views", f"{key[0]}.{key[1]}", invoker, "" if invoker else "not security_invoker: bypasses RLS")


# ---- helper functions exercised in a rolled-back transaction -----------------------------

CHECK_RE = re.compile(r"--\s*check:\s*(?P<what>.+)")


def default_checks_dir() -> Path:
    return Path(str(resources.files("platformdb") / "verify_checks"))


def load_checks(path: Path) -> list[tuple[str, str]]:
    """(description, statement) of each statement of a checks file."""
    text = path.read_text()
    out: list[tuple[str, str]] = []
    prev_end = 0
    for start, end, stmt, _kind in migrate.split_statements(text):
        leading = text[prev_end:start] + stmt
        found = CHECK_RE.findall(leading)
        what = found[-1].strip() if found else stmt.splitlines()[0][:80]
        body = "\n".join(ln for ln in stmt.splitlines() if not ln.strip().startswith("--")).strip()
        out.append((what, body))
        prev_end = end
    return out


def _check_helpers(
    conn: psycopg.Connection[Any],
    checks_dir: Path | None,
    deployed: set[str],
    applied: set[str],
    report: Report,
) -> None:
    directory = checks_dir or default_checks_dir()
    if not directory.exists():
        return
    for path in sorted(directory.glob("*.sql")):
        version = path.name.split("_", 1)[0]
        if version.isdigit() and version not in deployed:
            continue  # checks of a migration that is not part of this set
        if version.isdigit() and version not in applied:
            report.add("checks", path.name, False, "its migration is not applied")
            continue
        try:
            checks = load_checks(path)
        except migrate.MigrationError as exc:
            report.add("checks", path.name, False, str(exc))
            continue
        with conn.transaction(force_rollback=True):
            if conn.execute("select 1 from pg_catalog.pg_extension where extname = 'citus'").fetchone():
                # a Citus coordinator: the service's claims, as the connecting role. Citus keeps one
                # user per shard a transaction modified, and the SECURITY DEFINER functions write
                # as their owner: a later statement as service_role could not read those shards
                # within this one rolled-back transaction
                conn.execute(
                    psycopg.sql.SQL("set local request.jwt.claims = {}").format(
                        psycopg.sql.Literal(json.dumps(db.claims_for("service_role")))
                    )
                )
            else:
                db.set_role(conn, "service_role", db.claims_for("service_role"))
            for what, stmt in checks:
                item = f"{path.stem}: {what}"
                try:
                    with conn.transaction():
                        cur = conn.execute(stmt)  # type: ignore[arg-type]
                        rows = cur.fetchall() if cur.description else []
                except psycopg.Error as exc:
                    msg = (exc.diag.message_primary if exc.diag else None) or str(exc)
                    report.add("checks", item, False, f"{exc.sqlstate}: {msg}")
                    continue
                if len(rows) == 1 and len(rows[0]) == 1 and isinstance(rows[0][0], bool):
                    report.add("checks", item, rows[0][0], "true" if rows[0][0] else "returned false")
                else:
                    report.add("checks", item, True, f"{len(rows)} row{'s' if len(rows) != 1 else ''}")


# ---- CLI ----------------------------------------------------------------------------------


def register(app: typer.Typer) -> None:
    @app.command("verify")
    def verify_cmd(
        database_url: Annotated[
            str | None,
            typer.Option(
                "--database-url", envvar="DATABASE_URL", help="PostgreSQL URL; default: the embedded dev cluster."
            ),
        ] = None,
        direct_url: DirectUrl = None,
        replica_url: ReplicaUrl = None,
        pool_mode: PoolMode = None,
        as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
        show_all: Annotated[bool, typer.Option("--all", help="List passing items too.")] = False,
    ) -> None:
        """Check the live database: objects, RLS, policies, partitions, grants, helpers (exit 1 on failure)."""
        from rich.table import Table

        from platformdb.cli import console, err_console, fail, print_json, session_url_of, url_of

        # verify reads the catalog in a session of its own (it sets the time zone)
        url = session_url_of(url_of(database_url, direct_url, replica_url, pool_mode), direct_url, "verify")
        try:
            report = run(url)
        except (psycopg.OperationalError, migrate.MigrationError) as exc:
            fail(str(exc))
            return
        if as_json:
            print_json(report.as_dict())
        else:
            table = Table("check", "item", "result", "detail")
            for col in table.columns:
                col.overflow = "fold"
            by_check: dict[str, list[Check]] = {}
            for c in report.checks:
                by_check.setdefault(c.check, []).append(c)
            for name, items in by_check.items():
                shown = [c for c in items if show_all or not c.ok]
                for c in shown:
                    result = (
                        "[green]ok[/]"
                        if c.ok
                        else {"warning": "[yellow]warning[/]", "info": "[blue]info[/]"}.get(c.severity, "[red]FAIL[/]")
                    )
                    table.add_row(name, c.item, result, c.detail + (f" — fix: {c.fix}" if c.fix else ""))
                passed = sum(1 for c in items if c.ok)
                if not show_all and passed:
                    table.add_row(name, f"{passed} item{'s' if passed != 1 else ''}", "[green]ok[/]", "")
            console.print(table)
        for c in report.failures:
            err_console.print(f"[red]FAIL[/] {c.check}: {c.item}: {c.detail} (fix: {c.fix})", highlight=False)
        if report.ok:
            err_console.print(
                f"verify: ok ({len(report.checks)} checks, {len(report.warnings)} warnings)", highlight=False
            )
        else:
            err_console.print(f"verify: {len(report.failures)} failed", highlight=False)
        raise typer.Exit(0 if report.ok else 1)
