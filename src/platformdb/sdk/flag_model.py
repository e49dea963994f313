"""Unleash's feature model, evaluated in memory exactly as the SQL functions evaluate it.

Each function here mirrors one SQL function of migration 20260401200000 (named in its
docstring); `tests/db/test_flag_model.py` runs both on the same flags and contexts, and the
Unleash client specification and Unleash's reference engine (`yggdrasil-engine`) are the
acceptance. Flags are compiled once when loaded (`CompiledFlag`), so an evaluation is a few
closure calls.

The context is Unleash's: userId, sessionId, remoteAddress, environment, appName,
currentTime and properties, every value text (`make_context`).
"""

from __future__ import annotations

import functools
import ipaddress
import json
import logging
import random
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import mmh3

log = logging.getLogger("platformdb.flags")

VARIANT_SEED = 86028157
FIELDS = ("userId", "sessionId", "remoteAddress", "environment", "appName", "currentTime")
_FIELDS = frozenset(FIELDS)
_STICKY_FIELDS = frozenset(("userId", "sessionId", "environment", "appName", "remoteAddress"))
STRATEGY_NAMES = (
    "default",
    "userWithId",
    "gradualRolloutUserId",
    "gradualRolloutSessionId",
    "gradualRolloutRandom",
    "flexibleRollout",
    "remoteAddress",
    "applicationHostname",
)
OPERATORS = (
    "IN",
    "NOT_IN",
    "STR_CONTAINS",
    "STR_STARTS_WITH",
    "STR_ENDS_WITH",
    "NUM_EQ",
    "NUM_GT",
    "NUM_GTE",
    "NUM_LT",
    "NUM_LTE",
    "DATE_AFTER",
    "DATE_BEFORE",
    "SEMVER_EQ",
    "SEMVER_GT",
    "SEMVER_GTE",
    "SEMVER_LT",
    "SEMVER_LTE",
    "REGEX",
    "IN_CIDR",
)
DISABLED_VARIANT: dict[str, Any] = {"name": "disabled", "enabled": False}
EPSILON = 2.220446049250313e-16

Context = dict[str, Any]
TOGGLE = "\x00toggle"  # the context slot of the name of the flag being evaluated
Predicate = Callable[[Context], bool]


# ---- values ---------------------------------------------------------------------------


def scalar_text(value: Any) -> str | None:
    """A JSON scalar as the SQL side reads it (`value #>> '{}'` of json.dumps(value))."""
    if isinstance(value, str):
        return value
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return None
        d = Decimal(repr(value))
    elif isinstance(value, Decimal):
        if not value.is_finite():
            return None
        d = value
    else:
        return None
    s = format(d, "f")
    return s[1:] if d == 0 and s.startswith("-") else s


_NO_PROPS: dict[str, str] = {}


def make_context(context: Mapping[str, Any] | None, user: str | None, environment: str) -> Context:
    """`feature_flag_context`: the six fields and properties, all text; other top-level keys
    are properties (those in "properties" win); `user` (when given) is the userId; the
    environment defaults to the one asked for. The context is only read, never kept."""
    ctx: Context = {}
    props: dict[str, str] = {}
    if context:
        for k, v in context.items():
            if k == "properties":
                continue
            t = v if type(v) is str else scalar_text(v)
            if t is None:
                continue
            if k in _FIELDS:
                ctx[k] = t
            else:
                props[k] = t
        nested = context.get("properties")
        if isinstance(nested, Mapping):
            for k, v in nested.items():
                t = v if type(v) is str else scalar_text(v)
                if t is not None:
                    props[k] = t
    if user is not None:
        ctx["userId"] = user
    if "environment" not in ctx:
        ctx["environment"] = environment
    ctx["properties"] = props
    return ctx


def _now_text() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def context_value(ctx: Context, name: str) -> str | None:
    """`feature_flag_context_value`."""
    if name in _FIELDS:
        if name == "currentTime":
            return ctx.get("currentTime") or _now_text()
        v: str | None = ctx.get(name)
        return v
    return ctx["properties"].get(name)


