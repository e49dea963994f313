-- platformdb 20260401210000: WhatsApp in production (issue 19)
-- - a quarantine for the items of a signed webhook notification that cannot be stored (the
--   rest of the notification is stored and answered 200; nothing is dropped), with a retry
--   after a fix;
-- - business-scoped user ids (BSUID, e.g. US.13491208655302741918): a session, an inbound
--   message and an outbound message are keyed by the phone (wa_id), the BSUID, or both; a
--   session that learns the other identifier later keeps its history;
-- - the customer-service window: the session records the user's last inbound message and
--   when free-form messages stop being allowed (24 h, 72 h from a free entry point);
--   enqueue_whatsapp_message refuses a non-template message outside it (PDW01);
-- - what messages cost: each status's pricing and conversation kept with the message, and a
--   view of messages and billable messages per category per day.
-- The SPEC §1 functions keep their parameters; new ones are added at the end with defaults,
-- so every existing call (positional or named) means what it meant.
-- Sections: guard → tables (new, then changes to 20260401110000's) → indexes → functions →
-- views → RLS and grants → comments.
-- The CHECKs added to 20260401110000's tables validate at once: those tables are small
-- (sessions, a short-lived queue) and the whole file is one transaction anyway.
-- squawk-ignore-file constraint-missing-not-valid
BEGIN;

-- ---------------------------------------------------------------------------------------
-- guard: stop before touching anything when one of our names belongs to someone else
-- (functions of 20260401110000 recreated below with more parameters are ours already)
-- ---------------------------------------------------------------------------------------
select public.platformdb_assert_names_free(array[
    'whatsapp_quarantine', 'whatsapp_quarantine_pkey', 'whatsapp_quarantine_item_key',
    'whatsapp_templates', 'whatsapp_templates_pkey', 'sync_whatsapp_templates',
    'whatsapp_check_template',
    'whatsapp_quarantine_open_idx', 'whatsapp_sessions_business_user_id_key',
    'whatsapp_inbound_messages_from_user_idx', 'whatsapp_message_queue_recipient_user_idx',
    'whatsapp_message_queue_sent_day_idx',
    'whatsapp_quarantine_stats', 'whatsapp_message_costs',
    'quarantine_whatsapp_item', 'settle_whatsapp_quarantine', 'defer_whatsapp_message',
    'monitoring_whatsapp_quarantine', 'monitoring_whatsapp_costs'
]);

-- ---------------------------------------------------------------------------------------
-- tables
-- ---------------------------------------------------------------------------------------
create table public.whatsapp_quarantine (
    id uuid not null default gen_random_uuid(),
    notification_id text not null,
    item_path text not null,
    item_kind text not null,
    item jsonb not null,
    context jsonb not null default '{}',
    reason text not null,
    received_at timestamptz not null default now(),
    last_seen_at timestamptz not null default now(),
    seen_count integer not null default 1,
    attempts integer not null default 0,
    last_attempt_at timestamptz,
    resolved_at timestamptz,
    resolution text,
    constraint whatsapp_quarantine_pkey primary key (id),
    -- Meta delivers a notification again until it gets a 200: the same item once
    constraint whatsapp_quarantine_item_key unique (notification_id, item_path),
    constraint whatsapp_quarantine_notification_id_format
        check (notification_id ~ '^[0-9a-f]{64}$'),
    constraint whatsapp_quarantine_path_length check (char_length(item_path) between 1 and 300),
    constraint whatsapp_quarantine_kind_valid
        check (item_kind in ('notification', 'entry', 'change', 'message', 'status')),
    constraint whatsapp_quarantine_item_size check (pg_column_size(item) <= 262144),
    constraint whatsapp_quarantine_context_object
        check (jsonb_typeof(context) = 'object' and pg_column_size(context) <= 65536),
    constraint whatsapp_quarantine_reason_length check (char_length(reason) between 1 and 2000),
    constraint whatsapp_quarantine_counts_positive check (seen_count >= 1 and attempts >= 0),
    constraint whatsapp_quarantine_resolution_valid
        check (resolution is null or resolution in ('stored', 'duplicate', 'discarded')),
    constraint whatsapp_quarantine_resolved_or_resolved_at_null
        check ((resolved_at is null) = (resolution is null))
);

-- the account's message templates as the Graph API lists them (platformdb whatsapp templates
-- sync); enqueueing a template is checked against them once they have been synced
create table public.whatsapp_templates (
    name text not null,
    language text not null,
    category text,
    status text not null,
    components jsonb not null default '[]',
    placeholders jsonb not null default '{}',
    template_id text,
    synced_at timestamptz not null default now(),
    constraint whatsapp_templates_pkey primary key (name, language),
    constraint whatsapp_templates_name_length check (char_length(name) between 1 and 512),
    constraint whatsapp_templates_language_length check (char_length(language) between 2 and 20),
    constraint whatsapp_templates_status_length check (char_length(status) between 1 and 40),
    constraint whatsapp_templates_components_array
        check (jsonb_typeof(components) = 'array' and pg_column_size(components) <= 65536),
    constraint whatsapp_templates_placeholders_object check (jsonb_typeof(placeholders) = 'object')
);

-- sessions: the phone or the business-scoped user id (or both); the service window
alter table public.whatsapp_sessions
    add column business_user_id text,
    add column last_inbound_at timestamptz,
    add column service_window_ends_at timestamptz;
-- squawk-ignore ban-drop-not-null -- (the other identifier may stand in; a CHECK requires one)
alter table public.whatsapp_sessions alter column phone_number drop not null;
alter table public.whatsapp_sessions
    add constraint whatsapp_sessions_identified
        check (phone_number is not null or business_user_id is not null),
    add constraint whatsapp_sessions_business_user_id_format
        check (business_user_id is null
               or business_user_id ~ '^[A-Z]{2}\.(ENT\.)?[A-Za-z0-9]{1,128}$'),
    add constraint whatsapp_sessions_window_after_inbound
        check (service_window_ends_at is null
               or (last_inbound_at is not null and service_window_ends_at > last_inbound_at));

-- inbound: the sender by phone and/or user id; fields made safe to store, and how
alter table public.whatsapp_inbound_messages
    add column from_user_id text,
    add column original_bytes integer,
    add column adjustments jsonb;
-- squawk-ignore ban-drop-not-null -- (the other identifier may stand in; a CHECK requires one)
alter table public.whatsapp_inbound_messages alter column from_phone drop not null;
alter table public.whatsapp_inbound_messages
    add constraint whatsapp_inbound_messages_sender_known
        check (from_phone is not null or from_user_id is not null),
    add constraint whatsapp_inbound_messages_from_user_id_format
        check (from_user_id is null or from_user_id ~ '^[A-Z]{2}\.(ENT\.)?[A-Za-z0-9]{1,128}$'),
    add constraint whatsapp_inbound_messages_adjustments_array
        check (adjustments is null
               or (jsonb_typeof(adjustments) = 'array' and pg_column_size(adjustments) <= 16384)),
    add constraint whatsapp_inbound_messages_original_bytes_positive
        check (original_bytes is null or original_bytes > 0);

-- outbound: the recipient by phone and/or user id; what WhatsApp says the message costs
alter table public.whatsapp_message_queue
    add column recipient_user_id text,
    add column reply_to_message_id text,
    add column pricing_billable boolean,
    add column pricing_category text,
    add column pricing_model text,
    add column pricing_type text,
    add column conversation_id text,
    add column conversation_origin text,
    add column conversation_expires_at timestamptz;
