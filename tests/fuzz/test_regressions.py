"""Bugs the fuzzers found, each pinned by a plain test (so it stays fixed whatever the
random draw of a later run). The cache-counting names the SQL fuzz found are pinned in
tests/db/test_cache.py, next to the functions' other tests."""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest
from starlette.testclient import TestClient

from platformdb.whatsapp_cloud import payloads
from platformdb.whatsapp_cloud.webhook import WEBHOOK_PATH, create_app
from tests.helpers import count

SECRET = "regression-secret"


def _signed(doc: Any) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(doc).encode()
    return body, {"Content-Type": "application/json", "X-Hub-Signature-256": payloads.sign(body, SECRET)}


@pytest.mark.parametrize(
    ("field", "value", "outcome"),
    [
        ("id", "wamid.\x00nul", "stored"),
        ("id", "wamid.\ud800", "stored"),
        ("timestamp", "999999999999", "quarantined"),
        ("name", "Aline\x00", "stored"),
        ("name", "\udfff", "stored"),
    ],
)
def test_a_signed_notification_with_values_the_database_cannot_take_is_never_a_500(
    db_url: str, conn: psycopg.Connection[Any], field: str, value: str, outcome: str
) -> None:
    # found by the webhook fuzz: NUL bytes and lone surrogates failed in the driver, a
    # timestamp past year 9999 in datetime — each answered 500, inviting endless redelivery.
    # Now: NUL and lone surrogates are stored escaped, the impossible timestamp quarantined.
    doc = payloads.text_notification("250788123456", "Muraho", "wamid.ok", timestamp=1750857384)
    value_doc = doc["entry"][0]["changes"][0]["value"]
    if field == "name":
        value_doc["contacts"][0]["profile"]["name"] = value
    else:
        value_doc["messages"][0][field] = value
    body, headers = _signed(doc)
    with TestClient(create_app(db_url, SECRET, "verify"), raise_server_exceptions=False) as client:
        r = client.post(WEBHOOK_PATH, content=body, headers=headers)
    assert r.status_code == 200, (r.status_code, r.text)
    stored = outcome == "stored"
    assert count(conn, "whatsapp_inbound_messages") == int(stored)
    assert count(conn, "whatsapp_quarantine") == int(not stored)
    if stored and field == "id":
        [(wa_id,)] = conn.execute("select whatsapp_message_id from whatsapp_inbound_messages").fetchall()
        assert "\\u" in wa_id  # escaped, readable


def test_a_signed_body_nested_past_the_parser_s_depth_is_a_400(db_url: str, conn: psycopg.Connection[Any]) -> None:
    # found by the webhook fuzz: json.loads raised RecursionError, answered 500
    body = b"[" * 200_000 + b"]" * 200_000
    headers = {"Content-Type": "application/json", "X-Hub-Signature-256": payloads.sign(body, SECRET)}
    with TestClient(create_app(db_url, SECRET, "verify"), raise_server_exceptions=False) as client:
        r = client.post(WEBHOOK_PATH, content=body, headers=headers)
    assert r.status_code == 400, (r.status_code, r.text[:200])
    assert count(conn, "whatsapp_inbound_messages") == 0


@pytest.mark.parametrize("body", [b"Infinity", b"NaN", b'{"entry": [{"id": -Infinity}]}'])
def test_a_signed_body_with_a_non_json_number_is_a_400(db_url: str, conn: psycopg.Connection[Any], body: bytes) -> None:
    # found by the deep webhook fuzz: json.loads reads NaN and Infinity, jsonb refuses them, the
    # store failed and the receiver answered 500 ("temporarily unable to store")
    headers = {"Content-Type": "application/json", "X-Hub-Signature-256": payloads.sign(body, SECRET)}
    with TestClient(create_app(db_url, SECRET, "verify"), raise_server_exceptions=False) as client:
        r = client.post(WEBHOOK_PATH, content=body, headers=headers)
    assert r.status_code == 400, (r.status_code, r.text[:200])
    assert "not a JSON value" in r.text
    assert count(conn, "whatsapp_inbound_messages") == 0


def test_a_signed_body_nested_deeper_than_any_notification_is_quarantined(
    db_url: str, conn: psycopg.Connection[Any]
) -> None:
    # JSON that parses but nests far deeper than any documented shape: kept as its opening
    body = b'{"entry": ' + b"[" * 500 + b"]" * 500 + b"}"
    headers = {"Content-Type": "application/json", "X-Hub-Signature-256": payloads.sign(body, SECRET)}
    with TestClient(create_app(db_url, SECRET, "verify"), raise_server_exceptions=False) as client:
        r = client.post(WEBHOOK_PATH, content=body, headers=headers)
    assert r.status_code == 200 and r.json()["quarantined"] == 1, (r.status_code, r.text[:200])
    [(reason, item)] = conn.execute("select reason, item from whatsapp_quarantine").fetchall()
    assert "levels deep" in reason and item["bytes"] == len(body)


def test_a_hostile_key_is_still_never_a_500(db_url: str, conn: psycopg.Connection[Any]) -> None:
    # a key that is itself not valid Unicode beside a valid (empty) notification
    body, headers = _signed({"\ud800": "\x00", "entry": []})
    with TestClient(create_app(db_url, SECRET, "verify"), raise_server_exceptions=False) as client:
        r = client.post(WEBHOOK_PATH, content=body, headers=headers)
    assert r.status_code == 200, (r.status_code, r.text[:200])
    assert count(conn, "whatsapp_inbound_messages") == 0
    body, headers = _signed({"\ud800": "\x00", "entry": "x"})  # and quarantined when unusable
    with TestClient(create_app(db_url, SECRET, "verify"), raise_server_exceptions=False) as client:
        r = client.post(WEBHOOK_PATH, content=body, headers=headers)
    assert r.status_code == 200 and r.json()["quarantined"] == 1, (r.status_code, r.text[:200])
    [(item,)] = conn.execute("select item from whatsapp_quarantine").fetchall()
    assert item == {"\\ud800": "\\u0000", "entry": "x"}
