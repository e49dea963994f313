-- platformdb 20260401320000 down: the exact reverse of whatsapp_inbound_domains.
-- Restores the table checks of whatsapp_sessions and whatsapp_inbound_messages (validated,
-- as they were) and their columns' types; drops the domains.
BEGIN;

-- the view that reads the columns is recreated below, as 20260401110000 made it
-- platformdb-lint: allow additive-only (the up file dropped and recreated this view around the column types: this does the same back)
-- squawk-ignore ban-drop-view
drop view public.whatsapp_session_stats;

alter table public.whatsapp_sessions
    -- squawk-ignore changing-column-type
    alter column phone_number type text,
    -- squawk-ignore changing-column-type
    alter column business_user_id type text,
    -- squawk-ignore changing-column-type
    alter column session_token type text,
    -- squawk-ignore changing-column-type
    alter column status type text,
    -- squawk-ignore changing-column-type
    alter column status_reason type text,
    -- squawk-ignore changing-column-type
    alter column conversation_state type text,
    -- squawk-ignore changing-column-type
    alter column context type jsonb,
    -- squawk-ignore changing-column-type
    alter column profile_name type text,
    -- squawk-ignore changing-column-type
    alter column message_count type integer,
    -- squawk-ignore changing-column-type
    alter column error_count type integer;
alter table public.whatsapp_inbound_messages
    -- squawk-ignore changing-column-type
    alter column whatsapp_message_id type text,
    -- squawk-ignore changing-column-type
    alter column from_phone type text,
    -- squawk-ignore changing-column-type
    alter column from_user_id type text,
    -- squawk-ignore changing-column-type
    alter column message_type type text,
    -- squawk-ignore changing-column-type
    alter column body type text,
    -- squawk-ignore changing-column-type
    alter column payload type jsonb,
    -- squawk-ignore changing-column-type
    alter column profile_name type text,
    -- squawk-ignore changing-column-type
    alter column adjustments type jsonb,
    -- squawk-ignore changing-column-type
    alter column original_bytes type integer;
-- the checks back on the tables, validated as they were (a scan of each)
-- squawk-ignore constraint-missing-not-valid
alter table public.whatsapp_sessions add constraint whatsapp_sessions_phone_e164
    check (phone_number ~ '^\+[1-9][0-9]{6,14}$');
-- squawk-ignore constraint-missing-not-valid
alter table public.whatsapp_sessions add constraint whatsapp_sessions_business_user_id_format
    check (business_user_id is null
               or business_user_id ~ '^[A-Z]{2}\.(ENT\.)?[A-Za-z0-9]{1,128}$');
-- squawk-ignore constraint-missing-not-valid
alter table public.whatsapp_sessions add constraint whatsapp_sessions_token_length
    check (char_length(session_token) >= 32);
-- squawk-ignore constraint-missing-not-valid
alter table public.whatsapp_sessions add constraint whatsapp_sessions_status_valid
    check (status in ('active', 'inactive', 'suspended', 'expired'));
-- squawk-ignore constraint-missing-not-valid
alter table public.whatsapp_sessions add constraint whatsapp_sessions_reason_length
    check (status_reason is null or char_length(status_reason) <= 500);
-- squawk-ignore constraint-missing-not-valid
alter table public.whatsapp_sessions add constraint whatsapp_sessions_state_length
    check (char_length(conversation_state) between 1 and 100);
-- squawk-ignore constraint-missing-not-valid
alter table public.whatsapp_sessions add constraint whatsapp_sessions_context_object
    check (jsonb_typeof(context) = 'object' and pg_column_size(context) <= 16384);
-- squawk-ignore constraint-missing-not-valid
alter table public.whatsapp_sessions add constraint whatsapp_sessions_profile_name_length
    check (profile_name is null or char_length(profile_name) <= 256);
-- squawk-ignore constraint-missing-not-valid
alter table public.whatsapp_sessions add constraint whatsapp_sessions_counts_nonnegative
    check (message_count >= 0 and error_count >= 0);
-- squawk-ignore constraint-missing-not-valid
alter table public.whatsapp_inbound_messages add constraint whatsapp_inbound_messages_wa_id_length
    check (char_length(whatsapp_message_id) between 1 and 256);
-- squawk-ignore constraint-missing-not-valid
alter table public.whatsapp_inbound_messages add constraint whatsapp_inbound_messages_from_e164
    check (from_phone ~ '^\+[1-9][0-9]{6,14}$');
-- squawk-ignore constraint-missing-not-valid
alter table public.whatsapp_inbound_messages add constraint whatsapp_inbound_messages_from_user_id_format
    check (from_user_id is null
               or from_user_id ~ '^[A-Z]{2}\.(ENT\.)?[A-Za-z0-9]{1,128}$');
-- squawk-ignore constraint-missing-not-valid
alter table public.whatsapp_inbound_messages add constraint whatsapp_inbound_messages_type_format
    check (message_type ~ '^[a-z_]{1,32}$');
-- squawk-ignore constraint-missing-not-valid
alter table public.whatsapp_inbound_messages add constraint whatsapp_inbound_messages_body_length
    check (body is null or char_length(body) <= 4096);
-- squawk-ignore constraint-missing-not-valid
alter table public.whatsapp_inbound_messages add constraint whatsapp_inbound_messages_payload_object
    check (jsonb_typeof(payload) = 'object' and pg_column_size(payload) <= 65536);
-- squawk-ignore constraint-missing-not-valid
alter table public.whatsapp_inbound_messages add constraint whatsapp_inbound_messages_profile_name_length
    check (profile_name is null or char_length(profile_name) <= 256);
-- squawk-ignore constraint-missing-not-valid
alter table public.whatsapp_inbound_messages add constraint whatsapp_inbound_messages_adjustments_array
    check (adjustments is null
               or (jsonb_typeof(adjustments) = 'array' and pg_column_size(adjustments) <= 16384));
-- squawk-ignore constraint-missing-not-valid
alter table public.whatsapp_inbound_messages add constraint whatsapp_inbound_messages_original_bytes_positive
    check (original_bytes is null or original_bytes > 0);

drop domain public.whatsapp_sessions_phone_number;
drop domain public.whatsapp_sessions_business_user_id;
drop domain public.whatsapp_sessions_session_token;
drop domain public.whatsapp_sessions_status;
drop domain public.whatsapp_sessions_status_reason;
drop domain public.whatsapp_sessions_conversation_state;
drop domain public.whatsapp_sessions_context;
drop domain public.whatsapp_sessions_profile_name;
drop domain public.whatsapp_sessions_count;
drop domain public.whatsapp_inbound_messages_whatsapp_message_id;
drop domain public.whatsapp_inbound_messages_from_phone;
drop domain public.whatsapp_inbound_messages_from_user_id;
drop domain public.whatsapp_inbound_messages_message_type;
drop domain public.whatsapp_inbound_messages_body;
drop domain public.whatsapp_inbound_messages_payload;
drop domain public.whatsapp_inbound_messages_profile_name;
drop domain public.whatsapp_inbound_messages_adjustments;
drop domain public.whatsapp_inbound_messages_original_bytes;

create or replace view public.whatsapp_session_stats
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

revoke all on table public.whatsapp_session_stats from public, anon, authenticated, service_role;
grant select on table public.whatsapp_session_stats to service_role;
comment on view public.whatsapp_session_stats is
    'One row per session status (all four, even when empty): sessions, active in the last hour and day, linked to a user, messages, errors, last activity. Service only.';

COMMIT;
