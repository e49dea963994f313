"""The dashboard's SQL, planned the way PostgreSQL runs it, and the partition-scan rule.

The read functions of migration 20260401170000 are LANGUAGE sql: their body is one query
(after a statement checking the arguments) whose parameters appear by name; a few are
PL/pgSQL (Citus cannot plan a parameterised SQL function) and end with that query as their
one-node RETURN QUERY. `targets()`
turns each query into a prepared statement (parameters renamed $1…$n) with the values the
dashboard passes, for every window it offers; `seq_scans_of_partitions()` walks an
EXPLAIN (FORMAT JSON) plan and returns the sequential scans of partitioned tables (or of
their partitions) that hold rows. Used by tests/e2e/test_dashboard.py and bench/dashboard.py.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
from pglast import split
from psycopg import sql

from platformdb.dashboard import queries as q

FUNCTIONS_SQL = """
select p.proname, p.prosrc, coalesce(p.proargnames, '{}'),
       array(select format_type(t, null) from unnest(p.proargtypes) t)
  from pg_proc p join pg_language l on l.oid = p.prolang
 where p.pronamespace = 'public'::regnamespace and p.proname like 'monitoring\\_%%'
   and l.lanname = %(language)s
 order by p.proname
"""


@dataclass(frozen=True)
class Target:
    function: str
    label: str
    body: str  # the function's query with $1…$n
    types: tuple[str, ...]
    values: tuple[Any, ...]

    def prepare_sql(self, name: str) -> sql.Composed:
        types = sql.SQL(", ").join(sql.SQL(t) for t in self.types)  # type names from the catalog
        head = (
            sql.SQL("prepare {} ({}) as ").format(sql.Identifier(name), types)
            if self.types
            else sql.SQL("prepare {} as ").format(sql.Identifier(name))
        )
        return head + sql.SQL(self.body)  # type: ignore[arg-type]

    def execute_sql(self, name: str) -> sql.Composed:
        if not self.values:
            return sql.SQL("execute {}").format(sql.Identifier(name))
        args = sql.SQL(", ").join(
            sql.SQL("{}::{}").format(sql.Literal(v), sql.SQL(t)) for v, t in zip(self.values, self.types, strict=True)
        )
        return sql.SQL("execute {}({})").format(sql.Identifier(name), args)


def functions(conn: psycopg.Connection[Any], language: str) -> list[tuple[str, str, list[str], list[str]]]:
    return [tuple(r) for r in conn.execute(FUNCTIONS_SQL, {"language": language}).fetchall()]  # type: ignore[misc]


def _values(name: str, w: q.Window, series: tuple[str, str]) -> dict[str, Any]:
    return {
        "p_limit": 200,
        "p_window": w.span,
        "p_bucket": w.bucket,
        "p_service_name": series[0],
        "p_metric_name": series[1],
    }


def _final_return_query(src: str) -> str | None:
    """The query of the last RETURN QUERY of a PL/pgSQL body ending `…; end`, or None."""
    low = src.lower()
    start = low.rfind("return query")
    end = low.rstrip().rfind("end")
    if start < 0 or end < start:
        return None
    return src[start + len("return query") : end].strip().rstrip(";").strip()


def _bodies(conn: psycopg.Connection[Any]) -> Iterator[tuple[str, str, list[str], list[str]]]:
    """(name, query, argument names, argument types) of each monitoring function: the last
    query of a SQL function, or the final RETURN QUERY of a PL/pgSQL one (a function that
    answers differently on Citus ends with its one-node query)."""
    for name, src, argnames, argtypes in functions(conn, "sql"):
        yield name, list(split(src))[-1], argnames, argtypes  # statements before it check the arguments
    partitioned = [
        r[0]
        for r in conn.execute(
            "select relname from pg_class where relkind = 'p' and relnamespace = 'public'::regnamespace"
        ).fetchall()
    ]
    for name, src, argnames, argtypes in functions(conn, "plpgsql"):
        body = _final_return_query(src)
        # only those reading a partitioned table: the partition rule is about them
        if body and any(re.search(rf"\bpublic\.{t}\b", body) for t in partitioned):
            yield name, body, argnames, argtypes


def targets(conn: psycopg.Connection[Any], series: tuple[str, str]) -> Iterator[Target]:
    """Every monitoring function's query × every dashboard window (or once when it has none)."""
    for name, body, argnames, argtypes in _bodies(conn):
        names = list(argnames)[: len(argtypes)]
        for i, n in enumerate(names, 1):
            body = re.sub(rf"\b{re.escape(n)}\b", f"${i}", body)
        windows = list(q.WINDOWS.values()) if "p_window" in names else [q.WINDOWS["24h"]]
        for w in windows:
            values = _values(name, w, series)
            label = f"{name}[{w.key}]" if "p_window" in names else name
            yield Target(name, label, body, tuple(argtypes), tuple(values[n] for n in names))


def plan(conn: psycopg.Connection[Any], t: Target, generic: bool) -> dict[str, Any]:
    """EXPLAIN (FORMAT JSON) of the target, with a custom or a generic plan."""
    conn.execute("deallocate all")
    conn.execute(t.prepare_sql("dashboard_target"))
    conn.execute(
        sql.SQL("set plan_cache_mode = {}").format(sql.SQL("force_generic_plan" if generic else "force_custom_plan"))
    )
    row = conn.execute(sql.SQL("explain (format json) ") + t.execute_sql("dashboard_target")).fetchone()
    conn.execute("reset plan_cache_mode")
    assert row is not None
    return row[0][0]["Plan"]  # type: ignore[no-any-return]


def nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", []):
        yield from nodes(child)


def seq_scans_of_partitions(conn: psycopg.Connection[Any], root: dict[str, Any]) -> list[str]:
    """Seq Scans of a partitioned table or of a partition that holds rows.

    A sequential scan of an empty partition reads nothing (the planner picks it because an
    index scan of nothing costs more); it is not counted, so the rule stays strict on every
    partition with data.
    """
    found = []
    for n in nodes(root):
        if n.get("Node Type") != "Seq Scan":
            continue
        schema, name = n.get("Schema", "public"), n["Relation Name"]
        row = conn.execute(
            "select c.relkind = 'p' or c.relispartition from pg_class c"
            " join pg_namespace s on s.oid = c.relnamespace where s.nspname = %s and c.relname = %s",
            (schema, name),
        ).fetchone()
        if not row or not row[0]:
            continue
        has_rows = conn.execute(
            sql.SQL("select exists (select 1 from {})").format(sql.Identifier(schema, name))
        ).fetchone()
        if has_rows and has_rows[0]:
            found.append(f"{schema}.{name}")
    return found
