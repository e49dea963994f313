"""Rollback proof: up → down to zero → up gives the same catalog each time, every single step
down returns exactly the catalog of the step before it (and a database that verifies), and
the existing application's objects and rows are untouched throughout.

The catalog is compared as pg_dump --schema-only prints it (every schema, grants, default
privileges, comments, policies, partitions; the migration ledger's own schema left out).
"""

from __future__ import annotations

import difflib
import shutil
import subprocess
from pathlib import Path

import psycopg
import pytest

from platformdb import devdb, migrate, verify
from tests.conftest import selected_migrations_dir
from tests.db import existing_app


@pytest.fixture
def app_url(new_db_url: str) -> str:
    with psycopg.connect(new_db_url, autocommit=True) as conn:
        existing_app.create(conn)
    return new_db_url


@pytest.fixture
def migrations_dir(tmp_path: Path) -> Path:
    return selected_migrations_dir(tmp_path / "selected") or migrate.default_dir()


def catalog(cluster: devdb.Cluster, url: str) -> str:
    out = subprocess.run(
        [str(cluster.bindir / "pg_dump"), "--schema-only", "--exclude-schema=supabase_migrations", url],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    noise = ("-- Dumped", "\\restrict", "\\unrestrict")
    return "\n".join(ln for ln in out.splitlines() if not ln.startswith(noise)) + "\n"


def same(a: str, b: str, what: str) -> None:
    if a != b:
        diff = "".join(difflib.unified_diff(a.splitlines(True), b.splitlines(True), "expected", "got", n=2))
        pytest.fail(f"{what}: the catalogs differ\n{diff[:6000]}")


def test_up_down_to_zero_up_with_an_existing_application(
    cluster: devdb.Cluster, app_url: str, migrations_dir: Path, tmp_path: Path
) -> None:
    app = existing_app.dump_objects(cluster, app_url, tmp_path / "0")
    data = existing_app.data_checksums(app_url)
    before = catalog(cluster, app_url)

    migrate.up(app_url, migrations_dir)
    after_up = catalog(cluster, app_url)
    assert after_up != before
    assert existing_app.dump_objects(cluster, app_url, tmp_path / "1") == app

    rolled = migrate.down(app_url, migrations_dir, to="0")
    assert len(rolled) == len(migrate.discover(migrations_dir))
    same(before, catalog(cluster, app_url), "after down to zero")
    assert existing_app.dump_objects(cluster, app_url, tmp_path / "2") == app
    with psycopg.connect(app_url) as conn:
        assert conn.execute("select count(*) from supabase_migrations.platformdb_ledger").fetchone() == (0,)
        assert conn.execute("select count(*) from supabase_migrations.schema_migrations").fetchone() == (0,)

    migrate.up(app_url, migrations_dir)
    same(after_up, catalog(cluster, app_url), "after up again")
    assert existing_app.dump_objects(cluster, app_url, tmp_path / "3") == app
    assert existing_app.data_checksums(app_url) == data


HARDENING = "20260401180000"


def _repaired_later(c: verify.Check, kept: int) -> bool:
    """Extension privileges that 20260401180000_security_hardening exists to take back: a
    deployment of the files before it fails verify on them, by design."""
    before_hardening = all(m.version < HARDENING for m in migrate.discover()[:kept])
    return (
        before_hardening
        and c.check in ("definer_executable", "extension_object_writable")
        and c.detail.startswith(("extension function", "postgis:"))
    )


def test_every_single_step_down_restores_the_step_before(
    cluster: devdb.Cluster, app_url: str, migrations_dir: Path, tmp_path: Path
) -> None:
    migrations = migrate.discover(migrations_dir)
    data = existing_app.data_checksums(app_url)
    steps = [catalog(cluster, app_url)]
    for m in migrations:
        migrate.up(app_url, migrations_dir, to=m.version)
        steps.append(catalog(cluster, app_url))
    for k in range(len(migrations), 0, -1):
        rolled = migrate.down(app_url, migrations_dir)
        assert [r.version for r in rolled] == [migrations[k - 1].version]
        same(steps[k - 1], catalog(cluster, app_url), f"after rolling back {migrations[k - 1].filename}")
        if k > 1:
            # what remains is a complete deployment of the first k-1 files
            subset = tmp_path / f"first-{k - 1}"
            subset.mkdir()
            for kept in migrations[: k - 1]:
                for f in (kept.path, kept.down_path):
                    if f is not None:
                        shutil.copy(f, subset / f.name)
            report = verify.run(app_url, migrations_dir=subset)
            failures = [f"{c.check}: {c.item}: {c.detail}" for c in report.failures if not _repaired_later(c, k - 1)]
            assert failures == [], f"after rolling back {migrations[k - 1].filename}"
    assert existing_app.data_checksums(app_url) == data
