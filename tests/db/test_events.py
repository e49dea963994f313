"""Event store (SPEC §3.5): versions, optimistic concurrency, idempotent appends, reads by
stream / category / globally, and a global reader that never skips a late commit."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import psycopg
import pytest

from platformdb import db
from platformdb.errors import IdempotencyConflict, InvalidInput, WrongExpectedVersion
from platformdb.sdk import events as ev
from tests import shared_db
from tests.helpers import count, raises_sqlstate, violated_constraint, wait_until_waiting_on_a_lock

Connect = Callable[..., psycopg.Connection[Any]]


@pytest.fixture
def svc(connect: Connect) -> psycopg.Connection[Any]:
    """A connection acting as the backend service for its whole session."""
    c = connect()
    c.execute("set role service_role")
    return c


def test_appends_get_consecutive_versions_and_increasing_positions(svc: psycopg.Connection[Any]) -> None:
    ids = [ev.append_event(svc, "trip", "t-1", f"trip.e{i}", {"i": i}) for i in range(3)]
    got = ev.get_aggregate_events(svc, "trip", "t-1")
    assert [e.id for e in got] == ids
    assert [e.event_version for e in got] == [1, 2, 3]
    positions = [e.global_position for e in got]
    assert positions == sorted(positions) and len(set(positions)) == 3
    assert ev.stream_version(svc, "trip", "t-1") == 3
    assert ev.stream_version(svc, "trip", "never") == 0
    assert [e.event_version for e in ev.get_aggregate_events(svc, "trip", "t-1", limit=2)] == [1, 2]


def test_expected_version_accepts_the_current_one_and_refuses_a_stale_one(
    svc: psycopg.Connection[Any], conn: psycopg.Connection[Any]
) -> None:
    ev.append_event(svc, "order", "o-1", "order.placed", {}, expected_version=0)
    ev.append_event(svc, "order", "o-1", "order.paid", {}, expected_version=1)
    with pytest.raises(WrongExpectedVersion) as info:
        ev.append_event(svc, "order", "o-1", "order.paid", {}, expected_version=1)
    assert info.value.sqlstate == "PD003"
    assert "wrong expected version" in info.value.message
    assert "expected 1, actual 2" in info.value.message
    # a new stream must be new
    with pytest.raises(WrongExpectedVersion, match="expected 0, actual 2"):
        ev.append_event(svc, "order", "o-1", "order.placed", {}, expected_version=0)
    assert count(conn, "public.event_store", "aggregate_id = 'o-1'") == 2
    assert ev.stream_version(svc, "order", "o-1") == 2


def test_two_appends_expecting_version_3_one_wins_the_other_is_told_wrong_expected_version(
    connect: Connect,
) -> None:
    a, b, watcher = connect(), connect(), connect()
    for c in (a, b):
        c.execute("set role service_role")
    for i in range(3):
        ev.append_event(a, "wallet", "w-1", "wallet.credited", {"n": i})
    assert ev.stream_version(a, "wallet", "w-1") == 3

    errors: list[BaseException] = []
    b_pid = b.info.backend_pid

    def second() -> None:
        try:
            with b.transaction():
                ev.append_event(b, "wallet", "w-1", "wallet.debited", {"by": "b"}, expected_version=3)
        except BaseException as exc:  # noqa: BLE001 - inspected below
            errors.append(exc)

    with a.transaction():
        ev.append_event(a, "wallet", "w-1", "wallet.debited", {"by": "a"}, expected_version=3)
        t = threading.Thread(target=second)
        t.start()
        wait_until_waiting_on_a_lock(watcher, b_pid)  # b waits on the stream head a holds
    t.join(10)
    assert len(errors) == 1 and isinstance(errors[0], WrongExpectedVersion)
    assert "wrong expected version" in str(errors[0]) and "expected 3, actual 4" in str(errors[0])
    events = ev.get_aggregate_events(a, "wallet", "w-1")
    assert [e.event_version for e in events] == [1, 2, 3, 4]
    assert events[-1].payload == {"by": "a"}


def test_sixteen_writers_with_expected_versions_make_a_stream_without_gaps_or_duplicates(
    connect: Connect, conn: psycopg.Connection[Any]
) -> None:
    writers, per_writer = 16, 5
    conns = [connect() for _ in range(writers)]
    for c in conns:
        c.execute("set role service_role")
    barrier = threading.Barrier(writers)
    conflicts = [0] * writers
    failures: list[BaseException] = []

    def write(i: int) -> None:
        c = conns[i]
        try:
            barrier.wait()
            done = 0
            while done < per_writer:
                version = ev.stream_version(c, "ride", "r-16")
                try:
                    ev.append_event(c, "ride", "r-16", "ride.ping", {"writer": i, "n": done}, expected_version=version)
                    done += 1
                except WrongExpectedVersion:
                    conflicts[i] += 1
        except BaseException as exc:  # noqa: BLE001
            failures.append(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not failures, failures
    rows = conn.execute(
        "select event_version, global_position from public.event_store"
        " where aggregate_id = 'r-16' order by event_version"
    ).fetchall()
    assert [r[0] for r in rows] == list(range(1, writers * per_writer + 1))
    positions = [r[1] for r in rows]
    assert positions == sorted(positions), "stream order and global order agree"
    assert sum(conflicts) > 0, "the writers really raced (some were told the stream moved)"
    assert ev.stream_version(conn, "ride", "r-16") == writers * per_writer


def test_a_global_reader_never_skips_an_event_committed_late_by_a_slower_writer(
    connect: Connect,
) -> None:
    slow, fast, reader = connect(), connect(), connect()
    for c in (slow, fast, reader):
        c.execute("set role service_role")
    start = ev.read_all(reader)
    checkpoint = start[-1].global_position if start else 0

    slow_tx = slow.transaction()
    slow_tx.__enter__()
    slow_id = ev.append_event(slow, "trip", "slow", "trip.requested", {})
    fast_id = ev.append_event(fast, "trip", "fast", "trip.requested", {})  # commits at once

    # Citus refuses, within one transaction, reading as another role the placements that the
    # SECURITY DEFINER append modified: there the slow writer reads its positions as the owner
    citus = shared_db.on_citus(reader)
    if citus:
        slow.execute("reset role")
    positions = dict(
        slow.execute(
            "select id, global_position from public.event_store where id = any(%s)",
            ([slow_id, fast_id],),
        ).fetchall()
    )
    if citus:
        slow.execute("set role service_role")
    assert positions[slow_id] < positions[fast_id], "the slow writer holds the earlier position"
    # the hazard is real: the later position is visible while the earlier one is not
    visible = reader.execute("select id from public.event_store where global_position > %s", (checkpoint,)).fetchall()
    assert [r[0] for r in visible] == [fast_id]

    # ... but the reader does not hand it out yet, nor through the category read
    assert [e.id for e in ev.read_all(reader, checkpoint)] == []
    assert [e.id for e in ev.read_category(reader, "trip", checkpoint)] == []

    slow_tx.__exit__(None, None, None)  # commit
    got = ev.read_all(reader, checkpoint)
    assert [e.id for e in got] == [slow_id, fast_id]
    assert [e.id for e in ev.read_category(reader, "trip", checkpoint)] == [slow_id, fast_id]


def test_a_writer_with_an_old_transaction_id_appending_late_is_not_skipped(connect: Connect) -> None:
    """An older transaction (smaller xid) taking a position after a younger one: a reader
    filtering on transaction ids alone would hand out the older one's event too early."""
    old, young, reader = connect(), connect(), connect()
    for c in (old, young, reader):
        c.execute("set role service_role")
    checkpoint = max([e.global_position for e in ev.read_all(reader)], default=0)

    with old.transaction():
        old.execute("select pg_current_xact_id()")  # the old transaction gets its xid first
        young_tx = young.transaction()
        young_tx.__enter__()
        young_id = ev.append_event(young, "order", "young", "order.placed", {})
        old_id = ev.append_event(old, "order", "old", "order.placed", {})
    # old committed (later position, older xid); young still in flight with the earlier position
    assert [e.id for e in ev.read_all(reader, checkpoint)] == []
    young_tx.__exit__(None, None, None)
    assert [e.id for e in ev.read_all(reader, checkpoint)] == [young_id, old_id]


