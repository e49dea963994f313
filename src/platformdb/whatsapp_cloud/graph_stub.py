"""A local HTTP server that plays the Graph API's `POST /{phone-number-id}/messages`.

Used by the sender's tests, the benchmark and the demo in place of graph.facebook.com.
It checks what the real endpoint checks first (bearer token, phone number id, a
`messaging_product: whatsapp` body with `to`, `type` and the object for that type), answers
like the Cloud API (`{"messaging_product", "contacts": [{"input", "wa_id"}], "messages":
[{"id": "wamid.…"}]}`, or `{"error": {"message", "type", "code", "error_data", "fbtrace_id"}}`),
and can be scripted per recipient: `stub.script("250788123456", [429, 200])` makes the
first request to that number get a 429 and the next one succeed. It also answers
mark-as-read requests (`status: read`, with the typing indicator), and serves media:
`stub.add_media(media_id, content, mime_type)` makes `GET /{media-id}` answer the media URL
(`url`, `mime_type`, `sha256`, `file_size`) and that URL the bytes, both behind the token;
`stub.add_template({...})` lists a template under `GET /{waba-id}/message_templates` (two
per page, with `paging.next`).
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_PATH = re.compile(r"^/(?:v[0-9.]+/)?(?P<number>[0-9A-Za-z_-]+)/messages$")
_MEDIA = re.compile(r"^/(?:v[0-9.]+/)?(?P<media>[0-9A-Za-z_-]+)/?$")
_DOWNLOAD = re.compile(r"^/download/(?P<media>[0-9A-Za-z_-]+)$")
_TEMPLATES = re.compile(r"^/(?:v[0-9.]+/)?(?P<waba>[0-9]+)/message_templates(?:\?(?P<query>.*))?$")
TEMPLATES_PAGE = 2  # templates per page, so that paging is exercised

# standard error bodies for scripted statuses
ERRORS: dict[int, tuple[int, str, str]] = {
    400: (131009, "Parameter value is not valid", "Recipient phone number is not a valid WhatsApp user"),
    401: (190, "Invalid OAuth access token", "The access token could not be decrypted"),
    403: (200, "Permission error", "The app lacks whatsapp_business_messaging"),
    404: (100, "Invalid parameter", "Unsupported post request"),
    429: (130429, "Rate limit hit", "Cloud API message throughput has been reached"),
    500: (131000, "Something went wrong", "Message failed to send because of an unknown error"),
    503: (131016, "Service unavailable", "A service is temporarily unavailable"),
}


@dataclass(frozen=True)
class Scripted:
    """One scripted answer: an HTTP status, optionally a Graph error code and Retry-After."""

    status: int
    code: int | None = None
    retry_after: float | None = None


@dataclass
class Request:
    at: float  # time.monotonic() on arrival
    path: str
    authorization: str | None
    body: dict[str, Any] | None
    status: int = 0
    wa_id: str | None = None


@dataclass
class _State:
    token: str
    phone_number_id: str
    scripts: dict[str, deque[Scripted]] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    read_receipts: list[tuple[str, bool]] = field(default_factory=list)  # (wa message id, typing)
    media: dict[str, tuple[bytes, str]] = field(default_factory=dict)  # id -> (content, mime type)
    base_url: str = ""
    templates: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    counter: itertools.count[int] = field(default_factory=itertools.count)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
        return

    def _answer(self, status: int, doc: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        data = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, code: int, title: str, details: str, headers: dict[str, str] | None = None) -> None:
        self._answer(
            status,
            {
                "error": {
                    "message": f"(#{code}) {title}",
                    "type": "OAuthException",
                    "code": code,
                    "error_data": {"messaging_product": "whatsapp", "details": details},
                    "fbtrace_id": "A" + base64.b32encode(str(time.time_ns()).encode()).decode()[:20],
                }
            },
            headers,
        )

    def do_GET(self) -> None:  # noqa: N802 - http.server API
        st = self.server.state
        with st.lock:
            st.requests.append(Request(time.monotonic(), self.path, self.headers.get("Authorization"), None))
        if self.headers.get("Authorization") != f"Bearer {st.token}":
            return self._error(401, *ERRORS[401])
        listing = _TEMPLATES.match(self.path)
        if listing:
            query = dict(p.split("=", 1) for p in (listing["query"] or "").split("&") if "=" in p)
            after = int(query.get("after", "0"))
            with st.lock:
                page = st.templates[after : after + TEMPLATES_PAGE]
                more = after + TEMPLATES_PAGE < len(st.templates)
            doc: dict[str, Any] = {"data": page, "paging": {"cursors": {"after": str(after + len(page))}}}
            if more:
                base = st.base_url.rsplit("/", 1)[0]
                doc["paging"]["next"] = f"{base}/v26.0/{listing['waba']}/message_templates?after={after + len(page)}"
            return self._answer(200, doc)
        download = _DOWNLOAD.match(self.path)
        lookup = _MEDIA.match(self.path)
        media_id = download["media"] if download else lookup["media"] if lookup else None
        with st.lock:
            found = st.media.get(media_id or "")
        if found is None:
            return self._error(404, 100, "Invalid parameter", f"Unsupported get request: {self.path}")
        content, mime = found
        if download:
            self.send_response(200)
            self.send_header("Content-Type", mime)
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)
            return None
        return self._answer(
            200,
            {
                "messaging_product": "whatsapp",
                "url": f"{st.base_url.rsplit('/', 1)[0]}/download/{media_id}",
                "mime_type": mime,
                "sha256": hashlib.sha256(content).hexdigest(),
                "file_size": len(content),
                "id": media_id,
            },
        )

    def do_POST(self) -> None:  # noqa: N802 - http.server API
        st = self.server.state
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        req = Request(time.monotonic(), self.path, self.headers.get("Authorization"), body)
        with st.lock:
            st.requests.append(req)

        def fail(status: int, code: int, title: str, details: str, headers: dict[str, str] | None = None) -> None:
            req.status = status
            self._error(status, code, title, details, headers)

        m = _PATH.match(self.path)
        if not m or m["number"] != st.phone_number_id:
            return fail(400, 100, "Invalid parameter", f"Unknown path {self.path}")
        if req.authorization != f"Bearer {st.token}":
            return fail(401, *ERRORS[401])
        if isinstance(body, dict) and body.get("status") == "read":  # mark as read (+ typing)
            if body.get("messaging_product") != "whatsapp" or not isinstance(body.get("message_id"), str):
                return fail(400, 100, "Invalid parameter", "messaging_product and message_id are required")
            typing = body.get("typing_indicator")
            if typing is not None and typing != {"type": "text"}:
                return fail(400, 100, "Invalid parameter", 'typing_indicator must be {"type": "text"}')
            with st.lock:
                st.read_receipts.append((body["message_id"], typing is not None))
            req.status = 200
            return self._answer(200, {"success": True})
        if (
            not isinstance(body, dict)
            or body.get("messaging_product") != "whatsapp"
            or not (isinstance(body.get("to"), str) or isinstance(body.get("recipient"), str))
            or not isinstance(body.get("type"), str)
            or not isinstance(body.get(body["type"]), dict)
        ):
            return fail(
                400,
                100,
                "Invalid parameter",
                "messaging_product, to or recipient, type and the type's object are required",
            )
        # a business-scoped user id (recipient) is scripted and answered under that id
        to = body["to"].lstrip("+") if isinstance(body.get("to"), str) else body["recipient"]
        with st.lock:
            queue = st.scripts.get(to)
            scripted = queue.popleft() if queue else Scripted(200)
        if scripted.status >= 300:
            code, title, details = ERRORS.get(scripted.status, (131000, "Something went wrong", "error"))
            headers = {"Retry-After": f"{scripted.retry_after:g}"} if scripted.retry_after is not None else None
            return fail(scripted.status, scripted.code or code, title, details, headers)
        n = next(st.counter)
        wa_id = "wamid." + base64.b64encode(f"platformdb-stub-{to}-{n}".encode()).decode()
        req.status, req.wa_id = 200, wa_id
        self._answer(
            200,
            {
                "messaging_product": "whatsapp",
                "contacts": [
                    {"input": body["to"], "wa_id": to} if "to" in body else {"input": body["recipient"], "user_id": to}
                ],
                "messages": [{"id": wa_id}],
            },
        )


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: _State


class GraphStub:
    """`with GraphStub(token, number) as stub:` … `stub.base_url` is the Graph URL to use."""

    def __init__(
        self,
        token: str = "stub-token",  # noqa: S107 - the stand-in's own fixed credential
        phone_number_id: str = "106540352242922",
    ):
        self.state = _State(token, phone_number_id)
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.state = self.state
        self._thread = threading.Thread(target=self._server.serve_forever, name="graph-stub", daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v26.0"

    @property
    def token(self) -> str:
        return self.state.token

    @property
    def phone_number_id(self) -> str:
        return self.state.phone_number_id

    def script(self, recipient: str, answers: list[int | Scripted]) -> None:
        """Queue answers for requests to `recipient` (digits or E.164); then 200s."""
        items = [a if isinstance(a, Scripted) else Scripted(a) for a in answers]
        with self.state.lock:
            self.state.scripts.setdefault(recipient.lstrip("+"), deque()).extend(items)

    def add_template(self, template: dict[str, Any]) -> None:
        """List `template` (a Graph API template object) under GET /{waba-id}/message_templates."""
        with self.state.lock:
            self.state.templates.append(template)

    def add_media(self, media_id: str, content: bytes, mime_type: str = "image/jpeg") -> None:
        """Serve `content` as the media `media_id` (GET /{media-id}, then its URL)."""
        with self.state.lock:
            self.state.media[media_id] = (content, mime_type)

    @property
    def read_receipts(self) -> list[tuple[str, bool]]:
        """(wa message id, typing indicator shown) of each mark-as-read, in order."""
        with self.state.lock:
            return list(self.state.read_receipts)

    @property
    def requests(self) -> list[Request]:
        with self.state.lock:
            return list(self.state.requests)

    def requests_to(self, recipient: str) -> list[Request]:
        """Requests to a phone (digits or E.164) or a business-scoped user id."""
        to = recipient.lstrip("+")
        return [
            r
            for r in self.requests
            if isinstance(r.body, dict) and (r.body.get("to") == to or r.body.get("recipient") == recipient)
        ]

    def start(self) -> GraphStub:
        self.state.base_url = self.base_url
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> GraphStub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
