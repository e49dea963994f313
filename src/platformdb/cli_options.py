"""The connection-role options every database command takes (see platformdb.db)."""

from __future__ import annotations

from typing import Annotated

import typer

from platformdb import db

__all__ = ["DirectUrl", "PoolMode", "ReplicaUrl"]

DirectUrl = Annotated[
    str | None,
    typer.Option(
        "--direct-url",
        envvar=db.DIRECT_URL_ENV,
        help="Session URL (direct, or a session-mode pooler) for LISTEN, migrations, locks and"
        " maintenance; default: the database URL unless it is a transaction pooler.",
        show_envvar=True,
    ),
]
ReplicaUrl = Annotated[
    str | None,
    typer.Option(
        "--replica-url",
        envvar=db.REPLICA_URL_ENV,
        help="Read-replica URL for read-only paths (dashboard, full flag loads).",
        show_envvar=True,
    ),
]
PoolMode = Annotated[
    str | None,
    typer.Option(
        "--pool-mode",
        envvar=db.POOL_MODE_ENV,
        help="What the database URL reaches: transaction (a transaction-mode pooler) or"
        " session; default: detected.",
        show_envvar=True,
    ),
]
