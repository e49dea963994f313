"""How the dashboard reaches the database: two roles, a read-only pool, one audited write.

Roles (cluster-wide, so not in a migration — a Supabase migration may not create roles):

- ``platformdb_monitor`` (NOLOGIN): EXECUTE on the read-only ``monitoring_*`` functions of
  migration 20260401170000 (SECURITY DEFINER and STABLE: a non-volatile function cannot
  write) and nothing else — no table, no view, no other function. Every page and
  ``/metrics`` run as this role, in read-only transactions.
- ``platformdb_operator`` (NOLOGIN): EXECUTE on ``monitoring_redrive_dead_letters`` (the
  redrive button), which writes an audit entry. Used for that one request only.
- ``platformdb_flags_api`` (NOLOGIN): EXECUTE on ``feature_flags_client_state`` (the body of
  Unleash's ``GET /api/client/features``) and ``record_feature_flag_evaluations`` (its
  ``POST /api/client/metrics``), nothing else: the Unleash client API mounted at ``/api``
  runs as this role (the monitor role cannot read flag definitions nor count).

``ROLES_SQL`` creates the roles when missing and (re)grants EXECUTE; it needs a user that may
create roles and owns the functions (the migration user). ``platformdb dashboard`` runs it
by itself when it connects with such a user (the embedded cluster), or on demand with
``--setup-roles``; a login used in production only needs membership:
``create role dashboard login password '…' in role platformdb_monitor;``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from platformdb import db

MONITOR_ROLE = "platformdb_monitor"
OPERATOR_ROLE = "platformdb_operator"
FLAGS_API_ROLE = "platformdb_flags_api"

ROLES_SQL = """
do $roles$
begin
    if not exists (select 1 from pg_catalog.pg_roles where rolname = 'platformdb_monitor') then
        create role platformdb_monitor nologin noinherit;
    end if;
    if not exists (select 1 from pg_catalog.pg_roles where rolname = 'platformdb_operator') then
        create role platformdb_operator nologin noinherit;
    end if;
    if not exists (select 1 from pg_catalog.pg_roles where rolname = 'platformdb_flags_api') then
        create role platformdb_flags_api nologin noinherit;
    end if;
exception when duplicate_object or unique_violation then
    null;  -- another database of this cluster created them at the same moment
end
$roles$;

comment on role platformdb_monitor is
    'platformdb dashboard and /metrics: EXECUTE on the read-only monitoring_* functions only.';
comment on role platformdb_operator is
    'platformdb dashboard redrive button: EXECUTE on monitoring_redrive_dead_letters only.';
comment on role platformdb_flags_api is
    'platformdb dashboard, Unleash client API at /api: EXECUTE on feature_flags_client_state'
    ' and record_feature_flag_evaluations only.';
grant usage on schema public to platformdb_monitor, platformdb_operator, platformdb_flags_api;

do $grants$
declare
    v_fn regprocedure;
begin
    -- read-only by selection: SECURITY DEFINER and not VOLATILE
    for v_fn in
        select p.oid::regprocedure from pg_catalog.pg_proc p
         where p.pronamespace = 'public'::regnamespace
           and p.proname like 'monitoring\\_%' and p.prosecdef and p.provolatile <> 'v'
    loop
        execute pg_catalog.format('grant execute on function %s to platformdb_monitor', v_fn);
    end loop;
    if pg_catalog.to_regprocedure(
           'public.monitoring_redrive_dead_letters(text, text, integer, text)') is not null then
        grant execute on function public.monitoring_redrive_dead_letters(text, text, integer, text)
            to platformdb_operator;
    end if;
    if pg_catalog.to_regprocedure('public.feature_flags_client_state(text)') is not null then
        grant execute on function public.feature_flags_client_state(text) to platformdb_flags_api;
        grant execute on function public.record_feature_flag_evaluations(jsonb) to platformdb_flags_api;
    end if;
