-- platformdb 20260401110000: WhatsApp sessions and outbound messages (SPEC §3.2)
-- One session per WhatsApp user (E.164 phone), an outbound message queue drained by the
-- sender (claim with FOR UPDATE SKIP LOCKED and a lease, retry with backoff, delivery
-- statuses that never move backwards), and the inbound messages the webhook receiver
-- records for the app to handle. Sections: guard → tables → indexes → functions → views →
-- RLS and grants → comments.
--
-- How a signed-in user is tied to their session: the `user_id` column, set by a service
-- (link_whatsapp_session_user) once the app has verified that the user owns the phone.
-- A phone claim in the JWT was rejected: it is only as fresh as the token, and a number
-- that changes hands would silently re-point access to the new holder's conversation.
-- Outbound priority: 1 is the most urgent, 10 the least (default 5), as in River.
BEGIN;

-- ---------------------------------------------------------------------------------------
-- guard: stop before touching anything when one of our names belongs to someone else
-- ---------------------------------------------------------------------------------------
select public.platformdb_assert_names_free(array[
    'whatsapp_sessions', 'whatsapp_message_queue', 'whatsapp_inbound_messages',
    'whatsapp_status_backlog',
    'whatsapp_sessions_pkey', 'whatsapp_sessions_phone_number_key',
    'whatsapp_sessions_user_idx', 'whatsapp_sessions_expiry_idx',
    'whatsapp_message_queue_pkey', 'whatsapp_message_queue_claim_idx',
    'whatsapp_message_queue_lease_idx', 'whatsapp_message_queue_wa_id_key',
    'whatsapp_message_queue_idempotency_key', 'whatsapp_message_queue_session_idx',
    'whatsapp_message_queue_finished_idx',
    'whatsapp_inbound_messages_pkey', 'whatsapp_inbound_messages_wa_id_key',
    'whatsapp_inbound_messages_unhandled_idx', 'whatsapp_inbound_messages_session_idx',
    'whatsapp_status_backlog_pkey', 'whatsapp_status_backlog_received_idx',
    'whatsapp_validate_payload', 'update_whatsapp_session_activity',
    'set_whatsapp_session_status', 'link_whatsapp_session_user',
    'cleanup_expired_whatsapp_sessions', 'enqueue_whatsapp_message',
    'claim_whatsapp_messages', 'mark_whatsapp_message_sent', 'mark_whatsapp_message_failed',
    'release_whatsapp_message', 'cancel_whatsapp_message', 'apply_whatsapp_status',
    'record_whatsapp_inbound_message', 'mark_whatsapp_inbound_handled',
    'purge_whatsapp_history',
    'whatsapp_session_stats', 'whatsapp_queue_stats'
]);

-- ---------------------------------------------------------------------------------------
-- tables
-- ---------------------------------------------------------------------------------------
create table public.whatsapp_sessions (
    id uuid not null default gen_random_uuid(),
    phone_number text not null,
    user_id uuid,
    -- 64 hex characters from two random UUIDs (244 random bits; gen_random_uuid uses the
    -- server's strong random source): no pgcrypto needed
    session_token text not null
        default replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''),
    status text not null default 'active',
    status_reason text,
    conversation_state text not null default 'idle',
    context jsonb not null default '{}',
    profile_name text,
    message_count integer not null default 0,
    error_count integer not null default 0,
    last_activity_at timestamptz not null default now(),
    expires_at timestamptz not null default now() + interval '24 hours',
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint whatsapp_sessions_pkey primary key (id),
    constraint whatsapp_sessions_phone_number_key unique (phone_number),
    constraint whatsapp_sessions_phone_e164 check (phone_number ~ '^\+[1-9][0-9]{6,14}$'),
    constraint whatsapp_sessions_status_valid
        check (status in ('active', 'inactive', 'suspended', 'expired')),
    constraint whatsapp_sessions_token_length check (char_length(session_token) >= 32),
    constraint whatsapp_sessions_state_length
        check (char_length(conversation_state) between 1 and 100),
    constraint whatsapp_sessions_context_object
        check (jsonb_typeof(context) = 'object' and pg_column_size(context) <= 16384),
    constraint whatsapp_sessions_profile_name_length
        check (profile_name is null or char_length(profile_name) <= 256),
    constraint whatsapp_sessions_reason_length
        check (status_reason is null or char_length(status_reason) <= 500),
    constraint whatsapp_sessions_counts_nonnegative
        check (message_count >= 0 and error_count >= 0)
);