def test_global_reads_refuse_a_snapshot_older_than_their_bound(svc: psycopg.Connection[Any]) -> None:
    with svc.transaction():
        svc.execute("set transaction isolation level repeatable read")
        with raises_sqlstate("0A000", "READ COMMITTED"):
            svc.execute("select * from public.read_all()")


def test_append_is_idempotent_by_event_id(svc: psycopg.Connection[Any], conn: psycopg.Connection[Any]) -> None:
    eid = uuid.uuid4()
    first = ev.append_event(svc, "trip", "t-idem", "trip.requested", {"x": 1}, event_id=eid)
    again = ev.append_event(
        svc, "trip", "t-idem", "trip.requested", {"x": 1}, event_id=eid, expected_version=0
    )  # a retry of a success succeeds
    assert first == again == eid
    assert count(conn, "public.event_store", f"id = '{eid}'") == 1
    assert ev.stream_version(svc, "trip", "t-idem") == 1
    with pytest.raises(IdempotencyConflict, match="another stream"):
        ev.append_event(svc, "trip", "t-other", "trip.requested", {"x": 1}, event_id=eid)
    assert ev.stream_version(svc, "trip", "t-other") == 0


def test_append_events_writes_a_batch_atomically(svc: psycopg.Connection[Any], conn: psycopg.Connection[Any]) -> None:
    ids = [uuid.uuid4() for _ in range(3)]
    batch = [ev.NewEvent(f"order.e{i}", {"i": i}, event_id=ids[i]) for i in range(3)]
    out = ev.append_events(svc, "order", "o-batch", batch, expected_version=0)
    assert [a.id for a in out] == ids
    assert [a.event_version for a in out] == [1, 2, 3]
    assert [a.global_position for a in out] == sorted(a.global_position for a in out)
    # a retried batch returns the same events and writes nothing
    assert ev.append_events(svc, "order", "o-batch", batch, expected_version=0) == out
    # a stale batch writes nothing
    with pytest.raises(WrongExpectedVersion, match="expected 1, actual 3"):
        ev.append_events(svc, "order", "o-batch", [ev.NewEvent("order.x", {})] * 2, expected_version=1)
    # a batch overlapping an earlier one is a conflict
    with pytest.raises(IdempotencyConflict):
        ev.append_events(svc, "order", "o-batch", [batch[0], ev.NewEvent("order.y", {})])
    assert count(conn, "public.event_store", "aggregate_id = 'o-batch'") == 3
    assert ev.stream_version(svc, "order", "o-batch") == 3


