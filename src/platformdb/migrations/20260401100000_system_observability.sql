-- platformdb 20260401100000: system observability (SPEC §3.1)
-- Metrics and an append-only audit log, both partitioned by month on created_at, plus the
-- shared helpers every later migration uses: the additive-only name guard and the
-- monthly-partition helper. Sections: guard → helpers → tables → indexes → functions →
-- views → RLS and grants → comments.
BEGIN;

-- ---------------------------------------------------------------------------------------
-- guard: stop before touching anything when one of our names belongs to someone else
-- ---------------------------------------------------------------------------------------
do $guard$
declare
    v_name text;
begin
    foreach v_name in array array[
        'system_metrics', 'system_audit_logs', 'partition_settings',
        'platformdb_assert_names_free', 'create_monthly_partitions',
        'register_partitioned_table', 'record_metric', 'record_metrics', 'log_audit_event',
        'audit_row_change', 'enable_audit', 'disable_audit', 'refuse_audit_change',
        'recent_metrics_by_service', 'metric_percentiles'
    ] loop
        if exists (select 1 from pg_catalog.pg_class c
                   where c.relnamespace = 'public'::regnamespace and c.relname = v_name)
           or exists (select 1 from pg_catalog.pg_proc p
                      where p.pronamespace = 'public'::regnamespace and p.proname = v_name)
        then
            raise exception 'platformdb: public.% already exists and is not ours', v_name
                using errcode = '42710',
                      hint = 'nothing was changed; rename the existing object or use another database';
        end if;
    end loop;
end
$guard$;

-- ---------------------------------------------------------------------------------------
-- shared helpers
-- ---------------------------------------------------------------------------------------
create function public.platformdb_assert_names_free(p_names text[])
returns void
language plpgsql
stable
set search_path = ''
as $$
declare
    v_name text;
begin
    foreach v_name in array p_names loop
        if exists (select 1 from pg_catalog.pg_class c
                   where c.relnamespace = 'public'::regnamespace and c.relname = v_name)
           or exists (select 1 from pg_catalog.pg_proc p
                      where p.pronamespace = 'public'::regnamespace and p.proname = v_name)
           or exists (select 1 from pg_catalog.pg_type t
                      where t.typnamespace = 'public'::regnamespace and t.typname = v_name
                        and t.typrelid = 0 and t.typelem = 0)
        then
            raise exception 'platformdb: public.% already exists and is not ours', v_name
                using errcode = '42710',
                      hint = 'nothing was changed; rename the existing object or use another database';
        end if;
    end loop;
end
$$;

create table public.partition_settings (
    table_name text primary key,
    months_ahead integer not null default 3,
    retention interval,
    archive_schema text not null default 'archive',
    updated_at timestamptz not null default now(),
    constraint partition_settings_months_ahead_range check (months_ahead between 1 and 36),
    constraint partition_settings_retention_positive
        check (retention is null or retention > interval '0')
);

create function public.create_monthly_partitions(
    p_parent regclass,
    p_months_ahead integer default null,
    p_now timestamptz default now()
)
returns integer
language plpgsql
set search_path = ''
as $$
declare
    v_schema text;
    v_table text;
    v_ahead integer;
    v_month date;
    v_from timestamptz;
    v_to timestamptz;
    v_part text;
    v_default text;
    v_moving bigint;
    v_created integer := 0;
