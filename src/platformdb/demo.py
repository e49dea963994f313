"""`platformdb demo`: realistic synthetic activity through the real SQL functions.

Each capability contributes a step module in `platformdb.demo_steps` with
`run(conn, scale, rng, progress) -> dict[str, int]` (what it created). Steps run as
service_role, each in its own transaction, in the order of STEPS.
"""

from __future__ import annotations

import importlib
import random
from typing import Annotated, Any

import psycopg
import typer
from rich.progress import Progress

from platformdb import db
from platformdb.cli_options import DirectUrl, PoolMode, ReplicaUrl
from platformdb.errors import PlatformDBError

STEPS: list[str] = [
    "platformdb.demo_steps.observability",
    "platformdb.demo_steps.whatsapp",
    "platformdb.demo_steps.payments",
    "platformdb.demo_steps.registry_flags",
    "platformdb.demo_steps.events_queue",
    "platformdb.demo_steps.geo_cache",
]

SCALES = {"small": 1, "medium": 10}


def run(url: str, scale: str = "small", seed: int = 20260401) -> dict[str, dict[str, int]]:
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {sorted(SCALES)}")
    factor = SCALES[scale]
    rng = random.Random(seed)
    results: dict[str, dict[str, int]] = {}
    with psycopg.connect(url) as conn, Progress(transient=False) as progress:
        for name in STEPS:
            mod = importlib.import_module(name)
            short = name.rsplit(".", 1)[-1]
            task = progress.add_task(f"demo: {short}", total=None)

            def tick(done: int, total: int | None = None, _task: Any = task) -> None:
                progress.update(_task, completed=done, total=total)

            with db.as_service(conn):
                results[short] = mod.run(conn, factor, rng, tick)
            progress.update(task, completed=1, total=1)
    return results


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo_cmd(
        database_url: Annotated[
            str | None, typer.Option("--database-url", envvar="DATABASE_URL")
        ] = None,
        direct_url: DirectUrl = None,
        replica_url: ReplicaUrl = None,
        pool_mode: PoolMode = None,
        scale: Annotated[str, typer.Option("--scale", help="small or medium")] = "small",
    ) -> None:
        """Fill the database with realistic synthetic activity (Kigali, RWF, WhatsApp…)."""
        from platformdb.cli import console, fail, url_of

        try:
            results = run(url_of(database_url, direct_url, replica_url, pool_mode), scale)
        except (ValueError, psycopg.Error, PlatformDBError) as exc:
            fail(str(exc))
            return
        for step, counts in results.items():
            console.print(f"{step}: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
