-- platformdb 20260401300000 down: the exact reverse of plans_that_follow_the_table.
-- Restores claim_whatsapp_messages as 20260401210000 gave it (without the settings) and
-- takes the enable_seqscan setting off the other functions.
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
         where q.id in (select l.id from public.whatsapp_message_queue l
                         where l.status = 'processing' and l.locked_until < now()
                           and l.attempt > l.max_retries
                         for update skip locked)
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
     where q.id in (select l.id from public.whatsapp_message_queue l
                     where l.status = 'processing' and l.locked_until < now()
                     for update skip locked);

    return query
    with c as (
        select q.id from public.whatsapp_message_queue q
         where q.status = 'pending' and q.scheduled_at <= now()
         order by q.priority, q.scheduled_at, q.id
         limit p_limit
           for update skip locked
    ), u as (
        update public.whatsapp_message_queue q
           set status = 'processing',
               attempt = q.attempt + 1,
               locked_until = now() + pg_catalog.make_interval(secs => p_lease_seconds),
               locked_by = p_worker_id,
               attempted_at = now(),
               updated_at = now()
          from c
         where q.id = c.id
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

alter function public.apply_whatsapp_status(text, text, timestamptz, jsonb, jsonb, jsonb) reset enable_seqscan;
alter function public.enqueue_whatsapp_message(text, text, jsonb, integer, text, timestamptz, integer, text, text, text) reset enable_seqscan;
alter function public.mark_whatsapp_message_sent(uuid, text) reset enable_seqscan;
alter function public.mark_whatsapp_message_failed(uuid, text, boolean, integer, jsonb) reset enable_seqscan;
alter function public.release_whatsapp_message(uuid) reset enable_seqscan;
alter function public.defer_whatsapp_message(uuid, integer) reset enable_seqscan;
alter function public.cancel_whatsapp_message(uuid) reset enable_seqscan;
alter function public.record_whatsapp_inbound_message(text, text, text, jsonb, timestamptz, text, text, text, integer, jsonb) reset enable_seqscan;
alter function public.mark_whatsapp_inbound_handled(uuid) reset enable_seqscan;
alter function public.update_whatsapp_session_activity(text, boolean, text, jsonb, text, interval, text) reset enable_seqscan;
alter function public.set_whatsapp_session_status(text, text, text) reset enable_seqscan;
alter function public.link_whatsapp_session_user(text, uuid) reset enable_seqscan;
alter function public.get_cache(text, text) reset enable_seqscan;
alter function public.set_cache(text, jsonb, integer, text, text[]) reset enable_seqscan;
alter function public.delete_cache(text) reset enable_seqscan;
alter function public.invalidate_cache_by_tag(text) reset enable_seqscan;
alter function public.find_nearby_locations(double precision, double precision, double precision, text, integer) reset enable_seqscan;
alter function public.get_cached_route(double precision, double precision, double precision, double precision, integer, integer) reset enable_seqscan;

COMMIT;