-- The queue keeps River's shape: a state column with a CHECK, attempt / max_retries, an
-- errors jsonb[] each failed attempt appends to, and one timestamp per state reached.
create table public.whatsapp_message_queue (
    id uuid not null default gen_random_uuid(),
    session_id uuid,
    recipient_phone text not null,
    message_type text not null,
    payload jsonb not null,
    priority integer not null default 5,
    status text not null default 'pending',
    attempt integer not null default 0,
    retry_count integer not null default 0,
    max_retries integer not null default 5,
    scheduled_at timestamptz not null default now(),
    locked_until timestamptz,
    locked_by text,
    whatsapp_message_id text,
    correlation_id text,
    idempotency_key text,
    last_error text,
    errors jsonb[] not null default '{}',
    wa_error jsonb,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    attempted_at timestamptz,
    sent_at timestamptz,
    delivered_at timestamptz,
    read_at timestamptz,
    failed_at timestamptz,
    cancelled_at timestamptz,
    constraint whatsapp_message_queue_pkey primary key (id),
    constraint whatsapp_message_queue_session_fk foreign key (session_id)
        references public.whatsapp_sessions (id) on delete set null,
    constraint whatsapp_message_queue_recipient_e164
        check (recipient_phone ~ '^\+[1-9][0-9]{6,14}$'),
    constraint whatsapp_message_queue_type_valid
        check (message_type in ('text', 'template', 'media', 'interactive', 'location')),
    constraint whatsapp_message_queue_payload_object
        check (jsonb_typeof(payload) = 'object' and pg_column_size(payload) <= 65536),
    constraint whatsapp_message_queue_priority_range check (priority between 1 and 10),
    constraint whatsapp_message_queue_status_valid check (status in
        ('pending', 'processing', 'sent', 'delivered', 'read', 'failed', 'cancelled')),
    constraint whatsapp_message_queue_retries_range
        check (max_retries between 0 and 20 and retry_count between 0 and max_retries
               and attempt >= 0),
    constraint whatsapp_message_queue_processing_has_lease
        check ((status = 'processing') = (locked_until is not null)),
    constraint whatsapp_message_queue_sent_has_wa_id
        check (status not in ('sent', 'delivered', 'read')
               or (whatsapp_message_id is not null and sent_at is not null)),
    constraint whatsapp_message_queue_failed_or_failed_at_null
        check ((status = 'failed') = (failed_at is not null)),
    constraint whatsapp_message_queue_failed_has_error
        check (status <> 'failed' or last_error is not null),
    constraint whatsapp_message_queue_cancelled_or_cancelled_at_null
        check ((status = 'cancelled') = (cancelled_at is not null)),
    constraint whatsapp_message_queue_wa_id_length
        check (whatsapp_message_id is null or char_length(whatsapp_message_id) between 1 and 256),
    constraint whatsapp_message_queue_correlation_length
        check (correlation_id is null or char_length(correlation_id) <= 200),
    constraint whatsapp_message_queue_idempotency_length
        check (idempotency_key is null or char_length(idempotency_key) between 1 and 200),
    constraint whatsapp_message_queue_locked_by_length
        check (locked_by is null or char_length(locked_by) <= 200)
)
-- a queue row is updated a few times in its short life: vacuum it early
with (autovacuum_vacuum_scale_factor = 0.05, autovacuum_analyze_scale_factor = 0.05);

create table public.whatsapp_inbound_messages (
    id uuid not null default gen_random_uuid(),
    whatsapp_message_id text not null,
    session_id uuid,
    from_phone text not null,
    phone_number_id text,
    message_type text not null,
    body text,
    payload jsonb not null default '{}',
    profile_name text,
    sent_at timestamptz,
    received_at timestamptz not null default now(),
    handled_at timestamptz,
    constraint whatsapp_inbound_messages_pkey primary key (id),
    constraint whatsapp_inbound_messages_wa_id_key unique (whatsapp_message_id),
    constraint whatsapp_inbound_messages_session_fk foreign key (session_id)
        references public.whatsapp_sessions (id) on delete set null,
    constraint whatsapp_inbound_messages_from_e164 check (from_phone ~ '^\+[1-9][0-9]{6,14}$'),
    constraint whatsapp_inbound_messages_type_format check (message_type ~ '^[a-z_]{1,32}$'),
    constraint whatsapp_inbound_messages_wa_id_length
        check (char_length(whatsapp_message_id) between 1 and 256),
    constraint whatsapp_inbound_messages_payload_object
        check (jsonb_typeof(payload) = 'object' and pg_column_size(payload) <= 65536),
    constraint whatsapp_inbound_messages_body_length
        check (body is null or char_length(body) <= 4096),
    constraint whatsapp_inbound_messages_profile_name_length
        check (profile_name is null or char_length(profile_name) <= 256)
);

-- A delivery status can reach the webhook before the sender has recorded the wa message id
-- it belongs to (Meta answers the POST and calls the webhook at about the same time). Such
-- statuses wait here; mark_whatsapp_message_sent applies them.
create table public.whatsapp_status_backlog (
    whatsapp_message_id text not null,
    status text not null,
    status_at timestamptz not null,
    error jsonb,
    received_at timestamptz not null default now(),
    constraint whatsapp_status_backlog_pkey primary key (whatsapp_message_id, status),
    constraint whatsapp_status_backlog_status_valid
        check (status in ('sent', 'delivered', 'read', 'failed')),
    constraint whatsapp_status_backlog_wa_id_length
        check (char_length(whatsapp_message_id) between 1 and 256),
    constraint whatsapp_status_backlog_error_size
        check (error is null or pg_column_size(error) <= 8192)
);

-- ---------------------------------------------------------------------------------------
-- indexes
-- ---------------------------------------------------------------------------------------
-- a signed-in user's own session (RLS predicate)
create index whatsapp_sessions_user_idx on public.whatsapp_sessions (user_id)
    where user_id is not null;
