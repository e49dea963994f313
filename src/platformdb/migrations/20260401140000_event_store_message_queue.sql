-- platformdb 20260401140000: event store, message queue and background jobs (SPEC §3.5)
-- An append-only event store (monthly partitions, per-stream versions kept in a stream-heads
-- table so optimistic concurrency holds across months, a global position that catch-up
-- readers can follow without ever skipping a late-committing writer), a message queue and
-- background jobs in River's shape (state CHECK, attempt/max_attempts, errors jsonb[],
-- per-state timestamps) with SKIP LOCKED batch claims under a lease, retries with
-- exponential backoff and jitter, dead letters kept and re-drivable, a lease reaper,
-- coalesced NOTIFY wake-ups, recurring jobs and batched retention.
-- Sections: guard → tables → indexes → functions → views → RLS and grants → comments.
BEGIN;

-- ---------------------------------------------------------------------------------------
-- guard: stop before touching anything when one of our names belongs to someone else
-- ---------------------------------------------------------------------------------------
select public.platformdb_assert_names_free(array[
    'event_store', 'event_streams', 'event_subscriptions', 'event_store_global_position_seq',
    'message_queue', 'background_jobs', 'recurring_jobs', 'queue_retention',
    'event_store_check_event', 'event_store_bump_version', 'event_store_lock_writer',
    'event_store_safe_position', 'refuse_event_store_change',
    'append_event', 'append_events', 'get_aggregate_events', 'read_stream', 'read_category',
    'read_all', 'stream_version', 'save_subscription_checkpoint', 'get_subscription_checkpoint',
    'queue_retry_backoff', 'queue_check_worker', 'message_queue_reap', 'background_jobs_reap',
    'enqueue_message', 'enqueue_messages', 'claim_messages', 'ack_message', 'ack_messages',
    'nack_message', 'release_messages', 'extend_message_leases', 'redrive_dead_letters',
    'schedule_job', 'claim_jobs', 'heartbeat_job', 'complete_job', 'fail_job', 'cancel_job',
    'release_jobs', 'redrive_dead_letter_jobs', 'cron_expression_valid',
    'schedule_recurring_job', 'unschedule_recurring_job', 'claim_due_recurring_jobs',
    'fire_recurring_job', 'fail_recurring_job', 'reap_expired_leases',
    'purge_finished_queue_rows',
    'event_store_stats', 'message_queue_stats', 'background_job_stats'
]);

-- ---------------------------------------------------------------------------------------
-- tables
-- ---------------------------------------------------------------------------------------

-- Global positions come from this sequence, taken only by the append functions after they
-- registered as in-flight writers (see event_store_lock_writer). CACHE 1 keeps nextval
-- monotonic across sessions; the maximum leaves 16 bits for the writer-lock marker.
create sequence public.event_store_global_position_seq
    as bigint
    minvalue 1
    maxvalue 281474976710655
    cache 1
    no cycle;

create table public.event_streams (
    aggregate_type text not null,
    aggregate_id text not null,
    version integer not null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint event_streams_pkey primary key (aggregate_type, aggregate_id),
    constraint event_streams_version_positive check (version >= 1)
);

create table public.event_store (
    id uuid not null default gen_random_uuid(),
    created_at timestamptz not null default now(),
    global_position bigint not null,
    aggregate_type text not null,
    aggregate_id text not null,
    event_type text not null,
    event_version integer not null,
    payload jsonb not null,
    metadata jsonb not null default '{}',
    correlation_id text,
    causation_id text,
    user_id uuid,
    constraint event_store_pkey primary key (id, created_at),
    constraint event_store_aggregate_type_length
        check (char_length(aggregate_type) between 1 and 100),
    constraint event_store_aggregate_id_length check (char_length(aggregate_id) between 1 and 200),
    constraint event_store_event_type_length check (char_length(event_type) between 1 and 200),
    constraint event_store_event_version_positive check (event_version >= 1),
    constraint event_store_global_position_positive check (global_position >= 1),
    constraint event_store_payload_object
        check (jsonb_typeof(payload) = 'object' and pg_column_size(payload) <= 1048576),
    constraint event_store_metadata_object
        check (jsonb_typeof(metadata) = 'object' and pg_column_size(metadata) <= 65536)
) partition by range (created_at);

create table public.event_subscriptions (
    subscription_name text primary key,
    position bigint not null default 0,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint event_subscriptions_name_length
        check (char_length(subscription_name) between 1 and 200),
    constraint event_subscriptions_position_non_negative check (position >= 0)
);

create table public.message_queue (
    id uuid primary key default gen_random_uuid(),
    queue_name text not null,
    message_type text not null,
    payload jsonb not null,
    priority smallint not null default 5,
    state text not null default 'available',
    attempt smallint not null default 0,
    max_attempts smallint not null default 5,
    errors jsonb[] not null default '{}',
    idempotency_key text,
    correlation_id text,
    claimed_by text,
    attempted_by text[] not null default '{}',
    redrive_count integer not null default 0,
    created_at timestamptz not null default now(),
    scheduled_at timestamptz not null default now(),
    attempted_at timestamptz,
    locked_until timestamptz,
    finalized_at timestamptz,
    constraint message_queue_state_valid
        check (state in ('available', 'running', 'retryable', 'completed', 'dead_letter')),
    constraint message_queue_queue_name_format check (queue_name ~ '^[A-Za-z0-9_.:-]{1,100}$'),
    constraint message_queue_message_type_length
        check (char_length(message_type) between 1 and 200),
    constraint message_queue_priority_range check (priority between 1 and 10),
    constraint message_queue_max_attempts_range check (max_attempts between 1 and 100),
    constraint message_queue_attempt_range check (attempt between 0 and max_attempts),
    constraint message_queue_payload_size check (pg_column_size(payload) <= 262144),
    constraint message_queue_idempotency_key_length
        check (idempotency_key is null or char_length(idempotency_key) between 1 and 200),
    constraint message_queue_running_has_lease
        check ((state = 'running') = (locked_until is not null)),
    constraint message_queue_finalized_or_finalized_at_null
        check ((state in ('completed', 'dead_letter')) = (finalized_at is not null))
) with (autovacuum_vacuum_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.05);

create table public.recurring_jobs (
    id uuid primary key default gen_random_uuid(),
    name text not null,
    job_type text not null,
    cron_expression text not null,
    timezone text not null default 'UTC',
    payload jsonb not null default '{}',
    priority smallint not null default 5,
    max_attempts smallint not null default 5,
    timeout_seconds integer not null default 300,
    enabled boolean not null default true,
    next_run_at timestamptz,
    last_run_at timestamptz,
    last_job_id uuid,
    last_error text,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint recurring_jobs_name_key unique (name),
    constraint recurring_jobs_name_length check (char_length(name) between 1 and 200),
    constraint recurring_jobs_job_type_length check (char_length(job_type) between 1 and 200),
    constraint recurring_jobs_priority_range check (priority between 1 and 10),
    constraint recurring_jobs_max_attempts_range check (max_attempts between 1 and 100),
    constraint recurring_jobs_timeout_range check (timeout_seconds between 1 and 86400),
    constraint recurring_jobs_payload_size check (pg_column_size(payload) <= 262144)
);

create table public.background_jobs (
    id uuid primary key default gen_random_uuid(),
    job_type text not null,
    job_name text not null,
    payload jsonb not null,
    priority smallint not null default 5,
    state text not null default 'available',
    attempt smallint not null default 0,
    max_attempts smallint not null default 5,
    timeout_seconds integer not null default 300,
    errors jsonb[] not null default '{}',
    result jsonb,
    idempotency_key text,
    recurring_job_id uuid references public.recurring_jobs (id) on delete set null,
    claimed_by text,
    attempted_by text[] not null default '{}',
    redrive_count integer not null default 0,
    created_at timestamptz not null default now(),
    scheduled_at timestamptz not null default now(),
    attempted_at timestamptz,
    heartbeat_at timestamptz,
    locked_until timestamptz,
    finalized_at timestamptz,
    constraint background_jobs_state_valid check (state in
        ('available', 'running', 'retryable', 'completed', 'dead_letter', 'cancelled')),
    constraint background_jobs_job_type_format check (job_type ~ '^[A-Za-z0-9_.:-]{1,200}$'),
    constraint background_jobs_job_name_length check (char_length(job_name) between 1 and 200),
    constraint background_jobs_priority_range check (priority between 1 and 10),
    constraint background_jobs_max_attempts_range check (max_attempts between 1 and 100),
    constraint background_jobs_attempt_range check (attempt between 0 and max_attempts),
    constraint background_jobs_timeout_range check (timeout_seconds between 1 and 86400),
    constraint background_jobs_payload_size check (pg_column_size(payload) <= 262144),
    constraint background_jobs_result_size
        check (result is null or pg_column_size(result) <= 262144),
    constraint background_jobs_idempotency_key_length
        check (idempotency_key is null or char_length(idempotency_key) between 1 and 200),
    constraint background_jobs_running_has_lease
        check ((state = 'running') = (locked_until is not null)),
    constraint background_jobs_finalized_or_finalized_at_null
        check ((state in ('completed', 'dead_letter', 'cancelled')) = (finalized_at is not null)),
    constraint background_jobs_result_only_when_completed
        check (result is null or state = 'completed')
) with (autovacuum_vacuum_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.05);

create table public.queue_retention (
    table_name text primary key,
    finished_retention interval not null,
    dead_letter_retention interval,
    updated_at timestamptz not null default now(),
    constraint queue_retention_table_valid
        check (table_name in ('message_queue', 'background_jobs')),
    constraint queue_retention_finished_positive check (finished_retention > interval '0'),
    constraint queue_retention_dead_letter_positive
        check (dead_letter_retention is null or dead_letter_retention > interval '0')
);

insert into public.queue_retention (table_name, finished_retention, dead_letter_retention)
values ('message_queue', interval '1 day', null),
       ('background_jobs', interval '7 days', null);

-- ---------------------------------------------------------------------------------------
-- indexes (event_store indexes are declared on the parent; every partition gets them)
-- ---------------------------------------------------------------------------------------
-- a stream in version order (read_stream, get_aggregate_events)
create index event_store_stream_idx
    on public.event_store (aggregate_type, aggregate_id, event_version);
-- global catch-up (read_all) and per-category catch-up (read_category)
create index event_store_global_position_idx on public.event_store (global_position);
create index event_store_category_position_idx
    on public.event_store (aggregate_type, global_position);
-- a user's own events (RLS policy for authenticated)
create index event_store_user_idx on public.event_store (user_id, created_at desc)
    where user_id is not null;
create index event_store_correlation_idx on public.event_store (correlation_id)
    where correlation_id is not null;

-- the claim: ready rows of one queue in priority, then schedule, order
create index message_queue_claim_idx
    on public.message_queue (queue_name, priority, scheduled_at)
    where state in ('available', 'retryable');
-- the reaper: running rows whose lease ran out (few: only work in flight)
create index message_queue_lease_idx on public.message_queue (locked_until)
    where state = 'running';
-- idempotent enqueue: one message per key and queue
create unique index message_queue_idempotency_idx
    on public.message_queue (queue_name, idempotency_key)
    where idempotency_key is not null;
-- retention: finished rows by age
create index message_queue_finalized_idx on public.message_queue (finalized_at)
    where finalized_at is not null;
-- redrive: a queue's dead letters, oldest first
create index message_queue_dead_letter_idx on public.message_queue (queue_name, finalized_at)
    where state = 'dead_letter';

-- the claim without a type filter, and with one
create index background_jobs_claim_idx
    on public.background_jobs (priority, scheduled_at)
    where state in ('available', 'retryable');
create index background_jobs_type_claim_idx
    on public.background_jobs (job_type, priority, scheduled_at)
    where state in ('available', 'retryable');
