"""Conventions every migration keeps (CONVENTIONS.md): the catalog documents itself.

Up → down → up and the additive-only guard of every file are proved once for all files in
test_rollback.py and test_additive.py."""

from __future__ import annotations

from typing import Any

import psycopg

UNCOMMENTED = """
select 'table/view ' || c.relname || coalesce('.' || a.attname, '')
  from pg_class c
  left join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
                           and c.relkind in ('r', 'p', 'u')
 where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p', 'u', 'v')
   and not c.relispartition
   and not exists (select 1 from pg_depend d where d.objid = c.oid and d.deptype = 'e')
   and (case when a.attname is null then obj_description(c.oid, 'pg_class')
             else col_description(c.oid, a.attnum) end) is null
union all
select 'function ' || p.oid::regprocedure::text from pg_proc p
 where p.pronamespace = 'public'::regnamespace
   and not exists (select 1 from pg_depend d where d.objid = p.oid and d.deptype = 'e')
   and obj_description(p.oid, 'pg_proc') is null
"""


def test_every_table_column_view_and_function_is_commented(conn: psycopg.Connection[Any]) -> None:
    assert conn.execute(UNCOMMENTED).fetchall() == []


def test_the_check_sees_an_uncommented_object(conn: psycopg.Connection[Any]) -> None:
    conn.execute("create table public.undocumented (id int)")
    conn.execute("comment on table public.undocumented is 'a table'")
    assert conn.execute(UNCOMMENTED).fetchall() == [("table/view undocumented.id",)]
