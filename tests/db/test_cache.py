"""§3.6 the cache: TTL, tags, size limits, hit-rate counting without writes, stampede lock."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from platformdb import db, errors
from platformdb.sdk import cache
from tests.helpers import count, raises_sqlstate


def stats_by_type(conn: psycopg.Connection[Any]) -> dict[str, cache.CacheTypeStats]:
    with db.as_service(conn):
        return {s.cache_type: s for s in cache.cache_stats(conn)}


def service(connect: Callable[..., psycopg.Connection[Any]], stats: str = "exact") -> psycopg.Connection[Any]:
    """An autocommit connection acting as the service for its whole session, counting every
    lookup (the default samples 1 in 16; tests of exact numbers want every one)."""
    c = connect()
    c.execute("set role service_role")
    c.execute("select set_config('platformdb.cache_stats', %s, false)", (stats,))
    return c


def count_every_lookup(conn: psycopg.Connection[Any]) -> None:
    conn.execute("set platformdb.cache_stats = exact")


# ---- storing and reading ------------------------------------------------------------------


def test_set_then_get_returns_the_value_and_set_replaces_it(conn: psycopg.Connection[Any]) -> None:
    with db.as_service(conn):
        expires = cache.set_cache(conn, "user:42", {"name": "Aline", "trips": 3}, 600, "profile", ["user:42"])
        assert cache.get_cache(conn, "user:42") == {"name": "Aline", "trips": 3}
        cache.set_cache(conn, "user:42", [1, 2], 60, "other", ["t2"])
        assert cache.get_cache(conn, "user:42") == [1, 2]
    row = conn.execute(
        "select cache_type, tags, expires_at > now() + interval '50 seconds',"
        " expires_at < now() + interval '70 seconds' from cache_entries where key = 'user:42'"
    ).fetchone()
    assert row == ("other", ["t2"], True, True)
    assert count(conn, "cache_entries") == 1
    assert expires is not None


def test_a_cached_json_null_is_not_a_miss(conn: psycopg.Connection[Any]) -> None:
    with db.as_service(conn):
        cache.set_cache(conn, "nothing-here", None, 60)
        assert cache.get_cache(conn, "nothing-here", cache.MISSING) is None
        assert cache.get_cache(conn, "never-set", cache.MISSING) is cache.MISSING
        assert cache.get_cache(conn, "never-set", "fallback") == "fallback"


def test_an_entry_is_gone_after_its_ttl(conn: psycopg.Connection[Any]) -> None:
    with db.as_service(conn):
        conn.execute("select set_cache(p_key => 'otp:250788123456', p_value => '\"1234\"', p_ttl_seconds => 1)")
        assert conn.execute("select get_cache(p_key => 'otp:250788123456')").fetchone() == ("1234",)
    time.sleep(1.2)
    with db.as_service(conn):
        assert conn.execute("select get_cache(p_key => 'otp:250788123456')").fetchone() == (None,)


def test_expiry_is_checked_against_the_clock_even_inside_one_transaction(
    conn: psycopg.Connection[Any],
) -> None:
    with db.as_service(conn):
        cache.set_cache(conn, "k", 1, 1)
        conn.execute("select pg_sleep(1.1)")
        assert cache.get_cache(conn, "k", cache.MISSING) is cache.MISSING


def test_cleanup_removes_expired_entries_only(conn: psycopg.Connection[Any]) -> None:
    with db.as_service(conn):
        for i in range(5):
            cache.set_cache(conn, f"old:{i}", i, 60)
        cache.set_cache(conn, "fresh", 1, 600)
    conn.execute(
        "update cache_entries set created_at = now() - interval '2 minutes',"
        " expires_at = now() - interval '1 minute' where key like 'old:%'"
    )
    with db.as_service(conn):
        assert cache.get_cache(conn, "old:1", cache.MISSING) is cache.MISSING
        assert cache.cleanup_expired(conn) == 5
        assert cache.cleanup_expired(conn) == 0
    assert conn.execute("select key from cache_entries").fetchall() == [("fresh",)]


def test_invalidate_by_tag_removes_every_tagged_entry_and_nothing_else(
    conn: psycopg.Connection[Any],
) -> None:
    with db.as_service(conn):
        cache.set_cache(conn, "menu:1", 1, tags=["restaurant:7", "menu"])
        cache.set_cache(conn, "menu:2", 2, tags=["restaurant:7"])
        cache.set_cache(conn, "menu:3", 3, tags=["restaurant:8", "menu"])
        cache.set_cache(conn, "untagged", 4)
        assert cache.invalidate_by_tag(conn, "restaurant:7") == 2
        assert cache.invalidate_by_tag(conn, "restaurant:7") == 0
        assert cache.invalidate_by_tag(conn, "menu") == 1
        assert cache.delete_cache(conn, "untagged") is True
        assert cache.delete_cache(conn, "untagged") is False
    assert count(conn, "cache_entries") == 0


@pytest.mark.parametrize(
    ("args", "state", "message"),
    [
        ("p_key => 'k', p_value => '1', p_ttl_seconds => 0", "22023", "p_ttl_seconds must be positive"),
        ("p_key => 'k', p_value => '1', p_ttl_seconds => -5", "22023", "p_ttl_seconds must be positive"),
        ("p_key => 'k', p_value => '1', p_ttl_seconds => null", "22023", "p_ttl_seconds must be positive"),
        ("p_key => 'k', p_value => '1', p_ttl_seconds => 2592001", "22023", "at most 2592000"),
        ("p_key => '', p_value => '1'", "22004", "p_key must not be empty"),
        ("p_key => null, p_value => '1'", "22004", "p_key must not be empty"),
        ("p_key => repeat('é', 257), p_value => '1'", "22023", r"p_key is too long: 514 bytes \(at most 512\)"),
        ("p_key => 'k', p_value => null", "22004", "p_value must not be null"),
        ("p_key => 'k', p_value => jsonb_build_array(repeat('x', 1048576))", "22023", "p_value is too large"),
        ("p_key => 'k', p_value => '1', p_cache_type => 'User Profile'", "22023", "p_cache_type must be"),
        (
            "p_key => 'k', p_value => '1', p_tags => array_fill('t'::text, array[33])",
            "22023",
            "p_tags: at most 32 tags, got 33",
        ),
        ("p_key => 'k', p_value => '1', p_tags => array['ok', '']", "22023", "every tag must be"),
        ("p_key => 'k', p_value => '1', p_tags => array[repeat('t', 129)]", "22023", "every tag must be"),
    ],
)
def test_set_cache_refuses_bad_input_and_writes_nothing(
    conn: psycopg.Connection[Any], args: str, state: str, message: str
) -> None:
    with raises_sqlstate(state, message):
        with db.as_service(conn):
            conn.execute(f"select set_cache({args})")
    assert count(conn, "cache_entries") == 0


def test_the_largest_key_and_value_are_accepted(conn: psycopg.Connection[Any]) -> None:
    with db.as_service(conn):
        conn.execute("select set_cache(p_key => repeat('k', 512), p_value => jsonb_build_array(repeat('x', 1000000)))")
    assert count(conn, "cache_entries") == 1


@pytest.mark.parametrize(
    ("stmt", "state", "message"),
    [
        ("select get_cache(p_key => null)", "22004", "p_key must not be null"),
        ("select get_cache(p_key => 'k', p_cache_type => 'Bad')", "22023", "p_cache_type must be"),
        ("select invalidate_cache_by_tag(p_tag => '')", "22004", "p_tag must not be empty"),
        ("select delete_cache(p_key => null)", "22004", "p_key must not be null"),
    ],
)
def test_other_cache_functions_refuse_bad_input(
    conn: psycopg.Connection[Any], stmt: str, state: str, message: str
) -> None:
    with raises_sqlstate(state, message):
        with db.as_service(conn):
            conn.execute(stmt)


def test_the_sdk_raises_invalid_input(conn: psycopg.Connection[Any]) -> None:
    with pytest.raises(errors.InvalidInput, match="p_ttl_seconds must be positive"):
        with db.as_service(conn):
            cache.set_cache(conn, "k", 1, ttl_seconds=0)


@pytest.mark.parametrize("role", ["anon", "authenticated"])
def test_only_the_service_uses_the_cache(conn: psycopg.Connection[Any], role: str) -> None:
    with db.as_service(conn):
        cache.set_cache(conn, "secret", {"token": "x"}, 60)
    for stmt in (
        "select get_cache(p_key => 'secret')",
        "select set_cache(p_key => 'mine', p_value => '1')",
        "select delete_cache(p_key => 'secret')",
        "select invalidate_cache_by_tag(p_tag => 'x')",
        "select cleanup_expired_cache()",
        "select flush_cache_stats()",
        "select * from cache_stats",
        "select * from cache_entries",
    ):
        with raises_sqlstate("42501", "permission denied"):
            with db.acting_as(conn, role, uuid.uuid4() if role == "authenticated" else None):
                conn.execute(stmt)
    assert conn.execute("select key from cache_entries").fetchall() == [("secret",)]


def test_cache_entries_is_unlogged_and_says_why(conn: psycopg.Connection[Any]) -> None:
    row = conn.execute(
        "select relpersistence, obj_description(oid, 'pg_class') from pg_class"
        " where oid = 'public.cache_entries'::regclass"
    ).fetchone()
    assert row is not None
    assert row[0] == "u"
    assert "UNLOGGED on purpose" in row[1] and "crash" in row[1]


# ---- hit and miss counting ------------------------------------------------------------


def test_hit_rate_by_cache_type(conn: psycopg.Connection[Any]) -> None:
    count_every_lookup(conn)
    with db.as_service(conn):
        cache.set_cache(conn, "profile:1", {"n": 1}, 600, "profile")
        cache.set_cache(conn, "profile:2", {"n": 2}, 600, "profile")
        cache.set_cache(conn, "fare:1", 1500, 600, "fare")
        for _ in range(15):
            cache.get_cache(conn, "profile:1")
            cache.get_cache(conn, "profile:2")
        for i in range(10):
            cache.get_cache(conn, f"profile:absent:{i}", cache_type="profile")
        cache.get_cache(conn, "fare:1")
        for i in range(3):
            cache.get_cache(conn, f"nobody-knows:{i}")
        cache.flush_stats(conn)
    stats = stats_by_type(conn)
    assert (stats["profile"].hits_24h, stats["profile"].misses_24h) == (30, 10)
    assert stats["profile"].hit_rate_24h == Decimal("0.7500")
    assert stats["profile"].entries == 2 and stats["profile"].live_entries == 2
    assert (stats["fare"].hits_24h, stats["fare"].misses_24h, stats["fare"].hit_rate_24h) == (1, 0, 1)
    assert (stats["default"].hits_24h, stats["default"].misses_24h) == (0, 3)
    assert stats["default"].entries == 0 and stats["default"].hit_rate_24h == 0


def test_an_expired_entry_counts_as_a_miss_of_its_type(conn: psycopg.Connection[Any]) -> None:
    count_every_lookup(conn)
    with db.as_service(conn):
        cache.set_cache(conn, "session:1", 1, 60, "session")
    conn.execute(
        "update cache_entries set created_at = now() - interval '2 minutes', expires_at = now() - interval '1 minute'"
    )
    with db.as_service(conn):
        assert cache.get_cache(conn, "session:1") is None
        cache.flush_stats(conn)
    stats = stats_by_type(conn)["session"]
    assert (stats.hits_24h, stats.misses_24h, stats.expired_entries, stats.live_entries) == (0, 1, 1, 0)


def test_reads_do_not_write(conn: psycopg.Connection[Any]) -> None:
    """Counting a lookup touches no table: the transaction never even gets an xid."""
    count_every_lookup(conn)
    with db.as_service(conn):
        cache.set_cache(conn, "k", 1, 600, "profile")
    with db.as_service(conn):
        for i in range(200):
            cache.get_cache(conn, "k" if i % 2 else f"absent:{i}")
        assert conn.execute("select pg_current_xact_id_if_assigned()").fetchone() == (None,)
    assert count(conn, "cache_counters") == 0
    with db.as_service(conn):
        assert cache.flush_stats(conn) == 2  # profile hits, default misses
    assert conn.execute("select cache_type, hits, misses from cache_counters order by cache_type").fetchall() == [
        ("default", 0, 100),
        ("profile", 100, 0),
    ]


def test_by_default_1_lookup_in_16_is_counted_as_16(
    connect: Callable[..., psycopg.Connection[Any]],
) -> None:
    c = service(connect, stats="")
    assert c.execute("select current_setting('platformdb.cache_stats')").fetchone() == ("",)
    cache.set_cache(c, "hot", 1, 600, "hot")
    c.execute("select count(get_cache(p_key => 'hot')) from generate_series(1, 16000)")
    c.execute("select count(get_cache(p_key => 'cold')) from generate_series(1, 4000)")
    cache.flush_stats(c)
    (hits, misses) = c.execute(
        "select sum(hits), sum(misses) from cache_counters where namespace = 'cache'"
    ).fetchone() or (0, 0)
    assert hits % 16 == 0 and misses % 16 == 0
    # expected 16000 and 4000; the bounds are more than 6 standard deviations wide
    assert 12800 <= hits <= 19200, hits
    assert 2400 <= misses <= 5600, misses


def test_counts_are_flushed_by_themselves_every_1000_lookups(
    connect: Callable[..., psycopg.Connection[Any]],
) -> None:
    c = service(connect)
    cache.set_cache(c, "hot", 1, 600, "hot")
    c.execute("select count(get_cache(p_key => 'hot')) from generate_series(1, 999)")
    assert count(c, "cache_counters") == 0
    c.execute("select get_cache(p_key => 'hot')")
    assert c.execute("select hits, misses from cache_counters").fetchall() == [(1000, 0)]


def test_counts_are_flushed_by_the_first_lookup_10_s_after_the_last_flush(
    connect: Callable[..., psycopg.Connection[Any]],
) -> None:
    c = service(connect)
    for _ in range(3):
        c.execute("select get_cache(p_key => 'absent', p_cache_type => 'quiet')")
    assert count(c, "cache_counters") == 0
    # the session's flush clock, moved 11 s into the past instead of sleeping
    c.execute(
        "select set_config('platformdb_stats.flushed_at', (extract(epoch from clock_timestamp()) - 11)::text, false)"
    )
    c.execute("select get_cache(p_key => 'absent', p_cache_type => 'quiet')")
    assert c.execute("select cache_type, misses from cache_counters").fetchall() == [("quiet", 4)]


def test_a_rolled_back_transaction_takes_its_counts_back(conn: psycopg.Connection[Any]) -> None:
    count_every_lookup(conn)
    with pytest.raises(ZeroDivisionError):
        with db.as_service(conn):
            for _ in range(5):
                cache.get_cache(conn, "absent")
            raise ZeroDivisionError
    with db.as_service(conn):
        cache.get_cache(conn, "absent")
        assert cache.flush_stats(conn) == 1
    assert conn.execute("select misses from cache_counters").fetchall() == [(1,)]


def test_counting_can_be_turned_off_for_a_session(
    connect: Callable[..., psycopg.Connection[Any]],
) -> None:
    c = service(connect)
    c.execute("set platformdb.cache_stats = off")
    for _ in range(5):
        cache.get_cache(c, "absent")
    assert cache.flush_stats(c) == 0
    c.execute("set platformdb.cache_stats = exact")
    cache.get_cache(c, "absent")
    assert cache.flush_stats(c) == 1


def test_flushes_of_two_sessions_never_wait_for_each_other(
    connect: Callable[..., psycopg.Connection[Any]],
) -> None:
    a, b = service(connect), service(connect)
    for c in (a, b):
        cache.get_cache(c, "absent", cache_type="shared")
    with a.transaction():
        assert cache.flush_stats(a) == 1  # a's counter row stays locked until a commits
        b.execute("set lock_timeout = '2s'")
        assert cache.flush_stats(b) == 1  # would fail with 55P03 if it waited for a
    assert a.execute("select count(*), sum(misses) from cache_counters where cache_type = 'shared'").fetchone() == (
        2,
        2,
    )


def test_a_failed_flush_never_fails_the_read(connect: Callable[..., psycopg.Connection[Any]]) -> None:
    owner = connect()
    c = service(connect)
    cache.set_cache(c, "k", 1, 600)
    owner.execute("revoke insert on public.cache_counters from service_role")
    try:
        c.execute("select count(get_cache(p_key => 'k')) from generate_series(1, 999)")
        warnings: list[str] = []
        c.add_notice_handler(lambda d: warnings.append(d.message_primary or ""))
        assert cache.get_cache(c, "k") == 1  # the 1000th lookup tries to flush, and cannot
        assert any("cache statistics not flushed" in w for w in warnings)
    finally:
        owner.execute("grant insert on public.cache_counters to service_role")
    assert cache.flush_stats(c) == 1
    assert c.execute("select hits from cache_counters").fetchall() == [(1000,)]


def test_counts_go_into_utc_hours_whatever_the_session_time_zone(
    connect: Callable[..., psycopg.Connection[Any]],
) -> None:
    c = service(connect)
    c.execute("set timezone = 'Asia/Kolkata'")  # UTC+05:30
    cache.get_cache(c, "absent")
    assert cache.flush_stats(c) == 1
    row = c.execute(
        "select extract(minute from bucket at time zone 'UTC'), extract(second from bucket) from cache_counters"
    ).fetchone()
    assert row == (0, 0)


def test_cleanup_trims_counts_older_than_30_days(conn: psycopg.Connection[Any]) -> None:
    conn.execute(
        "insert into cache_counters (bucket, namespace, cache_type, backend_pid, hits) values"
        " (date_trunc('hour', (now() - interval '31 days') at time zone 'UTC') at time zone 'UTC',"
        "  'cache', 'old', 1, 5),"
        " (date_trunc('hour', (now() - interval '29 days') at time zone 'UTC') at time zone 'UTC',"
        "  'cache', 'kept', 1, 5)"
    )
    with db.as_service(conn):
        cache.cleanup_expired(conn)
    assert conn.execute("select cache_type from cache_counters").fetchall() == [("kept",)]


# ---- get_or_compute --------------------------------------------------------------------


def test_get_or_compute_computes_once_on_a_miss_and_then_serves_the_cache(
    connect: Callable[..., psycopg.Connection[Any]],
) -> None:
    c = service(connect)
    calls: list[int] = []

    def compute() -> dict[str, int]:
        calls.append(1)
        return {"fare": 1500}

    assert cache.get_or_compute(c, "fare:a:b", compute, 60, "fare") == {"fare": 1500}
    assert cache.get_or_compute(c, "fare:a:b", compute, 60, "fare") == {"fare": 1500}
    assert len(calls) == 1


def test_get_or_compute_lets_one_caller_compute_while_the_others_wait(
    connect: Callable[..., psycopg.Connection[Any]],
) -> None:
    n = 6
    conns = [service(connect) for _ in range(n)]
    calls: list[int] = []
    lock = threading.Lock()
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n

    def compute() -> list[str]:
        with lock:
            calls.append(1)
        time.sleep(0.5)  # a slow source: everyone else arrives meanwhile
        return ["route", "from", "provider"]

    def worker(i: int) -> None:
        barrier.wait()
        results[i] = cache.get_or_compute(conns[i], "route:x", compute, 60, "route")

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1
    assert results == [["route", "from", "provider"]] * n


def test_get_or_compute_releases_the_lock_when_compute_fails(
    connect: Callable[..., psycopg.Connection[Any]],
) -> None:
    c, other = service(connect), service(connect)

    def broken() -> int:
        raise RuntimeError("provider down")

    with pytest.raises(RuntimeError, match="provider down"):
        cache.get_or_compute(c, "k", broken)
    assert cache.get_or_compute(other, "k", lambda: 7, wait_seconds=0.5) == 7
    assert other.execute(
        "select count(*) from pg_locks where locktype = 'advisory' and granted"
        " and database = (select oid from pg_database where datname = current_database())"
    ).fetchone() == (0,)


def test_the_sdk_works_through_a_kept_cursor_too(
    connect: Callable[..., psycopg.Connection[Any]],
) -> None:
    c = service(connect)
    cur = c.cursor()
    cache.set_cache(cur, "k", {"v": 1}, 60, "profile", ["t"])
    assert cache.get_cache(cur, "k") == {"v": 1}
    assert cache.get_cache(cur, "absent", cache.MISSING) is cache.MISSING
    assert cache.get_or_compute(cur, "computed", lambda: [1, 2]) == [1, 2]
    assert cache.flush_stats(cur) == 2
    assert cache.invalidate_by_tag(cur, "t") == 1
    assert cache.delete_cache(cur, "computed") is True


@pytest.mark.parametrize(
    ("stmt", "state", "message"),
    [
        ("select record_cache_lookup('cache', 'Bad Type', true)", "22023", "p_cache_type must be"),
        ("select record_cache_lookup('(invalid)', 'x', true)", "22023", "p_namespace must be cache or route"),
        ("select record_cache_lookup('cache', 'x', null)", "22004", "p_hit must not be null"),
        ("select cache_stats_housekeeping('(invalid)', 1, 1)", "22023", "p_var must name a lookup count"),
        ("select cache_stats_housekeeping('platformdb_stats.cache_h_x', 1, 0)", "22023", "p_step must be"),
    ],
)
def test_the_counting_functions_refuse_names_that_are_not_counts(
    connect: Callable[..., psycopg.Connection[Any]], stmt: str, state: str, message: str
) -> None:
    c = service(connect)
    with raises_sqlstate(state, message):
        c.execute(stmt)
    assert c.execute("select current_setting('platformdb_stats.keys', true)").fetchone() in [(None,), ("",)]


def test_a_flush_skips_setting_names_it_did_not_write(
    connect: Callable[..., psycopg.Connection[Any]],
) -> None:
    c = service(connect)
    cache.get_cache(c, "absent", cache_type="real")
    # anyone may change their own session's settings: a foreign name must not break flushes
    c.execute(
        "select set_config('platformdb_stats.keys',"
        " current_setting('platformdb_stats.keys') || ',(invalid),search_path', false)"
    )
    assert cache.flush_stats(c) == 1
    assert c.execute("select cache_type, misses from cache_counters").fetchall() == [("real", 1)]
    assert cache.flush_stats(c) == 0
