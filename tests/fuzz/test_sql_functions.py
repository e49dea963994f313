"""Every SQL function the migrations create, fuzzed with Hypothesis as anon, authenticated and
service_role (SPEC §1, §2).

The functions are listed from the migration files themselves (parsed with pglast), so a
function added later is fuzzed without touching this file; trigger functions are left out
(PostgreSQL refuses to call them directly). Each example calls one function with named
arguments (as PostgREST does), in its own transaction acting as the role, and expects:

- success, or an error of a documented class (ALLOWED below): data exceptions (22xxx,
  e.g. 22023 invalid_parameter_value, 22004 null_value_not_allowed, 22003 out of range,
  22P02 a value that does not parse as its type), integrity violations (23xxx),
  insufficient privilege (42501), the project's own PD00x codes (platformdb.errors), and
  program limits (54xxx: e.g. jsonb nested deeper than the server's stack allows).
  Anything else fails the test: XX000 internal errors, P0001 (a RAISE without a SQLSTATE),
  P0002/P0003 (a STRICT lookup that found nothing or too much), 42883/42P01 (a function
  that cannot find what it uses), 2F005, 57014 (a statement that ran into the time limit),
  a lost connection;
- a role without EXECUTE never succeeds;
- after a failure, nothing written: the row count and a checksum of every table in
  `public` and `auth` are what they were before the call.

Values psycopg refuses to send (NUL in text, lone surrogates) never reach the server; they
are counted as client-side refusals. The counts by function and SQLSTATE are written to
`bench/results/fuzz_sql_functions[-smoke].json`.
"""

from __future__ import annotations

import json
import os
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pglast
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pglast import ast
from psycopg import sql

from platformdb import db, errors, migrate
from tests.chaos import report
from tests.conftest import only_migrations
from tests.fuzz.conftest import harvest, profile
from tests.fuzz.values import Arg, Pools, argument

PROFILE = profile()
EXAMPLES = int(os.environ.get("PLATFORMDB_FUZZ_EXAMPLES") or {"smoke": 10, "deep": 80}[PROFILE])
STATEMENT_TIMEOUT = "20s"
ROLES = ("anon", "authenticated", "service_role")

PD_STATES = {s for s in errors.SQLSTATE_MAP if s.startswith("PD")}
ALLOWED_CLASSES = {"22", "23", "54"}
ALLOWED_STATES = {"42501"} | PD_STATES

SPEC_FUNCTIONS = {
    "record_metric",
    "log_audit_event",
    "update_whatsapp_session_activity",
    "enqueue_whatsapp_message",
    "cleanup_expired_whatsapp_sessions",
    "create_transaction",
    "update_transaction_status",
    "register_service",
    "service_heartbeat",
    "is_feature_enabled",
    "append_event",
    "get_aggregate_events",
    "enqueue_message",
    "schedule_job",
    "complete_job",
    "find_nearby_locations",
    "get_cached_route",
    "set_cache",
    "get_cache",
    "invalidate_cache_by_tag",
    "cleanup_expired_cache",
}


def _migration_files() -> list[Path]:
    only = only_migrations()
    files = sorted(p for p in migrate.default_dir().glob("*.sql") if not p.name.endswith(".down.sql"))
    if only:
        files = [p for p in files if "system_observability" in p.name or any(o in p.name for o in only)]
    return files


def created_functions() -> list[str]:
    """Names of the functions in `public` the migrations create, trigger functions excepted."""
    names: set[str] = set()
    for path in _migration_files():
        for raw in pglast.parse_sql(path.read_text()):
            stmt = raw.stmt
            if not isinstance(stmt, ast.CreateFunctionStmt) or stmt.is_procedure:
                continue
            parts = [n.sval for n in stmt.funcname]
            returns = [n.sval for n in stmt.returnType.names] if stmt.returnType else []
            if len(parts) == 2 and parts[0] == "public" and returns[-1:] != ["trigger"]:
                names.add(parts[1])
    return sorted(names)


FUNCTIONS = created_functions()


@dataclass(frozen=True)
class Param:
    name: str
    typname: str
    schema: str
    element: str | None
    element_schema: str | None
    has_default: bool

    def type_sql(self) -> sql.Composable:
        if self.element is not None:
            assert self.element_schema is not None
            return sql.SQL("{}[]").format(sql.Identifier(self.element_schema, self.element))
        return sql.Identifier(self.schema, self.typname)


