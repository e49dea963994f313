-- platformdb 20260401140000 down: the exact reverse of event_store_message_queue.
-- Drops only what the up file created (partitions go with their parent). Partitions that
-- maintenance detached into the archive schema are data, not schema: they are kept.
BEGIN;

drop view public.background_job_stats;
drop view public.message_queue_stats;
drop view public.event_store_stats;

drop function public.purge_finished_queue_rows(interval, integer);
drop function public.reap_expired_leases();
drop function public.fail_recurring_job(uuid, text);
drop function public.fire_recurring_job(uuid, timestamptz, timestamptz);
drop function public.claim_due_recurring_jobs(integer);
drop function public.unschedule_recurring_job(text);
drop function public.schedule_recurring_job(text, text, text, jsonb, integer, text, integer, integer, boolean);
drop function public.cron_expression_valid(text);
drop function public.redrive_dead_letter_jobs(text, integer);
drop function public.release_jobs(uuid[], text);
drop function public.cancel_job(uuid);
drop function public.fail_job(uuid, text, boolean, text, integer);
drop function public.complete_job(uuid, jsonb, text);
drop function public.heartbeat_job(uuid, integer, text);
drop function public.claim_jobs(text[], integer, text);
drop function public.schedule_job(text, text, jsonb, timestamptz, integer, text, integer, integer);
drop function public.redrive_dead_letters(text, integer);
drop function public.extend_message_leases(uuid[], integer, text);
drop function public.release_messages(uuid[], text);
drop function public.nack_message(uuid, text, integer, text, boolean);
drop function public.ack_messages(uuid[], text);
drop function public.ack_message(uuid, text);
drop function public.claim_messages(text, integer, integer, text);
drop function public.enqueue_messages(text, jsonb);
drop function public.enqueue_message(text, text, jsonb, integer, timestamptz, text, integer, text);
drop function public.background_jobs_reap(text[], integer);
drop function public.message_queue_reap(text, integer);
drop function public.queue_check_worker(text);
drop function public.queue_retry_backoff(integer);

drop function public.get_subscription_checkpoint(text);
drop function public.save_subscription_checkpoint(text, bigint, boolean);
drop function public.stream_version(text, text);
drop function public.read_all(bigint, integer);
drop function public.read_category(text, bigint, integer);
drop function public.read_stream(text, text, integer, integer);
drop function public.get_aggregate_events(text, text, integer);
drop function public.append_events(text, text, jsonb, integer, text, uuid);
drop function public.append_event(text, text, text, jsonb, text, jsonb, integer, uuid, text, uuid);

drop table public.queue_retention;
drop table public.background_jobs;
drop table public.recurring_jobs;
drop table public.message_queue;
drop table public.event_subscriptions;
drop table public.event_store;
drop function public.refuse_event_store_change();
drop function public.event_store_safe_position();
drop function public.event_store_lock_writer();
drop function public.event_store_bump_version(text, text, integer, integer);
drop function public.event_store_check_event(text, text, text, jsonb, jsonb);
drop table public.event_streams;
drop sequence public.event_store_global_position_seq;
delete from public.partition_settings where table_name = 'event_store';

COMMIT;
