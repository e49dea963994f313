-- platformdb 20260401320000: the WhatsApp inbound path's one-column checks on domains
-- Same signatures, same checks, same errors, same guarantees; less work per statement. As
-- 20260401310000 did for the outbound queue: PostgreSQL prepares a table's CHECK constraints
-- anew for every INSERT or UPDATE statement that writes a row (read back from their stored
-- form, simplified and compiled). Each inbound message is an INSERT into
-- whatsapp_inbound_messages (10 checks) and an UPDATE of its sender's whatsapp_sessions row
-- (11), and every enqueue and status touches the session too. A domain's checks are compiled
-- once per connection, and run only on the columns a statement assigns. So:
-- - whatsapp_sessions: phone_number, business_user_id, session_token, status, status_reason,
--   conversation_state, context and profile_name move onto domains that carry the same checks
--   under the same names; whatsapp_sessions_counts_nonnegative (one check over two columns,
--   each tested on its own) becomes that name on one domain of message_count and error_count;
--   whatsapp_sessions_identified and whatsapp_sessions_window_after_inbound stay on the table;
-- - whatsapp_inbound_messages: whatsapp_message_id, from_phone, from_user_id, message_type,
--   body, payload, profile_name, adjustments and original_bytes likewise;
--   whatsapp_inbound_messages_sender_known stays on the table.
-- The same values are refused, SQLSTATE 23514, under the same constraint name.
-- How the columns change type: onto the domains while these have no checks yet, a catalog
-- change (no table rewrite); the indexes on those columns are rebuilt in this transaction
-- (time in proportion to the tables; the webhook waits for it). The domains then get their
-- checks, validated by one scan. whatsapp_session_stats, which reads changed columns, is
-- recreated as it was (the same column types). No function returns these columns as a table.
-- The down file restores the table checks and the column types and drops the domains.
BEGIN;

-- ---------------------------------------------------------------------------------------
-- guard: the names this file creates must be free
-- ---------------------------------------------------------------------------------------
select public.platformdb_assert_names_free(array[
    'whatsapp_sessions_phone_number',
    'whatsapp_sessions_business_user_id',
    'whatsapp_sessions_session_token',
    'whatsapp_sessions_status',
    'whatsapp_sessions_status_reason',
    'whatsapp_sessions_conversation_state',
    'whatsapp_sessions_context',
    'whatsapp_sessions_profile_name',
    'whatsapp_sessions_count',
    'whatsapp_inbound_messages_whatsapp_message_id',
    'whatsapp_inbound_messages_from_phone',
    'whatsapp_inbound_messages_from_user_id',
    'whatsapp_inbound_messages_message_type',
    'whatsapp_inbound_messages_body',
    'whatsapp_inbound_messages_payload',
    'whatsapp_inbound_messages_profile_name',
    'whatsapp_inbound_messages_adjustments',
    'whatsapp_inbound_messages_original_bytes'
]);

-- ---------------------------------------------------------------------------------------
-- domains (checks added below, after the columns moved onto them)
-- ---------------------------------------------------------------------------------------
create domain public.whatsapp_sessions_phone_number as text;
create domain public.whatsapp_sessions_business_user_id as text;
create domain public.whatsapp_sessions_session_token as text;
create domain public.whatsapp_sessions_status as text;
create domain public.whatsapp_sessions_status_reason as text;
create domain public.whatsapp_sessions_conversation_state as text;
create domain public.whatsapp_sessions_context as jsonb;
create domain public.whatsapp_sessions_profile_name as text;
create domain public.whatsapp_sessions_count as integer;
create domain public.whatsapp_inbound_messages_whatsapp_message_id as text;
create domain public.whatsapp_inbound_messages_from_phone as text;
create domain public.whatsapp_inbound_messages_from_user_id as text;
create domain public.whatsapp_inbound_messages_message_type as text;
create domain public.whatsapp_inbound_messages_body as text;
create domain public.whatsapp_inbound_messages_payload as jsonb;
create domain public.whatsapp_inbound_messages_profile_name as text;
create domain public.whatsapp_inbound_messages_adjustments as jsonb;
create domain public.whatsapp_inbound_messages_original_bytes as integer;

