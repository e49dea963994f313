"""Feature flags: SQL calls, and a client that evaluates locally with the SQL semantics.

Two ways to ask whether a flag is on:

- `is_feature_enabled(conn, key, user_id)` calls the SQL function (one round trip).
- `FlagClient` loads every flag once, keeps the copy fresh through LISTEN/NOTIFY (the
  `feature_flags` trigger notifies `platformdb_feature_flags` on every change) with a
  periodic full reload as a safety net, and answers in memory with exactly the decision of
  the SQL function: same bucketing (MurmurHash3 x86 32, seed 0, `"<key>:<user id>"`,
  `% 100 + 1`, as Unleash), same strategies, same condition language. Its evaluations are
  counted in memory and reported in batches (`record_feature_flag_evaluations`).

The client evaluates as the service does (secret flags included); signed-in users evaluate
through the SQL function, which restricts them to themselves. docs/flags.md has the rule
language and the design notes.
"""

from __future__ import annotations

import itertools
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import mmh3
import psycopg

from platformdb import db
from platformdb.errors import InvalidInput, PlatformDBError, wrap_errors
from platformdb.sdk import flag_model

log = logging.getLogger("platformdb.flags")

CHANNEL = "platformdb_feature_flags"
APP_NAME = "platformdb-flags"
ENVIRONMENTS = ("development", "staging", "production")
FLAG_ENVIRONMENTS = (*ENVIRONMENTS, "all")
STRATEGIES = ("percentage", "user_list", "condition", "all", "none")
REASONS = ("match", "no_match", "disabled", "unknown", "hidden")
KEY_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.~-]{0,99}")

IS_FEATURE_ENABLED = """
select public.is_feature_enabled(p_flag_key => %(key)s, p_user_id => %(user_id)s,
    p_environment => %(environment)s, p_context => %(context)s::jsonb)
"""
EVALUATE_FEATURE_FLAG = """
select enabled, reason, flag_environment, rollout_strategy, bucket, flag_version
  from public.evaluate_feature_flag(p_flag_key => %(key)s, p_user_id => %(user_id)s,
       p_environment => %(environment)s, p_context => %(context)s::jsonb)
"""
FEATURE_FLAG_BUCKET = "select public.feature_flag_bucket(p_flag_key => %s, p_subject => %s)"
UPSERT_FEATURE_FLAG = """
select public.upsert_feature_flag(p_key => %(key)s, p_environment => %(environment)s,
    p_enabled => %(enabled)s, p_rollout_strategy => %(rollout_strategy)s,
    p_rollout_percentage => %(rollout_percentage)s, p_target_users => %(target_users)s::uuid[],
    p_conditions => %(conditions)s::jsonb, p_name => %(name)s, p_description => %(description)s,
    p_secret => %(secret)s, p_strategies => %(strategies)s::jsonb, p_variants => %(variants)s::jsonb,
    p_dependencies => %(dependencies)s::jsonb)
"""
UPSERT_SEGMENT = """
select public.upsert_feature_flag_segment(p_name => %(name)s, p_constraints => %(constraints)s::jsonb,
    p_description => %(description)s, p_id => %(id)s)
"""
DELETE_SEGMENT = "select public.delete_feature_flag_segment(p_name => %s)"
DELETE_FEATURE_FLAG = "delete from public.feature_flags where key = %s and environment = %s"
FLUSH_EVALUATIONS = "select public.flush_feature_flag_evaluations()"
RECORD_EVALUATIONS = "select public.record_feature_flag_evaluations(p_counts => %s::jsonb)"
FLAG_OVERVIEW = "select * from public.feature_flag_overview order by key, environment"
# conditions as text: parsed with Decimal so numbers compare exactly as numeric does in SQL
LOAD_FLAGS = """
select key, environment, name, description, enabled, rollout_strategy, rollout_percentage,
       target_users::text[], conditions::text, secret, version, updated_at,
       strategies::text, variants::text, dependencies::text
  from public.feature_flags
"""
LOAD_FLAGS_BY_KEY = LOAD_FLAGS + " where key = any(%s)"
# the polling fallback's cheap check: changes when any flag or segment row is added,
# changed or removed (a segment change alters every flag that uses it)
FLAGS_FINGERPRINT = """
select count(*), coalesce(sum(version), 0), max(updated_at),
       (select pg_catalog.count(*) from public.feature_flag_segments),
       (select pg_catalog.max(updated_at) from public.feature_flag_segments)
  from public.feature_flags
"""
POLL_INTERVAL = 1.0  # seconds between version checks when there is no LISTEN connection
LOAD_SEGMENTS = "select id, name, constraints::text from public.feature_flag_segments order by id"
GET_FEATURE_VARIANT = """
select public.get_feature_variant(p_flag_key => %(key)s, p_user_id => %(user_id)s,
    p_environment => %(environment)s, p_context => %(context)s::jsonb)
"""