def test_the_stream_version_holds_across_monthly_partitions(
    svc: psycopg.Connection[Any], conn: psycopg.Connection[Any]
) -> None:
    ev.append_event(svc, "wallet", "w-months", "wallet.opened", {})
    # the owner moves the first event into last month's partition (the DEFAULT one here)
    # (a value, not `created_at - interval`: Citus refuses a STABLE expression over a column in an UPDATE)
    (created,) = conn.execute("select created_at from public.event_store where aggregate_id = 'w-months'").fetchone()
    conn.execute(
        "update public.event_store set created_at = %s where aggregate_id = 'w-months'",
        (created - timedelta(days=35),),
    )
    ev.append_event(svc, "wallet", "w-months", "wallet.credited", {}, expected_version=1)
    with pytest.raises(WrongExpectedVersion, match="expected 1, actual 2"):
        ev.append_event(svc, "wallet", "w-months", "wallet.credited", {}, expected_version=1)
    parts = conn.execute(
        "select event_version, tableoid::regclass::text from public.event_store"
        " where aggregate_id = 'w-months' order by event_version"
    ).fetchall()
    assert [p[0] for p in parts] == [1, 2]
    assert parts[0][1] != parts[1][1], "the two events live in different partitions"
    assert [e.event_version for e in ev.read_stream(svc, "wallet", "w-months")] == [1, 2]


def test_the_event_store_is_append_only_even_for_a_role_granted_update(
    conn: psycopg.Connection[Any], svc: psycopg.Connection[Any]
) -> None:
    eid = ev.append_event(svc, "trip", "t-ro", "trip.requested", {})
    with raises_sqlstate("42501"):
        svc.execute("update public.event_store set event_type = 'x' where id = %s", (eid,))
    with raises_sqlstate("42501"):
        svc.execute("delete from public.event_store where id = %s", (eid,))
    if shared_db.on_citus(conn):
        # Citus refuses, in one transaction, the GRANT's change of the shards by the owner followed
        # by writes to them as another role: the grant is committed first and taken back after
        conn.execute("grant update, delete on public.event_store to service_role")
        try:
            with conn.transaction(force_rollback=True):
                conn.execute("set local role service_role")
                with raises_sqlstate("PD006", "append-only"), conn.transaction():
                    conn.execute("update public.event_store set event_type = 'x' where id = %s", (eid,))
                with raises_sqlstate("PD006", "append-only"), conn.transaction():
                    conn.execute("delete from public.event_store where id = %s", (eid,))
        finally:
            conn.execute("revoke update, delete on public.event_store from service_role")
    else:
        with conn.transaction(force_rollback=True):
            conn.execute("grant update, delete on public.event_store to service_role")
            conn.execute("set local role service_role")
            with raises_sqlstate("PD006", "append-only"), conn.transaction():
                conn.execute("update public.event_store set event_type = 'x' where id = %s", (eid,))
            with raises_sqlstate("PD006", "append-only"), conn.transaction():
                conn.execute("delete from public.event_store where id = %s", (eid,))
    assert ev.get_aggregate_events(svc, "trip", "t-ro")[0].event_type == "trip.requested"