-- ---------------------------------------------------------------------------------------
-- the tables: their one-column checks go, their columns move onto the domains
-- ---------------------------------------------------------------------------------------
-- The view reads columns whose type changes; it is recreated below as it was.
-- squawk-ignore ban-drop-view
drop view public.whatsapp_session_stats;

-- Each check leaves its table only to come back, under its name, on the column's domain
-- below, in this transaction: no row is ever unchecked.
-- squawk-ignore ban-drop-constraint
alter table public.whatsapp_sessions drop constraint whatsapp_sessions_phone_e164;
-- squawk-ignore ban-drop-constraint
alter table public.whatsapp_sessions drop constraint whatsapp_sessions_business_user_id_format;
-- squawk-ignore ban-drop-constraint
alter table public.whatsapp_sessions drop constraint whatsapp_sessions_token_length;
-- squawk-ignore ban-drop-constraint
alter table public.whatsapp_sessions drop constraint whatsapp_sessions_status_valid;
-- squawk-ignore ban-drop-constraint
alter table public.whatsapp_sessions drop constraint whatsapp_sessions_reason_length;
-- squawk-ignore ban-drop-constraint
alter table public.whatsapp_sessions drop constraint whatsapp_sessions_state_length;
-- squawk-ignore ban-drop-constraint
alter table public.whatsapp_sessions drop constraint whatsapp_sessions_context_object;
-- squawk-ignore ban-drop-constraint
alter table public.whatsapp_sessions drop constraint whatsapp_sessions_profile_name_length;
-- squawk-ignore ban-drop-constraint
alter table public.whatsapp_sessions drop constraint whatsapp_sessions_counts_nonnegative;
-- squawk-ignore ban-drop-constraint
alter table public.whatsapp_inbound_messages drop constraint whatsapp_inbound_messages_wa_id_length;
-- squawk-ignore ban-drop-constraint
alter table public.whatsapp_inbound_messages drop constraint whatsapp_inbound_messages_from_e164;
-- squawk-ignore ban-drop-constraint
alter table public.whatsapp_inbound_messages drop constraint whatsapp_inbound_messages_from_user_id_format;
-- squawk-ignore ban-drop-constraint
alter table public.whatsapp_inbound_messages drop constraint whatsapp_inbound_messages_type_format;
-- squawk-ignore ban-drop-constraint
alter table public.whatsapp_inbound_messages drop constraint whatsapp_inbound_messages_body_length;
-- squawk-ignore ban-drop-constraint
alter table public.whatsapp_inbound_messages drop constraint whatsapp_inbound_messages_payload_object;
-- squawk-ignore ban-drop-constraint
alter table public.whatsapp_inbound_messages drop constraint whatsapp_inbound_messages_profile_name_length;
-- squawk-ignore ban-drop-constraint
alter table public.whatsapp_inbound_messages drop constraint whatsapp_inbound_messages_adjustments_array;
-- squawk-ignore ban-drop-constraint
alter table public.whatsapp_inbound_messages drop constraint whatsapp_inbound_messages_original_bytes_positive;

-- Same base types, domains without checks yet: a catalog change, no table rewrite (the
-- indexes on these columns are rebuilt, once per table: one statement each).
alter table public.whatsapp_sessions
    -- squawk-ignore changing-column-type
    alter column phone_number type public.whatsapp_sessions_phone_number,
    -- squawk-ignore changing-column-type
    alter column business_user_id type public.whatsapp_sessions_business_user_id,
    -- squawk-ignore changing-column-type
    alter column session_token type public.whatsapp_sessions_session_token,
    -- squawk-ignore changing-column-type
    alter column status type public.whatsapp_sessions_status,
    -- squawk-ignore changing-column-type
    alter column status_reason type public.whatsapp_sessions_status_reason,
    -- squawk-ignore changing-column-type
    alter column conversation_state type public.whatsapp_sessions_conversation_state,
    -- squawk-ignore changing-column-type
    alter column context type public.whatsapp_sessions_context,
    -- squawk-ignore changing-column-type
    alter column profile_name type public.whatsapp_sessions_profile_name,
    -- squawk-ignore changing-column-type
    alter column message_count type public.whatsapp_sessions_count,
    -- squawk-ignore changing-column-type
    alter column error_count type public.whatsapp_sessions_count;
