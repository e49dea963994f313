-- platformdb 20260401160000: maintenance and scheduling (SPEC §4 maintain)
-- A database left alone for a year keeps accepting writes and stays small: monthly partitions
-- stay at least 3 months ahead of the clock (rows that landed in DEFAULT move into their
-- month), months past a table's retention are detached into an archive schema (never
-- dropped unless asked, and never for transactions or events), and the capabilities' own
-- cleanups run on a schedule: expired cache entries and routes, expired WhatsApp sessions,
-- finished queue/job rows past retention, expired leases.
--
-- Everything is a SQL function so that pg_cron can call it (`platformdb schedule`); without
-- pg_cron, `platformdb worker` runs the same schedule (maintenance_schedule) itself. Each
-- task runs under its own advisory lock (concurrent runs of a task serialise), takes an
-- injectable "now" (p_now) for the calendar work, and records every run: a row in
-- maintenance_runs, the task's last result in maintenance_tasks, an audit event
-- (log_audit_event) and a metric (record_metric).
--
-- Maintenance changes partitions (DDL), so it runs as the tables' owner (the role that
-- applied the migrations: a pg_cron job scheduled by it, `platformdb maintain` with its URL).
-- None of these functions is granted to anon, authenticated or service_role; the services
-- may read the run history and the coverage report (partition_coverage).
--
-- The cleanups belong to their capabilities and are called, not re-implemented:
-- cleanup_expired_cache() and cleanup_expired_routes() (cache), cleanup_expired_whatsapp_
-- sessions() (sessions), purge_finished_queue_rows(), purge_whatsapp_history() and
-- purge_feature_flag_evaluations() (purge), reap_expired_leases() (reaper). A task whose
-- capability is not installed reports it under "not_installed" and does nothing.
--
-- Sections: guard → tables → indexes → functions → RLS and grants → comments → seed rows.
BEGIN;

-- ---------------------------------------------------------------------------------------
-- guard: stop before touching anything when one of our names belongs to someone else
-- ---------------------------------------------------------------------------------------
select public.platformdb_assert_names_free(array[
    'maintenance_tasks', 'maintenance_schedule', 'maintenance_runs', 'archived_partitions',
    'partition_bounds', 'partition_coverage', 'create_partitions_ahead',
    'archive_expired_partitions', 'drop_archived_partitions', 'run_maintenance_task',
    'run_maintenance'
]);

-- ---------------------------------------------------------------------------------------
-- tables
-- ---------------------------------------------------------------------------------------
create table public.maintenance_tasks (
    task text not null,
    run_order smallint not null,
    description text not null,
    last_run_id uuid,
    last_source text,
    last_as_of timestamptz,
    last_started_at timestamptz,
    last_finished_at timestamptz,
    last_status text,
    last_affected bigint,
    last_details jsonb,
    last_error text,
    run_count bigint not null default 0,
    failure_count bigint not null default 0,
    constraint maintenance_tasks_pkey primary key (task),
    constraint maintenance_tasks_run_order_key unique (run_order),
    constraint maintenance_tasks_task_valid check (task in
        ('partitions', 'archive', 'cache', 'sessions', 'purge', 'reaper', 'drop_archived')),
    constraint maintenance_tasks_last_status_valid
        check (last_status is null or last_status in ('success', 'failure')),
    constraint maintenance_tasks_ran_or_never
        check ((last_started_at is null) = (last_status is null)),
    constraint maintenance_tasks_failure_has_error
        check (last_status is distinct from 'failure' or last_error is not null),
    constraint maintenance_tasks_counts_valid
        check (run_count >= 0 and failure_count between 0 and run_count)
);

create table public.maintenance_schedule (
    job_name text not null,
    tasks text[] not null,
    cron_expression text not null,
    description text not null,
    enabled boolean not null default true,
    updated_at timestamptz not null default now(),
    constraint maintenance_schedule_pkey primary key (job_name),
    constraint maintenance_schedule_job_name_format check (job_name ~ '^[a-z][a-z0-9-]{0,39}$'),
    constraint maintenance_schedule_tasks_valid
        check (cardinality(tasks) between 1 and 6
               and tasks <@ array['partitions', 'archive', 'cache', 'sessions', 'purge', 'reaper']),
    constraint maintenance_schedule_cron_expression_length
        check (char_length(btrim(cron_expression)) between 1 and 100)
);

create table public.maintenance_runs (
    id uuid not null default gen_random_uuid(),
    task text not null,
    source text not null,
    as_of timestamptz not null,
    started_at timestamptz not null,
    finished_at timestamptz not null,
    status text not null,
    affected bigint not null default 0,
    details jsonb not null default '{}',
    error_message text,
    audit_id uuid,
    metric_id uuid,
    constraint maintenance_runs_pkey primary key (id),
    constraint maintenance_runs_task_fkey foreign key (task) references public.maintenance_tasks (task),
    constraint maintenance_runs_status_valid check (status in ('success', 'failure')),
    constraint maintenance_runs_failure_has_error check (status = 'success' or error_message is not null),
    constraint maintenance_runs_finished_after_started check (finished_at >= started_at),
    constraint maintenance_runs_source_length check (char_length(source) between 1 and 100),
    constraint maintenance_runs_details_object check (jsonb_typeof(details) = 'object')
);

create table public.archived_partitions (
    archive_schema text not null,
    partition_name text not null,
    parent_table text not null,
    range_from timestamptz not null,
    range_to timestamptz not null,
    row_count bigint not null,
    archived_at timestamptz not null default now(),
    archived_as_of timestamptz not null,
    dropped_at timestamptz,
    constraint archived_partitions_pkey primary key (archive_schema, partition_name),
    constraint archived_partitions_range_valid check (range_to > range_from),
    constraint archived_partitions_row_count_valid check (row_count >= 0),
    -- the money ledger and the event log are never dropped, archived or not
    constraint archived_partitions_kept_forever
        check (dropped_at is null or parent_table not in ('transactions', 'event_store'))
);

