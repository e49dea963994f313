"""`platformdb citus distribute`: the scale-out plan (platformdb.scaling.PLAN) made executable.

On a Citus coordinator that has the migrations, `distribute` runs, table by table:
1. the plan's constraint changes (a primary key that gains the distribution column, a unique
   constraint that becomes a plain index, a foreign key Citus cannot keep);
2. `create_reference_table` for reference tables, then `create_distributed_table` for each
   co-location group (the group's first table with `colocate_with => 'none'`, the others
   with `colocate_with => <first>`), referenced tables before the tables that reference them.

It is idempotent: a change already made and a table already placed are skipped, so a run
that stopped half-way is finished by running it again. Without Citus it refuses (exit 1)
before changing anything; `--dry-run` prints the SQL (on any PostgreSQL).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

import psycopg
import typer

from platformdb.errors import PlatformDBError
from platformdb.scaling import PLAN, Placement


class CitusMissing(PlatformDBError):
    """The database has no Citus extension (or no coordinator metadata)."""


@dataclass(frozen=True)
class Step:
    table: str
    what: str  # human summary
    sql: str
    after_placement: bool = False  # a co-located foreign key: added once both tables are placed


_CONSTRAINT = re.compile(r"^(PRIMARY KEY|UNIQUE|FOREIGN KEY)\b", re.IGNORECASE)
_INDEX = re.compile(r"^index\s*(\([^)]*\))", re.IGNORECASE)


def change_kind(value: str) -> str:
    """'constraint' | 'index' | 'drop' for a value of Placement.changes (ValueError otherwise)."""
    if _CONSTRAINT.match(value):
        return "constraint"
    if _INDEX.match(value):
        return "index"
    if value.lower().startswith("drop:"):
        return "drop"
    raise ValueError(f"a change must start with PRIMARY KEY/UNIQUE/FOREIGN KEY, 'index (…):' or 'drop:': {value!r}")


def _q(ident: str) -> str:
    return '"' + ident.replace('"', '""') + '"'


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def citus_version(conn: psycopg.Connection[Any]) -> str | None:
    row = conn.execute("select extversion from pg_extension where extname = 'citus'").fetchone()
    return None if row is None else str(row[0])


def _constraint_def(conn: psycopg.Connection[Any], table: str, name: str) -> str | None:
    row = conn.execute(
        "select pg_get_constraintdef(oid) from pg_constraint"
        " where conrelid = to_regclass(%s) and conname = %s",
        (f"public.{table}", name),
    ).fetchone()
    return None if row is None else str(row[0])


def _unique_index(conn: psycopg.Connection[Any], name: str) -> bool:
    row = conn.execute(
        "select i.indisunique from pg_index i where i.indexrelid = to_regclass(%s)", (f"public.{name}",)
    ).fetchone()
    return bool(row and row[0])


def _index_exists(conn: psycopg.Connection[Any], name: str) -> bool:
    return conn.execute("select to_regclass(%s) is not null", (f"public.{name}",)).fetchone()[0]  # type: ignore[index]


def _norm(text: str) -> str:
    """A constraint definition compared without spaces and without the public. qualification
    (pg_get_constraintdef leaves it out when public is on the search_path)."""
    return re.sub(r"\s+|\bpublic\.", "", text.strip()).lower()


def change_steps(conn: psycopg.Connection[Any] | None, table: str, p: Placement) -> list[Step]:
    """The DDL of the plan's changes still to make on `table` (all of them when conn is None)."""
    steps: list[Step] = []
    t = f"public.{_q(table)}"
    for name, value in p.changes.items():
        kind = change_kind(value)
        current = _constraint_def(conn, table, name) if conn is not None else "?"
        if kind == "constraint":
            if current is not None and _norm(current).startswith(_norm(value)):
                continue
            if value.upper().startswith("FOREIGN KEY"):
                # dropped before the table is placed (Citus refuses a key that is not co-located),
                # added again once both sides are placed in the same group
                if current is not None:
                    steps.append(Step(table, f"drop {name} (re-added co-located)",
                                      f"alter table {t} drop constraint if exists {_q(name)}"))
                steps.append(Step(table, f"{name} → {value}",
                                  f"alter table {t} add constraint {_q(name)} {value}", after_placement=True))
                continue
            # cascade: a foreign key that referenced the old key is re-added by its own table's
            # change (the scaling-plan test insists every such key has one)
            drop = f"drop constraint if exists {_q(name)} cascade, " if current is not None else ""
            steps.append(Step(table, f"{name} → {value}", f"alter table {t} {drop}add constraint {_q(name)} {value}"))
        elif kind == "index":
            m = _INDEX.match(value)
            assert m is not None
            cols = m.group(1)
            unique_index = current is None and conn is not None and _unique_index(conn, name)
            if current is None and conn is not None and _index_exists(conn, name) and not unique_index:
                continue  # a plain index already
            drop = (
                f"drop index if exists public.{_q(name)}"  # a unique index without a constraint
                if unique_index
                else f"alter table {t} drop constraint if exists {_q(name)}"
            )
            steps.append(
                Step(
                    table,
                    f"{name} → plain index {cols}",
                    f"{drop};\ncreate index if not exists {_q(name)} on {t} {cols}",
                )
            )
        else:
            if current is None:
                continue
            steps.append(Step(table, f"drop {name}", f"alter table {t} drop constraint if exists {_q(name)}"))
    return steps