-- squawk-ignore ban-drop-not-null -- (the other identifier may stand in; a CHECK requires one)
alter table public.whatsapp_message_queue alter column recipient_phone drop not null;
alter table public.whatsapp_message_queue
    add constraint whatsapp_message_queue_recipient_known
        check (recipient_phone is not null or recipient_user_id is not null),
    add constraint whatsapp_message_queue_recipient_user_id_format
        check (recipient_user_id is null
               or recipient_user_id ~ '^[A-Z]{2}\.(ENT\.)?[A-Za-z0-9]{1,128}$'),
    add constraint whatsapp_message_queue_reply_to_length
        check (reply_to_message_id is null or char_length(reply_to_message_id) between 1 and 256),
    add constraint whatsapp_message_queue_pricing_lengths
        check (char_length(pricing_category) <= 64 and char_length(pricing_model) <= 64
               and char_length(pricing_type) <= 64 and char_length(conversation_id) <= 256
               and char_length(conversation_origin) <= 64);

-- reactions are messages too (the CHECK is replaced by a wider one right below)
-- squawk-ignore ban-drop-constraint
alter table public.whatsapp_message_queue drop constraint whatsapp_message_queue_type_valid;
alter table public.whatsapp_message_queue
    add constraint whatsapp_message_queue_type_valid
        check (message_type in ('text', 'template', 'media', 'interactive', 'location', 'reaction'));

-- statuses that outran the sender keep their pricing and conversation too
alter table public.whatsapp_status_backlog
    add column pricing jsonb,
    add column conversation jsonb;
alter table public.whatsapp_status_backlog
    add constraint whatsapp_status_backlog_pricing_size
        check ((pricing is null or (jsonb_typeof(pricing) = 'object' and pg_column_size(pricing) <= 4096))
               and (conversation is null
                    or (jsonb_typeof(conversation) = 'object' and pg_column_size(conversation) <= 4096)));

-- what the database knows of each user's last message, so the window applies at once
update public.whatsapp_sessions s
   set last_inbound_at = m.last_at,
       service_window_ends_at = m.last_at + interval '24 hours'
  from (select i.session_id, max(least(coalesce(i.sent_at, i.received_at), i.received_at)) as last_at
          from public.whatsapp_inbound_messages i
         where i.session_id is not null
         group by i.session_id) m
 where s.id = m.session_id;

-- ---------------------------------------------------------------------------------------
-- indexes
-- ---------------------------------------------------------------------------------------
-- what is still in quarantine, oldest first (dashboard, requeue)
create index whatsapp_quarantine_open_idx
    on public.whatsapp_quarantine (received_at) where resolved_at is null;
create unique index whatsapp_sessions_business_user_id_key
    on public.whatsapp_sessions (business_user_id) where business_user_id is not null;
create index whatsapp_inbound_messages_from_user_idx
    on public.whatsapp_inbound_messages (from_user_id) where from_user_id is not null;
create index whatsapp_message_queue_recipient_user_idx
    on public.whatsapp_message_queue (recipient_user_id) where recipient_user_id is not null;
-- the cost view: messages by the day they were sent
create index whatsapp_message_queue_sent_day_idx
    on public.whatsapp_message_queue (sent_at) where sent_at is not null;

-- ---------------------------------------------------------------------------------------
-- functions (SECURITY INVOKER; EXECUTE for service_role only, see the grants section)
-- ---------------------------------------------------------------------------------------
create function public.quarantine_whatsapp_item(
    p_notification_id text,
    p_item_path text,
    p_item_kind text,
    p_item jsonb,
    p_reason text,
    p_context jsonb default null
)
returns uuid
language plpgsql
set search_path = ''
as $$
declare
    v_id uuid;
begin
    if p_notification_id is null or p_item_path is null or p_item_kind is null
       or p_item is null or p_reason is null then
        raise exception '% must not be null',
            case when p_notification_id is null then 'p_notification_id'
                 when p_item_path is null then 'p_item_path'
                 when p_item_kind is null then 'p_item_kind'
                 when p_item is null then 'p_item' else 'p_reason' end
            using errcode = '22004';
    end if;
    if p_notification_id !~ '^[0-9a-f]{64}$' then
        raise exception 'p_notification_id must be the hex SHA-256 of the notification body'
            using errcode = '22023';
    end if;
    if p_item_kind not in ('notification', 'entry', 'change', 'message', 'status') then
        raise exception 'p_item_kind: unknown item kind %', p_item_kind
            using errcode = '22023', hint = 'one of notification, entry, change, message, status';
    end if;
    if char_length(p_item_path) not between 1 and 300 then
        raise exception 'p_item_path must be 1 to 300 characters' using errcode = '22023';
    end if;
    if p_context is not null and jsonb_typeof(p_context) <> 'object' then
        raise exception 'p_context must be a JSON object' using errcode = '22023';
    end if;

    -- an item too large even for the quarantine is kept as its size and opening
    insert into public.whatsapp_quarantine as q
        (notification_id, item_path, item_kind, item, context, reason)
    values (p_notification_id, p_item_path, p_item_kind,
            case when pg_catalog.pg_column_size(p_item) <= 262144 then p_item
                 else pg_catalog.jsonb_build_object(
                     'too_large_bytes', pg_catalog.octet_length(p_item::text),
                     'opening', pg_catalog.left(p_item::text, 4096)) end,
            case when p_context is not null and pg_catalog.pg_column_size(p_context) <= 65536
                 then p_context else '{}'::jsonb end,
            pg_catalog.left(case when p_reason = '' then 'unknown' else p_reason end, 2000))
    on conflict (notification_id, item_path) do update
        set seen_count = q.seen_count + 1,
            last_seen_at = now()
    returning q.id into v_id;
    return v_id;
end
$$;

create function public.settle_whatsapp_quarantine(
    p_id uuid,
    p_outcome text,
    p_reason text default null
)
returns boolean
language plpgsql
set search_path = ''
as $$
begin
    if p_id is null or p_outcome is null then
        raise exception '% must not be null', case when p_id is null then 'p_id' else 'p_outcome' end
            using errcode = '22004';
    end if;
    if p_outcome not in ('stored', 'duplicate', 'discarded', 'failed') then
        raise exception 'p_outcome: unknown outcome %', p_outcome
            using errcode = '22023', hint = 'one of stored, duplicate, discarded, failed';
    end if;
    if p_outcome = 'failed' and (p_reason is null or p_reason = '') then
        raise exception 'p_reason must say why the retry failed' using errcode = '22004';
    end if;
    update public.whatsapp_quarantine q
       set attempts = q.attempts + 1,
           last_attempt_at = now(),
           reason = case when p_outcome = 'failed' then pg_catalog.left(p_reason, 2000) else q.reason end,
           resolved_at = case when p_outcome = 'failed' then null else now() end,
           resolution = case when p_outcome = 'failed' then null else p_outcome end
     where q.id = p_id and q.resolved_at is null;
    if found then
        return true;
    end if;
    if not exists (select 1 from public.whatsapp_quarantine q where q.id = p_id) then
        raise exception 'p_id: no quarantined WhatsApp item %', p_id using errcode = 'PD004';
    end if;
    return false; -- already resolved
