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
--   building the context document: enabled with no strategy, or every strategy 'default' /
--   'flexibleRollout' without constraints, segments or variants (same answers; the others take
--   the general path of 20260401200000). Counting unchanged.
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

-- ---------------------------------------------------------------------------------------
-- comments
-- ---------------------------------------------------------------------------------------
comment on function public.feature_flags_client_state(text) is
    'Unleash''s client API v2 document {version, features, segments} of an environment (its own rows, else ''all''): the body of GET /api/client/features. Read-only; service_role and the dashboard''s platformdb_flags_api.';
comment on function public.monitoring_flag_model(integer) is
    'Dashboard: every flag row with its strategies, variants and dependencies, by key and environment. Read-only.';
comment on function public.monitoring_flag_segments(integer) is
    'Dashboard: the segments with their constraints and the flags (key@environment) whose strategies use them. Read-only.';

COMMIT;
