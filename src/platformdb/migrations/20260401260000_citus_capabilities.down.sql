-- platformdb 20260401260000 down: the exact reverse of citus capabilities.
-- The functions and views as their own migrations defined them (20260401100000,
-- 20260401120000, 20260401130000, 20260401140000, 20260401150000, 20260401170000,
-- 20260401180000); the helpers dropped.
BEGIN;

create or replace function public.audit_row_change()
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

create or replace function public.update_transaction_status(
    p_transaction_id uuid,
    p_new_status text,
    p_error_message text default null,
    p_error_code text default null,
    p_provider_reference text default null
)
returns boolean
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
    v_role text := case when pg_catalog.current_setting('role') = 'none' then session_user::text
                        else pg_catalog.current_setting('role') end;
    -- services: see create_transaction
    v_service boolean := v_role = 'service_role'
        or pg_catalog.pg_has_role(v_role, 'service_role', 'member')
        or pg_catalog.pg_has_role(v_role, (select c.relowner from pg_catalog.pg_class c
                                            where c.oid = 'public.transactions'::regclass),
                                  'member');
    v_uid uuid := auth.uid();
    v_at timestamptz;
    v_tx public.transactions;
begin
    if not v_service and v_uid is null then
        raise exception 'update_transaction_status: sign-in required' using errcode = '42501';
    end if;
    if p_transaction_id is null then
        raise exception 'p_transaction_id must not be null' using errcode = '22004';
    end if;
    if p_new_status is null then
        raise exception 'p_new_status must not be null' using errcode = '22004';
    end if;
    if p_new_status not in ('pending', 'processing', 'completed', 'failed', 'cancelled', 'reversed') then
        raise exception 'p_new_status: unknown status %', p_new_status
            using errcode = '22023',
                  hint = 'one of pending, processing, completed, failed, cancelled, reversed';
    end if;
    if char_length(p_error_message) > 2000 then
        raise exception 'p_error_message must be at most 2000 characters' using errcode = '22023';
    end if;
    if char_length(p_error_code) > 100 then
        raise exception 'p_error_code must be at most 100 characters' using errcode = '22023';
    end if;
    if char_length(p_provider_reference) > 200 then
        raise exception 'p_provider_reference must be at most 200 characters' using errcode = '22023';
    end if;

    -- the directory finds the partition; the row lock serialises concurrent changes
    select d.created_at into v_at from public.transaction_directory d where d.id = p_transaction_id;
    if found then
        select t.* into v_tx from public.transactions t
         where t.id = p_transaction_id and t.created_at = v_at
           for update;
    end if;
    if v_tx.id is null or (not v_service and v_tx.user_id <> v_uid) then
        raise exception 'p_transaction_id: transaction % not found', p_transaction_id
            using errcode = 'PD004';
    end if;

    if v_tx.status = p_new_status then
        return false;  -- already there (a repeated provider callback): nothing written
    end if;
    if not p_new_status = any (public.transaction_next_statuses(v_tx.status)) then
        raise exception 'illegal transition % -> % for transaction %',
            v_tx.status, p_new_status, p_transaction_id
            using errcode = 'PD002',
                  hint = case when cardinality(public.transaction_next_statuses(v_tx.status)) = 0
                              then v_tx.status || ' is final'
                              else 'from ' || v_tx.status || ' the next status is one of '
                                   || array_to_string(public.transaction_next_statuses(v_tx.status), ', ')
                         end;
    end if;
    if not v_service
       and not (p_new_status = 'cancelled' and v_tx.status = 'pending'
                and v_tx.type in ('payment', 'transfer', 'debit')) then
        raise exception 'p_new_status: only a service may set % on a % transaction',
            p_new_status, v_tx.status
            using errcode = '42501',
                  hint = 'a user may only cancel their own pending payment, transfer or debit';
    end if;
    if not v_service
       and (p_error_message is not null or p_error_code is not null
            or p_provider_reference is not null) then
        raise exception 'update_transaction_status: only a service may set %',
            concat_ws(', ',
                      case when p_error_message is not null then 'p_error_message' end,
                      case when p_error_code is not null then 'p_error_code' end,
                      case when p_provider_reference is not null then 'p_provider_reference' end)
            using errcode = '42501',
                  hint = 'a user''s cancellation changes only the status; provider fields are the service''s';
    end if;

    update public.transactions t
       set status = p_new_status,
           error_message = case when p_new_status = 'failed'
                                then coalesce(p_error_message, 'failed (no reason given)')
                                else coalesce(p_error_message, t.error_message) end,
           error_code = coalesce(p_error_code, t.error_code),
           provider_reference = coalesce(p_provider_reference, t.provider_reference)
     where t.id = p_transaction_id and t.created_at = v_at;
    return true;
end
$$;

create or replace function public.transactions_before_insert()
returns trigger
language plpgsql
set search_path = ''
as $$
declare
    v_minor smallint;
