"""WhatsApp in production (migration 20260401210000): business-scoped user ids, the
customer-service window, what messages cost and the webhook quarantine — against a real
PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from platformdb import db, errors
from platformdb.sdk import whatsapp as wa
from tests.helpers import count, raises_sqlstate

PHONE = "+250788123456"
BSUID = "RW.1502576394655843"
NOW = datetime.now(UTC)
TEMPLATE = {"name": "ride_reminder", "language": {"code": "en_US"}}


def _inbound(
    conn: psycopg.Connection[Any],
    wa_id: str,
    phone: str | None = PHONE,
    user_id: str | None = None,
    *,
    at: datetime | None = None,
    payload: dict[str, Any] | None = None,
    mtype: str = "text",
) -> wa.InboundResult:
    with db.as_service(conn):
        return wa.record_inbound(
            conn,
            wa_id,
            phone,
            mtype,
            payload or {"text": {"body": f"message {wa_id}"}},
            sent_at=at or NOW,
            from_user_id=user_id,
        )


def _session(conn: psycopg.Connection[Any], sid: uuid.UUID) -> dict[str, Any]:
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        row = cur.execute("select * from whatsapp_sessions where id = %s", (sid,)).fetchone()
    assert row is not None
    return row


# ---- business-scoped user ids ---------------------------------------------------------


def test_a_user_known_only_by_their_user_id_has_a_session_and_messages(conn: psycopg.Connection[Any]) -> None:
    r = _inbound(conn, "wamid.u1", None, BSUID)
    assert r.is_new and r.session_id is not None
    s = _session(conn, r.session_id)
    assert (s["phone_number"], s["business_user_id"], s["message_count"]) == (None, BSUID, 1)
    assert conn.execute("select from_phone, from_user_id from whatsapp_inbound_messages").fetchone() == (None, BSUID)
    with db.as_service(conn):
        assert wa.get_session(conn, None, business_user_id=BSUID)["id"] == r.session_id  # type: ignore[index]


def test_a_session_that_learns_the_phone_keeps_its_history(conn: psycopg.Connection[Any]) -> None:
    first = _inbound(conn, "wamid.u1", None, BSUID)
    with db.as_service(conn):
        wa.enqueue_message(conn, None, "text", {"body": "hi"}, recipient_user_id=BSUID)
    later = _inbound(conn, "wamid.u2", PHONE, BSUID)
    assert later.session_id == first.session_id
    s = _session(conn, first.session_id)  # type: ignore[arg-type]
    assert (s["phone_number"], s["business_user_id"], s["message_count"]) == (PHONE, BSUID, 2)
    # by phone alone now finds the same conversation
    assert _inbound(conn, "wamid.u3", PHONE).session_id == first.session_id
    assert count(conn, "whatsapp_sessions") == 1


def test_two_sessions_of_one_user_become_one(conn: psycopg.Connection[Any]) -> None:
    by_phone = _inbound(conn, "wamid.p1", PHONE)  # before user ids
    by_user = _inbound(conn, "wamid.u1", None, BSUID)  # a username-only message
    with db.as_service(conn):
        queued = wa.enqueue_message(conn, None, "text", {"body": "x"}, recipient_user_id=BSUID)
    assert by_phone.session_id != by_user.session_id
    both = _inbound(conn, "wamid.b1", PHONE, BSUID)
    assert both.session_id == by_phone.session_id
    assert count(conn, "whatsapp_sessions") == 1
    s = _session(conn, by_phone.session_id)  # type: ignore[arg-type]
    assert (s["business_user_id"], s["message_count"]) == (BSUID, 3)
    assert {r[0] for r in conn.execute("select session_id from whatsapp_inbound_messages").fetchall()} == {
        by_phone.session_id
    }
    assert conn.execute("select session_id from whatsapp_message_queue where id = %s", (queued,)).fetchone() == (
        by_phone.session_id,
    )


def test_outbound_to_a_user_id_links_the_session(conn: psycopg.Connection[Any]) -> None:
    r = _inbound(conn, "wamid.u1", None, BSUID)
    with db.as_service(conn):
        mid = wa.enqueue_message(conn, None, "text", {"body": "hi"}, recipient_user_id=BSUID)
        [m] = wa.claim_messages(conn)
    assert m.id == mid and m.recipient_phone is None and m.recipient_user_id == BSUID
    assert conn.execute("select session_id from whatsapp_message_queue").fetchone() == (r.session_id,)


@pytest.mark.parametrize(
    ("sql", "state", "match"),
    [
        ("select update_whatsapp_session_activity(p_phone_number => null)", "22004", "p_phone_number must not be null"),
        (
            "select update_whatsapp_session_activity(p_phone_number => null, p_business_user_id => 'rw.1')",
            "22023",
            "p_business_user_id must be a business-scoped user id",
        ),
        (
            "select enqueue_whatsapp_message(p_recipient_phone => null, p_message_type => 'text',"
            ' p_message_payload => \'{"body": "x"}\')',
            "22004",
            "p_recipient_phone must not be null",
        ),
        (
            "select enqueue_whatsapp_message(p_recipient_phone => null, p_message_type => 'text',"
            " p_message_payload => '{\"body\": \"x\"}', p_recipient_user_id => '12345')",
            "22023",
            "p_recipient_user_id must be a business-scoped user id",
        ),
        (
            "select * from record_whatsapp_inbound_message(p_whatsapp_message_id => 'w', p_from_phone => null,"
            " p_message_type => 'text', p_payload => '{}')",
            "22004",
            "p_from_phone must not be null",
        ),
    ],
)
def test_a_user_must_be_identified_somehow(conn: psycopg.Connection[Any], sql: str, state: str, match: str) -> None:
    with raises_sqlstate(state, match), db.as_service(conn):
        conn.execute(sql)
    assert count(conn, "whatsapp_sessions") == 0 and count(conn, "whatsapp_message_queue") == 0


# ---- the customer-service window ------------------------------------------------------


def test_a_free_form_message_after_25_hours_is_refused_and_a_template_queued(conn: psycopg.Connection[Any]) -> None:
    """The issue's acceptance."""
    _inbound(conn, "wamid.old", at=NOW - timedelta(hours=25))
    with raises_sqlstate("PDW01", "outside the customer-service window") as info, db.as_service(conn):
        wa.send_text(conn, PHONE, "Are you still there?")
    assert isinstance(info.value, errors.OutsideServiceWindow)
    assert info.value.hint is not None and "template" in info.value.hint
    assert count(conn, "whatsapp_message_queue") == 0  # nothing half-written
    with db.as_service(conn):
        mid = wa.enqueue_message(conn, PHONE, "template", TEMPLATE)
    assert conn.execute("select message_type, status from whatsapp_message_queue where id = %s", (mid,)).fetchone() == (
        "template",
        "pending",
    )


