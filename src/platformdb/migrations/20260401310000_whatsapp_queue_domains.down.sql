-- platformdb 20260401310000 down: the exact reverse of whatsapp_queue_domains.
-- Restores claim_whatsapp_messages as 20260401300000 gave it, the table checks of
-- whatsapp_message_queue (validated, as they were) and its columns' types; drops the domains.
BEGIN;

-- the views that read the columns are recreated below, as 20260401110000 and 20260401210000
-- made them
-- platformdb-lint: allow additive-only (the up file dropped and recreated these views around the column types: this does the same back)
-- squawk-ignore ban-drop-view
drop view public.whatsapp_queue_stats;
-- platformdb-lint: allow additive-only (as above)
-- squawk-ignore ban-drop-view
drop view public.whatsapp_message_costs;

alter table public.whatsapp_message_queue
    -- squawk-ignore changing-column-type
    alter column recipient_phone type text,
    -- squawk-ignore changing-column-type
    alter column message_type type text,
    -- squawk-ignore changing-column-type
    alter column payload type jsonb,
    -- squawk-ignore changing-column-type
    alter column priority type integer,
    -- squawk-ignore changing-column-type
    alter column status type text,
    -- squawk-ignore changing-column-type
    alter column whatsapp_message_id type text,
    -- squawk-ignore changing-column-type
    alter column correlation_id type text,
    -- squawk-ignore changing-column-type
    alter column idempotency_key type text,
    -- squawk-ignore changing-column-type
    alter column locked_by type text,
    -- squawk-ignore changing-column-type
    alter column recipient_user_id type text,
    -- squawk-ignore changing-column-type
    alter column reply_to_message_id type text,
    -- squawk-ignore changing-column-type
    alter column pricing_category type text,
    -- squawk-ignore changing-column-type
    alter column pricing_model type text,
    -- squawk-ignore changing-column-type
    alter column pricing_type type text,
    -- squawk-ignore changing-column-type
    alter column conversation_origin type text,
    -- squawk-ignore changing-column-type
    alter column conversation_id type text;
-- the checks back on the table, validated as they were (a scan)
-- squawk-ignore constraint-missing-not-valid
alter table public.whatsapp_message_queue add constraint whatsapp_message_queue_recipient_e164
    check (recipient_phone ~ '^\+[1-9][0-9]{6,14}$');
-- squawk-ignore constraint-missing-not-valid
alter table public.whatsapp_message_queue add constraint whatsapp_message_queue_type_valid
    check (message_type in ('text', 'template', 'media', 'interactive', 'location', 'reaction'));
-- squawk-ignore constraint-missing-not-valid
alter table public.whatsapp_message_queue add constraint whatsapp_message_queue_payload_object
    check (jsonb_typeof(payload) = 'object' and pg_column_size(payload) <= 65536);
-- squawk-ignore constraint-missing-not-valid
alter table public.whatsapp_message_queue add constraint whatsapp_message_queue_priority_range
    check (priority between 1 and 10);
-- squawk-ignore constraint-missing-not-valid
alter table public.whatsapp_message_queue add constraint whatsapp_message_queue_status_valid
    check (status in
        ('pending', 'processing', 'sent', 'delivered', 'read', 'failed', 'cancelled'));
-- squawk-ignore constraint-missing-not-valid
alter table public.whatsapp_message_queue add constraint whatsapp_message_queue_wa_id_length
    check (whatsapp_message_id is null or char_length(whatsapp_message_id) between 1 and 256);
-- squawk-ignore constraint-missing-not-valid
alter table public.whatsapp_message_queue add constraint whatsapp_message_queue_correlation_length
    check (correlation_id is null or char_length(correlation_id) <= 200);
-- squawk-ignore constraint-missing-not-valid
alter table public.whatsapp_message_queue add constraint whatsapp_message_queue_idempotency_length
    check (idempotency_key is null or char_length(idempotency_key) between 1 and 200);
-- squawk-ignore constraint-missing-not-valid
alter table public.whatsapp_message_queue add constraint whatsapp_message_queue_locked_by_length
    check (locked_by is null or char_length(locked_by) <= 200);
