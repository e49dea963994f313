-- platformdb 20260401200000 down: the exact reverse of unleash_flags.
-- Flags described by strategies only (rollout_strategy 'strategies') cannot be expressed by
-- the legacy model: they become rollout_strategy 'none' (off for everyone, enabled kept).
-- Flags whose key the legacy format refuses (UTF-8 names) are deleted with their counts.
-- Legacy flags keep the columns they always had: nothing else changes.
-- Audit entries written about flag and segment changes stay in system_audit_logs: they are data.
BEGIN;

drop trigger feature_flags_validate on public.feature_flags;
drop function public.get_feature_variant(text, uuid, text, jsonb);
drop function public.delete_feature_flag_segment(text);
drop function public.upsert_feature_flag_segment(text, jsonb, text, integer);
drop function public.upsert_feature_flag(text, text, boolean, text, integer, uuid[], jsonb, text, text, boolean,
                                         jsonb, jsonb, jsonb);

update public.feature_flags set rollout_strategy = 'none' where rollout_strategy = 'strategies';
delete from public.feature_flags where key !~ '^[A-Za-z0-9][A-Za-z0-9_.~-]{0,99}$';
delete from public.feature_flag_evaluations
 where not (flag_key ~ '^[A-Za-z0-9][A-Za-z0-9_.~-]{0,99}$' or flag_key in ('(invalid)', '(other)'));

-- Upserts counts {"<flag key>|<environment>|<reason>": n, ...} into the current hour's
-- buckets. Entries that do not have that shape are skipped. Writers of
-- feature_flag_evaluations take one transaction-scoped advisory lock, so flushes never wait
-- on each other's row locks (and never deadlock); with p_wait false a busy lock returns null
-- and the caller keeps its counts for later.
create or replace function public.feature_flag_store_counts(p_counts jsonb, p_source text, p_wait boolean)
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
-- SECURITY DEFINER for the same reason: services report the counts of their local (SDK)
-- evaluations, [{"flag_key", "environment", "reason", "count"}, ...].
create or replace function public.record_feature_flag_evaluations(p_counts jsonb)
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
-- is_feature_enabled as 20260401180000_security_hardening left it.
-- SECURITY DEFINER as before; counting moved to feature_flag_count_evaluation.
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
    v_user uuid := p_user_id;
    v_enabled boolean;
    v_strategy text;
    v_percentage integer;
    v_secret boolean;
    v_listed boolean;
    v_conditions jsonb;
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

    perform public.feature_flag_count_evaluation(p_flag_key, p_environment, v_reason,
                                                 not v_for_user);
    return v_result;
end
$$;
-- The same decision with its explanation, without counting (debugging, parity tests).
create or replace function public.evaluate_feature_flag(
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

drop function public.feature_flag_count(text, text, text, boolean);
drop table public.feature_flag_segments;
drop function public.feature_flag_segments_notify_change();
drop function public.feature_flag_segments_validate();
drop function public.feature_flags_validate();
drop function public.feature_flag_legacy_strategies(text, text, integer, uuid[], jsonb);
drop function public.feature_flag_check_dependencies(text, jsonb);
drop function public.feature_flag_check_strategies(text, jsonb);
drop function public.feature_flag_check_variants(jsonb, text, boolean);
drop function public.feature_flag_check_constraints(jsonb, text);
drop function public.feature_flag_outcome(text, boolean, jsonb, jsonb, jsonb, text, jsonb, integer, text, boolean);
drop function public.feature_flag_pick_variant(jsonb, text, text, jsonb);
drop function public.feature_flag_strategy_matches(text, jsonb, jsonb);
drop function public.feature_flag_constraint_matches(jsonb, jsonb);
drop function public.feature_flag_regex_pg(text, boolean);
drop function public.feature_flag_parse_float(text);
drop function public.feature_flag_context_value(jsonb, text);
drop function public.feature_flag_context(jsonb, text, text);
drop function public.feature_flag_hash(text, text, bigint, bigint);

alter table public.feature_flag_evaluations drop constraint feature_flag_evaluations_flag_key_utf8_format;
-- squawk-ignore constraint-missing-not-valid
alter table public.feature_flag_evaluations add constraint feature_flag_evaluations_flag_key_format check (flag_key ~ '^[A-Za-z0-9][A-Za-z0-9_.~-]{0,99}$' or flag_key in ('(invalid)', '(other)'));
alter table public.feature_flags drop constraint feature_flags_key_utf8_format;
-- squawk-ignore constraint-missing-not-valid
alter table public.feature_flags add constraint feature_flags_key_format check (key ~ '^[A-Za-z0-9][A-Za-z0-9_.~-]{0,99}$');
alter table public.feature_flags drop constraint feature_flags_rollout_strategy_known;
-- squawk-ignore constraint-missing-not-valid
alter table public.feature_flags add constraint feature_flags_rollout_strategy_valid check (rollout_strategy in ('percentage', 'user_list', 'condition', 'all', 'none'));
alter table public.feature_flags
    drop column dependencies,
    drop column variants,
    drop column strategies;

revoke all on function
    public.upsert_feature_flag(text, text, boolean, text, integer, uuid[], jsonb, text, text, boolean),
    public.feature_flag_store_counts(jsonb, text, boolean),
    public.record_feature_flag_evaluations(jsonb),
    public.is_feature_enabled(text, uuid, text, jsonb),
    public.evaluate_feature_flag(text, uuid, text, jsonb)
    from public, anon, authenticated, service_role;
grant execute on function
    public.upsert_feature_flag(text, text, boolean, text, integer, uuid[], jsonb, text, text, boolean),
    public.record_feature_flag_evaluations(jsonb),
    public.evaluate_feature_flag(text, uuid, text, jsonb)
    to service_role;
grant execute on function public.is_feature_enabled(text, uuid, text, jsonb) to authenticated, service_role;

comment on function public.is_feature_enabled(text, uuid, text, jsonb) is
    'True when the flag is on for the user in the environment (context feeds the condition strategy). Unknown or disabled flag -> false, never an error. A signed-in user evaluates for themself only (another p_user_id -> 42501) and secret flags are false for them. Counted without a write per call (feature_flag_count_evaluation): unknown keys from a user are counted as (other).';
comment on function public.evaluate_feature_flag(text, uuid, text, jsonb) is
    'The same decision as is_feature_enabled with its reason (match, no_match, disabled, unknown), the flag row used, the strategy and the user''s bucket. Not counted. Service only.';
comment on function public.upsert_feature_flag(text, text, boolean, text, integer, uuid[], jsonb, text, text, boolean) is
    'Creates a flag or changes the given fields (null keeps the current value). Service only. Bad input -> 22023/22003/22004 naming the parameter.';
comment on column public.feature_flags.key is 'Flag key used by callers (letters, digits, . _ ~ -; case-sensitive).';
comment on column public.feature_flags.rollout_strategy is 'percentage, user_list, condition, all or none.';
comment on function public.feature_flag_store_counts(jsonb, text, boolean) is 'Internal: upserts aggregated evaluation counts into the current UTC hour under the evaluations lock.';
comment on function public.record_feature_flag_evaluations(jsonb) is 'Adds counts of SDK (local) evaluations: [{flag_key, environment, reason, count}]. Service only.';

COMMIT;