create index background_jobs_lease_idx on public.background_jobs (locked_until)
    where state = 'running';
create unique index background_jobs_idempotency_idx
    on public.background_jobs (job_type, idempotency_key)
    where idempotency_key is not null;
create index background_jobs_finalized_idx on public.background_jobs (finalized_at)
    where finalized_at is not null;
create index background_jobs_dead_letter_idx on public.background_jobs (job_type, finalized_at)
    where state = 'dead_letter';
create index background_jobs_recurring_idx on public.background_jobs (recurring_job_id)
    where recurring_job_id is not null;

create index recurring_jobs_due_idx on public.recurring_jobs (next_run_at) where enabled;

-- the event store keeps everything: no retention (null), partitions ahead as for the others
select public.register_partitioned_table('public.event_store', null, 3);

-- ---------------------------------------------------------------------------------------
-- functions: event store
-- ---------------------------------------------------------------------------------------

-- Shared validation of one event (raises; writes nothing).
create function public.event_store_check_event(
    p_aggregate_type text,
    p_aggregate_id text,
    p_event_type text,
    p_payload jsonb,
    p_metadata jsonb
)
returns void
language plpgsql
immutable
set search_path = ''
as $$
begin
    if p_aggregate_type is null or p_aggregate_type = '' then
        raise exception 'p_aggregate_type must not be empty' using errcode = '22004';
    end if;
    if char_length(p_aggregate_type) > 100 then
        raise exception 'p_aggregate_type must be at most 100 characters' using errcode = '22023';
    end if;
    if p_aggregate_id is null or p_aggregate_id = '' then
        raise exception 'p_aggregate_id must not be empty' using errcode = '22004';
    end if;
    if char_length(p_aggregate_id) > 200 then
        raise exception 'p_aggregate_id must be at most 200 characters' using errcode = '22023';
    end if;
    if p_event_type is null or p_event_type = '' then
        raise exception 'p_event_type must not be empty' using errcode = '22004';
    end if;
    if char_length(p_event_type) > 200 then
        raise exception 'p_event_type must be at most 200 characters' using errcode = '22023';
    end if;
    if p_payload is null then
        raise exception 'p_payload must not be null' using errcode = '22004';
    end if;
    if jsonb_typeof(p_payload) <> 'object' then
        raise exception 'p_payload must be a JSON object, got %', jsonb_typeof(p_payload)
            using errcode = '22023';
    end if;
    if pg_column_size(p_payload) > 1048576 then
        raise exception 'p_payload is too large: % bytes (at most 1048576)', pg_column_size(p_payload)
            using errcode = '22023';
    end if;
    if p_metadata is not null and (jsonb_typeof(p_metadata) <> 'object'
                                   or pg_column_size(p_metadata) > 65536) then
        raise exception 'p_metadata must be a JSON object of at most 65536 bytes'
            using errcode = '22023';
    end if;
end
$$;

-- Moves the stream head forward by p_count under its row lock (held to commit, so appends
-- to one stream are serialised) and checks the expected version. Returns the new head.
create function public.event_store_bump_version(
    p_aggregate_type text,
    p_aggregate_id text,
    p_count integer,
    p_expected_version integer
)
returns integer
language plpgsql
set search_path = ''
as $$
declare
    v_head integer;
begin
    insert into public.event_streams as s (aggregate_type, aggregate_id, version)
    values (p_aggregate_type, p_aggregate_id, p_count)
    on conflict (aggregate_type, aggregate_id)
    do update set version = s.version + excluded.version, updated_at = now()
    returning s.version into v_head;
    if p_expected_version is not null and v_head - p_count <> p_expected_version then
        raise exception 'wrong expected version for stream %/%: expected %, actual %',
            p_aggregate_type, p_aggregate_id, p_expected_version, v_head - p_count
            using errcode = 'PD003',
                  hint = 'the stream moved since it was read: read it again and retry';
    end if;
    return v_head;
end
$$;

-- Registers the current transaction as an in-flight event writer, once per transaction,
-- BEFORE it takes any global position: a shared transaction-level advisory lock whose key
-- encodes the sequence's last value at that moment (marker 0x7064 in the top 16 bits). Every
-- position this transaction takes afterwards is greater than that value, and the lock is
-- visible in pg_locks until commit or rollback; event_store_safe_position() reads it.
-- Shared locks never conflict with each other, so writers do not wait on one another here.
create function public.event_store_lock_writer()
returns void
language plpgsql
set search_path = ''
as $$
declare
    v_xact text := pg_catalog.pg_current_xact_id()::text;
    v_floor bigint;
begin
    if coalesce(pg_catalog.current_setting('platformdb.event_writer', true), '') = v_xact then
        return;
    end if;
    v_floor := coalesce(
        pg_catalog.pg_sequence_last_value('public.event_store_global_position_seq'::pg_catalog.regclass), 0);
    perform pg_catalog.pg_advisory_xact_lock_shared((x'7064'::bigint << 48) | v_floor);
    perform pg_catalog.set_config('platformdb.event_writer', v_xact, true);
end
$$;

-- The highest global position below which no event can still appear: the sequence's last
-- value, lowered to the floor of the oldest in-flight writer. Reading the sequence first and
-- the locks second makes it safe (a writer registers before it takes a position). Needs
-- READ COMMITTED in the caller so that the events are read with a snapshot taken afterwards.
-- SECURITY DEFINER: it reads the sequence, which the service has no privilege on.
create function public.event_store_safe_position()
returns bigint
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
    v_last bigint;
    v_inflight bigint;
begin
    v_last := coalesce(
        pg_catalog.pg_sequence_last_value('public.event_store_global_position_seq'::pg_catalog.regclass), 0);
    select min(((l.classid::bigint & 65535) << 32) | l.objid::bigint)
      into v_inflight
      from pg_catalog.pg_locks l
     where l.locktype = 'advisory'
       and l.objsubid = 1
       and (l.classid::bigint >> 16) = 28772  -- 0x7064
       and l.database = (select d.oid from pg_catalog.pg_database d
                          where d.datname = pg_catalog.current_database());
    return least(v_last, coalesce(v_inflight, v_last));
end
$$;

create function public.refuse_event_store_change()
returns trigger
language plpgsql
set search_path = ''
as $$
declare
    v_owner name;
begin
    select c.relowner::regrole::name into v_owner
      from pg_catalog.pg_class c where c.oid = tg_relid;
    if current_user <> v_owner then
        raise exception 'event_store is append-only: % is not allowed', lower(tg_op)
            using errcode = 'PD006';
    end if;
    return case tg_op when 'DELETE' then old else new end;
end
$$;

create trigger event_store_append_only
    before update or delete on public.event_store
    for each row execute function public.refuse_event_store_change();

-- Appends one event. SECURITY DEFINER: the service appends only through here (it has no
-- INSERT on the tables), so versions and positions are always assigned by these rules.
create function public.append_event(
    p_aggregate_id text,
    p_aggregate_type text,
    p_event_type text,
    p_payload jsonb,
    p_correlation_id text default null,
    p_metadata jsonb default '{}',
    p_expected_version integer default null,
    p_event_id uuid default null,
    p_causation_id text default null,
    p_user_id uuid default null
)
returns uuid
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_id uuid;
    v_head integer;
    v_type text;
    v_agg text;
begin
    perform public.event_store_check_event(p_aggregate_type, p_aggregate_id, p_event_type,
                                           p_payload, p_metadata);
    if p_expected_version is not null and p_expected_version < 0 then
        raise exception 'p_expected_version must be >= 0 (0: the stream must not exist yet), got %',
            p_expected_version using errcode = '22003';
    end if;
    if p_event_id is not null then
        -- idempotent append: the same event id twice is one event (serialised per id)
        perform pg_catalog.pg_advisory_xact_lock(1885601793, pg_catalog.hashtext(p_event_id::text));
        select e.aggregate_type, e.aggregate_id into v_type, v_agg
          from public.event_store e where e.id = p_event_id limit 1;
        if found then
            if v_type = p_aggregate_type and v_agg = p_aggregate_id then
                return p_event_id;
            end if;
            raise exception 'p_event_id % was already appended to another stream (%/%)',
                p_event_id, v_type, v_agg
                using errcode = 'PD001', hint = 'event ids are global: use a new id';
        end if;
    end if;
    v_head := public.event_store_bump_version(p_aggregate_type, p_aggregate_id, 1, p_expected_version);
    perform public.event_store_lock_writer();
    insert into public.event_store
        (id, global_position, aggregate_type, aggregate_id, event_type, event_version, payload,
         metadata, correlation_id, causation_id, user_id)
    values (coalesce(p_event_id, gen_random_uuid()),
            nextval('public.event_store_global_position_seq'::regclass),
            p_aggregate_type, p_aggregate_id, p_event_type, v_head, p_payload,
            coalesce(p_metadata, '{}'), p_correlation_id, p_causation_id, p_user_id)
    returning id into v_id;
    return v_id;
end
$$;