end
$$;

-- same parameters: reactions ({"message_id", "emoji"}) are a message type too
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
    if p_message_type not in ('text', 'template', 'media', 'interactive', 'location', 'reaction') then
        raise exception 'p_message_type: unknown message type %', p_message_type
            using errcode = '22023', hint = 'one of text, template, media, interactive, location, reaction';
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
    elsif p_message_type = 'reaction' then
        if jsonb_typeof(p_payload -> 'message_id') is distinct from 'string'
           or char_length(p_payload ->> 'message_id') not between 1 and 256 then
            raise exception 'p_message_payload.message_id must be the wa message id reacted to'
                using errcode = '22023', hint = 'e.g. {"message_id": "wamid.HBgL…", "emoji": "👍"}';
        end if;
        -- an empty emoji takes the reaction back
        if jsonb_typeof(p_payload -> 'emoji') is distinct from 'string'
           or char_length(p_payload ->> 'emoji') > 16 then
            raise exception 'p_message_payload.emoji must be one emoji, or empty to remove the reaction'
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

create function public.sync_whatsapp_templates(p_templates jsonb)
returns integer
language plpgsql
set search_path = ''
as $$
declare
    v_count integer;
    v_bad text;
begin
    if p_templates is null or jsonb_typeof(p_templates) <> 'array' then
        raise exception 'p_templates must be a JSON array of the account''s templates' using errcode = '22023';
    end if;
    select coalesce(t ->> 'name', '(no name)') into v_bad
      from pg_catalog.jsonb_array_elements(p_templates) t
     where jsonb_typeof(t -> 'name') is distinct from 'string'
        or jsonb_typeof(t -> 'language') is distinct from 'string'
        or jsonb_typeof(t -> 'status') is distinct from 'string'
        or (t ? 'components' and jsonb_typeof(t -> 'components') <> 'array')
     limit 1;
    if found then
        raise exception 'p_templates: template % needs name, language and status strings and a components array', v_bad
            using errcode = '22023';
    end if;

    -- placeholders per component: {{1}} or {{named}} in its text (a text header, the body),
    -- one for a media header, and per button (BUTTONS:<index>) those of its url, one for a
    -- copy-code or one-time-password button
    insert into public.whatsapp_templates as w
        (name, language, category, status, components, placeholders, template_id, synced_at)
    select t ->> 'name', t ->> 'language', t ->> 'category', t ->> 'status',
           coalesce(t -> 'components', '[]'),
           coalesce((select pg_catalog.jsonb_object_agg(k.key, k.n) from (
                select pg_catalog.upper(c ->> 'type') as key,
                       -- a media or location header takes its one parameter (the media)
                       case when pg_catalog.upper(c ->> 'type') = 'HEADER'
                                 and pg_catalog.upper(coalesce(c ->> 'format', 'TEXT')) <> 'TEXT' then 1
                            else (select count(distinct m[1]) from pg_catalog.regexp_matches(
                                      coalesce(c ->> 'text', ''), '\{\{\s*([A-Za-z0-9_]+)\s*\}\}', 'g') m)
                       end as n
                  from pg_catalog.jsonb_array_elements(coalesce(t -> 'components', '[]')) c
                 where pg_catalog.upper(c ->> 'type') <> 'BUTTONS'
                union all
                select 'BUTTONS:' || (b.ord - 1),
                       -- a copy-code or one-time-password button takes the code
                       case when pg_catalog.upper(b.btn ->> 'type') in ('COPY_CODE', 'OTP') then 1
                            else (select count(distinct m[1]) from pg_catalog.regexp_matches(
                                      coalesce(b.btn ->> 'url', ''), '\{\{\s*([A-Za-z0-9_]+)\s*\}\}', 'g') m)
                       end
                  from pg_catalog.jsonb_array_elements(coalesce(t -> 'components', '[]')) c,
                       pg_catalog.jsonb_array_elements(coalesce(c -> 'buttons', '[]')) with ordinality b (btn, ord)
                 where pg_catalog.upper(c ->> 'type') = 'BUTTONS'
           ) k where k.n > 0), '{}'),
           t ->> 'id', now()
      from pg_catalog.jsonb_array_elements(p_templates) t
    on conflict (name, language) do update
        set category = excluded.category, status = excluded.status,
            components = excluded.components, placeholders = excluded.placeholders,
            template_id = excluded.template_id, synced_at = excluded.synced_at;
    get diagnostics v_count = row_count;
    -- templates the account no longer lists
    update public.whatsapp_templates w set status = 'REMOVED', synced_at = now()
     where w.synced_at < now() and w.status <> 'REMOVED';
    return v_count;
end
$$;

create function public.whatsapp_check_template(p_payload jsonb)
returns void
language plpgsql
stable
set search_path = ''
as $$
declare
    v_t record;
    v_key text;
    v_want integer;
    v_got integer;
    v_comp jsonb;
