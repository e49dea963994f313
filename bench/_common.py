"""Shared bench plumbing: a throw-away migrated cluster (or DATABASE_URL), result files.

Every bench measures a figure next to its peer in the same run (ratios, not absolute times:
machines here are noisy) and writes `bench/results/<name>.json`.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from platformdb import devdb, migrate  # noqa: E402

RESULTS = ROOT / "bench" / "results"


@contextmanager
def database() -> Iterator[str]:
    """DATABASE_URL when set (must be migrated), else a fresh migrated ephemeral cluster."""
    url = os.environ.get("BENCH_DATABASE_URL")
    if url:
        yield url
        return
    cluster = devdb.ephemeral_cluster(prefix="platformdb-bench-")
    try:
        cluster.create_database("bench")
        url = cluster.url("bench")
        migrate.up(url)
        yield url
    finally:
        cluster.destroy()


def machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def write_result(name: str, figures: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"bench": name, "machine": machine(), "figures": figures}, indent=2) + "\n")
    return path


def rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("inf")
