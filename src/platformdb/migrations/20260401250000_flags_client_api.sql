-- platformdb 20260401250000: flags client API (docs/flags.md)
-- What Unleash's client API and the dashboard's flags page read, as functions, so that each
-- reader gets exactly one door and no table:
-- - feature_flags_client_state(environment): the client API v2 document ({version, features,
--   segments}) of an environment (its own rows, else 'all'), the body of
--   GET /api/client/features. SECURITY DEFINER and STABLE. Granted to service_role here; the
--   dashboard's role platformdb_flags_api (created by `platformdb dashboard`, roles are
--   cluster-wide) gets EXECUTE on it and on record_feature_flag_evaluations, nothing else.
-- - monitoring_flag_model(limit), monitoring_flag_segments(limit): the flags with their
--   strategies, variants and dependencies, and the segments with the flags that use them, for
--   the dashboard's read-only role platformdb_monitor (monitoring_*: SECURITY DEFINER, STABLE).
-- - is_feature_enabled: a fast path for the flags most calls ask about, decided without
--   building the context document: no parents, and unconstrained 'default', 'flexibleRollout'
--   (default or userId stickiness) or 'userWithId' strategies (same answers; the others take
--   the general path of 20260401200000). Counting unchanged.
-- - feature_flag_context in one pass over the keys instead of one query of five subqueries,
--   and feature_flag_context_value in PL/pgSQL instead of SQL (a SQL function called from PL/pgSQL
--   is planned again in every transaction): constrained flags answer faster, the same way.
-- Sections: guard → functions → grants → comments.
BEGIN;

-- ---------------------------------------------------------------------------------------
-- guard: stop before touching anything when one of our names belongs to someone else
-- ---------------------------------------------------------------------------------------
select public.platformdb_assert_names_free(array[
    'feature_flags_client_state', 'monitoring_flag_model', 'monitoring_flag_segments'
]);

-- ---------------------------------------------------------------------------------------
-- functions
-- ---------------------------------------------------------------------------------------
-- Unleash's client API v2 for one environment: every flag that applies there (its own row,
-- else the 'all' row), with the segments its strategies use. Everything Unleash's SDKs
-- evaluate; nothing of platformdb's own (secret, version) is in it.
create function public.feature_flags_client_state(p_environment text)
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
    v_features jsonb;
    v_segments jsonb;
begin
    if p_environment is null or p_environment not in ('development', 'staging', 'production') then
        raise exception 'p_environment: unknown environment %', coalesce(p_environment, 'null')
            using errcode = '22023', hint = 'one of development, staging, production';
    end if;
    with applying as (
        select distinct on (f.key) f.key, f.enabled, f.description, f.strategies, f.variants, f.dependencies
          from public.feature_flags f
         where f.environment in (p_environment, 'all')
         order by f.key, f.environment = 'all'
    )
    select coalesce(pg_catalog.jsonb_agg(
               pg_catalog.jsonb_build_object(
                   'name', a.key, 'type', 'release', 'enabled', a.enabled, 'project', 'default',
                   'stale', false, 'impressionData', false,
                   'strategies', a.strategies, 'variants', a.variants)
               || case when coalesce(a.description, '') <> ''
                       then pg_catalog.jsonb_build_object('description', a.description)
                       else '{}'::jsonb end
               || case when pg_catalog.jsonb_array_length(a.dependencies) > 0
                       then pg_catalog.jsonb_build_object('dependencies', a.dependencies)
                       else '{}'::jsonb end
               order by a.key), '[]'::jsonb),
           coalesce((select pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                                 'id', s.id, 'name', s.name, 'constraints', s.constraints) order by s.id)
                       from public.feature_flag_segments s
                      where s.id in (select (x #>> '{}')::integer
                                       from applying u
                                      cross join lateral pg_catalog.jsonb_array_elements(u.strategies) st
                                      cross join lateral pg_catalog.jsonb_array_elements(
                                                 coalesce(st -> 'segments', '[]'::jsonb)) x)), '[]'::jsonb)
      into v_features, v_segments
      from applying a;
    return pg_catalog.jsonb_build_object('version', 2, 'features', v_features, 'segments', v_segments);
end
$$;

-- The dashboard's flags page: every flag row with its whole model, most evaluated first.
create function public.monitoring_flag_model(p_limit integer default 200)
returns table (
    key text, environment text, enabled boolean, secret boolean, description text,
    strategies jsonb, variants jsonb, dependencies jsonb, version integer, updated_at timestamptz
)
language sql
stable
security definer
set search_path = ''
as $$
    -- the arguments first: a filter on the rows would not run on an empty table
    select public.monitoring_checked_limit(p_limit);
    select f.key, f.environment, f.enabled, f.secret, f.description, f.strategies, f.variants,
           f.dependencies, f.version, f.updated_at
      from public.feature_flags f
     order by f.key, f.environment
     limit p_limit
$$;

