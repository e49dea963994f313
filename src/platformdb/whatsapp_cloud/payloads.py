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

from platformdb import strict_json

KNOWN_STATUSES = ("sent", "delivered", "read", "failed")
MEDIA_KINDS = ("image", "audio", "video", "document", "sticker")
_DIGITS = re.compile(r"^[1-9][0-9]{6,14}$")
_USER_ID = re.compile(r"^[A-Z]{2}\.(ENT\.)?[A-Za-z0-9]{1,128}$")
_TYPE = re.compile(r"^[a-z_]{1,32}$")
_TIMESTAMP = re.compile(r"^[0-9]{1,12}$")
# a field longer than this is truncated to be stored (the original size is recorded); a
# message still over the row limit after that has its fields cut to SMALL_FIELD_CHARS
MAX_FIELD_CHARS = 16384
SMALL_FIELD_CHARS = 1024
MAX_STORED_BYTES = 60 * 1024
MAX_ADJUSTMENTS = 50
MAX_DEPTH = 64


def _depth(node: Any) -> int:
    """How deeply `node` nests, up to MAX_DEPTH + 1 (without recursion: a hostile body may
    nest thousands deep)."""
    deepest, stack = 0, [(node, 1)]
    while stack:
        value, d = stack.pop()
        deepest = max(deepest, d)
        if d > MAX_DEPTH:
            return d
        if isinstance(value, dict):
            stack.extend((v, d + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, d + 1) for v in value)
    return deepest


class MalformedPayload(ValueError):
    """The body is not JSON: the only refusal of a validly signed notification."""


class BadItem(ValueError):
    """One item of a notification cannot be stored: it goes to the quarantine."""


@dataclass(frozen=True)
class InboundMessage:
    whatsapp_message_id: str
    from_phone: str | None  # E.164
    message_type: str
    sent_at: datetime
    payload: dict[str, Any]
    profile_name: str | None = None
    phone_number_id: str | None = None
    from_user_id: str | None = None  # business-scoped user id
    original_bytes: int | None = None  # set when the payload had to be adjusted
    adjustments: list[dict[str, Any]] | None = None
    path: str = ""
    context: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StatusUpdate:
    whatsapp_message_id: str
    status: str
    at: datetime
    recipient_phone: str | None = None
    error: dict[str, Any] | None = None
    recipient_user_id: str | None = None
    pricing: dict[str, Any] | None = None
    conversation: dict[str, Any] | None = None
    path: str = ""
    raw: dict[str, Any] = field(default_factory=dict)
    context: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class QuarantinedItem:
    """An item of the notification that cannot be stored, in a storable form, and why."""

    path: str
    kind: str  # notification, entry, change, message, status
    item: Any
    reason: str
    context: dict[str, Any] = field(default_factory=dict)


@dataclass
class WebhookBatch:
    notification_id: str = ""
    messages: list[InboundMessage] = field(default_factory=list)
    statuses: list[StatusUpdate] = field(default_factory=list)
    quarantined: list[QuarantinedItem] = field(default_factory=list)
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


def notification_id(body: bytes) -> str:
    """The id of a notification: the hex SHA-256 of its raw body (a redelivery has the same)."""
    return hashlib.sha256(body).hexdigest()


# ---- storable values ------------------------------------------------------------------


def _safe_text(value: str) -> tuple[str, bool]:
    """PostgreSQL text holds neither NUL nor a lone surrogate: both become their JSON escape
    spelled out (the six characters \u0000), so nothing is lost and nothing is refused."""
    changed = False
    if "\x00" in value:
        value, changed = value.replace("\x00", "\\u0000"), True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = "".join(c if not 0xD800 <= ord(c) <= 0xDFFF else f"\\u{ord(c):04x}" for c in value)
        changed = True
    return value, changed


def _json_size(node: Any) -> int:
    return len(json.dumps(node, ensure_ascii=False).encode("utf-8", errors="surrogatepass"))


