-- platformdb 20260401340000: the background jobs' one-column checks on domains
-- Same signatures, same checks, same errors, same guarantees; less work per statement. As
-- 20260401280000 did for message_queue and 20260401310000 for the WhatsApp queue: PostgreSQL
-- prepares a table's CHECK constraints anew for every INSERT or UPDATE statement that writes
-- a row (read back from their stored form, simplified and compiled), and background_jobs had
-- 13; a job's life is an INSERT (schedule_job), a claim and a completion (two UPDATEs), each
-- paying for all 13 (schedule, claim 1 and complete in one transaction, pgbench, 1 client,
-- commits not waiting: +13% with this file). A domain's checks are compiled once per connection,
-- and run only on the columns a statement assigns. So state, job_type, job_name, priority,
-- max_attempts, timeout_seconds, payload, result and idempotency_key move onto domains over
-- the same types that carry the same checks under the same names (the same values refused,
-- SQLSTATE 23514, the same constraint name); job_type's '^[A-Za-z0-9_.:-]{1,200}$' is tested
-- as a length and "no other character", the same strings, as 20260401280000 did for queue
-- names (the bounded repetition costs more). The 4 checks that tie columns together stay on
-- the table.
-- How the columns change type: onto the domains while these have no checks yet, a catalog
-- change (no table rewrite); the indexes on those columns are rebuilt in this transaction
-- (time in proportion to the jobs table, finished jobs included until they are purged;
-- workers wait for it). The domains then get their checks, validated by one scan.
-- background_job_stats, which reads changed columns, is recreated with the same column types.
-- claim_jobs returns rows of the table, whose type follows the columns.
-- The down file restores the table checks and the column types and drops the domains.
BEGIN;

-- ---------------------------------------------------------------------------------------
-- guard: the names this file creates must be free
-- ---------------------------------------------------------------------------------------
select public.platformdb_assert_names_free(array[
    'background_jobs_state',
    'background_jobs_job_type',
    'background_jobs_job_name',
    'background_jobs_priority',
    'background_jobs_max_attempts',
    'background_jobs_timeout_seconds',
    'background_jobs_payload',
    'background_jobs_result',
    'background_jobs_idempotency_key'
]);

-- ---------------------------------------------------------------------------------------
-- domains (checks added below, after the columns moved onto them)
-- ---------------------------------------------------------------------------------------
create domain public.background_jobs_state as text;
create domain public.background_jobs_job_type as text;
create domain public.background_jobs_job_name as text;
create domain public.background_jobs_priority as smallint;
create domain public.background_jobs_max_attempts as smallint;
create domain public.background_jobs_timeout_seconds as integer;
create domain public.background_jobs_payload as jsonb;
create domain public.background_jobs_result as jsonb;
create domain public.background_jobs_idempotency_key as text;

-- ---------------------------------------------------------------------------------------
-- the table: its one-column checks go, its columns move onto the domains
-- ---------------------------------------------------------------------------------------
-- The view reads columns whose type changes; it is recreated below with the same types.
-- squawk-ignore ban-drop-view
drop view public.background_job_stats;

-- Each check leaves the table only to come back, under its name, on the column's domain
-- below, in this transaction: no row is ever unchecked.
-- squawk-ignore ban-drop-constraint
alter table public.background_jobs drop constraint background_jobs_state_valid;
-- squawk-ignore ban-drop-constraint
alter table public.background_jobs drop constraint background_jobs_job_type_format;
-- squawk-ignore ban-drop-constraint
alter table public.background_jobs drop constraint background_jobs_job_name_length;
-- squawk-ignore ban-drop-constraint
alter table public.background_jobs drop constraint background_jobs_priority_range;
-- squawk-ignore ban-drop-constraint
alter table public.background_jobs drop constraint background_jobs_max_attempts_range;
-- squawk-ignore ban-drop-constraint
alter table public.background_jobs drop constraint background_jobs_timeout_range;
-- squawk-ignore ban-drop-constraint
alter table public.background_jobs drop constraint background_jobs_payload_size;
-- squawk-ignore ban-drop-constraint
alter table public.background_jobs drop constraint background_jobs_result_size;
-- squawk-ignore ban-drop-constraint
alter table public.background_jobs drop constraint background_jobs_idempotency_key_length;

