-- platformdb 20260401130000: service registry and feature flags (SPEC §3.4)
-- Services announce themselves and report health; features roll out gradually,
-- deterministically and stickily, with Unleash's gradual-rollout bucketing
-- (MurmurHash3 x86 32-bit, seed 0, over '<flag key>:<user id>', % 100 + 1) so that this
-- database, the Python SDK and Unleash SDKs give every user the same answer.
-- Evaluation counts are aggregated per backend and flushed in batches: is_feature_enabled
-- does not write per call. Sections: guard → tables → indexes → functions → triggers →
-- views → RLS and grants → comments.
BEGIN;

-- ---------------------------------------------------------------------------------------
-- guard: stop before touching anything when one of our names belongs to someone else
-- ---------------------------------------------------------------------------------------
select public.platformdb_assert_names_free(array[
    'service_registry', 'feature_flags', 'feature_flag_evaluations',
    'register_service', 'service_heartbeat', 'service_health_status',
    'feature_flag_bucket', 'feature_flag_number', 'feature_flag_semver_cmp',
    'feature_flag_rule_matches', 'feature_flag_conditions_match', 'feature_flag_decide',
    'is_feature_enabled', 'evaluate_feature_flag', 'upsert_feature_flag',
    'feature_flag_store_counts',
    'flush_feature_flag_evaluations', 'record_feature_flag_evaluations',
    'purge_feature_flag_evaluations', 'feature_flags_before_write',
    'feature_flags_notify_change', 'service_health_overview', 'feature_flag_overview'
]);

-- ---------------------------------------------------------------------------------------
-- tables
-- ---------------------------------------------------------------------------------------
create table public.service_registry (
    id uuid not null default gen_random_uuid(),
    service_name text not null,
    service_type text not null,
    version text not null,
    endpoint text not null,
    health_check_url text,
    status text not null default 'healthy',
    capabilities jsonb not null default '[]',
    dependencies jsonb not null default '[]',
    metrics jsonb not null default '{}',
    registered_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    last_heartbeat_at timestamptz,
    heartbeat_count bigint not null default 0,
    constraint service_registry_pkey primary key (id),
    constraint service_registry_service_name_key unique (service_name),
    constraint service_registry_service_name_format
        check (service_name ~ '^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$'),
    constraint service_registry_service_type_valid
        check (service_type in ('microservice', 'edge_function', 'api', 'worker')),
    constraint service_registry_version_format check (version ~ '^[^[:space:]]{1,64}$'),
    constraint service_registry_endpoint_format
        check (char_length(endpoint) <= 2048
               and endpoint ~ '^[A-Za-z][A-Za-z0-9+.-]*://[^[:space:]]+$'),
    constraint service_registry_health_check_url_format
        check (health_check_url is null
               or (char_length(health_check_url) <= 2048
                   and health_check_url ~ '^https?://[^[:space:]]+$')),
    constraint service_registry_status_valid
        check (status in ('healthy', 'degraded', 'unhealthy', 'stopped')),
    constraint service_registry_capabilities_array
        check (jsonb_typeof(capabilities) = 'array' and pg_column_size(capabilities) <= 16384),
    constraint service_registry_dependencies_array
        check (jsonb_typeof(dependencies) = 'array' and pg_column_size(dependencies) <= 16384),
    constraint service_registry_metrics_object
        check (jsonb_typeof(metrics) = 'object' and pg_column_size(metrics) <= 16384),
    constraint service_registry_heartbeat_count_nonnegative check (heartbeat_count >= 0)
) with (fillfactor = 80);  -- room on the page so heartbeat UPDATEs stay HOT

create table public.feature_flags (
    id uuid not null default gen_random_uuid(),
    key text not null,
    environment text not null default 'production',
    name text not null,
    description text,
    enabled boolean not null default false,
    rollout_strategy text not null default 'none',
    rollout_percentage integer not null default 0,
    target_users uuid[] not null default '{}',
    conditions jsonb not null default '[]',
    secret boolean not null default false,
    version integer not null default 1,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint feature_flags_pkey primary key (id),
    constraint feature_flags_key_environment_key unique (key, environment),
    constraint feature_flags_key_format check (key ~ '^[A-Za-z0-9][A-Za-z0-9_.~-]{0,99}$'),
    constraint feature_flags_environment_valid
        check (environment in ('development', 'staging', 'production', 'all')),
    constraint feature_flags_name_length check (char_length(name) between 1 and 200),
    constraint feature_flags_description_length
        check (description is null or char_length(description) <= 2000),
    constraint feature_flags_rollout_strategy_valid
        check (rollout_strategy in ('percentage', 'user_list', 'condition', 'all', 'none')),
    constraint feature_flags_rollout_percentage_range check (rollout_percentage between 0 and 100),
    constraint feature_flags_target_users_size check (cardinality(target_users) <= 10000),
    constraint feature_flags_conditions_array
        check (jsonb_typeof(conditions) = 'array' and pg_column_size(conditions) <= 16384),
    constraint feature_flags_version_positive check (version >= 1)
);

create table public.feature_flag_evaluations (
    flag_key text not null,
    environment text not null,
    reason text not null,
    result boolean not null generated always as (reason = 'match') stored,
    source text not null,
    bucket_start timestamptz not null,
    evaluations bigint not null,
    last_flushed_at timestamptz not null default now(),
    constraint feature_flag_evaluations_pkey
        primary key (flag_key, environment, reason, source, bucket_start),
    constraint feature_flag_evaluations_flag_key_format
        check (flag_key ~ '^[A-Za-z0-9][A-Za-z0-9_.~-]{0,99}$'
               or flag_key in ('(invalid)', '(other)')),
    constraint feature_flag_evaluations_environment_valid
        check (environment in ('development', 'staging', 'production')),
    constraint feature_flag_evaluations_reason_valid
        check (reason in ('match', 'no_match', 'disabled', 'unknown', 'hidden')),
    constraint feature_flag_evaluations_source_valid check (source in ('sql', 'sdk')),
    constraint feature_flag_evaluations_bucket_is_hour
        check (bucket_start = date_trunc('hour', bucket_start at time zone 'UTC') at time zone 'UTC'),
    constraint feature_flag_evaluations_evaluations_positive check (evaluations > 0)
);

-- ---------------------------------------------------------------------------------------
-- indexes
-- ---------------------------------------------------------------------------------------
-- (key, environment) is unique (the lookup of every evaluation); service_name is unique
-- (heartbeats). last_heartbeat_at is deliberately not indexed: heartbeats stay HOT updates.
create index feature_flag_evaluations_bucket_idx on public.feature_flag_evaluations (bucket_start);

