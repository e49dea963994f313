"""Feature flags against what a Python service would use instead, side by side in one run
(issue 18), same flags and contexts:

- `flagclient`: platformdb's FlagClient.is_enabled (counting on);
- `unleashclient`: Unleash's Python SDK (`UnleashClient`), its cache bootstrapped with the
  same flags, registration and metrics off;
- `yggdrasil`: Unleash's engine (`yggdrasil-engine`) called directly.

Two flags: `one` (flexibleRollout 50%) and `three` (3 strategies x 3 constraints: IN,
SEMVER_GT, STR_STARTS_WITH). Plus SQL `is_feature_enabled` round trips per second on both,
side by side on a database at 20260401230000 (`sql_before_*`: before the fast path of
20260401250000) and one at the newest migration (`sql_*`).
Rounds are interleaved (BENCH_ROUNDS, default 3) and the best of each is kept.
BENCH_CPROFILE=1 prints where FlagClient.is_enabled spends its time on `three` (cProfile).
"""

from __future__ import annotations

import cProfile
import json
import os
import pstats
import tempfile
import time
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from UnleashClient import UnleashClient
from UnleashClient.cache import FileCache
from yggdrasil_engine.engine import UnleashEngine

from _common import database, rate, write_result
from platformdb import migrate
from platformdb.sdk import flag_io, flags

BEFORE = "20260401230000"  # is_feature_enabled without the fast path of 20260401250000

ONE = {
    "name": "one",
    "enabled": True,
    "strategies": [
        {"name": "flexibleRollout", "parameters": {"rollout": "50", "stickiness": "default", "groupId": "one"}}
    ],
}
THREE = {
    "name": "three",
    "enabled": True,
    "strategies": [
        {
            "name": "default",
            "constraints": [
                {"contextName": "country", "operator": "IN", "values": ["RW", "UG", "KE"]},
                {"contextName": "version", "operator": "SEMVER_GT", "value": f"1.{i}.0"},
                {"contextName": "email", "operator": "STR_STARTS_WITH", "values": [f"user{i}", "admin"]},
            ],
        }
        for i in range(3)
    ],
}
STATE = {"version": 2, "features": [ONE, THREE], "segments": []}
N = int(os.environ.get("BENCH_FLAG_CONTEXTS", "2000"))
CONTEXTS = [
    {
        "userId": f"user-{i}",
        "properties": {
            "country": ["RW", "UG", "TZ"][i % 3],
            "version": f"1.{i % 4}.{i % 7}",
            "email": f"user{i % 5}@x",
        },
    }
    for i in range(N)
]


def timed(fn: Any, key: str, loops: int) -> float:
    t = time.perf_counter()
    for _ in range(loops):
        for ctx in CONTEXTS:
            fn(key, ctx)
    return rate(loops * len(CONTEXTS), time.perf_counter() - t)


def _before_database(url: str) -> str:
    """A database beside the bench's, migrated up to BEFORE, with the same flags."""
    name = conninfo_to_dict(url).get("dbname", "bench") + "_before"
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(sql.SQL("drop database if exists {}").format(sql.Identifier(name)))
        admin.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    before = make_conninfo(url, dbname=name)
    migrate.up(before, to=BEFORE)
    with psycopg.connect(before, autocommit=True) as conn:
        assert not flag_io.import_state(conn, STATE, environment="all").refused
    return before


def main() -> None:
    rounds = int(os.environ.get("BENCH_ROUNDS", "3"))
    with database() as url, tempfile.TemporaryDirectory() as cache_dir:
        with psycopg.connect(url, autocommit=True) as conn:
            assert not flag_io.import_state(conn, STATE, environment="all").refused
        client = flags.FlagClient(url, record=True)
        client.refresh()
        engine = UnleashEngine()
        engine.take_state(json.dumps(STATE))
        cache = FileCache("bench", directory=cache_dir)
        cache.bootstrap_from_dict(STATE)
        sdk = UnleashClient(
            url="http://127.0.0.1:9/api",
            app_name="bench",
            disable_metrics=True,
            disable_registration=True,
            cache=cache,
            refresh_interval=3600,
        )
        sdk.initialize_client(fetch_toggles=False)
        # all three agree on every context before anything is timed
        for key in ("one", "three"):
            for ctx in CONTEXTS:
                answer = client.is_enabled(key, None, "production", ctx)
                assert answer == bool(engine.is_enabled(key, ctx).is_enabled) == sdk.is_enabled(key, ctx), (key, ctx)

        def ours(key: str, ctx: dict[str, Any]) -> bool:
            return client.is_enabled(key, None, None, ctx)

        def ygg(key: str, ctx: dict[str, Any]) -> bool:
            return bool(engine.is_enabled(key, ctx).is_enabled)

        best: dict[str, float] = {}
        for _ in range(rounds):
            for key in ("one", "three"):
                for name, fn, loops in (
                    ("flagclient", ours, 5),
                    ("unleashclient", sdk.is_enabled, 1),
                    ("yggdrasil", ygg, 1),
                ):
                    r = timed(fn, key, loops)
                    best[f"{name}_{key}_per_s"] = max(best.get(f"{name}_{key}_per_s", 0.0), r)
        if os.environ.get("BENCH_CPROFILE") == "1":
            profile = cProfile.Profile()
            profile.runcall(timed, ours, "three", 2)
            pstats.Stats(profile).sort_stats("tottime").print_stats(10)
        before_url = _before_database(url)
        with psycopg.connect(url, autocommit=True) as conn, psycopg.connect(before_url, autocommit=True) as old:
            for _ in range(rounds):
                for key in ("one", "three"):
                    for name, c in (("sql", conn), ("sql_before", old)):
                        t = time.perf_counter()
                        for ctx in CONTEXTS[:1000]:
                            flags.is_feature_enabled(c, key, None, "production", ctx)
                        r = rate(1000, time.perf_counter() - t)
                        best[f"{name}_{key}_per_s"] = max(best.get(f"{name}_{key}_per_s", 0.0), r)
        sdk.destroy()
        for key in ("one", "three"):
            best[f"ratio_vs_unleashclient_{key}"] = round(
                best[f"flagclient_{key}_per_s"] / best[f"unleashclient_{key}_per_s"], 2
            )
            best[f"ratio_vs_yggdrasil_{key}"] = round(
                best[f"flagclient_{key}_per_s"] / best[f"yggdrasil_{key}_per_s"], 2
            )
            best[f"sql_ratio_after_before_{key}"] = round(best[f"sql_{key}_per_s"] / best[f"sql_before_{key}_per_s"], 2)
        path = write_result("flags_unleash", best)
        print(json.dumps(best, indent=2))
        print(path)


if __name__ == "__main__":
    main()
