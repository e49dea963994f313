"""`platformdb flags serve | import | export`: Unleash's client API, and platformdb's flags in
and out in Unleash's client-API shape or its admin export format."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import psycopg
import typer

from platformdb.errors import PlatformDBError

flags_app = typer.Typer(help="Feature flags in Unleash's model: serve them to Unleash SDKs, import, export.")


def register(app: typer.Typer) -> None:
    app.add_typer(flags_app, name="flags")


@flags_app.command("serve")
def serve_cmd(
    database_url: Annotated[str | None, typer.Option("--database-url", envvar="DATABASE_URL")] = None,
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port")] = 4242,
    client_token: Annotated[
        list[str] | None,
        typer.Option("--client-token", help="ENVIRONMENT:TOKEN (repeatable); env PLATFORMDB_UNLEASH_CLIENT_TOKENS"),
    ] = None,
    admin_token: Annotated[
        list[str] | None, typer.Option("--admin-token", envvar="PLATFORMDB_UNLEASH_ADMIN_TOKEN")
    ] = None,
    role: Annotated[str | None, typer.Option("--role", help="read and write as this role, e.g. service_role")] = None,
) -> None:
    """Serve Unleash's client API (GET /api/client/features, POST register and metrics)."""
    import uvicorn

    from platformdb.cli import fail, url_of
    from platformdb.sdk.unleash_api import ApiSettings, TokenError, create_app, tokens_from

    try:
        tokens, admins = tokens_from(client_token, admin_token)
    except TokenError as exc:
        fail(str(exc))
        return
    if not tokens and not admins and host not in ("127.0.0.1", "::1", "localhost"):
        fail("without --client-token/--admin-token the server answers loopback clients only: bind to 127.0.0.1")
        return
    settings = ApiSettings(url_of(database_url), tokens, admins, role)
    uvicorn.run(create_app(settings), host=host, port=port, log_level="warning")


@flags_app.command("export")
def export_cmd(
    database_url: Annotated[str | None, typer.Option("--database-url", envvar="DATABASE_URL")] = None,
    environment: Annotated[str, typer.Option("--environment")] = "production",
    output: Annotated[Path | None, typer.Option("--output", "-o")] = None,
    fmt: Annotated[
        str,
        typer.Option("--format", help="client (Unleash's client API v2) or admin (Unleash's admin export format)"),
    ] = "client",
) -> None:
    """Write the flags of an environment in Unleash's client-API shape or its admin export format."""
    from platformdb.cli import fail, url_of
    from platformdb.sdk import flag_io

    if fmt not in ("client", "admin"):
        fail(f"--format must be client or admin, got {fmt!r}")
        return
    try:
        with psycopg.connect(url_of(database_url), autocommit=True) as conn:
            export = flag_io.export_admin if fmt == "admin" else flag_io.export_state
            state = export(conn, environment)
    except (psycopg.Error, PlatformDBError) as exc:
        fail(str(exc))
        return
    text = json.dumps(state, ensure_ascii=False, indent=2) + "\n"
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")


@flags_app.command("import")
def import_cmd(
    file: Annotated[
        Path,
        typer.Argument(help="a client-API state {features, segments}, or Unleash's admin export (or import request)"),
    ],
    database_url: Annotated[str | None, typer.Option("--database-url", envvar="DATABASE_URL")] = None,
    environment: Annotated[str, typer.Option("--environment")] = "all",
) -> None:
    """Write the features and segments of a file, either shape (told apart by its fields;
    every feature validated; refusals reported)."""
    from platformdb import strict_json
    from platformdb.cli import console, fail, url_of
    from platformdb.sdk import flag_io

    try:
        state = strict_json.loads(file.read_text(encoding="utf-8"))
        with psycopg.connect(url_of(database_url), autocommit=True) as conn:
            if not isinstance(state, dict):
                raise ValueError("the file must hold a JSON object")
            kind = flag_io.kind_of(state)
            result = flag_io.import_any(conn, state, environment=environment)
    except (ValueError, OSError, psycopg.Error, PlatformDBError) as exc:
        fail(str(exc))
        return
    shape = "Unleash admin export" if kind != "client" else "client-API state"
    console.print(f"{shape}: {len(result.features)} features, {len(result.segments)} segments imported")
    for name, why in result.refused.items():
        console.print(f"refused {name}: {why}")
    if result.refused:
        raise typer.Exit(1)
