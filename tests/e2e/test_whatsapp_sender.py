"""The sender against a local HTTP server playing the Graph API (the only stand-in allowed):
success, 429 then success, 400 permanent, 500 retried, the rate limit held, and the worker
running it as a duty. The queue is a real PostgreSQL."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from uuid import UUID

import psycopg
import pytest

from platformdb import db
from platformdb.sdk import whatsapp as wa
from platformdb.whatsapp_cloud.graph_stub import GraphStub, Scripted
from platformdb.whatsapp_cloud.sender import RateLimiter, SenderConfig, WhatsAppSender, make_duty
from platformdb.worker import Worker, WorkerConfig, build_duties
from tests.helpers import count

PHONE = "+250788123456"


@pytest.fixture
def stub() -> Iterator[GraphStub]:
    with GraphStub(token="graph-test-token", phone_number_id="106540352242922") as s:
        yield s


def _config(db_url: str, stub: GraphStub, **kw: Any) -> SenderConfig:
    base: dict[str, Any] = {
        "database_url": db_url,
        "access_token": stub.token,
        "phone_number_id": stub.phone_number_id,
        "graph_url": stub.base_url,
        "rate_per_second": None,
        "http_timeout": 5.0,
        "http_attempts": 3,
        "backoff_base": 0.01,
        "backoff_max": 0.05,
        "retry_after_max": 0.2,
        "lease_seconds": 60,
        "idle_wait": 0.2,
        "worker_id": "test-sender",
    }
    base.update(kw)
    return SenderConfig(**base)


def _enqueue(
    conn: psycopg.Connection[Any],
    phone: str | None = PHONE,
    mtype: str = "text",
    payload: dict[str, Any] | None = None,
    **kw: Any,
) -> UUID:
    with db.as_service(conn):
        return wa.enqueue_message(conn, phone, mtype, payload or {"body": "Muraho"}, **kw)


def _row(conn: psycopg.Connection[Any], mid: UUID) -> dict[str, Any]:
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        row = cur.execute("select * from whatsapp_message_queue where id = %s", (mid,)).fetchone()
    assert row is not None
    return row


# ---- success --------------------------------------------------------------------------


@pytest.mark.pooled
def test_each_message_type_is_posted_in_the_documented_shape(
    db_url: str, conn: psycopg.Connection[Any], stub: GraphStub
) -> None:
    cases = [
        ("+250788000001", "text", {"body": "Your driver is on the way", "preview_url": False}),
        ("+250788000002", "template", {"name": "ride_confirmed", "language": {"code": "en_US"}}),
        (
            "+250788000003",
            "media",
            {"media_type": "image", "link": "https://cdn.example.rw/r.png", "caption": "Receipt"},
        ),
        (
            "+250788000004",
            "interactive",
            {
                "type": "button",
                "body": {"text": "Confirm?"},
                "action": {"buttons": [{"type": "reply", "reply": {"id": "y", "title": "Yego"}}]},
            },
        ),
        ("+250788000005", "location", {"latitude": -1.9441, "longitude": 30.0619, "name": "Kigali Heights"}),
    ]
    ids = {phone: _enqueue(conn, phone, t, p, correlation_id=f"corr-{phone[-1]}") for phone, t, p in cases}
    sender = WhatsAppSender(_config(db_url, stub))
    assert sender.drain() == len(cases)
    assert sender.stats["sent"] == len(cases)

    for phone, mtype, payload in cases:
        [req] = stub.requests_to(phone)
        assert req.path == "/v26.0/106540352242922/messages"
        assert req.authorization == "Bearer graph-test-token"
        body = req.body
        assert body is not None
        kind = payload["media_type"] if mtype == "media" else mtype
        expected = {k: v for k, v in payload.items() if k != "media_type"}
        assert body == {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": phone[1:],
            "type": kind,
            kind: expected,
            "biz_opaque_callback_data": f"corr-{phone[-1]}",
        }
        row = _row(conn, ids[phone])
        assert row["status"] == "sent" and row["whatsapp_message_id"] == req.wa_id and row["attempt"] == 1


@pytest.mark.pooled
def test_messages_to_one_recipient_go_out_in_queue_order(
    db_url: str, conn: psycopg.Connection[Any], stub: GraphStub
) -> None:
    for i in range(5):
        _enqueue(conn, payload={"body": f"step {i}"})
    WhatsAppSender(_config(db_url, stub, max_in_flight=8)).drain()
    assert [r.body["text"]["body"] for r in stub.requests_to(PHONE) if r.body] == [f"step {i}" for i in range(5)]


# ---- retries and failures -------------------------------------------------------------


def test_429_then_success_is_sent_on_the_second_request(
    db_url: str, conn: psycopg.Connection[Any], stub: GraphStub
) -> None:
    mid = _enqueue(conn)
    stub.script(PHONE, [Scripted(429, retry_after=0.05)])
    sender = WhatsAppSender(_config(db_url, stub))
    sender.drain()
    reqs = stub.requests_to(PHONE)
    assert [r.status for r in reqs] == [429, 200]
    row = _row(conn, mid)
    assert row["status"] == "sent" and row["whatsapp_message_id"] == reqs[1].wa_id
    assert row["retry_count"] == 0 and row["errors"] == []


def test_500_is_retried_until_it_succeeds(db_url: str, conn: psycopg.Connection[Any], stub: GraphStub) -> None:
    mid = _enqueue(conn)
    stub.script(PHONE, [500, 503])
    WhatsAppSender(_config(db_url, stub)).drain()
    assert [r.status for r in stub.requests_to(PHONE)] == [500, 503, 200]
    assert _row(conn, mid)["status"] == "sent"


def test_5xx_beyond_the_request_attempts_goes_back_to_the_queue_with_backoff(
    db_url: str, conn: psycopg.Connection[Any], stub: GraphStub
) -> None:
    mid = _enqueue(conn)
    stub.script(PHONE, [500, 500, 500])
    sender = WhatsAppSender(_config(db_url, stub))
    sender.drain()
    row = _row(conn, mid)
    assert row["status"] == "pending" and row["retry_count"] == 1 and row["attempt"] == 1
    assert row["last_error"].startswith("HTTP 500 code 131000")
    assert row["errors"][0]["retryable"] is True and row["errors"][0]["detail"]["error"]["code"] == 131000
    assert conn.execute("select scheduled_at > now() from whatsapp_message_queue").fetchone() == (True,)
    assert sender.stats["retried"] == 1 and sender.drain() == 0  # not due yet
    conn.execute("update whatsapp_message_queue set scheduled_at = now()")
    sender.drain()
    row = _row(conn, mid)
    assert row["status"] == "sent" and row["attempt"] == 2
    assert len(stub.requests_to(PHONE)) == 4


def test_400_fails_for_good_with_the_graph_error_kept(
    db_url: str, conn: psycopg.Connection[Any], stub: GraphStub
) -> None:
    with db.as_service(conn):
        wa.update_session_activity(conn, PHONE)
    mid = _enqueue(conn)
    stub.script(PHONE, [400])
    sender = WhatsAppSender(_config(db_url, stub))
    sender.drain()
    assert len(stub.requests_to(PHONE)) == 1  # never retried
    row = _row(conn, mid)
    assert row["status"] == "failed" and row["failed_at"] is not None
    assert row["last_error"] == (
        "HTTP 400 code 131009: (#131009) Parameter value is not valid:"
        " Recipient phone number is not a valid WhatsApp user"
    )
    err = row["errors"][0]
    assert err["retryable"] is False and err["detail"]["http_status"] == 400
    assert err["detail"]["error"]["type"] == "OAuthException" and err["detail"]["error"]["code"] == 131009
    assert conn.execute("select error_count from whatsapp_sessions").fetchone() == (1,)
    assert sender.stats["failed"] == 1


def test_131047_outside_the_window_fails_for_good_with_the_reason(
    db_url: str, conn: psycopg.Connection[Any], stub: GraphStub
) -> None:
    mid = _enqueue(conn)
    stub.script(PHONE, [Scripted(400, code=131047)])  # re-engagement message
    sender = WhatsAppSender(_config(db_url, stub))
    sender.drain()
    assert len(stub.requests_to(PHONE)) == 1  # never retried
    row = _row(conn, mid)
    assert row["status"] == "failed"
    assert row["last_error"].startswith("outside the customer-service window (WhatsApp 131047): send a template.")
    assert row["errors"][0]["retryable"] is False


def test_a_business_scoped_user_id_is_addressed_as_recipient(
    db_url: str, conn: psycopg.Connection[Any], stub: GraphStub
) -> None:
    mid = _enqueue(conn, None, recipient_user_id="RW.1502576394655843")
    both = _enqueue(conn, PHONE, recipient_user_id="RW.77", payload={"body": "both"})
    WhatsAppSender(_config(db_url, stub)).drain()
    [only_id] = stub.requests_to("RW.1502576394655843")
    assert only_id.body is not None and "to" not in only_id.body
    assert only_id.body["recipient"] == "RW.1502576394655843" and only_id.body["text"] == {"body": "Muraho"}
    [by_phone] = stub.requests_to(PHONE)  # the phone wins when both are known
    assert by_phone.body is not None and by_phone.body["to"] == PHONE[1:] and "recipient" not in by_phone.body
    assert _row(conn, mid)["status"] == "sent" and _row(conn, both)["status"] == "sent"


def test_a_throttling_code_is_retried_even_with_http_400(
    db_url: str, conn: psycopg.Connection[Any], stub: GraphStub
) -> None:
    mid = _enqueue(conn)
    stub.script(PHONE, [Scripted(400, code=131056)])  # (business, consumer) pair rate limit
    WhatsAppSender(_config(db_url, stub)).drain()
    assert [r.status for r in stub.requests_to(PHONE)] == [400, 200]
    assert _row(conn, mid)["status"] == "sent"


def test_a_wrong_access_token_fails_without_retrying(
    db_url: str, conn: psycopg.Connection[Any], stub: GraphStub
) -> None:
    mid = _enqueue(conn)
    WhatsAppSender(_config(db_url, stub, access_token="expired")).drain()
    assert [r.status for r in stub.requests_to(PHONE)] == [401]
    row = _row(conn, mid)
    assert row["status"] == "failed" and "code 190" in row["last_error"]


def test_an_unreachable_graph_api_is_retried_later(db_url: str, conn: psycopg.Connection[Any], stub: GraphStub) -> None:
    mid = _enqueue(conn)
    from platformdb.devdb import free_port

    WhatsAppSender(_config(db_url, stub, graph_url=f"http://127.0.0.1:{free_port()}/v26.0")).drain()
    row = _row(conn, mid)
    assert row["status"] == "pending" and row["last_error"].startswith("network error")


# ---- rate limit -----------------------------------------------------------------------


def test_the_rate_limit_is_held(db_url: str, conn: psycopg.Connection[Any], stub: GraphStub) -> None:
    rate, n = 20.0, 41
    with db.as_service(conn):
        for i in range(n):
            wa.send_text(conn, f"+2507880{i:05d}", f"m{i}")
    started = time.monotonic()
    WhatsAppSender(_config(db_url, stub, rate_per_second=rate, burst=1, max_in_flight=16)).drain()
    arrivals = sorted(r.at for r in stub.requests)
    assert len(arrivals) == n
    # the limiter hands out one slot per 1/rate from the start; the (k+1)-th request to
    # arrive used a slot no earlier than started + k/rate, however late requests travel
    early = [(k, t - started) for k, t in enumerate(arrivals) if t - started < k / rate - 1e-3]
    assert early == [], f"requests ahead of the rate (index, seconds after start): {early[:5]}"
    assert arrivals[-1] - started >= (n - 1) / rate - 1e-3
    assert count(conn, "whatsapp_message_queue", "status = 'sent'") == n


def test_the_pair_limit_spaces_messages_to_one_user(
    db_url: str, conn: psycopg.Connection[Any], stub: GraphStub
) -> None:
    """WhatsApp's pair rate limit (131056), measured on the stand-in's arrival times: after
    the burst, one message per interval to the same user; another user is not held up."""
    interval, n = 0.3, 4
    with db.as_service(conn):
        mine = [wa.send_text(conn, PHONE, f"m{i}") for i in range(n)]
        other = wa.send_text(conn, "+250722000111", "not held up")
    started = time.monotonic()
    WhatsAppSender(_config(db_url, stub, pair_interval=interval, pair_burst=1, pair_max_wait=10.0)).drain()
    to_me = stub.requests_to(PHONE)
    assert sorted(r.body["text"]["body"] for r in to_me if r.body) == [f"m{i}" for i in range(n)]
    # the k-th message's slot is no earlier than k intervals after the start, however the
    # requests travel (a lower bound: a slow machine only spaces them more)
    early = [(k, r.at - started) for k, r in enumerate(to_me) if r.at - started < k * interval - 1e-3]
    assert early == [], early
    [to_other] = stub.requests_to("+250722000111")
    assert to_other.at < to_me[-1].at  # not queued behind PHONE's pair limit
    assert {_row(conn, m)["status"] for m in [*mine, other]} == {"sent"}


def test_a_message_over_the_pair_limit_is_deferred_without_counting_an_attempt(
    db_url: str, conn: psycopg.Connection[Any], stub: GraphStub
) -> None:
    with db.as_service(conn):
        mine = [wa.send_text(conn, PHONE, f"m{i}") for i in range(4)]
    sender = WhatsAppSender(_config(db_url, stub, pair_interval=60.0, pair_burst=2, pair_max_wait=1.0))
    sender.drain()
    assert len(stub.requests_to(PHONE)) == 2  # the burst; the next slot is a minute away
    rows = [_row(conn, m) for m in mine]
    assert sorted(r["status"] for r in rows) == ["pending", "pending", "sent", "sent"]
    for row in rows:
        if row["status"] != "pending":
            continue
        assert row["attempt"] == 0 and row["retry_count"] == 0 and row["last_error"] is None
        assert row["scheduled_at"] >= row["updated_at"] + timedelta(seconds=55)
    assert sender.stats["deferred"] == 2


def test_the_pair_limiter_allows_a_burst_then_one_per_interval() -> None:
    from platformdb.whatsapp_cloud.sender import PairLimiter

    now = [50.0]
    pairs = PairLimiter(6.0, 3, clock=lambda: now[0])
    assert [pairs.reserve("a", 10.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert pairs.reserve("a", 10.0) == 6.0
    assert pairs.reserve("a", 10.0) is None  # 12 s > 10 s: not reserved
    assert pairs.next_free_in("a") == 12.0
    assert pairs.reserve("b", 0.0) == 0.0  # per recipient
    now[0] += 12.0
    assert pairs.reserve("a", 0.0) == 0.0
    assert PairLimiter(None, 1).reserve("a", 0.0) == 0.0


def test_the_limiter_spaces_slots_and_allows_a_burst() -> None:
    now = [100.0]
    limiter = RateLimiter(10.0, burst=3, clock=lambda: now[0])
    assert [limiter.reserve() for _ in range(3)] == [0.0, 0.0, 0.0]  # the burst
    waits = [round(limiter.reserve(), 6) for _ in range(3)]
    assert waits == [0.1, 0.2, 0.3]
    now[0] += 10  # idle for a while: the burst is available again, no more
    assert [limiter.reserve() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert round(limiter.reserve(), 6) == 0.1
    assert RateLimiter(None).reserve() == 0.0


def test_a_stop_while_waiting_for_the_rate_releases_the_message(
    db_url: str, conn: psycopg.Connection[Any], stub: GraphStub
) -> None:
    mid = _enqueue(conn)
    stop = threading.Event()
    stop.set()
    sender = WhatsAppSender(_config(db_url, stub))
    with psycopg.connect(db_url, autocommit=True) as c, db.as_service(c):
        [m] = wa.claim_messages(c)
    import httpx

    with httpx.Client() as http:
        outcome = sender.deliver(http, m, stop)
    assert outcome.kind == "released" and stub.requests == []
    with psycopg.connect(db_url, autocommit=True) as c, db.as_service(c):
        sender.record(c, m, outcome)
    row = _row(conn, mid)
    assert (row["status"], row["attempt"]) == ("pending", 0)


# ---- configuration and the worker -----------------------------------------------------


def test_the_factory_needs_both_credentials(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = WorkerConfig(database_url=db_url, worker_id="w")
    for var in (
        "WHATSAPP_ACCESS_TOKEN",
        "WHATSAPP_PHONE_NUMBER_ID",
        "WHATSAPP_GRAPH_URL",
        "WHATSAPP_GRAPH_VERSION",
        "WHATSAPP_RATE_PER_SECOND",
    ):
        monkeypatch.delenv(var, raising=False)
    assert make_duty(cfg) is None
    monkeypatch.setenv("WHATSAPP_ACCESS_TOKEN", "t")
    assert make_duty(cfg) is None
    monkeypatch.setenv("WHATSAPP_PHONE_NUMBER_ID", "106540352242922")
    monkeypatch.setenv("WHATSAPP_RATE_PER_SECOND", "12.5")
    duty = make_duty(cfg)
    assert isinstance(duty, WhatsAppSender)
    assert duty.config.rate_per_second == 12.5 and duty.config.worker_id == "w"
    assert duty.config.messages_url == "https://graph.facebook.com/v26.0/106540352242922/messages"
    assert [d.name for d in build_duties(cfg)].count("whatsapp-sender") == 1
    monkeypatch.setenv("WHATSAPP_GRAPH_VERSION", "v25.0")
    duty = make_duty(cfg)
    assert isinstance(duty, WhatsAppSender)
    assert duty.config.messages_url == "https://graph.facebook.com/v25.0/106540352242922/messages"
    monkeypatch.setenv("WHATSAPP_GRAPH_VERSION", "25")
    with pytest.raises(ValueError, match="WHATSAPP_GRAPH_VERSION must look like v26.0"):
        make_duty(cfg)


def test_a_lease_shorter_than_the_worst_case_is_refused(db_url: str, stub: GraphStub) -> None:
    with pytest.raises(ValueError, match="lease_seconds"):
        _config(db_url, stub, lease_seconds=20, http_timeout=10.0)


@pytest.mark.pooled
def test_the_worker_runs_the_sender_and_stops_cleanly(
    db_url: str, server_url: str, route: str, conn: psycopg.Connection[Any], stub: GraphStub
) -> None:
    # idle_wait is long: only the NOTIFY sent by enqueue can wake the sender in time. Through
    # the pooler, LISTEN runs on the direct URL (PLATFORMDB_DIRECT_URL) while claims and
    # records go through PgBouncer.
    direct = server_url if route == "pooled" else None
    sender = WhatsAppSender(_config(db_url, stub, idle_wait=120.0, direct_url=direct))
    worker = Worker(WorkerConfig(database_url=db_url, grace_seconds=10, direct_url=direct), [sender])
    worker.start()
    try:
        time.sleep(0.3)  # idle, listening
        ids = [_enqueue(conn, f"+25078800{i:04d}") for i in range(3)]
        for _ in range(600):  # a deadline, not a speed requirement
            if count(conn, "whatsapp_message_queue", "status = 'sent'") == 3:
                break
            time.sleep(0.1)
    finally:
        clean = worker.shutdown()
    assert clean and not worker.errors
    assert {_row(conn, i)["status"] for i in ids} == {"sent"}
    assert len(stub.requests) == 3


# ---- replies, reactions, read receipts ------------------------------------------------


def test_a_reply_carries_the_context_and_a_reaction_is_posted_as_one(
    db_url: str, conn: psycopg.Connection[Any], stub: GraphStub
) -> None:
    reply = _enqueue(conn, payload={"body": "Yes, 2,500 RWF"}, reply_to="wamid.question")
    with db.as_service(conn):  # one transaction each: queue order is scheduled_at (now()) order
        reaction = wa.send_reaction(conn, PHONE, "wamid.question", "👍")
    with db.as_service(conn):
        removal = wa.send_reaction(conn, PHONE, "wamid.question", "")
    WhatsAppSender(_config(db_url, stub)).drain()
    bodies = [r.body for r in stub.requests_to(PHONE)]
    assert bodies[0] == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": PHONE[1:],
        "type": "text",
        "text": {"body": "Yes, 2,500 RWF"},
        "context": {"message_id": "wamid.question"},
    }
    assert bodies[1] is not None and bodies[1]["type"] == "reaction" and "context" not in bodies[1]
    assert bodies[1]["reaction"] == {"message_id": "wamid.question", "emoji": "👍"}
    assert bodies[2] is not None and bodies[2]["reaction"] == {"message_id": "wamid.question", "emoji": ""}
    assert {_row(conn, m)["status"] for m in (reply, reaction, removal)} == {"sent"}


def test_a_reaction_needs_the_message_it_reacts_to(conn: psycopg.Connection[Any]) -> None:
    from tests.helpers import raises_sqlstate

    with raises_sqlstate("22023", "message_id must be the wa message id"), db.as_service(conn):
        wa.enqueue_message(conn, PHONE, "reaction", {"emoji": "👍"})
    with raises_sqlstate("22023", "emoji must be one emoji"), db.as_service(conn):
        wa.enqueue_message(conn, PHONE, "reaction", {"message_id": "wamid.x", "emoji": "x" * 17})
    with raises_sqlstate("22023", "p_reply_to_message_id"), db.as_service(conn):
        wa.send_text(conn, PHONE, "hi", reply_to="")
    assert count(conn, "whatsapp_message_queue") == 0


def test_mark_as_read_with_the_typing_indicator(db_url: str, stub: GraphStub) -> None:
    from platformdb.whatsapp_cloud.sender import mark_read

    cfg = _config(db_url, stub)
    mark_read(cfg, "wamid.in-1", typing_indicator=True)
    mark_read(cfg, "wamid.in-2")
    assert stub.read_receipts == [("wamid.in-1", True), ("wamid.in-2", False)]
    [first, _] = [r for r in stub.requests if isinstance(r.body, dict) and r.body.get("status") == "read"]
    assert first.body == {
        "messaging_product": "whatsapp",
        "status": "read",
        "message_id": "wamid.in-1",
        "typing_indicator": {"type": "text"},
    }
    bad = SenderConfig(**{**cfg.__dict__, "access_token": "wrong"})
    with pytest.raises(RuntimeError, match="HTTP 401 code 190"):
        mark_read(bad, "wamid.in-3")
    assert len(stub.read_receipts) == 2
