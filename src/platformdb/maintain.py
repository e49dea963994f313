"""`platformdb maintain` and `platformdb schedule`: partitions ahead, archival, cleanups (SPEC §4).

The work lives in SQL (migration 20260401160000_maintenance) so that pg_cron can run it:
`run_maintenance_task(p_task, p_now, …)` runs one task under its advisory lock and records
it (maintenance_runs, maintenance_tasks, an audit event, a metric); `partition_coverage()`
reports how far ahead each partitioned table is covered. This module is the thin Python side:

- `run_tasks` runs tasks one transaction each (a failure leaves the others done) and repeats
  the purge while it reports more finished rows to delete;
- `status` reads coverage and each task's last result, and says what is wrong;
- `schedule` / `unschedule` register the jobs of `maintenance_schedule` with pg_cron
  (idempotent by job name), in this database or, when pg_cron lives in another database of
  the cluster (`cron.database_name`), through `cron.schedule_in_database`;
- `MaintenanceDuty` is the worker's fallback when pg_cron does not run the schedule: it runs
  each job once per cron slot, whichever of several workers gets there first.

Maintenance changes partitions (DDL), so it connects as the tables' owner (the role that ran
the migrations), as pg_cron jobs scheduled by that role do.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any

import psycopg
import typer
from croniter import CroniterError, croniter
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import dict_row

from platformdb import db
from platformdb.cli_options import DirectUrl, PoolMode, ReplicaUrl
from platformdb.errors import PermissionDenied, PlatformDBError, wrap_errors
from platformdb.worker import Duty, WorkerConfig

log = logging.getLogger("platformdb.maintain")

TASKS = ("partitions", "archive", "cache", "sessions", "purge", "reaper", "drop_archived")
MIN_MONTHS_AHEAD = 3
CRON_PREFIX = "platformdb-maintain-"

RUN_TASK = """
select public.run_maintenance_task(
    p_task => %(task)s, p_now => coalesce(%(now)s, now()), p_source => %(source)s,
    p_wait => %(wait)s, p_not_run_since => %(not_run_since)s,
    p_older_than => %(older_than)s::interval)
"""
TASK_ORDER = "select task from public.maintenance_tasks where task <> 'drop_archived' order by run_order"
INSTALLED = """
select to_regprocedure(
    'public.run_maintenance_task(text, timestamptz, text, boolean, timestamptz, interval, integer)') is not null
"""
COVERAGE = """
select table_name, months_ahead_target, months_covered_ahead, covered_until, default_rows,
       attached_partitions, oldest_partition, oldest_partition_from, retention::text as retention,
       archived_partitions
  from public.partition_coverage(coalesce(%s, now()))
 order by table_name
"""
TASK_STATUS = """
select task, last_status, last_source, last_started_at, last_finished_at, last_as_of,
       last_affected, last_details, last_error, run_count, failure_count
  from public.maintenance_tasks
 order by run_order
"""
SCHEDULE = """
select job_name, tasks, cron_expression, description
  from public.maintenance_schedule
 where enabled
 order by job_name
"""
LAST_STARTED = "select task, last_started_at from public.maintenance_tasks"
CRON_SETTINGS = """
select current_database(),
       exists (select 1 from pg_extension where extname = 'pg_cron'),
       current_setting('shared_preload_libraries'),
       current_setting('cron.database_name', true)
"""
CRON_AVAILABLE = "select exists (select 1 from pg_available_extensions where name = 'pg_cron')"
CRON_JOBS = """
select jobid, jobname, schedule, command, database, active
  from cron.job
 where database = %s and jobname like 'platformdb-maintain-%%'
 order by jobname
"""
CRON_SCHEDULE_LOCAL = "select cron.schedule(%s, %s, %s)"
CRON_SCHEDULE_IN_DATABASE = "select cron.schedule_in_database(%s, %s, %s, %s)"
CRON_UNSCHEDULE = "select cron.unschedule(%s::bigint)"
CRON_COMMAND = "select public.run_maintenance(p_tasks => {}::text[], p_source => 'pg_cron')"
PG_CRON_HANDLES = """
select exists (select 1 from cron.job
                where database = current_database() and active
                  and jobname like 'platformdb-maintain-%%')
