-- platformdb 20260401330000 down: append_events as 20260401290000 gave it.
BEGIN;

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
                    select e.id, e.event_version::integer, e.global_position::bigint
                      from public.event_store e
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
    select ins.id, ins.event_version::integer, ins.global_position::bigint
      from ins order by ins.event_version;
end
$$;

revoke all on function public.append_events(text, text, jsonb, integer, text, uuid)
    from public, anon, authenticated, service_role;
grant execute on function public.append_events(text, text, jsonb, integer, text, uuid) to service_role;
comment on function public.append_events(text, text, jsonb, integer, text, uuid) is
    'Appends a JSON array of {event_type, payload, metadata?, event_id?, causation_id?, correlation_id?} to one stream atomically (at most 10000), with one expected-version check. Returns (id, event_version, global_position) per event. Service only.';

COMMIT;
