"""Templates: `platformdb whatsapp templates sync` against the local Graph API stand-in (all
pages), then enqueueing a template checked against what was synced."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from platformdb import db, errors
from platformdb.sdk import whatsapp as wa
from platformdb.whatsapp_cloud.graph_stub import GraphStub
from tests.helpers import count, raises_sqlstate

WABA = "102290129340398"
PHONE = "+250788123456"
TEMPLATES = [
    {
        "id": "1",
        "name": "ride_receipt",
        "language": "en_US",
        "category": "UTILITY",
        "status": "APPROVED",
        "components": [
            {"type": "HEADER", "format": "IMAGE"},
            {"type": "BODY", "text": "Hi {{1}}, your ride to {{2}} cost {{3}} RWF. Thanks, {{1}}!"},
            {"type": "FOOTER", "text": "Murakoze"},
            {
                "type": "BUTTONS",
                "buttons": [
                    {"type": "URL", "text": "Receipt", "url": "https://rides.example/r/{{1}}"},
                    {"type": "QUICK_REPLY", "text": "Thanks"},
                ],
            },
        ],
    },
    {"id": "2", "name": "ride_receipt", "language": "rw", "category": "UTILITY", "status": "PENDING", "components": []},
    {
        "id": "3",
        "name": "login_code",
        "language": "en_US",
        "category": "AUTHENTICATION",
        "status": "APPROVED",
        "components": [
            {"type": "BODY", "text": "{{1}} is your code."},
            {"type": "BUTTONS", "buttons": [{"type": "OTP", "otp_type": "COPY_CODE", "text": "Copy code"}]},
        ],
    },
]


@pytest.fixture
def stub() -> Iterator[GraphStub]:
    with GraphStub(token="tpl-token", phone_number_id="106540352242922") as s:
        for t in TEMPLATES:
            s.add_template(t)
        yield s


def _sync(stub: GraphStub, db_url: str) -> subprocess.CompletedProcess[str]:
    env = {
        **{k: v for k, v in os.environ.items() if k != "DATABASE_URL"},
        "WHATSAPP_ACCESS_TOKEN": stub.token,
        "WHATSAPP_PHONE_NUMBER_ID": stub.phone_number_id,
        "WHATSAPP_GRAPH_URL": stub.base_url,
        "WHATSAPP_BUSINESS_ACCOUNT_ID": WABA,
    }
    return subprocess.run(
        [sys.executable, "-m", "platformdb.cli", "whatsapp", "templates", "sync", "--database-url", db_url],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _receipt(body_params: int = 3, button: bool = True, header: bool = True, **kw: Any) -> dict[str, Any]:
    components: list[dict[str, Any]] = []
    if header:
        components.append({"type": "header", "parameters": [{"type": "image", "image": {"link": "https://x/y.jpg"}}]})
    components.append({"type": "body", "parameters": [{"type": "text", "text": f"p{i}"} for i in range(body_params)]})
    if button:
        components.append(
            {"type": "button", "sub_type": "url", "index": "0", "parameters": [{"type": "text", "text": "abc"}]}
        )
    return {"name": "ride_receipt", "language": {"code": "en_US"}, "components": components, **kw}


def test_sync_stores_every_page_with_its_placeholders(
    stub: GraphStub, db_url: str, conn: psycopg.Connection[Any]
) -> None:
    out = _sync(stub, db_url)
    assert out.returncode == 0 and "synced 3 templates (2 approved)" in out.stdout, out.stdout + out.stderr
    rows = conn.execute(
        "select name, language, category, status, placeholders from whatsapp_templates order by 1, 2"
    ).fetchall()
    assert rows == [
        ("login_code", "en_US", "AUTHENTICATION", "APPROVED", {"BODY": 1, "BUTTONS:0": 1}),
        ("ride_receipt", "en_US", "UTILITY", "APPROVED", {"HEADER": 1, "BODY": 3, "BUTTONS:0": 1}),
        ("ride_receipt", "rw", "UTILITY", "PENDING", {}),
    ]
    assert len([r for r in stub.requests if r.path.split("?")[0].endswith("/message_templates")]) == 2  # 2 pages
    # a template the account no longer lists
    stub.state.templates.pop(2)
    assert _sync(stub, db_url).returncode == 0
    assert conn.execute("select status from whatsapp_templates where name = 'login_code'").fetchone() == ("REMOVED",)


def test_enqueue_checks_a_template_against_the_synced_ones(
    stub: GraphStub, db_url: str, conn: psycopg.Connection[Any]
) -> None:
    with db.as_service(conn):  # before any sync: not judged
        wa.enqueue_message(conn, PHONE, "template", {"name": "anything", "language": {"code": "en_US"}})
    assert _sync(stub, db_url).returncode == 0
    with db.as_service(conn):
        wa.enqueue_message(conn, PHONE, "template", _receipt())
    cases = [
        ({"name": "ride_reciept", "language": {"code": "en_US"}}, "no template ride_reciept in language en_US"),
        (_receipt(language={"code": "fr"}), "no template ride_receipt in language fr"),
        (_receipt(language={"code": "rw"}), "is PENDING, not APPROVED"),
        (_receipt(body_params=2), r"takes 3 parameter\(s\) in body, got 2"),
        (_receipt(button=False), r"takes 1 parameter\(s\) in buttons:0, got 0"),
        (_receipt(header=False), r"takes 1 parameter\(s\) in header, got 0"),
    ]
    for payload, match in cases:
        with raises_sqlstate("PDW02", match) as info, db.as_service(conn):
            wa.enqueue_message(conn, PHONE, "template", payload)
        assert isinstance(info.value, errors.TemplateMismatch)
    assert count(conn, "whatsapp_message_queue") == 2  # only the two accepted