def test_within_24_hours_free_form_passes_and_scheduling_past_the_window_does_not(
    conn: psycopg.Connection[Any],
) -> None:
    r = _inbound(conn, "wamid.recent", at=NOW - timedelta(hours=23))
    s = _session(conn, r.session_id)  # type: ignore[arg-type]
    assert s["last_inbound_at"] == NOW.replace(microsecond=NOW.microsecond) - timedelta(hours=23)
    assert s["service_window_ends_at"] == s["last_inbound_at"] + timedelta(hours=24)
    with db.as_service(conn):
        wa.send_text(conn, PHONE, "Your driver is on the way")
    with raises_sqlstate("PDW01"), db.as_service(conn):
        wa.send_text(conn, PHONE, "Tomorrow's reminder", scheduled_at=NOW + timedelta(hours=2))
    assert count(conn, "whatsapp_message_queue") == 1


def test_a_free_entry_point_keeps_the_window_open_72_hours(conn: psycopg.Connection[Any]) -> None:
    referral = {"source_type": "ad", "source_id": "120", "ctwa_clid": "ARAk", "source_url": "https://fb.me/x"}
    payload = {"text": {"body": "I saw your ad"}, "referral": referral}
    r = _inbound(conn, "wamid.ad", at=NOW - timedelta(hours=48), payload=payload)
    s = _session(conn, r.session_id)  # type: ignore[arg-type]
    assert s["service_window_ends_at"] - s["last_inbound_at"] == timedelta(hours=72)
    with db.as_service(conn):
        wa.send_text(conn, PHONE, "Thanks for writing")
    _inbound(conn, "wamid.ad2", at=NOW - timedelta(hours=73), payload=payload)  # late delivery
    assert _session(conn, r.session_id)["last_inbound_at"] == s["last_inbound_at"]  # type: ignore[arg-type]


