"""Database restarts (fast shutdown, then start) twice while everything runs: queue and job
workers, the WhatsApp sender (against a local server playing the Graph API) and the webhook
receiver, with producers feeding all three. Every component must come back by itself
(no process restarted, none exits) and nothing may be lost: every message the producers
were told was queued is processed, every outbound WhatsApp message reaches the Graph API
and is marked sent, every webhook notification is stored once acknowledged with a 200
(until then the receiver answers 500 and the poster delivers again, as Meta does).

Recovery: for each restart and component, the seconds from the database accepting
connections again to that component's first success. The target is ≤ 10 s; `make chaos`
enforces it, the smoke run inside `make test` reports it.

The scenario runs on its own throw-away cluster (it is restarted).
Full (`make chaos`): 20 s between restarts. Smoke: 4 s.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from platformdb import db, devdb, migrate
from platformdb.errors import PlatformDBError
from platformdb.sdk import queue as q
from platformdb.sdk import whatsapp as wa
from platformdb.whatsapp_cloud import payloads
from platformdb.whatsapp_cloud.graph_stub import GraphStub
from platformdb.whatsapp_cloud.webhook import WEBHOOK_PATH
from tests.chaos import report
from tests.chaos.conftest import Proc, wait_for
from tests.chaos.worker_app import read_records
from tests.conftest import selected_migrations_dir

pytestmark = pytest.mark.timeout(1800)  # the full sizes run for minutes

SIZE = {"full": {"interval": 20.0, "rate": 20}, "smoke": {"interval": 4.0, "rate": 10}}[report.profile()]
RECOVERY_TARGET_S = 10.0
APP = "tests.chaos.worker_app"
SECRET = "chaos-app-secret"  # the local receiver's own test secret
VERIFY = "chaos-verify-token"
GRAPH_TOKEN = "chaos-graph-token"  # noqa: S105 - the local Graph API stand-in's credential
PHONE_NUMBER_ID = "106540352242922"


@pytest.fixture
def own_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[devdb.Cluster, str]]:
    cluster = devdb.ephemeral_cluster(prefix="platformdb-chaos-")
    try:
        cluster.create_database("chaos")
        url = cluster.url("chaos")
        migrate.up(url, selected_migrations_dir(tmp_path_factory.mktemp("migrations")))
        yield cluster, url
    finally:
        cluster.destroy()


class Producer(threading.Thread):
    """Calls `step(conn, n)` for n = 0, 1, … about `rate` times a second; a failed step is
    retried (same n) on a fresh connection until it succeeds. Success times are kept."""

    def __init__(self, name: str, url: str, rate: float, step: Callable[[psycopg.Connection[Any], int], None]):
        super().__init__(name=name, daemon=True)
        self.url, self.rate, self.step = url, rate, step
        self.stop = threading.Event()
        self.successes: list[float] = []
        self.failures = 0

    def run(self) -> None:
        conn: psycopg.Connection[Any] | None = None
        n = 0
        while not self.stop.is_set():
            try:
                if conn is None or conn.closed or conn.broken:
                    conn = psycopg.connect(self.url, autocommit=True, connect_timeout=3)
                self.step(conn, n)
                self.successes.append(time.time())
                n += 1
                self.stop.wait(1.0 / self.rate)
            except (psycopg.Error, PlatformDBError):  # the SDK's DatabaseUnavailable, a 57P01, …
                self.failures += 1
                if conn is not None:
                    conn.close()
                conn = None
                self.stop.wait(0.2)
        if conn is not None:
            conn.close()

    @property
    def count(self) -> int:
        return len(self.successes)


class Poster(threading.Thread):
    """Posts signed inbound-text notifications; a non-200 (or no answer) is delivered again."""

    def __init__(self, url: str, rate: float):
        super().__init__(name="webhook-poster", daemon=True)
        self.url, self.rate = url, rate
        self.stop = threading.Event()
        self.delivered: list[str] = []
        self.successes: list[float] = []
        self.statuses: Counter[str] = Counter()

    def run(self) -> None:
        n = 0
        with httpx.Client(timeout=5.0) as http:
            while not self.stop.is_set():
                wamid = f"wamid.chaos-{n}"
                digits = f"25078{8000000 + n % 500:07d}"
                body = json.dumps(
                    payloads.text_notification(digits, f"chaos {n}", wamid, timestamp=int(time.time()))
                ).encode()
                headers = {"Content-Type": "application/json", "X-Hub-Signature-256": payloads.sign(body, SECRET)}
                try:
                    status = str(http.post(self.url, content=body, headers=headers).status_code)
                except httpx.TransportError as exc:
                    status = type(exc).__name__
                self.statuses[status] += 1
                if status == "200":
                    self.delivered.append(wamid)
                    self.successes.append(time.time())
                    n += 1
                    self.stop.wait(1.0 / self.rate)
                else:
                    self.stop.wait(0.2)


def first_after(times: list[float], t: float) -> float | None:
    later = [x for x in times if x >= t]
    return min(later) if later else None


def test_two_database_restarts_lose_nothing_and_everything_recovers_by_itself(
    own_cluster: tuple[devdb.Cluster, str], spawn: Callable[..., Proc], tmp_path: Path
) -> None:
    cluster, url = own_cluster
    record = tmp_path / "processed.txt"
    port = devdb.free_port()
    with GraphStub(token=GRAPH_TOKEN, phone_number_id=PHONE_NUMBER_ID) as stub:
        procs = [
            spawn(
                f"worker-{i}",
                [
                    "worker",
                    "--database-url",
                    url,
                    "--app",
                    APP,
                    "--worker-id",
                    f"restart-worker-{i}",
                    "--concurrency",
                    "4",
                    "--lease",
                    "5",
                    "--poll-interval",
                    "0.5",
                ],
                CHAOS_RECORD=str(record),
                CHAOS_WORK_MS="2",
            )
            for i in range(2)
        ]
        procs.append(
            spawn(
                "sender",
                ["worker", "--database-url", url, "--worker-id", "restart-sender", "--no-housekeeping"],
                WHATSAPP_ACCESS_TOKEN=GRAPH_TOKEN,
                WHATSAPP_PHONE_NUMBER_ID=PHONE_NUMBER_ID,
                WHATSAPP_GRAPH_URL=stub.base_url,
                WHATSAPP_RATE_PER_SECOND="500",
            )
        )
        procs.append(
            spawn(
                "webhook",
                ["whatsapp", "serve", "--database-url", url, "--port", str(port)],
                WHATSAPP_APP_SECRET=SECRET,
                WHATSAPP_VERIFY_TOKEN=VERIFY,
            )
        )

        def enqueue_work(conn: psycopg.Connection[Any], n: int) -> None:
            q.enqueue_message(conn, "chaos", "chaos.work", {"n": n}, idempotency_key=f"restart-{n}", max_attempts=10)

        def enqueue_whatsapp(conn: psycopg.Connection[Any], n: int) -> None:
            with db.as_service(conn):
                wa.send_text(conn, f"+25072{n % 1000:07d}", f"chaos outbound {n}", idempotency_key=f"restart-wa-{n}")

        queue_producer = Producer("queue-producer", url, SIZE["rate"], enqueue_work)
        wa_producer = Producer("whatsapp-producer", url, SIZE["rate"], enqueue_whatsapp)
        poster = Poster(f"http://127.0.0.1:{port}{WEBHOOK_PATH}", SIZE["rate"])

        def sent_count() -> int:
            with psycopg.connect(url, autocommit=True) as c:
                row = c.execute("select count(*) from public.whatsapp_message_queue where status = 'sent'").fetchone()
                return int(row[0]) if row else 0

        wait_for("the webhook receiver to listen", lambda: devdb.port_in_use(port), 60, procs)
        for t in (queue_producer, wa_producer, poster):
            t.start()
        wait_for(
            "every component to work once",
            lambda: bool(read_records(record)) and bool(poster.delivered) and sent_count() > 0,
            120,
            procs,
        )

        restarts: list[dict[str, float]] = []
        for _ in range(2):
            time.sleep(SIZE["interval"])
            down = time.time()
            cluster.restart("fast")  # every connection is cut; pg_ctl returns once it accepts connections
            restarts.append({"down": down, "up": time.time()})
        time.sleep(SIZE["interval"])
        for t in (queue_producer, wa_producer, poster):
            t.stop.set()
        for t in (queue_producer, wa_producer, poster):
            t.join(30)
        for p in procs:
            assert p.alive(), f"{p.name} exited:\n{p.tail()}"

        n_queue, n_wa, n_hook = queue_producer.count, wa_producer.count, len(poster.delivered)
        with psycopg.connect(url, autocommit=True) as conn:

            def settled() -> bool:
                row = conn.execute(
                    "select (select count(*) from public.message_queue"
                    "         where queue_name = 'chaos' and state = 'completed'),"
                    " (select count(*) from public.whatsapp_message_queue where status = 'sent')"
                ).fetchone()
                return row == (n_queue, n_wa)

            # a send whose outcome the restart cut off is sent again once its lease expires
            wait_for("every message processed and sent", settled, 300, procs)
            queued = conn.execute(
                "select id::text, idempotency_key, finalized_at from public.message_queue where queue_name = 'chaos'"
            ).fetchall()
            outbound = conn.execute(
                "select payload->>'body', status, sent_at from public.whatsapp_message_queue"
            ).fetchall()
            inbound = {
                r[0]
                for r in conn.execute("select whatsapp_message_id from public.whatsapp_inbound_messages").fetchall()
            }
        for p in procs:
            code = p.stop()
            # uvicorn re-raises the SIGTERM it handled once its shutdown is complete
            clean = code == 0 or (p.name == "webhook" and code == -signal.SIGTERM and "shutdown complete" in p.tail())
            assert clean, f"{p.name} did not stop cleanly ({code}):\n{p.tail()}"
        graph_requests = Counter(
            r.body["text"]["body"] for r in stub.requests if isinstance(r.body, dict) and r.status == 200
        )

    # nothing lost
    processed = {item for kind, item, *_ in read_records(record) if kind == "message"}
    assert len(queued) == n_queue and {r[1] for r in queued} == {f"restart-{i}" for i in range(n_queue)}
    assert {r[0] for r in queued} <= processed, "every queued message was processed"
    bodies = {r[0] for r in outbound}
    assert bodies == {f"chaos outbound {i}" for i in range(n_wa)}, "every outbound message was queued once"
    assert all(r[1] == "sent" for r in outbound)
    assert set(graph_requests) == bodies, "every outbound message reached the Graph API"
    assert set(poster.delivered) <= inbound, "every acknowledged notification is stored"

    # recovery, per restart and component
    finalized = [r[2].timestamp() for r in queued if r[2] is not None]
    sent_at = [r[2].timestamp() for r in outbound if r[2] is not None]
    recoveries: list[dict[str, float | None]] = []
    for r in restarts:
        up = r["up"]

        def took(times: list[float], up: float = up) -> float | None:
            first = first_after(times, up)
            return None if first is None else round(max(0.0, first - up), 2)

        recoveries.append(
            {
                "outage_s": round(up - r["down"], 2),
                "workers_s": took(finalized),
                "sender_s": took(sent_at),
                "webhook_s": took(poster.successes),
                "queue_producer_s": took(queue_producer.successes),
                "whatsapp_producer_s": took(wa_producer.successes),
            }
        )
    slowest = max((v for rec in recoveries for k, v in rec.items() if k != "outage_s" and v is not None), default=0.0)
    assert all(v is not None for rec in recoveries for v in rec.values()), f"a component never recovered: {recoveries}"
    met = slowest <= RECOVERY_TARGET_S
    if report.full():
        assert met, f"recovery took {slowest} s (target ≤ {RECOVERY_TARGET_S} s): {recoveries}"

    duplicates_sent = sum(n - 1 for n in graph_requests.values() if n > 1)
    figures = {
        "restarts": len(restarts),
        "seconds_between_restarts": SIZE["interval"],
        "recoveries": recoveries,
        "slowest_recovery_s": slowest,
        "recovery_target_s": RECOVERY_TARGET_S,
        "recovery_target_met": met,
        "queue_messages": n_queue,
        "whatsapp_outbound": n_wa,
        "webhook_notifications": n_hook,
        "webhook_answers": dict(poster.statuses),
        "lost": 0,
        "whatsapp_sent_twice": duplicates_sent,
        "producer_retries": queue_producer.failures + wa_producer.failures,
    }
    report.write(
        "db_restart",
        f"database restart ×2: workers, sender and webhook back in ≤ {slowest:.1f} s"
        f" (target ≤ {RECOVERY_TARGET_S:.0f} s); 0 lost ({n_queue} queued, {n_wa} sent,"
        f" {n_hook} notifications stored); {duplicates_sent} WhatsApp sends repeated",
        figures,
    )
