-- platformdb 20260401170000: monitoring (SPEC §4 dashboard and /metrics)
-- What the dashboard and the Prometheus endpoint read, as SQL: one function per panel, each
-- bounded (a time window and/or a LIMIT) and served by an index, plus the one covering
-- index the payments panel needs. The functions are SECURITY DEFINER and STABLE (a
-- non-volatile function cannot write): they are the only door of the read-only role
-- `platformdb_monitor`, which gets EXECUTE on them and nothing else (the role and its grants
-- are set up by `platformdb dashboard`, see src/platformdb/dashboard/roles.sql: roles are
-- cluster-wide and a Supabase migration may not create them). The one function that
-- changes something, monitoring_redrive_dead_letters, is for `platformdb_operator` and
-- writes an audit entry. Here every function is granted to service_role only.
-- Sections: guard → indexes → functions → RLS and grants → comments.
BEGIN;

-- ---------------------------------------------------------------------------------------
-- guard: stop before touching anything when one of our names belongs to someone else
-- ---------------------------------------------------------------------------------------
select public.platformdb_assert_names_free(array[
    'transactions_created_at_cover_idx',
    'monitoring_checked_limit', 'monitoring_checked_window',
    'monitoring_services', 'monitoring_queues', 'monitoring_jobs', 'monitoring_dead_letters',
    'monitoring_throughput', 'monitoring_whatsapp', 'monitoring_whatsapp_sessions',
    'monitoring_whatsapp_failures', 'monitoring_payment_volume', 'monitoring_payment_open',
    'monitoring_cache', 'monitoring_route_cache', 'monitoring_cache_hit_rate',
    'monitoring_flags', 'monitoring_partitions', 'monitoring_partition_coverage',
    'monitoring_maintenance',
    'monitoring_metric_series', 'monitoring_metric_timeseries',
    'monitoring_query_stats_status', 'monitoring_query_stats', 'monitoring_top_statements',
    'monitoring_redrive_dead_letters'
]);

-- ---------------------------------------------------------------------------------------
-- indexes
-- ---------------------------------------------------------------------------------------
-- Payment volume by time, currency and status without reading the (wide) rows: the window
-- is an index range, the rest comes from the index itself (index-only scan). A status
-- change already updates every index of transactions (status is indexed), so this adds one
-- index entry per insert and per status change.
create index transactions_created_at_cover_idx
    on public.transactions (created_at) include (currency, status, type, amount);