alter table public.whatsapp_inbound_messages
    -- squawk-ignore changing-column-type
    alter column whatsapp_message_id type public.whatsapp_inbound_messages_whatsapp_message_id,
    -- squawk-ignore changing-column-type
    alter column from_phone type public.whatsapp_inbound_messages_from_phone,
    -- squawk-ignore changing-column-type
    alter column from_user_id type public.whatsapp_inbound_messages_from_user_id,
    -- squawk-ignore changing-column-type
    alter column message_type type public.whatsapp_inbound_messages_message_type,
    -- squawk-ignore changing-column-type
    alter column body type public.whatsapp_inbound_messages_body,
    -- squawk-ignore changing-column-type
    alter column payload type public.whatsapp_inbound_messages_payload,
    -- squawk-ignore changing-column-type
    alter column profile_name type public.whatsapp_inbound_messages_profile_name,
    -- squawk-ignore changing-column-type
    alter column adjustments type public.whatsapp_inbound_messages_adjustments,
    -- squawk-ignore changing-column-type
    alter column original_bytes type public.whatsapp_inbound_messages_original_bytes;

-- The checks, on the domains: compiled once per connection (the reason for this file).
-- Validated by one scan of the columns that use them.
-- squawk-ignore ban-alter-domain-with-add-constraint
alter domain public.whatsapp_sessions_phone_number add constraint whatsapp_sessions_phone_e164
    check (value ~ '^\+[1-9][0-9]{6,14}$');
-- squawk-ignore ban-alter-domain-with-add-constraint
alter domain public.whatsapp_sessions_business_user_id add constraint whatsapp_sessions_business_user_id_format
    check (value ~ '^[A-Z]{2}\.(ENT\.)?[A-Za-z0-9]{1,128}$');
-- squawk-ignore ban-alter-domain-with-add-constraint
alter domain public.whatsapp_sessions_session_token add constraint whatsapp_sessions_token_length
    check (char_length(value) >= 32);
-- squawk-ignore ban-alter-domain-with-add-constraint
alter domain public.whatsapp_sessions_status add constraint whatsapp_sessions_status_valid
    check (value in ('active', 'inactive', 'suspended', 'expired'));
-- squawk-ignore ban-alter-domain-with-add-constraint
alter domain public.whatsapp_sessions_status_reason add constraint whatsapp_sessions_reason_length
    check (char_length(value) <= 500);
-- squawk-ignore ban-alter-domain-with-add-constraint
alter domain public.whatsapp_sessions_conversation_state add constraint whatsapp_sessions_state_length
    check (char_length(value) between 1 and 100);
-- squawk-ignore ban-alter-domain-with-add-constraint
alter domain public.whatsapp_sessions_context add constraint whatsapp_sessions_context_object
    check (jsonb_typeof(value) = 'object' and pg_column_size(value) <= 16384);
-- squawk-ignore ban-alter-domain-with-add-constraint
alter domain public.whatsapp_sessions_profile_name add constraint whatsapp_sessions_profile_name_length
    check (char_length(value) <= 256);
-- squawk-ignore ban-alter-domain-with-add-constraint
alter domain public.whatsapp_sessions_count add constraint whatsapp_sessions_counts_nonnegative
    check (value >= 0);
-- squawk-ignore ban-alter-domain-with-add-constraint
alter domain public.whatsapp_inbound_messages_whatsapp_message_id add constraint whatsapp_inbound_messages_wa_id_length
    check (char_length(value) between 1 and 256);
-- squawk-ignore ban-alter-domain-with-add-constraint
alter domain public.whatsapp_inbound_messages_from_phone add constraint whatsapp_inbound_messages_from_e164
    check (value ~ '^\+[1-9][0-9]{6,14}$');
-- squawk-ignore ban-alter-domain-with-add-constraint
alter domain public.whatsapp_inbound_messages_from_user_id add constraint whatsapp_inbound_messages_from_user_id_format
    check (value ~ '^[A-Z]{2}\.(ENT\.)?[A-Za-z0-9]{1,128}$');
