"""`platformdb aio-worker`: the queue and job consumer on one asyncio event loop.

Handlers are registered as for the threaded worker (`@worker.queue(name)`, `@worker.job(type)`
of `platformdb.worker`, in the module named by `--app`) and may be `async def`: at most
`--concurrency` of them run at a time, as tasks of one event loop (a plain `def` handler runs
in a thread so that it cannot stall the loop). The guarantees are the threaded worker's:

- a claimed message's lease is extended every lease/3 and a claimed job heartbeats every
  timeout/3 while its handler runs; a handler that returns acks (completes), one that raises
  is retried with backoff until max_attempts, then dead-lettered (`worker.Retry`,
  `worker.Discard` as there);
- SIGTERM/SIGINT: no new claims; running handlers get the grace period to finish; whatever is
  still held then is released for another worker, and the process exits 0;
- SIGKILL: nothing is recorded, the leases expire and the reaper (this process's
  housekeeping, or any other worker's) hands the work out again — at least once, never lost.

Every statement is the SDK's: the consumer calls the `platformdb.aio` twins of
`platformdb.sdk.queue` and `platformdb.sdk.jobs`, which run the synchronous SDK code over the
async connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import signal
import time
import traceback
from collections.abc import Awaitable, Callable
from typing import Annotated, Any
from uuid import UUID

import psycopg
import typer
from psycopg import sql

from platformdb import aio, db
from platformdb import worker as threaded
from platformdb.aio import jobs as jobs_aio
from platformdb.aio import queue as queue_aio
from platformdb.cli_options import DirectUrl, PoolMode, ReplicaUrl
from platformdb.errors import PlatformDBError
from platformdb.sdk import jobs as jobs_sdk
from platformdb.sdk import queue as queue_sdk
from platformdb.sdk.jobs import Job
from platformdb.sdk.queue import Message
from platformdb.worker import Discard, Registry, Retry, WorkerConfig, _Outcome, _Task

log = logging.getLogger("platformdb.aio.worker")

AsyncConnection = psycopg.AsyncConnection[Any]


def _lost(conn: AsyncConnection | None) -> bool:
    return conn is None or conn.closed or conn.broken


async def _wait(event: asyncio.Event, timeout: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), timeout)


class AsyncConsumer:
    """Claims messages and jobs in batches and runs their handlers, `concurrency` at a time.

    One control connection claims, acks, nacks, extends leases and heartbeats; a LISTEN
    connection wakes the loop on NOTIFY (polling every `poll_interval` otherwise). A lost
    connection is re-opened with backoff; outcomes not yet recorded are kept until then.
    """

    def __init__(self, config: WorkerConfig, registry: Registry, queues: list[str], job_types: list[str]):
        self.config = config
        self.url = config.database_url
        self.registry = registry
        self.queues = queues
        self.job_types = job_types
        self.concurrency = max(1, config.concurrency)
        self.batch_size = config.batch_size or max(10, 2 * self.concurrency)
        self.max_held = self.concurrency + self.batch_size
        self.lease = max(1, int(config.lease_seconds))
        self.poll_interval = max(0.05, config.poll_interval)
        self.grace = max(0.0, config.grace_seconds)
        self.worker_id = config.worker_id or f"worker:{os.getpid()}"
        self.held: dict[UUID, _Task] = {}
        self.outcomes: list[_Outcome] = []
        self.running: dict[UUID, asyncio.Task[None]] = {}
        self.slots = asyncio.Semaphore(self.concurrency)
        self.activity = asyncio.Event()
        self.conn: AsyncConnection | None = None
        self._next_extend = 0.0
        self._rotate = 0

    async def run(self, stop: asyncio.Event) -> None:
        listener = asyncio.create_task(self._listen(stop))
        try:
            await self._main(stop)
        finally:
            await self._drain()
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
            if self.conn is not None:
                await self.conn.close()
                self.conn = None

    # -- handlers -------------------------------------------------------------------------
    def _start(self, task: _Task) -> None:
        async def run() -> None:
            async with self.slots:
                task.started = True
                outcome = await self._run_handler(task)
            self.outcomes.append(outcome)
            self.running.pop(task.id, None)
            self.activity.set()

        self.running[task.id] = asyncio.create_task(run(), name=f"{task.kind}-{task.id}")

    async def _run_handler(self, task: _Task) -> _Outcome:
        handler: Any  # QueueHandler or JobHandler, sync or async
        if isinstance(task.item, Message):
            handler = self.registry.queues[task.item.queue_name]
        else:
            handler = self.registry.jobs[task.item.job_type]
        try:
            if inspect.iscoroutinefunction(handler):
                result = await handler(task.item)
            else:
                result = await asyncio.to_thread(handler, task.item)
                if isinstance(result, Awaitable):
                    result = await result
            return _Outcome(task, True, result=None if task.kind == "message" else result)
        except Retry as exc:
            return _Outcome(task, False, error=f"retry: {exc}", retry_in=exc.in_seconds)
        except Discard as exc:
            return _Outcome(task, False, error=f"discarded: {exc}", retryable=False)
        except Exception as exc:
            tb = traceback.format_exc(limit=8)
            return _Outcome(task, False, error=f"{type(exc).__name__}: {exc}\n{tb}"[:4000])

    # -- notifications --------------------------------------------------------------------
    async def _listen(self, stop: asyncio.Event) -> None:
        channels = []
        if self.queues:
            channels.append(queue_sdk.NOTIFY_CHANNEL)
        if self.job_types:
            channels.append(jobs_sdk.NOTIFY_CHANNEL)
        wanted_q, wanted_j = set(self.queues), set(self.job_types)
        try:  # LISTEN only on a session: PLATFORMDB_DIRECT_URL, or the URL when it is no pooler
            listen_url = await asyncio.to_thread(self.config.session_url)
        except (psycopg.Error, PlatformDBError) as exc:
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
                async with await psycopg.AsyncConnection.connect(listen_url, autocommit=True, connect_timeout=5) as lc:
                    for ch in channels:
                        await lc.execute(sql.SQL("listen {}").format(sql.Identifier(ch)))
                    self.activity.set()  # (re)connected: anything missed meanwhile is claimable
                    while not stop.is_set():
                        async for n in lc.notifies(timeout=1.0):
                            if (n.channel == queue_sdk.NOTIFY_CHANNEL and n.payload in wanted_q) or (
                                n.channel == jobs_sdk.NOTIFY_CHANNEL and n.payload in wanted_j
                            ):
                                self.activity.set()
            except psycopg.Error as exc:
                log.debug("listen connection lost: %s", exc)
                await _wait(stop, 1.0)

    # -- the control loop -----------------------------------------------------------------
    async def _connection(self) -> AsyncConnection:
        if _lost(self.conn):
            if self.conn is not None:
                await self.conn.close()
            self.conn = await aio.connect(self.url, autocommit=True, connect_timeout=5)
            log.info("consumer connected")
        assert self.conn is not None
        return self.conn

    def _on_error(self, exc: BaseException) -> None:
        if _lost(self.conn):
            log.warning("database connection lost (%s); reconnecting", str(exc).strip()[:200])
        else:
            log.error("consumer error: %s", exc, exc_info=exc)

    async def _main(self, stop: asyncio.Event) -> None:
        backoff = 0.2
        while not stop.is_set():
            self.activity.clear()
            try:
                conn = await self._connection()
                await self._settle(conn)
                await self._keep_leases(conn)
                more = await self._claim(conn)
                backoff = 0.2
            except (psycopg.Error, PlatformDBError) as exc:
                self._on_error(exc)
                await _wait(stop, backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            if not more:
                waiter = asyncio.ensure_future(self.activity.wait())
                stopper = asyncio.ensure_future(stop.wait())
                await asyncio.wait({waiter, stopper}, timeout=self.poll_interval, return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
                stopper.cancel()

    async def _claim(self, conn: AsyncConnection) -> bool:
        """Claim up to capacity; True when a source had more than we took."""
        more = False
        capacity = self.max_held - len(self.held)
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
                items = await jobs_aio.claim_jobs(conn, self.job_types, n, self.worker_id)
            else:
                items = await queue_aio.claim_messages(conn, src, n, self.lease, self.worker_id)
            for item in items:
                task = _Task("message" if isinstance(item, Message) else "job", item)
                if isinstance(item, Job):
                    task.next_beat = time.monotonic() + max(1.0, item.timeout_seconds / 3)
                self.held[item.id] = task
                self._start(task)
            capacity -= len(items)
            more = more or len(items) == n
        return more

    async def _settle(self, conn: AsyncConnection) -> None:
        """Record finished handlers: acks in one statement, then nacks/completions one by one."""
        pending, self.outcomes = self.outcomes, []
        if not pending:
            return
        try:
            acks = [o for o in pending if o.ok and o.task.kind == "message"]
            if acks:
                done = await queue_aio.ack_messages(conn, [o.task.id for o in acks], self.worker_id)
                if done < len(acks):
                    log.warning("%d of %d acks came too late (lease lost)", len(acks) - done, len(acks))
                for o in acks:
                    self.held.pop(o.task.id, None)
                pending = [o for o in pending if not (o.ok and o.task.kind == "message")]
            while pending:
                o = pending[0]
                try:
                    await self._settle_one(conn, o)
                except PlatformDBError as exc:
                    if exc.sqlstate not in ("PD004", "PD005", "22023"):
                        raise
                    log.warning("%s %s: outcome not recorded: %s", o.task.kind, o.task.id, exc)
                self.held.pop(o.task.id, None)
                pending.pop(0)
        except BaseException:
            self.outcomes[:0] = pending  # recorded after the reconnect
            raise

    async def _settle_one(self, conn: AsyncConnection, o: _Outcome) -> None:
        if o.task.kind == "message":
            await queue_aio.nack_message(
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
                await jobs_aio.complete_job(conn, o.task.id, o.result, self.worker_id)
            except TypeError as exc:  # a result that is not JSON
                await jobs_aio.fail_job(
                    conn, o.task.id, f"result is not JSON serialisable: {exc}", False, self.worker_id
                )
            return
        await jobs_aio.fail_job(conn, o.task.id, o.error or "failed", o.retryable, self.worker_id, o.retry_in)

    async def _keep_leases(self, conn: AsyncConnection) -> None:
        """Extend message leases every lease/3 and heartbeat jobs every timeout/3."""
        now = time.monotonic()
        if now >= self._next_extend:
            ids = [t.id for t in self.held.values() if t.kind == "message"]
            if ids:
                await queue_aio.extend_message_leases(conn, ids, self.lease, self.worker_id)
            self._next_extend = now + max(0.5, self.lease / 3)
        for t in list(self.held.values()):
            if t.kind == "job" and now >= t.next_beat and isinstance(t.item, Job):
                t.next_beat = now + max(1.0, t.item.timeout_seconds / 3)
                try:
                    await jobs_aio.heartbeat_job(conn, t.id, None, self.worker_id)
                except PlatformDBError as exc:
                    if exc.sqlstate != "PD005":
                        raise
                    log.warning("job %s: lease lost: %s", t.id, exc)

    # -- shutdown -------------------------------------------------------------------------
    async def _drain(self) -> None:
        """Stop taking work; finish what runs (within the grace period); release the rest."""
        deadline = time.monotonic() + max(0.0, self.grace - 1.0)
        for t in list(self.held.values()):  # claimed but not started: not run now
            if not t.started and t.id in self.running:
                self.running.pop(t.id).cancel()
        while time.monotonic() < deadline and any(t.started for t in self.held.values() if t.id in self.running):
            self.activity.clear()
            await _wait(self.activity, 0.05)
            await self._try(self._keep_leases)
        await self._try(self._settle)
        finished = {o.task.id for o in self.outcomes}
        leftover = [t for t in self.held.values() if t.id not in finished]
        messages = [t.id for t in leftover if t.kind == "message"]
        job_ids = [t.id for t in leftover if t.kind == "job"]

        async def release(conn: AsyncConnection) -> None:
            if messages:
                await queue_aio.release_messages(conn, messages, self.worker_id)
            if job_ids:
                await jobs_aio.release_jobs(conn, job_ids, self.worker_id)

        if leftover and await self._try(release):
            still = sum(1 for t in leftover if t.id in self.running)
            log.info("released %d claimed item(s) (%d still running)", len(leftover), still)
            for t in leftover:
                self.held.pop(t.id, None)
        for task in list(self.running.values()):  # past the grace period: released, stop them
            task.cancel()
        await asyncio.gather(*self.running.values(), return_exceptions=True)

    async def _try(self, step: Callable[[AsyncConnection], Awaitable[None]], attempts: int = 3) -> bool:
        for _ in range(attempts):
            try:
                await step(await self._connection())
                return True
            except (psycopg.Error, PlatformDBError) as exc:
                self._on_error(exc)
                await asyncio.sleep(0.2)
        return False


class AsyncHousekeeping:
    """The threaded worker's housekeeping on the loop: reaps expired leases, fires recurring
    jobs, purges finished rows past retention (idle when queues and jobs are not installed)."""

    def __init__(self, config: WorkerConfig):
        self.url = config.database_url
        self.recurring_every = float(config.options.get("recurring_interval", 1.0))
        self.reap_every = float(config.options.get("reap_interval", 5.0))
        self.purge_every = float(config.options.get("purge_interval", 600.0))

    async def run(self, stop: asyncio.Event) -> None:
        conn: AsyncConnection | None = None
        due = {"recurring": 0.0, "reap": 0.0, "purge": time.monotonic() + 60.0}
        backoff = 0.5
        try:
            while not stop.is_set():
                try:
                    if _lost(conn):
                        conn = await aio.connect(self.url, autocommit=True, connect_timeout=5)
                        cur = await conn.execute("select to_regprocedure('public.reap_expired_leases()') is not null")
                        present = await cur.fetchone()
                        if not (present and present[0]):
                            log.info("queues and jobs are not installed here; housekeeping idle")
                            return
                    assert conn is not None
                    now = time.monotonic()
                    if now >= due["recurring"]:
                        await jobs_aio.run_due_recurring_jobs(conn)
                        due["recurring"] = now + self.recurring_every
                    if now >= due["reap"]:
                        n = await queue_aio.reap_expired_leases(conn)
                        if n:
                            log.info("reaped %d expired lease(s)", n)
                        due["reap"] = now + self.reap_every
                    if now >= due["purge"]:
                        await queue_aio.purge_finished(conn, max_batches=20)
                        due["purge"] = now + self.purge_every
                    backoff = 0.5
                except (psycopg.Error, PlatformDBError) as exc:
                    log.warning("housekeeping: %s", str(exc).strip()[:200])
                    await _wait(stop, backoff)
                    backoff = min(backoff * 2, 5.0)
                    continue
                await _wait(stop, min(self.recurring_every, self.reap_every))
        finally:
            if conn is not None:
                await conn.close()


def consumer(config: WorkerConfig, registry: Registry | None = None) -> AsyncConsumer | None:
    """The consumer of the handlers registered by `config.app` (None when there are none)."""
    registry = registry or threaded.REGISTRY
    threaded.load_app(config.app)
    queues = config.queues or sorted(registry.queues)
    job_types = config.job_types or sorted(registry.jobs)
    missing = [q for q in queues if q not in registry.queues]
    missing += [f"job:{j}" for j in job_types if j not in registry.jobs]
    if missing:
        raise ValueError(f"no handler registered for {', '.join(missing)} (load it with --app)")
    if not queues and not job_types:
        return None
    return AsyncConsumer(config, registry, queues, job_types)


# SIGTERM/SIGINT that arrived while the process was still starting (before the loop ran)
_SIGNALLED_EARLY: list[int] = []


def _note_early_signal(signum: int, _frame: Any) -> None:
    _SIGNALLED_EARLY.append(signum)


async def run(config: WorkerConfig, stop: asyncio.Event | None = None) -> bool:
    """Consume (and keep house) until `stop` is set or SIGTERM/SIGINT arrives; True when
    everything stopped within the grace period (plus the threaded worker's margin)."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    if _SIGNALLED_EARLY:
        stop.set()
    duties: list[Callable[[asyncio.Event], Awaitable[None]]] = []
    cons = consumer(config)
    if cons is not None:
        duties.append(cons.run)
    if config.housekeeping:
        duties.append(AsyncHousekeeping(config).run)

    async def supervised(duty: Callable[[asyncio.Event], Awaitable[None]]) -> None:
        while not stop.is_set():
            try:
                await duty(stop)
                return
            except Exception:  # a duty crashing must not take the others down
                log.exception("duty crashed; restarting in 1s")
                await _wait(stop, 1.0)

    tasks = [asyncio.create_task(supervised(d)) for d in duties]
    await stop.wait()
    log.info("stopping (grace %.0fs)", config.grace_seconds)
    done, pending = await asyncio.wait(tasks, timeout=config.grace_seconds + threaded.SHUTDOWN_MARGIN_SECONDS)
    for t in pending:
        t.cancel()
    failed = [t for t in done if not t.cancelled() and t.exception() is not None]
    for t in failed:
        log.error("duty failed: %s", t.exception())
    return not pending and not failed


def register(app: typer.Typer) -> None:
    @app.command("aio-worker")
    def aio_worker_cmd(
        database_url: Annotated[str | None, typer.Option("--database-url", envvar="DATABASE_URL")] = None,
        queues: Annotated[str, typer.Option("--queues", help="Comma-separated queue names (default: all).")] = "",
        concurrency: Annotated[int, typer.Option("--concurrency", min=1, max=4096)] = 16,
        grace: Annotated[float, typer.Option("--grace", help="Seconds to drain on SIGTERM.")] = 30.0,
        worker_id: Annotated[str, typer.Option("--worker-id")] = "",
        app_module: Annotated[
            str,
            typer.Option("--app", envvar="PLATFORMDB_WORKER_APP", help="Module registering the handlers."),
        ] = "",
        job_types: Annotated[str, typer.Option("--job-types", help="Comma-separated job types.")] = "",
        batch_size: Annotated[int, typer.Option("--batch-size", min=0, max=1000, help="Claim size (0 = auto).")] = 0,
        lease: Annotated[int, typer.Option("--lease", min=1, max=43200, help="Message lease, seconds.")] = 30,
        poll_interval: Annotated[float, typer.Option("--poll-interval", help="Polling fallback, seconds.")] = 1.0,
        no_housekeeping: Annotated[bool, typer.Option("--no-housekeeping", help="No reaper/recurring jobs.")] = False,
        direct_url: DirectUrl = None,
        replica_url: ReplicaUrl = None,
        pool_mode: PoolMode = None,
    ) -> None:
        """The queue and job consumer on one asyncio event loop (handlers may be async def)."""
        import socket

        for sig in (signal.SIGTERM, signal.SIGINT):  # until the loop takes over: stop once it runs
            signal.signal(sig, _note_early_signal)

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
        )
        try:
            threaded.load_app(config.app)
            if consumer(config) is None and not config.housekeeping:
                err_console.print("no handlers registered and no housekeeping; nothing to do")
                raise typer.Exit(0)
        except (ValueError, ImportError) as exc:
            fail(str(exc))
            return
        err_console.print(f"aio-worker {config.worker_id}: concurrency {config.concurrency}")
        clean = asyncio.run(run(config))
        raise typer.Exit(0 if clean else 1)
