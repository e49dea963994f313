-- platformdb 20260401260000: citus capabilities (docs/scaling.md)
-- Every capability on a Citus coordinator with the same answers as on one PostgreSQL; on
-- one PostgreSQL each function and view below answers exactly as it did.
-- - on_citus_worker(): true on a Citus worker, false elsewhere (no Citus: false);
--   citus_table_of_shard(name): the table a shard belongs to; transaction_actor_role(): the
--   role a transaction event records (helpers of the triggers below);
-- - audit_row_change(): on Citus the audit trigger of a reference table (feature_flags,
--   feature_flag_segments) fires on every placement; it now writes its entry once, from the
--   coordinator's placement (Citus lets a reference table's placement on the coordinator run
--   distributed statements; a worker's placement may not), naming the table, not the shard.
--   Without Citus the same single insert as before;
-- - update_transaction_status: the row lock and the update also filter on the directory's
--   user_id (the distribution column of transactions on Citus: the statements are routed to
--   the one shard; on one node the same index lookups);
-- - stream_version: PL/pgSQL instead of a parameterised SQL function (Citus: "could not
--   create distributed plan");
-- - cleanup_expired_routes: clock_timestamp() read once into a variable (no volatile call in
--   the WHERE of a DELETE on a distributed table);
-- - route_cache_stats, event_store_stats, monitoring_payment_open: a derived table instead of
--   a subquery in the select list or a lateral subquery (Citus cannot push those down);
-- - monitoring_payment_volume: PL/pgSQL instead of a parameterised SQL function;
--   monitoring_metric_series too, and on Citus one aggregate grouped by series instead of the
--   loose index scan (a recursive query, which Citus cannot run on a distributed table);
-- - transactions_before_insert, transactions_after_status_change: the event's role through
--   transaction_actor_role() (on a Citus worker, the role of the forwarded claims);
-- - payments_refuse_change: names the table, not the shard, on Citus;
-- - feature_flags_notify_change, feature_flag_segments_notify_change: notify once, from the
--   coordinator's placement (a worker's transaction is prepared for two-phase commit, which
--   NOTIFY forbids).
-- Sections: guard → functions → views → grants → comments.
BEGIN;

-- ---------------------------------------------------------------------------------------
-- guard: stop before touching anything when one of our names belongs to someone else
-- ---------------------------------------------------------------------------------------
select public.platformdb_assert_names_free(array['on_citus_worker', 'citus_table_of_shard',
                                                'transaction_actor_role']);

-- ---------------------------------------------------------------------------------------
-- functions
-- ---------------------------------------------------------------------------------------
-- True on a Citus worker (a node whose group is not the coordinator's, group 0); false on
-- the coordinator and on a PostgreSQL without Citus. A row trigger of a reference table
-- fires on every placement: with this guard it acts once, on the coordinator's placement,
-- where Citus allows the statements it runs to reach any shard.
create function public.on_citus_worker()
returns boolean
language plpgsql
stable
set search_path = ''
as $$
begin
    if pg_catalog.to_regclass('pg_catalog.pg_dist_local_group') is null then
        return false;
    end if;
    return exists (select 1 from pg_catalog.pg_dist_local_group g where g.groupid <> 0);
end
$$;

-- The table a Citus shard belongs to (shards are named <table>_<shard id>), by its name;
-- null for any other name and without Citus. Triggers run on the shards: their messages and
-- audit entries name the table.
create function public.citus_table_of_shard(p_relname text)
returns text
language plpgsql
stable
set search_path = ''
as $$
declare
    v_table text;
begin
    if pg_catalog.to_regclass('pg_catalog.pg_dist_shard') is null then
        return null;
    end if;
    select c.relname into v_table
      from pg_catalog.pg_dist_shard s
      join pg_catalog.pg_class c on c.oid = s.logicalrelid
     where s.shardid = pg_catalog.substring(p_relname, '_([0-9]{1,18})$')::bigint
       and c.relname || '_' || s.shardid = p_relname;
    return v_table;
end
$$;

-- The role a transaction event records: the role the caller set (SET ROLE, as PostgREST and
-- the SDK do), else the session user. On a Citus worker the row triggers of transactions run
-- on a connection Citus opened as the current user of the coordinator (the owner inside
-- create_transaction and update_transaction_status): there the request's role comes from its
-- JWT claims, which Citus forwards (SET LOCAL). On one PostgreSQL: what the triggers read
-- before.
create function public.transaction_actor_role()
returns text
language plpgsql
stable
set search_path = ''
as $$
begin
    if pg_catalog.current_setting('role') <> 'none' then
        return pg_catalog.current_setting('role');
    end if;
    if public.on_citus_worker() then
        return coalesce(auth.role(), session_user::text);
    end if;
    return session_user::text;
end
$$;

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
    v_table text := tg_table_schema || '.' || tg_table_name;
begin
    if pg_catalog.to_regclass('pg_catalog.pg_dist_shard') is not null then
        -- on Citus a row trigger fires on every placement of the table: a reference table's
        -- change is written once, by the coordinator's placement (the worker placements'
        -- triggers return here); the entry names the table, not the placement (shard)
        if public.on_citus_worker() then
            return null;
        end if;
        v_table := tg_table_schema || '.' || coalesce(public.citus_table_of_shard(tg_table_name), tg_table_name);
    end if;
    -- clock_timestamp(): several changes in one transaction keep their order. The actor type
    -- is a searched CASE: Citus ships the statement to the shard with the role as a
    -- parameter, and a simple CASE over a parameter reaches it as a comparison of text with
    -- boolean
    insert into public.system_audit_logs
        (created_at, user_id, actor_type, actor_identifier, action, resource_type, resource_id,
         old_data, new_data, metadata)
    values (pg_catalog.clock_timestamp(), auth.uid(),
            case when v_role = 'authenticated' then 'user' when v_role = 'service_role' then 'service'
                 else 'system' end,
            coalesce(auth.uid()::text, session_user::text),
            lower(tg_op),
            v_table,
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
    v_user uuid;
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

    -- the directory finds the partition (and on Citus the shard: user_id is the distribution
    -- column of transactions); the row lock serialises concurrent changes
    select d.user_id, d.created_at into v_user, v_at
      from public.transaction_directory d where d.id = p_transaction_id;
    if found then
        select t.* into v_tx from public.transactions t
         where t.user_id = v_user and t.id = p_transaction_id and t.created_at = v_at
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
     where t.user_id = v_user and t.id = p_transaction_id and t.created_at = v_at;
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
            public.transaction_actor_role(), session_user);
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
            auth.uid(), public.transaction_actor_role(), session_user);
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
        -- on Citus the trigger runs on a shard (<table>_<shard id>): name the table
        v_table := coalesce(public.citus_table_of_shard(v_table), v_table);
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
    -- a reference table's trigger fires on every placement: notify once, from the
    -- coordinator's (where clients listen; a worker's transaction is prepared for two-phase
    -- commit, which NOTIFY forbids)
    if public.on_citus_worker() then
        return null;
    end if;
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
    -- as feature_flags_notify_change: once, from the coordinator's placement
    if public.on_citus_worker() then
        return null;
    end if;
    perform pg_catalog.pg_notify('platformdb_feature_flags', pg_catalog.json_build_object(
        'op', 'segment', 'key', null, 'segment', coalesce(new.id, old.id))::text);
    return null;
