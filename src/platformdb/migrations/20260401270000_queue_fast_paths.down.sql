-- platformdb 20260401270000 down: the exact reverse of queue_fast_paths.
-- Restores the bodies of enqueue_message, claim_messages and append_event as 20260401240000
-- gave them, and of ack_messages as 20260401140000 gave it.
BEGIN;

create or replace function public.enqueue_message(
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

    if p_idempotency_key is null then
        -- no key, nothing to deduplicate: a plain INSERT (ON CONFLICT would still run the
        -- speculative insertion protocol against the key index: more work and more WAL)
        insert into public.message_queue
            (queue_name, message_type, payload, priority, max_attempts, scheduled_at,
             idempotency_key, correlation_id)
        values (p_queue_name, p_message_type, p_payload, p_priority, p_max_attempts, v_at,
                null, p_correlation_id)
        returning id into v_id;
    else
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
    end if;
    -- wake the workers only when the queue had no ready message before this one (see the
    -- header): a queue with ready messages already has awake or busy workers
    if v_at <= now() and not exists (
        select 1 from public.message_queue m
         where m.queue_name = p_queue_name
           and m.state in ('available', 'retryable')
           and m.scheduled_at <= now()
           and m.id <> v_id) then
        perform pg_catalog.pg_notify('platformdb_queue', p_queue_name);
    end if;
    return v_id;
end
$$;

create or replace function public.claim_messages(
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
    if p_worker_id is not null and (p_worker_id = '' or char_length(p_worker_id) > 200) then
        raise exception 'p_worker_id must be 1 to 200 characters (or null)' using errcode = '22023';
    end if;
    -- expired leases of this queue go back first, so no reaper is needed for progress
    -- (probed first: the common case, nothing expired, then costs one index lookup)
    if exists (select 1 from public.message_queue m
                where m.state = 'running' and m.locked_until < now()
                  and m.queue_name = p_queue_name) then
        perform public.message_queue_reap(p_queue_name, p_limit);
    end if;
    return query
    -- the picked rows are found again by ctid, the address of the row version the lock was
    -- taken on (a lock held to commit: nobody can move it meanwhile), not by a second
    -- primary-key lookup per row
    with picked as (
        select m.ctid as row_address from public.message_queue m
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
         where m.ctid = picked.row_address
        returning m.*
    )
    select * from claimed c order by c.priority, c.scheduled_at;
end
$$;

create or replace function public.ack_messages(p_message_ids uuid[], p_worker_id text default null)
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

create or replace function public.append_event(
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
    v_xact text;
    -- a variable, not now() in the upsert (Citus: no STABLE call in DO UPDATE SET)
    v_now timestamptz := pg_catalog.now();
begin
    -- the checks of event_store_check_event, inlined
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
    -- event_store_bump_version, inlined: the stream head moves under its row lock (held to
    -- commit, so appends to one stream are serialised) and the expected version is checked
    -- (an existing stream: a plain UPDATE, which writes no separate row-lock record)
    update public.event_streams s set version = s.version + 1, updated_at = v_now
     where s.aggregate_type = p_aggregate_type and s.aggregate_id = p_aggregate_id
    returning s.version into v_head;
    if not found then
        insert into public.event_streams as s (aggregate_type, aggregate_id, version)
        values (p_aggregate_type, p_aggregate_id, 1)
        on conflict (aggregate_type, aggregate_id)
        do update set version = s.version + 1, updated_at = v_now
        returning s.version into v_head;
    end if;
    if p_expected_version is not null and v_head - 1 <> p_expected_version then
        raise exception 'wrong expected version for stream %/%: expected %, actual %',
            p_aggregate_type, p_aggregate_id, p_expected_version, v_head - 1
            using errcode = 'PD003',
                  hint = 'the stream moved since it was read: read it again and retry';
    end if;
    -- event_store_lock_writer, inlined: register this transaction as an in-flight writer
    -- (once per transaction) before it takes a global position
    v_xact := pg_catalog.pg_current_xact_id()::text;
    if coalesce(pg_catalog.current_setting('platformdb.event_writer', true), '') <> v_xact then
        perform pg_catalog.pg_advisory_xact_lock_shared((x'7064'::bigint << 48) | coalesce(
            pg_catalog.pg_sequence_last_value('public.event_store_global_position_seq'::pg_catalog.regclass), 0));
        perform pg_catalog.set_config('platformdb.event_writer', v_xact, true);
    end if;
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

revoke all on function
    public.enqueue_message(text, text, jsonb, integer, timestamptz, text, integer, text),
    public.claim_messages(text, integer, integer, text),
    public.ack_messages(uuid[], text),
    public.append_event(text, text, text, jsonb, text, jsonb, integer, uuid, text, uuid)
    from public, anon, authenticated, service_role;
grant execute on function
    public.enqueue_message(text, text, jsonb, integer, timestamptz, text, integer, text),
    public.claim_messages(text, integer, integer, text),
    public.ack_messages(uuid[], text),
    public.append_event(text, text, text, jsonb, text, jsonb, integer, uuid, text, uuid)
    to service_role;

COMMIT;