def storable(node: Any, where: str = "") -> tuple[Any, list[dict[str, Any]]]:
    """`node` in a form PostgreSQL stores, and what was changed: [{path, action, …}].

    NUL characters and lone surrogates are escaped (keys too); a string over MAX_FIELD_CHARS
    is truncated (original_chars recorded), and when the whole is still over
    MAX_STORED_BYTES, strings are cut to SMALL_FIELD_CHARS."""
    notes: list[dict[str, Any]] = []

    def walk(value: Any, at: str, cap: int) -> Any:
        if isinstance(value, dict):
            out = {}
            for k, v in value.items():
                key, changed = _safe_text(str(k))
                if changed:
                    notes.append({"path": f"{at}.{key}"[:300], "action": "escaped key"})
                out[key] = walk(v, f"{at}.{key}" if at else key, cap)
            return out
        if isinstance(value, list):
            return [walk(v, f"{at}[{i}]", cap) for i, v in enumerate(value)]
        if isinstance(value, str):
            text, changed = _safe_text(value)
            if changed:
                notes.append({"path": at[:300], "action": "escaped"})
            if len(text) > cap:
                notes.append({"path": at[:300], "action": "truncated", "original_chars": len(value)})
                text = text[:cap]
            return text
        return value

    safe = walk(node, where, MAX_FIELD_CHARS)
    if _json_size(safe) > MAX_STORED_BYTES:
        notes = []
        safe = walk(node, where, SMALL_FIELD_CHARS)
    if len(notes) > MAX_ADJUSTMENTS:
        notes = notes[:MAX_ADJUSTMENTS] + [{"path": "", "action": "more", "count": len(notes) - MAX_ADJUSTMENTS}]
    return safe, notes


# ---- parsing --------------------------------------------------------------------------


def _phone(digits: Any, where: str) -> str:
    if not isinstance(digits, str) or not _DIGITS.match(digits):
        raise BadItem(f"{where} must be a phone number in digits (wa_id)")
    return "+" + digits


def _user_id(value: Any, where: str) -> str:
    if not isinstance(value, str) or not _USER_ID.match(value):
        raise BadItem(f"{where} must be a business-scoped user id such as US.13491208655302741918")
    return value


def _timestamp(value: Any, where: str) -> datetime:
    if not isinstance(value, str | int) or isinstance(value, bool) or not _TIMESTAMP.match(str(value)):
        raise BadItem(f"{where} must be a Unix timestamp in seconds")
    try:
        return datetime.fromtimestamp(int(value), UTC)
    except (ValueError, OverflowError, OSError) as exc:  # past year 9999
        raise BadItem(f"{where} is out of range: {exc}") from exc


def _text(value: Any, where: str, max_len: int = 256) -> str:
    if not isinstance(value, str) or not value or len(value) > max_len:
        raise BadItem(f"{where} must be a non-empty string of at most {max_len} characters")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise BadItem(f"{where} must be an array")
    return value