def test_read_stream_and_read_category_read_after_the_given_point(svc: psycopg.Connection[Any]) -> None:
    for i in range(4):
        ev.append_event(svc, "trip", "t-rs", "trip.e", {"i": i})
    ev.append_event(svc, "order", "o-rs", "order.e", {})
    assert [e.event_version for e in ev.read_stream(svc, "trip", "t-rs", from_version=2)] == [3, 4]
    assert [e.event_version for e in ev.read_stream(svc, "trip", "t-rs", 1, limit=2)] == [2, 3]
    trips = ev.read_category(svc, "trip")
    assert {e.aggregate_type for e in trips} == {"trip"} and len(trips) == 4
    after = ev.read_category(svc, "trip", from_position=trips[1].global_position)
    assert [e.event_version for e in after] == [3, 4]
    everything = ev.read_all(svc)
    assert len(everything) == 5
    assert [e.global_position for e in everything] == sorted(e.global_position for e in everything)
    assert len(ev.read_all(svc, everything[2].global_position, limit=1)) == 1


def test_a_catch_up_subscription_resumes_from_its_checkpoint(svc: psycopg.Connection[Any]) -> None:
    for i in range(5):
        ev.append_event(svc, "trip", f"t-sub-{i % 2}", "trip.e", {"i": i})
    seen: list[int] = []
    assert ev.catch_up(svc, "projections.trips", lambda e: seen.append(e.payload["i"]), batch_size=2) == 5
    assert seen == [0, 1, 2, 3, 4]
    last = ev.read_all(svc)[-1].global_position
    assert ev.get_checkpoint(svc, "projections.trips") == last
    ev.append_event(svc, "trip", "t-sub-0", "trip.e", {"i": 5})
    assert ev.catch_up(svc, "projections.trips", lambda e: seen.append(e.payload["i"])) == 1
    assert seen[-1] == 5
    # checkpoints move forward only, unless rewound on purpose
    assert ev.save_checkpoint(svc, "projections.trips", 1) > 1
    assert ev.save_checkpoint(svc, "projections.trips", 1, allow_rewind=True) == 1


def test_a_failing_subscriber_keeps_its_checkpoint(svc: psycopg.Connection[Any]) -> None:
    for i in range(3):
        ev.append_event(svc, "trip", "t-fail", "trip.e", {"i": i})

    def boom(e: ev.Event) -> None:
        if e.payload["i"] == 1:
            raise RuntimeError("projection bug")

    with pytest.raises(RuntimeError):
        ev.catch_up(svc, "projections.failing", boom)
    assert ev.get_checkpoint(svc, "projections.failing") == 0


@pytest.mark.parametrize(
    ("kwargs", "state", "message"),
    [
        ({"aggregate_type": ""}, "22004", "p_aggregate_type must not be empty"),
        ({"aggregate_id": ""}, "22004", "p_aggregate_id must not be empty"),
        ({"aggregate_id": "x" * 201}, "22023", "p_aggregate_id must be at most 200"),
        ({"event_type": ""}, "22004", "p_event_type must not be empty"),
        ({"expected_version": -1}, "22003", "p_expected_version must be >= 0"),
        ({"payload": {"blob": "x" * 1_100_000}}, "22023", "p_payload is too large"),
        ({"metadata": {"blob": "x" * 70_000}}, "22023", "p_metadata must be a JSON object"),
    ],
)
def test_bad_appends_are_refused_with_a_named_parameter_and_write_nothing(
    svc: psycopg.Connection[Any], conn: psycopg.Connection[Any], kwargs: dict[str, Any], state: str, message: str
) -> None:
    args: dict[str, Any] = {"aggregate_type": "trip", "aggregate_id": "t-bad", "event_type": "e", "payload": {}}
    args.update(kwargs)
    with pytest.raises(InvalidInput) as info:
        ev.append_event(
            svc,
            args.pop("aggregate_type"),
            args.pop("aggregate_id"),
            args.pop("event_type"),
            args.pop("payload"),
            **args,
        )
    assert info.value.sqlstate == state and message in info.value.message
    assert count(conn, "public.event_store") == 0
    assert count(conn, "public.event_streams") == 0


