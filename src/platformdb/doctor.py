"""`platformdb doctor`: checks each connection URL and prints which one serves what.

For DATABASE_URL, PLATFORMDB_DIRECT_URL and PLATFORMDB_REPLICA_URL (those set): reachable or
not, the login role, whether it is a transaction-mode pooler (stated by PLATFORMDB_POOL_MODE
for DATABASE_URL, else detected), read-only (a standby) or not, and the replay lag of a
standby. Then the duties: the application's calls, LISTEN/NOTIFY, migrations, maintenance and
pg_cron registration, and read-only paths, each with the URL that serves it. Exit 1 when a
duty has no suitable URL or a URL that is set cannot be used.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Annotated, Any

import psycopg
import typer

from platformdb import db
from platformdb.cli_options import DirectUrl, PoolMode, ReplicaUrl

URL_NAMES = {"database_url": "DATABASE_URL", "direct_url": db.DIRECT_URL_ENV, "replica_url": db.REPLICA_URL_ENV}


@dataclass
class UrlCheck:
    url: str  # shown without its password
    reachable: bool = False
    error: str = ""
    role: str = ""
    server_version: str = ""
    pooled: bool | None = None  # a transaction-mode pooler
    pool_mode_source: str = ""  # "stated" or "detected"
    read_only: bool | None = None  # in recovery (a standby) or default_transaction_read_only
    replica_lag_seconds: float | None = None


def redact(url: str) -> str:
    """The URL without its password."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "<unparsable URL>"
    if "password" in info:
        info["password"] = "***"  # noqa: S105 - a mask, not a password
    if url.startswith(("postgres://", "postgresql://")):
        host = info.get("host", "")
        port = f":{info['port']}" if info.get("port") else ""
        user = info.get("user", "")
        cred = f"{user}{':***' if 'password' in info else ''}@" if user else ""
        return f"postgresql://{cred}{host}{port}/{info.get('dbname', '')}"
    return psycopg.conninfo.make_conninfo("", **info)


def check_url(url: str, stated: str | None = None) -> UrlCheck:
    c = UrlCheck(redact(url))
    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=10, prepare_threshold=None) as conn:
            row = conn.execute(
                "select current_user, current_setting('server_version'), pg_catalog.pg_is_in_recovery(),"
                " current_setting('default_transaction_read_only') = 'on',"
                " case when pg_catalog.pg_is_in_recovery() then extract(epoch from"
                "   now() - coalesce(pg_catalog.pg_last_xact_replay_timestamp(), now())) end"
            ).fetchone()
            assert row is not None
            c.reachable = True
            c.role, c.server_version = str(row[0]), str(row[1])
            c.read_only = bool(row[2] or row[3])
            c.replica_lag_seconds = float(row[4]) if row[4] is not None else None
        if stated:
            c.pooled, c.pool_mode_source = stated == "transaction", "stated"
        else:
            c.pooled, c.pool_mode_source = db.detect_pool_mode(url) == "transaction", "detected"
    except psycopg.Error as exc:
        c.error = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return c


def diagnose(database_url: str, direct_url: str | None, replica_url: str | None) -> dict[str, Any]:
    stated = db.stated_pool_mode()
    checks: dict[str, UrlCheck] = {"database_url": check_url(database_url, stated)}
    if direct_url:
        checks["direct_url"] = check_url(direct_url)
    if replica_url:
        checks["replica_url"] = check_url(replica_url)
    problems: list[str] = []
    for name, c in checks.items():
        if not c.reachable:
            problems.append(f"{URL_NAMES[name]} is not reachable: {c.error}")
    app = checks["database_url"]
    direct = checks.get("direct_url")
    if direct is not None and direct.reachable and direct.pooled:
        problems.append(f"{db.DIRECT_URL_ENV} reaches a transaction-mode pooler: it must be a session")
    if direct is not None and direct.reachable and direct.read_only:
        problems.append(f"{db.DIRECT_URL_ENV} is read-only: migrations and maintenance need the primary")
    if app.reachable and app.read_only:
        problems.append("DATABASE_URL is read-only: the application writes")
    replica = checks.get("replica_url")

    def usable(c: UrlCheck | None) -> bool:
        return c is not None and c.reachable

    session: str | None = None
    if usable(direct) and not (direct and (direct.pooled or direct.read_only)):
        session = "direct_url"
    elif direct is None and app.reachable and app.pooled is False:
        session = "database_url"
    duties: dict[str, str | None] = {
        "application": "database_url" if app.reachable and not app.read_only else None,
        "listen": session,
        "migrations": session,
        "maintenance": session or ("database_url" if app.reachable and not app.read_only else None),
        "pg_cron_registration": session,
        "reads": "replica_url" if usable(replica) else ("database_url" if app.reachable else None),
    }
    for duty, who in duties.items():
        if who is None and not any(p.startswith(URL_NAMES["database_url"] + " is not") for p in problems):
            hint = (
                f"set {db.DIRECT_URL_ENV} to a direct or session-mode URL"
                if duty in ("listen", "migrations", "pg_cron_registration")
                else "see the URLs above"
            )
            problems.append(f"no suitable URL for {duty.replace('_', ' ')}: {hint}")
    notes: list[str] = []
    if duties["listen"] is None and duties["application"]:
        notes.append("without a session URL the worker, the sender and the flags client poll instead of LISTEN")
    return {
        "urls": {k: asdict(v) for k, v in checks.items()},
        "duties": duties,
        "problems": problems,
        "notes": notes,
        "ok": not problems,
    }


def register(app: typer.Typer) -> None:
    @app.command("doctor")
    def doctor_cmd(
        database_url: Annotated[
            str | None, typer.Option("--database-url", envvar="DATABASE_URL", help="The application's URL.")
        ] = None,
        direct_url: DirectUrl = None,
        replica_url: ReplicaUrl = None,
        pool_mode: PoolMode = None,
        as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    ) -> None:
        """Check each URL (reachable, role, pooler, read-only, lag) and which serves what (exit 1 on a gap)."""
        from rich.table import Table

        from platformdb.cli import console, print_json, url_of

        url = url_of(database_url, direct_url, replica_url, pool_mode)
        report = diagnose(url, direct_url or _env_direct(), db.replica_url(replica_url))
        if as_json:
            print_json(report)
            raise typer.Exit(0 if report["ok"] else 1)
        t = Table("URL", "reachable", "role", "pooler", "read-only", "replica lag", title="connection URLs")
        for name, c in report["urls"].items():
            pooler = "?" if c["pooled"] is None else (
                f"transaction ({c['pool_mode_source']})" if c["pooled"] else f"no ({c['pool_mode_source']})"
            )
            lag = "" if c["replica_lag_seconds"] is None else f"{c['replica_lag_seconds']:.1f}s"
            t.add_row(
                f"{URL_NAMES[name]}\n{c['url']}",
                "[green]yes[/]" if c["reachable"] else f"[red]no[/] {c['error']}",
                c["role"],
                pooler,
                "" if c["read_only"] is None else ("yes" if c["read_only"] else "no"),
                lag,
            )
        console.print(t)
        d = Table("duty", "served by", title="which URL serves what")
        for duty, who in report["duties"].items():
            d.add_row(duty.replace("_", " "), URL_NAMES[who] if who else "[red]nothing suitable[/]")
        console.print(d)
        for n in report["notes"]:
            console.print(f"note: {n}")
        for p in report["problems"]:
            console.print(f"[red]problem:[/] {p}")
        raise typer.Exit(0 if report["ok"] else 1)


def _env_direct() -> str | None:
    import os

    return os.environ.get(db.DIRECT_URL_ENV) or None
