"""Message queue (SPEC §3.5): idempotent enqueue, SKIP LOCKED claims under a lease, ack/nack
with backoff and jitter, dead letters and redrive, lease expiry, NOTIFY, retention."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import psycopg
import pytest

from platformdb import db
from platformdb.errors import IdempotencyConflict, InvalidInput, LeaseLost, NotFound
from platformdb.sdk import queue as q
from tests.helpers import count, nested_plans, raises_sqlstate

Connect = Callable[..., psycopg.Connection[Any]]


@pytest.fixture
def svc(connect: Connect) -> psycopg.Connection[Any]:
    c = connect()
    c.execute("set role service_role")
    return c


def _row(conn: psycopg.Connection[Any], message_id: uuid.UUID) -> dict[str, Any]:
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        row = cur.execute(
            "select *, scheduled_at - now() as due_in, locked_until - now() as lease_left"
            " from public.message_queue where id = %s",
            (message_id,),
        ).fetchone()
    assert row is not None
    return row


def _wait_for_lease_end(conn: psycopg.Connection[Any], message_id: uuid.UUID) -> None:
    """Wait (by the database clock) until the message's lease has run out."""
    for _ in range(1000):
        row = conn.execute(
            "select locked_until < clock_timestamp() from public.message_queue where id = %s",
            (message_id,),
        ).fetchone()
        if row and row[0]:
            return
        time.sleep(0.02)
    raise AssertionError("the lease never ran out")


def test_a_message_goes_available_running_completed(
    svc: psycopg.Connection[Any], conn: psycopg.Connection[Any]
) -> None:
    mid = q.enqueue_message(svc, "rides", "ride.matched", {"ride": 1}, correlation_id="req-1")
    assert _row(conn, mid)["state"] == "available"
    [m] = q.claim_messages(svc, "rides", 10, 45, "w1")
    assert (m.id, m.attempt, m.payload, m.claimed_by, m.correlation_id) == (mid, 1, {"ride": 1}, "w1", "req-1")
    row = _row(conn, mid)
    assert row["state"] == "running" and row["attempted_by"] == ["w1"]
    assert timedelta(seconds=40) < row["lease_left"] <= timedelta(seconds=45)
    assert q.claim_messages(svc, "rides") == [], "a claimed message is not handed out twice"
    assert q.ack_message(svc, mid, "w1") is True
    row = _row(conn, mid)
    assert row["state"] == "completed" and row["finalized_at"] is not None and row["locked_until"] is None
    assert q.ack_message(svc, mid, "w1") is False, "a second ack is a no-op"


def test_enqueue_is_idempotent_by_key_per_queue(svc: psycopg.Connection[Any], conn: psycopg.Connection[Any]) -> None:
    a = q.enqueue_message(svc, "payouts", "payout", {"amount": 5000}, idempotency_key="po-1")
    b = q.enqueue_message(svc, "payouts", "payout", {"amount": 5000}, idempotency_key="po-1")
    assert a == b
    with pytest.raises(IdempotencyConflict, match="different message"):
        q.enqueue_message(svc, "payouts", "payout", {"amount": 9000}, idempotency_key="po-1")
    other = q.enqueue_message(svc, "refunds", "payout", {"amount": 5000}, idempotency_key="po-1")
    assert other != a
    assert count(conn, "public.message_queue") == 2


def test_without_a_key_the_same_message_twice_is_two_messages(
    svc: psycopg.Connection[Any], conn: psycopg.Connection[Any]
) -> None:
    a = q.enqueue_message(svc, "payouts", "payout", {"amount": 5000})
    b = q.enqueue_message(svc, "payouts", "payout", {"amount": 5000})
    assert a != b
    assert count(conn, "public.message_queue", "queue_name = 'payouts' and idempotency_key is null") == 2
    keyed = q.enqueue_message(svc, "payouts", "payout", {"amount": 5000}, idempotency_key="po-2")
    assert keyed not in (a, b), "a key never matches a message enqueued without one"


