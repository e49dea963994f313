"""§3.3 transactions and payments: global idempotency (months, concurrency), the state
machine, amounts and currencies, owner-only access through tables, views and functions,
payment methods and their secrets, bad input that writes nothing."""

from __future__ import annotations

import re
import shutil
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

from platformdb import db, errors, migrate
from platformdb.sdk import payments as pay
from tests import shared_db
from tests.catalog import snapshot
from tests.helpers import count, wait_until_waiting_on_a_lock
from tests.helpers import raises_sqlstate as refused

STATUSES = pay.STATUSES
LEGAL = {(a, b) for a, nexts in pay.TRANSITIONS.items() for b in nexts}
# the way to reach each status from pending (as a service)
PATH = {
    "pending": [],
    "processing": ["processing"],
    "completed": ["completed"],
    "failed": ["failed"],
    "cancelled": ["cancelled"],
    "reversed": ["completed", "reversed"],
}
MONEY_TABLES = (
    "transactions",
    "transaction_events",
    "transaction_directory",
    "transaction_idempotency_keys",
)


def create(
    conn: psycopg.Connection[Any],
    user: uuid.UUID,
    amount: Any = 5000,
    type: str = "payment",
    currency: str = "RWF",
    key: str | None = None,
    **kw: Any,
) -> uuid.UUID:
    with db.as_service(conn):
        return pay.create_transaction(conn, user, type, amount, currency, key, **kw)


def set_status(conn: psycopg.Connection[Any], tx: uuid.UUID, status: str, message: str | None = None) -> bool:
    with db.as_service(conn):
        return pay.update_transaction_status(conn, tx, status, message)


def reach(conn: psycopg.Connection[Any], user: uuid.UUID, status: str, type: str = "payment") -> uuid.UUID:
    tx = create(conn, user, type=type)
    for s in PATH[status]:
        assert set_status(conn, tx, s, "reason" if s == "failed" else None)
    return tx


def row(conn: psycopg.Connection[Any], tx: uuid.UUID) -> dict[str, Any]:
    with db.dict_cursor(conn) as cur:
        r = cur.execute("select * from transactions where id = %s", (tx,)).fetchone()
    assert r is not None
    return r


def events(conn: psycopg.Connection[Any], tx: uuid.UUID) -> list[tuple[Any, ...]]:
    return conn.execute(
        "select previous_status, new_status from transaction_events where transaction_id = %s"
        " order by created_at",
        (tx,),
    ).fetchall()


def money_counts(conn: psycopg.Connection[Any]) -> tuple[int, ...]:
    return tuple(count(conn, t) for t in MONEY_TABLES)


# ---- creation --------------------------------------------------------------------------


def test_create_as_service_stores_a_pending_transaction_with_a_readable_ref_and_an_event(
    conn: psycopg.Connection[Any], user_a: uuid.UUID
) -> None:
    tx = create(conn, user_a, 5000, category="ride", destination="driver:42", correlation_id="c-1")
    r = row(conn, tx)
    assert (r["user_id"], r["type"], r["amount"], r["currency"], r["status"]) == (
        user_a, "payment", Decimal("5000.00"), "RWF", "pending",
    )
    assert (r["category"], r["destination"], r["correlation_id"]) == ("ride", "driver:42", "c-1")
    assert r["completed_at"] is None and r["reversed_at"] is None
    assert re.fullmatch(r"TX-\d{6}-[0-9A-HJKMNP-TV-Z]{8}", r["transaction_ref"])
    assert r["transaction_ref"][3:9] == datetime.now(UTC).strftime("%y%m%d")
    assert conn.execute(
        "select transaction_ref, user_id, created_at from transaction_directory where id = %s", (tx,)
    ).fetchone() == (r["transaction_ref"], user_a, r["created_at"])
    ev = conn.execute(
        "select previous_status, new_status, triggered_by_role, triggered_by_user_id"
        " from transaction_events where transaction_id = %s",
        (tx,),
    ).fetchall()
    assert ev == [(None, "pending", "service_role", None)]


def test_transaction_refs_are_unique_and_not_sequential(conn: psycopg.Connection[Any]) -> None:
    refs = [r[0] for r in conn.execute(
        "select public.next_transaction_ref() from generate_series(1, 20000)"
    ).fetchall()]
    assert len(set(refs)) == len(refs)
    tails = [r[-8:] for r in refs[:50]]
    assert tails != sorted(tails), "consecutive references should not sort in creation order"


def test_a_duplicate_ref_or_id_is_refused_across_months(conn: psycopg.Connection[Any], user_a: uuid.UUID) -> None:
    """Global uniqueness holds even for direct inserts by the owner into another month."""
    tx = create(conn, user_a)
    ref = row(conn, tx)["transaction_ref"]
    later = datetime.now(UTC) + timedelta(days=40)
    if not shared_db.on_citus(conn):
        # on Citus a unique key must carry user_id: there transaction_ref is a plain index and
        # references are unique by construction only (docs/scaling.md, "What Citus changes")
        with refused("23505", "transaction_directory_transaction_ref_key"):
            conn.execute(
                "insert into transactions (user_id, type, amount, transaction_ref, created_at)"
                " values (%s, 'payment', 10, %s, %s)",
                (user_a, ref, later),
            )
    with refused("23505", "transaction_directory_pkey"):
        conn.execute(
            "insert into transactions (id, user_id, type, amount, created_at)"
            " values (%s, %s, 'payment', 10, %s)",
            (tx, user_a, later),
        )
    assert count(conn, "transactions") == 1


