-- platformdb 20260401110000 down: the exact reverse of whatsapp_sessions.
-- Drops only what the up file created (indexes, policies and constraints go with their
-- tables).
BEGIN;

drop view public.whatsapp_queue_stats;
drop view public.whatsapp_session_stats;
drop function public.purge_whatsapp_history(interval);
drop function public.mark_whatsapp_inbound_handled(uuid);
drop function public.record_whatsapp_inbound_message(text, text, text, jsonb, timestamptz, text, text);
drop function public.cancel_whatsapp_message(uuid);
drop function public.release_whatsapp_message(uuid);
drop function public.mark_whatsapp_message_failed(uuid, text, boolean, integer, jsonb);
drop function public.mark_whatsapp_message_sent(uuid, text);
drop function public.apply_whatsapp_status(text, text, timestamptz, jsonb);
drop function public.claim_whatsapp_messages(integer, integer, text);
drop function public.enqueue_whatsapp_message(text, text, jsonb, integer, text, timestamptz, integer, text);
drop function public.cleanup_expired_whatsapp_sessions();
drop function public.link_whatsapp_session_user(text, uuid);
drop function public.set_whatsapp_session_status(text, text, text);
drop function public.update_whatsapp_session_activity(text, boolean, text, jsonb, text, interval);
drop function public.whatsapp_validate_payload(text, jsonb);
drop table public.whatsapp_status_backlog;
drop table public.whatsapp_inbound_messages;
drop table public.whatsapp_message_queue;
drop table public.whatsapp_sessions;

COMMIT;
