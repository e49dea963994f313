"""Hostile values for the SQL functions, by PostgreSQL type, as Hypothesis strategies.

Every argument is drawn as an `Arg`: how it reaches the server (`mode`) and the value.

- `typed`: a Python value adapted by psycopg and cast to the parameter's type
  (`%s::uuid`): huge strings, NUL bytes, NaN/±Infinity, extreme numbers and dates, deep and
  huge jsonb, SQL-looking text, values seen in the seeded database (so the functions get
  past their first checks and reach the deeper paths).
- `text`: a string cast to the parameter's type through text (`%s::text::integer`): the
  "wrong type" a client sends when it stringifies everything, plus spellings only text can
  carry (dates beyond Python's range, `infinity`, 300-digit integers, JSON nested 100,000
  levels deep).
- `bytes`: raw bytes decoded as UTF-8 on the server (`convert_from(%s, 'UTF8')`), the only
  way to put invalid UTF-8 on the wire: the server refuses it (22021) before any function
  runs.
- `null`: SQL NULL. `default`: the argument is left out (only where it has a default).

psycopg itself refuses two kinds of value before sending anything: text containing a NUL
byte (`DataError`, "PostgreSQL text fields cannot contain NUL (0x00) bytes") and strings
with lone surrogates (`UnicodeEncodeError`). The fuzz counts those refusals separately.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from hypothesis import strategies as st
from psycopg.types.json import Jsonb

# sizes: the smoke profile stays around a megabyte, the deep one goes ten times further
SIZES = {
    "smoke": {"huge": 1 << 20, "deep": 20_000, "items": 20_000},
    "deep": {"huge": 8 << 20, "deep": 200_000, "items": 200_000},
}

SQLISH = [
    "'; drop table public.transactions; --",
    "' or '1'='1",
    "1; select pg_sleep(30)",
    "$$; select 1; $$",
    "$1",
    "%s",
    "%(x)s",
    "\\",
    "\\x00",
    "E'\\\\'",
    "' || (select current_user) || '",
    "*/ select 1 /*",
    "public.transactions",
    "pg_catalog.pg_authid",
    '"; set role postgres; --',
    "null",
    "NULL",
    "undefined",
    "true",
    "<script>alert(1)</script>",
    "../../../../etc/passwd",
    "${jndi:ldap://x}",
    "{{7*7}}",
]
ODD_TEXT = [
    "",
    " ",
    "\t\n\r",
    "\x01\x02\x7f",
    "\u202e\u202d",
    "\ufeff",
    "\u200b",
    "😀💥🚕",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
    "\U0010ffff",
    "公司 المدفوعات",
    "e\u0301",
    "NaN",
    "Infinity",
    "-0",
    "1e309",
    "+250788123456",
    "250788123456",
    "+2507881234567",
    "+0000000",
    "+250 788 123 456",
    "RWF",
    "rwf",
    "XXX",
]
NUL_TEXT = ["\x00", "a\x00b", "+250788123456\x00", "\x00" * 64]
SURROGATE_TEXT = ["\ud800", "a\udfffb", "\udbff\udc00\ud800"]

INVALID_UTF8 = [b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"abc\xfe", b"\xf4\x90\x80\x80", b"\x80" * 8]


@dataclass(frozen=True)
class Arg:
    mode: str  # typed | text | bytes | null | default
    value: Any = None

    def describe(self) -> str:
        v = self.value
        if isinstance(v, (str, bytes)) and len(v) > 60:
            return f"{self.mode}:{type(v).__name__}[{len(v)}]:{v[:40]!r}…"
        text = repr(v)
        return f"{self.mode}:{text[:80]}{'…' if len(text) > 80 else ''}"


@dataclass
class Pools:
    """Values harvested from the seeded database (valid shapes to start from)."""

    texts: list[str]
    uuids: list[UUID]
    jsons: list[Any]
    keys: list[str]
    users: list[UUID]


def repeated(pieces: list[str], limit: int) -> st.SearchStrategy[str]:
    return st.builds(lambda p, n: p * max(1, n // len(p)), st.sampled_from(pieces), st.integers(1000, limit))


def texts(pools: Pools, size: str) -> st.SearchStrategy[str]:
    huge = SIZES[size]["huge"]
    known = st.sampled_from(pools.texts) if pools.texts else st.just("x")
    return st.one_of(
        known,
        known,
        known,
        known,
        st.sampled_from(SQLISH),
        st.sampled_from(ODD_TEXT),
        st.text(max_size=40),
        known.map(lambda s: s + "'"),
        known.map(lambda s: s.upper()),
        known.map(lambda s: " " + s + " "),
        repeated(["a", "é", "💥", "' or 1=1 -- ", "\\", "%"], huge),
        # psycopg refuses these before sending (counted apart): rarer, or they would crowd out the rest
        st.sampled_from(NUL_TEXT + SURROGATE_TEXT),
    )


def json_documents(pools: Pools, size: str) -> st.SearchStrategy[Any]:
    keys = st.sampled_from(pools.keys) if pools.keys else st.text(max_size=8)
    leaves = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**70), 2**70),
        st.floats(allow_nan=False, allow_infinity=False),
        st.sampled_from(pools.texts or ["x"]),
        st.sampled_from(SQLISH + ODD_TEXT),
        st.text(max_size=20),
    )
    tree = st.recursive(
        leaves,
        lambda children: st.one_of(
            st.lists(children, max_size=5),
            st.dictionaries(st.one_of(keys, st.text(max_size=10)), children, max_size=6),
        ),
        max_leaves=25,
    )
    items = SIZES[size]["items"]
    huge = SIZES[size]["huge"]
    known = st.sampled_from(pools.jsons) if pools.jsons else st.just({})
    return st.one_of(
        known,
        known,
        tree,
        st.builds(lambda d, k, v: {**d, k: v} if isinstance(d, dict) else d, known, keys, leaves),
        st.lists(known, min_size=1, max_size=20),
        st.builds(lambda n: list(range(n)), st.integers(1000, items)),
        st.builds(lambda n: {f"k{i}": i for i in range(n)}, st.integers(1000, items)),
        st.builds(lambda n: {"body": "x" * n}, st.integers(1000, huge)),
        st.sampled_from([{"\x00": 1}, {"a": "\x00"}, ["\ud800"], float("nan"), float("inf"), 10**400]),
    )


def deep_json(depth: int, kind: str) -> str:
    if kind == "array":
        return "[" * depth + "]" * depth
    return '{"a":' * depth + "1" + "}" * depth


def json_texts(size: str) -> st.SearchStrategy[str]:
    deep = SIZES[size]["deep"]
    return st.one_of(
        st.builds(deep_json, st.integers(10, deep), st.sampled_from(["array", "object"])),
        st.sampled_from(
            [
                "",
                "{",
                "nul",
                "'",
                "NaN",
                "[1,]",
                '{"a":1,"a":2}',
                '"\\u0000"',
                '{"\\u0000":1}',
                '"\\ud800"',
                "1e1000000",
                "-1e-1000000",
                '"' + "\\u00e9" * 1000 + '"',
                "[" + ",".join(["1e308"] * 1000) + "]",
            ]
        ),
        texts_for_cast(),
    )


def texts_for_cast() -> st.SearchStrategy[str]:
    return st.sampled_from(SQLISH + ODD_TEXT + ["0", "-1", "1.5", "abc", "{}", "[]", "{a,b}", "((1,2))"])


def integers(bits: int) -> st.SearchStrategy[int]:
    lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    return st.one_of(
        st.sampled_from([0, 1, -1, 2, 5, 10, 100, 1000, 10_000, 86_400, lo, hi, hi - 1, lo + 1]),
        st.integers(lo, hi),
        st.integers(-1000, 1000),
    )


def integer_texts(bits: int) -> st.SearchStrategy[str]:
    hi = 2 ** (bits - 1)
    return st.one_of(
        st.sampled_from([str(hi), str(-hi - 1), "9" * 300, "1.5", "1e3", " 7 ", "0x10", "NaN", "-", "٣"]),
        texts_for_cast(),
    )


def numerics() -> st.SearchStrategy[Decimal]:
    return st.one_of(
        st.sampled_from(
            [
                Decimal("NaN"),
                Decimal("Infinity"),
                Decimal("-Infinity"),
                Decimal("0"),
                Decimal("-0"),
                Decimal("1"),
                Decimal("-1"),
                Decimal("2500"),
                Decimal("0.01"),
                Decimal("0.001"),
                Decimal("1e-1000"),
                Decimal("1e1000"),
                Decimal("-1e1000"),
                Decimal("9999999999999999.99"),
                Decimal("10000000000000000"),
                Decimal("123.456"),
            ]
        ),
        st.decimals(allow_nan=False, allow_infinity=False, places=2, min_value=-(10**18), max_value=10**18),
        st.decimals(allow_nan=True, allow_infinity=True),
    )


def floats() -> st.SearchStrategy[float]:
    return st.one_of(
        st.sampled_from(
            [
                math.nan,
                math.inf,
                -math.inf,
                0.0,
                -0.0,
                5e-324,
                1.7976931348623157e308,
                -1.95,
                30.06,
                -1.9441,
                30.0619,
                90.0,
                -90.0,
                90.0000001,
                180.0,
                -180.0000001,
                100.0,
                5000.0,
                1e7,
            ]
        ),
        st.floats(),
        st.floats(min_value=-3.0, max_value=3.0).map(lambda d: -1.95 + d),
    )


def timestamps() -> st.SearchStrategy[datetime]:
    now = datetime.now(UTC)
    return st.one_of(
        st.sampled_from(
            [
                now,
                now - timedelta(days=40),
                now + timedelta(days=400),
                datetime(1970, 1, 1, tzinfo=UTC),
                datetime(1, 1, 1, tzinfo=UTC),
                datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
            ]
        ),
        st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)),
    )


TIMESTAMP_TEXTS = [
    "infinity",
    "-infinity",
    "epoch",
    "now",
    "tomorrow",
    "294276-12-31 23:59:59+00",
    "294277-01-01 00:00:00+00",
    "4713-11-24 00:00:00+00 BC",
    "4714-11-24 00:00:00+00 BC",
    "2026-02-30 00:00:00+00",
    "2026-13-01",
    "24:00:01",
    "1e10",
]
INTERVAL_TEXTS = [
    "178000000 years",
    "-178000000 years",
    "2147483647 days 2147483647 hours",
    "1 microsecond",
    "-1 second",
    "P1Y2M3DT4H5M6S",
    "@ 1 minute ago",
    "infinity",
    "1 fortnight",
]


def intervals() -> st.SearchStrategy[timedelta]:
    return st.one_of(
        st.sampled_from([timedelta(0), timedelta(seconds=1), timedelta(days=-1), timedelta(days=90), timedelta.max]),
        st.timedeltas(),
    )


def uuids(pools: Pools) -> st.SearchStrategy[UUID]:
    special = [UUID(int=0), UUID(int=(1 << 128) - 1)]
    known = st.sampled_from(pools.uuids) if pools.uuids else st.uuids()
    return st.one_of(known, known, known, st.sampled_from(pools.users or special), st.uuids(), st.sampled_from(special))


def scalar(typname: str, pools: Pools, size: str) -> tuple[st.SearchStrategy[Any] | None, st.SearchStrategy[str]]:
    """(typed strategy or None, text-cast strategy) for a scalar type."""
    cast = texts_for_cast()
    if typname in ("text", "varchar", "bpchar", "name", "citext"):
        return texts(pools, size), texts(pools, size)
    if typname in ("int2", "int4", "int8"):
        bits = {"int2": 16, "int4": 32, "int8": 64}[typname]
        return integers(bits), integer_texts(bits)
    if typname == "numeric":
        return numerics(), st.one_of(
            st.sampled_from(["NaN", "Infinity", "1e131072", "1" + "0" * 1000, "0.5e-16383"]), cast
        )
    if typname in ("float8", "float4"):
        return floats(), st.one_of(st.sampled_from(["NaN", "inf", "-Infinity", "1e309", "-1e-400", "0x1p3"]), cast)
    if typname == "bool":
        return st.booleans(), st.one_of(st.sampled_from(["yes", "off", "t", "2", "maybe"]), cast)
    if typname == "uuid":
        return uuids(pools), st.one_of(
            st.sampled_from(["00000000-0000-0000-0000-00000000000g", "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}", "1"]),
            cast,
        )
    if typname in ("timestamptz", "timestamp", "date"):
        return timestamps(), st.one_of(st.sampled_from(TIMESTAMP_TEXTS), cast)
    if typname == "interval":
        return intervals(), st.one_of(st.sampled_from(INTERVAL_TEXTS), cast)
    if typname in ("jsonb", "json"):
        return json_documents(pools, size).map(Jsonb), st.one_of(
            json_texts(size), json_documents(pools, size).map(dump_json)
        )
    if typname == "inet":
        return None, st.one_of(st.sampled_from(["127.0.0.1", "::1", "10.0.0.0/8", "999.1.1.1", "fe80::1%eth0"]), cast)
    if typname == "regclass":
        return None, st.one_of(
            st.sampled_from(
                ["public.transactions", "pg_catalog.pg_authid", "auth.users", "nope", "public.message_queue"]
            ),
            cast,
        )
    return None, st.one_of(texts(pools, size), cast)


def dump_json(doc: Any) -> str:
    try:
        return json.dumps(doc)
    except (ValueError, TypeError, RecursionError):
        return "{}"


def argument(typname: str, element: str | None, has_default: bool, pools: Pools, size: str) -> st.SearchStrategy[Arg]:
    """An Arg for a parameter of type `typname` (an array of `element` when element is set)."""
    if element is not None:
        typed_el, _ = scalar(element, pools, size)
        base = typed_el if typed_el is not None else texts(pools, size)
        # long arrays repeat one short value (a huge value repeated would be gigabytes)
        short = st.sampled_from(pools.texts or ["x"]) if element in ("text", "varchar") else base
        items = SIZES[size]["items"]
        typed: st.SearchStrategy[Any] = st.one_of(
            st.lists(st.one_of(base, st.none()), max_size=8),
            st.lists(base, max_size=3).map(lambda xs: xs * 2),
            st.builds(lambda x, n: [x] * n, short, st.integers(1000, items)),
            st.just([]),
        )
        text: st.SearchStrategy[str] = st.one_of(
            st.sampled_from(["{", "{}", "{NULL}", "{{1},{2}}", "{a,b", "[1:2]={1,2}", '{"\\""}']), texts_for_cast()
        )
    else:
        typed_s, text = scalar(typname, pools, size)
        typed = typed_s if typed_s is not None else text
    choices = [
        typed.map(lambda v: Arg("typed", v)),
        typed.map(lambda v: Arg("typed", v)),
        typed.map(lambda v: Arg("typed", v)),
        text.map(lambda v: Arg("text", v)),
        st.just(Arg("null")),
    ]
    if typname in ("text", "varchar", "jsonb", "json"):
        choices.append(st.sampled_from(INVALID_UTF8).map(lambda b: Arg("bytes", b)))
    if has_default:
        choices += [st.just(Arg("default")), st.just(Arg("default"))]
    return st.one_of(*choices)
