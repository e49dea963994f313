"""The chaos handlers as `async def` (`platformdb aio-worker --app tests.chaos.aio_worker_app`):
the same work and the same record as tests/chaos/worker_app.py, awaited on the event loop."""

from __future__ import annotations

import asyncio
import os
import random
import time
from typing import Any

from platformdb import worker

RECORD = os.environ.get("CHAOS_RECORD", os.devnull)
WORK_MS = float(os.environ.get("CHAOS_WORK_MS", "0"))


def _record(kind: str, item_id: object, attempt: int) -> None:
    """The record line of tests/chaos/worker_app.py (which this module must not import: it
    registers the plain handlers for the same queue and job type)."""
    fd = os.open(RECORD, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{kind} {item_id} {os.getpid()} {attempt} {time.time():.3f}\n".encode())
    finally:
        os.close(fd)


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
