"""Through a transaction-mode pooler (a real PgBouncer, pool smaller than the clients) and
directly: every SDK capability from 16 concurrent connections with 0 errors; detection of
the pool mode; the refusals of what needs a session (migrations, pg_cron registration)."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import psycopg
import pytest

from platformdb import db, migrate
from platformdb.pgbouncer import PgBouncer
from tests import pooler_workload
from tests.conftest import POOL_SIZE

pytestmark = pytest.mark.pooled

CLIENTS = 16


def test_every_capability_from_16_connections_without_an_error(db_url: str, route: str) -> None:
    assert CLIENTS > POOL_SIZE
    out = pooler_workload.run(db_url, threads=CLIENTS, iterations=6)
    assert out.errors == []
    assert dict(out.calls) == {name: CLIENTS * 6 for name in pooler_workload.CAPABILITIES}


def test_the_pool_mode_is_detected(db_url: str, server_url: str, route: str) -> None:
    assert db.detect_pool_mode(server_url) == "session"
    assert db.detect_pool_mode(db_url) == ("transaction" if route == "pooled" else "session")


def test_the_stated_pool_mode_wins_over_detection(
    db_url: str, route: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db, "_modes", {})
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv(db.POOL_MODE_ENV, "transaction")
    assert db.is_pooled(db_url)
    assert db.connect_kwargs(db_url) == {"prepare_threshold": None}
    monkeypatch.setattr(db, "_modes", {})
    monkeypatch.setenv(db.POOL_MODE_ENV, "sideways")
    with pytest.raises(db.PlatformDBError, match="transaction, session"):
        db.is_pooled(db_url)


def test_the_session_duties_get_the_direct_url_or_a_clear_refusal(
    db_url: str, server_url: str, route: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(db.DIRECT_URL_ENV, raising=False)
    if route == "direct":
        assert db.direct_url_for(db_url) == db_url
        return
    assert db.direct_url_for(db_url) is None
    with pytest.raises(db.PoolerRefused, match=db.DIRECT_URL_ENV):
        db.require_direct_url(db_url, duty="LISTEN")
    assert db.direct_url_for(db_url, server_url) == server_url
    monkeypatch.setenv(db.DIRECT_URL_ENV, server_url)
    assert db.direct_url_for(db_url) == server_url
    t = db.topology(db_url)
    assert (t.pooled, t.direct_url, t.listen_url, t.read_url) == (True, server_url, server_url, db_url)


def _ledger_rows(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as c:
        if c.execute("select to_regclass('supabase_migrations.platformdb_ledger')").fetchone() == (None,):
            return 0
        row = c.execute("select count(*) from supabase_migrations.platformdb_ledger").fetchone()
        assert row is not None
        return int(row[0])


def test_migrations_refuse_a_transaction_pooler_and_apply_nothing(
    new_db_url: str, pgbouncer: PgBouncer
) -> None:
    pooled = pgbouncer.url_for(new_db_url)
    db.configure(pooled, pool_mode="transaction")
    with pytest.raises(db.PoolerRefused, match=db.DIRECT_URL_ENV):
        migrate.up(pooled)
    with pytest.raises(db.PoolerRefused, match=db.DIRECT_URL_ENV):
        migrate.down(pooled, to="0")
    assert _ledger_rows(new_db_url) == 0
    with psycopg.connect(new_db_url, autocommit=True) as c:
        assert c.execute("select to_regclass('public.system_metrics')").fetchone() == (None,)


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "platformdb.cli", *args], capture_output=True, text=True, env=env, timeout=120
    )


def test_the_cli_refuses_migrations_through_the_pooler_and_uses_the_direct_url(
    new_db_url: str, pgbouncer: PgBouncer
) -> None:
    pooled = pgbouncer.url_for(new_db_url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLATFORMDB_") and k != "DATABASE_URL"}
    env["DATABASE_URL"] = pooled
    r = _cli("migrate", "up", env=env)  # detected: no PLATFORMDB_POOL_MODE
    assert r.returncode == 1
    assert db.DIRECT_URL_ENV in r.stderr and "transaction-mode pooler" in r.stderr
    assert _ledger_rows(new_db_url) == 0
    r = _cli("migrate", "up", "--to", "20260401100000", "--direct-url", new_db_url, env=env)
    assert r.returncode == 0, r.stderr
    assert _ledger_rows(new_db_url) == 1


def _doctor(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return _cli("doctor", "--json", *args, env=env)


def test_doctor_reports_each_url_and_which_serves_what(
    db_url: str, server_url: str, route: str
) -> None:
    import json

    env = {k: v for k, v in os.environ.items() if not k.startswith("PLATFORMDB_") and k != "DATABASE_URL"}
    env["DATABASE_URL"] = db_url
    r = _doctor(env)
    report: dict[str, Any] = json.loads(r.stdout)
    app = report["urls"]["database_url"]
    assert app["reachable"] and app["pooled"] == (route == "pooled") and not app["read_only"]
    if route == "pooled":
        # LISTEN, migrations and maintenance have no suitable URL without PLATFORMDB_DIRECT_URL
        assert r.returncode == 1
        assert report["duties"]["listen"] is None and report["duties"]["migrations"] is None
        env[db.DIRECT_URL_ENV] = server_url
        r = _doctor(env)
        report = json.loads(r.stdout)
        assert report["urls"]["direct_url"]["pooled"] is False
    assert r.returncode == 0, r.stdout + r.stderr
    assert report["duties"]["application"] == "database_url"
    assert report["duties"]["listen"] == ("direct_url" if route == "pooled" else "database_url")
    assert report["duties"]["reads"] == "database_url"
