"""The WhatsApp webhook receiver fuzzed with Hypothesis: random and hostile bodies, headers
and signatures against the real app and a real database.

Expected, for every request (the database is up, so a 500 is always a bug):
- never a 500 (nor any 5xx);
- without a valid X-Hub-Signature-256 for the exact body: 401 (413 when the body is over
  the size limit, checked first), and nothing stored;
- with a valid signature: 413 when over the size limit, 400 exactly when the body is not
  JSON, otherwise 200 (what cannot be stored is quarantined, never refused); after a 400 or
  413 nothing stored;
- the verification challenge (GET) answers 200 with the challenge only for
  hub.mode=subscribe and the right token; otherwise 400 or 403.

"Nothing stored" is checked on every WhatsApp table (the quarantine too): row count and
checksum unchanged.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import sql
from starlette.testclient import TestClient

from platformdb.whatsapp_cloud import payloads
from platformdb.whatsapp_cloud.webhook import WEBHOOK_PATH, create_app
from tests.chaos import report
from tests.fuzz.conftest import profile
from tests.fuzz.values import NUL_TEXT, ODD_TEXT, SQLISH, SURROGATE_TEXT

PROFILE = profile()
EXAMPLES = {"smoke": 150, "deep": 3000}[PROFILE]
SECRET = "fuzz-app-secret"
VERIFY = "fuzz-verify-token"
LIMIT = 64 * 1024
TABLES = (
    "whatsapp_sessions",
    "whatsapp_inbound_messages",
    "whatsapp_status_backlog",
    "whatsapp_message_queue",
    "whatsapp_quarantine",
)
STATS: Counter[str] = Counter()

SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)


class Receiver:
    def __init__(self, client: TestClient, conn: psycopg.Connection[Any], wa_ids: list[str]):
        self.client, self.conn, self.wa_ids = client, conn, wa_ids
        parts = [
            sql.SQL("select {}, count(*), coalesce(sum(hashtextextended(t::text, 0)), 0)::numeric from {} t").format(
                sql.Literal(name), sql.Identifier("public", name)
            )
            for name in TABLES
        ]
        self.snapshot_sql = sql.SQL(" union all ").join(parts)

    def __repr__(self) -> str:
        return "Receiver()"

    def snapshot(self) -> dict[str, Any]:
        return {r[0]: (r[1], r[2]) for r in self.conn.execute(self.snapshot_sql).fetchall()}


@pytest.fixture(scope="module")
def receiver(fuzz_url: str) -> Iterator[Receiver]:
    with psycopg.connect(fuzz_url, autocommit=True) as conn:
        wa_ids = [
            r[0]
            for r in conn.execute(
                "select whatsapp_message_id from public.whatsapp_message_queue"
                " where whatsapp_message_id is not null limit 50"
            ).fetchall()
        ]
        with TestClient(create_app(fuzz_url, SECRET, VERIFY, max_body_bytes=LIMIT), raise_server_exceptions=False) as c:
            yield Receiver(c, conn, wa_ids or ["wamid.none"])
    total = sum(STATS.values())
    if total:
        errors = sum(n for k, n in STATS.items() if k.split()[-1].startswith("5"))
        leaks = STATS["stored without a valid signature"] + STATS["stored after a refusal"]
        report.write(
            "webhook",
            f"fuzz webhook: {total} requests: "
            + ", ".join(f"{n} × {k}" for k, n in sorted(STATS.items()))
            + f"; {errors} answered 5xx, {leaks} stored without being accepted",
            {"requests": total, "outcomes": dict(sorted(STATS.items())), "examples": EXAMPLES},
            section="fuzz",
            run_profile=PROFILE,
        )


# ---- strategies -----------------------------------------------------------------------

hostile_text = st.one_of(
    st.sampled_from(SQLISH + ODD_TEXT + NUL_TEXT + SURROGATE_TEXT),
    st.text(max_size=30),
    st.builds(lambda c, n: c * n, st.sampled_from(["a", "é", "\x00", "💥"]), st.integers(200, 70_000)),
)
digits = st.one_of(
    st.from_regex(r"2507[0-9]{8}", fullmatch=True),
    st.sampled_from(["250788123456", "250788123456\n", "0", "+250788123456", "1" * 16, "١٢٣٤٥٦٧٨"]),
    hostile_text,
    st.integers(),
)
timestamps = st.one_of(
    st.integers(0, 2_000_000_000).map(str),
    st.sampled_from(["999999999999", "253402300800", "-1", "1e9", "", "1750857384\n", "00000000000"]),
    st.integers(-(2**70), 2**70),
    st.floats(),
    hostile_text,
)
json_leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), hostile_text)
json_key = st.one_of(st.text(max_size=8), st.text(max_size=8), st.sampled_from(NUL_TEXT + SURROGATE_TEXT))
json_any = st.recursive(
    json_leaf,
    lambda ch: st.one_of(st.lists(ch, max_size=4), st.dictionaries(json_key, ch, max_size=4)),
    max_leaves=15,
)


def sometimes(draw: st.DrawFn, good: Any, bad: st.SearchStrategy[Any]) -> Any:
    """Mostly the documented value, one time in four a hostile one: a notification with one
    or two bad fields gets past the parser's first checks to the deeper paths."""
    return draw(bad) if draw(st.integers(0, 3)) == 0 else good