-- ---------------------------------------------------------------------------------------
-- functions: registry
-- ---------------------------------------------------------------------------------------
create function public.register_service(
    p_service_name text,
    p_service_type text,
    p_version text,
    p_endpoint text,
    p_health_check_url text default null,
    p_capabilities jsonb default '[]',
    p_dependencies jsonb default '[]'
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
    if p_service_name !~ '^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$' then
        raise exception 'p_service_name must be 1-100 letters, digits, ".", "_", ":" or "-", got %',
            pg_catalog.left(p_service_name, 120)
            using errcode = '22023', hint = 'e.g. payments-api';
    end if;
    if p_service_type is null or p_service_type not in ('microservice', 'edge_function', 'api', 'worker') then
        raise exception 'p_service_type: unknown service type %', coalesce(p_service_type, 'null')
            using errcode = '22023', hint = 'one of microservice, edge_function, api, worker';
    end if;
    if p_version is null or p_version = '' then
        raise exception 'p_version must not be empty' using errcode = '22004';
    end if;
    if p_version !~ '^[^[:space:]]{1,64}$' then
        raise exception 'p_version must be at most 64 characters without spaces'
            using errcode = '22023';
    end if;
    if p_endpoint is null or p_endpoint = '' then
        raise exception 'p_endpoint must not be empty' using errcode = '22004';
    end if;
    if pg_catalog.char_length(p_endpoint) > 2048
       or p_endpoint !~ '^[A-Za-z][A-Za-z0-9+.-]*://[^[:space:]]+$' then
        raise exception 'p_endpoint must be a URL with a scheme (at most 2048 characters)'
            using errcode = '22023', hint = 'e.g. https://payments.internal:8443 or worker://host-1';
    end if;
    if p_health_check_url is not null
       and (pg_catalog.char_length(p_health_check_url) > 2048
            or p_health_check_url !~ '^https?://[^[:space:]]+$') then
        raise exception 'p_health_check_url must be an http(s) URL' using errcode = '22023';
    end if;
    if p_capabilities is not null and (pg_catalog.jsonb_typeof(p_capabilities) <> 'array'
       or exists (select 1 from pg_catalog.jsonb_array_elements(p_capabilities) e
                   where pg_catalog.jsonb_typeof(e) <> 'string')) then
        raise exception 'p_capabilities must be a JSON array of strings' using errcode = '22023';
    end if;
    if pg_catalog.pg_column_size(p_capabilities) > 16384 then
        raise exception 'p_capabilities must be at most 16 KiB' using errcode = '22023';
    end if;
    if p_dependencies is not null and (pg_catalog.jsonb_typeof(p_dependencies) <> 'array'
       or exists (select 1 from pg_catalog.jsonb_array_elements(p_dependencies) e
                   where pg_catalog.jsonb_typeof(e) <> 'string'
                      or e #>> '{}' !~ '^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$')) then
        raise exception 'p_dependencies must be a JSON array of service names' using errcode = '22023';
    end if;
    if pg_catalog.pg_column_size(p_dependencies) > 16384 then
        raise exception 'p_dependencies must be at most 16 KiB' using errcode = '22023';
    end if;

    insert into public.service_registry as s
        (service_name, service_type, version, endpoint, health_check_url, capabilities,
         dependencies, status, last_heartbeat_at, heartbeat_count)
    values (p_service_name, p_service_type, p_version, p_endpoint, p_health_check_url,
            coalesce(p_capabilities, '[]'), coalesce(p_dependencies, '[]'), 'healthy', now(), 1)
    on conflict (service_name) do update
       set service_type = excluded.service_type,
           version = excluded.version,
           endpoint = excluded.endpoint,
           health_check_url = excluded.health_check_url,
           capabilities = excluded.capabilities,
           dependencies = excluded.dependencies,
           status = 'healthy',
           updated_at = now(),
           last_heartbeat_at = now(),
           heartbeat_count = s.heartbeat_count + 1
    returning s.id into v_id;
    return v_id;
end
$$;

create function public.service_heartbeat(
    p_service_name text,
    p_status text default 'healthy',
    p_metrics jsonb default '{}'
)
returns boolean
language plpgsql
set search_path = ''
as $$
begin
    if p_service_name is null or p_service_name = '' then
        raise exception 'p_service_name must not be empty' using errcode = '22004';
    end if;
    if p_status is null or p_status not in ('healthy', 'degraded', 'unhealthy', 'stopped') then
        raise exception 'p_status: unknown status %', coalesce(p_status, 'null')
            using errcode = '22023', hint = 'one of healthy, degraded, unhealthy, stopped';
    end if;
    if p_metrics is not null and pg_catalog.jsonb_typeof(p_metrics) <> 'object' then
        raise exception 'p_metrics must be a JSON object' using errcode = '22023';
    end if;
    if pg_catalog.pg_column_size(p_metrics) > 16384 then
        raise exception 'p_metrics must be at most 16 KiB' using errcode = '22023';
    end if;
    update public.service_registry s
       set status = p_status,
           metrics = coalesce(p_metrics, '{}'),
           last_heartbeat_at = now(),
           heartbeat_count = s.heartbeat_count + 1
     where s.service_name = p_service_name;
    return found;
end
$$;

create function public.service_health_status(
    p_reported_status text,
    p_last_heartbeat_at timestamptz,
    p_now timestamptz default now()
)
returns text
language sql
immutable
parallel safe
set search_path = ''
as $$
    select case
        when p_reported_status = 'stopped' then 'stopped'
        when p_last_heartbeat_at is null
          or p_now - p_last_heartbeat_at >= interval '5 minutes' then 'critical'
        when p_reported_status = 'unhealthy' then 'unhealthy'
        when p_reported_status = 'degraded'
          or p_now - p_last_heartbeat_at >= interval '2 minutes' then 'warning'
        else 'healthy'
    end
$$;

-- ---------------------------------------------------------------------------------------
-- functions: flag evaluation (pure helpers first; the SDK mirrors each one exactly)
-- ---------------------------------------------------------------------------------------

-- MurmurHash3 x86 32-bit, seed 0, over the UTF-8 bytes of key || ':' || subject; unsigned,
-- % 100 + 1 (Unleash's normalizedValue). All arithmetic is int8 masked to 32 bits; a 32x32
-- product is split into 16-bit halves so it never leaves int8's range.
create function public.feature_flag_bucket(p_flag_key text, p_subject text)
returns integer
language plpgsql
immutable
parallel safe
set search_path = ''
as $$
declare
    v_data bytea;
    v_len integer;
    v_end integer;
    v_h bigint := 0;
    v_k bigint;
    v_i integer := 0;
begin
    if p_flag_key is null then
        raise exception 'p_flag_key must not be null' using errcode = '22004';
    end if;
    if p_subject is null then
        raise exception 'p_subject must not be null' using errcode = '22004';
    end if;
    v_data := pg_catalog.convert_to(p_flag_key || ':' || p_subject, 'UTF8');
    v_len := pg_catalog.length(v_data);
    v_end := v_len - v_len % 4;
    while v_i < v_end loop
        v_k := pg_catalog.get_byte(v_data, v_i)
               | (pg_catalog.get_byte(v_data, v_i + 1) << 8)
               | (pg_catalog.get_byte(v_data, v_i + 2) << 16)
               | (pg_catalog.get_byte(v_data, v_i + 3)::bigint << 24);
        v_k := (v_k * 11601 + (((v_k * 52382) & 65535) << 16)) & 4294967295;  -- k *= 0xcc9e2d51
        v_k := ((v_k << 15) | (v_k >> 17)) & 4294967295;                     -- rotl 15
        v_k := (v_k * 13715 + (((v_k * 7047) & 65535) << 16)) & 4294967295;   -- k *= 0x1b873593
        v_h := v_h # v_k;
        v_h := ((v_h << 13) | (v_h >> 19)) & 4294967295;                     -- rotl 13
        v_h := (v_h * 5 + 3864292196) & 4294967295;                          -- h*5 + 0xe6546b64
        v_i := v_i + 4;
    end loop;
    if v_len % 4 > 0 then
        v_k := 0;
        if v_len % 4 = 3 then
            v_k := pg_catalog.get_byte(v_data, v_end + 2) << 16;
        end if;
        if v_len % 4 >= 2 then
            v_k := v_k # (pg_catalog.get_byte(v_data, v_end + 1) << 8);
        end if;
        v_k := v_k # pg_catalog.get_byte(v_data, v_end);
        v_k := (v_k * 11601 + (((v_k * 52382) & 65535) << 16)) & 4294967295;
        v_k := ((v_k << 15) | (v_k >> 17)) & 4294967295;
        v_k := (v_k * 13715 + (((v_k * 7047) & 65535) << 16)) & 4294967295;
        v_h := v_h # v_k;
    end if;
    v_h := v_h # v_len;                                                       -- fmix32
    v_h := v_h # (v_h >> 16);
    v_h := (v_h * 51819 + (((v_h * 34283) & 65535) << 16)) & 4294967295;      -- h *= 0x85ebca6b
    v_h := v_h # (v_h >> 13);
    v_h := (v_h * 44597 + (((v_h * 49842) & 65535) << 16)) & 4294967295;      -- h *= 0xc2b2ae35
    v_h := v_h # (v_h >> 16);
    return (v_h % 100 + 1)::integer;
end
$$;

-- A JSON number, or a JSON string of plain decimal digits, as numeric; null otherwise.
create function public.feature_flag_number(p_value jsonb)
returns numeric
language sql
immutable
parallel safe
set search_path = ''
as $$
    select case
        when pg_catalog.jsonb_typeof(p_value) = 'number' then (p_value #>> '{}')::numeric
        when pg_catalog.jsonb_typeof(p_value) = 'string'
         and (p_value #>> '{}') ~ '^-?[0-9]{1,100}(\.[0-9]{1,100})?$' then (p_value #>> '{}')::numeric
    end
$$;

-- Semantic Versioning 2.0.0 precedence: -1, 0 or 1; null when either is not a valid version.
create function public.feature_flag_semver_cmp(p_a text, p_b text)
returns integer
language plpgsql
immutable
parallel safe
set search_path = ''
as $$
declare
    v_re constant text := '^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)'
        '(?:-((?:0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*))*))?'
        '(?:\+[0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*)?$';
    v_a text[];
    v_b text[];
    v_pa text[];
    v_pb text[];
    v_x text;
    v_y text;
    v_xn boolean;
    v_yn boolean;
begin
    if p_a is null or p_b is null
       or pg_catalog.char_length(p_a) > 256 or pg_catalog.char_length(p_b) > 256 then
        return null;
    end if;
    v_a := pg_catalog.regexp_match(p_a, v_re);
    v_b := pg_catalog.regexp_match(p_b, v_re);
    if v_a is null or v_b is null then
        return null;
    end if;
    for i in 1..3 loop
        if v_a[i]::numeric <> v_b[i]::numeric then
            return case when v_a[i]::numeric < v_b[i]::numeric then -1 else 1 end;
        end if;
    end loop;
    if v_a[4] is null or v_b[4] is null then
        -- a release ranks above any of its pre-releases
        return case when v_a[4] is null and v_b[4] is null then 0
                    when v_a[4] is null then 1 else -1 end;
    end if;
    v_pa := pg_catalog.string_to_array(v_a[4], '.');
    v_pb := pg_catalog.string_to_array(v_b[4], '.');
    for i in 1..least(pg_catalog.cardinality(v_pa), pg_catalog.cardinality(v_pb)) loop
        v_x := v_pa[i];
        v_y := v_pb[i];
        v_xn := v_x ~ '^[0-9]+$';
        v_yn := v_y ~ '^[0-9]+$';
        if v_xn and v_yn then
            if v_x::numeric <> v_y::numeric then
                return case when v_x::numeric < v_y::numeric then -1 else 1 end;
            end if;
        elsif v_xn then
            return -1;  -- numeric identifiers rank below alphanumeric ones
        elsif v_yn then
            return 1;
        elsif v_x <> v_y then
            return case when v_x collate "C" < v_y collate "C" then -1 else 1 end;
        end if;
    end loop;
    return pg_catalog.sign(pg_catalog.cardinality(v_pa) - pg_catalog.cardinality(v_pb))::integer;
end
$$;

-- One rule of the condition language (docs/flags.md). Never raises: a malformed rule or an
-- unknown operator is false (also when negated); a missing or mistyped context attribute
-- makes the operator false, which `negate` then inverts.
create function public.feature_flag_rule_matches(p_rule jsonb, p_context jsonb)
returns boolean
language plpgsql
immutable
parallel safe
set search_path = ''
as $$
declare
    v_op text;
    v_attr jsonb;
    v_s text;
    v_values jsonb;
    v_a numeric;
    v_b numeric;
    v_cmp integer;
    v_match boolean;
begin
    if p_rule is null or pg_catalog.jsonb_typeof(p_rule) <> 'object'
       or pg_catalog.jsonb_typeof(p_rule -> 'attribute') is distinct from 'string'
       or pg_catalog.jsonb_typeof(p_rule -> 'operator') is distinct from 'string' then
        return false;
    end if;
    v_op := p_rule ->> 'operator';
    v_attr := p_context -> (p_rule ->> 'attribute');
    -- the attribute as a string: JSON strings as they are, booleans as true/false
    v_s := case when pg_catalog.jsonb_typeof(v_attr) in ('string', 'boolean') then v_attr #>> '{}' end;

    if v_op in ('in', 'not_in', 'starts_with', 'ends_with', 'contains') then
        v_values := p_rule -> 'values';
        if pg_catalog.jsonb_typeof(v_values) is distinct from 'array' then
            return false;
        end if;
        if v_op in ('in', 'not_in') then
            v_match := v_s is not null and exists (
                select 1 from pg_catalog.jsonb_array_elements(v_values) e
                 where pg_catalog.jsonb_typeof(e) in ('string', 'boolean') and e #>> '{}' = v_s);
            if v_op = 'not_in' then
                v_match := not v_match;
            end if;
        elsif v_op = 'starts_with' then
            v_match := v_s is not null and exists (
                select 1 from pg_catalog.jsonb_array_elements(v_values) e
                 where pg_catalog.jsonb_typeof(e) = 'string'
                   and pg_catalog.starts_with(v_s, e #>> '{}'));
        elsif v_op = 'ends_with' then
            v_match := v_s is not null and exists (
                select 1 from pg_catalog.jsonb_array_elements(v_values) e
                 where pg_catalog.jsonb_typeof(e) = 'string'
                   and pg_catalog.right(v_s, pg_catalog.char_length(e #>> '{}')) = e #>> '{}');
        else
            v_match := v_s is not null and exists (
                select 1 from pg_catalog.jsonb_array_elements(v_values) e
                 where pg_catalog.jsonb_typeof(e) = 'string'
                   and pg_catalog.strpos(v_s, e #>> '{}') > 0);
        end if;
    elsif v_op in ('num_eq', 'num_gt', 'num_gte', 'num_lt', 'num_lte') then
        v_b := public.feature_flag_number(p_rule -> 'value');
        if v_b is null then
            return false;
        end if;
        v_a := public.feature_flag_number(v_attr);
        v_match := v_a is not null and case v_op
            when 'num_eq' then v_a = v_b
            when 'num_gt' then v_a > v_b
            when 'num_gte' then v_a >= v_b
            when 'num_lt' then v_a < v_b
            else v_a <= v_b end;
    elsif v_op in ('semver_eq', 'semver_gt', 'semver_gte', 'semver_lt', 'semver_lte') then
        if pg_catalog.jsonb_typeof(p_rule -> 'value') is distinct from 'string'
           or public.feature_flag_semver_cmp(p_rule ->> 'value', p_rule ->> 'value') is null then
            return false;
        end if;
        v_cmp := case when pg_catalog.jsonb_typeof(v_attr) = 'string'
                      then public.feature_flag_semver_cmp(v_attr #>> '{}', p_rule ->> 'value') end;
        v_match := v_cmp is not null and case v_op
            when 'semver_eq' then v_cmp = 0
            when 'semver_gt' then v_cmp > 0
            when 'semver_gte' then v_cmp >= 0
            when 'semver_lt' then v_cmp < 0
            else v_cmp <= 0 end;
    else
        return false;  -- unknown operator: false, never an error
    end if;
    if p_rule -> 'negate' = 'true'::jsonb then
        v_match := not v_match;
    end if;
    return v_match;
end
$$;

-- All rules must match (AND). An empty or non-array list matches nobody.
create function public.feature_flag_conditions_match(p_conditions jsonb, p_context jsonb)
returns boolean
language plpgsql
immutable
parallel safe
set search_path = ''
as $$
declare
    v_rule jsonb;
begin
    if pg_catalog.jsonb_typeof(p_conditions) is distinct from 'array'
       or pg_catalog.jsonb_array_length(p_conditions) = 0 then
        return false;
    end if;
    for v_rule in select e from pg_catalog.jsonb_array_elements(p_conditions) e loop
        if not public.feature_flag_rule_matches(v_rule, p_context) then
            return false;
        end if;
    end loop;
    return true;
end
$$;

-- The strategy decision for an enabled flag. p_user_listed is computed by the caller only
-- for user_list flags (so a long target_users array is not read for the other strategies).
create function public.feature_flag_decide(
    p_flag_key text,
    p_strategy text,
    p_percentage integer,
    p_user_listed boolean,
    p_conditions jsonb,
    p_user_id uuid,
    p_context jsonb,
    p_environment text
)
returns boolean
language plpgsql
immutable
parallel safe
set search_path = ''
as $$
begin
    case p_strategy
        when 'all' then
            return true;
        when 'percentage' then
            if p_percentage >= 100 then
                return true;
            end if;
            if p_percentage <= 0 or p_user_id is null then
                return false;
            end if;
            return public.feature_flag_bucket(p_flag_key, p_user_id::text) <= p_percentage;
        when 'user_list' then
            return coalesce(p_user_listed, false);
        when 'condition' then
            -- built-in attributes (environment, user_id) cannot be overridden by the context
            return public.feature_flag_conditions_match(
                p_conditions,
                (coalesce(p_context, '{}') - 'user_id' - 'environment')
                || pg_catalog.jsonb_build_object('environment', p_environment)
                || case when p_user_id is null then '{}'::jsonb
                        else pg_catalog.jsonb_build_object('user_id', p_user_id::text) end);
        else
            return false;  -- 'none'
    end case;
end
$$;

-- Upserts counts {"<flag key>|<environment>|<reason>": n, ...} into the current hour's
-- buckets. Entries that do not have that shape are skipped. Writers of
-- feature_flag_evaluations take one transaction-scoped advisory lock, so flushes never wait
-- on each other's row locks (and never deadlock); with p_wait false a busy lock returns null
-- and the caller keeps its counts for later.
create function public.feature_flag_store_counts(p_counts jsonb, p_source text, p_wait boolean)
returns integer
language plpgsql
volatile
set search_path = ''
as $$
declare
    v_rows integer;
begin
    if p_wait then
        perform pg_catalog.pg_advisory_xact_lock(8101238452373498951);
    elsif not pg_catalog.pg_try_advisory_xact_lock(8101238452373498951) then
        return null;
    end if;
    insert into public.feature_flag_evaluations as e
        (flag_key, environment, reason, source, bucket_start, evaluations, last_flushed_at)
    select pg_catalog.split_part(c.key, '|', 1), pg_catalog.split_part(c.key, '|', 2),
           pg_catalog.split_part(c.key, '|', 3), p_source,
           pg_catalog.date_trunc('hour', now() at time zone 'UTC') at time zone 'UTC',
           c.value::bigint, now()
      from pg_catalog.jsonb_each_text(p_counts) c
     where c.key ~ '^([A-Za-z0-9][A-Za-z0-9_.~-]{0,99}|\(invalid\)|\(other\))\|(development|staging|production)\|(match|no_match|disabled|unknown|hidden)$'
       and c.value ~ '^[1-9][0-9]{0,15}$'
     order by 1, 2, 3
    on conflict (flag_key, environment, reason, source, bucket_start) do update
       set evaluations = e.evaluations + excluded.evaluations,
           last_flushed_at = excluded.last_flushed_at;
    get diagnostics v_rows = row_count;
    return v_rows;
end
$$;

-- SECURITY DEFINER: a signed-in user evaluates flags whose target_users and conditions they
-- may not read, and the counts are written by the owner. search_path is pinned and every
-- name qualified. The caller's role is read from the `role` setting (what PostgREST's SET
-- ROLE sets), which a definer function does not change.
--
-- Counting without a write per call: each evaluation is counted in this backend's memory,
-- the custom setting platformdb.flag_evaluations ({"<key>|<environment>|<reason>": n, "#n":
-- pending total, "#t": epoch of the oldest}), which lives as long as the session and follows
-- transaction rollback. The call that brings 1000 pending evaluations, or finds the oldest
-- 10 s old, flushes them (feature_flag_store_counts) — unless the transaction is read-only
-- (a replica, a GET request) or another flush holds the lock: then they wait for a later
-- call. At most 256 distinct keys are kept per backend (then "(other)"), so invented keys
-- grow neither memory nor the table. Counting never raises: on any error the pending counts
-- are dropped and the answer is still returned.
create function public.is_feature_enabled(
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
    v_user uuid := p_user_id;
    v_enabled boolean;
    v_strategy text;
    v_percentage integer;
    v_secret boolean;
    v_listed boolean;
    v_conditions jsonb;
    v_result boolean := false;
    v_reason text;
    v_raw text;
    v_state jsonb;
    v_slot text;
    v_count bigint;
    v_pending integer;
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
        -- a signed-in user evaluates for themself only and never sees secret flags
        v_for_user := true;
        v_user := auth.uid();
        if p_user_id is not null and p_user_id is distinct from v_user then
            raise exception 'p_user_id must be the signed-in user (or null)'
                using errcode = '42501';
        end if;
    end if;

    select f.enabled, f.rollout_strategy, f.rollout_percentage, f.secret,
           case when f.rollout_strategy = 'user_list'
                then v_user is not null and v_user = any (f.target_users) end,
           case when f.rollout_strategy = 'condition' then f.conditions end
      into v_enabled, v_strategy, v_percentage, v_secret, v_listed, v_conditions
      from public.feature_flags f
     where f.key = p_flag_key
       and f.environment in (p_environment, 'all')
     order by f.environment = 'all'
     limit 1;

    if not found then
        v_reason := 'unknown';
    elsif v_for_user and v_secret then
        v_reason := 'hidden';
    elsif not v_enabled then
        v_reason := 'disabled';
    else
        v_result := public.feature_flag_decide(p_flag_key, v_strategy, v_percentage, v_listed,
                                               v_conditions, v_user, p_context, p_environment);
        v_reason := case when v_result then 'match' else 'no_match' end;
    end if;

    begin
        v_raw := pg_catalog.current_setting('platformdb.flag_evaluations', true);
        v_state := case when v_raw is null or v_raw = '' then '{}'::jsonb else v_raw::jsonb end;
        v_slot := p_flag_key || '|' || p_environment || '|' || v_reason;
        v_count := (v_state ->> v_slot)::bigint;
        if v_count is null then  -- a new slot: checked once, not on every call
            if p_flag_key !~ '^[A-Za-z0-9][A-Za-z0-9_.~-]{0,99}$' then
                v_slot := '(invalid)|' || p_environment || '|' || v_reason;
            elsif (select count(*) from pg_catalog.jsonb_object_keys(v_state)) >= 258 then
                v_slot := '(other)|' || p_environment || '|' || v_reason;
            end if;
            v_count := coalesce((v_state ->> v_slot)::bigint, 0);
            if v_state = '{}'::jsonb then
                v_state := pg_catalog.jsonb_build_object(
                    '#n', 0, '#t', extract(epoch from pg_catalog.clock_timestamp()));
            end if;
        end if;
        v_pending := (v_state ->> '#n')::integer + 1;
        v_state := v_state || pg_catalog.jsonb_build_object(v_slot, v_count + 1, '#n', v_pending);
        if (v_pending >= 1000
            or extract(epoch from pg_catalog.clock_timestamp()) - (v_state ->> '#t')::numeric >= 10)
           and pg_catalog.current_setting('transaction_read_only') = 'off'
           and public.feature_flag_store_counts(v_state - '#n' - '#t', 'sql', false) is not null then
            perform pg_catalog.set_config('platformdb.flag_evaluations', '', false);
        else
            perform pg_catalog.set_config('platformdb.flag_evaluations', v_state::text, false);
        end if;
    exception when others then
        perform pg_catalog.set_config('platformdb.flag_evaluations', '', false);
    end;
    return v_result;
end
$$;

-- The same decision with its explanation, without counting (debugging, parity tests).
create function public.evaluate_feature_flag(
    p_flag_key text,
    p_user_id uuid default null,
    p_environment text default 'production',
    p_context jsonb default '{}'
)
returns table (
    enabled boolean,
    reason text,
    flag_environment text,
    rollout_strategy text,
    bucket integer,
    flag_version integer
)
language plpgsql
stable
set search_path = ''
as $$
declare
    v_flag record;
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
    select f.* into v_flag
      from public.feature_flags f
     where f.key = p_flag_key and f.environment in (p_environment, 'all')
     order by f.environment = 'all'
     limit 1;
    if not found then
        return query select false, 'unknown'::text, null::text, null::text, null::integer, null::integer;
        return;
    end if;
    enabled := v_flag.enabled and public.feature_flag_decide(
        p_flag_key, v_flag.rollout_strategy, v_flag.rollout_percentage,
        p_user_id is not null and p_user_id = any (v_flag.target_users),
        v_flag.conditions, p_user_id, p_context, p_environment);
    reason := case when not v_flag.enabled then 'disabled'
                   when enabled then 'match' else 'no_match' end;
    flag_environment := v_flag.environment;
    rollout_strategy := v_flag.rollout_strategy;
    bucket := case when p_user_id is not null
                   then public.feature_flag_bucket(p_flag_key, p_user_id::text) end;
    flag_version := v_flag.version;
    return next;
end
$$;

-- Creates a flag or changes the given fields of an existing one (a null parameter keeps the
-- current value, or takes the column default for a new flag). Returns the flag's id.
create function public.upsert_feature_flag(
    p_key text,
    p_environment text default 'production',
    p_enabled boolean default null,
    p_rollout_strategy text default null,
    p_rollout_percentage integer default null,
    p_target_users uuid[] default null,
    p_conditions jsonb default null,
    p_name text default null,
    p_description text default null,
    p_secret boolean default null
)
returns uuid
language plpgsql
set search_path = ''
as $$
declare
    v_id uuid;
begin
    if p_key is null or p_key = '' then
        raise exception 'p_key must not be empty' using errcode = '22004';
    end if;
    if p_key !~ '^[A-Za-z0-9][A-Za-z0-9_.~-]{0,99}$' then
        raise exception 'p_key must be 1-100 letters, digits, ".", "_", "~" or "-" starting with a letter or digit, got %',
            pg_catalog.left(p_key, 120) using errcode = '22023';
    end if;
    if p_environment is null or p_environment not in ('development', 'staging', 'production', 'all') then
        raise exception 'p_environment: unknown environment %', coalesce(p_environment, 'null')
            using errcode = '22023', hint = 'one of development, staging, production, all';
    end if;
    if p_rollout_strategy is not null
       and p_rollout_strategy not in ('percentage', 'user_list', 'condition', 'all', 'none') then
        raise exception 'p_rollout_strategy: unknown strategy %', p_rollout_strategy
            using errcode = '22023', hint = 'one of percentage, user_list, condition, all, none';
    end if;
    if p_rollout_percentage is not null and (p_rollout_percentage < 0 or p_rollout_percentage > 100) then
        raise exception 'p_rollout_percentage must be between 0 and 100, got %', p_rollout_percentage
            using errcode = '22003';
    end if;
    if p_target_users is not null and (pg_catalog.cardinality(p_target_users) > 10000
       or pg_catalog.array_position(p_target_users, null) is not null) then
        raise exception 'p_target_users must hold at most 10000 user ids and no null'
            using errcode = '22023';
    end if;
    if p_conditions is not null and (pg_catalog.jsonb_typeof(p_conditions) <> 'array'
       or exists (select 1 from pg_catalog.jsonb_array_elements(p_conditions) r
                   where pg_catalog.jsonb_typeof(r) <> 'object'
                      or pg_catalog.jsonb_typeof(r -> 'attribute') is distinct from 'string'
                      or pg_catalog.jsonb_typeof(r -> 'operator') is distinct from 'string')) then
        raise exception 'p_conditions must be a JSON array of rules {"attribute": ..., "operator": ..., ...}'
            using errcode = '22023', hint = 'see docs/flags.md for the rule language';
    end if;
    if pg_catalog.pg_column_size(p_conditions) > 16384 then
        raise exception 'p_conditions must be at most 16 KiB' using errcode = '22023';
    end if;
    if p_name is not null and pg_catalog.char_length(p_name) not between 1 and 200 then
        raise exception 'p_name must be 1-200 characters' using errcode = '22023';
    end if;
    if p_description is not null and pg_catalog.char_length(p_description) > 2000 then
        raise exception 'p_description must be at most 2000 characters' using errcode = '22023';
    end if;

    insert into public.feature_flags as f
        (key, environment, name, description, enabled, rollout_strategy, rollout_percentage,
         target_users, conditions, secret)
    values (p_key, p_environment, coalesce(p_name, p_key), p_description,
            coalesce(p_enabled, false), coalesce(p_rollout_strategy, 'none'),
            coalesce(p_rollout_percentage, 0), coalesce(p_target_users, '{}'),
            coalesce(p_conditions, '[]'), coalesce(p_secret, false))
    on conflict (key, environment) do update
       set name = coalesce(p_name, f.name),
           description = coalesce(p_description, f.description),
           enabled = coalesce(p_enabled, f.enabled),
           rollout_strategy = coalesce(p_rollout_strategy, f.rollout_strategy),
           rollout_percentage = coalesce(p_rollout_percentage, f.rollout_percentage),
           target_users = coalesce(p_target_users, f.target_users),
           conditions = coalesce(p_conditions, f.conditions),
           secret = coalesce(p_secret, f.secret)
    returning f.id into v_id;
    return v_id;
end
$$;

-- SECURITY DEFINER: the counts are written by the owner (no role holds INSERT or UPDATE on
-- feature_flag_evaluations). Flushes this backend's pending SQL evaluation counts now.
create function public.flush_feature_flag_evaluations()
returns integer
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
    v_raw text := pg_catalog.current_setting('platformdb.flag_evaluations', true);
    v_rows integer;
begin
    if v_raw is null or v_raw = '' then
        return 0;
    end if;
    v_rows := public.feature_flag_store_counts(v_raw::jsonb - '#n' - '#t', 'sql', true);
    perform pg_catalog.set_config('platformdb.flag_evaluations', '', false);
    return v_rows;
end
$$;

-- SECURITY DEFINER for the same reason: services report the counts of their local (SDK)
-- evaluations, [{"flag_key", "environment", "reason", "count"}, ...].
create function public.record_feature_flag_evaluations(p_counts jsonb)
returns integer
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
    v_bad jsonb;
    v_map jsonb;
begin
    if p_counts is null or pg_catalog.jsonb_typeof(p_counts) <> 'array' then
        raise exception 'p_counts must be a JSON array of {flag_key, environment, reason, count}'
            using errcode = '22023';
    end if;
    if pg_catalog.jsonb_array_length(p_counts) > 10000 then
        raise exception 'p_counts: at most 10000 entries per call, got %',
            pg_catalog.jsonb_array_length(p_counts) using errcode = '22023';
    end if;
    select e into v_bad
      from pg_catalog.jsonb_array_elements(p_counts) e
     where pg_catalog.jsonb_typeof(e) <> 'object'
        or pg_catalog.jsonb_typeof(e -> 'flag_key') is distinct from 'string'
        or not ((e ->> 'flag_key') ~ '^[A-Za-z0-9][A-Za-z0-9_.~-]{0,99}$'
                or (e ->> 'flag_key') in ('(invalid)', '(other)'))
        or pg_catalog.jsonb_typeof(e -> 'environment') is distinct from 'string'
        or (e ->> 'environment') not in ('development', 'staging', 'production')
        or pg_catalog.jsonb_typeof(e -> 'reason') is distinct from 'string'
        or (e ->> 'reason') not in ('match', 'no_match', 'disabled', 'unknown', 'hidden')
        or pg_catalog.jsonb_typeof(e -> 'count') is distinct from 'number'
        or (e ->> 'count') !~ '^[1-9][0-9]{0,15}$'
     limit 1;
    if v_bad is not null then
        raise exception 'p_counts: invalid entry %', pg_catalog.left(v_bad::text, 200)
            using errcode = '22023',
                  hint = 'flag_key, environment (development/staging/production), reason (match/no_match/disabled/unknown/hidden), count > 0';
    end if;
    select coalesce(pg_catalog.jsonb_object_agg(s.slot, s.total), '{}') into v_map
      from (select (e ->> 'flag_key') || '|' || (e ->> 'environment') || '|' || (e ->> 'reason') as slot,
                   sum((e ->> 'count')::bigint) as total
              from pg_catalog.jsonb_array_elements(p_counts) e
             group by 1) s;
    return public.feature_flag_store_counts(v_map, 'sdk', true);
end
$$;

-- SECURITY DEFINER: deletes evaluation buckets older than p_older_than (no role holds DELETE).
create function public.purge_feature_flag_evaluations(p_older_than interval default '90 days')
returns integer
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
    v_rows integer;
begin
    if p_older_than is null or p_older_than < interval '1 hour' then
        raise exception 'p_older_than must be at least 1 hour' using errcode = '22023';
    end if;
    perform pg_catalog.pg_advisory_xact_lock(8101238452373498951);
    delete from public.feature_flag_evaluations e where e.bucket_start < now() - p_older_than;
    get diagnostics v_rows = row_count;
    return v_rows;
end
$$;

-- ---------------------------------------------------------------------------------------
-- triggers: version and change notification for SDK clients (LISTEN platformdb_feature_flags)
-- ---------------------------------------------------------------------------------------
create function public.feature_flags_before_write()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
    if tg_op = 'INSERT' then
        new.version := 1;
        new.created_at := now();
        new.updated_at := now();
    elsif new is distinct from old then
        new.id := old.id;
        new.created_at := old.created_at;
        new.version := old.version + 1;
        new.updated_at := now();
    end if;
    return new;
end
$$;

create function public.feature_flags_notify_change()
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

create trigger feature_flags_before_write
    before insert or update on public.feature_flags
    for each row execute function public.feature_flags_before_write();
create trigger feature_flags_notify_change
    after insert or update or delete on public.feature_flags
    for each row execute function public.feature_flags_notify_change();
-- every change of a flag lands in the audit log with the row before and after
select public.enable_audit('public.feature_flags');

-- ---------------------------------------------------------------------------------------
-- views
-- ---------------------------------------------------------------------------------------
create view public.service_health_overview
with (security_invoker = true)
as
select s.id,
       s.service_name,
       s.service_type,
       s.version,
       s.endpoint,
       s.health_check_url,
       s.status as reported_status,
       public.service_health_status(s.status, s.last_heartbeat_at, now()) as health_status,
       s.last_heartbeat_at,
       floor(extract(epoch from now() - s.last_heartbeat_at))::bigint as seconds_since_heartbeat,
       s.heartbeat_count,
       s.capabilities,
       s.dependencies,
       array(select d.name
               from jsonb_array_elements_text(s.dependencies) as d(name)
              where not exists (
                    select 1 from public.service_registry x
                     where x.service_name = d.name
                       and public.service_health_status(x.status, x.last_heartbeat_at, now())
                           = 'healthy')
              order by d.name) as unhealthy_dependencies,
       s.metrics,
       s.registered_at,
       s.updated_at
  from public.service_registry s;

create view public.feature_flag_overview
with (security_invoker = true)
as
select true as known,
       f.key,
       f.environment,
       f.name,
       f.description,
       f.enabled,
       f.rollout_strategy,
       f.rollout_percentage,
       cardinality(f.target_users) as target_user_count,
       jsonb_array_length(f.conditions) as condition_count,
       f.secret,
       f.version,
       f.updated_at,
       coalesce(e.evaluations, 0)::bigint as evaluations_24h,
       coalesce(e.enabled, 0)::bigint as enabled_24h,
       round(e.enabled::numeric / nullif(e.evaluations, 0), 4) as enabled_ratio_24h,
       e.last_flushed_at
  from public.feature_flags f
  left join lateral (
        select sum(v.evaluations) as evaluations,
               coalesce(sum(v.evaluations) filter (where v.result), 0) as enabled,
               max(v.last_flushed_at) as last_flushed_at
          from public.feature_flag_evaluations v
         where v.flag_key = f.key
           and v.bucket_start >= now() - interval '24 hours'
           and (v.environment = f.environment
                or (f.environment = 'all'
                    and not exists (select 1 from public.feature_flags o
                                     where o.key = f.key and o.environment = v.environment)))
       ) e on true
union all
select false,
       v.flag_key,
       v.environment,
       null,
       null,
       false,
       null,
       null,
       0,
       0,
       false,
       null,
       null,
       sum(v.evaluations)::bigint,
       0::bigint,
       0::numeric,
       max(v.last_flushed_at)
  from public.feature_flag_evaluations v
 where v.bucket_start >= now() - interval '24 hours'
   and not exists (select 1 from public.feature_flags o
                    where o.key = v.flag_key and o.environment in (v.environment, 'all'))
 group by v.flag_key, v.environment;

-- ---------------------------------------------------------------------------------------
-- RLS and grants (Supabase grants ALL by default: take it back, then grant what is needed)
-- ---------------------------------------------------------------------------------------
alter table public.service_registry enable row level security;
alter table public.feature_flags enable row level security;
alter table public.feature_flag_evaluations enable row level security;

create policy service_registry_service_read on public.service_registry
    for select to service_role using (true);
create policy service_registry_service_insert on public.service_registry
    for insert to service_role with check (true);
create policy service_registry_service_update on public.service_registry
    for update to service_role using (true) with check (true);
create policy service_registry_service_delete on public.service_registry
    for delete to service_role using (true);

create policy feature_flags_service_read on public.feature_flags
    for select to service_role using (true);
create policy feature_flags_service_insert on public.feature_flags
    for insert to service_role with check (true);
create policy feature_flags_service_update on public.feature_flags
    for update to service_role using (true) with check (true);
create policy feature_flags_service_delete on public.feature_flags
    for delete to service_role using (true);
create policy feature_flags_user_read on public.feature_flags
    for select to authenticated using (not secret);

create policy feature_flag_evaluations_service_read on public.feature_flag_evaluations
    for select to service_role using (true);

revoke all on table public.service_registry, public.feature_flags,
    public.feature_flag_evaluations, public.service_health_overview,
    public.feature_flag_overview
    from public, anon, authenticated, service_role;
grant select, insert, update, delete on table public.service_registry to service_role;
grant select, insert, update, delete on table public.feature_flags to service_role;
-- a signed-in user reads what a flag is and whether it is on, never whom it targets
grant select (id, key, environment, name, description, enabled, rollout_strategy,
              rollout_percentage, version, created_at, updated_at)
    on table public.feature_flags to authenticated;
grant select on table public.feature_flag_evaluations to service_role;
grant select on table public.service_health_overview, public.feature_flag_overview to service_role;

revoke all on function
    public.register_service(text, text, text, text, text, jsonb, jsonb),
    public.service_heartbeat(text, text, jsonb),
    public.service_health_status(text, timestamptz, timestamptz),
    public.feature_flag_bucket(text, text),
    public.feature_flag_number(jsonb),
    public.feature_flag_semver_cmp(text, text),
    public.feature_flag_rule_matches(jsonb, jsonb),
    public.feature_flag_conditions_match(jsonb, jsonb),
    public.feature_flag_decide(text, text, integer, boolean, jsonb, uuid, jsonb, text),
    public.feature_flag_store_counts(jsonb, text, boolean),
    public.is_feature_enabled(text, uuid, text, jsonb),
    public.evaluate_feature_flag(text, uuid, text, jsonb),
    public.upsert_feature_flag(text, text, boolean, text, integer, uuid[], jsonb, text, text, boolean),
    public.flush_feature_flag_evaluations(),
    public.record_feature_flag_evaluations(jsonb),
    public.purge_feature_flag_evaluations(interval),
    public.feature_flags_before_write(),
    public.feature_flags_notify_change()
    from public, anon, authenticated, service_role;
grant execute on function
    public.register_service(text, text, text, text, text, jsonb, jsonb),
    public.service_heartbeat(text, text, jsonb),
    public.service_health_status(text, timestamptz, timestamptz),
    public.feature_flag_number(jsonb),
    public.feature_flag_semver_cmp(text, text),
    public.feature_flag_rule_matches(jsonb, jsonb),
    public.feature_flag_conditions_match(jsonb, jsonb),
    public.feature_flag_decide(text, text, integer, boolean, jsonb, uuid, jsonb, text),
    public.evaluate_feature_flag(text, uuid, text, jsonb),
    public.upsert_feature_flag(text, text, boolean, text, integer, uuid[], jsonb, text, text, boolean),
    public.flush_feature_flag_evaluations(),
    public.record_feature_flag_evaluations(jsonb),
    public.purge_feature_flag_evaluations(interval)
    to service_role;
grant execute on function
    public.feature_flag_bucket(text, text),
    public.is_feature_enabled(text, uuid, text, jsonb)
    to authenticated, service_role;

-- ---------------------------------------------------------------------------------------
-- comments (the reference docs and the dashboard read these from the catalog)
-- ---------------------------------------------------------------------------------------
comment on table public.service_registry is
    'One row per service: what it is, where it listens, what it can do and how it last said it was. Written by register_service and service_heartbeat; service only.';
comment on column public.service_registry.id is 'Service id (stable across re-registrations).';
comment on column public.service_registry.service_name is 'Unique service name, e.g. payments-api.';
comment on column public.service_registry.service_type is 'microservice, edge_function, api or worker.';
comment on column public.service_registry.version is 'Deployed version as the service reports it.';
comment on column public.service_registry.endpoint is 'Where the service is reached (a URL with a scheme). Service only.';
comment on column public.service_registry.health_check_url is 'HTTP(S) URL of its health check, if any.';
comment on column public.service_registry.status is 'Last reported status: healthy, degraded, unhealthy or stopped.';
comment on column public.service_registry.capabilities is 'JSON array of strings: what the service offers.';
comment on column public.service_registry.dependencies is 'JSON array of the service names it depends on.';
comment on column public.service_registry.metrics is 'Last metrics snapshot sent with a heartbeat (JSON object, at most 16 KiB). Service only.';
comment on column public.service_registry.registered_at is 'First registration.';
comment on column public.service_registry.updated_at is 'Last (re-)registration.';
comment on column public.service_registry.last_heartbeat_at is 'Last registration or heartbeat; health is derived from its age.';
comment on column public.service_registry.heartbeat_count is 'Registrations and heartbeats received.';

comment on table public.feature_flags is
    'Feature flags, one row per key and environment (a row for ''all'' applies where no environment-specific row exists). Changes bump version, notify channel platformdb_feature_flags and are audited. Managed by the service; signed-in users read the non-secret flags'' key, state and rollout, never target_users or conditions.';
comment on column public.feature_flags.id is 'Flag id.';
comment on column public.feature_flags.key is 'Flag key used by callers (letters, digits, . _ ~ -; case-sensitive).';
comment on column public.feature_flags.environment is 'development, staging, production, or all (fallback for every environment).';
comment on column public.feature_flags.name is 'Human name.';
comment on column public.feature_flags.description is 'What the flag controls.';
comment on column public.feature_flags.enabled is 'Master switch: a disabled flag is off for everyone.';
comment on column public.feature_flags.rollout_strategy is 'percentage, user_list, condition, all or none.';
comment on column public.feature_flags.rollout_percentage is '0-100: with percentage, a user is in when feature_flag_bucket(key, user id) <= this (sticky as it grows; 0 = nobody, 100 = everybody, also without a user).';
comment on column public.feature_flags.target_users is 'User ids enabled by user_list (at most 10000). Not readable by signed-in users.';
comment on column public.feature_flags.conditions is 'Rules of the condition strategy (JSON array, all must match; docs/flags.md). Not readable by signed-in users.';
comment on column public.feature_flags.secret is 'A secret flag is invisible to signed-in users and evaluates to false for them (server-side flags).';
comment on column public.feature_flags.version is 'Incremented by every change (SDK clients compare it).';
comment on column public.feature_flags.created_at is 'Creation time.';
comment on column public.feature_flags.updated_at is 'Last change.';

comment on table public.feature_flag_evaluations is
    'Evaluation counts per flag key, environment, reason, source and UTC hour. Aggregated in memory (per database backend, per SDK client) and flushed in batches, never one write per evaluation. Service only.';
comment on column public.feature_flag_evaluations.flag_key is 'Flag key as asked for; (invalid) for malformed keys, (other) past 256 distinct keys in one backend.';
comment on column public.feature_flag_evaluations.environment is 'Environment asked for.';
comment on column public.feature_flag_evaluations.reason is 'match (on), no_match (off by its strategy), disabled, unknown (no such flag) or hidden (secret flag asked for by a user).';
comment on column public.feature_flag_evaluations.result is 'The answer given: reason = match.';
comment on column public.feature_flag_evaluations.source is 'sql (is_feature_enabled) or sdk (local evaluation in a client).';
comment on column public.feature_flag_evaluations.bucket_start is 'Start of the UTC hour the counts were flushed in.';
comment on column public.feature_flag_evaluations.evaluations is 'Number of evaluations.';
comment on column public.feature_flag_evaluations.last_flushed_at is 'Last flush into this bucket.';

comment on function public.register_service(text, text, text, text, text, jsonb, jsonb) is
    'Registers a service or updates its registration (by name), counts as a heartbeat, returns its id. Service only. Bad name/type/version/URL/JSON -> 22023; empty -> 22004.';
comment on function public.service_heartbeat(text, text, jsonb) is
    'Records a heartbeat with the reported status (healthy, degraded, unhealthy, stopped) and a metrics snapshot. False when the service is not registered. Service only.';
comment on function public.service_health_status(text, timestamptz, timestamptz) is
    'Health from reported status and heartbeat age: stopped; critical at >= 5 min (or never); unhealthy as reported; warning at >= 2 min or degraded; else healthy.';
comment on function public.feature_flag_bucket(text, text) is
    'Unleash gradual-rollout bucket 1..100: MurmurHash3 x86 32-bit (seed 0) of the UTF-8 bytes of key:subject, unsigned, % 100 + 1. (AB12A, 122) -> 23, (AB12A, 155) -> 100.';
comment on function public.feature_flag_number(jsonb) is 'Condition language: a JSON number, or a string of plain decimal digits, as numeric; else null.';
comment on function public.feature_flag_semver_cmp(text, text) is 'Semantic Versioning 2.0.0 precedence (-1, 0, 1); null when either is not a valid version.';
comment on function public.feature_flag_rule_matches(jsonb, jsonb) is 'Evaluates one condition rule against a context. Never raises; malformed rules and unknown operators are false.';
comment on function public.feature_flag_conditions_match(jsonb, jsonb) is 'True when every rule matches (an empty list matches nobody).';
comment on function public.feature_flag_decide(text, text, integer, boolean, jsonb, uuid, jsonb, text) is 'The rollout decision for an enabled flag (all, none, percentage, user_list, condition).';
comment on function public.feature_flag_store_counts(jsonb, text, boolean) is 'Internal: upserts aggregated evaluation counts into the current UTC hour under the evaluations lock.';
comment on function public.is_feature_enabled(text, uuid, text, jsonb) is
    'True when the flag is on for the user in the environment (context feeds the condition strategy). Unknown or disabled flag -> false, never an error. A signed-in user evaluates for themself only (another p_user_id -> 42501) and secret flags are false for them. Counted without a write per call.';
comment on function public.evaluate_feature_flag(text, uuid, text, jsonb) is
    'The same decision as is_feature_enabled with its reason (match, no_match, disabled, unknown), the flag row used, the strategy and the user''s bucket. Not counted. Service only.';
comment on function public.upsert_feature_flag(text, text, boolean, text, integer, uuid[], jsonb, text, text, boolean) is
    'Creates a flag or changes the given fields (null keeps the current value). Service only. Bad input -> 22023/22003/22004 naming the parameter.';
comment on function public.flush_feature_flag_evaluations() is 'Writes this backend''s pending evaluation counts now (waits for the evaluations lock). Returns the number of buckets written.';
comment on function public.record_feature_flag_evaluations(jsonb) is 'Adds counts of SDK (local) evaluations: [{flag_key, environment, reason, count}]. Service only.';
comment on function public.purge_feature_flag_evaluations(interval) is 'Deletes evaluation buckets older than p_older_than (default 90 days); returns the number deleted.';
comment on function public.feature_flags_before_write() is 'Trigger: keeps id and created_at, bumps version and updated_at on every real change.';
comment on function public.feature_flags_notify_change() is 'Trigger: NOTIFY platformdb_feature_flags with {op, key, environment, version} for every change (SDK clients reload that key).';

comment on view public.service_health_overview is
    'Every service with its health (healthy < 2 min since heartbeat, warning < 5 min or degraded, else critical; unhealthy and stopped as reported), heartbeat age and the dependencies that are not healthy. Service only.';
comment on view public.feature_flag_overview is
    'Every flag with its rollout and the last 24 hours of evaluations (count, enabled count, ratio); plus (known = false) keys asked for in an environment where no flag applies. Service only.';

COMMIT;
