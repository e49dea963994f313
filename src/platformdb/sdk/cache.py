"""The cache: JSON values under keys with a TTL and tags, used by the service.

`get_or_compute` adds what a cache needs under load: when many callers miss the same key at
once, one computes and the others wait for its result (a transaction-scoped PostgreSQL
advisory lock on the key, so it works through a transaction-mode pooler too), instead of
all of them hitting the slow source together (a cache stampede).

Every function but `cache_stats` takes a connection or a cursor: a service reading the cache
in a loop keeps one cursor (per thread) and passes it, saving psycopg's per-call cursor setup.

Lookups are counted per backend in memory and flushed every 1000 lookups or 10 s;
`flush_stats` writes the counts now (call it before handing a pooled connection back if the
hit rate must be current). `cache_stats` reads the hit rate per cache type.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

import psycopg
from psycopg.rows import class_row

from platformdb.errors import wrap_errors

T = TypeVar("T")
# a connection, or a cursor of it kept for many calls (one per thread): psycopg sets up every
# new cursor, which costs about as much as the database's own work for a cache read
Executor = psycopg.Connection[Any] | psycopg.Cursor[Any]

MAX_KEY_BYTES = 512
MAX_VALUE_BYTES = 1_048_576
MAX_TTL_SECONDS = 2_592_000
# advisory-lock namespace of get_or_compute (first key of pg_try_advisory_xact_lock(int, int))
LOCK_NAMESPACE = 0x63616368  # "cach"

SET_CACHE = """
select public.set_cache(p_key => %(key)s, p_value => %(value)s::jsonb,
    p_ttl_seconds => %(ttl)s, p_cache_type => %(cache_type)s, p_tags => %(tags)s::text[])
"""
# `v is null` tells a miss (SQL null) from a cached JSON null
GET_CACHE = """
select v, v is null
  from (select public.get_cache(p_key => %(key)s, p_cache_type => %(cache_type)s) as v) as s
"""
# a peek for get_or_compute's waiters: reads without counting a second miss
PEEK_CACHE = """
select e.value from public.cache_entries e
 where e.key = %(key)s and e.expires_at > clock_timestamp()
"""
DELETE_CACHE = "select public.delete_cache(p_key => %s)"
INVALIDATE_BY_TAG = "select public.invalidate_cache_by_tag(p_tag => %s)"
CLEANUP_EXPIRED = "select public.cleanup_expired_cache()"
FLUSH_STATS = "select public.flush_cache_stats()"
CACHE_STATS = """
select cache_type, entries, expired_entries, live_entries, value_bytes, last_set_at,
       hits_24h, misses_24h, hit_rate_24h
  from public.cache_stats order by cache_type
"""
# transaction-scoped: released by the commit that publishes the value (and safe on a pooler)
TRY_LOCK = "select pg_catalog.pg_try_advisory_xact_lock(%s, pg_catalog.hashtext(%s))"


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


@dataclass(frozen=True)
class CacheTypeStats:
    cache_type: str
    entries: int
    expired_entries: int
    live_entries: int
    value_bytes: int
    last_set_at: datetime | None
    hits_24h: Decimal
    misses_24h: Decimal
    hit_rate_24h: Decimal | None


def set_cache(
    conn: Executor,
    key: str,
    value: Any,
    ttl_seconds: int = 3600,
    cache_type: str | None = None,
    tags: Iterable[str] = (),
) -> datetime:
    """Store `value` (anything JSON can hold, None included) for `ttl_seconds`; returns expiry."""
    params = {
        "key": key,
        "value": json.dumps(value),
        "ttl": ttl_seconds,
        "cache_type": cache_type,
        "tags": list(tags),
    }
    with wrap_errors():
        row = conn.execute(SET_CACHE, params).fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


def get_cache(conn: Executor, key: str, default: Any = None, cache_type: str | None = None) -> Any:
    """The live value under `key`, or `default` on a miss (pass MISSING to tell them apart).

    `cache_type` attributes a miss of an absent key to that type in the hit-rate statistics.
    """
    with wrap_errors():
        row = conn.execute(GET_CACHE, {"key": key, "cache_type": cache_type}).fetchone()
    assert row is not None
    value, missed = row
    return default if missed else value


def delete_cache(conn: Executor, key: str) -> bool:
    """Remove one key; True when it existed."""
    with wrap_errors():
        row = conn.execute(DELETE_CACHE, (key,)).fetchone()
    return bool(row and row[0])


def invalidate_by_tag(conn: Executor, tag: str) -> int:
    """Remove every entry tagged `tag`; returns how many."""
    with wrap_errors():
        row = conn.execute(INVALIDATE_BY_TAG, (tag,)).fetchone()
    return int(row[0]) if row else 0


def cleanup_expired(conn: Executor) -> int:
    """Delete expired entries (and lookup counts older than 30 days); returns entries removed."""
    with wrap_errors():
        row = conn.execute(CLEANUP_EXPIRED).fetchone()
    return int(row[0]) if row else 0


def flush_stats(conn: Executor) -> int:
    """Write this connection's pending hit/miss counts now; returns rows touched."""
    with wrap_errors():
        row = conn.execute(FLUSH_STATS).fetchone()
    return int(row[0]) if row else 0


