-- platformdb 20260401180000: security hardening (extensions, payments, flag counting)
-- Three repairs found by acting as PostgREST's roles on a database built by the earlier files:
-- - extensions: the schema `extensions` (Supabase's) exists, and no extension object gives
--   PUBLIC, anon or authenticated a write privilege or a SECURITY DEFINER door (PostGIS's
--   spatial_ref_sys and st_estimatedextent in public, on databases migrated before the compat
--   layer created `extensions`);
-- - payments: a user's cancellation changes only the status (the error and provider fields
--   are the service's), and only a service names a wallet in create_transaction;
-- - flag counting: unknown keys asked by users are counted under one key, and a service's
--   distinct unknown keys are capped per hour across flushes (feature_flag_count_evaluation).
-- Sections: guard → extensions → tables → functions → RLS and grants → comments.
BEGIN;

-- ---------------------------------------------------------------------------------------
-- guard: stop before touching anything when one of our names belongs to someone else
-- ---------------------------------------------------------------------------------------
select public.platformdb_assert_names_free(array[
    'extension_privileges_revoked', 'feature_flag_count_evaluation'
]);

-- ---------------------------------------------------------------------------------------
-- tables
-- ---------------------------------------------------------------------------------------
-- What the repair below revoked, one row per object, grantee and privilege, so that the down
-- file gives back exactly that (pg_init_privs does not record every extension object).
create table public.extension_privileges_revoked (
    object_kind text not null,
    object_name text not null,
    grantee text not null,
    privilege text not null,
    revoked_at timestamptz not null default now(),
    constraint extension_privileges_revoked_pkey primary key (object_kind, object_name, grantee, privilege),
    constraint extension_privileges_revoked_kind_valid check (object_kind in ('table', 'function')),
    constraint extension_privileges_revoked_grantee_valid
        check (grantee in ('public', 'anon', 'authenticated')),
    constraint extension_privileges_revoked_privilege_valid
        check (privilege in ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER',
                             'EXECUTE'))
);

-- ---------------------------------------------------------------------------------------
-- extensions: the schema `extensions`, as on Supabase, and no write or definer door into
-- extension objects for the API roles
-- ---------------------------------------------------------------------------------------
-- `platformdb migrate` creates the schema before the first migration (compat layer), so
-- PostGIS and every later extension land there. A database migrated before that has PostGIS
-- in public; PostGIS cannot be moved (ALTER EXTENSION postgis SET SCHEMA is not supported),
-- so it is repaired in place: no write privilege on extension tables and views and no
-- EXECUTE on extension SECURITY DEFINER functions for PUBLIC, anon or authenticated
-- (Supabase's default privileges in public had given anon and authenticated everything on
-- spatial_ref_sys). The down file gives back exactly what pg_init_privs recorded for those
-- grantees when the extension was created.
do $extensions$
begin
    if not exists (select 1 from pg_catalog.pg_namespace where nspname = 'extensions') then
        create schema extensions;
        comment on schema extensions is
            'Extensions (PostGIS, …), outside the schemas the API exposes; USAGE for the API roles as on Supabase (created by platformdb 20260401180000_security_hardening).';
        grant usage on schema extensions to anon, authenticated, service_role;
    end if;
end
$extensions$;

do $repair$
declare
    v_row record;
begin
    insert into public.extension_privileges_revoked (object_kind, object_name, grantee, privilege)
    select 'table', c.oid::regclass::text,
           case when a.grantee = 0 then 'public' else r.rolname end, a.privilege_type
      from pg_catalog.pg_class c
      join pg_catalog.pg_depend d on d.classid = 'pg_catalog.pg_class'::regclass
                                 and d.objid = c.oid and d.deptype = 'e'
     cross join lateral pg_catalog.aclexplode(coalesce(c.relacl, pg_catalog.acldefault('r', c.relowner))) a
      left join pg_catalog.pg_roles r on r.oid = a.grantee
     where c.relkind in ('r', 'p', 'v', 'm', 'f')
       and c.relnamespace not in ('pg_catalog'::regnamespace, 'information_schema'::regnamespace)
       and (a.grantee = 0 or r.rolname in ('anon', 'authenticated'))
       and a.privilege_type in ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER')
    union all
    select 'function', p.oid::regprocedure::text,
           case when a.grantee = 0 then 'public' else r.rolname end, a.privilege_type
      from pg_catalog.pg_proc p
      join pg_catalog.pg_depend d on d.classid = 'pg_catalog.pg_proc'::regclass
                                 and d.objid = p.oid and d.deptype = 'e'
     cross join lateral pg_catalog.aclexplode(coalesce(p.proacl, pg_catalog.acldefault('f', p.proowner))) a
      left join pg_catalog.pg_roles r on r.oid = a.grantee
     where p.prosecdef
       and p.pronamespace not in ('pg_catalog'::regnamespace, 'information_schema'::regnamespace)
       and (a.grantee = 0 or r.rolname in ('anon', 'authenticated'))
       and a.privilege_type = 'EXECUTE';
    for v_row in
        select e.object_kind, e.object_name, e.grantee, e.privilege
          from public.extension_privileges_revoked e
         order by 1, 2, 3, 4
    loop
        execute pg_catalog.format('revoke %s on %s %s from %s', v_row.privilege, v_row.object_kind,
                                  v_row.object_name,
                                  case when v_row.grantee = 'public' then 'public'
                                       else pg_catalog.quote_ident(v_row.grantee) end);
    end loop;
