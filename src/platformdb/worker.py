"""`platformdb worker`: one process that runs the platform's background duties.

A duty is a loop with a stop event (the WhatsApp sender, queue and job consumers, the
maintenance schedule when pg_cron is absent, …). Duties come from factories listed in
DUTY_FACTORIES ("module:function"); each factory gets the WorkerConfig and returns a Duty,
or None when it is not configured (e.g. the sender without WhatsApp credentials).

SIGTERM/SIGINT set the stop event; every duty must stop claiming new work and finish or
release what it holds within `grace_seconds`.

Queue and job handlers are plain functions registered by decorator in an application
module, loaded with `--app module` (or PLATFORMDB_WORKER_APP)::

    from platformdb import worker

    @worker.queue("notifications")
    def notify(message: worker.Message) -> None: ...

    @worker.job("reports.build")
    def build(job: worker.Job) -> dict | None: ...   # the return value is the job's result

A handler that returns has succeeded (the message is acked, the job completed); one that
raises has failed (retried with backoff until max_attempts, then a dead letter);
`worker.Retry(in_seconds=…)` picks the delay, `worker.Discard(...)` skips the retries.
Delivery is at least once: a handler must tolerate running twice for one message (a worker
killed mid-batch leaves its claims to expire and be handed out again).
"""

from __future__ import annotations

import importlib
import logging
import os
import queue as queue_mod
import signal
import sys
import threading
import time
import traceback
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar
from uuid import UUID

import psycopg
import typer
from psycopg import sql

from platformdb import db
from platformdb.cli_options import DirectUrl, PoolMode, ReplicaUrl
from platformdb.errors import PlatformDBError
from platformdb.sdk import jobs as jobs_sdk
from platformdb.sdk import queue as queue_sdk
from platformdb.sdk.jobs import Job
from platformdb.sdk.queue import Message

log = logging.getLogger("platformdb.worker")

# after the grace period, duties still release held work and close their connections
SHUTDOWN_MARGIN_SECONDS = 10.0

