"""§3.2 WhatsApp: sessions, the outbound queue (claim, lease, retry, statuses), inbound
messages, views, security and bad input — against a real PostgreSQL."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from platformdb import db, errors
from platformdb.sdk import whatsapp as wa
from tests.helpers import count, raises_sqlstate, refused_by_its_name

PHONE = "+250788123456"
OTHER_PHONE = "+250722000111"
NOW = datetime.now(UTC)

Connect = Callable[..., psycopg.Connection[Any]]


def _session(conn: psycopg.Connection[Any], phone: str = PHONE) -> dict[str, Any]:
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        row = cur.execute("select * from whatsapp_sessions where phone_number = %s", (phone,)).fetchone()
    assert row is not None, f"no session for {phone}"
    return row


def _message(conn: psycopg.Connection[Any], mid: uuid.UUID) -> dict[str, Any]:
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        row = cur.execute("select * from whatsapp_message_queue where id = %s", (mid,)).fetchone()
    assert row is not None
    return row


def _enqueue(conn: psycopg.Connection[Any], phone: str = PHONE, body: str = "Muraho", **kw: Any) -> uuid.UUID:
    with db.as_service(conn):
        return wa.enqueue_message(conn, phone, "text", {"body": body}, **kw)


def _claim(
    conn: psycopg.Connection[Any], limit: int = 50, lease: int = 60, worker: str = "w1"
) -> list[wa.OutboundMessage]:
    with db.as_service(conn):
        return wa.claim_messages(conn, limit, lease, worker)


def _sent(conn: psycopg.Connection[Any], phone: str = PHONE, wa_id: str = "wamid.1") -> uuid.UUID:
    mid = _enqueue(conn, phone)
    [m] = _claim(conn)
    with db.as_service(conn):
        wa.mark_sent(conn, m.id, wa_id)
    return mid


def _expire_leases(conn: psycopg.Connection[Any]) -> None:
    """Move time past every lease (the owner may; a lease is just a timestamp)."""
    conn.execute(
        "update whatsapp_message_queue set locked_until = now() - interval '1 second' where status = 'processing'"
    )


# ---- sessions -------------------------------------------------------------------------


def test_activity_creates_a_session_then_counts_and_extends_it(conn: psycopg.Connection[Any]) -> None:
    with db.as_service(conn):
        sid = wa.update_session_activity(conn, PHONE)
    s = _session(conn)
    assert s["id"] == sid and s["status"] == "active" and s["message_count"] == 1
    assert s["conversation_state"] == "idle" and s["context"] == {}
    assert len(s["session_token"]) == 64
    first_expiry = s["expires_at"]
    assert timedelta(hours=23, minutes=59) < first_expiry - s["last_activity_at"] <= timedelta(hours=24)

    with db.as_service(conn):
        assert wa.update_session_activity(conn, PHONE) == sid
        assert wa.update_session_activity(conn, PHONE, increment_message_count=False) == sid
    s = _session(conn)
    assert s["message_count"] == 2
    assert s["expires_at"] >= first_expiry
    assert count(conn, "whatsapp_sessions") == 1


def test_activity_sets_state_merges_context_and_keeps_the_profile_name(conn: psycopg.Connection[Any]) -> None:
    with db.as_service(conn):
        wa.update_session_activity(conn, PHONE, context={"lang": "rw"}, profile_name="Aline")
        wa.update_session_activity(
            conn, PHONE, False, conversation_state="ride.awaiting_pickup", context={"ride": "r-1"}
        )
    s = _session(conn)
    assert s["conversation_state"] == "ride.awaiting_pickup"
    assert s["context"] == {"lang": "rw", "ride": "r-1"}
    assert s["profile_name"] == "Aline"


def test_concurrent_first_messages_create_one_session(connect: Connect) -> None:
    n = 6
    barrier = threading.Barrier(n)
    ids: list[uuid.UUID] = []
    failures: list[BaseException] = []

    def one() -> None:
        c = connect()
        try:
            barrier.wait()
            with db.as_service(c):
                ids.append(wa.update_session_activity(c, PHONE))
        except BaseException as exc:  # surfaced below
            failures.append(exc)

    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures
    assert len(set(ids)) == 1
    owner = connect()
    assert count(owner, "whatsapp_sessions") == 1
    assert _session(owner)["message_count"] == n


@pytest.mark.parametrize(
    "phone", ["0788123456", "250788123456", "+0788123456", "+25078", "+2507881234567890", "+25078812345a", ""]
)
def test_activity_refuses_non_e164_numbers(conn: psycopg.Connection[Any], phone: str) -> None:
    with raises_sqlstate("22023", "p_phone_number must be an E.164 phone number"):
        with db.as_service(conn):
            conn.execute("select update_whatsapp_session_activity(p_phone_number => %s)", (phone,))
    assert count(conn, "whatsapp_sessions") == 0


@pytest.mark.parametrize(
    ("args", "state", "match"),
    [
        ({"p_phone_number": None}, "22004", "p_phone_number must not be null"),
        ({"p_phone_number": PHONE, "p_increment_message_count": None}, "22004", "p_increment_message_count"),
        ({"p_phone_number": PHONE, "p_context": "[1]"}, "22023", "p_context must be a JSON object"),
        ({"p_phone_number": PHONE, "p_conversation_state": ""}, "22023", "p_conversation_state"),
        ({"p_phone_number": PHONE, "p_session_ttl": "10 seconds"}, "22023", "p_session_ttl"),
        ({"p_phone_number": PHONE, "p_context": json.dumps({"x": "y" * 20000})}, "22023", "p_context is too large"),
    ],
)
def test_activity_refuses_bad_arguments(
    conn: psycopg.Connection[Any], args: dict[str, Any], state: str, match: str
) -> None:
    casts = {"p_increment_message_count": "boolean", "p_context": "jsonb", "p_session_ttl": "interval"}
    named = ", ".join(f"{k} => %({k})s::{casts.get(k, 'text')}" for k in args)
    with raises_sqlstate(state, match):
        with db.as_service(conn):
            conn.execute(f"select update_whatsapp_session_activity({named})", args)
    assert count(conn, "whatsapp_sessions") == 0


def test_expiry_cleanup_and_comeback(conn: psycopg.Connection[Any]) -> None:
    with db.as_service(conn):
        wa.update_session_activity(conn, PHONE, conversation_state="ride.quote", context={"ride": "r-9"})
        wa.update_session_activity(conn, OTHER_PHONE)
        wa.update_session_activity(conn, "+250733000222")
        wa.set_session_status(conn, "+250733000222", "suspended", "abuse report")
    old_token = _session(conn)["session_token"]
    conn.execute(
        "update whatsapp_sessions set expires_at = now() - interval '1 minute' where phone_number <> %s",
        (OTHER_PHONE,),
    )
    with db.as_service(conn):
        assert wa.cleanup_expired_sessions(conn) == 1  # not the suspended one, not the fresh one
        assert wa.cleanup_expired_sessions(conn) == 0
    s = _session(conn)
    assert s["status"] == "expired" and s["session_token"] != old_token
    assert s["conversation_state"] == "idle" and s["context"] == {}
    assert _session(conn, OTHER_PHONE)["status"] == "active"
    assert _session(conn, "+250733000222")["status"] == "suspended"

    expired_token = s["session_token"]
    with db.as_service(conn):
        wa.update_session_activity(conn, PHONE, context={"lang": "en"})
    s = _session(conn)
    assert s["status"] == "active" and s["session_token"] != expired_token
    assert s["context"] == {"lang": "en"} and s["expires_at"] > NOW


def test_a_session_past_expiry_restarts_even_before_cleanup_ran(conn: psycopg.Connection[Any]) -> None:
    with db.as_service(conn):
        wa.update_session_activity(conn, PHONE, conversation_state="market.browsing", context={"cart": 3})
    token = _session(conn)["session_token"]
    conn.execute("update whatsapp_sessions set expires_at = now() - interval '1 second'")
    with db.as_service(conn):
        wa.update_session_activity(conn, PHONE)
    s = _session(conn)
    assert s["session_token"] != token and s["conversation_state"] == "idle" and s["context"] == {}


def test_suspension_is_kept_when_the_user_writes_again(conn: psycopg.Connection[Any]) -> None:
    with db.as_service(conn):
        wa.update_session_activity(conn, PHONE)
        assert wa.set_session_status(conn, PHONE, "suspended", "spam")
        assert not wa.set_session_status(conn, PHONE, "suspended")
        wa.update_session_activity(conn, PHONE)
    s = _session(conn)
    assert s["status"] == "suspended" and s["status_reason"] == "spam" and s["message_count"] == 2


def test_set_session_status_refuses_unknown_status_and_missing_session(conn: psycopg.Connection[Any]) -> None:
    with db.as_service(conn):
        wa.update_session_activity(conn, PHONE)
    with pytest.raises(errors.InvalidInput, match="p_status: unknown session status"):
        with db.as_service(conn):
            wa.set_session_status(conn, PHONE, "banned")
    with pytest.raises(errors.NotFound, match="no WhatsApp session"):
        with db.as_service(conn):
            wa.set_session_status(conn, OTHER_PHONE, "inactive")
    assert _session(conn)["status"] == "active"


def test_a_user_reads_their_own_session_but_never_its_token(
    conn: psycopg.Connection[Any], user_a: uuid.UUID, user_b: uuid.UUID
) -> None:
    with db.as_service(conn):
        wa.link_session_user(conn, PHONE, user_a)
        wa.update_session_activity(conn, OTHER_PHONE)
    with db.as_user(conn, user_a):
        mine = wa.my_sessions(conn)
    assert [s["phone_number"] for s in mine] == [PHONE]
    assert "session_token" not in mine[0]
    with db.as_user(conn, user_b):
        assert wa.my_sessions(conn) == []
    with raises_sqlstate("42501", "permission denied"):
        with db.as_user(conn, user_a):
            conn.execute("select session_token from whatsapp_sessions")
    with raises_sqlstate("42501", "permission denied"):
        with db.as_user(conn, user_a):
            conn.execute("select * from whatsapp_sessions")
    with raises_sqlstate("42501", "permission denied"):
        with db.as_anon(conn):
            conn.execute("select phone_number from whatsapp_sessions")


def test_linking_creates_or_relinks_and_null_unlinks(
    conn: psycopg.Connection[Any], user_a: uuid.UUID, user_b: uuid.UUID
) -> None:
    with db.as_service(conn):
        sid = wa.link_session_user(conn, PHONE, user_a)
        assert wa.link_session_user(conn, PHONE, user_b) == sid
    assert _session(conn)["user_id"] == user_b and _session(conn)["message_count"] == 0
    with db.as_service(conn):
        wa.link_session_user(conn, PHONE, None)
    assert _session(conn)["user_id"] is None
    with raises_sqlstate("22023", "E.164"):
        with db.as_service(conn):
            wa.link_session_user(conn, "0788123456", user_a)


CALLS = {
    "update_whatsapp_session_activity": "select update_whatsapp_session_activity(p_phone_number => '+250788123456')",
    "enqueue_whatsapp_message": """select enqueue_whatsapp_message(p_recipient_phone => '+250788123456',
        p_message_type => 'text', p_message_payload => '{"body": "x"}')""",
    "claim_whatsapp_messages": "select * from claim_whatsapp_messages()",
    "cleanup_expired_whatsapp_sessions": "select cleanup_expired_whatsapp_sessions()",
    "apply_whatsapp_status": "select apply_whatsapp_status('wamid.x', 'read', now())",
    "link_whatsapp_session_user": "select link_whatsapp_session_user('+250788123456', auth.uid())",
    "record_whatsapp_inbound_message": """select * from record_whatsapp_inbound_message('wamid.x',
        '+250788123456', 'text', '{}')""",
    "purge_whatsapp_history": "select purge_whatsapp_history()",
}


@pytest.mark.parametrize("role", ["anon", "authenticated"])
@pytest.mark.parametrize("fn", sorted(CALLS))
def test_functions_are_refused_to_anon_and_users(conn: psycopg.Connection[Any], role: str, fn: str) -> None:
    with raises_sqlstate("42501", f"permission denied for function {fn}"):
        with db.acting_as(conn, role, uuid.uuid4() if role == "authenticated" else None):
            conn.execute(CALLS[fn])
    assert count(conn, "whatsapp_sessions") == 0 and count(conn, "whatsapp_message_queue") == 0


def test_purge_is_for_the_table_owner_only(conn: psycopg.Connection[Any]) -> None:
    with raises_sqlstate("42501", "permission denied for function purge_whatsapp_history"):
        with db.as_service(conn):
            conn.execute(CALLS["purge_whatsapp_history"])


@pytest.mark.parametrize("view", ["whatsapp_session_stats", "whatsapp_queue_stats"])
@pytest.mark.parametrize("role", ["anon", "authenticated"])
def test_views_are_for_services(conn: psycopg.Connection[Any], view: str, role: str) -> None:
    with raises_sqlstate("42501", "permission denied"):
        with db.acting_as(conn, role, uuid.uuid4() if role == "authenticated" else None):
            conn.execute(f"select * from {view}")


# ---- enqueue --------------------------------------------------------------------------

VALID_PAYLOADS = [
    ("text", {"body": "Your driver is on the way", "preview_url": False}),
    ("template", {"name": "ride_confirmed", "language": {"code": "en_US"}, "components": []}),
    ("media", {"media_type": "image", "link": "https://cdn.example.rw/receipt.png", "caption": "Receipt"}),
    ("media", {"media_type": "document", "id": "1013859600285441", "filename": "invoice.pdf"}),
    (
        "interactive",
        {
            "type": "button",
            "body": {"text": "Confirm?"},
            "action": {"buttons": [{"type": "reply", "reply": {"id": "yes", "title": "Yego"}}]},
        },
    ),
    ("location", {"latitude": -1.9441, "longitude": 30.0619, "name": "Kigali Heights"}),
]


@pytest.mark.parametrize(
    ("mtype", "payload"), VALID_PAYLOADS, ids=[f"{t}-{i}" for i, (t, _) in enumerate(VALID_PAYLOADS)]
)
def test_enqueue_accepts_each_documented_message_type(
    conn: psycopg.Connection[Any], mtype: str, payload: dict[str, Any]
) -> None:
    with db.as_service(conn):
        mid = wa.enqueue_message(conn, PHONE, mtype, payload, priority=3, correlation_id="c-1")
    m = _message(conn, mid)
    assert (m["message_type"], m["payload"], m["priority"], m["status"]) == (mtype, payload, 3, "pending")
    assert m["correlation_id"] == "c-1" and m["attempt"] == 0 and m["max_retries"] == 5


BAD = [
    ("text", {"body": ""}, "22023", r"p_message_payload\.body must be a string"),
    ("text", {"text": "hi"}, "22023", r"p_message_payload\.body"),
    ("text", {"body": "x" * 4097}, "22023", r"p_message_payload\.body"),
    ("template", {"name": "t"}, "22023", r"p_message_payload\.language"),
    ("media", {"media_type": "gif", "link": "https://x/y"}, "22023", r"p_message_payload\.media_type"),
    ("media", {"media_type": "image"}, "22023", "exactly one of id"),
    ("media", {"media_type": "image", "link": "ftp://x/y"}, "22023", r"p_message_payload\.link"),
    ("interactive", {"type": "carousel", "action": {}}, "22023", "unknown interactive type"),
    ("interactive", {"type": "list"}, "22023", r"p_message_payload\.action"),
    ("location", {"latitude": "x", "longitude": 30}, "22023", r"latitude and \.longitude must be numbers"),
    ("location", {"latitude": -91, "longitude": 30}, "22003", "latitude must be between -90 and 90"),
    ("location", {"latitude": -1.9, "longitude": 181}, "22003", "longitude must be between -180 and 180"),
    ("sms", {"body": "x"}, "22023", "p_message_type: unknown message type sms"),
    ("text", {"body": "x", "pad": "y" * 70000}, "22023", "p_message_payload is too large"),
]


@pytest.mark.parametrize(("mtype", "payload", "state", "match"), BAD, ids=[m for *_, m in BAD])
def test_enqueue_refuses_bad_payloads_and_writes_nothing(
    conn: psycopg.Connection[Any], mtype: str, payload: dict[str, Any], state: str, match: str
) -> None:
    with raises_sqlstate(state, match):
        with db.as_service(conn):
            conn.execute(
                "select enqueue_whatsapp_message(p_recipient_phone => %s, p_message_type => %s,"
                " p_message_payload => %s::jsonb)",
                (PHONE, mtype, json.dumps(payload)),
            )
    assert count(conn, "whatsapp_message_queue") == 0


@pytest.mark.parametrize(
    ("sql_args", "state", "match"),
    [
        ("p_recipient_phone => '0788123456'", "22023", "p_recipient_phone must be an E.164"),
        ("p_recipient_phone => null", "22004", "p_recipient_phone must not be null"),
        ("p_recipient_phone => '+250788123456', p_priority => 0", "22003", "p_priority must be between 1"),
        ("p_recipient_phone => '+250788123456', p_priority => 11", "22003", "p_priority must be between 1"),
        ("p_recipient_phone => '+250788123456', p_priority => null", "22004", "p_priority must not be null"),
        ("p_recipient_phone => '+250788123456', p_max_retries => 21", "22003", "p_max_retries"),
    ],
)
def test_enqueue_refuses_bad_arguments(conn: psycopg.Connection[Any], sql_args: str, state: str, match: str) -> None:
    with raises_sqlstate(state, match):
        with db.as_service(conn):
            conn.execute(
                f"select enqueue_whatsapp_message({sql_args}, p_message_type => 'text',"
                """ p_message_payload => '{"body": "x"}')"""
            )
    assert count(conn, "whatsapp_message_queue") == 0


def test_sdk_raises_the_project_exception_for_bad_input(conn: psycopg.Connection[Any]) -> None:
    with pytest.raises(errors.InvalidInput, match="E.164") as info:
        with db.as_service(conn):
            wa.send_text(conn, "0788123456", "x")
    assert info.value.sqlstate == "22023"


def test_enqueue_links_the_recipient_session_when_there_is_one(conn: psycopg.Connection[Any]) -> None:
    with db.as_service(conn):
        sid = wa.update_session_activity(conn, PHONE)
    assert _message(conn, _enqueue(conn, PHONE))["session_id"] == sid
    assert _message(conn, _enqueue(conn, OTHER_PHONE))["session_id"] is None


def test_idempotency_key_returns_the_same_message_and_refuses_a_different_one(conn: psycopg.Connection[Any]) -> None:
    a = _enqueue(conn, idempotency_key="ride-42-confirm")
    assert _enqueue(conn, idempotency_key="ride-42-confirm") == a
    with raises_sqlstate("PD001", "p_idempotency_key ride-42-confirm was already used"):
        _enqueue(conn, body="something else", idempotency_key="ride-42-confirm")
    assert count(conn, "whatsapp_message_queue") == 1


def test_enqueue_wakes_listening_senders(conn: psycopg.Connection[Any], connect: Connect) -> None:
    listener = connect()
    listener.execute("listen " + wa.OUTBOUND_CHANNEL)
    _enqueue(conn)
    got = [n.channel for n in listener.notifies(timeout=10, stop_after=1)]
    assert got == [wa.OUTBOUND_CHANNEL]


# ---- claim ----------------------------------------------------------------------------


def test_claim_takes_due_messages_in_priority_then_schedule_order(conn: psycopg.Connection[Any]) -> None:
    late = _enqueue(conn, body="late", priority=5, scheduled_at=NOW - timedelta(minutes=1))
    early = _enqueue(conn, body="early", priority=5, scheduled_at=NOW - timedelta(minutes=5))
    urgent = _enqueue(conn, body="urgent", priority=1)
    future = _enqueue(conn, body="future", priority=1, scheduled_at=NOW + timedelta(hours=1))
    batch = _claim(conn, limit=10, lease=30, worker="sender-a")
    assert [m.id for m in batch] == [urgent, early, late]
    assert all(m.attempt == 1 for m in batch)
    for m in batch:
        row = _message(conn, m.id)
        assert row["status"] == "processing" and row["locked_by"] == "sender-a"
        assert row["locked_until"] is not None and row["attempt"] == 1
    assert _message(conn, future)["status"] == "pending"
    assert _claim(conn) == []


def test_claim_respects_the_limit(conn: psycopg.Connection[Any]) -> None:
    for i in range(5):
        _enqueue(conn, body=f"m{i}")
    assert len(_claim(conn, limit=2)) == 2
    assert len(_claim(conn, limit=10)) == 3


@pytest.mark.parametrize(
    ("args", "state", "match"),
    [
        ("p_limit => 0", "22003", "p_limit must be between 1 and 1000"),
        ("p_limit => 1001", "22003", "p_limit"),
        ("p_lease_seconds => 0", "22003", "p_lease_seconds must be between 1 and 3600"),
        ("p_limit => null", "22004", "p_limit must not be null"),
    ],
)
def test_claim_refuses_bad_arguments(conn: psycopg.Connection[Any], args: str, state: str, match: str) -> None:
    _enqueue(conn)
    with raises_sqlstate(state, match):
        with db.as_service(conn):
            conn.execute(f"select * from claim_whatsapp_messages({args})")
    assert count(conn, "whatsapp_message_queue", "status = 'pending'") == 1


def test_two_claimers_never_get_the_same_message(conn: psycopg.Connection[Any], connect: Connect) -> None:
    total = 200
    with db.as_service(conn):
        for i in range(total):
            wa.enqueue_message(conn, f"+2507880{i:05d}", "text", {"body": f"m{i}"})
    claimers = 4
    barrier = threading.Barrier(claimers)
    got: dict[int, list[uuid.UUID]] = {i: [] for i in range(claimers)}
    failures: list[BaseException] = []

    def claimer(i: int) -> None:
        c = connect()
        try:
            barrier.wait()
            while True:
                batch = _claim(c, limit=7, worker=f"w{i}")
                if not batch:
                    return
                got[i].extend(m.id for m in batch)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=claimer, args=(i,)) for i in range(claimers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures
    every = [m for ids in got.values() for m in ids]
    assert len(every) == total and len(set(every)) == total
    assert count(conn, "whatsapp_message_queue", "status = 'processing' and attempt = 1") == total


def test_an_expired_lease_makes_the_message_claimable_again(conn: psycopg.Connection[Any]) -> None:
    mid = _enqueue(conn)
    [first] = _claim(conn, worker="crashed")
    assert _claim(conn) == []  # leased
    _expire_leases(conn)
    [again] = _claim(conn, worker="survivor")
    assert again.id == first.id == mid and again.attempt == 2
    assert _message(conn, mid)["locked_by"] == "survivor"


def test_a_lease_that_expires_on_the_last_attempt_fails_the_message(conn: psycopg.Connection[Any]) -> None:
    with db.as_service(conn):
        wa.update_session_activity(conn, PHONE)
    mid = _enqueue(conn, max_retries=1)
    for _ in range(2):
        assert [m.id for m in _claim(conn)] == [mid]
        _expire_leases(conn)
    assert _claim(conn) == []
    m = _message(conn, mid)
    assert m["status"] == "failed" and "lease expired on attempt 2" in m["last_error"]
    assert m["locked_until"] is None and m["failed_at"] is not None
    assert _session(conn)["error_count"] == 1


# ---- sent / failed / release / cancel -------------------------------------------------


def test_mark_sent_records_the_wa_id_and_a_replay_changes_nothing(conn: psycopg.Connection[Any]) -> None:
    mid = _enqueue(conn)
    [m] = _claim(conn)
    with db.as_service(conn):
        assert wa.mark_sent(conn, m.id, "wamid.HBgLMjUwNzg4MTIzNDU2FQIAERgS")
        assert not wa.mark_sent(conn, m.id, "wamid.HBgLMjUwNzg4MTIzNDU2FQIAERgS")
    row = _message(conn, mid)
    assert row["status"] == "sent" and row["whatsapp_message_id"] == "wamid.HBgLMjUwNzg4MTIzNDU2FQIAERgS"
    assert row["sent_at"] is not None and row["locked_until"] is None
    with raises_sqlstate("PD005", "already sent as"):
        with db.as_service(conn):
            wa.mark_sent(conn, m.id, "wamid.other")
    assert _message(conn, mid)["whatsapp_message_id"] == "wamid.HBgLMjUwNzg4MTIzNDU2FQIAERgS"


def test_mark_sent_refuses_unknown_and_cancelled_messages(conn: psycopg.Connection[Any]) -> None:
    with raises_sqlstate("PD004", "no outbound WhatsApp message"):
        with db.as_service(conn):
            wa.mark_sent(conn, uuid.uuid4(), "wamid.x")
    mid = _enqueue(conn)
    with db.as_service(conn):
        assert wa.cancel_message(conn, mid)
    with raises_sqlstate("PD002", "is cancelled, it cannot become sent"):
        with db.as_service(conn):
            wa.mark_sent(conn, mid, "wamid.x")
    with raises_sqlstate("22004", "p_whatsapp_message_id must not be empty"):
        with db.as_service(conn):
            wa.mark_sent(conn, mid, "")


def test_a_sender_whose_lease_ran_out_still_records_what_it_sent(conn: psycopg.Connection[Any]) -> None:
    mid = _enqueue(conn)
    _claim(conn)
    # the lease ran out and a claim's reaper put the message back; nobody claimed it again yet
    conn.execute("update whatsapp_message_queue set status = 'pending', locked_until = null")
    with db.as_service(conn):
        assert wa.mark_sent(conn, mid, "wamid.late")
    assert _message(conn, mid)["status"] == "sent"


def test_retryable_failures_back_off_then_fail_after_max_retries(conn: psycopg.Connection[Any]) -> None:
    with db.as_service(conn):
        wa.update_session_activity(conn, PHONE)
    mid = _enqueue(conn, max_retries=2)
    delays = []
    for attempt in (1, 2):
        [m] = _claim(conn)
        assert m.attempt == attempt
        with db.as_service(conn):
            assert wa.mark_failed(conn, m.id, f"HTTP 503: try {attempt}", detail={"http_status": 503}) == "pending"
        row = conn.execute(
            "select status, retry_count, extract(epoch from scheduled_at - updated_at)::float8, last_error"
            " from whatsapp_message_queue where id = %s",
            (mid,),
        ).fetchone()
        assert row is not None
        status, retries, delay, last_error = row
        assert (status, retries, last_error) == ("pending", attempt, f"HTTP 503: try {attempt}")
        delays.append(delay)
        conn.execute("update whatsapp_message_queue set scheduled_at = now() where id = %s", (mid,))
    # 10 s then 20 s, each within the ±20 % jitter
    assert 8 <= delays[0] <= 12 and 16 <= delays[1] <= 24
    [m] = _claim(conn)
    with db.as_service(conn):
        assert wa.mark_failed(conn, m.id, "HTTP 503: try 3") == "failed"
    row = _message(conn, mid)
    assert row["status"] == "failed" and row["failed_at"] is not None and row["retry_count"] == 2
    assert [e["error"] for e in row["errors"]] == ["HTTP 503: try 1", "HTTP 503: try 2", "HTTP 503: try 3"]
    assert row["errors"][0]["detail"] == {"http_status": 503}
    assert _session(conn)["error_count"] == 1
    assert _claim(conn) == []


def test_a_permanent_failure_fails_at_once_and_keeps_the_error(conn: psycopg.Connection[Any]) -> None:
    mid = _enqueue(conn)
    [m] = _claim(conn)
    detail = {"error": {"code": 131026, "message": "Message undeliverable"}}
    with db.as_service(conn):
        assert wa.mark_failed(conn, m.id, "HTTP 400 code 131026", retryable=False, detail=detail) == "failed"
    row = _message(conn, mid)
    assert row["status"] == "failed" and row["last_error"] == "HTTP 400 code 131026"
    assert row["errors"][0]["retryable"] is False and row["errors"][0]["detail"] == detail


def test_retry_after_is_honoured(conn: psycopg.Connection[Any]) -> None:
    mid = _enqueue(conn)
    [m] = _claim(conn)
    with db.as_service(conn):
        wa.mark_failed(conn, m.id, "HTTP 429", retry_in_seconds=120)
    row = conn.execute(
        "select extract(epoch from scheduled_at - updated_at)::int from whatsapp_message_queue where id = %s", (mid,)
    ).fetchone()
    assert row == (120,)


def test_mark_failed_refuses_unclaimed_messages_and_bad_arguments(conn: psycopg.Connection[Any]) -> None:
    mid = _enqueue(conn)
    with raises_sqlstate("PD005", "is pending, not being sent"):
        with db.as_service(conn):
            wa.mark_failed(conn, mid, "boom")
    _claim(conn)
    with raises_sqlstate("22004", "p_error must not be empty"):
        with db.as_service(conn):
            wa.mark_failed(conn, mid, "")
    with raises_sqlstate("22003", "p_retry_in_seconds"):
        with db.as_service(conn):
            wa.mark_failed(conn, mid, "x", retry_in_seconds=-1)
    with raises_sqlstate("PD004"):
        with db.as_service(conn):
            wa.mark_failed(conn, uuid.uuid4(), "x")
    assert _message(conn, mid)["status"] == "processing" and _message(conn, mid)["errors"] == []


def test_release_gives_the_message_back_without_counting_the_attempt(conn: psycopg.Connection[Any]) -> None:
    mid = _enqueue(conn)
    _claim(conn)
    with db.as_service(conn):
        assert wa.release_message(conn, mid)
        assert not wa.release_message(conn, mid)
    row = _message(conn, mid)
    assert row["status"] == "pending" and row["attempt"] == 0 and row["locked_until"] is None
    assert [m.attempt for m in _claim(conn)] == [1]


def test_cancel_only_pending_messages(conn: psycopg.Connection[Any]) -> None:
    pending = _enqueue(conn)
    claimed = _enqueue(conn, OTHER_PHONE, priority=1)
    _claim(conn, limit=1)
    with db.as_service(conn):
        assert not wa.cancel_message(conn, claimed)
        assert wa.cancel_message(conn, pending)
        assert not wa.cancel_message(conn, pending)
    assert _message(conn, pending)["status"] == "cancelled"
    assert _message(conn, claimed)["status"] == "processing"
    assert _claim(conn) == []


# ---- delivery statuses ----------------------------------------------------------------


def _status(conn: psycopg.Connection[Any], wa_id: str, status: str, at: datetime, error: Any = None) -> bool:
    with db.as_service(conn):
        return wa.apply_status(conn, wa_id, status, at, error)


def test_statuses_move_forward_only_and_replays_change_nothing(conn: psycopg.Connection[Any]) -> None:
    mid = _sent(conn, wa_id="wamid.A")
    t1, t2, t3 = NOW + timedelta(seconds=1), NOW + timedelta(seconds=2), NOW + timedelta(seconds=3)
    assert not _status(conn, "wamid.A", "sent", t1)
    assert _status(conn, "wamid.A", "delivered", t1)
    assert not _status(conn, "wamid.A", "delivered", t1)  # replay
    assert _status(conn, "wamid.A", "read", t2)
    before = _message(conn, mid)
    assert not _status(conn, "wamid.A", "delivered", t3)  # late, after read
    assert not _status(conn, "wamid.A", "sent", t3)
    assert not _status(conn, "wamid.A", "failed", t3, {"code": 131026})
    after = _message(conn, mid)
    assert after == before
    assert (after["status"], after["delivered_at"], after["read_at"]) == ("read", t1, t2)


def test_read_before_delivered_fills_delivered_and_the_late_one_changes_nothing(conn: psycopg.Connection[Any]) -> None:
    mid = _sent(conn, wa_id="wamid.B")
    assert _status(conn, "wamid.B", "read", NOW)
    assert not _status(conn, "wamid.B", "delivered", NOW - timedelta(seconds=5))
    row = _message(conn, mid)
    assert (row["status"], row["delivered_at"], row["read_at"]) == ("read", NOW, NOW)


def test_a_failed_status_fails_a_sent_message_with_the_error_kept(conn: psycopg.Connection[Any]) -> None:
    with db.as_service(conn):
        wa.update_session_activity(conn, PHONE)
    mid = _sent(conn, wa_id="wamid.C")
    err = {
        "code": 131026,
        "title": "Message undeliverable",
        "message": "Message undeliverable",
        "error_data": {"details": "Receiver is incapable of receiving this message"},
    }
    assert _status(conn, "wamid.C", "failed", NOW, err)
    assert not _status(conn, "wamid.C", "failed", NOW, err)
    assert not _status(conn, "wamid.C", "delivered", NOW)
    row = _message(conn, mid)
    assert row["status"] == "failed" and row["wa_error"] == err
    assert row["last_error"] == "Message undeliverable" and row["errors"][-1]["source"] == "status"
    assert _session(conn)["error_count"] == 1


def test_a_status_that_arrives_before_the_send_is_recorded_is_applied_then(conn: psycopg.Connection[Any]) -> None:
    mid = _enqueue(conn)
    [m] = _claim(conn)
    assert not _status(conn, "wamid.D", "delivered", NOW)
    assert not _status(conn, "wamid.D", "read", NOW + timedelta(seconds=1))
    assert not _status(conn, "wamid.D", "read", NOW + timedelta(seconds=1))  # replay
    assert count(conn, "whatsapp_status_backlog") == 2
    with db.as_service(conn):
        assert wa.mark_sent(conn, m.id, "wamid.D")
    row = _message(conn, mid)
    assert (row["status"], row["delivered_at"], row["read_at"]) == ("read", NOW, NOW + timedelta(seconds=1))
    assert count(conn, "whatsapp_status_backlog") == 0


@pytest.mark.parametrize(
    ("args", "state", "match"),
    [
        ("'wamid.A', 'seen', now()", "22023", "p_status: unknown delivery status seen"),
        ("'wamid.A', 'read', null", "22004", "p_timestamp must not be null"),
        ("'', 'read', now()", "22004", "p_whatsapp_message_id must not be empty"),
        ("'wamid.A', 'failed', now(), '\"oops\"'", "22023", "p_error must be a JSON object"),
    ],
)
def test_apply_status_refuses_bad_input(conn: psycopg.Connection[Any], args: str, state: str, match: str) -> None:
    mid = _sent(conn, wa_id="wamid.A")
    with raises_sqlstate(state, match):
        with db.as_service(conn):
            conn.execute(f"select apply_whatsapp_status({args})")
    assert _message(conn, mid)["status"] == "sent"
    assert count(conn, "whatsapp_status_backlog") == 0


# ---- inbound --------------------------------------------------------------------------


def _inbound(
    conn: psycopg.Connection[Any], wa_id: str = "wamid.in1", phone: str = PHONE, body: str = "Muraho"
) -> wa.InboundResult:
    payload = {"from": phone[1:], "id": wa_id, "timestamp": "1750857384", "type": "text", "text": {"body": body}}
    with db.as_service(conn):
        return wa.record_inbound(conn, wa_id, phone, "text", payload, NOW, "Aline", "106540352242922")


def test_an_inbound_message_is_recorded_once_and_updates_the_session(
    conn: psycopg.Connection[Any], connect: Connect
) -> None:
    listener = connect()
    listener.execute("listen " + wa.INBOUND_CHANNEL)
    first = _inbound(conn)
    assert first.is_new and first.session_id is not None
    assert [n.payload for n in listener.notifies(timeout=10, stop_after=1)] == [str(first.inbound_id)]
    again = _inbound(conn)
    assert (again.inbound_id, again.session_id, again.is_new) == (first.inbound_id, first.session_id, False)
    s = _session(conn)
    assert s["message_count"] == 1 and s["profile_name"] == "Aline"
    assert s["context"]["last_inbound"]["id"] == "wamid.in1" and s["context"]["last_inbound"]["type"] == "text"
    row = conn.execute("select body, from_phone, phone_number_id, session_id from whatsapp_inbound_messages").fetchall()
    assert row == [("Muraho", PHONE, "106540352242922", first.session_id)]


def test_concurrent_replays_of_an_inbound_message_count_once(connect: Connect) -> None:
    n = 5
    barrier = threading.Barrier(n)
    results: list[wa.InboundResult] = []
    failures: list[BaseException] = []

    def one() -> None:
        c = connect()
        try:
            barrier.wait()
            results.append(_inbound(c))
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures
    assert sum(r.is_new for r in results) == 1 and len({r.inbound_id for r in results}) == 1
    owner = connect()
    assert count(owner, "whatsapp_inbound_messages") == 1
    assert _session(owner)["message_count"] == 1


@pytest.mark.parametrize(
    ("args", "state", "match"),
    [
        ("'wamid.x', '250788123456', 'text', '{}'", "22023", "p_from_phone must be an E.164"),
        ("'wamid.x', '+250788123456', 'Text!', '{}'", "22023", "p_message_type must be a WhatsApp message type"),
        ("'wamid.x', '+250788123456', 'text', '[]'", "22023", "p_payload must be a JSON object"),
        ("null, '+250788123456', 'text', '{}'", "22004", "p_whatsapp_message_id must not be empty"),
    ],
)
def test_record_inbound_refuses_bad_input(conn: psycopg.Connection[Any], args: str, state: str, match: str) -> None:
    with raises_sqlstate(state, match):
        with db.as_service(conn):
            conn.execute(f"select * from record_whatsapp_inbound_message({args})")
    assert count(conn, "whatsapp_inbound_messages") == 0 and count(conn, "whatsapp_sessions") == 0


def test_the_app_sees_unhandled_messages_until_it_marks_them(conn: psycopg.Connection[Any]) -> None:
    a = _inbound(conn, "wamid.a")
    b = _inbound(conn, "wamid.b", OTHER_PHONE, "Ndashaka moto")
    with db.as_service(conn):
        assert [m["id"] for m in wa.unhandled_inbound(conn)] == [a.inbound_id, b.inbound_id]
        assert wa.mark_inbound_handled(conn, a.inbound_id)
        assert not wa.mark_inbound_handled(conn, a.inbound_id)
        assert [m["body"] for m in wa.unhandled_inbound(conn)] == ["Ndashaka moto"]
    with raises_sqlstate("PD004"):
        with db.as_service(conn):
            wa.mark_inbound_handled(conn, uuid.uuid4())


# ---- views and retention --------------------------------------------------------------


def test_session_stats_has_every_status(conn: psycopg.Connection[Any], user_a: uuid.UUID) -> None:
    with db.as_service(conn):
        wa.update_session_activity(conn, PHONE)
        wa.update_session_activity(conn, PHONE)
        wa.link_session_user(conn, OTHER_PHONE, user_a)
        wa.set_session_status(conn, OTHER_PHONE, "suspended")
        stats = {r["status"]: r for r in wa.session_stats(conn)}
    assert list(stats) == ["active", "inactive", "suspended", "expired"]
    assert (stats["active"]["session_count"], stats["active"]["total_messages"]) == (1, 2)
    assert stats["active"]["active_last_hour"] == 1
    assert (stats["suspended"]["session_count"], stats["suspended"]["linked_to_user"]) == (1, 1)
    assert stats["expired"]["session_count"] == 0


def test_queue_stats_shows_depth_age_and_the_last_day(conn: psycopg.Connection[Any]) -> None:
    _enqueue(conn, scheduled_at=datetime.now(UTC) - timedelta(minutes=10))
    _enqueue(conn, OTHER_PHONE)
    _enqueue(conn, OTHER_PHONE, scheduled_at=NOW + timedelta(hours=2))
    sent = _enqueue(conn, "+250733000333", priority=1)
    failed = _enqueue(conn, "+250733000444", priority=1)
    batch = {m.id: m for m in _claim(conn, limit=2)}
    assert set(batch) == {sent, failed}
    with db.as_service(conn):
        wa.mark_sent(conn, sent, "wamid.S")
        wa.apply_status(conn, "wamid.S", "read", datetime.now(UTC))
        wa.mark_failed(conn, failed, "HTTP 400", retryable=False)
    _inbound(conn)
    with db.as_service(conn):
        q = wa.queue_stats(conn)
    assert (q["depth"], q["scheduled"], q["processing"]) == (2, 1, 0)
    assert timedelta(minutes=9) < q["oldest_pending_age"] < timedelta(hours=1)
    assert (q["sent_24h"], q["delivered_24h"], q["read_24h"], q["failed_24h"]) == (1, 1, 1, 1)
    assert (q["inbound_24h"], q["inbound_unhandled"]) == (1, 1)


def test_purge_deletes_finished_rows_past_retention_only(conn: psycopg.Connection[Any]) -> None:
    old_sent = _sent(conn, wa_id="wamid.old")
    fresh_sent = _sent(conn, OTHER_PHONE, wa_id="wamid.fresh")
    pending = _enqueue(conn, "+250733000555")
    handled = _inbound(conn, "wamid.h")
    with db.as_service(conn):
        wa.mark_inbound_handled(conn, handled.inbound_id)
        wa.apply_status(conn, "wamid.unknown", "delivered", NOW)
    conn.execute(
        "update whatsapp_message_queue set updated_at = now() - interval '31 days' where id in (%s, %s)",
        (old_sent, pending),
    )
    conn.execute("update whatsapp_inbound_messages set handled_at = now() - interval '31 days'")
    conn.execute("update whatsapp_status_backlog set received_at = now() - interval '8 days'")
    assert wa.purge_history(conn) == 3  # as the owner
    left = {r[0] for r in conn.execute("select id from whatsapp_message_queue").fetchall()}
    assert left == {fresh_sent, pending}
    assert count(conn, "whatsapp_inbound_messages") == 0 and count(conn, "whatsapp_status_backlog") == 0


# ---- the table's own checks (20260401310000: one-column checks on domains, same names) ----

QUEUE_ROW = {
    "recipient_phone": "'+250788123456'",
    "message_type": "'text'",
    "payload": '\'{"body": "Muraho"}\'',
}


@pytest.mark.parametrize(
    ("column", "value", "constraint"),
    [
        ("recipient_phone", "'250788123456'", "whatsapp_message_queue_recipient_e164"),
        ("recipient_phone", "'+0788123456'", "whatsapp_message_queue_recipient_e164"),
        ("message_type", "'sticker'", "whatsapp_message_queue_type_valid"),
        ("payload", "'[]'", "whatsapp_message_queue_payload_object"),
        ("payload", "('{\"a\": \"' || repeat('x', 70000) || '\"}')::jsonb", "whatsapp_message_queue_payload_object"),
        ("priority", "0", "whatsapp_message_queue_priority_range"),
        ("priority", "11", "whatsapp_message_queue_priority_range"),
        ("status", "'queued'", "whatsapp_message_queue_status_valid"),
        ("whatsapp_message_id", "''", "whatsapp_message_queue_wa_id_length"),
        ("whatsapp_message_id", "repeat('w', 257)", "whatsapp_message_queue_wa_id_length"),
        ("correlation_id", "repeat('c', 201)", "whatsapp_message_queue_correlation_length"),
        ("idempotency_key", "''", "whatsapp_message_queue_idempotency_length"),
        ("idempotency_key", "repeat('k', 201)", "whatsapp_message_queue_idempotency_length"),
        ("locked_by", "repeat('l', 201)", "whatsapp_message_queue_locked_by_length"),
        ("recipient_user_id", "'rw.123'", "whatsapp_message_queue_recipient_user_id_format"),
        ("reply_to_message_id", "''", "whatsapp_message_queue_reply_to_length"),
        ("pricing_category", "repeat('p', 65)", "whatsapp_message_queue_pricing_lengths"),
        ("pricing_model", "repeat('p', 65)", "whatsapp_message_queue_pricing_lengths"),
        ("pricing_type", "repeat('p', 65)", "whatsapp_message_queue_pricing_lengths"),
        ("conversation_origin", "repeat('p', 65)", "whatsapp_message_queue_pricing_lengths"),
        ("conversation_id", "repeat('c', 257)", "whatsapp_message_queue_pricing_lengths"),
        # the checks that tie columns together stay on the table
        ("attempt", "-1", "whatsapp_message_queue_retries_range"),
        ("status", "'processing'", "whatsapp_message_queue_processing_has_lease"),
        ("status", "'sent'", "whatsapp_message_queue_sent_has_wa_id"),
        ("recipient_phone", "null", "whatsapp_message_queue_recipient_known"),
    ],
)
def test_the_queue_itself_refuses_a_bad_row_by_its_named_check(
    conn: psycopg.Connection[Any], column: str, value: str, constraint: str
) -> None:
    """The table's owner (the functions write as it) cannot store a bad message either: each
    one-column check lives on its column's domain under its old name, the checks over several
    columns on the table; every one is SQLSTATE 23514 and names itself."""
    refused_by_its_name(conn, "whatsapp_message_queue", QUEUE_ROW, column, value, constraint)


SESSION_ROW = {"phone_number": "'+250788123456'"}


@pytest.mark.parametrize(
    ("column", "value", "constraint"),
    [
        ("phone_number", "'250788123456'", "whatsapp_sessions_phone_e164"),
        ("business_user_id", "'rw.1'", "whatsapp_sessions_business_user_id_format"),
        ("session_token", "repeat('t', 31)", "whatsapp_sessions_token_length"),
        ("status", "'gone'", "whatsapp_sessions_status_valid"),
        ("status_reason", "repeat('r', 501)", "whatsapp_sessions_reason_length"),
        ("conversation_state", "''", "whatsapp_sessions_state_length"),
        ("conversation_state", "repeat('s', 101)", "whatsapp_sessions_state_length"),
        ("context", "'[]'", "whatsapp_sessions_context_object"),
        ("context", "('{\"a\": \"' || repeat('x', 17000) || '\"}')::jsonb", "whatsapp_sessions_context_object"),
        ("profile_name", "repeat('p', 257)", "whatsapp_sessions_profile_name_length"),
        ("message_count", "-1", "whatsapp_sessions_counts_nonnegative"),
        ("error_count", "-1", "whatsapp_sessions_counts_nonnegative"),
        # the checks that tie columns together stay on the table
        ("phone_number", "null", "whatsapp_sessions_identified"),
        ("service_window_ends_at", "now()", "whatsapp_sessions_window_after_inbound"),
    ],
)
def test_the_sessions_refuse_a_bad_row_by_its_named_check(
    conn: psycopg.Connection[Any], column: str, value: str, constraint: str
) -> None:
    """As for the queue (20260401320000: the one-column checks of the sessions on domains)."""
    refused_by_its_name(conn, "whatsapp_sessions", SESSION_ROW, column, value, constraint)


INBOUND_ROW = {"whatsapp_message_id": "'wamid.in'", "from_phone": "'+250788123456'", "message_type": "'text'"}


@pytest.mark.parametrize(
    ("column", "value", "constraint"),
    [
        ("whatsapp_message_id", "''", "whatsapp_inbound_messages_wa_id_length"),
        ("whatsapp_message_id", "repeat('w', 257)", "whatsapp_inbound_messages_wa_id_length"),
        ("from_phone", "'+0123456789'", "whatsapp_inbound_messages_from_e164"),
        ("from_user_id", "'x'", "whatsapp_inbound_messages_from_user_id_format"),
        ("message_type", "'Text'", "whatsapp_inbound_messages_type_format"),
        ("body", "repeat('b', 4097)", "whatsapp_inbound_messages_body_length"),
        ("payload", "'[]'", "whatsapp_inbound_messages_payload_object"),
        ("profile_name", "repeat('p', 257)", "whatsapp_inbound_messages_profile_name_length"),
        ("adjustments", "'{}'", "whatsapp_inbound_messages_adjustments_array"),
        ("original_bytes", "0", "whatsapp_inbound_messages_original_bytes_positive"),
        # the check that ties columns together stays on the table
        ("from_phone", "null", "whatsapp_inbound_messages_sender_known"),
    ],
)
def test_the_inbound_messages_refuse_a_bad_row_by_its_named_check(
    conn: psycopg.Connection[Any], column: str, value: str, constraint: str
) -> None:
    """As for the queue (20260401320000: the one-column checks of inbound messages on domains)."""
    refused_by_its_name(conn, "whatsapp_inbound_messages", INBOUND_ROW, column, value, constraint)


def test_the_claim_and_the_views_keep_the_types_they_declare(conn: psycopg.Connection[Any]) -> None:
    """The columns are domains now; the claim still returns text, jsonb and integer (RETURN
    QUERY would refuse a domain where its base type is declared) and the views' columns keep
    their types."""
    _enqueue(conn)
    with db.as_service(conn):
        typed = conn.execute(
            "select pg_typeof(recipient_phone)::text, pg_typeof(message_type)::text, pg_typeof(payload)::text,"
            " pg_typeof(priority)::text, pg_typeof(correlation_id)::text, pg_typeof(recipient_user_id)::text,"
            " pg_typeof(reply_to_message_id)::text from public.claim_whatsapp_messages(10, 60, 'w')"
        ).fetchall()
    assert typed == [("text", "text", "jsonb", "integer", "text", "text", "text")]
    views = conn.execute(
        "select table_name, column_name, data_type, domain_name from information_schema.columns"
        " where table_schema = 'public' and table_name in ('whatsapp_message_costs', 'whatsapp_queue_stats')"
        " and column_name in ('category', 'conversations', 'depth', 'retrying') order by 1, 2"
    ).fetchall()
    assert views == [
        ("whatsapp_message_costs", "category", "text", None),
        ("whatsapp_message_costs", "conversations", "bigint", None),
        ("whatsapp_queue_stats", "depth", "bigint", None),
        ("whatsapp_queue_stats", "retrying", "bigint", None),
    ]
    # what stays on the table, prepared for every statement that writes a row: the 7 checks
    # over several columns (the 12 one-column checks are compiled once per connection)
    checks = conn.execute(
        "select count(*) from pg_constraint where conrelid = 'public.whatsapp_message_queue'::regclass"
        " and contype = 'c'"
    ).fetchone()
    assert checks == (7,)
    # and on the inbound path (20260401320000): the checks over several columns only
    for table, n in (("whatsapp_sessions", 2), ("whatsapp_inbound_messages", 1)):
        left = conn.execute(
            "select count(*) from pg_constraint where conrelid = %s::regclass and contype = 'c'", (f"public.{table}",)
        ).fetchone()
        assert left == (n,), table
    stats = conn.execute(
        "select column_name, data_type from information_schema.columns where table_schema = 'public'"
        " and table_name = 'whatsapp_session_stats' and column_name in ('status', 'total_messages')"
        " order by 1"
    ).fetchall()
    assert stats == [("status", "text"), ("total_messages", "bigint")]