@st.composite
def notifications(draw: st.DrawFn, wa_ids: list[str]) -> Any:
    """A documented notification (inbound messages and/or statuses) with some fields hostile."""
    kind = draw(st.sampled_from(["text", "status", "both", "other-type"]))
    n = draw(st.integers(0, 10**9))
    value: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "metadata": sometimes(
            draw,
            {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
            st.one_of(json_any, st.fixed_dictionaries({"phone_number_id": json_any})),
        ),
    }
    if kind in ("text", "both", "other-type"):
        frm = sometimes(draw, draw(st.from_regex(r"2507[0-9]{8}", fullmatch=True)), digits)
        mtype = (
            "text" if kind != "other-type" else draw(st.sampled_from(["image", "location", "interactive", "reaction"]))
        )
        mtype = sometimes(draw, mtype, st.sampled_from(["TEXT", "a" * 40, "", "te xt", "text\n"]))
        msg: dict[str, Any] = {
            "from": frm,
            "id": sometimes(draw, f"wamid.fuzz-{n}", st.one_of(hostile_text, st.integers())),
            "timestamp": sometimes(draw, str(1750857384 + n % 10**6), timestamps),
            "type": mtype,
        }
        if mtype == "text":
            msg["text"] = sometimes(draw, {"body": sometimes(draw, "Muraho", hostile_text)}, json_any)
        else:
            msg[str(mtype)] = sometimes(draw, {"id": "media-1", "caption": "x"}, json_any)
        if draw(st.integers(0, 3)) == 0:
            msg.update(draw(st.dictionaries(json_key, json_any, max_size=3)))
        value["messages"] = [msg] * draw(st.integers(1, 3))
        value["contacts"] = [{"profile": {"name": sometimes(draw, "Aline", hostile_text)}, "wa_id": frm}]
    if kind in ("status", "both"):
        status: dict[str, Any] = {
            "id": sometimes(draw, draw(st.sampled_from(wa_ids)), hostile_text),
            "status": sometimes(
                draw, draw(st.sampled_from(["sent", "delivered", "read", "failed", "deleted"])), hostile_text
            ),
            "timestamp": sometimes(draw, str(1750857384 + n % 10**6), timestamps),
            "recipient_id": sometimes(draw, "250788123456", digits),
        }
        if draw(st.booleans()):
            status["errors"] = sometimes(
                draw,
                [{"code": 131026, "title": "Message undeliverable"}],
                st.one_of(st.lists(st.dictionaries(st.text(max_size=8), json_any, max_size=4), max_size=3), json_any),
            )
        value["statuses"] = [status]
    doc: Any = {
        "object": sometimes(draw, "whatsapp_business_account", st.sampled_from(["page", "", None])),
        "entry": [
            {
                "id": "102290129340398",
                "changes": [
                    {
                        "field": sometimes(draw, "messages", st.sampled_from(["account_update", "", None])),
                        "value": value,
                    }
                ],
            }
        ],
    }
    if doc["object"] is None:
        del doc["object"]
    if draw(st.integers(0, 9)) == 0:  # a structural mutation: drop or replace a level
        doc = draw(
            st.sampled_from(
                [
                    {"entry": None},
                    {"entry": [{}]},
                    {"entry": [{"changes": [None]}]},
                    {"entry": "x"},
                    [doc],
                    doc["entry"],
                ]
            )
        )
    return doc


def encode(doc: Any, how: str) -> bytes:
    text = json.dumps(doc, ensure_ascii=(how == "ascii"), allow_nan=True)
    return text.encode("utf-8", errors="surrogatepass")


