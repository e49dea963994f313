"""Databases filled by `platformdb demo` for the dashboard tests (one per run and scale)."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from platformdb import demo, devdb
from tests.conftest import _admin, _clone, _drop


def _demo_database(cluster: devdb.Cluster, template_url: str, scale: str) -> Iterator[str]:
    url = _clone(cluster, template_url, prefix=f"demo_{scale}")
    demo.run(url, scale)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("vacuum analyze")  # what autovacuum does on a live database
    yield url
    with _admin(cluster) as a:
        _drop(a, url.rsplit("/", 1)[1])


@pytest.fixture(scope="session")
def medium_demo_url(cluster: devdb.Cluster, template_url: str) -> Iterator[str]:
    """`platformdb demo --scale medium` (read-only use: tests must not change it)."""
    yield from _demo_database(cluster, template_url, "medium")


@pytest.fixture
def small_demo_url(cluster: devdb.Cluster, template_url: str) -> Iterator[str]:
    """A fresh `platformdb demo --scale small` database per test (may be changed)."""
    yield from _demo_database(cluster, template_url, "small")
