"""docs/reference.md is what the migrations create (`platformdb docs --check`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg

from platformdb import docs

REFERENCE = Path(__file__).resolve().parents[2] / "docs" / "reference.md"


def test_committed_reference_matches_the_catalog(conn: psycopg.Connection[Any]) -> None:
    diff = docs.check(conn, REFERENCE)
    assert not diff, "docs/reference.md is stale; run `platformdb docs`:\n" + "\n".join(diff[:80])


def test_reference_covers_every_table_function_and_view(conn: psycopg.Connection[Any]) -> None:
    text = docs.generate(conn)
    names = conn.execute(
        "select relname from pg_class where relnamespace = 'public'::regnamespace"
        " and relkind in ('r','p','u','v') and not relispartition"
        " and not exists (select 1 from pg_depend d where d.objid = pg_class.oid and d.deptype = 'e')"
        " union select proname from pg_proc where pronamespace = 'public'::regnamespace"
        " and not exists (select 1 from pg_depend d where d.objid = pg_proc.oid and d.deptype = 'e')"
    ).fetchall()
    missing = [n for (n,) in names if f"`{n}" not in text]
    assert not missing


def test_docs_check_fails_on_a_stale_file(db_url: str, tmp_path: Path) -> None:
    stale = tmp_path / "reference.md"
    stale.write_text(REFERENCE.read_text().replace("## Functions", "## Functions\n\nan edit"))
    r = subprocess.run(
        [sys.executable, "-m", "platformdb.cli", "docs", "--check", "--output", str(stale), "--database-url", db_url],
        capture_output=True, text=True, timeout=120,
    )
    assert r.returncode == 1 and "differs from the catalog" in r.stderr