# `( SELECT auth.uid() AS uid)`: Supabase's advice (one evaluation per statement, an initplan)
# is a subquery, which Citus refuses in the policies of distributed tables. The bare call is
# the same predicate (auth.* are STABLE: one value per statement) that Citus can ship.
_SUBSELECT_CALL = re.compile(r"\(\s*SELECT\s+(auth\.\w+\(\))\s+AS\s+\w+\)", re.IGNORECASE)

POLICIES = """
select p.polname, pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid)
  from pg_policy p where p.polrelid = to_regclass(%s) order by 1
"""


def policy_steps(conn: psycopg.Connection[Any], table: str) -> list[Step]:
    """ALTER POLICY for each policy of `table` whose expressions call auth.*() through a subquery."""
    steps = []
    for name, qual, check in conn.execute(POLICIES, (f"public.{table}",)).fetchall():
        parts = []
        if qual and _SUBSELECT_CALL.search(qual):
            parts.append("using (" + _SUBSELECT_CALL.sub(r"\1", qual) + ")")
        if check and _SUBSELECT_CALL.search(check):
            parts.append("with check (" + _SUBSELECT_CALL.sub(r"\1", check) + ")")
        if parts:
            steps.append(
                Step(
                    table,
                    f"policy {name}: auth.*() without a subquery",
                    f"alter policy {_q(name)} on public.{_q(table)} " + " ".join(parts),
                )
            )
    return steps


# Columns with a default that a role may not name in an INSERT although it may insert into
# other columns (column-level grants, e.g. a user's locations and payment methods). PostgreSQL
# fills the defaults in on the coordinator and Citus sends them to the shard as explicit
# columns, where the same role would be refused. The shards (only) get INSERT on those
# columns: the coordinator still checks the columns the statement names against the
# table's own grants, exactly as one PostgreSQL does.
DEFAULT_COLUMNS = """
select r.rolname, array_agg(a.attname::text order by a.attnum)::text[]
  from pg_attribute a
 cross join (select rolname from pg_roles where rolname in ('anon', 'authenticated', 'service_role')) r
 where a.attrelid = to_regclass(%s) and a.attnum > 0 and not a.attisdropped and a.atthasdef
   and a.attgenerated = ''
   and not has_column_privilege(r.rolname, a.attrelid, a.attnum, 'INSERT')
   and exists (select 1 from pg_attribute b
                where b.attrelid = a.attrelid and b.attnum > 0 and not b.attisdropped
                  and has_column_privilege(r.rolname, b.attrelid, b.attnum, 'INSERT'))
 group by r.rolname order by 1
"""


