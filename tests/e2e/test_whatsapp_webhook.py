"""The webhook receiver end to end: signed Cloud API notifications in, rows in a real
PostgreSQL out. Most tests drive the Starlette app in-process; one runs
`platformdb whatsapp serve` as a subprocess, the way it is deployed."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import psycopg
import pytest
from starlette.testclient import TestClient

from platformdb import db, devdb
from platformdb.sdk import whatsapp as wa
from platformdb.whatsapp_cloud import payloads
from platformdb.whatsapp_cloud.webhook import create_app
from tests.helpers import count

SECRET = "app-secret-for-tests"
VERIFY = "verify-token-for-tests"
PATH = "/webhooks/whatsapp"
FROM = "250788123456"
TS = 1750857384


def _body(doc: Any) -> bytes:
    return json.dumps(doc).encode()


def _post(client: TestClient, body: bytes, secret: str | None = SECRET, **headers: str) -> httpx.Response:
    h = {"Content-Type": "application/json", **headers}
    if secret is not None:
        h["X-Hub-Signature-256"] = payloads.sign(body, secret)
    return client.post(PATH, content=body, headers=h)


def _text(wa_id: str = "wamid.in-1", body: str = "Muraho! I need a ride to Kimironko", sender: str = FROM) -> bytes:
    return _body(payloads.text_notification(sender, body, wa_id, timestamp=TS, name="Aline"))


def _stored(conn: psycopg.Connection[Any]) -> tuple[int, int, int]:
    return (
        count(conn, "whatsapp_sessions"),
        count(conn, "whatsapp_inbound_messages"),
        count(conn, "whatsapp_status_backlog"),
    )


@pytest.fixture
def client(db_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(db_url, SECRET, VERIFY, max_body_bytes=256 * 1024)) as c:
        yield c


# ---- verification challenge -----------------------------------------------------------


def test_the_verification_challenge_is_answered_with_the_right_token(client: TestClient) -> None:
    r = client.get(PATH, params={"hub.mode": "subscribe", "hub.verify_token": VERIFY, "hub.challenge": "1158201444"})
    assert r.status_code == 200 and r.text == "1158201444"


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "1"}, 403),
        ({"hub.mode": "unsubscribe", "hub.verify_token": VERIFY, "hub.challenge": "1"}, 403),
        ({"hub.mode": "subscribe", "hub.challenge": "1"}, 400),
        ({}, 400),
    ],
)
def test_the_verification_challenge_is_refused_otherwise(
    client: TestClient, params: dict[str, str], status: int
) -> None:
    r = client.get(PATH, params=params)
    assert r.status_code == status and "1" not in r.text.split()


def test_the_app_refuses_to_start_without_secrets(db_url: str) -> None:
    with pytest.raises(ValueError, match="WHATSAPP_APP_SECRET"):
        create_app(db_url, "", VERIFY)
    with pytest.raises(ValueError, match="WHATSAPP_VERIFY_TOKEN"):
        create_app(db_url, SECRET, "")


# ---- signatures -----------------------------------------------------------------------


@pytest.mark.pooled
def test_a_signed_inbound_text_updates_the_session_and_is_recorded(
    client: TestClient, conn: psycopg.Connection[Any]
) -> None:
    r = _post(client, _text())
    assert r.status_code == 200, r.text
    assert r.json() == {
        "messages": 1,
        "duplicates": 0,
        "statuses_applied": 0,
        "statuses_unchanged": 0,
        "statuses_ignored": 0,
        "quarantined": 0,
    }
    s = conn.execute(
        "select message_count, status, profile_name, context -> 'last_inbound' ->> 'id', last_activity_at"
        " from whatsapp_sessions where phone_number = '+250788123456'"
    ).fetchone()
    assert s is not None and s[:4] == (1, "active", "Aline", "wamid.in-1")
    m = conn.execute(
        "select from_phone, message_type, body, sent_at, phone_number_id, payload -> 'text' ->> 'body'"
        " from whatsapp_inbound_messages"
    ).fetchone()
    assert m == (
        "+250788123456",
        "text",
        "Muraho! I need a ride to Kimironko",
        datetime.fromtimestamp(TS, UTC),
        "106540352242922",
        "Muraho! I need a ride to Kimironko",
    )


@pytest.mark.parametrize(
    "header",
    [
        None,  # missing
        "sha256=" + "0" * 64,  # wrong
        payloads.sign(b"another body", SECRET),  # signature of something else
        payloads.sign(b"x", "not-the-secret")[:7] + "f" * 64,
        "sha1=" + "a" * 40,
        "",
    ],
    ids=["missing", "zeros", "other-body", "garbage", "sha1", "empty"],
)
def test_a_bad_signature_is_refused_and_nothing_is_stored(
    client: TestClient, conn: psycopg.Connection[Any], header: str | None
) -> None:
    body = _text()
    headers = {} if header is None else {"X-Hub-Signature-256": header}
    r = _post(client, body, secret=None, **headers)
    assert r.status_code == 401
    assert _stored(conn) == (0, 0, 0)


def test_a_body_signed_with_another_secret_is_refused(client: TestClient, conn: psycopg.Connection[Any]) -> None:
    assert _post(client, _text(), secret="someone-else").status_code == 401
    assert _stored(conn) == (0, 0, 0)


def test_a_body_changed_after_signing_is_refused(client: TestClient, conn: psycopg.Connection[Any]) -> None:
    body = _text()
    sig = payloads.sign(body, SECRET)
    tampered = body.replace(b"Kimironko", b"Nyamirambo")
    r = client.post(PATH, content=tampered, headers={"X-Hub-Signature-256": sig})
    assert r.status_code == 401
    assert _stored(conn) == (0, 0, 0)


# ---- replays and malformed bodies -----------------------------------------------------


@pytest.mark.pooled
def test_a_replayed_delivery_is_harmless(client: TestClient, conn: psycopg.Connection[Any]) -> None:
    body = _text()
    assert _post(client, body).json()["messages"] == 1
    r = _post(client, body)
    assert r.status_code == 200 and r.json()["duplicates"] == 1 and r.json()["messages"] == 0
    assert count(conn, "whatsapp_inbound_messages") == 1
    assert conn.execute("select message_count from whatsapp_sessions").fetchone() == (1,)


def _with_message(msg: dict[str, Any]) -> bytes:
    doc = payloads.text_notification(FROM, "x", "wamid.ok", timestamp=TS)
    doc["entry"][0]["changes"][0]["value"]["messages"].append(msg)
    return _body(doc)


def test_a_body_that_is_not_json_is_refused_and_nothing_is_stored(
    client: TestClient, conn: psycopg.Connection[Any], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="platformdb.whatsapp.webhook"):
        r = _post(client, b"{not json")
    assert r.status_code == 400 and "malformed" in r.json()["error"]
    assert _stored(conn) == (0, 0, 0) and count(conn, "whatsapp_quarantine") == 0
    assert any("not JSON" in rec.getMessage() for rec in caplog.records)  # the reason is logged


# signed JSON in a shape that cannot be stored (whole or in part): 200, the good part stored,
# the rest quarantined with its reason
UNSTORABLE = {
    "array": (b"[]", "notification", "body must be an object"),
    "no-entry": (_body({"object": "whatsapp_business_account"}), "notification", "entry is missing"),
    "entry-not-list": (
        _body({"object": "whatsapp_business_account", "entry": {"id": "1"}}),
        "notification",
        "entry must be an array",
    ),
    "wrong-object": (_body({"object": "page", "entry": []}), "notification", "whatsapp_business_account"),
    "no-changes": (
        _body({"object": "whatsapp_business_account", "entry": [{"id": "1"}]}),
        "entry",
        "entry[0].changes is missing",
    ),
    "value-not-object": (
        _body(
            {
                "object": "whatsapp_business_account",
                "entry": [{"id": "1", "changes": [{"field": "messages", "value": []}]}],
            }
        ),
        "change",
        "value must be an object",
    ),
    "message-without-sender": (
        _with_message({"id": "wamid.2", "timestamp": "1", "type": "text", "text": {"body": "y"}}),
        "message",
        "neither from (phone) nor from_user_id",
    ),
    "from-not-a-number": (
        _with_message({"from": "+25078", "id": "wamid.2", "timestamp": "1", "type": "text", "text": {"body": "y"}}),
        "message",
        "from must be a phone number",
    ),
    "bad-timestamp": (
        _with_message({"from": FROM, "id": "wamid.2", "timestamp": "yesterday", "type": "text", "text": {"body": "y"}}),
        "message",
        "timestamp must be a Unix timestamp",
    ),
    "text-without-body": (
        _with_message({"from": FROM, "id": "wamid.2", "timestamp": "1", "type": "text"}),
        "message",
        "text.body must be a string",
    ),
    "status-without-id": (
        _body(payloads.status_notification("wamid.s", "read", FROM, timestamp=TS)).replace(b'"id": "wamid.s", ', b""),
        "status",
        "id must be a non-empty string",
    ),
}


@pytest.mark.parametrize("name", sorted(UNSTORABLE))
def test_what_cannot_be_stored_is_quarantined_and_the_rest_kept(
    client: TestClient, conn: psycopg.Connection[Any], caplog: pytest.LogCaptureFixture, name: str
) -> None:
    body, kind, reason = UNSTORABLE[name]
    with caplog.at_level(logging.WARNING, logger="platformdb.whatsapp.webhook"):
        r = _post(client, body)
    assert r.status_code == 200, r.text
    assert r.json()["quarantined"] == 1
    rows = conn.execute("select item_kind, reason, notification_id, resolved_at from whatsapp_quarantine").fetchall()
    assert len(rows) == 1 and rows[0][0] == kind and reason in rows[0][1], rows
    assert rows[0][2] == payloads.notification_id(body) and rows[0][3] is None
    assert any(reason in rec.getMessage() for rec in caplog.records if rec.levelno == logging.WARNING)
    # the good message beside it (the _with_message cases) is stored
    good = 1 if b"wamid.ok" in body else 0
    assert count(conn, "whatsapp_inbound_messages") == good
    # Meta's redelivery of the same notification quarantines nothing twice
    assert _post(client, body).status_code == 200
    assert conn.execute("select count(*), max(seen_count) from whatsapp_quarantine").fetchone() == (1, 2)
    assert count(conn, "whatsapp_inbound_messages") == good


def test_a_good_message_and_one_without_from_then_requeue_after_a_fix(
    client: TestClient, conn: psycopg.Connection[Any], db_url: str
) -> None:
    """The issue's acceptance: 200, the good one stored, the other quarantined with its
    reason; after a fix, the requeue stores it exactly once."""
    doc = payloads.text_notification(FROM, "good one", "wamid.good", timestamp=TS)
    doc["entry"][0]["changes"][0]["value"]["messages"].append(
        {"id": "wamid.nofrom", "timestamp": str(TS), "type": "text", "text": {"body": "who am I"}}
    )
    r = _post(client, _body(doc))
    assert r.status_code == 200 and r.json()["messages"] == 1 and r.json()["quarantined"] == 1
    assert conn.execute("select whatsapp_message_id from whatsapp_inbound_messages").fetchall() == [("wamid.good",)]
    [(qid, path, reason)] = conn.execute("select id, item_path, reason from whatsapp_quarantine").fetchall()
    assert path == "entry[0].changes[0].value.messages[1]" and "neither from (phone) nor from_user_id" in reason

    # requeue before the fix: still fails, stays open, the attempt counted
    out = _cli(db_url, "requeue-quarantine")
    assert out.returncode == 2 and "requeued 1: 1 failed" in out.stdout, out.stdout + out.stderr
    assert conn.execute("select attempts, resolved_at from whatsapp_quarantine").fetchone() == (1, None)

    # the fix: the sender's business-scoped user id, as WhatsApp's later payloads carry it
    with db.as_service(conn):
        conn.execute(
            'update whatsapp_quarantine set item = item || \'{"from_user_id": "RW.4711"}\' where id = %s', (qid,)
        )
    out = _cli(db_url, "requeue-quarantine")
    assert out.returncode == 0 and "requeued 1: 1 stored" in out.stdout, out.stdout + out.stderr
    assert conn.execute(
        "select from_user_id, from_phone, body from whatsapp_inbound_messages"
        " where whatsapp_message_id = 'wamid.nofrom'"
    ).fetchone() == ("RW.4711", None, "who am I")
    assert conn.execute("select resolution, attempts from whatsapp_quarantine").fetchone() == ("stored", 2)
    # once: another requeue has nothing to do, and Meta's redelivery neither stores nor reopens
    assert "requeued 0" in _cli(db_url, "requeue-quarantine").stdout
    assert _post(client, _body(doc)).json()["duplicates"] == 1
    assert count(conn, "whatsapp_inbound_messages") == 2
    assert conn.execute("select count(*), max(seen_count) from whatsapp_quarantine").fetchone() == (1, 2)
    stats = json.loads(_cli(db_url, "stats", "--json").stdout)["quarantine"]
    assert stats["open_items"] == 0 and stats["resolved_24h"] == 1


def _cli(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "platformdb.cli", "whatsapp", *args, "--database-url", db_url],
        capture_output=True,
        text=True,
        timeout=120,
        env={k: v for k, v in os.environ.items() if k != "DATABASE_URL"},
    )


def test_nul_characters_and_oversized_fields_are_stored_in_a_safe_form(
    client: TestClient, conn: psycopg.Connection[Any]
) -> None:
    doc = payloads.text_notification(FROM, "before\x00after", "wamid.nul", timestamp=TS, name="Ali\x00ne")
    big = {"from": FROM, "id": "wamid.big", "timestamp": str(TS), "type": "text", "text": {"body": "x" * 70000}}
    doc["entry"][0]["changes"][0]["value"]["messages"].append(big)
    r = _post(client, _body(doc))
    assert r.status_code == 200 and r.json()["messages"] == 2 and r.json()["quarantined"] == 0, r.text
    nul = conn.execute(
        "select body, payload -> 'text' ->> 'body', adjustments, original_bytes, profile_name"
        " from whatsapp_inbound_messages where whatsapp_message_id = 'wamid.nul'"
    ).fetchone()
    assert nul is not None
    assert nul[0] == nul[1] == "before\\u0000after"  # escaped, nothing lost
    assert nul[2] == [{"path": "text.body", "action": "escaped"}] and nul[3] > 0
    assert nul[4] == "Ali\\u0000ne"
    row = conn.execute(
        "select char_length(payload -> 'text' ->> 'body'), char_length(body), adjustments, original_bytes"
        " from whatsapp_inbound_messages where whatsapp_message_id = 'wamid.big'"
    ).fetchone()
    assert row is not None
    assert row[0] == payloads.MAX_FIELD_CHARS and row[1] == 4096
    assert row[2] == [{"path": "text.body", "action": "truncated", "original_chars": 70000}]
    assert row[3] == len(json.dumps(big).encode())


def test_a_value_the_database_refuses_is_quarantined_with_its_reason(
    client: TestClient, conn: psycopg.Connection[Any]
) -> None:
    """The parser lets it through, the database's check refuses it: only that item is rolled
    back (a savepoint) and quarantined with the database's message."""
    doc = payloads.text_notification(FROM, "first", "wamid.first", timestamp=TS)
    # thousands of short fields: nothing to truncate, but over the 64 KiB the row allows
    phones = [{"phone": f"+2507{i:08d}", "type": "CELL", "wa_id": f"2507{i:08d}"} for i in range(2500)]
    contacts = {"from": FROM, "id": "wamid.contacts", "timestamp": str(TS), "type": "contacts"}
    contacts["contacts"] = [{"name": {"formatted_name": "Many", "first_name": "Many"}, "phones": phones}]
    doc["entry"][0]["changes"][0]["value"]["messages"].append(contacts)
    doc["entry"][0]["changes"][0]["value"]["messages"].append(
        {"from": FROM, "id": "wamid.third", "timestamp": str(TS), "type": "text", "text": {"body": "third"}}
    )
    r = _post(client, _body(doc))
    assert r.status_code == 200 and r.json()["messages"] == 2 and r.json()["quarantined"] == 1
    [(kind, reason)] = conn.execute("select item_kind, reason from whatsapp_quarantine").fetchall()
    assert kind == "message" and "refused by the database: p_payload is too large" in reason
    assert conn.execute("select message_count from whatsapp_sessions").fetchone() == (2,)