-- squawk-ignore constraint-missing-not-valid
alter table public.whatsapp_message_queue add constraint whatsapp_message_queue_recipient_user_id_format
    check (recipient_user_id is null
               or recipient_user_id ~ '^[A-Z]{2}\.(ENT\.)?[A-Za-z0-9]{1,128}$');
-- squawk-ignore constraint-missing-not-valid
alter table public.whatsapp_message_queue add constraint whatsapp_message_queue_reply_to_length
    check (reply_to_message_id is null or char_length(reply_to_message_id) between 1 and 256);
-- squawk-ignore constraint-missing-not-valid
alter table public.whatsapp_message_queue add constraint whatsapp_message_queue_pricing_lengths
    check (char_length(pricing_category) <= 64 and char_length(pricing_model) <= 64
               and char_length(pricing_type) <= 64 and char_length(conversation_id) <= 256
               and char_length(conversation_origin) <= 64);

drop domain public.whatsapp_message_queue_recipient_phone;
drop domain public.whatsapp_message_queue_message_type;
drop domain public.whatsapp_message_queue_payload;
drop domain public.whatsapp_message_queue_priority;
drop domain public.whatsapp_message_queue_status;
drop domain public.whatsapp_message_queue_whatsapp_message_id;
drop domain public.whatsapp_message_queue_correlation_id;
drop domain public.whatsapp_message_queue_idempotency;
drop domain public.whatsapp_message_queue_locked_by;
drop domain public.whatsapp_message_queue_recipient_user_id;
drop domain public.whatsapp_message_queue_reply_to_message_id;
drop domain public.whatsapp_message_queue_pricing_text;
drop domain public.whatsapp_message_queue_conversation_id;

create or replace view public.whatsapp_queue_stats
with (security_invoker = true)
as
select count(*) filter (where q.status = 'pending' and q.scheduled_at <= now()) as depth,
       count(*) filter (where q.status = 'pending' and q.scheduled_at > now()) as scheduled,
       count(*) filter (where q.status = 'processing') as processing,
       count(*) filter (where q.status = 'processing' and q.locked_until < now()) as expired_leases,
       now() - min(q.scheduled_at) filter (where q.status = 'pending' and q.scheduled_at <= now())
           as oldest_pending_age,
       count(*) filter (where q.sent_at >= now() - interval '24 hours') as sent_24h,
       count(*) filter (where q.delivered_at >= now() - interval '24 hours') as delivered_24h,
       count(*) filter (where q.read_at >= now() - interval '24 hours') as read_24h,
       count(*) filter (where q.failed_at >= now() - interval '24 hours') as failed_24h,
       count(*) filter (where q.cancelled_at >= now() - interval '24 hours') as cancelled_24h,
       count(*) filter (where q.retry_count > 0 and q.status = 'pending') as retrying,
       (select count(*) from public.whatsapp_inbound_messages m
         where m.received_at >= now() - interval '24 hours') as inbound_24h,
       (select count(*) from public.whatsapp_inbound_messages m
         where m.handled_at is null) as inbound_unhandled
  from public.whatsapp_message_queue q;

create or replace view public.whatsapp_message_costs
with (security_invoker = true)
as
select (q.sent_at at time zone 'UTC')::date as day,
       coalesce(q.pricing_category, 'unknown') as category,
       count(*) as messages,
       count(*) filter (where q.pricing_billable) as billable,
       count(*) filter (where q.pricing_billable is null) as pricing_unknown,
       count(distinct q.conversation_id) as conversations
  from public.whatsapp_message_queue q
 where q.sent_at is not null
 group by 1, 2
 order by 1 desc, 2;

revoke all on table public.whatsapp_queue_stats, public.whatsapp_message_costs
    from public, anon, authenticated, service_role;
grant select on table public.whatsapp_queue_stats, public.whatsapp_message_costs to service_role;

comment on view public.whatsapp_queue_stats is
    'Outbound queue in one row: depth (pending and due), scheduled, processing, expired leases, oldest pending age, sent/delivered/read/failed/cancelled in the last 24 h, retrying, and inbound messages received in 24 h and not yet handled. Service only.';

comment on view public.whatsapp_message_costs is
    'Outbound messages per UTC day sent and pricing category (unknown until a status with pricing arrives): messages, billable, without pricing yet, conversations. Service only.';

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

comment on column public.whatsapp_message_queue.message_type is 'text, template, media, interactive or location.';

COMMIT;