def shard_grant_steps(conn: psycopg.Connection[Any] | None, table: str, placed: bool) -> list[Step]:
    """GRANT INSERT on the default columns, on the shards of a distributed table (see above)."""
    if conn is None:
        return []
    steps = []
    for role, cols in conn.execute(DEFAULT_COLUMNS, (f"public.{table}",)).fetchall():
        if placed:
            missing = conn.execute(
                "select count(*) filter (where not success or result <> 't')"
                " from run_command_on_shards(%s, %s)",
                (f"public.{table}",
                 # role and columns from the catalog, quoted as literals
                 "select bool_and(has_column_privilege(" + _lit(role) + ", '%s', c, 'INSERT'))"  # noqa: S608
                 " from unnest(array[" + ", ".join(_lit(c) for c in cols) + "]) c"),
            ).fetchone()
            if missing is not None and missing[0] == 0:
                continue
        grant = f"grant insert ({', '.join(_q(c) for c in cols)}) on table %s to {_q(role)}"
        steps.append(Step(
            table,
            f"shards: {role} may insert the defaults of {', '.join(cols)}",
            "do $do$ begin if exists (select 1 from run_command_on_shards("  # noqa: S608 (quoted names)
            f"{_lit('public.' + table)}, {_lit(grant)}) where not success) then"
            f" raise exception 'grant on the shards of {table} failed'; end if; end $do$",
            after_placement=True,
        ))
    return steps


def _placed(conn: psycopg.Connection[Any] | None) -> dict[str, str]:
    """table → 'reference' | 'distributed' for the tables Citus already manages."""
    if conn is None or citus_version(conn) is None:
        return {}
    rows = conn.execute(
        "select c.relname, p.partmethod from pg_dist_partition p join pg_class c on c.oid = p.logicalrelid"
        " where c.relnamespace = 'public'::regnamespace"
    ).fetchall()
    return {r[0]: ("reference" if r[1] == "n" else "distributed") for r in rows}


def _fk_targets(conn: psycopg.Connection[Any] | None) -> dict[str, set[str]]:
    if conn is None:
        return {}
    rows = conn.execute(
        "select conrelid::regclass::text, confrelid::regclass::text from pg_constraint"
        " where contype = 'f' and connamespace = 'public'::regnamespace and conrelid <> confrelid"
    ).fetchall()
    out: dict[str, set[str]] = {}
    for src, dst in rows:
        out.setdefault(src.removeprefix("public."), set()).add(dst.removeprefix("public."))
    return out


def groups() -> dict[str, str]:
    """distributed table → the first table of its co-location group (itself when it leads)."""
    lead: dict[str, str] = {}
    for table, p in PLAN.items():
        if p.kind == "distributed":
            t = table
            while PLAN[t].colocate_with:
                t = str(PLAN[t].colocate_with)
            lead[table] = t
    return lead


def placement_order(conn: psycopg.Connection[Any] | None) -> list[str]:
    """Reference tables first, then distributed ones; a referenced table before its referrers
    and a group's lead before its members."""
    refs = [t for t, p in PLAN.items() if p.kind == "reference"]
    dist = [t for t, p in PLAN.items() if p.kind == "distributed"]
    fks = _fk_targets(conn)
    lead = groups()
    ordered: list[str] = []

    def visit(t: str, seen: tuple[str, ...] = ()) -> None:
        if t in ordered or t in seen:
            return
        deps = {d for d in fks.get(t, set()) if d in dist}
        if lead[t] != t:
            deps.add(lead[t])
        for d in sorted(deps):
            visit(d, (*seen, t))
        ordered.append(t)

    for t in dist:
        visit(t)
    return refs + ordered


