-- platformdb 20260401290000 down: the exact reverse of event_store_domains.
-- Restores the bodies of read_stream, read_category, read_all, get_aggregate_events and
-- append_events as 20260401140000 gave them, the table checks of event_store and
-- event_streams (validated, as they were) and their columns' types; drops the domains.
BEGIN;

-- the view that reads the columns is recreated below, as 20260401260000 made it
-- platformdb-lint: allow additive-only (the up file dropped and recreated this view around the column types: this does the same back)
-- squawk-ignore ban-drop-view
drop view public.event_store_stats;

alter table public.event_store
    -- squawk-ignore changing-column-type
    alter column aggregate_type type text,
    -- squawk-ignore changing-column-type
    alter column event_type type text,
    -- squawk-ignore changing-column-type
    alter column event_version type integer,
    -- squawk-ignore changing-column-type
    alter column global_position type bigint,
    -- squawk-ignore changing-column-type
    alter column payload type jsonb,
    -- squawk-ignore changing-column-type
    alter column metadata type jsonb;
alter table public.event_streams
    -- squawk-ignore changing-column-type
    alter column version type integer;
-- the checks back on the tables, validated as they were (a scan of each)
-- squawk-ignore constraint-missing-not-valid
alter table public.event_store add constraint event_store_aggregate_type_length
    check (char_length(aggregate_type) between 1 and 100);
-- squawk-ignore constraint-missing-not-valid
alter table public.event_store add constraint event_store_event_type_length
    check (char_length(event_type) between 1 and 200);
-- squawk-ignore constraint-missing-not-valid
alter table public.event_store add constraint event_store_event_version_positive
    check (event_version >= 1);
-- squawk-ignore constraint-missing-not-valid
alter table public.event_store add constraint event_store_global_position_positive
    check (global_position >= 1);
-- squawk-ignore constraint-missing-not-valid
alter table public.event_store add constraint event_store_payload_object
    check (jsonb_typeof(payload) = 'object' and pg_column_size(payload) <= 1048576);
-- squawk-ignore constraint-missing-not-valid
alter table public.event_store add constraint event_store_metadata_object
    check (jsonb_typeof(metadata) = 'object' and pg_column_size(metadata) <= 65536);
-- squawk-ignore constraint-missing-not-valid
alter table public.event_streams add constraint event_streams_version_positive
    check (version >= 1);
drop domain public.event_store_aggregate_type;
drop domain public.event_store_event_type;
drop domain public.event_store_event_version;
drop domain public.event_store_global_position;
drop domain public.event_store_payload;
drop domain public.event_store_metadata;
drop domain public.event_streams_version;

-- (OR REPLACE: the view was dropped above) as 20260401260000 gave it
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

revoke all on table public.event_store_stats from public, anon, authenticated, service_role;
grant select on table public.event_store_stats to service_role;
comment on view public.event_store_stats is
    'Per aggregate type: streams, events, longest stream, last append and events in the last hour. Service only.';

create or replace function public.append_events(
    p_aggregate_type text,
    p_aggregate_id text,
    p_events jsonb,
    p_expected_version integer default null,
    p_correlation_id text default null,
    p_user_id uuid default null
)
returns table (id uuid, event_version integer, global_position bigint)
language plpgsql
security definer
set search_path = ''
as $$
#variable_conflict use_column
declare
    v_count integer;
    v_head integer;
    v_ids uuid[];
    v_existing integer;
    v_elem jsonb;
