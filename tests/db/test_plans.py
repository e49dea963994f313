"""Plans that follow the table (20260401300000) for the WhatsApp, cache and geo paths.

PL/pgSQL keeps one generic plan per statement and connection once it looks no dearer than
planning each call. A plan made while a table was empty, and analyzed so, scans the whole
table once it fills, until an ANALYZE of the table invalidates it (never inside one
transaction). Each case here runs a function on a connection while its table is empty and
analyzed, fills the table with no ANALYZE in between, then reads the plans the same
connection uses (auto_explain, nested statements on): an index, never a whole-table scan.
(The queue's and the jobs' functions have the same test in test_queue.py and test_jobs.py.)
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest

from tests.helpers import nested_plans

Connect = Callable[..., psycopg.Connection[Any]]
ROWS = 3000  # enough for any plan made on the real size to read an index


@dataclass(frozen=True)
class Case:
    tables: tuple[str, ...]
    warm: str  # run 7 times while the tables are empty (PL/pgSQL may settle after 5)
    fill: str  # run once, as the owner, with no ANALYZE after it
    call: str  # read its plans


SENT = (
    "insert into public.whatsapp_message_queue (recipient_phone, message_type, payload, status,"
    " whatsapp_message_id, sent_at)"
    " select '+250788' || lpad(g::text, 6, '0'), 'text', '{\"body\": \"x\"}', 'sent', 'wamid.' || g, now()"
    f" from generate_series(1, {ROWS}) g"
)
AS_SERVICE = "set local role service_role; "

CASES = {
    "claim_whatsapp_messages": Case(
        ("whatsapp_message_queue",),
        "select * from public.claim_whatsapp_messages(10, 60, 'w')",
        SENT + "; insert into public.whatsapp_message_queue (recipient_phone, message_type, payload, priority)"
        " select '+250788999' || lpad(g::text, 3, '0'), 'text', '{\"body\": \"x\"}', 11 - g"
        " from generate_series(1, 5) g"
        "; insert into public.whatsapp_message_queue (recipient_phone, message_type, payload, status,"
        " attempt, locked_until, locked_by)"
        " values ('+250788999100', 'text', '{\"body\": \"lost\"}', 'processing', 1,"
        " now() - interval '1 minute', 'gone'),"
        " ('+250788999101', 'text', '{\"body\": \"dead\"}', 'processing', 6, now() - interval '1 minute', 'gone')",
        "select * from public.claim_whatsapp_messages(10, 60, 'w')",
    ),
    "apply_whatsapp_status": Case(
        ("whatsapp_message_queue",),
        "select public.apply_whatsapp_status('wamid.none', 'delivered', now())",
        SENT,
        "select public.apply_whatsapp_status('wamid.77', 'delivered', now())",
    ),
    "enqueue_whatsapp_message": Case(
        ("whatsapp_message_queue",),
        "select public.enqueue_whatsapp_message('+250788999996', 'text', '{\"body\": \"x\"}',"
        " p_idempotency_key => 'warm-' || gen_random_uuid())",
        AS_SERVICE + "select count(public.enqueue_whatsapp_message('+250788999996', 'text', '{\"body\": \"x\"}',"
        f" p_idempotency_key => 'k' || g)) from generate_series(1, {ROWS}) g",
        "select public.enqueue_whatsapp_message('+250788999996', 'text', '{\"body\": \"x\"}',"
        " p_idempotency_key => 'k77')",
    ),
    "record_whatsapp_inbound_message": Case(
        ("whatsapp_inbound_messages", "whatsapp_sessions"),
        "select public.record_whatsapp_inbound_message('wamid.in.' || gen_random_uuid(), '+250788999998', 'text',"
        ' \'{"body": "x"}\')',
        AS_SERVICE + "select count(*) from generate_series(1, "
        f"{ROWS}) g, lateral public.record_whatsapp_inbound_message('wamid.in.' || g,"
        " '+2507' || lpad(g::text, 8, '0'), 'text', '{\"body\": \"x\"}')",
        "select public.record_whatsapp_inbound_message('wamid.in.77', '+250700000077', 'text', '{\"body\": \"x\"}'),"
        " public.record_whatsapp_inbound_message('wamid.in.new', '+250700000078', 'text', '{\"body\": \"x\"}')",
    ),
    "update_whatsapp_session_activity": Case(
        ("whatsapp_sessions",),
        "select public.update_whatsapp_session_activity('+250788999999')",
        AS_SERVICE + "select count(public.update_whatsapp_session_activity('+250788' || lpad(g::text, 6, '0')))"
        f" from generate_series(1, {ROWS}) g",
        "select public.update_whatsapp_session_activity('+250788000077')",
    ),
    "cache": Case(
        ("cache_entries",),
        "select public.get_cache('nope'), public.delete_cache('nope'), public.invalidate_cache_by_tag('nope')",
        AS_SERVICE + "select count(public.set_cache('k' || g, '{}', 3600, null, array['t' || (g % 100)]))"
        f" from generate_series(1, {ROWS}) g",
        "select public.get_cache('k77'), public.delete_cache('k78'), public.invalidate_cache_by_tag('t79')",
    ),
    "find_nearby_locations": Case(
        ("locations",),
        "select count(*) from public.find_nearby_locations(-1.95, 30.06, 1000)",
        AS_SERVICE + "select count(public.save_location(-1.95 + (g % 100) / 1000.0, 30.06 + (g / 100) / 1000.0,"
        f" 'pickup', p_is_public => true)) from generate_series(1, {ROWS}) g",
        "select count(*) from public.find_nearby_locations(-1.95, 30.06, 1000)",
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_plans_follow_the_table_as_it_fills(connect: Connect, conn: psycopg.Connection[Any], name: str) -> None:
    case = CASES[name]
    for table in case.tables:
        conn.execute(f"analyze public.{table}")
    svc = connect()
    svc.execute("set role service_role")
    for _ in range(7):
        svc.execute(case.warm)
    with conn.transaction():
        conn.execute(case.fill)
    with nested_plans(svc) as plans:
        svc.execute(case.call)
    scanned = {t for p in plans for t in re.findall(r"Seq Scan on (\w+)", p)}
    assert not scanned & set(case.tables), (name, [p for p in plans if "Seq Scan" in p])
    assert any("Index" in p for p in plans), plans


def test_a_claim_after_the_queue_filled_releases_expired_leases_and_claims_in_order(
    connect: Connect, conn: psycopg.Connection[Any]
) -> None:
    """The claim of the case above, run to its end: the expired lease on its last allowed
    attempt is failed, the other goes back to pending, and the claim takes the due messages in
    priority order, through the primary key."""
    case = CASES["claim_whatsapp_messages"]
    conn.execute("analyze public.whatsapp_message_queue")
    svc = connect()
    svc.execute("set role service_role")
    for _ in range(7):
        assert svc.execute(case.warm).fetchall() == []
    with conn.transaction():
        conn.execute(case.fill)
    rows = svc.execute(
        "select recipient_phone, priority, attempt from public.claim_whatsapp_messages(10, 60, 'w')"
    ).fetchall()
    assert [r[0] for r in rows] == ["+250788999100"] + [f"+250788999{g:03d}" for g in (5, 4, 3, 2, 1)]
    assert [r[2] for r in rows] == [2, 1, 1, 1, 1, 1]
    assert conn.execute(
        "select status, last_error like 'lease expired on attempt 6%' from public.whatsapp_message_queue"
        " where recipient_phone = '+250788999101'"
    ).fetchone() == ("failed", True)
    assert conn.execute(
        "select count(*) from public.whatsapp_message_queue where status = 'processing' and locked_by = 'w'"
    ).fetchone() == (6,)