-- The segments, with the flags (key@environment) whose strategies use each one.
create function public.monitoring_flag_segments(p_limit integer default 200)
returns table (id integer, name text, description text, constraints jsonb, used_by text[])
language sql
stable
security definer
set search_path = ''
as $$
    select public.monitoring_checked_limit(p_limit);
    select s.id, s.name, s.description, s.constraints,
           coalesce((select pg_catalog.array_agg(distinct f.key || '@' || f.environment)
                       from public.feature_flags f
                      cross join lateral pg_catalog.jsonb_array_elements(f.strategies) st
                      where coalesce(st -> 'segments', '[]'::jsonb) @> pg_catalog.to_jsonb(s.id)),
                    '{}'::text[])
      from public.feature_flag_segments s
     order by s.id
     limit p_limit
$$;

-- feature_flag_context as one pass over the keys (was one query of five subqueries and
-- aggregates): the same document, {fields as text, properties: {…}}; a nested property wins
-- over a top-level key of the same name; userId is p_user when given; environment the
-- context's, else p_environment.
create or replace function public.feature_flag_context(p_context jsonb, p_user text, p_environment text)
returns jsonb
language plpgsql
immutable
parallel safe
set search_path = ''
as $$
declare
    v_out jsonb := '{}';
    v_props jsonb := '{}';
    v_key text;
    v_value jsonb;
