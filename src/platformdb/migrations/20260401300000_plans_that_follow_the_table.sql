-- platformdb 20260401300000: plans that follow the table, for the WhatsApp, cache and geo paths
-- Same signatures, same behaviour; plans that stay right as a table fills.
-- PL/pgSQL keeps one generic plan per statement and connection once it looks no dearer than
-- planning each call. Made while a table was empty and analyzed so (a new deployment, a
-- drained outbound queue, a cleared cache), that plan scans the whole table, for the
-- connection's life or until the next ANALYZE of the table invalidates it (autovacuum's,
-- once enough rows changed; never inside one long transaction). Measured on the functions as
-- they were, with the table analyzed empty, 7 warm-up calls, then the table filled:
-- - claim_whatsapp_messages: its two lease sweeps became a nested loop of two whole-table
--   scans (quadratic): 3 s per claim at 3,000 rows, over 10 minutes at 50,000 (the sender's
--   claim loop stops); after this file 0.9 ms at 50,000;
-- - apply_whatsapp_status, enqueue_whatsapp_message (with a key), record_whatsapp_inbound_message,
--   update_whatsapp_session_activity, get_cache, delete_cache, invalidate_cache_by_tag and
--   find_nearby_locations: a whole-table scan per call instead of one index lookup (at 20,000
--   rows 1 to 5 ms a call, 22 to 40 ms a search; in proportion to the table beyond).
-- So: claim_whatsapp_messages updates the rows it picks through the primary key ("id =
-- any(array of the picked)") on one generic plan made without sequential or bitmap scans (as
-- claim_messages since 20260401280000), and the functions of these paths that find rows by
-- key or by index plan without sequential scans. tests/db/test_plans.py proves each from
-- auto_explain after the table filled.
-- The down file restores claim_whatsapp_messages as 20260401210000 gave it and the settings.
BEGIN;

create or replace function public.claim_whatsapp_messages(
    p_limit integer default 50,
    p_lease_seconds integer default 60,
    p_worker_id text default null
)
returns table (
    id uuid,
    session_id uuid,
    recipient_phone text,
    message_type text,
    payload jsonb,
    priority integer,
    attempt integer,
    max_retries integer,
    correlation_id text,
    scheduled_at timestamptz,
    locked_until timestamptz,
    recipient_user_id text,
    reply_to_message_id text
)
language plpgsql
set search_path = ''
-- one generic plan, made without sequential or bitmap scans: whatever the table held when it
-- was made, it reads the lease index, the claim index and the primary key
set plan_cache_mode = force_generic_plan
set enable_seqscan = off
set enable_bitmapscan = off
as $$
#variable_conflict use_column
begin
    if p_limit is null or p_lease_seconds is null then
        raise exception '% must not be null',
            case when p_limit is null then 'p_limit' else 'p_lease_seconds' end
            using errcode = '22004';
    end if;
    if p_limit not between 1 and 1000 then
        raise exception 'p_limit must be between 1 and 1000, got %', p_limit using errcode = '22003';
    end if;
    if p_lease_seconds not between 1 and 3600 then
        raise exception 'p_lease_seconds must be between 1 and 3600, got %', p_lease_seconds
            using errcode = '22003';
    end if;
    if p_worker_id is not null and char_length(p_worker_id) > 200 then
        raise exception 'p_worker_id must be at most 200 characters' using errcode = '22023';
    end if;

    -- a message whose lease ran out on its last allowed attempt is given up: a sender that
    -- keeps dying on it must not hold the queue forever
    with dead as (
        update public.whatsapp_message_queue q
           set status = 'failed', failed_at = now(), locked_until = null, updated_at = now(),
               last_error = 'lease expired on attempt ' || q.attempt || ' (the sender stopped responding)',
               errors = pg_catalog.array_append(q.errors, pg_catalog.jsonb_build_object(
                   'at', now(), 'attempt', q.attempt, 'error', 'lease expired', 'retryable', false))
         where q.id = any (array(
            select l.id from public.whatsapp_message_queue l
             where l.status = 'processing' and l.locked_until < now()
               and l.attempt > l.max_retries
             for update skip locked))
        returning q.session_id
    )
    update public.whatsapp_sessions s
       set error_count = s.error_count + d.n, updated_at = now()
      from (select dead.session_id, count(*)::integer as n from dead
             where dead.session_id is not null group by dead.session_id) d
     where s.id = d.session_id;

    -- other expired leases go back to pending (keeping their place in the order)
    update public.whatsapp_message_queue q
       set status = 'pending', locked_until = null, locked_by = null, updated_at = now()
     where q.id = any (array(
        select l.id from public.whatsapp_message_queue l
         where l.status = 'processing' and l.locked_until < now()
         for update skip locked));

    -- the picked rows' ids, locked in claim order, then the update of those rows through the
    -- primary key ("id = any(array of the picked)", as for the two updates above)
    return query
    with u as (
        update public.whatsapp_message_queue q
           set status = 'processing',
               attempt = q.attempt + 1,
               locked_until = now() + pg_catalog.make_interval(secs => p_lease_seconds),
               locked_by = p_worker_id,
               attempted_at = now(),
               updated_at = now()
         where q.id = any (array(
            select c.id from public.whatsapp_message_queue c
             where c.status = 'pending' and c.scheduled_at <= now()
             order by c.priority, c.scheduled_at, c.id
             limit p_limit
             for update skip locked))
        returning q.id, q.session_id, q.recipient_phone, q.message_type, q.payload, q.priority,
                  q.attempt, q.max_retries, q.correlation_id, q.scheduled_at, q.locked_until,
                  q.recipient_user_id, q.reply_to_message_id
    )
    select u.id, u.session_id, u.recipient_phone, u.message_type, u.payload, u.priority,
           u.attempt, u.max_retries, u.correlation_id, u.scheduled_at, u.locked_until,
           u.recipient_user_id, u.reply_to_message_id
      from u
     order by u.priority, u.scheduled_at, u.id;