end
$grants$;
"""

# pg_stat_statements for the query page: the embedded cluster preloads the library; the
# extension itself is created (by a superuser only) in the schema Supabase uses for it.
STATEMENTS_SQL = """
create schema if not exists extensions;
create extension if not exists pg_stat_statements with schema extensions;
"""

READ_FUNCTIONS_SQL = """
select p.oid::regprocedure::text
  from pg_catalog.pg_proc p
 where p.pronamespace = 'public'::regnamespace
   and p.proname like 'monitoring\\_%' and p.prosecdef and p.provolatile <> 'v'
 order by 1
"""
MISSING_GRANTS_SQL = """
select p.oid::regprocedure::text
  from pg_catalog.pg_proc p
 where p.pronamespace = 'public'::regnamespace
   and p.proname like 'monitoring\\_%%' and p.prosecdef and p.provolatile <> 'v'
   and not pg_catalog.has_function_privilege(%(role)s, p.oid, 'execute')
 order by 1
"""
PRIVILEGED_SQL = """
select r.rolsuper or r.rolcreaterole,
       r.rolsuper,
       exists (select 1 from pg_catalog.pg_available_extensions
                where name = 'pg_stat_statements' and installed_version is null)
  from pg_catalog.pg_roles r where r.rolname = current_user
"""
ROLE_EXISTS_SQL = "select exists (select 1 from pg_catalog.pg_roles where rolname = %s)"
CAN_BECOME_SQL = "select pg_catalog.pg_has_role(session_user, %s, 'member')"
REDRIVE_SQL = """
select public.monitoring_redrive_dead_letters(
    p_kind => %(kind)s, p_name => %(name)s, p_limit => %(limit)s, p_requested_by => %(by)s)
"""


class AccessError(RuntimeError):
    """The dashboard cannot act as its read-only role in this database."""


def setup_roles(conn: psycopg.Connection[Any]) -> list[str]:
    """Create the roles if missing and grant them their functions. Returns what was done."""
    row = conn.execute(PRIVILEGED_SQL).fetchone()
    if row is None or not row[0]:
        raise AccessError(
            "setting up the dashboard roles needs a user that may create roles and owns the"
            " monitoring functions (the migration user)"
        )
    done: list[str] = []
    with conn.transaction():
        conn.execute(ROLES_SQL)
        done.append(f"roles {MONITOR_ROLE}, {OPERATOR_ROLE} and {FLAGS_API_ROLE} ready")
    if row[1] and row[2]:
        try:
            with conn.transaction():
                conn.execute(STATEMENTS_SQL)
            done.append("pg_stat_statements installed in schema extensions")
        except psycopg.Error as exc:  # e.g. the library is absent from this installation
            done.append(f"pg_stat_statements not installed: {exc.diag.message_primary or exc}")
    return done


def missing_access(conn: psycopg.Connection[Any]) -> list[str]:
    """What keeps the session user from running the dashboard as platformdb_monitor."""
    exists = conn.execute(ROLE_EXISTS_SQL, (MONITOR_ROLE,)).fetchone()
    if not exists or not exists[0]:
        return [f"role {MONITOR_ROLE} does not exist"]
    problems: list[str] = []
    member = conn.execute(CAN_BECOME_SQL, (MONITOR_ROLE,)).fetchone()
    if not member or not member[0]:
        problems.append(f"the connecting user is not a member of {MONITOR_ROLE}")
    functions = [r[0] for r in conn.execute(READ_FUNCTIONS_SQL).fetchall()]
    if not functions:
        problems.append("the monitoring functions are missing (run `platformdb migrate up`)")
    missing = [r[0] for r in conn.execute(MISSING_GRANTS_SQL, {"role": MONITOR_ROLE}).fetchall()]
    if missing:
        problems.append(f"{MONITOR_ROLE} may not execute {', '.join(missing)}")
    return problems


FLAGS_API_READY_SQL = """
select pg_catalog.to_regprocedure('public.feature_flags_client_state(text)') is null
       or (exists (select 1 from pg_catalog.pg_roles where rolname = 'platformdb_flags_api')
           and pg_catalog.has_function_privilege(
                   'platformdb_flags_api', 'public.feature_flags_client_state(text)', 'execute'))