"""


class MaintenanceError(PlatformDBError):
    """Maintenance cannot run here (not installed, pg_cron unavailable, …)."""


# ---- running tasks ------------------------------------------------------------------


def _installed(conn: psycopg.Connection[Any]) -> bool:
    row = conn.execute(INSTALLED).fetchone()
    return bool(row and row[0])


def _require_installed(conn: psycopg.Connection[Any]) -> None:
    if not _installed(conn):
        raise MaintenanceError(
            "maintenance is not installed in this database: apply migration"
            " 20260401160000_maintenance (`platformdb migrate up`)"
        )


def run_task(
    conn: psycopg.Connection[Any],
    task: str,
    *,
    now: datetime | None = None,
    source: str = "cli",
    wait: bool = True,
    not_run_since: datetime | None = None,
    older_than: str | None = None,
) -> dict[str, Any]:
    """One run of one task in its own transaction; returns run_maintenance_task's summary."""
    params = {
        "task": task,
        "now": now,
        "source": source,
        "wait": wait,
        "not_run_since": not_run_since,
        "older_than": older_than,
    }
    with wrap_errors(), conn.transaction():
        row = conn.execute(RUN_TASK, params).fetchone()
    assert row is not None
    result: dict[str, Any] = row[0]
    return result


def run_tasks(
    conn: psycopg.Connection[Any],
    tasks: list[str] | None = None,
    *,
    now: datetime | None = None,
    source: str = "cli",
    wait: bool = True,
    not_run_since: datetime | None = None,
    drop_archived_older_than: str | None = None,
    max_purge_rounds: int = 50,
) -> list[dict[str, Any]]:
    """Run tasks in their fixed order, one transaction each (None = every scheduled task).

    A failed task is recorded and the others still run. The purge runs again (up to
    `max_purge_rounds`) while it reports more finished rows past retention; the rounds are
    reported as one result. `drop_archived_older_than` (an interval such as '2 years') adds
    the drop_archived task.
    """
    unknown = [t for t in tasks or [] if t not in TASKS]
    if unknown:
        raise MaintenanceError(f"unknown maintenance task {unknown[0]!r} (one of {', '.join(TASKS)})")
    if tasks is not None and "drop_archived" in tasks and drop_archived_older_than is None:
        raise MaintenanceError("drop_archived needs --drop-archived-older-than")
    with wrap_errors():
        _require_installed(conn)
        order = [str(r[0]) for r in conn.execute(TASK_ORDER).fetchall()]
    wanted = order if tasks is None else [t for t in order if t in tasks]
    if drop_archived_older_than is not None:
        wanted.append("drop_archived")
    results: list[dict[str, Any]] = []
    for task in wanted:
        older = drop_archived_older_than if task == "drop_archived" else None
        result = run_task(conn, task, now=now, source=source, wait=wait, not_run_since=not_run_since, older_than=older)
        rounds = 1
        while (
            task == "purge"
            and result.get("status") == "success"
            and (result.get("details") or {}).get("more")
            and rounds < max_purge_rounds
        ):
            more = run_task(conn, task, now=now, source=source, wait=wait)
            if more.get("status") == "skipped":
                break
            rounds += 1
            result = {**more, "affected": int(result.get("affected") or 0) + int(more.get("affected") or 0)}
            result["details"] = {**(more.get("details") or {}), "rounds": rounds}
        results.append(result)
    return results


# ---- status -------------------------------------------------------------------------


@dataclass
class Status:
    tables: list[dict[str, Any]]
    tasks: list[dict[str, Any]]
    min_months_ahead: int = MIN_MONTHS_AHEAD
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "min_months_ahead": self.min_months_ahead,
            "problems": self.problems,
            "tables": self.tables,
            "tasks": self.tasks,
        }