-- squawk-ignore ban-alter-domain-with-add-constraint
alter domain public.whatsapp_inbound_messages_message_type add constraint whatsapp_inbound_messages_type_format
    check (value ~ '^[a-z_]{1,32}$');
-- squawk-ignore ban-alter-domain-with-add-constraint
alter domain public.whatsapp_inbound_messages_body add constraint whatsapp_inbound_messages_body_length
    check (char_length(value) <= 4096);
-- squawk-ignore ban-alter-domain-with-add-constraint
alter domain public.whatsapp_inbound_messages_payload add constraint whatsapp_inbound_messages_payload_object
    check (jsonb_typeof(value) = 'object' and pg_column_size(value) <= 65536);
-- squawk-ignore ban-alter-domain-with-add-constraint
alter domain public.whatsapp_inbound_messages_profile_name add constraint whatsapp_inbound_messages_profile_name_length
    check (char_length(value) <= 256);
-- squawk-ignore ban-alter-domain-with-add-constraint
alter domain public.whatsapp_inbound_messages_adjustments add constraint whatsapp_inbound_messages_adjustments_array
    check (jsonb_typeof(value) = 'array' and pg_column_size(value) <= 16384);
-- squawk-ignore ban-alter-domain-with-add-constraint
alter domain public.whatsapp_inbound_messages_original_bytes add constraint whatsapp_inbound_messages_original_bytes_positive
    check (value > 0);

-- (OR REPLACE: the view is ours, from 20260401110000; it was dropped above). The same
-- columns with the same types as before.
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

comment on domain public.whatsapp_sessions_phone_number is 'whatsapp_sessions.phone_number: an E.164 phone number (+ and 7 to 15 digits)';
comment on domain public.whatsapp_sessions_business_user_id is 'whatsapp_sessions.business_user_id: a business-scoped user id (CC.xxx or CC.ENT.xxx)';
comment on domain public.whatsapp_sessions_session_token is 'whatsapp_sessions.session_token: at least 32 characters';
comment on domain public.whatsapp_sessions_status is 'whatsapp_sessions.status: active, inactive, suspended or expired';
comment on domain public.whatsapp_sessions_status_reason is 'whatsapp_sessions.status_reason: at most 500 characters';
comment on domain public.whatsapp_sessions_conversation_state is 'whatsapp_sessions.conversation_state: 1 to 100 characters';
comment on domain public.whatsapp_sessions_context is 'whatsapp_sessions.context: a JSON object of at most 16384 bytes';
comment on domain public.whatsapp_sessions_profile_name is 'whatsapp_sessions.profile_name: at most 256 characters';
comment on domain public.whatsapp_sessions_count is 'whatsapp_sessions.message_count, whatsapp_sessions.error_count: 0 or more';
comment on domain public.whatsapp_inbound_messages_whatsapp_message_id is 'whatsapp_inbound_messages.whatsapp_message_id: 1 to 256 characters';
comment on domain public.whatsapp_inbound_messages_from_phone is 'whatsapp_inbound_messages.from_phone: an E.164 phone number (+ and 7 to 15 digits)';
comment on domain public.whatsapp_inbound_messages_from_user_id is 'whatsapp_inbound_messages.from_user_id: a business-scoped user id (CC.xxx or CC.ENT.xxx)';
comment on domain public.whatsapp_inbound_messages_message_type is 'whatsapp_inbound_messages.message_type: 1 to 32 of a-z and _';
comment on domain public.whatsapp_inbound_messages_body is 'whatsapp_inbound_messages.body: at most 4096 characters';
comment on domain public.whatsapp_inbound_messages_payload is 'whatsapp_inbound_messages.payload: a JSON object of at most 65536 bytes';
comment on domain public.whatsapp_inbound_messages_profile_name is 'whatsapp_inbound_messages.profile_name: at most 256 characters';
comment on domain public.whatsapp_inbound_messages_adjustments is 'whatsapp_inbound_messages.adjustments: a JSON array of at most 16384 bytes';
comment on domain public.whatsapp_inbound_messages_original_bytes is 'whatsapp_inbound_messages.original_bytes: 1 or more';

COMMIT;