def test_an_oversized_body_is_refused(client: TestClient, conn: psycopg.Connection[Any]) -> None:
    body = _text(body="x" * (300 * 1024))
    assert _post(client, body).status_code == 413
    assert _stored(conn) == (0, 0, 0)


def test_other_subscriptions_and_unknown_statuses_are_acknowledged_and_ignored(
    client: TestClient, conn: psycopg.Connection[Any]
) -> None:
    doc = {
        "object": "whatsapp_business_account",
        "entry": [{"id": "1", "changes": [{"field": "account_update", "value": {"event": "VERIFIED_ACCOUNT"}}]}],
    }
    assert _post(client, _body(doc)).status_code == 200
    r = _post(client, _body(payloads.status_notification("wamid.s", "deleted", FROM, timestamp=TS)))
    assert r.status_code == 200 and r.json()["statuses_ignored"] == 1
    assert _stored(conn) == (0, 0, 0)


@pytest.mark.pooled
def test_several_messages_in_one_notification(client: TestClient, conn: psycopg.Connection[Any]) -> None:
    doc = payloads.text_notification(FROM, "one", "wamid.1", timestamp=TS)
    value = doc["entry"][0]["changes"][0]["value"]
    value["messages"].append(
        {
            "from": "250722000111",
            "id": "wamid.2",
            "timestamp": str(TS),
            "type": "location",
            "location": {"latitude": -1.95, "longitude": 30.06},
        }
    )
    value["messages"].append(
        {
            "from": FROM,
            "id": "wamid.3",
            "timestamp": str(TS + 1),
            "type": "interactive",
            "interactive": {"type": "button_reply", "button_reply": {"id": "yes", "title": "Yego"}},
        }
    )
    r = _post(client, _body(doc))
    assert r.json()["messages"] == 3
    rows = conn.execute(
        "select whatsapp_message_id, message_type, body from whatsapp_inbound_messages order by whatsapp_message_id"
    ).fetchall()
    assert rows == [("wamid.1", "text", "one"), ("wamid.2", "location", None), ("wamid.3", "interactive", "Yego")]
    assert conn.execute("select phone_number, message_count from whatsapp_sessions order by 1").fetchall() == [
        ("+250722000111", 1),
        ("+250788123456", 2),
    ]


