"""The test harness's shared-database mode (PLATFORMDB_TEST_DATABASE_URL), used by `make citus`.

A Citus coordinator cannot be cloned per test (a clone carries the coordinator's metadata but
no shards: they live on the workers). So the tests run against the one given database, and
before each test `Baseline.reset` puts every table of `public` and `auth` back to what it held
when the session began (TRUNCATE, then the baseline rows by COPY), so each test starts
from the same rows as on a fresh clone of the template.

What a shared database cannot give is skipped with a reason: a second, empty database
(`new_db_url`: migration up/down tests) and the cluster itself (restarts, other databases).
"""

from __future__ import annotations

import os
from typing import Any

import psycopg
from psycopg import sql

ENV = "PLATFORMDB_TEST_DATABASE_URL"
NO_CLUSTER = (
    "needs a cluster or a database of its own; PLATFORMDB_TEST_DATABASE_URL runs every test in"
    " one shared database (a Citus coordinator: its shards live on the workers, so a clone of"
    " it carries no data)"
)

TABLES = """
select quote_ident(n.nspname) || '.' || quote_ident(c.relname),
       array(select quote_ident(a.attname) from pg_attribute a
              where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped and a.attgenerated = ''
              order by a.attnum)::text[]
  from pg_class c join pg_namespace n on n.oid = c.relnamespace
 where c.relnamespace in ('public'::regnamespace, 'auth'::regnamespace)
   and c.relkind in ('r', 'p') and not c.relispartition
   and not exists (select 1 from pg_depend d where d.objid = c.oid and d.deptype = 'e')
 order by 1
"""


PARTITIONS = """
select quote_ident(n.nspname) || '.' || quote_ident(c.relname)
  from pg_class c join pg_namespace n on n.oid = c.relnamespace
 where c.relnamespace in ('public'::regnamespace, 'auth'::regnamespace) and c.relispartition
   and c.relkind in ('r', 'p')
   and not exists (select 1 from pg_depend d where d.objid = c.oid and d.deptype = 'e')
"""


def given_url() -> str | None:
    return os.environ.get(ENV) or None


def on_citus(conn: psycopg.Connection[Any]) -> bool:
    """True on a Citus coordinator (`make citus`)."""
    return conn.execute("select 1 from pg_catalog.pg_extension where extname = 'citus'").fetchone() is not None


def skip_on_citus(conn: psycopg.Connection[Any], why: str) -> None:
    """Skip a test that checks a property of one PostgreSQL's own storage or catalog, which a
    Citus coordinator does not have (its rows live in the workers' shards)."""
    if conn.execute("select 1 from pg_catalog.pg_extension where extname = 'citus'").fetchone():
        import pytest

        pytest.skip(f"on Citus: {why}")


class Baseline:
    """The rows of every table at the start of the session, restorable before each test."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.tables: list[tuple[str, list[str]]] = []
        self.rows: dict[str, bytes] = {}
        self.partitions: set[str] = set()
        with psycopg.connect(url, autocommit=True) as conn:
            self.tables = [(r[0], list(r[1])) for r in conn.execute(TABLES).fetchall()]
            self.partitions = {r[0] for r in conn.execute(PARTITIONS).fetchall()}
            for table, cols in self.tables:
                if conn.execute(sql.SQL("select exists (select 1 from {})").format(sql.SQL(table))).fetchone()[0]:  # type: ignore[index]
                    self.rows[table] = self._copy_out(conn, table, cols)

    @staticmethod
    def _columns(cols: list[str]) -> sql.Composable:
        return sql.SQL(", ").join(sql.SQL(c) for c in cols)

    def _copy_out(self, conn: psycopg.Connection[Any], table: str, cols: list[str]) -> bytes:
        out = bytearray()
        q = sql.SQL("copy (select {} from {}) to stdout (format binary)").format(
            self._columns(cols), sql.SQL(table)
        )
        with conn.cursor().copy(q) as cp:
            for chunk in cp:
                out += chunk
        return bytes(out)

    def reset(self) -> None:
        cols = dict(self.tables)
        with psycopg.connect(self.url) as conn:
            # a table an earlier test created (e.g. one opted into auditing) is not part of
            # the starting state: it goes, as it would with a fresh clone
            extra = [r[0] for r in conn.execute(TABLES).fetchall() if r[0] not in cols]
            # so are the monthly partitions a test created ahead of time
            extra += [r[0] for r in conn.execute(PARTITIONS).fetchall() if r[0] not in self.partitions]
            if extra:
                conn.execute(sql.SQL("drop table if exists {} cascade").format(
                    sql.SQL(", ").join(sql.SQL(t) for t in extra)))
            # only what holds rows: a TRUNCATE of a distributed table locks and empties every
            # shard on every worker (two-phase commit), which an empty table does not need
            probe = sql.SQL("select array[{}]").format(
                sql.SQL(", ").join(sql.SQL("exists (select 1 from {})").format(sql.SQL(t)) for t, _ in self.tables)
            )
            full = conn.execute(probe).fetchone()[0]  # type: ignore[index]
            dirty = [t for (t, _), has in zip(self.tables, full, strict=True) if has or t in self.rows]
            if dirty:
                conn.execute(sql.SQL("truncate {} cascade").format(sql.SQL(", ").join(sql.SQL(t) for t in dirty)))
            # the starting rows come back as they were, without firing the tables' triggers
            # (an audited table would log its own restore; on Citus SET LOCAL reaches the shards)
            conn.execute("set local session_replication_role = replica")
            for table, data in self.rows.items():
                q = sql.SQL("copy {} ({}) from stdin (format binary)").format(
                    sql.SQL(table), self._columns(cols[table])
                )
                with conn.cursor().copy(q) as cp:
                    cp.write(data)
            conn.commit()
