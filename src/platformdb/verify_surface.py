"""The exposed surface, checked on the live database (part of `platformdb verify`).

What PostgREST exposes to `anon` and `authenticated` is the schemas in `EXPOSED_SCHEMAS`
(PostgREST's `db-schemas`, `public` by default, `graphql_public` on Supabase) plus whatever
a SECURITY DEFINER function or a privilege opens elsewhere. These checks look at everything
there, whoever created it — extension objects included — the way Supabase's database
linter does (the checks here are written for this project; each has a stable id, a level
and a fix hint, see `verify.CATALOG`):

- `exposed_table_rls`: a table in an exposed schema without row level security;
- `exposed_view_invoker`: a view in an exposed schema that is not security_invoker;
- `extension_in_exposed_schema`: an extension installed in an exposed schema;
- `extension_object_writable`: an extension's table or view that PUBLIC, anon or
  authenticated may write (insert, update, delete, truncate, references, trigger);
- `definer_executable`: a SECURITY DEFINER function in an exposed schema, or belonging to an
  extension, that anon or authenticated may execute without the security matrix listing it
  (`ANON_EXECUTE` / `DEFINER_EXECUTE` in `platformdb.security.*`);
- `anon_write`: a write privilege for anon on any relation of a schema it can use, unless
  the security matrix grants anon that operation (TRUNCATE ignores RLS); an error on
  platformdb's and extensions' relations, a warning on someone else's;
- `function_search_path`: a function in an exposed schema whose search_path is not pinned
  (SECURITY DEFINER ones are the `definer` check's);
- `role_statement_timeout`: anon or authenticated without a statement_timeout (Supabase sets
  3 s and 8 s; the compat layer does the same);
- `unindexed_foreign_key`: a foreign key of a table in an exposed schema with no index
  leading with its first column (info);
- `policy_auth_per_row`: a policy calling auth.uid(), auth.jwt(), auth.role() or
  current_setting() directly, evaluated once per row, instead of `(select auth.uid())`.

Objects the migrations did not create are judged as strictly as ours where the check is
about what anon can do (extensions, definer doors, writes); RLS, security_invoker and
search_path of someone else's tables and functions are warnings (not ours to judge).
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Callable
from typing import Any

import psycopg

EXPOSED_SCHEMAS = ("public", "graphql_public")
ROLE_TIMEOUTS = {"anon": "3s", "authenticated": "8s"}
WRITE_PRIVILEGES = "insert,update,delete,truncate,references,trigger"

Add = Callable[..., None]


def definer_allowed() -> dict[str, str]:
    """SECURITY DEFINER functions anon/authenticated may execute: `ANON_EXECUTE` and
    `DEFINER_EXECUTE = {name: why}` of the capability modules in platformdb.security."""
    from platformdb import security

    out: dict[str, str] = {}
    for info in sorted(pkgutil.iter_modules(security.__path__), key=lambda i: i.name):
        mod = importlib.import_module(f"{security.__name__}.{info.name}")
        for attr in ("ANON_EXECUTE", "DEFINER_EXECUTE"):
            allowed = getattr(mod, attr, None) or {}
            out.update({str(k): str(v) for k, v in dict(allowed).items()})
    return out


def anon_writes_allowed() -> set[tuple[str, str]]:
    """(table, operation) pairs the security matrix grants anon."""
    from platformdb import security

    return {(name, op) for name, t in security.load().items() for op in security.OPS if t.allowed("anon", op)}


TABLES_SQL = """
select n.nspname, c.relname, c.relkind, c.relrowsecurity, coalesce(c.reloptions, '{}')::text[],
       exists (select 1 from pg_depend d where d.classid = 'pg_class'::regclass
                         and d.objid = c.oid and d.deptype = 'e') as extension_member
  from pg_class c join pg_namespace n on n.oid = c.relnamespace
 where n.nspname = any(%s) and c.relkind in ('r', 'p', 'v', 'm', 'f') and not c.relispartition
 order by 1, 2
"""
MATVIEW_OPEN_SQL = """
select has_table_privilege('anon', %s::regclass, 'select')
       or has_table_privilege('authenticated', %s::regclass, 'select')
"""
EXTENSIONS_SQL = """
select e.extname, n.nspname from pg_extension e join pg_namespace n on n.oid = e.extnamespace
 order by 1
