"""What the WhatsApp side does with Graph API answers that are not the JSON it expects: NaN
or Infinity (which Python's json reads and jsonb refuses), nesting deeper than Python
recurses, a list where an object belongs, a body that is not JSON, a host that does not
answer. Each becomes the module's own error or a recorded outcome, never a crash, and
nothing that a jsonb column would refuse is kept. The answers come from a local HTTP server."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from platformdb.whatsapp_cloud import media, templates
from platformdb.whatsapp_cloud.sender import classify

DEEP = b"[" * 100_000 + b"]" * 100_000


def _answer(status: int, body: bytes) -> httpx.Response:
    return httpx.Response(status, content=body, headers={"content-type": "application/json"})


def test_a_graph_error_with_nan_keeps_the_body_not_the_nan() -> None:
    out = classify(_answer(400, b'{"error": {"code": NaN, "message": "Invalid parameter"}}'))
    assert out.kind == "permanent" and out.http_status == 400
    assert out.detail is not None and "error" not in out.detail
    assert out.detail["body"].startswith('{"error"')
    json.dumps(out.detail, allow_nan=False)  # what is stored as jsonb is JSON


def test_a_graph_error_still_reads_a_real_error_object() -> None:
    out = classify(_answer(400, b'{"error": {"code": 131009, "message": "Parameter value is not valid"}}'))
    assert out.kind == "permanent" and out.detail is not None
    assert out.detail["error"]["code"] == 131009
    assert out.error == "HTTP 400 code 131009: Parameter value is not valid"


@pytest.mark.parametrize(
    ("status", "kind"),
    [(200, "permanent"), (500, "retry"), (400, "permanent")],
)
def test_an_answer_nested_too_deep_is_an_outcome_not_a_crash(status: int, kind: str) -> None:
    body = b'{"messages": [{"id": "wamid.1"}], "x": ' + DEEP + b"}"
    out = classify(_answer(status, body))
    assert out.kind == kind and out.http_status == status
    if status == 200:
        # accepted but unreadable: never sent again (it may have been delivered)
        assert out.error == "HTTP 200: response has no messages[0].id"


def test_a_success_with_infinity_is_unreadable_and_not_retried() -> None:
    out = classify(_answer(200, b'{"messages": [{"id": "wamid.1"}], "score": Infinity}'))
    assert out.kind == "permanent" and out.whatsapp_message_id is None


def test_a_plain_success_is_sent() -> None:
    out = classify(_answer(200, b'{"messages": [{"id": "wamid.HBgL"}]}'))
    assert out.kind == "sent" and out.whatsapp_message_id == "wamid.HBgL"


# ---- templates and media, from a local HTTP server -------------------------------------


class _Answers:
    def __init__(self) -> None:
        self.status = 200
        self.body = b"{}"


@pytest.fixture
def server() -> Iterator[tuple[str, _Answers]]:
    answers = _Answers()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the http.server name)
            self.send_response(answers.status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(answers.body)))
            self.end_headers()
            self.wfile.write(answers.body)

        def log_message(self, *_args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", answers
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"<html>gateway</html>", "the answer is not JSON"),
        (b'{"data": [{"name": "x"}], "n": NaN}', "the answer is not JSON"),
        (DEEP, "the answer is not JSON"),
        (b"[1, 2]", "the answer has no data list"),
        (b'{"data": {"name": "x"}}', "the answer has no data list"),
    ],
)
def test_templates_refuse_an_answer_that_is_not_their_list(
    server: tuple[str, _Answers], body: bytes, message: str
) -> None:
    url, answers = server
    answers.body = body
    with pytest.raises(templates.TemplateSyncError, match=message):
        templates.fetch(url, "token", "waba")


def test_templates_read_a_good_list_and_stop_on_a_bad_next_link(server: tuple[str, _Answers]) -> None:
    url, answers = server
    answers.body = b'{"data": [{"name": "a"}, 7, {"name": "b"}], "paging": {"next": 42}}'
    assert templates.fetch(url, "token", "waba") == [{"name": "a"}, {"name": "b"}]


def test_templates_say_when_the_host_does_not_answer() -> None:
    with pytest.raises(templates.TemplateSyncError, match="ConnectError"):
        templates.fetch("http://127.0.0.1:9", "token", "waba", timeout=2.0)


@pytest.mark.parametrize(
    ("status", "body", "message"),
    [
        (200, b"not json", "the answer is not JSON"),
        (200, b'{"url": "x", "file_size": Infinity}', "the answer is not JSON"),
        (200, b'["url"]', "the answer is not a JSON object"),
        (404, b'{"error": {"code": NaN}}', "HTTP 404"),
    ],
)
def test_media_lookup_refuses_an_answer_that_is_not_its_object(
    server: tuple[str, _Answers], tmp_path: object, status: int, body: bytes, message: str
) -> None:
    url, answers = server
    answers.status, answers.body = status, body
    with pytest.raises(media.MediaError, match=message):
        media.download(url, "token", "123", f"{tmp_path}/m.bin")