-- ---------------------------------------------------------------------------------------
-- indexes
-- ---------------------------------------------------------------------------------------
-- a task's history, newest first (status, pruning)
create index maintenance_runs_task_started_idx on public.maintenance_runs (task, started_at desc);
-- archived partitions of a table, oldest first (drop_archived_partitions, status)
create index archived_partitions_parent_idx on public.archived_partitions (parent_table, range_from);

-- ---------------------------------------------------------------------------------------
-- functions
-- ---------------------------------------------------------------------------------------
-- The partitions of a range-partitioned table with their bounds, read from the catalog.
-- Monthly partitions have single timestamptz bounds; the DEFAULT partition has none.
create function public.partition_bounds(p_parent regclass)
returns table (
    partition_schema text,
    partition_name text,
    is_default boolean,
    range_from timestamptz,
    range_to timestamptz
)
language sql
stable
set search_path = ''
as $$
    select n.nspname::text,
           c.relname::text,
           b.expr = 'DEFAULT',
           m[1]::timestamptz,
           m[2]::timestamptz
      from pg_catalog.pg_inherits i
      join pg_catalog.pg_class c on c.oid = i.inhrelid
      join pg_catalog.pg_namespace n on n.oid = c.relnamespace
      cross join lateral (select pg_catalog.pg_get_expr(c.relpartbound, c.oid) as expr) b
      cross join lateral (select pg_catalog.regexp_match(
                              b.expr, '^FOR VALUES FROM \(''([^'']+)''\) TO \(''([^'']+)''\)$') as m) r
     where i.inhparent = p_parent
$$;

-- Coverage per partitioned table (partition_settings): how many whole months after p_now's
-- month are covered by attached partitions without a gap (-1: not even the current month),
-- rows waiting in DEFAULT, the oldest attached month and what was archived.
-- SECURITY DEFINER: counting DEFAULT rows needs the owner (partitions carry no grants); it
-- returns counts and names only, and is granted to service_role (dashboards, verify).
create function public.partition_coverage(p_now timestamptz default now())
returns table (
    table_name text,
    months_ahead_target integer,
    months_covered_ahead integer,
    covered_until timestamptz,
    default_rows bigint,
    attached_partitions integer,
    oldest_partition text,
    oldest_partition_from timestamptz,
    retention interval,
    archived_partitions integer
)
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
    r record;
    v_month0 timestamp;
    v_k integer;
    v_default text;
begin
    if p_now is null then
        raise exception 'p_now must not be null' using errcode = '22004';
    end if;
    v_month0 := pg_catalog.date_trunc('month', p_now at time zone 'UTC');
    for r in
        select s.table_name as name, s.months_ahead, s.retention as keep, c.oid::regclass as parent
          from public.partition_settings s
          join pg_catalog.pg_class c
            on c.relnamespace = 'public'::regnamespace and c.relname = s.table_name and c.relkind = 'p'
         order by s.table_name
    loop
        table_name := r.name;
        months_ahead_target := greatest(coalesce(r.months_ahead, 3), 3);
        retention := r.keep;
        v_k := -1;
        while v_k < 240 and exists (
            select 1 from public.partition_bounds(r.parent) b
             where not b.is_default
               and b.range_from <= (v_month0 + pg_catalog.make_interval(months => v_k + 1)) at time zone 'UTC'
               and b.range_to >= (v_month0 + pg_catalog.make_interval(months => v_k + 2)) at time zone 'UTC')
        loop
            v_k := v_k + 1;
        end loop;
        months_covered_ahead := v_k;
        covered_until := case when v_k >= 0
                              then (v_month0 + pg_catalog.make_interval(months => v_k + 1)) at time zone 'UTC' end;
        select count(*) filter (where not b.is_default),
               max(b.partition_name) filter (where b.is_default)
          into attached_partitions, v_default
          from public.partition_bounds(r.parent) b;
        select b.partition_name, b.range_from into oldest_partition, oldest_partition_from
          from public.partition_bounds(r.parent) b
         where not b.is_default
         order by b.range_from nulls last
         limit 1;
        default_rows := null;
        if v_default is not null then
            execute pg_catalog.format('select count(*) from public.%I', v_default) into default_rows;
        end if;
        select count(*) into archived_partitions
          from public.archived_partitions a
         where a.parent_table = r.name and a.dropped_at is null;
        return next;
    end loop;
end
$$;

-- Task "partitions": for every table in partition_settings, the DEFAULT partition and monthly
-- partitions from p_now's month through max(months_ahead, 3) months ahead
-- (create_monthly_partitions, which moves rows already in DEFAULT into a new month). Rows
-- left in DEFAULT for other months (back-dated, or far ahead) get their month too: a new
-- partition, or the archived table when that month was archived already. At most
-- p_max_months such months per table and run. One table failing does not stop the others.
create function public.create_partitions_ahead(
    p_now timestamptz default now(),
    p_max_months integer default 60
)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
    r record;
    v_default text;
    v_month timestamp;
    v_from timestamptz;
    v_to timestamptz;
    v_created integer;
    v_moved bigint;
    v_archive_schema text;
    v_archive_name text;
    v_table jsonb;
    v_tables jsonb := '{}';
    v_errors jsonb := '{}';
    v_total bigint := 0;
    v_state text;
    v_message text;
