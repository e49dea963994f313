"""`platformdb worker`: one process that runs the platform's background duties.

A duty is a loop with a stop event (the WhatsApp sender, queue and job consumers, the
maintenance schedule when pg_cron is absent, …). Duties come from factories listed in
DUTY_FACTORIES ("module:function"); each factory gets the WorkerConfig and returns a Duty,
or None when it is not configured (e.g. the sender without WhatsApp credentials).

SIGTERM/SIGINT set the stop event; every duty must stop claiming new work and finish or
release what it holds within `grace_seconds`.
"""

from __future__ import annotations

import importlib
import logging
import signal
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

import typer

log = logging.getLogger("platformdb.worker")

DUTY_FACTORIES: list[str] = [
    "platformdb.whatsapp_cloud.sender:make_duty",
]


@dataclass
class WorkerConfig:
    database_url: str
    queues: list[str] = field(default_factory=list)
    job_types: list[str] = field(default_factory=list)
    concurrency: int = 4
    grace_seconds: float = 30.0
    worker_id: str = ""
    options: dict[str, Any] = field(default_factory=dict)


class Duty(ABC):
    """A background loop. `run` returns when `stop` is set (after finishing or releasing)."""

    name: str = "duty"

    @abstractmethod
    def run(self, stop: threading.Event) -> None: ...


def build_duties(config: WorkerConfig, factories: list[str] | None = None) -> list[Duty]:
    duties: list[Duty] = []
    for spec in DUTY_FACTORIES if factories is None else factories:
        module, _, func = spec.partition(":")
        factory: Callable[[WorkerConfig], Duty | None] = getattr(importlib.import_module(module), func)
        duty = factory(config)
        if duty is not None:
            duties.append(duty)
    return duties


class Worker:
    def __init__(self, config: WorkerConfig, duties: list[Duty]):
        self.config = config
        self.duties = duties
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []
        self.errors: list[BaseException] = []

    def _run_duty(self, duty: Duty) -> None:
        while not self.stop.is_set():
            try:
                duty.run(self.stop)
                return
            except Exception as exc:  # a duty crashing must not take the others down
                log.exception("duty %s crashed; restarting in 1s", duty.name)
                self.errors.append(exc)
                self.stop.wait(1.0)

    def start(self) -> None:
        for duty in self.duties:
            t = threading.Thread(target=self._run_duty, args=(duty,), name=duty.name, daemon=True)
            t.start()
            self.threads.append(t)

    def shutdown(self) -> bool:
        """Stop every duty; True when all stopped within the grace period."""
        self.stop.set()
        deadline = time.monotonic() + self.config.grace_seconds
        for t in self.threads:
            t.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in self.threads)

    def run_forever(self) -> bool:
        def on_signal(signum: int, _frame: Any) -> None:
            log.info("signal %s: stopping (grace %.0fs)", signum, self.config.grace_seconds)
            self.stop.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        self.start()
        while not self.stop.is_set():
            self.stop.wait(0.5)
        return self.shutdown()


def register(app: typer.Typer) -> None:
    @app.command("worker")
    def worker_cmd(
        database_url: Annotated[
            str | None, typer.Option("--database-url", envvar="DATABASE_URL")
        ] = None,
        queues: Annotated[
            str, typer.Option("--queues", help="Comma-separated queue names (default: all).")
        ] = "",
        concurrency: Annotated[int, typer.Option("--concurrency", min=1, max=256)] = 4,
        grace: Annotated[float, typer.Option("--grace", help="Seconds to drain on SIGTERM.")] = 30.0,
        worker_id: Annotated[str, typer.Option("--worker-id")] = "",
    ) -> None:
        """Run the background duties (WhatsApp sender, queues, jobs, maintenance) until SIGTERM."""
        import os
        import socket

        from platformdb.cli import err_console, url_of

        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
        config = WorkerConfig(
            database_url=url_of(database_url),
            queues=[q for q in queues.split(",") if q],
            concurrency=concurrency,
            grace_seconds=grace,
            worker_id=worker_id or f"{socket.gethostname()}:{os.getpid()}",
        )
        duties = build_duties(config)
        if not duties:
            err_console.print("no duties configured; nothing to do")
            raise typer.Exit(0)
        err_console.print(f"worker {config.worker_id}: " + ", ".join(d.name for d in duties))
        clean = Worker(config, duties).run_forever()
        raise typer.Exit(0 if clean else 1)
