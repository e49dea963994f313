"""The schema keeps the Citus path open (SPEC §5): every table has a placement in
platformdb.scaling.PLAN, and every unique key or foreign key of a distributed table includes
the distribution column — or the plan states the change it needs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest

from platformdb.scaling import PLAN

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
    conn.execute("create unique index locations_label_key on public.locations (id, location_type)")
    assert any("locations_label_key" in p for p in _problems(conn))
    conn.execute("create table public.unplaced (id int primary key)")
    assert "unplaced: no placement in platformdb.scaling.PLAN" in _problems(conn)


@pytest.mark.parametrize("table", sorted(PLAN))
def test_docs_scaling_names_every_table(table: str) -> None:
    assert f"`{table}`" in DOC.read_text(), f"docs/scaling.md does not mention {table}"
