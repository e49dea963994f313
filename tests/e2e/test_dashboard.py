"""The dashboard and /metrics against a real database: pages with data and empty, the token,
the read-only role, the redrive action, the Prometheus families, and the plans of every
dashboard query on a `demo --scale medium` database (no sequential scan of a partition).
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families
from psycopg import sql
from psycopg.conninfo import make_conninfo
from starlette.testclient import TestClient

from platformdb.dashboard import access, exporter
from platformdb.dashboard import queries as q
from platformdb.dashboard.app import PAGES, Settings, create_app
from platformdb.dashboard.cli import check_binding
from tests.e2e import dashboard_plans as plans
from tests.helpers import raises_sqlstate

PDB = [sys.executable, "-m", "platformdb.cli"]
TOKEN = "s3cret-token-for-tests-0123456789"
# what each page must show from the demo data (and an SVG chart that is not empty)
EXPECTED = {
    "/": ["Health at a glance", "Services", "Partitions"],
    "/services": ["wa-webhook", "payments-api"],
    "/queues": ["notifications", "payouts", "ride-matching", "reports.daily", "HTTP 503 from provider"],
    "/payments": ["RWF", "completed", "failed"],
    "/whatsapp": ["delivered", "Message undeliverable", "What messages cost", "utility", "Webhook quarantine"],
    "/cache": ["profile", "fare"],
    "/flags": ["new-checkout", "rides.surge-pricing"],
    "/partitions": ["transactions_p", "system_metrics", "event_store"],
    "/series": ["momo_charge", "message_processing"],
    "/queries": ["monitoring_", "calls"],
}
CHARTED = {"/", "/services", "/queues", "/payments", "/whatsapp", "/cache", "/flags", "/partitions", "/series"}


def client_for(url: str, **kw: Any) -> TestClient:
    return TestClient(create_app(Settings(database_url=url, **kw)), base_url="http://127.0.0.1")


@pytest.fixture(scope="module")
def demo_client(medium_demo_url: str) -> Iterator[TestClient]:
    with client_for(medium_demo_url) as c:
        # the query page reads pg_stat_statements: let every page run once first
        for path, _ in PAGES:
            c.get(path)
        yield c


def charts_drawn(html: str) -> int:
    return len(re.findall(r'<svg class="chart (?:line|bars|hbars|funnel)"', html))


# ---- pages ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [p for p, _ in PAGES])
def test_every_page_shows_the_demo_data(demo_client: TestClient, path: str) -> None:
    r = demo_client.get(path)
    assert r.status_code == 200, r.text[:500]
    for text in EXPECTED[path]:
        assert text in r.text, f"{path} does not show {text!r}"
    if path in CHARTED:
        assert charts_drawn(r.text) >= 1, f"{path} draws no chart"
    assert "no data in this window" not in r.text or path in ("/cache",), f"{path} has an empty chart"
    assert r.headers["content-security-policy"].startswith("default-src 'none'")


def test_every_number_links_to_the_sql_it_comes_from(demo_client: TestClient) -> None:
    links: set[str] = set()
    numbers = 0
    for path, _ in PAGES:
        html = demo_client.get(path).text
        numbers += len(re.findall(r'<a class="num" href="/sql/', html))
        links |= set(re.findall(r'href="/sql/([a-z_]+)"', html))
        # no number cell outside a link: every <td class="r"> starts with one
        for cell in re.findall(r'<td class="r">(.*?)</td>', html, flags=re.S):
            assert cell.strip().startswith('<a class="num" href="/sql/'), f"{path}: unlinked number {cell[:80]}"
    assert numbers > 100
    assert {"message_queue_stats", "monitoring_payment_volume", "partition_coverage"} <= links
    for name in links:
        r = demo_client.get(f"/sql/{name}")
        assert r.status_code == 200
        assert re.search(r"CREATE OR REPLACE FUNCTION|<h2>view", r.text), f"/sql/{name} shows no definition"
    # only the dashboard's own SQL objects are shown
    r = demo_client.get("/sql/transactions")
    assert "No SQL object of the dashboard" in r.text and "CREATE" not in r.text


def test_pages_render_on_an_empty_database(db_url: str) -> None:
    with client_for(db_url) as c:
        for path, _ in PAGES:
            r = c.get(path)
            assert r.status_code == 200, f"{path}: {r.text[:300]}"
        overview = c.get("/").text
        statuses = dict(
            re.findall(r'data-area="(\w+)">\s*<h2><a href="[^"]+">[^<]+</a> <span class="badge b-(\w+)"', overview)
        )
        assert statuses["partitions"] == "green"  # the migrations create them, empty or not
        assert {k for k, v in statuses.items() if v != "grey"} == {"partitions"}, statuses
        assert "No service has registered yet" in c.get("/services").text
        assert "No dead letters." in c.get("/queues").text
        assert "no data in this window" in c.get("/payments").text
        metrics = c.get("/metrics")
        assert metrics.status_code == 200
        names = {f.name for f in text_string_to_metric_families(metrics.text)}
        assert {"platformdb_up", "platformdb_partition_months_ahead"} <= names


def test_window_and_service_selection(demo_client: TestClient) -> None:
    one = demo_client.get("/series?window=1h&service=payments-api").text
    assert "payments-api · momo_charge" in one and "wa-webhook · message_processing" not in one
    assert '<option value="1h" selected>' in one
    # an unknown window falls back to the default instead of reaching SQL
    assert demo_client.get("/payments?window=10y").status_code == 200
    # a service name is a bound parameter, never SQL
    r = demo_client.get("/series", params={"service": "x' or '1'='1"})
    assert r.status_code == 200 and "momo_charge ·" not in r.text


# ---- access ----------------------------------------------------------------------------


def test_binding_off_loopback_needs_a_token() -> None:
    assert check_binding("127.0.0.1", None) is None
    assert check_binding("::1", None) is None
    assert check_binding("localhost", None) is None
    assert "--token" in (check_binding("0.0.0.0", None) or "")
    assert "--token" in (check_binding("192.168.1.20", None) or "")
    assert check_binding("0.0.0.0", TOKEN) is None
    assert "at least" in (check_binding("0.0.0.0", "short") or "")


def test_cli_refuses_a_public_binding_without_token(db_url: str) -> None:
    r = subprocess.run(
        [*PDB, "dashboard", "--host", "0.0.0.0", "--port", "1", "--database-url", db_url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2
    assert "--token" in r.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_cli_on_a_public_address_enforces_the_token(db_url: str) -> None:
    port = _free_port()
    proc = subprocess.Popen(
        [*PDB, "dashboard", "--host", "0.0.0.0", "--port", str(port), "--database-url", db_url, "--token", TOKEN],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(base + "/healthz", timeout=1)
                break
            except httpx.HTTPError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"dashboard did not start: {proc.stderr.read() if proc.stderr else ''}")
                time.sleep(0.2)
        for path in ("/", "/queues", "/metrics", "/sql/message_queue_stats"):
            assert httpx.get(base + path).status_code == 401, path
            assert httpx.get(base + path, headers={"Authorization": "Bearer wrong-token-0123456789"}).status_code == 401
            ok = httpx.get(base + path, headers={"Authorization": f"Bearer {TOKEN}"})
            assert ok.status_code == 200, path
        # any Host is answered off loopback (the token protects), including the machine's name
        assert httpx.get(base + "/", headers={"Host": "dashboard.example.rw"}).status_code == 401
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_token_sign_in_sets_a_cookie(db_url: str) -> None:
    with client_for(db_url, token=TOKEN, loopback_only=False) as c:
        page = c.get("/queues", headers={"accept": "text/html"})
        assert page.status_code == 401 and 'name="token"' in page.text
        metrics = c.get("/metrics")
        assert metrics.status_code == 401 and metrics.headers["www-authenticate"].startswith("Bearer")
        bad = c.post("/login", data={"token": "not-it", "next": "/queues"}, follow_redirects=False)
        assert bad.status_code == 401 and "platformdb_dashboard" not in bad.headers.get("set-cookie", "")
        good = c.post("/login", data={"token": TOKEN, "next": "/queues"}, follow_redirects=False)
        assert good.status_code == 303 and good.headers["location"] == "/queues"
        assert (
            "httponly" in good.headers["set-cookie"].lower() and "samesite=strict" in good.headers["set-cookie"].lower()
        )
        assert TOKEN not in good.headers["set-cookie"]  # the cookie is derived, not the token
        assert c.get("/queues").status_code == 200
        # an open redirect is refused
        away = c.post("/login", data={"token": TOKEN, "next": "//evil.example/"}, follow_redirects=False)
        assert away.headers["location"] == "/"


def test_loopback_binding_answers_loopback_host_names_only(db_url: str) -> None:
    with client_for(db_url) as c:
        assert c.get("/").status_code == 200
        assert c.get("/", headers={"Host": "localhost:8050"}).status_code == 200
        # DNS rebinding: a page on another site resolving its name to 127.0.0.1
        assert c.get("/", headers={"Host": "attacker.example:8050"}).status_code == 421
        assert c.get("/metrics", headers={"Host": "attacker.example"}).status_code == 421


def test_the_dashboard_reads_as_a_read_only_role(db_url: str) -> None:
    with client_for(db_url) as c:
        pool = c.app.state.dashboard.pool  # type: ignore[attr-defined]
        # every checkout is one read-only transaction as platformdb_monitor (SET LOCAL: the same
        # on a transaction-mode pooler), so each refusal below gets a checkout of its own
        with pool.connection() as conn:
            row = conn.execute("select current_user, current_setting('transaction_read_only')").fetchone()
            assert row == {"current_user": "platformdb_monitor", "current_setting": "on"}
        for stmt in (
            "insert into public.message_queue (queue_name, message_type, payload) values ('x', 'y', '{}')",
            "create table public.dashboard_was_here (i int)",
        ):
            with raises_sqlstate("25006"), pool.connection() as conn:  # read-only, before any privilege check
                conn.execute(stmt)
        with raises_sqlstate("25001"), pool.connection() as conn:  # a page cannot make its checkout writable
            conn.execute("set transaction read write")
        with pool.operator_connection() as conn, conn.transaction():
            conn.execute("set local role platformdb_monitor")  # read-write, as the monitor role
            for stmt in (
                "select count(*) from public.transactions",
                "select count(*) from public.message_queue_stats",
                "insert into public.message_queue (queue_name, message_type, payload) values ('x', 'y', '{}')",
                "select public.redrive_dead_letters('payouts', 10)",
                "select public.monitoring_redrive_dead_letters('message', 'payouts', 10)",
                "select public.monitoring_checked_limit(1)",
            ):
                with raises_sqlstate("42501"), conn.transaction():
                    conn.execute(stmt)
    with psycopg.connect(db_url) as admin:
        # what the role may do at all: execute the read-only monitoring functions, nothing else
        rows = admin.execute(
            """
            select p.proname, p.provolatile, p.prosecdef from pg_proc p
             where p.pronamespace = 'public'::regnamespace
               and has_function_privilege('platformdb_monitor', p.oid, 'execute')
               and not exists (select 1 from pg_depend d where d.objid = p.oid and d.deptype = 'e')
            """
        ).fetchall()
        assert rows and all(n.startswith("monitoring_") and v != "v" and d for n, v, d in rows), rows
        assert {n for n, *_ in rows} >= {"monitoring_queues", "monitoring_payment_volume", "monitoring_metric_series"}
        tables = admin.execute(
            """
            select c.relname from pg_class c where c.relnamespace = 'public'::regnamespace
               and c.relkind in ('r', 'p', 'v', 'm', 'u')
               and has_table_privilege('platformdb_monitor', c.oid, 'select,insert,update,delete')
               and not exists (select 1 from pg_depend d where d.objid = c.oid and d.deptype = 'e')
            """
        ).fetchall()
        assert tables == []


def test_redrive_needs_confirmation_and_its_form_token_and_leaves_an_audit_entry(small_demo_url: str) -> None:
    with psycopg.connect(small_demo_url, autocommit=True) as admin:
        admin.execute("select public.enqueue_message('refunds', 'refund.momo', '{}'::jsonb)")
        admin.execute(
            "update public.message_queue set state = 'dead_letter', finalized_at = now(), attempt = 5"
            " where queue_name = 'refunds'"
        )
        dead_before = admin.execute("select count(*) from public.message_queue where state = 'dead_letter'").fetchone()
    with client_for(small_demo_url) as c:
        page = c.get("/queues").text
        assert "Re-drive message refunds" in page and "data-confirm=" in page
        csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page)
        assert csrf
        form = {"csrf": csrf.group(1), "kind": "message", "name": "refunds", "confirm": "yes"}
        assert c.post("/queues/redrive", data={**form, "csrf": "0" * 64}).status_code == 403
        assert c.post("/queues/redrive", data={**form, "confirm": ""}).status_code == 400
        assert c.post("/queues/redrive", data=form, headers={"Origin": "http://evil.example"}).status_code == 403
        assert c.post("/queues/redrive", data=form, headers={"Origin": "null"}).status_code == 403
        assert c.post("/queues/redrive", data={**form, "kind": "table"}).status_code == 400
        with psycopg.connect(small_demo_url) as admin:
            assert (
                admin.execute("select count(*) from public.message_queue where state = 'dead_letter'").fetchone()
                == dead_before
            )
        done = c.post("/queues/redrive", data=form, follow_redirects=False)
        assert done.status_code == 303 and "redriven=1+message" in done.headers["location"]
        assert "1 message dead letters of refunds" in c.get(done.headers["location"]).text
    with psycopg.connect(small_demo_url) as admin:
        state = admin.execute(
            "select state, redrive_count from public.message_queue where queue_name = 'refunds'"
        ).fetchone()
        assert state == ("available", 1)
        audit = admin.execute(
            "select actor_type, action, resource_id, metadata ->> 'redriven' from public.system_audit_logs"
            " where action = 'queue.redrive'"
        ).fetchall()
        assert audit == [("admin", "queue.redrive", "refunds", "1")]


def test_monitoring_functions_refuse_bad_arguments_by_name(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        cases = [
            ("select * from public.monitoring_queues(p_limit => 0)", "22003", "p_limit"),
            ("select * from public.monitoring_flags(p_limit => 5000)", "22003", "p_limit"),
            ("select * from public.monitoring_dead_letters(p_limit => null)", "22004", "p_limit"),
            (
                "select * from public.monitoring_payment_volume(p_window => '2 months', p_bucket => '1 day')",
                "22023",
                "p_window",
            ),
            (
                "select * from public.monitoring_payment_volume(p_window => null, p_bucket => '1 hour')",
                "22004",
                "p_window",
            ),
            (
                "select * from public.monitoring_throughput(p_window => '7 days', p_bucket => '1 minute')",
                "22023",
                "p_bucket",
            ),
            ("select * from public.monitoring_metric_timeseries('a', 'b', '1 hour', '2 hours')", "22023", "p_bucket"),
            ("select * from public.monitoring_cache_hit_rate(p_window => '10 seconds')", "22023", "p_window"),
            ("select public.monitoring_redrive_dead_letters('queue', 'payouts')", "22023", "p_kind"),
            ("select public.monitoring_redrive_dead_letters('message', '')", "22004", "p_name"),
            ("select public.monitoring_redrive_dead_letters('job', 'reports.daily', 0)", "22003", "p_limit"),
        ]
        for stmt, state, name in cases:
            with raises_sqlstate(state, name):
                conn.execute(stmt)
        # nothing was written by the refused redrives
        assert conn.execute("select count(*) from public.system_audit_logs where actor_type = 'admin'").fetchone() == (
            0,
        )


# ---- /metrics --------------------------------------------------------------------------

ISSUE_FAMILIES = {  # the families the issue lists, by what they measure
    "queue depth per queue": "platformdb_queue_depth",
    "oldest age per queue": "platformdb_queue_oldest_ready_age_seconds",
    "jobs by state": "platformdb_jobs",
    "dead letters": "platformdb_dead_letters",
    "transactions by status": "platformdb_transactions_24h",
    "WhatsApp statuses": "platformdb_whatsapp_messages_24h",
    "WhatsApp billable messages by category": "platformdb_whatsapp_billable_messages_24h",
    "cache hit ratio": "platformdb_cache_hit_ratio",
    "service health": "platformdb_service_health",
    "partition months ahead": "platformdb_partition_months_ahead",
}


def _samples(text: str) -> dict[str, list[Any]]:
    return {f.name: f.samples for f in text_string_to_metric_families(text)}


def test_metrics_parse_and_carry_every_family(demo_client: TestClient, medium_demo_url: str) -> None:
    r = demo_client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    fams = _samples(r.text)
    assert set(exporter.FAMILIES) <= set(fams), set(exporter.FAMILIES) - set(fams)
    for what, name in ISSUE_FAMILIES.items():
        assert fams[name], f"{name} ({what}) has no sample"
    up = [s.value for s in fams["platformdb_up"]]
    assert up == [1.0]

    def value(family: str, **labels: str) -> float:
        got = [s.value for s in fams[family] if all(s.labels.get(k) == v for k, v in labels.items())]
        assert len(got) == 1, (family, labels, got)
        return float(got[0])

    with psycopg.connect(medium_demo_url) as conn:  # the owner's own count, for comparison
        for queue_name, depth, dead in conn.execute(
            "select queue_name, count(*) filter (where state in ('available', 'retryable')),"
            " count(*) filter (where state = 'dead_letter') from public.message_queue group by 1"
        ).fetchall():
            assert value("platformdb_queue_depth", queue=queue_name) == depth
            assert value("platformdb_dead_letters", kind="message", name=queue_name) == dead
        for currency, status, n in conn.execute(
            "select currency, status, count(*) from public.transactions"
            " where created_at >= now() - interval '24 hours' group by 1, 2"
        ).fetchall():
            assert value("platformdb_transactions_24h", currency=currency, status=status) == n
        for state, n in conn.execute(
            "select state, count(*) from public.background_jobs where job_type = 'reports.daily' group by 1"
        ).fetchall():
            assert value("platformdb_jobs", job_type="reports.daily", state=state) == n
        delivered = conn.execute(
            "select count(*) from public.whatsapp_message_queue where delivered_at >= now() - interval '24 hours'"
        ).fetchone()
        assert delivered and value("platformdb_whatsapp_messages_24h", status="delivered") == delivered[0] > 0
        for category, sent, billable in conn.execute(
            "select coalesce(pricing_category, 'unknown'), count(*), count(*) filter (where pricing_billable)"
            " from public.whatsapp_message_queue where sent_at >= now() - interval '24 hours' group by 1"
        ).fetchall():
            assert value("platformdb_whatsapp_sent_by_category_24h", category=category) == sent
            assert value("platformdb_whatsapp_billable_messages_24h", category=category) == billable
        assert value("platformdb_whatsapp_billable_messages_24h", category="utility") > 0
        assert value("platformdb_whatsapp_quarantine_open") == 0
        for table in ("transactions", "system_metrics", "system_audit_logs", "event_store"):
            assert value("platformdb_partition_months_ahead", table=table) >= 3
        for name, status in conn.execute(
            "select service_name, health_status from public.service_health_overview"
        ).fetchall():
            assert value("platformdb_service_health", service=name, status=status) == 1.0
            assert sum(s.value for s in fams["platformdb_service_health"] if s.labels["service"] == name) == 1.0
    ratio = value("platformdb_cache_hit_ratio", namespace="cache", cache_type="profile")
    assert 0.0 < ratio < 1.0


def test_metrics_say_down_when_the_database_is_gone(cluster: Any, template_url: str) -> None:
    from tests.conftest import _admin, _clone, _drop

    url = _clone(cluster, template_url, prefix="gone")
    with client_for(url) as c:
        assert [s.value for s in _samples(c.get("/metrics").text)["platformdb_up"]] == [1.0]
        with _admin(cluster) as a:
            _drop(a, url.rsplit("/", 1)[1])
        r = c.get("/metrics")
        assert r.status_code == 200
        fams = _samples(r.text)
        assert [s.value for s in fams["platformdb_up"]] == [0.0]
        assert "platformdb_queue_depth" not in fams
        assert c.get("/queues").status_code == 503


# ---- plans -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def plan_conn(medium_demo_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(medium_demo_url, autocommit=True, prepare_threshold=None) as conn:
        yield conn


def _a_series(conn: psycopg.Connection[Any]) -> tuple[str, str]:
    row = conn.execute(
        "select service_name, metric_name from public.monitoring_metric_series('24 hours', 1000)"
        " where metric_type = 'latency' order by samples desc limit 1"
    ).fetchone()
    assert row is not None
    return row[0], row[1]


def test_the_partition_rule_catches_a_sequential_scan(plan_conn: psycopg.Connection[Any]) -> None:
    """The checker itself: an unbounded aggregate over transactions is flagged, a bounded
    lookup through an index is not."""
    bad = plan_conn.execute("explain (format json) select max(error_message) from public.transactions").fetchone()
    assert bad and plans.seq_scans_of_partitions(plan_conn, bad[0][0]["Plan"])
    good = plan_conn.execute(
        "explain (format json) select * from public.transactions where user_id = %s", (str(uuid.uuid4()),)
    ).fetchone()
    assert good and not plans.seq_scans_of_partitions(plan_conn, good[0][0]["Plan"])


def test_no_dashboard_query_scans_a_partition_sequentially(plan_conn: psycopg.Connection[Any]) -> None:
    targets = list(plans.targets(plan_conn, _a_series(plan_conn)))
    called = set(
        re.findall(
            r"public\.(monitoring_\w+)\(", " ".join(v for k, v in vars(q).items() if k.isupper() and isinstance(v, str))
        )
    )
    sql_functions = {t.function for t in targets}
    plpgsql = {name for name, *_ in plans.functions(plan_conn, "plpgsql")}
    # every function the dashboard calls is planned here, or is PL/pgSQL and reads no partition
    assert called <= sql_functions | plpgsql, called - sql_functions - plpgsql
    partitioned = {
        r[0]
        for r in plan_conn.execute(
            "select relname from pg_class where relkind = 'p' and relnamespace = 'public'::regnamespace"
        ).fetchall()
    }
    for name, src, *_ in plans.functions(plan_conn, "plpgsql"):
        if name in sql_functions:
            continue  # its query is planned here (its final RETURN QUERY)
        touched = {t for t in partitioned if re.search(rf"\b{t}\b", src)}
        assert not touched, f"{name} (PL/pgSQL, not planned here) reads {touched}"
    assert len(targets) >= 30
    offenders = []
    for t in targets:
        for generic in (False, True):
            found = plans.seq_scans_of_partitions(plan_conn, plans.plan(plan_conn, t, generic))
            if found:
                offenders.append(f"{t.label} ({'generic' if generic else 'custom'} plan): {found}")
    assert not offenders, "\n".join(offenders)


def test_the_payment_window_is_read_from_the_covering_index(plan_conn: psycopg.Connection[Any]) -> None:
    t = next(t for t in plans.targets(plan_conn, _a_series(plan_conn)) if t.label == "monitoring_payment_volume[24h]")
    with_rows = {
        r[0]
        for r in plan_conn.execute(
            "select c.relname from pg_inherits i join pg_class c on c.oid = i.inhrelid"
            " where i.inhparent = 'public.transactions'::regclass and c.reltuples > 0"
        ).fetchall()
    }
    assert with_rows
    scans = [n for n in plans.nodes(plans.plan(plan_conn, t, generic=False)) if n.get("Relation Name") in with_rows]
    assert scans
    for n in scans:
        assert n["Node Type"] == "Index Only Scan", n
        assert n["Index Name"].endswith("_created_at_currency_status_type_amount_idx"), n


def test_roles_setup_is_idempotent_and_a_login_needs_membership(db_url: str) -> None:
    login = f"dashboard_login_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(db_url, autocommit=True) as conn:
        first = access.setup_roles(conn)
        assert access.setup_roles(conn)[0] == first[0]
        assert access.missing_access(conn) == []
        conn.execute(sql.SQL("create role {} login").format(sql.Identifier(login)))
    login_url = make_conninfo(db_url, user=login)
    try:
        with psycopg.connect(login_url, autocommit=True) as conn:
            assert any("not a member of platformdb_monitor" in p for p in access.missing_access(conn))
        with pytest.raises(access.AccessError, match="platformdb_monitor"):
            access.ensure_access(login_url)  # and it may not set the roles up itself
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute(sql.SQL("grant platformdb_monitor to {}").format(sql.Identifier(login)))
        with client_for(login_url) as c:
            assert c.get("/queues").status_code == 200
            assert c.app.state.dashboard.can_operate is False  # type: ignore[attr-defined]
            assert 'title="this login is not a member of platformdb_operator"' in c.get("/queues").text or (
                "Re-drive" not in c.get("/queues").text
            )
    finally:
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute(sql.SQL("drop role {}").format(sql.Identifier(login)))


# ---- make demo's companions ------------------------------------------------------------


def test_demo_traffic_keeps_the_demo_alive(small_demo_url: str) -> None:
    import random

    from platformdb import db
    from platformdb.dashboard import live

    q_counts = """
        select (select count(*) from public.system_metrics),
               (select count(*) from public.transactions),
               (select count(*) from public.whatsapp_message_queue where status in ('sent', 'delivered', 'read')),
               (select last_heartbeat_at from public.service_registry where service_name = 'wa-webhook'),
               (select last_heartbeat_at from public.service_registry where service_name = 'notifications-worker')
    """
    with psycopg.connect(small_demo_url) as conn:
        before = conn.execute(q_counts).fetchone()
        conn.commit()
        with db.as_service(conn):
            done = live.tick(conn, random.Random(7), alive={"wa-webhook"})
        after = conn.execute(q_counts).fetchone()
    assert before and after
    assert done["metrics"] == 8 and after[0] == before[0] + 8
    assert after[1] == before[1] + done["payments"] and done["payments"] >= 1
    assert after[2] == before[2] + done["whatsapp"] and done["whatsapp"] >= 1  # due replies were sent
    assert after[3] > before[3]  # alive: heart-beats
    assert after[4] == before[4]  # left late by the demo: stays late


def test_the_demo_worker_handles_every_demo_queue_and_job() -> None:
    # in a subprocess: importing the module registers handlers in the process-wide registry
    code = (
        "import json; from platformdb import worker; import platformdb.dashboard.demo_worker;"
        " print(json.dumps([sorted(worker.REGISTRY.queues), sorted(worker.REGISTRY.jobs)]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    queues, jobs = json.loads(out.stdout)
    from platformdb.demo_steps import events_queue

    assert set(events_queue.QUEUES) <= set(queues)
    assert {"reports.daily", "payouts.settle", "geo.refresh_routes", "cache.cleanup"} <= set(jobs)


def test_the_query_page_shows_queries_but_never_literal_utility_statements(small_demo_url: str) -> None:
    with client_for(small_demo_url) as c:  # creates pg_stat_statements (a superuser connects)
        with psycopg.connect(small_demo_url, autocommit=True) as admin:
            admin.execute("do $$ begin perform 'TopSecretLiteral-42'; end $$")
            admin.execute("select count(*) from public.monitoring_queues(p_limit => 7)")
            tracked = admin.execute(
                "select count(*) from extensions.pg_stat_statements where query like %s", ("%TopSecretLiteral-42%",)
            ).fetchone()
            assert tracked == (1,)  # the statistics do hold it
        page = c.get("/queries").text
        assert "monitoring_queues" in page and '<code class="stmt">' in page
        assert "TopSecretLiteral-42" not in page
