"""The fuzz database and profiles.

One database per fuzz module, cloned from the suite's migrated template and filled by the
demo steps (Kigali locations, RWF payments, WhatsApp traffic, queues, jobs, flags, …), so
the fuzzed functions meet real rows: ids that exist, keys in use, payloads of the right
shape. Hypothesis needs fixtures that outlive one example, hence module scope.

Profiles: `smoke` (part of `make test`, about a minute) and `deep` (`make chaos`, or
PLATFORMDB_FUZZ=deep): more examples per function and bigger hostile values.
"""

from __future__ import annotations

import importlib
import itertools
import os
import random
import re
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

from platformdb import db, demo, devdb
from tests.conftest import only_migrations
from tests.fuzz.values import Pools

_counter = itertools.count()


def profile() -> str:
    """smoke unless PLATFORMDB_FUZZ=deep or PLATFORMDB_CHAOS=full."""
    if os.environ.get("PLATFORMDB_FUZZ") == "deep" or os.environ.get("PLATFORMDB_CHAOS") == "full":
        return "deep"
    return "smoke"


def _admin(cluster: devdb.Cluster) -> psycopg.Connection[Any]:
    return psycopg.connect(cluster.url("postgres"), autocommit=True)


@pytest.fixture(scope="module")
def fuzz_url(cluster: devdb.Cluster, template_url: str) -> Iterator[str]:
    name = f"fuzz_{os.getpid()}_{next(_counter)}"
    template = template_url.rsplit("/", 1)[1]
    with _admin(cluster) as conn:
        conn.execute(
            sql.SQL("create database {} template {} strategy file_copy").format(
                sql.Identifier(name), sql.Identifier(template)
            )
        )
    url = cluster.url(name)
    seed(url)
    try:
        yield url
    finally:
        with _admin(cluster) as conn:
            conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))


def seed(url: str) -> None:
    """The demo's small scale, step by step (a step whose migration is not selected is left out)."""
    rng = random.Random(20260401)
    narrowed = bool(only_migrations())
    with psycopg.connect(url) as conn:
        for step in demo.STEPS:
            mod = importlib.import_module(step)
            try:
                with db.as_service(conn):
                    mod.run(conn, 1, rng, lambda done, total=None: None)
            except psycopg.errors.UndefinedFunction:
                if not narrowed:
                    raise
        conn.commit()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("vacuum analyze")


_LITERAL = re.compile(r"'((?:[^']|'')*)'")


def _user_tables(conn: psycopg.Connection[Any]) -> list[tuple[str, str, str]]:
    """(table, column, type) of the columns of public's own tables (no partitions, no extensions)."""
    return [
        (r[0], r[1], r[2])
        for r in conn.execute(
            """
            select c.relname, a.attname, t.typname
              from pg_class c
              join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
              join pg_type t on t.oid = a.atttypid
             where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p')
               and not c.relispartition
               and not exists (select 1 from pg_depend d where d.objid = c.oid and d.deptype = 'e')
             order by 1, 2
            """
        ).fetchall()
    ]


def harvest(conn: psycopg.Connection[Any]) -> Pools:
    """Known-good values from the seeded database: enum literals, ids, keys, payload shapes."""
    texts: set[str] = set()
    for (definition,) in conn.execute(
        "select pg_get_constraintdef(oid) from pg_constraint"
        " where connamespace = 'public'::regnamespace and contype = 'c'"
    ).fetchall():
        texts.update(m.replace("''", "'") for m in _LITERAL.findall(definition) if len(m) < 64)
    uuids: set[Any] = set()
    jsons: list[Any] = []
    keys: set[str] = set()
    users: set[Any] = set()
    for table, column, typ in _user_tables(conn):
        t, c = sql.Identifier("public", table), sql.Identifier(column)
        if typ in ("text", "varchar"):
            rows = conn.execute(
                sql.SQL("select distinct {c} from {t} where {c} is not null and char_length({c}) < 80 limit 12").format(
                    c=c, t=t
                )
            ).fetchall()
            texts.update(r[0] for r in rows)
        elif typ == "uuid":
            rows = conn.execute(
                sql.SQL("select distinct {c} from {t} where {c} is not null limit 25").format(c=c, t=t)
            ).fetchall()
            uuids.update(r[0] for r in rows)
            if column == "user_id":
                users.update(r[0] for r in rows)
        elif typ == "jsonb":
            rows = conn.execute(
                sql.SQL("select {c} from {t} where {c} is not null and pg_column_size({c}) < 2000 limit 8").format(
                    c=c, t=t
                )
            ).fetchall()
            jsons.extend(r[0] for r in rows)
            rows = conn.execute(
                sql.SQL(
                    "select distinct k from {t}, jsonb_object_keys(case when jsonb_typeof({c}) = 'object'"
                    " then {c} else '{{}}'::jsonb end) k limit 40"
                ).format(c=c, t=t)
            ).fetchall()
            keys.update(r[0] for r in rows)
    return Pools(
        texts=sorted(texts),
        uuids=sorted(uuids, key=str),
        jsons=jsons,
        keys=sorted(keys),
        users=sorted(users, key=str),
    )


def pytest_terminal_summary(terminalreporter: Any) -> None:
    from tests.chaos import report

    if report.LINES["fuzz"]:
        terminalreporter.section("fuzzing")
        for line in report.LINES["fuzz"]:
            terminalreporter.write_line(line)