-- cleanup_expired_whatsapp_sessions: only sessions that can still expire
create index whatsapp_sessions_expiry_idx on public.whatsapp_sessions (expires_at)
    where status in ('active', 'inactive');
-- the claim: due pending messages in priority then schedule order, nothing else indexed
create index whatsapp_message_queue_claim_idx
    on public.whatsapp_message_queue (priority, scheduled_at, id) where status = 'pending';
-- leases to take back when a sender died
create index whatsapp_message_queue_lease_idx
    on public.whatsapp_message_queue (locked_until) where status = 'processing';
-- status callbacks find their message by the id WhatsApp gave it
create unique index whatsapp_message_queue_wa_id_key
    on public.whatsapp_message_queue (whatsapp_message_id) where whatsapp_message_id is not null;
create unique index whatsapp_message_queue_idempotency_key
    on public.whatsapp_message_queue (idempotency_key) where idempotency_key is not null;
create index whatsapp_message_queue_session_idx
    on public.whatsapp_message_queue (session_id) where session_id is not null;
-- retention purge of finished rows
create index whatsapp_message_queue_finished_idx
    on public.whatsapp_message_queue (updated_at)
    where status in ('sent', 'delivered', 'read', 'failed', 'cancelled');
-- what the app has not handled yet, oldest first
create index whatsapp_inbound_messages_unhandled_idx
    on public.whatsapp_inbound_messages (received_at) where handled_at is null;
create index whatsapp_inbound_messages_session_idx
    on public.whatsapp_inbound_messages (session_id, received_at desc);
create index whatsapp_status_backlog_received_idx
    on public.whatsapp_status_backlog (received_at);

-- ---------------------------------------------------------------------------------------
-- functions (SECURITY INVOKER: they run with the caller's rights; EXECUTE is granted to
-- service_role only, see the grants section)
-- ---------------------------------------------------------------------------------------
create function public.whatsapp_validate_payload(p_message_type text, p_payload jsonb)
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

create function public.set_whatsapp_session_status(
    p_phone_number text,
    p_status text,
    p_reason text default null
)
returns boolean
language plpgsql
set search_path = ''
as $$
declare
    v_old text;
begin
    if p_phone_number is null or p_status is null then
        raise exception '% must not be null',
            case when p_phone_number is null then 'p_phone_number' else 'p_status' end
            using errcode = '22004';
    end if;
    if p_status not in ('active', 'inactive', 'suspended', 'expired') then
        raise exception 'p_status: unknown session status %', p_status
            using errcode = '22023', hint = 'one of active, inactive, suspended, expired';
    end if;
    if p_reason is not null and char_length(p_reason) > 500 then
        raise exception 'p_reason must be at most 500 characters' using errcode = '22023';
    end if;
    select s.status into v_old from public.whatsapp_sessions s
     where s.phone_number = p_phone_number for update;
    if not found then
        raise exception 'p_phone_number: no WhatsApp session for %', p_phone_number
            using errcode = 'PD004';
    end if;
    if v_old = p_status then
        return false;
    end if;
    update public.whatsapp_sessions s
       set status = p_status,
           status_reason = p_reason,
           session_token = case when p_status = 'expired'
               then replace(pg_catalog.gen_random_uuid()::text || pg_catalog.gen_random_uuid()::text, '-', '')
               else s.session_token end,
           expires_at = case when p_status = 'expired' then least(s.expires_at, now())
                             else s.expires_at end,
           updated_at = now()
     where s.phone_number = p_phone_number;
    return true;
end
$$;

create function public.link_whatsapp_session_user(p_phone_number text, p_user_id uuid)
returns uuid
language plpgsql
set search_path = ''
as $$
declare
    v_id uuid;
begin
    if p_phone_number is null then
        raise exception 'p_phone_number must not be null' using errcode = '22004';
    end if;
    if p_phone_number !~ '^\+[1-9][0-9]{6,14}$' then
        raise exception 'p_phone_number must be an E.164 phone number, got %', p_phone_number
            using errcode = '22023', hint = 'a + then 7 to 15 digits, e.g. +250788123456';
    end if;
    insert into public.whatsapp_sessions as s (phone_number, user_id, message_count)
    values (p_phone_number, p_user_id, 0)
    on conflict (phone_number) do update set user_id = p_user_id, updated_at = now()
    returning s.id into v_id;
    return v_id;
end
$$;

create function public.cleanup_expired_whatsapp_sessions()
returns integer
language plpgsql
set search_path = ''
as $$
declare
    v_count integer;
begin
    update public.whatsapp_sessions s
       set status = 'expired',
           session_token = replace(pg_catalog.gen_random_uuid()::text
                                   || pg_catalog.gen_random_uuid()::text, '-', ''),
           conversation_state = 'idle',
           context = '{}',
           updated_at = now()
     where s.status in ('active', 'inactive')
       and s.expires_at <= now();
    get diagnostics v_count = row_count;
    return v_count;
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

create function public.mark_whatsapp_message_sent(p_message_id uuid, p_whatsapp_message_id text)
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