# ---- statuses -------------------------------------------------------------------------


def _sent_message(conn: psycopg.Connection[Any], wa_id: str) -> Any:
    with db.as_service(conn):
        mid = wa.send_text(conn, "+" + FROM, "Your driver is on the way")
        [m] = wa.claim_messages(conn)
        wa.mark_sent(conn, m.id, wa_id)
    return mid


def _status_row(conn: psycopg.Connection[Any], mid: Any) -> tuple[Any, ...]:
    row = conn.execute(
        "select status, delivered_at, read_at from whatsapp_message_queue where id = %s", (mid,)
    ).fetchone()
    assert row is not None
    return tuple(row)


@pytest.mark.pooled
def test_statuses_out_of_order_never_move_a_message_backwards(
    client: TestClient, conn: psycopg.Connection[Any]
) -> None:
    mid = _sent_message(conn, "wamid.out-1")

    def status(s: str, ts: int) -> httpx.Response:
        return _post(client, _body(payloads.status_notification("wamid.out-1", s, FROM, timestamp=ts)))

    assert status("read", TS + 20).json()["statuses_applied"] == 1
    assert status("delivered", TS + 10).json()["statuses_unchanged"] == 1
    assert status("sent", TS + 5).json()["statuses_unchanged"] == 1
    assert status("read", TS + 20).json()["statuses_unchanged"] == 1  # replay
    read_at = datetime.fromtimestamp(TS + 20, UTC)
    assert _status_row(conn, mid) == ("read", read_at, read_at)


