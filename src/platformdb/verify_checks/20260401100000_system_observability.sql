-- Exercised by `platformdb verify` as service_role inside a rolled-back transaction.
-- Each statement must succeed; one returning a single boolean must return true.

-- check: record_metric returns an id
select public.record_metric(p_service_name => 'platformdb-verify', p_metric_type => 'gauge',
    p_metric_name => 'verify', p_value => 1, p_unit => 'n', p_tags => '{"verify": true}') is not null;

-- check: record_metrics ingests a batch
select public.record_metrics(p_metrics => '[{"service_name": "platformdb-verify",
    "metric_type": "counter", "metric_name": "verify", "value": 2}]') = 1;

-- check: log_audit_event returns an id
select public.log_audit_event(p_actor_type => 'system', p_action => 'platformdb.verify',
    p_resource_type => 'database', p_metadata => '{}', p_correlation_id => 'verify') is not null;

-- check: recent_metrics_by_service sees the sample
select count(*) >= 1 from public.recent_metrics_by_service where service_name = 'platformdb-verify';

-- check: metric_percentiles computes
select count(*) >= 1 from public.metric_percentiles where service_name = 'platformdb-verify';