begin
    if p_now is null then
        raise exception 'p_now must not be null' using errcode = '22004';
    end if;
    if p_max_months is null or p_max_months < 0 or p_max_months > 1200 then
        raise exception 'p_max_months must be between 0 and 1200, got %', p_max_months
            using errcode = '22003';
    end if;
    for r in
        select s.table_name as name, greatest(coalesce(s.months_ahead, 3), 3) as ahead,
               c.oid::regclass as parent
          from public.partition_settings s
          left join pg_catalog.pg_class c
            on c.relnamespace = 'public'::regnamespace and c.relname = s.table_name and c.relkind = 'p'
         order by s.table_name
    loop
        if r.parent is null then
            v_errors := v_errors || pg_catalog.jsonb_build_object(r.name,
                'listed in partition_settings but public.' || r.name || ' is not a partitioned table');
            continue;
        end if;
        begin
            v_created := public.create_monthly_partitions(r.parent, r.ahead, p_now);
            v_moved := 0;
            select b.partition_name into v_default
              from public.partition_bounds(r.parent) b where b.is_default;
            for v_month in execute pg_catalog.format(
                'select distinct pg_catalog.date_trunc(''month'', d.created_at at time zone ''UTC'')'
                ' from public.%I d order by 1 limit $1', v_default) using p_max_months
            loop
                v_from := v_month at time zone 'UTC';
                v_to := (v_month + interval '1 month') at time zone 'UTC';
                select a.archive_schema, a.partition_name into v_archive_schema, v_archive_name
                  from public.archived_partitions a
                 where a.parent_table = r.name and a.dropped_at is null
                   and a.range_from <= v_from and a.range_to >= v_to
                   and pg_catalog.to_regclass(pg_catalog.format('%I.%I', a.archive_schema, a.partition_name)) is not null
                 limit 1;
                if found then
                    -- the month was archived already: its late rows join the archived table
                    execute pg_catalog.format(
                        'with moved as (delete from public.%I d where d.created_at >= $1 and d.created_at < $2'
                        ' returning d.*) insert into %I.%I select * from moved',
                        v_default, v_archive_schema, v_archive_name) using v_from, v_to;
                    get diagnostics v_moved = row_count;
                    update public.archived_partitions a
                       set row_count = a.row_count + v_moved
                     where a.archive_schema = v_archive_schema and a.partition_name = v_archive_name;
                else
                    v_created := v_created + public.create_monthly_partitions(r.parent, 0, v_from);
                end if;
            end loop;
            v_table := pg_catalog.jsonb_build_object('created', v_created);
            if v_moved > 0 then
                v_table := v_table || pg_catalog.jsonb_build_object('moved_to_archive', v_moved);
            end if;
            v_tables := v_tables || pg_catalog.jsonb_build_object(r.name, v_table);
            v_total := v_total + v_created + v_moved;
        exception when others then
            get stacked diagnostics v_state = returned_sqlstate, v_message = message_text;
            v_errors := v_errors || pg_catalog.jsonb_build_object(r.name, v_state || ': ' || v_message);
        end;
    end loop;
    return pg_catalog.jsonb_build_object('affected', v_total, 'tables', v_tables)
           || case when v_errors = '{}' then '{}'::jsonb
                   else pg_catalog.jsonb_build_object('errors', v_errors) end;
end
$$;

-- Task "archive": for every table with a retention in partition_settings, each attached
-- monthly partition whose whole month ended at least `retention` before p_now is detached
-- and moved into the table's archive schema (created when missing, no privileges for
-- anyone but the owner). The data stays, queryable by the owner; archived_partitions records
-- where it came from, and so does the archived table's comment. Nothing is dropped here.
create function public.archive_expired_partitions(p_now timestamptz default now())
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
    r record;
    p record;
    v_rows bigint;
    v_count integer;
    v_tables jsonb := '{}';
    v_errors jsonb := '{}';
    v_total bigint := 0;
    v_state text;
    v_message text;