def status(
    conn: psycopg.Connection[Any], *, now: datetime | None = None, min_months_ahead: int = MIN_MONTHS_AHEAD
) -> Status:
    """Coverage per partitioned table and each task's last result, with what is wrong.

    A problem is a table covered fewer than `min_months_ahead` months after the current one,
    or a task whose last run failed. A task that never ran is not a problem.
    """
    with wrap_errors():
        _require_installed(conn)
        with conn.cursor(row_factory=dict_row) as cur:
            tables = cur.execute(COVERAGE, (now,)).fetchall()
            tasks = cur.execute(TASK_STATUS).fetchall()
    problems: list[str] = []
    for t in tables:
        if t["months_covered_ahead"] < min_months_ahead:
            problems.append(
                f"{t['table_name']}: {max(t['months_covered_ahead'], 0)} month(s) covered ahead,"
                f" fewer than {min_months_ahead}"
                + ("" if t["months_covered_ahead"] >= 0 else " (not even the current month)")
            )
    for t in tasks:
        if t["last_status"] == "failure":
            problems.append(f"{t['task']}: last run failed at {t['last_started_at']}: {t['last_error']}")
    return Status(tables=tables, tasks=tasks, min_months_ahead=min_months_ahead, problems=problems)


# ---- pg_cron ------------------------------------------------------------------------


@dataclass(frozen=True)
class CronJob:
    jobid: int
    name: str
    schedule: str
    command: str
    database: str
    active: bool = True


@dataclass(frozen=True)
class _CronPlace:
    database: str  # the database maintenance runs in
    cron_database: str  # the database pg_cron lives in
    installed: bool  # the pg_cron extension exists in cron_database

    @property
    def local(self) -> bool:
        return self.database == self.cron_database


def _cron_place(conn: psycopg.Connection[Any]) -> _CronPlace:
    row = conn.execute(CRON_SETTINGS).fetchone()
    assert row is not None
    database, here, preload, cron_db = str(row[0]), bool(row[1]), str(row[2] or ""), row[3]
    if here:
        return _CronPlace(database, database, True)
    libs = [p.strip().strip('"') for p in preload.split(",")]
    if "pg_cron" not in libs:
        raise MaintenanceError(
            "pg_cron is not available here (the pg_cron extension is not installed and the server"
            " does not preload it in shared_preload_libraries); `platformdb worker` runs the same"
            " schedule instead"
        )
    return _CronPlace(database, str(cron_db or "postgres"), False)


def _cron_conn(url: str, place: _CronPlace) -> psycopg.Connection[Any]:
    target = make_conninfo(url, dbname=place.cron_database)
    try:
        return psycopg.connect(target, autocommit=True, connect_timeout=10)
    except psycopg.OperationalError as exc:
        raise MaintenanceError(
            f"pg_cron lives in database {place.cron_database!r} (cron.database_name), which cannot be"
            f" reached: {str(exc).strip()}"
        ) from exc


def _ensure_extension(conn: psycopg.Connection[Any]) -> None:
    """Create pg_cron in the cron database when the server preloads it but it is not created."""
    if conn.execute("select exists (select 1 from pg_extension where extname = 'pg_cron')").fetchone() == (True,):
        return
    available = conn.execute(CRON_AVAILABLE).fetchone()
    if not (available and available[0]):
        raise MaintenanceError("the pg_cron extension is not installed on this server")
    try:
        conn.execute("create extension if not exists pg_cron")
    except psycopg.Error as exc:
        raise MaintenanceError(f"cannot create the pg_cron extension: {str(exc).strip()}") from exc


def _job_name(job: str, place: _CronPlace) -> str:
    return f"{CRON_PREFIX}{job}" if place.local else f"{CRON_PREFIX}{job}@{place.database}"


def _list_jobs(cron: psycopg.Connection[Any], database: str) -> list[CronJob]:
    return [
        CronJob(int(r[0]), str(r[1]), str(r[2]), str(r[3]), str(r[4]), bool(r[5]))
        for r in cron.execute(CRON_JOBS, (database,)).fetchall()
    ]