DUTY_FACTORIES: list[str] = [
    "platformdb.whatsapp_cloud.sender:make_duty",
    "platformdb.worker:consumer_duty",
    "platformdb.worker:housekeeping_duty",
    "platformdb.maintain:maintenance_duty",
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
    # queues and jobs (platformdb.worker:consumer_duty / housekeeping_duty)
    app: str = ""  # module registering handlers; default $PLATFORMDB_WORKER_APP
    batch_size: int = 0  # messages/jobs per claim; 0 = max(10, 2 × concurrency)
    lease_seconds: int = 30  # message lease; kept alive while a handler runs
    poll_interval: float = 1.0  # fallback when no NOTIFY arrives
    housekeeping: bool = True  # reaper, recurring jobs, retention
    # a session URL for LISTEN and maintenance (PLATFORMDB_DIRECT_URL); None: database_url
    # when that is no transaction pooler, else the duties poll (see db.direct_url_for)
    direct_url: str | None = None

    def session_url(self) -> str | None:
        """Where LISTEN and session-bound work go; None when only a transaction pooler is known."""
        return db.direct_url_for(self.database_url, self.direct_url)

    def connect(self, **kwargs: Any) -> psycopg.Connection[Any]:
        """A connection to database_url (no server-side prepared statements on a pooler)."""
        kwargs.setdefault("autocommit", True)
        kwargs.setdefault("connect_timeout", 5)
        for k, v in db.connect_kwargs(self.database_url).items():
            kwargs.setdefault(k, v)
        return psycopg.connect(self.database_url, **kwargs)
    # acks-with-claims wait for the WAL flush (durable, the default); off (--async-acks): a
    # database crash may forget the last few hundred ms of acks, and those messages are
    # delivered again (at least once either way)
    synchronous_acks: bool = True


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
        """Stop every duty; True when all stopped within the grace period (plus a margin for
        releasing what was still held and closing connections, which takes a moment on a busy
        machine)."""
        self.stop.set()
        deadline = time.monotonic() + self.config.grace_seconds + SHUTDOWN_MARGIN_SECONDS
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


# ---- handler registration -----------------------------------------------------------

QueueHandler = Callable[[Message], Any]
JobHandler = Callable[[Job], Any]
F = TypeVar("F", bound=Callable[..., Any])


class Retry(Exception):  # noqa: N818 - reads as an instruction: raise Retry(in_seconds=60)
    """Raised by a handler: fail this attempt and retry after `in_seconds` (default backoff)."""

    def __init__(self, reason: str = "retry requested", in_seconds: int | None = None):
        super().__init__(reason)
        self.in_seconds = in_seconds


class Discard(Exception):  # noqa: N818
    """Raised by a handler: fail without retrying (straight to dead letter, kept there)."""


class Registry:
    """Handlers by queue name and by job type."""

    def __init__(self) -> None:
        self.queues: dict[str, QueueHandler] = {}
        self.jobs: dict[str, JobHandler] = {}

    def queue(self, name: str) -> Callable[[F], F]:
        def register(fn: F) -> F:
            if name in self.queues and self.queues[name] is not fn:
                raise ValueError(f"queue {name!r} already has a handler")
            self.queues[name] = fn
            return fn

        return register

    def job(self, job_type: str) -> Callable[[F], F]:
        def register(fn: F) -> F:
            if job_type in self.jobs and self.jobs[job_type] is not fn:
                raise ValueError(f"job type {job_type!r} already has a handler")
            self.jobs[job_type] = fn
            return fn

        return register


REGISTRY = Registry()


def queue(name: str) -> Callable[[F], F]:
    """Decorator: the function handles every message of queue `name`."""
    return REGISTRY.queue(name)


def job(job_type: str) -> Callable[[F], F]:
    """Decorator: the function runs every job of type `job_type`; it returns the result."""
    return REGISTRY.job(job_type)


def load_app(app: str | None = None) -> str | None:
    """Import the module that registers handlers (`--app` or PLATFORMDB_WORKER_APP).

    As with other task runners, the current directory is importable for this.
    """
    name = app or os.environ.get("PLATFORMDB_WORKER_APP") or ""
    if not name:
        return None
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    importlib.import_module(name)
    return name


# ---- the queue and job consumer -----------------------------------------------------


@dataclass
class _Task:
    kind: str  # "message" or "job"
    item: Message | Job
    started: bool = False
    next_beat: float = 0.0

    @property
    def id(self) -> UUID:
        return self.item.id


@dataclass
class _Outcome:
    task: _Task
    ok: bool
    result: Any = None
    error: str = ""
    retry_in: int | None = None
    retryable: bool = True


def _connection_lost(conn: psycopg.Connection[Any] | None) -> bool:
    return conn is None or conn.closed or conn.broken


# the longest a finished handler's outcome waits for the control loop (acks are batched)
SETTLE_DELAY = 0.05


class Consumer(Duty):
    """Claims messages and jobs in batches and runs their handlers on `concurrency` threads.

    One control connection (this duty's thread) claims, acks, nacks, extends leases and
    heartbeats; handler threads never touch it. A LISTEN connection wakes the loop on
    NOTIFY; without one, it polls every `poll_interval`. Lost connections (a database
    restart) are re-opened with backoff; outcomes not yet recorded are kept and recorded
    after the reconnect, so nothing is lost (at worst a lease expires and the work is done
    twice).
    """

    name = "queues-and-jobs"

    def __init__(self, config: WorkerConfig, registry: Registry, queues: list[str], job_types: list[str]):
        self.config = config
        self.url = config.database_url
        self.registry = registry
        self.queues = queues
        self.job_types = job_types
        self.concurrency = max(1, config.concurrency)
        self.batch_size = config.batch_size or max(10, 2 * self.concurrency)
        self.max_held = self.concurrency + self.batch_size
        # finished handlers wake the control loop when half a claim's worth of outcomes waits
        # (or a handler failed, or no work is left to start): acks and claims then go in
        # batches instead of one round trip per item, and the next claim arrives while the
        # other half still runs. Outcomes never wait longer than SETTLE_DELAY (see _main).
        self.settle_every = max(1, self.batch_size // 2)
        self.synchronous_acks = config.synchronous_acks
        self.lease = max(1, int(config.lease_seconds))
        self.poll_interval = max(0.05, config.poll_interval)
        self.grace = max(0.0, config.grace_seconds)
        self.worker_id = config.worker_id or f"worker:{os.getpid()}"
        self.work: queue_mod.Queue[_Task] = queue_mod.Queue()
        self.held: dict[UUID, _Task] = {}
        self.outcomes: list[_Outcome] = []
        self.lock = threading.Lock()
        self.activity = threading.Event()
        self.draining = threading.Event()
        self.conn: psycopg.Connection[Any] | None = None
        self._next_extend = 0.0
        self._rotate = 0

    # -- threads ------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        self.draining.clear()
        handlers = [
            threading.Thread(target=self._handler_loop, name=f"handler-{i}", daemon=True)
            for i in range(self.concurrency)
        ]
        listener = threading.Thread(target=self._listen, args=(stop,), name="listen", daemon=True)
        for t in handlers:
            t.start()
        listener.start()
        try:
            self._main(stop)
        finally:
            self._drain()
            if self.conn is not None:
                self.conn.close()
                self.conn = None

    def _handler_loop(self) -> None:
        while not self.draining.is_set():
            try:
                task = self.work.get(timeout=0.2)
            except queue_mod.Empty:
                continue
            if self.draining.is_set():
                self.work.put(task)  # not started: the drain releases it
                return
            task.started = True
            outcome = self._run_handler(task)
            with self.lock:
                self.outcomes.append(outcome)
                waiting = len(self.outcomes)
            if waiting >= self.settle_every or not outcome.ok or self.work.empty():
                self.activity.set()

    def _run_handler(self, task: _Task) -> _Outcome:
        try:
            if isinstance(task.item, Message):
                self.registry.queues[task.item.queue_name](task.item)
                return _Outcome(task, True)
            result = self.registry.jobs[task.item.job_type](task.item)
            return _Outcome(task, True, result=result)
        except Retry as exc:
            return _Outcome(task, False, error=f"retry: {exc}", retry_in=exc.in_seconds)
        except Discard as exc:
            return _Outcome(task, False, error=f"discarded: {exc}", retryable=False)
        except Exception as exc:
            tb = traceback.format_exc(limit=8)
            return _Outcome(task, False, error=f"{type(exc).__name__}: {exc}\n{tb}"[:4000])

    def _listen(self, stop: threading.Event) -> None:
        channels = []
        if self.queues:
            channels.append(queue_sdk.NOTIFY_CHANNEL)
        if self.job_types:
            channels.append(jobs_sdk.NOTIFY_CHANNEL)
        wanted_q, wanted_j = set(self.queues), set(self.job_types)
        try:
            listen_url = self.config.session_url()
        except (psycopg.Error, PlatformDBError) as exc:  # detection failed: the loop reconnects
            log.warning("could not tell whether the database URL is a pooler (%s); polling", exc)
            listen_url = None
        if listen_url is None:
            log.info(
                "no session connection for LISTEN (the database URL is a transaction pooler and"
                " %s is not set): polling every %.2fs",
                db.DIRECT_URL_ENV,
                self.poll_interval,
            )
            return
        while not stop.is_set():
            try:
                with psycopg.connect(listen_url, autocommit=True, connect_timeout=5) as lc:
                    for ch in channels:
                        lc.execute(sql.SQL("listen {}").format(sql.Identifier(ch)))
                    self.activity.set()  # (re)connected: anything missed meanwhile is claimable
                    while not stop.is_set():
                        for n in lc.notifies(timeout=1.0):
                            if (n.channel == queue_sdk.NOTIFY_CHANNEL and n.payload in wanted_q) or (
                                n.channel == jobs_sdk.NOTIFY_CHANNEL and n.payload in wanted_j
                            ):
                                self.activity.set()
            except psycopg.Error as exc:
                log.debug("listen connection lost: %s", exc)
                stop.wait(1.0)

    # -- the control loop ---------------------------------------------------------------
    def _connection(self) -> psycopg.Connection[Any]:
        if _connection_lost(self.conn):
            if self.conn is not None:
                self.conn.close()
            self.conn = self.config.connect()
            log.info("consumer connected")
        assert self.conn is not None
        return self.conn

    def _on_error(self, exc: BaseException) -> None:
        if _connection_lost(self.conn):
            log.warning("database connection lost (%s); reconnecting", str(exc).strip()[:200])
        else:
            log.error("consumer error: %s", exc, exc_info=exc)

    def _main(self, stop: threading.Event) -> None:
        backoff = 0.2
        while not stop.is_set():
            self.activity.clear()
            acks: list[_Outcome] = []
            try:
                conn = self._connection()
                acks = self._take_acks()
                self._settle(conn)
                self._keep_leases(conn)
                more = self._claim(conn, acks)
                backoff = 0.2
            except (psycopg.Error, PlatformDBError) as exc:
                if acks:
                    with self.lock:
                        self.outcomes[:0] = acks  # recorded after the reconnect
                self._on_error(exc)
                stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            if not more:
                with self.lock:
                    pending = bool(self.outcomes)
                self.activity.wait(SETTLE_DELAY if pending else self.poll_interval)

    def _take_acks(self) -> list[_Outcome]:
        """The finished messages to ack (they go with the next claim, see _claim)."""
        with self.lock:
            acks = [o for o in self.outcomes if o.ok and o.task.kind == "message"]
            if acks:
                self.outcomes = [o for o in self.outcomes if not (o.ok and o.task.kind == "message")]
        return acks

    def _record_acks(self, acks: list[_Outcome], done: int) -> None:
        if done < len(acks):
            log.warning("%d of %d acks came too late (lease lost)", len(acks) - done, len(acks))
        for o in acks:
            self.held.pop(o.task.id, None)
        acks.clear()

    def _claim(self, conn: psycopg.Connection[Any], acks: list[_Outcome] | None = None) -> bool:
        """Ack `acks` and claim up to capacity; True when a source had more than we took.

        The acks travel with the first message claim (one statement: one round trip and one
        commit for both); without one they are acked on their own. `acks` is emptied once
        recorded, so the caller can put back what is left when a statement fails.
        """
        acks = acks if acks is not None else []
        more = False
        capacity = self.max_held - len(self.held) + len(acks)
        sources: list[str | None] = list(self.queues)
        if self.job_types:
            sources.append(None)  # None = jobs
        if not sources:
            return False
        self._rotate = (self._rotate + 1) % len(sources)
        for src in sources[self._rotate :] + sources[: self._rotate]:
            if capacity <= 0:
                break
            n = min(self.batch_size, capacity)
            items: list[Message] | list[Job]
            if src is None:
                items = jobs_sdk.claim_jobs(conn, self.job_types, n, self.worker_id)
            elif acks:
                done, items = queue_sdk.ack_and_claim_messages(
                    conn, [o.task.id for o in acks], src, n, self.lease, self.worker_id, self.synchronous_acks
                )
                self._record_acks(acks, done)
            else:
                items = queue_sdk.claim_messages(conn, src, n, self.lease, self.worker_id)
            for item in items:
                task = _Task("message" if isinstance(item, Message) else "job", item)
                if isinstance(item, Job):
                    task.next_beat = time.monotonic() + max(1.0, item.timeout_seconds / 3)
                self.held[item.id] = task
                self.work.put(task)
            capacity -= len(items)
            more = more or len(items) == n
        if acks:
            self._record_acks(acks, queue_sdk.ack_messages(conn, [o.task.id for o in acks], self.worker_id))
        return more

    def _settle(self, conn: psycopg.Connection[Any]) -> None:
        """Record finished handlers: acks in one statement, then nacks/completions one by one."""
        with self.lock:
            pending, self.outcomes = self.outcomes, []
        if not pending:
            return
        try:
            acks = [o for o in pending if o.ok and o.task.kind == "message"]
            if acks:
                done = queue_sdk.ack_messages(conn, [o.task.id for o in acks], self.worker_id)
                if done < len(acks):
                    log.warning("%d of %d acks came too late (lease lost)", len(acks) - done, len(acks))
                for o in acks:
                    self.held.pop(o.task.id, None)
                pending = [o for o in pending if not (o.ok and o.task.kind == "message")]
            while pending:
                o = pending[0]
                try:
                    self._settle_one(conn, o)
                except PlatformDBError as exc:
                    if exc.sqlstate not in ("PD004", "PD005", "22023"):
                        raise
                    log.warning("%s %s: outcome not recorded: %s", o.task.kind, o.task.id, exc)
                self.held.pop(o.task.id, None)
                pending.pop(0)
        except BaseException:
            with self.lock:
                self.outcomes[:0] = pending  # recorded after the reconnect
            raise

    def _settle_one(self, conn: psycopg.Connection[Any], o: _Outcome) -> None:
        if o.task.kind == "message":
            queue_sdk.nack_message(
                conn,
                o.task.id,
                o.error or "failed",
                retry_in_seconds=o.retry_in,
                worker_id=self.worker_id,
                retryable=o.retryable,
            )
            return
        if o.ok:
            try:
                jobs_sdk.complete_job(conn, o.task.id, o.result, self.worker_id)
            except TypeError as exc:  # a result that is not JSON
                jobs_sdk.fail_job(conn, o.task.id, f"result is not JSON serialisable: {exc}", False, self.worker_id)
            return
        jobs_sdk.fail_job(conn, o.task.id, o.error or "failed", o.retryable, self.worker_id, o.retry_in)

    def _keep_leases(self, conn: psycopg.Connection[Any]) -> None:
        """Extend message leases every lease/3 and heartbeat jobs every timeout/3."""
        now = time.monotonic()
        if now >= self._next_extend:
            ids = [t.id for t in self.held.values() if t.kind == "message"]
            if ids:
                queue_sdk.extend_message_leases(conn, ids, self.lease, self.worker_id)
            self._next_extend = now + max(0.5, self.lease / 3)
        for t in list(self.held.values()):
            if t.kind == "job" and now >= t.next_beat and isinstance(t.item, Job):
                t.next_beat = now + max(1.0, t.item.timeout_seconds / 3)
                try:
                    jobs_sdk.heartbeat_job(conn, t.id, None, self.worker_id)
                except PlatformDBError as exc:
                    if exc.sqlstate != "PD005":
                        raise
                    log.warning("job %s: lease lost: %s", t.id, exc)

    # -- shutdown -----------------------------------------------------------------------
    def _drain(self) -> None:
        """Stop taking work; finish what runs (within the grace period); release the rest."""
        deadline = time.monotonic() + max(0.0, self.grace - 1.0)
        self.draining.set()
        while True:
            try:
                self.work.get_nowait()
            except queue_mod.Empty:
                break
        while time.monotonic() < deadline:
            waiting = [t for t in self.held.values() if t.started]
            with self.lock:
                finished = {o.task.id for o in self.outcomes}
            if all(t.id in finished for t in waiting):
                break
            self.activity.wait(0.05)
            self.activity.clear()
            self._try(self._keep_leases)
        self._try(self._settle)
        with self.lock:
            finished = {o.task.id for o in self.outcomes}
        leftover = [t for t in self.held.values() if t.id not in finished]
        messages = [t.id for t in leftover if t.kind == "message"]
        job_ids = [t.id for t in leftover if t.kind == "job"]

        def release(conn: psycopg.Connection[Any]) -> None:
            if messages:
                queue_sdk.release_messages(conn, messages, self.worker_id)
            if job_ids:
                jobs_sdk.release_jobs(conn, job_ids, self.worker_id)

        if leftover and self._try(release):
            still = sum(1 for t in leftover if t.started)
            log.info("released %d claimed item(s) (%d still running)", len(leftover), still)
            for t in leftover:
                self.held.pop(t.id, None)

    def _try(self, step: Callable[[psycopg.Connection[Any]], None], attempts: int = 3) -> bool:
        for _ in range(attempts):
            try:
                step(self._connection())
                return True
            except (psycopg.Error, PlatformDBError) as exc:
                self._on_error(exc)
                time.sleep(0.2)
        return False


class Housekeeping(Duty):
    """Reaps expired leases, fires recurring jobs and purges finished rows past retention.

    Safe with many workers: reaping skips locked rows, each recurring slot becomes one job,
    purging deletes in batches. Idle when the event/queue migration is not applied.
    """

    name = "queue-housekeeping"

    def __init__(self, config: WorkerConfig):
        self.config = config
        self.url = config.database_url
        self.recurring_every = float(config.options.get("recurring_interval", 1.0))
        self.reap_every = float(config.options.get("reap_interval", 5.0))
        self.purge_every = float(config.options.get("purge_interval", 600.0))

    def run(self, stop: threading.Event) -> None:
        conn: psycopg.Connection[Any] | None = None
        due = {"recurring": 0.0, "reap": 0.0, "purge": time.monotonic() + 60.0}
        backoff = 0.5
        try:
            while not stop.is_set():
                try:
                    if _connection_lost(conn):
                        conn = self.config.connect()
                        present = conn.execute(
                            "select to_regprocedure('public.reap_expired_leases()') is not null"
                        ).fetchone()
                        if not (present and present[0]):
                            log.info("queues and jobs are not installed here; housekeeping idle")
                            return
                    assert conn is not None
                    now = time.monotonic()
                    if now >= due["recurring"]:
                        jobs_sdk.run_due_recurring_jobs(conn)
                        due["recurring"] = now + self.recurring_every
                    if now >= due["reap"]:
                        n = queue_sdk.reap_expired_leases(conn)
                        if n:
                            log.info("reaped %d expired lease(s)", n)
                        due["reap"] = now + self.reap_every
                    if now >= due["purge"]:
                        queue_sdk.purge_finished(conn, max_batches=20)
                        due["purge"] = now + self.purge_every
                    backoff = 0.5
                except (psycopg.Error, PlatformDBError) as exc:
                    if _connection_lost(conn):
                        log.warning("housekeeping: connection lost (%s)", str(exc).strip()[:200])
                    else:
                        log.error("housekeeping: %s", exc)
                    stop.wait(backoff)
                    backoff = min(backoff * 2, 5.0)
                    continue
                stop.wait(min(self.recurring_every, self.reap_every))
        finally:
            if conn is not None:
                conn.close()


def consumer_duty(config: WorkerConfig) -> Duty | None:
    """Factory: the queue/job consumer when handlers are registered (--app)."""
    load_app(config.app)
    queues = config.queues or sorted(REGISTRY.queues)
    job_types = config.job_types or sorted(REGISTRY.jobs)
    missing = [q for q in queues if q not in REGISTRY.queues]
    missing += [f"job:{j}" for j in job_types if j not in REGISTRY.jobs]
    if missing:
        raise ValueError(f"no handler registered for {', '.join(missing)} (load it with --app)")
    if not queues and not job_types:
        return None
    return Consumer(config, REGISTRY, queues, job_types)


def housekeeping_duty(config: WorkerConfig) -> Duty | None:
    """Factory: the reaper / recurring jobs / retention loop (off with --no-housekeeping)."""
    return Housekeeping(config) if config.housekeeping else None


def register(app: typer.Typer) -> None:
    @app.command("worker")
    def worker_cmd(
        database_url: Annotated[str | None, typer.Option("--database-url", envvar="DATABASE_URL")] = None,
        direct_url: DirectUrl = None,
        replica_url: ReplicaUrl = None,
        pool_mode: PoolMode = None,
        queues: Annotated[str, typer.Option("--queues", help="Comma-separated queue names (default: all).")] = "",
        concurrency: Annotated[int, typer.Option("--concurrency", min=1, max=256)] = 4,
        grace: Annotated[float, typer.Option("--grace", help="Seconds to drain on SIGTERM.")] = 30.0,
        worker_id: Annotated[str, typer.Option("--worker-id")] = "",
        app_module: Annotated[
            str,
            typer.Option(
                "--app",
                envvar="PLATFORMDB_WORKER_APP",
                help="Module that registers @worker.queue/@worker.job handlers.",
            ),
        ] = "",
        job_types: Annotated[
            str, typer.Option("--job-types", help="Comma-separated job types (default: all registered).")
        ] = "",
        batch_size: Annotated[int, typer.Option("--batch-size", min=0, max=1000, help="Claim size (0 = auto).")] = 0,
        lease: Annotated[int, typer.Option("--lease", min=1, max=43200, help="Message lease, seconds.")] = 30,
        poll_interval: Annotated[float, typer.Option("--poll-interval", help="Polling fallback, seconds.")] = 1.0,
        no_housekeeping: Annotated[
            bool, typer.Option("--no-housekeeping", help="No reaper, recurring jobs or retention here.")
        ] = False,
        async_acks: Annotated[
            bool,
            typer.Option(
                "--async-acks",
                help="Acks sent with the next claim do not wait for the WAL flush (faster on a slow"
                " disk; a database crash or failover may then deliver those messages again).",
            ),
        ] = False,
    ) -> None:
        """Run the background duties (WhatsApp sender, queues, jobs, maintenance) until SIGTERM."""
        import socket

        from platformdb.cli import err_console, fail, url_of

        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
        config = WorkerConfig(
            database_url=url_of(database_url, direct_url, replica_url, pool_mode),
            queues=[q for q in queues.split(",") if q],
            job_types=[j for j in job_types.split(",") if j],
            concurrency=concurrency,
            grace_seconds=grace,
            worker_id=worker_id or f"{socket.gethostname()}:{os.getpid()}",
            app=app_module,
            batch_size=batch_size,
            lease_seconds=lease,
            poll_interval=poll_interval,
            housekeeping=not no_housekeeping,
            direct_url=direct_url,
            synchronous_acks=not async_acks,
        )
        try:
            duties = build_duties(config)
        except (ValueError, ImportError) as exc:
            fail(str(exc))
            return
        if not duties:
            err_console.print("no duties configured; nothing to do")
            raise typer.Exit(0)
        err_console.print(f"worker {config.worker_id}: " + ", ".join(d.name for d in duties))
        clean = Worker(config, duties).run_forever()
        raise typer.Exit(0 if clean else 1)
