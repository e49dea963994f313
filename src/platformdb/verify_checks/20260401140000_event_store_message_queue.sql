-- Exercised by `platformdb verify` as service_role inside a rolled-back transaction.
-- Each statement must succeed; one returning a single boolean must return true.

-- check: append_event starts a stream with an expected version of 0
select public.append_event(p_aggregate_id => 'platformdb-verify', p_aggregate_type => 'verify',
    p_event_type => 'verify.started', p_payload => '{"ok": true}', p_correlation_id => 'verify',
    p_metadata => '{}', p_expected_version => 0) is not null;

-- check: append_event with the right expected version appends the next one
select public.append_event(p_aggregate_id => 'platformdb-verify', p_aggregate_type => 'verify',
    p_event_type => 'verify.continued', p_payload => '{}', p_expected_version => 1) is not null;

-- check: the stream is at version 2
select public.stream_version(p_aggregate_type => 'verify', p_aggregate_id => 'platformdb-verify') = 2;

-- check: a wrong expected version is refused with PD003
do $check$
begin
    perform public.append_event(p_aggregate_id => 'platformdb-verify', p_aggregate_type => 'verify',
        p_event_type => 'verify.stale', p_payload => '{}', p_expected_version => 1);
    raise exception 'a stale expected version was accepted';
exception when sqlstate 'PD003' then
    null;
end
$check$;

-- check: get_aggregate_events returns the stream in version order
select array_agg(event_version order by event_version) = array[1, 2]
  from public.get_aggregate_events(p_aggregate_type => 'verify', p_aggregate_id => 'platformdb-verify');

-- check: read_stream reads after a version
select count(*) = 1 from public.read_stream(p_aggregate_type => 'verify',
    p_aggregate_id => 'platformdb-verify', p_from_version => 1);

-- check: read_all and read_category answer (this transaction's own appends stay below the bound)
select (select count(*) from public.read_all(p_from_position => 0, p_limit => 1)) >= 0
   and (select count(*) from public.read_category(p_aggregate_type => 'verify')) >= 0
   and public.event_store_safe_position() >= 0;

-- check: enqueue_message is idempotent by key
select public.enqueue_message(p_queue_name => 'platformdb-verify', p_message_type => 'verify',
    p_payload => '{"n": 1}', p_priority => 1, p_idempotency_key => 'verify-1')
     = public.enqueue_message(p_queue_name => 'platformdb-verify', p_message_type => 'verify',
    p_payload => '{"n": 1}', p_priority => 1, p_idempotency_key => 'verify-1');

-- check: claim_messages leases the message and counts the attempt
select count(*) = 1 and min(attempt) = 1 and bool_and(locked_until > now())
  from public.claim_messages(p_queue_name => 'platformdb-verify', p_limit => 10,
                             p_lease_seconds => 30, p_worker_id => 'platformdb-verify');

-- check: nack_message schedules a retry with backoff
select public.nack_message(p_message_id => (select id from public.message_queue
    where queue_name = 'platformdb-verify' and state = 'running'),
    p_error => 'verify', p_worker_id => 'platformdb-verify') = 'retryable';

-- check: enqueue_message queues a message for the ack check
select public.enqueue_message(p_queue_name => 'platformdb-verify-ack', p_message_type => 'verify',
    p_payload => '{}') is not null;

-- check: ack_message completes a claimed message
select public.ack_message(p_message_id => c.id, p_worker_id => 'platformdb-verify')
  from public.claim_messages(p_queue_name => 'platformdb-verify-ack',
                             p_worker_id => 'platformdb-verify') c;

-- check: schedule_job schedules a job
select public.schedule_job(p_job_type => 'platformdb.verify', p_job_name => 'verify',
    p_payload => '{}') is not null;

-- check: claim_jobs claims it with its timeout as the lease
select count(*) = 1 and bool_and(locked_until > now())
  from public.claim_jobs(p_job_types => array['platformdb.verify'], p_worker_id => 'platformdb-verify');

-- check: complete_job completes it with a result
select public.complete_job(p_job_id => j.id, p_result => '{"ok": true}',
                           p_worker_id => 'platformdb-verify')
  from public.background_jobs j where j.job_type = 'platformdb.verify' and j.state = 'running';

-- check: schedule_recurring_job accepts a cron expression in a time zone
select public.schedule_recurring_job(p_name => 'platformdb-verify', p_job_type => 'platformdb.verify',
    p_cron_expression => '*/5 * * * *', p_timezone => 'Africa/Kigali') is not null;

-- check: reap_expired_leases and purge_finished_queue_rows run
select public.reap_expired_leases() >= 0
   and public.purge_finished_queue_rows(p_older_than => interval '30 days', p_batch_size => 10) >= 0;

-- check: the stats views answer
select (select count(*) from public.event_store_stats) >= 1
   and (select count(*) from public.message_queue_stats where queue_name = 'platformdb-verify') = 1
   and (select count(*) from public.background_job_stats where job_type = 'platformdb.verify') = 1;