-- Appends several events to one stream atomically (one expected-version check for the batch).
create function public.append_events(
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

create function public.get_aggregate_events(
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

create function public.read_stream(
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

create function public.read_category(
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

create function public.read_all(
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

create function public.stream_version(p_aggregate_type text, p_aggregate_id text)
returns integer
language sql
stable
set search_path = ''
as $$
    select coalesce((select s.version from public.event_streams s
                      where s.aggregate_type = p_aggregate_type
                        and s.aggregate_id = p_aggregate_id), 0)
$$;

create function public.save_subscription_checkpoint(
    p_subscription_name text,
    p_position bigint,
    p_allow_rewind boolean default false
)
returns bigint
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_position bigint;
begin
    if p_subscription_name is null or p_subscription_name = '' then
        raise exception 'p_subscription_name must not be empty' using errcode = '22004';
    end if;
    if char_length(p_subscription_name) > 200 then
        raise exception 'p_subscription_name must be at most 200 characters' using errcode = '22023';
    end if;
    if p_position is null or p_position < 0 then
        raise exception 'p_position must be >= 0, got %', p_position using errcode = '22003';
    end if;
    insert into public.event_subscriptions as s (subscription_name, position)
    values (p_subscription_name, p_position)
    on conflict (subscription_name) do update
       set position = case when coalesce(p_allow_rewind, false) then excluded.position
                           else greatest(s.position, excluded.position) end,
           updated_at = now()
    returning s.position into v_position;
    return v_position;
end
$$;

create function public.get_subscription_checkpoint(p_subscription_name text)
returns bigint
language sql
stable
security definer
set search_path = ''
as $$
    select coalesce((select s.position from public.event_subscriptions s
                      where s.subscription_name = p_subscription_name), 0)
$$;

-- ---------------------------------------------------------------------------------------
-- functions: shared by the message queue and background jobs
-- ---------------------------------------------------------------------------------------

-- Exponential backoff with "equal jitter": 2 s doubling per attempt, capped at one hour,
-- then a uniform draw in [delay/2, delay] so that failed work does not retry in lockstep.
create function public.queue_retry_backoff(p_attempt integer)
returns interval
language sql
volatile
set search_path = ''
as $$
    select pg_catalog.make_interval(secs => d.delay / 2 + random() * d.delay / 2)
      from (select least(3600.0::float8,
                         2.0::float8 * power(2.0::float8, greatest(coalesce(p_attempt, 1), 1) - 1))
                   as delay) d
$$;

create function public.queue_check_worker(p_worker_id text)
returns void
language plpgsql
immutable
set search_path = ''
as $$
begin
    if p_worker_id is not null and (p_worker_id = '' or char_length(p_worker_id) > 200) then
        raise exception 'p_worker_id must be 1 to 200 characters (or null)' using errcode = '22023';
    end if;
end
$$;

-- Returns running messages whose lease ran out to the queue, counting the attempt (an error
-- entry "lease expired" is appended; out of attempts means dead_letter). p_queue_name null =
-- every queue. Rows another session is reaping are skipped. Returns how many were reaped.
create function public.message_queue_reap(p_queue_name text, p_limit integer)
returns integer
language plpgsql
set search_path = ''
as $$
declare
    v_count integer;
    v_queues text[];
    v_queue text;
begin
    with expired as (
        select m.id from public.message_queue m
         where m.state = 'running' and m.locked_until < now()
           and (p_queue_name is null or m.queue_name = p_queue_name)
         order by m.locked_until
         limit p_limit
         for update skip locked
    ), reaped as (
        update public.message_queue m
           set state = case when m.attempt >= m.max_attempts then 'dead_letter' else 'retryable' end,
               errors = array_append(m.errors, jsonb_build_object(
                   'at', now(), 'attempt', m.attempt, 'error', 'lease expired',
                   'worker', m.claimed_by)),
               scheduled_at = now(),
               locked_until = null,
               finalized_at = case when m.attempt >= m.max_attempts then now() end
          from expired
         where m.id = expired.id
        returning m.queue_name, m.state
    )
    select count(*), array_agg(distinct r.queue_name) filter (where r.state = 'retryable')
      into v_count, v_queues
      from reaped r;
    if p_queue_name is null and v_queues is not null then
        foreach v_queue in array v_queues loop
            perform pg_catalog.pg_notify('platformdb_queue', v_queue);
        end loop;
    end if;
    return v_count;
end
$$;

create function public.background_jobs_reap(p_job_types text[], p_limit integer)
returns integer
language plpgsql
set search_path = ''
as $$
declare
    v_count integer;
    v_types text[];
    v_type text;
begin
    with expired as (
        select j.id from public.background_jobs j
         where j.state = 'running' and j.locked_until < now()
           and (p_job_types is null or j.job_type = any(p_job_types))
         order by j.locked_until
         limit p_limit
         for update skip locked
    ), reaped as (
        update public.background_jobs j
           set state = case when j.attempt >= j.max_attempts then 'dead_letter' else 'retryable' end,
               errors = array_append(j.errors, jsonb_build_object(
                   'at', now(), 'attempt', j.attempt,
                   'error', 'lease expired: timed out or worker lost', 'worker', j.claimed_by)),
               scheduled_at = now(),
               locked_until = null,
               finalized_at = case when j.attempt >= j.max_attempts then now() end
          from expired
         where j.id = expired.id
        returning j.job_type, j.state
    )
    select count(*), array_agg(distinct r.job_type) filter (where r.state = 'retryable')
      into v_count, v_types
      from reaped r;
    if p_job_types is null and v_types is not null then
        foreach v_type in array v_types loop
            perform pg_catalog.pg_notify('platformdb_jobs', v_type);
        end loop;
    end if;
    return v_count;
end
$$;

-- ---------------------------------------------------------------------------------------
-- functions: message queue (SECURITY DEFINER: the service writes only through these)
-- ---------------------------------------------------------------------------------------
create function public.enqueue_message(
    p_queue_name text,
    p_message_type text,
    p_payload jsonb,
    p_priority integer default 5,
    p_scheduled_at timestamptz default now(),
    p_idempotency_key text default null,
    p_max_attempts integer default 5,
    p_correlation_id text default null
)
returns uuid
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_id uuid;
    v_type text;
    v_payload jsonb;
    v_at timestamptz := coalesce(p_scheduled_at, now());
begin
    if p_queue_name is null or p_queue_name = '' then
        raise exception 'p_queue_name must not be empty' using errcode = '22004';
    end if;
    if p_queue_name !~ '^[A-Za-z0-9_.:-]{1,100}$' then
        raise exception 'p_queue_name must be 1 to 100 characters of A-Z a-z 0-9 _ . : -, got %',
            p_queue_name using errcode = '22023';
    end if;
    if p_message_type is null or p_message_type = '' then
        raise exception 'p_message_type must not be empty' using errcode = '22004';
    end if;
    if char_length(p_message_type) > 200 then
        raise exception 'p_message_type must be at most 200 characters' using errcode = '22023';
    end if;
    if p_payload is null then
        raise exception 'p_payload must not be null' using errcode = '22004';
    end if;
    if pg_column_size(p_payload) > 262144 then
        raise exception 'p_payload is too large: % bytes (at most 262144)', pg_column_size(p_payload)
            using errcode = '22023';
    end if;
    if p_priority is null or p_priority < 1 or p_priority > 10 then
        raise exception 'p_priority must be between 1 (most urgent) and 10, got %', p_priority
            using errcode = '22003';
    end if;
    if p_max_attempts is null or p_max_attempts < 1 or p_max_attempts > 100 then
        raise exception 'p_max_attempts must be between 1 and 100, got %', p_max_attempts
            using errcode = '22003';
    end if;
    if p_idempotency_key is not null and (p_idempotency_key = '' or char_length(p_idempotency_key) > 200) then
        raise exception 'p_idempotency_key must be 1 to 200 characters' using errcode = '22023';
    end if;

    insert into public.message_queue
        (queue_name, message_type, payload, priority, max_attempts, scheduled_at,
         idempotency_key, correlation_id)
    values (p_queue_name, p_message_type, p_payload, p_priority, p_max_attempts, v_at,
            p_idempotency_key, p_correlation_id)
    on conflict (queue_name, idempotency_key) where idempotency_key is not null do nothing
    returning id into v_id;

    if v_id is null then
        -- the key was used before: the same message is the same id, anything else a conflict
        select m.id, m.message_type, m.payload into v_id, v_type, v_payload
          from public.message_queue m
         where m.queue_name = p_queue_name and m.idempotency_key = p_idempotency_key;
        if v_type is distinct from p_message_type or v_payload is distinct from p_payload then
            raise exception 'p_idempotency_key % was already used on queue % for a different message',
                p_idempotency_key, p_queue_name
                using errcode = 'PD001', hint = 'use a new key for a different message';
        end if;
        return v_id;
    end if;
    if v_at <= now() then
        perform pg_catalog.pg_notify('platformdb_queue', p_queue_name);
    end if;
    return v_id;
end
$$;

create function public.enqueue_messages(p_queue_name text, p_messages jsonb)
returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_count integer;
    v_bad record;
begin
    if p_queue_name is null or p_queue_name = '' then
        raise exception 'p_queue_name must not be empty' using errcode = '22004';
    end if;
    if p_queue_name !~ '^[A-Za-z0-9_.:-]{1,100}$' then
        raise exception 'p_queue_name must be 1 to 100 characters of A-Z a-z 0-9 _ . : -, got %',
            p_queue_name using errcode = '22023';
    end if;
    if p_messages is null or jsonb_typeof(p_messages) <> 'array' then
        raise exception 'p_messages must be a JSON array of {message_type, payload, priority?, scheduled_at?, idempotency_key?, max_attempts?, correlation_id?}'
            using errcode = '22023';
    end if;
    if jsonb_array_length(p_messages) > 10000 then
        raise exception 'p_messages: at most 10000 messages per call, got %',
            jsonb_array_length(p_messages) using errcode = '22003';
    end if;
    select x.ord, case
             when jsonb_typeof(x.e) <> 'object' then 'must be an object'
             when coalesce(x.e ->> 'message_type', '') = '' then 'message_type must not be empty'
             when char_length(x.e ->> 'message_type') > 200 then 'message_type must be at most 200 characters'
             when x.e -> 'payload' is null or jsonb_typeof(x.e -> 'payload') = 'null' then 'payload must not be null'
             when pg_column_size(x.e -> 'payload') > 262144 then 'payload is too large (at most 262144 bytes)'
             when x.e ? 'priority' and (jsonb_typeof(x.e -> 'priority') <> 'number'
                  or (x.e ->> 'priority')::numeric not in (1, 2, 3, 4, 5, 6, 7, 8, 9, 10))
                  then 'priority must be an integer between 1 and 10'
             when x.e ? 'max_attempts' and (jsonb_typeof(x.e -> 'max_attempts') <> 'number'
                  or (x.e ->> 'max_attempts')::numeric < 1 or (x.e ->> 'max_attempts')::numeric > 100
                  or (x.e ->> 'max_attempts')::numeric <> trunc((x.e ->> 'max_attempts')::numeric))
                  then 'max_attempts must be an integer between 1 and 100'
             when x.e ? 'idempotency_key' and char_length(x.e ->> 'idempotency_key') not between 1 and 200
                  then 'idempotency_key must be 1 to 200 characters'
           end as reason
      into v_bad
      from jsonb_array_elements(p_messages) with ordinality x(e, ord)
     where jsonb_typeof(x.e) <> 'object'
        or coalesce(x.e ->> 'message_type', '') = ''
        or char_length(x.e ->> 'message_type') > 200
        or x.e -> 'payload' is null or jsonb_typeof(x.e -> 'payload') = 'null'
        or pg_column_size(x.e -> 'payload') > 262144
        or (x.e ? 'priority' and (jsonb_typeof(x.e -> 'priority') <> 'number'
            or (x.e ->> 'priority')::numeric not in (1, 2, 3, 4, 5, 6, 7, 8, 9, 10)))
        or (x.e ? 'max_attempts' and (jsonb_typeof(x.e -> 'max_attempts') <> 'number'
            or (x.e ->> 'max_attempts')::numeric < 1 or (x.e ->> 'max_attempts')::numeric > 100
            or (x.e ->> 'max_attempts')::numeric <> trunc((x.e ->> 'max_attempts')::numeric)))
        or (x.e ? 'idempotency_key' and char_length(x.e ->> 'idempotency_key') not between 1 and 200)
     order by x.ord
     limit 1;
    if v_bad.ord is not null then
        raise exception 'p_messages[%]: %', v_bad.ord, v_bad.reason
            using errcode = case when v_bad.reason like 'priority%' or v_bad.reason like 'max_attempts%'
                                 then '22003' else '22023' end;
    end if;

    insert into public.message_queue
        (queue_name, message_type, payload, priority, max_attempts, scheduled_at,
         idempotency_key, correlation_id)
    select p_queue_name, x.e ->> 'message_type', x.e -> 'payload',
           coalesce((x.e ->> 'priority')::smallint, 5),
           coalesce((x.e ->> 'max_attempts')::smallint, 5),
           coalesce((x.e ->> 'scheduled_at')::timestamptz, now()),
           x.e ->> 'idempotency_key', x.e ->> 'correlation_id'
      from jsonb_array_elements(p_messages) with ordinality x(e, ord)
     order by x.ord
    on conflict (queue_name, idempotency_key) where idempotency_key is not null do nothing;
    get diagnostics v_count = row_count;
    if v_count > 0 then
        perform pg_catalog.pg_notify('platformdb_queue', p_queue_name);
    end if;
    return v_count;
end
$$;

create function public.claim_messages(
    p_queue_name text,
    p_limit integer default 10,
    p_lease_seconds integer default 30,
    p_worker_id text default null
)
returns setof public.message_queue
language plpgsql
security definer
set search_path = ''
as $$
begin
    if p_queue_name is null or p_queue_name = '' then
        raise exception 'p_queue_name must not be empty' using errcode = '22004';
    end if;
    if p_limit is null or p_limit < 1 or p_limit > 1000 then
        raise exception 'p_limit must be between 1 and 1000, got %', p_limit using errcode = '22003';
    end if;
    if p_lease_seconds is null or p_lease_seconds < 1 or p_lease_seconds > 43200 then
        raise exception 'p_lease_seconds must be between 1 and 43200, got %', p_lease_seconds
            using errcode = '22003';
    end if;
    perform public.queue_check_worker(p_worker_id);
    -- expired leases of this queue go back first, so no reaper is needed for progress
    -- (probed first: the common case, nothing expired, then costs one index lookup)
    if exists (select 1 from public.message_queue m
                where m.state = 'running' and m.locked_until < now()
                  and m.queue_name = p_queue_name) then
        perform public.message_queue_reap(p_queue_name, p_limit);
    end if;
    return query
    with picked as (
        select m.id from public.message_queue m
         where m.queue_name = p_queue_name
           and m.state in ('available', 'retryable')
           and m.scheduled_at <= now()
         order by m.priority, m.scheduled_at
         limit p_limit
         for update skip locked
    ), claimed as (
        update public.message_queue m
           set state = 'running',
               attempt = m.attempt + 1,
               attempted_at = now(),
               claimed_by = p_worker_id,
               attempted_by = array_append(m.attempted_by, coalesce(p_worker_id, '')),
               locked_until = now() + pg_catalog.make_interval(secs => p_lease_seconds)
          from picked
         where m.id = picked.id
        returning m.*
    )
    select * from claimed c order by c.priority, c.scheduled_at;
end
$$;

create function public.ack_message(p_message_id uuid, p_worker_id text default null)
returns boolean
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_state text;
    v_by text;
begin
    if p_message_id is null then
        raise exception 'p_message_id must not be null' using errcode = '22004';
    end if;
    update public.message_queue m
       set state = 'completed', finalized_at = now(), locked_until = null
     where m.id = p_message_id
       and ((m.state = 'running' and (p_worker_id is null or m.claimed_by = p_worker_id))
            -- the lease ran out and the reaper returned it, but nobody took it yet: the work
            -- is done, so completing it saves a duplicate
            or (m.state = 'retryable' and p_worker_id is not null and m.claimed_by = p_worker_id));
    if found then
        return true;
    end if;
    select m.state, m.claimed_by into v_state, v_by from public.message_queue m
     where m.id = p_message_id;
    if not found then
        raise exception 'p_message_id: message % not found', p_message_id using errcode = 'PD004';
    end if;
    if v_state = 'completed' then
        return false;
    end if;
    raise exception 'lease lost: message % is % (claimed by %)', p_message_id, v_state,
        coalesce(v_by, 'nobody')
        using errcode = 'PD005', hint = 'the lease expired and the message was handed out again';
end
$$;

create function public.ack_messages(p_message_ids uuid[], p_worker_id text default null)
returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_count integer;
begin
    if p_message_ids is null then
        raise exception 'p_message_ids must not be null' using errcode = '22004';
    end if;
    if cardinality(p_message_ids) > 10000 then
        raise exception 'p_message_ids: at most 10000 ids per call' using errcode = '22003';
    end if;
    update public.message_queue m
       set state = 'completed', finalized_at = now(), locked_until = null
     where m.id = any(p_message_ids)
       and ((m.state = 'running' and (p_worker_id is null or m.claimed_by = p_worker_id))
            or (m.state = 'retryable' and p_worker_id is not null and m.claimed_by = p_worker_id));
    get diagnostics v_count = row_count;
    return v_count;
end
$$;

create function public.nack_message(
    p_message_id uuid,
    p_error text,
    p_retry_in_seconds integer default null,
    p_worker_id text default null,
    p_retryable boolean default true
)
returns text
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_row public.message_queue;
    v_state text;
begin
    if p_message_id is null then
        raise exception 'p_message_id must not be null' using errcode = '22004';
    end if;
    if p_error is null or p_error = '' then
        raise exception 'p_error must not be empty' using errcode = '22004';
    end if;
    if p_retry_in_seconds is not null and (p_retry_in_seconds < 0 or p_retry_in_seconds > 2592000) then
        raise exception 'p_retry_in_seconds must be between 0 and 2592000, got %', p_retry_in_seconds
            using errcode = '22003';
    end if;
    select * into v_row from public.message_queue m where m.id = p_message_id for update;
    if not found then
        raise exception 'p_message_id: message % not found', p_message_id using errcode = 'PD004';
    end if;
    if v_row.state <> 'running' or (p_worker_id is not null and v_row.claimed_by is distinct from p_worker_id) then
        raise exception 'lease lost: message % is % (claimed by %)', p_message_id, v_row.state,
            coalesce(v_row.claimed_by, 'nobody')
            using errcode = 'PD005', hint = 'the lease expired and the message was handed out again';
    end if;
    v_state := case when not coalesce(p_retryable, true) or v_row.attempt >= v_row.max_attempts
                    then 'dead_letter' else 'retryable' end;
    update public.message_queue m
       set state = v_state,
           errors = array_append(m.errors, jsonb_build_object(
               'at', now(), 'attempt', m.attempt, 'error', left(p_error, 4000),
               'worker', m.claimed_by)),
           locked_until = null,
           scheduled_at = case when v_state = 'retryable'
                               then now() + coalesce(pg_catalog.make_interval(secs => p_retry_in_seconds),
                                                     public.queue_retry_backoff(m.attempt))
                               else m.scheduled_at end,
           finalized_at = case when v_state = 'dead_letter' then now() end
     where m.id = p_message_id;
    if v_state = 'retryable' and p_retry_in_seconds = 0 then
        perform pg_catalog.pg_notify('platformdb_queue', v_row.queue_name);
    end if;
    return v_state;
end
$$;

create function public.release_messages(p_message_ids uuid[], p_worker_id text default null)
returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_count integer;
    v_queues text[];
    v_queue text;
begin
    if p_message_ids is null then
        raise exception 'p_message_ids must not be null' using errcode = '22004';
    end if;
    with released as (
        update public.message_queue m
           set state = 'available', attempt = m.attempt - 1, locked_until = null,
               claimed_by = null, scheduled_at = now()
         where m.id = any(p_message_ids) and m.state = 'running'
           and (p_worker_id is null or m.claimed_by = p_worker_id)
        returning m.queue_name
    )
    select count(*), array_agg(distinct r.queue_name) into v_count, v_queues from released r;
    if v_queues is not null then
        foreach v_queue in array v_queues loop
            perform pg_catalog.pg_notify('platformdb_queue', v_queue);
        end loop;
    end if;
    return v_count;
end
$$;

create function public.extend_message_leases(
    p_message_ids uuid[],
    p_lease_seconds integer default 30,
    p_worker_id text default null
)
returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_count integer;
begin
    if p_message_ids is null then
        raise exception 'p_message_ids must not be null' using errcode = '22004';
    end if;
    if p_lease_seconds is null or p_lease_seconds < 1 or p_lease_seconds > 43200 then
        raise exception 'p_lease_seconds must be between 1 and 43200, got %', p_lease_seconds
            using errcode = '22003';
    end if;
    update public.message_queue m
       set locked_until = now() + pg_catalog.make_interval(secs => p_lease_seconds)
     where m.id = any(p_message_ids) and m.state = 'running'
       and (p_worker_id is null or m.claimed_by = p_worker_id);
    get diagnostics v_count = row_count;
    return v_count;
end
$$;

create function public.redrive_dead_letters(p_queue_name text, p_limit integer default 100)
returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_count integer;
begin
    if p_queue_name is null or p_queue_name = '' then
        raise exception 'p_queue_name must not be empty' using errcode = '22004';
    end if;
    if p_limit is null or p_limit < 1 or p_limit > 100000 then
        raise exception 'p_limit must be between 1 and 100000, got %', p_limit using errcode = '22003';
    end if;
    with picked as (
        select m.id from public.message_queue m
         where m.queue_name = p_queue_name and m.state = 'dead_letter'
         order by m.finalized_at
         limit p_limit
         for update skip locked
    )
    update public.message_queue m
       set state = 'available', attempt = 0, scheduled_at = now(), finalized_at = null,
           locked_until = null, claimed_by = null, redrive_count = m.redrive_count + 1
      from picked
     where m.id = picked.id;
    get diagnostics v_count = row_count;
    if v_count > 0 then
        perform pg_catalog.pg_notify('platformdb_queue', p_queue_name);
    end if;
    return v_count;
end
$$;

-- ---------------------------------------------------------------------------------------
-- functions: background jobs
-- ---------------------------------------------------------------------------------------
create function public.schedule_job(
    p_job_type text,
    p_job_name text,
    p_payload jsonb,
    p_scheduled_at timestamptz default now(),
    p_priority integer default 5,
    p_idempotency_key text default null,
    p_max_attempts integer default 5,
    p_timeout_seconds integer default 300
)
returns uuid
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_id uuid;
    v_name text;
    v_payload jsonb;
    v_at timestamptz := coalesce(p_scheduled_at, now());
begin
    if p_job_type is null or p_job_type = '' then
        raise exception 'p_job_type must not be empty' using errcode = '22004';
    end if;
    if p_job_type !~ '^[A-Za-z0-9_.:-]{1,200}$' then
        raise exception 'p_job_type must be 1 to 200 characters of A-Z a-z 0-9 _ . : -, got %',
            p_job_type using errcode = '22023';
    end if;
    if p_job_name is null or p_job_name = '' then
        raise exception 'p_job_name must not be empty' using errcode = '22004';
    end if;
    if char_length(p_job_name) > 200 then
        raise exception 'p_job_name must be at most 200 characters' using errcode = '22023';
    end if;
    if p_payload is null then
        raise exception 'p_payload must not be null' using errcode = '22004';
    end if;
    if pg_column_size(p_payload) > 262144 then
        raise exception 'p_payload is too large: % bytes (at most 262144)', pg_column_size(p_payload)
            using errcode = '22023';
    end if;
    if p_priority is null or p_priority < 1 or p_priority > 10 then
        raise exception 'p_priority must be between 1 (most urgent) and 10, got %', p_priority
            using errcode = '22003';
    end if;
    if p_max_attempts is null or p_max_attempts < 1 or p_max_attempts > 100 then
        raise exception 'p_max_attempts must be between 1 and 100, got %', p_max_attempts
            using errcode = '22003';
    end if;
    if p_timeout_seconds is null or p_timeout_seconds < 1 or p_timeout_seconds > 86400 then
        raise exception 'p_timeout_seconds must be between 1 and 86400, got %', p_timeout_seconds
            using errcode = '22003';
    end if;
    if p_idempotency_key is not null and (p_idempotency_key = '' or char_length(p_idempotency_key) > 200) then
        raise exception 'p_idempotency_key must be 1 to 200 characters' using errcode = '22023';
    end if;

    insert into public.background_jobs
        (job_type, job_name, payload, priority, max_attempts, timeout_seconds, scheduled_at,
         idempotency_key)
    values (p_job_type, p_job_name, p_payload, p_priority, p_max_attempts, p_timeout_seconds,
            v_at, p_idempotency_key)
    on conflict (job_type, idempotency_key) where idempotency_key is not null do nothing
    returning id into v_id;

    if v_id is null then
        select j.id, j.job_name, j.payload into v_id, v_name, v_payload
          from public.background_jobs j
         where j.job_type = p_job_type and j.idempotency_key = p_idempotency_key;
        if v_name is distinct from p_job_name or v_payload is distinct from p_payload then
            raise exception 'p_idempotency_key % was already used for a different % job',
                p_idempotency_key, p_job_type
                using errcode = 'PD001', hint = 'use a new key for a different job';
        end if;
        return v_id;
    end if;
    if v_at <= now() then
        perform pg_catalog.pg_notify('platformdb_jobs', p_job_type);
    end if;
    return v_id;
end
$$;

create function public.claim_jobs(
    p_job_types text[] default null,
    p_limit integer default 10,
    p_worker_id text default null
)
returns setof public.background_jobs
language plpgsql
security definer
set search_path = ''
as $$
begin
    if p_job_types is not null and (cardinality(p_job_types) = 0
                                    or array_position(p_job_types, null) is not null) then
        raise exception 'p_job_types must be null (every type) or a non-empty list of types'
            using errcode = '22023';
    end if;
    if p_limit is null or p_limit < 1 or p_limit > 1000 then
        raise exception 'p_limit must be between 1 and 1000, got %', p_limit using errcode = '22003';
    end if;
    perform public.queue_check_worker(p_worker_id);
    if exists (select 1 from public.background_jobs j
                where j.state = 'running' and j.locked_until < now()
                  and (p_job_types is null or j.job_type = any(p_job_types))) then
        perform public.background_jobs_reap(p_job_types, p_limit);
    end if;
    return query
    with picked as (
        select j.id from public.background_jobs j
         where (p_job_types is null or j.job_type = any(p_job_types))
           and j.state in ('available', 'retryable')
           and j.scheduled_at <= now()
         order by j.priority, j.scheduled_at
         limit p_limit
         for update skip locked
    ), claimed as (
        update public.background_jobs j
           set state = 'running',
               attempt = j.attempt + 1,
               attempted_at = now(),
               heartbeat_at = now(),
               claimed_by = p_worker_id,
               attempted_by = array_append(j.attempted_by, coalesce(p_worker_id, '')),
               -- the lease of a job is its timeout; heartbeat_job extends it
               locked_until = now() + pg_catalog.make_interval(secs => j.timeout_seconds)
          from picked
         where j.id = picked.id
        returning j.*
    )
    select * from claimed c order by c.priority, c.scheduled_at;
end
$$;

create function public.heartbeat_job(
    p_job_id uuid,
    p_extend_seconds integer default null,
    p_worker_id text default null
)
returns timestamptz
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_until timestamptz;
    v_state text;
    v_by text;
begin
    if p_job_id is null then
        raise exception 'p_job_id must not be null' using errcode = '22004';
    end if;
    if p_extend_seconds is not null and (p_extend_seconds < 1 or p_extend_seconds > 86400) then
        raise exception 'p_extend_seconds must be between 1 and 86400, got %', p_extend_seconds
            using errcode = '22003';
    end if;
    update public.background_jobs j
       set heartbeat_at = now(),
           locked_until = now() + pg_catalog.make_interval(
               secs => coalesce(p_extend_seconds, j.timeout_seconds))
     where j.id = p_job_id and j.state = 'running'
       and (p_worker_id is null or j.claimed_by = p_worker_id)
    returning j.locked_until into v_until;
    if found then
        return v_until;
    end if;
    select j.state, j.claimed_by into v_state, v_by from public.background_jobs j where j.id = p_job_id;
    if not found then
        raise exception 'p_job_id: job % not found', p_job_id using errcode = 'PD004';
    end if;
    raise exception 'lease lost: job % is % (claimed by %)', p_job_id, v_state, coalesce(v_by, 'nobody')
        using errcode = 'PD005', hint = 'the job timed out and was handed out again';
end
$$;

create function public.complete_job(
    p_job_id uuid,
    p_result jsonb default null,
    p_worker_id text default null
)
returns boolean
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_state text;
    v_by text;
begin
    if p_job_id is null then
        raise exception 'p_job_id must not be null' using errcode = '22004';
    end if;
    if p_result is not null and pg_column_size(p_result) > 262144 then
        raise exception 'p_result is too large: % bytes (at most 262144)', pg_column_size(p_result)
            using errcode = '22023';
    end if;
    update public.background_jobs j
       set state = 'completed', finalized_at = now(), locked_until = null, result = p_result
     where j.id = p_job_id
       and ((j.state = 'running' and (p_worker_id is null or j.claimed_by = p_worker_id))
            or (j.state = 'retryable' and p_worker_id is not null and j.claimed_by = p_worker_id));
    if found then
        return true;
    end if;
    select j.state, j.claimed_by into v_state, v_by from public.background_jobs j where j.id = p_job_id;
    if not found then
        raise exception 'p_job_id: job % not found', p_job_id using errcode = 'PD004';
    end if;
    if v_state = 'completed' then
        return false;
    end if;
    raise exception 'lease lost: job % is % (claimed by %)', p_job_id, v_state, coalesce(v_by, 'nobody')
        using errcode = 'PD005', hint = 'the job timed out and was handed out again';
end
$$;

create function public.fail_job(
    p_job_id uuid,
    p_error text,
    p_retryable boolean default true,
    p_worker_id text default null,
    p_retry_in_seconds integer default null
)
returns text
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_row public.background_jobs;
    v_state text;
begin
    if p_job_id is null then
        raise exception 'p_job_id must not be null' using errcode = '22004';
    end if;
    if p_error is null or p_error = '' then
        raise exception 'p_error must not be empty' using errcode = '22004';
    end if;
    if p_retry_in_seconds is not null and (p_retry_in_seconds < 0 or p_retry_in_seconds > 2592000) then
        raise exception 'p_retry_in_seconds must be between 0 and 2592000, got %', p_retry_in_seconds
            using errcode = '22003';
    end if;
    select * into v_row from public.background_jobs j where j.id = p_job_id for update;
    if not found then
        raise exception 'p_job_id: job % not found', p_job_id using errcode = 'PD004';
    end if;
    if v_row.state <> 'running' or (p_worker_id is not null and v_row.claimed_by is distinct from p_worker_id) then
        raise exception 'lease lost: job % is % (claimed by %)', p_job_id, v_row.state,
            coalesce(v_row.claimed_by, 'nobody')
            using errcode = 'PD005', hint = 'the job timed out and was handed out again';
    end if;
    v_state := case when not coalesce(p_retryable, true) or v_row.attempt >= v_row.max_attempts
                    then 'dead_letter' else 'retryable' end;
    update public.background_jobs j
       set state = v_state,
           errors = array_append(j.errors, jsonb_build_object(
               'at', now(), 'attempt', j.attempt, 'error', left(p_error, 4000),
               'worker', j.claimed_by, 'retryable', coalesce(p_retryable, true))),
           locked_until = null,
           scheduled_at = case when v_state = 'retryable'
                               then now() + coalesce(pg_catalog.make_interval(secs => p_retry_in_seconds),
                                                     public.queue_retry_backoff(j.attempt))
                               else j.scheduled_at end,
           finalized_at = case when v_state = 'dead_letter' then now() end
     where j.id = p_job_id;
    return v_state;
end
$$;

create function public.cancel_job(p_job_id uuid)
returns boolean
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_state text;
begin
    if p_job_id is null then
        raise exception 'p_job_id must not be null' using errcode = '22004';
    end if;
    select j.state into v_state from public.background_jobs j where j.id = p_job_id for update;
    if not found then
        raise exception 'p_job_id: job % not found', p_job_id using errcode = 'PD004';
    end if;
    if v_state = 'running' then
        raise exception 'cannot cancel job %: it is running', p_job_id
            using errcode = 'PD002', hint = 'wait for it to finish or time out';
    end if;
    if v_state not in ('available', 'retryable') then
        return false;
    end if;
    update public.background_jobs j set state = 'cancelled', finalized_at = now()
     where j.id = p_job_id;
    return true;
end
$$;

create function public.release_jobs(p_job_ids uuid[], p_worker_id text default null)
returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_count integer;
    v_types text[];
    v_type text;
begin
    if p_job_ids is null then
        raise exception 'p_job_ids must not be null' using errcode = '22004';
    end if;
    with released as (
        update public.background_jobs j
           set state = 'available', attempt = j.attempt - 1, locked_until = null,
               claimed_by = null, scheduled_at = now()
         where j.id = any(p_job_ids) and j.state = 'running'
           and (p_worker_id is null or j.claimed_by = p_worker_id)
        returning j.job_type
    )
    select count(*), array_agg(distinct r.job_type) into v_count, v_types from released r;
    if v_types is not null then
        foreach v_type in array v_types loop
            perform pg_catalog.pg_notify('platformdb_jobs', v_type);
        end loop;
    end if;
    return v_count;
end
$$;

create function public.redrive_dead_letter_jobs(p_job_type text, p_limit integer default 100)
returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_count integer;
begin
    if p_job_type is null or p_job_type = '' then
        raise exception 'p_job_type must not be empty' using errcode = '22004';
    end if;
    if p_limit is null or p_limit < 1 or p_limit > 100000 then
        raise exception 'p_limit must be between 1 and 100000, got %', p_limit using errcode = '22003';
    end if;
    with picked as (
        select j.id from public.background_jobs j
         where j.job_type = p_job_type and j.state = 'dead_letter'
         order by j.finalized_at
         limit p_limit
         for update skip locked
    )
    update public.background_jobs j
       set state = 'available', attempt = 0, scheduled_at = now(), finalized_at = null,
           locked_until = null, claimed_by = null, redrive_count = j.redrive_count + 1
      from picked
     where j.id = picked.id;
    get diagnostics v_count = row_count;
    if v_count > 0 then
        perform pg_catalog.pg_notify('platformdb_jobs', p_job_type);
    end if;
    return v_count;
end
$$;

-- ---------------------------------------------------------------------------------------
-- functions: recurring jobs. The database keeps the expression, a syntactic check and the
-- next run time; the worker computes fire times with croniter (Python) and calls
-- claim_due_recurring_jobs + fire_recurring_job in one transaction.
-- ---------------------------------------------------------------------------------------
create function public.cron_expression_valid(p_expression text)
returns boolean
language sql
immutable
set search_path = ''
as $$
    select case
        when p_expression is null then false
        when lower(btrim(p_expression)) in
             ('@yearly', '@annually', '@monthly', '@weekly', '@daily', '@midnight', '@hourly') then true
        else (select count(*) = 5
                     and bool_and(f ~ '^(\*|[0-9]{1,2}|[A-Za-z]{3})(-([0-9]{1,2}|[A-Za-z]{3}))?(/[0-9]{1,2})?(,(\*|[0-9]{1,2}|[A-Za-z]{3})(-([0-9]{1,2}|[A-Za-z]{3}))?(/[0-9]{1,2})?)*$')
                from regexp_split_to_table(btrim(p_expression), '\s+') f)
    end
$$;

create function public.schedule_recurring_job(
    p_name text,
    p_job_type text,
    p_cron_expression text,
    p_payload jsonb default '{}',
    p_priority integer default 5,
    p_timezone text default 'UTC',
    p_max_attempts integer default 5,
    p_timeout_seconds integer default 300,
    p_enabled boolean default true
)
returns uuid
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_id uuid;
begin
    if p_name is null or p_name = '' then
        raise exception 'p_name must not be empty' using errcode = '22004';
    end if;
    if char_length(p_name) > 200 then
        raise exception 'p_name must be at most 200 characters' using errcode = '22023';
    end if;
    if p_job_type is null or p_job_type = '' then
        raise exception 'p_job_type must not be empty' using errcode = '22004';
    end if;
    if p_job_type !~ '^[A-Za-z0-9_.:-]{1,200}$' then
        raise exception 'p_job_type must be 1 to 200 characters of A-Z a-z 0-9 _ . : -, got %',
            p_job_type using errcode = '22023';
    end if;
    if p_cron_expression is null then
        raise exception 'p_cron_expression must not be null' using errcode = '22004';
    end if;
    if not public.cron_expression_valid(p_cron_expression) then
        raise exception 'p_cron_expression: % is not a 5-field cron expression or @macro', p_cron_expression
            using errcode = '22023', hint = 'minute hour day-of-month month day-of-week, e.g. */5 * * * *';
    end if;
    if p_timezone is null then
        raise exception 'p_timezone must not be null' using errcode = '22004';
    end if;
    begin
        perform now() at time zone p_timezone;
    exception when invalid_parameter_value then
        raise exception 'p_timezone: unknown time zone %', p_timezone
            using errcode = '22023', hint = 'an IANA name such as Africa/Kigali or UTC';
    end;
    if p_payload is null then
        raise exception 'p_payload must not be null' using errcode = '22004';
    end if;
    if pg_column_size(p_payload) > 262144 then
        raise exception 'p_payload is too large: % bytes (at most 262144)', pg_column_size(p_payload)
            using errcode = '22023';
    end if;
    if p_priority is null or p_priority < 1 or p_priority > 10 then
        raise exception 'p_priority must be between 1 (most urgent) and 10, got %', p_priority
            using errcode = '22003';
    end if;
    if p_max_attempts is null or p_max_attempts < 1 or p_max_attempts > 100 then
        raise exception 'p_max_attempts must be between 1 and 100, got %', p_max_attempts
            using errcode = '22003';
    end if;
    if p_timeout_seconds is null or p_timeout_seconds < 1 or p_timeout_seconds > 86400 then
        raise exception 'p_timeout_seconds must be between 1 and 86400, got %', p_timeout_seconds
            using errcode = '22003';
    end if;
    insert into public.recurring_jobs as r
        (name, job_type, cron_expression, timezone, payload, priority, max_attempts,
         timeout_seconds, enabled)
    values (p_name, p_job_type, btrim(p_cron_expression), p_timezone, p_payload, p_priority,
            p_max_attempts, p_timeout_seconds, coalesce(p_enabled, true))
    on conflict (name) do update
       set job_type = excluded.job_type,
           cron_expression = excluded.cron_expression,
           timezone = excluded.timezone,
           payload = excluded.payload,
           priority = excluded.priority,
           max_attempts = excluded.max_attempts,
           timeout_seconds = excluded.timeout_seconds,
           enabled = excluded.enabled,
           -- a new schedule (or a re-enabled one) is computed afresh by the next worker tick
           next_run_at = case when (r.cron_expression, r.timezone, r.enabled)
                                   is distinct from (excluded.cron_expression, excluded.timezone, excluded.enabled)
                              then null else r.next_run_at end,
           last_error = null,
           updated_at = now()
    returning r.id into v_id;
    return v_id;
end
$$;

create function public.unschedule_recurring_job(p_name text)
returns boolean
language plpgsql
security definer
set search_path = ''
as $$
begin
    if p_name is null or p_name = '' then
        raise exception 'p_name must not be empty' using errcode = '22004';
    end if;
    delete from public.recurring_jobs r where r.name = p_name;
    return found;
end
$$;

-- Due recurring jobs, locked FOR UPDATE SKIP LOCKED until the caller's transaction ends: call
-- it and fire_recurring_job in one transaction so two workers never fire the same slot.
create function public.claim_due_recurring_jobs(p_limit integer default 100)
returns setof public.recurring_jobs
language plpgsql
security definer
set search_path = ''
as $$
begin
    if p_limit is null or p_limit < 1 or p_limit > 1000 then
        raise exception 'p_limit must be between 1 and 1000, got %', p_limit using errcode = '22003';
    end if;
    return query
        select r.* from public.recurring_jobs r
         where r.enabled and (r.next_run_at is null or r.next_run_at <= now())
         order by r.next_run_at nulls first
         limit p_limit
         for update skip locked;
end
$$;

create function public.fire_recurring_job(
    p_recurring_job_id uuid,
    p_scheduled_for timestamptz,
    p_next_run_at timestamptz
)
returns uuid
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_row public.recurring_jobs;
    v_job uuid;
    v_key text;
begin
    if p_recurring_job_id is null then
        raise exception 'p_recurring_job_id must not be null' using errcode = '22004';
    end if;
    if p_next_run_at is null then
        raise exception 'p_next_run_at must not be null' using errcode = '22004';
    end if;
    if p_scheduled_for is not null and p_next_run_at <= p_scheduled_for then
        raise exception 'p_next_run_at (%) must be after p_scheduled_for (%)', p_next_run_at, p_scheduled_for
            using errcode = '22023';
    end if;
    select * into v_row from public.recurring_jobs r where r.id = p_recurring_job_id for update;
    if not found then
        raise exception 'p_recurring_job_id: recurring job % not found', p_recurring_job_id
            using errcode = 'PD004';
    end if;
    if p_scheduled_for is not null then
        if v_row.next_run_at is distinct from p_scheduled_for then
            raise exception 'p_scheduled_for: recurring job % is due at %, not %', v_row.name,
                coalesce(v_row.next_run_at::text, 'an uncomputed time'), p_scheduled_for
                using errcode = 'PD005', hint = 'another worker fired or rescheduled it';
        end if;
        -- one job per slot, whoever fires it and however often
        v_key := 'recurring:' || v_row.id::text || ':'
                 || pg_catalog.to_char(p_scheduled_for at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"');
        insert into public.background_jobs
            (job_type, job_name, payload, priority, max_attempts, timeout_seconds, scheduled_at,
             idempotency_key, recurring_job_id)
        values (v_row.job_type, v_row.name, v_row.payload, v_row.priority, v_row.max_attempts,
                v_row.timeout_seconds, p_scheduled_for, v_key, v_row.id)
        on conflict (job_type, idempotency_key) where idempotency_key is not null do nothing
        returning id into v_job;
        if v_job is null then
            select j.id into v_job from public.background_jobs j
             where j.job_type = v_row.job_type and j.idempotency_key = v_key;
        end if;
        perform pg_catalog.pg_notify('platformdb_jobs', v_row.job_type);
    end if;
    update public.recurring_jobs r
       set next_run_at = p_next_run_at,
           last_run_at = coalesce(p_scheduled_for, r.last_run_at),
           last_job_id = coalesce(v_job, r.last_job_id),
           last_error = null,
           updated_at = now()
     where r.id = p_recurring_job_id;
    return v_job;
end
$$;

create function public.fail_recurring_job(p_recurring_job_id uuid, p_error text)
returns void
language plpgsql
security definer
set search_path = ''
as $$
begin
    if p_recurring_job_id is null then
        raise exception 'p_recurring_job_id must not be null' using errcode = '22004';
    end if;
    if p_error is null or p_error = '' then
        raise exception 'p_error must not be empty' using errcode = '22004';
    end if;
    update public.recurring_jobs r
       set enabled = false, last_error = left(p_error, 4000), updated_at = now()
     where r.id = p_recurring_job_id;
    if not found then
        raise exception 'p_recurring_job_id: recurring job % not found', p_recurring_job_id
            using errcode = 'PD004';
    end if;
end
$$;

-- ---------------------------------------------------------------------------------------
-- functions: reaper and retention
-- ---------------------------------------------------------------------------------------
create function public.reap_expired_leases()
returns integer
language plpgsql
security definer
set search_path = ''
as $$
begin
    return public.message_queue_reap(null, 10000) + public.background_jobs_reap(null, 10000);
end
$$;

-- Deletes at most p_batch_size finished rows per table and kind per call (call it until it
-- returns 0): completed messages; completed and cancelled jobs; dead letters only when
-- queue_retention.dead_letter_retention is set. p_older_than overrides finished_retention.
create function public.purge_finished_queue_rows(
    p_older_than interval default null,
    p_batch_size integer default 10000
)
returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_total integer := 0;
    v_count integer;
    v_keep interval;
    v_dead interval;
begin
    if p_batch_size is null or p_batch_size < 1 or p_batch_size > 100000 then
        raise exception 'p_batch_size must be between 1 and 100000, got %', p_batch_size
            using errcode = '22003';
    end if;
    if p_older_than is not null and p_older_than < interval '0' then
        raise exception 'p_older_than must not be negative, got %', p_older_than using errcode = '22023';
    end if;

    select coalesce(p_older_than, r.finished_retention), r.dead_letter_retention
      into v_keep, v_dead
      from (select 1) one
      left join public.queue_retention r on r.table_name = 'message_queue';
    v_keep := coalesce(v_keep, interval '1 day');
    delete from public.message_queue m
     where m.id in (select x.id from public.message_queue x
                     where x.finalized_at < now() - v_keep and x.state = 'completed'
                     limit p_batch_size for update skip locked);
    get diagnostics v_count = row_count;
    v_total := v_total + v_count;
    if v_dead is not null then
        delete from public.message_queue m
         where m.id in (select x.id from public.message_queue x
                         where x.finalized_at < now() - v_dead and x.state = 'dead_letter'
                         limit p_batch_size for update skip locked);
        get diagnostics v_count = row_count;
        v_total := v_total + v_count;
    end if;

    v_dead := null;
    select coalesce(p_older_than, r.finished_retention), r.dead_letter_retention
      into v_keep, v_dead
      from (select 1) one
      left join public.queue_retention r on r.table_name = 'background_jobs';
    v_keep := coalesce(v_keep, interval '7 days');
    delete from public.background_jobs j
     where j.id in (select x.id from public.background_jobs x
                     where x.finalized_at < now() - v_keep and x.state in ('completed', 'cancelled')
                     limit p_batch_size for update skip locked);
    get diagnostics v_count = row_count;
    v_total := v_total + v_count;
    if v_dead is not null then
        delete from public.background_jobs j
         where j.id in (select x.id from public.background_jobs x
                         where x.finalized_at < now() - v_dead and x.state = 'dead_letter'
                         limit p_batch_size for update skip locked);
        get diagnostics v_count = row_count;
        v_total := v_total + v_count;
    end if;
    return v_total;
end
$$;

-- ---------------------------------------------------------------------------------------
-- views
-- ---------------------------------------------------------------------------------------
create view public.event_store_stats
with (security_invoker = true)
as
select s.aggregate_type,
       count(*) as stream_count,
       sum(s.version)::bigint as event_count,
       max(s.version) as longest_stream,
       max(s.updated_at) as last_event_at,
       (select count(*) from public.event_store e
         where e.aggregate_type = s.aggregate_type
           and e.created_at >= now() - interval '1 hour') as events_last_hour
  from public.event_streams s
 group by s.aggregate_type;

create view public.message_queue_stats
with (security_invoker = true)
as
select m.queue_name,
       count(*) filter (where m.state in ('available', 'retryable')) as depth,
       count(*) filter (where m.state in ('available', 'retryable') and m.scheduled_at <= now()) as ready,
       count(*) filter (where m.state in ('available', 'retryable') and m.scheduled_at > now()) as delayed,
       count(*) filter (where m.state = 'retryable') as retrying,
       count(*) filter (where m.state = 'running') as in_flight,
       count(*) filter (where m.state = 'running' and m.locked_until < now()) as expired_leases,
       count(*) filter (where m.state = 'dead_letter') as dead_letters,
       count(*) filter (where m.state = 'completed') as completed,
       count(*) filter (where m.state = 'completed'
                          and m.finalized_at >= now() - interval '1 hour') as completed_last_hour,
       min(m.scheduled_at) filter (where m.state in ('available', 'retryable')
                                     and m.scheduled_at <= now()) as oldest_ready_at,
       coalesce(extract(epoch from now() - min(m.scheduled_at) filter (
           where m.state in ('available', 'retryable') and m.scheduled_at <= now())), 0)::numeric(14, 3)
           as oldest_ready_age_seconds
  from public.message_queue m
 group by m.queue_name;

create view public.background_job_stats
with (security_invoker = true)
as
select j.job_type,
       count(*) filter (where j.state in ('available', 'retryable')) as depth,
       count(*) filter (where j.state in ('available', 'retryable') and j.scheduled_at <= now()) as ready,
       count(*) filter (where j.state in ('available', 'retryable') and j.scheduled_at > now()) as scheduled,
       count(*) filter (where j.state = 'retryable') as retrying,
       count(*) filter (where j.state = 'running') as running,
       count(*) filter (where j.state = 'running' and j.locked_until < now()) as expired_leases,
       count(*) filter (where j.state = 'dead_letter') as dead_letters,
       count(*) filter (where j.state = 'completed') as completed,
       count(*) filter (where j.state = 'cancelled') as cancelled,
       coalesce(extract(epoch from now() - min(j.scheduled_at) filter (
           where j.state in ('available', 'retryable') and j.scheduled_at <= now())), 0)::numeric(14, 3)
           as oldest_ready_age_seconds,
       avg(extract(epoch from j.finalized_at - j.attempted_at)) filter (
           where j.state = 'completed' and j.finalized_at >= now() - interval '1 hour')::numeric(14, 3)
           as avg_duration_seconds_last_hour,
       (select count(*) from public.recurring_jobs r
         where r.job_type = j.job_type and r.enabled) as recurring_schedules
  from public.background_jobs j
 group by j.job_type;

-- ---------------------------------------------------------------------------------------
-- RLS and grants (Supabase grants ALL by default: take it back, then grant what is needed)
-- ---------------------------------------------------------------------------------------
alter table public.event_streams enable row level security;
alter table public.event_store enable row level security;
alter table public.event_subscriptions enable row level security;
alter table public.message_queue enable row level security;
alter table public.background_jobs enable row level security;
alter table public.recurring_jobs enable row level security;
alter table public.queue_retention enable row level security;

create policy event_store_service_read on public.event_store
    for select to service_role using (true);
create policy event_store_own_read on public.event_store
    for select to authenticated using (user_id = (select auth.uid()));
create policy event_streams_service_read on public.event_streams
    for select to service_role using (true);
create policy event_subscriptions_service_read on public.event_subscriptions
    for select to service_role using (true);
create policy message_queue_service_read on public.message_queue
    for select to service_role using (true);
create policy background_jobs_service_read on public.background_jobs
    for select to service_role using (true);
create policy recurring_jobs_service_read on public.recurring_jobs
    for select to service_role using (true);
create policy queue_retention_service_read on public.queue_retention
    for select to service_role using (true);

revoke all on table public.event_streams, public.event_store, public.event_subscriptions,
    public.message_queue, public.background_jobs, public.recurring_jobs, public.queue_retention,
    public.event_store_stats, public.message_queue_stats, public.background_job_stats
    from public, anon, authenticated, service_role;
revoke all on sequence public.event_store_global_position_seq
    from public, anon, authenticated, service_role;
grant select on table public.event_streams, public.event_store, public.event_subscriptions,
    public.message_queue, public.background_jobs, public.recurring_jobs, public.queue_retention,
    public.event_store_stats, public.message_queue_stats, public.background_job_stats
    to service_role;
grant select on table public.event_store to authenticated;

revoke all on function
    public.event_store_check_event(text, text, text, jsonb, jsonb),
    public.event_store_bump_version(text, text, integer, integer),
    public.event_store_lock_writer(),
    public.event_store_safe_position(),
    public.refuse_event_store_change(),
    public.append_event(text, text, text, jsonb, text, jsonb, integer, uuid, text, uuid),
    public.append_events(text, text, jsonb, integer, text, uuid),
    public.get_aggregate_events(text, text, integer),
    public.read_stream(text, text, integer, integer),
    public.read_category(text, bigint, integer),
    public.read_all(bigint, integer),
    public.stream_version(text, text),
    public.save_subscription_checkpoint(text, bigint, boolean),
    public.get_subscription_checkpoint(text),
    public.queue_retry_backoff(integer),
    public.queue_check_worker(text),
    public.message_queue_reap(text, integer),
    public.background_jobs_reap(text[], integer),
    public.enqueue_message(text, text, jsonb, integer, timestamptz, text, integer, text),
    public.enqueue_messages(text, jsonb),
    public.claim_messages(text, integer, integer, text),
    public.ack_message(uuid, text),
    public.ack_messages(uuid[], text),
    public.nack_message(uuid, text, integer, text, boolean),
    public.release_messages(uuid[], text),
    public.extend_message_leases(uuid[], integer, text),
    public.redrive_dead_letters(text, integer),
    public.schedule_job(text, text, jsonb, timestamptz, integer, text, integer, integer),
    public.claim_jobs(text[], integer, text),
    public.heartbeat_job(uuid, integer, text),
    public.complete_job(uuid, jsonb, text),
    public.fail_job(uuid, text, boolean, text, integer),
    public.cancel_job(uuid),
    public.release_jobs(uuid[], text),
    public.redrive_dead_letter_jobs(text, integer),
    public.cron_expression_valid(text),
    public.schedule_recurring_job(text, text, text, jsonb, integer, text, integer, integer, boolean),
    public.unschedule_recurring_job(text),
    public.claim_due_recurring_jobs(integer),
    public.fire_recurring_job(uuid, timestamptz, timestamptz),
    public.fail_recurring_job(uuid, text),
    public.reap_expired_leases(),
    public.purge_finished_queue_rows(interval, integer)
    from public, anon, authenticated, service_role;
grant execute on function
    public.event_store_safe_position(),
    public.append_event(text, text, text, jsonb, text, jsonb, integer, uuid, text, uuid),
    public.append_events(text, text, jsonb, integer, text, uuid),
    public.get_aggregate_events(text, text, integer),
    public.read_stream(text, text, integer, integer),
    public.read_category(text, bigint, integer),
    public.read_all(bigint, integer),
    public.stream_version(text, text),
    public.save_subscription_checkpoint(text, bigint, boolean),
    public.get_subscription_checkpoint(text),
    public.enqueue_message(text, text, jsonb, integer, timestamptz, text, integer, text),
    public.enqueue_messages(text, jsonb),
    public.claim_messages(text, integer, integer, text),
    public.ack_message(uuid, text),
    public.ack_messages(uuid[], text),
    public.nack_message(uuid, text, integer, text, boolean),
    public.release_messages(uuid[], text),
    public.extend_message_leases(uuid[], integer, text),
    public.redrive_dead_letters(text, integer),
    public.schedule_job(text, text, jsonb, timestamptz, integer, text, integer, integer),
    public.claim_jobs(text[], integer, text),
    public.heartbeat_job(uuid, integer, text),
    public.complete_job(uuid, jsonb, text),
    public.fail_job(uuid, text, boolean, text, integer),
    public.cancel_job(uuid),
    public.release_jobs(uuid[], text),
    public.redrive_dead_letter_jobs(text, integer),
    public.cron_expression_valid(text),
    public.schedule_recurring_job(text, text, text, jsonb, integer, text, integer, integer, boolean),
    public.unschedule_recurring_job(text),
    public.claim_due_recurring_jobs(integer),
    public.fire_recurring_job(uuid, timestamptz, timestamptz),
    public.fail_recurring_job(uuid, text),
    public.reap_expired_leases(),
    public.purge_finished_queue_rows(interval, integer)
    to service_role;
-- a signed-in user reads their own events (RLS: user_id = auth.uid()) through these two
grant execute on function
    public.get_aggregate_events(text, text, integer),
    public.read_stream(text, text, integer, integer)
    to authenticated;

-- ---------------------------------------------------------------------------------------
-- comments (the reference docs and the dashboard read these from the catalog)
-- ---------------------------------------------------------------------------------------
comment on sequence public.event_store_global_position_seq is
    'Global positions of event_store, taken only by append_event/append_events after registering the writer as in flight.';

comment on table public.event_streams is
    'Stream heads: the current version of every event stream, kept outside the monthly partitions so that optimistic concurrency holds across months. Its row lock serialises appends to one stream.';
comment on column public.event_streams.aggregate_type is 'Stream category, e.g. trip, order, wallet.';
comment on column public.event_streams.aggregate_id is 'Id of the aggregate within its category.';
comment on column public.event_streams.version is 'Version of the last event appended (the stream has exactly this many events).';
comment on column public.event_streams.created_at is 'When the first event was appended.';
comment on column public.event_streams.updated_at is 'When the last event was appended.';

comment on table public.event_store is
    'Append-only event log (trips, orders, wallets). Partitioned by month on created_at and never purged (older months may be detached to archive). Written only through append_event/append_events; UPDATE and DELETE are refused for everyone but the table owner. Signed-in users read the events about themselves (user_id).';
comment on column public.event_store.id is 'Event id; an append with an id already stored in the same stream is a no-op returning it (idempotent append).';
comment on column public.event_store.created_at is 'When the event was appended (partition key).';
comment on column public.event_store.global_position is 'Position in the global log (gaps possible, never reordered once visible); read_all/read_category never return a position while a lower one may still commit.';
comment on column public.event_store.aggregate_type is 'Stream category, e.g. trip.';
comment on column public.event_store.aggregate_id is 'Aggregate id within the category.';
comment on column public.event_store.event_type is 'What happened, e.g. trip.requested.';
comment on column public.event_store.event_version is 'Position of the event in its stream: 1, 2, 3, … without gaps.';
comment on column public.event_store.payload is 'Event data (JSON object, at most 1 MiB).';
comment on column public.event_store.metadata is 'Envelope data (JSON object, at most 64 KiB), e.g. source service.';
comment on column public.event_store.correlation_id is 'Ties together everything one request caused.';
comment on column public.event_store.causation_id is 'The event or command that caused this one.';
comment on column public.event_store.user_id is 'The user the event is about; that user may read it.';

comment on table public.event_subscriptions is
    'Checkpoints of catch-up subscriptions: the last global position each named subscriber has processed.';
comment on column public.event_subscriptions.subscription_name is 'Subscriber name, e.g. projections.trip_summary.';
comment on column public.event_subscriptions.position is 'Last processed global position (moves forward only unless rewound explicitly).';
comment on column public.event_subscriptions.created_at is 'When the subscription first saved a checkpoint.';
comment on column public.event_subscriptions.updated_at is 'Last checkpoint save.';

comment on table public.message_queue is
    'Work messages by queue (River shape): available → running (claimed under a lease) → completed, or → retryable with backoff, and after max_attempts → dead_letter (kept, re-drivable). Written only through the queue functions. Completed rows are purged after queue_retention.';
comment on column public.message_queue.id is 'Message id.';
comment on column public.message_queue.queue_name is 'Queue, e.g. notifications (A-Z a-z 0-9 _ . : -, at most 100).';
comment on column public.message_queue.message_type is 'Kind of message, for the handler, e.g. ride.matched.';
comment on column public.message_queue.payload is 'Message body (JSON, at most 256 KiB).';
comment on column public.message_queue.priority is '1 (most urgent) to 10; claims take lower numbers first, then earlier scheduled_at.';
comment on column public.message_queue.state is 'available, running, retryable, completed or dead_letter.';
comment on column public.message_queue.attempt is 'Number of claims so far, including a running one; a lease that runs out counts.';
comment on column public.message_queue.max_attempts is 'Attempts allowed before the message becomes a dead letter.';
comment on column public.message_queue.errors is 'One JSON object per failed attempt: {at, attempt, error, worker}.';
comment on column public.message_queue.idempotency_key is 'Enqueue key, unique per queue while the row is retained: the same key returns the same message.';
comment on column public.message_queue.correlation_id is 'Ties the message to the request that caused it.';
comment on column public.message_queue.claimed_by is 'Worker holding (or last holding) the lease.';
comment on column public.message_queue.attempted_by is 'Worker of every attempt, in order.';
comment on column public.message_queue.redrive_count is 'How many times the message was re-driven from dead_letter.';
comment on column public.message_queue.created_at is 'When it was enqueued.';
comment on column public.message_queue.scheduled_at is 'Not claimable before this time (delayed delivery, retry backoff).';
comment on column public.message_queue.attempted_at is 'When the last attempt started.';
comment on column public.message_queue.locked_until is 'End of the running lease (visibility timeout); set exactly while running.';
comment on column public.message_queue.finalized_at is 'When it reached completed or dead_letter; set exactly in those states.';

comment on table public.background_jobs is
    'Background jobs (River shape): available → running (lease = timeout_seconds, extended by heartbeats) → completed, or → retryable with backoff, → dead_letter after max_attempts or a non-retryable failure, or → cancelled. Written only through the job functions.';
comment on column public.background_jobs.id is 'Job id.';
comment on column public.background_jobs.job_type is 'Handler key, e.g. payouts.settle (A-Z a-z 0-9 _ . : -).';
comment on column public.background_jobs.job_name is 'Human-readable name of this job.';
comment on column public.background_jobs.payload is 'Job arguments (JSON, at most 256 KiB).';
comment on column public.background_jobs.priority is '1 (most urgent) to 10.';
comment on column public.background_jobs.state is 'available, running, retryable, completed, dead_letter or cancelled.';
comment on column public.background_jobs.attempt is 'Number of claims so far, including a running one; a timeout counts.';
comment on column public.background_jobs.max_attempts is 'Attempts allowed before the job becomes a dead letter.';
comment on column public.background_jobs.timeout_seconds is 'Lease granted per claim and per heartbeat: a job silent for longer is returned to the queue.';
comment on column public.background_jobs.errors is 'One JSON object per failed attempt: {at, attempt, error, worker, retryable}.';
comment on column public.background_jobs.result is 'What the handler returned (JSON, at most 256 KiB); only on completed jobs.';
comment on column public.background_jobs.idempotency_key is 'Scheduling key, unique per job type while retained: the same key returns the same job.';
comment on column public.background_jobs.recurring_job_id is 'The recurring schedule that created the job, if any.';
comment on column public.background_jobs.claimed_by is 'Worker holding (or last holding) the lease.';
comment on column public.background_jobs.attempted_by is 'Worker of every attempt, in order.';
comment on column public.background_jobs.redrive_count is 'How many times the job was re-driven from dead_letter.';
comment on column public.background_jobs.created_at is 'When it was scheduled.';
comment on column public.background_jobs.scheduled_at is 'Not claimable before this time.';
comment on column public.background_jobs.attempted_at is 'When the last attempt started.';
comment on column public.background_jobs.heartbeat_at is 'Last sign of life from the running worker.';
comment on column public.background_jobs.locked_until is 'End of the lease; set exactly while running.';
comment on column public.background_jobs.finalized_at is 'When it reached completed, dead_letter or cancelled; set exactly in those states.';

comment on table public.recurring_jobs is
    'Jobs scheduled from cron expressions. The worker computes fire times (croniter) and schedules one job per slot (idempotency key recurring:<id>:<slot>); missed slots while no worker ran are coalesced into one run.';
comment on column public.recurring_jobs.id is 'Schedule id.';
comment on column public.recurring_jobs.name is 'Unique schedule name; also the job_name of the jobs it creates.';
comment on column public.recurring_jobs.job_type is 'Type of the jobs it creates.';
comment on column public.recurring_jobs.cron_expression is '5-field cron expression (minute hour day-of-month month day-of-week) or @hourly/@daily/@weekly/@monthly/@yearly.';
comment on column public.recurring_jobs.timezone is 'IANA time zone the expression is read in, e.g. Africa/Kigali.';
comment on column public.recurring_jobs.payload is 'Payload of every job it creates.';
comment on column public.recurring_jobs.priority is 'Priority of the jobs it creates.';
comment on column public.recurring_jobs.max_attempts is 'max_attempts of the jobs it creates.';
comment on column public.recurring_jobs.timeout_seconds is 'timeout_seconds of the jobs it creates.';
comment on column public.recurring_jobs.enabled is 'Disabled schedules create nothing (set false by fail_recurring_job on a bad expression).';
comment on column public.recurring_jobs.next_run_at is 'Next slot; null until a worker computes it.';
comment on column public.recurring_jobs.last_run_at is 'Last slot fired.';
comment on column public.recurring_jobs.last_job_id is 'Job created for the last slot.';
comment on column public.recurring_jobs.last_error is 'Why the schedule was disabled, if it was.';
comment on column public.recurring_jobs.created_at is 'When the schedule was created.';
comment on column public.recurring_jobs.updated_at is 'Last change of the schedule.';

comment on table public.queue_retention is
    'How long finished rows of message_queue and background_jobs are kept before purge_finished_queue_rows deletes them. Changed by the table owner only.';
comment on column public.queue_retention.table_name is 'message_queue or background_jobs.';
comment on column public.queue_retention.finished_retention is 'Age (since finalized_at) after which completed (and cancelled) rows are purged.';
comment on column public.queue_retention.dead_letter_retention is 'Age after which dead letters are purged; null keeps them until re-driven or deleted.';
comment on column public.queue_retention.updated_at is 'Last change of this row.';

comment on function public.event_store_check_event(text, text, text, jsonb, jsonb) is
    'Internal: validates one event (22004 empty names or null payload, 22023 wrong shape or too large).';
comment on function public.event_store_bump_version(text, text, integer, integer) is
    'Internal: moves a stream head forward under its row lock and raises PD003 "wrong expected version … expected N, actual M" when the stream moved.';
comment on function public.event_store_lock_writer() is
    'Internal: registers the transaction as an in-flight event writer (shared advisory lock keyed by the sequence''s last value) before it takes global positions.';
comment on function public.event_store_safe_position() is
    'Highest global position below which no event can still commit: the sequence''s last value, lowered to the floor of the oldest in-flight writer. Service only.';
comment on function public.refuse_event_store_change() is
    'Trigger keeping event_store append-only: refuses UPDATE and DELETE (PD006) unless run by the table owner.';
comment on function public.append_event(text, text, text, jsonb, text, jsonb, integer, uuid, text, uuid) is
    'Appends one event to the stream (p_aggregate_type, p_aggregate_id) and returns its id. p_expected_version: the version the stream must be at (0 = new stream), else PD003 "wrong expected version" with expected and actual and nothing written. p_event_id makes the append idempotent. Service only.';
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
comment on function public.stream_version(text, text) is 'Current version of a stream (0 when it does not exist). Service only.';
comment on function public.save_subscription_checkpoint(text, bigint, boolean) is
    'Stores a subscription''s last processed global position (forward only unless p_allow_rewind) and returns the stored value. Service only.';
comment on function public.get_subscription_checkpoint(text) is
    'A subscription''s last processed global position (0 when none). Service only.';

comment on function public.queue_retry_backoff(integer) is
    'Internal: retry delay after a failed attempt: 2 s doubling per attempt, capped at 1 hour, with equal jitter (uniform in [d/2, d]).';
comment on function public.queue_check_worker(text) is 'Internal: validates a worker id (22023).';
comment on function public.message_queue_reap(text, integer) is
    'Internal: returns running messages whose lease ran out (of one queue, or all when null) to retryable, counting the attempt; out of attempts → dead_letter.';
comment on function public.background_jobs_reap(text[], integer) is
    'Internal: returns running jobs whose lease (timeout) ran out to retryable, counting the attempt; out of attempts → dead_letter.';
comment on function public.enqueue_message(text, text, jsonb, integer, timestamptz, text, integer, text) is
    'Enqueues a message and returns its id; the same p_idempotency_key on the same queue returns the same id (PD001 when the message differs). NOTIFY platformdb_queue (payload: queue name) when ready now; PostgreSQL coalesces identical notifications per transaction. Service only.';
comment on function public.enqueue_messages(text, jsonb) is
    'Batch enqueue of a JSON array of {message_type, payload, priority?, scheduled_at?, idempotency_key?, max_attempts?, correlation_id?} (at most 10000) in one statement; messages whose key exists are skipped. Returns how many were enqueued; one NOTIFY per call. Service only.';
comment on function public.claim_messages(text, integer, integer, text) is
    'Claims up to p_limit ready messages of a queue (priority, then scheduled_at) with FOR UPDATE SKIP LOCKED, under a lease of p_lease_seconds; counts the attempt. Expired leases of the queue are reaped first. Service only.';
comment on function public.ack_message(uuid, text) is
    'Completes a claimed message: true when completed now, false when it already was; PD005 when the lease was lost to another worker, PD004 when unknown. Service only.';
comment on function public.ack_messages(uuid[], text) is
    'Completes many claimed messages in one statement; returns how many were completed (lost leases are skipped). Service only.';
comment on function public.nack_message(uuid, text, integer, text, boolean) is
    'Records a failed attempt in errors and returns the new state: retryable after p_retry_in_seconds or exponential backoff with jitter, or dead_letter when out of attempts or p_retryable is false. Service only.';
comment on function public.release_messages(uuid[], text) is
    'Returns claimed messages to the queue without counting the attempt (graceful shutdown). Returns how many. Service only.';
comment on function public.extend_message_leases(uuid[], integer, text) is
    'Extends the lease of running messages still held by the worker; returns how many. Service only.';
comment on function public.redrive_dead_letters(text, integer) is
    'Moves up to p_limit dead letters of a queue (oldest first) back to available with attempt 0, keeping their errors. Returns how many. Service only.';
comment on function public.schedule_job(text, text, jsonb, timestamptz, integer, text, integer, integer) is
    'Schedules a background job and returns its id; the same p_idempotency_key for the same job type returns the same id (PD001 when the job differs). NOTIFY platformdb_jobs when due now. Service only.';
comment on function public.claim_jobs(text[], integer, text) is
    'Claims up to p_limit due jobs of the given types (null = all) with FOR UPDATE SKIP LOCKED; each lease is the job''s timeout_seconds. Expired leases are reaped first. Service only.';
comment on function public.heartbeat_job(uuid, integer, text) is
    'Extends a running job''s lease by p_extend_seconds (default its timeout) and returns the new end; PD005 when the lease was lost. Service only.';
comment on function public.complete_job(uuid, jsonb, text) is
    'Completes a running job with an optional result: true when completed now, false when it already was; PD005 when the lease was lost. Service only.';
comment on function public.fail_job(uuid, text, boolean, text, integer) is
    'Records a failed attempt in errors and returns the new state: retryable with backoff, or dead_letter when out of attempts or not retryable. Service only.';
comment on function public.cancel_job(uuid) is
    'Cancels a job that has not started (true), false when already finished; PD002 when running. Service only.';
comment on function public.release_jobs(uuid[], text) is
    'Returns running jobs to the queue without counting the attempt (graceful shutdown). Service only.';
comment on function public.redrive_dead_letter_jobs(text, integer) is
    'Moves dead-letter jobs of a type back to available with attempt 0, keeping their errors. Service only.';
comment on function public.cron_expression_valid(text) is
    'Syntactic check of a 5-field cron expression or @macro (the worker''s croniter has the final word).';
comment on function public.schedule_recurring_job(text, text, text, jsonb, integer, text, integer, integer, boolean) is
    'Creates or updates (by name) a recurring job from a cron expression read in p_timezone. Service only.';
comment on function public.unschedule_recurring_job(text) is 'Deletes a recurring schedule (its jobs stay). Service only.';
comment on function public.claim_due_recurring_jobs(integer) is
    'Due (or not yet computed) recurring schedules, locked FOR UPDATE SKIP LOCKED until the caller''s transaction ends. Service only.';
comment on function public.fire_recurring_job(uuid, timestamptz, timestamptz) is
    'Schedules the job of slot p_scheduled_for (once per slot) and moves the schedule to p_next_run_at; p_scheduled_for null only sets the next run. Service only.';
comment on function public.fail_recurring_job(uuid, text) is 'Disables a schedule whose expression cannot be evaluated, recording why. Service only.';
comment on function public.reap_expired_leases() is
    'Returns every running message and job whose lease ran out to its queue (counting the attempt; out of attempts → dead_letter). Returns how many. Service only.';
comment on function public.purge_finished_queue_rows(interval, integer) is
    'Deletes one batch (p_batch_size per table and kind) of finished queue rows older than queue_retention (or p_older_than); call until it returns 0. Service only.';

comment on view public.event_store_stats is
    'Per aggregate type: streams, events, longest stream, last append and events in the last hour. Service only.';
comment on view public.message_queue_stats is
    'Per queue: depth, ready, delayed, retrying, in flight, expired leases, dead letters, completed (retained and last hour) and the age of the oldest ready message. Service only.';
comment on view public.background_job_stats is
    'Per job type: depth, ready, scheduled, retrying, running, expired leases, dead letters, completed, cancelled, oldest ready age, average duration in the last hour and enabled recurring schedules. Service only.';

COMMIT;
