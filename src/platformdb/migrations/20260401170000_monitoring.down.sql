-- platformdb 20260401170000 down: the exact reverse of monitoring.
-- Drops only what the up file created. The roles platformdb_monitor and platformdb_operator
-- are not created by migrations (see src/platformdb/dashboard/roles.sql); their grants on
-- these functions go with the functions.
BEGIN;

drop function public.monitoring_redrive_dead_letters(text, text, integer, text);
drop function public.monitoring_top_statements(integer);
drop function public.monitoring_query_stats(integer);
drop function public.monitoring_query_stats_status();
drop function public.monitoring_metric_timeseries(text, text, interval, interval);
drop function public.monitoring_metric_series(interval, integer);
drop function public.monitoring_maintenance();
drop function public.monitoring_partition_coverage();
drop function public.monitoring_partitions();
drop function public.monitoring_flags(integer);
drop function public.monitoring_cache_hit_rate(interval);
drop function public.monitoring_route_cache();
drop function public.monitoring_cache();
drop function public.monitoring_payment_open();
drop function public.monitoring_payment_volume(interval, interval);
drop function public.monitoring_whatsapp_failures(interval, integer);
drop function public.monitoring_whatsapp_sessions();
drop function public.monitoring_whatsapp();
drop function public.monitoring_throughput(interval, interval);
drop function public.monitoring_dead_letters(integer);
drop function public.monitoring_jobs(integer);
drop function public.monitoring_queues(integer);
drop function public.monitoring_services(integer);
drop function public.monitoring_checked_window(interval, interval);
drop function public.monitoring_checked_limit(integer);
drop index public.transactions_created_at_cover_idx;

COMMIT;