begin
    if p_context is null or p_context = '{}'::jsonb then  -- the common call: no context
        return pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object('userId', p_user,
                   'environment', p_environment)) || '{"properties": {}}'::jsonb;
    end if;
    if pg_catalog.jsonb_typeof(p_context) = 'object' then
        for v_key, v_value in select e.key, e.value from pg_catalog.jsonb_each(p_context) e loop
            if v_key <> 'properties' and pg_catalog.jsonb_typeof(v_value) in ('string', 'number', 'boolean') then
                if v_key in ('userId', 'sessionId', 'remoteAddress', 'environment', 'appName', 'currentTime') then
                    v_out := v_out || pg_catalog.jsonb_build_object(v_key, v_value #>> '{}');
                else
                    v_props := v_props || pg_catalog.jsonb_build_object(v_key, v_value #>> '{}');
                end if;
            end if;
        end loop;
        if pg_catalog.jsonb_typeof(p_context -> 'properties') = 'object' then
            for v_key, v_value in select e.key, e.value from pg_catalog.jsonb_each(p_context -> 'properties') e loop
                if pg_catalog.jsonb_typeof(v_value) in ('string', 'number', 'boolean') then
                    v_props := v_props || pg_catalog.jsonb_build_object(v_key, v_value #>> '{}');
                end if;
            end loop;
        end if;
    end if;
    if p_user is not null then
        v_out := v_out || pg_catalog.jsonb_build_object('userId', p_user);
    end if;
    if not v_out ? 'environment' and p_environment is not null then
        v_out := v_out || pg_catalog.jsonb_build_object('environment', p_environment);
    end if;
    return v_out || pg_catalog.jsonb_build_object('properties', v_props);
end
$$;

-- feature_flag_context_value as PL/pgSQL (was LANGUAGE sql): called from PL/pgSQL for every
-- constraint, a SQL function is set up again in every transaction (parsed and planned per
-- call site), which made it the largest cost of a round trip on a constrained flag; the
-- same answers.
create or replace function public.feature_flag_context_value(p_context jsonb, p_name text)
returns text
language plpgsql
stable
parallel safe
set search_path = ''
as $$
begin
    if p_name in ('userId', 'sessionId', 'remoteAddress', 'environment', 'appName') then
        return p_context ->> p_name;
    elsif p_name = 'currentTime' then
        return coalesce(p_context ->> 'currentTime',
                        pg_catalog.to_char(now() at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'));
    end if;
    return p_context -> 'properties' ->> p_name;
end
$$;

-- is_feature_enabled of 20260401200000 with a fast path: a flag without parents whose
-- strategies are unconstrained 'default', 'flexibleRollout' with default or userId stickiness
-- or 'userWithId' (most rollouts, and every flag migrated from the legacy columns) is decided without building the context document or calling the general
-- evaluation (feature_flag_outcome); the answers are the same (tests/db/test_flag_model.py).
-- Callers, checks and counting unchanged.
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
    v_fast boolean := true;
    v_s jsonb;
    v_subject text;
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
        -- fast path: no parents and only unconstrained 'default', 'flexibleRollout' (default or
        -- userId stickiness) and 'userWithId' strategies, decided here in order; any other
        -- strategy met before a match sends the whole flag down the general path
        if pg_catalog.jsonb_array_length(v_flag.dependencies) > 0 then
            v_fast := false;
        elsif pg_catalog.jsonb_array_length(v_flag.strategies) = 0 then
            v_result := true;  -- enabled with no strategy: on
        else
            for v_s in select e from pg_catalog.jsonb_array_elements(v_flag.strategies) e loop
                if coalesce(pg_catalog.jsonb_array_length(v_s -> 'constraints'), 0) > 0
                   or coalesce(pg_catalog.jsonb_array_length(v_s -> 'segments'), 0) > 0 then
                    v_fast := false;
                    exit;
                elsif v_s ->> 'name' = 'default' then
                    v_result := true;
                    exit;
                elsif v_s ->> 'name' = 'flexibleRollout' and v_s -> 'parameters' ->> 'rollout' is not null
                      and coalesce(v_s -> 'parameters' ->> 'stickiness', 'default') in ('default', 'userId') then
                    -- the userId / sessionId feature_flag_context would give (JSON scalars as text)
                    v_subject := coalesce(
                        v_user,
                        case when pg_catalog.jsonb_typeof(p_context -> 'userId') in ('string', 'number', 'boolean')
                             then p_context ->> 'userId' end);
                    if coalesce(v_s -> 'parameters' ->> 'stickiness', 'default') = 'default' then
                        v_subject := coalesce(
                            v_subject,
                            case when pg_catalog.jsonb_typeof(p_context -> 'sessionId') in ('string', 'number', 'boolean')
                                 then p_context ->> 'sessionId' end,
                            (pg_catalog.floor(pg_catalog.random() * 9999)::integer + 1)::text);
                    end if;
                    if v_subject is not null
                       and public.feature_flag_hash(coalesce(v_s -> 'parameters' ->> 'groupId', p_flag_key), v_subject,
                                                    100, 0) <= (v_s -> 'parameters' ->> 'rollout')::integer then
                        v_result := true;
                        exit;
                    end if;
                elsif v_s ->> 'name' = 'userWithId' then
                    v_subject := coalesce(
                        v_user,
                        case when pg_catalog.jsonb_typeof(p_context -> 'userId') in ('string', 'number', 'boolean')
                             then p_context ->> 'userId' end);
                    if v_subject is not null and v_s -> 'parameters' ->> 'userIds' is not null
                       and exists (select 1
                                     from pg_catalog.regexp_split_to_table(v_s -> 'parameters' ->> 'userIds', ',') u
                                    where pg_catalog.btrim(u, ' ') = v_subject) then
                        v_result := true;
                        exit;
                    end if;
                else
                    v_fast := false;
                    exit;
                end if;
            end loop;
        end if;
        if not v_fast then
            v_ctx := public.feature_flag_context(p_context, v_user, p_environment);
            v_result := (public.feature_flag_outcome(p_flag_key, true, v_flag.strategies, v_flag.variants,
                                                     v_flag.dependencies, p_environment, v_ctx,
                                                     p_want_variant => false) ->> 'enabled')::boolean;
        end if;
        v_reason := case when v_result then 'match' else 'no_match' end;
    end if;
    perform public.feature_flag_count(p_flag_key, p_environment, v_reason, not v_for_user);
    return v_result;
end
$$;

-- ---------------------------------------------------------------------------------------
-- grants
-- ---------------------------------------------------------------------------------------
revoke all on function
    public.feature_flags_client_state(text),
    public.monitoring_flag_model(integer),
    public.monitoring_flag_segments(integer)
    from public, anon, authenticated, service_role;
grant execute on function
    public.feature_flags_client_state(text),
    public.monitoring_flag_model(integer),
    public.monitoring_flag_segments(integer)
    to service_role;
-- as 20260401200000 granted it (a replaced function keeps its grants; restated for the checks)
revoke all on function public.feature_flag_context(jsonb, text, text) from public, anon, authenticated, service_role;
grant execute on function public.feature_flag_context(jsonb, text, text) to service_role;
revoke all on function public.feature_flag_context_value(jsonb, text) from public, anon, authenticated, service_role;
grant execute on function public.feature_flag_context_value(jsonb, text) to service_role;
revoke all on function public.is_feature_enabled(text, uuid, text, jsonb) from public, anon, authenticated, service_role;
grant execute on function public.is_feature_enabled(text, uuid, text, jsonb) to authenticated, service_role;

-- ---------------------------------------------------------------------------------------
-- comments
-- ---------------------------------------------------------------------------------------
comment on function public.feature_flags_client_state(text) is
    'Unleash''s client API v2 document {version, features, segments} of an environment (its own rows, else ''all''): the body of GET /api/client/features. Read-only; service_role and the dashboard''s platformdb_flags_api.';
comment on function public.monitoring_flag_model(integer) is
    'Dashboard: every flag row with its strategies, variants and dependencies, by key and environment. Read-only.';
comment on function public.feature_flag_context(jsonb, text, text) is
    'The evaluation context: userId, sessionId, remoteAddress, environment, appName, currentTime and properties, all text; other top-level keys are properties.';
comment on function public.feature_flag_context_value(jsonb, text) is 'A context field by name (the six fields, else a property); currentTime defaults to now.';
comment on function public.is_feature_enabled(text, uuid, text, jsonb) is
    'True when the flag is on for the context (Unleash model: strategies OR''ed, constraints AND''ed, segments, dependencies). Unknown or disabled flag -> false, never an error. A signed-in user evaluates for themself only (another p_user_id or context userId -> 42501) and secret flags are false for them. Counted without a write per call; unknown keys from a user are counted as (other).';
comment on function public.monitoring_flag_segments(integer) is
    'Dashboard: the segments with their constraints and the flags (key@environment) whose strategies use them. Read-only.';

COMMIT;
