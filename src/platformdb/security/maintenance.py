"""Security matrix rows for SPEC §4 maintenance (migration 20260401160000_maintenance).

Maintenance is the owner's business: the tasks, their schedule, the run history and the list
of archived partitions are written only by the maintenance functions, which run as the
tables' owner (pg_cron jobs, `platformdb maintain`, the worker). Services may read them (the
dashboard shows coverage and last runs); users and anon see nothing.
"""

from platformdb.security import TableAccess

MIGRATION = "20260401160000_maintenance"

TABLES = [
    TableAccess(
        table="maintenance_tasks",
        # every valid task name exists already: the seed frees 'drop_archived' (so that the
        # insert below is a valid row) and hands 'reaper' to select/update/delete
        seed="""with freed as (delete from public.maintenance_tasks where task = 'drop_archived'
                               returning task)
                select 'reaper'::text from freed""",
        match="task = %(key)s",
        insert="""insert into public.maintenance_tasks (task, run_order, description)
                  values ('drop_archived', 70, 'matrix ' || %(owner)s::text)""",
        update="last_error = 'tampered', last_status = 'failure', last_started_at = now()",
        service="s",
        why="task list and last results: written by run_maintenance_task (owner) only; services read",
    ),
    TableAccess(
        table="maintenance_schedule",
        seed="""insert into public.maintenance_schedule (job_name, tasks, cron_expression, description)
                values ('m' || left(%(owner)s::text, 8), array['reaper'], '* * * * *', 'matrix')
                returning job_name""",
        match="job_name = %(key)s",
        insert="""insert into public.maintenance_schedule (job_name, tasks, cron_expression, description)
                  values ('i' || left(%(owner)s::text, 8), array['cache'], '0 * * * *', 'matrix')""",
        update="cron_expression = '0 0 * * *'",
        service="s",
        why="what pg_cron and the worker run: changed by the owner only (then `platformdb schedule`)",
    ),
    TableAccess(
        table="maintenance_runs",
        seed="""insert into public.maintenance_runs
                    (task, source, as_of, started_at, finished_at, status, details)
                values ('reaper', 'matrix', now(), now(), now(), 'success',
                        jsonb_build_object('owner', %(owner)s::text))
                returning id""",
        match="id = %(key)s",
        insert="""insert into public.maintenance_runs
                      (task, source, as_of, started_at, finished_at, status, details)
                  values ('cache', 'matrix', now(), now(), now(), 'success',
                          jsonb_build_object('owner', %(owner)s::text))""",
        update="status = 'failure', error_message = 'tampered'",
        service="s",
        why="run history: written by run_maintenance_task (owner) only; services read",
    ),
    TableAccess(
        table="archived_partitions",
        seed="""insert into public.archived_partitions
                    (archive_schema, partition_name, parent_table, range_from, range_to, row_count,
                     archived_as_of)
                values ('archive', 'matrix_' || replace(%(owner)s::text, '-', ''), 'system_metrics',
                        '2020-01-01', '2020-02-01', 0, now())
                returning partition_name""",
        match="partition_name = %(key)s",
        insert="""insert into public.archived_partitions
                      (archive_schema, partition_name, parent_table, range_from, range_to, row_count,
                       archived_as_of)
                  values ('archive', 'ins_' || replace(%(owner)s::text, '-', ''), 'system_metrics',
                          '2020-01-01', '2020-02-01', 0, now())""",
        update="dropped_at = now()",
        service="s",
        why="where archived months went: written by the archive/drop tasks (owner) only; services read",
    ),
]