def test_concurrent_enqueues_with_one_key_make_one_message(connect: Connect, conn: psycopg.Connection[Any]) -> None:
    n = 8
    conns = [connect() for _ in range(n)]
    for c in conns:
        c.execute("set role service_role")
    barrier = threading.Barrier(n)
    ids: list[uuid.UUID] = []

    def enqueue(c: psycopg.Connection[Any]) -> None:
        barrier.wait()
        ids.append(q.enqueue_message(c, "payouts", "payout", {"a": 1}, idempotency_key="race"))

    threads = [threading.Thread(target=enqueue, args=(c,)) for c in conns]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(ids) == n and len(set(ids)) == 1
    assert count(conn, "public.message_queue") == 1


def test_claims_take_priority_then_schedule_and_skip_delayed_messages(
    svc: psycopg.Connection[Any], conn: psycopg.Connection[Any]
) -> None:
    low = q.enqueue_message(svc, "sms", "m", {"n": "low"}, priority=9)
    first = q.enqueue_message(svc, "sms", "m", {"n": "first"}, priority=2)
    second = q.enqueue_message(svc, "sms", "m", {"n": "second"}, priority=2)
    now = conn.execute("select now()").fetchone()[0]  # type: ignore[index]
    later = q.enqueue_message(svc, "sms", "m", {"n": "later"}, priority=1, scheduled_at=now + timedelta(hours=1))
    got = q.claim_messages(svc, "sms", 10)
    assert [m.id for m in got] == [first, second, low]
    assert _row(conn, later)["state"] == "available"
    conn.execute("update public.message_queue set scheduled_at = now() - interval '1 second' where id = %s", (later,))
    assert [m.id for m in q.claim_messages(svc, "sms", 10)] == [later]