end
$$;

create or replace function public.stream_version(p_aggregate_type text, p_aggregate_id text)
returns integer
language plpgsql
stable
set search_path = ''
as $$
declare
    v_version integer;
begin
    -- PL/pgSQL, not a parameterised SQL function: Citus plans this key lookup with the
    -- values (a SQL function's parameters leave it "could not create distributed plan")
    select s.version into v_version
      from public.event_streams s
     where s.aggregate_type = p_aggregate_type and s.aggregate_id = p_aggregate_id;
    return coalesce(v_version, 0);
end
$$;

create or replace function public.cleanup_expired_routes()
returns integer
language plpgsql
set search_path = ''
as $$
declare
    -- read once, then a parameter (Citus refuses volatile calls in a modifying WHERE)
    v_now timestamptz := pg_catalog.clock_timestamp();
    v_count integer;
begin
    delete from public.routes r where r.cached_until <= v_now;
    get diagnostics v_count = row_count;
    return v_count;
end
$$;

create or replace function public.monitoring_payment_volume(
    p_window interval default interval '24 hours',
    p_bucket interval default interval '1 hour'
)
returns table (bucket timestamptz, currency text, status text, transactions bigint, amount numeric)
language plpgsql
stable
security definer
set search_path = ''
as $$
#variable_conflict use_column
begin
    -- the arguments first: a filter on the rows would not run on an empty table
    perform public.monitoring_checked_window(p_window, p_bucket);
    -- PL/pgSQL rather than a parameterised SQL function: Citus plans the statement with the
    -- values ("could not create distributed plan" otherwise); the same index-only scan
    return query
    select pg_catalog.date_bin(p_bucket, t.created_at, timestamptz '2000-01-03 00:00:00+00'),
           t.currency, t.status, count(*), sum(t.amount)
      from public.transactions t
     where t.created_at >= pg_catalog.now() - p_window
       and t.created_at <= pg_catalog.now()
     group by 1, 2, 3
     order by 1, 2, 3;
end
$$;

create or replace function public.monitoring_payment_open()
returns table (status text, open_count bigint, oldest_created_at timestamptz, oldest_age_seconds numeric)
language sql
stable
security definer
set search_path = ''
as $$
    -- the open transactions grouped by status (the partial index transactions_open_status_idx),
    -- joined to the two open states: a derived table Citus can plan, where a lateral subquery
    -- per state could not be pushed down to the shards
    select s.status, coalesce(o.open_count, 0), o.oldest_created_at,
           coalesce(pg_catalog.date_part('epoch', pg_catalog.now() - o.oldest_created_at), 0)::numeric(14, 3)
      from (values (1, 'pending'), (2, 'processing')) as s (ord, status)
      left join (
           select t.status, count(*) as open_count, min(t.created_at) as oldest_created_at
             from public.transactions t
            where t.status in ('pending', 'processing')
            group by t.status
          ) o on o.status = s.status
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
language plpgsql
stable
security definer
set search_path = ''
as $$
#variable_conflict use_column
begin
    -- the arguments first: a filter on the rows would not run on an empty table
    perform public.monitoring_checked_window(p_window), public.monitoring_checked_limit(p_limit);
    if exists (select 1 from pg_catalog.pg_extension where extname = 'citus') then
        -- on Citus system_metrics is spread by service_name: one aggregate grouped by the
        -- series (it contains the distribution column, so each shard computes its own series
        -- whole) instead of the loose index scan, which is a recursive query Citus cannot run
        return query
        select x.service_name, x.metric_name, x.metric_type, x.unit, x.samples, x.last_recorded_at,
               x.avg_value, x.pct[1], x.pct[2], x.pct[3]
          from (select m.service_name, m.metric_name, max(m.metric_type) as metric_type,
                       max(m.unit) as unit, count(*) as samples, max(m.created_at) as last_recorded_at,
                       avg(m.value) as avg_value,
                       percentile_cont(array[0.5, 0.95, 0.99]) within group (order by m.value) as pct
                  from public.system_metrics m
                 where m.created_at >= pg_catalog.now() - p_window
                   and m.created_at <= pg_catalog.now()
                 group by m.service_name, m.metric_name) x
         order by x.service_name, x.metric_name
         limit p_limit;
        return;
    end if;
    return query
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
         order by s.service_name, s.metric_name;
end
$$;

-- ---------------------------------------------------------------------------------------
-- views
-- ---------------------------------------------------------------------------------------
create or replace view public.route_cache_stats
with (security_invoker = true)
as
select r.total_routes,
       r.fresh_routes,
       r.total_routes - r.fresh_routes as expired_routes,
       p.routes_by_provider,
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
               round(avg(x.distance_meters)::numeric, 1) as avg_distance_meters,
               round(avg(x.duration_seconds), 1) as avg_duration_seconds,
               round(avg(x.traffic_multiplier), 2) as avg_traffic_multiplier,
               min(x.created_at) as oldest_at,
               max(x.created_at) as newest_at
          from public.routes x) r
 -- the providers as a derived table of their own, not a subquery in the select list above
 -- (which Citus cannot push down to the shards of routes)
 cross join (select coalesce(jsonb_object_agg(y.provider, y.n), '{}') as routes_by_provider
               from (select z.provider, count(*) as n from public.routes z
                      group by z.provider) y) p
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
       coalesce(max(h.events), 0) as events_last_hour
  from public.event_streams s
  -- the last hour's events per type as a derived table (a subquery per type correlated on
  -- aggregate_type, which is not the distribution column, is refused by Citus)
  left join (select e.aggregate_type, count(*) as events
               from public.event_store e
              where e.created_at >= now() - interval '1 hour'
              group by e.aggregate_type) h on h.aggregate_type = s.aggregate_type
 group by s.aggregate_type;