_FLOAT_RE = re.compile(r"[+-]?(inf|infinity|nan|([0-9]+\.?[0-9]*|\.[0-9]+)(e[+-]?[0-9]+)?)", re.IGNORECASE)
_NONZERO_RE = re.compile(r"[1-9]")


def parse_float(text: str | None) -> float | None:
    """`feature_flag_parse_float`: a number as Unleash's engine reads one; None when not one
    or out of double precision's range."""
    if text is None or len(text) > 400 or not _FLOAT_RE.fullmatch(text):
        return None
    f = float(text)
    low = text.lower()
    if f in (float("inf"), float("-inf")) and "inf" not in low:
        return None  # overflow: PostgreSQL refuses it
    if f == 0.0 and "inf" not in low and "nan" not in low and _NONZERO_RE.search(low.split("e")[0]):
        return None  # underflow
    return f


_DATE_CTX_RE = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})"
)


def parse_time(text: str | None) -> datetime | None:
    if text is None or not _DATE_CTX_RE.fullmatch(text):
        return None
    main, frac, tz = text[:19], "", text[19:]
    if tz.startswith("."):
        end = 1
        while end < len(tz) and tz[end].isdigit():
            end += 1
        frac, tz = tz[1:end], tz[end:]
    if tz == "Z":
        tz = "+00:00"
    try:
        t = datetime.fromisoformat(main + tz)
    except ValueError:
        return None
    if frac:
        # PostgreSQL rounds to the microsecond
        micro = round(int(frac.ljust(9, "0")) / 1000)
        if micro:
            t = t + timedelta(microseconds=micro)
    return t


_SEMVER_RE = re.compile(
    r"(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)"
    r"(?:-((?:0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*)"
    r"(?:\.(?:0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+[0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*)?"
)
_DIGITS_RE = re.compile(r"[0-9]+")


@functools.lru_cache(maxsize=8192)
def _semver(v: str) -> tuple[int, int, int, tuple[str, ...] | None] | None:
    if len(v) > 256:
        return None
    m = _SEMVER_RE.fullmatch(v)
    if m is None:
        return None
    return int(m[1]), int(m[2]), int(m[3]), tuple(m[4].split(".")) if m[4] is not None else None


def semver_cmp(a: str | None, b: str | None) -> int | None:
    """`feature_flag_semver_cmp`: SemVer 2.0.0 precedence; None when either is invalid."""
    if a is None or b is None:
        return None
    return _semver_cmp_parsed(_semver(a), _semver(b))


def semver_cmp_to(a: str | None, pb_: tuple[int, int, int, tuple[str, ...] | None] | None) -> int | None:
    """`semver_cmp(a, b)` with b already parsed (`_semver(b)`, a constraint's value)."""
    if a is None or type(a) is not str:
        return None
    return _semver_cmp_parsed(_semver(a), pb_)


def _semver_cmp_parsed(
    pa_: tuple[int, int, int, tuple[str, ...] | None] | None, pb_: tuple[int, int, int, tuple[str, ...] | None] | None
) -> int | None:
    if pa_ is None or pb_ is None:
        return None
    ca, cb = pa_[:3], pb_[:3]
    if ca != cb:
        return -1 if ca < cb else 1
    xs, ys = pa_[3], pb_[3]
    if xs is None or ys is None:
        if xs is None and ys is None:
            return 0
        return 1 if xs is None else -1
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


_POSIX = {
    "alpha": "a-zA-Z",
    "digit": "0-9",
    "alnum": "a-zA-Z0-9",
    "upper": "A-Z",
    "lower": "a-z",
    "space": r" \t\n\r\f\v",
    "blank": r" \t",
    "xdigit": "0-9A-Fa-f",
    "punct": r"!-/:-@\[-`{-~",
    "cntrl": r"\x00-\x1f\x7f",
    "print": r" -~",
    "graph": r"!-~",
    "word": r"\w",
}
_LEADING_FLAGS_RE = re.compile(r"(\^?)\(\?([ims]+)\)(.*)", re.DOTALL)


