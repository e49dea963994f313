"""The schema keeps the Citus path open (SPEC §5): every table has a placement in
platformdb.scaling.PLAN, and every unique key or foreign key of a distributed table includes
the distribution column — or the plan states the change it needs."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import psycopg
import pytest

from platformdb.scaling import KNOWN_GAPS, PLAN

DOC = Path(__file__).resolve().parents[2] / "docs" / "scaling.md"

TABLES = """
select c.relname from pg_class c
 where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p', 'u') and not c.relispartition
   and not exists (select 1 from pg_depend d where d.objid = c.oid and d.deptype = 'e')
"""
# unique constraints and unique indexes (partial ones too), with their columns
UNIQUES = """
select i.indexrelid::regclass::text as name,
       array(select a.attname from unnest(i.indkey) k join pg_attribute a
              on a.attrelid = i.indrelid and a.attnum = k)::text[] as cols
  from pg_index i where i.indrelid = %s::regclass and i.indisunique
"""
FKEYS = """
select conname, confrelid::regclass::text,
       array(select a.attname from unnest(conkey) with ordinality k(n, o)
              join pg_attribute a on a.attrelid = conrelid and a.attnum = k.n order by k.o)::text[],
       array(select a.attname from unnest(confkey) with ordinality k(n, o)
              join pg_attribute a on a.attrelid = confrelid and a.attnum = k.n order by k.o)::text[]
  from pg_constraint where conrelid = %s::regclass and contype = 'f'
"""


def _problems(conn: psycopg.Connection[Any]) -> list[str]:
    problems = []
    tables = {r[0] for r in conn.execute(TABLES).fetchall()}
    for t in sorted(tables - set(PLAN)):
        problems.append(f"{t}: no placement in platformdb.scaling.PLAN")
    for t in sorted(set(PLAN) - tables):
        problems.append(f"{t}: in the plan but not in the schema")
    for t in sorted(tables & set(PLAN)):
        p = PLAN[t]
        if p.kind not in ("distributed", "reference", "local"):
            problems.append(f"{t}: unknown placement {p.kind}")
            continue
        if p.kind != "distributed":
            continue
        cols = {r[0] for r in conn.execute(
            "select attname from pg_attribute where attrelid = %s::regclass and attnum > 0", (t,)).fetchall()}
        if p.column not in cols:
            problems.append(f"{t}: distribution column {p.column} does not exist")
        known = set()
        # constraint names as well as index names (a PK's index has the constraint's name)
        for name, ucols in conn.execute(UNIQUES, (t,)).fetchall():
            known.add(name)
            if p.column not in ucols and name not in p.changes:
                problems.append(f"{t}: unique {name} ({', '.join(ucols)}) lacks {p.column} and the plan says nothing")
        for name, target, src_cols, dst_cols in conn.execute(FKEYS, (t,)).fetchall():
            known.add(name)
            tp = PLAN.get(target)
            if tp is None or tp.kind == "reference":
                continue
            ok = (tp.kind == "distributed" and p.column in src_cols and tp.column in dst_cols
                  and src_cols.index(p.column) == dst_cols.index(tp.column))
            if not ok and name not in p.changes:
                problems.append(f"{t}: foreign key {name} to {target} ({tp.kind}) is not co-located"
                                " and the plan says nothing")
        for stale in sorted(set(p.changes) - known):
            problems.append(f"{t}: the plan names {stale}, which does not exist")
    return problems


def test_the_schema_keeps_the_citus_path_open(conn: psycopg.Connection[Any]) -> None:
    assert _problems(conn) == []


def test_the_check_catches_a_unique_key_without_the_distribution_column(conn: psycopg.Connection[Any]) -> None:
    conn.execute("create unique index payment_methods_label_key on public.payment_methods (id, label)")
    assert any("payment_methods_label_key" in p for p in _problems(conn))
    conn.execute("create table public.unplaced (id int primary key)")
    assert "unplaced: no placement in platformdb.scaling.PLAN" in _problems(conn)


@pytest.mark.parametrize("table", sorted(PLAN))
def test_docs_scaling_names_every_table(table: str) -> None:
    assert f"`{table}`" in DOC.read_text(), f"docs/scaling.md does not mention {table}"


# ---- what Citus refuses or answers differently (static: no Citus needed) ----------------

def _group(table: str) -> str | None:
    """The co-location group of a distributed table (its lead), 'reference', or None (local)."""
    from platformdb.citus import groups

    p = PLAN.get(table)
    if p is None or p.kind == "local":
        return None
    return "reference" if p.kind == "reference" else groups()[table]


LOCAL_TO_DISTRIBUTED_FKS = """
select c.conrelid::regclass::text, c.conname, c.confrelid::regclass::text
  from pg_constraint c
 where c.contype = 'f' and c.connamespace = 'public'::regnamespace
   and not exists (select 1 from pg_inherits i where i.inhrelid = c.conrelid)