end
$repair$;

-- ---------------------------------------------------------------------------------------
-- functions
-- ---------------------------------------------------------------------------------------
-- Counting one evaluation of is_feature_enabled in this backend's memory (the custom setting
-- platformdb.flag_evaluations, {"<key>|<environment>|<reason>": n, "#n": pending total, "#t":
-- epoch of the oldest}) and flushing when 1000 are pending or the oldest is 10 s old, unless
-- the transaction is read-only or another flush holds the lock. What keeps it bounded:
-- - a key that is not well-formed is counted as "(invalid)";
-- - a key no flag has (p_reason 'unknown') asked by a non-service caller (p_service false:
--   anon, authenticated) is counted as "(other)": a user inventing keys adds one row per
--   environment and hour, whatever they invent;
-- - a service's unknown keys: at most 256 distinct per backend and UTC hour (the hour of the
--   table's buckets), then "(other)". The keys already seen live in a second setting,
--   platformdb.flag_unknown_keys ({"#w": hour, "<key>|<environment>": 1, ...}), that no
--   flush clears: the cap holds across flushes;
-- - at most 256 distinct slots pending per backend (then "(other)"), so memory is bounded.
-- Never raises: on any error the pending counts are dropped. Not SECURITY DEFINER: it is
-- called from is_feature_enabled (a definer, so as the owner) and executable by no API role.
create function public.feature_flag_count_evaluation(
    p_flag_key text,
    p_environment text,
    p_reason text,
    p_service boolean
)
returns void
language plpgsql
volatile
set search_path = ''
as $$
declare
    v_raw text;
    v_state jsonb;
    v_seen jsonb;
    v_hour text;
    v_unknown text;
    v_slot text;
    v_count bigint;
    v_pending integer;
begin
    v_raw := pg_catalog.current_setting('platformdb.flag_evaluations', true);
    v_state := case when v_raw is null or v_raw = '' then '{}'::jsonb else v_raw::jsonb end;
    v_slot := p_flag_key || '|' || p_environment || '|' || p_reason;
    v_count := (v_state ->> v_slot)::bigint;
    if v_count is null then  -- a new slot: checked once per flush, not on every call
        if p_flag_key !~ '^[A-Za-z0-9][A-Za-z0-9_.~-]{0,99}$' then
            v_slot := '(invalid)|' || p_environment || '|' || p_reason;
        elsif p_reason = 'unknown' and not coalesce(p_service, false) then
            v_slot := '(other)|' || p_environment || '|' || p_reason;
        elsif p_reason = 'unknown' then
            v_hour := pg_catalog.to_char(pg_catalog.clock_timestamp() at time zone 'UTC',
                                         'YYYY-MM-DD"T"HH24');
            v_raw := pg_catalog.current_setting('platformdb.flag_unknown_keys', true);
            v_seen := case when v_raw is null or v_raw = '' then '{}'::jsonb else v_raw::jsonb end;
            if v_seen ->> '#w' is distinct from v_hour then
                v_seen := pg_catalog.jsonb_build_object('#w', v_hour);
            end if;
            v_unknown := p_flag_key || '|' || p_environment;
            if not v_seen ? v_unknown then
                if (select count(*) from pg_catalog.jsonb_object_keys(v_seen)) > 256 then
                    v_slot := '(other)|' || p_environment || '|' || p_reason;
                else
                    v_seen := v_seen || pg_catalog.jsonb_build_object(v_unknown, 1);
                end if;
            end if;
            perform pg_catalog.set_config('platformdb.flag_unknown_keys', v_seen::text, false);
        end if;
        if v_slot not like '(%'
           and (select count(*) from pg_catalog.jsonb_object_keys(v_state)) >= 258 then
            v_slot := '(other)|' || p_environment || '|' || p_reason;
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
end
$$;

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

