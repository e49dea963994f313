"""Backup proof: pg_dump a migrated database full of activity, pg_restore it into an empty
one (with the cluster's own PostgreSQL tools), and the copy verifies and holds the same data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from platformdb import demo, devdb
from tests.conftest import selected_migrations_dir

ROOT = Path(__file__).resolve().parents[2]

TABLES_SQL = """
select n.nspname, c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
 where n.nspname in ('public', 'supabase_migrations', 'auth') and c.relkind in ('r', 'p')
   and not c.relispartition
   and not exists (select 1 from pg_depend d where d.classid = 'pg_class'::regclass
                    and d.objid = c.oid and d.deptype = 'e')
 order by 1, 2
"""


def contents(url: str) -> dict[str, Any]:
    """Row count and md5 of all rows (in a stable order) of every table, and every sequence."""
    out: dict[str, Any] = {}
    with psycopg.connect(url) as conn:
        for schema, name in conn.execute(TABLES_SQL).fetchall():
            q = sql.SQL(
                "select count(*), md5(coalesce(string_agg(t::text, '|' order by t::text), '')) from {} t"
            ).format(sql.Identifier(schema, name))
            out[f"{schema}.{name}"] = conn.execute(q).fetchone()
        for row in conn.execute(
            "select schemaname, sequencename, last_value from pg_sequences order by 1, 2"
        ).fetchall():
            out[f"sequence {row[0]}.{row[1]}"] = row[2]
    return out


def test_dump_and_restore_into_a_new_database(
    cluster: devdb.Cluster, db_url: str, new_db_url: str, tmp_path: Path
) -> None:
    demo.run(db_url, "small")
    original = contents(db_url)
    assert original["public.system_metrics"][0] > 0
    assert sum(v[0] for k, v in original.items() if isinstance(v, tuple)) > 1000

    archive = tmp_path / "platform.dump"
    subprocess.run([str(cluster.bindir / "pg_dump"), "-Fc", "-f", str(archive), db_url], check=True)
    r = subprocess.run(
        [str(cluster.bindir / "pg_restore"), "--exit-on-error", "-d", new_db_url, str(archive)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 0, r.stderr

    assert contents(new_db_url) == original

    migrations = selected_migrations_dir(tmp_path / "selected")
    env = dict(os.environ)
    if migrations is not None:
        env["PLATFORMDB_MIGRATIONS_DIR"] = str(migrations)
    v = subprocess.run(
        [sys.executable, "-m", "platformdb.cli", "verify", "--json", "--database-url", new_db_url],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        check=False,
    )
    report = json.loads(v.stdout)
    failures = [f"{c['check']}: {c['item']}: {c['detail']}" for c in report["checks"] if not c["ok"]]
    assert (v.returncode, failures) == (0, [])
    # verify's helper checks wrote nothing that stayed (sequences excepted: nextval is never
    # rolled back, so a check that creates a row moves its sequence on)
    tables = {k: v for k, v in original.items() if not k.startswith("sequence ")}
    assert {k: v for k, v in contents(new_db_url).items() if not k.startswith("sequence ")} == tables


def test_the_restored_schema_is_the_same(cluster: devdb.Cluster, db_url: str, new_db_url: str, tmp_path: Path) -> None:
    archive = tmp_path / "platform.dump"
    subprocess.run([str(cluster.bindir / "pg_dump"), "-Fc", "-f", str(archive), db_url], check=True)
    subprocess.run(
        [str(cluster.bindir / "pg_restore"), "--exit-on-error", "-d", new_db_url, str(archive)],
        check=True,
        capture_output=True,
    )

    def schema(url: str) -> list[str]:
        out = subprocess.run(
            [str(cluster.bindir / "pg_dump"), "--schema-only", url], check=True, capture_output=True, text=True
        ).stdout
        lines = [ln for ln in out.splitlines() if not ln.startswith(("-- Dumped", "\\restrict", "\\unrestrict"))]
        # PostgreSQL re-deparses expressions after a restore with different redundant
        # parentheses (a BETWEEN becomes two nested ANDs): compare without them
        return [ln.replace("(", "").replace(")", "") for ln in lines]

    restored, source = schema(new_db_url), schema(db_url)
    assert len(restored) > 1000
    assert restored == source