# ---- idempotency -----------------------------------------------------------------------


def test_same_key_returns_the_same_transaction_and_writes_nothing_more(
    conn: psycopg.Connection[Any], user_a: uuid.UUID
) -> None:
    first = create(conn, user_a, 5000, key="order-1")
    before = money_counts(conn)
    assert create(conn, user_a, "5000.00", key="order-1") == first
    assert set_status(conn, first, "completed")
    assert create(conn, user_a, 5000, key="order-1") == first  # after completion too
    assert money_counts(conn) == (before[0], before[1] + 1, before[2], before[3])  # + the status event
    assert count(conn, "transactions", "idempotency_key = 'order-1'") == 1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"type": "transfer"}, r"different p_type \(first: payment\)"),
        ({"amount": 5001}, r"different p_amount \(first: 5000.00\)"),
        ({"currency": "USD"}, r"different p_currency \(first: RWF\)"),
        ({"destination": "merchant:9"}, "different p_destination"),
    ],
)
def test_same_key_with_different_parameters_is_an_idempotency_conflict(
    conn: psycopg.Connection[Any], user_a: uuid.UUID, change: dict[str, Any], message: str
) -> None:
    create(conn, user_a, 5000, key="order-2")
    before = money_counts(conn)
    args: dict[str, Any] = {"amount": 5000, "type": "payment", "currency": "RWF", **change}
    with refused("PD001", "p_idempotency_key order-2 was already used with a " + message):
        create(conn, user_a, key="order-2", **args)
    assert money_counts(conn) == before


def test_same_key_for_another_user_is_a_conflict_that_reveals_nothing(
    conn: psycopg.Connection[Any], user_a: uuid.UUID, user_b: uuid.UUID
) -> None:
    create(conn, user_a, 7300, key="order-3")
    before = money_counts(conn)
    with refused("PD001", "already used for a different p_user_id") as info:
        create(conn, user_b, 7300, key="order-3")
    assert "7300" not in str(info.value) and str(user_a) not in str(info.value)
    assert money_counts(conn) == before


def test_sdk_raises_idempotency_conflict(conn: psycopg.Connection[Any], user_a: uuid.UUID) -> None:
    create(conn, user_a, 100, key="order-4")
    with pytest.raises(pay.IdempotencyConflict) as info:
        create(conn, user_a, 200, key="order-4")
    assert info.value.sqlstate == "PD001"
    assert isinstance(info.value, errors.IdempotencyConflict)


def test_32_connections_creating_with_one_key_at_once_make_one_transaction(
    conn: psycopg.Connection[Any], connect: Callable[..., psycopg.Connection[Any]], user_a: uuid.UUID
) -> None:
    n = 32
    conns = [connect() for _ in range(n)]
    barrier = threading.Barrier(n)
    ids: list[uuid.UUID] = []
    failures: list[BaseException] = []
    lock = threading.Lock()

    def worker(c: psycopg.Connection[Any]) -> None:
        try:
            with db.as_service(c):
                barrier.wait(timeout=60)
                got = pay.create_transaction(c, user_a, "payment", 12000, "RWF", "burst-key")
            with lock:
                ids.append(got)
        except BaseException as exc:  # surfaced below
            with lock:
                failures.append(exc)

    threads = [threading.Thread(target=worker, args=(c,)) for c in conns]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not failures, failures
    assert len(ids) == n and len(set(ids)) == 1
    assert count(conn, "transactions") == 1
    assert count(conn, "transaction_idempotency_keys") == 1
    assert count(conn, "transaction_directory") == 1
    assert events(conn, ids[0]) == [(None, "pending")]


@pytest.mark.parametrize("first_commits", [True, False])
def test_a_concurrent_caller_waits_for_the_first_and_takes_its_outcome(
    conn: psycopg.Connection[Any],
    connect: Callable[..., psycopg.Connection[Any]],
    user_a: uuid.UUID,
    first_commits: bool,
) -> None:
    """The second caller blocks on the key until the first ends: it returns the first's id
    when it committed, or creates the transaction itself when the first rolled back."""
    a, b = connect(), connect()
    second: list[uuid.UUID] = []
    thread = threading.Thread(
        target=lambda: second.append(create(b, user_a, 900, key="held-key"))
    )
    try:
        with db.as_service(a):
            first = pay.create_transaction(a, user_a, "payment", 900, "RWF", "held-key")
            thread.start()
            wait_until_waiting_on_a_lock(conn, b.info.backend_pid)
            if not first_commits:
                raise RuntimeError("roll back the first caller")
    except RuntimeError:
        pass
    thread.join(60)
    assert len(second) == 1
    assert (second[0] == first) is first_commits
    assert count(conn, "transactions") == 1
    assert conn.execute("select id from transactions").fetchone() == (second[0],)


