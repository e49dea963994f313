"""The same no-op work as a Procrastinate task, for bench/queue_bench.py (its own database)."""

from __future__ import annotations

import os

from procrastinate import App, PsycopgConnector

app = App(connector=PsycopgConnector(conninfo=os.environ.get("BENCH_PROCRASTINATE_URL", "")))


@app.task(name="noop", queue="bench")
async def noop() -> None:
    return None