create function public.mark_whatsapp_message_failed(
    p_message_id uuid,
    p_error text,
    p_retryable boolean default true,
    p_retry_in_seconds integer default null,
    p_error_detail jsonb default null
)
returns text
language plpgsql
set search_path = ''
as $$
declare
    v_msg record;
    v_give_up boolean;
    v_delay double precision;
begin
    if p_message_id is null then
        raise exception 'p_message_id must not be null' using errcode = '22004';
    end if;
    if p_error is null or p_error = '' then
        raise exception 'p_error must not be empty' using errcode = '22004';
    end if;
    if p_retryable is null then
        raise exception 'p_retryable must not be null' using errcode = '22004';
    end if;
    if p_retry_in_seconds is not null and p_retry_in_seconds not between 0 and 86400 then
        raise exception 'p_retry_in_seconds must be between 0 and 86400, got %', p_retry_in_seconds
            using errcode = '22003';
    end if;
    if p_error_detail is not null and pg_column_size(p_error_detail) > 8192 then
        raise exception 'p_error_detail must be at most 8192 bytes' using errcode = '22023';
    end if;
    select q.id, q.status, q.attempt, q.max_retries, q.retry_count, q.session_id into v_msg
      from public.whatsapp_message_queue q where q.id = p_message_id for update;
    if not found then
        raise exception 'p_message_id: no outbound WhatsApp message %', p_message_id
            using errcode = 'PD004';
    end if;
    if v_msg.status <> 'processing' then
        raise exception 'p_message_id: message % is %, not being sent', p_message_id, v_msg.status
            using errcode = 'PD005', hint = 'only a claimed message can fail';
    end if;

    v_give_up := not p_retryable or v_msg.attempt > v_msg.max_retries;
    if v_give_up then
        update public.whatsapp_message_queue q
           set status = 'failed', failed_at = now(), locked_until = null,
               last_error = pg_catalog.left(p_error, 2000),
               errors = pg_catalog.array_append(q.errors, pg_catalog.jsonb_build_object(
                   'at', now(), 'attempt', q.attempt, 'error', p_error,
                   'retryable', p_retryable, 'detail', p_error_detail)),
               updated_at = now()
         where q.id = p_message_id;
        if v_msg.session_id is not null then
            update public.whatsapp_sessions s
               set error_count = s.error_count + 1, updated_at = now()
             where s.id = v_msg.session_id;
        end if;
        return 'failed';
    end if;

    -- exponential backoff from 10 s, capped at an hour, with ±20 % jitter so that
    -- messages failing together do not come back together
    v_delay := coalesce(p_retry_in_seconds::double precision,
                        least(3600.0, 10.0 * power(2, greatest(v_msg.attempt, 1) - 1))
                        * (0.8 + 0.4 * random()));
    update public.whatsapp_message_queue q
       set status = 'pending', locked_until = null, locked_by = null,
           retry_count = q.retry_count + 1,
           scheduled_at = now() + pg_catalog.make_interval(secs => v_delay),
           last_error = pg_catalog.left(p_error, 2000),
           errors = pg_catalog.array_append(q.errors, pg_catalog.jsonb_build_object(
               'at', now(), 'attempt', q.attempt, 'error', p_error,
               'retryable', true, 'detail', p_error_detail)),
           updated_at = now()
     where q.id = p_message_id;
    return 'pending';
end
$$;

create function public.release_whatsapp_message(p_message_id uuid)
returns boolean
language plpgsql
set search_path = ''
as $$
begin
    if p_message_id is null then
        raise exception 'p_message_id must not be null' using errcode = '22004';
    end if;
    update public.whatsapp_message_queue q
       set status = 'pending', locked_until = null, locked_by = null,
           attempt = greatest(q.attempt - 1, 0), updated_at = now()
     where q.id = p_message_id and q.status = 'processing';
    if found then
        return true;
    end if;
    if not exists (select 1 from public.whatsapp_message_queue q where q.id = p_message_id) then
        raise exception 'p_message_id: no outbound WhatsApp message %', p_message_id
            using errcode = 'PD004';
    end if;
    return false;
end
$$;

create function public.cancel_whatsapp_message(p_message_id uuid)
returns boolean
language plpgsql
set search_path = ''
as $$
begin
    if p_message_id is null then
        raise exception 'p_message_id must not be null' using errcode = '22004';
    end if;
    update public.whatsapp_message_queue q
       set status = 'cancelled', cancelled_at = now(), updated_at = now()
     where q.id = p_message_id and q.status = 'pending';
    if found then
        return true;
    end if;
    if not exists (select 1 from public.whatsapp_message_queue q where q.id = p_message_id) then
        raise exception 'p_message_id: no outbound WhatsApp message %', p_message_id
            using errcode = 'PD004';
    end if;
    return false;
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

create function public.mark_whatsapp_inbound_handled(p_inbound_id uuid)
returns boolean
language plpgsql
set search_path = ''
as $$
begin
    if p_inbound_id is null then
        raise exception 'p_inbound_id must not be null' using errcode = '22004';
    end if;
    update public.whatsapp_inbound_messages m
       set handled_at = now()
     where m.id = p_inbound_id and m.handled_at is null;
    if found then
        return true;
    end if;
    if not exists (select 1 from public.whatsapp_inbound_messages m where m.id = p_inbound_id) then
        raise exception 'p_inbound_id: no inbound WhatsApp message %', p_inbound_id
            using errcode = 'PD004';
    end if;
    return false;