@dataclass(frozen=True)
class Signature:
    oid: int
    name: str
    params: tuple[Param, ...]
    executable_by: frozenset[str]
    strict: bool


SIGNATURES_SQL = """
select p.oid, p.proname, p.pronargs, p.pronargdefaults, p.proisstrict,
       coalesce(p.proargnames, '{}'::text[]) as names,
       coalesce(p.proargmodes::text[], '{}'::text[]) as modes,
       array(select format('%%s|%%s|%%s|%%s', tn.nspname, t.typname,
                           coalesce(en.nspname, ''), coalesce(e.typname, ''))
               from unnest(p.proargtypes) with ordinality a(typ, n)
               join pg_type t on t.oid = a.typ
               join pg_namespace tn on tn.oid = t.typnamespace
               left join pg_type e on e.oid = t.typelem and t.typcategory = 'A'
               left join pg_namespace en on en.oid = e.typnamespace
              order by a.n) as types,
       array(select r from unnest(array['anon', 'authenticated', 'service_role']) r
              where has_function_privilege(r, p.oid, 'EXECUTE')) as executable_by
  from pg_proc p
 where p.pronamespace = 'public'::regnamespace and p.proname = %s and p.prokind = 'f'
 order by p.oid
"""


def signatures(conn: psycopg.Connection[Any], name: str) -> list[Signature]:
    out = []
    for oid, proname, nargs, ndefaults, strict, names, modes, types, executable in conn.execute(
        SIGNATURES_SQL, (name,)
    ).fetchall():
        # input argument names (proargnames also lists OUT/TABLE columns)
        in_names = [n for n, m in zip(names, modes or ["i"] * len(names), strict=False) if m in ("i", "b", "v")]
        if not modes:
            in_names = list(names[:nargs])
        params = []
        for i, spec in enumerate(types):
            schema, typname, el_schema, element = spec.split("|")
            params.append(
                Param(
                    name=in_names[i],
                    typname=typname,
                    schema=schema,
                    element=element or None,
                    element_schema=el_schema or None,
                    has_default=i >= nargs - ndefaults,
                )
            )
        out.append(Signature(oid, proname, tuple(params), frozenset(executable), strict))
    return out


# ---- state checks ---------------------------------------------------------------------


def checked_tables(conn: psycopg.Connection[Any]) -> list[tuple[str, str]]:
    return [
        (r[0], r[1])
        for r in conn.execute(
            """
            select n.nspname, c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
             where n.nspname in ('public', 'auth') and c.relkind in ('r', 'p') and not c.relispartition
               and not exists (select 1 from pg_depend d where d.objid = c.oid and d.deptype = 'e')
             order by 1, 2
            """
        ).fetchall()
    ]


def snapshot_query(tables: list[tuple[str, str]]) -> sql.Composed:
    parts = [
        sql.SQL(
            "select {label}, count(*), coalesce(sum(hashtextextended(t::text, 0)), 0)::numeric from {tbl} t"
        ).format(label=sql.Literal(f"{schema}.{name}"), tbl=sql.Identifier(schema, name))
        for schema, name in tables
    ]
    return sql.Composed([sql.SQL(" union all ").join(parts)])


@dataclass(repr=False)
class Fuzz:
    conn: psycopg.Connection[Any]
    pools: Pools
    snapshot_sql: sql.Composed
    state: dict[str, tuple[int, Any]] = field(default_factory=dict)
    stats: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    signatures: dict[str, list[Signature]] = field(default_factory=dict)
    strategies: dict[tuple[str, str | None, bool], st.SearchStrategy[Arg]] = field(default_factory=dict)
    users: st.SearchStrategy[Any] | None = None

    def __repr__(self) -> str:  # Hypothesis prints the test's arguments on failure
        return f"Fuzz({len(self.state)} tables)"

    def snapshot(self) -> dict[str, tuple[int, Any]]:
        return {r[0]: (r[1], r[2]) for r in self.conn.execute(self.snapshot_sql).fetchall()}

    def signatures_of(self, name: str) -> list[Signature]:
        if name not in self.signatures:
            self.signatures[name] = signatures(self.conn, name)
        return self.signatures[name]

    def argument(self, p: Param) -> st.SearchStrategy[Arg]:
        key = (p.typname, p.element, p.has_default)
        if key not in self.strategies:
            size = "deep" if PROFILE == "deep" else "smoke"
            self.strategies[key] = argument(p.typname, p.element, p.has_default, self.pools, size)
        return self.strategies[key]

    def user(self) -> st.SearchStrategy[Any]:
        """A user who owns seeded rows, or a stranger."""
        if self.users is None:
            owners = st.sampled_from(self.pools.users) if self.pools.users else st.uuids()
            self.users = st.one_of(owners, owners, st.uuids())
        return self.users