-- Same base types, domains without checks yet: a catalog change, no table rewrite (the
-- indexes on these columns are rebuilt, once: one statement).
alter table public.background_jobs
    -- squawk-ignore changing-column-type
    alter column state type public.background_jobs_state,
    -- squawk-ignore changing-column-type
    alter column job_type type public.background_jobs_job_type,
    -- squawk-ignore changing-column-type
    alter column job_name type public.background_jobs_job_name,
    -- squawk-ignore changing-column-type
    alter column priority type public.background_jobs_priority,
    -- squawk-ignore changing-column-type
    alter column max_attempts type public.background_jobs_max_attempts,
    -- squawk-ignore changing-column-type
    alter column timeout_seconds type public.background_jobs_timeout_seconds,
    -- squawk-ignore changing-column-type
    alter column payload type public.background_jobs_payload,
    -- squawk-ignore changing-column-type
    alter column result type public.background_jobs_result,
    -- squawk-ignore changing-column-type
    alter column idempotency_key type public.background_jobs_idempotency_key;

-- The checks, on the domains: compiled once per connection (the reason for this file).
-- Validated by one scan of the columns that use them.
-- squawk-ignore ban-alter-domain-with-add-constraint
alter domain public.background_jobs_state add constraint background_jobs_state_valid
    check (value in ('available', 'running', 'retryable', 'completed', 'dead_letter', 'cancelled'));
-- squawk-ignore ban-alter-domain-with-add-constraint
alter domain public.background_jobs_job_type add constraint background_jobs_job_type_format
    check (char_length(value) between 1 and 200 and value !~ '[^A-Za-z0-9_.:-]');
-- squawk-ignore ban-alter-domain-with-add-constraint
alter domain public.background_jobs_job_name add constraint background_jobs_job_name_length
    check (char_length(value) between 1 and 200);
-- squawk-ignore ban-alter-domain-with-add-constraint
alter domain public.background_jobs_priority add constraint background_jobs_priority_range
    check (value between 1 and 10);
-- squawk-ignore ban-alter-domain-with-add-constraint
alter domain public.background_jobs_max_attempts add constraint background_jobs_max_attempts_range
    check (value between 1 and 100);
-- squawk-ignore ban-alter-domain-with-add-constraint
alter domain public.background_jobs_timeout_seconds add constraint background_jobs_timeout_range
    check (value between 1 and 86400);
-- squawk-ignore ban-alter-domain-with-add-constraint
alter domain public.background_jobs_payload add constraint background_jobs_payload_size
    check (pg_column_size(value) <= 262144);
-- squawk-ignore ban-alter-domain-with-add-constraint
alter domain public.background_jobs_result add constraint background_jobs_result_size
    check (pg_column_size(value) <= 262144);
-- squawk-ignore ban-alter-domain-with-add-constraint
alter domain public.background_jobs_idempotency_key add constraint background_jobs_idempotency_key_length
    check (char_length(value) between 1 and 200);

-- (OR REPLACE: the view is ours, from 20260401140000; it was dropped above). The same
-- columns with the same types as before (job_type cast back from its domain).
create or replace view public.background_job_stats
with (security_invoker = true)
as
select j.job_type::text as job_type,
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

revoke all on table public.background_job_stats from public, anon, authenticated, service_role;
grant select on table public.background_job_stats to service_role;
comment on view public.background_job_stats is
    'Per job type: depth, ready, scheduled, retrying, running, expired leases, dead letters, completed, cancelled, oldest ready age, average duration in the last hour and enabled recurring schedules. Service only.';

comment on domain public.background_jobs_state is 'background_jobs.state: available, running, retryable, completed, dead_letter or cancelled';
comment on domain public.background_jobs_job_type is 'background_jobs.job_type: 1 to 200 characters of A-Z a-z 0-9 _ . : -';
comment on domain public.background_jobs_job_name is 'background_jobs.job_name: 1 to 200 characters';
comment on domain public.background_jobs_priority is 'background_jobs.priority: 1 (most urgent) to 10';
comment on domain public.background_jobs_max_attempts is 'background_jobs.max_attempts: 1 to 100';
comment on domain public.background_jobs_timeout_seconds is 'background_jobs.timeout_seconds: 1 to 86400';
comment on domain public.background_jobs_payload is 'background_jobs.payload: at most 262144 bytes';
comment on domain public.background_jobs_result is 'background_jobs.result: at most 262144 bytes';
comment on domain public.background_jobs_idempotency_key is 'background_jobs.idempotency_key: 1 to 200 characters';

COMMIT;
