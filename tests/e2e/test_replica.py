"""PLATFORMDB_REPLICA_URL with a real streaming standby (pg_basebackup of a primary): the
dashboard's pages and /metrics read the standby and show its lag, its one write (the
redrive) goes to the primary; the flags client's full loads read the standby while a
notified key is reloaded from the primary."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from platformdb import db, devdb, migrate
from platformdb.dashboard import access
from platformdb.dashboard.app import Settings, create_app
from platformdb.sdk import flags
from platformdb.sdk import queue as q
from tests.chaos.conftest import wait_for
from tests.chaos.test_failover import Pair
from tests.conftest import selected_migrations_dir


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(primary URL, standby URL) of database `rep`, streaming synchronously."""
    base = Path(tempfile.mkdtemp(prefix="platformdb-replica-", dir=os.environ.get("PLATFORMDB_TMP")))
    os.chmod(base, 0o755)  # noqa: S103 - the postgres OS user must enter it
    devdb._chown_postgres(base)
    p = Pair(base)
    try:
        p.start_primary()
        p.primary.create_database("rep")
        migrate.up(p.primary.url("rep"), selected_migrations_dir(tmp_path_factory.mktemp("migrations")))
        p.start_standby()
        yield p.primary.url("rep"), p.standby.url("rep")
    finally:
        p.destroy()
        shutil.rmtree(base, ignore_errors=True)


def _replayed(primary: str, standby: str) -> None:
    with psycopg.connect(primary, autocommit=True) as c:
        row = c.execute("select pg_current_wal_lsn()").fetchone()
        assert row is not None
        lsn = row[0]
    with psycopg.connect(standby, autocommit=True) as s:
        wait_for(
            "the standby to replay",
            lambda: bool((s.execute("select pg_last_wal_replay_lsn() >= %s::pg_lsn", (lsn,)).fetchone() or [False])[0]),
            60,
        )


def test_the_dashboard_reads_the_replica_and_writes_the_primary(pair: tuple[str, str]) -> None:
    primary, standby = pair
    with psycopg.connect(primary, autocommit=True) as c, db.as_service(c):
        q.enqueue_message(c, "replica-q", "t", {}, max_attempts=1)
        [m] = q.claim_messages(c, "replica-q", 1, 30, "w")
        q.nack_message(c, m.id, "boom", worker_id="w")
    access.ensure_access(primary, True)
    _replayed(primary, standby)
    app = create_app(Settings(database_url=primary, replica_url=standby))
    with TestClient(app, base_url="http://127.0.0.1") as client:
        state = app.state.dashboard
        with state.pool.connection() as conn:
            assert conn.execute("select pg_is_in_recovery() as r").fetchone() == {"r": True}
        r = client.get("/")
        assert r.status_code == 200 and "Read from the replica" in r.text
        fams = {f.name: f.samples for f in text_string_to_metric_families(client.get("/metrics").text)}
        assert [s.value for s in fams["platformdb_reading_replica"]] == [1.0]
        assert [s.value for s in fams["platformdb_up"]] == [1.0]
        lag = fams["platformdb_replica_lag_seconds"][0].value
        assert lag >= 0.0
        # the one write goes to the primary (on the standby it would fail: read-only)
        assert access.redrive(state.primary_pool, "message", "replica-q", 10, "test") == 1
    with psycopg.connect(primary, autocommit=True) as c:
        assert c.execute("select state from message_queue where id = %s", (m.id,)).fetchone() == ("available",)


def test_without_a_replica_the_dashboard_says_it_reads_the_primary(pair: tuple[str, str]) -> None:
    primary, _ = pair
    access.ensure_access(primary, True)
    with TestClient(create_app(Settings(database_url=primary)), base_url="http://127.0.0.1") as client:
        assert "Read from the replica" not in client.get("/").text
        fams = {f.name: f.samples for f in text_string_to_metric_families(client.get("/metrics").text)}
        assert [s.value for s in fams["platformdb_reading_replica"]] == [0.0]
        assert [s.value for s in fams["platformdb_replica_lag_seconds"]] == [0.0]


def test_full_flag_loads_read_the_replica_and_notified_keys_the_primary(pair: tuple[str, str]) -> None:
    primary, standby = pair
    with psycopg.connect(primary, autocommit=True) as c, db.as_service(c):
        flags.upsert_flag(c, "replica-old", enabled=True, rollout_strategy="all")
    _replayed(primary, standby)
    with psycopg.connect(standby, autocommit=True) as s:
        s.execute("select pg_wal_replay_pause()")
        try:
            with flags.FlagClient(primary, replica_url=standby, refresh_interval=3600, record=False) as client:
                assert client.is_enabled("replica-old")
                with psycopg.connect(primary, autocommit=True) as c, db.as_service(c):
                    flags.upsert_flag(c, "replica-new", enabled=True, rollout_strategy="all")
                deadline = time.monotonic() + 15
                while time.monotonic() < deadline and not client.is_enabled("replica-new"):
                    time.sleep(0.01)
                # the NOTIFY made the client reload that key from the primary
                assert client.is_enabled("replica-new")
                # a full load reads the standby, whose replay is paused: it has not got the flag
                client.refresh()
                assert client.flag("replica-new") is None and client.is_enabled("replica-old")
                s.execute("select pg_wal_replay_resume()")
                _replayed(primary, standby)
                client.refresh()
                assert client.is_enabled("replica-new")
        finally:
            s.execute("select pg_wal_replay_resume()")


