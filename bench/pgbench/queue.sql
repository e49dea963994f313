-- queues: enqueue one message, then claim one under a lease and ack it (a worker's cycle
-- in two statements: the claim runs inside the ack's argument)
\set p random(1, 10)
select public.enqueue_message(
    p_queue_name => 'load', p_message_type => 'load.work',
    p_payload => '{"ride": 42}', p_priority => :p);
select public.ack_messages(
    p_message_ids => array(select m.id from public.claim_messages(
        p_queue_name => 'load', p_limit => 1, p_lease_seconds => 30,
        p_worker_id => 'pgbench-' || :client_id::int) m),
    p_worker_id => 'pgbench-' || :client_id::int);