begin
    if new.status <> 'pending' then
        raise exception 'a transaction starts pending, not %', new.status
            using errcode = 'PD002';
    end if;
    select c.minor_units into v_minor from public.currencies c where c.code = new.currency;
    if not found then
        raise exception 'currency: unknown currency %', new.currency using errcode = '22023';
    end if;
    if new.amount <> round(new.amount, v_minor) then
        raise exception 'amount: % has % decimal places, got %', new.currency, v_minor, new.amount
            using errcode = '22023';
    end if;
    -- global uniqueness of id and transaction_ref across every month
    insert into public.transaction_directory (id, transaction_ref, user_id, created_at)
    values (new.id, new.transaction_ref, new.user_id, new.created_at);
    insert into public.transaction_events
        (transaction_id, user_id, previous_status, new_status, triggered_by_user_id,
         triggered_by_role, triggered_by)
    values (new.id, new.user_id, null, new.status, auth.uid(),
            case when pg_catalog.current_setting('role') = 'none' then session_user::text
                 else pg_catalog.current_setting('role') end, session_user);
    return new;
end
$$;

create or replace function public.transactions_after_status_change()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
    insert into public.transaction_events
        (transaction_id, user_id, previous_status, new_status, error_code, error_message,
         triggered_by_user_id, triggered_by_role, triggered_by)
    values (new.id, new.user_id, old.status, new.status,
            case when new.error_code is distinct from old.error_code then new.error_code end,
            case when new.error_message is distinct from old.error_message then new.error_message end,
            auth.uid(), case when pg_catalog.current_setting('role') = 'none' then session_user::text
                 else pg_catalog.current_setting('role') end, session_user);
    return null;
end
$$;

create or replace function public.payments_refuse_change()
returns trigger
language plpgsql
set search_path = ''
as $$
declare
    v_owner name;
    v_table name;
begin
    -- name the table the caller wrote to, not the partition the row sits in
    select c.relowner::regrole::name, c.relname into v_owner, v_table
      from pg_catalog.pg_class c
     where c.oid = coalesce(pg_catalog.pg_partition_root(tg_relid), tg_relid);
    if current_user <> v_owner then
        raise exception '%: % is not allowed; rows are kept forever', v_table, lower(tg_op)
            using errcode = 'PD006';
    end if;
    return case tg_op when 'DELETE' then old else new end;
end
$$;

create or replace function public.feature_flags_notify_change()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
    if tg_op in ('INSERT', 'UPDATE') then
        perform pg_catalog.pg_notify('platformdb_feature_flags', pg_catalog.json_build_object(
            'op', pg_catalog.lower(tg_op), 'key', new.key, 'environment', new.environment,
            'version', new.version)::text);
    end if;
    if tg_op = 'DELETE'
       or (tg_op = 'UPDATE' and (new.key, new.environment) is distinct from (old.key, old.environment)) then
        -- a deleted row, or the place a moved row left
        perform pg_catalog.pg_notify('platformdb_feature_flags', pg_catalog.json_build_object(
            'op', 'delete', 'key', old.key, 'environment', old.environment,
            'version', old.version)::text);
    end if;
    return null;
end
$$;

create or replace function public.feature_flag_segments_notify_change()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
    perform pg_catalog.pg_notify('platformdb_feature_flags', pg_catalog.json_build_object(
        'op', 'segment', 'key', null, 'segment', coalesce(new.id, old.id))::text);
    return null;
end
$$;

create or replace function public.stream_version(p_aggregate_type text, p_aggregate_id text)
returns integer
language sql
stable
set search_path = ''
as $$
    select coalesce((select s.version from public.event_streams s
                      where s.aggregate_type = p_aggregate_type
                        and s.aggregate_id = p_aggregate_id), 0)
$$;

create or replace function public.cleanup_expired_routes()
returns integer
language plpgsql
set search_path = ''
as $$
declare
    v_count integer;
begin
    delete from public.routes r where r.cached_until <= pg_catalog.clock_timestamp();
    get diagnostics v_count = row_count;
    return v_count;
end
$$;

