-- platformdb 20260401280000: lean row checks on the queue, and plans that follow the table
-- Same signatures, same checks, same errors, same guarantees; less work per call
-- (docs/benchmarks.md, "Where the time goes"):
-- - PostgreSQL prepares a table's CHECK constraints anew for every INSERT or UPDATE statement
--   (read back from their stored form, simplified and compiled, then run on each row): for a
--   one-row INSERT into message_queue, its 10 checks cost about as much as the rest of the
--   INSERT. A domain's checks are compiled once per connection and run only on the columns
--   a statement assigns. The 7 one-column checks of message_queue become the checks of
--   domains over the same types, under the same constraint names: the same values are
--   refused, with the same SQLSTATE (23514) and constraint name. The 3 checks that tie two
--   columns together stay on the table.
-- - The queue-name check is written as a length test and a "no other character" test: the
--   same set of names; the bounded repetition {1,100} made a regular expression that costs
--   about 8 times more to run. In the domain and in enqueue_message.
-- - A connection that first ran the queue's functions while message_queue was empty kept
--   plans that scan the whole table (PL/pgSQL's generic plans): enqueue_message, claim_messages
--   and ack_messages now plan without sequential scans, and the claim and the ack on one
--   generic plan (PL/pgSQL planned the claim anew on every call); the claim updates the
--   picked rows through the primary key, the one plan right for any table (below). The other
--   queue and job functions that find rows by key or claim index (claim_jobs, complete_job,
--   ack_message, ...) plan without sequential scans too.
-- How the columns change type: onto the domains while these have no checks yet, a catalog
-- change (no table rewrite); the indexes on those columns are rebuilt (the table holds only
-- the queue and a day of finished messages). The domains then get their checks, validated by
-- one scan. message_queue_stats, which reads the changed columns, is recreated as it was
-- (queue_name still text). Functions that return the columns as text keep doing so.
-- The down file restores the table checks, the column types and the previous functions.
BEGIN;

-- ---------------------------------------------------------------------------------------
-- guard: the names this file creates must be free
-- ---------------------------------------------------------------------------------------
select public.platformdb_assert_names_free(array[
    'message_queue_name', 'message_queue_type', 'message_queue_payload',
    'message_queue_priority', 'message_queue_state', 'message_queue_max_attempts',
    'message_queue_key'
]);

-- ---------------------------------------------------------------------------------------
-- domains (checks added below, after the columns moved onto them)
-- ---------------------------------------------------------------------------------------
create domain public.message_queue_name as text;
create domain public.message_queue_type as text;
create domain public.message_queue_payload as jsonb;
create domain public.message_queue_priority as smallint;
create domain public.message_queue_state as text;
create domain public.message_queue_max_attempts as smallint;
create domain public.message_queue_key as text;

-- ---------------------------------------------------------------------------------------
-- the table: its one-column checks go, its columns move onto the domains
-- ---------------------------------------------------------------------------------------
-- The view reads the columns whose type changes; it is recreated below as it was.
-- squawk-ignore ban-drop-view
drop view public.message_queue_stats;

-- Each check leaves the table only to come back, under its name, on the column's domain
-- below, in this transaction: no row is ever unchecked.
-- squawk-ignore ban-drop-constraint
alter table public.message_queue drop constraint message_queue_state_valid;
-- squawk-ignore ban-drop-constraint
alter table public.message_queue drop constraint message_queue_queue_name_format;
-- squawk-ignore ban-drop-constraint
alter table public.message_queue drop constraint message_queue_message_type_length;
-- squawk-ignore ban-drop-constraint
alter table public.message_queue drop constraint message_queue_priority_range;
-- squawk-ignore ban-drop-constraint
alter table public.message_queue drop constraint message_queue_max_attempts_range;
-- squawk-ignore ban-drop-constraint
alter table public.message_queue drop constraint message_queue_payload_size;
-- squawk-ignore ban-drop-constraint
alter table public.message_queue drop constraint message_queue_idempotency_key_length;

-- Same base types, domains without checks yet: a catalog change, no table rewrite (the
-- indexes on these columns are rebuilt, once: one statement).
alter table public.message_queue
    -- squawk-ignore changing-column-type
    alter column queue_name type public.message_queue_name,
    -- squawk-ignore changing-column-type
    alter column message_type type public.message_queue_type,
    -- squawk-ignore changing-column-type
    alter column payload type public.message_queue_payload,
    -- squawk-ignore changing-column-type
    alter column priority type public.message_queue_priority,
    -- squawk-ignore changing-column-type
    alter column state type public.message_queue_state,
    -- squawk-ignore changing-column-type
    alter column max_attempts type public.message_queue_max_attempts,
    -- squawk-ignore changing-column-type
    alter column idempotency_key type public.message_queue_key;

-- The checks, on the domains: compiled once per connection and run only on the columns a
-- statement assigns (the reason for this file). A later change to one of them is a new
-- domain check validated over message_queue, which holds only the queue and a day of
-- finished messages.
-- squawk-ignore ban-alter-domain-with-add-constraint
alter domain public.message_queue_name add constraint message_queue_queue_name_format
    check (char_length(value) between 1 and 100 and value !~ '[^A-Za-z0-9_.:-]');
-- squawk-ignore ban-alter-domain-with-add-constraint
alter domain public.message_queue_type add constraint message_queue_message_type_length
    check (char_length(value) between 1 and 200);
-- squawk-ignore ban-alter-domain-with-add-constraint
alter domain public.message_queue_payload add constraint message_queue_payload_size
    check (pg_column_size(value) <= 262144);
-- squawk-ignore ban-alter-domain-with-add-constraint
alter domain public.message_queue_priority add constraint message_queue_priority_range
    check (value between 1 and 10);
-- squawk-ignore ban-alter-domain-with-add-constraint
alter domain public.message_queue_state add constraint message_queue_state_valid
    check (value in ('available', 'running', 'retryable', 'completed', 'dead_letter'));
-- squawk-ignore ban-alter-domain-with-add-constraint
alter domain public.message_queue_max_attempts add constraint message_queue_max_attempts_range
    check (value between 1 and 100);
-- squawk-ignore ban-alter-domain-with-add-constraint
alter domain public.message_queue_key add constraint message_queue_idempotency_key_length
    check (char_length(value) between 1 and 200);

-- (OR REPLACE: the view is ours, from 20260401140000; it was dropped above)
create or replace view public.message_queue_stats
with (security_invoker = true)
as
select m.queue_name::text as queue_name,
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

-- ---------------------------------------------------------------------------------------
-- functions
-- ---------------------------------------------------------------------------------------

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
-- no sequential scan in the plan PL/pgSQL keeps for this connection: one made while the table
-- was empty would read the whole table at each enqueue's wake-up test once it is full
set enable_seqscan = off
as $$
declare
    v_id uuid;
    v_type text;
    v_payload jsonb;
    v_at timestamptz := coalesce(p_scheduled_at, now());
    v_wake boolean;
begin
    -- one test for a valid call (the common case); the checks one by one, each with its own
    -- error, only when it fails. The queue name: 1 to 100 characters, none outside the set
    -- (the same names as '^[A-Za-z0-9_.:-]{1,100}$', whose bounded repetition costs more)
    if (char_length(p_queue_name) between 1 and 100 and p_queue_name !~ '[^A-Za-z0-9_.:-]'
        and char_length(p_message_type) between 1 and 200
        and pg_column_size(p_payload) <= 262144
        and p_priority between 1 and 10
        and p_max_attempts between 1 and 100
        and (p_idempotency_key is null or char_length(p_idempotency_key) between 1 and 200)) is not true then
        if p_queue_name is null or p_queue_name = '' then
            raise exception 'p_queue_name must not be empty' using errcode = '22004';
        end if;
        if char_length(p_queue_name) > 100 or p_queue_name ~ '[^A-Za-z0-9_.:-]' then
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



-- Plans that follow the table. PL/pgSQL keeps one generic plan per statement and connection
-- once it looks no dearer than planning each call, and a plan made while message_queue was
-- empty (a worker that connected to an idle queue) scans the whole table: with 200,000
-- finished rows that made each enqueue 30 ms and each claim 35 ms, for that connection's
-- life. The enqueue, the claim and the ack keep one plan each, made without sequential scans
-- (and, for the claim and the ack, without bitmap scans and always generic): the only plans
-- left read the claim index and the primary key, right for an empty table and a full one.
alter function public.ack_messages(uuid[], text)
    set plan_cache_mode = force_generic_plan
    set enable_seqscan = off
    set enable_bitmapscan = off;
-- The same for the other functions of the queue and the jobs that find rows by key or by
-- the claim indexes (a job worker's claim kept a whole-table scan, 18 ms a claim beside
-- 23,000 jobs): no sequential scan in the plans they keep. Maintenance (retention, redrive,
-- the global reaper) keeps the default.
alter function public.ack_message(uuid, text) set enable_seqscan = off;
alter function public.nack_message(uuid, text, integer, text, boolean) set enable_seqscan = off;
alter function public.extend_message_leases(uuid[], integer, text) set enable_seqscan = off;
alter function public.release_messages(uuid[], text) set enable_seqscan = off;
alter function public.enqueue_messages(text, jsonb) set enable_seqscan = off;
alter function public.schedule_job(text, text, jsonb, timestamptz, integer, text, integer, integer) set enable_seqscan = off;
alter function public.claim_jobs(text[], integer, text) set enable_seqscan = off;
alter function public.heartbeat_job(uuid, integer, text) set enable_seqscan = off;
alter function public.complete_job(uuid, jsonb, text) set enable_seqscan = off;
alter function public.fail_job(uuid, text, boolean, text, integer) set enable_seqscan = off;
alter function public.cancel_job(uuid) set enable_seqscan = off;
alter function public.release_jobs(uuid[], text) set enable_seqscan = off;

-- the reaper, which claim_messages calls when a lease of the queue ran out, plans each call
-- (it runs seldom; its join of the expired rows has no one plan right for every table)
alter function public.message_queue_reap(text, integer) set plan_cache_mode = force_custom_plan;

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
-- One plan per connection, not a new one per call (PL/pgSQL planned this claim anew on every
-- call: its plan for one queue and limit looked cheaper than the generic one, whose LIMIT is
-- of unknown size; planning was about a third of a claim's time). Without sequential and
-- bitmap scans that one plan reads the claim index and the primary key whatever the table
-- held when it was made (a generic plan made on an empty table would otherwise scan it all).
set plan_cache_mode = force_generic_plan
set enable_seqscan = off
set enable_bitmapscan = off
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
    -- one statement, on one generic plan (above): the picked rows' ids, locked in claim order,
    -- then the update of those rows through the primary key ("id = any(array of the picked)":
    -- the one plan that stays right however full the table was when it was made)
    with claimed as (
        update public.message_queue m
           set state = 'running',
               attempt = m.attempt + 1,
               attempted_at = now(),
               claimed_by = p_worker_id,
               attempted_by = array_append(m.attempted_by, coalesce(p_worker_id, '')),
               locked_until = now() + pg_catalog.make_interval(secs => p_lease_seconds)
         where m.id = any (array(
            select r.id from public.message_queue r
             where r.queue_name = p_queue_name
               and r.state in ('available', 'retryable')
               and r.scheduled_at <= now()
             order by r.priority, r.scheduled_at
             limit p_limit
             for update skip locked))
        returning m.*
    )
    select * from claimed c order by c.priority, c.scheduled_at;
end
$$;

-- ---------------------------------------------------------------------------------------
-- grants: as before (CREATE OR REPLACE keeps them; restated so this file stands alone)
-- ---------------------------------------------------------------------------------------
revoke all on function
    public.enqueue_message(text, text, jsonb, integer, timestamptz, text, integer, text),
    public.claim_messages(text, integer, integer, text)
    from public, anon, authenticated, service_role;
grant execute on function
    public.enqueue_message(text, text, jsonb, integer, timestamptz, text, integer, text),
    public.claim_messages(text, integer, integer, text)
    to service_role;

-- comments: the behaviour is the same (restated so this file stands alone)
comment on function public.enqueue_message(text, text, jsonb, integer, timestamptz, text, integer, text) is
    'Enqueues a message and returns its id; the same p_idempotency_key on the same queue returns the same id (PD001 when the message differs). NOTIFY platformdb_queue (payload: queue name) when the message is ready now and the queue had no other ready message (workers of a non-empty queue are awake or busy; their polling covers the race). Service only.';
comment on function public.claim_messages(text, integer, integer, text) is
    'Claims up to p_limit ready messages of a queue (priority, then scheduled_at) with FOR UPDATE SKIP LOCKED, under a lease of p_lease_seconds; counts the attempt. Expired leases of the queue are reaped first. Service only.';
comment on domain public.message_queue_name is
    'message_queue.queue_name: 1 to 100 characters of A-Z a-z 0-9 _ . : -';
comment on domain public.message_queue_type is 'message_queue.message_type: 1 to 200 characters';
comment on domain public.message_queue_payload is 'message_queue.payload: at most 262144 bytes';
comment on domain public.message_queue_priority is 'message_queue.priority: 1 (most urgent) to 10';
comment on domain public.message_queue_state is
    'message_queue.state: available, running, retryable, completed or dead_letter';
comment on domain public.message_queue_max_attempts is 'message_queue.max_attempts: 1 to 100';
comment on domain public.message_queue_key is 'message_queue.idempotency_key: 1 to 200 characters';

COMMIT;