@st.composite
def bodies(draw: st.DrawFn, wa_ids: list[str]) -> bytes:
    choice = draw(
        st.sampled_from(
            [
                "notification",
                "notification",
                "notification",
                "notification",
                "json",
                "odd-keys",
                "bytes",
                "huge",
                "deep",
                "broken",
            ]
        )
    )
    if choice == "notification":
        return encode(draw(notifications(wa_ids)), draw(st.sampled_from(["ascii", "utf8"])))
    if choice == "json":
        return encode(draw(json_any), "utf8")
    if choice == "odd-keys":  # hostile keys, each holding a hostile value, beside a notification
        doc = draw(notifications(wa_ids))
        bad = st.sampled_from(NUL_TEXT + SURROGATE_TEXT)
        extra = draw(st.dictionaries(st.one_of(bad, json_key), st.one_of(bad, hostile_text), min_size=1, max_size=3))
        return encode({**extra, **doc} if isinstance(doc, dict) else [extra, doc], "ascii")
    if choice == "bytes":
        return draw(st.binary(max_size=300))
    if choice == "huge":
        return b'{"entry": [' + b'{"changes": []},' * draw(st.integers(4000, 6000)) + b"{}]}"
    if choice == "deep":
        depth = draw(st.integers(1000, 30_000))
        return b"[" * depth + b"]" * depth
    raw = encode(draw(notifications(wa_ids)), "utf8")
    cut = draw(st.integers(0, max(0, len(raw) - 1)))
    return draw(st.sampled_from([raw[:cut], b"\xef\xbb\xbf" + raw, raw + b"\xff", raw.replace(b'"', b"'", 1)]))


SIGNATURES = [
    "valid",
    "valid",
    "valid",
    "missing",
    "empty",
    "zeros",
    "other-body",
    "other-secret",
    "upper",
    "sha1",
    "spaces",
    "truncated",
    "garbage",
]


def signature(mode: str, body: bytes) -> str | None:
    good = payloads.sign(body, SECRET)
    return {
        "valid": good,
        "missing": None,
        "empty": "",
        "zeros": "sha256=" + "0" * 64,
        "other-body": payloads.sign(body + b" ", SECRET),
        "other-secret": payloads.sign(body, SECRET + "x"),
        "upper": good.upper(),
        "sha1": "sha1=" + good[7:47],
        "spaces": good.replace("=", " = "),
        "truncated": good[:-1],
        "garbage": "sha256=" + "zz" * 32,
    }[mode]


def not_a_json_value(name: str) -> None:
    """The oracle reads RFC 8259 JSON: Python's NaN, Infinity and -Infinity are not JSON (jsonb refuses them)."""
    raise ValueError(f"{name} is not JSON")


# ---- tests ----------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:Generating overly large repr")
@SETTINGS
@given(data=st.data())
def test_the_receiver_never_fails_and_never_stores_an_unsigned_body(receiver: Receiver, data: st.DataObject) -> None:
    body = data.draw(bodies(receiver.wa_ids), label="body")
    mode = data.draw(st.sampled_from(SIGNATURES), label="signature")
    headers = {
        "Content-Type": data.draw(
            st.sampled_from(["application/json", "text/plain", "application/x-www-form-urlencoded", ""])
        )
    }
    sig = signature(mode, body)
    if sig is not None:
        headers["X-Hub-Signature-256"] = sig
    before = receiver.snapshot()
    r = receiver.client.post(WEBHOOK_PATH, content=body, headers=headers)
    STATS[f"{'signed' if mode == 'valid' else 'unsigned'} {r.status_code}"] += 1
    assert r.status_code < 500, f"{r.status_code} {r.text[:300]} for a {mode} signature and body {body[:200]!r}"
    too_large = len(body) > LIMIT
    if mode != "valid":
        assert r.status_code == (413 if too_large else 401), r.text[:200]
    elif too_large:
        assert r.status_code == 413, r.text[:200]
    else:
        try:
            json.loads(body, parse_constant=not_a_json_value)
            is_json = True
        except (ValueError, RecursionError):
            is_json = False
        assert r.status_code == (200 if is_json else 400), r.text[:200]
    if r.status_code != 200 and receiver.snapshot() != before:
        STATS["stored without a valid signature" if mode != "valid" else "stored after a refusal"] += 1
        raise AssertionError(f"{r.status_code} answered but something was stored")


@SETTINGS
@given(
    params=st.dictionaries(
        st.sampled_from(["hub.mode", "hub.verify_token", "hub.challenge", "x"]),
        st.one_of(st.sampled_from(["subscribe", VERIFY, "1158201444", ""]), st.text(max_size=20)),
        max_size=4,
    )
)
def test_the_verification_challenge_answers_only_the_right_token(receiver: Receiver, params: dict[str, str]) -> None:
    r = receiver.client.get(WEBHOOK_PATH, params=params)
    STATS[f"verify {r.status_code}"] += 1
    complete = all(k in params for k in ("hub.mode", "hub.verify_token", "hub.challenge"))
    if complete and params["hub.mode"] == "subscribe" and params["hub.verify_token"] == VERIFY:
        assert r.status_code == 200 and r.text == params["hub.challenge"]
    else:
        assert r.status_code == (403 if complete else 400), (r.status_code, r.text)