begin
    if p_parent is null then
        raise exception 'p_parent must not be null' using errcode = '22004';
    end if;
    select n.nspname, c.relname into v_schema, v_table
      from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
     where c.oid = p_parent and c.relkind = 'p';
    if v_table is null then
        raise exception 'p_parent: % is not a partitioned table', p_parent
            using errcode = '22023';
    end if;
    select coalesce(p_months_ahead, s.months_ahead, 3) into v_ahead
      from (select 1) one
      left join public.partition_settings s on s.table_name = v_table;
    if v_ahead < 0 or v_ahead > 120 then
        raise exception 'p_months_ahead must be between 0 and 120, got %', v_ahead
            using errcode = '22023';
    end if;

    -- the DEFAULT partition: an insert outside every month never fails
    v_default := v_table || '_default';
    if to_regclass(pg_catalog.format('%I.%I', v_schema, v_default)) is null then
        execute pg_catalog.format('create table %I.%I partition of %I.%I default',
                                  v_schema, v_default, v_schema, v_table);
        execute pg_catalog.format('alter table %I.%I enable row level security', v_schema, v_default);
        execute pg_catalog.format('revoke all on table %I.%I from public, anon, authenticated, service_role',
                                  v_schema, v_default);
        v_created := v_created + 1;
    end if;

    for i in 0..v_ahead loop
        v_month := (pg_catalog.date_trunc('month', p_now at time zone 'UTC'))::date
                   + pg_catalog.make_interval(months => i);
        v_from := v_month::timestamp at time zone 'UTC';
        v_to := (v_month + interval '1 month')::timestamp at time zone 'UTC';
        v_part := v_table || '_p' || pg_catalog.to_char(v_month, 'YYYYMM');
        continue when to_regclass(pg_catalog.format('%I.%I', v_schema, v_part)) is not null
                   or to_regclass(pg_catalog.format('archive.%I', v_part)) is not null;

        execute pg_catalog.format(
            'select count(*) from %I.%I where created_at >= $1 and created_at < $2',
            v_schema, v_default)
          into v_moving using v_from, v_to;

        if v_moving = 0 then
            execute pg_catalog.format(
                'create table %I.%I partition of %I.%I for values from (%L) to (%L)',
                v_schema, v_part, v_schema, v_table, v_from, v_to);
        else
            -- rows for this month already sit in DEFAULT: move them into the new partition
            -- before attaching it, so nothing fails and nothing is lost
            execute pg_catalog.format(
                'create table %I.%I (like %I.%I including defaults including constraints)',
                v_schema, v_part, v_schema, v_table);
            execute pg_catalog.format(
                'with moved as (delete from %I.%I where created_at >= $1 and created_at < $2 returning *)'
                ' insert into %I.%I select * from moved',
                v_schema, v_default, v_schema, v_part) using v_from, v_to;
            execute pg_catalog.format(
                'alter table %I.%I attach partition %I.%I for values from (%L) to (%L)',
                v_schema, v_table, v_schema, v_part, v_from, v_to);
        end if;
        -- a partition is reachable only through its parent (whose RLS applies): Supabase's
        -- default privileges would otherwise grant anon and authenticated ALL on it
        execute pg_catalog.format('alter table %I.%I enable row level security', v_schema, v_part);
        execute pg_catalog.format('revoke all on table %I.%I from public, anon, authenticated, service_role',
                                  v_schema, v_part);
        v_created := v_created + 1;
    end loop;
    return v_created;
end
$$;

create function public.register_partitioned_table(
    p_parent regclass,
    p_retention interval default null,
    p_months_ahead integer default 3
)
returns integer
language plpgsql
set search_path = ''
as $$
declare
    v_table text;
begin
    select c.relname into v_table from pg_catalog.pg_class c
     where c.oid = p_parent and c.relkind = 'p';
    if v_table is null then
        raise exception 'p_parent: % is not a partitioned table', p_parent using errcode = '22023';
    end if;
    insert into public.partition_settings (table_name, months_ahead, retention)
    values (v_table, p_months_ahead, p_retention)
    on conflict (table_name) do update
       set months_ahead = excluded.months_ahead, retention = excluded.retention,
           updated_at = now();
    return public.create_monthly_partitions(p_parent, p_months_ahead);
end
$$;

