"""Helpers shared by tests: counting rows, expecting SQLSTATEs, acting as roles."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from psycopg import sql

from platformdb import db
from platformdb.errors import PlatformDBError


def count(conn: psycopg.Connection[Any], table: str, where: str = "true") -> int:
    """Rows in `table` as the owner (bypassing nothing: the owner is not subject to RLS)."""
    row = conn.execute(
        sql.SQL("select count(*) from {} where ").format(sql.Identifier(*table.split(".")))
        + sql.SQL(where)  # type: ignore[arg-type]
    ).fetchone()
    assert row is not None
    return int(row[0])


@contextmanager
def raises_sqlstate(sqlstate: str, match: str | None = None) -> Iterator[pytest.ExceptionInfo[Exception]]:
    """Expect an error with this SQLSTATE, raw (psycopg) or through the SDK (platformdb.errors),
    with a message matching `match`."""
    with pytest.raises((psycopg.Error, PlatformDBError)) as info:
        yield info  # type: ignore[misc]
    got = getattr(info.value, "sqlstate", None)
    assert got == sqlstate, f"expected SQLSTATE {sqlstate}, got {got}: {info.value}"
    if match is not None:
        assert re.search(match, str(info.value)), f"{match!r} not in {info.value}"


def as_role(conn: psycopg.Connection[Any], role: str, user_id: Any = None) -> Any:
    return db.acting_as(conn, role, user_id)
