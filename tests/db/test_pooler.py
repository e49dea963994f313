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


def test_the_stated_pool_mode_wins_over_detection(db_url: str, route: str, monkeypatch: pytest.MonkeyPatch) -> None:
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


def test_migrations_refuse_a_transaction_pooler_and_apply_nothing(new_db_url: str, pgbouncer: PgBouncer) -> None:
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


def test_doctor_reports_each_url_and_which_serves_what(db_url: str, server_url: str, route: str) -> None:
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


def test_the_webhook_receiver_stores_16_concurrent_deliveries(
    db_url: str, conn: psycopg.Connection[Any], route: str
) -> None:
    import json
    import threading

    from starlette.testclient import TestClient

    from platformdb.whatsapp_cloud import payloads
    from platformdb.whatsapp_cloud.webhook import create_app

    secret = "pooled-secret"
    app = create_app(db_url, secret, "verify", max_connections=CLIENTS)
    errors: list[str] = []
    per_thread = 5
    with TestClient(app) as client:

        def post(t: int) -> None:
            for i in range(per_thread):
                doc = payloads.text_notification(
                    f"2507880{t:02d}{i:03d}", f"hi {i}", f"wamid.c.{t}.{i}", timestamp=1750857384
                )
                body = json.dumps(doc).encode()
                headers = {"Content-Type": "application/json", "X-Hub-Signature-256": payloads.sign(body, secret)}
                r = client.post("/webhooks/whatsapp", content=body, headers=headers)
                if r.status_code != 200:
                    errors.append(f"{t}/{i}: {r.status_code} {r.text[:200]}")

        ts = [threading.Thread(target=post, args=(t,)) for t in range(CLIENTS)]
        for th in ts:
            th.start()
        for th in ts:
            th.join()
    assert errors == []
    row = conn.execute(
        "select count(*) from whatsapp_inbound_messages where whatsapp_message_id like 'wamid.c.%'"
    ).fetchone()
    assert row == (CLIENTS * per_thread,)


def test_16_flag_clients_see_a_change(
    db_url: str, conn: psycopg.Connection[Any], route: str, caplog: pytest.LogCaptureFixture
) -> None:
    import logging
    import time

    from platformdb.sdk import flags

    with db.as_service(conn):
        flags.upsert_flag(conn, "rollout", enabled=True, rollout_strategy="none")
    caplog.set_level(logging.INFO, logger="platformdb.flags")
    clients = [flags.FlagClient(db_url, refresh_interval=3600, record=False).start() for _ in range(CLIENTS)]
    try:
        assert all(c.ready and not c.is_enabled("rollout") for c in clients)
        with db.as_service(conn):
            flags.upsert_flag(conn, "rollout", rollout_strategy="all")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not all(c.is_enabled("rollout") for c in clients):
            time.sleep(0.02)
        assert all(c.is_enabled("rollout") for c in clients), "a client never saw the change"
        assert all(c.last_error is None for c in clients)
        polling = [r for r in caplog.records if "polling the flags' version" in r.getMessage()]
        # the fallback is logged once per client, at start — and only without a session URL
        assert len(polling) == (CLIENTS if route == "pooled" else 0)
        assert all(c.polling is (route == "pooled") for c in clients)
    finally:
        for c in clients:
            c.stop()


def test_with_a_direct_url_listen_goes_there_while_the_calls_use_the_pooler(
    server_url: str, pgbouncer: PgBouncer
) -> None:
    import time

    from platformdb.sdk import flags

    db_url = pgbouncer.url_for(server_url)
    conn = psycopg.connect(db_url, autocommit=True, prepare_threshold=None)

    with db.as_service(conn):
        flags.upsert_flag(conn, "via-listen", enabled=True, rollout_strategy="none")
    with flags.FlagClient(db_url, direct_url=server_url, refresh_interval=3600, record=False) as client:
        assert client.polling is False and not client.is_enabled("via-listen")
        with db.as_service(conn):
            flags.upsert_flag(conn, "via-listen", rollout_strategy="all")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not client.is_enabled("via-listen"):
            time.sleep(0.01)
        assert client.is_enabled("via-listen")
    with psycopg.connect(server_url, autocommit=True) as c:
        listeners = c.execute(
            "select count(*) from pg_stat_activity where datname = current_database()"
            " and application_name = %s and query like 'listen%%'",
            (flags.APP_NAME,),
        ).fetchone()
    assert listeners == (0,)  # the client closed its LISTEN connection on stop
    conn.close()


def test_without_a_session_url_the_sender_polls_and_says_so_once(
    db_url: str, conn: psycopg.Connection[Any], route: str, caplog: pytest.LogCaptureFixture
) -> None:
    import logging
    import threading
    import time

    from platformdb.sdk import whatsapp as wa
    from platformdb.whatsapp_cloud.graph_stub import GraphStub
    from platformdb.whatsapp_cloud.sender import SenderConfig, WhatsAppSender

    caplog.set_level(logging.INFO, logger="platformdb.whatsapp.sender")
    with GraphStub(token="graph-test-token", phone_number_id="106540352242922") as stub:
        config = SenderConfig(
            database_url=db_url,
            access_token=stub.token,
            phone_number_id=stub.phone_number_id,
            graph_url=stub.base_url,
            rate_per_second=None,
            idle_wait=0.3,
            lease_seconds=60,
            http_timeout=5.0,
            backoff_max=0.05,
            retry_after_max=0.2,
        )
        sender = WhatsAppSender(config)
        stop = threading.Event()
        th = threading.Thread(target=sender.run, args=(stop,))
        th.start()
        try:
            time.sleep(0.5)
            with db.as_service(conn):
                ids = [wa.send_text(conn, f"+25078811{i:04d}", f"m{i}") for i in range(CLIENTS)]
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                row = conn.execute(
                    "select count(*) from whatsapp_message_queue where id = any(%s) and status = 'sent'", (ids,)
                ).fetchone()
                if row == (CLIENTS,):
                    break
                time.sleep(0.1)
        finally:
            stop.set()
            th.join(30)
    assert row == (CLIENTS,)
    polling = [r for r in caplog.records if "polling every" in r.getMessage()]
    assert len(polling) == (1 if route == "pooled" else 0)


def test_a_stopped_pgbouncer_leaves_no_process_behind(cluster: Any) -> None:
    """As root pgbouncer runs under runuser, which did not pass the shutdown signal on: every
    stopped PgBouncer (one per test session) stayed running. stop() signals pgbouncer itself."""
    bouncer = PgBouncer(cluster.port).start()
    daemon = int((bouncer.base / "pgbouncer.pid").read_text().strip())
    assert os.path.exists(f"/proc/{daemon}")
    with psycopg.connect(bouncer.url("postgres"), autocommit=True, prepare_threshold=None) as c:
        assert c.execute("select 1").fetchone() == (1,)
    bouncer.destroy()
    assert not os.path.exists(f"/proc/{daemon}")
    assert bouncer.process is None and not bouncer.base.exists()