-- ---------------------------------------------------------------------------------------
-- grants (replaced functions and views keep theirs; restated here)
-- ---------------------------------------------------------------------------------------
-- the helpers are called by triggers, which run as whoever writes the table: executable by
-- the API roles (and the owner); each reads only catalog facts or the request's own settings
revoke all on function public.on_citus_worker(), public.citus_table_of_shard(text),
    public.transaction_actor_role()
    from public, anon, authenticated, service_role;
grant execute on function public.on_citus_worker(), public.citus_table_of_shard(text),
    public.transaction_actor_role()
    to anon, authenticated, service_role;
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

-- ---------------------------------------------------------------------------------------
-- comments
-- ---------------------------------------------------------------------------------------
comment on function public.citus_table_of_shard(text) is
    'The table a Citus shard (named <table>_<shard id>) belongs to, or null (another name, or no Citus). Lets triggers running on shards name the table. Executable by the API roles (triggers call it as the writing role).';
comment on function public.transaction_actor_role() is
    'The role a transaction event records: the role set for the request, else the session user; on a Citus worker, where the triggers run on a connection opened as the coordinator''s current user, the role of the forwarded JWT claims. Executable by the API roles (triggers call it as the writing role).';
comment on function public.on_citus_worker() is
    'True on a Citus worker node (its group is not the coordinator''s), false on the coordinator and without Citus. Lets a reference table''s row trigger act once, on the coordinator''s placement. Executable by the API roles (triggers call it as the writing role).';
comment on function public.audit_row_change() is
    'Generic row-change audit trigger: writes an audit entry with old and new row for INSERT, UPDATE and DELETE. Opt a table in with enable_audit(). On Citus it writes once per change, from the coordinator''s placement (a reference table''s trigger fires on every placement), and names the table rather than the shard.';
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