def test_a_payload_that_is_not_an_object_is_refused(svc: psycopg.Connection[Any]) -> None:
    with raises_sqlstate("22023", "p_payload must be a JSON object"):
        svc.execute("select public.append_event('t', 'trip', 'e', '[1, 2]'::jsonb)")
    with raises_sqlstate("22004", "p_payload must not be null"):
        svc.execute("select public.append_event('t', 'trip', 'e', null)")


@pytest.mark.parametrize(
    ("query", "state"),
    [
        ("select * from public.read_all(p_from_position => -1)", "22003"),
        ("select * from public.read_all(p_limit => 0)", "22003"),
        ("select * from public.read_all(p_limit => 10001)", "22003"),
        ("select * from public.read_category(p_aggregate_type => '')", "22004"),
        ("select * from public.read_stream('trip', 't', -1)", "22003"),
        ("select * from public.get_aggregate_events('trip', 't', 0)", "22003"),
        ("select * from public.get_aggregate_events(null, 't')", "22004"),
        ("select * from public.append_events('trip', 't', '[]')", "22003"),
        # nulls and wrong JSON types fail the one-expression test of a valid append: the
        # checks one by one then name them
        ("select public.append_event('t', null, 'e', '{}')", "22004"),
        ("select public.append_event(null, 'trip', 'e', '{}')", "22004"),
        ("select public.append_event('t', 'trip', null, '{}')", "22004"),
        ("select public.append_event('t', 'trip', 'e', '{}', p_metadata => '[]')", "22023"),
        ("select public.append_event('t', 'trip', 'e', '\"x\"')", "22023"),
        ("select * from public.append_events('trip', 't', '{}')", "22023"),
        ("select * from public.append_events('trip', 't', '[{\"event_type\": \"e\"}]')", "22004"),
        ("select public.save_subscription_checkpoint('s', -5)", "22003"),
    ],
)
def test_bad_reads_and_batches_are_refused(svc: psycopg.Connection[Any], query: str, state: str) -> None:
    with raises_sqlstate(state):
        svc.execute(query)


GOOD = '{"event_type": "trip.moved", "payload": {"n": 1}}'
LATER_BAD = '{"event_type": "", "payload": 5}'  # after the first bad element: never reported


@pytest.mark.parametrize(
    ("bad", "state", "message"),
    [
        ('"x"', "22023", "every element must be an object"),
        ('{"payload": {}}', "22004", "p_event_type must not be empty"),
        ('{"event_type": null, "payload": {}}', "22004", "p_event_type must not be empty"),
        ('{"event_type": "' + "e" * 201 + '", "payload": {}}', "22023", "p_event_type must be at most 200"),
        ('{"event_type": "e"}', "22004", "p_payload must not be null"),
        ('{"event_type": "e", "payload": null}', "22023", "p_payload must be a JSON object, got null"),
        ('{"event_type": "e", "payload": []}', "22023", "p_payload must be a JSON object, got array"),
        ('{"event_type": "e", "payload": {}, "metadata": null}', "22023", "p_metadata must be a JSON object"),
        ('{"event_type": "e", "payload": {}, "metadata": [1]}', "22023", "p_metadata must be a JSON object"),
        ('{"event_type": "e", "payload": {}, "event_id": "nope"}', "22023", "event_id nope is not a uuid"),
    ],
)
def test_a_batch_is_refused_for_its_first_bad_event_and_writes_nothing(
    svc: psycopg.Connection[Any], conn: psycopg.Connection[Any], bad: str, state: str, message: str
) -> None:
    """One pass finds the first bad element (20260401330000); its checks one by one raise its
    own error, as the loop over every element did: the same SQLSTATE and message for the
    first bad element, whatever follows it, and not a row written."""
    for batch in (f"[{bad}]", f"[{GOOD}, {GOOD}, {bad}, {LATER_BAD}, {GOOD}]"):
        with raises_sqlstate(state) as info:
            svc.execute("select * from public.append_events('trip', 't', %s::jsonb)", (batch,))
        assert message in str(info.value), str(info.value)
    assert count(conn, "public.event_store") == 0 and count(conn, "public.event_streams") == 0