end
$$;

create function public.purge_whatsapp_history(p_older_than interval default interval '30 days')
returns integer
language plpgsql
set search_path = ''
as $$
declare
    v_total integer := 0;
    v_count integer;
begin
    if p_older_than is null or p_older_than < interval '1 hour' then
        raise exception 'p_older_than must be at least 1 hour' using errcode = '22023';
    end if;
    delete from public.whatsapp_message_queue q
     where q.status in ('sent', 'delivered', 'read', 'failed', 'cancelled')
       and q.updated_at < now() - p_older_than;
    get diagnostics v_count = row_count;
    v_total := v_total + v_count;
    delete from public.whatsapp_inbound_messages m
     where m.handled_at is not null and m.handled_at < now() - p_older_than;
    get diagnostics v_count = row_count;
    v_total := v_total + v_count;
    -- statuses of messages this database never sent (another system using the same number)
    delete from public.whatsapp_status_backlog b
     where b.received_at < now() - least(p_older_than, interval '7 days');
    get diagnostics v_count = row_count;
    return v_total + v_count;
end
$$;

-- ---------------------------------------------------------------------------------------
-- views
-- ---------------------------------------------------------------------------------------
create view public.whatsapp_session_stats
with (security_invoker = true)
as
select st.status,
       count(s.id) as session_count,
       count(s.id) filter (where s.last_activity_at >= now() - interval '1 hour') as active_last_hour,
       count(s.id) filter (where s.last_activity_at >= now() - interval '24 hours') as active_last_24h,
       count(s.user_id) as linked_to_user,
       coalesce(sum(s.message_count), 0) as total_messages,
       round(coalesce(avg(s.message_count), 0), 2) as avg_messages_per_session,
       coalesce(sum(s.error_count), 0) as total_errors,
       max(s.last_activity_at) as last_activity_at
  from (values (1, 'active'), (2, 'inactive'), (3, 'suspended'), (4, 'expired')) as st (ord, status)
  left join public.whatsapp_sessions s on s.status = st.status
 group by st.ord, st.status
 order by st.ord;

create view public.whatsapp_queue_stats
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

-- ---------------------------------------------------------------------------------------
-- RLS and grants (Supabase grants ALL by default: take it back, then grant what is needed)
-- ---------------------------------------------------------------------------------------
alter table public.whatsapp_sessions enable row level security;
alter table public.whatsapp_message_queue enable row level security;
alter table public.whatsapp_inbound_messages enable row level security;
alter table public.whatsapp_status_backlog enable row level security;

create policy whatsapp_sessions_own_read on public.whatsapp_sessions
    for select to authenticated using (user_id = (select auth.uid()));
create policy whatsapp_sessions_service_read on public.whatsapp_sessions
    for select to service_role using (true);
create policy whatsapp_sessions_service_insert on public.whatsapp_sessions
    for insert to service_role with check (true);
create policy whatsapp_sessions_service_update on public.whatsapp_sessions
    for update to service_role using (true) with check (true);
create policy whatsapp_sessions_service_delete on public.whatsapp_sessions
    for delete to service_role using (true);

create policy whatsapp_message_queue_service_read on public.whatsapp_message_queue
    for select to service_role using (true);
create policy whatsapp_message_queue_service_insert on public.whatsapp_message_queue
    for insert to service_role with check (true);
create policy whatsapp_message_queue_service_update on public.whatsapp_message_queue
    for update to service_role using (true) with check (true);

create policy whatsapp_inbound_messages_service_read on public.whatsapp_inbound_messages
    for select to service_role using (true);
create policy whatsapp_inbound_messages_service_insert on public.whatsapp_inbound_messages
    for insert to service_role with check (true);
create policy whatsapp_inbound_messages_service_update on public.whatsapp_inbound_messages
    for update to service_role using (true) with check (true);

create policy whatsapp_status_backlog_service_read on public.whatsapp_status_backlog
    for select to service_role using (true);
create policy whatsapp_status_backlog_service_insert on public.whatsapp_status_backlog
    for insert to service_role with check (true);
create policy whatsapp_status_backlog_service_delete on public.whatsapp_status_backlog
    for delete to service_role using (true);

revoke all on table public.whatsapp_sessions, public.whatsapp_message_queue,
    public.whatsapp_inbound_messages, public.whatsapp_status_backlog,
    public.whatsapp_session_stats, public.whatsapp_queue_stats
    from public, anon, authenticated, service_role;
grant select, insert, update, delete on table public.whatsapp_sessions to service_role;
grant select, insert, update on table public.whatsapp_message_queue to service_role;
grant select, insert, update on table public.whatsapp_inbound_messages to service_role;
grant select, insert, delete on table public.whatsapp_status_backlog to service_role;
-- a signed-in user reads their own session, every column but the secret session_token
grant select (id, phone_number, user_id, status, status_reason, conversation_state, context,
              profile_name, message_count, error_count, last_activity_at, expires_at,
              created_at, updated_at)
    on table public.whatsapp_sessions to authenticated;