def test_concurrent_claimers_never_share_a_message(connect: Connect) -> None:
    total, claimers = 600, 8
    producer = connect()
    producer.execute("set role service_role")
    for start in range(0, total, 200):
        q.enqueue_messages(producer, "fanout", [q.NewMessage("m", {"i": i}) for i in range(start, start + 200)])
    conns = [connect() for _ in range(claimers)]
    for c in conns:
        c.execute("set role service_role")
    barrier = threading.Barrier(claimers)
    claimed: list[list[uuid.UUID]] = [[] for _ in range(claimers)]

    def claim(i: int) -> None:
        barrier.wait()
        while True:
            got = q.claim_messages(conns[i], "fanout", 7, 60, f"w{i}")
            if not got:
                return
            claimed[i].extend(m.id for m in got)

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(claimers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    every = [mid for ids in claimed for mid in ids]
    assert len(every) == total, "every message was claimed"
    assert len(set(every)) == total, "no message was claimed twice"
    assert sum(1 for ids in claimed if ids) > 1, "the claimers really ran side by side"
    attempts = producer.execute(
        "select count(*) filter (where attempt <> 1), count(distinct claimed_by)"
        " from public.message_queue where queue_name = 'fanout'"
    ).fetchone()
    assert attempts is not None and attempts[0] == 0


def test_a_failed_attempt_is_retried_with_backoff_then_dead_lettered_with_every_error(
    svc: psycopg.Connection[Any], conn: psycopg.Connection[Any]
) -> None:
    mid = q.enqueue_message(svc, "webhooks", "deliver", {"url": "https://example.rw"}, max_attempts=3)
    [m] = q.claim_messages(svc, "webhooks", worker_id="w1")
    assert q.nack_message(svc, m.id, "HTTP 503", worker_id="w1") == "retryable"
    row = _row(conn, mid)
    # attempt 1 backs off 2 s with equal jitter: somewhere in [1 s, 2 s]
    assert timedelta(seconds=0.9) <= row["due_in"] <= timedelta(seconds=2)
    assert q.claim_messages(svc, "webhooks") == [], "not before the backoff"
    for attempt in (2, 3):
        conn.execute("update public.message_queue set scheduled_at = now() where id = %s", (mid,))
        [m] = q.claim_messages(svc, "webhooks", worker_id="w1")
        assert m.attempt == attempt
        state = q.nack_message(svc, m.id, f"HTTP 50{attempt}", worker_id="w1")
    assert state == "dead_letter"
    row = _row(conn, mid)
    assert row["state"] == "dead_letter" and row["finalized_at"] is not None
    assert [e["attempt"] for e in row["errors"]] == [1, 2, 3]
    assert [e["error"] for e in row["errors"]] == ["HTTP 503", "HTTP 502", "HTTP 503"]
    conn.execute("update public.message_queue set scheduled_at = now() - interval '1 hour' where id = %s", (mid,))
    assert q.claim_messages(svc, "webhooks") == [], "a dead letter is never claimed"

    assert q.redrive_dead_letters(svc, "webhooks") == 1
    row = _row(conn, mid)
    assert (row["state"], row["attempt"], row["redrive_count"]) == ("available", 0, 1)
    assert len(row["errors"]) == 3, "the error history is kept"
    assert [x.id for x in q.claim_messages(svc, "webhooks")] == [mid]
    assert q.redrive_dead_letters(svc, "webhooks") == 0


def test_backoff_grows_exponentially_with_jitter_and_a_cap(conn: psycopg.Connection[Any]) -> None:
    for attempt, base in [(1, 2.0), (2, 4.0), (3, 8.0), (6, 64.0), (12, 3600.0), (40, 3600.0)]:
        row = conn.execute(
            "select min(s), max(s), count(distinct s) from ("
            " select extract(epoch from public.queue_retry_backoff(%s)) as s"
            " from generate_series(1, 300)) x",
            (attempt,),
        ).fetchone()
        assert row is not None
        low, high, distinct = float(row[0]), float(row[1]), row[2]
        assert base / 2 <= low and high <= base, (attempt, low, high)
        assert distinct > 100, "jittered, not in lockstep"


def test_nack_with_an_explicit_delay_or_not_retryable(
    svc: psycopg.Connection[Any], conn: psycopg.Connection[Any]
) -> None:
    a = q.enqueue_message(svc, "mail", "m", {"n": 1})
    b = q.enqueue_message(svc, "mail", "m", {"n": 2})
    claimed = {m.id for m in q.claim_messages(svc, "mail")}
    assert claimed == {a, b}
    assert q.nack_message(svc, a, "try again now", retry_in_seconds=0) == "retryable"
    assert q.nack_message(svc, b, "poison message", retryable=False) == "dead_letter"
    assert [m.id for m in q.claim_messages(svc, "mail")] == [a]
    assert _row(conn, b)["attempt"] == 1


def test_a_message_claimed_by_a_terminated_connection_is_claimable_after_its_lease(
    connect: Connect, conn: psycopg.Connection[Any]
) -> None:
    producer, claimer, other = connect(), connect(), connect()
    for c in (producer, claimer, other):
        c.execute("set role service_role")
    mid = q.enqueue_message(producer, "orders", "order.placed", {"order": 7})
    [m] = q.claim_messages(claimer, "orders", 10, 2, "doomed")
    assert m.id == mid and m.attempt == 1
    # ::integer: Citus adds a pg_terminate_backend(bigint, bigint) that a small int would match too
    conn.execute("select pg_terminate_backend(%s::integer)", (claimer.info.backend_pid,))
    assert q.claim_messages(other, "orders") == [], "still leased"
    _wait_for_lease_end(conn, mid)
    [again] = q.claim_messages(other, "orders", 10, 30, "rescuer")
    assert again.id == mid
    assert again.attempt == 2, "the lost attempt is counted"
    assert again.errors[-1]["error"] == "lease expired" and again.errors[-1]["worker"] == "doomed"
    assert _row(conn, mid)["attempted_by"] == ["doomed", "rescuer"]


def test_the_reaper_returns_expired_leases_and_dead_letters_the_last_attempt(
    svc: psycopg.Connection[Any], conn: psycopg.Connection[Any]
) -> None:
    retry = q.enqueue_message(svc, "reap", "m", {}, max_attempts=3)
    last = q.enqueue_message(svc, "reap", "m", {}, max_attempts=1)
    q.claim_messages(svc, "reap", 10, 1, "gone")
    assert q.reap_expired_leases(svc) == 0, "nothing expired yet"
    _wait_for_lease_end(conn, retry)
    _wait_for_lease_end(conn, last)
    assert q.reap_expired_leases(svc) == 2
    assert _row(conn, retry)["state"] == "retryable"
    dead = _row(conn, last)
    assert dead["state"] == "dead_letter" and dead["errors"][-1]["error"] == "lease expired"
    assert q.reap_expired_leases(svc) == 0


@pytest.mark.parametrize("synchronous", [True, False])
def test_ack_and_claim_in_one_statement(
    svc: psycopg.Connection[Any], conn: psycopg.Connection[Any], synchronous: bool
) -> None:
    svc.execute("set synchronous_commit = 'remote_write'")  # neither of the two modes
    q.enqueue_messages(svc, "both", [q.NewMessage("m", {"i": i}, priority=5) for i in range(5)])
    first = q.claim_messages(svc, "both", 2, 30, "w")
    urgent = q.enqueue_message(svc, "both", "m", {"urgent": True}, priority=1)
    done, more = q.ack_and_claim_messages(svc, [m.id for m in first], "both", 2, 30, "w", synchronous)
    assert done == 2
    assert [m.id for m in more][0] == urgent, "the claim keeps priority order"
    assert [_row(conn, m.id)["state"] for m in first] == ["completed", "completed"]
    assert {_row(conn, m.id)["state"] for m in more} == {"running"}
    # the rest, then nothing left to claim: the acks still count
    done, rest = q.ack_and_claim_messages(svc, [m.id for m in more], "both", 10, 30, "w", synchronous)
    assert (done, len(rest)) == (2, 2)
    done, nothing = q.ack_and_claim_messages(svc, [m.id for m in rest], "both", 10, 30, "w", synchronous)
    assert (done, nothing) == (2, [])
    # a lost lease is not acked (as ack_messages); the commit mode does not outlive the statement
    mid = q.enqueue_message(svc, "both", "m", {"late": True})
    q.claim_messages(svc, "both", 1, 30, "other")
    assert q.ack_and_claim_messages(svc, [mid], "both", 1, 30, "w", synchronous) == (0, [])
    assert svc.execute("show synchronous_commit").fetchone() == ("remote_write",)
    with pytest.raises(InvalidInput):
        q.ack_and_claim_messages(svc, [], "both", 0, 30, "w", synchronous)


def test_acks_check_who_holds_the_lease(svc: psycopg.Connection[Any], conn: psycopg.Connection[Any]) -> None:
    mid = q.enqueue_message(svc, "leases", "m", {})
    q.claim_messages(svc, "leases", 1, 1, "slow")
    with pytest.raises(LeaseLost):
        q.ack_message(svc, mid, "someone-else")
    with pytest.raises(LeaseLost):
        q.nack_message(svc, mid, "x", worker_id="someone-else")
    # the lease runs out and the reaper returns it; the slow worker's late ack still counts
    _wait_for_lease_end(conn, mid)
    q.reap_expired_leases(svc)
    assert q.ack_message(svc, mid, "slow") is True
    # ... but not once another worker holds it
    mid2 = q.enqueue_message(svc, "leases", "m", {"n": 2})
    q.claim_messages(svc, "leases", 1, 1, "slow")
    _wait_for_lease_end(conn, mid2)
    q.claim_messages(svc, "leases", 1, 30, "fast")
    with pytest.raises(LeaseLost, match="claimed by fast"):
        q.ack_message(svc, mid2, "slow")
    assert q.ack_messages(svc, [mid2], "slow") == 0
    assert q.ack_messages(svc, [mid2], "fast") == 1
    with pytest.raises(NotFound):
        q.ack_message(svc, uuid.uuid4())


def test_release_returns_work_without_counting_the_attempt_and_leases_can_be_extended(
    svc: psycopg.Connection[Any], conn: psycopg.Connection[Any]
) -> None:
    a = q.enqueue_message(svc, "rel", "m", {"n": 1})
    b = q.enqueue_message(svc, "rel", "m", {"n": 2})
    q.claim_messages(svc, "rel", 10, 5, "w")
    assert q.extend_message_leases(svc, [a, b], 600, "w") == 2
    assert _row(conn, a)["lease_left"] > timedelta(seconds=500)
    assert q.extend_message_leases(svc, [a], 600, "not-me") == 0
    assert q.release_messages(svc, [a], "w") == 1
    row = _row(conn, a)
    assert (row["state"], row["attempt"], row["claimed_by"]) == ("available", 0, None)
    assert [m.id for m in q.claim_messages(svc, "rel")] == [a]
    assert _row(conn, b)["state"] == "running"


def test_enqueue_notifies_listeners_when_the_queue_gets_its_first_ready_message(
    connect: Connect, svc: psycopg.Connection[Any]
) -> None:
    listener = connect()
    listener.execute("listen platformdb_queue")

    def drain() -> list[str]:
        return [n.payload for n in listener.notifies(timeout=0.5)]

    q.enqueue_message(svc, "alerts", "m", {})
    assert drain() == ["alerts"], "an empty queue got a ready message: its workers are woken"
    q.enqueue_message(svc, "alerts", "m", {"second": True})
    assert drain() == [], "the queue already had a ready message: its workers are awake or busy"
    q.enqueue_messages(svc, "alerts", [q.NewMessage("m", {"i": i}) for i in range(100)])
    assert drain() == ["alerts"], "a batch is one notification"
    with svc.transaction():
        for i in range(3):
            q.enqueue_message(svc, "fresh", "m", {"tx": i})
        q.enqueue_message(svc, "digest", "m", {})
    assert sorted(drain()) == ["digest", "fresh"], "coalesced per queue and transaction"
    claimed = q.claim_messages(svc, "alerts", 1000)
    q.ack_messages(svc, [m.id for m in claimed])
    q.enqueue_message(svc, "alerts", "m", {"after": "drained"})
    assert drain() == ["alerts"], "a drained queue notifies again"
    claimed = q.claim_messages(svc, "alerts", 10)
    q.enqueue_message(svc, "alerts", "m", {"while": "running"})
    assert drain() == ["alerts"], "messages held by a worker are not ready: the next one wakes workers"
    now = svc.execute("select now()").fetchone()[0]  # type: ignore[index]
    q.enqueue_message(svc, "later", "m", {"later": True}, scheduled_at=now + timedelta(hours=1))
    assert drain() == [], "a delayed message wakes nobody"
    q.enqueue_message(svc, "later", "m", {"now": True})
    assert drain() == ["later"], "a delayed message does not count as ready"


def test_finished_rows_are_purged_in_batches_after_retention(
    svc: psycopg.Connection[Any], conn: psycopg.Connection[Any]
) -> None:
    q.enqueue_messages(svc, "purge", [q.NewMessage("m", {"i": i}) for i in range(7)])
    q.enqueue_message(svc, "purge", "m", {"dead": True}, max_attempts=1)
    claimed = q.claim_messages(svc, "purge", 10)
    dead = next(m.id for m in claimed if m.payload == {"dead": True})
    q.nack_message(svc, dead, "poison")
    q.ack_messages(svc, [m.id for m in claimed if m.id != dead])
    recent = q.enqueue_message(svc, "purge", "m", {"recent": True})
    q.claim_messages(svc, "purge", 10)
    q.ack_message(svc, recent)
    conn.execute(
        "update public.message_queue set finalized_at = now() - interval '2 days'"
        " where queue_name = 'purge' and id <> %s",
        (recent,),
    )
    assert conn.execute("select public.purge_finished_queue_rows(p_batch_size => 3)").fetchone() == (3,)
    assert q.purge_finished(svc, batch_size=3) == 4
    assert count(conn, "public.message_queue", "queue_name = 'purge' and state = 'completed'") == 1
    assert count(conn, "public.message_queue", "state = 'dead_letter'") == 1, "dead letters are kept"
    conn.execute(
        "update public.queue_retention set dead_letter_retention = interval '1 day' where table_name = 'message_queue'"
    )
    assert q.purge_finished(svc) == 1
    assert count(conn, "public.message_queue", "state = 'dead_letter'") == 0


def test_message_queue_stats(svc: psycopg.Connection[Any], conn: psycopg.Connection[Any]) -> None:
    q.enqueue_messages(svc, "stats", [q.NewMessage("m", {"i": i}) for i in range(5)])
    now = conn.execute("select now()").fetchone()[0]  # type: ignore[index]
    q.enqueue_message(svc, "stats", "m", {"delayed": True}, scheduled_at=now + timedelta(hours=1))
    claimed = q.claim_messages(svc, "stats", 3)
    q.ack_message(svc, claimed[0].id)
    q.nack_message(svc, claimed[1].id, "x", retryable=False)
    conn.execute(
        "update public.message_queue set scheduled_at = now() - interval '90 seconds'"
        " where queue_name = 'stats' and state = 'available' and payload ? 'i'"
    )
    [stats] = [s for s in q.queue_stats(svc) if s["queue_name"] == "stats"]
    assert stats["depth"] == 3 and stats["ready"] == 2 and stats["delayed"] == 1
    assert stats["in_flight"] == 1 and stats["dead_letters"] == 1 and stats["completed"] == 1
    assert stats["oldest_ready_age_seconds"] >= 90


@pytest.mark.parametrize(
    ("kwargs", "state", "message"),
    [
        ({"queue_name": ""}, "22004", "p_queue_name must not be empty"),
        ({"queue_name": "bad queue!"}, "22023", "p_queue_name must be"),
        ({"message_type": ""}, "22004", "p_message_type must not be empty"),
        ({"priority": 0}, "22003", "p_priority must be between 1"),
        ({"priority": 11}, "22003", "p_priority must be between 1"),
        ({"max_attempts": 0}, "22003", "p_max_attempts must be between 1 and 100"),
        ({"payload": {"blob": "x" * 300_000}}, "22023", "p_payload is too large"),
        ({"idempotency_key": "k" * 201}, "22023", "p_idempotency_key must be"),
    ],
)
def test_bad_enqueues_are_refused_and_write_nothing(
    svc: psycopg.Connection[Any], conn: psycopg.Connection[Any], kwargs: dict[str, Any], state: str, message: str
) -> None:
    args: dict[str, Any] = {"queue_name": "q", "message_type": "m", "payload": {}}
    args.update(kwargs)
    with pytest.raises(InvalidInput) as info:
        q.enqueue_message(svc, args.pop("queue_name"), args.pop("message_type"), args.pop("payload"), **args)
    assert info.value.sqlstate == state and message in info.value.message
    assert count(conn, "public.message_queue") == 0


@pytest.mark.parametrize(
    ("element", "state", "message"),
    [
        ({"message_type": "m", "payload": {}, "priority": 0}, "22003", r"p_messages\[2\]: priority"),
        ({"message_type": "m", "payload": {}, "priority": 2.5}, "22003", r"p_messages\[2\]: priority"),
        ({"message_type": "m", "payload": {}, "max_attempts": 101}, "22003", r"p_messages\[2\]: max_attempts"),
        ({"message_type": "", "payload": {}}, "22023", r"p_messages\[2\]: message_type"),
        ({"message_type": "m"}, "22023", r"p_messages\[2\]: payload must not be null"),
        ("just a string", "22023", r"p_messages\[2\]: must be an object"),
    ],
)
def test_a_bad_batch_element_is_named_and_nothing_is_written(
    svc: psycopg.Connection[Any], conn: psycopg.Connection[Any], element: Any, state: str, message: str
) -> None:
    import json

    batch = json.dumps([{"message_type": "m", "payload": {}}, element])
    with raises_sqlstate(state, message):
        svc.execute("select public.enqueue_messages('q', %s::jsonb)", (batch,))
    assert count(conn, "public.message_queue") == 0


@pytest.mark.parametrize(
    ("query", "state"),
    [
        ("select * from public.claim_messages('q', 0)", "22003"),
        ("select * from public.claim_messages('q', 1001)", "22003"),
        ("select * from public.claim_messages('q', 10, 0)", "22003"),
        ("select * from public.claim_messages(null)", "22004"),
        ("select * from public.claim_messages('q', 10, 30, '')", "22023"),
        # a null where a value is needed fails the one-expression test of a valid call: the
        # checks one by one then name it
        ("select * from public.claim_messages('q', null)", "22003"),
        ("select * from public.claim_messages('q', 10, null)", "22003"),
        ("select public.enqueue_message(null, 'm', '{}')", "22004"),
        ("select public.enqueue_message('q', null, '{}')", "22004"),
        ("select public.enqueue_message('q', 'm', null)", "22004"),
        ("select public.enqueue_message('q', 'm', '{}', null)", "22003"),
        ("select public.enqueue_message('q', 'm', '{}', p_max_attempts => null)", "22003"),
        ("select public.enqueue_message('q', 'm', '{}', p_idempotency_key => '')", "22023"),
        ("select public.ack_messages(null)", "22004"),
        ("select public.ack_messages(array_fill(gen_random_uuid(), array[10001]))", "22003"),
        ("select public.nack_message(gen_random_uuid(), '')", "22004"),
        ("select public.nack_message(gen_random_uuid(), 'x', -1)", "22003"),
        ("select public.nack_message(gen_random_uuid(), 'x')", "PD004"),
        ("select public.redrive_dead_letters('q', 0)", "22003"),
        ("select public.extend_message_leases(array[gen_random_uuid()], 0)", "22003"),
        ("select public.purge_finished_queue_rows(p_batch_size => 0)", "22003"),
        ("select public.purge_finished_queue_rows(interval '-1 day')", "22023"),
        ("select public.enqueue_messages('q', '{}')", "22023"),
    ],
)
def test_bad_queue_calls_are_refused(svc: psycopg.Connection[Any], query: str, state: str) -> None:
    with raises_sqlstate(state):
        svc.execute(query)


@pytest.mark.parametrize("role", ["anon", "authenticated"])
@pytest.mark.parametrize(
    "query",
    [
        "select public.enqueue_message('q', 'm', '{}')",
        "select public.enqueue_messages('q', '[]')",
        "select * from public.claim_messages('q')",
        "select public.ack_messages(array[]::uuid[])",
        "select public.reap_expired_leases()",
        "select public.purge_finished_queue_rows()",
        "select * from public.message_queue_stats",
        "select count(*) from public.message_queue",
    ],
)
def test_users_cannot_touch_the_queue(conn: psycopg.Connection[Any], user_a: uuid.UUID, role: str, query: str) -> None:
    with raises_sqlstate("42501"), db.acting_as(conn, role, user_a if role == "authenticated" else None):
        conn.execute(query)
    assert count(conn, "public.message_queue") == 0


# ---- the table's own checks (20260401280000: on domains, under the same names) ----------


@pytest.mark.parametrize(
    ("column", "value", "constraint"),
    [
        ("queue_name", "'bad queue!'", "message_queue_queue_name_format"),
        ("queue_name", "repeat('q', 101)", "message_queue_queue_name_format"),
        ("queue_name", "''", "message_queue_queue_name_format"),
        ("message_type", "''", "message_queue_message_type_length"),
        ("message_type", "repeat('m', 201)", "message_queue_message_type_length"),
        (
            "payload",
            "(select jsonb_object_agg(g::text, md5(g::text)) from generate_series(1, 8000) g)",
            "message_queue_payload_size",
        ),
        ("priority", "0", "message_queue_priority_range"),
        ("priority", "11", "message_queue_priority_range"),
        ("state", "'lost'", "message_queue_state_valid"),
        ("max_attempts", "0", "message_queue_max_attempts_range"),
        ("max_attempts", "101", "message_queue_max_attempts_range"),
        ("idempotency_key", "''", "message_queue_idempotency_key_length"),
        ("attempt", "6", "message_queue_attempt_range"),
        ("state", "'running'", "message_queue_running_has_lease"),
        ("state", "'completed'", "message_queue_finalized_or_finalized_at_null"),
    ],
)
def test_the_table_itself_refuses_a_bad_row_by_its_named_check(
    svc: psycopg.Connection[Any], conn: psycopg.Connection[Any], column: str, value: str, constraint: str
) -> None:
    """The table's owner (every function of ours writes as it) cannot store a bad row either,
    by INSERT or UPDATE: the one-column checks live on the columns' domains, the others on
    the table, each under its name, with SQLSTATE 23514."""
    message_id = q.enqueue_message(svc, "q", "m", {"n": 1})
    stored = "select to_jsonb(m) from public.message_queue m where id = %s"
    before = conn.execute(stored, (message_id,)).fetchone()
    with pytest.raises(psycopg.errors.CheckViolation) as info:
        conn.execute(f"update public.message_queue set {column} = {value} where id = %s", (message_id,))
    assert info.value.diag.constraint_name == constraint
    base = {"queue_name": "'q'", "message_type": "'m'", "payload": "'{}'", column: value}
    with pytest.raises(psycopg.errors.CheckViolation) as info:
        conn.execute(f"insert into public.message_queue ({', '.join(base)}) values ({', '.join(base.values())})")
    assert info.value.diag.constraint_name == constraint
    assert conn.execute(stored, (message_id,)).fetchone() == before
    assert count(conn, "public.message_queue") == 1


QUEUE_NAMES = [
    "q",
    "a" * 100,
    "a" * 101,
    "orders.paid:v2-eu_1",
    "-",
    "bad queue",
    "tab\there",
    "line\n",
    "\nline",
    "é",
    "ß",
    "Ａ",  # fullwidth A
    "q/1",
    "q$",
    "^q",
    "q*",
    "[q]",
    "q" * 99 + "é",
]


@pytest.mark.parametrize("name", QUEUE_NAMES, ids=[f"name{i}" for i in range(len(QUEUE_NAMES))])
def test_the_queue_name_check_accepts_exactly_the_names_of_its_pattern(
    svc: psycopg.Connection[Any], conn: psycopg.Connection[Any], name: str
) -> None:
    """The check is written as a length test and a "no other character" test; it accepts the
    same names as the pattern '^[A-Za-z0-9_.:-]{1,100}$' (PostgreSQL's and Python's), in the
    table and in enqueue_message."""
    import re

    expected = re.fullmatch(r"[A-Za-z0-9_.:-]{1,100}", name) is not None
    row = conn.execute("select %s ~ '^[A-Za-z0-9_.:-]{1,100}$'", (name,)).fetchone()
    assert row is not None and row[0] is expected
    try:
        conn.execute("select %s::public.message_queue_name", (name,))
        domain_accepts = True
    except psycopg.errors.CheckViolation:
        domain_accepts = False
    assert domain_accepts is expected
    if expected:
        q.enqueue_message(svc, name, "m", {})
        assert count(conn, "public.message_queue") == 1
    else:
        with pytest.raises(InvalidInput) as info:
            q.enqueue_message(svc, name, "m", {})
        assert info.value.sqlstate == "22023" and "p_queue_name must be" in info.value.message
        assert count(conn, "public.message_queue") == 0


def test_enqueue_claim_and_ack_plans_follow_the_table_as_it_fills(
    svc: psycopg.Connection[Any], conn: psycopg.Connection[Any]
) -> None:
    """A connection runs the queue's functions while the table is empty (and analyzed so),
    then the table fills with no ANALYZE in between: its enqueues' wake-up test still reads
    the claim index, its claims too and its acks the primary key. PL/pgSQL keeps one generic
    plan per statement and connection once it looks no dearer than planning each call; made
    on the empty table, that plan scanned the whole table (30 ms an enqueue and 35 ms a claim
    with 23,000 rows, for the connection's life). The claim and the ack run on one generic
    plan (not planned anew on each call), which without sequential and bitmap scans reads the
    indexes however full the table was when it was made. The plans are read from
    auto_explain, nested statements on."""
    conn.execute("analyze public.message_queue")
    for _ in range(6):  # PL/pgSQL may settle on a generic plan after 5 calls
        svc.execute("select public.enqueue_message('warm', 'm', '{}')")
        assert svc.execute("select * from public.claim_messages('big', 5, 30, 'w')").fetchall() == []
        assert svc.execute("select public.ack_messages(array[gen_random_uuid()], 'w')").fetchone() == (0,)
    conn.execute(
        "insert into public.message_queue (queue_name, message_type, payload)"
        " select case when g <= 20000 then 'big' else 'small' || (g % 300) end, 'm', '{}'"
        " from generate_series(1, 23000) g"
    )
    with nested_plans(svc) as plans:
        for queue in ["big", "small7", "big", "small8", "big", "big", "big"]:
            svc.execute("select public.enqueue_message(%s, 'm', '{}')", (queue,))
            ids = [r[0] for r in svc.execute("select id from public.claim_messages(%s, 5, 30, 'w')", (queue,))]
            assert len(ids) == 5
            assert svc.execute("select public.ack_messages(%s, 'w')", (ids,)).fetchone() == (5,)
    enqueues = [p for p in plans if "Insert on message_queue" in p]
    claims = [p for p in plans if "Update on message_queue" in p and "LockRows" in p]
    acks = [p for p in plans if "Update on message_queue" in p and "LockRows" not in p]
    assert len(enqueues) == 7 and len(claims) == 7 and len(acks) == 7
    for plan in enqueues:
        assert "message_queue_claim_idx" in plan and "Seq Scan" not in plan
    for plan in claims:  # one generic plan (a parameter, not the queue's name)
        assert "message_queue_claim_idx" in plan and "message_queue_pkey" in plan and "Seq Scan" not in plan
        assert "$1" in plan and "'big'" not in plan
    for plan in acks:
        assert "message_queue_pkey" in plan and "Seq Scan" not in plan and "Bitmap" not in plan
        assert "$1" in plan
    assert count(conn, "public.message_queue", "state = 'completed'") == 35