# ---- the decision (mirrors the SQL functions one for one) ------------------------------


def bucket(flag_key: str, subject: str) -> int:
    """`feature_flag_bucket`: MurmurHash3 x86 32 (seed 0) of UTF-8 `key:subject`, % 100 + 1."""
    return int(mmh3.hash(f"{flag_key}:{subject}", 0, False)) % 100 + 1


_NUMBER_RE = re.compile(r"-?[0-9]{1,100}(\.[0-9]{1,100})?")
_SEMVER_RE = re.compile(
    r"(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)"
    r"(?:-((?:0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*)"
    r"(?:\.(?:0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+[0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*)?"
)
_DIGITS_RE = re.compile(r"[0-9]+")
STRING_OPS = frozenset({"in", "not_in", "starts_with", "ends_with", "contains"})
NUMBER_OPS = frozenset({"num_eq", "num_gt", "num_gte", "num_lt", "num_lte"})
SEMVER_OPS = frozenset({"semver_eq", "semver_gt", "semver_gte", "semver_lt", "semver_lte"})
OPERATORS = STRING_OPS | NUMBER_OPS | SEMVER_OPS


def _as_string(value: Any) -> str | None:
    """A JSON string as it is, a boolean as true/false; anything else has no string form."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return None


def as_number(value: Any) -> Decimal | None:
    """`feature_flag_number`: a JSON number, or a string of plain decimal digits; else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        # the SQL side sees json.dumps(value), i.e. repr(value)
        return Decimal(repr(value)) if value == value and value not in (float("inf"), float("-inf")) else None
    if isinstance(value, Decimal):
        return value if value.is_finite() else None
    if isinstance(value, str) and _NUMBER_RE.fullmatch(value):
        return Decimal(value)
    return None


def semver_cmp(a: str, b: str) -> int | None:
    """`feature_flag_semver_cmp`: SemVer 2.0.0 precedence; None when either is invalid."""
    if len(a) > 256 or len(b) > 256:
        return None
    ma, mb = _SEMVER_RE.fullmatch(a), _SEMVER_RE.fullmatch(b)
    if ma is None or mb is None:
        return None
    for i in (1, 2, 3):
        x, y = int(ma[i]), int(mb[i])
        if x != y:
            return -1 if x < y else 1
    pa, pb = ma[4], mb[4]
    if pa is None or pb is None:
        if pa is None and pb is None:
            return 0
        return 1 if pa is None else -1
    xs, ys = pa.split("."), pb.split(".")
    for x, y in zip(xs, ys, strict=False):
        xn, yn = bool(_DIGITS_RE.fullmatch(x)), bool(_DIGITS_RE.fullmatch(y))
        if xn and yn:
            if int(x) != int(y):
                return -1 if int(x) < int(y) else 1
        elif xn:
            return -1
        elif yn:
            return 1
        elif x != y:
            return -1 if x < y else 1
    return (len(xs) > len(ys)) - (len(xs) < len(ys))


def rule_matches(rule: Any, context: Mapping[str, Any]) -> bool:
    """`feature_flag_rule_matches`: one rule of the condition language. Never raises."""
    if not isinstance(rule, dict):
        return False
    attribute, op = rule.get("attribute"), rule.get("operator")
    if not isinstance(attribute, str) or not isinstance(op, str):
        return False
    value = context.get(attribute)
    if op in STRING_OPS:
        values = rule.get("values")
        if not isinstance(values, list):
            return False
        s = _as_string(value)
        if op == "in" or op == "not_in":
            match = s is not None and any(_as_string(v) == s for v in values)
            if op == "not_in":
                match = not match
        elif op == "starts_with":
            match = s is not None and any(isinstance(v, str) and s.startswith(v) for v in values)
        elif op == "ends_with":
            match = s is not None and any(isinstance(v, str) and s.endswith(v) for v in values)
        else:
            match = s is not None and any(isinstance(v, str) and v in s for v in values)
    elif op in NUMBER_OPS:
        b = as_number(rule.get("value"))
        if b is None:
            return False
        a = as_number(value)
        if a is None:
            match = False
        elif op == "num_eq":
            match = a == b
        elif op == "num_gt":
            match = a > b
        elif op == "num_gte":
            match = a >= b
        elif op == "num_lt":
            match = a < b
        else:
            match = a <= b
    elif op in SEMVER_OPS:
        target = rule.get("value")
        if not isinstance(target, str) or semver_cmp(target, target) is None:
            return False
        c = semver_cmp(value, target) if isinstance(value, str) else None
        if c is None:
            match = False
        elif op == "semver_eq":
            match = c == 0
        elif op == "semver_gt":
            match = c > 0
        elif op == "semver_gte":
            match = c >= 0
        elif op == "semver_lt":
            match = c < 0
        else:
            match = c <= 0
    else:
        return False  # unknown operator: false, never an error
    if rule.get("negate") is True:
        match = not match
    return match


