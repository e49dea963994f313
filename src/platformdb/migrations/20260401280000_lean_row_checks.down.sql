-- platformdb 20260401280000 down: the exact reverse of lean_row_checks.
-- Restores the bodies of enqueue_message and claim_messages as 20260401270000 gave them
-- (without their settings), the settings of ack_messages and message_queue_reap, the table
-- checks of message_queue (validated, as they were) and its columns' types; drops the
-- domains.
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
    v_wake boolean;
begin
    -- one test for a valid call (the common case); the checks one by one, each with its own
    -- error, only when it fails
    if (p_queue_name ~ '^[A-Za-z0-9_.:-]{1,100}$'
        and char_length(p_message_type) between 1 and 200
        and pg_column_size(p_payload) <= 262144
        and p_priority between 1 and 10
        and p_max_attempts between 1 and 100
        and (p_idempotency_key is null or char_length(p_idempotency_key) between 1 and 200)) is not true then
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
    end if;

    if p_idempotency_key is null then
        -- no key, nothing to deduplicate: a plain INSERT (ON CONFLICT would still run the
        -- speculative insertion protocol against the key index: more work and more WAL)
        -- the insert and the wake-up test in one statement: the test reads the statement's
        -- snapshot, which does not hold the new row (no id filter needed)
        with added as (
            insert into public.message_queue
                (queue_name, message_type, payload, priority, max_attempts, scheduled_at,
                 idempotency_key, correlation_id)
            values (p_queue_name, p_message_type, p_payload, p_priority, p_max_attempts, v_at,
                    null, p_correlation_id)
            returning id
        )
        select added.id,
               case when v_at <= now() then not exists (
                   select 1 from public.message_queue m
                    where m.queue_name = p_queue_name
                      and m.state in ('available', 'retryable')
                      and m.scheduled_at <= now())
               else false end
          into v_id, v_wake
          from added;
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
        v_wake := v_at <= now() and not exists (
            select 1 from public.message_queue m
             where m.queue_name = p_queue_name
               and m.state in ('available', 'retryable')
               and m.scheduled_at <= now()
               and m.id <> v_id);
    end if;
    -- wake the workers only when the queue had no ready message before this one: a queue
    -- with ready messages already has awake or busy workers
    if v_wake then
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
    if (p_queue_name <> ''
        and p_limit between 1 and 1000
        and p_lease_seconds between 1 and 43200
        and (p_worker_id is null or char_length(p_worker_id) between 1 and 200)) is not true then
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

alter function public.ack_messages(uuid[], text)
    reset plan_cache_mode
    reset enable_seqscan
    reset enable_bitmapscan;
alter function public.message_queue_reap(text, integer) reset plan_cache_mode;
alter function public.ack_message(uuid, text) reset enable_seqscan;
alter function public.nack_message(uuid, text, integer, text, boolean) reset enable_seqscan;
alter function public.extend_message_leases(uuid[], integer, text) reset enable_seqscan;
alter function public.release_messages(uuid[], text) reset enable_seqscan;
alter function public.enqueue_messages(text, jsonb) reset enable_seqscan;
alter function public.schedule_job(text, text, jsonb, timestamptz, integer, text, integer, integer) reset enable_seqscan;
alter function public.claim_jobs(text[], integer, text) reset enable_seqscan;
alter function public.heartbeat_job(uuid, integer, text) reset enable_seqscan;
alter function public.complete_job(uuid, jsonb, text) reset enable_seqscan;
alter function public.fail_job(uuid, text, boolean, text, integer) reset enable_seqscan;
alter function public.cancel_job(uuid) reset enable_seqscan;
alter function public.release_jobs(uuid[], text) reset enable_seqscan;

revoke all on function
    public.enqueue_message(text, text, jsonb, integer, timestamptz, text, integer, text),
    public.claim_messages(text, integer, integer, text)
    from public, anon, authenticated, service_role;
grant execute on function
    public.enqueue_message(text, text, jsonb, integer, timestamptz, text, integer, text),
    public.claim_messages(text, integer, integer, text)
    to service_role;

-- message_queue: the view that reads the columns is recreated below, as 20260401140000 made it
-- platformdb-lint: allow additive-only (the up file dropped and recreated this view around the column types: this does the same back)
-- squawk-ignore ban-drop-view
drop view public.message_queue_stats;
alter table public.message_queue
    -- squawk-ignore changing-column-type
    alter column queue_name type text,
    -- squawk-ignore changing-column-type
    alter column message_type type text,
    -- squawk-ignore changing-column-type
    alter column payload type jsonb,
    -- squawk-ignore changing-column-type
    alter column priority type smallint,
    -- squawk-ignore changing-column-type
    alter column state type text,
    -- squawk-ignore changing-column-type
    alter column max_attempts type smallint,
    -- squawk-ignore changing-column-type
    alter column idempotency_key type text;
-- the checks back on the table, validated as they were (a scan of the queue)
-- squawk-ignore constraint-missing-not-valid
alter table public.message_queue add constraint message_queue_state_valid
    check (state in ('available', 'running', 'retryable', 'completed', 'dead_letter'));
-- squawk-ignore constraint-missing-not-valid
alter table public.message_queue add constraint message_queue_queue_name_format
    check (queue_name ~ '^[A-Za-z0-9_.:-]{1,100}$');
-- squawk-ignore constraint-missing-not-valid
alter table public.message_queue add constraint message_queue_message_type_length
    check (char_length(message_type) between 1 and 200);
-- squawk-ignore constraint-missing-not-valid
alter table public.message_queue add constraint message_queue_priority_range
    check (priority between 1 and 10);
-- squawk-ignore constraint-missing-not-valid
alter table public.message_queue add constraint message_queue_max_attempts_range
    check (max_attempts between 1 and 100);
-- squawk-ignore constraint-missing-not-valid
alter table public.message_queue add constraint message_queue_payload_size
    check (pg_column_size(payload) <= 262144);
-- squawk-ignore constraint-missing-not-valid
alter table public.message_queue add constraint message_queue_idempotency_key_length
    check (idempotency_key is null or char_length(idempotency_key) between 1 and 200);
drop domain public.message_queue_name;
drop domain public.message_queue_type;
drop domain public.message_queue_payload;
drop domain public.message_queue_priority;
drop domain public.message_queue_state;
drop domain public.message_queue_max_attempts;
drop domain public.message_queue_key;

-- (OR REPLACE: the view was dropped above)
create or replace view public.message_queue_stats
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

revoke all on table public.message_queue_stats from public, anon, authenticated, service_role;
grant select on table public.message_queue_stats to service_role;
comment on view public.message_queue_stats is
    'Per queue: depth, ready, delayed, retrying, in flight, expired leases, dead letters, completed (retained and last hour) and the age of the oldest ready message. Service only.';

COMMIT;