"""
EXTENSION_WRITABLE_SQL = """
select n.nspname || '.' || c.relname, e.extname,
       array(select g from unnest(array['public', 'anon', 'authenticated']) g
              where (g = 'public' and exists (
                        select 1 from aclexplode(coalesce(c.relacl, acldefault('r', c.relowner))) a
                         where a.grantee = 0
                           and a.privilege_type in ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE',
                                                    'REFERENCES', 'TRIGGER')))
                 or (g <> 'public'
                     and has_table_privilege(g, c.oid, 'insert,update,delete,truncate,references,trigger')))
  from pg_class c
  join pg_namespace n on n.oid = c.relnamespace
  join pg_depend d on d.classid = 'pg_class'::regclass and d.objid = c.oid and d.deptype = 'e'
  join pg_extension e on e.oid = d.refobjid
 where c.relkind in ('r', 'p', 'v', 'm', 'f')
   and n.nspname not in ('pg_catalog', 'information_schema')
 order by 1
"""
DEFINERS_SQL = """
select n.nspname, p.proname, p.oid::regprocedure::text,
       exists (select 1 from pg_depend d where d.classid = 'pg_proc'::regclass
                         and d.objid = p.oid and d.deptype = 'e') as extension_member,
       has_function_privilege('anon', p.oid, 'execute')
           and has_schema_privilege('anon', n.oid, 'usage'),
       has_function_privilege('authenticated', p.oid, 'execute')
           and has_schema_privilege('authenticated', n.oid, 'usage')
  from pg_proc p join pg_namespace n on n.oid = p.pronamespace
 where p.prosecdef and (n.nspname = any(%s) or exists (select 1 from pg_depend d where d.classid = 'pg_proc'::regclass
                         and d.objid = p.oid and d.deptype = 'e'))
   and n.nspname not in ('pg_catalog', 'information_schema')
 order by 3
"""
ANON_WRITE_SQL = """
select n.nspname, c.relname,
       array(select op from unnest(array['insert', 'update', 'delete', 'truncate', 'references',
                                           'trigger']) op
              where has_table_privilege('anon', c.oid, op)),
       exists (select 1 from pg_depend d where d.classid = 'pg_class'::regclass
                and d.objid = c.oid and d.deptype = 'e')
  from pg_class c join pg_namespace n on n.oid = c.relnamespace
 where c.relkind in ('r', 'p', 'v', 'm', 'f')
   and n.nspname not in ('pg_catalog', 'information_schema')
   and has_schema_privilege('anon', n.oid, 'usage')
   and has_table_privilege('anon', c.oid, 'insert,update,delete,truncate,references,trigger')
 order by 1, 2
"""
SEARCH_PATH_SQL = """
select n.nspname, p.proname, p.oid::regprocedure::text,
       coalesce(array_to_string(p.proconfig, ',') like '%%search_path=%%', false)
  from pg_proc p join pg_namespace n on n.oid = p.pronamespace
 where n.nspname = any(%s) and p.prokind in ('f', 'p')
   and not exists (select 1 from pg_depend d where d.classid = 'pg_proc'::regclass
                         and d.objid = p.oid and d.deptype = 'e')
   and not p.prosecdef
 order by 3
"""
ROLE_SETTINGS_SQL = """
select r.rolname,
       (select c from pg_db_role_setting s, unnest(s.setconfig) c
         where s.setrole = r.oid and s.setdatabase in (0, (select oid from pg_database
                                                            where datname = current_database()))
           and c like 'statement_timeout=%%'
         order by s.setdatabase desc limit 1)
  from pg_roles r where r.rolname = any(%s) order by 1
"""
FOREIGN_KEYS_SQL = """
select n.nspname, cl.relname, c.conname,
       exists (select 1 from pg_index i where i.indrelid = c.conrelid and i.indkey[0] = c.conkey[1])
  from pg_constraint c
  join pg_class cl on cl.oid = c.conrelid
  join pg_namespace n on n.oid = cl.relnamespace
 where c.contype = 'f' and n.nspname = any(%s) and not cl.relispartition
   and not exists (select 1 from pg_depend d where d.classid = 'pg_class'::regclass
                         and d.objid = cl.oid and d.deptype = 'e')
 order by 1, 2, 3
"""
POLICIES_SQL = """
select schemaname, tablename, policyname, coalesce(qual, ''), coalesce(with_check, '')
  from pg_policies where schemaname = any(%s) order by 1, 2, 3
