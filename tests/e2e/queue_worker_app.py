"""Handlers for the worker end-to-end tests (loaded with `--app tests.e2e.queue_worker_app`).

Each handler appends "<kind> <id> <pid> <attempt>" to the file named by E2E_RECORD once its
work is done, the way a real handler's side effect lands before the ack; E2E_SLEEP (or a
payload's "sleep") makes the work take that many seconds.
"""

from __future__ import annotations

import os
import time
from typing import Any

from platformdb import worker

RECORD = os.environ.get("E2E_RECORD", os.devnull)
SLEEP = float(os.environ.get("E2E_SLEEP", "0"))


def _record(kind: str, item_id: object, attempt: int) -> None:
    fd = os.open(RECORD, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{kind} {item_id} {os.getpid()} {attempt}\n".encode())
    finally:
        os.close(fd)


@worker.queue("e2e")
def handle(message: worker.Message) -> None:
    time.sleep(float(message.payload.get("sleep", SLEEP)))
    if message.payload.get("fail"):
        raise RuntimeError("asked to fail")
    _record("message", message.id, message.attempt)


@worker.job("e2e.job")
def run(job: worker.Job) -> dict[str, Any]:
    time.sleep(float(job.payload.get("sleep", 0)))
    _record("job", job.id, job.attempt)
    return {"done": True, "attempt": job.attempt}