def test_a_key_first_used_last_month_returns_the_same_transaction(
    conn: psycopg.Connection[Any], user_a: uuid.UUID
) -> None:
    tx = create(conn, user_a, 4200, key="renewal-2026")
    # the transaction and its bookkeeping as if created a month ago, in last month's partition
    # (owner-only time travel with triggers off: created_at never changes otherwise)
    conn.execute("select create_monthly_partitions('public.transactions', 0, now() - interval '1 month')")
    with conn.transaction():
        conn.execute("set local session_replication_role = replica")
        # the new times as values (Citus refuses a STABLE timestamptz - interval over a column
        # in an UPDATE of a distributed table)
        was = conn.execute(
            "select created_at - interval '1 month', initiated_at - interval '1 month'"
            " from transactions where id = %s",
            (tx,),
        ).fetchone()
        key_at = conn.execute(
            "select created_at - interval '1 month' from transaction_idempotency_keys where transaction_id = %s",
            (tx,),
        ).fetchone()
        assert was is not None and key_at is not None
        was = (*was, key_at[0])
        conn.execute(
            "update transactions set created_at = %s, initiated_at = %s where id = %s", (was[0], was[1], tx)
        )
        conn.execute("update transaction_directory set created_at = %s where id = %s", (was[0], tx))
        conn.execute(
            "update transaction_idempotency_keys set created_at = %s, transaction_created_at = %s"
            " where transaction_id = %s",
            (was[2], was[0], tx),
        )
    last_month = conn.execute(
        "select to_char(date_trunc('month', now() - interval '1 month'), 'YYYYMM')"
    ).fetchone()
    assert last_month is not None
    # the partition (on Citus tableoid is the partition's shard, <partition>_<shard id>)
    part = conn.execute(
        "select regexp_replace(tableoid::regclass::text, '_[0-9]+$', '') from transactions where id = %s", (tx,)
    ).fetchone()
    assert part == (f"transactions_p{last_month[0]}",)

    assert create(conn, user_a, 4200, key="renewal-2026") == tx
    with refused("PD001", "different p_amount"):
        create(conn, user_a, 4300, key="renewal-2026")
    assert count(conn, "transactions") == 1
    # lookups by id reach last month's partition
    assert set_status(conn, tx, "completed")
    with db.as_user(conn, user_a):
        got = pay.get_transaction(conn, tx)
    assert got is not None and got.status == "completed" and got.amount == Decimal("4200.00")


# ---- the state machine -----------------------------------------------------------------


@pytest.mark.parametrize(("src", "dst"), [(a, b) for a in STATUSES for b in STATUSES])
def test_every_transition_is_allowed_or_refused_as_the_machine_says(
    conn: psycopg.Connection[Any], user_a: uuid.UUID, src: str, dst: str
) -> None:
    tx = reach(conn, user_a, src)
    before = row(conn, tx)
    history = events(conn, tx)
    if src == dst:
        assert set_status(conn, tx, dst) is False
        assert row(conn, tx) == before and events(conn, tx) == history
    elif (src, dst) in LEGAL:
        assert set_status(conn, tx, dst, "why" if dst == "failed" else None) is True
        after = row(conn, tx)
        assert after["status"] == dst
        assert events(conn, tx) == [*history, (src, dst)]
        assert (after["completed_at"] is not None) == (dst in ("completed", "failed", "cancelled", "reversed"))
        assert (after["reversed_at"] is not None) == (dst == "reversed")
        if dst == "reversed":
            assert after["completed_at"] == before["completed_at"]
    else:
        with refused("PD002", f"illegal transition {src} -> {dst}"):
            set_status(conn, tx, dst)
        assert row(conn, tx) == before and events(conn, tx) == history


def test_the_machine_in_sql_and_in_the_sdk_agree(conn: psycopg.Connection[Any]) -> None:
    for s in STATUSES:
        r = conn.execute("select transaction_next_statuses(%s)", (s,)).fetchone()
        assert r is not None and tuple(r[0]) == pay.next_statuses(s)


def test_sdk_raises_illegal_transition_with_a_hint(conn: psycopg.Connection[Any], user_a: uuid.UUID) -> None:
    tx = reach(conn, user_a, "completed")
    with pytest.raises(pay.IllegalTransition) as info:
        set_status(conn, tx, "pending")
    assert info.value.sqlstate == "PD002"
    assert info.value.hint == "from completed the next status is one of reversed"


def test_the_machine_holds_for_direct_writes_by_the_table_owner(
    conn: psycopg.Connection[Any], user_a: uuid.UUID
) -> None:
    tx = reach(conn, user_a, "completed")
    with refused("PD002", "illegal transition completed -> pending"):
        conn.execute("update transactions set status = 'pending' where id = %s", (tx,))
    with refused("PD006", "only status, error, provider reference and metadata change"):
        conn.execute("update transactions set amount = 1 where id = %s", (tx,))
    with refused("PD002", "a transaction starts pending"):
        conn.execute(
            "insert into transactions (user_id, type, amount, status) values (%s, 'credit', 10, 'completed')",
            (user_a,),
        )
    with refused("22023", "amount: RWF has 0 decimal places"):
        conn.execute("insert into transactions (user_id, type, amount) values (%s, 'credit', 10.5)", (user_a,))
    assert row(conn, tx)["status"] == "completed" and count(conn, "transactions") == 1
    assert events(conn, tx) == [(None, "pending"), ("pending", "completed")]


