-- observability: one latency sample from a service (SPEC §1 record_metric)
\set v random(1, 2000)
\set s random(1, 8)
select public.record_metric(
    p_service_name => 'load-svc-' || :s::int, p_metric_type => 'latency',
    p_metric_name => 'http_request_duration', p_value => :v, p_unit => 'ms',
    p_tags => '{"route": "/rides"}');