begin
    if p_events is null or jsonb_typeof(p_events) <> 'array' then
        raise exception 'p_events must be a JSON array of {event_type, payload, metadata?, event_id?, causation_id?}'
            using errcode = '22023';
    end if;
    v_count := jsonb_array_length(p_events);
    if v_count = 0 or v_count > 10000 then
        raise exception 'p_events must hold between 1 and 10000 events, got %', v_count
            using errcode = '22003';
    end if;
    if p_expected_version is not null and p_expected_version < 0 then
        raise exception 'p_expected_version must be >= 0 (0: the stream must not exist yet), got %',
            p_expected_version using errcode = '22003';
    end if;
    for v_elem in select x.value from jsonb_array_elements(p_events) x loop
        if jsonb_typeof(v_elem) <> 'object' then
            raise exception 'p_events: every element must be an object' using errcode = '22023';
        end if;
        perform public.event_store_check_event(p_aggregate_type, p_aggregate_id,
                                               v_elem ->> 'event_type', v_elem -> 'payload',
                                               v_elem -> 'metadata');
        if v_elem ? 'event_id' and (v_elem ->> 'event_id') !~* '^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$' then
            raise exception 'p_events: event_id % is not a uuid', v_elem ->> 'event_id'
                using errcode = '22023';
        end if;
    end loop;

    select array_agg((x.value ->> 'event_id')::uuid) filter (where x.value ? 'event_id')
      into v_ids from jsonb_array_elements(p_events) x;
    if v_ids is not null then
        if cardinality(v_ids) <> (select count(distinct u) from unnest(v_ids) u) then
            raise exception 'p_events: event ids must be distinct' using errcode = '22023';
        end if;
        perform pg_catalog.pg_advisory_xact_lock(1885601793, pg_catalog.hashtext(v_ids[1]::text));
        select count(*) into v_existing from public.event_store e where e.id = any(v_ids);
        if v_existing > 0 then
            -- a retried batch: every event already in this stream means success, anything
            -- else is a conflict
            if v_existing = v_count and cardinality(v_ids) = v_count
               and not exists (select 1 from public.event_store e
                                where e.id = any(v_ids)
                                  and (e.aggregate_type <> p_aggregate_type
                                       or e.aggregate_id <> p_aggregate_id)) then
                return query
                    select e.id, e.event_version, e.global_position from public.event_store e
                     where e.id = any(v_ids) order by e.event_version;
                return;
            end if;
            raise exception 'p_events: % of the event ids were already appended', v_existing
                using errcode = 'PD001',
                      hint = 'retry the whole batch with the same ids, or use new ids';
        end if;
    end if;

    v_head := public.event_store_bump_version(p_aggregate_type, p_aggregate_id, v_count,
                                              p_expected_version);
    perform public.event_store_lock_writer();
    return query
    with input as (
        select x.value as e, x.ordinality as ord
          from jsonb_array_elements(p_events) with ordinality x
         order by x.ordinality
    ), positioned as (
        select i.e, i.ord, nextval('public.event_store_global_position_seq'::regclass) as pos
          from input i
    ), ins as (
        insert into public.event_store as ev
            (id, global_position, aggregate_type, aggregate_id, event_type, event_version,
             payload, metadata, correlation_id, causation_id, user_id)
        select coalesce((p.e ->> 'event_id')::uuid, gen_random_uuid()), p.pos,
               p_aggregate_type, p_aggregate_id, p.e ->> 'event_type',
               v_head - v_count + p.ord::integer, p.e -> 'payload',
               coalesce(p.e -> 'metadata', '{}'),
               coalesce(p.e ->> 'correlation_id', p_correlation_id), p.e ->> 'causation_id',
               p_user_id
          from positioned p
        returning ev.id, ev.event_version, ev.global_position
    )
    select ins.id, ins.event_version, ins.global_position from ins order by ins.event_version;
end
$$;

create or replace function public.get_aggregate_events(
    p_aggregate_type text,
    p_aggregate_id text,
    p_limit integer default 100
)
returns table (
    id uuid, event_type text, event_version integer, payload jsonb, created_at timestamptz,
    aggregate_type text, aggregate_id text, metadata jsonb, correlation_id text,
    causation_id text, user_id uuid, global_position bigint
)
language plpgsql
stable
set search_path = ''
as $$
begin
    if p_aggregate_type is null or p_aggregate_id is null then
        raise exception 'p_aggregate_type and p_aggregate_id must not be null' using errcode = '22004';
    end if;
    if p_limit is null or p_limit < 1 or p_limit > 10000 then
        raise exception 'p_limit must be between 1 and 10000, got %', p_limit using errcode = '22003';
    end if;
    return query
        select e.id, e.event_type, e.event_version, e.payload, e.created_at, e.aggregate_type,
               e.aggregate_id, e.metadata, e.correlation_id, e.causation_id, e.user_id,
               e.global_position
          from public.event_store e
         where e.aggregate_type = p_aggregate_type and e.aggregate_id = p_aggregate_id
         order by e.event_version
         limit p_limit;
end
$$;

create or replace function public.read_stream(
    p_aggregate_type text,
    p_aggregate_id text,
    p_from_version integer default 0,
    p_limit integer default 1000
)
returns table (
    id uuid, event_type text, event_version integer, payload jsonb, created_at timestamptz,
    aggregate_type text, aggregate_id text, metadata jsonb, correlation_id text,
    causation_id text, user_id uuid, global_position bigint
)
language plpgsql
stable
set search_path = ''
as $$
begin
    if p_aggregate_type is null or p_aggregate_id is null then
        raise exception 'p_aggregate_type and p_aggregate_id must not be null' using errcode = '22004';
    end if;
    if p_from_version is null or p_from_version < 0 then
        raise exception 'p_from_version must be >= 0, got %', p_from_version using errcode = '22003';
    end if;
    if p_limit is null or p_limit < 1 or p_limit > 10000 then
        raise exception 'p_limit must be between 1 and 10000, got %', p_limit using errcode = '22003';
    end if;
    return query
        select e.id, e.event_type, e.event_version, e.payload, e.created_at, e.aggregate_type,
               e.aggregate_id, e.metadata, e.correlation_id, e.causation_id, e.user_id,
               e.global_position
          from public.event_store e
         where e.aggregate_type = p_aggregate_type and e.aggregate_id = p_aggregate_id
           and e.event_version > p_from_version
         order by e.event_version
         limit p_limit;
end
$$;

create or replace function public.read_category(
    p_aggregate_type text,
    p_from_position bigint default 0,
    p_limit integer default 1000
)
returns table (
    id uuid, event_type text, event_version integer, payload jsonb, created_at timestamptz,
    aggregate_type text, aggregate_id text, metadata jsonb, correlation_id text,
    causation_id text, user_id uuid, global_position bigint
)
language plpgsql
volatile
set search_path = ''
as $$
declare
    v_upto bigint;