-- ---------------------------------------------------------------------------------------
-- functions: argument checks (raise with the parameter's name; called by the panels)
-- ---------------------------------------------------------------------------------------
-- Each panel calls them in a statement of its own, before its query: a check written as a
-- filter of the query would be skipped on an empty table, a LIMIT 0 or pruned partitions.
create function public.monitoring_checked_limit(p_limit integer)
returns integer
language plpgsql
immutable
set search_path = ''
as $$
begin
    if p_limit is null then
        raise exception 'p_limit must not be null' using errcode = '22004';
    end if;
    if p_limit < 1 or p_limit > 1000 then
        raise exception 'p_limit must be between 1 and 1000, got %', p_limit
            using errcode = '22003', hint = 'the dashboard reads bounded pages of rows';
    end if;
    return p_limit;
end
$$;

create function public.monitoring_checked_window(p_window interval, p_bucket interval default null)
returns interval
language plpgsql
immutable
set search_path = ''
as $$
begin
    if p_window is null then
        raise exception 'p_window must not be null' using errcode = '22004';
    end if;
    if p_window < interval '1 minute' or p_window > interval '31 days' then
        raise exception 'p_window must be between 1 minute and 31 days, got %', p_window
            using errcode = '22023';
    end if;
    if p_bucket is not null then
        if p_bucket < interval '1 second' or p_bucket > p_window then
            raise exception 'p_bucket must be between 1 second and p_window, got %', p_bucket
                using errcode = '22023';
        end if;
        if pg_catalog.date_part('epoch', p_window) / pg_catalog.date_part('epoch', p_bucket) > 1000 then
            raise exception 'p_bucket % is too small for p_window %: at most 1000 buckets', p_bucket, p_window
                using errcode = '22023';
        end if;
    end if;
    return p_window;
end
$$;

-- ---------------------------------------------------------------------------------------
-- functions: panels. Each reads one of the capability views where one exists (the view is
-- the definition; the function only bounds and exposes it), otherwise the tables through
-- their indexes. Parameters appear in the bodies by name.
-- ---------------------------------------------------------------------------------------
create function public.monitoring_services(p_limit integer default 500)
returns table (
    service_name text, service_type text, version text, health_status text,
    reported_status text, seconds_since_heartbeat bigint, last_heartbeat_at timestamptz,
    heartbeat_count bigint, unhealthy_dependencies text[]
)
language sql
stable
security definer
set search_path = ''
as $$
    -- the arguments first: a filter on the rows would not run on an empty table
    select public.monitoring_checked_limit(p_limit);
    select s.service_name, s.service_type, s.version, s.health_status, s.reported_status,
           s.seconds_since_heartbeat, s.last_heartbeat_at, s.heartbeat_count,
           s.unhealthy_dependencies
      from public.service_health_overview s
     order by case s.health_status when 'critical' then 0 when 'unhealthy' then 1
                                   when 'warning' then 2 when 'stopped' then 3 else 4 end,
              s.service_name
     limit p_limit
$$;

create function public.monitoring_queues(p_limit integer default 200)
returns table (
    queue_name text, depth bigint, ready bigint, delayed bigint, retrying bigint,
    in_flight bigint, expired_leases bigint, dead_letters bigint, completed_last_hour bigint,
    oldest_ready_age_seconds numeric
)
language sql
stable
security definer
set search_path = ''
as $$
    -- the arguments first: a filter on the rows would not run on an empty table
    select public.monitoring_checked_limit(p_limit);
    select q.queue_name, q.depth, q.ready, q.delayed, q.retrying, q.in_flight, q.expired_leases,
           q.dead_letters, q.completed_last_hour, q.oldest_ready_age_seconds
      from public.message_queue_stats q
     order by q.queue_name
     limit p_limit
$$;

create function public.monitoring_jobs(p_limit integer default 200)
returns table (
    job_type text, depth bigint, ready bigint, scheduled bigint, retrying bigint,
    running bigint, expired_leases bigint, dead_letters bigint, completed bigint,
    cancelled bigint, oldest_ready_age_seconds numeric, avg_duration_seconds_last_hour numeric,
    recurring_schedules bigint
)
language sql
stable
security definer
set search_path = ''
as $$
    -- the arguments first: a filter on the rows would not run on an empty table
    select public.monitoring_checked_limit(p_limit);
    select j.job_type, j.depth, j.ready, j.scheduled, j.retrying, j.running, j.expired_leases,
           j.dead_letters, j.completed, j.cancelled, j.oldest_ready_age_seconds,
           j.avg_duration_seconds_last_hour, j.recurring_schedules
      from public.background_job_stats j
     order by j.job_type
     limit p_limit
$$;

create function public.monitoring_dead_letters(p_limit integer default 50)
returns table (
    kind text, name text, item_type text, id uuid, attempt integer, max_attempts integer,
    last_error text, finalized_at timestamptz, redrive_count integer
)
language sql
stable
security definer
set search_path = ''
as $$
    -- the arguments first: a filter on the rows would not run on an empty table
    select public.monitoring_checked_limit(p_limit);
    select d.kind, d.name, d.item_type, d.id, d.attempt, d.max_attempts, d.last_error,
           d.finalized_at, d.redrive_count
      from ((select 'message'::text as kind, m.queue_name as name, m.message_type as item_type,
                    m.id, m.attempt::integer as attempt, m.max_attempts::integer as max_attempts,
                    pg_catalog.left(m.errors[pg_catalog.cardinality(m.errors)] ->> 'error', 300)
                        as last_error,
                    m.finalized_at, m.redrive_count
               from public.message_queue m
              where m.state = 'dead_letter'
              order by m.finalized_at desc
              limit p_limit)
            union all
            (select 'job', j.job_type, j.job_name, j.id, j.attempt::integer,
                    j.max_attempts::integer,
                    pg_catalog.left(j.errors[pg_catalog.cardinality(j.errors)] ->> 'error', 300),
                    j.finalized_at, j.redrive_count
               from public.background_jobs j
              where j.state = 'dead_letter'
              order by j.finalized_at desc
              limit p_limit)) d
     order by d.finalized_at desc, d.id
     limit p_limit
$$;

create function public.monitoring_throughput(
    p_window interval default interval '24 hours',
    p_bucket interval default interval '1 hour'
)
returns table (bucket timestamptz, kind text, name text, completed bigint, dead_lettered bigint)
language sql
stable
security definer
set search_path = ''
as $$
    -- the arguments first: a filter on the rows would not run on an empty table
    select public.monitoring_checked_window(p_window, p_bucket);
    select t.bucket, t.kind, t.name, t.completed, t.dead_lettered
      from ((select pg_catalog.date_bin(p_bucket, m.finalized_at, timestamptz '2000-01-03 00:00:00+00')
                        as bucket,
                    'message'::text as kind, m.queue_name as name,
                    count(*) filter (where m.state = 'completed') as completed,
                    count(*) filter (where m.state = 'dead_letter') as dead_lettered
               from public.message_queue m
              where m.finalized_at >= pg_catalog.now() - p_window
                and m.finalized_at <= pg_catalog.now()
              group by 1, 3)
            union all
            (select pg_catalog.date_bin(p_bucket, j.finalized_at, timestamptz '2000-01-03 00:00:00+00'),
                    'job', j.job_type,
                    count(*) filter (where j.state = 'completed'),
                    count(*) filter (where j.state = 'dead_letter')
               from public.background_jobs j
              where j.finalized_at >= pg_catalog.now() - p_window
                and j.finalized_at <= pg_catalog.now()
              group by 1, 3)) t
     order by t.bucket, t.kind, t.name
$$;

create function public.monitoring_whatsapp()
returns table (
    depth bigint, scheduled bigint, processing bigint, expired_leases bigint,
    oldest_pending_age_seconds numeric, sent_24h bigint, delivered_24h bigint, read_24h bigint,
    failed_24h bigint, cancelled_24h bigint, retrying bigint, inbound_24h bigint,
    inbound_unhandled bigint
)
language sql
stable
security definer
set search_path = ''
as $$
    select w.depth, w.scheduled, w.processing, w.expired_leases,
           coalesce(pg_catalog.date_part('epoch', w.oldest_pending_age), 0)::numeric(14, 3),
           w.sent_24h, w.delivered_24h, w.read_24h, w.failed_24h, w.cancelled_24h, w.retrying,
           w.inbound_24h, w.inbound_unhandled
      from public.whatsapp_queue_stats w
$$;

create function public.monitoring_whatsapp_sessions()
returns table (
    status text, session_count bigint, active_last_hour bigint, active_last_24h bigint,
    total_messages bigint, total_errors bigint
)
language sql
stable
security definer
set search_path = ''
as $$
    select s.status, s.session_count, s.active_last_hour, s.active_last_24h,
           s.total_messages::bigint, s.total_errors::bigint
      from public.whatsapp_session_stats s
$$;

create function public.monitoring_whatsapp_failures(
    p_window interval default interval '24 hours',
    p_limit integer default 20
)
returns table (error text, failures bigint, last_failed_at timestamptz)
language sql
stable
security definer
set search_path = ''
as $$
    -- the arguments first: a filter on the rows would not run on an empty table
    select public.monitoring_checked_window(p_window), public.monitoring_checked_limit(p_limit);
    -- updated_at >= failed_at always, so the updated_at bound only lets the partial index of
    -- finished messages serve the window; failed_at decides
    select coalesce(pg_catalog.left(q.last_error, 200), '(no message)') as error,
           count(*) as failures,
           max(q.failed_at) as last_failed_at
      from public.whatsapp_message_queue q
     where q.status = 'failed'
       and q.updated_at >= pg_catalog.now() - p_window
       and q.failed_at >= pg_catalog.now() - p_window
     group by 1
     order by 2 desc, 1
     limit p_limit
$$;

create function public.monitoring_payment_volume(
    p_window interval default interval '24 hours',
    p_bucket interval default interval '1 hour'
)
returns table (bucket timestamptz, currency text, status text, transactions bigint, amount numeric)
language sql
stable
security definer
set search_path = ''
as $$
    -- the arguments first: a filter on the rows would not run on an empty table
    select public.monitoring_checked_window(p_window, p_bucket);
    select pg_catalog.date_bin(p_bucket, t.created_at, timestamptz '2000-01-03 00:00:00+00'),
           t.currency, t.status, count(*), sum(t.amount)
      from public.transactions t
     where t.created_at >= pg_catalog.now() - p_window
       and t.created_at <= pg_catalog.now()
     group by 1, 2, 3
     order by 1, 2, 3
$$;

create function public.monitoring_payment_open()
returns table (status text, open_count bigint, oldest_created_at timestamptz, oldest_age_seconds numeric)
language sql
stable
security definer
set search_path = ''
as $$
    select s.status, o.open_count, o.oldest_created_at,
           coalesce(pg_catalog.date_part('epoch', pg_catalog.now() - o.oldest_created_at), 0)::numeric(14, 3)
      from (values (1, 'pending'), (2, 'processing')) as s (ord, status)
     cross join lateral (
           select count(*) as open_count, min(t.created_at) as oldest_created_at
             from public.transactions t
            where t.status = s.status and t.status in ('pending', 'processing')
          ) o
     order by s.ord
$$;

create function public.monitoring_cache()
returns table (
    cache_type text, entries bigint, live_entries bigint, expired_entries bigint,
    value_bytes bigint, last_set_at timestamptz, hits_24h bigint, misses_24h bigint,
    hit_rate_24h numeric
)
language sql
stable
security definer
set search_path = ''
as $$
    select c.cache_type, c.entries, c.live_entries, c.expired_entries, c.value_bytes::bigint,
           c.last_set_at, c.hits_24h::bigint, c.misses_24h::bigint, c.hit_rate_24h
      from public.cache_stats c
     order by c.cache_type
     limit 200
$$;

create function public.monitoring_route_cache()
returns table (
    total_routes bigint, fresh_routes bigint, expired_routes bigint, routes_by_provider jsonb,
    avg_distance_meters numeric, avg_duration_seconds numeric, hits_24h bigint,
    misses_24h bigint, hit_rate_24h numeric
)
language sql
stable
security definer
set search_path = ''
as $$
    select r.total_routes, r.fresh_routes, r.expired_routes, r.routes_by_provider,
           r.avg_distance_meters, r.avg_duration_seconds, r.hits_24h::bigint,
           r.misses_24h::bigint, r.hit_rate_24h
      from public.route_cache_stats r
$$;

create function public.monitoring_cache_hit_rate(p_window interval default interval '24 hours')
returns table (bucket timestamptz, namespace text, cache_type text, hits bigint, misses bigint)
language sql
stable
security definer
set search_path = ''
as $$
    -- the arguments first: a filter on the rows would not run on an empty table
    select public.monitoring_checked_window(p_window);
    select c.bucket, c.namespace, c.cache_type, sum(c.hits)::bigint, sum(c.misses)::bigint
      from public.cache_counters c
     where c.bucket >= pg_catalog.date_trunc('hour', pg_catalog.now() - p_window)
       and c.bucket <= pg_catalog.now()
     group by 1, 2, 3
     order by 1, 2, 3
$$;

create function public.monitoring_flags(p_limit integer default 200)
returns table (
    key text, environment text, known boolean, name text, enabled boolean,
    rollout_strategy text, rollout_percentage integer, target_user_count integer,
    condition_count integer, evaluations_24h bigint, enabled_24h bigint,
    enabled_ratio_24h numeric, updated_at timestamptz
)
language sql
stable
security definer
set search_path = ''
as $$
    -- the arguments first: a filter on the rows would not run on an empty table
    select public.monitoring_checked_limit(p_limit);
    select f.key, f.environment, f.known, f.name, f.enabled, f.rollout_strategy,
           f.rollout_percentage, f.target_user_count, f.condition_count, f.evaluations_24h,
           f.enabled_24h, f.enabled_ratio_24h, f.updated_at
      from public.feature_flag_overview f
     order by f.known desc, f.evaluations_24h desc, f.key, f.environment
     limit p_limit
$$;

create function public.monitoring_partitions()
returns table (
    parent text, partition text, is_default boolean, range_from timestamptz,
    range_to timestamptz, rows_estimate bigint, total_bytes bigint
)
language sql
stable
security definer
set search_path = ''
as $$
    select p.relname::text, c.relname::text,
           b.bound = 'DEFAULT',
           (pg_catalog.regexp_match(b.bound, 'FROM \(''([^'']+)''\)'))[1]::timestamptz,
           (pg_catalog.regexp_match(b.bound, 'TO \(''([^'']+)''\)'))[1]::timestamptz,
           greatest(c.reltuples, 0)::bigint,
           pg_catalog.pg_total_relation_size(c.oid)
      from pg_catalog.pg_class p
      join pg_catalog.pg_inherits i on i.inhparent = p.oid
      join pg_catalog.pg_class c on c.oid = i.inhrelid
     cross join lateral (select pg_catalog.pg_get_expr(c.relpartbound, c.oid) as bound) b
     where p.relnamespace = 'public'::regnamespace and p.relkind = 'p'
     order by 1, 3, 4
     limit 1000
$$;

-- the maintenance capability's own coverage report (partition_coverage), so the dashboard,
-- /metrics and `platformdb maintain --status` agree, plus each table's size
create function public.monitoring_partition_coverage()
returns table (
    parent text, partitions integer, current_month_covered boolean, months_ahead integer,
    months_ahead_target integer, covered_until timestamptz, default_rows bigint,
    total_bytes bigint, retention interval, archived_partitions integer,
    oldest_partition_from timestamptz
)
language sql
stable
security definer
set search_path = ''
as $$
    select c.table_name, c.attached_partitions, c.months_covered_ahead >= 0,
           c.months_covered_ahead, c.months_ahead_target, c.covered_until,
           coalesce(c.default_rows, 0),
           (select coalesce(sum(pg_catalog.pg_total_relation_size(i.inhrelid)), 0)::bigint
              from pg_catalog.pg_class t
              join pg_catalog.pg_inherits i on i.inhparent = t.oid
             where t.relnamespace = 'public'::regnamespace and t.relname = c.table_name),
           c.retention, c.archived_partitions, c.oldest_partition_from
      from public.partition_coverage() c
     order by c.table_name
$$;

create function public.monitoring_maintenance()
returns table (
    task text, description text, last_status text, last_source text,
    last_started_at timestamptz, last_finished_at timestamptz, last_affected bigint,
    last_error text, run_count bigint, failure_count bigint
)
language sql
stable
security definer
set search_path = ''
as $$
    select t.task, t.description, t.last_status, t.last_source, t.last_started_at,
           t.last_finished_at, t.last_affected, pg_catalog.left(t.last_error, 300), t.run_count,
           t.failure_count
      from public.maintenance_tasks t
     order by t.run_order
$$;

create function public.monitoring_metric_series(
    p_window interval default interval '1 hour',
    p_limit integer default 100
)
returns table (
    service_name text, metric_name text, metric_type text, unit text, samples bigint,
    last_recorded_at timestamptz, avg_value double precision, p50 double precision,
    p95 double precision, p99 double precision
)
language sql
stable
security definer
set search_path = ''
as $$
    -- the arguments first: a filter on the rows would not run on an empty table
    select public.monitoring_checked_window(p_window), public.monitoring_checked_limit(p_limit);
    -- the (service_name, metric_name, created_at) index walked one series at a time (a
    -- loose index scan), then each series' window aggregated through the same index
    with recursive series as (
        (select m.service_name, m.metric_name
           from public.system_metrics m
          where m.created_at >= pg_catalog.now() - p_window
            and m.created_at <= pg_catalog.now()
          order by m.service_name, m.metric_name
          limit 1)
        union all
        select n.service_name, n.metric_name
          from series s
         cross join lateral (
               select m.service_name, m.metric_name
                 from public.system_metrics m
                where (m.service_name, m.metric_name) > (s.service_name, s.metric_name)
                  and m.created_at >= pg_catalog.now() - p_window
                  and m.created_at <= pg_catalog.now()
                order by m.service_name, m.metric_name
                limit 1
              ) n
    )
    select s.service_name, s.metric_name, a.metric_type, a.unit, a.samples, a.last_recorded_at,
           a.avg_value, a.pct[1], a.pct[2], a.pct[3]
      from (select * from series limit p_limit) s
     cross join lateral (
           select max(m.metric_type) as metric_type, max(m.unit) as unit, count(*) as samples,
                  max(m.created_at) as last_recorded_at, avg(m.value) as avg_value,
                  percentile_cont(array[0.5, 0.95, 0.99]) within group (order by m.value) as pct
             from public.system_metrics m
            where m.service_name = s.service_name and m.metric_name = s.metric_name
              and m.created_at >= pg_catalog.now() - p_window
              and m.created_at <= pg_catalog.now()
          ) a
     order by s.service_name, s.metric_name
$$;

create function public.monitoring_metric_timeseries(
    p_service_name text,
    p_metric_name text,
    p_window interval default interval '1 hour',
    p_bucket interval default interval '1 minute'
)
returns table (
    bucket timestamptz, samples bigint, avg_value double precision, p50 double precision,
    p95 double precision, p99 double precision, max_value double precision
)
language sql
stable
security definer
set search_path = ''
as $$
    -- the arguments first: a filter on the rows would not run on an empty table
    select public.monitoring_checked_window(p_window, p_bucket);
    select b.bucket, b.samples, b.avg_value, b.pct[1], b.pct[2], b.pct[3], b.max_value
      from (select pg_catalog.date_bin(p_bucket, m.created_at, timestamptz '2000-01-03 00:00:00+00')
                       as bucket,
                   count(*) as samples, avg(m.value) as avg_value, max(m.value) as max_value,
                   percentile_cont(array[0.5, 0.95, 0.99]) within group (order by m.value) as pct
              from public.system_metrics m
             where m.service_name = p_service_name
               and m.metric_name = p_metric_name
               and m.created_at >= pg_catalog.now() - p_window
               and m.created_at <= pg_catalog.now()
             group by 1) b
     order by b.bucket
$$;

-- pg_stat_statements lives wherever it was installed (public on plain PostgreSQL,
-- extensions on Supabase) or nowhere: its schema is looked up at each call and the query
-- built with format('%I'); when the library is not preloaded, reading it raises 55000.
create function public.monitoring_query_stats_status()
returns table (installed boolean, readable boolean, extension_schema text, detail text)
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
    v_schema text;
    v_n bigint;
begin
    select n.nspname into v_schema
      from pg_catalog.pg_extension e join pg_catalog.pg_namespace n on n.oid = e.extnamespace
     where e.extname = 'pg_stat_statements';
    if v_schema is null then
        return query select false, false, null::text,
            'the pg_stat_statements extension is not installed in this database'::text;
        return;
    end if;
    begin
        execute pg_catalog.format('select count(*) from (select 1 from %I.pg_stat_statements limit 1) s',
                                  v_schema) into v_n;
    exception when object_not_in_prerequisite_state then
        return query select true, false, v_schema,
            'pg_stat_statements is installed but not in shared_preload_libraries'::text;
        return;
    end;
    return query select true, true, v_schema, 'ok'::text;
end
$$;

create function public.monitoring_query_stats(p_limit integer default 50)
returns table (
    object_name text, object_kind text, statements bigint, calls bigint,
    total_exec_ms double precision, mean_exec_ms double precision, rows bigint
)
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
    v_schema text;
begin
    perform public.monitoring_checked_limit(p_limit);
    select n.nspname into v_schema
      from pg_catalog.pg_extension e join pg_catalog.pg_namespace n on n.oid = e.extnamespace
     where e.extname = 'pg_stat_statements';
    if v_schema is null then
        return;
    end if;
    -- the 1000 queries of this database with the most execution time, attributed to each
    -- of the platform's functions and views they name (strpos first: cheap)
    return query execute pg_catalog.format($q$
        with s as (
            select st.query, st.calls, st.total_exec_time, st.rows
              from %I.pg_stat_statements st
             where st.dbid = (select d.oid from pg_catalog.pg_database d
                               where d.datname = pg_catalog.current_database())
               and st.query ~* '^\s*(select|insert|update|delete|with|values|table|merge)\M'
             order by st.total_exec_time desc
             limit 1000
        ), objects as (
            select p.proname::text as name, 'function'::text as kind
              from pg_catalog.pg_proc p
             where p.pronamespace = 'public'::regnamespace
               and not exists (select 1 from pg_catalog.pg_depend d
                                where d.classid = 'pg_catalog.pg_proc'::regclass
                                  and d.objid = p.oid and d.deptype = 'e')
            union
            select c.relname::text, 'view'
              from pg_catalog.pg_class c
             where c.relnamespace = 'public'::regnamespace and c.relkind in ('v', 'm')
               and not exists (select 1 from pg_catalog.pg_depend d
                                where d.classid = 'pg_catalog.pg_class'::regclass
                                  and d.objid = c.oid and d.deptype = 'e')
        )
        select o.name, o.kind, count(*)::bigint, sum(s.calls)::bigint,
               sum(s.total_exec_time), sum(s.total_exec_time) / nullif(sum(s.calls), 0),
               sum(s.rows)::bigint
          from objects o
          join s on pg_catalog.strpos(s.query, o.name) > 0
                and s.query ~ ('\m' || o.name || '\M')
         group by o.name, o.kind
         order by 5 desc, 1
         limit $1
    $q$, v_schema) using p_limit;
exception when object_not_in_prerequisite_state then
    return;  -- installed but not preloaded: monitoring_query_stats_status() says so
end
$$;

create function public.monitoring_top_statements(p_limit integer default 20)
returns table (query text, calls bigint, total_exec_ms double precision, mean_exec_ms double precision, rows bigint)
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
    v_schema text;
begin
    perform public.monitoring_checked_limit(p_limit);
    select n.nspname into v_schema
      from pg_catalog.pg_extension e join pg_catalog.pg_namespace n on n.oid = e.extnamespace
     where e.extname = 'pg_stat_statements';
    if v_schema is null then
        return;
    end if;
    -- queries only: their texts are normalised ($1, $2 … instead of values); utility
    -- statements (DDL, DO blocks, ALTER ROLE … PASSWORD) keep their literal text: not shown
    return query execute pg_catalog.format($q$
        select pg_catalog.left(st.query, 500), st.calls, st.total_exec_time, st.mean_exec_time, st.rows
          from %I.pg_stat_statements st
         where st.dbid = (select d.oid from pg_catalog.pg_database d
                           where d.datname = pg_catalog.current_database())
           and st.query ~* '^\s*(select|insert|update|delete|with|values|table|merge)\M'
         order by st.total_exec_time desc
         limit $1
    $q$, v_schema) using p_limit;
exception when object_not_in_prerequisite_state then
    return;
end
$$;

-- The dashboard's one write: put a queue's (or job type's) dead letters back to work and
-- leave an audit entry saying who asked.
create function public.monitoring_redrive_dead_letters(
    p_kind text,
    p_name text,
    p_limit integer default 100,
    p_requested_by text default null
)
returns integer
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
    v_count integer;
begin
    if p_kind is null or p_kind not in ('message', 'job') then
        raise exception 'p_kind must be message or job, got %', coalesce(p_kind, 'null')
            using errcode = '22023';
    end if;
    if p_name is null or p_name = '' then
        raise exception 'p_name must not be empty' using errcode = '22004';
    end if;
    if p_limit is null or p_limit < 1 or p_limit > 10000 then
        raise exception 'p_limit must be between 1 and 10000, got %', p_limit using errcode = '22003';
    end if;
    if p_requested_by is not null and char_length(p_requested_by) > 200 then
        raise exception 'p_requested_by must be at most 200 characters' using errcode = '22023';
    end if;
    if p_kind = 'message' then
        v_count := public.redrive_dead_letters(p_name, p_limit);
    else
        v_count := public.redrive_dead_letter_jobs(p_name, p_limit);
    end if;
    perform public.log_audit_event(
        p_actor_type => 'admin',
        p_action => case p_kind when 'message' then 'queue.redrive' else 'jobs.redrive' end,
        p_resource_type => case p_kind when 'message' then 'message_queue' else 'background_jobs' end,
        p_actor_identifier => coalesce(p_requested_by, session_user::text),
        p_resource_id => p_name,
        p_metadata => pg_catalog.jsonb_build_object('redriven', v_count, 'limit', p_limit,
                                                    'session_user', session_user::text));
    return v_count;
end
$$;

-- ---------------------------------------------------------------------------------------
-- RLS and grants (no tables here; every function: revoke, then grant what is needed)
-- ---------------------------------------------------------------------------------------
revoke all on function
    public.monitoring_checked_limit(integer),
    public.monitoring_checked_window(interval, interval),
    public.monitoring_services(integer),
    public.monitoring_queues(integer),
    public.monitoring_jobs(integer),
    public.monitoring_dead_letters(integer),
    public.monitoring_throughput(interval, interval),
    public.monitoring_whatsapp(),
    public.monitoring_whatsapp_sessions(),
    public.monitoring_whatsapp_failures(interval, integer),
    public.monitoring_payment_volume(interval, interval),
    public.monitoring_payment_open(),
    public.monitoring_cache(),
    public.monitoring_route_cache(),
    public.monitoring_cache_hit_rate(interval),
    public.monitoring_flags(integer),
    public.monitoring_partitions(),
    public.monitoring_partition_coverage(),
    public.monitoring_maintenance(),
    public.monitoring_metric_series(interval, integer),
    public.monitoring_metric_timeseries(text, text, interval, interval),
    public.monitoring_query_stats_status(),
    public.monitoring_query_stats(integer),
    public.monitoring_top_statements(integer),
    public.monitoring_redrive_dead_letters(text, text, integer, text)
    from public, anon, authenticated, service_role;
grant execute on function
    public.monitoring_services(integer),
    public.monitoring_queues(integer),
    public.monitoring_jobs(integer),
    public.monitoring_dead_letters(integer),
    public.monitoring_throughput(interval, interval),
    public.monitoring_whatsapp(),
    public.monitoring_whatsapp_sessions(),
    public.monitoring_whatsapp_failures(interval, integer),
    public.monitoring_payment_volume(interval, interval),
    public.monitoring_payment_open(),
    public.monitoring_cache(),
    public.monitoring_route_cache(),
    public.monitoring_cache_hit_rate(interval),
    public.monitoring_flags(integer),
    public.monitoring_partitions(),
    public.monitoring_partition_coverage(),
    public.monitoring_maintenance(),
    public.monitoring_metric_series(interval, integer),
    public.monitoring_metric_timeseries(text, text, interval, interval),
    public.monitoring_query_stats_status(),
    public.monitoring_query_stats(integer),
    public.monitoring_top_statements(integer),
    public.monitoring_redrive_dead_letters(text, text, integer, text)
    to service_role;

-- ---------------------------------------------------------------------------------------
-- comments (the dashboard shows these next to each definition)
-- ---------------------------------------------------------------------------------------
comment on index public.transactions_created_at_cover_idx is
    'Covers monitoring_payment_volume: the time window is an index range and currency, status, type and amount come from the index (index-only scan).';
comment on function public.monitoring_checked_limit(integer) is
    'Argument check of the monitoring functions: returns p_limit when it is between 1 and 1000 (else 22003; null 22004).';
comment on function public.monitoring_checked_window(interval, interval) is
    'Argument check of the monitoring functions: returns p_window when it is between 1 minute and 31 days, p_bucket between 1 second and p_window and at most 1000 buckets (22023; null 22004).';
comment on function public.monitoring_services(integer) is
    'Dashboard: services from service_health_overview, worst health first (healthy < 2 min since the last heartbeat, warning < 5 min, else critical). Read-only.';
comment on function public.monitoring_queues(integer) is
    'Dashboard and /metrics: message_queue_stats per queue (depth, ready, delayed, retrying, in flight, expired leases, dead letters, completed in the last hour, age of the oldest ready message). Read-only.';
comment on function public.monitoring_jobs(integer) is
    'Dashboard and /metrics: background_job_stats per job type (jobs by state, oldest ready age, average duration in the last hour, recurring schedules). Read-only.';
comment on function public.monitoring_dead_letters(integer) is
    'Dashboard: the newest dead letters of message_queue and background_jobs with their last error (at most p_limit, through the dead-letter indexes). Payloads are not shown. Read-only.';
comment on function public.monitoring_throughput(interval, interval) is
    'Dashboard: messages and jobs finished per p_bucket over p_window (completed and dead-lettered), through the finalized_at indexes. Read-only.';
comment on function public.monitoring_whatsapp() is
    'Dashboard and /metrics: whatsapp_queue_stats (queue depth, leases, oldest pending age, the sent → delivered → read funnel and failures of the last 24 hours, inbound traffic). Read-only.';
comment on function public.monitoring_whatsapp_sessions() is
    'Dashboard: whatsapp_session_stats, sessions by status. Read-only.';
comment on function public.monitoring_whatsapp_failures(interval, integer) is
    'Dashboard: outbound WhatsApp messages that failed within p_window, grouped by error (most frequent first). Read-only.';
comment on function public.monitoring_payment_volume(interval, interval) is
    'Dashboard and /metrics: transactions created within p_window per p_bucket, currency and current status, with count and amount (index-only scan of transactions_created_at_cover_idx). Read-only.';
comment on function public.monitoring_payment_open() is
    'Dashboard and /metrics: transactions still pending or processing and the age of the oldest (partial index transactions_open_status_idx). Read-only.';
comment on function public.monitoring_cache() is
    'Dashboard and /metrics: cache_stats per cache type (entries, expired, bytes, hits, misses and hit rate of the last 24 hours). Read-only.';
comment on function public.monitoring_route_cache() is
    'Dashboard and /metrics: route_cache_stats (cached routes, freshness, providers, lookups and hit rate of the last 24 hours). Read-only.';
comment on function public.monitoring_cache_hit_rate(interval) is
    'Dashboard: cache and route-cache hits and misses per hour over p_window, from cache_counters. Read-only.';
comment on function public.monitoring_flags(integer) is
    'Dashboard: feature_flag_overview (rollout strategy and percentage, evaluations and enabled share of the last 24 hours). Read-only.';
comment on function public.monitoring_partitions() is
    'Dashboard: every partition of the partitioned tables in public with its range, estimated rows and size (catalog only). Read-only.';
comment on function public.monitoring_partition_coverage() is
    'Dashboard and /metrics: partition_coverage() per partitioned table (months covered after the current one without a gap, -1 when the current month has no partition; rows in DEFAULT; archived partitions) with the table''s size. Read-only.';
comment on function public.monitoring_maintenance() is
    'Dashboard: maintenance_tasks, the last run of each maintenance task (status, source, rows or partitions affected, error). Read-only.';
comment on function public.monitoring_metric_series(interval, integer) is
    'Dashboard: each service/metric series with samples in p_window, with count, average, p50, p95 and p99 (a loose index scan over system_metrics_service_metric_time_idx). Read-only.';
comment on function public.monitoring_metric_timeseries(text, text, interval, interval) is
    'Dashboard: one series per p_bucket over p_window with average, p50, p95, p99 and max (system_metrics_service_metric_time_idx). Read-only.';
comment on function public.monitoring_query_stats_status() is
    'Dashboard: whether pg_stat_statements is installed in this database and readable (preloaded), and where. Read-only.';
comment on function public.monitoring_query_stats(integer) is
    'Dashboard: pg_stat_statements attributed to the platform''s functions and views that each statement names: statements, calls, total and mean execution time, rows. Read-only; empty when pg_stat_statements is unavailable.';
comment on function public.monitoring_top_statements(integer) is
    'Dashboard: the queries of this database with the most execution time (normalised text, no values; utility statements, whose text is literal, are left out). Read-only; empty when pg_stat_statements is unavailable.';
comment on function public.monitoring_redrive_dead_letters(text, text, integer, text) is
    'Dashboard (role platformdb_operator): re-drives up to p_limit dead letters of queue (p_kind message) or job type (p_kind job) p_name and writes an audit entry (admin, queue.redrive / jobs.redrive). Returns how many were re-driven.';

COMMIT;
