"""A comparable snapshot of everything a migration can create in `public`.

Used to prove up → down → up leaves an identical catalog. Extension-owned objects (PostGIS)
are left out: they belong to the extension, not to the migrations.
"""

from __future__ import annotations

from typing import Any

import psycopg

NOT_EXT = """not exists (select 1 from pg_depend d where d.objid = {oid} and d.deptype = 'e')"""

QUERIES = {
    "relations": f"""
        select c.relname, c.relkind, c.relacl::text, c.reloptions::text, c.relrowsecurity,
               c.relpersistence, obj_description(c.oid, 'pg_class'), c.relispartition,
               pg_get_expr(c.relpartbound, c.oid)
          from pg_class c where c.relnamespace = 'public'::regnamespace
           and c.relkind in ('r','p','v','m','S','f','u') and {NOT_EXT.format(oid='c.oid')}""",
    "columns": f"""
        select c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
               pg_get_expr(ad.adbin, ad.adrelid), col_description(c.oid, a.attnum), a.attacl::text
          from pg_attribute a join pg_class c on c.oid = a.attrelid
          left join pg_attrdef ad on ad.adrelid = a.attrelid and ad.adnum = a.attnum
         where c.relnamespace = 'public'::regnamespace and a.attnum > 0 and not a.attisdropped
           and {NOT_EXT.format(oid='c.oid')}""",
    "constraints": """
        select conrelid::regclass::text, conname, pg_get_constraintdef(oid)
          from pg_constraint where connamespace = 'public'::regnamespace""",
    "indexes": "select indexname, indexdef from pg_indexes where schemaname = 'public'",
    "functions": f"""
        select p.proname, pg_get_function_identity_arguments(p.oid), pg_get_functiondef(p.oid),
               p.proacl::text, obj_description(p.oid, 'pg_proc')
          from pg_proc p where p.pronamespace = 'public'::regnamespace and p.prokind in ('f','p')
           and {NOT_EXT.format(oid='p.oid')}""",
    "views": "select viewname, definition from pg_views where schemaname = 'public'",
    "policies": """
        select tablename, policyname, permissive, roles::text, cmd, qual, with_check
          from pg_policies where schemaname = 'public'""",
    "triggers": """
        select tgrelid::regclass::text, tgname, pg_get_triggerdef(t.oid)
          from pg_trigger t join pg_class c on c.oid = t.tgrelid
         where c.relnamespace = 'public'::regnamespace and not t.tgisinternal""",
    "types": f"""
        select t.typname, t.typtype from pg_type t
         where t.typnamespace = 'public'::regnamespace and t.typrelid = 0 and t.typelem = 0
           and {NOT_EXT.format(oid='t.oid')}""",
}


def snapshot(conn: psycopg.Connection[Any]) -> dict[str, list[tuple[Any, ...]]]:
    return {
        name: sorted(conn.execute(q).fetchall(), key=repr)  # type: ignore[arg-type]
        for name, q in QUERIES.items()
    }
