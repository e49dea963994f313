"""Checks every cell of the security matrix (platformdb.security) against a real database.

For each table the seeded row belongs to user A. `owner` acts as A, `other` as B, `anon` and
`service` as those roles. Every cell runs in its own rolled-back transaction.
"""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest
from psycopg import sql

from platformdb import db, security
from tests import shared_db
from tests.conftest import only_migrations

_ONLY = only_migrations()
MATRIX = {
    name: t
    for name, t in security.load().items()
    if not _ONLY
    or "system_observability" in security.migration_of(name)
    or any(o in security.migration_of(name) for o in _ONLY)
}
CELLS = [(t, a, o) for t in sorted(MATRIX) for a in security.ACTORS for o in security.OPS]

DENIED_STATES = {"42501"}  # insufficient_privilege, including RLS WITH CHECK violations


def _actor(actor: str, owner: uuid.UUID, other: uuid.UUID) -> tuple[str, uuid.UUID | None]:
    return {
        "anon": ("anon", None),
        "owner": ("authenticated", owner),
        "other": ("authenticated", other),
        "service": ("service_role", None),
    }[actor]


def _attempt(conn: psycopg.Connection[Any], t: security.TableAccess, actor: str, op: str) -> bool:
    """True when the operation took effect for the actor; False when refused or invisible."""
    owner, other = uuid.uuid4(), uuid.uuid4()
    params: dict[str, Any] = {"owner": owner}
    role, uid = _actor(actor, owner, other)
    table = sql.Identifier("public", t.table)
    shared = shared_db.given_url() is not None
    if shared:
        # Citus refuses to read, as another role, shard placements this transaction modified
        # as the owner: the seed row is committed first (its key is unique to this cell)
        row = conn.execute(t.seed, params).fetchone()
        assert row is not None, f"{t.table}: seed returned no key"
        params["key"] = row[0]
    with conn.transaction(force_rollback=True):
        if not shared:
            row = conn.execute(t.seed, params).fetchone()
            assert row is not None, f"{t.table}: seed returned no key"
            params["key"] = row[0]
        with conn.transaction():
            db.set_role(conn, role, db.claims_for(role, uid))
            try:
                with conn.transaction():
                    if op == "select":
                        q = sql.SQL("select count(*) from {} where ").format(table) + sql.SQL(t.match)
                        r = conn.execute(q, params).fetchone()
                        return bool(r and r[0] == 1)
                    if op == "insert":
                        cur = conn.execute(t.insert, params)
                        return cur.rowcount == 1
                    if op == "update":
                        q = (
                            sql.SQL("update {} set ").format(table)
                            + sql.SQL(t.update)
                            + sql.SQL(" where ")
                            + sql.SQL(t.match)
                        )
                        return conn.execute(q, params).rowcount == 1
                    q = sql.SQL("delete from {} where ").format(table) + sql.SQL(t.match)
                    return conn.execute(q, params).rowcount == 1
            except psycopg.Error as exc:
                if exc.sqlstate in DENIED_STATES or (exc.sqlstate or "").startswith("PD006"):
                    return False
                raise


@pytest.fixture(scope="module")
def matrix_conn(request, template_url):  # noqa: ANN001
    from tests.conftest import _admin, _clone, _drop

    if shared_db.given_url():
        # every cell seeds its own row and runs in a rolled-back transaction: the shared
        # database (a Citus coordinator under `make citus`) serves as well as a clone
        with psycopg.connect(template_url, autocommit=True) as c:
            yield c
        return
    cluster = request.getfixturevalue("cluster")
    url = _clone(cluster, template_url, prefix="matrix")
    with psycopg.connect(url, autocommit=True) as c:
        yield c
    with _admin(cluster) as a:
        _drop(a, url.rsplit("/", 1)[1])


@pytest.mark.parametrize(("table", "actor", "op"), CELLS, ids=[f"{t}-{a}-{o}" for t, a, o in CELLS])
def test_matrix_cell(
    matrix_conn: psycopg.Connection[Any], _baseline: shared_db.Baseline | None, table: str, actor: str, op: str
) -> None:
    if _baseline is not None:
        # the shared database: the previous cell's seed was committed; start from the rows
        # of a fresh clone again (a seed with a fixed key would collide otherwise)
        _baseline.reset()
    t = MATRIX[table]
    expected = t.allowed(actor, op)
    got = _attempt(matrix_conn, t, actor, op)
    assert got == expected, (
        f"{table}: {actor} {op} was {'allowed' if got else 'refused'}, matrix says "
        f"{'allowed' if expected else 'refused'}"
    )


def test_every_table_is_in_the_matrix(matrix_conn: psycopg.Connection[Any]) -> None:
    rows = matrix_conn.execute(
        """
        select c.relname from pg_class c
         where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p', 'u')
           and not c.relispartition
           and not exists (select 1 from pg_depend d
                            where d.classid = 'pg_class'::regclass and d.objid = c.oid
                              and d.deptype = 'e')
        """
    ).fetchall()
    missing = sorted({r[0] for r in rows} - set(MATRIX))
    assert not missing, f"tables missing from the security matrix: {missing}"


def test_partitions_are_not_reachable_directly(matrix_conn: psycopg.Connection[Any]) -> None:
    """A partition bypasses its parent's RLS if reachable: it must carry no grants."""
    parts = matrix_conn.execute(
        "select c.oid::regclass::text from pg_class c where c.relispartition"
        " and c.relnamespace = 'public'::regnamespace"
    ).fetchall()
    assert parts, "expected partitions in public"
    for (name,) in parts:
        for role in ("anon", "authenticated", "service_role"):
            ok = matrix_conn.execute(
                "select has_table_privilege(%s, %s, 'select,insert,update,delete')", (role, name)
            ).fetchone()
            assert ok == (False,), f"{role} has privileges on partition {name}"