-- ---------------------------------------------------------------------------------------
-- tables
-- ---------------------------------------------------------------------------------------
create table public.system_metrics (
    id uuid not null default gen_random_uuid(),
    created_at timestamptz not null default now(),
    service_name text not null,
    metric_type text not null,
    metric_name text not null,
    value double precision not null,
    unit text,
    tags jsonb not null default '{}',
    constraint system_metrics_pkey primary key (id, created_at),
    constraint system_metrics_metric_type_valid check (metric_type in
        ('latency', 'error_rate', 'throughput', 'memory', 'cpu', 'counter', 'gauge')),
    constraint system_metrics_service_name_length
        check (char_length(service_name) between 1 and 100),
    constraint system_metrics_metric_name_length
        check (char_length(metric_name) between 1 and 200),
    constraint system_metrics_unit_length check (unit is null or char_length(unit) <= 32),
    constraint system_metrics_value_finite
        check (value <> 'NaN'::float8 and value <> 'Infinity'::float8 and value <> '-Infinity'::float8),
    constraint system_metrics_tags_object
        check (jsonb_typeof(tags) = 'object' and pg_column_size(tags) <= 4096)
) partition by range (created_at);

create table public.system_audit_logs (
    id uuid not null default gen_random_uuid(),
    created_at timestamptz not null default now(),
    user_id uuid,
    actor_type text not null,
    actor_identifier text,
    action text not null,
    resource_type text not null,
    resource_id text,
    ip_address inet,
    user_agent text,
    correlation_id text,
    request_id text,
    session_id text,
    old_data jsonb,
    new_data jsonb,
    metadata jsonb not null default '{}',
    status text not null default 'success',
    error_message text,
    constraint system_audit_logs_pkey primary key (id, created_at),
    constraint system_audit_logs_actor_type_valid
        check (actor_type in ('user', 'service', 'system', 'admin')),
    constraint system_audit_logs_status_valid check (status in ('success', 'failure', 'denied')),
    constraint system_audit_logs_action_length check (char_length(action) between 1 and 100),
    constraint system_audit_logs_resource_type_length
        check (char_length(resource_type) between 1 and 100),
    constraint system_audit_logs_metadata_object
        check (jsonb_typeof(metadata) = 'object' and pg_column_size(metadata) <= 65536),
    constraint system_audit_logs_failure_has_error
        check (status = 'success' or error_message is not null)
) partition by range (created_at);

-- ---------------------------------------------------------------------------------------
-- indexes (declared on the parents; every partition gets them)
-- ---------------------------------------------------------------------------------------
create index system_metrics_service_metric_time_idx
    on public.system_metrics (service_name, metric_name, created_at desc);
create index system_metrics_created_at_brin on public.system_metrics using brin (created_at);
create index system_audit_logs_user_time_idx
    on public.system_audit_logs (user_id, created_at desc) where user_id is not null;
create index system_audit_logs_resource_idx
    on public.system_audit_logs (resource_type, resource_id, created_at desc);
create index system_audit_logs_correlation_idx
    on public.system_audit_logs (correlation_id) where correlation_id is not null;
create index system_audit_logs_created_at_brin on public.system_audit_logs using brin (created_at);

select public.register_partitioned_table('public.system_metrics', interval '90 days', 3);
select public.register_partitioned_table('public.system_audit_logs', interval '400 days', 3);

-- ---------------------------------------------------------------------------------------
-- functions
-- ---------------------------------------------------------------------------------------
create function public.record_metric(
    p_service_name text,
    p_metric_type text,
    p_metric_name text,
    p_value numeric,
    p_unit text default null,
    p_tags jsonb default '{}',
    p_recorded_at timestamptz default null
)
returns uuid
language plpgsql
set search_path = ''
as $$
declare
    v_id uuid;
begin
    if p_service_name is null or p_service_name = '' then
        raise exception 'p_service_name must not be empty' using errcode = '22004';
    end if;
    if p_metric_name is null or p_metric_name = '' then
        raise exception 'p_metric_name must not be empty' using errcode = '22004';
    end if;
    if p_metric_type is null or p_metric_type not in
        ('latency', 'error_rate', 'throughput', 'memory', 'cpu', 'counter', 'gauge') then
        raise exception 'p_metric_type: unknown metric type %', coalesce(p_metric_type, 'null')
            using errcode = '22023',
                  hint = 'one of latency, error_rate, throughput, memory, cpu, counter, gauge';
    end if;
    if p_value is null or p_value = 'NaN'::numeric then
        raise exception 'p_value must be a number' using errcode = '22004';
    end if;
    if abs(p_value) > 1e300 then
        raise exception 'p_value out of range' using errcode = '22003';
    end if;
    if p_tags is not null and jsonb_typeof(p_tags) <> 'object' then
        raise exception 'p_tags must be a JSON object' using errcode = '22023';
    end if;
    insert into public.system_metrics
        (service_name, metric_type, metric_name, value, unit, tags, created_at)
    values (p_service_name, p_metric_type, p_metric_name, p_value::double precision, p_unit,
            coalesce(p_tags, '{}'), coalesce(p_recorded_at, now()))
    returning id into v_id;
    return v_id;