begin
    -- not judged before the first sync (the account's templates are unknown)
    if not exists (select 1 from public.whatsapp_templates) then
        return;
    end if;
    select w.status, w.placeholders into v_t from public.whatsapp_templates w
     where w.name = p_payload ->> 'name' and w.language = p_payload -> 'language' ->> 'code';
    if not found then
        raise exception 'p_message_payload: no template % in language % (synced templates)',
            p_payload ->> 'name', p_payload -> 'language' ->> 'code'
            using errcode = 'PDW02',
                  hint = 'check the name and language code, or run platformdb whatsapp templates sync';
    end if;
    if v_t.status <> 'APPROVED' then
        raise exception 'p_message_payload: template % (%) is %, not APPROVED', p_payload ->> 'name',
            p_payload -> 'language' ->> 'code', v_t.status using errcode = 'PDW02';
    end if;
    -- every component with placeholders gets exactly that many parameters; no others
    for v_key in
        select k from pg_catalog.jsonb_object_keys(v_t.placeholders) k
        union
        select case when pg_catalog.upper(c ->> 'type') = 'BUTTON'
                    then 'BUTTONS:' || coalesce(c ->> 'index', '0')
                    else pg_catalog.upper(c ->> 'type') end
          from pg_catalog.jsonb_array_elements(coalesce(p_payload -> 'components', '[]')) c
    loop
        v_want := coalesce((v_t.placeholders ->> v_key)::integer, 0);
        select c into v_comp from pg_catalog.jsonb_array_elements(coalesce(p_payload -> 'components', '[]')) c
         where case when pg_catalog.upper(c ->> 'type') = 'BUTTON'
                    then 'BUTTONS:' || coalesce(c ->> 'index', '0')
                    else pg_catalog.upper(c ->> 'type') end = v_key
         limit 1;
        v_got := case when jsonb_typeof(v_comp -> 'parameters') = 'array'
                      then pg_catalog.jsonb_array_length(v_comp -> 'parameters') else 0 end;
        if v_got <> v_want then
            raise exception 'p_message_payload: template % (%) takes % parameter(s) in %, got %',
                p_payload ->> 'name', p_payload -> 'language' ->> 'code', v_want,
                pg_catalog.lower(v_key), v_got
                using errcode = 'PDW02',
                      hint = 'components: [{"type": "body", "parameters": [{"type": "text", "text": "…"}, …]}]';
        end if;
    end loop;
end
$$;

-- recreated with p_business_user_id (a session is found by either identifier; one that learns
-- the other keeps its history, two sessions of the same user become one)
-- squawk-ignore ban-drop-function -- (recreated right below with the same name, new parameters at the end with defaults)
drop function public.update_whatsapp_session_activity(text, boolean, text, jsonb, text, interval);
create function public.update_whatsapp_session_activity(
    p_phone_number text,
    p_increment_message_count boolean default true,
    p_conversation_state text default null,
    p_context jsonb default null,
    p_profile_name text default null,
    p_session_ttl interval default interval '24 hours',
    p_business_user_id text default null
)
returns uuid
language plpgsql
set search_path = ''
as $$
declare
    v_id uuid;
    v_by_phone uuid;
    v_by_user uuid;
    v_inc integer;
    v_key text;
begin
    if p_phone_number is null and p_business_user_id is null then
        raise exception 'p_phone_number must not be null (unless p_business_user_id is given)'
            using errcode = '22004';
    end if;
    if p_phone_number is not null and p_phone_number !~ '^\+[1-9][0-9]{6,14}$' then
        raise exception 'p_phone_number must be an E.164 phone number, got %', p_phone_number
            using errcode = '22023', hint = 'a + then 7 to 15 digits, e.g. +250788123456';
    end if;
    if p_business_user_id is not null
       and p_business_user_id !~ '^[A-Z]{2}\.(ENT\.)?[A-Za-z0-9]{1,128}$' then
        raise exception 'p_business_user_id must be a business-scoped user id, got %', p_business_user_id
            using errcode = '22023', hint = 'a country code, a dot and up to 128 letters or digits, e.g. US.13491208655302741918';
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

    if p_business_user_id is null then
        -- by phone alone: concurrent first messages make one session (the insert waits for
        -- a concurrent one and finds its row; when that one rolled back, it inserts again)
        loop
            insert into public.whatsapp_sessions as s
                (phone_number, message_count, conversation_state, context, profile_name,
                 last_activity_at, expires_at)
            values (p_phone_number, v_inc, coalesce(p_conversation_state, 'idle'),
                    coalesce(p_context, '{}'), p_profile_name, now(), now() + p_session_ttl)
            on conflict (phone_number) do nothing
            returning s.id into v_id;
            if v_id is not null then
                return v_id;
            end if;
            select s.id into v_id from public.whatsapp_sessions s
             where s.phone_number = p_phone_number for update;
            exit when v_id is not null;
        end loop;
    else
        -- both identifiers: the first messages of a user are serialised on each of them
        -- (sorted, so two callers never wait for each other crosswise)
        for v_key in select k from pg_catalog.unnest(array[p_phone_number, p_business_user_id]) k
                      where k is not null order by k
        loop
            perform pg_catalog.pg_advisory_xact_lock(
                pg_catalog.hashtextextended('platformdb.whatsapp_session:' || v_key, 0));
        end loop;
        if p_phone_number is not null then
            select s.id into v_by_phone from public.whatsapp_sessions s
             where s.phone_number = p_phone_number for update;
        end if;
        select s.id into v_by_user from public.whatsapp_sessions s
         where s.business_user_id = p_business_user_id for update;

        if v_by_phone is not null and v_by_user is not null and v_by_phone <> v_by_user then
            -- one user, two sessions (first known by user id alone, then by phone): the
            -- phone's session takes over the other's messages and counters
            update public.whatsapp_inbound_messages m set session_id = v_by_phone
             where m.session_id = v_by_user;
            update public.whatsapp_message_queue q set session_id = v_by_phone
             where q.session_id = v_by_user;
            update public.whatsapp_sessions p
               set message_count = p.message_count + u.message_count,
                   error_count = p.error_count + u.error_count,
                   user_id = coalesce(p.user_id, u.user_id),
                   profile_name = coalesce(p.profile_name, u.profile_name),
                   context = u.context || p.context,
                   last_activity_at = greatest(p.last_activity_at, u.last_activity_at),
                   expires_at = greatest(p.expires_at, u.expires_at),
                   last_inbound_at = greatest(p.last_inbound_at, u.last_inbound_at),
                   service_window_ends_at = greatest(p.service_window_ends_at, u.service_window_ends_at),
                   created_at = least(p.created_at, u.created_at),
                   updated_at = now()
              from public.whatsapp_sessions u
             where p.id = v_by_phone and u.id = v_by_user;
            delete from public.whatsapp_sessions s where s.id = v_by_user;
        end if;
        v_id := coalesce(v_by_phone, v_by_user);
        if v_id is null then
            insert into public.whatsapp_sessions as s
                (phone_number, business_user_id, message_count, conversation_state, context,
                 profile_name, last_activity_at, expires_at)
            values (p_phone_number, p_business_user_id, v_inc,
                    coalesce(p_conversation_state, 'idle'), coalesce(p_context, '{}'),
                    p_profile_name, now(), now() + p_session_ttl)
            returning s.id into v_id;
            return v_id;
        end if;
    end if;

    update public.whatsapp_sessions s set
        phone_number = coalesce(p_phone_number, s.phone_number),
        -- a phone that now comes with another user id was given a new one by WhatsApp
        business_user_id = coalesce(p_business_user_id, s.business_user_id),
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
     where s.id = v_id;
    return v_id;
end
$$;

-- recreated with p_recipient_user_id and the customer-service window
-- squawk-ignore ban-drop-function -- (recreated right below with the same name, new parameters at the end with defaults)
drop function public.enqueue_whatsapp_message(text, text, jsonb, integer, text, timestamptz, integer, text);
create function public.enqueue_whatsapp_message(
    p_recipient_phone text,
    p_message_type text,
    p_message_payload jsonb,
    p_priority integer default 5,
    p_correlation_id text default null,
    p_scheduled_at timestamptz default now(),
    p_max_retries integer default 5,
    p_idempotency_key text default null,
    p_recipient_user_id text default null,
    p_reply_to_message_id text default null
)
returns uuid
language plpgsql
set search_path = ''
as $$
declare
    v_id uuid;
    v_existing record;
    v_session record;
    v_closes timestamptz;
begin
    if p_recipient_phone is null and p_recipient_user_id is null then
        raise exception 'p_recipient_phone must not be null (unless p_recipient_user_id is given)'
            using errcode = '22004';
    end if;
    if p_recipient_phone is not null and p_recipient_phone !~ '^\+[1-9][0-9]{6,14}$' then
        raise exception 'p_recipient_phone must be an E.164 phone number, got %', p_recipient_phone
            using errcode = '22023', hint = 'a + then 7 to 15 digits, e.g. +250788123456';
    end if;
    if p_recipient_user_id is not null
       and p_recipient_user_id !~ '^[A-Z]{2}\.(ENT\.)?[A-Za-z0-9]{1,128}$' then
        raise exception 'p_recipient_user_id must be a business-scoped user id, got %', p_recipient_user_id
            using errcode = '22023', hint = 'a country code, a dot and up to 128 letters or digits, e.g. US.13491208655302741918';
    end if;
    perform public.whatsapp_validate_payload(p_message_type, p_message_payload);
    if p_message_type = 'template' then
        perform public.whatsapp_check_template(p_message_payload);
    end if;
    if p_reply_to_message_id is not null and char_length(p_reply_to_message_id) not between 1 and 256 then
        raise exception 'p_reply_to_message_id must be the wa message id (1 to 256 characters) of the message replied to'
            using errcode = '22023';
    end if;
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

    -- a replay of a queued message returns it, even once the window has closed since
    if p_idempotency_key is not null then
        select q.id, q.recipient_phone, q.recipient_user_id, q.message_type, q.payload,
               q.reply_to_message_id
          into v_existing
          from public.whatsapp_message_queue q where q.idempotency_key = p_idempotency_key;
        if found then
            if v_existing.recipient_phone is distinct from p_recipient_phone
               or v_existing.recipient_user_id is distinct from p_recipient_user_id
               or v_existing.reply_to_message_id is distinct from p_reply_to_message_id
               or v_existing.message_type <> p_message_type
               or v_existing.payload <> p_message_payload then
                raise exception 'p_idempotency_key % was already used for a different message',
                    p_idempotency_key using errcode = 'PD001';
            end if;
            return v_existing.id;
        end if;
    end if;

    select s.id, s.last_inbound_at, s.service_window_ends_at into v_session
      from public.whatsapp_sessions s
     where s.phone_number = p_recipient_phone or s.business_user_id = p_recipient_user_id
     order by (s.phone_number = p_recipient_phone) desc nulls last
     limit 1;

    -- WhatsApp accepts a free-form message only within 24 h of the user's last message
    -- (72 h when the conversation came from a free entry point); templates always.
    -- A recipient this database never recorded a message from is not judged here: the
    -- number may be answered by another system; the sender maps WhatsApp's 131047 then.
    if p_message_type <> 'template' and v_session.last_inbound_at is not null then
        v_closes := coalesce(v_session.service_window_ends_at,
                             v_session.last_inbound_at + interval '24 hours');
        if v_closes <= greatest(now(), coalesce(p_scheduled_at, now())) then
            raise exception 'p_message_type: a % message to % is outside the customer-service window (the user last wrote at %, the window closed at %)',
                p_message_type, coalesce(p_recipient_phone, p_recipient_user_id),
                v_session.last_inbound_at, v_closes
                using errcode = 'PDW01',
                      hint = 'send an approved template instead (p_message_type => ''template''); free-form messages are allowed for 24 hours after the user''s last message, 72 hours when it came from a free entry point';
        end if;
    end if;

    insert into public.whatsapp_message_queue
        (session_id, recipient_phone, recipient_user_id, message_type, payload, priority,
         correlation_id, scheduled_at, max_retries, idempotency_key, reply_to_message_id)
    values (v_session.id, p_recipient_phone, p_recipient_user_id, p_message_type,
            p_message_payload, p_priority, p_correlation_id, coalesce(p_scheduled_at, now()),
            p_max_retries, p_idempotency_key, p_reply_to_message_id)
    on conflict (idempotency_key) where idempotency_key is not null do nothing
    returning id into v_id;

    if v_id is null then
        -- a concurrent enqueue with the same key won
        select q.id, q.recipient_phone, q.recipient_user_id, q.message_type, q.payload,
               q.reply_to_message_id
          into v_existing
          from public.whatsapp_message_queue q where q.idempotency_key = p_idempotency_key;
        if v_existing.recipient_phone is distinct from p_recipient_phone
           or v_existing.recipient_user_id is distinct from p_recipient_user_id
           or v_existing.reply_to_message_id is distinct from p_reply_to_message_id
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

-- recreated: the claim also returns recipient_user_id
-- squawk-ignore ban-drop-function -- (recreated right below with the same name, new parameters at the end with defaults)
drop function public.claim_whatsapp_messages(integer, integer, text);
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

-- recreated with p_pricing and p_conversation (kept with the message whatever the status does)
-- squawk-ignore ban-drop-function -- (recreated right below with the same name, new parameters at the end with defaults)
drop function public.apply_whatsapp_status(text, text, timestamptz, jsonb);
create function public.apply_whatsapp_status(
    p_whatsapp_message_id text,
    p_status text,
    p_timestamp timestamptz,
    p_error jsonb default null,
    p_pricing jsonb default null,
    p_conversation jsonb default null
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
    v_expires text;
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
    if p_pricing is not null and (jsonb_typeof(p_pricing) <> 'object' or pg_column_size(p_pricing) > 4096) then
        raise exception 'p_pricing must be a JSON object of at most 4096 bytes (the status''s pricing)'
            using errcode = '22023';
    end if;
    if p_conversation is not null
       and (jsonb_typeof(p_conversation) <> 'object' or pg_column_size(p_conversation) > 4096) then
        raise exception 'p_conversation must be a JSON object of at most 4096 bytes (the status''s conversation)'
            using errcode = '22023';
    end if;

    select q.id, q.status, q.session_id into v_msg
      from public.whatsapp_message_queue q
     where q.whatsapp_message_id = p_whatsapp_message_id
       for update;
    if not found then
        -- not (yet) known: the sender may still be recording the id; kept for it
        insert into public.whatsapp_status_backlog as b
            (whatsapp_message_id, status, status_at, error, pricing, conversation)
        values (p_whatsapp_message_id, p_status, p_timestamp, p_error, p_pricing, p_conversation)
        on conflict (whatsapp_message_id, status) do nothing;
        return false;
    end if;

    -- what it costs: the latest status that says so wins (the category can change with it)
    if p_pricing is not null or p_conversation is not null then
        v_expires := p_conversation ->> 'expiration_timestamp';
        update public.whatsapp_message_queue q
           set pricing_billable = case when jsonb_typeof(p_pricing -> 'billable') = 'boolean'
                                       then (p_pricing ->> 'billable')::boolean
                                       else q.pricing_billable end,
               pricing_category = coalesce(pg_catalog.left(p_pricing ->> 'category', 64), q.pricing_category),
               pricing_model = coalesce(pg_catalog.left(p_pricing ->> 'pricing_model', 64), q.pricing_model),
               pricing_type = coalesce(pg_catalog.left(p_pricing ->> 'type', 64), q.pricing_type),
               conversation_id = coalesce(pg_catalog.left(p_conversation ->> 'id', 256), q.conversation_id),
               conversation_origin = coalesce(pg_catalog.left(p_conversation -> 'origin' ->> 'type', 64),
                                              q.conversation_origin),
               conversation_expires_at = case when v_expires ~ '^[0-9]{1,11}$'
                                              then pg_catalog.to_timestamp(v_expires::bigint)
                                              else q.conversation_expires_at end,
               updated_at = now()
         where q.id = v_msg.id;
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

-- same parameters: statuses that waited in the backlog bring their pricing along
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
            select b.status, b.status_at, b.error, b.pricing, b.conversation
              from public.whatsapp_status_backlog b
             where b.whatsapp_message_id = p_whatsapp_message_id
             order by case b.status when 'sent' then 1 when 'delivered' then 2 when 'read' then 3
                                    else 4 end
        loop
            perform public.apply_whatsapp_status(p_whatsapp_message_id, v_status.status,
                                                 v_status.status_at, v_status.error,
                                                 v_status.pricing, v_status.conversation);
        end loop;
        delete from public.whatsapp_status_backlog b
         where b.whatsapp_message_id = p_whatsapp_message_id;
    end if;
    return true;
end
$$;

-- recreated with the sender's user id, the original size and the adjustments made to store
-- it, and the customer-service window
-- squawk-ignore ban-drop-function -- (recreated right below with the same name, new parameters at the end with defaults)
drop function public.record_whatsapp_inbound_message(text, text, text, jsonb, timestamptz, text, text);
create function public.record_whatsapp_inbound_message(
    p_whatsapp_message_id text,
    p_from_phone text,
    p_message_type text,
    p_payload jsonb,
    p_sent_at timestamptz default null,
    p_profile_name text default null,
    p_phone_number_id text default null,
    p_from_user_id text default null,
    p_original_bytes integer default null,
    p_adjustments jsonb default null
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
    v_at timestamptz;
    v_window interval;
begin
    if p_whatsapp_message_id is null or p_whatsapp_message_id = '' then
        raise exception 'p_whatsapp_message_id must not be empty' using errcode = '22004';
    end if;
    if char_length(p_whatsapp_message_id) > 256 then
        raise exception 'p_whatsapp_message_id must be at most 256 characters' using errcode = '22023';
    end if;
    if p_from_phone is null and p_from_user_id is null then
        raise exception 'p_from_phone must not be null (unless p_from_user_id is given)'
            using errcode = '22004';
    end if;
    if p_from_phone is not null and p_from_phone !~ '^\+[1-9][0-9]{6,14}$' then
        raise exception 'p_from_phone must be an E.164 phone number, got %', p_from_phone
            using errcode = '22023', hint = 'a + then 7 to 15 digits, e.g. +250788123456';
    end if;
    if p_from_user_id is not null and p_from_user_id !~ '^[A-Z]{2}\.(ENT\.)?[A-Za-z0-9]{1,128}$' then
        raise exception 'p_from_user_id must be a business-scoped user id, got %', p_from_user_id
            using errcode = '22023', hint = 'a country code, a dot and up to 128 letters or digits, e.g. US.13491208655302741918';
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
    if p_original_bytes is not null and p_original_bytes <= 0 then
        raise exception 'p_original_bytes must be positive' using errcode = '22023';
    end if;
    if p_adjustments is not null and (jsonb_typeof(p_adjustments) <> 'array'
                                      or pg_column_size(p_adjustments) > 16384) then
        raise exception 'p_adjustments must be a JSON array of at most 16384 bytes' using errcode = '22023';
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
        (whatsapp_message_id, from_phone, from_user_id, phone_number_id, message_type, body,
         payload, profile_name, sent_at, original_bytes, adjustments)
    values (p_whatsapp_message_id, p_from_phone, p_from_user_id, p_phone_number_id,
            p_message_type, v_body, p_payload, p_profile_name, p_sent_at, p_original_bytes,
            p_adjustments)
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
        p_profile_name => p_profile_name,
        p_business_user_id => p_from_user_id);

    -- the customer-service window opens with the user's message (never in the future): 24 h,
    -- 72 h when it came from a free entry point (a click-to-WhatsApp ad or a Page button,
    -- which the message's referral names). Any message of the user opens it; a system
    -- message (e.g. "changed their number") is WhatsApp's, not the user's, and does not.
    v_at := least(coalesce(p_sent_at, now()), now());
    v_window := case when p_payload -> 'referral' ->> 'source_type' in ('ad', 'post')
                       or p_payload -> 'referral' ? 'ctwa_clid'
                     then interval '72 hours' else interval '24 hours' end;
    if p_message_type <> 'system' then
        update public.whatsapp_sessions s
           set last_inbound_at = greatest(s.last_inbound_at, v_at),
               service_window_ends_at = greatest(s.service_window_ends_at, v_at + v_window)
         where s.id = v_session;
    end if;
    update public.whatsapp_inbound_messages m set session_id = v_session where m.id = v_id;
    perform pg_catalog.pg_notify('platformdb_whatsapp_inbound', v_id::text);
    return query select v_id, v_session, true;
end
$$;

create function public.defer_whatsapp_message(p_message_id uuid, p_seconds integer)
returns boolean
language plpgsql
set search_path = ''
as $$
begin
    if p_message_id is null or p_seconds is null then
        raise exception '% must not be null', case when p_message_id is null then 'p_message_id' else 'p_seconds' end
            using errcode = '22004';
    end if;
    if p_seconds not between 1 and 86400 then
        raise exception 'p_seconds must be between 1 and 86400, got %', p_seconds using errcode = '22003';
    end if;
    -- the message never left: the claim is not counted as an attempt
    update public.whatsapp_message_queue q
       set status = 'pending', locked_until = null, locked_by = null,
           attempt = greatest(q.attempt - 1, 0),
           scheduled_at = now() + pg_catalog.make_interval(secs => p_seconds),
           updated_at = now()
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

-- dashboard and /metrics (the monitoring_* family of 20260401170000): read-only definers
create function public.monitoring_whatsapp_quarantine(p_limit integer default 20)
returns table (
    id uuid, received_at timestamptz, item_kind text, item_path text, reason text,
    seen_count integer, attempts integer, open_total bigint
)
language sql
stable
security definer
set search_path = ''
as $$
    -- the argument first: a filter on the rows would not run on an empty table
    select public.monitoring_checked_limit(p_limit);
    select q.id, q.received_at, q.item_kind, q.item_path, q.reason, q.seen_count, q.attempts,
           count(*) over ()
      from public.whatsapp_quarantine q
     where q.resolved_at is null
     order by q.received_at desc, q.id
     limit p_limit
$$;

create function public.monitoring_whatsapp_costs(
    p_window interval default interval '7 days',
    p_bucket interval default interval '1 day'
)
returns table (bucket timestamptz, category text, messages bigint, billable bigint)
language sql
stable
security definer
set search_path = ''
as $$
    select public.monitoring_checked_window(p_window, p_bucket);
    select pg_catalog.date_bin(p_bucket, q.sent_at, timestamptz '2000-01-03 00:00:00+00'),
           coalesce(q.pricing_category, 'unknown'),
           count(*),
           count(*) filter (where q.pricing_billable)
      from public.whatsapp_message_queue q
     where q.sent_at is not null and q.sent_at >= pg_catalog.now() - p_window
     group by 1, 2
     order by 1, 2
$$;

-- ---------------------------------------------------------------------------------------
-- views
-- ---------------------------------------------------------------------------------------
create view public.whatsapp_quarantine_stats
with (security_invoker = true)
as
select count(*) filter (where q.resolved_at is null) as open_items,
       count(*) filter (where q.resolved_at is null and q.item_kind = 'message') as open_messages,
       count(*) filter (where q.resolved_at is null and q.item_kind = 'status') as open_statuses,
       count(*) filter (where q.resolved_at is null and q.item_kind not in ('message', 'status'))
           as open_other,
       count(*) filter (where q.received_at >= now() - interval '24 hours') as quarantined_24h,
       count(*) filter (where q.resolved_at >= now() - interval '24 hours') as resolved_24h,
       min(q.received_at) filter (where q.resolved_at is null) as oldest_open_at,
       (select q2.reason from public.whatsapp_quarantine q2
         where q2.resolved_at is null order by q2.received_at desc limit 1) as latest_open_reason
  from public.whatsapp_quarantine q;

create view public.whatsapp_message_costs
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

-- ---------------------------------------------------------------------------------------
-- RLS and grants (Supabase grants ALL by default: take it back, then grant what is needed)
-- ---------------------------------------------------------------------------------------
alter table public.whatsapp_quarantine enable row level security;
alter table public.whatsapp_templates enable row level security;

create policy whatsapp_templates_service_read on public.whatsapp_templates
    for select to service_role using (true);
create policy whatsapp_templates_service_insert on public.whatsapp_templates
    for insert to service_role with check (true);
create policy whatsapp_templates_service_update on public.whatsapp_templates
    for update to service_role using (true) with check (true);

create policy whatsapp_quarantine_service_read on public.whatsapp_quarantine
    for select to service_role using (true);
create policy whatsapp_quarantine_service_insert on public.whatsapp_quarantine
    for insert to service_role with check (true);
create policy whatsapp_quarantine_service_update on public.whatsapp_quarantine
    for update to service_role using (true) with check (true);

revoke all on table public.whatsapp_templates from public, anon, authenticated, service_role;
grant select, insert, update on table public.whatsapp_templates to service_role;
revoke all on table public.whatsapp_quarantine, public.whatsapp_quarantine_stats,
    public.whatsapp_message_costs
    from public, anon, authenticated, service_role;
grant select, insert, update on table public.whatsapp_quarantine to service_role;
grant select on table public.whatsapp_quarantine_stats, public.whatsapp_message_costs to service_role;
-- a signed-in user reads their own session: the new columns too (never the token)
grant select (business_user_id, last_inbound_at, service_window_ends_at)
    on table public.whatsapp_sessions to authenticated;

revoke all on function
    public.quarantine_whatsapp_item(text, text, text, jsonb, text, jsonb),
    public.settle_whatsapp_quarantine(uuid, text, text),
    public.defer_whatsapp_message(uuid, integer),
    public.sync_whatsapp_templates(jsonb),
    public.whatsapp_check_template(jsonb),
    public.update_whatsapp_session_activity(text, boolean, text, jsonb, text, interval, text),
    public.enqueue_whatsapp_message(text, text, jsonb, integer, text, timestamptz, integer, text, text, text),
    public.claim_whatsapp_messages(integer, integer, text),
    public.apply_whatsapp_status(text, text, timestamptz, jsonb, jsonb, jsonb),
    public.record_whatsapp_inbound_message(text, text, text, jsonb, timestamptz, text, text, text, integer, jsonb),
    public.mark_whatsapp_message_sent(uuid, text),
    public.whatsapp_validate_payload(text, jsonb),
    public.monitoring_whatsapp_quarantine(integer),
    public.monitoring_whatsapp_costs(interval, interval)
    from public, anon, authenticated, service_role;
grant execute on function
    public.quarantine_whatsapp_item(text, text, text, jsonb, text, jsonb),
    public.settle_whatsapp_quarantine(uuid, text, text),
    public.defer_whatsapp_message(uuid, integer),
    public.sync_whatsapp_templates(jsonb),
    public.whatsapp_check_template(jsonb),
    public.update_whatsapp_session_activity(text, boolean, text, jsonb, text, interval, text),
    public.enqueue_whatsapp_message(text, text, jsonb, integer, text, timestamptz, integer, text, text, text),
    public.claim_whatsapp_messages(integer, integer, text),
    public.apply_whatsapp_status(text, text, timestamptz, jsonb, jsonb, jsonb),
    public.record_whatsapp_inbound_message(text, text, text, jsonb, timestamptz, text, text, text, integer, jsonb),
    public.mark_whatsapp_message_sent(uuid, text),
    public.whatsapp_validate_payload(text, jsonb),
    public.monitoring_whatsapp_quarantine(integer),
    public.monitoring_whatsapp_costs(interval, interval)
    to service_role;

-- ---------------------------------------------------------------------------------------
-- comments (the reference docs and the dashboard read these from the catalog)
-- ---------------------------------------------------------------------------------------
comment on table public.whatsapp_quarantine is
    'Items of validly signed webhook notifications that could not be stored (a message without a sender, a value the database refuses, a notification in an unknown shape): the rest of the notification is stored and answered 200, each such item waits here with its reason (logged at WARNING) until `platformdb whatsapp requeue-quarantine` stores it after a fix. One row per item even when Meta delivers the notification again.';
comment on column public.whatsapp_quarantine.id is 'Quarantined item id.';
comment on column public.whatsapp_quarantine.notification_id is 'The notification it came in: hex SHA-256 of the raw body (the same delivery again has the same id).';
comment on column public.whatsapp_quarantine.item_path is 'Where in the notification, e.g. entry[0].changes[0].value.messages[1].';
comment on column public.whatsapp_quarantine.item_kind is 'notification, entry, change, message or status.';
comment on column public.whatsapp_quarantine.item is 'The item as received, in a storable form (NUL characters and lone surrogates escaped as \u0000 text); one over 256 KiB is kept as its size and first 4096 characters.';
comment on column public.whatsapp_quarantine.context is 'What storing it again needs from around it: phone_number_id and the contacts of its change.';
comment on column public.whatsapp_quarantine.reason is 'Why it could not be stored (the latest retry''s reason after a failed requeue).';
comment on column public.whatsapp_quarantine.received_at is 'When it was first quarantined.';
comment on column public.whatsapp_quarantine.last_seen_at is 'When a delivery last carried it.';
comment on column public.whatsapp_quarantine.seen_count is 'How many deliveries carried it.';
comment on column public.whatsapp_quarantine.attempts is 'Requeue attempts so far.';
comment on column public.whatsapp_quarantine.last_attempt_at is 'When it was last requeued.';
comment on column public.whatsapp_quarantine.resolved_at is 'When a requeue stored it (or found it stored, or it was discarded); null = still open.';
comment on column public.whatsapp_quarantine.resolution is 'stored, duplicate (already stored by then) or discarded; null while open.';

comment on column public.whatsapp_sessions.business_user_id is 'The user''s business-scoped user id (BSUID, e.g. US.13491208655302741918) when WhatsApp gave one; unique. A session has a phone, a BSUID or both; the one it learns later is added and its history kept.';
comment on column public.whatsapp_sessions.last_inbound_at is 'When the user last wrote (the WhatsApp timestamp of their latest message): the customer-service window opens here.';
comment on column public.whatsapp_sessions.service_window_ends_at is 'Until when free-form messages may be sent: 24 h after the user''s last message, 72 h when it came from a free entry point (referral of a click-to-WhatsApp ad or Page button). Templates are allowed at any time.';
comment on column public.whatsapp_inbound_messages.from_user_id is 'Sender''s business-scoped user id (from_user_id), when WhatsApp sent one; the message has a from_phone, a from_user_id or both.';
comment on column public.whatsapp_inbound_messages.original_bytes is 'Size in bytes of the message as received, when it had to be changed to be stored (see adjustments).';
comment on column public.whatsapp_inbound_messages.adjustments is 'What was changed to store the message: [{path, action: escaped|truncated, original_chars?}]; null when stored exactly as received.';
comment on column public.whatsapp_message_queue.recipient_user_id is 'Recipient''s business-scoped user id; the message goes to recipient_phone when set, else to this id.';
comment on column public.whatsapp_message_queue.reply_to_message_id is 'The wa message id this message replies to (sent as context.message_id: WhatsApp shows it quoted).';
comment on column public.whatsapp_message_queue.pricing_billable is 'pricing.billable of the latest status that had pricing: whether WhatsApp charges for the message.';
comment on column public.whatsapp_message_queue.pricing_category is 'pricing.category: marketing, utility, authentication, service, referral_conversion, …';
comment on column public.whatsapp_message_queue.pricing_model is 'pricing.pricing_model, e.g. CBP or PMP.';
comment on column public.whatsapp_message_queue.pricing_type is 'pricing.type, e.g. regular, free_customer_service, free_entry_point.';
comment on column public.whatsapp_message_queue.conversation_id is 'conversation.id of the status.';
comment on column public.whatsapp_message_queue.conversation_origin is 'conversation.origin.type, e.g. service, utility, marketing, referral_conversion.';
comment on column public.whatsapp_message_queue.conversation_expires_at is 'conversation.expiration_timestamp, when WhatsApp sent one.';
comment on column public.whatsapp_status_backlog.pricing is 'The status''s pricing object, applied with it.';
comment on column public.whatsapp_status_backlog.conversation is 'The status''s conversation object, applied with it.';

comment on function public.quarantine_whatsapp_item(text, text, text, jsonb, text, jsonb) is
    'Keeps an item of a signed notification that could not be stored, with its reason and context; the same item of the same notification again only counts another sighting. Returns its id. Service only.';
comment on function public.settle_whatsapp_quarantine(uuid, text, text) is
    'Records a requeue of a quarantined item: stored, duplicate or discarded resolve it; failed counts the attempt and keeps it open with the new reason. False when it was already resolved; PD004 when unknown. Service only.';
comment on table public.whatsapp_templates is
    'The account''s message templates as the Graph API lists them, stored by platformdb whatsapp templates sync (sync_whatsapp_templates). Once synced, enqueueing a template checks that its name and language exist, that it is APPROVED and that each component gets as many parameters as it has placeholders.';
comment on column public.whatsapp_templates.name is 'Template name.';
comment on column public.whatsapp_templates.language is 'Language code, e.g. en_US or rw.';
comment on column public.whatsapp_templates.category is 'MARKETING, UTILITY or AUTHENTICATION.';
comment on column public.whatsapp_templates.status is 'APPROVED, PENDING, REJECTED, PAUSED, DISABLED, …; REMOVED when the last sync no longer listed it.';
comment on column public.whatsapp_templates.components is 'The components as the Graph API returns them (HEADER, BODY, FOOTER, BUTTONS).';
comment on column public.whatsapp_templates.placeholders is 'Placeholders per component, e.g. {"BODY": 2, "BUTTONS:0": 1} (a button by its index).';
comment on column public.whatsapp_templates.template_id is 'The Graph API''s template id.';
comment on column public.whatsapp_templates.synced_at is 'When the last sync wrote it.';
comment on function public.sync_whatsapp_templates(jsonb) is
    'Stores the account''s templates (a JSON array of the Graph API''s template objects: name, language, category, status, components, id) with their placeholders per component; those no longer listed become REMOVED. Returns how many were stored. Service only.';
comment on function public.whatsapp_check_template(jsonb) is
    'Checks a template message payload against the synced templates: known name and language, APPROVED, and as many parameters per component as placeholders; PDW02 otherwise. Passes while no template has been synced. Service only.';
comment on function public.defer_whatsapp_message(uuid, integer) is
    'Gives a claimed message back to be sent in p_seconds, the attempt not counted: the sender defers a message whose recipient''s pair rate limit (WhatsApp 131056) would make it wait too long. False when it is not being sent; PD004 when unknown. Service only.';
comment on function public.update_whatsapp_session_activity(text, boolean, text, jsonb, text, interval, text) is
    'Records activity on the session of p_phone_number and/or p_business_user_id (at least one), creating it if needed: last_activity_at, message count (+1 unless p_increment_message_count is false), expiry pushed to now + p_session_ttl, optional conversation state, context merge and profile name. A session found by one identifier learns the other; when both name different sessions, the phone''s takes over the other''s messages and counters. An expired or inactive session becomes active again (an expired one with a new token, idle state and empty context); a suspended one stays suspended. Returns the session id. Service only.';
comment on function public.enqueue_whatsapp_message(text, text, jsonb, integer, text, timestamptz, integer, text, text, text) is
    'Queues an outbound message to p_recipient_phone and/or p_recipient_user_id (a BSUID), optionally as a reply to the wa message p_reply_to_message_id, and returns its id. Validates the recipient, the type and its payload, priority 1-10 (1 most urgent), max retries 0-20; an optional idempotency key returns the same id for the same message (PD001 for a different one). A non-template message to a user whose customer-service window (24 h after their last message, 72 h from a free entry point) has closed is refused with PDW01 and the hint to send a template. Wakes senders with NOTIFY platformdb_whatsapp_outbound. Service only.';
comment on function public.claim_whatsapp_messages(integer, integer, text) is
    'Claims up to p_limit due messages (priority then schedule order) with FOR UPDATE SKIP LOCKED, leasing them for p_lease_seconds: two claimers never get the same message, and a message whose lease runs out is claimable again (or failed, when that was its last allowed attempt). Returns the recipient''s phone and business-scoped user id, and the message replied to. Service only.';
comment on function public.apply_whatsapp_status(text, text, timestamptz, jsonb, jsonb, jsonb) is
    'Applies a delivery status callback by wa message id, idempotently: sent → delivered → read never moves backwards (a late delivered after read changes nothing); failed only before delivery, with the error kept. The status''s pricing and conversation are kept with the message. Unknown ids wait in whatsapp_status_backlog. Returns true when the status changed. Service only.';
comment on function public.whatsapp_validate_payload(text, jsonb) is
    'Checks an outbound message type and payload (the Cloud API object for the type; a reaction is {message_id, emoji}, an empty emoji removes it); raises 22023/22004/22003 naming p_message_type or the offending p_message_payload field. Service only.';
comment on function public.mark_whatsapp_message_sent(uuid, text) is
    'Records that WhatsApp accepted a claimed message under p_whatsapp_message_id, then applies statuses (with their pricing) that arrived earlier. A replay with the same id returns false; PD005 when another sender already recorded a different id; PD002 when failed or cancelled. Service only.';
comment on function public.record_whatsapp_inbound_message(text, text, text, jsonb, timestamptz, text, text, text, integer, jsonb) is
    'Records a message a user sent (webhook) from p_from_phone and/or p_from_user_id, idempotent on the wa message id: a new message updates the sender''s session (activity, count, context.last_inbound, profile name, last_inbound_at and the customer-service window) and NOTIFYs platformdb_whatsapp_inbound; a replay changes nothing (is_new false). p_original_bytes and p_adjustments say what was changed to store it. Service only.';

comment on function public.monitoring_whatsapp_quarantine(integer) is
    'Dashboard and /metrics: the newest open items of the webhook quarantine (kind, path, reason, sightings, retries), at most p_limit, each with the number of open items in all (open_total). Read-only.';
comment on function public.monitoring_whatsapp_costs(interval, interval) is
    'Dashboard and /metrics: outbound messages sent within p_window per p_bucket and pricing category (unknown until a status with pricing arrives), with how many are billable. Read-only.';

comment on view public.whatsapp_quarantine_stats is
    'The webhook quarantine in one row: open items (messages, statuses, other), quarantined and resolved in the last 24 h, the oldest open item and the latest open reason. Service only.';
comment on view public.whatsapp_message_costs is
    'Outbound messages per UTC day sent and pricing category (unknown until a status with pricing arrives): messages, billable, without pricing yet, conversations. Service only.';

COMMIT;