def test_statuses_in_order(client: TestClient, conn: psycopg.Connection[Any]) -> None:
    mid = _sent_message(conn, "wamid.out-2")
    for s, ts in (("sent", TS), ("delivered", TS + 3), ("read", TS + 9)):
        assert (
            _post(client, _body(payloads.status_notification("wamid.out-2", s, FROM, timestamp=ts))).status_code == 200
        )
    assert _status_row(conn, mid) == ("read", datetime.fromtimestamp(TS + 3, UTC), datetime.fromtimestamp(TS + 9, UTC))


def test_a_failed_status_keeps_whatsapps_error(client: TestClient, conn: psycopg.Connection[Any]) -> None:
    mid = _sent_message(conn, "wamid.out-3")
    err = {
        "code": 131026,
        "title": "Message undeliverable",
        "message": "Message undeliverable",
        "error_data": {"details": "Receiver is incapable of receiving this message"},
    }
    r = _post(client, _body(payloads.status_notification("wamid.out-3", "failed", FROM, timestamp=TS, errors=[err])))
    assert r.json()["statuses_applied"] == 1
    row = conn.execute(
        "select status, last_error, wa_error from whatsapp_message_queue where id = %s", (mid,)
    ).fetchone()
    assert row == ("failed", "Message undeliverable", err)