end
$$;

create function public.record_metrics(p_metrics jsonb)
returns integer
language plpgsql
set search_path = ''
as $$
declare
    v_count integer;
begin
    if p_metrics is null or jsonb_typeof(p_metrics) <> 'array' then
        raise exception 'p_metrics must be a JSON array of metric objects' using errcode = '22023';
    end if;
    if jsonb_array_length(p_metrics) > 50000 then
        raise exception 'p_metrics: at most 50000 metrics per call, got %',
            jsonb_array_length(p_metrics) using errcode = '22023';
    end if;
    if exists (select 1 from jsonb_array_elements(p_metrics) e
                where jsonb_typeof(e) <> 'object'
                   or not (e ? 'service_name' and e ? 'metric_type' and e ? 'metric_name'
                           and e ? 'value')) then
        raise exception 'p_metrics: each element needs service_name, metric_type, metric_name, value'
            using errcode = '22023';
    end if;
    insert into public.system_metrics
        (service_name, metric_type, metric_name, value, unit, tags, created_at)
    select m.service_name, m.metric_type, m.metric_name, m.value, m.unit,
           coalesce(m.tags, '{}'), coalesce(m.recorded_at, now())
      from jsonb_to_recordset(p_metrics) as m(service_name text, metric_type text,
           metric_name text, value double precision, unit text, tags jsonb,
           recorded_at timestamptz);
    get diagnostics v_count = row_count;
    return v_count;
end
$$;

create function public.log_audit_event(
    p_actor_type text,
    p_action text,
    p_resource_type text,
    p_actor_identifier text default null,
    p_resource_id text default null,
    p_metadata jsonb default '{}',
    p_correlation_id text default null,
    p_user_id uuid default null,
    p_status text default 'success',
    p_error_message text default null,
    p_old_data jsonb default null,
    p_new_data jsonb default null,
    p_ip_address inet default null,
    p_user_agent text default null,
    p_request_id text default null,
    p_session_id text default null
)
returns uuid
language plpgsql
set search_path = ''
as $$
declare
    v_id uuid;
    v_user uuid := p_user_id;
begin
    if p_actor_type is null or p_actor_type not in ('user', 'service', 'system', 'admin') then
        raise exception 'p_actor_type: unknown actor type %', coalesce(p_actor_type, 'null')
            using errcode = '22023', hint = 'one of user, service, system, admin';
    end if;
    if p_action is null or p_action = '' then
        raise exception 'p_action must not be empty' using errcode = '22004';
    end if;
    if p_resource_type is null or p_resource_type = '' then
        raise exception 'p_resource_type must not be empty' using errcode = '22004';
    end if;
    if p_status is null or p_status not in ('success', 'failure', 'denied') then
        raise exception 'p_status: unknown status %', coalesce(p_status, 'null')
            using errcode = '22023', hint = 'one of success, failure, denied';
    end if;
    if p_metadata is not null and jsonb_typeof(p_metadata) <> 'object' then
        raise exception 'p_metadata must be a JSON object' using errcode = '22023';
    end if;
    -- a user actor identified by their uuid owns the entry (they may read it back)
    if v_user is null and p_actor_type = 'user'
       and p_actor_identifier ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' then
        v_user := p_actor_identifier::uuid;
    end if;
    insert into public.system_audit_logs
        (user_id, actor_type, actor_identifier, action, resource_type, resource_id, metadata,
         correlation_id, status, error_message, old_data, new_data, ip_address, user_agent,
         request_id, session_id)
    values (v_user, p_actor_type, p_actor_identifier, p_action, p_resource_type, p_resource_id,
            coalesce(p_metadata, '{}'), p_correlation_id, p_status,
            case when p_status <> 'success' then coalesce(p_error_message, p_status) else p_error_message end,
            p_old_data, p_new_data, p_ip_address, p_user_agent, p_request_id, p_session_id)
    returning id into v_id;
    return v_id;
