"""Handlers for the chaos scenarios (`platformdb worker --app tests.chaos.worker_app`).

Each handler does its "work" (sleeps CHAOS_WORK_MS on average, jittered) and then appends
`<kind> <id> <pid> <attempt> <unix time>` to the file named by CHAOS_RECORD, the way a real
handler's side effect lands before the ack: a worker killed between the two leaves a
record for work that will be handed out again — a duplicate, by design of at-least-once.
"""

from __future__ import annotations

import os
import random
import time
from typing import Any

from platformdb import worker

RECORD = os.environ.get("CHAOS_RECORD", os.devnull)
WORK_MS = float(os.environ.get("CHAOS_WORK_MS", "0"))


def _work() -> None:
    if WORK_MS > 0:
        time.sleep(random.uniform(0.5, 1.5) * WORK_MS / 1000)  # noqa: S311 - jitter, not secrecy


def _record(kind: str, item_id: object, attempt: int) -> None:
    fd = os.open(RECORD, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{kind} {item_id} {os.getpid()} {attempt} {time.time():.3f}\n".encode())
    finally:
        os.close(fd)


@worker.queue("chaos")
def handle(message: worker.Message) -> None:
    _work()
    _record("message", message.id, message.attempt)


@worker.job("chaos.job")
def run(job: worker.Job) -> dict[str, Any]:
    _work()
    _record("job", job.id, job.attempt)
    return {"done": True}


def read_records(path: str | os.PathLike[str]) -> list[tuple[str, str, int, int, float]]:
    """(kind, id, pid, attempt, time) per line of a record file."""
    out = []
    try:
        with open(path) as fh:
            for line in fh:
                parts = line.split()
                if len(parts) == 5:
                    out.append((parts[0], parts[1], int(parts[2]), int(parts[3]), float(parts[4])))
    except FileNotFoundError:
        return []
    return out
