"""Helpers shared by tests: counting rows, expecting SQLSTATEs, acting as roles."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from platformdb import db
from platformdb.errors import PlatformDBError


def count(conn: psycopg.Connection[Any], table: str, where: str = "true") -> int:
    """Rows in `table` as the owner (bypassing nothing: the owner is not subject to RLS)."""
    row = conn.execute(
        sql.SQL("select count(*) from {} where ").format(sql.Identifier(*table.split("."))) + sql.SQL(where)  # type: ignore[arg-type]
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


def wait_until_waiting_on_a_lock(conn: psycopg.Connection[Any], pid: int) -> None:
    """Wait until backend `pid` waits on a lock (the state a test wants, not a duration). On a
    Citus coordinator the lock is taken on the worker holding the shard: the coordinator's
    backend waits for the worker, and the lock wait shows in citus_lock_waits."""
    from tests import shared_db

    citus = shared_db.on_citus(conn)
    for _ in range(600):
        r = conn.execute("select wait_event_type from pg_stat_activity where pid = %s", (pid,)).fetchone()
        if r and r[0] == "Lock":
            return
        if citus and conn.execute("select exists (select 1 from citus_lock_waits)").fetchone() == (True,):
            return
        time.sleep(0.02)
    pytest.fail(f"backend {pid} never waited on a lock")


class ServedApp:
    """An ASGI app served by uvicorn on a free loopback port, in a thread (`with ServedApp(app) as s`)."""

    def __init__(self, app: Any):
        import uvicorn

        from platformdb.devdb import free_port

        self.port = free_port()
        self.app = app
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="error"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ServedApp:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline, "the app did not start"
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


FLAG_CORPUS = Path(__file__).resolve().parent / "fixtures" / "flag_corpus"


def load_flag_corpus(conn: psycopg.Connection[Any], name: str) -> dict[str, Any]:
    """One file of the committed flag corpus, its flags imported into the database."""
    from platformdb.sdk import flag_io

    spec: dict[str, Any] = json.loads((FLAG_CORPUS / name).read_text(encoding="utf-8"))
    result = flag_io.import_state(conn, spec["state"], environment="all")
    assert not result.refused, result.refused
    return spec


def assert_unleash_sdk_agrees(
    conn: psycopg.Connection[Any], api_url: str, token: str, cache_directory: Path, app_name: str
) -> None:
    """Unleash's Python SDK (UnleashClient from PyPI), pointed at our client API at `api_url`,
    gives our SQL's answers and the corpus's expectations on more than 1,000 cases."""
    from UnleashClient import UnleashClient

    from platformdb.sdk import flags

    names = ("P02-operators.json", "P03-segments-dependencies.json", "P04-variants.json")
    specs = [load_flag_corpus(conn, n) for n in names]
    client = UnleashClient(
        url=api_url,
        app_name=app_name,
        custom_headers={"Authorization": token},
        disable_metrics=True,
        disable_registration=True,
        refresh_interval=3600,
        cache_directory=str(cache_directory),
    )
    client.initialize_client()
    try:
        assert client.is_initialized
        n = 0
        for spec in specs:
            for t in spec["tests"]:
                key, ctx = t["toggleName"], t["context"]
                ours = flags.is_feature_enabled(conn, key, None, "production", ctx)
                assert client.is_enabled(key, ctx) == ours == t["expectedResult"], t["description"]
                n += 1
            for t in spec["variantTests"]:
                key, ctx = t["toggleName"], t["context"]
                ours_v = flags.get_feature_variant(conn, key, None, "production", ctx)
                theirs = client.get_variant(key, ctx)
                assert (theirs["name"], theirs["enabled"], theirs.get("payload")) == (
                    ours_v["name"],
                    ours_v["enabled"],
                    ours_v.get("payload"),
                ), t["description"]
                n += 1
        assert n > 1000
    finally:
        client.destroy()


@contextmanager
def nested_plans(conn: psycopg.Connection[Any], role: str = "service_role") -> Iterator[list[str]]:
    """The plans of the statements `conn` runs in the block, those inside functions included
    (auto_explain at NOTICE, nested statements on), as `role`, in one transaction; `conn` is
    `role` again after it."""
    plans: list[str] = []

    def keep(d: psycopg.errors.Diagnostic) -> None:
        plans.append(d.message_primary or "")

    conn.add_notice_handler(keep)
    try:
        with conn.transaction():
            conn.execute("reset role")
            conn.execute("load 'auto_explain'")
            for setting in ("log_min_duration = 0", "log_nested_statements = on", "log_level = notice"):
                conn.execute(f"set local auto_explain.{setting}")
            conn.execute(sql.SQL("set local role {}").format(sql.Identifier(role)))
            yield plans
    finally:
        conn.remove_notice_handler(keep)
        conn.execute(sql.SQL("set role {}").format(sql.Identifier(role)))


def violated_constraint(exc: psycopg.Error) -> str | None:
    """The constraint an integrity error names: its diagnostic field, or, for an error a Citus
    worker raised (the coordinator relays only its message), the name in the message without
    the shard id Citus appends to a shard's constraints."""
    if exc.diag.constraint_name:
        return exc.diag.constraint_name
    found = re.search(r'constraint "([^"]+)"', exc.diag.message_primary or "")
    return re.sub(r"_\d+$", "", found.group(1)) if found else None


def refused_by_its_name(
    conn: psycopg.Connection[Any], table: str, good: dict[str, str], column: str, value: str, constraint: str
) -> None:
    """A row with `column` = `value` is refused by `constraint` (SQLSTATE 23514), on INSERT
    and on UPDATE of a good row, and nothing of it is written."""
    row = {**good, column: value}
    with pytest.raises(psycopg.errors.CheckViolation) as info:
        conn.execute(f"insert into {table} ({', '.join(row)}) values ({', '.join(row.values())})")
    assert violated_constraint(info.value) == constraint
    assert count(conn, table) == 0
    # the same row with good values is stored, and an UPDATE to the bad value is refused too
    before = conn.execute(
        f"insert into {table} ({', '.join(good)}) values ({', '.join(good.values())}) returning *"
    ).fetchone()
    assert before is not None
    with pytest.raises(psycopg.errors.CheckViolation) as info:
        conn.execute(f"update {table} set {column} = {value}")
    assert violated_constraint(info.value) == constraint
    assert conn.execute(f"select * from {table}").fetchall() == [before]
