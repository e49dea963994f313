"""No-op handlers for bench/queue_bench.py (loaded by `platformdb worker --app bench.queue_noop_app`)."""

from __future__ import annotations

import time

from platformdb import worker


@worker.queue("bench")
def noop(message: worker.Message) -> None:
    return None


@worker.queue("bench-kill")
def stuck_first_time(message: worker.Message) -> None:
    """The first attempt hangs (its worker is then killed); the retry is instant."""
    if message.attempt == 1:
        time.sleep(600)