def test_a_status_before_the_sender_recorded_the_id_is_applied_when_it_does(
    client: TestClient, conn: psycopg.Connection[Any]
) -> None:
    with db.as_service(conn):
        mid = wa.send_text(conn, "+" + FROM, "Payment received")
        [m] = wa.claim_messages(conn)
    r = _post(client, _body(payloads.status_notification("wamid.early", "delivered", FROM, timestamp=TS)))
    assert r.status_code == 200 and r.json()["statuses_unchanged"] == 1
    assert count(conn, "whatsapp_status_backlog") == 1
    with db.as_service(conn):
        wa.mark_sent(conn, m.id, "wamid.early")
    assert _status_row(conn, mid) == ("delivered", datetime.fromtimestamp(TS, UTC), None)


def test_healthz(client: TestClient) -> None:
    r = client.get("/healthz")
    assert r.status_code == 200 and r.json() == {"ok": True}


# ---- the real command -----------------------------------------------------------------


@pytest.mark.pooled
def test_platformdb_whatsapp_serve(db_url: str, conn: psycopg.Connection[Any]) -> None:
    port = devdb.free_port()
    env = {**os.environ, "WHATSAPP_APP_SECRET": "s", "WHATSAPP_VERIFY_TOKEN": "v"}
    env.pop("DATABASE_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "platformdb.cli", "whatsapp", "serve", "--port", str(port), "--database-url", db_url],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            if proc.poll() is not None:
                pytest.fail(f"serve exited: {proc.stdout.read().decode() if proc.stdout else ''}")
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            pytest.fail("serve did not come up")
        body = _text(wa_id="wamid.cli-1")
        wrong = httpx.post(base + PATH, content=body, headers={"X-Hub-Signature-256": payloads.sign(body, "x")})
        assert wrong.status_code == 401
        assert _stored(conn) == (0, 0, 0)
        ok = httpx.post(base + PATH, content=body, headers={"X-Hub-Signature-256": payloads.sign(body, "s")})
        assert ok.status_code == 200 and ok.json()["messages"] == 1
        assert conn.execute(
            "select message_count from whatsapp_sessions where phone_number = %s", ("+" + FROM,)
        ).fetchone() == (1,)
        again = _text(wa_id="wamid.cli-2", body="second")
        bad = httpx.post(base + PATH, content=again, headers={"X-Hub-Signature-256": payloads.sign(again, "v")})
        assert bad.status_code == 401
        assert conn.execute("select message_count from whatsapp_sessions").fetchone() == (1,)
        assert count(conn, "whatsapp_inbound_messages") == 1
        challenge = httpx.get(
            base + PATH, params={"hub.mode": "subscribe", "hub.verify_token": "v", "hub.challenge": "42"}
        )
        assert challenge.text == "42"
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_serve_refuses_to_start_without_the_secrets(db_url: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WHATSAPP_")}
    out = subprocess.run(
        [sys.executable, "-m", "platformdb.cli", "whatsapp", "serve", "--database-url", db_url],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 1 and "WHATSAPP_APP_SECRET" in out.stderr
