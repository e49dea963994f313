"""The WhatsApp Cloud API's wire shapes: webhook bodies in, message requests out.

Webhook notifications (`POST` to the callback URL) look like::

    {"object": "whatsapp_business_account",
     "entry": [{"id": "<WABA id>",
                "changes": [{"field": "messages",
                             "value": {"messaging_product": "whatsapp",
                                       "metadata": {"display_phone_number": "…",
                                                    "phone_number_id": "…"},
                                       "contacts": [{"profile": {"name": "…"}, "wa_id": "2507…"}],
                                       "messages": [{"from": "2507…", "id": "wamid.…",
                                                     "timestamp": "1750857384",
                                                     "type": "text", "text": {"body": "…"}}],
                                       "statuses": [{"id": "wamid.…", "status": "delivered",
                                                     "timestamp": "…", "recipient_id": "2507…",
                                                     "errors": [{"code": 131026, …}]}]}}]}]}

and are signed with `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body keyed by
the app secret>`. Phone numbers arrive as digits without `+`; platformdb stores E.164.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

KNOWN_STATUSES = ("sent", "delivered", "read", "failed")
MEDIA_KINDS = ("image", "audio", "video", "document", "sticker")
_DIGITS = re.compile(r"^[1-9][0-9]{6,14}$")
_TYPE = re.compile(r"^[a-z_]{1,32}$")
_TIMESTAMP = re.compile(r"^[0-9]{1,12}$")


class MalformedPayload(ValueError):
    """The body is not a webhook notification in the Cloud API's documented shape."""


@dataclass(frozen=True)
class InboundMessage:
    whatsapp_message_id: str
    from_phone: str  # E.164
    message_type: str
    sent_at: datetime
    payload: dict[str, Any]
    profile_name: str | None = None
    phone_number_id: str | None = None


@dataclass(frozen=True)
class StatusUpdate:
    whatsapp_message_id: str
    status: str
    at: datetime
    recipient_phone: str | None = None
    error: dict[str, Any] | None = None


@dataclass
class WebhookBatch:
    messages: list[InboundMessage] = field(default_factory=list)
    statuses: list[StatusUpdate] = field(default_factory=list)
    ignored_statuses: int = 0
    ignored_changes: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)


# ---- signatures -----------------------------------------------------------------------


def sign(body: bytes, app_secret: str) -> str:
    """The X-Hub-Signature-256 header value Meta sends for `body`."""
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def signature_valid(body: bytes, header: str | None, app_secret: str) -> bool:
    """Constant-time check of an X-Hub-Signature-256 header against the raw body."""
    if not header or not app_secret:
        return False
    expected = sign(body, app_secret)
    return hmac.compare_digest(expected.encode(), header.strip().encode())


# ---- parsing --------------------------------------------------------------------------


def _phone(digits: Any, where: str) -> str:
    if not isinstance(digits, str) or not _DIGITS.match(digits):
        raise MalformedPayload(f"{where} must be a phone number in digits (wa_id)")
    return "+" + digits


def _timestamp(value: Any, where: str) -> datetime:
    if not isinstance(value, str | int) or not _TIMESTAMP.match(str(value)):
        raise MalformedPayload(f"{where} must be a Unix timestamp in seconds")
    try:
        return datetime.fromtimestamp(int(value), UTC)
    except (ValueError, OverflowError, OSError) as exc:  # past year 9999
        raise MalformedPayload(f"{where} is out of range: {exc}") from exc


def _text(value: Any, where: str, max_len: int = 256) -> str:
    if not isinstance(value, str) or not value or len(value) > max_len:
        raise MalformedPayload(f"{where} must be a non-empty string of at most {max_len} characters")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise MalformedPayload(f"{where} must be an array")
    return value


