-- platformdb 20260401120000: transactions and payments (SPEC §3.3)
-- Money that is never doubled, lost, or visible to the wrong user:
--   * transactions, partitioned by month on created_at and never dropped (retention null);
--   * global uniqueness that partitions cannot give (a UNIQUE on a partitioned table must
--     include created_at): transaction_directory holds every transaction's id and
--     transaction_ref once, and transaction_idempotency_keys maps each idempotency key to
--     the one transaction it created, whatever month that was;
--   * a status state machine enforced by triggers, so it holds for every writer, with an
--     append-only transaction_events row for every change;
--   * payment_methods whose encrypted details authenticated users can never select.
-- Sections: guard → helpers → tables → indexes → functions → triggers → views → RLS and grants →
-- comments.
BEGIN;

-- ---------------------------------------------------------------------------------------
-- guard: stop before touching anything when one of our names belongs to someone else
-- ---------------------------------------------------------------------------------------
select public.platformdb_assert_names_free(array[
    -- tables, partitions, sequence
    'currencies', 'payment_methods', 'transactions', 'transactions_default',
    'transaction_directory', 'transaction_idempotency_keys', 'transaction_events',
    'transaction_ref_seq',
    -- indexes and constraint indexes
    'currencies_pkey', 'payment_methods_pkey', 'payment_methods_id_user_key',
    'payment_methods_one_default_per_user', 'payment_methods_user_idx',
    'transactions_pkey', 'transactions_user_created_idx', 'transactions_open_status_idx',
    'transactions_payment_method_idx', 'transactions_correlation_idx',
    'transactions_provider_reference_idx',
    'transaction_directory_pkey', 'transaction_directory_transaction_ref_key',
    'transaction_directory_user_idx',
    'transaction_idempotency_keys_pkey', 'transaction_idempotency_keys_transaction_id_key',
    'transaction_events_pkey', 'transaction_events_transaction_idx',
    'transaction_events_user_idx',
    -- functions
    'transaction_next_statuses', 'next_transaction_ref', 'create_transaction',
    'update_transaction_status',
    'get_transaction', 'set_default_payment_method', 'transactions_before_insert',
    'transactions_before_update', 'transactions_after_status_change',
    'payment_methods_before_write', 'payments_refuse_change',
    -- views
    'transaction_summary', 'user_recent_transactions'
]);