end
$$;

-- Generic audit trigger. SECURITY DEFINER because the audited table's writers (e.g. a
-- signed-in user) must not need INSERT on the audit log itself; search_path is pinned and
-- every name is qualified.
create function public.audit_row_change()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_role text := coalesce(auth.role(), 'system');
    v_old jsonb := case when tg_op in ('UPDATE', 'DELETE') then to_jsonb(old) end;
    v_new jsonb := case when tg_op in ('INSERT', 'UPDATE') then to_jsonb(new) end;
begin
    -- clock_timestamp(): several changes in one transaction keep their order
    insert into public.system_audit_logs
        (created_at, user_id, actor_type, actor_identifier, action, resource_type, resource_id,
         old_data, new_data, metadata)
    values (pg_catalog.clock_timestamp(), auth.uid(),
            case v_role when 'authenticated' then 'user' when 'service_role' then 'service'
                        else 'system' end,
            coalesce(auth.uid()::text, session_user::text),
            lower(tg_op),
            tg_table_schema || '.' || tg_table_name,
            coalesce(v_new ->> 'id', v_old ->> 'id'),
            v_old, v_new,
            jsonb_build_object('role', v_role, 'trigger', tg_name));
    return null;
end
$$;

create function public.enable_audit(p_table regclass)
returns void
language plpgsql
set search_path = ''
as $$
begin
    if p_table is null then
        raise exception 'p_table must not be null' using errcode = '22004';
    end if;
    execute pg_catalog.format('drop trigger if exists platformdb_audit on %s', p_table);
    execute pg_catalog.format(
        'create trigger platformdb_audit after insert or update or delete on %s'
        ' for each row execute function public.audit_row_change()', p_table);
end
$$;

create function public.disable_audit(p_table regclass)
returns void
language plpgsql
set search_path = ''
as $$
begin
    execute pg_catalog.format('drop trigger if exists platformdb_audit on %s', p_table);
end
$$;

create function public.refuse_audit_change()
returns trigger
language plpgsql
set search_path = ''
as $$
declare
    v_owner name;
begin
    select c.relowner::regrole::name into v_owner
      from pg_catalog.pg_class c where c.oid = tg_relid;
    if current_user <> v_owner then
        raise exception 'system_audit_logs is append-only: % is not allowed', lower(tg_op)
            using errcode = 'PD006';
    end if;
    return case tg_op when 'DELETE' then old else new end;
end
$$;

create trigger system_audit_logs_append_only
    before update or delete on public.system_audit_logs
    for each row execute function public.refuse_audit_change();

-- ---------------------------------------------------------------------------------------
-- views
-- ---------------------------------------------------------------------------------------
create view public.recent_metrics_by_service
with (security_invoker = true)
as
select m.service_name,
       m.metric_type,
       m.metric_name,
       max(m.unit) as unit,
       count(*) as sample_count,
       avg(m.value) as avg_value,
       min(m.value) as min_value,
       max(m.value) as max_value,
       max(m.created_at) as last_recorded_at
  from public.system_metrics m
 where m.created_at >= now() - interval '1 hour'
   and m.created_at <= now()
 group by m.service_name, m.metric_type, m.metric_name;

create view public.metric_percentiles
with (security_invoker = true)
as
select m.service_name,
       m.metric_type,
       m.metric_name,
       max(m.unit) as unit,
       count(*) as sample_count,
       percentile_cont(0.50) within group (order by m.value) as p50,
       percentile_cont(0.95) within group (order by m.value) as p95,
       percentile_cont(0.99) within group (order by m.value) as p99
  from public.system_metrics m
 where m.created_at >= now() - interval '1 hour'
   and m.created_at <= now()
 group by m.service_name, m.metric_type, m.metric_name;