-- SECURITY DEFINER as before; a user may no longer name a wallet.
create or replace function public.create_transaction(
    p_user_id uuid,
    p_type text,
    p_amount numeric,
    p_currency text default 'RWF',
    p_idempotency_key text default null,
    p_metadata jsonb default '{}',
    p_category text default null,
    p_wallet_id uuid default null,
    p_payment_method_id uuid default null,
    p_source text default null,
    p_destination text default null,
    p_correlation_id text default null
)
returns uuid
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
    -- the request's role: PostgREST's SET ROLE, else the login role (unchanged inside a
    -- SECURITY DEFINER function, unlike current_user)
    v_role text := case when pg_catalog.current_setting('role') = 'none' then session_user::text
                        else pg_catalog.current_setting('role') end;
    v_minor smallint;
    v_now timestamptz := now();
    v_id uuid := gen_random_uuid();
    v_existing uuid;
    v_existing_at timestamptz;
    v_tx public.transactions;
    v_pm_user uuid;
    v_pm_active boolean;
    v_diff text;
begin
    -- who may create what. Services (members of service_role or of the tables' owner, the
    -- backend's own login) act for anyone. Membership of the role itself is checked, not
    -- JWT claims, so forged claims cannot make a user a service.
    if not (v_role = 'service_role'
            or pg_catalog.pg_has_role(v_role, 'service_role', 'member')
            or pg_catalog.pg_has_role(v_role, (select c.relowner from pg_catalog.pg_class c
                                                where c.oid = 'public.transactions'::regclass),
                                      'member')) then
        if auth.uid() is null then
            raise exception 'create_transaction: sign-in required'
                using errcode = '42501';
        end if;
        if p_user_id is distinct from auth.uid() then
            raise exception 'p_user_id must be the signed-in user'
                using errcode = '42501',
                      hint = 'a user creates transactions for themself only; services act for others';
        end if;
        if p_type is distinct from 'payment' and p_type is distinct from 'transfer'
           and p_type is distinct from 'debit' then
            raise exception 'p_type: only a service may create % transactions', coalesce(p_type, 'null')
                using errcode = '42501', hint = 'a user may create payment, transfer or debit';
        end if;
        if p_wallet_id is not null then
            raise exception 'p_wallet_id: only a service may name a wallet'
                using errcode = '42501',
                      hint = 'wallets are assigned by the service; a user leaves p_wallet_id null';
        end if;
    end if;

    -- validation: a specific SQLSTATE and the parameter's name; nothing is written
    if p_user_id is null then
        raise exception 'p_user_id must not be null' using errcode = '22004';
    end if;
    if p_type is null then
        raise exception 'p_type must not be null' using errcode = '22004';
    end if;
    if p_type not in ('debit', 'credit', 'transfer', 'payment', 'refund', 'fee', 'commission') then
        raise exception 'p_type: unknown transaction type %', p_type
            using errcode = '22023',
                  hint = 'one of debit, credit, transfer, payment, refund, fee, commission';
    end if;
    if p_amount is null then
        raise exception 'p_amount must not be null' using errcode = '22004';
    end if;
    if p_amount = 'NaN'::numeric then
        raise exception 'p_amount must be a number, got NaN' using errcode = '22023';
    end if;
    if p_amount <= 0 then
        raise exception 'p_amount must be positive, got %', p_amount using errcode = '22023';
    end if;
    if p_amount > 9999999999999999.99 then
        raise exception 'p_amount out of range: at most 9999999999999999.99, got %', p_amount
            using errcode = '22003';
    end if;
    if p_currency is null then
        raise exception 'p_currency must not be null' using errcode = '22004';
    end if;
    if p_currency !~ '^[A-Z]{3}$' then
        raise exception 'p_currency must be an ISO 4217 code (three capital letters), got %', p_currency
            using errcode = '22023', hint = 'e.g. RWF, USD, EUR';
    end if;
    select c.minor_units into v_minor from public.currencies c where c.code = p_currency;
    if not found then
        raise exception 'p_currency: unknown currency %', p_currency
            using errcode = '22023', hint = 'see public.currencies';
    end if;
    if p_amount <> round(p_amount, v_minor) then
        raise exception 'p_amount: % has % decimal places, got %', p_currency, v_minor, p_amount
            using errcode = '22023',
                  hint = 'amounts are in major units, at most the currency''s minor units';
    end if;
    if p_idempotency_key is not null
       and (p_idempotency_key = '' or char_length(p_idempotency_key) > 255) then
        raise exception 'p_idempotency_key must be 1 to 255 characters' using errcode = '22023';
    end if;
    if p_metadata is not null and jsonb_typeof(p_metadata) <> 'object' then
        raise exception 'p_metadata must be a JSON object' using errcode = '22023';
    end if;
    if p_metadata is not null and pg_catalog.pg_column_size(p_metadata) > 16384 then
        raise exception 'p_metadata must be at most 16 KiB, got % bytes',
            pg_catalog.pg_column_size(p_metadata) using errcode = '22023';
    end if;
    if p_category is not null and p_category !~ '^[a-z0-9][a-z0-9_.-]{0,63}$' then
        raise exception 'p_category must be 1 to 64 lowercase letters, digits, _ . or -, got %',
            p_category using errcode = '22023';
    end if;
    if char_length(p_source) > 200 then
        raise exception 'p_source must be at most 200 characters' using errcode = '22023';
    end if;
    if char_length(p_destination) > 200 then
        raise exception 'p_destination must be at most 200 characters' using errcode = '22023';
    end if;
    if char_length(p_correlation_id) > 200 then
        raise exception 'p_correlation_id must be at most 200 characters' using errcode = '22023';
    end if;
    if p_payment_method_id is not null then
        select pm.user_id, pm.is_active into v_pm_user, v_pm_active
          from public.payment_methods pm where pm.id = p_payment_method_id;
        if v_pm_user is distinct from p_user_id then
            raise exception 'p_payment_method_id: no payment method % for this user', p_payment_method_id
                using errcode = 'PD004';
        end if;
        if not v_pm_active then
            raise exception 'p_payment_method_id: payment method % is inactive', p_payment_method_id
                using errcode = '22023';
        end if;
    end if;

    -- idempotency, global: claim the key first. A concurrent caller with the same key
    -- waits on the claim (ON CONFLICT) until the winner commits, then reads its answer.
    if p_idempotency_key is not null then
        insert into public.transaction_idempotency_keys
            (idempotency_key, transaction_id, transaction_created_at, user_id)
        values (p_idempotency_key, v_id, v_now, p_user_id)
        on conflict (idempotency_key) do nothing;
        if not found then
            -- the key is taken (committed: ON CONFLICT waited for an in-flight claim)
            select k.transaction_id, k.transaction_created_at into v_existing, v_existing_at
              from public.transaction_idempotency_keys k
             where k.idempotency_key = p_idempotency_key;
            select t.* into v_tx from public.transactions t
             where t.id = v_existing and t.created_at = v_existing_at;
            if v_tx.user_id is distinct from p_user_id then
                -- another user's request: say nothing about it
                raise exception 'p_idempotency_key was already used for a different p_user_id'
                    using errcode = 'PD001',
                          hint = 'an idempotency key identifies one request; use a new key';
            end if;
            v_diff := concat_ws(', ',
                case when v_tx.type <> p_type then 'p_type (first: ' || v_tx.type || ')' end,
                case when v_tx.amount <> p_amount then 'p_amount (first: ' || v_tx.amount || ')' end,
                case when v_tx.currency <> p_currency
                     then 'p_currency (first: ' || v_tx.currency || ')' end,
                case when v_tx.category is distinct from p_category then 'p_category' end,
                case when v_tx.wallet_id is distinct from p_wallet_id then 'p_wallet_id' end,
                case when v_tx.payment_method_id is distinct from p_payment_method_id
                     then 'p_payment_method_id' end,
                case when v_tx.source is distinct from p_source then 'p_source' end,
                case when v_tx.destination is distinct from p_destination then 'p_destination' end);
            if v_diff <> '' then
                raise exception 'p_idempotency_key % was already used with a different %',
                    p_idempotency_key, v_diff
                    using errcode = 'PD001',
                          hint = 'an idempotency key identifies one request; use a new key';
            end if;
            return v_existing;
        end if;
    end if;

    insert into public.transactions
        (id, created_at, user_id, wallet_id, type, category, amount, currency,
         payment_method_id, source, destination, correlation_id, idempotency_key, metadata,
         initiated_at)
    values (v_id, v_now, p_user_id, p_wallet_id, p_type, p_category, p_amount, p_currency,
            p_payment_method_id, p_source, p_destination, p_correlation_id, p_idempotency_key,
            coalesce(p_metadata, '{}'), v_now);
    return v_id;
end
$$;

-- SECURITY DEFINER as before; a user's cancellation sets the status and nothing else.
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

-- ---------------------------------------------------------------------------------------
-- RLS and grants
-- ---------------------------------------------------------------------------------------
alter table public.extension_privileges_revoked enable row level security;
create policy extension_privileges_revoked_service_read on public.extension_privileges_revoked
    for select to service_role using (true);
revoke all on table public.extension_privileges_revoked from public, anon, authenticated, service_role;
grant select on table public.extension_privileges_revoked to service_role;

revoke all on function public.feature_flag_count_evaluation(text, text, text, boolean)
    from public, anon, authenticated, service_role;
-- replaced functions keep their privileges; restated so that each definer's grants are here
revoke all on function
    public.is_feature_enabled(text, uuid, text, jsonb),
    public.create_transaction(uuid, text, numeric, text, text, jsonb, text, uuid, uuid, text,
                              text, text),
    public.update_transaction_status(uuid, text, text, text, text)
    from public, anon, authenticated, service_role;
grant execute on function
    public.is_feature_enabled(text, uuid, text, jsonb),
    public.create_transaction(uuid, text, numeric, text, text, jsonb, text, uuid, uuid, text,
                              text, text),
    public.update_transaction_status(uuid, text, text, text, text)
    to authenticated, service_role;

-- ---------------------------------------------------------------------------------------
-- comments (the reference docs and the dashboard read these from the catalog)
-- ---------------------------------------------------------------------------------------
comment on table public.extension_privileges_revoked is
    'Privileges of PUBLIC, anon and authenticated on extension objects that 20260401180000_security_hardening revoked (writes on extension tables and views, EXECUTE on extension SECURITY DEFINER functions); its down file grants them back. Service read only.';
comment on column public.extension_privileges_revoked.object_kind is 'table (also views) or function.';
comment on column public.extension_privileges_revoked.object_name is 'The object as regclass or regprocedure text.';
comment on column public.extension_privileges_revoked.grantee is 'public, anon or authenticated.';
comment on column public.extension_privileges_revoked.privilege is 'The privilege revoked (INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER or EXECUTE).';
comment on column public.extension_privileges_revoked.revoked_at is 'When it was revoked.';
comment on function public.feature_flag_count_evaluation(text, text, text, boolean) is
    'Internal (is_feature_enabled): counts one evaluation in this backend''s memory and flushes in batches. Unknown keys from non-service callers count as (other); a service''s distinct unknown keys are capped at 256 per backend and UTC hour across flushes; malformed keys count as (invalid). Never raises.';
comment on function public.is_feature_enabled(text, uuid, text, jsonb) is
    'True when the flag is on for the user in the environment (context feeds the condition strategy). Unknown or disabled flag -> false, never an error. A signed-in user evaluates for themself only (another p_user_id -> 42501) and secret flags are false for them. Counted without a write per call (feature_flag_count_evaluation): unknown keys from a user are counted as (other).';

comment on function public.create_transaction(uuid, text, numeric, text, text, jsonb, text, uuid, uuid, text, text, text) is
    'Creates a pending transaction and returns its id. Idempotent across all months and under concurrency: the same p_idempotency_key returns the same id; with a different user, type, amount, currency or party -> PD001. Bad input -> 22004/22023/22003 naming the parameter. A signed-in user may only create their own payment, transfer or debit (p_user_id = auth.uid(), else 42501); only a service may name a wallet (p_wallet_id from a user -> 42501); services act for anyone.';

comment on function public.update_transaction_status(uuid, text, text, text, text) is
    'Moves a transaction along the state machine and returns true; false when it already has p_new_status (nothing written). Illegal transition -> PD002; unknown or not-yours -> PD004. Services may make any legal change; a signed-in user may only cancel their own pending payment, transfer or debit (42501 otherwise), and that cancellation changes only the status: p_error_message, p_error_code and p_provider_reference are the service''s (42501 from a user). Terminal states set completed_at; every change appends transaction_events.';

COMMIT;
