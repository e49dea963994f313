"""Security matrix rows for §3.5 event store, message queue and background jobs.

Only the service writes, and only through the SQL functions (SECURITY DEFINER): no role has
INSERT/UPDATE/DELETE on these tables, so versions, positions, states and leases are always
assigned by the functions' rules. A signed-in user reads the events about them (user_id)
and nothing else here.
"""

from platformdb.security import TableAccess

MIGRATION = "20260401140000_event_store_message_queue"

TABLES = [
    TableAccess(
        table="event_store",
        seed="""insert into public.event_store
                    (aggregate_type, aggregate_id, event_type, event_version, payload,
                     global_position, user_id)
                values ('matrix', %(owner)s::text, 'matrix.seeded', 1, '{}',
                        nextval('public.event_store_global_position_seq'), %(owner)s)
                returning id""",
        match="id = %(key)s",
        insert="""insert into public.event_store
                      (aggregate_type, aggregate_id, event_type, event_version, payload,
                       global_position, user_id)
                  values ('matrix', %(owner)s::text, 'matrix.inserted', 2, '{}',
                          nextval('public.event_store_global_position_seq'), %(owner)s)""",
        update="event_type = 'tampered'",
        owner="s",
        service="s",
        why="append-only, written through append_event only; a user reads the events about them",
    ),
    TableAccess(
        table="event_streams",
        seed="""insert into public.event_streams (aggregate_type, aggregate_id, version)
                values ('matrix', %(owner)s::text, 1) returning aggregate_id""",
        match="aggregate_type = 'matrix' and aggregate_id = %(key)s",
        insert="""insert into public.event_streams (aggregate_type, aggregate_id, version)
                  values ('matrix-insert', %(owner)s::text, 1)""",
        update="version = version + 1",
        service="s",
        why="stream heads: moved only by the append functions (their lock is the concurrency check)",
    ),
    TableAccess(
        table="event_subscriptions",
        seed="""insert into public.event_subscriptions (subscription_name, position)
                values ('matrix.' || %(owner)s::text, 0) returning subscription_name""",
        match="subscription_name = %(key)s",
        insert="""insert into public.event_subscriptions (subscription_name)
                  values ('matrix-insert.' || %(owner)s::text)""",
        update="position = position + 1",
        service="s",
        why="subscriber checkpoints: saved through save_subscription_checkpoint (forward only)",
    ),
    TableAccess(
        table="message_queue",
        seed="""insert into public.message_queue (queue_name, message_type, payload)
                values ('matrix', 'matrix.seeded', jsonb_build_object('owner', %(owner)s::text))
                returning id""",
        match="id = %(key)s",
        insert="""insert into public.message_queue (queue_name, message_type, payload)
                  values ('matrix', 'matrix.inserted', jsonb_build_object('owner', %(owner)s::text))""",
        update="state = 'completed', finalized_at = now()",
        service="s",
        why="backend work: enqueued, claimed and settled through the queue functions only",
    ),
    TableAccess(
        table="background_jobs",
        seed="""insert into public.background_jobs (job_type, job_name, payload)
                values ('matrix', %(owner)s::text, '{}') returning id""",
        match="id = %(key)s",
        insert="""insert into public.background_jobs (job_type, job_name, payload)
                  values ('matrix', %(owner)s::text || '-insert', '{}')""",
        update="priority = 1",
        service="s",
        why="backend work: scheduled, claimed and settled through the job functions only",
    ),
    TableAccess(
        table="recurring_jobs",
        seed="""insert into public.recurring_jobs (name, job_type, cron_expression)
                values ('matrix.' || %(owner)s::text, 'matrix', '* * * * *') returning id""",
        match="id = %(key)s",
        insert="""insert into public.recurring_jobs (name, job_type, cron_expression)
                  values ('matrix-insert.' || %(owner)s::text, 'matrix', '* * * * *')""",
        update="enabled = false",
        service="s",
        why="schedules: changed through schedule_recurring_job / unschedule_recurring_job",
    ),
    TableAccess(
        table="queue_retention",
        seed="""with gone as (delete from public.queue_retention
                              where table_name = 'background_jobs' returning 1)
                select 'message_queue'::text from (select count(*) from gone) g""",
        match="table_name = %(key)s",
        insert="""insert into public.queue_retention (table_name, finished_retention)
                  values ('background_jobs', interval '1 day')""",
        update="finished_retention = interval '1 hour'",
        service="s",
        why="retention settings: changed by the owner only",
    ),
]