def conditions_match(conditions: Any, context: Mapping[str, Any]) -> bool:
    """`feature_flag_conditions_match`: every rule matches; an empty list matches nobody."""
    if not isinstance(conditions, list) or not conditions:
        return False
    return all(rule_matches(r, context) for r in conditions)


def condition_context(context: Mapping[str, Any] | None, user: str | None, environment: str) -> dict[str, Any]:
    """The context rules see: the caller's, with built-in `environment` and `user_id`."""
    ctx = {k: v for k, v in (context or {}).items() if k not in ("user_id", "environment")}
    ctx["environment"] = environment
    if user is not None:
        ctx["user_id"] = user
    return ctx


@dataclass(frozen=True)
class Flag:
    """One row of feature_flags (target_users as canonical strings, conditions parsed)."""

    key: str
    environment: str
    name: str
    description: str | None
    enabled: bool
    rollout_strategy: str
    rollout_percentage: int
    target_users: frozenset[str]
    conditions: list[Any]
    secret: bool
    version: int
    updated_at: datetime | None = None
    prefix: str = field(default="", repr=False, compare=False)
    strategies: list[Any] = field(default_factory=list)
    variants: list[Any] = field(default_factory=list)
    dependencies: list[Any] = field(default_factory=list)

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> Flag:
        key = row[0]
        return cls(
            key=key,
            environment=row[1],
            name=row[2],
            description=row[3],
            enabled=bool(row[4]),
            rollout_strategy=row[5],
            rollout_percentage=int(row[6]),
            target_users=frozenset(row[7] or ()),
            conditions=json.loads(row[8], parse_float=Decimal) if row[8] else [],
            secret=bool(row[9]),
            version=int(row[10]),
            updated_at=row[11],
            prefix=f"{key}:",
            strategies=flag_model.load_json(row[12]) if len(row) > 12 else [],
            variants=flag_model.load_json(row[13]) if len(row) > 13 else [],
            dependencies=flag_model.load_json(row[14]) if len(row) > 14 else [],
        )

    def compile(self, segments: Mapping[int, list[Any]] | None = None) -> flag_model.CompiledFlag:
        return flag_model.CompiledFlag(
            self.key, self.enabled, self.strategies, self.variants, self.dependencies, segments or {}
        )

    def decide(self, user: str | None, context: Mapping[str, Any] | None, environment: str) -> bool:
        """The decision of the flag's strategies for an enabled flag (no parents, no segments)."""
        ctx = flag_model.make_context(context, user, environment)
        compiled = flag_model.CompiledFlag(self.key, True, self.strategies, self.variants, self.dependencies, {})
        return compiled.outcome(ctx, lambda key: None, want_variant=False).enabled


def canonical_user(user_id: uuid.UUID | str | None) -> str | None:
    """The text form PostgreSQL gives a uuid (lower case, hyphenated)."""
    if user_id is None:
        return None
    if isinstance(user_id, uuid.UUID):
        return str(user_id)
    try:
        return str(uuid.UUID(user_id))
    except (ValueError, TypeError, AttributeError) as exc:
        raise InvalidInput(f"user_id: not a uuid: {user_id!r}", sqlstate="22P02") from exc


@dataclass(frozen=True)
class Evaluation:
    """A decision with its explanation (as `evaluate_feature_flag` gives it)."""

    key: str
    enabled: bool
    reason: str  # match, no_match, disabled, unknown
    flag_environment: str | None = None
    rollout_strategy: str | None = None
    bucket: int | None = None
    flag_version: int | None = None
    strategy: int | None = None  # index of the first matching strategy
    variant: Mapping[str, Any] | None = None


# ---- SQL calls ------------------------------------------------------------------------


def _context_json(context: Mapping[str, Any] | None) -> str:
    return json.dumps(dict(context or {}))


def _sql_user(
    user_id: uuid.UUID | str | None, context: Mapping[str, Any] | None
) -> tuple[str | None, Mapping[str, Any] | None]:
    """p_user_id and p_context for a user id: a uuid in its canonical text goes to
    p_user_id; any other text (Unleash's userId is any text, hashed as given) to the
    context's userId."""
    if user_id is None:
        return None, context
    if isinstance(user_id, uuid.UUID):
        return str(user_id), context
    try:
        if str(uuid.UUID(user_id)) == user_id:
            return user_id, context
    except (ValueError, TypeError, AttributeError):
        pass
    return None, {**(context or {}), "userId": user_id}


def is_feature_enabled(
    conn: psycopg.Connection[Any],
    key: str,
    user_id: uuid.UUID | str | None = None,
    environment: str = "production",
    context: Mapping[str, Any] | None = None,
) -> bool:
    """One call of `is_feature_enabled` (counted without a write per call)."""
    user, context = _sql_user(user_id, context)
    with wrap_errors():
        row = conn.execute(
            IS_FEATURE_ENABLED,
            {"key": key, "user_id": user, "environment": environment, "context": _context_json(context)},
        ).fetchone()
    return bool(row and row[0])