def scheduled_jobs(url: str) -> list[CronJob]:
    """The platformdb maintenance jobs pg_cron holds for this database (empty without pg_cron)."""
    with psycopg.connect(url, autocommit=True) as conn:
        try:
            place = _cron_place(conn)
        except MaintenanceError:
            return []
        if place.local:
            return _list_jobs(conn, place.database) if place.installed else []
    with _cron_conn(url, place) as cron:
        present = cron.execute("select to_regclass('cron.job') is not null").fetchone()
        return _list_jobs(cron, place.database) if present and present[0] else []


def schedule(url: str) -> list[CronJob]:
    """Register every enabled job of maintenance_schedule with pg_cron; returns our jobs.

    Idempotent by job name (cron.schedule updates a job of the same name); jobs of ours that
    the schedule no longer lists (or disables) are removed. Each job runs
    `select public.run_maintenance(p_tasks => …, p_source => 'pg_cron')` as the role that
    schedules it, which must be the tables' owner.
    """
    with psycopg.connect(url, autocommit=True) as conn:
        place = _cron_place(conn)
        with wrap_errors():
            _require_installed(conn)
            jobs = conn.execute(SCHEDULE).fetchall()
        planned = {
            _job_name(str(name), place): (
                str(expr),
                sql.SQL(CRON_COMMAND).format(sql.Literal(list(tasks))).as_string(conn),
            )
            for name, tasks, expr, _desc in jobs
        }
        for expr, _ in planned.values():
            if not croniter.is_valid(expr) and not expr.strip().endswith("seconds"):
                raise MaintenanceError(f"maintenance_schedule: {expr!r} is not a valid cron expression")
        cron = conn if place.local else _cron_conn(url, place)
        try:
            _ensure_extension(cron)
            with wrap_errors(), cron.transaction():
                for name, (expr, command) in planned.items():
                    if place.local:
                        cron.execute(CRON_SCHEDULE_LOCAL, (name, expr, command))
                    else:
                        cron.execute(CRON_SCHEDULE_IN_DATABASE, (name, expr, command, place.database))
                for job in _list_jobs(cron, place.database):
                    if job.name not in planned:
                        cron.execute(CRON_UNSCHEDULE, (job.jobid,))
            return _list_jobs(cron, place.database)
        finally:
            if cron is not conn:
                cron.close()


def unschedule(url: str) -> int:
    """Remove this database's platformdb maintenance jobs from pg_cron; returns how many
    (0 on a server without pg_cron: there is nothing to remove)."""
    with psycopg.connect(url, autocommit=True) as conn:
        try:
            place = _cron_place(conn)
        except MaintenanceError:
            return 0
        if place.local and not place.installed:
            return 0
        cron = conn if place.local else _cron_conn(url, place)
        try:
            present = cron.execute("select to_regclass('cron.job') is not null").fetchone()
            if not (present and present[0]):
                return 0
            removed = 0
            with wrap_errors(), cron.transaction():
                for job in _list_jobs(cron, place.database):
                    cron.execute(CRON_UNSCHEDULE, (job.jobid,))
                    removed += 1
            return removed
        finally:
            if cron is not conn:
                cron.close()


# ---- the worker's schedule (when pg_cron does not run it) -------------------------------


def due_jobs(conn: psycopg.Connection[Any], now: datetime) -> list[tuple[str, list[str], datetime]]:
    """Jobs of maintenance_schedule with a task that has not started since the job's last slot.

    Returns (job name, tasks, slot): the slot is the latest cron time at or before `now`.
    """
    last = {str(r[0]): r[1] for r in conn.execute(LAST_STARTED).fetchall()}
    out: list[tuple[str, list[str], datetime]] = []
    for name, tasks, expr, _desc in conn.execute(SCHEDULE).fetchall():
        try:
            slot: datetime = croniter(expr, now.astimezone(UTC)).get_prev(datetime)
        except (CroniterError, ValueError) as exc:
            log.warning("maintenance job %s: cannot evaluate %r: %s", name, expr, exc)
            continue
        slot = slot.astimezone(UTC)
        if any(last.get(t) is None or last[t] < slot for t in tasks):
            out.append((str(name), [str(t) for t in tasks], slot))
    return out


