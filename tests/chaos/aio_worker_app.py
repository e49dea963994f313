"""The chaos handlers as `async def` (`platformdb aio-worker --app tests.chaos.aio_worker_app`):
the same work and the same record as tests/chaos/worker_app.py, awaited on the event loop."""

from __future__ import annotations

import asyncio
import os
import random
from typing import Any

from platformdb import worker
from tests.chaos.worker_app import _record

WORK_MS = float(os.environ.get("CHAOS_WORK_MS", "0"))


async def _work() -> None:
    if WORK_MS > 0:
        await asyncio.sleep(random.uniform(0.5, 1.5) * WORK_MS / 1000)  # noqa: S311 - jitter, not secrecy


@worker.queue("chaos")
async def handle(message: worker.Message) -> None:
    await _work()
    _record("message", message.id, message.attempt)


@worker.job("chaos.job")
async def run(job: worker.Job) -> dict[str, Any]:
    await _work()
    _record("job", job.id, job.attempt)
    return {"done": True}