def test_failure_keeps_its_reason_in_the_row_and_the_event(conn: psycopg.Connection[Any], user_a: uuid.UUID) -> None:
    tx = reach(conn, user_a, "processing")
    with db.as_service(conn):
        assert pay.update_transaction_status(
            conn, tx, "failed", "MoMo: insufficient balance", error_code="MOMO_402", provider_reference="mtn-77"
        )
    r = row(conn, tx)
    assert (r["error_message"], r["error_code"], r["provider_reference"]) == (
        "MoMo: insufficient balance", "MOMO_402", "mtn-77",
    )
    last = conn.execute(
        "select new_status, error_code, error_message from transaction_events where transaction_id = %s"
        " order by created_at desc limit 1",
        (tx,),
    ).fetchone()
    assert last == ("failed", "MOMO_402", "MoMo: insufficient balance")
    other = reach(conn, user_a, "pending")
    assert set_status(conn, other, "failed")
    assert row(conn, other)["error_message"] == "failed (no reason given)"


def test_two_concurrent_terminal_updates_leave_one_winner(
    conn: psycopg.Connection[Any], connect: Callable[..., psycopg.Connection[Any]], user_a: uuid.UUID
) -> None:
    tx = reach(conn, user_a, "processing")
    barrier = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def worker(status: str) -> None:
        c = connect()
        try:
            with db.as_service(c):
                barrier.wait(timeout=30)
                pay.update_transaction_status(c, tx, status, "x")
            outcomes[status] = "ok"
        except pay.IllegalTransition:
            outcomes[status] = "illegal"

    threads = [threading.Thread(target=worker, args=(s,)) for s in ("completed", "failed")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(outcomes.values()) == ["illegal", "ok"]
    winner = next(s for s, o in outcomes.items() if o == "ok")
    assert row(conn, tx)["status"] == winner
    assert events(conn, tx) == [(None, "pending"), ("pending", "processing"), ("processing", winner)]


# ---- amounts, currencies and other bad input -------------------------------------------


@pytest.mark.parametrize(
    ("amount", "currency"),
    [("5000", "RWF"), ("5000.00", "RWF"), ("10.01", "USD"), ("0.01", "EUR"), ("1", "UGX"),
     ("9999999999999999", "RWF"), ("9999999999999999.99", "USD")],
)
def test_amounts_within_the_currency_precision_are_accepted(
    conn: psycopg.Connection[Any], user_a: uuid.UUID, amount: str, currency: str
) -> None:
    tx = create(conn, user_a, Decimal(amount), currency=currency)
    assert row(conn, tx)["amount"] == Decimal(amount)


@pytest.mark.parametrize(
    ("amount", "currency", "state", "message"),
    [
        ("100.5", "RWF", "22023", r"p_amount: RWF has 0 decimal places, got 100.5"),
        ("10.005", "USD", "22023", r"p_amount: USD has 2 decimal places, got 10.005"),
        ("0", "RWF", "22023", "p_amount must be positive"),
        ("-500", "RWF", "22023", "p_amount must be positive"),
        ("-0.01", "USD", "22023", "p_amount must be positive"),
        ("NaN", "RWF", "22023", "p_amount must be a number"),
        ("Infinity", "RWF", "22003", "p_amount out of range"),
        ("1e17", "RWF", "22003", "p_amount out of range"),
        (None, "RWF", "22004", "p_amount must not be null"),
        ("10", "XYZ", "22023", "p_currency: unknown currency XYZ"),
        ("10", "rwf", "22023", "p_currency must be an ISO 4217 code"),
        ("10", "US", "22023", "p_currency must be an ISO 4217 code"),
        ("10", "US$", "22023", "p_currency must be an ISO 4217 code"),
        ("10", None, "22004", "p_currency must not be null"),
    ],
)
def test_bad_amounts_and_currencies_are_refused_and_nothing_is_written(
    conn: psycopg.Connection[Any], user_a: uuid.UUID, amount: str | None, currency: str | None,
    state: str, message: str,
) -> None:
    with refused(state, message):
        with db.as_service(conn):
            conn.execute(
                "select create_transaction(p_user_id => %s, p_type => 'payment',"
                " p_amount => %s::numeric, p_currency => %s, p_idempotency_key => 'k')",
                (user_a, amount, currency),
            )
    assert money_counts(conn) == (0, 0, 0, 0)


@pytest.mark.parametrize(
    ("args", "state", "message"),
    [
        ("p_user_id => null, p_type => 'payment', p_amount => 1", "22004", "p_user_id must not be null"),
        ("p_user_id => {u}, p_type => 'gift', p_amount => 1", "22023", "p_type: unknown transaction type gift"),
        ("p_user_id => {u}, p_type => null, p_amount => 1", "22004", "p_type must not be null"),
        ("p_user_id => {u}, p_type => 'payment', p_amount => 1, p_metadata => '[1]'", "22023",
         "p_metadata must be a JSON object"),
        ("p_user_id => {u}, p_type => 'payment', p_amount => 1,"
         " p_metadata => jsonb_build_object('x', repeat('y', 40000))", "22023", "p_metadata must be at most 16 KiB"),
        ("p_user_id => {u}, p_type => 'payment', p_amount => 1, p_idempotency_key => ''", "22023",
         "p_idempotency_key must be 1 to 255 characters"),
        ("p_user_id => {u}, p_type => 'payment', p_amount => 1, p_idempotency_key => repeat('k', 256)",
         "22023", "p_idempotency_key must be 1 to 255 characters"),
        ("p_user_id => {u}, p_type => 'payment', p_amount => 1, p_category => 'Ride Share'", "22023",
         "p_category must be"),
        ("p_user_id => {u}, p_type => 'payment', p_amount => 1, p_destination => repeat('d', 201)", "22023",
         "p_destination must be at most 200"),
        ("p_user_id => {u}, p_type => 'payment', p_amount => 1, p_payment_method_id => gen_random_uuid()",
         "PD004", "p_payment_method_id: no payment method"),
    ],
)
def test_bad_create_input_is_refused_naming_the_parameter(
    conn: psycopg.Connection[Any], user_a: uuid.UUID, args: str, state: str, message: str
) -> None:
    with refused(state, message):
        with db.as_service(conn):
            conn.execute(f"select create_transaction({args.format(u='%(u)s')})", {"u": user_a})
    assert money_counts(conn) == (0, 0, 0, 0)


@pytest.mark.parametrize(
    ("args", "state", "message"),
    [
        ("p_transaction_id => null, p_new_status => 'completed'", "22004", "p_transaction_id must not be null"),
        ("p_transaction_id => {t}, p_new_status => null", "22004", "p_new_status must not be null"),
        ("p_transaction_id => {t}, p_new_status => 'done'", "22023", "p_new_status: unknown status done"),
        ("p_transaction_id => gen_random_uuid(), p_new_status => 'completed'", "PD004", "not found"),
        ("p_transaction_id => {t}, p_new_status => 'failed', p_error_message => repeat('e', 2001)", "22023",
         "p_error_message must be at most 2000"),
    ],
)
def test_bad_status_update_input_is_refused_and_nothing_is_written(
    conn: psycopg.Connection[Any], user_a: uuid.UUID, args: str, state: str, message: str
) -> None:
    tx = create(conn, user_a)
    before = row(conn, tx)
    with refused(state, message):
        with db.as_service(conn):
            conn.execute(f"select update_transaction_status({args.format(t='%(t)s')})", {"t": tx})
    assert row(conn, tx) == before and events(conn, tx) == [(None, "pending")]


def test_sdk_refuses_float_amounts(conn: psycopg.Connection[Any], user_a: uuid.UUID) -> None:
    with pytest.raises(pay.InvalidInput, match="not a float"):
        create(conn, user_a, 10.1)
    assert count(conn, "transactions") == 0


# ---- who may do what -------------------------------------------------------------------


def test_acceptance_user_a_cannot_touch_user_b_and_sees_only_their_own_rows(
    conn: psycopg.Connection[Any], user_a: uuid.UUID, user_b: uuid.UUID
) -> None:
    a_tx = create(conn, user_a, 1000)
    b_tx = create(conn, user_b, 2000)
    b_before = row(conn, b_tx)

    for status in ("completed", "cancelled", "failed"):
        with refused("PD004", f"transaction {b_tx} not found"):
            with db.as_user(conn, user_a):
                conn.execute(
                    "select update_transaction_status(p_transaction_id => %s, p_new_status => %s)",
                    (b_tx, status),
                )
    with refused("42501", "p_user_id must be the signed-in user"):
        with db.as_user(conn, user_a):
            conn.execute(
                "select create_transaction(p_user_id => %s, p_type => 'payment', p_amount => 500)", (user_b,)
            )
    assert row(conn, b_tx) == b_before and events(conn, b_tx) == [(None, "pending")]
    assert count(conn, "transactions") == 2

    with db.as_user(conn, user_a):
        seen = conn.execute("select id, user_id from user_recent_transactions").fetchall()
        assert seen == [(a_tx, user_a)]
        assert conn.execute("select id from transactions").fetchall() == [(a_tx,)]
        assert conn.execute("select distinct transaction_id from transaction_events").fetchall() == [(a_tx,)]
        assert conn.execute("select id from transaction_directory").fetchall() == [(a_tx,)]
        assert pay.get_transaction(conn, b_tx) is None
        assert [t.id for t in pay.recent_transactions(conn, user_b)] == []
        assert [t.id for t in pay.recent_transactions(conn)] == [a_tx]
    with db.as_service(conn):
        assert {r[0] for r in conn.execute("select user_id from user_recent_transactions")} == {user_a, user_b}


def test_forged_service_claims_do_not_make_a_user_a_service(
    conn: psycopg.Connection[Any], user_a: uuid.UUID, user_b: uuid.UUID
) -> None:
    b_tx = create(conn, user_b)
    forged = {"role": "service_role", "sub": str(user_a)}
    with refused("PD004"), conn.transaction():
        db.set_role(conn, "authenticated", forged)
        conn.execute("select update_transaction_status(%s, 'completed')", (b_tx,))
    with refused("42501"), conn.transaction():
        db.set_role(conn, "authenticated", forged)
        conn.execute("select create_transaction(%s, 'credit', 100)", (user_b,))
    assert row(conn, b_tx)["status"] == "pending" and count(conn, "transactions") == 1


def test_a_user_creates_their_own_outgoing_transaction_and_the_event_names_them(
    conn: psycopg.Connection[Any], user_a: uuid.UUID
) -> None:
    with db.as_user(conn, user_a):
        tx = pay.create_transaction(conn, user_a, "payment", 3000, idempotency_key="user-key")
        assert pay.create_transaction(conn, user_a, "payment", 3000, idempotency_key="user-key") == tx
    ev = conn.execute(
        "select triggered_by_user_id, triggered_by_role from transaction_events where transaction_id = %s", (tx,)
    ).fetchall()
    assert ev == [(user_a, "authenticated")]


@pytest.mark.parametrize("type_", ["credit", "refund", "fee", "commission"])
def test_a_user_cannot_create_money_for_themself(
    conn: psycopg.Connection[Any], user_a: uuid.UUID, type_: str
) -> None:
    with refused("42501", f"p_type: only a service may create {type_} transactions"):
        with db.as_user(conn, user_a):
            conn.execute("select create_transaction(%s, %s, 1000000)", (user_a, type_))
    assert money_counts(conn) == (0, 0, 0, 0)


def test_a_user_may_only_cancel_their_own_pending_outgoing_transaction(
    conn: psycopg.Connection[Any], user_a: uuid.UUID
) -> None:
    pending = reach(conn, user_a, "pending")
    processing = reach(conn, user_a, "processing")
    fee = reach(conn, user_a, "pending", type="fee")
    with db.as_user(conn, user_a):
        for tx, status in ((pending, "completed"), (pending, "processing"), (processing, "cancelled"),
                           (fee, "cancelled")):
            with refused("42501", "only a service may set"):
                with conn.transaction():
                    pay.update_transaction_status(conn, tx, status)
        # the cancellation changes only the status: the error and provider fields are the service's
        for kwargs in ({"error_message": "changed my mind"}, {"error_code": "X"}, {"provider_reference": "MP1"}):
            with refused("42501", "only a service may set"):
                with conn.transaction():
                    pay.update_transaction_status(conn, pending, "cancelled", **kwargs)  # type: ignore[arg-type]
        assert pay.update_transaction_status(conn, pending, "cancelled") is True
    assert [row(conn, t)["status"] for t in (pending, processing, fee)] == ["cancelled", "processing", "pending"]
    assert (row(conn, pending)["error_message"], row(conn, pending)["provider_reference"]) == (None, None)
    who = conn.execute(
        "select triggered_by_user_id, triggered_by_role, error_message from transaction_events"
        " where transaction_id = %s and new_status = 'cancelled'",
        (pending,),
    ).fetchone()
    assert who == (user_a, "authenticated", None)


def test_signed_in_role_without_a_user_id_is_refused(conn: psycopg.Connection[Any], user_a: uuid.UUID) -> None:
    tx = create(conn, user_a)
    with refused("42501", "sign-in required"):
        with db.acting_as(conn, "authenticated"):
            conn.execute("select create_transaction(%s, 'payment', 10)", (user_a,))
    with refused("42501", "sign-in required"):
        with db.acting_as(conn, "authenticated"):
            conn.execute("select update_transaction_status(%s, 'cancelled')", (tx,))
    assert count(conn, "transactions") == 1 and row(conn, tx)["status"] == "pending"


@pytest.mark.parametrize(
    "statement",
    [
        "select create_transaction(gen_random_uuid(), 'payment', 10)",
        "select update_transaction_status(gen_random_uuid(), 'completed')",
        "select * from get_transaction(gen_random_uuid())",
        "select * from user_recent_transactions",
        "select * from transaction_summary",
        "select * from currencies",
        "select id from payment_methods",
    ],
)
def test_anon_gets_nothing(conn: psycopg.Connection[Any], statement: str) -> None:
    with refused("42501", "permission denied"):
        with db.as_anon(conn):
            conn.execute(statement)


def test_transaction_summary_is_for_services_only_and_aggregates_by_status(
    conn: psycopg.Connection[Any], user_a: uuid.UUID, user_b: uuid.UUID
) -> None:
    reach(conn, user_a, "completed")
    reach(conn, user_b, "completed")
    reach(conn, user_b, "failed")
    create(conn, user_a, "12.50", currency="USD")
    with refused("42501", "permission denied for view transaction_summary"):
        with db.as_user(conn, user_a):
            conn.execute("select * from transaction_summary")
    with db.as_service(conn):
        rows = conn.execute(
            "select currency, status, transaction_count, total_amount from transaction_summary"
            " order by currency, status"
        ).fetchall()
    assert rows == [
        ("RWF", "completed", 2, Decimal("10000.00")),
        ("RWF", "failed", 1, Decimal("5000.00")),
        ("USD", "pending", 1, Decimal("12.50")),
    ]


def test_append_only_tables_refuse_changes_even_with_rights(
    conn: psycopg.Connection[Any], user_a: uuid.UUID
) -> None:
    tx = create(conn, user_a, key="k-append")
    conn.execute(
        "grant update, delete on transaction_events, transaction_directory,"
        " transaction_idempotency_keys, transactions to service_role"
    )
    # each update sets a constant on a column that is not the table's distribution column on
    # Citus (which refuses a volatile call or a new distribution value before any trigger runs)
    for table, where, change in (
        ("transaction_events", "transaction_id", "triggered_by = 'tampered'"),
        ("transaction_directory", "id", "transaction_ref = 'TX-TAMPERED'"),
        ("transaction_idempotency_keys", "transaction_id", "transaction_created_at = '2000-01-01'"),
    ):
        with refused("PD006", f"{table}: delete is not allowed; rows are kept forever"):
            with db.as_service(conn):
                conn.execute(f"delete from {table} where {where} = %s", (tx,))
        with refused("PD006", f"{table}: update is not allowed; rows are kept forever"):
            with db.as_service(conn):
                conn.execute(f"update {table} set {change} where {where} = %s", (tx,))
    with refused("PD006", "transactions: delete is not allowed"):
        with db.as_service(conn):
            conn.execute("delete from transactions where id = %s", (tx,))
    assert money_counts(conn) == (1, 1, 1, 1)


# ---- payment methods -------------------------------------------------------------------


def add_method(conn: psycopg.Connection[Any], user: uuid.UUID, masked: str = "********3456", **kw: Any) -> uuid.UUID:
    with db.as_service(conn):
        return pay.add_payment_method(conn, user, "mobile_money", "mtn_momo", masked, **kw)


def test_the_owner_manages_their_methods_without_ever_reading_the_details(
    conn: psycopg.Connection[Any], user_a: uuid.UUID
) -> None:
    pm = add_method(conn, user_a, encrypted_details=b"\x8a\x01ciphertext")
    with db.as_user(conn, user_a):
        mine = pay.list_payment_methods(conn, user_a)
        assert [(m.id, m.masked_number, m.is_active) for m in mine] == [(pm, "********3456", True)]
        own = pay.add_payment_method(conn, user_a, "card", "visa", "**** 4242", label="Visa")
        conn.execute("update payment_methods set label = 'MoMo' where id = %s", (pm,))
    for statement in (
        "select * from payment_methods",
        "select encrypted_details from payment_methods",
        "select to_jsonb(pm) from payment_methods pm",
        "update payment_methods set label = 'x' returning *",
        "update payment_methods set encrypted_details = '\\x00'",
        "insert into payment_methods (user_id, type, provider, masked_number, encrypted_details)"
        " values (auth.uid(), 'card', 'visa', '****1111', '\\x00')",
    ):
        with refused("42501", "permission denied for table payment_methods"):
            with db.as_user(conn, user_a):
                conn.execute(statement)
    with db.as_service(conn):
        assert conn.execute("select encrypted_details from payment_methods where id = %s", (pm,)).fetchone() == (
            b"\x8a\x01ciphertext",
        )
    assert conn.execute("select label from payment_methods where id = %s", (pm,)).fetchone() == ("MoMo",)
    assert conn.execute("select encrypted_details from payment_methods where id = %s", (own,)).fetchone() == (None,)


def test_a_user_cannot_see_change_or_add_another_users_methods(
    conn: psycopg.Connection[Any], user_a: uuid.UUID, user_b: uuid.UUID
) -> None:
    pm_b = add_method(conn, user_b)
    with db.as_user(conn, user_a):
        assert conn.execute("select count(*) from payment_methods").fetchone() == (0,)
        assert conn.execute("update payment_methods set label = 'mine' where id = %s", (pm_b,)).rowcount == 0
        assert conn.execute("delete from payment_methods where id = %s", (pm_b,)).rowcount == 0
    with refused("PD004", "not found"):
        with db.as_user(conn, user_a):
            pay.set_default_payment_method(conn, pm_b)
    with refused("42501", "row-level security"):
        with db.as_user(conn, user_a):
            conn.execute(
                "insert into payment_methods (user_id, type, provider, masked_number)"
                " values (%s, 'card', 'visa', '****1111')",
                (user_b,),
            )
    # the owner of a method never changes: no column privilege on user_id (on a Citus
    # coordinator, where user_id is the distribution column, Citus's planner refuses any change
    # of it before privileges are checked)
    state, why = ("0A000", "partition value") if shared_db.on_citus(conn) else ("42501", "permission denied")
    with refused(state, why):
        with db.as_user(conn, user_b):
            conn.execute("update payment_methods set user_id = %s where id = %s", (user_a, pm_b))
    assert conn.execute("select user_id, label, is_default from payment_methods").fetchall() == [
        (user_b, None, False)
    ]


@pytest.mark.parametrize(
    ("type_", "masked"),
    [("mobile_money", "+250788123456"), ("mobile_money", "0788123456"), ("card", "4242424242424242"),
     ("card", "1234"), ("card", "**** **** 4242 4242"), ("mobile_money", None)],
)
def test_only_masked_numbers_are_stored(
    conn: psycopg.Connection[Any], user_a: uuid.UUID, type_: str, masked: str | None
) -> None:
    with refused("23514", "payment_methods_masked_number"):
        with db.as_user(conn, user_a):
            pay.add_payment_method(conn, user_a, type_, "mtn_momo", masked)
    assert count(conn, "payment_methods") == 0


def test_mask_number_gives_what_the_table_accepts(conn: psycopg.Connection[Any], user_a: uuid.UUID) -> None:
    masked = pay.mask_number("+250 788 123 456")
    assert masked == "********3456"
    assert pay.mask_number("4242424242424242", visible=0) == "*" * 16
    with pytest.raises(pay.InvalidInput):
        pay.mask_number("12")
    add_method(conn, user_a, masked)
    with db.as_service(conn):
        pay.add_payment_method(conn, user_a, "cash", "cash", None)
    assert count(conn, "payment_methods") == 2


def test_at_most_one_default_per_user(conn: psycopg.Connection[Any], user_a: uuid.UUID, user_b: uuid.UUID) -> None:
    first = add_method(conn, user_a, is_default=True)
    second = add_method(conn, user_a, "********0001")
    add_method(conn, user_b, "********0002", is_default=True)  # another user's default is independent
    with refused("23505", "payment_methods_one_default_per_user"):
        with db.as_user(conn, user_a):
            conn.execute("update payment_methods set is_default = true where id = %s", (second,))
    with db.as_user(conn, user_a):
        assert pay.set_default_payment_method(conn, second) is True
        assert pay.set_default_payment_method(conn, second) is False
    defaults = conn.execute(
        "select id from payment_methods where user_id = %s and is_default", (user_a,)
    ).fetchall()
    assert defaults == [(second,)]
    assert conn.execute("select is_default from payment_methods where id = %s", (first,)).fetchone() == (False,)


def test_deactivating_wipes_the_details_and_a_used_method_cannot_be_deleted(
    conn: psycopg.Connection[Any], user_a: uuid.UUID
) -> None:
    pm = add_method(conn, user_a, encrypted_details=b"secret", is_default=True)
    tx = create(conn, user_a, 800, payment_method_id=pm)
    assert row(conn, tx)["payment_method_id"] == pm
    with refused("23503", "transactions_payment_method_fkey"):
        with db.as_user(conn, user_a):
            conn.execute("delete from payment_methods where id = %s", (pm,))
    with db.as_user(conn, user_a):
        assert pay.deactivate_payment_method(conn, pm) is True
    assert conn.execute(
        "select is_active, is_default, encrypted_details from payment_methods where id = %s", (pm,)
    ).fetchone() == (False, False, None)
    with refused("22023", "payment method .* is inactive"):
        create(conn, user_a, 900, payment_method_id=pm)
    assert count(conn, "transactions") == 1


def test_a_transaction_cannot_use_another_users_payment_method(
    conn: psycopg.Connection[Any], user_a: uuid.UUID, user_b: uuid.UUID
) -> None:
    pm_b = add_method(conn, user_b)
    with refused("PD004", "p_payment_method_id: no payment method"):
        create(conn, user_a, 100, payment_method_id=pm_b)
    # and the owner's direct insert is stopped by the (payment_method_id, user_id) key
    with refused("23503", "transactions_payment_method_fkey"):
        conn.execute(
            "insert into transactions (user_id, type, amount, payment_method_id) values (%s, 'payment', 1, %s)",
            (user_a, pm_b),
        )
    assert money_counts(conn) == (0, 0, 0, 0)


# ---- the migration pair ----------------------------------------------------------------


def test_up_down_up_of_this_migration_restores_the_catalog(new_db_url: str, tmp_path: Path) -> None:
    d = tmp_path / "m"
    d.mkdir()
    for f in migrate.default_dir().iterdir():
        if f.name.startswith(("20260401100000_", "20260401120000_")):
            shutil.copy(f, d / f.name)
    migrate.up(new_db_url, d, to="20260401100000")
    with psycopg.connect(new_db_url, autocommit=True) as c:
        base = snapshot(c)
        base_settings = c.execute("select table_name from partition_settings order by 1").fetchall()
    migrate.up(new_db_url, d)
    with psycopg.connect(new_db_url, autocommit=True) as c:
        first = snapshot(c)
        assert c.execute("select retention from partition_settings where table_name = 'transactions'").fetchone() == (
            None,
        )
    assert [m.version for m in migrate.down(new_db_url, d)] == ["20260401120000"]
    with psycopg.connect(new_db_url, autocommit=True) as c:
        assert snapshot(c) == base
        assert c.execute("select table_name from partition_settings order by 1").fetchall() == base_settings
    migrate.up(new_db_url, d)
    with psycopg.connect(new_db_url, autocommit=True) as c:
        assert snapshot(c) == first