grant select on table public.whatsapp_session_stats, public.whatsapp_queue_stats to service_role;

revoke all on function
    public.whatsapp_validate_payload(text, jsonb),
    public.update_whatsapp_session_activity(text, boolean, text, jsonb, text, interval),
    public.set_whatsapp_session_status(text, text, text),
    public.link_whatsapp_session_user(text, uuid),
    public.cleanup_expired_whatsapp_sessions(),
    public.enqueue_whatsapp_message(text, text, jsonb, integer, text, timestamptz, integer, text),
    public.claim_whatsapp_messages(integer, integer, text),
    public.apply_whatsapp_status(text, text, timestamptz, jsonb),
    public.mark_whatsapp_message_sent(uuid, text),
    public.mark_whatsapp_message_failed(uuid, text, boolean, integer, jsonb),
    public.release_whatsapp_message(uuid),
    public.cancel_whatsapp_message(uuid),
    public.record_whatsapp_inbound_message(text, text, text, jsonb, timestamptz, text, text),
    public.mark_whatsapp_inbound_handled(uuid),
    public.purge_whatsapp_history(interval)
    from public, anon, authenticated, service_role;
grant execute on function
    public.whatsapp_validate_payload(text, jsonb),
    public.update_whatsapp_session_activity(text, boolean, text, jsonb, text, interval),
    public.set_whatsapp_session_status(text, text, text),
    public.link_whatsapp_session_user(text, uuid),
    public.cleanup_expired_whatsapp_sessions(),
    public.enqueue_whatsapp_message(text, text, jsonb, integer, text, timestamptz, integer, text),
    public.claim_whatsapp_messages(integer, integer, text),
    public.apply_whatsapp_status(text, text, timestamptz, jsonb),
    public.mark_whatsapp_message_sent(uuid, text),
    public.mark_whatsapp_message_failed(uuid, text, boolean, integer, jsonb),
    public.release_whatsapp_message(uuid),
    public.cancel_whatsapp_message(uuid),
    public.record_whatsapp_inbound_message(text, text, text, jsonb, timestamptz, text, text),
    public.mark_whatsapp_inbound_handled(uuid)
    to service_role;
-- purge_whatsapp_history deletes finished rows: the table owner (maintenance) only

-- ---------------------------------------------------------------------------------------
-- comments (the reference docs and the dashboard read these from the catalog)
-- ---------------------------------------------------------------------------------------
comment on table public.whatsapp_sessions is
    'One WhatsApp conversation per user phone (E.164): status, conversation state and context, activity counters, expiry (24 h after the last activity by default, WhatsApp''s customer-service window). A signed-in user reads their own session through user_id, never the session_token.';
comment on column public.whatsapp_sessions.id is 'Session id.';
comment on column public.whatsapp_sessions.phone_number is 'The user''s WhatsApp number in E.164 (+ and 7 to 15 digits, e.g. +250788123456); unique.';
comment on column public.whatsapp_sessions.user_id is 'The platform user this number belongs to, set by a service (link_whatsapp_session_user) once verified; that user may read the session.';
comment on column public.whatsapp_sessions.session_token is 'Secret random token (64 hex) binding web flows to this conversation; replaced whenever the session expires. Never readable by authenticated.';
comment on column public.whatsapp_sessions.status is 'active, inactive, suspended (kept when the user writes again) or expired.';
comment on column public.whatsapp_sessions.status_reason is 'Why the status was last set by set_whatsapp_session_status (e.g. abuse report).';
comment on column public.whatsapp_sessions.conversation_state is 'Where the conversation is in the app''s flow, e.g. idle or ride.awaiting_pickup; back to idle when the session expires.';
comment on column public.whatsapp_sessions.context is 'Conversation context (JSON object, at most 16 KiB), merged by update_whatsapp_session_activity; last_inbound holds the last message''s id, type and time. Emptied on expiry.';
comment on column public.whatsapp_sessions.profile_name is 'The WhatsApp profile name the user shows (from webhook contacts).';
comment on column public.whatsapp_sessions.message_count is 'Messages counted as activity (inbound messages by default).';
comment on column public.whatsapp_sessions.error_count is 'Outbound messages to this number that failed for good.';
comment on column public.whatsapp_sessions.last_activity_at is 'Time of the last recorded activity.';
comment on column public.whatsapp_sessions.expires_at is 'When the session expires without further activity.';
comment on column public.whatsapp_sessions.created_at is 'When the session was first created.';
comment on column public.whatsapp_sessions.updated_at is 'Last change of this row.';

comment on table public.whatsapp_message_queue is
    'Outbound WhatsApp messages waiting for, being, or done being sent through the Cloud API. The sender claims batches (claim_whatsapp_messages: FOR UPDATE SKIP LOCKED with a lease), records the wa message id (mark_whatsapp_message_sent) or a failure (mark_whatsapp_message_failed: backoff, then failed); delivery statuses move it forward only (apply_whatsapp_status). Finished rows are purged after 30 days by purge_whatsapp_history.';
