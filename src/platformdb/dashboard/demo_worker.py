"""Handlers for the demo's queues and jobs, so that `make demo` runs a worker with work to do:
`platformdb worker --app platformdb.dashboard.demo_worker`.

They pretend to call a provider: a few milliseconds of work, now and then a failure that
the worker retries with backoff (and, past max_attempts, keeps as a dead letter).
"""

from __future__ import annotations

import random
import time

from platformdb import worker

_rng = random.Random()


def _work(fail_rate: float) -> None:
    time.sleep(_rng.uniform(0.005, 0.05))
    if _rng.random() < fail_rate:
        raise RuntimeError("HTTP 503 from provider")


@worker.queue("notifications")
def notification(message: worker.Message) -> None:
    _work(0.03)


@worker.queue("ride-matching")
def ride_matching(message: worker.Message) -> None:
    _work(0.02)


@worker.queue("payouts")
def payout(message: worker.Message) -> None:
    _work(0.08)


@worker.job("reports.daily")
def daily_report(job: worker.Job) -> dict[str, int]:
    _work(0.0)
    return {"rows": _rng.randint(10, 5000)}


@worker.job("payouts.settle")
def settle(job: worker.Job) -> dict[str, int]:
    _work(0.1)
    return {"settled": _rng.randint(1, 40)}


@worker.job("geo.refresh_routes")
def refresh_routes(job: worker.Job) -> None:
    _work(0.05)


@worker.job("cache.cleanup")
def cache_cleanup(job: worker.Job) -> None:
    _work(0.0)
