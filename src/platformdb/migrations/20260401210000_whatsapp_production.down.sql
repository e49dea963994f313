-- platformdb 20260401210000 down: the exact reverse of whatsapp_production.
-- Users known only by a business-scoped user id cannot be kept by the earlier schema (the
-- phone was required): their sessions, inbound and outbound messages are deleted first.
-- The restored NOT NULLs scan small tables inside the file's one transaction.
-- squawk-ignore-file adding-not-nullable-field
-- squawk-ignore-file constraint-missing-not-valid
BEGIN;

drop function public.monitoring_whatsapp_costs(interval, interval);
drop function public.monitoring_whatsapp_quarantine(integer);
drop view public.whatsapp_message_costs;
drop view public.whatsapp_quarantine_stats;
drop function public.record_whatsapp_inbound_message(text, text, text, jsonb, timestamptz, text, text, text, integer, jsonb);
drop function public.apply_whatsapp_status(text, text, timestamptz, jsonb, jsonb, jsonb);
-- platformdb-lint: allow additive-only (the up file dropped 20260401110000's and created this one, with recipient_user_id in its result)
drop function public.claim_whatsapp_messages(integer, integer, text);
drop function public.enqueue_whatsapp_message(text, text, jsonb, integer, text, timestamptz, integer, text, text, text);
drop function public.update_whatsapp_session_activity(text, boolean, text, jsonb, text, interval, text);
drop function public.defer_whatsapp_message(uuid, integer);
drop function public.whatsapp_check_template(jsonb);
drop function public.sync_whatsapp_templates(jsonb);
drop function public.settle_whatsapp_quarantine(uuid, text, text);
drop function public.quarantine_whatsapp_item(text, text, text, jsonb, text, jsonb);
drop table public.whatsapp_quarantine;
drop table public.whatsapp_templates;

delete from public.whatsapp_inbound_messages m where m.from_phone is null;
delete from public.whatsapp_message_queue q
 where q.recipient_phone is null or q.message_type = 'reaction';
delete from public.whatsapp_sessions s where s.phone_number is null;

drop index public.whatsapp_message_queue_sent_day_idx;
drop index public.whatsapp_message_queue_recipient_user_idx;
drop index public.whatsapp_inbound_messages_from_user_idx;
drop index public.whatsapp_sessions_business_user_id_key;

alter table public.whatsapp_status_backlog
    drop constraint whatsapp_status_backlog_pricing_size,
    drop column conversation,
    drop column pricing;
-- platformdb-lint: allow additive-only (the up file replaced 20260401110000's CHECK with one allowing reactions: this puts it back)
alter table public.whatsapp_message_queue
    drop constraint whatsapp_message_queue_type_valid;
alter table public.whatsapp_message_queue
    add constraint whatsapp_message_queue_type_valid
        check (message_type in ('text', 'template', 'media', 'interactive', 'location'));
alter table public.whatsapp_message_queue
    drop constraint whatsapp_message_queue_pricing_lengths,
    drop constraint whatsapp_message_queue_reply_to_length,
    drop constraint whatsapp_message_queue_recipient_user_id_format,
    drop constraint whatsapp_message_queue_recipient_known,
    drop column conversation_expires_at,
    drop column conversation_origin,
    drop column conversation_id,
    drop column pricing_type,
    drop column pricing_model,
    drop column pricing_category,
    drop column pricing_billable,
    drop column reply_to_message_id,
    drop column recipient_user_id,
    alter column recipient_phone set not null;
alter table public.whatsapp_inbound_messages
    drop constraint whatsapp_inbound_messages_original_bytes_positive,
    drop constraint whatsapp_inbound_messages_adjustments_array,
    drop constraint whatsapp_inbound_messages_from_user_id_format,
    drop constraint whatsapp_inbound_messages_sender_known,
    drop column adjustments,
    drop column original_bytes,
    drop column from_user_id,
    alter column from_phone set not null;
alter table public.whatsapp_sessions
    drop constraint whatsapp_sessions_window_after_inbound,
    drop constraint whatsapp_sessions_business_user_id_format,
    drop constraint whatsapp_sessions_identified,
    drop column service_window_ends_at,
    drop column last_inbound_at,
    drop column business_user_id,
    alter column phone_number set not null;

-- the functions as 20260401110000 created them
create or replace function public.whatsapp_validate_payload(p_message_type text, p_payload jsonb)
returns void
language plpgsql
immutable
set search_path = ''
as $$
declare
    v_kind text;
    v_lat numeric;
    v_lng numeric;
begin
    if p_message_type is null then
        raise exception 'p_message_type must not be null' using errcode = '22004';
    end if;
    if p_message_type not in ('text', 'template', 'media', 'interactive', 'location') then
        raise exception 'p_message_type: unknown message type %', p_message_type
            using errcode = '22023', hint = 'one of text, template, media, interactive, location';
    end if;
    if p_payload is null then
        raise exception 'p_message_payload must not be null' using errcode = '22004';
    end if;
    if jsonb_typeof(p_payload) <> 'object' then
        raise exception 'p_message_payload must be a JSON object' using errcode = '22023';
    end if;
    if pg_column_size(p_payload) > 65536 then
        raise exception 'p_message_payload is too large: % bytes, at most 65536',
            pg_column_size(p_payload) using errcode = '22023';
    end if;

    if p_message_type = 'text' then
        if jsonb_typeof(p_payload -> 'body') is distinct from 'string'
           or char_length(p_payload ->> 'body') not between 1 and 4096 then
            raise exception 'p_message_payload.body must be a string of 1 to 4096 characters for a text message'
                using errcode = '22023', hint = 'e.g. {"body": "Muraho!", "preview_url": false}';
        end if;
        if p_payload ? 'preview_url' and jsonb_typeof(p_payload -> 'preview_url') <> 'boolean' then
            raise exception 'p_message_payload.preview_url must be a boolean' using errcode = '22023';
        end if;
    elsif p_message_type = 'template' then
        if jsonb_typeof(p_payload -> 'name') is distinct from 'string'
           or char_length(p_payload ->> 'name') not between 1 and 512 then
            raise exception 'p_message_payload.name must be the template name for a template message'
                using errcode = '22023',
                      hint = 'e.g. {"name": "ride_confirmed", "language": {"code": "en_US"}}';
        end if;
        if jsonb_typeof(p_payload -> 'language') is distinct from 'object'
           or jsonb_typeof(p_payload -> 'language' -> 'code') is distinct from 'string' then
            raise exception 'p_message_payload.language must be an object with a code, e.g. {"code": "en_US"}'
                using errcode = '22023';
        end if;
        if p_payload ? 'components' and jsonb_typeof(p_payload -> 'components') <> 'array' then
            raise exception 'p_message_payload.components must be an array' using errcode = '22023';
        end if;
    elsif p_message_type = 'media' then
        v_kind := p_payload ->> 'media_type';
        if v_kind is null or v_kind not in ('image', 'audio', 'video', 'document', 'sticker') then
            raise exception 'p_message_payload.media_type must be one of image, audio, video, document, sticker'
                using errcode = '22023',
                      hint = 'e.g. {"media_type": "image", "link": "https://…/receipt.png"}';
        end if;
        if (p_payload ? 'id') = (p_payload ? 'link') then
            raise exception 'p_message_payload must have exactly one of id (uploaded media) or link'
                using errcode = '22023';
        end if;
        if p_payload ? 'link' and (jsonb_typeof(p_payload -> 'link') <> 'string'
                                   or (p_payload ->> 'link') !~ '^https?://') then
            raise exception 'p_message_payload.link must be an http(s) URL' using errcode = '22023';
        end if;
        if p_payload ? 'id' and jsonb_typeof(p_payload -> 'id') <> 'string' then
            raise exception 'p_message_payload.id must be a string' using errcode = '22023';
        end if;
        if p_payload ? 'caption' and (jsonb_typeof(p_payload -> 'caption') <> 'string'
                                      or char_length(p_payload ->> 'caption') > 1024) then
            raise exception 'p_message_payload.caption must be a string of at most 1024 characters'
                using errcode = '22023';
        end if;
    elsif p_message_type = 'interactive' then
        if (p_payload ->> 'type') is null or (p_payload ->> 'type') not in
            ('button', 'list', 'cta_url', 'product', 'product_list', 'catalog_message', 'flow',
             'location_request_message', 'address_message') then
            raise exception 'p_message_payload.type: unknown interactive type %',
                coalesce(p_payload ->> 'type', 'null')
                using errcode = '22023',
                      hint = 'button, list, cta_url, product, product_list, catalog_message, flow, location_request_message or address_message';
        end if;
        if jsonb_typeof(p_payload -> 'action') is distinct from 'object' then
            raise exception 'p_message_payload.action must be an object for an interactive message'
                using errcode = '22023';
        end if;
    else -- location
        if jsonb_typeof(p_payload -> 'latitude') is distinct from 'number'
           or jsonb_typeof(p_payload -> 'longitude') is distinct from 'number' then
            raise exception 'p_message_payload.latitude and .longitude must be numbers for a location message'
                using errcode = '22023', hint = 'e.g. {"latitude": -1.9441, "longitude": 30.0619}';
        end if;
        v_lat := (p_payload ->> 'latitude')::numeric;
        v_lng := (p_payload ->> 'longitude')::numeric;
        if v_lat not between -90 and 90 then
            raise exception 'p_message_payload.latitude must be between -90 and 90, got %', v_lat
                using errcode = '22003';
        end if;
        if v_lng not between -180 and 180 then
            raise exception 'p_message_payload.longitude must be between -180 and 180, got %', v_lng
                using errcode = '22003';
        end if;
    end if;
end
$$;

create function public.update_whatsapp_session_activity(
    p_phone_number text,
    p_increment_message_count boolean default true,
    p_conversation_state text default null,
    p_context jsonb default null,
    p_profile_name text default null,
    p_session_ttl interval default interval '24 hours'
)
returns uuid
language plpgsql
set search_path = ''
as $$
declare
    v_id uuid;
    v_inc integer;
begin
    if p_phone_number is null then
        raise exception 'p_phone_number must not be null' using errcode = '22004';
    end if;
    if p_phone_number !~ '^\+[1-9][0-9]{6,14}$' then
        raise exception 'p_phone_number must be an E.164 phone number, got %', p_phone_number
            using errcode = '22023', hint = 'a + then 7 to 15 digits, e.g. +250788123456';
    end if;
    if p_increment_message_count is null then
        raise exception 'p_increment_message_count must not be null' using errcode = '22004';
    end if;
    if p_conversation_state is not null
       and char_length(p_conversation_state) not between 1 and 100 then
        raise exception 'p_conversation_state must be 1 to 100 characters' using errcode = '22023';
    end if;
    if p_context is not null and jsonb_typeof(p_context) <> 'object' then
        raise exception 'p_context must be a JSON object' using errcode = '22023';
    end if;
    if p_context is not null and pg_column_size(p_context) > 16384 then
        raise exception 'p_context is too large: % bytes, at most 16384', pg_column_size(p_context)
            using errcode = '22023';
    end if;
    if p_profile_name is not null and char_length(p_profile_name) > 256 then
        raise exception 'p_profile_name must be at most 256 characters' using errcode = '22023';
    end if;
    if p_session_ttl is null or p_session_ttl < interval '1 minute'
       or p_session_ttl > interval '30 days' then
        raise exception 'p_session_ttl must be between 1 minute and 30 days' using errcode = '22023';
    end if;
    v_inc := case when p_increment_message_count then 1 else 0 end;

    -- one statement: concurrent first messages from a new number create one session
    insert into public.whatsapp_sessions as s
        (phone_number, message_count, conversation_state, context, profile_name,
         last_activity_at, expires_at)
    values (p_phone_number, v_inc, coalesce(p_conversation_state, 'idle'),
            coalesce(p_context, '{}'), p_profile_name, now(), now() + p_session_ttl)
    on conflict (phone_number) do update set
        message_count = s.message_count + v_inc,
        last_activity_at = greatest(s.last_activity_at, now()),
        expires_at = greatest(s.expires_at, now() + p_session_ttl),
        -- a user writing again comes back from expired/inactive; suspension is kept
        status = case when s.status in ('expired', 'inactive') then 'active' else s.status end,
        status_reason = case when s.status in ('expired', 'inactive') then null
                             else s.status_reason end,
        -- an expired session starts a new conversation with a new token
        session_token = case
            when s.status = 'expired' or (s.status in ('active', 'inactive') and s.expires_at <= now())
            then replace(pg_catalog.gen_random_uuid()::text || pg_catalog.gen_random_uuid()::text, '-', '')
            else s.session_token end,
        conversation_state = coalesce(p_conversation_state, case
            when s.status = 'expired' or (s.status in ('active', 'inactive') and s.expires_at <= now())
            then 'idle' else s.conversation_state end),
        context = case
            when s.status = 'expired' or (s.status in ('active', 'inactive') and s.expires_at <= now())
            then '{}'::jsonb else s.context end || coalesce(p_context, '{}'),
        profile_name = coalesce(p_profile_name, s.profile_name),
        updated_at = now()
    returning s.id into v_id;
    return v_id;
end
$$;

create function public.enqueue_whatsapp_message(
    p_recipient_phone text,
    p_message_type text,
    p_message_payload jsonb,
    p_priority integer default 5,
    p_correlation_id text default null,
    p_scheduled_at timestamptz default now(),
    p_max_retries integer default 5,
    p_idempotency_key text default null
)
returns uuid
language plpgsql
set search_path = ''
as $$
declare
    v_id uuid;
    v_existing record;
begin
    if p_recipient_phone is null then
        raise exception 'p_recipient_phone must not be null' using errcode = '22004';
    end if;
    if p_recipient_phone !~ '^\+[1-9][0-9]{6,14}$' then
        raise exception 'p_recipient_phone must be an E.164 phone number, got %', p_recipient_phone
            using errcode = '22023', hint = 'a + then 7 to 15 digits, e.g. +250788123456';
    end if;
    perform public.whatsapp_validate_payload(p_message_type, p_message_payload);
    if p_priority is null then
        raise exception 'p_priority must not be null' using errcode = '22004';
    end if;
    if p_priority not between 1 and 10 then
        raise exception 'p_priority must be between 1 (most urgent) and 10, got %', p_priority
            using errcode = '22003';
    end if;
    if p_max_retries is null or p_max_retries not between 0 and 20 then
        raise exception 'p_max_retries must be between 0 and 20' using errcode = '22003';
    end if;
    if p_correlation_id is not null and char_length(p_correlation_id) > 200 then
        raise exception 'p_correlation_id must be at most 200 characters' using errcode = '22023';
    end if;
    if p_idempotency_key is not null and char_length(p_idempotency_key) not between 1 and 200 then
        raise exception 'p_idempotency_key must be 1 to 200 characters' using errcode = '22023';
    end if;

    insert into public.whatsapp_message_queue
        (session_id, recipient_phone, message_type, payload, priority, correlation_id,
         scheduled_at, max_retries, idempotency_key)
    values ((select s.id from public.whatsapp_sessions s where s.phone_number = p_recipient_phone),
            p_recipient_phone, p_message_type, p_message_payload, p_priority,
            p_correlation_id, coalesce(p_scheduled_at, now()), p_max_retries, p_idempotency_key)
    on conflict (idempotency_key) where idempotency_key is not null do nothing
    returning id into v_id;

    if v_id is null then
        -- the key was used before: the same message returns the same id; another is an error
        select q.id, q.recipient_phone, q.message_type, q.payload into v_existing
          from public.whatsapp_message_queue q where q.idempotency_key = p_idempotency_key;
        if v_existing.recipient_phone <> p_recipient_phone
           or v_existing.message_type <> p_message_type
           or v_existing.payload <> p_message_payload then
            raise exception 'p_idempotency_key % was already used for a different message',
                p_idempotency_key using errcode = 'PD001';
        end if;
        return v_existing.id;
    end if;

    if coalesce(p_scheduled_at, now()) <= now() then
        perform pg_catalog.pg_notify('platformdb_whatsapp_outbound', '');
    end if;
    return v_id;
end
$$;

create function public.claim_whatsapp_messages(
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
    locked_until timestamptz
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
                  q.attempt, q.max_retries, q.correlation_id, q.scheduled_at, q.locked_until
    )
    select u.id, u.session_id, u.recipient_phone, u.message_type, u.payload, u.priority,
           u.attempt, u.max_retries, u.correlation_id, u.scheduled_at, u.locked_until
      from u
     order by u.priority, u.scheduled_at, u.id;
end
$$;

create function public.apply_whatsapp_status(
    p_whatsapp_message_id text,
    p_status text,
    p_timestamp timestamptz,
    p_error jsonb default null
)
returns boolean
language plpgsql
set search_path = ''
as $$
declare
    v_msg record;
    v_new_rank integer;
    v_cur_rank integer;
    v_error text;
begin
    if p_whatsapp_message_id is null or p_whatsapp_message_id = '' then
        raise exception 'p_whatsapp_message_id must not be empty' using errcode = '22004';
    end if;
    if char_length(p_whatsapp_message_id) > 256 then
        raise exception 'p_whatsapp_message_id must be at most 256 characters' using errcode = '22023';
    end if;
    if p_status is null then
        raise exception 'p_status must not be null' using errcode = '22004';
    end if;
    if p_status not in ('sent', 'delivered', 'read', 'failed') then
        raise exception 'p_status: unknown delivery status %', p_status
            using errcode = '22023', hint = 'one of sent, delivered, read, failed';
    end if;
    if p_timestamp is null then
        raise exception 'p_timestamp must not be null' using errcode = '22004';
    end if;
    if p_error is not null and (jsonb_typeof(p_error) not in ('object', 'array')
                                or pg_column_size(p_error) > 8192) then
        raise exception 'p_error must be a JSON object or array of at most 8192 bytes'
            using errcode = '22023';
    end if;

    select q.id, q.status, q.session_id into v_msg
      from public.whatsapp_message_queue q
     where q.whatsapp_message_id = p_whatsapp_message_id
       for update;
    if not found then
        -- not (yet) known: the sender may still be recording the id; kept for it
        insert into public.whatsapp_status_backlog (whatsapp_message_id, status, status_at, error)
        values (p_whatsapp_message_id, p_status, p_timestamp, p_error)
        on conflict (whatsapp_message_id, status) do nothing;
        return false;
    end if;

    if p_status = 'failed' then
        -- WhatsApp gave up after accepting the message; never after it was delivered
        if v_msg.status not in ('processing', 'sent') then
            return false;
        end if;
        v_error := coalesce(p_error ->> 'message', p_error ->> 'title',
                            p_error -> 0 ->> 'message', p_error -> 0 ->> 'title',
                            'failed (reported by WhatsApp)');
        update public.whatsapp_message_queue q
           set status = 'failed', failed_at = p_timestamp, locked_until = null,
               last_error = pg_catalog.left(v_error, 2000), wa_error = p_error,
               errors = pg_catalog.array_append(q.errors, pg_catalog.jsonb_build_object(
                   'at', p_timestamp, 'attempt', q.attempt, 'error', v_error,
                   'retryable', false, 'source', 'status', 'detail', p_error)),
               updated_at = now()
         where q.id = v_msg.id;
        if v_msg.session_id is not null then
            update public.whatsapp_sessions s
               set error_count = s.error_count + 1, updated_at = now()
             where s.id = v_msg.session_id;
        end if;
        return true;
    end if;

    -- sent → delivered → read: a status never moves backwards, a replay changes nothing
    v_new_rank := case p_status when 'sent' then 1 when 'delivered' then 2 else 3 end;
    v_cur_rank := case v_msg.status when 'sent' then 1 when 'delivered' then 2 when 'read' then 3
                                    when 'processing' then 0 else 99 end;
    if v_new_rank <= v_cur_rank then
        return false;
    end if;
    update public.whatsapp_message_queue q
       set status = p_status,
           sent_at = coalesce(q.sent_at, p_timestamp),
           delivered_at = case when v_new_rank >= 2 then coalesce(q.delivered_at, p_timestamp)
                               else q.delivered_at end,
           read_at = case when v_new_rank = 3 then p_timestamp else q.read_at end,
           locked_until = null,
           updated_at = now()
     where q.id = v_msg.id;
    return true;
end
$$;

create function public.record_whatsapp_inbound_message(
    p_whatsapp_message_id text,
    p_from_phone text,
    p_message_type text,
    p_payload jsonb,
    p_sent_at timestamptz default null,
    p_profile_name text default null,
    p_phone_number_id text default null
)
returns table (inbound_id uuid, session_id uuid, is_new boolean)
language plpgsql
set search_path = ''
as $$
#variable_conflict use_column
declare
    v_id uuid;
    v_session uuid;
    v_body text;
begin
    if p_whatsapp_message_id is null or p_whatsapp_message_id = '' then
        raise exception 'p_whatsapp_message_id must not be empty' using errcode = '22004';
    end if;
    if char_length(p_whatsapp_message_id) > 256 then
        raise exception 'p_whatsapp_message_id must be at most 256 characters' using errcode = '22023';
    end if;
    if p_from_phone is null then
        raise exception 'p_from_phone must not be null' using errcode = '22004';
    end if;
    if p_from_phone !~ '^\+[1-9][0-9]{6,14}$' then
        raise exception 'p_from_phone must be an E.164 phone number, got %', p_from_phone
            using errcode = '22023', hint = 'a + then 7 to 15 digits, e.g. +250788123456';
    end if;
    if p_message_type is null or p_message_type !~ '^[a-z_]{1,32}$' then
        raise exception 'p_message_type must be a WhatsApp message type such as text or image, got %',
            coalesce(p_message_type, 'null') using errcode = '22023';
    end if;
    if p_payload is null or jsonb_typeof(p_payload) <> 'object' then
        raise exception 'p_payload must be a JSON object (the message as WhatsApp sent it)'
            using errcode = '22023';
    end if;
    if pg_column_size(p_payload) > 65536 then
        raise exception 'p_payload is too large: % bytes, at most 65536', pg_column_size(p_payload)
            using errcode = '22023';
    end if;
    if p_profile_name is not null and char_length(p_profile_name) > 256 then
        raise exception 'p_profile_name must be at most 256 characters' using errcode = '22023';
    end if;

    v_body := pg_catalog.left(coalesce(
        p_payload -> 'text' ->> 'body',
        p_payload -> 'button' ->> 'text',
        p_payload -> 'interactive' -> 'button_reply' ->> 'title',
        p_payload -> 'interactive' -> 'list_reply' ->> 'title',
        p_payload -> p_message_type ->> 'caption',
        p_payload -> 'reaction' ->> 'emoji'), 4096);

    -- the wa message id is the idempotency key: a replayed webhook records nothing twice
    insert into public.whatsapp_inbound_messages as m
        (whatsapp_message_id, from_phone, phone_number_id, message_type, body, payload,
         profile_name, sent_at)
    values (p_whatsapp_message_id, p_from_phone, p_phone_number_id, p_message_type, v_body,
            p_payload, p_profile_name, p_sent_at)
    on conflict (whatsapp_message_id) do nothing
    returning m.id into v_id;

    if v_id is null then
        return query select m.id, m.session_id, false from public.whatsapp_inbound_messages m
                      where m.whatsapp_message_id = p_whatsapp_message_id;
        return;
    end if;

    v_session := public.update_whatsapp_session_activity(
        p_phone_number => p_from_phone,
        p_increment_message_count => true,
        p_context => pg_catalog.jsonb_build_object('last_inbound', pg_catalog.jsonb_build_object(
            'id', p_whatsapp_message_id, 'type', p_message_type,
            'at', coalesce(p_sent_at, now()))),
        p_profile_name => p_profile_name);
    update public.whatsapp_inbound_messages m set session_id = v_session where m.id = v_id;
    perform pg_catalog.pg_notify('platformdb_whatsapp_inbound', v_id::text);
    return query select v_id, v_session, true;
end
$$;

create or replace function public.mark_whatsapp_message_sent(p_message_id uuid, p_whatsapp_message_id text)
returns boolean
language plpgsql
set search_path = ''
as $$
declare
    v_msg record;
    v_status record;
begin
    if p_message_id is null then
        raise exception 'p_message_id must not be null' using errcode = '22004';
    end if;
    if p_whatsapp_message_id is null or p_whatsapp_message_id = '' then
        raise exception 'p_whatsapp_message_id must not be empty' using errcode = '22004';
    end if;
    if char_length(p_whatsapp_message_id) > 256 then
        raise exception 'p_whatsapp_message_id must be at most 256 characters' using errcode = '22023';
    end if;
    -- the usual case in one statement. pending: the lease ran out and was taken back, but
    -- nobody claimed it again yet; the message did go out, so that is what is recorded
    update public.whatsapp_message_queue q
       set status = 'sent', whatsapp_message_id = p_whatsapp_message_id, sent_at = now(),
           locked_until = null, last_error = null, updated_at = now()
     where q.id = p_message_id and q.status in ('processing', 'pending');
    if not found then
        select q.id, q.status, q.whatsapp_message_id into v_msg
          from public.whatsapp_message_queue q where q.id = p_message_id;
        if not found then
            raise exception 'p_message_id: no outbound WhatsApp message %', p_message_id
                using errcode = 'PD004';
        end if;
        if v_msg.status in ('sent', 'delivered', 'read') then
            if v_msg.whatsapp_message_id = p_whatsapp_message_id then
                return false; -- a replay of the same acknowledgement
            end if;
            raise exception 'p_message_id: message % was already sent as %', p_message_id,
                v_msg.whatsapp_message_id
                using errcode = 'PD005', hint = 'its lease expired and another sender delivered it';
        end if;
        raise exception 'p_message_id: message % is %, it cannot become sent', p_message_id,
            v_msg.status using errcode = 'PD002';
    end if;

    -- statuses that arrived before this acknowledgement
    if exists (select 1 from public.whatsapp_status_backlog b
                where b.whatsapp_message_id = p_whatsapp_message_id) then
        for v_status in
            select b.status, b.status_at, b.error from public.whatsapp_status_backlog b
             where b.whatsapp_message_id = p_whatsapp_message_id
             order by case b.status when 'sent' then 1 when 'delivered' then 2 when 'read' then 3
                                    else 4 end
        loop
            perform public.apply_whatsapp_status(p_whatsapp_message_id, v_status.status,
                                                 v_status.status_at, v_status.error);
        end loop;
        delete from public.whatsapp_status_backlog b
         where b.whatsapp_message_id = p_whatsapp_message_id;
    end if;
    return true;
end
$$;

revoke all on function
    public.update_whatsapp_session_activity(text, boolean, text, jsonb, text, interval),
    public.enqueue_whatsapp_message(text, text, jsonb, integer, text, timestamptz, integer, text),
    public.claim_whatsapp_messages(integer, integer, text),
    public.apply_whatsapp_status(text, text, timestamptz, jsonb),
    public.record_whatsapp_inbound_message(text, text, text, jsonb, timestamptz, text, text),
    public.mark_whatsapp_message_sent(uuid, text),
    public.whatsapp_validate_payload(text, jsonb)
    from public, anon, authenticated, service_role;
grant execute on function
    public.update_whatsapp_session_activity(text, boolean, text, jsonb, text, interval),
    public.enqueue_whatsapp_message(text, text, jsonb, integer, text, timestamptz, integer, text),
    public.claim_whatsapp_messages(integer, integer, text),
    public.apply_whatsapp_status(text, text, timestamptz, jsonb),
    public.record_whatsapp_inbound_message(text, text, text, jsonb, timestamptz, text, text),
    public.mark_whatsapp_message_sent(uuid, text),
    public.whatsapp_validate_payload(text, jsonb)
    to service_role;

comment on function public.update_whatsapp_session_activity(text, boolean, text, jsonb, text, interval) is
    'Records activity on the session of p_phone_number, creating it if needed: last_activity_at, message count (+1 unless p_increment_message_count is false), expiry pushed to now + p_session_ttl, optional conversation state, context merge and profile name. An expired or inactive session becomes active again (an expired one with a new token, idle state and empty context); a suspended one stays suspended. Returns the session id. Service only.';
comment on function public.enqueue_whatsapp_message(text, text, jsonb, integer, text, timestamptz, integer, text) is
    'Queues an outbound message and returns its id. Validates the E.164 recipient, the type and its payload, priority 1-10 (1 most urgent), max retries 0-20; an optional idempotency key returns the same id for the same message (PD001 for a different one). Wakes senders with NOTIFY platformdb_whatsapp_outbound. Service only.';
comment on function public.claim_whatsapp_messages(integer, integer, text) is
    'Claims up to p_limit due messages (priority then schedule order) with FOR UPDATE SKIP LOCKED, leasing them for p_lease_seconds: two claimers never get the same message, and a message whose lease runs out is claimable again (or failed, when that was its last allowed attempt). Service only.';
comment on function public.apply_whatsapp_status(text, text, timestamptz, jsonb) is
    'Applies a delivery status callback by wa message id, idempotently: sent → delivered → read never moves backwards (a late delivered after read changes nothing); failed only before delivery, with the error kept. Unknown ids wait in whatsapp_status_backlog. Returns true when the message changed. Service only.';
comment on function public.mark_whatsapp_message_sent(uuid, text) is
    'Records that WhatsApp accepted a claimed message under p_whatsapp_message_id, then applies statuses that arrived earlier. A replay with the same id returns false; PD005 when another sender already recorded a different id; PD002 when failed or cancelled. Service only.';
comment on function public.record_whatsapp_inbound_message(text, text, text, jsonb, timestamptz, text, text) is
    'Records a message a user sent (webhook), idempotent on the wa message id: a new message updates the sender''s session (activity, count, context.last_inbound, profile name) and NOTIFYs platformdb_whatsapp_inbound; a replay changes nothing (is_new false). Service only.';

comment on function public.whatsapp_validate_payload(text, jsonb) is
    'Checks an outbound message type and payload (the Cloud API object for the type); raises 22023/22004/22003 naming p_message_type or the offending p_message_payload field. Service only.';

COMMIT;