comment on column public.whatsapp_message_queue.id is 'Message id.';
comment on column public.whatsapp_message_queue.session_id is 'The recipient''s session when one existed at enqueue time.';
comment on column public.whatsapp_message_queue.recipient_phone is 'Recipient number in E.164.';
comment on column public.whatsapp_message_queue.message_type is 'text, template, media, interactive or location.';
comment on column public.whatsapp_message_queue.payload is 'The Cloud API object for the type (text: {body}, template: {name, language: {code}, components}, interactive: {type, action, …}, location: {latitude, longitude, name?, address?}); media: {media_type, id or link, caption?, filename?}. At most 64 KiB.';
comment on column public.whatsapp_message_queue.priority is '1 (most urgent) to 10; claimed in priority then scheduled_at order.';
comment on column public.whatsapp_message_queue.status is 'pending, processing (claimed, leased), sent, delivered, read, failed or cancelled. sent → delivered → read never moves backwards.';
comment on column public.whatsapp_message_queue.attempt is 'Claims so far, including the current one (a lease that ran out counts).';
comment on column public.whatsapp_message_queue.retry_count is 'Failed attempts that were scheduled again.';
comment on column public.whatsapp_message_queue.max_retries is 'Retries allowed after the first attempt; the message fails for good after attempt max_retries + 1.';
comment on column public.whatsapp_message_queue.scheduled_at is 'Not sent before this time (delayed delivery and retry backoff).';
comment on column public.whatsapp_message_queue.locked_until is 'Lease end while processing; afterwards the message can be claimed again.';
comment on column public.whatsapp_message_queue.locked_by is 'Worker id of the sender holding the lease.';
comment on column public.whatsapp_message_queue.whatsapp_message_id is 'The id WhatsApp returned (wamid…); status callbacks refer to it. Unique.';
comment on column public.whatsapp_message_queue.correlation_id is 'Ties the message to what caused it; sent to WhatsApp as biz_opaque_callback_data.';
comment on column public.whatsapp_message_queue.idempotency_key is 'Optional: enqueueing the same key again returns the same message (different content: PD001).';
comment on column public.whatsapp_message_queue.last_error is 'The latest error (required when failed).';
comment on column public.whatsapp_message_queue.errors is 'One JSON object per failed attempt: at, attempt, error, retryable, detail.';
comment on column public.whatsapp_message_queue.wa_error is 'The error object of a failed status callback, as WhatsApp sent it.';
comment on column public.whatsapp_message_queue.created_at is 'When it was enqueued.';
comment on column public.whatsapp_message_queue.updated_at is 'Last change of this row (retention is measured from it).';
comment on column public.whatsapp_message_queue.attempted_at is 'When it was last claimed.';
comment on column public.whatsapp_message_queue.sent_at is 'When WhatsApp accepted it.';
comment on column public.whatsapp_message_queue.delivered_at is 'When WhatsApp reported it delivered to the phone (filled by read if delivered never came).';
comment on column public.whatsapp_message_queue.read_at is 'When WhatsApp reported it read.';
comment on column public.whatsapp_message_queue.failed_at is 'When it failed for good (set exactly when status is failed).';
comment on column public.whatsapp_message_queue.cancelled_at is 'When it was cancelled (set exactly when status is cancelled).';

comment on table public.whatsapp_inbound_messages is
    'Messages users sent to the business number, recorded by the webhook receiver for the app to handle (oldest unhandled first; NOTIFY platformdb_whatsapp_inbound carries each new id). Idempotent on the wa message id, so replayed webhooks are harmless.';
comment on column public.whatsapp_inbound_messages.id is 'Inbound message id.';
comment on column public.whatsapp_inbound_messages.whatsapp_message_id is 'WhatsApp''s id of the message (wamid…); unique.';
comment on column public.whatsapp_inbound_messages.session_id is 'The sender''s session.';
comment on column public.whatsapp_inbound_messages.from_phone is 'Sender number in E.164.';
comment on column public.whatsapp_inbound_messages.phone_number_id is 'The business phone number id it was sent to (webhook metadata).';
comment on column public.whatsapp_inbound_messages.message_type is 'WhatsApp message type: text, image, location, interactive, button, reaction, …';
comment on column public.whatsapp_inbound_messages.body is 'Text of the message when it has one (text body, caption, button or list reply title, reaction emoji).';
comment on column public.whatsapp_inbound_messages.payload is 'The message object exactly as WhatsApp sent it (at most 64 KiB).';
comment on column public.whatsapp_inbound_messages.profile_name is 'Sender''s WhatsApp profile name.';
comment on column public.whatsapp_inbound_messages.sent_at is 'When the user sent it (WhatsApp timestamp).';
comment on column public.whatsapp_inbound_messages.received_at is 'When the webhook recorded it.';
comment on column public.whatsapp_inbound_messages.handled_at is 'When the app marked it handled (mark_whatsapp_inbound_handled); null = still to handle.';

comment on table public.whatsapp_status_backlog is
    'Delivery statuses whose wa message id is not (yet) in the queue: applied and removed by mark_whatsapp_message_sent when the sender records that id; others are purged after 7 days.';