begin
    if p_now is null then
        raise exception 'p_now must not be null' using errcode = '22004';
    end if;
    for r in
        select s.table_name as name, s.retention as keep, s.archive_schema as target,
               c.oid::regclass as parent
          from public.partition_settings s
          left join pg_catalog.pg_class c
            on c.relnamespace = 'public'::regnamespace and c.relname = s.table_name and c.relkind = 'p'
         where s.retention is not null
         order by s.table_name
    loop
        if r.parent is null then
            v_errors := v_errors || pg_catalog.jsonb_build_object(r.name,
                'listed in partition_settings but public.' || r.name || ' is not a partitioned table');
            continue;
        end if;
        begin
            v_count := 0;
            if not exists (select 1 from pg_catalog.pg_namespace n where n.nspname = r.target) then
                execute pg_catalog.format('create schema %I', r.target);
                execute pg_catalog.format(
                    'revoke all on schema %I from public, anon, authenticated, service_role', r.target);
                execute pg_catalog.format('comment on schema %I is %L', r.target,
                    'Monthly partitions detached by platformdb maintenance after their table''s retention'
                    ' (see public.archived_partitions). Owner only.');
            end if;
            for p in
                select b.partition_schema, b.partition_name, b.range_from, b.range_to
                  from public.partition_bounds(r.parent) b
                 where not b.is_default and b.range_to is not null and b.range_to <= p_now - r.keep
                 order by b.range_from
            loop
                execute pg_catalog.format('select count(*) from %I.%I', p.partition_schema, p.partition_name)
                   into v_rows;
                execute pg_catalog.format('alter table public.%I detach partition %I.%I',
                                          r.name, p.partition_schema, p.partition_name);
                execute pg_catalog.format('alter table %I.%I set schema %I',
                                          p.partition_schema, p.partition_name, r.target);
                execute pg_catalog.format('comment on table %I.%I is %L', r.target, p.partition_name,
                    pg_catalog.format('platformdb archive: public.%s [%s,%s) rows=%s',
                        r.name,
                        pg_catalog.to_char(p.range_from at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                        pg_catalog.to_char(p.range_to at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                        v_rows));
                insert into public.archived_partitions as a
                    (archive_schema, partition_name, parent_table, range_from, range_to, row_count,
                     archived_at, archived_as_of)
                values (r.target, p.partition_name, r.name, p.range_from, p.range_to, v_rows,
                        pg_catalog.clock_timestamp(), p_now)
                on conflict (archive_schema, partition_name) do update
                   set parent_table = excluded.parent_table, range_from = excluded.range_from,
                       range_to = excluded.range_to, row_count = excluded.row_count,
                       archived_at = excluded.archived_at, archived_as_of = excluded.archived_as_of,
                       dropped_at = null;
                v_count := v_count + 1;
            end loop;
            v_tables := v_tables || pg_catalog.jsonb_build_object(r.name, v_count);
            v_total := v_total + v_count;
        exception when others then
            get stacked diagnostics v_state = returned_sqlstate, v_message = message_text;
            v_errors := v_errors || pg_catalog.jsonb_build_object(r.name, v_state || ': ' || v_message);
        end;
    end loop;
    return pg_catalog.jsonb_build_object('affected', v_total, 'archived', v_tables)
           || case when v_errors = '{}' then '{}'::jsonb
                   else pg_catalog.jsonb_build_object('errors', v_errors) end;
end
$$;

-- Task "drop_archived" (only on request: `platformdb maintain --drop-archived-older-than`):
-- drops archived partitions whose month ended at least p_older_than before p_now. Only
-- tables this maintenance archived (archived_partitions) are touched, and never those of
-- transactions or event_store: they are reported as kept.
create function public.drop_archived_partitions(
    p_older_than interval,
    p_now timestamptz default now()
)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
    a record;
    v_dropped jsonb := '[]';
    v_kept jsonb := '[]';
begin
    if p_older_than is null then
        raise exception 'p_older_than must not be null' using errcode = '22004';
    end if;
    if p_older_than <= interval '0' then
        raise exception 'p_older_than must be positive, got %', p_older_than
            using errcode = '22023', hint = 'e.g. interval ''2 years''';
    end if;
    if p_now is null then
        raise exception 'p_now must not be null' using errcode = '22004';
    end if;
    for a in
        select x.archive_schema, x.partition_name, x.parent_table
          from public.archived_partitions x
         where x.dropped_at is null and x.range_to <= p_now - p_older_than
         order by x.range_from, x.partition_name
         for update
    loop
        if a.parent_table in ('transactions', 'event_store') then
            -- the money ledger and the event log are kept forever, archived or not
            v_kept := v_kept || pg_catalog.to_jsonb(a.archive_schema || '.' || a.partition_name);
            continue;
        end if;
        if pg_catalog.to_regclass(pg_catalog.format('%I.%I', a.archive_schema, a.partition_name)) is not null then
            execute pg_catalog.format('drop table %I.%I', a.archive_schema, a.partition_name);
        end if;
        update public.archived_partitions x
           set dropped_at = pg_catalog.clock_timestamp()
         where x.archive_schema = a.archive_schema and x.partition_name = a.partition_name;
        v_dropped := v_dropped || pg_catalog.to_jsonb(a.archive_schema || '.' || a.partition_name);
    end loop;
    return pg_catalog.jsonb_build_object('affected', pg_catalog.jsonb_array_length(v_dropped),
                                         'dropped', v_dropped, 'kept', v_kept);
end
$$;

-- One run of one task, recorded. Under an advisory lock per task: concurrent runs of the
-- same task wait for each other (p_wait) or skip (p_wait = false, status "skipped"); with
-- p_not_run_since, a task that started a run at or after that time is skipped (the
-- worker's "once per schedule slot" among several workers). A task's work runs in a
-- subtransaction: when it fails, its changes are undone and the failure is recorded.
-- p_now drives the calendar work (partitions, archive, drop_archived); the cleanups use the
-- real clock. Returns {task, status, affected, details, error, run_id, duration_ms}.
create function public.run_maintenance_task(
    p_task text,
    p_now timestamptz default now(),
    p_source text default 'sql',
    p_wait boolean default true,
    p_not_run_since timestamptz default null,
    p_older_than interval default null,
    p_max_batches integer default 20
)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
    v_run_id uuid := pg_catalog.gen_random_uuid();
    v_started timestamptz;
    v_finished timestamptz;
    v_status text := 'success';
    v_details jsonb := '{}';
    v_affected bigint := 0;
    v_error text;
    v_state text;
    v_missing text[] := '{}';
    v_n bigint;
    v_m bigint;
    v_batches integer;
    v_lock_timeout text;
    v_audit uuid;
    v_metric uuid;
    v_ms numeric;
begin
    if p_task is null then
        raise exception 'p_task must not be null' using errcode = '22004';
    end if;
    if p_task not in ('partitions', 'archive', 'cache', 'sessions', 'purge', 'reaper', 'drop_archived') then
        raise exception 'p_task: unknown maintenance task %', p_task
            using errcode = '22023',
                  hint = 'one of partitions, archive, cache, sessions, purge, reaper, drop_archived';
    end if;
    if p_now is null then
        raise exception 'p_now must not be null' using errcode = '22004';
    end if;
    if p_source is null or btrim(p_source) = '' then
        raise exception 'p_source must not be empty' using errcode = '22004';
    end if;
    if char_length(p_source) > 100 then
        raise exception 'p_source must be at most 100 characters' using errcode = '22023';
    end if;
    if p_task = 'drop_archived' and p_older_than is null then
        raise exception 'p_older_than must not be null for drop_archived' using errcode = '22004';
    end if;
    if p_older_than is not null and p_task <> 'drop_archived' then
        raise exception 'p_older_than applies to drop_archived only, not to %', p_task using errcode = '22023';
    end if;
    if p_older_than is not null and p_older_than <= interval '0' then
        raise exception 'p_older_than must be positive, got %', p_older_than using errcode = '22023';
    end if;
    if p_max_batches is null or p_max_batches < 1 or p_max_batches > 1000 then
        raise exception 'p_max_batches must be between 1 and 1000, got %', p_max_batches
            using errcode = '22003';
    end if;

    -- one run of a task at a time, whoever starts it (CLI, pg_cron, workers)
    if p_wait then
        perform pg_catalog.pg_advisory_xact_lock(
            pg_catalog.hashtextextended('platformdb.maintenance.' || p_task, 0));
    elsif not pg_catalog.pg_try_advisory_xact_lock(
            pg_catalog.hashtextextended('platformdb.maintenance.' || p_task, 0)) then
        return pg_catalog.jsonb_build_object('task', p_task, 'status', 'skipped',
                                             'reason', 'another run of this task is in progress');
    end if;
    if p_not_run_since is not null and exists (
        select 1 from public.maintenance_tasks t
         where t.task = p_task and t.last_started_at >= p_not_run_since) then
        return pg_catalog.jsonb_build_object('task', p_task, 'status', 'skipped',
                                             'reason', 'already ran since ' || p_not_run_since::text);
    end if;

    v_started := pg_catalog.clock_timestamp();
    -- DDL waits for locks held by application transactions: give up after a while (the
    -- task fails and runs again next time) rather than queue every writer behind us
    v_lock_timeout := pg_catalog.current_setting('lock_timeout');
    if v_lock_timeout = '0' then
        perform pg_catalog.set_config('lock_timeout', '10s', true);
    end if;
    begin
        case p_task
        when 'partitions' then
            v_details := public.create_partitions_ahead(p_now);
        when 'archive' then
            v_details := public.archive_expired_partitions(p_now);
        when 'drop_archived' then
            v_details := public.drop_archived_partitions(p_older_than, p_now);
        when 'cache' then
            if pg_catalog.to_regprocedure('public.cleanup_expired_cache()') is not null then
                v_n := public.cleanup_expired_cache();
                v_details := v_details || pg_catalog.jsonb_build_object('cache_entries', v_n);
            else
                v_missing := v_missing || 'public.cleanup_expired_cache()'::text;
            end if;
            if pg_catalog.to_regprocedure('public.cleanup_expired_routes()') is not null then
                v_n := public.cleanup_expired_routes();
                v_details := v_details || pg_catalog.jsonb_build_object('routes', v_n);
            else
                v_missing := v_missing || 'public.cleanup_expired_routes()'::text;
            end if;
        when 'sessions' then
            if pg_catalog.to_regprocedure('public.cleanup_expired_whatsapp_sessions()') is not null then
                v_n := public.cleanup_expired_whatsapp_sessions();
                v_details := pg_catalog.jsonb_build_object('sessions_expired', v_n);
            else
                v_missing := v_missing || 'public.cleanup_expired_whatsapp_sessions()'::text;
            end if;
        when 'purge' then
            if pg_catalog.to_regprocedure('public.purge_finished_queue_rows(interval, integer)') is not null then
                -- batches of at most 10000 rows per table and kind; `more` asks for another run
                v_batches := 0;
                v_m := 0;
                loop
                    v_n := public.purge_finished_queue_rows(null, 10000);
                    v_m := v_m + v_n;
                    v_batches := v_batches + 1;
                    exit when v_n = 0 or v_batches >= p_max_batches;
                end loop;
                v_details := v_details || pg_catalog.jsonb_build_object(
                    'queue_rows', v_m, 'batches', v_batches, 'more', v_n > 0);
            else
                v_missing := v_missing || 'public.purge_finished_queue_rows(interval, integer)'::text;
            end if;
            if pg_catalog.to_regprocedure('public.purge_whatsapp_history(interval)') is not null then
                v_n := public.purge_whatsapp_history();
                v_details := v_details || pg_catalog.jsonb_build_object('whatsapp_rows', v_n);
            else
                v_missing := v_missing || 'public.purge_whatsapp_history(interval)'::text;
            end if;
            if pg_catalog.to_regprocedure('public.purge_feature_flag_evaluations(interval)') is not null then
                v_n := public.purge_feature_flag_evaluations();
                v_details := v_details || pg_catalog.jsonb_build_object('flag_evaluation_rows', v_n);
            else
                v_missing := v_missing || 'public.purge_feature_flag_evaluations(interval)'::text;
            end if;
        when 'reaper' then
            if pg_catalog.to_regprocedure('public.reap_expired_leases()') is not null then
                v_n := public.reap_expired_leases();
                v_details := pg_catalog.jsonb_build_object('leases_reaped', v_n);
            else
                v_missing := v_missing || 'public.reap_expired_leases()'::text;
            end if;
        end case;
        if v_details ? 'errors' then
            v_status := 'failure';
            select pg_catalog.string_agg(e.key || ': ' || (e.value #>> '{}'), '; ' order by e.key)
              into v_error
              from pg_catalog.jsonb_each(v_details -> 'errors') e;
        end if;
    exception when others then
        get stacked diagnostics v_state = returned_sqlstate, v_error = message_text;
        v_status := 'failure';
        v_details := pg_catalog.jsonb_build_object('sqlstate', v_state);
    end;
    perform pg_catalog.set_config('lock_timeout', v_lock_timeout, true);

    if v_details ? 'affected' then
        v_affected := (v_details ->> 'affected')::bigint;
        v_details := v_details - 'affected';
    elsif v_status = 'success' then
        select coalesce(sum(e.value::text::bigint), 0) into v_affected
          from pg_catalog.jsonb_each(v_details) e
         where pg_catalog.jsonb_typeof(e.value) = 'number' and e.key <> 'batches';
    end if;
    if pg_catalog.cardinality(v_missing) > 0 then
        v_details := v_details || pg_catalog.jsonb_build_object('not_installed', pg_catalog.to_jsonb(v_missing));
    end if;
    v_finished := pg_catalog.clock_timestamp();
    v_ms := round((extract(epoch from v_finished - v_started) * 1000)::numeric, 1);

    v_audit := public.log_audit_event(
        p_actor_type => 'system',
        p_action => 'maintenance.' || p_task,
        p_resource_type => 'database',
        p_actor_identifier => 'platformdb-maintenance:' || p_source,
        p_resource_id => pg_catalog.current_database()::text,
        p_metadata => pg_catalog.jsonb_build_object('run_id', v_run_id, 'as_of', p_now,
                          'affected', v_affected, 'details', v_details, 'duration_ms', v_ms),
        p_status => v_status,
        p_error_message => v_error);
    v_metric := public.record_metric(
        p_service_name => 'platformdb-maintenance',
        p_metric_type => 'counter',
        p_metric_name => 'maintenance.' || p_task,
        p_value => v_affected,
        p_unit => 'rows',
        p_tags => pg_catalog.jsonb_build_object('status', v_status, 'source', p_source,
                                                'duration_ms', v_ms, 'run_id', v_run_id));
    insert into public.maintenance_runs
        (id, task, source, as_of, started_at, finished_at, status, affected, details,
         error_message, audit_id, metric_id)
    values (v_run_id, p_task, p_source, p_now, v_started, v_finished, v_status, v_affected,
            v_details, v_error, v_audit, v_metric);
    update public.maintenance_tasks t
       set last_run_id = v_run_id, last_source = p_source, last_as_of = p_now,
           last_started_at = v_started, last_finished_at = v_finished, last_status = v_status,
           last_affected = v_affected, last_details = v_details, last_error = v_error,
           run_count = t.run_count + 1,
           failure_count = t.failure_count + case when v_status = 'failure' then 1 else 0 end
     where t.task = p_task;
    -- the history keeps 30 days (the last result per task stays in maintenance_tasks)
    delete from public.maintenance_runs h
     where h.task = p_task and h.started_at < v_started - interval '30 days';

    return pg_catalog.jsonb_build_object(
        'task', p_task, 'status', v_status, 'affected', v_affected, 'details', v_details,
        'error', v_error, 'run_id', v_run_id, 'duration_ms', v_ms);
end
$$;

-- Several tasks in their fixed order (partitions before archive, …), in one transaction:
-- what a pg_cron job calls. p_tasks null = every scheduled task (not drop_archived);
-- p_drop_archived_older_than adds drop_archived. Unknown task names are refused before
-- anything runs. Returns {as_of, source, failed, tasks: [run_maintenance_task results]}.
create function public.run_maintenance(
    p_tasks text[] default null,
    p_now timestamptz default now(),
    p_source text default 'sql',
    p_wait boolean default true,
    p_not_run_since timestamptz default null,
    p_drop_archived_older_than interval default null
)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
    v_unknown text;
    v_task text;
    v_tasks text[];
    v_result jsonb;
    v_results jsonb := '[]';
    v_failed integer := 0;
begin
    if p_tasks is not null then
        if pg_catalog.cardinality(p_tasks) = 0 then
            raise exception 'p_tasks must not be empty (null runs every scheduled task)' using errcode = '22023';
        end if;
        select u.t into v_unknown
          from pg_catalog.unnest(p_tasks) u(t)
         where u.t is null or u.t not in (select m.task from public.maintenance_tasks m)
         limit 1;
        if found then
            raise exception 'p_tasks: unknown maintenance task %', coalesce(v_unknown, 'null')
                using errcode = '22023',
                      hint = 'one of partitions, archive, cache, sessions, purge, reaper, drop_archived';
        end if;
        if 'drop_archived' = any (p_tasks) and p_drop_archived_older_than is null then
            raise exception 'p_drop_archived_older_than must not be null when drop_archived is asked for'
                using errcode = '22004';
        end if;
    end if;
    if p_drop_archived_older_than is not null and p_drop_archived_older_than <= interval '0' then
        raise exception 'p_drop_archived_older_than must be positive, got %', p_drop_archived_older_than
            using errcode = '22023';
    end if;
    if p_now is null then
        raise exception 'p_now must not be null' using errcode = '22004';
    end if;

    select pg_catalog.array_agg(m.task order by m.run_order) into v_tasks
      from public.maintenance_tasks m
     where (p_tasks is null and m.task <> 'drop_archived')
        or m.task = any (p_tasks)
        or (m.task = 'drop_archived' and p_drop_archived_older_than is not null);
    foreach v_task in array v_tasks loop
        v_result := public.run_maintenance_task(
            p_task => v_task, p_now => p_now, p_source => p_source, p_wait => p_wait,
            p_not_run_since => p_not_run_since,
            p_older_than => case when v_task = 'drop_archived' then p_drop_archived_older_than end);
        v_results := v_results || pg_catalog.jsonb_build_array(v_result);
        if v_result ->> 'status' = 'failure' then
            v_failed := v_failed + 1;
        end if;
    end loop;
    return pg_catalog.jsonb_build_object('as_of', p_now, 'source', p_source, 'failed', v_failed,
                                         'tasks', v_results);
end
$$;

-- ---------------------------------------------------------------------------------------
-- RLS and grants (Supabase grants ALL by default: take it back, then grant what is needed)
-- ---------------------------------------------------------------------------------------
alter table public.maintenance_tasks enable row level security;
alter table public.maintenance_schedule enable row level security;
alter table public.maintenance_runs enable row level security;
alter table public.archived_partitions enable row level security;

create policy maintenance_tasks_service_read on public.maintenance_tasks
    for select to service_role using (true);
create policy maintenance_schedule_service_read on public.maintenance_schedule
    for select to service_role using (true);
create policy maintenance_runs_service_read on public.maintenance_runs
    for select to service_role using (true);
create policy archived_partitions_service_read on public.archived_partitions
    for select to service_role using (true);

revoke all on table public.maintenance_tasks, public.maintenance_schedule, public.maintenance_runs,
    public.archived_partitions
    from public, anon, authenticated, service_role;
grant select on table public.maintenance_tasks, public.maintenance_schedule, public.maintenance_runs,
    public.archived_partitions
    to service_role;

revoke all on function
    public.partition_bounds(regclass),
    public.partition_coverage(timestamptz),
    public.create_partitions_ahead(timestamptz, integer),
    public.archive_expired_partitions(timestamptz),
    public.drop_archived_partitions(interval, timestamptz),
    public.run_maintenance_task(text, timestamptz, text, boolean, timestamptz, interval, integer),
    public.run_maintenance(text[], timestamptz, text, boolean, timestamptz, interval)
    from public, anon, authenticated, service_role;
grant execute on function public.partition_coverage(timestamptz) to service_role;

-- ---------------------------------------------------------------------------------------
-- comments (the reference docs and the dashboard read these from the catalog)
-- ---------------------------------------------------------------------------------------
comment on table public.maintenance_tasks is
    'The maintenance tasks and the last result of each (partitions, archive, cache, sessions, purge, reaper, drop_archived). Updated by run_maintenance_task; services read it.';
comment on column public.maintenance_tasks.task is 'Task name.';
comment on column public.maintenance_tasks.run_order is 'Order in which run_maintenance runs tasks (partitions before archive).';
comment on column public.maintenance_tasks.description is 'What the task does.';
comment on column public.maintenance_tasks.last_run_id is 'maintenance_runs.id of the last run.';
comment on column public.maintenance_tasks.last_source is 'Who started the last run: cli, pg_cron, worker, sql.';
comment on column public.maintenance_tasks.last_as_of is 'The "now" the last run worked with (injectable for tests).';
comment on column public.maintenance_tasks.last_started_at is 'When the last run started (real clock).';
comment on column public.maintenance_tasks.last_finished_at is 'When the last run finished (real clock).';
comment on column public.maintenance_tasks.last_status is 'success or failure of the last run; null = never ran.';
comment on column public.maintenance_tasks.last_affected is 'Partitions created/archived/dropped or rows cleaned by the last run.';
comment on column public.maintenance_tasks.last_details is 'What the last run did, per table or per cleanup (JSON object).';
comment on column public.maintenance_tasks.last_error is 'Why the last run failed (required when it did).';
comment on column public.maintenance_tasks.run_count is 'Runs since installation.';
comment on column public.maintenance_tasks.failure_count is 'Failed runs since installation.';

comment on table public.maintenance_schedule is
    'When each task runs: one row per job (a cron expression and the tasks it runs, in order). `platformdb schedule` registers these with pg_cron as platformdb-maintain-<job_name>; without pg_cron `platformdb worker` runs the same schedule.';
comment on column public.maintenance_schedule.job_name is 'Job name (pg_cron job platformdb-maintain-<job_name>).';
comment on column public.maintenance_schedule.tasks is 'Tasks the job runs (run in maintenance_tasks.run_order).';
comment on column public.maintenance_schedule.cron_expression is 'Standard 5-field cron expression, read in UTC (as pg_cron does).';
comment on column public.maintenance_schedule.description is 'Why the job runs when it does.';
comment on column public.maintenance_schedule.enabled is 'A disabled job is not registered with pg_cron (and removed when it was) nor run by the worker.';
comment on column public.maintenance_schedule.updated_at is 'Last change of this row.';

comment on table public.maintenance_runs is
    'History of maintenance runs, one row per task run (30 days are kept). Each run also wrote an audit event (audit_id) and a metric (metric_id). Services read it.';
comment on column public.maintenance_runs.id is 'Run id.';
comment on column public.maintenance_runs.task is 'The task that ran.';
comment on column public.maintenance_runs.source is 'Who started it: cli, pg_cron, worker, sql.';
comment on column public.maintenance_runs.as_of is 'The "now" the run worked with (p_now).';
comment on column public.maintenance_runs.started_at is 'Start, real clock.';
comment on column public.maintenance_runs.finished_at is 'End, real clock.';
comment on column public.maintenance_runs.status is 'success or failure (a failed task''s changes are undone).';
comment on column public.maintenance_runs.affected is 'Partitions created/archived/dropped or rows cleaned.';
comment on column public.maintenance_runs.details is 'What the run did, per table or per cleanup; not_installed lists capabilities missing here.';
comment on column public.maintenance_runs.error_message is 'Why it failed.';
comment on column public.maintenance_runs.audit_id is 'The system_audit_logs entry of this run.';
comment on column public.maintenance_runs.metric_id is 'The system_metrics sample of this run.';

comment on table public.archived_partitions is
    'Monthly partitions detached into an archive schema after their table''s retention: where each came from and how many rows it held. Archived data is kept until `platformdb maintain --drop-archived-older-than`; transactions and event_store archives are never dropped.';
comment on column public.archived_partitions.archive_schema is 'Schema holding the detached partition.';
comment on column public.archived_partitions.partition_name is 'Table name of the detached partition.';
comment on column public.archived_partitions.parent_table is 'The partitioned table in public it was detached from.';
comment on column public.archived_partitions.range_from is 'First instant of its month (inclusive).';
comment on column public.archived_partitions.range_to is 'End of its month (exclusive).';
comment on column public.archived_partitions.row_count is 'Rows it held when archived (plus late rows moved in from DEFAULT).';
comment on column public.archived_partitions.archived_at is 'When it was detached (real clock).';
comment on column public.archived_partitions.archived_as_of is 'The "now" of the run that archived it.';
comment on column public.archived_partitions.dropped_at is 'When drop_archived_partitions dropped it; null = still there.';

comment on function public.partition_bounds(regclass) is
    'The partitions of a range-partitioned table with their timestamptz bounds (null for DEFAULT or non-timestamp bounds). Owner only.';
comment on function public.partition_coverage(timestamptz) is
    'Per partitioned table as of p_now: whole months covered ahead without a gap (-1 when the current month is not), rows in DEFAULT, attached and archived partitions, the oldest attached month, retention. Service role and owner.';
comment on function public.create_partitions_ahead(timestamptz, integer) is
    'Maintenance task "partitions": DEFAULT plus monthly partitions through max(months_ahead, 3) months after p_now for every table in partition_settings; rows in DEFAULT move into their month (a new partition, or the archived table). Owner only.';
comment on function public.archive_expired_partitions(timestamptz) is
    'Maintenance task "archive": detaches partitions whose month ended at least the table''s retention before p_now into its archive schema (recorded in archived_partitions). Never drops. Owner only.';
comment on function public.drop_archived_partitions(interval, timestamptz) is
    'Maintenance task "drop_archived": drops archived partitions whose month ended at least p_older_than before p_now, except those of transactions and event_store (kept forever). Owner only.';
comment on function public.run_maintenance_task(text, timestamptz, text, boolean, timestamptz, interval, integer) is
    'Runs one maintenance task under its advisory lock and records it (maintenance_runs, maintenance_tasks, an audit event, a metric). p_wait=false skips when the task is running elsewhere; p_not_run_since skips when it already started since then. Failures are recorded, their changes undone. Owner only.';
comment on function public.run_maintenance(text[], timestamptz, text, boolean, timestamptz, interval) is
    'Runs maintenance tasks in order in one transaction (null = every scheduled task; p_drop_archived_older_than adds drop_archived) and returns a summary. What pg_cron jobs call. Owner only.';

-- ---------------------------------------------------------------------------------------
-- seed rows: the tasks and their schedule
-- ---------------------------------------------------------------------------------------
insert into public.maintenance_tasks (task, run_order, description) values
    ('partitions', 1, 'Monthly partitions through at least 3 months ahead for every partitioned table; rows in DEFAULT moved into their month.'),
    ('archive', 2, 'Partitions past their table''s retention detached into the archive schema (metrics 90 days, audit logs 400 days; transactions and events never).'),
    ('cache', 3, 'Expired cache entries and cached routes removed (cleanup_expired_cache, cleanup_expired_routes).'),
    ('sessions', 4, 'WhatsApp sessions past expires_at marked expired (cleanup_expired_whatsapp_sessions).'),
    ('purge', 5, 'Finished queue and job rows past retention deleted in batches (purge_finished_queue_rows), old WhatsApp message history and flag evaluation counts.'),
    ('reaper', 6, 'Messages and jobs whose lease expired handed back to their queue (reap_expired_leases).'),
    ('drop_archived', 7, 'Archived partitions older than a given age dropped; only on request, never transactions or events.');

insert into public.maintenance_schedule (job_name, tasks, cron_expression, description) values
    ('partitions-monthly', array['partitions', 'archive'], '5 0 1 * *',
     'At the start of each month: partitions ahead and archival.'),
    ('partitions-daily', array['partitions', 'archive'], '17 3 * * *',
     'Daily safety net for partitions and archival (a missed monthly run costs at most a day).'),
    ('cache-hourly', array['cache'], '7 * * * *', 'Hourly: expired cache entries and routes.'),
    ('sessions-daily', array['sessions'], '27 3 * * *', 'Daily: expired WhatsApp sessions.'),
    ('purge-daily', array['purge'], '37 3 * * *', 'Daily: finished queue and job rows past retention.'),
    ('reaper', array['reaper'], '* * * * *', 'Every minute: expired leases.');

-- archived partitions survive a rollback of this file (they are data): a re-install
-- recognises them by their comment and lists them again
insert into public.archived_partitions
    (archive_schema, partition_name, parent_table, range_from, range_to, row_count, archived_as_of)
select n.nspname, c.relname, m[1], m[2]::timestamptz, m[3]::timestamptz, m[4]::bigint, now()
  from pg_catalog.pg_class c
  join pg_catalog.pg_namespace n on n.oid = c.relnamespace
  cross join lateral pg_catalog.regexp_match(
      pg_catalog.obj_description(c.oid, 'pg_class'),
      '^platformdb archive: public\.([A-Za-z0-9_]+) \[([^,]+),([^)]+)\) rows=([0-9]+)$') m
 where c.relkind = 'r'
   and n.nspname in (select s.archive_schema from public.partition_settings s)
   and m is not null;

COMMIT;
