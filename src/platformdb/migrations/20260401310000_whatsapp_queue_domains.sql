-- platformdb 20260401310000: the WhatsApp outbound queue's one-column checks on domains
-- Same signatures, same checks, same errors, same guarantees; less work per statement. As
-- 20260401280000 and 290000 did for message_queue and the event store: PostgreSQL prepares a
-- table's CHECK constraints anew for every INSERT or UPDATE statement that writes a row
-- (read back from their stored form, simplified and compiled), and whatsapp_message_queue
-- had 19; a message's life is one INSERT and four or more single-row UPDATEs (claim, sent,
-- delivered, read), each paying for all 19 (docs/benchmarks.md, "WhatsApp outbound").
-- A domain's checks are compiled once per connection, and run only on the columns a
-- statement assigns. So:
-- - recipient_phone, message_type, payload, priority, status, whatsapp_message_id,
--   correlation_id, idempotency_key, locked_by, recipient_user_id and reply_to_message_id
--   move onto domains over the same types that carry the same checks under the same names
--   (the same values refused, SQLSTATE 23514, the same constraint name);
-- - whatsapp_message_queue_pricing_lengths (one check over five columns, each tested on its
--   own) becomes that name on two domains: pricing_category, pricing_model, pricing_type and
--   conversation_origin (at most 64 characters) and conversation_id (at most 256);
-- - the 7 checks that tie two or more columns together stay on the table.
-- How the columns change type: onto the domains while these have no checks yet, a catalog
-- change (no table rewrite); the indexes on those columns are rebuilt in this transaction
-- (time in proportion to the queue; senders wait for it). The domains then get their
-- checks, validated by one scan. The two views that read changed columns
-- (whatsapp_queue_stats, whatsapp_message_costs) are recreated as they were, the same column
-- types. claim_whatsapp_messages returns the columns with the types it declares, as before
-- (PL/pgSQL's RETURN QUERY does not convert a domain to its base type on its own).
-- The down file restores the table checks, the column types and the previous function.
BEGIN;

-- ---------------------------------------------------------------------------------------
-- guard: the names this file creates must be free
-- ---------------------------------------------------------------------------------------
select public.platformdb_assert_names_free(array[
    'whatsapp_message_queue_recipient_phone',
    'whatsapp_message_queue_message_type',
    'whatsapp_message_queue_payload',
    'whatsapp_message_queue_priority',
    'whatsapp_message_queue_status',
    'whatsapp_message_queue_whatsapp_message_id',
    'whatsapp_message_queue_correlation_id',
    'whatsapp_message_queue_idempotency',
    'whatsapp_message_queue_locked_by',
    'whatsapp_message_queue_recipient_user_id',
    'whatsapp_message_queue_reply_to_message_id',
    'whatsapp_message_queue_pricing_text',
    'whatsapp_message_queue_conversation_id'
]);

-- ---------------------------------------------------------------------------------------
-- domains (checks added below, after the columns moved onto them)
-- ---------------------------------------------------------------------------------------
create domain public.whatsapp_message_queue_recipient_phone as text;
create domain public.whatsapp_message_queue_message_type as text;
create domain public.whatsapp_message_queue_payload as jsonb;
create domain public.whatsapp_message_queue_priority as integer;
create domain public.whatsapp_message_queue_status as text;
create domain public.whatsapp_message_queue_whatsapp_message_id as text;
create domain public.whatsapp_message_queue_correlation_id as text;
create domain public.whatsapp_message_queue_idempotency as text;
create domain public.whatsapp_message_queue_locked_by as text;
create domain public.whatsapp_message_queue_recipient_user_id as text;
create domain public.whatsapp_message_queue_reply_to_message_id as text;
create domain public.whatsapp_message_queue_pricing_text as text;
create domain public.whatsapp_message_queue_conversation_id as text;

-- ---------------------------------------------------------------------------------------
-- the table: its one-column checks go, its columns move onto the domains
-- ---------------------------------------------------------------------------------------
-- The views read columns whose type changes; they are recreated below as they were.
-- squawk-ignore ban-drop-view
drop view public.whatsapp_queue_stats;
-- squawk-ignore ban-drop-view
drop view public.whatsapp_message_costs;

-- Each check leaves the table only to come back, under its name, on the column's domain
-- below, in this transaction: no row is ever unchecked.
-- squawk-ignore ban-drop-constraint
alter table public.whatsapp_message_queue drop constraint whatsapp_message_queue_recipient_e164;
-- squawk-ignore ban-drop-constraint
alter table public.whatsapp_message_queue drop constraint whatsapp_message_queue_type_valid;
-- squawk-ignore ban-drop-constraint
alter table public.whatsapp_message_queue drop constraint whatsapp_message_queue_payload_object;
-- squawk-ignore ban-drop-constraint
alter table public.whatsapp_message_queue drop constraint whatsapp_message_queue_priority_range;
-- squawk-ignore ban-drop-constraint
alter table public.whatsapp_message_queue drop constraint whatsapp_message_queue_status_valid;
-- squawk-ignore ban-drop-constraint
alter table public.whatsapp_message_queue drop constraint whatsapp_message_queue_wa_id_length;
-- squawk-ignore ban-drop-constraint
alter table public.whatsapp_message_queue drop constraint whatsapp_message_queue_correlation_length;
-- squawk-ignore ban-drop-constraint
alter table public.whatsapp_message_queue drop constraint whatsapp_message_queue_idempotency_length;
-- squawk-ignore ban-drop-constraint
alter table public.whatsapp_message_queue drop constraint whatsapp_message_queue_locked_by_length;
-- squawk-ignore ban-drop-constraint
alter table public.whatsapp_message_queue drop constraint whatsapp_message_queue_recipient_user_id_format;
-- squawk-ignore ban-drop-constraint
alter table public.whatsapp_message_queue drop constraint whatsapp_message_queue_reply_to_length;
-- squawk-ignore ban-drop-constraint
alter table public.whatsapp_message_queue drop constraint whatsapp_message_queue_pricing_lengths;

-- Same base types, domains without checks yet: a catalog change, no table rewrite (the
-- indexes on these columns are rebuilt, once: one statement).
alter table public.whatsapp_message_queue
    -- squawk-ignore changing-column-type
    alter column recipient_phone type public.whatsapp_message_queue_recipient_phone,
    -- squawk-ignore changing-column-type
    alter column message_type type public.whatsapp_message_queue_message_type,
    -- squawk-ignore changing-column-type
    alter column payload type public.whatsapp_message_queue_payload,
    -- squawk-ignore changing-column-type
    alter column priority type public.whatsapp_message_queue_priority,
    -- squawk-ignore changing-column-type
    alter column status type public.whatsapp_message_queue_status,
    -- squawk-ignore changing-column-type
    alter column whatsapp_message_id type public.whatsapp_message_queue_whatsapp_message_id,
    -- squawk-ignore changing-column-type
    alter column correlation_id type public.whatsapp_message_queue_correlation_id,
    -- squawk-ignore changing-column-type
    alter column idempotency_key type public.whatsapp_message_queue_idempotency,
    -- squawk-ignore changing-column-type
    alter column locked_by type public.whatsapp_message_queue_locked_by,
    -- squawk-ignore changing-column-type
    alter column recipient_user_id type public.whatsapp_message_queue_recipient_user_id,
    -- squawk-ignore changing-column-type
    alter column reply_to_message_id type public.whatsapp_message_queue_reply_to_message_id,
    -- squawk-ignore changing-column-type
    alter column pricing_category type public.whatsapp_message_queue_pricing_text,
    -- squawk-ignore changing-column-type
    alter column pricing_model type public.whatsapp_message_queue_pricing_text,
    -- squawk-ignore changing-column-type
    alter column pricing_type type public.whatsapp_message_queue_pricing_text,
    -- squawk-ignore changing-column-type
    alter column conversation_origin type public.whatsapp_message_queue_pricing_text,
    -- squawk-ignore changing-column-type
    alter column conversation_id type public.whatsapp_message_queue_conversation_id;

-- The checks, on the domains: compiled once per connection (the reason for this file).
-- Validated by one scan of the columns that use them.
-- squawk-ignore ban-alter-domain-with-add-constraint
alter domain public.whatsapp_message_queue_recipient_phone add constraint whatsapp_message_queue_recipient_e164
    check (value ~ '^\+[1-9][0-9]{6,14}$');
-- squawk-ignore ban-alter-domain-with-add-constraint
alter domain public.whatsapp_message_queue_message_type add constraint whatsapp_message_queue_type_valid
    check (value in ('text', 'template', 'media', 'interactive', 'location', 'reaction'));
-- squawk-ignore ban-alter-domain-with-add-constraint
alter domain public.whatsapp_message_queue_payload add constraint whatsapp_message_queue_payload_object
    check (jsonb_typeof(value) = 'object' and pg_column_size(value) <= 65536);
-- squawk-ignore ban-alter-domain-with-add-constraint
alter domain public.whatsapp_message_queue_priority add constraint whatsapp_message_queue_priority_range
    check (value between 1 and 10);
-- squawk-ignore ban-alter-domain-with-add-constraint
alter domain public.whatsapp_message_queue_status add constraint whatsapp_message_queue_status_valid
    check (value in ('pending', 'processing', 'sent', 'delivered', 'read', 'failed', 'cancelled'));
-- squawk-ignore ban-alter-domain-with-add-constraint
alter domain public.whatsapp_message_queue_whatsapp_message_id add constraint whatsapp_message_queue_wa_id_length
    check (char_length(value) between 1 and 256);
-- squawk-ignore ban-alter-domain-with-add-constraint
alter domain public.whatsapp_message_queue_correlation_id add constraint whatsapp_message_queue_correlation_length
    check (char_length(value) <= 200);
-- squawk-ignore ban-alter-domain-with-add-constraint
alter domain public.whatsapp_message_queue_idempotency add constraint whatsapp_message_queue_idempotency_length
    check (char_length(value) between 1 and 200);
-- squawk-ignore ban-alter-domain-with-add-constraint
alter domain public.whatsapp_message_queue_locked_by add constraint whatsapp_message_queue_locked_by_length
    check (char_length(value) <= 200);
-- squawk-ignore ban-alter-domain-with-add-constraint
alter domain public.whatsapp_message_queue_recipient_user_id add constraint whatsapp_message_queue_recipient_user_id_format
    check (value ~ '^[A-Z]{2}\.(ENT\.)?[A-Za-z0-9]{1,128}$');
-- squawk-ignore ban-alter-domain-with-add-constraint
alter domain public.whatsapp_message_queue_reply_to_message_id add constraint whatsapp_message_queue_reply_to_length
    check (char_length(value) between 1 and 256);
-- squawk-ignore ban-alter-domain-with-add-constraint
alter domain public.whatsapp_message_queue_pricing_text add constraint whatsapp_message_queue_pricing_lengths
    check (char_length(value) <= 64);
-- squawk-ignore ban-alter-domain-with-add-constraint
alter domain public.whatsapp_message_queue_conversation_id add constraint whatsapp_message_queue_pricing_lengths
    check (char_length(value) <= 256);

-- (OR REPLACE: the views are ours, from 20260401110000 and 20260401210000; they were dropped
-- above). The same columns with the same types as before.
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

-- ---------------------------------------------------------------------------------------
-- the claim returns the columns with the types it declares (body as 20260401300000 gave it
-- but for the casts in its last SELECT)
-- ---------------------------------------------------------------------------------------
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
    select u.id, u.session_id, u.recipient_phone::text, u.message_type::text, u.payload::jsonb,
           u.priority::integer, u.attempt, u.max_retries, u.correlation_id::text, u.scheduled_at,
           u.locked_until, u.recipient_user_id::text, u.reply_to_message_id::text
      from u
     order by u.priority, u.scheduled_at, u.id;
end
$$;

revoke all on function public.claim_whatsapp_messages(integer, integer, text)
    from public, anon, authenticated, service_role;
grant execute on function public.claim_whatsapp_messages(integer, integer, text) to service_role;
comment on function public.claim_whatsapp_messages(integer, integer, text) is
    'Claims up to p_limit due messages (priority then schedule order) with FOR UPDATE SKIP LOCKED, leasing them for p_lease_seconds: two claimers never get the same message, and a message whose lease runs out is claimable again (or failed, when that was its last allowed attempt). Returns the recipient''s phone and business-scoped user id, and the message replied to. Service only.';

comment on domain public.whatsapp_message_queue_recipient_phone is 'whatsapp_message_queue.recipient_phone: an E.164 phone number (+ and 7 to 15 digits)';
comment on domain public.whatsapp_message_queue_message_type is 'whatsapp_message_queue.message_type: text, template, media, interactive, location or reaction';
comment on domain public.whatsapp_message_queue_payload is 'whatsapp_message_queue.payload: a JSON object of at most 65536 bytes';
comment on domain public.whatsapp_message_queue_priority is 'whatsapp_message_queue.priority: 1 (most urgent) to 10';
comment on domain public.whatsapp_message_queue_status is 'whatsapp_message_queue.status: pending, processing, sent, delivered, read, failed or cancelled';
comment on domain public.whatsapp_message_queue_whatsapp_message_id is 'whatsapp_message_queue.whatsapp_message_id: 1 to 256 characters';
comment on domain public.whatsapp_message_queue_correlation_id is 'whatsapp_message_queue.correlation_id: at most 200 characters';
comment on domain public.whatsapp_message_queue_idempotency is 'whatsapp_message_queue.idempotency_key: 1 to 200 characters';
comment on domain public.whatsapp_message_queue_locked_by is 'whatsapp_message_queue.locked_by: at most 200 characters';
comment on domain public.whatsapp_message_queue_recipient_user_id is 'whatsapp_message_queue.recipient_user_id: a business-scoped user id (CC.xxx or CC.ENT.xxx)';
comment on domain public.whatsapp_message_queue_reply_to_message_id is 'whatsapp_message_queue.reply_to_message_id: 1 to 256 characters';
comment on domain public.whatsapp_message_queue_pricing_text is 'whatsapp_message_queue.pricing_category, whatsapp_message_queue.pricing_model, whatsapp_message_queue.pricing_type, whatsapp_message_queue.conversation_origin: at most 64 characters';
comment on domain public.whatsapp_message_queue_conversation_id is 'whatsapp_message_queue.conversation_id: at most 256 characters';

-- the column's comment had not followed 20260401210000, which added reactions
comment on column public.whatsapp_message_queue.message_type is
    'text, template, media, interactive, location or reaction.';

COMMIT;