def _dict(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadItem(f"{where} must be an object")
    return value


def parse_webhook(body: bytes) -> WebhookBatch:
    """Everything a validly signed notification carries: what can be stored, and each item
    that cannot (quarantined with its reason). MalformedPayload only when it is not JSON."""
    try:
        doc = strict_json.loads(body)
    except ValueError as exc:
        raise MalformedPayload(f"body is not JSON: {exc}") from exc
    batch = WebhookBatch(notification_id=notification_id(body))
    if _depth(doc) > MAX_DEPTH:  # no documented shape is this deep: kept as its opening
        opening = _safe_text(body[:4096].decode("utf-8", errors="replace"))[0]
        batch.quarantined.append(
            QuarantinedItem(
                "body",
                "notification",
                {"bytes": len(body), "opening": opening},
                f"nested more than {MAX_DEPTH} levels deep",
            )
        )
        return batch

    def quarantine(path: str, kind: str, item: Any, reason: str, context: dict[str, Any] | None = None) -> None:
        safe, _ = storable(item, path)
        batch.quarantined.append(QuarantinedItem(path, kind, safe, reason, storable(context or {})[0]))

    try:
        doc = _dict(doc, "body")
        if doc.get("object", "whatsapp_business_account") != "whatsapp_business_account":
            raise BadItem("object must be whatsapp_business_account")
        if "entry" not in doc:
            raise BadItem("entry is missing")
        entries = _list(doc["entry"], "entry")
    except BadItem as exc:
        quarantine("body", "notification", doc, str(exc))
        return batch
    for i, entry in enumerate(entries):
        try:
            entry = _dict(entry, f"entry[{i}]")
            if "changes" not in entry:
                raise BadItem(f"entry[{i}].changes is missing")
            changes = _list(entry["changes"], f"entry[{i}].changes")
        except BadItem as exc:
            quarantine(f"entry[{i}]", "entry", entry, str(exc))
            continue
        for j, change in enumerate(changes):
            where = f"entry[{i}].changes[{j}]"
            try:
                change = _dict(change, where)
                value = _dict(change.get("value"), f"{where}.value")
            except BadItem as exc:
                quarantine(where, "change", change, str(exc))
                continue
            if change.get("field", "messages") != "messages":
                batch.ignored_changes += 1  # other subscriptions (account updates, …)
                continue
            try:
                _parse_value(value, where + ".value", batch, quarantine)
            except BadItem as exc:  # the change's own structure (messages not an array, …)
                quarantine(where, "change", change, str(exc))
    return batch


def _contacts(value: dict[str, Any], where: str) -> tuple[dict[str, str], list[Any]]:
    names: dict[str, str] = {}
    contacts = value.get("contacts")
    if not isinstance(contacts, list):
        return names, []
    for contact in contacts:
        if not isinstance(contact, dict):
            continue
        profile = contact.get("profile")
        if isinstance(profile, dict) and isinstance(profile.get("name"), str):
            name = _safe_text(profile["name"])[0][:256]
            for key in ("wa_id", "user_id"):
                if isinstance(contact.get(key), str):
                    names[contact[key]] = name
    return names, contacts


def _parse_value(value: dict[str, Any], where: str, batch: WebhookBatch, quarantine: Any) -> None:
    metadata = value.get("metadata")
    phone_number_id = None
    if isinstance(metadata, dict) and metadata.get("phone_number_id") is not None:
        phone_number_id = _safe_text(str(metadata["phone_number_id"]))[0][:256]
    names, contacts = _contacts(value, where)
    context: dict[str, Any] = {"phone_number_id": phone_number_id, "contacts": contacts[:20]}

    for k, msg in enumerate(_list(value.get("messages"), f"{where}.messages")):
        w = f"{where}.messages[{k}]"
        try:
            batch.messages.append(parse_message(msg, w, names, phone_number_id, context))
        except BadItem as exc:
            quarantine(w, "message", msg, str(exc), context)

    for k, st in enumerate(_list(value.get("statuses"), f"{where}.statuses")):
        w = f"{where}.statuses[{k}]"
        try:
            update = parse_status(st, w, context)
        except BadItem as exc:
            quarantine(w, "status", st, str(exc), context)
            continue
        if update is None:
            batch.ignored_statuses += 1  # e.g. deleted, warning: nothing to move
        else:
            batch.statuses.append(update)

    errors = value.get("errors")
    if isinstance(errors, list):
        batch.errors.extend(storable(e)[0] for e in errors if isinstance(e, dict))


def parse_message(
    msg: Any,
    w: str,
    names: dict[str, str],
    phone_number_id: str | None,
    context: dict[str, Any] | None = None,
) -> InboundMessage:
    """One inbound message; BadItem when it cannot be stored (no sender, no id, …)."""
    msg = _dict(msg, w)
    mtype = msg.get("type")
    if not isinstance(mtype, str) or not _TYPE.match(mtype):
        raise BadItem(f"{w}.type must be a message type such as text")
    if mtype == "text":
        text = msg.get("text")
        if not isinstance(text, dict) or not isinstance(text.get("body"), str):
            raise BadItem(f"{w}.text.body must be a string")
    wa_id = _safe_text(_text(msg.get("id"), f"{w}.id"))[0]
    if "from" not in msg and "from_user_id" not in msg:
        raise BadItem(f"{w} has no sender: neither from (phone) nor from_user_id")
    from_phone = _phone(msg["from"], f"{w}.from") if "from" in msg else None
    from_user_id = _user_id(msg["from_user_id"], f"{w}.from_user_id") if "from_user_id" in msg else None
    sent_at = _timestamp(msg.get("timestamp"), f"{w}.timestamp")
    safe, notes = storable(msg)
    name = names.get(msg["from"]) if from_phone else None
    if name is None and from_user_id:
        name = names.get(from_user_id)
    return InboundMessage(
        whatsapp_message_id=wa_id,
        from_phone=from_phone,
        message_type=mtype,
        sent_at=sent_at,
        payload=safe,
        profile_name=name,
        phone_number_id=phone_number_id,
        from_user_id=from_user_id,
        original_bytes=_json_size(msg) if notes else None,
        adjustments=notes or None,
        path=w,
        context=context or {},
    )


def parse_status(st: Any, w: str, context: dict[str, Any] | None = None) -> StatusUpdate | None:
    """One status; None for a status that moves nothing (deleted, warning); BadItem when it
    cannot be stored."""
    st = _dict(st, w)
    status = _text(st.get("status"), f"{w}.status", 32)
    wa_id = _safe_text(_text(st.get("id"), f"{w}.id"))[0]
    at = _timestamp(st.get("timestamp"), f"{w}.timestamp")
    errors = _list(st.get("errors"), f"{w}.errors")
    if status not in KNOWN_STATUSES:
        return None
    error = None
    if errors:
        error = _dict(errors[0], f"{w}.errors[0]")
        if len(errors) > 1:
            error = {**error, "more_errors": errors[1:]}
        error = storable(error)[0]
        if _json_size(error) > 8000:
            error = {k: error[k] for k in ("code", "title", "message") if k in error} | {"truncated": True}
    recipient = st.get("recipient_id")
    user_id = st.get("recipient_user_id")
    pricing = st.get("pricing")
    conversation = st.get("conversation")
    return StatusUpdate(
        whatsapp_message_id=wa_id,
        status=status,
        at=at,
        recipient_phone=("+" + recipient) if isinstance(recipient, str) and _DIGITS.match(recipient) else None,
        error=error,
        recipient_user_id=user_id if isinstance(user_id, str) and _USER_ID.match(user_id) else None,
        pricing=storable(pricing)[0] if isinstance(pricing, dict) and _json_size(pricing) <= 4000 else None,
        conversation=(
            storable(conversation)[0] if isinstance(conversation, dict) and _json_size(conversation) <= 4000 else None
        ),
        path=w,
        raw=storable(st)[0],
        context=context or {},
    )


# ---- outbound requests ----------------------------------------------------------------


def build_message_request(
    recipient_phone: str | None,
    message_type: str,
    payload: dict[str, Any],
    correlation_id: str | None = None,
    *,
    recipient_user_id: str | None = None,
    reply_to: str | None = None,
) -> dict[str, Any]:
    """The JSON body of `POST /{phone-number-id}/messages` for a queued message.

    The queued payload is the Cloud API object for its type (`{"body": …}` for text, …);
    a media message names its kind in `media_type` (image, audio, video, document, sticker).
    The recipient is the phone (`to`) when known, else the business-scoped user id
    (`recipient`).
    """
    body: dict[str, Any] = {"messaging_product": "whatsapp", "recipient_type": "individual"}
    if recipient_phone:
        body["to"] = recipient_phone.lstrip("+")
    elif recipient_user_id:
        body["recipient"] = recipient_user_id
    else:
        raise ValueError("a message needs a recipient phone or business-scoped user id")
    if message_type == "media":
        kind = payload.get("media_type")
        if kind not in MEDIA_KINDS:
            raise ValueError(f"media payload needs media_type in {MEDIA_KINDS}")
        body["type"] = kind
        body[kind] = {k: v for k, v in payload.items() if k != "media_type"}
    else:
        body["type"] = message_type
        body[message_type] = payload
    if reply_to:
        body["context"] = {"message_id": reply_to}
    if correlation_id:
        body["biz_opaque_callback_data"] = correlation_id[:512]
    return body


def read_receipt_request(whatsapp_message_id: str, typing_indicator: bool = False) -> dict[str, Any]:
    """The body of `POST /{phone-number-id}/messages` that marks an inbound message read
    (blue ticks), optionally showing the typing indicator until the reply (at most 25 s)."""
    body: dict[str, Any] = {"messaging_product": "whatsapp", "status": "read", "message_id": whatsapp_message_id}
    if typing_indicator:
        body["typing_indicator"] = {"type": "text"}
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