"""
# a call of one of these outside a scalar subquery is evaluated for every row
PER_ROW_RE = re.compile(r"(auth\.(uid|jwt|role)|current_setting)\(")
WRAPPED_RE = re.compile(r"\(\s*SELECT\s+(auth\.(uid|jwt|role)|current_setting)\(", re.IGNORECASE)


def _per_row(expr: str) -> bool:
    return len(PER_ROW_RE.findall(expr)) > len(WRAPPED_RE.findall(expr))


def check(
    conn: psycopg.Connection[Any], ours_tables: set[tuple[str, str]], ours_functions: set[tuple[str, str]], add: Add
) -> None:
    schemas = list(EXPOSED_SCHEMAS)
    allowed = definer_allowed()

    for schema, name, kind, rls, options, ext in conn.execute(TABLES_SQL, (schemas,)):
        if ext or (schema, name) in ours_tables:
            continue  # extensions: judged below; ours: the `rls`, `policies` and `views` checks
        full = f"{schema}.{name}"
        if kind in ("r", "p", "f"):
            add(
                "exposed_table_rls",
                full,
                bool(rls),
                "not created by platformdb; " + ("row level security on" if rls else "row level security is disabled"),
                "warning",
            )
        elif kind == "v":
            invoker = any(
                o.lower() in ("security_invoker=true", "security_invoker=on", "security_invoker=1") for o in options
            )
            add(
                "exposed_view_invoker",
                full,
                invoker,
                "" if invoker else "not created by platformdb; runs with its owner's rights (bypasses RLS)",
                "warning",
            )
        elif kind == "m":
            row = conn.execute(MATVIEW_OPEN_SQL, (full, full)).fetchone()
            readable = bool(row and row[0])
            add(
                "exposed_view_invoker",
                full,
                not readable,
                "materialized view readable by anon/authenticated (ignores RLS)"
                if readable
                else "not readable by the API roles",
                "warning",
            )

    for ext, schema in conn.execute(EXTENSIONS_SQL):
        exposed = schema in schemas
        add(
            "extension_in_exposed_schema",
            ext,
            not exposed,
            f"installed in {schema}" + (" (exposed)" if exposed else ""),
            "warning",
        )

    for name, ext, grantees in conn.execute(EXTENSION_WRITABLE_SQL):
        add(
            "extension_object_writable",
            name,
            not grantees,
            f"{ext}: writable by {', '.join(grantees)}" if grantees else f"{ext}: read-only for the API roles",
        )

    for _schema, name, sig, ext, anon_x, auth_x in conn.execute(DEFINERS_SQL, (schemas,)):
        who = [r for r, x in (("anon", anon_x), ("authenticated", auth_x)) if x]
        label = sig  # regprocedure text: schema-qualified unless on the search_path
        if not who:
            add("definer_executable", label, True, "not executable by anon or authenticated")
        elif not ext and name in allowed:
            add("definer_executable", label, True, f"{', '.join(who)}: allowed: {allowed[name]}")
        else:
            add(
                "definer_executable",
                label,
                False,
                f"{'extension function ' if ext else ''}executable by {', '.join(who)} and not listed"
                " in the security matrix (ANON_EXECUTE / DEFINER_EXECUTE)",
            )

    anon_ok = anon_writes_allowed()
    for schema, name, privs, ext in conn.execute(ANON_WRITE_SQL):
        extra = [p for p in privs if not (schema == "public" and (name, p) in anon_ok)]
        ours = (schema, name) in ours_tables
        add(
            "anon_write",
            f"{schema}.{name}",
            not extra,
            ("anon may " + ", ".join(extra) + ("" if ours or ext else " (not created by platformdb)"))
            if extra
            else "allowed by the security matrix",
            "error" if ours or ext else "warning",
        )

    for schema, name, sig, pinned in conn.execute(SEARCH_PATH_SQL, (schemas,)):
        add(
            "function_search_path",
            sig if schema == "public" else f"{schema}.{sig}",
            bool(pinned),
            "search_path pinned" if pinned else "search_path is not pinned (resolves names through the caller's)",
            "error" if (schema, name) in ours_functions else "warning",
        )

    for role, setting in conn.execute(ROLE_SETTINGS_SQL, (list(ROLE_TIMEOUTS),)):
        add(
            "role_statement_timeout",
            role,
            setting is not None,
            setting or f"no statement_timeout (Supabase: {ROLE_TIMEOUTS[role]})",
        )

    for schema, table, con, indexed in conn.execute(FOREIGN_KEYS_SQL, (schemas,)):
        add(
            "unindexed_foreign_key",
            f"{schema}.{table}.{con}",
            bool(indexed),
            "" if indexed else "no index leads with the key's columns",
            "info",
        )

    for schema, table, policy, qual, with_check in conn.execute(POLICIES_SQL, (schemas,)):
        bad = _per_row(qual) or _per_row(with_check)
        add(
            "policy_auth_per_row",
            f"{schema}.{table}.{policy}",
            not bad,
            "calls auth.*()/current_setting() for every row" if bad else "",
            "warning",
        )