"""


def flags_api_ready(conn: psycopg.Connection[Any]) -> bool:
    """Whether platformdb_flags_api exists with its grants (not needed to start the dashboard:
    without it /api answers 503)."""
    row = conn.execute(FLAGS_API_READY_SQL).fetchone()
    return bool(row and row[0])


def ensure_access(url: str, setup: bool | None = None) -> list[str]:
    """Make sure the dashboard can read as platformdb_monitor; set the roles up when asked
    (setup=True), or when needed and possible (setup=None). Returns what was done."""
    with psycopg.connect(url, autocommit=True) as conn:
        done: list[str] = []
        problems = missing_access(conn)
        if setup or (setup is None and (problems or not flags_api_ready(conn))):
            privileged = conn.execute(PRIVILEGED_SQL).fetchone()
            if setup or (privileged and privileged[0]):
                done = setup_roles(conn)
                problems = missing_access(conn)
        if problems:
            raise AccessError(
                "the dashboard cannot read as platformdb_monitor: "
                + "; ".join(problems)
                + " — run `platformdb dashboard --setup-roles` once with the migration user,"
                " and connect with a login that is a member of platformdb_monitor"
            )
        return done


# constants only: nothing here comes from a request. Transaction-local (SET LOCAL), applied at
# the start of every checkout, so the same code is right on a transaction-mode pooler, where
# consecutive transactions may run on different server sessions.
MONITOR_SETTINGS_SQL = (
    "select pg_catalog.set_config('role', 'platformdb_monitor', true),"
    " pg_catalog.set_config('transaction_read_only', 'on', true),"
    " pg_catalog.set_config('statement_timeout', '10s', true),"
    " pg_catalog.set_config('platformdb.cache_stats', 'off', true)"  # reading stats is not a lookup
)


class MonitorPool(ConnectionPool):
    """A pool whose every checkout is one read-only transaction as platformdb_monitor with a
    statement timeout (`connection()`); `operator_connection()` gives a plain one (redrive)."""

    @contextmanager
    def connection(self, timeout: float | None = None) -> Iterator[psycopg.Connection[Any]]:
        with super().connection(timeout) as conn, conn.transaction():
            conn.execute(MONITOR_SETTINGS_SQL)
            yield conn

    def operator_connection(self, timeout: float | None = None) -> AbstractContextManager[psycopg.Connection[Any]]:
        return super().connection(timeout)


def monitor_pool(url: str, max_size: int = 4) -> MonitorPool:
    """Connections that run as platformdb_monitor, read-only, with a statement timeout."""
    return MonitorPool(
        url,
        min_size=1,
        max_size=max_size,
        kwargs={
            "autocommit": True,
            "row_factory": dict_row,
            "application_name": "platformdb-dashboard",
            **db.connect_kwargs(url),
        },
        open=True,
        name="platformdb-dashboard",
    )


def can_operate(pool: MonitorPool) -> bool:
    """Whether this login may become platformdb_operator (the redrive button)."""
    with pool.connection() as conn:
        row = conn.execute(
            "select exists (select 1 from pg_catalog.pg_roles where rolname = %(r)s)"
            " and pg_catalog.pg_has_role(session_user, %(r)s, 'member') as ok",
            {"r": OPERATOR_ROLE},
        ).fetchone()
    return bool(row and row["ok"])  # type: ignore[call-overload]


def redrive(pool: MonitorPool, kind: str, name: str, limit: int, requested_by: str) -> int:
    """Re-drive dead letters as platformdb_operator in one read-write transaction."""
    with pool.operator_connection() as conn, conn.transaction():
        conn.execute("set transaction read write")
        conn.execute("set local role platformdb_operator")
        row = conn.execute(REDRIVE_SQL, {"kind": kind, "name": name, "limit": limit, "by": requested_by}).fetchone()
    return int(row["monitoring_redrive_dead_letters"]) if row else 0  # type: ignore[call-overload]
