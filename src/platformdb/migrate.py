"""Migration runner (SPEC §4): ordered files, one transaction each with its ledger row.

Files are `<14-digit version>_<name>.sql` with an optional `<version>_<name>.down.sql`, each
wrapped in `BEGIN; … COMMIT;` so the Supabase CLI runs them unchanged. The runner strips that
wrapper and runs the body inside its own transaction together with the ledger rows, so a
file is either applied and recorded or not at all. An advisory lock serialises runners.

The ledger is Supabase's `supabase_migrations.schema_migrations (version, statements, name)`
plus `supabase_migrations.platformdb_ledger` holding each file's checksum. A version that only
`schema_migrations` records (with this file's name) was applied by the Supabase CLI
(`supabase db push` of `platformdb migrate export`): it counts as applied, `up` skips it and
`down` rolls it back and removes it from both ledgers. The CLI keeps no checksum, so such a
file's content cannot be compared.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import psycopg
from pglast import ast
from pglast import parser as pg_parser
from pglast.enums.parsenodes import TransactionStmtKind

from platformdb import db
from platformdb.errors import PlatformDBError

LOCK_KEY = 0x706C6462_6D696772  # "pldbmigr": pg_advisory_lock key shared by every runner
FILE_RE = re.compile(r"^(?P<version>\d{14})_(?P<name>[a-z0-9_]+)\.sql$")

LEDGER_DDL = """
create schema if not exists supabase_migrations;
create table if not exists supabase_migrations.schema_migrations (
    version text not null primary key,
    statements text[],
    name text
);
create table if not exists supabase_migrations.platformdb_ledger (
    version text not null primary key,
    name text not null,
    checksum text not null,
    applied_at timestamptz not null default now(),
    applied_by text not null default current_user,
    duration_ms integer not null
);
comment on table supabase_migrations.platformdb_ledger is
    'platformdb: checksum and timing of each applied migration (beside Supabase''s schema_migrations).';