def test_a_recipient_never_heard_from_is_not_judged_and_a_replay_returns_its_message(
    conn: psycopg.Connection[Any],
) -> None:
    with db.as_service(conn):
        mid = wa.send_text(conn, "+250722000111", "Welcome", idempotency_key="welcome-1")
    _inbound(conn, "wamid.x", "+250722000111", at=NOW - timedelta(hours=30))
    with db.as_service(conn):  # the same message again: the same id, not a refusal
        assert wa.send_text(conn, "+250722000111", "Welcome", idempotency_key="welcome-1") == mid
    with raises_sqlstate("PDW01"), db.as_service(conn):
        wa.send_text(conn, "+250722000111", "Welcome", idempotency_key="welcome-2")


def test_a_system_message_does_not_open_the_window(conn: psycopg.Connection[Any]) -> None:
    _inbound(conn, "wamid.old", at=NOW - timedelta(hours=30))
    _inbound(conn, "wamid.sys", mtype="system", payload={"system": {"body": "changed number"}})
    with raises_sqlstate("PDW01"), db.as_service(conn):
        wa.send_text(conn, PHONE, "hello")


# ---- what messages cost ---------------------------------------------------------------


def _sent(conn: psycopg.Connection[Any], wa_id: str, phone: str = PHONE) -> uuid.UUID:
    with db.as_service(conn):
        mid = wa.enqueue_message(conn, phone, "template", TEMPLATE)
        [m] = wa.claim_messages(conn)
        wa.mark_sent(conn, m.id, wa_id)
    return mid


def test_pricing_and_conversation_are_kept_and_counted_per_category_and_day(conn: psycopg.Connection[Any]) -> None:
    pricing = {"billable": True, "pricing_model": "PMP", "category": "utility", "type": "regular"}
    conversation = {"id": "c0ffee", "origin": {"type": "utility"}, "expiration_timestamp": "1750943784"}
    a = _sent(conn, "wamid.a")
    b = _sent(conn, "wamid.b", "+250722000111")
    with db.as_service(conn):
        wa.apply_status(conn, "wamid.a", "sent", NOW, pricing=pricing, conversation=conversation)
        wa.apply_status(conn, "wamid.a", "delivered", NOW, pricing=pricing, conversation=conversation)
        free = {"billable": False, "pricing_model": "PMP", "category": "service", "type": "free_customer_service"}
        wa.apply_status(conn, "wamid.b", "delivered", NOW, pricing=free)
    row = conn.execute(
        "select pricing_billable, pricing_category, pricing_model, pricing_type, conversation_id,"
        " conversation_origin, conversation_expires_at from whatsapp_message_queue where id = %s",
        (a,),
    ).fetchone()
    assert row == (True, "utility", "PMP", "regular", "c0ffee", "utility", datetime.fromtimestamp(1750943784, UTC))
    with db.as_service(conn):
        costs = wa.message_costs(conn)
    by_cat = {r["category"]: (r["messages"], r["billable"]) for r in costs}
    assert by_cat == {"utility": (1, 1), "service": (1, 0)}
    assert conn.execute("select pricing_billable from whatsapp_message_queue where id = %s", (b,)).fetchone() == (
        False,
    )