@pytest.fixture(scope="module")
def fuzz(fuzz_url: str) -> Iterator[Fuzz]:
    conn = psycopg.connect(fuzz_url, autocommit=True)
    f = Fuzz(conn, harvest(conn), snapshot_query(checked_tables(conn)))
    f.state = f.snapshot()
    try:
        yield f
    finally:
        conn.close()
        _write_report(f)


def _write_report(f: Fuzz) -> None:
    total: Counter[str] = Counter()
    for c in f.stats.values():
        total.update(c)
    undocumented = total["violation:undocumented"]
    written = total["violation:written"]
    no_execute = total["violation:no-execute-succeeded"]
    calls = sum(v for k, v in total.items() if not k.startswith("violation:")) + no_execute
    if not calls:
        return
    by_state = {k: v for k, v in sorted(total.items())}
    client = total["client:nul"] + total["client:surrogate"]
    cast = sum(v for k, v in total.items() if k.startswith("cast:"))
    failed = calls - total["ok"] - client - cast - no_execute - undocumented
    line = (
        f"fuzz sql: {len(f.stats)} functions, {calls} calls as anon/authenticated/service_role:"
        f" {total['ok']} ok, {failed} refused by the function with a documented SQLSTATE,"
        f" {cast} refused by the server as not of the parameter's type, {client} refused client-side,"
        f" {undocumented} undocumented errors, {written} writes after a failure,"
        f" {no_execute} successes without EXECUTE"
    )
    report.write(
        "sql_functions",
        line,
        {
            "functions": len(f.stats),
            "calls": calls,
            "examples_per_function": EXAMPLES,
            "outcomes": by_state,
            "by_function": {k: dict(sorted(v.items())) for k, v in sorted(f.stats.items())},
            "allowed_classes": sorted(ALLOWED_CLASSES),
            "allowed_states": sorted(ALLOWED_STATES),
        },
        section="fuzz",
        run_profile=PROFILE,
    )


# ---- the call -------------------------------------------------------------------------


def build_call(sig: Signature, args: list[Arg]) -> tuple[sql.Composed | None, sql.Composed, list[Any]]:
    """(the arguments' casts alone, or None when nothing is cast; the call; its parameters)."""
    parts: list[sql.Composable] = []
    casts: list[sql.Composable] = []
    params: list[Any] = []
    for p, a in zip(sig.params, args, strict=True):
        if a.mode == "default":
            continue
        if a.mode == "null":
            expr = sql.SQL("null::{}").format(p.type_sql())
        else:
            template = {"text": "%s::text::{}", "bytes": "convert_from(%s::bytea, 'UTF8')::{}"}.get(a.mode, "%s::{}")
            expr = sql.SQL(template).format(p.type_sql())
            params.append(a.value)
            casts.append(sql.SQL("({}) is null").format(expr))
        parts.append(sql.SQL("{} => {}").format(sql.Identifier(p.name), expr))
    query = sql.SQL("select count(*) from {}({}) as r").format(
        sql.Identifier("public", sig.name), sql.SQL(", ").join(parts)
    )
    cast = sql.SQL("select {}").format(sql.SQL(", ").join(casts)) if casts else None
    return cast, query, params