"""


class MigrationError(PlatformDBError):
    """A migration could not be applied, rolled back, or its ledger is inconsistent."""


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    path: Path
    down_path: Path | None

    @property
    def filename(self) -> str:
        return self.path.name

    def text(self) -> str:
        return self.path.read_text()

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


@dataclass(frozen=True)
class Applied:
    """What the ledgers say of one applied version."""

    checksum: str | None  # None: applied by the Supabase CLI, which records no checksum
    applied_at: object | None
    by: str  # "platformdb" or "supabase-cli"


@dataclass(frozen=True)
class Status:
    migration: Migration
    applied: bool
    checksum_ok: bool
    applied_at: object | None = None
    applied_by: str | None = None  # "platformdb", "supabase-cli" or None when pending


def default_dir() -> Path:
    env = os.environ.get("PLATFORMDB_MIGRATIONS_DIR")
    if env:
        return Path(env)
    return Path(str(resources.files("platformdb") / "migrations"))


def discover(directory: Path | None = None) -> list[Migration]:
    directory = directory or default_dir()
    out = []
    for p in sorted(directory.iterdir()):
        m = FILE_RE.match(p.name)
        if not m:
            continue
        down = p.with_name(f"{m['version']}_{m['name']}.down.sql")
        out.append(Migration(m["version"], m["name"], p, down if down.exists() else None))
    versions = [m.version for m in out]
    if len(versions) != len(set(versions)):
        raise MigrationError(f"two migration files share a version in {directory}")
    return out


# ---- file body ----------------------------------------------------------------------


def split_statements(sql: str) -> list[tuple[int, int, str, str]]:
    """(start, end, text, kind) of each statement, found by PostgreSQL's own parser.

    kind is 'begin', 'commit', 'rollback' for transaction statements, else 'other'.
    """
    try:
        stmts = pg_parser.parse_sql(sql)
    except pg_parser.ParseError as exc:
        raise MigrationError(f"syntax error: {exc}") from exc
    # pglast reports character offsets (not bytes)
    out = []
    for s in stmts:
        start = s.stmt_location or 0
        length = s.stmt_len or (len(sql) - start)
        text = sql[start : start + length].strip()
        kind = "other"
        if isinstance(s.stmt, ast.TransactionStmt):
            k = s.stmt.kind
            kind = "rollback" if k is None else {
                TransactionStmtKind.TRANS_STMT_BEGIN: "begin",
                TransactionStmtKind.TRANS_STMT_START: "begin",
                TransactionStmtKind.TRANS_STMT_COMMIT: "commit",
            }.get(k, "rollback")
        out.append((start, start + length, text, kind))
    return out


def transaction_body(path: Path) -> tuple[str, list[str], int]:
    """The statements between the file's BEGIN; and COMMIT; and the byte offset where they start.

    Refuses a file that is not wrapped in exactly one BEGIN … COMMIT.
    """
    sql = path.read_text()
    stmts = split_statements(sql)
    kinds = [k for *_, k in stmts]
    if not stmts or kinds[0] != "begin" or kinds[-1] != "commit":
        raise MigrationError(f"{path.name}: must start with BEGIN; and end with COMMIT;")
    if any(k != "other" for k in kinds[1:-1]):
        raise MigrationError(f"{path.name}: a transaction statement inside BEGIN … COMMIT")
    body_start = stmts[0][1]
    body = sql[body_start : stmts[-1][0]]
    # the terminating ';' of BEGIN is part of the body slice when stmt_len excludes it
    if body.lstrip().startswith(";"):
        idx = body.index(";") + 1
        body_start += idx
        body = body[idx:]
    return body, [t for _, _, t, _ in stmts[1:-1]], sql[:body_start].count("\n") + 1


def _error_line(path: Path, exc: psycopg.Error, line_offset: int, body: str) -> str:
    pos = exc.diag.statement_position if exc.diag else None
    if pos:
        line = body[: int(pos)].count("\n") + line_offset
        return f"{path.name}:{line}"
    return path.name


# ---- connection helpers -------------------------------------------------------------


def refuse_pooler(url: str) -> None:
    """Migrations need a session (an advisory lock held across files, DDL in transactions
    of their own): through a transaction-mode pooler, refuse before touching anything."""
    if db.is_pooled(url):
        raise db.PoolerRefused(
            "migrations never run through a transaction-mode pooler (the runner's lock and each"
            f" file's transaction need one server session); set {db.DIRECT_URL_ENV} (or"
            " --direct-url) to the direct connection or a session-mode pooler (on Supabase:"
            " port 5432) — nothing was applied"
        )


@contextmanager
def _locked(url: str) -> Iterator[psycopg.Connection]:
    refuse_pooler(url)
    conn = psycopg.connect(url, autocommit=True)
    try:
        conn.execute("set lock_timeout = 0")
        conn.execute("select pg_advisory_lock(%s)", (LOCK_KEY,))
        try:
            yield conn
        finally:
            if not conn.closed:
                conn.execute("select pg_advisory_unlock(%s)", (LOCK_KEY,))
    finally:
        conn.close()


def compat_sql() -> str:
    return (resources.files("platformdb") / "compat" / "supabase_compat.sql").read_text()


ROLE_TIMEOUTS_MARK = "-- role timeouts:"


def role_timeouts_sql() -> str:
    """The compat layer's last section: the API roles' statement timeouts, where missing."""
    text = compat_sql()
    return text[text.index(ROLE_TIMEOUTS_MARK) :]


def ensure_role_timeouts(conn: psycopg.Connection) -> str | None:
    """Give anon and authenticated Supabase's statement_timeout where they have none.

    Runs on every `migrate up`; None when done (or nothing to do), else why it could not
    (ALTER ROLE needs CREATEROLE; the migrations do not depend on it)."""
    try:
        with conn.transaction():
            conn.execute(role_timeouts_sql())
    except psycopg.errors.InsufficientPrivilege as exc:
        return str(exc).strip()
    return None


def needs_compat(conn: psycopg.Connection) -> bool:
    row = conn.execute(
        "select to_regprocedure('auth.uid()') is null"
        " or (select count(*) from pg_roles"
        "     where rolname in ('anon','authenticated','service_role')) < 3"
    ).fetchone()
    return bool(row and row[0])


def ensure_compat(conn: psycopg.Connection) -> bool:
    """Install the Supabase compatibility layer when it is missing. True when installed now."""
    if not needs_compat(conn):
        return False
    with conn.transaction():
        conn.execute(compat_sql())
    return True


def _ensure_ledger(conn: psycopg.Connection) -> None:
    with conn.transaction():
        conn.execute(LEDGER_DDL)


def _ledger_exists(conn: psycopg.Connection) -> bool:
    return _table_exists(conn, "supabase_migrations.platformdb_ledger")


def _table_exists(conn: psycopg.Connection, name: str) -> bool:
    row = conn.execute("select to_regclass(%s)", (name,)).fetchone()
    return bool(row and row[0])


def applied(conn: psycopg.Connection, migrations: list[Migration] | None = None) -> dict[str, Applied]:
    """version → Applied for applied migrations.

    Our ledger first; then the Supabase CLI's `schema_migrations` rows whose version and name
    are one of `migrations` (default: the packaged files). Other rows there belong to the
    application's own migrations and are not ours to count.
    """
    out: dict[str, Applied] = {}
    if _ledger_exists(conn):
        for version, checksum, at in conn.execute(
            "select version, checksum, applied_at from supabase_migrations.platformdb_ledger"
        ):
            out[version] = Applied(checksum, at, "platformdb")
    if _table_exists(conn, "supabase_migrations.schema_migrations"):
        ours = {m.version: m.name for m in (migrations if migrations is not None else discover())}
        rows = conn.execute(
            "select version, coalesce(name, '') from supabase_migrations.schema_migrations"
            " where version = any(%s)",
            (list(ours),),
        ).fetchall()
        for version, name in rows:
            if version in out:
                continue
            if name and name != ours[version]:
                raise MigrationError(
                    f"supabase_migrations.schema_migrations records version {version} as {name!r},"
                    f" but this package's migration {version} is {ours[version]!r}: two migrations"
                    " share a version; rename the application's migration"
                )
            out[version] = Applied(None, None, "supabase-cli")
    return out


def status(url: str, directory: Path | None = None) -> list[Status]:
    migrations = discover(directory)
    with psycopg.connect(url, autocommit=True) as conn:
        done = applied(conn, migrations)
    out = []
    for m in migrations:
        a = done.get(m.version)
        if a is None:
            out.append(Status(m, False, True))
        else:
            ok = a.checksum is None or a.checksum == m.checksum
            out.append(Status(m, True, ok, a.applied_at, a.by))
    return out


def _check_checksums(migrations: list[Migration], done: dict[str, Applied]) -> None:
    for m in migrations:
        a = done.get(m.version)
        if a is not None and a.checksum is not None and a.checksum != m.checksum:
            raise MigrationError(
                f"{m.filename} was changed after it was applied (checksum differs from the"
                " ledger); never edit an applied migration: add a new one"
            )


Progress = Callable[[str], None]


def _noop(_: str) -> None:
    return None


def up(
    url: str,
    directory: Path | None = None,
    *,
    to: str | None = None,
    dry_run: bool = False,
    progress: Progress = _noop,
) -> list[Migration]:
    """Apply pending migrations in order (up to `to` inclusive). Returns what was applied."""
    migrations = discover(directory)
    with _locked(url) as conn:
        done = applied(conn, migrations)
        _check_checksums(migrations, done)
        pending = [m for m in migrations if m.version not in done and (to is None or m.version <= to)]
        if not pending:
            return []  # up to date: nothing is written, not even an empty ledger
        if dry_run:
            if needs_compat(conn):
                progress("would install the Supabase compatibility layer")
            for m in pending:
                transaction_body(m.path)  # validates the wrapper
                progress(f"would apply {m.filename}")
            return pending
        from platformdb import guard

        # additive only: refuse before changing anything (compat layer and ledger included)
        guard.check_names_free(conn, pending, migrations)
        if ensure_compat(conn):
            progress("installed the Supabase compatibility layer")
        problem = ensure_role_timeouts(conn)
        if problem:
            progress(f"could not set the API roles' statement_timeout: {problem}")
        _ensure_ledger(conn)
        for m in pending:
            _apply(conn, m)
            progress(f"applied {m.filename}")
        return pending


def _apply(conn: psycopg.Connection, m: Migration) -> None:
    body, statements, line_offset = transaction_body(m.path)
    t0 = time.monotonic()
    # Citus forwards the query string of some propagated DDL to the workers: a multi-statement
    # string would reach them whole, so on a Citus coordinator the statements go one by one
    # (same transaction)
    citus = conn.execute("select 1 from pg_catalog.pg_extension where extname = 'citus'").fetchone()
    try:
        with conn.transaction():
            if citus is None:
                conn.execute(body)
            else:
                for stmt in statements:
                    conn.execute(stmt.encode())
            ms = int((time.monotonic() - t0) * 1000)
            conn.execute(
                "insert into supabase_migrations.schema_migrations (version, statements, name)"
                " values (%s, %s, %s) on conflict (version) do nothing",
                (m.version, statements, m.name),
            )
            conn.execute(
                "insert into supabase_migrations.platformdb_ledger"
                " (version, name, checksum, duration_ms) values (%s, %s, %s, %s)",
                (m.version, m.name, m.checksum, ms),
            )
    except psycopg.Error as exc:
        where = _error_line(m.path, exc, line_offset, body)
        raise MigrationError(f"{where}: {exc.diag.message_primary or exc}") from exc


def down(
    url: str,
    directory: Path | None = None,
    *,
    to: str | None = None,
    dry_run: bool = False,
    progress: Progress = _noop,
) -> list[Migration]:
    """Roll back the newest applied migration, or every one newer than `to` ('0' = all)."""
    migrations = discover(directory)
    with _locked(url) as conn:
        done = applied(conn, migrations)
        _check_checksums(migrations, done)
        applied_ms = [m for m in migrations if m.version in done]
        unknown = {v for v, a in done.items() if a.by == "platformdb"} - {m.version for m in migrations}
        if unknown:
            raise MigrationError(
                f"the ledger lists versions with no file here: {', '.join(sorted(unknown))}"
            )
        if to is None:
            targets = applied_ms[-1:]
        else:
            targets = [m for m in applied_ms if m.version > to]
        targets.reverse()
        for m in targets:
            if m.down_path is None:
                raise MigrationError(f"{m.filename} has no {m.version}_{m.name}.down.sql")
        if dry_run:
            for m in targets:
                by = " (applied by the Supabase CLI)" if done[m.version].by == "supabase-cli" else ""
                progress(f"would roll back {m.filename}{by}")
            return targets
        for m in targets:
            assert m.down_path is not None
            body, _, line_offset = transaction_body(m.down_path)
            try:
                with conn.transaction():
                    conn.execute(body)
                    conn.execute(
                        "delete from supabase_migrations.schema_migrations where version = %s",
                        (m.version,),
                    )
                    if done[m.version].by == "platformdb":
                        conn.execute(
                            "delete from supabase_migrations.platformdb_ledger where version = %s",
                            (m.version,),
                        )
            except psycopg.Error as exc:
                where = _error_line(m.down_path, exc, line_offset, body)
                raise MigrationError(f"{where}: {exc.diag.message_primary or exc}") from exc
            progress(f"rolled back {m.filename}")
        return targets
