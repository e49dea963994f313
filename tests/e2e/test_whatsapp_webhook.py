"""The webhook receiver end to end: signed Cloud API notifications in, rows in a real
PostgreSQL out. Most tests drive the Starlette app in-process; one runs
`platformdb whatsapp serve` as a subprocess, the way it is deployed."""

from __future__ import annotations

import json
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


MALFORMED = {
    "not-json": b"{not json",
    "array": b"[]",
    "no-entry": _body({"object": "whatsapp_business_account"}),
    "entry-not-list": _body({"object": "whatsapp_business_account", "entry": {"id": "1"}}),
    "wrong-object": _body({"object": "page", "entry": []}),
    "no-changes": _body({"object": "whatsapp_business_account", "entry": [{"id": "1"}]}),
    "value-not-object": _body(
        {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages", "value": []}]}]}
    ),
    "message-without-from": _with_message({"id": "wamid.2", "timestamp": "1", "type": "text", "text": {"body": "y"}}),
    "from-not-a-number": _with_message(
        {"from": "+25078", "id": "wamid.2", "timestamp": "1", "type": "text", "text": {"body": "y"}}
    ),
    "bad-timestamp": _with_message(
        {"from": FROM, "id": "wamid.2", "timestamp": "yesterday", "type": "text", "text": {"body": "y"}}
    ),
    "text-without-body": _with_message({"from": FROM, "id": "wamid.2", "timestamp": "1", "type": "text"}),
    "status-without-id": _body(payloads.status_notification("wamid.s", "read", FROM, timestamp=TS)).replace(
        b'"id": "wamid.s", ', b""
    ),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_a_malformed_body_is_refused_and_nothing_is_stored(
    client: TestClient, conn: psycopg.Connection[Any], name: str
) -> None:
    r = _post(client, MALFORMED[name])
    assert r.status_code == 400, r.text
    assert "malformed" in r.json()["error"]
    assert _stored(conn) == (0, 0, 0)  # the valid first message of a batch is not kept either


def test_a_batch_the_database_refuses_is_refused_whole(client: TestClient, conn: psycopg.Connection[Any]) -> None:
    doc = payloads.text_notification(FROM, "first", "wamid.first", timestamp=TS)
    big = {"from": FROM, "id": "wamid.big", "timestamp": str(TS), "type": "text", "text": {"body": "x" * 70000}}
    doc["entry"][0]["changes"][0]["value"]["messages"].append(big)
    r = _post(client, _body(doc))
    assert r.status_code == 400 and "p_payload is too large" in r.json()["error"]
    assert _stored(conn) == (0, 0, 0)


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
