"""The `platformdb` command. Thin: parse, call a module, print.

Every command that talks to a database takes `--database-url` (or DATABASE_URL) and falls
back to the embedded dev cluster (`platformdb dev up`), plus the other connection roles:
`--direct-url` (PLATFORMDB_DIRECT_URL: a session for LISTEN, migrations and maintenance),
`--replica-url` (PLATFORMDB_REPLICA_URL: read-only paths) and `--pool-mode`
(PLATFORMDB_POOL_MODE: what the database URL reaches; detected when unset).
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from platformdb import db, devdb
from platformdb import migrate as migrate_mod
from platformdb.cli_options import DirectUrl, PoolMode, ReplicaUrl
from platformdb.errors import PlatformDBError

app = typer.Typer(
    help="platformdb: PostgreSQL infrastructure for a WhatsApp-first platform.",
    no_args_is_help=True,
    add_completion=False,
)
dev_app = typer.Typer(help="The embedded local PostgreSQL (under .platformdb/).", no_args_is_help=True)
migrate_app = typer.Typer(help="Apply, roll back and list migrations.", no_args_is_help=True)
app.add_typer(dev_app, name="dev")
app.add_typer(migrate_app, name="migrate")

console = Console()
err_console = Console(stderr=True, soft_wrap=True)

DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        envvar="DATABASE_URL",
        help="PostgreSQL URL; default: the embedded dev cluster.",
        show_envvar=True,
    ),
]


def url_of(
    database_url: str | None,
    direct_url: str | None = None,
    replica_url: str | None = None,
    pool_mode: str | None = None,
) -> str:
    """The database URL; records the other connection roles for the rest of the command."""
    try:
        url = db.resolve_url(database_url)
        db.configure(url, direct_url, replica_url, pool_mode)
        return url
    except PlatformDBError as exc:
        fail(str(exc))
        raise  # unreachable


def session_url_of(database_url: str, direct_url: str | None, duty: str) -> str:
    """The session URL for `duty` (migrations, maintenance…), or a clear error naming
    PLATFORMDB_DIRECT_URL when only a transaction pooler is known."""
    import psycopg

    try:
        return db.require_direct_url(database_url, direct_url, duty=duty)
    except PlatformDBError as exc:
        fail(str(exc))
        raise  # unreachable
    except psycopg.Error as exc:
        fail(f"cannot reach the database: {str(exc).strip()}")
        raise


def fail(message: str, code: int = 1) -> None:
    err_console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


# ---- dev ----------------------------------------------------------------------------


@dev_app.command("up")
def dev_up(
    no_migrate: Annotated[bool, typer.Option("--no-migrate", help="Start without migrating.")] = False,
) -> None:
    """Create (first time), start and migrate the embedded cluster; prints its URL."""
    try:
        with err_console.status("starting the embedded PostgreSQL…"):
            cluster = devdb.dev_up(migrate=not no_migrate)
    except (PlatformDBError, devdb.DevDBError) as exc:
        fail(str(exc))
        return
    console.print(cluster.url(), highlight=False, soft_wrap=True)


@dev_app.command("down")
def dev_down() -> None:
    """Stop the embedded cluster (its data is kept)."""
    if devdb.dev_down():
        err_console.print("stopped")
    else:
        err_console.print("no embedded cluster here")


@dev_app.command("url")
def dev_url() -> None:
    """Print only the embedded cluster's URL."""
    url = devdb.dev_url()
    if url is None:
        fail("no embedded cluster yet: run `platformdb dev up`")
    print(url)


@dev_app.command("status")
def dev_status() -> None:
    """Whether the embedded cluster runs, where its files are, and its URL."""
    c = devdb.dev_cluster()
    if c is None:
        console.print("no embedded cluster (run `platformdb dev up`)")
        raise typer.Exit(1)
    running = c.running()
    table = Table(show_header=False)
    table.add_row("state", "[green]running[/]" if running else "[yellow]stopped[/]")
    table.add_row("url", c.url())
    table.add_row("data", str(c.datadir))
    table.add_row("binaries", str(c.bindir))
    table.add_row("log", str(c.logfile))
    console.print(table)
    raise typer.Exit(0 if running else 1)