def _dict(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise MalformedPayload(f"{where} must be an object")
    return value


def _storable(node: Any, where: str = "body") -> None:
    """PostgreSQL text cannot hold NUL, and a lone surrogate is not UTF-8: refuse both here
    (a 400) rather than fail while storing (a 500 that Meta would redeliver forever)."""
    stack = [(node, where)]
    while stack:
        value, at = stack.pop()
        if isinstance(value, dict):
            for k, v in value.items():
                # the path names keys by repr: a key may be the bad text itself
                stack.append((k, f"{at} key"))
                stack.append((v, f"{at}.{ascii(k)[:60]}"))
        elif isinstance(value, list):
            stack.extend((v, f"{at}[{i}]") for i, v in enumerate(value))
        elif isinstance(value, str):
            if "\x00" in value:
                raise MalformedPayload(f"{at} contains a NUL character")
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise MalformedPayload(f"{at} is not valid Unicode (a lone surrogate)") from exc


def parse_webhook(body: bytes) -> WebhookBatch:
    """Validate a whole notification before anything is stored; MalformedPayload if not valid."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise MalformedPayload(f"body is not JSON: {exc}") from exc
    _storable(doc)
    doc = _dict(doc, "body")
    if doc.get("object", "whatsapp_business_account") != "whatsapp_business_account":
        raise MalformedPayload("object must be whatsapp_business_account")
    if "entry" not in doc:
        raise MalformedPayload("entry is missing")
    batch = WebhookBatch()
    for i, entry in enumerate(_list(doc["entry"], "entry")):
        entry = _dict(entry, f"entry[{i}]")
        if "changes" not in entry:
            raise MalformedPayload(f"entry[{i}].changes is missing")
        for j, change in enumerate(_list(entry["changes"], f"entry[{i}].changes")):
            where = f"entry[{i}].changes[{j}]"
            change = _dict(change, where)
            value = _dict(change.get("value"), f"{where}.value")
            if change.get("field", "messages") != "messages":
                batch.ignored_changes += 1  # other subscriptions (account updates, …)
                continue
            _parse_value(value, where + ".value", batch)
    return batch


def _parse_value(value: dict[str, Any], where: str, batch: WebhookBatch) -> None:
    metadata = value.get("metadata")
    phone_number_id = None
    if metadata is not None:
        pid = _dict(metadata, f"{where}.metadata").get("phone_number_id")
        phone_number_id = str(pid) if pid is not None else None
    names: dict[str, str] = {}
    for k, contact in enumerate(_list(value.get("contacts"), f"{where}.contacts")):
        contact = _dict(contact, f"{where}.contacts[{k}]")
        profile = contact.get("profile")
        if isinstance(profile, dict) and isinstance(profile.get("name"), str) and isinstance(contact.get("wa_id"), str):
            names[contact["wa_id"]] = profile["name"][:256]

    for k, msg in enumerate(_list(value.get("messages"), f"{where}.messages")):
        w = f"{where}.messages[{k}]"
        msg = _dict(msg, w)
        mtype = msg.get("type")
        if not isinstance(mtype, str) or not _TYPE.match(mtype):
            raise MalformedPayload(f"{w}.type must be a message type such as text")
        if mtype == "text":
            text = msg.get("text")
            if not isinstance(text, dict) or not isinstance(text.get("body"), str):
                raise MalformedPayload(f"{w}.text.body must be a string")
        batch.messages.append(
            InboundMessage(
                whatsapp_message_id=_text(msg.get("id"), f"{w}.id"),
                from_phone=_phone(msg.get("from"), f"{w}.from"),
                message_type=mtype,
                sent_at=_timestamp(msg.get("timestamp"), f"{w}.timestamp"),
                payload=msg,
                profile_name=names.get(msg["from"]),
                phone_number_id=phone_number_id,
            )
        )

    for k, st in enumerate(_list(value.get("statuses"), f"{where}.statuses")):
        w = f"{where}.statuses[{k}]"
        st = _dict(st, w)
        status = _text(st.get("status"), f"{w}.status", 32)
        wa_id = _text(st.get("id"), f"{w}.id")
        at = _timestamp(st.get("timestamp"), f"{w}.timestamp")
        recipient = st.get("recipient_id")
        errors = _list(st.get("errors"), f"{w}.errors")
        if status not in KNOWN_STATUSES:
            batch.ignored_statuses += 1  # e.g. deleted, warning: nothing to move
            continue
        error = None
        if errors:
            error = _dict(errors[0], f"{w}.errors[0]")
            if len(errors) > 1:
                error = {**error, "more_errors": errors[1:]}
        batch.statuses.append(
            StatusUpdate(
                whatsapp_message_id=wa_id,
                status=status,
                at=at,
                recipient_phone=("+" + recipient) if isinstance(recipient, str) and _DIGITS.match(recipient) else None,
                error=error,
            )
        )

    for err in _list(value.get("errors"), f"{where}.errors"):
        if isinstance(err, dict):
            batch.errors.append(err)


# ---- outbound requests ----------------------------------------------------------------


def build_message_request(
    recipient_phone: str,
    message_type: str,
    payload: dict[str, Any],
    correlation_id: str | None = None,
) -> dict[str, Any]:
    """The JSON body of `POST /{phone-number-id}/messages` for a queued message.

    The queued payload is the Cloud API object for its type (`{"body": …}` for text, …);
    a media message names its kind in `media_type` (image, audio, video, document, sticker).
    """
    body: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": recipient_phone.lstrip("+"),
    }
    if message_type == "media":
        kind = payload.get("media_type")
        if kind not in MEDIA_KINDS:
            raise ValueError(f"media payload needs media_type in {MEDIA_KINDS}")
        body["type"] = kind
        body[kind] = {k: v for k, v in payload.items() if k != "media_type"}
    else:
        body["type"] = message_type
        body[message_type] = payload
    if correlation_id:
        body["biz_opaque_callback_data"] = correlation_id[:512]
    return body


def text_notification(
    from_digits: str,
    body: str,
    wa_id: str,
    *,
    timestamp: int,
    name: str = "Test User",
    phone_number_id: str = "106540352242922",
) -> dict[str, Any]:
    """A documented inbound-text notification (for tests, demos and manual checks)."""
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "102290129340398",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": "15550783881",
                                "phone_number_id": phone_number_id,
                            },
                            "contacts": [{"profile": {"name": name}, "wa_id": from_digits}],
                            "messages": [
                                {
                                    "from": from_digits,
                                    "id": wa_id,
                                    "timestamp": str(timestamp),
                                    "type": "text",
                                    "text": {"body": body},
                                }
                            ],
                        },
                    }
                ],
            }
        ],
    }


def status_notification(
    wa_id: str,
    status: str,
    recipient_digits: str,
    *,
    timestamp: int,
    errors: list[dict[str, Any]] | None = None,
    phone_number_id: str = "106540352242922",
) -> dict[str, Any]:
    """A documented status notification (sent, delivered, read or failed)."""
    st: dict[str, Any] = {
        "id": wa_id,
        "status": status,
        "timestamp": str(timestamp),
        "recipient_id": recipient_digits,
    }
    if status != "failed":
        st["conversation"] = {"id": "a75d17ad06104c51166f948319b03c6a", "origin": {"type": "service"}}
        st["pricing"] = {"billable": True, "pricing_model": "CBP", "category": "service"}
    if errors:
        st["errors"] = errors
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "102290129340398",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": "15550783881",
                                "phone_number_id": phone_number_id,
                            },
                            "statuses": [st],
                        },
                    }
                ],
            }
        ],
    }