def get_feature_variant(
    conn: psycopg.Connection[Any],
    key: str,
    user_id: uuid.UUID | str | None = None,
    environment: str = "production",
    context: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One call of `get_feature_variant`: {name, payload?, enabled, feature_enabled}."""
    user, context = _sql_user(user_id, context)
    with wrap_errors():
        row = conn.execute(
            GET_FEATURE_VARIANT,
            {"key": key, "user_id": user, "environment": environment, "context": _context_json(context)},
        ).fetchone()
    assert row is not None
    return dict(row[0])


def evaluate_feature_flag(
    conn: psycopg.Connection[Any],
    key: str,
    user_id: uuid.UUID | str | None = None,
    environment: str = "production",
    context: Mapping[str, Any] | None = None,
) -> Evaluation:
    """The SQL decision with its reason (`evaluate_feature_flag`; not counted; service only)."""
    user, context = _sql_user(user_id, context)
    with wrap_errors():
        row = conn.execute(
            EVALUATE_FEATURE_FLAG,
            {"key": key, "user_id": user, "environment": environment, "context": _context_json(context)},
        ).fetchone()
    assert row is not None
    return Evaluation(key, bool(row[0]), row[1], row[2], row[3], row[4], row[5])


def feature_flag_bucket(conn: psycopg.Connection[Any], key: str, subject: str) -> int:
    with wrap_errors():
        row = conn.execute(FEATURE_FLAG_BUCKET, (key, subject)).fetchone()
    assert row is not None
    return int(row[0])


def upsert_flag(
    conn: psycopg.Connection[Any],
    key: str,
    *,
    environment: str = "production",
    enabled: bool | None = None,
    rollout_strategy: str | None = None,
    rollout_percentage: int | None = None,
    target_users: Iterable[uuid.UUID | str] | None = None,
    conditions: Sequence[Mapping[str, Any]] | None = None,
    name: str | None = None,
    description: str | None = None,
    secret: bool | None = None,
    strategies: Sequence[Mapping[str, Any]] | None = None,
    variants: Sequence[Mapping[str, Any]] | None = None,
    dependencies: Sequence[Mapping[str, Any]] | None = None,
) -> uuid.UUID:
    """Create a flag or change the given fields (`upsert_feature_flag`; service only).

    `strategies`, `variants` and `dependencies` are Unleash's shapes (docs/flags.md); the
    legacy `rollout_strategy`/`rollout_percentage`/`target_users`/`conditions` still work."""
    with wrap_errors():
        row = conn.execute(
            UPSERT_FEATURE_FLAG,
            {
                "key": key,
                "environment": environment,
                "enabled": enabled,
                "rollout_strategy": rollout_strategy,
                "rollout_percentage": rollout_percentage,
                "target_users": [str(u) for u in target_users] if target_users is not None else None,
                "conditions": json.dumps(list(conditions)) if conditions is not None else None,
                "name": name,
                "description": description,
                "secret": secret,
                "strategies": json.dumps(list(strategies)) if strategies is not None else None,
                "variants": json.dumps(list(variants)) if variants is not None else None,
                "dependencies": json.dumps(list(dependencies)) if dependencies is not None else None,
            },
        ).fetchone()
    assert row is not None
    return uuid.UUID(str(row[0]))


def upsert_segment(
    conn: psycopg.Connection[Any],
    name: str,
    constraints: Sequence[Mapping[str, Any]] | None = None,
    *,
    description: str | None = None,
    segment_id: int | None = None,
) -> int:
    """Create or change a segment (by name, or by id when given); returns its id."""
    with wrap_errors():
        row = conn.execute(
            UPSERT_SEGMENT,
            {
                "name": name,
                "constraints": json.dumps(list(constraints)) if constraints is not None else None,
                "description": description,
                "id": segment_id,
            },
        ).fetchone()
    assert row is not None
    return int(row[0])


def delete_segment(conn: psycopg.Connection[Any], name: str) -> bool:
    """Delete a segment; refused (23503) while a strategy uses it."""
    with wrap_errors():
        row = conn.execute(DELETE_SEGMENT, (name,)).fetchone()
    return bool(row and row[0])


def list_segments(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    with wrap_errors():
        rows = conn.execute(LOAD_SEGMENTS).fetchall()
    return [{"id": int(r[0]), "name": r[1], "constraints": json.loads(r[2])} for r in rows]


def delete_flag(conn: psycopg.Connection[Any], key: str, environment: str = "production") -> bool:
    """Delete one flag row; True when it existed (service only)."""
    with wrap_errors():
        return conn.execute(DELETE_FEATURE_FLAG, (key, environment)).rowcount == 1


def list_flags(conn: psycopg.Connection[Any]) -> list[Flag]:
    with wrap_errors():
        rows = conn.execute(LOAD_FLAGS + " order by key, environment").fetchall()
    return [Flag.from_row(r) for r in rows]


def flush_evaluations(conn: psycopg.Connection[Any]) -> int:
    """Write this connection's pending SQL evaluation counts now."""
    with wrap_errors():
        row = conn.execute(FLUSH_EVALUATIONS).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def record_evaluations(conn: psycopg.Connection[Any], counts: Mapping[tuple[str, str, str], int]) -> int:
    """Report local evaluation counts {(flag_key, environment, reason): n} (service only)."""
    payload = [{"flag_key": k, "environment": e, "reason": r, "count": n} for (k, e, r), n in counts.items() if n > 0]
    if not payload:
        return 0
    with wrap_errors():
        row = conn.execute(RECORD_EVALUATIONS, (json.dumps(payload),)).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def overview(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    """Rows of `feature_flag_overview` (service only)."""
    with wrap_errors(), db.dict_cursor(conn) as cur:
        return list(cur.execute(FLAG_OVERVIEW).fetchall())


# ---- the client -----------------------------------------------------------------------


class _Entry:
    """A flag as one environment sees it, with the counters of its outcomes there."""

    __slots__ = (
        "flag",
        "compiled",
        "enabled",
        "plain",
        "always",
        "raw",
        "first_match",
        "c_match",
        "c_no_match",
        "c_disabled",
    )

    def __init__(self, flag: Flag, environment: str, counters: _Counters, segments: Mapping[int, list[Any]]):
        self.flag = flag
        self.compiled = flag.compile(segments)
        self.enabled = flag.enabled
        # no parents: is_enabled is the generated matcher alone; no strategy: always on
        self.plain = not self.compiled.dependencies
        self.always = not self.compiled.rules
        self.raw = self.compiled.matcher.raw  # reads a caller's plain context as given
        self.first_match = self.compiled.matcher.first_match
        self.c_match = counters.get((flag.key, environment, "match"))
        self.c_no_match = counters.get((flag.key, environment, "no_match"))
        self.c_disabled = counters.get((flag.key, environment, "disabled"))


class _Counters:
    """Evaluation counters without a lock on the hot path.

    Each (flag key, environment, reason) has an itertools.count: `next()` on it is one
    atomic C call under the GIL, so concurrent threads lose no increment. Counters are
    cumulative and never replaced; a report sends the difference from the last report.
    """

    MAX_SLOTS = 5000

    def __init__(self) -> None:
        self._by_slot: dict[tuple[str, str, str], itertools.count[int]] = {}
        self._reported: dict[tuple[str, str, str], int] = {}
        self.report_lock = threading.Lock()

    def get(self, slot: tuple[str, str, str]) -> itertools.count[int]:
        c = self._by_slot.get(slot)
        if c is None:
            if len(self._by_slot) >= self.MAX_SLOTS and slot[2] == "unknown":
                # a bounded number of distinct unknown keys, as in SQL
                slot = ("(other)", slot[1], slot[2])
            c = self._by_slot.setdefault(slot, itertools.count())
        return c

    def unknown(self, key: str, environment: str) -> itertools.count[int]:
        return self.get((key if KEY_RE.fullmatch(key) else "(invalid)", environment, "unknown"))

    @staticmethod
    def _value(c: itertools.count[int]) -> int:
        return int(repr(c)[6:-1])  # "count(n)": n increments so far, read without one more

    def pending(self) -> dict[tuple[str, str, str], int]:
        out = {}
        for slot, c in list(self._by_slot.items()):
            d = self._value(c) - self._reported.get(slot, 0)
            if d > 0:
                out[slot] = d
        return out

    def mark_reported(self, sent: Mapping[tuple[str, str, str], int]) -> None:
        for slot, d in sent.items():
            self._reported[slot] = self._reported.get(slot, 0) + d


_NO_PROPERTIES: dict[str, str] = {}
_PLAIN_KEYS = frozenset((*flag_model.FIELDS, "properties"))


def _tables(
    rows: Iterable[Flag], counters: _Counters, segments: Mapping[int, list[Any]]
) -> dict[str, dict[str, _Entry]]:
    """Per environment: key → the row that applies (its own environment's, else 'all')."""
    by_key: dict[str, dict[str, Flag]] = {}
    for f in rows:
        by_key.setdefault(f.key, {})[f.environment] = f
    out: dict[str, dict[str, _Entry]] = {e: {} for e in ENVIRONMENTS}
    for key, envs in by_key.items():
        for e in ENVIRONMENTS:
            row = envs.get(e) or envs.get("all")
            if row is not None:
                out[e][key] = _Entry(row, e, counters, segments)
    return out


class FlagClient:
    """Local evaluation from an in-memory copy of feature_flags, kept fresh.

    `start()` loads every flag (LISTEN first, so no change slips between the load and the
    subscription) and runs a background thread that reloads a key when its notification
    arrives, reloads everything every `refresh_interval` seconds, and reports evaluation
    counts every `flush_interval` seconds. When the database is unreachable the client keeps
    answering from its last copy (`stale` is then true) and reconnects with backoff.

    `role` (e.g. "service_role") makes the loads run as that role when the login role is
    not itself allowed to read feature_flags in full.

    Connections (see platformdb.db): LISTEN needs a session, so it runs on `direct_url`
    (PLATFORMDB_DIRECT_URL), or on `database_url` when that is no transaction pooler.
    Without one the client polls: a cheap version check at most every `poll_interval`
    seconds (1 s), and a reload when it changed — it logs once, at start, that it polls and
    why. Full loads read from `replica_url` (PLATFORMDB_REPLICA_URL) when set; reloads of
    notified keys read the primary.
    """

    def __init__(
        self,
        database_url: str | None = None,
        *,
        environment: str = "production",
        refresh_interval: float = 60.0,
        flush_interval: float = 30.0,
        record: bool = True,
        role: str | None = None,
        on_change: Callable[[list[str]], None] | None = None,
        direct_url: str | None = None,
        replica_url: str | None = None,
        poll_interval: float = POLL_INTERVAL,
    ):
        if environment not in ENVIRONMENTS:
            raise InvalidInput(f"environment: unknown environment {environment!r}")
        self.database_url = db.resolve_url(database_url)
        self.direct_url = direct_url
        self.replica_url = db.replica_url(replica_url)
        self.poll_interval = max(0.05, poll_interval)
        self.polling: bool | None = None  # decided at the first connection
        self.environment = environment
        self.refresh_interval = refresh_interval
        self.flush_interval = flush_interval
        self.record = record
        self.role = role
        self.on_change = on_change
        self._tables: dict[str, dict[str, _Entry]] = {e: {} for e in ENVIRONMENTS}
        self._segments: dict[int, list[Any]] = {}
        self._counters = _Counters()
        self._loaded_segments: dict[int, list[Any]] = {}
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._lifecycle = threading.Lock()  # start() and stop() may come from other threads
        self._connected = False
        self.last_refresh: float | None = None  # time.monotonic() of the last full load
        self.generation = 0  # bumped by every applied change
        self.last_error: BaseException | None = None

    # ---- lifecycle ----
    def start(self, timeout: float = 10.0) -> FlagClient:
        """Start the background thread and wait up to `timeout` seconds for the first load.

        Never raises for an unreachable database: until the first load succeeds (see `ready`
        and `last_error`) every flag is unknown, i.e. False.
        """
        with self._lifecycle:
            if self._thread is None:
                self._stop.clear()
                thread = threading.Thread(target=self._run, name="platformdb-flags", daemon=True)
                thread.start()
                self._thread = thread
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 10.0) -> bool:
        return self._ready.wait(timeout)

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    @property
    def stale(self) -> bool:
        """True while the client is not connected (answers come from the last copy)."""
        return not self._connected

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread and report the remaining counts."""
        with self._lifecycle:
            self._stop.set()
            if self._thread is not None:
                self._thread.join(timeout)
                self._thread = None
        if self.record:
            try:
                self.flush()
            except Exception:  # reporting counts must never break a shutdown
                log.warning("could not report flag evaluation counts", exc_info=True)

    def __enter__(self) -> FlagClient:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- loading ----
    def _connect(self, url: str | None = None) -> psycopg.Connection[Any]:
        url = url or self.database_url
        return psycopg.connect(
            url, autocommit=True, connect_timeout=10, application_name=APP_NAME, **db.connect_kwargs(url)
        )

    def _fetch_all(self, conn: psycopg.Connection[Any]) -> list[Flag]:
        """Every flag: from the replica when one is set, else on `conn`."""
        if self.replica_url is None:
            return self._fetch(conn, None)
        with self._connect(self.replica_url) as rc:
            return self._fetch(rc, None)

    def _fingerprint(self, conn: psycopg.Connection[Any]) -> tuple[Any, ...]:
        with conn.transaction():
            if self.role:
                db.set_role(conn, self.role, db.claims_for(self.role))
            row = conn.execute(FLAGS_FINGERPRINT).fetchone()
        return tuple(row) if row else ()

    def _fetch(self, conn: psycopg.Connection[Any], keys: list[str] | None) -> list[Flag]:
        with conn.transaction():
            if self.role:
                db.set_role(conn, self.role, db.claims_for(self.role))
            if keys is None:
                rows = conn.execute(LOAD_FLAGS).fetchall()
                # segments come with every full load (a segment change notifies key null)
                self._loaded_segments = {int(r[0]): json.loads(r[2]) for r in conn.execute(LOAD_SEGMENTS).fetchall()}
            else:
                rows = conn.execute(LOAD_FLAGS_BY_KEY, (keys,)).fetchall()
        return [Flag.from_row(r) for r in rows]

    def _apply(self, flags: list[Flag], keys: list[str] | None) -> None:
        if keys is None:
            self._segments = self._loaded_segments
            self._tables = _tables(flags, self._counters, self._segments)
            changed = sorted({f.key for f in flags})
        else:
            fresh = _tables(flags, self._counters, self._segments)
            tables = {}
            for e in ENVIRONMENTS:
                t = dict(self._tables[e])
                for k in keys:
                    t.pop(k, None)
                t.update(fresh[e])
                tables[e] = t
            self._tables = tables  # one reference swap: readers see old or new, never half
            changed = sorted(keys)
        self.generation += 1
        if self.on_change is not None:
            try:
                self.on_change(changed)
            except Exception:
                log.exception("flag on_change callback failed")

    def refresh(self) -> int:
        """Reload every flag now (on a connection of its own); returns how many rows."""
        with wrap_errors(), self._connect(self.replica_url) as conn:
            flags = self._fetch(conn, None)
        self._apply(flags, None)
        self.last_refresh = time.monotonic()
        self._ready.set()
        return len(flags)

    def _listen_url(self) -> str | None:
        url = db.direct_url_for(self.database_url, self.direct_url)
        if self.polling is None:
            self.polling = url is None
            if url is None:
                log.info(
                    "flag client: no session connection for LISTEN (the database URL is a"
                    " transaction pooler and %s is not set): polling the flags' version every %.2fs",
                    db.DIRECT_URL_ENV,
                    self.poll_interval,
                )
        return url

    def _run(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            try:
                listen_url = self._listen_url()
                with self._connect(listen_url) as conn:
                    if listen_url is not None:
                        conn.execute("listen " + CHANNEL)
                    seen = self._fingerprint(conn) if listen_url is None else ()
                    self._apply(self._fetch_all(conn), None)
                    self.last_refresh = time.monotonic()
                    last_flush = time.monotonic()
                    self._connected = True
                    self._ready.set()
                    backoff = 0.5
                    while not self._stop.is_set():
                        keys: set[str] = set()
                        if listen_url is None:
                            self._stop.wait(self.poll_interval)
                            current = self._fingerprint(conn)
                            if current != seen:
                                keys.add("")  # something changed: reload everything
                                seen = current
                        else:
                            for n in conn.notifies(timeout=0.5, stop_after=1):
                                keys.add(self._key_of(n.payload))
                            if keys:  # drain the rest of a burst before reloading
                                for n in conn.notifies(timeout=0):
                                    keys.add(self._key_of(n.payload))
                        now = time.monotonic()
                        if "" in keys or now - (self.last_refresh or 0) >= self.refresh_interval:
                            self._apply(self._fetch_all(conn), None)
                            self.last_refresh = now
                        elif keys:
                            ks = sorted(keys)
                            self._apply(self._fetch(conn, ks), ks)
                        if self.record and now - last_flush >= self.flush_interval:
                            last_flush = now
                            try:
                                self._flush_on(conn)
                            except (psycopg.Error, PlatformDBError) as exc:
                                if conn.closed or conn.broken:
                                    raise
                                # e.g. a login role without EXECUTE on the reporting
                                # function: the counts stay pending, the flags stay fresh
                                self.last_error = exc
                                log.warning("flag client: could not report counts: %s", exc)
            except Exception as exc:  # keep serving the last copy; reconnect
                self.last_error = exc
                if not self._stop.is_set():
                    log.warning("flag client: %s; reconnecting in %.1fs", exc, backoff)
            finally:
                self._connected = False
            self._stop.wait(backoff)
            backoff = min(backoff * 2, 30.0)

    @staticmethod
    def _key_of(payload: str) -> str:
        """The flag key of a notification ('' = unknown: reload everything)."""
        try:
            key = json.loads(payload).get("key")
        except (ValueError, AttributeError):
            return ""
        return key if isinstance(key, str) else ""

    # ---- counting ----
    def _flush_on(self, conn: psycopg.Connection[Any]) -> int:
        with self._counters.report_lock:
            counts = self._counters.pending()
            if not counts:
                return 0
            with conn.transaction():
                if self.role:
                    db.set_role(conn, self.role, db.claims_for(self.role))
                n = record_evaluations(conn, counts)
            self._counters.mark_reported(counts)
            return n

    def flush(self) -> int:
        """Report the evaluation counts not reported yet; returns the buckets written."""
        with self._connect() as conn:
            return self._flush_on(conn)

    def pending_counts(self) -> dict[tuple[str, str, str], int]:
        """Evaluations counted since the last report, by (flag key, environment, reason)."""
        return self._counters.pending()

    # ---- evaluation ----
    def _table(self, environment: str) -> dict[str, _Entry]:
        table = self._tables.get(environment)
        if table is None:
            raise InvalidInput(f"environment: unknown environment {environment!r}", sqlstate="22023")
        return table

    @staticmethod
    def _user(user_id: uuid.UUID | str | None) -> str | None:
        """Unleash's userId is any text, hashed as given; a uuid object as its canonical text."""
        if user_id is None or type(user_id) is str:
            return user_id
        if isinstance(user_id, uuid.UUID):
            return str(user_id)
        raise InvalidInput(f"user_id: expected text or a uuid, got {type(user_id).__name__}", sqlstate="22023")

    def _outcome(
        self,
        key: str,
        user_id: uuid.UUID | str | None,
        environment: str | None,
        context: Mapping[str, Any] | None,
        want_variant: bool,
    ) -> tuple[_Entry | None, str, flag_model.Outcome | None]:
        env = environment or self.environment
        table = self._table(env)
        entry = table.get(key)
        if entry is None:
            if self.record:
                next(self._counters.unknown(key, env))
            return None, env, None
        if not entry.flag.enabled:
            if self.record:
                next(entry.c_disabled)
            return entry, env, None
        user = user_id if user_id is None or type(user_id) is str else self._user(user_id)
        if context:
            if user is not None and isinstance(context.get("userId"), str) and context["userId"] != user:
                raise InvalidInput("user_id and context userId differ", sqlstate="22023")
            ctx = flag_model.make_context(context, user, env)
        else:  # the common case, without building a context
            ctx = {"environment": env, "properties": _NO_PROPERTIES}
            if user is not None:
                ctx["userId"] = user

        def lookup(k: str) -> flag_model.CompiledFlag | None:
            e = table.get(k)
            return e.compiled if e is not None else None

        out = entry.compiled.outcome(ctx, lookup, want_variant=want_variant)
        if self.record:
            next(entry.c_match if out.enabled else entry.c_no_match)
        return entry, env, out

    def is_enabled(
        self,
        key: str,
        user_id: uuid.UUID | str | None = None,
        environment: str | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> bool:
        """The answer `is_feature_enabled` would give, from memory. Unknown flag -> False."""
        env = environment or self.environment
        table = self._tables.get(env)
        entry = table.get(key) if table is not None else None
        if entry is None or not entry.plain or (user_id is not None and type(user_id) is not str):
            _, _, out = self._outcome(key, user_id, environment, context, False)
            return out is not None and out.enabled
        # the hot path: a flag without parents, evaluated by its generated matcher
        if not entry.enabled:
            if self.record:
                next(entry.c_disabled)
            return False
        if entry.always:
            on = True
        elif (
            entry.raw
            and user_id is None
            and type(context) is dict
            and context.keys() <= _PLAIN_KEYS
            and type(context.get("properties", _NO_PROPERTIES)) is dict
        ):
            on = entry.first_match(context, key, env) is not None  # the caller's context, only read
        else:
            if context:
                if user_id is not None and isinstance(context.get("userId"), str) and context["userId"] != user_id:
                    raise InvalidInput("user_id and context userId differ", sqlstate="22023")
                ctx = flag_model.make_context(context, user_id, env)
            else:
                ctx = {"environment": env, "properties": _NO_PROPERTIES}
                if user_id is not None:
                    ctx["userId"] = user_id
            ctx[flag_model.TOGGLE] = key
            on = entry.first_match(ctx, key, env) is not None
        if self.record:
            next(entry.c_match if on else entry.c_no_match)
        return on

    def get_variant(
        self,
        key: str,
        user_id: uuid.UUID | str | None = None,
        environment: str | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The variant `get_feature_variant` would give: {name, payload?, enabled, feature_enabled}."""
        _, _, out = self._outcome(key, user_id, environment, context, True)
        if out is None or not out.enabled:
            return {**flag_model.DISABLED_VARIANT, "feature_enabled": False}
        return {**(out.variant or flag_model.DISABLED_VARIANT), "feature_enabled": True}

    def evaluate(
        self,
        key: str,
        user_id: uuid.UUID | str | None = None,
        environment: str | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> Evaluation:
        """Like `is_enabled`, with the reason and the flag row used (as `evaluate_feature_flag`)."""
        entry, _, out = self._outcome(key, user_id, environment, context, True)
        user = self._user(user_id)
        b = bucket(key, user) if user is not None else None
        if entry is None:
            return Evaluation(key, False, "unknown")
        flag = entry.flag
        if out is None:
            return Evaluation(key, False, "disabled", flag.environment, flag.rollout_strategy, b, flag.version)
        reason = "match" if out.enabled else "no_match"
        variant = (out.variant or flag_model.DISABLED_VARIANT) if out.enabled else flag_model.DISABLED_VARIANT
        return Evaluation(
            key, out.enabled, reason, flag.environment, flag.rollout_strategy, b, flag.version, out.strategy, variant
        )

    def flag(self, key: str, environment: str | None = None) -> Flag | None:
        """The flag row that applies to `key` in the environment, if any."""
        entry = self._table(environment or self.environment).get(key)
        return entry.flag if entry else None

    def flags(self, environment: str | None = None) -> list[Flag]:
        return [e.flag for e in self._table(environment or self.environment).values()]