def compile_regex(pattern: str, case_insensitive: bool) -> re.Pattern[str] | None:
    """The Python form of an Unleash (Rust syntax) regular expression, as
    `feature_flag_regex_pg` makes the PostgreSQL one."""
    flags = 0
    m = _LEADING_FLAGS_RE.fullmatch(pattern)
    if m:
        pattern = m[1] + m[3]
        if "i" in m[2]:
            flags |= re.IGNORECASE
        if "m" in m[2]:
            flags |= re.MULTILINE
        if "s" in m[2]:
            flags |= re.DOTALL
    if case_insensitive:
        flags |= re.IGNORECASE
    for name, chars in _POSIX.items():
        pattern = pattern.replace(f"[:{name}:]", chars)
    pattern = re.sub(r"((?:^|[^\\])(?:\\\\)*)\\z", r"\1\\Z", pattern)
    try:
        return re.compile(pattern, flags)
    except re.error:
        log.warning("flag regex %r does not compile here; it never matches", pattern)
        return None


def parse_ip(text: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if text is None or "/" in text or not re.fullmatch(r"[0-9A-Fa-f:.]{2,45}", text):
        return None
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def parse_networks(values: Sequence[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    out = []
    for v in values:
        if v != v.strip():
            continue
        try:
            out.append(ipaddress.ip_network(v, strict=False))
        except ValueError:
            continue
    return out


def _in_networks(ip: Any, nets: Sequence[Any]) -> bool:
    return any(ip.version == n.version and ip in n for n in nets)


# ---- constraints ----------------------------------------------------------------------


def compile_constraint(c: Mapping[str, Any]) -> Predicate:
    """`feature_flag_constraint_matches` for one (validated) constraint."""
    op = c["operator"]
    name = c["contextName"]
    ci = bool(c.get("caseInsensitive"))
    inverted = bool(c.get("inverted"))
    values: list[str] = list(c.get("values") or [])
    value: str | None = c.get("value")
    field = name in _FIELDS and name != "currentTime"
    props = name not in _FIELDS

    def get(ctx: Context) -> str | None:
        if field:
            v: str | None = ctx.get(name)
            return v
        if props:
            p: str | None = ctx["properties"].get(name)
            return p
        return context_value(ctx, name)

    test: Predicate
    if op in ("IN", "NOT_IN"):
        vs = frozenset(values)
        if not vs:
            result = op == "NOT_IN"

            def test(ctx: Context) -> bool:
                return result

        elif op == "IN":

            def test(ctx: Context) -> bool:
                s = get(ctx)
                return s is not None and s in vs

        else:

            def test(ctx: Context) -> bool:
                s = get(ctx)
                return s is None or s not in vs

    elif op in ("STR_CONTAINS", "STR_STARTS_WITH", "STR_ENDS_WITH"):
        items = tuple(v.lower() for v in values) if ci else tuple(values)

        def test(ctx: Context) -> bool:
            s = get(ctx)
            if s is None:
                return False
            if ci:
                s = s.lower()
            if op == "STR_CONTAINS":
                return any(i in s for i in items)
            if op == "STR_STARTS_WITH":
                return s.startswith(items)
            return s.endswith(items)

    elif op.startswith("NUM_"):
        b = float(value)  # type: ignore[arg-type]

        def test(ctx: Context) -> bool:
            a = parse_float(get(ctx))
            if a is None or a != a:
                return False
            if op == "NUM_EQ":
                return abs(a - b) < EPSILON
            if op == "NUM_GT":
                return a > b
            if op == "NUM_GTE":
                return a >= b
            if op == "NUM_LT":
                return a < b
            return a <= b

    elif op.startswith("DATE_"):
        when = parse_time(value)
        assert when is not None

        def test(ctx: Context) -> bool:
            t = parse_time(get(ctx))
            if t is None:
                return False
            return t > when if op == "DATE_AFTER" else t < when  # type: ignore[operator]

    elif op.startswith("SEMVER_"):

        def test(ctx: Context) -> bool:
            r = semver_cmp(get(ctx), value)
            if r is None:
                return False
            if op == "SEMVER_EQ":
                return r == 0
            if op == "SEMVER_GT":
                return r > 0
            if op == "SEMVER_GTE":
                return r >= 0
            if op == "SEMVER_LT":
                return r < 0
            return r <= 0

    elif op == "REGEX":
        rx = compile_regex(value or "", ci)

        def test(ctx: Context) -> bool:
            s = get(ctx)
            return rx is not None and s is not None and rx.search(s) is not None

    elif op == "IN_CIDR":
        nets = parse_networks(values)

        def test(ctx: Context) -> bool:
            ip = parse_ip(get(ctx))
            return ip is not None and _in_networks(ip, nets)

    else:
        raise ValueError(f"unknown constraint operator {op!r}")

    if inverted:
        return lambda ctx: not test(ctx)
    return test


# ---- strategies -----------------------------------------------------------------------


def _hash(group: str, subject: str, modulus: int, seed: int) -> int:
    """`feature_flag_hash`."""
    return int(mmh3.hash(f"{group}:{subject}", seed, False)) % modulus + 1


def compile_strategy(flag_key: str, s: Mapping[str, Any], segments: Mapping[int, list[Any]]) -> Predicate:
    """`feature_flag_strategy_matches` for one (validated) strategy."""
    params: Mapping[str, str] = s.get("parameters") or {}
    checks = [compile_constraint(c) for c in s.get("constraints") or []]
    for sid in s.get("segments") or []:
        if int(sid) not in segments:
            # a strategy referring to a segment this copy does not have never matches
            return lambda ctx: False
        checks.extend(compile_constraint(c) for c in segments[int(sid)])
    name = s["name"]
    rule: Predicate
    if name == "default":

        def rule(ctx: Context) -> bool:
            return True

    elif name == "userWithId":
        ids_param = params.get("userIds")
        ids = frozenset(u.strip(" ") for u in ids_param.split(",")) if ids_param is not None else None

        def rule(ctx: Context) -> bool:
            u = ctx.get("userId")
            return ids is not None and u is not None and u in ids

    elif name in ("gradualRolloutUserId", "gradualRolloutSessionId"):
        fieldname = "userId" if name == "gradualRolloutUserId" else "sessionId"
        pct_s, group = params.get("percentage"), params.get("groupId")

        def rule(ctx: Context) -> bool:
            subject = ctx.get(fieldname)
            if pct_s is None or group is None or subject is None:
                return False
            return _hash(group, subject, 100, 0) <= int(pct_s)

    elif name == "gradualRolloutRandom":
        pct_r = params.get("percentage")

        def rule(ctx: Context) -> bool:
            return pct_r is not None and random.randint(1, 99) < int(pct_r)

    elif name == "flexibleRollout":
        rollout = params.get("rollout")
        stickiness = params.get("stickiness") or "default"
        group_f = params.get("groupId")  # None: the name of the flag being evaluated

        def rule(ctx: Context) -> bool:
            if rollout is None:
                return False
            if stickiness == "default":
                subject = ctx.get("userId")
                if subject is None:
                    subject = ctx.get("sessionId")
                if subject is None:
                    subject = str(random.randint(1, 9999))
            elif stickiness == "random":
                subject = str(random.randint(1, 9999))
            else:
                subject = context_value(ctx, stickiness)
            if subject is None:
                return False
            return _hash(group_f if group_f is not None else ctx[TOGGLE], subject, 100, 0) <= int(rollout)

    elif name == "remoteAddress":
        ips = params.get("IPs")
        nets = parse_networks([p.strip(" ") for p in ips.split(",")]) if ips is not None else []

        def rule(ctx: Context) -> bool:
            ip = parse_ip(ctx.get("remoteAddress"))
            return ips is not None and ip is not None and _in_networks(ip, nets)

    elif name == "applicationHostname":
        hosts = frozenset(h.strip(" ").lower() for h in (params.get("hostNames") or "").split(","))

        def rule(ctx: Context) -> bool:
            h = ctx["properties"].get("hostname")
            return h is not None and h.lower() in hosts

    else:
        raise ValueError(f"unknown strategy {name!r}")

    if not checks:
        return rule

    def strategy(ctx: Context) -> bool:
        for check in checks:
            if not check(ctx):
                return False
        return rule(ctx)

    return strategy


# ---- the whole strategy list as one generated function --------------------------------
#
# `compile_matcher` turns a flag's strategies into the source of one Python function,
# `first_match(ctx, toggle, env) -> index of the first matching strategy | None`, with the common
# operators and flexibleRollout written inline (no call per constraint) and everything else
# calling the closures above. Only names of bound constants appear in the source: every
# value (context field names, constraint values, groupIds) is a constant of the function's
# namespace, never text of the source. The closures stay the reference: the generated
# function must give their answer (tests/db/test_flag_model.py compares both).

_INLINE_STR = {"STR_STARTS_WITH": "startswith", "STR_ENDS_WITH": "endswith"}
_NUM_TEST = {"NUM_GT": ">", "NUM_GTE": ">=", "NUM_LT": "<", "NUM_LTE": "<="}
_SEMVER_TEST = {"SEMVER_EQ": "== 0", "SEMVER_GT": "> 0", "SEMVER_GTE": ">= 0", "SEMVER_LT": "< 0", "SEMVER_LTE": "<= 0"}


class _Source:
    def __init__(self) -> None:
        self.names: dict[str, Any] = {
            "_MH": mmh3.hash,
            "_RND": random.randint,
            "_SEMC": semver_cmp_to,
            "_PF": parse_float,
            "_EPS": EPSILON,
            "_T": scalar_text,
            "_NOP": _NO_PROPS,
        }
        self.closures = 0  # closures called: they need the whole context (make_context's)

    def const(self, value: Any) -> str:
        name = f"_k{len(self.names)}"
        self.names[name] = value
        return name

    def closure(self, fn: Any) -> str:
        self.closures += 1
        return f"{self.const(fn)}(ctx)"


# A value of the context as text: the fast branch is a str (always, after make_context);
# a number or boolean of a caller's context is made text as make_context would.
def _value_source(src: _Source, name: str) -> str | None:
    if name == "environment":
        return (
            "(_v if type(_v := ctx.get('environment')) is str else (env if _v is None or _T(_v) is None else _T(_v)))"
        )
    if name in _FIELDS and name != "currentTime":
        return f"(_v if type(_v := ctx.get({src.const(name)})) is str or _v is None else _T(_v))"
    if name not in _FIELDS and name != "properties":
        return f"(_v if type(_v := _p.get({src.const(name)})) is str or _v is None else _T(_v))"
    return None  # currentTime (defaults to now), "properties": the closure


def _constraint_source(src: _Source, c: Mapping[str, Any]) -> str:
    op = c["operator"]
    ci = bool(c.get("caseInsensitive"))
    values: list[str] = list(c.get("values") or [])
    get = _value_source(src, c["contextName"])
    if get is None:
        return src.closure(compile_constraint(c))
    if op in ("IN", "NOT_IN"):
        if not values:
            expr = "True" if op == "NOT_IN" else "False"
        elif op == "IN":
            expr = f"((_s := {get}) is not None and _s in {src.const(frozenset(values))})"
        else:
            expr = f"((_s := {get}) is None or _s not in {src.const(frozenset(values))})"
    elif op in _INLINE_STR:
        items = tuple(v.lower() for v in values) if ci else tuple(values)
        lower = ".lower()" if ci else ""
        expr = f"((_s := {get}) is not None and _s{lower}.{_INLINE_STR[op]}({src.const(items)}))"
    elif op in _NUM_TEST or op == "NUM_EQ":
        b = src.const(float(c["value"]))
        test = f"abs(_f - {b}) < _EPS" if op == "NUM_EQ" else f"_f {_NUM_TEST[op]} {b}"
        expr = f"((_f := _PF({get})) is not None and _f == _f and {test})"
    elif op in _SEMVER_TEST:
        value = c.get("value")
        parsed = _semver(value) if isinstance(value, str) else None
        expr = f"((_r := _SEMC({get}, {src.const(parsed)})) is not None and _r {_SEMVER_TEST[op]})"
    else:  # STR_CONTAINS, DATE_*, REGEX, IN_CIDR: the closure (it applies `inverted` itself)
        return src.closure(compile_constraint(c))
    return f"(not {expr})" if c.get("inverted") else expr


def _rule_source(src: _Source, flag_key: str, s: Mapping[str, Any]) -> str:
    name = s["name"]
    params: Mapping[str, str] = s.get("parameters") or {}
    if name == "default":
        return "True"
    if name == "flexibleRollout" and params.get("rollout") is not None:
        stickiness = params.get("stickiness") or "default"
        uid = _value_source(src, "userId")
        sid = _value_source(src, "sessionId")
        if stickiness == "default":
            subject = (
                f"(_u if (_u := {uid}) is not None else (_u if (_u := {sid}) is not None else str(_RND(1, 9999))))"
            )
        elif stickiness == "random":
            subject = "str(_RND(1, 9999))"
        else:
            return src.closure(compile_strategy(flag_key, {"name": name, "parameters": params}, {}))
        group = params.get("groupId")
        prefix = src.const(group + ":") if group is not None else "(toggle + ':')"
        return f"_MH({prefix} + {subject}, 0, False) % 100 + 1 <= {src.const(int(params['rollout']))}"
    return src.closure(compile_strategy(flag_key, {"name": name, "parameters": params}, {}))


class Matcher:
    """`first_match(ctx, toggle, env)`: the index of the first matching strategy, or None.
    `raw`: it reads the caller's context as given (fields and a "properties" dict, values as
    text or scalars), without make_context; else it needs make_context's (closures)."""

    __slots__ = ("first_match", "raw", "source")

    def __init__(self, first_match: Callable[[Context, str, str], int | None], raw: bool, source: str):
        self.first_match = first_match
        self.raw = raw
        self.source = source


def compile_matcher(
    flag_key: str, strategies: Sequence[Mapping[str, Any]], segments: Mapping[int, list[Any]]
) -> Matcher:
    src = _Source()
    lines = ["def first_match(ctx, toggle, env):", "    _p = ctx.get('properties') or _NOP"]
    for i, s in enumerate(strategies):
        checks: list[str] = [_constraint_source(src, c) for c in s.get("constraints") or []]
        for sid in s.get("segments") or []:
            if int(sid) not in segments:
                checks = ["False"]  # a segment this copy does not have: never matches
                break
            checks.extend(_constraint_source(src, c) for c in segments[int(sid)])
        checks.append(_rule_source(src, flag_key, s))
        lines.append(f"    if {' and '.join(checks)}:")
        lines.append(f"        return {i}")
    lines.append("    return None")
    source = "\n".join(lines)
    namespace = dict(src.names)
    exec(compile(source, f"<flag {flag_key!r}>", "exec"), namespace)  # noqa: S102 - constants only, see above
    return Matcher(namespace["first_match"], src.closures == 0, source)


# ---- variants -------------------------------------------------------------------------


def pick_variant(
    variants: Sequence[Mapping[str, Any]], group: str, stickiness: str | None, ctx: Context
) -> dict[str, Any] | None:
    """`feature_flag_pick_variant`: overrides first, then the weighted choice."""
    if not variants:
        return None
    for v in variants:
        for o in v.get("overrides") or ():
            cn = o["contextName"]
            s = ctx.get(cn) if cn in _FIELDS else ctx["properties"].get(cn)
            if s is not None and s in o["values"]:
                return _variant_out(v)
    total = sum(int(v["weight"]) for v in variants)
    if total <= 0:
        return None
    st = stickiness if stickiness is not None else variants[0].get("stickiness")
    if st is None:
        st = "default"
    if st == "default":
        seed = ctx.get("userId")
        if seed is None:
            seed = ctx.get("sessionId")
    elif st in _STICKY_FIELDS:
        seed = ctx.get(st)
    else:
        seed = ctx["properties"].get(st)
    target = random.randint(1, total) if seed is None else _hash(group, seed, total, VARIANT_SEED)
    acc = 0
    for v in variants:
        acc += int(v["weight"])
        if acc >= target:
            return _variant_out(v)
    return None


def _variant_out(v: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"name": v["name"]}
    if v.get("payload") is not None:
        out["payload"] = v["payload"]
    out["enabled"] = True
    return out


# ---- flags ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    enabled: bool
    strategy: int | None
    variant: dict[str, Any] | None
    dependencies: bool


class CompiledFlag:
    """A flag's strategies, variants and parents, ready to evaluate (`feature_flag_outcome`)."""

    __slots__ = ("key", "enabled", "strategies", "rules", "variants", "dependencies", "no_variants", "matcher")

    def __init__(
        self,
        key: str,
        enabled: bool,
        strategies: Sequence[Mapping[str, Any]],
        variants: Sequence[Mapping[str, Any]],
        dependencies: Sequence[Mapping[str, Any]],
        segments: Mapping[int, list[Any]],
    ):
        self.key = key
        self.enabled = enabled
        self.strategies = list(strategies)
        self.variants = list(variants)
        self.dependencies = list(dependencies)
        try:
            self.rules = [compile_strategy(key, s, segments) for s in self.strategies]
            self.matcher = compile_matcher(key, self.strategies, segments)
        except (KeyError, ValueError, TypeError, AssertionError, SyntaxError):
            log.warning("flag %r: a strategy cannot be evaluated here; the flag is off", key, exc_info=True)
            self.rules = [lambda ctx: False]
            self.strategies = [{"name": "default"}]
            self.matcher = Matcher(_never, True, "")
        self.no_variants = not self.variants and not any(s.get("variants") for s in self.strategies)

    def matches(self, ctx: Context) -> int | None:
        """The first matching strategy through the closures (the reference of `first_match`)."""
        for i, rule in enumerate(self.rules):
            if rule(ctx):
                return i
        return None

    def outcome(
        self,
        ctx: Context,
        lookup: Callable[[str], CompiledFlag | None],
        depth: int = 0,
        want_variant: bool = True,
    ) -> Outcome:
        deps_ok = True
        if depth == 0:
            ctx[TOGGLE] = self.key
        if self.enabled and self.dependencies:
            if depth > 0:
                deps_ok = False
            else:
                for d in self.dependencies:
                    parent = lookup(d["feature"])
                    if parent is None or parent.dependencies:
                        deps_ok = False
                        break
                    po = parent.outcome(ctx, lookup, depth + 1)
                    wanted = d.get("variants") or []
                    if wanted and po.variant is not None and po.variant["name"] not in wanted:
                        deps_ok = False
                        break
                    if po.enabled != d.get("enabled", True):
                        deps_ok = False
                        break
        match = self.matcher.first_match(ctx, ctx[TOGGLE], ctx["environment"])
        enabled = self.enabled and deps_ok and (not self.rules or match is not None)
        variant = None
        if (enabled or depth > 0) and want_variant and not self.no_variants:
            s = self.strategies[match] if match is not None else None
            if s is not None and s.get("variants"):
                params = s.get("parameters") or {}
                variant = pick_variant(
                    s["variants"], params.get("groupId", self.key), params.get("stickiness", "default"), ctx
                )
            else:
                variant = pick_variant(self.variants, self.key, None, ctx)
        return Outcome(enabled, match, variant, deps_ok)


def _never(ctx: Context, toggle: str, env: str) -> int | None:
    return None


def load_json(text: str | None) -> Any:
    return json.loads(text) if text else []
