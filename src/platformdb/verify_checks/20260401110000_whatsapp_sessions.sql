-- Exercised by `platformdb verify` as service_role inside a rolled-back transaction.
-- Each statement must succeed; one returning a single boolean must return true.

-- check: update_whatsapp_session_activity creates a session and counts the message
select public.update_whatsapp_session_activity(p_phone_number => '+250700000999',
    p_increment_message_count => true) is not null;

-- check: the session shows the activity
select message_count = 1 and status = 'active' and expires_at > now()
  from public.whatsapp_sessions where phone_number = '+250700000999';

-- check: enqueue_whatsapp_message validates and queues a text message (most urgent and
-- oldest, so that the claim below takes it before any real message)
select public.enqueue_whatsapp_message(p_recipient_phone => '+250700000999',
    p_message_type => 'text', p_message_payload => '{"body": "platformdb verify"}',
    p_priority => 1, p_correlation_id => 'platformdb-verify',
    p_scheduled_at => '1970-01-01 00:00:00+00') is not null;

-- check: claim_whatsapp_messages leases that message first
select correlation_id = 'platformdb-verify'
  from public.claim_whatsapp_messages(p_limit => 1, p_lease_seconds => 30,
                                      p_worker_id => 'platformdb-verify');

-- check: mark_whatsapp_message_sent records the wa message id
select public.mark_whatsapp_message_sent(
    p_message_id => (select id from public.whatsapp_message_queue
                      where correlation_id = 'platformdb-verify' and status = 'processing' limit 1),
    p_whatsapp_message_id => 'wamid.platformdb-verify');

-- check: apply_whatsapp_status moves it forward, and never backwards
select public.apply_whatsapp_status(p_whatsapp_message_id => 'wamid.platformdb-verify',
    p_status => 'read', p_timestamp => now())
   and not public.apply_whatsapp_status(p_whatsapp_message_id => 'wamid.platformdb-verify',
    p_status => 'delivered', p_timestamp => now());

-- check: record_whatsapp_inbound_message is idempotent on the wa message id
select (select is_new from public.record_whatsapp_inbound_message(
            p_whatsapp_message_id => 'wamid.platformdb-verify-in', p_from_phone => '+250700000999',
            p_message_type => 'text', p_payload => '{"text": {"body": "hi"}}'))
   and not (select is_new from public.record_whatsapp_inbound_message(
            p_whatsapp_message_id => 'wamid.platformdb-verify-in', p_from_phone => '+250700000999',
            p_message_type => 'text', p_payload => '{"text": {"body": "hi"}}'));

-- check: cleanup_expired_whatsapp_sessions runs
select public.cleanup_expired_whatsapp_sessions() >= 0;

-- check: whatsapp_session_stats has a row per status
select count(*) = 4 from public.whatsapp_session_stats;

-- check: whatsapp_queue_stats sees the read message
select read_24h >= 1 from public.whatsapp_queue_stats;