"""

TRIGGERS = """
select t.tgrelid::regclass::text, t.tgname, p.oid::regprocedure::text, p.prosrc
  from pg_trigger t join pg_proc p on p.oid = t.tgfoid
 where not t.tgisinternal and t.tgrelid in (
       select c.oid from pg_class c where c.relnamespace = 'public'::regnamespace and not c.relispartition)
"""

POLICIES = """
select c.relname, p.polname, coalesce(pg_get_expr(p.polqual, p.polrelid), '') || ' '
       || coalesce(pg_get_expr(p.polwithcheck, p.polrelid), '')
  from pg_policy p join pg_class c on c.oid = p.polrelid
 where c.relnamespace = 'public'::regnamespace
"""

FUNCTIONS = """
select p.oid::regprocedure::text, p.prosrc from pg_proc p
 where p.pronamespace = 'public'::regnamespace and p.prolang in (
       select oid from pg_language where lanname in ('sql', 'plpgsql'))
   and not exists (select 1 from pg_depend d where d.objid = p.oid and d.deptype = 'e')
"""

_WRITE = re.compile(r"\b(?:insert\s+into|update|delete\s+from)\s+(?:only\s+)?public\.(\w+)", re.IGNORECASE)
# `(select auth.uid())`: `platformdb citus distribute` rewrites it to the bare call
_AUTH_SUBSELECT = re.compile(r"\(\s*SELECT\s+auth\.\w+\(\)\s+AS\s+\w+\)", re.IGNORECASE)
_UPSERT = re.compile(
    r"insert\s+into\s+public\.(\w+)[^;]*?on\s+conflict[^;]*?do\s+update\s+set([^;]*)", re.IGNORECASE | re.DOTALL
)
_VOLATILE = re.compile(
    r"\b(now|clock_timestamp|statement_timestamp|transaction_timestamp|timeofday|random|gen_random_uuid"
    r"|uuid_generate_v4|nextval|txid_current|pg_current_xact_id)\s*\(|\bcurrent_timestamp\b|\blocaltimestamp\b",
    re.IGNORECASE,
)


# a reference table's trigger that returns at once on a Citus worker runs its statements only
# on the coordinator's placement, where Citus lets them reach any shard
_COORDINATOR_ONLY = re.compile(r"if\s+public\.on_citus_worker\(\)\s+then\s+return\s+null\s*;", re.IGNORECASE)


def _code(src: str) -> str:
    """The body without -- comments (they mention statements too)."""
    return re.sub(r"--[^\n]*", "", src)


def _citus_problems(conn: psycopg.Connection[Any]) -> list[str]:
    problems: list[str] = []
    for src, name, dst in conn.execute(LOCAL_TO_DISTRIBUTED_FKS).fetchall():
        src, dst = src.removeprefix("public."), dst.removeprefix("public.")
        sp, dp = PLAN.get(src), PLAN.get(dst)
        if sp and dp and sp.kind == "local" and dp.kind == "distributed" and name not in sp.changes:
            problems.append(f"{src}: foreign key {name} from a local table to the distributed {dst}")
    for table, trigger, fn, src in conn.execute(TRIGGERS).fetchall():
        table = table.removeprefix("public.")
        group = _group(table)
        if group is None or (group == "reference" and _COORDINATOR_ONLY.search(_code(src))):
            continue
        for target in sorted({t for t in _WRITE.findall(_code(src)) if t != table}):
            tg = _group(target)
            if group == "reference" or tg != group:
                problems.append(
                    f"{table}: trigger {trigger} ({fn}) writes {target}"
                    f" ({tg or 'local'}), outside the co-location group of {table} ({group})"
                )
    for table, policy, expr in conn.execute(POLICIES).fetchall():
        if PLAN.get(table) is not None and PLAN[table].kind == "distributed":
            if re.search(r"\bselect\b", _AUTH_SUBSELECT.sub("", expr), re.IGNORECASE):
                problems.append(f"{table}: policy {policy} has a subquery (refused on a distributed table)")
    for fn, src in conn.execute(FUNCTIONS).fetchall():
        for target, assignments in _UPSERT.findall(_code(src)):
            p = PLAN.get(target)
            if p is not None and p.kind != "local":
                hit = _VOLATILE.search(assignments)
                if hit:
                    problems.append(
                        f"{fn}: {hit.group(0).rstrip('(')} in ON CONFLICT DO UPDATE SET of {target} ({p.kind})"
                    )
    return sorted(problems)


def test_nothing_citus_refuses_beyond_the_known_gaps(conn: psycopg.Connection[Any]) -> None:
    problems = _citus_problems(conn)
    assert [p for p in problems if not any(p.startswith(k) for k in KNOWN_GAPS)] == []
    # a gap that is closed must leave the list
    assert [k for k in KNOWN_GAPS if not any(p.startswith(k) for p in problems)] == []


def test_the_citus_checks_catch_each_kind_of_problem(conn: psycopg.Connection[Any]) -> None:
    before = set(_citus_problems(conn))
    conn.execute("""
        alter table public.message_queue add column route_ref uuid;
        alter table public.message_queue add constraint mq_route_fk foreign key (route_ref)
            references public.routes (id);
        create function public.t_spill() returns trigger language plpgsql as $$
        begin
            insert into public.event_store (aggregate_id) values (new.id::text);
            return new;
        end $$;
        create trigger t_spill after insert on public.cache_entries for each row execute function public.t_spill();
        create trigger t_ref_spill after update on public.currencies for each row execute function public.t_spill();
        create function public.t_ref_once() returns trigger language plpgsql as $$
        begin
            if public.on_citus_worker() then
                return null;
            end if;
            insert into public.event_store (aggregate_id) values (new.code);
            return null;
        end $$;
        create trigger t_ref_once after update on public.currencies for each row execute function public.t_ref_once();
        create policy t_sub on public.event_streams for select to authenticated
            using (exists (select 1 from public.locations l where l.user_id = auth.uid()));
        create function public.t_upsert() returns void language sql as $$
            insert into public.cache_entries (key, value, expires_at) values ('k', '1', now())
            on conflict (key) do update set updated_at = clock_timestamp()
        $$;
    """)
    new = set(_citus_problems(conn)) - before
    assert any("mq_route_fk" in p and "local table" in p for p in new), new
    assert any("trigger t_spill" in p and "event_store" in p for p in new), new
    assert any("trigger t_ref_spill" in p and "currencies" in p for p in new), new
    # the same write guarded to the coordinator's placement is not a problem
    assert not any("t_ref_once" in p for p in new), new
    assert any("policy t_sub" in p for p in new), new
    assert any("t_upsert()" in p and "clock_timestamp" in p for p in new), new