def outcome_of(exc: BaseException) -> str:
    """'client:…' for refusals before sending, else the SQLSTATE; raises on a lost connection."""
    if isinstance(exc, UnicodeEncodeError):
        return "client:surrogate"
    if isinstance(exc, psycopg.DataError) and exc.sqlstate is None and "NUL" in str(exc):
        return "client:nul"
    if isinstance(exc, psycopg.Error) and exc.sqlstate:
        return exc.sqlstate
    raise AssertionError(f"no SQLSTATE (connection lost? server crash?): {type(exc).__name__}: {exc}") from exc


def documented(state: str) -> bool:
    return state in ALLOWED_STATES or state[:2] in ALLOWED_CLASSES


def call(f: Fuzz, sig: Signature, role: str, user: Any, args: list[Arg]) -> None:
    cast, query, params = build_call(sig, args)
    shown = ", ".join(f"{p.name}={a.describe()}" for p, a in zip(sig.params, args, strict=True))
    where = f"{sig.name}({shown}) as {role}{f' {user}' if user else ''}"
    stage = "cast"
    try:
        with f.conn.transaction():
            f.conn.execute(
                "select set_config('request.jwt.claims', %s, true), set_config('role', %s, true),"
                " set_config('statement_timeout', %s, true)",
                (json.dumps(db.claims_for(role, user)), role, STATEMENT_TIMEOUT),
            )
            if cast is not None:
                f.conn.execute(cast, params).fetchone()
            stage = "call"
            f.conn.execute(query, params).fetchone()
    except (psycopg.Error, UnicodeEncodeError) as exc:
        state = outcome_of(exc)
        if stage == "cast" and not state.startswith("client:"):
            # the server refused the value as its type before any function ran (22P02 for a
            # uuid that does not parse, 42P01 for a regclass naming no table, 22021 for
            # invalid UTF-8, …): that is the type's own input check, whatever its SQLSTATE
            f.stats[sig.name]["cast:" + state] += 1
            if f.snapshot() != f.state:
                f.stats[sig.name]["violation:written"] += 1
                raise AssertionError(f"{where}: a refused cast changed the database")
            return
        f.stats[sig.name][state] += 1
        if not state.startswith("client:") and not documented(state):
            f.stats[sig.name]["violation:undocumented"] += 1
            raise AssertionError(f"undocumented SQLSTATE {state} from {where}: {exc}")
        after = f.snapshot()
        changed = sorted(t for t in after if after[t] != f.state.get(t))
        if changed:
            f.stats[sig.name]["violation:written"] += 1
            raise AssertionError(f"{where} failed ({state}) but changed {changed}")
        return
    # a STRICT function given a NULL argument is never called (the planner answers NULL
    # for it), so no EXECUTE check happens and nothing runs: the one success allowed
    never_called = sig.strict and any(a.mode == "null" for a in args)
    if role not in sig.executable_by and not never_called:
        f.stats[sig.name]["violation:no-execute-succeeded"] += 1
        raise AssertionError(f"{where} succeeded although {role} has no EXECUTE on it")
    f.stats[sig.name]["ok"] += 1
    f.state = f.snapshot()


def test_every_spec_function_is_fuzzed() -> None:
    if only_migrations():
        missing: set[str] = set()  # a narrowed run fuzzes what its migrations create
    else:
        missing = SPEC_FUNCTIONS - set(FUNCTIONS)
    assert not missing, f"SPEC §1 functions not found in the migrations: {sorted(missing)}"
    assert len(FUNCTIONS) >= (len(SPEC_FUNCTIONS) if not only_migrations() else 2)


@pytest.mark.filterwarnings("ignore:Generating overly large repr")
@pytest.mark.parametrize("name", FUNCTIONS)
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
        HealthCheck.filter_too_much,
    ],
)
@given(data=st.data())
def test_function_survives_hostile_input(fuzz: Fuzz, name: str, data: st.DataObject) -> None:
    sigs = fuzz.signatures_of(name)
    assert sigs, f"{name} is created by a migration but not in the database"
    sig = data.draw(st.sampled_from(sigs), label="signature")
    # every role, with a lean towards those that may call it (else most calls stop at 42501)
    role = data.draw(st.sampled_from([*ROLES, *sorted(sig.executable_by) * 2]), label="role")
    user = data.draw(fuzz.user(), label="user") if role == "authenticated" else None
    args = [data.draw(fuzz.argument(p), label=p.name) for p in sig.params]
    call(fuzz, sig, role, user, args)
