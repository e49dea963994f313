"""`platformdb dashboard [--host 127.0.0.1] [--port 8050] [--token …]`."""

from __future__ import annotations

import ipaddress
import threading
from typing import Annotated

import typer

from platformdb import db
from platformdb.cli_options import DirectUrl, PoolMode, ReplicaUrl

MIN_TOKEN = 16


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_binding(host: str, token: str | None) -> str | None:
    """Why this binding is refused, or None. A token is required off loopback."""
    if token is not None and len(token) < MIN_TOKEN:
        return f"--token must be at least {MIN_TOKEN} characters"
    if not is_loopback(host) and not token:
        return (
            f"binding to {host} makes the dashboard reachable from the network: give --token"
            " (or PLATFORMDB_DASHBOARD_TOKEN); every request will then need it"
        )
    return None


def register(app: typer.Typer) -> None:
    @app.command("dashboard")
    def dashboard_cmd(
        database_url: Annotated[str | None, typer.Option("--database-url", envvar="DATABASE_URL")] = None,
        direct_url: DirectUrl = None,
        replica_url: ReplicaUrl = None,
        pool_mode: PoolMode = None,
        host: Annotated[str, typer.Option("--host", help="Address to bind (loopback by default).")] = "127.0.0.1",
        port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 8050,
        token: Annotated[
            str | None,
            typer.Option(
                "--token",
                envvar="PLATFORMDB_DASHBOARD_TOKEN",
                help="Required off loopback: every request must carry it (Bearer header or sign-in).",
                show_envvar=True,
            ),
        ] = None,
        setup_roles: Annotated[
            bool,
            typer.Option(
                "--setup-roles",
                help="Create/refresh the roles platformdb_monitor, platformdb_operator and platformdb_flags_api"
                " and their grants"
                " (needs the migration user), then exit.",
            ),
        ] = False,
        demo_traffic: Annotated[
            bool, typer.Option("--demo-traffic", help="Keep a trickle of demo activity going (make demo).")
        ] = False,
        flags_client_token: Annotated[
            list[str] | None,
            typer.Option(
                "--flags-client-token",
                help="Unleash client API at /api: ENVIRONMENT:TOKEN (repeatable);"
                " env PLATFORMDB_UNLEASH_CLIENT_TOKENS. Without tokens it answers loopback clients only.",
            ),
        ] = None,
        flags_admin_token: Annotated[
            list[str] | None,
            typer.Option(
                "--flags-admin-token",
                envvar="PLATFORMDB_UNLEASH_ADMIN_TOKEN",
                help="Unleash client API: admin token (any environment).",
            ),
        ] = None,
    ) -> None:
        """Serve the web dashboard and /metrics (Prometheus) from a read-only role."""
        import uvicorn

        from platformdb.cli import console, err_console, fail, url_of
        from platformdb.dashboard import access
        from platformdb.dashboard.app import Settings, create_app

        url = url_of(database_url, direct_url, replica_url, pool_mode)
        if setup_roles:
            import psycopg

            try:
                with psycopg.connect(url, autocommit=True) as conn:
                    for note in access.setup_roles(conn):
                        err_console.print(note)
                    problems = access.missing_access(conn)
            except (access.AccessError, psycopg.Error) as exc:
                fail(str(exc))
                return
            for p in problems:
                err_console.print(f"note: {p}")
            raise typer.Exit(0)
        refusal = check_binding(host, token)
        if refusal:
            fail(refusal, code=2)
        from platformdb.sdk.unleash_api import TokenError, tokens_from

        try:
            flag_tokens, flag_admins = tokens_from(flags_client_token, flags_admin_token)
        except TokenError as exc:
            fail(str(exc), code=2)
            return
        try:
            notes = access.ensure_access(url)
        except access.AccessError as exc:
            fail(str(exc))
            return
        for note in notes:
            err_console.print(note)
        settings = Settings(
            database_url=url,
            replica_url=db.replica_url(replica_url),
            token=token,
            loopback_only=is_loopback(host) and not token,
            flags_client_tokens=flag_tokens,
            flags_admin_tokens=flag_admins,
        )
        stop = threading.Event()
        if demo_traffic:
            from platformdb.dashboard import live

            threading.Thread(target=live.run, args=(url, stop), name="demo-traffic", daemon=True).start()
        shown = f"[{host}]" if ":" in host else host
        console.print(f"platformdb dashboard: http://{shown}:{port}/", highlight=False)
        console.print(f"Prometheus metrics:   http://{shown}:{port}/metrics", highlight=False)
        console.print(f"Unleash client API:   http://{shown}:{port}/api", highlight=False)
        try:
            uvicorn.run(create_app(settings), host=host, port=port, log_level="warning", access_log=False)
        finally:
            stop.set()