def pg_cron_runs_schedule(conn: psycopg.Connection[Any]) -> bool:
    """True when pg_cron (in this database) holds active platformdb maintenance jobs for it."""
    row = conn.execute("select to_regclass('cron.job') is not null").fetchone()
    if not (row and row[0]):
        return False
    try:
        with conn.transaction():
            handled = conn.execute(PG_CRON_HANDLES).fetchone()
    except psycopg.Error:
        return False
    return bool(handled and handled[0])


def _connection_lost(conn: psycopg.Connection[Any] | None) -> bool:
    return conn is None or conn.closed or conn.broken


class MaintenanceDuty(Duty):
    """Runs maintenance_schedule in the worker when pg_cron does not.

    Every `interval` seconds: the jobs whose tasks have not started since their latest cron
    slot run now, with p_wait = false (a task running elsewhere is skipped) and
    p_not_run_since = the slot (a task another worker ran since the slot is skipped), so
    each slot runs once among all workers. Idle while pg_cron holds the jobs for this
    database, or when the maintenance migration is not applied.
    """

    name = "maintenance"

    def __init__(self, config: WorkerConfig):
        self.config = config
        self.url = config.database_url
        self.interval = float(config.options.get("maintenance_interval", 15.0))
        self.recheck = float(config.options.get("maintenance_recheck", 300.0))
        self.source = ("worker:" + config.worker_id)[:100] if config.worker_id else "worker"

    def _connect(self) -> psycopg.Connection[Any]:
        """The session URL when there is one (PLATFORMDB_DIRECT_URL), else the database URL:
        the tasks take only transaction-scoped locks and settings, so a pooler serves too."""
        session = self.config.session_url()
        if session is not None:
            return psycopg.connect(session, autocommit=True, connect_timeout=5)
        return self.config.connect()

    def tick(self, conn: psycopg.Connection[Any], now: datetime | None = None) -> list[dict[str, Any]]:
        """Run what is due now; returns the task results (skipped ones included)."""
        if now is None:
            row = conn.execute("select now()").fetchone()
            assert row is not None
            now = row[0]
        assert now is not None
        results: list[dict[str, Any]] = []
        with wrap_errors():
            due = due_jobs(conn, now)
        for name, tasks, slot in due:
            for r in run_tasks(conn, tasks, source=self.source, wait=False, not_run_since=slot):
                if r.get("status") == "failure":
                    log.error("maintenance %s/%s failed: %s", name, r.get("task"), r.get("error"))
                elif r.get("status") == "success" and r.get("affected"):
                    log.info("maintenance %s/%s: %s", name, r.get("task"), json.dumps(r.get("details")))
                results.append(r)
        return results

    def run(self, stop: threading.Event) -> None:
        conn: psycopg.Connection[Any] | None = None
        backoff = 1.0
        idle_reason = ""
        try:
            while not stop.is_set():
                try:
                    if _connection_lost(conn):
                        conn = self._connect()
                    assert conn is not None
                    reason = ""
                    if not _installed(conn):
                        reason = "maintenance is not installed in this database"
                    elif pg_cron_runs_schedule(conn):
                        reason = "pg_cron runs the maintenance schedule here"
                    if reason:
                        if reason != idle_reason:
                            log.info("maintenance idle: %s", reason)
                        idle_reason = reason
                        stop.wait(self.recheck)
                        continue
                    idle_reason = ""
                    self.tick(conn)
                    backoff = 1.0
                except PermissionDenied as exc:
                    # maintenance changes partitions: it needs the tables' owner, not an API role
                    reason = f"the worker's role may not run maintenance ({exc}); connect as the tables' owner"
                    if reason != idle_reason:
                        log.warning("maintenance idle: %s", reason)
                    idle_reason = reason
                    stop.wait(self.recheck)
                    continue
                except (psycopg.Error, PlatformDBError) as exc:
                    if _connection_lost(conn):
                        log.warning("maintenance: connection lost (%s)", str(exc).strip()[:200])
                    else:
                        log.error("maintenance: %s", exc)
                    stop.wait(backoff)
                    backoff = min(backoff * 2, 30.0)
                    continue
                stop.wait(self.interval)
        finally:
            if conn is not None:
                conn.close()