-- ---------------------------------------------------------------------------------------
-- RLS and grants (Supabase grants ALL by default: take it back, then grant what is needed)
-- ---------------------------------------------------------------------------------------
alter table public.partition_settings enable row level security;
alter table public.system_metrics enable row level security;
alter table public.system_audit_logs enable row level security;

create policy partition_settings_service_read on public.partition_settings
    for select to service_role using (true);
create policy system_metrics_service_insert on public.system_metrics
    for insert to service_role with check (true);
create policy system_metrics_service_read on public.system_metrics
    for select to service_role using (true);
create policy system_audit_logs_service_insert on public.system_audit_logs
    for insert to service_role with check (true);
create policy system_audit_logs_service_read on public.system_audit_logs
    for select to service_role using (true);
create policy system_audit_logs_own_read on public.system_audit_logs
    for select to authenticated using (user_id = (select auth.uid()));

revoke all on table public.partition_settings, public.system_metrics, public.system_audit_logs,
    public.recent_metrics_by_service, public.metric_percentiles
    from public, anon, authenticated, service_role;
grant select on table public.partition_settings to service_role;
grant select, insert on table public.system_metrics to service_role;
grant select, insert on table public.system_audit_logs to service_role;
grant select on table public.system_audit_logs to authenticated;
grant select on table public.recent_metrics_by_service, public.metric_percentiles to service_role;

revoke all on function
    public.platformdb_assert_names_free(text[]),
    public.create_monthly_partitions(regclass, integer, timestamptz),
    public.register_partitioned_table(regclass, interval, integer),
    public.record_metric(text, text, text, numeric, text, jsonb, timestamptz),
    public.record_metrics(jsonb),
    public.log_audit_event(text, text, text, text, text, jsonb, text, uuid, text, text, jsonb,
                           jsonb, inet, text, text, text),
    public.audit_row_change(),
    public.enable_audit(regclass),
    public.disable_audit(regclass),
    public.refuse_audit_change()
    from public, anon, authenticated, service_role;
grant execute on function
    public.record_metric(text, text, text, numeric, text, jsonb, timestamptz),
    public.record_metrics(jsonb),
    public.log_audit_event(text, text, text, text, text, jsonb, text, uuid, text, text, jsonb,
                           jsonb, inet, text, text, text)
    to service_role;

-- ---------------------------------------------------------------------------------------
-- comments (the reference docs and the dashboard read these from the catalog)
-- ---------------------------------------------------------------------------------------
comment on table public.partition_settings is
    'Per partitioned table: how many months ahead to keep partitions and how long to retain them (null = forever; past retention a partition is detached into archive_schema, never dropped).';
comment on column public.partition_settings.table_name is 'Partitioned table in public.';
comment on column public.partition_settings.months_ahead is 'Partitions are kept from the current month through this many months ahead.';
comment on column public.partition_settings.retention is 'Age after which a month is detached into the archive schema; null keeps everything attached.';
comment on column public.partition_settings.archive_schema is 'Schema that receives detached partitions.';
comment on column public.partition_settings.updated_at is 'Last change of this row.';
comment on function public.platformdb_assert_names_free(text[]) is
    'Additive-only guard used at the top of each migration: raises 42710 naming the first public name already taken.';
comment on function public.create_monthly_partitions(regclass, integer, timestamptz) is
    'Creates the DEFAULT partition and monthly partitions from p_now''s month through p_months_ahead months ahead; rows already in DEFAULT for a new month are moved into it. Partitions get RLS and no grants: they are reached through the parent only. Returns the number of partitions created.';
comment on function public.register_partitioned_table(regclass, interval, integer) is
    'Records a partitioned table''s retention and look-ahead in partition_settings and creates its partitions.';

comment on table public.system_metrics is
    'Time-series metrics reported by services (latency, error rate, throughput, resources, counters, gauges). Partitioned by month on created_at; retention 90 days by default.';
