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
    ("field", "value"),
    [
        ("id", "wamid.\x00nul"),
        ("id", "wamid.\ud800"),
        ("timestamp", "999999999999"),
        ("name", "Aline\x00"),
        ("name", "\udfff"),
    ],
)
def test_a_signed_notification_with_values_the_database_cannot_take_is_a_400(
    db_url: str, conn: psycopg.Connection[Any], field: str, value: str
) -> None:
    # found by the webhook fuzz: NUL bytes and lone surrogates failed in the driver, a
    # timestamp past year 9999 in datetime — each answered 500, inviting endless redelivery
    doc = payloads.text_notification("250788123456", "Muraho", "wamid.ok", timestamp=1750857384)
    value_doc = doc["entry"][0]["changes"][0]["value"]
    if field == "name":
        value_doc["contacts"][0]["profile"]["name"] = value
    else:
        value_doc["messages"][0][field] = value
    body, headers = _signed(doc)
    with TestClient(create_app(db_url, SECRET, "verify"), raise_server_exceptions=False) as client:
        r = client.post(WEBHOOK_PATH, content=body, headers=headers)
    assert r.status_code == 400, (r.status_code, r.text)
    assert count(conn, "whatsapp_inbound_messages") == 0 and count(conn, "whatsapp_sessions") == 0


def test_a_signed_body_nested_past_the_parser_s_depth_is_a_400(db_url: str, conn: psycopg.Connection[Any]) -> None:
    # found by the webhook fuzz: json.loads raised RecursionError, answered 500
    body = b"[" * 200_000 + b"]" * 200_000
    headers = {"Content-Type": "application/json", "X-Hub-Signature-256": payloads.sign(body, SECRET)}
    with TestClient(create_app(db_url, SECRET, "verify"), raise_server_exceptions=False) as client:
        r = client.post(WEBHOOK_PATH, content=body, headers=headers)
    assert r.status_code == 400, (r.status_code, r.text[:200])
    assert count(conn, "whatsapp_inbound_messages") == 0


def test_a_refusal_naming_a_hostile_key_is_still_a_400(db_url: str, conn: psycopg.Connection[Any]) -> None:
    # the refusal message names where the bad value is: a key that is itself not valid
    # Unicode must not make the answer unencodable (a 500)
    body, headers = _signed({"\ud800": "\x00", "entry": []})
    with TestClient(create_app(db_url, SECRET, "verify"), raise_server_exceptions=False) as client:
        r = client.post(WEBHOOK_PATH, content=body, headers=headers)
    assert r.status_code == 400, (r.status_code, r.text[:200])
    assert count(conn, "whatsapp_inbound_messages") == 0
