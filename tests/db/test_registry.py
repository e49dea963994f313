"""§3.4 service registry against a real PostgreSQL: registration, heartbeats, health
transitions, dependencies, security, bad input, and the background heartbeat helper."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from platformdb import db, errors
from platformdb.sdk import registry
from tests import shared_db
from tests.helpers import count, raises_sqlstate

Connect = Callable[..., psycopg.Connection[Any]]


def register(conn: psycopg.Connection[Any], name: str = "payments-api", **kw: Any) -> uuid.UUID:
    args: dict[str, Any] = {
        "service_type": "api",
        "version": "1.4.2",
        "endpoint": "https://payments.internal:8443",
        **kw,
    }
    with db.as_service(conn):
        return registry.register_service(conn, name, **args)


def health(conn: psycopg.Connection[Any], name: str = "payments-api") -> dict[str, Any]:
    with db.as_service(conn):
        row = registry.health_of(conn, name)
    assert row is not None
    return row


def age(conn: psycopg.Connection[Any], seconds: float, name: str = "payments-api") -> None:
    conn.execute(
        "update service_registry set last_heartbeat_at = now() - make_interval(secs => %s) where service_name = %s",
        (seconds, name),
    )


def test_register_returns_a_stable_id_and_updates_the_registration(conn: psycopg.Connection[Any]) -> None:
    first = register(conn, capabilities=["momo.charge"], health_check_url="https://payments.internal/health")
    again = register(conn, version="1.5.0", capabilities=["momo.charge", "momo.refund"], dependencies=["wa-webhook"])
    assert again == first
    row = conn.execute(
        "select service_type, version, endpoint, health_check_url, capabilities, dependencies, status,"
        " heartbeat_count, last_heartbeat_at is not null from service_registry where id = %s",
        (first,),
    ).fetchone()
    assert row == (
        "api",
        "1.5.0",
        "https://payments.internal:8443",
        None,
        ["momo.charge", "momo.refund"],
        ["wa-webhook"],
        "healthy",
        2,
        True,
    )


def test_heartbeat_records_status_and_metrics_and_refuses_unknown_services(conn: psycopg.Connection[Any]) -> None:
    register(conn)
    age(conn, 600)
    with db.as_service(conn):
        assert registry.service_heartbeat(conn, "payments-api", "degraded", {"queue_depth": 12})
        assert not registry.service_heartbeat(conn, "never-registered")
    row = conn.execute(
        "select status, metrics, heartbeat_count, now() - last_heartbeat_at < interval '1 second' from service_registry"
    ).fetchone()
    assert row == ("degraded", {"queue_depth": 12}, 2, True)
    assert count(conn, "service_registry") == 1


@pytest.mark.parametrize(
    ("status", "seconds", "expected"),
    [
        ("healthy", 0, "healthy"),
        ("healthy", 119, "healthy"),
        ("healthy", 120, "warning"),
        ("healthy", 299, "warning"),
        ("healthy", 300, "critical"),
        ("healthy", 86400, "critical"),
        ("degraded", 10, "warning"),
        ("degraded", 400, "critical"),
        ("unhealthy", 10, "unhealthy"),
        ("unhealthy", 200, "unhealthy"),
        ("unhealthy", 301, "critical"),
        ("stopped", 10, "stopped"),
        ("stopped", 86400, "stopped"),
    ],
)
def test_health_from_reported_status_and_heartbeat_age(
    conn: psycopg.Connection[Any], status: str, seconds: int, expected: str
) -> None:
    register(conn)
    with db.as_service(conn):
        registry.service_heartbeat(conn, "payments-api", status)
    with conn.transaction():  # one now() for the ageing and the reading: exact boundaries
        age(conn, seconds)
        h = health(conn)
    assert h["health_status"] == expected
    assert h["reported_status"] == status
    assert h["seconds_since_heartbeat"] == seconds


def test_a_service_that_never_sent_a_heartbeat_is_critical(conn: psycopg.Connection[Any]) -> None:
    conn.execute(
        "insert into service_registry (service_name, service_type, version, endpoint)"
        " values ('silent', 'worker', '1', 'worker://silent')"
    )
    assert health(conn, "silent")["health_status"] == "critical"


def test_transitions_as_time_passes_and_a_heartbeat_recovers(conn: psycopg.Connection[Any]) -> None:
    register(conn)
    seen = []
    for seconds in (30, 150, 400):
        age(conn, seconds)
        seen.append(health(conn)["health_status"])
    with db.as_service(conn):
        registry.service_heartbeat(conn, "payments-api")
    seen.append(health(conn)["health_status"])
    assert seen == ["healthy", "warning", "critical", "healthy"]


def test_dependencies_that_are_missing_or_not_healthy_are_listed(conn: psycopg.Connection[Any]) -> None:
    register(conn, "wa-webhook", service_type="edge_function", endpoint="https://wa.example/webhook")
    register(conn, "momo-gateway", service_type="microservice", endpoint="https://momo.internal")
    register(conn, "payments-api", dependencies=["wa-webhook", "momo-gateway", "ledger"])
    assert health(conn)["unhealthy_dependencies"] == ["ledger"]
    age(conn, 200, "momo-gateway")
    assert health(conn)["unhealthy_dependencies"] == ["ledger", "momo-gateway"]


@pytest.mark.parametrize(
    ("kwargs", "state", "message"),
    [
        ({"service_name": ""}, "22004", "p_service_name must not be empty"),
        ({"service_name": "has space"}, "22023", "p_service_name must be"),
        ({"service_name": "-leading"}, "22023", "p_service_name must be"),
        ({"service_type": "lambda"}, "22023", "p_service_type: unknown service type lambda"),
        ({"version": ""}, "22004", "p_version must not be empty"),
        ({"version": "1 .2"}, "22023", "p_version"),
        ({"endpoint": ""}, "22004", "p_endpoint must not be empty"),
        ({"endpoint": "payments.internal"}, "22023", "p_endpoint must be a URL"),
        ({"endpoint": "https://" + "x" * 2050}, "22023", "p_endpoint"),
        ({"health_check_url": "ftp://x/health"}, "22023", "p_health_check_url must be an http"),
        ({"capabilities": [1, 2]}, "22023", "p_capabilities must be a JSON array of strings"),
        ({"dependencies": ["not a name"]}, "22023", "p_dependencies must be a JSON array of service names"),
        ({"capabilities": ["c" * 100] * 200}, "22023", "p_capabilities must be at most 16 KiB"),
    ],
)
def test_register_refuses_bad_input_and_writes_nothing(
    conn: psycopg.Connection[Any], kwargs: dict[str, Any], state: str, message: str
) -> None:
    args: dict[str, Any] = {
        "service_name": "svc",
        "service_type": "api",
        "version": "1",
        "endpoint": "https://svc.internal",
        **kwargs,
    }
    with raises_sqlstate(state, message), db.as_service(conn):
        registry.register_service(conn, **args)
    assert count(conn, "service_registry") == 0


@pytest.mark.parametrize(
    ("sql", "state", "message"),
    [
        ("select service_heartbeat(null)", "22004", "p_service_name must not be empty"),
        ("select service_heartbeat('payments-api', 'sleeping')", "22023", "p_status: unknown status sleeping"),
        ("select service_heartbeat('payments-api', null)", "22023", "p_status"),
        ("select service_heartbeat('payments-api', 'healthy', '[1]')", "22023", "p_metrics must be a JSON object"),
        (
            "select service_heartbeat('payments-api', 'healthy', jsonb_build_object('x', repeat('y', 20000)))",
            "22023",
            "p_metrics must be at most 16 KiB",
        ),
    ],
)
def test_heartbeat_refuses_bad_input_and_changes_nothing(
    conn: psycopg.Connection[Any], sql: str, state: str, message: str
) -> None:
    register(conn)
    before = conn.execute("select status, metrics, heartbeat_count, last_heartbeat_at from service_registry").fetchone()
    with raises_sqlstate(state, message), db.as_service(conn):
        conn.execute(sql)
    assert (
        conn.execute("select status, metrics, heartbeat_count, last_heartbeat_at from service_registry").fetchone()
        == before
    )


@pytest.mark.parametrize("role", ["anon", "authenticated"])
@pytest.mark.parametrize(
    "sql",
    [
        "select register_service('evil', 'api', '1', 'https://evil.example')",
        "select service_heartbeat('payments-api', 'unhealthy')",
        "select * from service_health_overview",
        "select endpoint from service_registry",
        "update service_registry set endpoint = 'https://evil.example'",
    ],
)
def test_nobody_but_the_service_sees_or_changes_the_registry(
    conn: psycopg.Connection[Any], role: str, sql: str
) -> None:
    register(conn)
    with raises_sqlstate("42501", "permission denied"), db.acting_as(conn, role, uuid.uuid4()):
        conn.execute(sql)
    assert conn.execute("select service_name, endpoint, status from service_registry").fetchall() == [
        ("payments-api", "https://payments.internal:8443", "healthy")
    ]


def test_heartbeats_are_hot_updates(conn: psycopg.Connection[Any]) -> None:
    shared_db.skip_on_citus(conn, "the updates happen in the shard placements, whose statistics are on their nodes")
    register(conn)
    conn.execute("select pg_stat_force_next_flush()")
    before = conn.execute(
        "select n_tup_upd, n_tup_hot_upd from pg_stat_user_tables where relname = 'service_registry'"
    ).fetchone()
    for _ in range(50):
        with db.as_service(conn):
            registry.service_heartbeat(conn, "payments-api", "healthy", {"rps": 12})
    conn.execute("select pg_stat_force_next_flush()")
    after = conn.execute(
        "select n_tup_upd, n_tup_hot_upd from pg_stat_user_tables where relname = 'service_registry'"
    ).fetchone()
    assert before is not None and after is not None
    assert after[0] - before[0] == 50
    assert after[1] - before[1] == 50, "a heartbeat updated an index (not HOT)"


# ---- the heartbeat helper -------------------------------------------------------------


def _wait(predicate: Callable[[], bool], timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def _beats(conn: psycopg.Connection[Any], name: str = "rides-matcher") -> int:
    row = conn.execute("select heartbeat_count from service_registry where service_name = %s", (name,)).fetchone()
    return int(row[0]) if row else 0


def test_the_heartbeat_helper_registers_beats_reports_status_and_stops_cleanly(
    conn: psycopg.Connection[Any], db_url: str
) -> None:
    state = {"status": "healthy"}
    hb = registry.Heartbeat(
        db_url,
        "rides-matcher",
        "worker",
        "3.2.1",
        "worker://rides-1",
        capabilities=["match"],
        interval=0.05,
        status=lambda: (state["status"], {"matches": 5}),
    )
    with hb:
        assert hb.service_id is not None
        assert _wait(lambda: _beats(conn) >= 4)
        state["status"] = "degraded"
        assert _wait(lambda: health(conn, "rides-matcher")["health_status"] == "warning")
        assert health(conn, "rides-matcher")["metrics"] == {"matches": 5}
    assert health(conn, "rides-matcher")["health_status"] == "stopped"
    n = _beats(conn)
    time.sleep(0.3)
    assert _beats(conn) == n, "beats continued after stop()"


def test_the_helper_registers_again_when_its_row_is_gone(conn: psycopg.Connection[Any], db_url: str) -> None:
    with registry.Heartbeat(db_url, "rides-matcher", "worker", "3.2.1", "worker://rides-1", interval=0.05):
        conn.execute("delete from service_registry where service_name = 'rides-matcher'")
        assert _wait(lambda: _beats(conn) >= 2), "never re-registered"


def test_the_helper_survives_a_lost_connection(conn: psycopg.Connection[Any], db_url: str) -> None:
    with registry.Heartbeat(db_url, "rides-matcher", "worker", "3.2.1", "worker://rides-1", interval=0.05) as hb:
        assert _wait(lambda: _beats(conn) >= 2)
        conn.execute(
            "select pg_terminate_backend(pid) from pg_stat_activity"
            " where application_name = %s and datname = current_database()",
            (registry.APP_NAME,),
        )
        assert _wait(lambda: hb.failures >= 1)
        n = _beats(conn)
        assert _wait(lambda: _beats(conn) > n + 2), "beats did not resume"


def test_the_helper_refuses_bad_input_at_start(db_url: str) -> None:
    hb = registry.Heartbeat(db_url, "bad name", "worker", "1", "worker://x")
    with pytest.raises(errors.InvalidInput, match="p_service_name"):
        hb.start()
    with pytest.raises(ValueError, match="interval"):
        registry.Heartbeat(db_url, "ok", "worker", "1", "worker://x", interval=0)


def test_health_status_function_is_the_documented_rule(conn: psycopg.Connection[Any]) -> None:
    now = datetime.now(UTC)
    cases = [
        ("healthy", now, "healthy"),
        ("healthy", now - timedelta(minutes=2), "warning"),
        ("healthy", now - timedelta(minutes=5), "critical"),
        ("healthy", None, "critical"),
        ("unhealthy", now, "unhealthy"),
        ("degraded", now, "warning"),
        ("stopped", None, "stopped"),
    ]
    for status, at, expected in cases:
        row = conn.execute("select service_health_status(%s, %s, %s)", (status, at, now)).fetchone()
        assert row == (expected,), (status, at)