comment on column public.system_metrics.id is 'Metric sample id.';
comment on column public.system_metrics.created_at is 'When the sample was taken (partition key).';
comment on column public.system_metrics.service_name is 'Reporting service, e.g. wa-webhook.';
comment on column public.system_metrics.metric_type is 'latency, error_rate, throughput, memory, cpu, counter or gauge.';
comment on column public.system_metrics.metric_name is 'What was measured, e.g. message_processing.';
comment on column public.system_metrics.value is 'Sample value (finite).';
comment on column public.system_metrics.unit is 'Unit of value, e.g. ms, percent, bytes.';
comment on column public.system_metrics.tags is 'Free-form dimensions (JSON object, at most 4 KiB).';

comment on table public.system_audit_logs is
    'Append-only audit trail of who did what to which resource. Partitioned by month on created_at; retention 400 days (older months are detached into archive, not dropped). UPDATE and DELETE are refused for everyone but the table owner.';
comment on column public.system_audit_logs.id is 'Audit entry id.';
comment on column public.system_audit_logs.created_at is 'When it happened (partition key).';
comment on column public.system_audit_logs.user_id is 'The user the entry is about; that user may read it.';
comment on column public.system_audit_logs.actor_type is 'user, service, system or admin.';
comment on column public.system_audit_logs.actor_identifier is 'Who acted: a user id, a service name, a job name.';
comment on column public.system_audit_logs.action is 'What was done, e.g. payment.completed.';
comment on column public.system_audit_logs.resource_type is 'Kind of resource acted on, e.g. transaction.';
comment on column public.system_audit_logs.resource_id is 'Id of the resource acted on.';
comment on column public.system_audit_logs.ip_address is 'Client address, when known.';
comment on column public.system_audit_logs.user_agent is 'Client user agent, when known.';
comment on column public.system_audit_logs.correlation_id is 'Ties together everything one request caused.';
comment on column public.system_audit_logs.request_id is 'The request that caused it.';
comment on column public.system_audit_logs.session_id is 'The session (e.g. WhatsApp conversation) it belongs to.';
comment on column public.system_audit_logs.old_data is 'Row before the change (audit trigger).';
comment on column public.system_audit_logs.new_data is 'Row after the change (audit trigger).';
comment on column public.system_audit_logs.metadata is 'Additional context (JSON object).';
comment on column public.system_audit_logs.status is 'success, failure or denied.';
comment on column public.system_audit_logs.error_message is 'Why it failed or was denied (required unless success).';

comment on function public.record_metric(text, text, text, numeric, text, jsonb, timestamptz) is
    'Records one metric sample and returns its id. Service only. Unknown metric type -> 22023; empty names -> 22004.';
comment on function public.record_metrics(jsonb) is
    'Batch ingest: inserts a JSON array of {service_name, metric_type, metric_name, value, unit?, tags?, recorded_at?} in one statement (at most 50000) and returns the count. Service only. (The Python SDK can also COPY.)';
comment on function public.log_audit_event(text, text, text, text, text, jsonb, text, uuid, text, text, jsonb, jsonb, inet, text, text, text) is
    'Appends an audit entry and returns its id. Service only. A user actor identified by a uuid (or p_user_id) owns the entry and may read it.';
comment on function public.audit_row_change() is
    'Generic row-change audit trigger: writes an audit entry with old and new row for INSERT, UPDATE and DELETE. Opt a table in with enable_audit().';
comment on function public.enable_audit(regclass) is 'Opts a table into auditing (trigger platformdb_audit). Owner only.';
comment on function public.disable_audit(regclass) is 'Removes the platformdb_audit trigger from a table. Owner only.';
comment on function public.refuse_audit_change() is 'Trigger keeping system_audit_logs append-only: refuses UPDATE and DELETE (PD006) unless run by the table owner.';

comment on view public.recent_metrics_by_service is
    'Last hour per service and metric: sample count, average, min, max and last time. Service only.';
comment on view public.metric_percentiles is
    'Last hour per service and metric: p50, p95 and p99 (continuous percentiles). Service only.';

COMMIT;