@pytest.mark.parametrize(
    ("aggregate_type", "aggregate_id", "state", "message"),
    [
        ("", "t", "22004", "p_aggregate_type must not be empty"),
        ("t" * 101, "t", "22023", "p_aggregate_type must be at most 100"),
        ("trip", "", "22004", "p_aggregate_id must not be empty"),
        ("trip", "t" * 201, "22023", "p_aggregate_id must be at most 200"),
    ],
)
def test_a_batch_to_a_bad_stream_name_is_refused_at_its_first_event(
    svc: psycopg.Connection[Any],
    conn: psycopg.Connection[Any],
    aggregate_type: str,
    aggregate_id: str,
    state: str,
    message: str,
) -> None:
    """The stream's names are checked with the first element, after that element's own shape
    (a first element that is not an object is reported as such, as before)."""
    with raises_sqlstate(state, message):
        svc.execute(
            "select * from public.append_events(%s, %s, %s::jsonb)", (aggregate_type, aggregate_id, f"[{GOOD}, 7]")
        )
    with raises_sqlstate("22023", "every element must be an object"):
        svc.execute(
            "select * from public.append_events(%s, %s, %s::jsonb)", (aggregate_type, aggregate_id, f"[7, {GOOD}]")
        )
    assert count(conn, "public.event_store") == 0


def test_a_signed_in_user_reads_only_the_events_about_them(
    svc: psycopg.Connection[Any], conn: psycopg.Connection[Any], user_a: uuid.UUID, user_b: uuid.UUID
) -> None:
    ev.append_event(svc, "trip", "t-shared", "trip.requested", {"rider": "a"}, user_id=user_a)
    ev.append_event(svc, "trip", "t-shared", "trip.accepted", {"driver": "b"}, user_id=user_b)
    ev.append_event(svc, "trip", "t-shared", "trip.priced", {})
    with db.as_user(conn, user_a):
        mine = ev.get_aggregate_events(conn, "trip", "t-shared")
        assert [e.event_type for e in mine] == ["trip.requested"]
        assert [e.event_type for e in ev.read_stream(conn, "trip", "t-shared")] == ["trip.requested"]
    with db.as_user(conn, user_b):
        assert [e.event_type for e in ev.get_aggregate_events(conn, "trip", "t-shared")] == ["trip.accepted"]


@pytest.mark.parametrize("role", ["anon", "authenticated"])
@pytest.mark.parametrize(
    "query",
    [
        "select public.append_event('x', 'trip', 'e', '{}')",
        "select * from public.append_events('trip', 'x', '[]')",
        "select * from public.read_all()",
        "select * from public.read_category('trip')",
        "select public.event_store_safe_position()",
        "select public.save_subscription_checkpoint('s', 1)",
        "select public.stream_version('trip', 'x')",
    ],
)
def test_users_cannot_append_or_follow_the_global_log(
    conn: psycopg.Connection[Any], user_a: uuid.UUID, role: str, query: str
) -> None:
    with raises_sqlstate("42501"), db.acting_as(conn, role, user_a if role == "authenticated" else None):
        conn.execute(query)
    assert count(conn, "public.event_store") == 0


def test_anon_cannot_read_streams_at_all(conn: psycopg.Connection[Any]) -> None:
    with raises_sqlstate("42501"), db.as_anon(conn):
        conn.execute("select * from public.get_aggregate_events('trip', 'x')")


def test_event_store_is_partitioned_and_kept_forever(conn: psycopg.Connection[Any]) -> None:
    row = conn.execute(
        "select months_ahead, retention from public.partition_settings where table_name = 'event_store'"
    ).fetchone()
    assert row == (3, None)
    parts = conn.execute(
        "select c.relname, c.relrowsecurity from pg_inherits i join pg_class c on c.oid = i.inhrelid"
        " where i.inhparent = 'public.event_store'::regclass"
    ).fetchall()
    assert any(name == "event_store_default" for name, _ in parts)
    assert len(parts) >= 5 and all(rls for _, rls in parts)


# ---- the tables' own checks (20260401290000: on domains, under the same names) ---------