begin
    if p_aggregate_type is null or p_aggregate_type = '' then
        raise exception 'p_aggregate_type must not be empty' using errcode = '22004';
    end if;
    if p_from_position is null or p_from_position < 0 then
        raise exception 'p_from_position must be >= 0, got %', p_from_position using errcode = '22003';
    end if;
    if p_limit is null or p_limit < 1 or p_limit > 10000 then
        raise exception 'p_limit must be between 1 and 10000, got %', p_limit using errcode = '22003';
    end if;
    if pg_catalog.current_setting('transaction_isolation') <> 'read committed' then
        raise exception 'read_category needs READ COMMITTED isolation (got %)',
            pg_catalog.current_setting('transaction_isolation')
            using errcode = '0A000',
                  hint = 'a snapshot older than the in-flight check could skip a late commit';
    end if;
    v_upto := public.event_store_safe_position();
    return query
        select e.id, e.event_type, e.event_version, e.payload, e.created_at, e.aggregate_type,
               e.aggregate_id, e.metadata, e.correlation_id, e.causation_id, e.user_id,
               e.global_position
          from public.event_store e
         where e.aggregate_type = p_aggregate_type
           and e.global_position > p_from_position and e.global_position <= v_upto
         order by e.global_position
         limit p_limit;
end
$$;

create or replace function public.read_all(
    p_from_position bigint default 0,
    p_limit integer default 1000
)
returns table (
    id uuid, event_type text, event_version integer, payload jsonb, created_at timestamptz,
    aggregate_type text, aggregate_id text, metadata jsonb, correlation_id text,
    causation_id text, user_id uuid, global_position bigint
)
language plpgsql
volatile
set search_path = ''
as $$
declare
    v_upto bigint;
begin
    if p_from_position is null or p_from_position < 0 then
        raise exception 'p_from_position must be >= 0, got %', p_from_position using errcode = '22003';
    end if;
    if p_limit is null or p_limit < 1 or p_limit > 10000 then
        raise exception 'p_limit must be between 1 and 10000, got %', p_limit using errcode = '22003';
    end if;
    if pg_catalog.current_setting('transaction_isolation') <> 'read committed' then
        raise exception 'read_all needs READ COMMITTED isolation (got %)',
            pg_catalog.current_setting('transaction_isolation')
            using errcode = '0A000',
                  hint = 'a snapshot older than the in-flight check could skip a late commit';
    end if;
    -- the bound is computed first; the events are read with a newer snapshot
    v_upto := public.event_store_safe_position();
    return query
        select e.id, e.event_type, e.event_version, e.payload, e.created_at, e.aggregate_type,
               e.aggregate_id, e.metadata, e.correlation_id, e.causation_id, e.user_id,
               e.global_position
          from public.event_store e
         where e.global_position > p_from_position and e.global_position <= v_upto
         order by e.global_position
         limit p_limit;
end
$$;

-- ---------------------------------------------------------------------------------------
-- grants and comments: as before (restated so this file stands alone)
-- ---------------------------------------------------------------------------------------
revoke all on function
    public.append_events(text, text, jsonb, integer, text, uuid),
    public.get_aggregate_events(text, text, integer),
    public.read_stream(text, text, integer, integer),
    public.read_category(text, bigint, integer),
    public.read_all(bigint, integer)
    from public, anon, authenticated, service_role;
grant execute on function
    public.append_events(text, text, jsonb, integer, text, uuid),
    public.get_aggregate_events(text, text, integer),
    public.read_stream(text, text, integer, integer),
    public.read_category(text, bigint, integer),
    public.read_all(bigint, integer)
    to service_role;
-- a signed-in user reads their own events (RLS: user_id = auth.uid()) through these two
grant execute on function
    public.get_aggregate_events(text, text, integer),
    public.read_stream(text, text, integer, integer)
    to authenticated;

-- comments: the behaviour is the same (restated so this file stands alone)
comment on function public.append_events(text, text, jsonb, integer, text, uuid) is
    'Appends a JSON array of {event_type, payload, metadata?, event_id?, causation_id?, correlation_id?} to one stream atomically (at most 10000), with one expected-version check. Returns (id, event_version, global_position) per event. Service only.';
comment on function public.get_aggregate_events(text, text, integer) is
    'The first p_limit events of a stream in version order. Service, or a signed-in user for the events about them (RLS).';
comment on function public.read_stream(text, text, integer, integer) is
    'Events of a stream with event_version > p_from_version, in version order. Service, or a signed-in user for the events about them (RLS).';
comment on function public.read_category(text, bigint, integer) is
    'Events of one aggregate_type with global_position > p_from_position in position order, never past a position an in-flight writer could still fill (catch-up subscriptions). Needs READ COMMITTED. Service only.';
comment on function public.read_all(bigint, integer) is
    'All events with global_position > p_from_position in position order, never past a position an in-flight writer could still fill, so a reader following positions never skips a late commit. Needs READ COMMITTED. Service only.';
COMMIT;
