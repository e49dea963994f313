-- Exercised by `platformdb verify` as service_role inside a rolled-back transaction.
-- Each statement must succeed; one returning a single boolean must return true.

-- check: feature_flag_bucket gives Unleash's published client-specification buckets
select public.feature_flag_bucket('AB12A', '122') = 23
   and public.feature_flag_bucket('AB12A', '155') = 100;

-- check: register_service registers a service
select public.register_service(p_service_name => 'platformdb-verify', p_service_type => 'worker',
    p_version => '0.0.0', p_endpoint => 'worker://platformdb-verify',
    p_health_check_url => null, p_capabilities => '["verify"]') is not null;

-- check: service_heartbeat records a heartbeat of a registered service, refuses none
select public.service_heartbeat(p_service_name => 'platformdb-verify', p_status => 'healthy',
    p_metrics => '{"verify": 1}')
   and not public.service_heartbeat(p_service_name => 'platformdb-verify-missing');

-- check: service_health_overview shows the fresh heartbeat as healthy
select health_status = 'healthy' from public.service_health_overview
 where service_name = 'platformdb-verify';

-- check: upsert_feature_flag creates flags at 0% and 100%
select public.upsert_feature_flag(p_key => 'platformdb-verify-0', p_enabled => true,
           p_rollout_strategy => 'percentage', p_rollout_percentage => 0) is not null
   and public.upsert_feature_flag(p_key => 'platformdb-verify-100', p_enabled => true,
           p_rollout_strategy => 'percentage', p_rollout_percentage => 100) is not null;

-- check: 0% enables nobody and 100% everybody (1000 users)
select count(*) filter (where public.is_feature_enabled('platformdb-verify-0', u)) = 0
   and count(*) filter (where public.is_feature_enabled('platformdb-verify-100', u)) = 1000
  from (select gen_random_uuid() as u from generate_series(1, 1000)) s;

-- check: an unknown flag is false, not an error
select not public.is_feature_enabled(p_flag_key => 'platformdb-verify-missing',
    p_user_id => gen_random_uuid(), p_environment => 'production');

-- check: evaluation counts are written in batches and shown in feature_flag_overview
select public.flush_feature_flag_evaluations() >= 0
   and (select evaluations_24h >= 1000 from public.feature_flag_overview
         where key = 'platformdb-verify-0' and known);
