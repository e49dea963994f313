"""`platformdb whatsapp …`: the webhook receiver, a sender run, and the queue at a glance."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from platformdb.cli_options import DirectUrl, PoolMode, ReplicaUrl

whatsapp_app = typer.Typer(help="WhatsApp Cloud API: webhook receiver, sender, outbound queue.", no_args_is_help=True)

DatabaseUrl = Annotated[
    str | None,
    typer.Option("--database-url", envvar="DATABASE_URL", help="PostgreSQL URL; default: the embedded dev cluster."),
]


@whatsapp_app.command("serve")
def serve(
    database_url: DatabaseUrl = None,
    direct_url: DirectUrl = None,
    replica_url: ReplicaUrl = None,
    pool_mode: PoolMode = None,
    host: Annotated[str, typer.Option("--host", help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 8081,
) -> None:
    """Run the webhook receiver (needs WHATSAPP_APP_SECRET and WHATSAPP_VERIFY_TOKEN)."""
    import uvicorn

    from platformdb.cli import err_console, fail, url_of
    from platformdb.whatsapp_cloud.webhook import WEBHOOK_PATH, create_app

    secret = os.environ.get("WHATSAPP_APP_SECRET", "")
    token = os.environ.get("WHATSAPP_VERIFY_TOKEN", "")
    if not secret or not token:
        fail("set WHATSAPP_APP_SECRET and WHATSAPP_VERIFY_TOKEN (the app secret signs every webhook)")
    app = create_app(url_of(database_url, direct_url, replica_url, pool_mode), secret, token)
    err_console.print(f"WhatsApp webhook on http://{host}:{port}{WEBHOOK_PATH}")
    uvicorn.run(app, host=host, port=port, log_level="info")


@whatsapp_app.command("send")
def send(
    to: Annotated[str, typer.Option("--to", help="Recipient in E.164, e.g. +250788123456.")],
    text: Annotated[str, typer.Option("--text", help="Message body.")],
    database_url: DatabaseUrl = None,
    direct_url: DirectUrl = None,
    replica_url: ReplicaUrl = None,
    pool_mode: PoolMode = None,
    priority: Annotated[int, typer.Option("--priority", help="1 (most urgent) to 10.")] = 5,
) -> None:
    """Queue a text message (the worker's sender delivers it)."""
    import psycopg

    from platformdb import db
    from platformdb.cli import console, fail, url_of
    from platformdb.errors import PlatformDBError
    from platformdb.sdk import whatsapp as wa

    try:
        with psycopg.connect(url_of(database_url, direct_url, replica_url, pool_mode)) as conn, db.as_service(conn):
            mid = wa.send_text(conn, to, text, priority=priority)
    except PlatformDBError as exc:
        fail(str(exc))
        return
    console.print(str(mid))


@whatsapp_app.command("drain")
def drain(
    database_url: DatabaseUrl = None,
    direct_url: DirectUrl = None,
    replica_url: ReplicaUrl = None,
    pool_mode: PoolMode = None,
) -> None:
    """Send every due message now and exit (needs WHATSAPP_ACCESS_TOKEN, WHATSAPP_PHONE_NUMBER_ID)."""
    from platformdb.cli import console, fail, url_of
    from platformdb.whatsapp_cloud.sender import SenderConfig, WhatsAppSender

    config = SenderConfig.from_env(url_of(database_url, direct_url, replica_url, pool_mode))
    if config is None:
        fail("set WHATSAPP_ACCESS_TOKEN and WHATSAPP_PHONE_NUMBER_ID")
        return
    sender = WhatsAppSender(config)
    n = sender.drain()
    console.print(f"claimed {n}: " + ", ".join(f"{v} {k}" for k, v in sorted(sender.stats.items())))


@whatsapp_app.command("mark-read")
def mark_read(
    whatsapp_message_id: Annotated[str, typer.Argument(help="The inbound message's wa id (wamid.…).")],
    typing: Annotated[bool, typer.Option("--typing", help="Also show the typing indicator.")] = False,
) -> None:
    """Mark an inbound message read (blue ticks), optionally with the typing indicator (needs
    WHATSAPP_ACCESS_TOKEN and WHATSAPP_PHONE_NUMBER_ID)."""
    from platformdb.cli import console, fail
    from platformdb.whatsapp_cloud import sender

    config = sender.SenderConfig.from_env("")  # a Graph API call only: no database
    if config is None:
        fail("set WHATSAPP_ACCESS_TOKEN and WHATSAPP_PHONE_NUMBER_ID")
        return
    try:
        sender.mark_read(config, whatsapp_message_id, typing)
    except RuntimeError as exc:
        fail(str(exc))
        return
    console.print("read" + (" (typing…)" if typing else ""))


@whatsapp_app.command("stats")
def stats(
    database_url: DatabaseUrl = None,
    direct_url: DirectUrl = None,
    replica_url: ReplicaUrl = None,
    pool_mode: PoolMode = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Sessions by status, the outbound queue (depth, age, last 24 h), the webhook quarantine
    and what messages cost (last 7 days)."""
    import psycopg
    from rich.table import Table

    from platformdb import db
    from platformdb.cli import console, fail, print_json, url_of
    from platformdb.errors import PlatformDBError
    from platformdb.sdk import whatsapp as wa

    try:
        with psycopg.connect(url_of(database_url, direct_url, replica_url, pool_mode)) as conn, db.as_service(conn):
            sessions = wa.session_stats(conn)
            queue = wa.queue_stats(conn)
            quarantine = wa.quarantine_stats(conn)
            costs = wa.message_costs(conn, days=7)
    except PlatformDBError as exc:
        fail(str(exc))
        return
    if as_json:
        print_json({"sessions": sessions, "queue": queue, "quarantine": quarantine, "costs": costs})
        return
    t = Table("status", "sessions", "active 1h", "active 24h", "messages", "errors")
    for r in sessions:
        t.add_row(
            r["status"],
            str(r["session_count"]),
            str(r["active_last_hour"]),
            str(r["active_last_24h"]),
            str(r["total_messages"]),
            str(r["total_errors"]),
        )
    console.print(t)
    q = Table(show_header=False)
    for k, v in queue.items():
        q.add_row(k, str(v))
    console.print(q)
    qt = Table(show_header=False, title="webhook quarantine")
    for k, v in quarantine.items():
        qt.add_row(k, str(v))
    console.print(qt)
    c = Table("day", "category", "messages", "billable", "no pricing yet", title="what messages cost")
    for r in costs:
        c.add_row(str(r["day"]), r["category"], str(r["messages"]), str(r["billable"]), str(r["pricing_unknown"]))
    console.print(c)


@whatsapp_app.command("quarantine")
def quarantine_list(
    database_url: DatabaseUrl = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000)] = 50,
    show_all: Annotated[bool, typer.Option("--all", help="Resolved items too.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output (with the items).")] = False,
) -> None:
    """Webhook items that could not be stored, newest first, with their reasons."""
    import psycopg
    from rich.table import Table

    from platformdb import db
    from platformdb.cli import console, fail, print_json, url_of
    from platformdb.errors import PlatformDBError
    from platformdb.sdk import whatsapp as wa

    try:
        with psycopg.connect(url_of(database_url)) as conn, db.as_service(conn):
            rows = wa.list_quarantine(conn, limit, include_resolved=show_all)
    except PlatformDBError as exc:
        fail(str(exc))
        return
    if as_json:
        print_json(rows)
        return
    t = Table("id", "received", "kind", "path", "seen", "tries", "resolution", "reason")
    for r in rows:
        t.add_row(
            str(r["id"]),
            str(r["received_at"])[:19],
            r["item_kind"],
            r["item_path"],
            str(r["seen_count"]),
            str(r["attempts"]),
            r["resolution"] or "open",
            r["reason"],
        )
    console.print(t)


@whatsapp_app.command("requeue-quarantine")
def requeue_quarantine(
    database_url: DatabaseUrl = None,
    ids: Annotated[list[str] | None, typer.Option("--id", help="Only this item (repeatable).")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10000, help="At most this many items.")] = 1000,
) -> None:
    """Store the quarantined webhook items again (after a fix): each one stored is resolved,
    one that still fails stays with its new reason."""
    import uuid

    import psycopg

    from platformdb import db
    from platformdb.cli import console, fail, url_of
    from platformdb.errors import PlatformDBError
    from platformdb.whatsapp_cloud.store import requeue

    try:
        wanted = [uuid.UUID(i) for i in ids] if ids else None
    except ValueError as exc:
        fail(f"--id must be a quarantined item id (uuid): {exc}")
        return
    try:
        with psycopg.connect(url_of(database_url)) as conn, db.as_service(conn):
            outcomes = requeue(conn, limit, wanted)
    except PlatformDBError as exc:
        fail(str(exc))
        return
    total = sum(outcomes.values())
    parts = ", ".join(f"{outcomes[k]} {k}" for k in ("stored", "duplicate", "discarded", "failed") if outcomes[k])
    console.print(f"requeued {total}" + (f": {parts}" if parts else ""))
    if outcomes["failed"]:
        raise typer.Exit(2)


templates_app = typer.Typer(help="The account's message templates.", no_args_is_help=True)
whatsapp_app.add_typer(templates_app, name="templates")


@templates_app.command("sync")
def templates_sync(database_url: DatabaseUrl = None) -> None:
    """Store the account's templates from the Graph API (needs WHATSAPP_ACCESS_TOKEN,
    WHATSAPP_PHONE_NUMBER_ID and WHATSAPP_BUSINESS_ACCOUNT_ID); enqueued templates are then
    checked against them."""
    import psycopg

    from platformdb import db
    from platformdb.cli import console, fail, url_of
    from platformdb.errors import PlatformDBError
    from platformdb.whatsapp_cloud import templates
    from platformdb.whatsapp_cloud.sender import SenderConfig

    url = url_of(database_url)
    config = SenderConfig.from_env(url)
    waba = os.environ.get("WHATSAPP_BUSINESS_ACCOUNT_ID", "")
    if config is None or not waba:
        fail("set WHATSAPP_ACCESS_TOKEN, WHATSAPP_PHONE_NUMBER_ID and WHATSAPP_BUSINESS_ACCOUNT_ID")
        return
    try:
        listed = templates.fetch(config.graph_url, config.access_token, waba)
        with psycopg.connect(url) as conn, db.as_service(conn):
            n = templates.sync(conn, listed)
    except (templates.TemplateSyncError, PlatformDBError) as exc:
        fail(str(exc))
        return
    approved = sum(1 for t in listed if t.get("status") == "APPROVED")
    console.print(f"synced {n} templates ({approved} approved)")


media_app = typer.Typer(help="Media of inbound messages.", no_args_is_help=True)
whatsapp_app.add_typer(media_app, name="media")


@media_app.command("fetch")
def media_fetch(
    whatsapp_message_id: Annotated[str, typer.Argument(help="The inbound message's wa id (wamid.…).")],
    output: Annotated[str, typer.Option("--output", "-o", help="File to write, or - for stdout.")],
    database_url: DatabaseUrl = None,
    max_bytes: Annotated[int, typer.Option("--max-bytes", min=1, help="Refuse media larger than this.")] = (
        100 * 1024 * 1024
    ),
) -> None:
    """Download an inbound message's media (needs WHATSAPP_ACCESS_TOKEN, WHATSAPP_PHONE_NUMBER_ID):
    looked up with the token, size capped, SHA-256 checked against the webhook's."""
    import sys

    import psycopg

    from platformdb import db
    from platformdb.cli import err_console, fail, url_of
    from platformdb.errors import PlatformDBError
    from platformdb.whatsapp_cloud import media
    from platformdb.whatsapp_cloud.sender import SenderConfig

    url = url_of(database_url)
    config = SenderConfig.from_env(url)
    if config is None:
        fail("set WHATSAPP_ACCESS_TOKEN and WHATSAPP_PHONE_NUMBER_ID")
        return
    try:
        with psycopg.connect(url) as conn, db.as_service(conn):
            ref = media.inbound_media(conn, whatsapp_message_id)
    except PlatformDBError as exc:
        fail(str(exc))
        return
    dest = sys.stdout.buffer if output == "-" else output
    try:
        got = media.download(
            config.graph_url, config.access_token, ref.media_id, dest, expected_sha256=ref.sha256, max_bytes=max_bytes
        )
    except (media.MediaError, OSError) as exc:
        fail(str(exc))
        return
    err_console.print(f"{got.size} bytes, {got.mime_type or 'unknown type'}, sha256 {got.sha256}")


def register(app: typer.Typer) -> None:
    app.add_typer(whatsapp_app, name="whatsapp")