EVENT_ROW = {
    "global_position": "nextval('public.event_store_global_position_seq')",
    "aggregate_type": "'trip'",
    "aggregate_id": "'t-1'",
    "event_type": "'trip.e'",
    "event_version": "1",
    "payload": "'{}'",
}


@pytest.mark.parametrize(
    ("column", "value", "constraint"),
    [
        ("aggregate_type", "''", "event_store_aggregate_type_length"),
        ("aggregate_type", "repeat('t', 101)", "event_store_aggregate_type_length"),
        ("aggregate_id", "''", "event_store_aggregate_id_length"),
        ("aggregate_id", "repeat('a', 201)", "event_store_aggregate_id_length"),
        ("event_type", "''", "event_store_event_type_length"),
        ("event_type", "repeat('e', 201)", "event_store_event_type_length"),
        ("event_version", "0", "event_store_event_version_positive"),
        ("global_position", "0", "event_store_global_position_positive"),
        ("payload", "'[]'", "event_store_payload_object"),
        ("payload", "('{\"a\": \"' || repeat('x', 1100000) || '\"}')::jsonb", "event_store_payload_object"),
        ("metadata", "'\"x\"'", "event_store_metadata_object"),
        ("metadata", "('{\"a\": \"' || repeat('x', 70000) || '\"}')::jsonb", "event_store_metadata_object"),
    ],
)
def test_the_event_store_itself_refuses_a_bad_row_by_its_named_check(
    conn: psycopg.Connection[Any], column: str, value: str, constraint: str
) -> None:
    """The table's owner (append_event writes as it) cannot store a bad event either: the
    one-column checks live on the columns' domains (aggregate_id's on the table: it is the
    distribution column on Citus), each under its name, with SQLSTATE 23514."""
    row = {**EVENT_ROW, column: value}
    with pytest.raises(psycopg.errors.CheckViolation) as info:
        conn.execute(f"insert into public.event_store ({', '.join(row)}) values ({', '.join(row.values())})")
    assert violated_constraint(info.value) == constraint
    assert count(conn, "public.event_store") == 0
    # the same row with a good value is stored (the failure was the value, not the statement)
    conn.execute(f"insert into public.event_store ({', '.join(EVENT_ROW)}) values ({', '.join(EVENT_ROW.values())})")
    assert count(conn, "public.event_store") == 1


def test_a_stream_head_below_one_is_refused_by_its_named_check(
    svc: psycopg.Connection[Any], conn: psycopg.Connection[Any]
) -> None:
    ev.append_event(svc, "trip", "t-1", "trip.e", {})
    for sql in (
        "update public.event_streams set version = 0 where aggregate_id = 't-1'",
        "insert into public.event_streams (aggregate_type, aggregate_id, version) values ('trip', 't-2', 0)",
    ):
        with pytest.raises(psycopg.errors.CheckViolation) as info:
            conn.execute(sql)
        assert violated_constraint(info.value) == "event_streams_version_positive"
    assert conn.execute("select aggregate_id, version from public.event_streams").fetchall() == [("t-1", 1)]


def test_the_readers_return_the_types_they_declare(svc: psycopg.Connection[Any]) -> None:
    """The columns are domains now; what the functions return is still text, integer, bigint
    and jsonb (RETURN QUERY would refuse a domain where its base type is declared)."""
    ev.append_event(svc, "trip", "t-1", "trip.e", {"n": 1}, metadata={"m": 1})
    want = ["text", "integer", "jsonb", "text", "text", "jsonb", "bigint"]
    columns = "event_type, event_version, payload, aggregate_type, aggregate_id, metadata, global_position"
    typed = ", ".join(f"pg_typeof({c})::text" for c in columns.split(", "))
    for source in (
        "public.read_stream('trip', 't-1')",
        "public.get_aggregate_events('trip', 't-1')",
        "public.read_category('trip')",
        "public.read_all()",
    ):
        assert svc.execute(f"select {typed} from {source}").fetchall() == [tuple(want)], source
    got = svc.execute(
        "select pg_typeof(event_version)::text, pg_typeof(global_position)::text"
        " from public.append_events('trip', 't-1', '[{\"event_type\": \"trip.f\", \"payload\": {}}]')"
    ).fetchall()
    assert got == [("integer", "bigint")]
    stats = svc.execute(
        "select pg_typeof(aggregate_type)::text, pg_typeof(event_count)::text, pg_typeof(longest_stream)::text"
        " from public.event_store_stats"
    ).fetchall()
    assert stats == [("text", "bigint", "integer")]