end
$$;


revoke all on function public.claim_whatsapp_messages(integer, integer, text)
    from public, anon, authenticated, service_role;
grant execute on function public.claim_whatsapp_messages(integer, integer, text) to service_role;
comment on function public.claim_whatsapp_messages(integer, integer, text) is
    'Claims up to p_limit due messages (priority then schedule order) with FOR UPDATE SKIP LOCKED, leasing them for p_lease_seconds: two claimers never get the same message, and a message whose lease runs out is claimable again (or failed, when that was its last allowed attempt). Returns the recipient''s phone and business-scoped user id, and the message replied to. Service only.';

-- the functions of these paths that find rows by key or by index: no sequential scan in the
-- plans they keep (a table with no index for a statement is still read whole)
alter function public.apply_whatsapp_status(text, text, timestamptz, jsonb, jsonb, jsonb) set enable_seqscan = off;
alter function public.enqueue_whatsapp_message(text, text, jsonb, integer, text, timestamptz, integer, text, text, text) set enable_seqscan = off;
alter function public.mark_whatsapp_message_sent(uuid, text) set enable_seqscan = off;
alter function public.mark_whatsapp_message_failed(uuid, text, boolean, integer, jsonb) set enable_seqscan = off;
alter function public.release_whatsapp_message(uuid) set enable_seqscan = off;
alter function public.defer_whatsapp_message(uuid, integer) set enable_seqscan = off;
alter function public.cancel_whatsapp_message(uuid) set enable_seqscan = off;
alter function public.record_whatsapp_inbound_message(text, text, text, jsonb, timestamptz, text, text, text, integer, jsonb) set enable_seqscan = off;
alter function public.mark_whatsapp_inbound_handled(uuid) set enable_seqscan = off;
alter function public.update_whatsapp_session_activity(text, boolean, text, jsonb, text, interval, text) set enable_seqscan = off;
alter function public.set_whatsapp_session_status(text, text, text) set enable_seqscan = off;
alter function public.link_whatsapp_session_user(text, uuid) set enable_seqscan = off;
alter function public.get_cache(text, text) set enable_seqscan = off;
alter function public.set_cache(text, jsonb, integer, text, text[]) set enable_seqscan = off;
alter function public.delete_cache(text) set enable_seqscan = off;
alter function public.invalidate_cache_by_tag(text) set enable_seqscan = off;
alter function public.find_nearby_locations(double precision, double precision, double precision, text, integer) set enable_seqscan = off;
alter function public.get_cached_route(double precision, double precision, double precision, double precision, integer, integer) set enable_seqscan = off;

COMMIT;
