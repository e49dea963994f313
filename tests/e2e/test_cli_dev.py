"""`platformdb dev …` and `platformdb migrate …` as a user runs them: subprocesses."""

from __future__ import annotations

import os
import pwd
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from platformdb import devdb

PDB = [sys.executable, "-m", "platformdb.cli"]


def run(args: list[str], env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess[str]:
    r = subprocess.run([*PDB, *args], env=env, capture_output=True, text=True, timeout=180)
    if check and r.returncode != 0:
        raise AssertionError(f"platformdb {' '.join(args)} exited {r.returncode}: {r.stderr}")
    return r


@pytest.fixture
def dev_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["PLATFORMDB_HOME"] = str(tmp_path / "home")
    yield env
    old = os.environ.get("PLATFORMDB_HOME")
    os.environ["PLATFORMDB_HOME"] = env["PLATFORMDB_HOME"]
    try:
        c = devdb.dev_cluster()
        if c is not None:
            c.destroy()
    finally:
        if old is None:
            del os.environ["PLATFORMDB_HOME"]
        else:
            os.environ["PLATFORMDB_HOME"] = old


def test_dev_up_is_idempotent_and_everything_uses_the_cluster(dev_env: dict[str, str]) -> None:
    first = run(["dev", "up"], dev_env).stdout.strip()
    assert first.startswith("postgresql://postgres@127.0.0.1:") and first.endswith("/platform")
    assert run(["dev", "up"], dev_env).stdout.strip() == first
    assert run(["dev", "url"], dev_env).stdout.strip() == first
    with psycopg.connect(first) as c:
        settings = dict(
            c.execute(
                "select name, setting from pg_settings where name in"
                " ('shared_preload_libraries', 'listen_addresses', 'cron.database_name')"
            ).fetchall()
        )
        assert settings["listen_addresses"] == "127.0.0.1"
        assert "pg_cron" in settings["shared_preload_libraries"]
        assert "pg_stat_statements" in settings["shared_preload_libraries"]
        assert settings["cron.database_name"] == "platform"
        owner = c.execute("select usename from pg_stat_activity where backend_type = 'checkpointer'").fetchone()
    status = run(["migrate", "status", "--json"], dev_env).stdout
    assert '"state": "applied"' in status and '"state": "pending"' not in status
    assert "system_observability" in status
    assert run(["dev", "status"], dev_env).returncode == 0
    assert owner is not None
    run(["dev", "down"], dev_env)
    assert run(["dev", "status"], dev_env, check=False).returncode == 1
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(first, connect_timeout=2)
    # up again: same cluster, data kept
    assert run(["dev", "up"], dev_env).stdout.strip().endswith("/platform")


def test_dev_cluster_server_runs_as_postgres_when_invoked_as_root(dev_env: dict[str, str]) -> None:
    run(["dev", "up", "--no-migrate"], dev_env)
    os.environ["PLATFORMDB_HOME"] = dev_env["PLATFORMDB_HOME"]
    try:
        c = devdb.dev_cluster()
    finally:
        del os.environ["PLATFORMDB_HOME"]
    assert c is not None
    pid = int((c.datadir / "postmaster.pid").read_text().split()[0])
    uid = next(int(line.split()[1]) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
               if line.startswith("Uid:"))
    expected = pwd.getpwnam("postgres").pw_uid if os.geteuid() == 0 else os.geteuid()
    assert uid == expected


def test_commands_without_a_database_say_how_to_get_one(dev_env: dict[str, str]) -> None:
    r = run(["migrate", "status"], dev_env, check=False)
    assert r.returncode == 1
    assert "platformdb dev up" in r.stderr


def test_database_url_overrides_the_dev_cluster(dev_env: dict[str, str], new_db_url: str) -> None:
    r = run(["migrate", "up", "--database-url", new_db_url], dev_env)
    assert "applied 20260401100000_system_observability.sql" in r.stderr
    env = dict(dev_env, DATABASE_URL=new_db_url)
    assert "nothing to apply" in run(["migrate", "up"], env).stderr
    r = run(["migrate", "down", "--dry-run"], env)
    assert "would roll back" in r.stderr


def test_migrate_export_copies_only_the_up_files(dev_env: dict[str, str], tmp_path: Path) -> None:
    target = tmp_path / "supabase" / "migrations"
    run(["migrate", "export", str(target)], dev_env)
    names = sorted(p.name for p in target.iterdir())
    assert names and all(not n.endswith(".down.sql") for n in names)
    assert "20260401100000_system_observability.sql" in names
    # re-export is idempotent; a changed file in the target is refused
    run(["migrate", "export", str(target)], dev_env)
    (target / names[0]).write_text("-- edited\n")
    r = run(["migrate", "export", str(target)], dev_env, check=False)
    assert r.returncode == 1 and "exists and differs" in r.stderr