create or replace function public.monitoring_payment_volume(
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

create or replace function public.monitoring_payment_open()
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

create or replace function public.monitoring_metric_series(
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

create or replace view public.route_cache_stats
with (security_invoker = true)
as
select r.total_routes,
       r.fresh_routes,
       r.total_routes - r.fresh_routes as expired_routes,
       r.routes_by_provider,
       r.avg_distance_meters,
       r.avg_duration_seconds,
       r.avg_traffic_multiplier,
       r.oldest_at,
       r.newest_at,
       coalesce(l.hits, 0) as hits_24h,
       coalesce(l.misses, 0) as misses_24h,
       case when coalesce(l.hits, 0) + coalesce(l.misses, 0) > 0
            then round(l.hits / (l.hits + l.misses), 4) end as hit_rate_24h
  from (select count(*) as total_routes,
               count(*) filter (where x.cached_until > now()) as fresh_routes,
               coalesce((select jsonb_object_agg(p.provider, p.n)
                           from (select y.provider, count(*) as n from public.routes y
                                  group by y.provider) p), '{}') as routes_by_provider,
               round(avg(x.distance_meters)::numeric, 1) as avg_distance_meters,
               round(avg(x.duration_seconds), 1) as avg_duration_seconds,
               round(avg(x.traffic_multiplier), 2) as avg_traffic_multiplier,
               min(x.created_at) as oldest_at,
               max(x.created_at) as newest_at
          from public.routes x) r
 cross join (select sum(c.hits) as hits, sum(c.misses) as misses
               from public.cache_counters c
              where c.namespace = 'route'
                and c.bucket >= date_trunc('hour', now()) - interval '23 hours') l;

create or replace view public.event_store_stats
with (security_invoker = true)
as
select s.aggregate_type,
       count(*) as stream_count,
       sum(s.version)::bigint as event_count,
       max(s.version) as longest_stream,
       max(s.updated_at) as last_event_at,
       (select count(*) from public.event_store e
         where e.aggregate_type = s.aggregate_type
           and e.created_at >= now() - interval '1 hour') as events_last_hour
  from public.event_streams s
 group by s.aggregate_type;


drop function public.transaction_actor_role();
drop function public.citus_table_of_shard(text);
drop function public.on_citus_worker();

revoke all on function public.audit_row_change() from public, anon, authenticated, service_role;
revoke all on function public.transactions_before_insert(), public.transactions_after_status_change(),
    public.payments_refuse_change(), public.feature_flags_notify_change(),
    public.feature_flag_segments_notify_change()
    from public, anon, authenticated, service_role;
revoke all on function public.update_transaction_status(uuid, text, text, text, text)
    from public, anon, authenticated, service_role;
grant execute on function public.update_transaction_status(uuid, text, text, text, text)
    to authenticated, service_role;
revoke all on function public.stream_version(text, text) from public, anon, authenticated, service_role;
grant execute on function public.stream_version(text, text) to service_role;
revoke all on function public.cleanup_expired_routes() from public, anon, authenticated, service_role;
grant execute on function public.cleanup_expired_routes() to service_role;
revoke all on table public.route_cache_stats from public, anon, authenticated, service_role;
grant select on table public.route_cache_stats to service_role;
revoke all on table public.event_store_stats from public, anon, authenticated, service_role;
grant select on table public.event_store_stats to service_role;
revoke all on function public.monitoring_payment_volume(interval, interval), public.monitoring_payment_open(),
    public.monitoring_metric_series(interval, integer)
    from public, anon, authenticated, service_role;
grant execute on function public.monitoring_payment_volume(interval, interval), public.monitoring_payment_open(),
    public.monitoring_metric_series(interval, integer)
    to service_role;

comment on function public.audit_row_change() is
    'Generic row-change audit trigger: writes an audit entry with old and new row for INSERT, UPDATE and DELETE. Opt a table in with enable_audit().';
comment on function public.update_transaction_status(uuid, text, text, text, text) is
    'Moves a transaction along the state machine and returns true; false when it already has p_new_status (nothing written). Illegal transition -> PD002; unknown or not-yours -> PD004. Services may make any legal change; a signed-in user may only cancel their own pending payment, transfer or debit (42501 otherwise), and that cancellation changes only the status: p_error_message, p_error_code and p_provider_reference are the service''s (42501 from a user). Terminal states set completed_at; every change appends transaction_events.';
comment on function public.stream_version(text, text) is 'Current version of a stream (0 when it does not exist). Service only.';
comment on function public.transactions_before_insert() is
    'Trigger: a new transaction starts pending with an amount valid for its currency; records it in transaction_directory (global id and reference uniqueness) and appends its creation event.';
comment on function public.transactions_after_status_change() is
    'Trigger: appends a transaction_events row (previous, new status, who) for every status change.';
comment on function public.payments_refuse_change() is
    'Trigger keeping transaction_events, transaction_directory and transaction_idempotency_keys append-only and transactions undeletable (PD006) for everyone but the table owner.';
comment on function public.feature_flags_notify_change() is 'Trigger: NOTIFY platformdb_feature_flags with {op, key, environment, version} for every change (SDK clients reload that key).';
comment on function public.feature_flag_segments_notify_change() is 'Trigger: NOTIFY platformdb_feature_flags {op: segment} (clients reload every flag).';
comment on function public.cleanup_expired_routes() is 'Deletes routes past cached_until; returns how many. Service only.';
comment on view public.route_cache_stats is
    'The route cache in one row: routes (fresh, expired, by provider), average distance, duration and traffic multiplier, oldest and newest, and lookups hits, misses and hit rate over the last 24 hours. Service only.';
comment on view public.event_store_stats is
    'Per aggregate type: streams, events, longest stream, last append and events in the last hour. Service only.';
comment on function public.monitoring_payment_volume(interval, interval) is
    'Dashboard and /metrics: transactions created within p_window per p_bucket, currency and current status, with count and amount (index-only scan of transactions_created_at_cover_idx). Read-only.';
comment on function public.monitoring_payment_open() is
    'Dashboard and /metrics: transactions still pending or processing and the age of the oldest (partial index transactions_open_status_idx). Read-only.';
comment on function public.monitoring_metric_series(interval, integer) is
    'Dashboard: each service/metric series with samples in p_window, with count, average, p50, p95 and p99 (a loose index scan over system_metrics_service_metric_time_idx). Read-only.';

COMMIT;
