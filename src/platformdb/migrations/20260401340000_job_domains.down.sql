-- platformdb 20260401340000 down: the exact reverse of job_domains.
-- Restores the table checks of background_jobs (validated, as they were) and its columns'
-- types, drops the domains, and background_job_stats as 20260401140000 made it.
BEGIN;

-- platformdb-lint: allow additive-only (the up file dropped and recreated this view around the column types: this does the same back)
-- squawk-ignore ban-drop-view
drop view public.background_job_stats;

alter table public.background_jobs
    -- squawk-ignore changing-column-type
    alter column state type text,
    -- squawk-ignore changing-column-type
    alter column job_type type text,
    -- squawk-ignore changing-column-type
    alter column job_name type text,
    -- squawk-ignore changing-column-type
    alter column priority type smallint,
    -- squawk-ignore changing-column-type
    alter column max_attempts type smallint,
    -- squawk-ignore changing-column-type
    alter column timeout_seconds type integer,
    -- squawk-ignore changing-column-type
    alter column payload type jsonb,
    -- squawk-ignore changing-column-type
    alter column result type jsonb,
    -- squawk-ignore changing-column-type
    alter column idempotency_key type text;
-- the checks back on the table, validated as they were (a scan)
-- squawk-ignore constraint-missing-not-valid
alter table public.background_jobs add constraint background_jobs_state_valid
    check (state in ('available', 'running', 'retryable', 'completed', 'dead_letter', 'cancelled'));
-- squawk-ignore constraint-missing-not-valid
alter table public.background_jobs add constraint background_jobs_job_type_format
    check (job_type ~ '^[A-Za-z0-9_.:-]{1,200}$');
-- squawk-ignore constraint-missing-not-valid
alter table public.background_jobs add constraint background_jobs_job_name_length
    check (char_length(job_name) between 1 and 200);
-- squawk-ignore constraint-missing-not-valid
alter table public.background_jobs add constraint background_jobs_priority_range
    check (priority between 1 and 10);
-- squawk-ignore constraint-missing-not-valid
alter table public.background_jobs add constraint background_jobs_max_attempts_range
    check (max_attempts between 1 and 100);
-- squawk-ignore constraint-missing-not-valid
alter table public.background_jobs add constraint background_jobs_timeout_range
    check (timeout_seconds between 1 and 86400);
-- squawk-ignore constraint-missing-not-valid
alter table public.background_jobs add constraint background_jobs_payload_size
    check (pg_column_size(payload) <= 262144);
-- squawk-ignore constraint-missing-not-valid
alter table public.background_jobs add constraint background_jobs_result_size
    check (result is null or pg_column_size(result) <= 262144);
-- squawk-ignore constraint-missing-not-valid
alter table public.background_jobs add constraint background_jobs_idempotency_key_length
    check (idempotency_key is null or char_length(idempotency_key) between 1 and 200);

drop domain public.background_jobs_state;
drop domain public.background_jobs_job_type;
drop domain public.background_jobs_job_name;
drop domain public.background_jobs_priority;
drop domain public.background_jobs_max_attempts;
drop domain public.background_jobs_timeout_seconds;
drop domain public.background_jobs_payload;
drop domain public.background_jobs_result;
drop domain public.background_jobs_idempotency_key;

create or replace view public.background_job_stats
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

revoke all on table public.background_job_stats from public, anon, authenticated, service_role;
grant select on table public.background_job_stats to service_role;
comment on view public.background_job_stats is
    'Per job type: depth, ready, scheduled, retrying, running, expired leases, dead letters, completed, cancelled, oldest ready age, average duration in the last hour and enabled recurring schedules. Service only.';

COMMIT;