def maintenance_duty(config: WorkerConfig) -> Duty | None:
    """Factory: the maintenance schedule in the worker (off with --no-housekeeping)."""
    if not config.housekeeping or not config.options.get("maintenance", True):
        return None
    duty: Duty = MaintenanceDuty(config)
    return duty


# ---- CLI ----------------------------------------------------------------------------


def _parse_now(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter(f"--now: {value!r} is not an ISO 8601 time") from exc
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _fmt_time(value: Any) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    return "" if value is None else str(value)


def _fmt_month(value: Any) -> str:
    return value.astimezone(UTC).strftime("%Y-%m") if isinstance(value, datetime) else "—"


def _fmt_interval(value: Any) -> str:
    return "forever" if value is None else str(value)


def _print_status(st: Status) -> None:
    from rich.table import Table

    from platformdb.cli import console

    parts = Table(title=f"partitions (at least {st.min_months_ahead} months ahead)")
    for col in ("table", "months ahead", "covered until", "rows in DEFAULT", "oldest attached",
                "attached", "archived", "retention"):
        parts.add_column(col)
    for t in st.tables:
        ahead = t["months_covered_ahead"]
        colour = "green" if ahead >= st.min_months_ahead else "red"
        parts.add_row(
            t["table_name"],
            f"[{colour}]{ahead}[/] (keeps {t['months_ahead_target']})",
            _fmt_month(t["covered_until"]) + " (excl.)" if t["covered_until"] else "—",
            str(t["default_rows"]) if not t["default_rows"] else f"[yellow]{t['default_rows']}[/]",
            f"{t['oldest_partition']} ({_fmt_month(t['oldest_partition_from'])})" if t["oldest_partition"] else "—",
            str(t["attached_partitions"]),
            str(t["archived_partitions"]),
            _fmt_interval(t["retention"]),
        )
    console.print(parts)
    tasks = Table(title="tasks")
    for col in ("task", "last run", "source", "result", "affected", "runs", "failures", "error"):
        tasks.add_column(col)
    for t in st.tasks:
        result = {"success": "[green]success[/]", "failure": "[red]failure[/]"}.get(t["last_status"] or "", "never")
        tasks.add_row(
            t["task"], _fmt_time(t["last_started_at"]), t["last_source"] or "", result,
            "" if t["last_affected"] is None else str(t["last_affected"]),
            str(t["run_count"]), str(t["failure_count"]), (t["last_error"] or "")[:120],
        )
    console.print(tasks)
    for p in st.problems:
        console.print(f"[red]problem:[/] {p}")


def _print_results(results: list[dict[str, Any]]) -> None:
    from rich.table import Table

    from platformdb.cli import console

    table = Table(title="maintenance")
    for col in ("task", "result", "affected", "details", "ms"):
        table.add_column(col)
    for r in results:
        colour = {"success": "green", "failure": "red"}.get(str(r.get("status")), "yellow")
        details = r.get("error") or r.get("reason") or json.dumps(r.get("details") or {}, separators=(",", ":"))
        table.add_row(
            str(r.get("task")), f"[{colour}]{r.get('status')}[/]", str(r.get("affected", "")),
            str(details)[:160], str(r.get("duration_ms", "")),
        )
    console.print(table)


def register(app: typer.Typer) -> None:
    @app.command("maintain")
    def maintain_cmd(
        database_url: Annotated[
            str | None,
            typer.Option("--database-url", envvar="DATABASE_URL", help="PostgreSQL URL (the tables' owner)."),
        ] = None,
        direct_url: DirectUrl = None,
        replica_url: ReplicaUrl = None,
        pool_mode: PoolMode = None,
        show_status: Annotated[
            bool, typer.Option("--status", help="Show coverage and each task's last run; change nothing.")
        ] = False,
        as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
        task: Annotated[
            list[str] | None,
            typer.Option("--task", help=f"Run only this task (repeatable): {', '.join(TASKS[:-1])}."),
        ] = None,
        drop_archived_older_than: Annotated[
            str | None,
            typer.Option(
                "--drop-archived-older-than",
                help="Also drop archived partitions whose month ended longer ago than this interval"
                " (e.g. '2 years'). Never transactions or events.",
            ),
        ] = None,
        now: Annotated[
            str | None, typer.Option("--now", help="Act as if it were this ISO 8601 time (planning, tests).")
        ] = None,
        min_months_ahead: Annotated[
            int, typer.Option("--min-months-ahead", min=1, max=36, help="Coverage below this fails --status.")
        ] = MIN_MONTHS_AHEAD,
    ) -> None:
        """Partitions ahead, archival past retention, cache/session/queue cleanups, lease reaping.

        Exit 1 when a task fails (or, with --status, when coverage is below the threshold or
        a task failed last time).
        """
        from platformdb.cli import err_console, fail, print_json, url_of

        url = url_of(database_url, direct_url, replica_url, pool_mode)
        # a session when there is one; the tasks take only transaction-scoped locks, so the
        # database URL serves too when it is a transaction pooler
        url = db.direct_url_for(url, direct_url) or url
        when = _parse_now(now)
        if show_status and (task or drop_archived_older_than):
            fail("--status changes nothing: it does not take --task or --drop-archived-older-than")
        try:
            with psycopg.connect(url, autocommit=True, **db.connect_kwargs(url)) as conn:
                if show_status:
                    st = status(conn, now=when, min_months_ahead=min_months_ahead)
                    if as_json:
                        print_json(st.as_json())
                    else:
                        _print_status(st)
                    raise typer.Exit(0 if st.ok else 1)
                results = run_tasks(
                    conn, list(task) if task else None, now=when, source="cli",
                    drop_archived_older_than=drop_archived_older_than,
                )
        except (PlatformDBError, psycopg.Error) as exc:
            fail(str(exc).strip())
            return
        failed = [r for r in results if r.get("status") == "failure"]
        if as_json:
            print_json({"ok": not failed, "as_of": when or datetime.now(UTC), "tasks": results})
        else:
            _print_results(results)
            if failed:
                err_console.print(f"[red]{len(failed)} task(s) failed[/]")
        raise typer.Exit(1 if failed else 0)

    @app.command("schedule")
    def schedule_cmd(
        database_url: Annotated[
            str | None,
            typer.Option("--database-url", envvar="DATABASE_URL", help="PostgreSQL URL (the tables' owner)."),
        ] = None,
        direct_url: DirectUrl = None,
        replica_url: ReplicaUrl = None,
        pool_mode: PoolMode = None,
        uninstall: Annotated[bool, typer.Option("--uninstall", help="Remove the jobs instead.")] = False,
        as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    ) -> None:
        """Register the maintenance jobs with pg_cron (idempotent by job name), or remove them.

        Without pg_cron, `platformdb worker` runs the same schedule itself.
        """
        from rich.table import Table

        from platformdb.cli import console, err_console, fail, print_json, session_url_of, url_of

        url = url_of(database_url, direct_url, replica_url, pool_mode)
        url = session_url_of(url, direct_url, "pg_cron registration")
        try:
            if uninstall:
                removed = unschedule(url)
                if as_json:
                    print_json({"removed": removed})
                else:
                    err_console.print(f"removed {removed} pg_cron job(s)")
                return
            jobs = schedule(url)
        except (PlatformDBError, psycopg.Error) as exc:
            fail(str(exc).strip())
            return
        if as_json:
            print_json([job.__dict__ for job in jobs])
            return
        table = Table(title=f"pg_cron jobs for database {conninfo_to_dict(url).get('dbname', '')}")
        for col in ("jobid", "job", "schedule", "command"):
            table.add_column(col)
        for job in jobs:
            table.add_row(str(job.jobid), job.name, job.schedule, job.command)
        console.print(table)
