-- Exercised by `platformdb verify` as service_role inside a rolled-back transaction.
-- Each statement must succeed; one returning a single boolean must return true.

-- check: monitoring_queues sees a message enqueued now, with its depth
select public.enqueue_message(p_queue_name => 'platformdb-verify-monitoring',
    p_message_type => 'verify', p_payload => '{"verify": true}') is not null;
select count(*) = 1 and bool_and(depth >= 1 and dead_letters = 0)
  from public.monitoring_queues(p_limit => 1000) where queue_name = 'platformdb-verify-monitoring';

-- check: monitoring_payment_volume and monitoring_payment_open answer (index-only window)
select count(*) >= 0 from public.monitoring_payment_volume(p_window => '24 hours', p_bucket => '1 hour');
select count(*) = 2 from public.monitoring_payment_open();

-- check: monitoring_metric_series finds a sample recorded now, with its percentiles
select public.record_metric(p_service_name => 'platformdb-verify', p_metric_type => 'latency',
    p_metric_name => 'verify_monitoring', p_value => 42, p_unit => 'ms') is not null;
select count(*) = 1 and bool_and(samples >= 1 and p50 = 42 and p99 = 42)
  from public.monitoring_metric_series(p_window => '5 minutes', p_limit => 1000)
 where service_name = 'platformdb-verify' and metric_name = 'verify_monitoring';

-- check: monitoring_partition_coverage reports every partitioned table, current month covered
select count(*) = (select count(*) from public.partition_settings) and bool_and(current_month_covered)
  from public.monitoring_partition_coverage();

-- check: the remaining panels answer
select count(*) >= 0 from public.monitoring_services(p_limit => 10);
select count(*) >= 0 from public.monitoring_jobs(p_limit => 10);
select count(*) >= 0 from public.monitoring_dead_letters(p_limit => 10);
select count(*) >= 0 from public.monitoring_throughput(p_window => '1 hour', p_bucket => '5 minutes');
select count(*) = 1 from public.monitoring_whatsapp();
select count(*) = 4 from public.monitoring_whatsapp_sessions();
select count(*) >= 0 from public.monitoring_whatsapp_failures(p_window => '24 hours', p_limit => 10);
select count(*) >= 0 from public.monitoring_cache();
select count(*) = 1 from public.monitoring_route_cache();
select count(*) >= 0 from public.monitoring_cache_hit_rate(p_window => '24 hours');
select count(*) >= 0 from public.monitoring_flags(p_limit => 10);
select count(*) >= 1 from public.monitoring_partitions();
select count(*) >= 1 from public.monitoring_maintenance();
select count(*) = 1 from public.monitoring_query_stats_status();
select count(*) >= 0 from public.monitoring_query_stats(p_limit => 10);
select count(*) >= 0 from public.monitoring_top_statements(p_limit => 10);

-- check: the monitoring functions are closed to anon and authenticated
select bool_and(not has_function_privilege('anon', p.oid, 'execute')
                and not has_function_privilege('authenticated', p.oid, 'execute'))
  from pg_catalog.pg_proc p
 where p.pronamespace = 'public'::regnamespace and p.proname like 'monitoring\_%';
