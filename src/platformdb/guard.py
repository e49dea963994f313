"""Additive-only guard (SPEC §1.5): before applying anything, make sure none of the names the
pending migrations create is already taken by someone else's object.

The names are read from the parsed SQL (PostgreSQL's own parser via pglast), so the guard
always matches what the files really create.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import psycopg
from pglast import ast, parse_sql

from platformdb.errors import PlatformDBError

if TYPE_CHECKING:
    from platformdb.migrate import Migration


class NameTakenError(PlatformDBError):
    """A migration would create an object whose name another owner already uses."""


@dataclass(frozen=True)
class CreatedObject:
    kind: str  # table, view, function, sequence, type, index
    schema: str
    name: str
    replaces: bool = False  # CREATE OR REPLACE (a function, or a view an earlier file created)

    def __str__(self) -> str:
        return f"{self.kind} {self.schema}.{self.name}"


def _rangevar(kind: str, rv: ast.RangeVar | None) -> CreatedObject:
    assert rv is not None and rv.relname is not None
    return CreatedObject(kind, rv.schemaname or "public", rv.relname)


def _qualified(kind: str, names: Iterable[ast.String] | None) -> CreatedObject:
    parts = [str(n.sval) for n in names or ()]
    schema, name = (parts[0], parts[1]) if len(parts) == 2 else ("public", parts[-1])
    return CreatedObject(kind, schema, name)


def created_objects(sql: str) -> list[CreatedObject]:
    """Every object a SQL file creates by a top-level statement."""
    out: list[CreatedObject] = []
    for raw in parse_sql(sql):
        s = raw.stmt
        if isinstance(s, ast.CreateStmt):
            out.append(_rangevar("table", s.relation))
        elif isinstance(s, ast.ViewStmt):
            v = _rangevar("view", s.view)
            out.append(CreatedObject(v.kind, v.schema, v.name, bool(s.replace)))
        elif isinstance(s, ast.CreateTableAsStmt) and s.into is not None:
            out.append(_rangevar("view" if s.objtype == 1 else "table", s.into.rel))
        elif isinstance(s, ast.CreateSeqStmt):
            out.append(_rangevar("sequence", s.sequence))
        elif isinstance(s, ast.CreateFunctionStmt):
            f = _qualified("function", s.funcname)
            out.append(CreatedObject(f.kind, f.schema, f.name, bool(s.replace)))
        elif isinstance(s, ast.CreateEnumStmt):
            out.append(_qualified("type", s.typeName))
        elif isinstance(s, ast.CompositeTypeStmt):
            out.append(_rangevar("type", s.typevar))
        elif isinstance(s, ast.CreateDomainStmt):
            out.append(_qualified("type", s.domainname))
        elif isinstance(s, ast.IndexStmt) and s.idxname:
            schema = s.relation.schemaname if s.relation is not None else None
            out.append(CreatedObject("index", schema or "public", s.idxname))
    return out


TAKEN_SQL = """
select 'relation' from pg_class c join pg_namespace n on n.oid = c.relnamespace
 where n.nspname = %(schema)s and c.relname = %(name)s
union all
select 'function' from pg_proc p join pg_namespace n on n.oid = p.pronamespace
 where n.nspname = %(schema)s and p.proname = %(name)s
union all
select 'type' from pg_type t join pg_namespace n on n.oid = t.typnamespace
 where n.nspname = %(schema)s and t.typname = %(name)s and t.typrelid = 0
 and t.typelem = 0
limit 1
"""


def new_names(m: Migration, earlier: list[Migration]) -> list[CreatedObject]:
    """What `m` creates in `public` under names of its own: not a function given a new body
    (OR REPLACE), nor one an earlier file created and `m` recreates with more parameters."""
    earlier_objects = [o for e in earlier for o in created_objects(e.text())]
    ours = {(o.schema, o.name) for o in earlier_objects if o.kind == "function"}
    # a view an earlier file created, given a new definition (CREATE OR REPLACE VIEW)
    our_views = {(o.schema, o.name) for o in earlier_objects if o.kind == "view"}
    return [
        o
        for o in created_objects(m.text())
        if o.schema == "public"
        and not (o.replaces and o.kind == "function")
        and not (o.kind == "function" and (o.schema, o.name) in ours)
        and not (o.replaces and o.kind == "view" and (o.schema, o.name) in our_views)
    ]


def check_names_free(
    conn: psycopg.Connection, pending: list[Migration], every: list[Migration] | None = None
) -> None:
    """Raise NameTakenError naming the first object of `pending` whose name is taken.

    A function an earlier migration of ours created (`every`: all migrations, applied or
    not) may be given a new body (CREATE OR REPLACE; `platformdb lint` lets a file replace
    only a function an earlier file created) or be recreated by a later one with more
    parameters: its name is ours, not taken.
    """
    for m in pending:
        for obj in new_names(m, [e for e in (every or pending) if e.version < m.version]):
            row = conn.execute(TAKEN_SQL, {"schema": obj.schema, "name": obj.name}).fetchone()
            if row:
                raise NameTakenError(
                    f"{m.filename} creates {obj}, but a {row[0]} named {obj.schema}.{obj.name}"
                    " already exists and is not ours; nothing was changed (rename or remove"
                    " the existing object, or deploy into another database)"
                )