def cache_stats(conn: psycopg.Connection[Any]) -> list[CacheTypeStats]:
    """Entries and 24-hour hit rate per cache type (the cache_stats view)."""
    with wrap_errors(), conn.cursor(row_factory=class_row(CacheTypeStats)) as cur:
        return cur.execute(CACHE_STATS).fetchall()


def _peek(conn: Executor, key: str) -> Any:
    with wrap_errors():
        row = conn.execute(PEEK_CACHE, {"key": key}).fetchone()
    return MISSING if row is None else row[0]


def get_or_compute(
    conn: Executor,
    key: str,
    compute: Callable[[], T],
    ttl_seconds: int = 3600,
    cache_type: str | None = None,
    tags: Sequence[str] = (),
    wait_seconds: float = 10.0,
    poll_seconds: float = 0.02,
) -> T:
    """The cached value of `key`, computing and storing it on a miss — once per key at a time.

    On a miss the caller opens a transaction and takes a transaction-scoped advisory lock
    on the key. The winner computes and stores the value in that transaction; its commit
    publishes the value and releases the lock at once. The others poll the cache until the
    value appears (at most `wait_seconds`, after which they compute it themselves rather
    than fail). Use an autocommit connection: inside an outer transaction the value and the
    lock last until that transaction ends. No session state is used, so this works through
    a transaction-mode pooler.
    """
    value = get_cache(conn, key, MISSING, cache_type)
    if value is not MISSING:
        return value  # type: ignore[no-any-return]
    deadline = time.monotonic() + wait_seconds
    while True:
        won, value = _compute_if_first(conn, key, compute, ttl_seconds, cache_type, tags)
        if won:
            return value  # type: ignore[no-any-return]
        time.sleep(poll_seconds)
        value = _peek(conn, key)
        if value is not MISSING:
            return value  # type: ignore[no-any-return]
        if time.monotonic() >= deadline:
            computed = compute()  # the lock holder is stuck: serve rather than fail
            set_cache(conn, key, computed, ttl_seconds, cache_type, tags)
            return computed


def _compute_if_first(
    ex: Executor,
    key: str,
    compute: Callable[[], T],
    ttl_seconds: int,
    cache_type: str | None,
    tags: Sequence[str],
) -> tuple[bool, T | Any]:
    """(True, value) when this caller got the key's lock (and computed or found the value),
    (False, None) when another caller holds it."""
    conn = ex if hasattr(ex, "transaction") else ex.connection  # a connection (or its async facade), or a cursor
    with conn.transaction():
        with wrap_errors():
            row = ex.execute(TRY_LOCK, (LOCK_NAMESPACE, key)).fetchone()
        if not (row and row[0]):
            return False, None
        value = _peek(ex, key)  # filled while we were waiting for the lock?
        if value is not MISSING:
            return True, value
        computed = compute()
        set_cache(ex, key, computed, ttl_seconds, cache_type, tags)
        return True, computed
