-- platformdb 20260401250000 down: the exact reverse of flags client API: feature_flag_context,
-- feature_flag_context_value and is_feature_enabled as 20260401200000 defined them (bodies,
-- grants, comments), the three new functions dropped.
BEGIN;

-- feature_flag_context as 20260401200000 defined it (one query)
create or replace function public.feature_flag_context(p_context jsonb, p_user text, p_environment text)
returns jsonb
language plpgsql
immutable
parallel safe
set search_path = ''
as $$
declare
    v_out jsonb;
begin
    if p_context is null or p_context = '{}'::jsonb then  -- the common call: no context
        return pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object('userId', p_user,
                   'environment', p_environment)) || '{"properties": {}}'::jsonb;
    end if;
    v_out := (
    with scalars as (
        select e.key, e.value, false as nested
          from pg_catalog.jsonb_each(case when pg_catalog.jsonb_typeof(p_context) = 'object'
                                          then p_context else '{}'::jsonb end) e
         where e.key <> 'properties'
        union all
        select e.key, e.value, true
          from pg_catalog.jsonb_each(case when pg_catalog.jsonb_typeof(p_context -> 'properties') = 'object'
                                          then p_context -> 'properties' else '{}'::jsonb end) e
    ), texts as (
        select s.key, s.nested,
               case when pg_catalog.jsonb_typeof(s.value) in ('string', 'number', 'boolean')
                    then s.value #>> '{}' end as text
          from scalars s
    )
    select coalesce((select pg_catalog.jsonb_object_agg(t.key, t.text)
                       from texts t
                      where not t.nested and t.text is not null
                        and t.key in ('userId', 'sessionId', 'remoteAddress', 'environment',
                                      'appName', 'currentTime')), '{}'::jsonb)
           || pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
                  'userId', p_user,
                  'environment', coalesce(
                      (select t.text from texts t where not t.nested and t.key = 'environment'),
                      p_environment)))
           || pg_catalog.jsonb_build_object('properties', coalesce(
                  (select pg_catalog.jsonb_object_agg(p.key, p.text)
                     from (select distinct on (t.key) t.key, t.text
                             from texts t
                            where t.text is not null
                              and (t.nested or t.key not in ('userId', 'sessionId', 'remoteAddress',
                                                             'environment', 'appName', 'currentTime'))
                            order by t.key, t.nested desc) p), '{}'::jsonb))
    );
    return v_out;
end
$$;

-- feature_flag_context_value as 20260401200000 defined it (LANGUAGE sql)
create or replace function public.feature_flag_context_value(p_context jsonb, p_name text)
returns text
language sql
stable
parallel safe
set search_path = ''
as $$
    select case
        when p_name in ('userId', 'sessionId', 'remoteAddress', 'environment', 'appName') then p_context ->> p_name
        when p_name = 'currentTime' then coalesce(p_context ->> 'currentTime',
            pg_catalog.to_char(now() at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'))
        else p_context -> 'properties' ->> p_name
    end
$$;

-- is_feature_enabled as 20260401200000 defined it (no fast path)
create or replace function public.is_feature_enabled(
    p_flag_key text,
    p_user_id uuid default null,
    p_environment text default 'production',
    p_context jsonb default '{}'
)
returns boolean
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
    v_caller text := coalesce(nullif(pg_catalog.current_setting('role', true), 'none'),
                              session_user::text);
    v_for_user boolean := false;
    v_user text := p_user_id::text;
    v_flag record;
    v_ctx jsonb;
    v_result boolean := false;
    v_reason text;
begin
    if p_flag_key is null then
        raise exception 'p_flag_key must not be null' using errcode = '22004';
    end if;
    if p_environment is null or p_environment not in ('development', 'staging', 'production') then
        raise exception 'p_environment: unknown environment %', coalesce(p_environment, 'null')
            using errcode = '22023', hint = 'one of development, staging, production';
    end if;
    if p_context is not null and pg_catalog.jsonb_typeof(p_context) <> 'object' then
        raise exception 'p_context must be a JSON object' using errcode = '22023';
    end if;
    if pg_catalog.pg_column_size(p_context) > 8192 then
        raise exception 'p_context must be at most 8 KiB' using errcode = '22023';
    end if;
    if v_caller in ('authenticated', 'anon') then
        v_for_user := true;
        v_user := auth.uid()::text;
        if (p_user_id is not null and p_user_id::text is distinct from v_user)
           or (p_context ? 'userId' and p_context ->> 'userId' is distinct from v_user) then
            raise exception 'p_user_id must be the signed-in user (or null)' using errcode = '42501';
        end if;
    elsif p_user_id is not null and pg_catalog.jsonb_typeof(p_context -> 'userId') = 'string'
          and p_context ->> 'userId' <> v_user then
        raise exception 'p_user_id and p_context.userId differ' using errcode = '22023';
    end if;

    select f.enabled, f.secret, f.strategies, f.variants, f.dependencies into v_flag
      from public.feature_flags f
     where f.key = p_flag_key
       and f.environment in (p_environment, 'all')
     order by f.environment = 'all'
     limit 1;

    if not found then
        v_reason := 'unknown';
    elsif v_for_user and v_flag.secret then
        v_reason := 'hidden';
    elsif not v_flag.enabled then
        v_reason := 'disabled';
    else
        v_ctx := public.feature_flag_context(p_context, v_user, p_environment);
        v_result := (public.feature_flag_outcome(p_flag_key, true, v_flag.strategies, v_flag.variants,
                                                 v_flag.dependencies, p_environment, v_ctx,
                                                 p_want_variant => false) ->> 'enabled')::boolean;
        v_reason := case when v_result then 'match' else 'no_match' end;
    end if;
    perform public.feature_flag_count(p_flag_key, p_environment, v_reason, not v_for_user);
    return v_result;
end
$$;

drop function public.monitoring_flag_segments(integer);
drop function public.monitoring_flag_model(integer);
drop function public.feature_flags_client_state(text);

revoke all on function public.feature_flag_context(jsonb, text, text) from public, anon, authenticated, service_role;
grant execute on function public.feature_flag_context(jsonb, text, text) to service_role;
revoke all on function public.feature_flag_context_value(jsonb, text) from public, anon, authenticated, service_role;
grant execute on function public.feature_flag_context_value(jsonb, text) to service_role;
revoke all on function public.is_feature_enabled(text, uuid, text, jsonb) from public, anon, authenticated, service_role;
grant execute on function public.is_feature_enabled(text, uuid, text, jsonb) to authenticated, service_role;

comment on function public.feature_flag_context(jsonb, text, text) is
    'The evaluation context: userId, sessionId, remoteAddress, environment, appName, currentTime and properties, all text; other top-level keys are properties.';
comment on function public.feature_flag_context_value(jsonb, text) is 'A context field by name (the six fields, else a property); currentTime defaults to now.';
comment on function public.is_feature_enabled(text, uuid, text, jsonb) is
    'True when the flag is on for the context (Unleash model: strategies OR''ed, constraints AND''ed, segments, dependencies). Unknown or disabled flag -> false, never an error. A signed-in user evaluates for themself only (another p_user_id or context userId -> 42501) and secret flags are false for them. Counted without a write per call; unknown keys from a user are counted as (other).';

COMMIT;
