"""A corpus of webhook notifications the project writes itself from the WhatsApp Cloud API
webhook reference: every inbound message type, statuses with pricing and conversation,
system messages, errors arrays, several entries and changes in one POST, users known only by
a business-scoped user id. Each is signed and sent twice: the first delivery stores what it
should (and quarantines nothing), the second stores nothing more."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from starlette.testclient import TestClient

from platformdb import db
from platformdb.sdk import whatsapp as wa
from platformdb.whatsapp_cloud import payloads
from platformdb.whatsapp_cloud.webhook import create_app
from tests.helpers import count

SECRET = "corpus-secret"
PATH = "/webhooks/whatsapp"
USER = "250788123456"
BSUID = "RW.1502576394655843"
TS = "1765000000"
META = {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"}
CONTACT = {"profile": {"name": "Aline"}, "wa_id": USER, "user_id": BSUID}


def _doc(*values: dict[str, Any]) -> dict[str, Any]:
    changes = [{"field": "messages", "value": {"messaging_product": "whatsapp", "metadata": META, **v}} for v in values]
    return {"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": changes}]}


def _msg(wa_id: str, mtype: str, obj: Any = None, **extra: Any) -> dict[str, Any]:
    m: dict[str, Any] = {"from": USER, "from_user_id": BSUID, "id": wa_id, "timestamp": TS, "type": mtype}
    if obj is not None:
        m[mtype] = obj
    m.update(extra)
    return m


def _inbound(*msgs: dict[str, Any]) -> dict[str, Any]:
    return _doc({"contacts": [CONTACT], "messages": list(msgs)})


MEDIA = {"mime_type": "image/jpeg", "sha256": "PAJ0Y1Ymc2ImZW5xc2l0ZmhlbWUQ==", "id": "1037543291543636"}
MESSAGES: dict[str, dict[str, Any]] = {
    "text": _msg("wamid.c-text", "text", {"body": "Muraho! I need a ride to Kimironko"}),
    "text-reply": _msg("wamid.c-reply", "text", {"body": "Yes"}, context={"from": "15550783881", "id": "wamid.out"}),
    "image": _msg("wamid.c-image", "image", {**MEDIA, "caption": "my receipt"}),
    "audio": _msg(
        "wamid.c-audio", "audio", {"mime_type": "audio/ogg; codecs=opus", "sha256": "x", "id": "2", "voice": True}
    ),
    "video": _msg("wamid.c-video", "video", {"mime_type": "video/mp4", "sha256": "x", "id": "3"}),
    "document": _msg(
        "wamid.c-doc", "document", {"filename": "invoice.pdf", "mime_type": "application/pdf", "sha256": "x", "id": "4"}
    ),
    "sticker": _msg(
        "wamid.c-sticker", "sticker", {"mime_type": "image/webp", "sha256": "x", "id": "5", "animated": False}
    ),
    "location": _msg(
        "wamid.c-loc",
        "location",
        {"latitude": -1.9441, "longitude": 30.0619, "name": "KCC", "address": "KG 2 Roundabout"},
    ),
    "contacts": _msg(
        "wamid.c-contacts",
        "contacts",
        None,
        contacts=[
            {
                "name": {"formatted_name": "Jean Mugabo", "first_name": "Jean", "last_name": "Mugabo"},
                "phones": [{"phone": "+250 788 000 111", "type": "CELL", "wa_id": "250788000111"}],
                "emails": [{"email": "jean@example.rw", "type": "WORK"}],
            }
        ],
    ),
    "button-reply": _msg(
        "wamid.c-btn", "interactive", {"type": "button_reply", "button_reply": {"id": "confirm", "title": "Yego"}}
    ),
    "list-reply": _msg(
        "wamid.c-list",
        "interactive",
        {"type": "list_reply", "list_reply": {"id": "moto", "title": "Moto", "description": "A motorbike taxi"}},
    ),
    "flow-reply": _msg(
        "wamid.c-flow",
        "interactive",
        {"type": "nfm_reply", "nfm_reply": {"name": "flow", "body": "Sent", "response_json": '{"pickup": "Remera"}'}},
    ),
    "template-quick-reply": _msg(
        "wamid.c-qr", "button", {"payload": "STOP", "text": "Stop promotions"}, context={"from": "155", "id": "wamid.t"}
    ),
    "reaction": _msg("wamid.c-react", "reaction", {"message_id": "wamid.out", "emoji": "❤️"}),
    "order": _msg(
        "wamid.c-order",
        "order",
        {
            "catalog_id": "9000",
            "text": "for tonight",
            "product_items": [{"product_retailer_id": "sku-1", "quantity": 2, "item_price": 2500, "currency": "RWF"}],
        },
    ),
    "ad-referral": _msg(
        "wamid.c-ad",
        "text",
        {"body": "I saw your ad"},
        referral={
            "source_url": "https://fb.me/ad",
            "source_id": "120",
            "source_type": "ad",
            "headline": "Rides",
            "body": "Ride in Kigali",
            "media_type": "image",
            "image_url": "https://x/y.jpg",
            "ctwa_clid": "ARAkLkA8rmlFeiCktEJQ",
        },
    ),
    "system-changed-number": _msg(
        "wamid.c-sys",
        "system",
        {
            "body": "User A changed from 250788123456 to 250788999999",
            "wa_id": "250788999999",
            "type": "user_changed_number",
        },
    ),
    "unsupported": _msg(
        "wamid.c-unsup",
        "unsupported",
        {"type": "edit"},
        errors=[{"code": 131051, "title": "Message type unknown", "message": "Message type unknown"}],
    ),
    "username-only-user": {
        "from_user_id": "US.13491208655302741918",
        "id": "wamid.c-bsuid",
        "timestamp": TS,
        "type": "text",
        "text": {"body": "hello from a username"},
    },
}
PRICING = {"billable": True, "pricing_model": "PMP", "category": "utility", "type": "regular"}
CONVERSATION = {"id": "c0ffee01", "expiration_timestamp": "1765086400", "origin": {"type": "utility"}}


def _status(wa_id: str, status: str, ts: int, **extra: Any) -> dict[str, Any]:
    return {
        "id": wa_id,
        "status": status,
        "timestamp": str(ts),
        "recipient_id": USER,
        "recipient_user_id": BSUID,
        **extra,
    }


# name -> (notification, inbound messages it stores, statuses applied)
CORPUS: dict[str, tuple[dict[str, Any], int, int]] = {
    **{f"message-{k}": (_inbound(m), 1, 0) for k, m in MESSAGES.items()},
    "all-messages-in-one-post": (_inbound(*MESSAGES.values()), len(MESSAGES), 0),
    "several-entries-and-changes": (
        {
            "object": "whatsapp_business_account",
            "entry": [
                _doc({"contacts": [CONTACT], "messages": [MESSAGES["text"]]})["entry"][0],
                {
                    "id": "102290129340399",
                    "changes": [
                        _doc({"statuses": [_status("wamid.corpus-out", "delivered", 1765000010, pricing=PRICING)]})[
                            "entry"
                        ][0]["changes"][0],
                        _doc({"contacts": [CONTACT], "messages": [MESSAGES["list-reply"]]})["entry"][0]["changes"][0],
                    ],
                },
            ],
        },
        2,
        1,
    ),
    "status-sent-with-pricing": (
        _doc(
            {"statuses": [_status("wamid.corpus-out", "sent", 1765000005, pricing=PRICING, conversation=CONVERSATION)]}
        ),
        0,
        0,  # the sender already recorded it sent: only the pricing is new
    ),
    "status-delivered-read": (
        _doc(
            {
                "statuses": [
                    _status("wamid.corpus-out", "delivered", 1765000010, pricing=PRICING, conversation=CONVERSATION),
                    _status("wamid.corpus-out", "read", 1765000020),
                ]
            }
        ),
        0,
        2,
    ),
    "status-failed-131047": (
        _doc(
            {
                "statuses": [
                    _status(
                        "wamid.corpus-out",
                        "failed",
                        1765000030,
                        errors=[
                            {
                                "code": 131047,
                                "title": "Re-engagement message",
                                "message": "Re-engagement message",
                                "error_data": {
                                    "details": "Message failed to send because more than 24 hours have passed"
                                },
                            }
                        ],
                    )
                ]
            }
        ),
        0,
        1,
    ),
    "errors-array": (
        _doc({"errors": [{"code": 130429, "title": "Rate limit hit", "message": "Rate limit hit"}]}),
        0,
        0,
    ),
    "account-update": (
        {
            "object": "whatsapp_business_account",
            "entry": [{"id": "1", "changes": [{"field": "account_update", "value": {"event": "VERIFIED_ACCOUNT"}}]}],
        },
        0,
        0,
    ),
}


@pytest.fixture
def client(db_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(db_url, SECRET, "verify")) as c:
        yield c


def _post(client: TestClient, doc: dict[str, Any]) -> dict[str, Any]:
    body = json.dumps(doc).encode()
    r = client.post(PATH, content=body, headers={"X-Hub-Signature-256": payloads.sign(body, SECRET)})
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def _queued_and_sent(conn: psycopg.Connection[Any]) -> None:
    with db.as_service(conn):
        wa.enqueue_message(conn, "+" + USER, "template", {"name": "ride_receipt", "language": {"code": "en_US"}})
        [m] = wa.claim_messages(conn)
        wa.mark_sent(conn, m.id, "wamid.corpus-out")


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_each_notification_is_stored_once_and_nothing_is_quarantined(
    client: TestClient, conn: psycopg.Connection[Any], name: str
) -> None:
    doc, messages, statuses = CORPUS[name]
    if "status" in name or "entries" in name:
        _queued_and_sent(conn)
    first = _post(client, doc)
    assert first["quarantined"] == 0 and first["messages"] == messages, first
    assert first["statuses_applied"] == statuses, first
    assert count(conn, "whatsapp_inbound_messages") == messages
    if "pricing" in name or "entries" in name or "delivered" in name:
        assert conn.execute("select pricing_category, pricing_billable from whatsapp_message_queue").fetchone() == (
            "utility",
            True,
        )
    before = conn.execute(
        "select count(*), sum(hashtextextended(m::text, 0)) from whatsapp_inbound_messages m"
    ).fetchone()
    queue = conn.execute("select status, pricing_category, read_at from whatsapp_message_queue").fetchall()
    second = _post(client, doc)
    assert second["messages"] == 0 and second["duplicates"] == messages and second["statuses_applied"] == 0, second
    assert (
        conn.execute("select count(*), sum(hashtextextended(m::text, 0)) from whatsapp_inbound_messages m").fetchone()
        == before
    )
    assert conn.execute("select status, pricing_category, read_at from whatsapp_message_queue").fetchall() == queue
    assert count(conn, "whatsapp_quarantine") == 0


def test_what_the_corpus_stores(client: TestClient, conn: psycopg.Connection[Any]) -> None:
    _post(client, CORPUS["all-messages-in-one-post"][0])
    bodies = dict(conn.execute("select whatsapp_message_id, body from whatsapp_inbound_messages").fetchall())
    assert bodies["wamid.c-text"] == "Muraho! I need a ride to Kimironko"
    assert bodies["wamid.c-image"] == "my receipt" and bodies["wamid.c-btn"] == "Yego"
    assert bodies["wamid.c-list"] == "Moto" and bodies["wamid.c-qr"] == "Stop promotions"
    assert bodies["wamid.c-react"] == "❤️"
    sessions = conn.execute(
        "select phone_number, business_user_id, message_count, service_window_ends_at - last_inbound_at"
        " from whatsapp_sessions order by message_count desc"
    ).fetchall()
    # one user known by phone and user id (all but one message; the ad opened 72 h), and one
    # known only by a username's user id
    assert [s[:3] for s in sessions] == [
        ("+" + USER, BSUID, len(MESSAGES) - 1),
        (None, "US.13491208655302741918", 1),
    ]
    from datetime import timedelta

    assert sessions[0][3] == timedelta(hours=72)