def test_pricing_of_a_status_that_outran_the_sender_is_applied_with_it(conn: psycopg.Connection[Any]) -> None:
    pricing = {"billable": True, "pricing_model": "PMP", "category": "marketing", "type": "regular"}
    with db.as_service(conn):
        mid = wa.enqueue_message(conn, PHONE, "template", TEMPLATE)
        [m] = wa.claim_messages(conn)
        assert wa.apply_status(conn, "wamid.early", "delivered", NOW, pricing=pricing) is False
        wa.mark_sent(conn, m.id, "wamid.early")
    assert conn.execute(
        "select status, pricing_category, pricing_billable from whatsapp_message_queue where id = %s", (mid,)
    ).fetchone() == ("delivered", "marketing", True)


def test_pricing_must_be_an_object(conn: psycopg.Connection[Any]) -> None:
    _sent(conn, "wamid.a")
    with raises_sqlstate("22023", "p_pricing must be a JSON object"), db.as_service(conn):
        conn.execute(
            "select apply_whatsapp_status(p_whatsapp_message_id => 'wamid.a', p_status => 'read',"
            " p_timestamp => now(), p_pricing => '[1]')"
        )
    assert conn.execute("select status from whatsapp_message_queue").fetchone() == ("sent",)


# ---- the quarantine -------------------------------------------------------------------

NID = "ab" * 32


def test_quarantine_is_once_per_item_and_settles(conn: psycopg.Connection[Any]) -> None:
    with db.as_service(conn):
        a = wa.quarantine_item(conn, NID, "entry[0]", "entry", {"x": 1}, "no changes")
        assert wa.quarantine_item(conn, NID, "entry[0]", "entry", {"x": 1}, "no changes") == a
        assert wa.settle_quarantine(conn, a, "failed", "still no changes") is True
        row = wa.list_quarantine(conn)[0]
        assert (row["seen_count"], row["attempts"], row["reason"], row["resolution"]) == (
            2,
            1,
            "still no changes",
            None,
        )
        assert wa.quarantine_stats(conn)["open_items"] == 1
        assert wa.settle_quarantine(conn, a, "discarded") is True
        assert wa.settle_quarantine(conn, a, "stored") is False  # already resolved
        assert wa.quarantine_stats(conn)["open_items"] == 0
    with raises_sqlstate("PD004"), db.as_service(conn):
        wa.settle_quarantine(conn, uuid.uuid4(), "stored")
    with raises_sqlstate("22004", "p_reason must say why"), db.as_service(conn):
        wa.settle_quarantine(conn, a, "failed")
    with raises_sqlstate("22023", "p_notification_id"), db.as_service(conn):
        wa.quarantine_item(conn, "not-a-hash", "x", "entry", {}, "r")


def test_an_item_too_large_even_for_the_quarantine_keeps_its_size_and_opening(conn: psycopg.Connection[Any]) -> None:
    big = {f"k{i}": f"value-{i}-" + "z" * 40 for i in range(8000)}
    with db.as_service(conn):
        wa.quarantine_item(conn, NID, "body", "notification", big, "too big")
    item = conn.execute("select item from whatsapp_quarantine").fetchone()[0]  # type: ignore[index]
    assert item["too_large_bytes"] > 262144 and len(item["opening"]) == 4096


def test_only_the_service_sees_the_quarantine(conn: psycopg.Connection[Any], user_a: uuid.UUID) -> None:
    with db.as_service(conn):
        wa.quarantine_item(conn, NID, "body", "notification", {}, "r")
    with raises_sqlstate("42501"), db.as_user(conn, user_a):
        conn.execute("select * from whatsapp_quarantine")
    with raises_sqlstate("42501"), db.as_anon(conn):
        conn.execute("select quarantine_whatsapp_item(%s, 'x', 'entry', '{}', 'r')", (NID,))
    with raises_sqlstate("42501"), db.as_service(conn):
        conn.execute("delete from whatsapp_quarantine")