-- ---------------------------------------------------------------------------------------
-- helpers the tables need (transaction_ref's default)
-- ---------------------------------------------------------------------------------------
create sequence public.transaction_ref_seq as bigint minvalue 1 maxvalue 1099511627775 no cycle;

-- Human-readable, unique by construction: TX-<yymmdd>-<8 Crockford base32 characters>.
-- The characters encode a bijection (odd multiplications and xor-shifts on 40 bits) of a
-- sequence value, so two references never collide and consecutive ones do not reveal
-- volume. transaction_directory's UNIQUE (transaction_ref) still guards direct inserts.
create function public.next_transaction_ref()
returns text
language plpgsql
volatile
set search_path = ''
as $$
declare
    c_mask constant bigint := 1099511627775;  -- 2^40 - 1
    c_alphabet constant text := '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
    v_x bigint := pg_catalog.nextval('public.transaction_ref_seq');
    v_out text := '';
begin
    -- factors are odd (invertible mod 2^40) and below 2^22, so products stay below 2^62
    v_x := (v_x * 3676977) & c_mask;
    v_x := v_x # (v_x >> 19);
    v_x := (v_x * 1948843) & c_mask;
    v_x := v_x # (v_x >> 21);
    for i in reverse 7..0 loop
        v_out := v_out || substr(c_alphabet, ((v_x >> (5 * i)) & 31)::integer + 1, 1);
    end loop;
    return 'TX-' || pg_catalog.to_char(now() at time zone 'UTC', 'YYMMDD') || '-' || v_out;
end
$$;

-- ---------------------------------------------------------------------------------------
-- tables
-- ---------------------------------------------------------------------------------------
create table public.currencies (
    code text not null,
    minor_units smallint not null,
    name text not null,
    constraint currencies_pkey primary key (code),
    constraint currencies_code_iso4217 check (code ~ '^[A-Z]{3}$'),
    -- amounts are numeric(18, 2): a currency with 3 minor units (KWD, BHD) cannot be stored
    constraint currencies_minor_units_range check (minor_units between 0 and 2),
    constraint currencies_name_length check (char_length(name) between 1 and 100)
);

insert into public.currencies (code, minor_units, name) values
    ('RWF', 0, 'Rwandan franc'),
    ('USD', 2, 'US dollar'),
    ('EUR', 2, 'Euro'),
    ('GBP', 2, 'Pound sterling'),
    ('KES', 2, 'Kenyan shilling'),
    ('UGX', 0, 'Ugandan shilling'),
    ('TZS', 2, 'Tanzanian shilling'),
    ('BIF', 0, 'Burundian franc'),
    ('CDF', 2, 'Congolese franc'),
    ('ZAR', 2, 'South African rand');

create table public.payment_methods (
    id uuid not null default gen_random_uuid(),
    user_id uuid not null,
    type text not null,
    provider text not null,
    masked_number text,
    label text,
    encrypted_details bytea,
    is_default boolean not null default false,
    is_active boolean not null default true,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint payment_methods_pkey primary key (id),
    -- target of transactions (payment_method_id, user_id): a transaction can only use a
    -- payment method of its own user (and the key carries the future distribution column)
    constraint payment_methods_id_user_key unique (id, user_id),
    constraint payment_methods_type_valid
        check (type in ('card', 'mobile_money', 'bank_account', 'wallet', 'cash')),
    constraint payment_methods_provider_format check (provider ~ '^[a-z][a-z0-9_]{1,49}$'),
    -- masked means: at most 4 digits shown and at least one mask character
    constraint payment_methods_masked_number_masked check (
        masked_number is null
        or (char_length(masked_number) between 4 and 32
            and masked_number ~ '^[^0-9]*([0-9][^0-9]*){0,4}$'
            and masked_number ~ '[*•xX]')),
    constraint payment_methods_masked_number_required
        check (type = 'cash' or masked_number is not null),
    constraint payment_methods_label_length check (label is null or char_length(label) <= 100),
    constraint payment_methods_details_size
        check (encrypted_details is null or octet_length(encrypted_details) <= 8192),
    constraint payment_methods_default_is_active check (not is_default or is_active)
);

-- one row per transaction, whatever its month: the global home of id and transaction_ref
create table public.transaction_directory (
    id uuid not null,
    transaction_ref text not null,
    user_id uuid not null,
    created_at timestamptz not null,
    constraint transaction_directory_pkey primary key (id),
    constraint transaction_directory_transaction_ref_key unique (transaction_ref)
);

create table public.transaction_idempotency_keys (
    idempotency_key text not null,
    transaction_id uuid not null,
    transaction_created_at timestamptz not null,
    user_id uuid not null,
    created_at timestamptz not null default now(),
    constraint transaction_idempotency_keys_pkey primary key (idempotency_key),
    constraint transaction_idempotency_keys_transaction_id_key unique (transaction_id),
    -- the key is claimed before its transaction is inserted (that is what makes concurrent
    -- callers wait for the winner), so the reference is checked at commit
    constraint transaction_idempotency_keys_transaction_fkey foreign key (transaction_id)
        references public.transaction_directory (id) deferrable initially deferred,
    constraint transaction_idempotency_keys_key_length
        check (char_length(idempotency_key) between 1 and 255)
);

create table public.transactions (
    id uuid not null default gen_random_uuid(),
    created_at timestamptz not null default now(),
    transaction_ref text not null default public.next_transaction_ref(),
    user_id uuid not null,
    wallet_id uuid,
    type text not null,
    category text,
    amount numeric(18, 2) not null,
    currency text not null default 'RWF',
    status text not null default 'pending',
    payment_method_id uuid,
    source text,
    destination text,
    correlation_id text,
    idempotency_key text,
    provider_reference text,
    error_code text,
    error_message text,
    metadata jsonb not null default '{}',
    initiated_at timestamptz not null default now(),
    completed_at timestamptz,
    reversed_at timestamptz,
    updated_at timestamptz not null default now(),
    constraint transactions_pkey primary key (id, created_at),
    constraint transactions_payment_method_fkey foreign key (payment_method_id, user_id)
        references public.payment_methods (id, user_id),
    constraint transactions_type_valid check (type in
        ('debit', 'credit', 'transfer', 'payment', 'refund', 'fee', 'commission')),
    constraint transactions_status_valid check (status in
        ('pending', 'processing', 'completed', 'failed', 'cancelled', 'reversed')),
    constraint transactions_amount_positive check (amount > 0),
    constraint transactions_currency_iso4217 check (currency ~ '^[A-Z]{3}$'),
    constraint transactions_ref_format check (transaction_ref ~ '^[A-Z0-9][A-Z0-9-]{5,39}$'),
    constraint transactions_category_format
        check (category is null or category ~ '^[a-z0-9][a-z0-9_.-]{0,63}$'),
    constraint transactions_source_length check (source is null or char_length(source) <= 200),
    constraint transactions_destination_length
        check (destination is null or char_length(destination) <= 200),
    constraint transactions_correlation_id_length
        check (correlation_id is null or char_length(correlation_id) <= 200),
    constraint transactions_idempotency_key_length
        check (idempotency_key is null or char_length(idempotency_key) between 1 and 255),
    constraint transactions_provider_reference_length
        check (provider_reference is null or char_length(provider_reference) <= 200),
    constraint transactions_error_code_length
        check (error_code is null or char_length(error_code) <= 100),
    constraint transactions_error_message_length
        check (error_message is null or char_length(error_message) <= 2000),
    constraint transactions_metadata_object
        check (jsonb_typeof(metadata) = 'object' and pg_column_size(metadata) <= 16384),
    -- completed_at marks leaving the open states (completed, failed, cancelled; reversed
    -- keeps the completion time) and reversed_at the reversal
    constraint transactions_finalized_or_completed_at_null
        check ((status in ('pending', 'processing')) = (completed_at is null)),
    constraint transactions_reversed_or_reversed_at_null
        check ((status = 'reversed') = (reversed_at is not null)),
    constraint transactions_failure_has_error
        check (status <> 'failed' or error_message is not null)
) partition by range (created_at);

create table public.transaction_events (
    id uuid not null default gen_random_uuid(),
    transaction_id uuid not null,
    user_id uuid not null,
    previous_status text,
    new_status text not null,
    error_code text,
    error_message text,
    triggered_by_user_id uuid,
    triggered_by_role text not null,
    triggered_by text not null,
    created_at timestamptz not null default clock_timestamp(),
    constraint transaction_events_pkey primary key (id),
    constraint transaction_events_transaction_fkey foreign key (transaction_id)
        references public.transaction_directory (id),
    constraint transaction_events_new_status_valid check (new_status in
        ('pending', 'processing', 'completed', 'failed', 'cancelled', 'reversed')),
    constraint transaction_events_previous_status_valid check (previous_status is null
        or previous_status in ('pending', 'processing', 'completed', 'failed', 'cancelled')),
    constraint transaction_events_status_changes
        check (previous_status is distinct from new_status)
);

-- ---------------------------------------------------------------------------------------
-- indexes (declared on the parents; every partition gets them)
-- ---------------------------------------------------------------------------------------
-- at most one default payment method per user
create unique index payment_methods_one_default_per_user
    on public.payment_methods (user_id) where is_default;
create index payment_methods_user_idx on public.payment_methods (user_id, created_at);
-- a user's history (RLS predicate user_id = auth.uid() plus recency)
create index transactions_user_created_idx on public.transactions (user_id, created_at desc);
-- the sweep of stuck payments reads only the open ones
create index transactions_open_status_idx on public.transactions (status, created_at)
    where status in ('pending', 'processing');
-- deleting a payment method checks no transaction uses it
create index transactions_payment_method_idx on public.transactions (payment_method_id)
    where payment_method_id is not null;
create index transactions_correlation_idx on public.transactions (correlation_id)
    where correlation_id is not null;
-- provider callbacks (e.g. MTN MoMo) find their transaction by the provider's reference
create index transactions_provider_reference_idx on public.transactions (provider_reference)
    where provider_reference is not null;
create index transaction_directory_user_idx on public.transaction_directory (user_id);
create index transaction_events_transaction_idx
    on public.transaction_events (transaction_id, created_at);
create index transaction_events_user_idx on public.transaction_events (user_id, created_at desc);

-- ---------------------------------------------------------------------------------------
-- functions
-- ---------------------------------------------------------------------------------------
-- The state machine, in one place: pending → processing → completed | failed | cancelled;
-- pending → completed | failed | cancelled; completed → reversed. Nothing leaves failed,
-- cancelled or reversed.
create function public.transaction_next_statuses(p_status text)
returns text[]
language sql
immutable
parallel safe
set search_path = ''
as $$
    select case p_status
        when 'pending' then array['processing', 'completed', 'failed', 'cancelled']
        when 'processing' then array['completed', 'failed', 'cancelled']
        when 'completed' then array['reversed']
        else array[]::text[]
    end
$$;

-- SECURITY DEFINER: callers have no INSERT on the tables (money moves only through here).
-- search_path is pinned and every name qualified; EXECUTE only for authenticated (their
-- own, outgoing transactions: p_user_id must be auth.uid()) and service_role.
create function public.create_transaction(
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

-- SECURITY DEFINER: nobody has UPDATE on transactions. A service moves any transaction
-- along the state machine; a signed-in user may only cancel their own pending payment,
-- transfer or debit. Another user's transaction is reported as not found.
create function public.update_transaction_status(
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

-- Security invoker: RLS decides (a user gets their own transaction or nothing). The
-- directory turns the id into its partition, so the lookup touches one partition.
create function public.get_transaction(p_transaction_id uuid)
returns setof public.transactions
language sql
stable
set search_path = ''
as $$
    select t.*
      from public.transaction_directory d
      join public.transactions t on t.id = d.id and t.created_at = d.created_at
     where d.id = p_transaction_id
$$;

-- Security invoker: the caller's own RLS and column privileges apply. Unsets the previous
-- default first (one default per user is a unique index, checked row by row).
create function public.set_default_payment_method(p_payment_method_id uuid)
returns boolean
language plpgsql
volatile
set search_path = ''
as $$
declare
    v_user uuid;
    v_active boolean;
begin
    if p_payment_method_id is null then
        raise exception 'p_payment_method_id must not be null' using errcode = '22004';
    end if;
    select pm.user_id, pm.is_active into v_user, v_active
      from public.payment_methods pm where pm.id = p_payment_method_id;
    if v_user is null then
        raise exception 'p_payment_method_id: payment method % not found', p_payment_method_id
            using errcode = 'PD004';
    end if;
    if not v_active then
        raise exception 'p_payment_method_id: payment method % is inactive', p_payment_method_id
            using errcode = '22023';
    end if;
    -- lock the user's methods: two concurrent calls for one user take turns
    perform 1 from public.payment_methods pm where pm.user_id = v_user for update;
    update public.payment_methods pm set is_default = false
     where pm.user_id = v_user and pm.is_default and pm.id <> p_payment_method_id;
    update public.payment_methods pm set is_default = true
     where pm.id = p_payment_method_id and not pm.is_default;
    return found;
end
$$;

-- ---------------------------------------------------------------------------------------
-- triggers: the invariants hold for every writer, not only for the functions above
-- ---------------------------------------------------------------------------------------
create function public.transactions_before_insert()
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

create function public.transactions_before_update()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
    if new.id <> old.id or new.created_at <> old.created_at
       or new.transaction_ref <> old.transaction_ref or new.user_id <> old.user_id
       or new.wallet_id is distinct from old.wallet_id or new.type <> old.type
       or new.category is distinct from old.category or new.amount <> old.amount
       or new.currency <> old.currency
       or new.payment_method_id is distinct from old.payment_method_id
       or new.source is distinct from old.source or new.destination is distinct from old.destination
       or new.correlation_id is distinct from old.correlation_id
       or new.idempotency_key is distinct from old.idempotency_key
       or new.initiated_at <> old.initiated_at then
        raise exception 'transactions: only status, error, provider reference and metadata change after creation'
            using errcode = 'PD006',
                  hint = 'amounts, parties and references are fixed; reverse and create a new transaction instead';
    end if;
    if new.status is distinct from old.status then
        if not new.status = any (public.transaction_next_statuses(old.status)) then
            raise exception 'illegal transition % -> % for transaction %', old.status, new.status, old.id
                using errcode = 'PD002';
        end if;
        new.completed_at := case when new.status in ('completed', 'failed', 'cancelled') then now()
                                 else old.completed_at end;
        new.reversed_at := case when new.status = 'reversed' then now() else old.reversed_at end;
    else
        new.completed_at := old.completed_at;
        new.reversed_at := old.reversed_at;
    end if;
    new.updated_at := now();
    return new;
end
$$;

create function public.transactions_after_status_change()
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

create function public.payment_methods_before_write()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
    -- a removed payment method keeps no secret and cannot stay the default
    if not new.is_active then
        new.encrypted_details := null;
        new.is_default := false;
    end if;
    if tg_op = 'UPDATE' then
        if new.user_id <> old.user_id then
            raise exception 'payment_methods.user_id cannot change' using errcode = 'PD006';
        end if;
        new.created_at := old.created_at;
    end if;
    new.updated_at := now();
    return new;
end
$$;

-- Append-only / never-deleted tables: refuse UPDATE and DELETE for everyone but the table
-- owner (maintenance moves rows between partitions with DELETE … RETURNING as the owner).
create function public.payments_refuse_change()
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

create trigger transactions_before_insert
    before insert on public.transactions
    for each row execute function public.transactions_before_insert();
create trigger transactions_before_update
    before update on public.transactions
    for each row execute function public.transactions_before_update();
create trigger transactions_after_status_change
    after update on public.transactions
    for each row when (old.status is distinct from new.status)
    execute function public.transactions_after_status_change();
create trigger transactions_no_delete
    before delete on public.transactions
    for each row execute function public.payments_refuse_change();
create trigger transaction_events_append_only
    before update or delete on public.transaction_events
    for each row execute function public.payments_refuse_change();
create trigger transaction_directory_append_only
    before update or delete on public.transaction_directory
    for each row execute function public.payments_refuse_change();
create trigger transaction_idempotency_keys_append_only
    before update or delete on public.transaction_idempotency_keys
    for each row execute function public.payments_refuse_change();
create trigger payment_methods_before_write
    before insert or update on public.payment_methods
    for each row execute function public.payment_methods_before_write();

-- monthly partitions (current month + 3 ahead, DEFAULT); transactions are never dropped
select public.register_partitioned_table('public.transactions', null, 3);

-- ---------------------------------------------------------------------------------------
-- views (security_invoker: the caller's RLS applies through them)
-- ---------------------------------------------------------------------------------------
create view public.transaction_summary
with (security_invoker = true)
as
select date_trunc('day', t.created_at, 'UTC') as day,
       t.currency,
       t.type,
       t.status,
       count(*) as transaction_count,
       sum(t.amount) as total_amount,
       round(avg(t.amount), 2) as average_amount,
       min(t.amount) as min_amount,
       max(t.amount) as max_amount,
       max(t.created_at) as last_transaction_at
  from public.transactions t
 where t.created_at >= now() - interval '30 days'
 group by 1, t.currency, t.type, t.status;

create view public.user_recent_transactions
with (security_invoker = true)
as
select t.id,
       t.transaction_ref,
       t.user_id,
       t.type,
       t.category,
       t.amount,
       t.currency,
       t.status,
       t.payment_method_id,
       t.destination,
       t.error_message,
       t.created_at,
       t.completed_at
  from public.transactions t
 where t.created_at >= now() - interval '30 days';

-- ---------------------------------------------------------------------------------------
-- RLS and grants (Supabase grants ALL by default: take it back, then grant what is needed)
-- ---------------------------------------------------------------------------------------
alter table public.currencies enable row level security;
alter table public.payment_methods enable row level security;
alter table public.transaction_directory enable row level security;
alter table public.transaction_idempotency_keys enable row level security;
alter table public.transactions enable row level security;
alter table public.transaction_events enable row level security;

create policy currencies_read on public.currencies
    for select to authenticated, service_role using (true);

create policy payment_methods_owner_read on public.payment_methods
    for select to authenticated using (user_id = (select auth.uid()));
create policy payment_methods_owner_insert on public.payment_methods
    for insert to authenticated with check (user_id = (select auth.uid()));
create policy payment_methods_owner_update on public.payment_methods
    for update to authenticated
    using (user_id = (select auth.uid())) with check (user_id = (select auth.uid()));
create policy payment_methods_owner_delete on public.payment_methods
    for delete to authenticated using (user_id = (select auth.uid()));
create policy payment_methods_service_read on public.payment_methods
    for select to service_role using (true);
create policy payment_methods_service_insert on public.payment_methods
    for insert to service_role with check (true);
create policy payment_methods_service_update on public.payment_methods
    for update to service_role using (true) with check (true);
create policy payment_methods_service_delete on public.payment_methods
    for delete to service_role using (true);

create policy transaction_directory_owner_read on public.transaction_directory
    for select to authenticated using (user_id = (select auth.uid()));
create policy transaction_directory_service_read on public.transaction_directory
    for select to service_role using (true);

create policy transaction_idempotency_keys_service_read on public.transaction_idempotency_keys
    for select to service_role using (true);

create policy transactions_owner_read on public.transactions
    for select to authenticated using (user_id = (select auth.uid()));
create policy transactions_service_read on public.transactions
    for select to service_role using (true);

create policy transaction_events_owner_read on public.transaction_events
    for select to authenticated using (user_id = (select auth.uid()));
create policy transaction_events_service_read on public.transaction_events
    for select to service_role using (true);

revoke all on table public.currencies, public.payment_methods, public.transaction_directory,
    public.transaction_idempotency_keys, public.transactions, public.transaction_events,
    public.transaction_summary, public.user_recent_transactions
    from public, anon, authenticated, service_role;
revoke all on sequence public.transaction_ref_seq from public, anon, authenticated, service_role;

grant select on table public.currencies to authenticated, service_role;
-- the owner manages their payment methods, but never sees or writes the encrypted details
grant select (id, user_id, type, provider, masked_number, label, is_default, is_active,
              created_at, updated_at)
    on table public.payment_methods to authenticated;
grant insert (user_id, type, provider, masked_number, label, is_default)
    on table public.payment_methods to authenticated;
grant update (label, is_default, is_active) on table public.payment_methods to authenticated;
grant delete on table public.payment_methods to authenticated;
grant select, insert, update, delete on table public.payment_methods to service_role;
grant select on table public.transaction_directory to authenticated, service_role;
grant select on table public.transaction_idempotency_keys to service_role;
grant select on table public.transactions to authenticated, service_role;
grant select on table public.transaction_events to authenticated, service_role;
grant select on table public.user_recent_transactions to authenticated, service_role;
grant select on table public.transaction_summary to service_role;

revoke all on function
    public.transaction_next_statuses(text),
    public.next_transaction_ref(),
    public.create_transaction(uuid, text, numeric, text, text, jsonb, text, uuid, uuid, text,
                              text, text),
    public.update_transaction_status(uuid, text, text, text, text),
    public.get_transaction(uuid),
    public.set_default_payment_method(uuid),
    public.transactions_before_insert(),
    public.transactions_before_update(),
    public.transactions_after_status_change(),
    public.payment_methods_before_write(),
    public.payments_refuse_change()
    from public, anon, authenticated, service_role;
grant execute on function
    public.create_transaction(uuid, text, numeric, text, text, jsonb, text, uuid, uuid, text,
                              text, text),
    public.update_transaction_status(uuid, text, text, text, text),
    public.get_transaction(uuid),
    public.set_default_payment_method(uuid)
    to authenticated, service_role;

-- ---------------------------------------------------------------------------------------
-- comments (the reference docs and the dashboard read these from the catalog)
-- ---------------------------------------------------------------------------------------
comment on table public.currencies is
    'ISO 4217 currencies accepted for transactions, with their minor units (RWF 0, USD 2). Amounts are validated against minor_units. Read-only for users and services; the owner adds currencies.';
comment on column public.currencies.code is 'ISO 4217 alphabetic code, three capital letters.';
comment on column public.currencies.minor_units is 'Decimal places of the currency (0 to 2: amounts are numeric(18, 2)).';
comment on column public.currencies.name is 'English name.';

comment on table public.payment_methods is
    'A user''s payment instruments (card, mobile money, bank account, wallet, cash). Only a masked number is stored in clear; encrypted_details is never selectable by authenticated. At most one default per user. The owner manages their own rows; services manage all.';
comment on column public.payment_methods.id is 'Payment method id.';
comment on column public.payment_methods.user_id is 'Owner (auth.users id); never changes.';
comment on column public.payment_methods.type is 'card, mobile_money, bank_account, wallet or cash.';
comment on column public.payment_methods.provider is 'Provider slug, e.g. mtn_momo, airtel_money, visa, bk (lowercase).';
comment on column public.payment_methods.masked_number is 'Display form with at most 4 digits visible, e.g. ********3456. Required except for cash.';
comment on column public.payment_methods.label is 'The owner''s name for it, e.g. "MoMo personal".';
comment on column public.payment_methods.encrypted_details is 'Ciphertext of the full details (encrypted by the service before storing). Readable and writable by service_role only; wiped when the method is deactivated.';
comment on column public.payment_methods.is_default is 'The user''s default method; at most one per user (partial unique index).';
comment on column public.payment_methods.is_active is 'False once removed by its owner; a method used by a transaction is deactivated rather than deleted.';
comment on column public.payment_methods.created_at is 'When it was added.';
comment on column public.payment_methods.updated_at is 'Last change.';

comment on table public.transaction_directory is
    'One row per transaction across every month: enforces global uniqueness of id and transaction_ref (a UNIQUE on the partitioned table would have to include created_at) and maps an id to its partition. Written by the transactions insert trigger; append-only.';
comment on column public.transaction_directory.id is 'Transaction id (globally unique).';
comment on column public.transaction_directory.transaction_ref is 'Transaction reference (globally unique).';
comment on column public.transaction_directory.user_id is 'Owner of the transaction; they may read this row.';
comment on column public.transaction_directory.created_at is 'created_at of the transaction: its partition.';

comment on table public.transaction_idempotency_keys is
    'Global idempotency: each key maps to the one transaction it created, whatever month that was. Claimed with INSERT … ON CONFLICT before the transaction is inserted, so concurrent callers with one key get one transaction. Append-only; read by services.';
comment on column public.transaction_idempotency_keys.idempotency_key is 'The caller''s key (1 to 255 characters), unique across all time.';
comment on column public.transaction_idempotency_keys.transaction_id is 'The transaction the key created.';
comment on column public.transaction_idempotency_keys.transaction_created_at is 'created_at of that transaction (its partition).';
comment on column public.transaction_idempotency_keys.user_id is 'The user the first request was for.';
comment on column public.transaction_idempotency_keys.created_at is 'When the key was first used.';

comment on sequence public.transaction_ref_seq is 'Source of transaction references (40 bits, permuted by next_transaction_ref).';

comment on table public.transactions is
    'Money movements. Partitioned by month on created_at and never dropped (retention null). Status follows a state machine enforced by triggers (pending -> processing -> completed | failed | cancelled; pending -> completed | failed | cancelled; completed -> reversed); every change appends transaction_events. Written only through create_transaction and update_transaction_status; a user reads their own rows.';
comment on column public.transactions.id is 'Transaction id (globally unique through transaction_directory).';
comment on column public.transactions.created_at is 'When it was created (partition key).';
comment on column public.transactions.transaction_ref is 'Human-readable reference, e.g. TX-260401-7K3M9Q2P; globally unique.';
comment on column public.transactions.user_id is 'The user whose money moves; they may read the row.';
comment on column public.transactions.wallet_id is 'Wallet debited or credited, when the platform keeps one.';
comment on column public.transactions.type is 'debit, credit, transfer, payment, refund, fee or commission.';
comment on column public.transactions.category is 'What it is for, e.g. ride, marketplace, airtime (lowercase).';
comment on column public.transactions.amount is 'Positive amount in major units, at most the currency''s minor units (RWF: whole francs).';
comment on column public.transactions.currency is 'ISO 4217 code from currencies.';
comment on column public.transactions.status is 'pending, processing, completed, failed, cancelled or reversed.';
comment on column public.transactions.payment_method_id is 'Payment method used; must belong to the same user.';
comment on column public.transactions.source is 'Where the money comes from, e.g. a MoMo number or wallet reference.';
comment on column public.transactions.destination is 'Where the money goes, e.g. a merchant or driver reference.';
comment on column public.transactions.correlation_id is 'Ties together everything one request caused.';
comment on column public.transactions.idempotency_key is 'The key it was created with (see transaction_idempotency_keys).';
comment on column public.transactions.provider_reference is 'The payment provider''s reference (e.g. MoMo financial transaction id).';
comment on column public.transactions.error_code is 'Provider or platform error code of the last failure.';
comment on column public.transactions.error_message is 'Why it failed, was cancelled or reversed (required when failed).';
comment on column public.transactions.metadata is 'Additional context (JSON object, at most 16 KiB).';
comment on column public.transactions.initiated_at is 'When the payment was initiated.';
comment on column public.transactions.completed_at is 'When it left the open states (completed, failed or cancelled); kept when reversed.';
comment on column public.transactions.reversed_at is 'When a completed transaction was reversed.';
comment on column public.transactions.updated_at is 'Last change.';

comment on table public.transaction_events is
    'Append-only history of every transaction status change (creation included): previous and new status and who triggered it. Written by the transactions triggers; a user reads the events of their own transactions.';
comment on column public.transaction_events.id is 'Event id.';
comment on column public.transaction_events.transaction_id is 'The transaction that changed.';
comment on column public.transaction_events.user_id is 'Owner of the transaction (copied for RLS).';
comment on column public.transaction_events.previous_status is 'Status before the change; null at creation.';
comment on column public.transaction_events.new_status is 'Status after the change.';
comment on column public.transaction_events.error_code is 'Error code set by this change, if any.';
comment on column public.transaction_events.error_message is 'Error message or reason set by this change, if any.';
comment on column public.transaction_events.triggered_by_user_id is 'auth.uid() of the request that made the change (null for services).';
comment on column public.transaction_events.triggered_by_role is 'Database role of the request: authenticated, service_role, or the login role.';
comment on column public.transaction_events.triggered_by is 'Session (login) user of the connection that made the change.';
comment on column public.transaction_events.created_at is 'When the change happened (clock time).';

comment on function public.transaction_next_statuses(text) is
    'The state machine: the statuses a transaction in p_status may move to (empty for failed, cancelled, reversed).';
comment on function public.next_transaction_ref() is
    'Default of transactions.transaction_ref: TX-<yymmdd>-<8 Crockford base32 chars> from a permuted sequence value; unique by construction.';
comment on function public.create_transaction(uuid, text, numeric, text, text, jsonb, text, uuid, uuid, text, text, text) is
    'Creates a pending transaction and returns its id. Idempotent across all months and under concurrency: the same p_idempotency_key returns the same id; with a different user, type, amount, currency or party -> PD001. Bad input -> 22004/22023/22003 naming the parameter. A signed-in user may only create their own payment, transfer or debit (p_user_id = auth.uid(), else 42501); services act for anyone.';
comment on function public.update_transaction_status(uuid, text, text, text, text) is
    'Moves a transaction along the state machine and returns true; false when it already has p_new_status (nothing written). Illegal transition -> PD002; unknown or not-yours -> PD004. Services may make any legal change; a signed-in user may only cancel their own pending payment, transfer or debit (42501 otherwise). Terminal states set completed_at; every change appends transaction_events.';
comment on function public.get_transaction(uuid) is
    'The transaction with this id, found through transaction_directory (one partition read). Security invoker: a user gets only their own.';
comment on function public.set_default_payment_method(uuid) is
    'Makes the payment method its user''s only default (unsets the previous one) and returns true, false when it already was. Security invoker: a user can only touch their own methods.';
comment on function public.transactions_before_insert() is
    'Trigger: a new transaction starts pending with an amount valid for its currency; records it in transaction_directory (global id and reference uniqueness) and appends its creation event.';
comment on function public.transactions_before_update() is
    'Trigger: enforces the state machine (PD002) and the immutability of amount, parties and references (PD006); sets completed_at, reversed_at and updated_at.';
comment on function public.transactions_after_status_change() is
    'Trigger: appends a transaction_events row (previous, new status, who) for every status change.';
comment on function public.payment_methods_before_write() is
    'Trigger: a deactivated payment method loses its encrypted details and default flag; user_id never changes; maintains updated_at.';
comment on function public.payments_refuse_change() is
    'Trigger keeping transaction_events, transaction_directory and transaction_idempotency_keys append-only and transactions undeletable (PD006) for everyone but the table owner.';

comment on view public.transaction_summary is
    'Last 30 days per UTC day, currency, type and status: count, total, average, min and max amount. Service only.';
comment on view public.user_recent_transactions is
    'Transactions of the last 30 days without internal fields. Security invoker: a signed-in user sees only their own rows (RLS); a service sees everyone''s.';

COMMIT;
