-- Exercised by `platformdb verify` as service_role inside a rolled-back transaction.
-- Each statement must succeed; one returning a single boolean must return true.

-- check: a message from a user known only by a business-scoped user id is recorded
select is_new from public.record_whatsapp_inbound_message(
    p_whatsapp_message_id => 'wamid.platformdb-verify-bsuid', p_from_phone => null,
    p_message_type => 'text', p_payload => '{"text": {"body": "platformdb verify"}}',
    p_sent_at => now(), p_from_user_id => 'ZZ.platformdbverify');

-- check: its session learns the phone later and keeps the message
select public.update_whatsapp_session_activity(p_phone_number => '+250700000998',
    p_business_user_id => 'ZZ.platformdbverify') = (
    select session_id from public.whatsapp_inbound_messages
     where whatsapp_message_id = 'wamid.platformdb-verify-bsuid');

-- check: the customer-service window is open for 24 hours after the user's message
select service_window_ends_at > now() + interval '23 hours'
  from public.whatsapp_sessions where business_user_id = 'ZZ.platformdbverify';

-- check: a webhook item that cannot be stored is quarantined, once per notification
select public.quarantine_whatsapp_item(p_notification_id => repeat('0', 64),
    p_item_path => 'platformdb-verify', p_item_kind => 'message', p_item => '{}',
    p_reason => 'platformdb verify') = public.quarantine_whatsapp_item(
    p_notification_id => repeat('0', 64), p_item_path => 'platformdb-verify',
    p_item_kind => 'message', p_item => '{}', p_reason => 'platformdb verify');

-- check: the quarantine and cost views answer
select open_items >= 1 from public.whatsapp_quarantine_stats;
select count(*) >= 0 from public.whatsapp_message_costs;