@dev_app.command("reset")
def dev_reset(
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
) -> None:
    """Destroy the embedded cluster and its data, then create it afresh."""
    if not yes and sys.stdin.isatty():
        typer.confirm("Destroy the embedded cluster and all its data?", abort=True)
    try:
        cluster = devdb.dev_reset()
    except (PlatformDBError, devdb.DevDBError) as exc:
        fail(str(exc))
        return
    console.print(cluster.url(), highlight=False, soft_wrap=True)


# ---- migrate ------------------------------------------------------------------------


@migrate_app.command("up")
def migrate_up(
    database_url: DatabaseUrl = None,
    direct_url: DirectUrl = None,
    replica_url: ReplicaUrl = None,
    pool_mode: PoolMode = None,
    to: Annotated[str | None, typer.Option("--to", help="Stop after this version.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would run.")] = False,
) -> None:
    """Apply pending migrations, each in one transaction with its ledger row."""
    url = session_url_of(url_of(database_url, direct_url, replica_url, pool_mode), direct_url, "migrations")
    try:
        done = migrate_mod.up(url, to=to, dry_run=dry_run, progress=err_console.print)
    except PlatformDBError as exc:
        fail(str(exc))
        return
    if not done:
        err_console.print("nothing to apply: up to date")


@migrate_app.command("down")
def migrate_down(
    database_url: DatabaseUrl = None,
    direct_url: DirectUrl = None,
    replica_url: ReplicaUrl = None,
    pool_mode: PoolMode = None,
    to: Annotated[
        str | None, typer.Option("--to", help="Roll back everything newer than this version (0 = all).")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would run.")] = False,
) -> None:
    """Roll back the newest applied migration (or down to --to) with its .down.sql."""
    url = session_url_of(url_of(database_url, direct_url, replica_url, pool_mode), direct_url, "migrations")
    try:
        done = migrate_mod.down(url, to=to, dry_run=dry_run, progress=err_console.print)
    except PlatformDBError as exc:
        fail(str(exc))
        return
    if not done:
        err_console.print("nothing to roll back")


@migrate_app.command("status")
def migrate_status(
    database_url: DatabaseUrl = None,
    direct_url: DirectUrl = None,
    replica_url: ReplicaUrl = None,
    pool_mode: PoolMode = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """List migrations: applied, pending, or changed since applied (exit 1 if changed)."""
    url = url_of(database_url, direct_url, replica_url, pool_mode)
    url = db.direct_url_for(url, direct_url) or url  # reading the ledger works through a pooler too
    try:
        rows = migrate_mod.status(url)
    except PlatformDBError as exc:
        fail(str(exc))
        return
    changed = any(r.applied and not r.checksum_ok for r in rows)

    def state(r: migrate_mod.Status) -> str:
        if not r.applied:
            return "pending"
        if not r.checksum_ok:
            return "changed"
        return "applied by the Supabase CLI" if r.applied_by == "supabase-cli" else "applied"

    if as_json:
        print_json(
            [
                {
                    "version": r.migration.version,
                    "name": r.migration.name,
                    "state": state(r),
                    "applied_by": r.applied_by,
                    "applied_at": r.applied_at,
                }
                for r in rows
            ]
        )
    else:
        colour = {"pending": "yellow", "changed": "red"}
        table = Table("version", "name", "state", "applied at")
        for r in rows:
            st = state(r)
            table.add_row(
                r.migration.version, r.migration.name, f"[{colour.get(st, 'green')}]{st}[/]", str(r.applied_at or "")
            )
        console.print(table)
    raise typer.Exit(1 if changed else 0)


@migrate_app.command("export")
def migrate_export(
    directory: Annotated[str, typer.Argument(help="Target folder, e.g. supabase/migrations.")],
) -> None:
    """Copy the up migrations (not the .down.sql files) into a Supabase project's folder."""
    import shutil
    from pathlib import Path

    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    for m in migrate_mod.discover():
        dest = target / m.filename
        if dest.exists() and dest.read_bytes() != m.path.read_bytes():
            fail(f"{dest} exists and differs: an applied migration must never change")
        shutil.copyfile(m.path, dest)
        err_console.print(f"copied {m.filename}")


# ---- entry point --------------------------------------------------------------------


def _register_extensions() -> None:
    """Commands that live next to their capability register themselves here."""
    from platformdb import commands

    commands.register(app)


def main() -> None:
    _register_extensions()
    app()


if __name__ == "__main__":
    main()