def plan_steps(conn: psycopg.Connection[Any] | None) -> list[Step]:
    """Every statement still needed, in order (conn None: all of them, for a fresh schema)."""
    placed = _placed(conn)
    steps: list[Step] = []
    # local tables first: their foreign keys to distributed tables must go before the move
    for table, p in PLAN.items():
        if p.kind == "local" and p.changes:
            steps += change_steps(conn, table, p)
    lead = groups()
    for table in placement_order(conn):
        p = PLAN[table]
        if table in placed:
            # a run that stopped between the placement and a co-located foreign key or the
            # shards' grants (shards moved or split since are re-created from the table's
            # own grants: running distribute again restores theirs)
            steps += [c for c in change_steps(conn, table, p) if c.after_placement]
            if p.kind == "distributed":
                steps += shard_grant_steps(conn, table, placed=True)
            continue
        changes = change_steps(conn, table, p)
        if p.kind == "distributed":
            changes += shard_grant_steps(conn, table, placed=False)
        steps += [c for c in changes if not c.after_placement]
        if p.kind == "distributed" and conn is not None:
            steps += policy_steps(conn, table)
        t = _lit(f"public.{table}")
        if p.kind == "reference":
            steps.append(Step(table, "reference table", f"select create_reference_table({t})"))
        else:
            colocate = "none" if lead[table] == table else f"public.{lead[table]}"
            steps.append(
                Step(
                    table,
                    f"distributed by {p.column}" + ("" if colocate == "none" else f" with {lead[table]}"),
                    f"select create_distributed_table({t}, {_lit(str(p.column))}, colocate_with => {_lit(colocate)})",
                )
            )
        steps += [c for c in changes if c.after_placement]
    return steps


def require_citus(conn: psycopg.Connection[Any]) -> str:
    version = citus_version(conn)
    if version is not None:
        return version
    available = conn.execute("select 1 from pg_available_extensions where name = 'citus'").fetchone()
    if available is None:
        raise CitusMissing(
            "Citus is not installed on this server: no citus extension is available. Install Citus"
            " (its packages, or `make citus CITUS_SRC=…`), add citus to shared_preload_libraries,"
            " then `create extension citus` and add the workers",
            sqlstate="0A000",
        )
    raise CitusMissing(
        "the citus extension is available but not created in this database: add citus first to"
        " shared_preload_libraries, run `create extension citus`, and add the workers"
        " (select citus_add_node(host, port)) before distributing",
        sqlstate="0A000",
    )


def distribute(
    url: str, dry_run: bool = False, progress: Callable[[str], None] = lambda _m: None
) -> list[Step]:
    """Run (or with dry_run: return) the steps still needed. Returns the steps."""
    with psycopg.connect(url, autocommit=True) as conn:
        if dry_run:
            return plan_steps(conn)
        require_citus(conn)
        steps = plan_steps(conn)
        for s in steps:
            progress(f"{s.table}: {s.what}")
            with conn.transaction():
                conn.execute("set local citus.multi_shard_modify_mode = 'sequential'")
                for stmt in s.sql.split(";\n"):
                    conn.execute(stmt.encode())
        return steps


def register(app: typer.Typer) -> None:
    from platformdb import cli

    citus_app = typer.Typer(help="Scale out on Citus (docs/scaling.md).", no_args_is_help=True)
    app.add_typer(citus_app, name="citus")

    @citus_app.command("distribute")
    def distribute_cmd(
        database_url: Annotated[
            str | None,
            typer.Option("--database-url", envvar="DATABASE_URL", help="PostgreSQL URL of the Citus coordinator."),
        ] = None,
        dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the SQL; change nothing.")] = False,
    ) -> None:
        """Make the plan's changes and place every table (reference / distributed) on a Citus coordinator."""
        url = cli.url_of(database_url)
        try:
            steps = distribute(url, dry_run=dry_run, progress=cli.err_console.print)
        except PlatformDBError as exc:
            cli.fail(str(exc))
            return
        except psycopg.Error as exc:
            cli.fail(f"{exc.diag.sqlstate}: {str(exc).strip()}")
            return
        if dry_run:
            for s in steps:
                print(f"-- {s.table}: {s.what}\n{s.sql};")
        elif not steps:
            cli.err_console.print("nothing to do: every table is placed as planned")
        else:
            cli.err_console.print(f"done: {len(steps)} statements")