comment on column public.whatsapp_status_backlog.whatsapp_message_id is 'The wa message id the status is about.';
comment on column public.whatsapp_status_backlog.status is 'sent, delivered, read or failed.';
comment on column public.whatsapp_status_backlog.status_at is 'WhatsApp''s timestamp of the status.';
comment on column public.whatsapp_status_backlog.error is 'Error object of a failed status.';
comment on column public.whatsapp_status_backlog.received_at is 'When the webhook received it.';

comment on function public.whatsapp_validate_payload(text, jsonb) is
    'Checks an outbound message type and payload (the Cloud API object for the type); raises 22023/22004/22003 naming p_message_type or the offending p_message_payload field. Service only.';
comment on function public.update_whatsapp_session_activity(text, boolean, text, jsonb, text, interval) is
    'Records activity on the session of p_phone_number, creating it if needed: last_activity_at, message count (+1 unless p_increment_message_count is false), expiry pushed to now + p_session_ttl, optional conversation state, context merge and profile name. An expired or inactive session becomes active again (an expired one with a new token, idle state and empty context); a suspended one stays suspended. Returns the session id. Service only.';
comment on function public.set_whatsapp_session_status(text, text, text) is
    'Sets a session''s status (e.g. suspended for abuse, active to lift it) with a reason; expired also replaces the token. Returns false when it already had that status; PD004 when there is no session. Service only.';
comment on function public.link_whatsapp_session_user(text, uuid) is
    'Ties the session of p_phone_number (created if needed) to platform user p_user_id (null unlinks) so that user can read it. Call it only after verifying the user owns the number. Returns the session id. Service only.';
comment on function public.cleanup_expired_whatsapp_sessions() is
    'Marks active and inactive sessions past expires_at as expired (new token, idle state, empty context) and returns how many. Run daily (platformdb maintain). Service only.';
comment on function public.enqueue_whatsapp_message(text, text, jsonb, integer, text, timestamptz, integer, text) is
    'Queues an outbound message and returns its id. Validates the E.164 recipient, the type and its payload, priority 1-10 (1 most urgent), max retries 0-20; an optional idempotency key returns the same id for the same message (PD001 for a different one). Wakes senders with NOTIFY platformdb_whatsapp_outbound. Service only.';
comment on function public.claim_whatsapp_messages(integer, integer, text) is
    'Claims up to p_limit due messages (priority then schedule order) with FOR UPDATE SKIP LOCKED, leasing them for p_lease_seconds: two claimers never get the same message, and a message whose lease runs out is claimable again (or failed, when that was its last allowed attempt). Service only.';
comment on function public.apply_whatsapp_status(text, text, timestamptz, jsonb) is
    'Applies a delivery status callback by wa message id, idempotently: sent → delivered → read never moves backwards (a late delivered after read changes nothing); failed only before delivery, with the error kept. Unknown ids wait in whatsapp_status_backlog. Returns true when the message changed. Service only.';
comment on function public.mark_whatsapp_message_sent(uuid, text) is
    'Records that WhatsApp accepted a claimed message under p_whatsapp_message_id, then applies statuses that arrived earlier. A replay with the same id returns false; PD005 when another sender already recorded a different id; PD002 when failed or cancelled. Service only.';
comment on function public.mark_whatsapp_message_failed(uuid, text, boolean, integer, jsonb) is
    'Records a failed attempt of a claimed message: retryable and attempts left → pending again after exponential backoff (10 s doubling, at most 1 h, ±20 % jitter, or p_retry_in_seconds); otherwise failed for good with the error kept. Returns the new status. PD005 when the message is not claimed. Service only.';
comment on function public.release_whatsapp_message(uuid) is
    'Gives a claimed message back (pending, the attempt not counted), e.g. when the sender stops before sending it. Service only.';
comment on function public.cancel_whatsapp_message(uuid) is
    'Cancels a pending message; false when it is already being sent or finished. Service only.';
comment on function public.record_whatsapp_inbound_message(text, text, text, jsonb, timestamptz, text, text) is
    'Records a message a user sent (webhook), idempotent on the wa message id: a new message updates the sender''s session (activity, count, context.last_inbound, profile name) and NOTIFYs platformdb_whatsapp_inbound; a replay changes nothing (is_new false). Service only.';
comment on function public.mark_whatsapp_inbound_handled(uuid) is
    'Marks an inbound message handled by the app; false when it already was. Service only.';
comment on function public.purge_whatsapp_history(interval) is
    'Deletes finished outbound messages and handled inbound messages older than p_older_than (default 30 days) and stale status backlog; returns the number of rows deleted. Table owner (maintenance) only.';

comment on view public.whatsapp_session_stats is
    'One row per session status (all four, even when empty): sessions, active in the last hour and day, linked to a user, messages, errors, last activity. Service only.';
comment on view public.whatsapp_queue_stats is
    'Outbound queue in one row: depth (pending and due), scheduled, processing, expired leases, oldest pending age, sent/delivered/read/failed/cancelled in the last 24 h, retrying, and inbound messages received in 24 h and not yet handled. Service only.';

COMMIT;
