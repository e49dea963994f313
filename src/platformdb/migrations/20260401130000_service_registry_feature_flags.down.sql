-- platformdb 20260401130000 down: the exact reverse of service_registry_feature_flags.
-- Drops only what the up file created (triggers, policies and indexes go with their table).
-- Audit entries written about flag changes stay in system_audit_logs: they are data.
BEGIN;

drop view public.feature_flag_overview;
drop view public.service_health_overview;
drop table public.feature_flag_evaluations;
drop table public.feature_flags;
drop table public.service_registry;
drop function public.feature_flags_notify_change();
drop function public.feature_flags_before_write();
drop function public.purge_feature_flag_evaluations(interval);
drop function public.record_feature_flag_evaluations(jsonb);
drop function public.flush_feature_flag_evaluations();
drop function public.upsert_feature_flag(text, text, boolean, text, integer, uuid[], jsonb, text,
                                         text, boolean);
drop function public.evaluate_feature_flag(text, uuid, text, jsonb);
drop function public.is_feature_enabled(text, uuid, text, jsonb);
drop function public.feature_flag_store_counts(jsonb, text, boolean);
drop function public.feature_flag_decide(text, text, integer, boolean, jsonb, uuid, jsonb, text);
drop function public.feature_flag_conditions_match(jsonb, jsonb);
drop function public.feature_flag_rule_matches(jsonb, jsonb);
drop function public.feature_flag_semver_cmp(text, text);
drop function public.feature_flag_number(jsonb);
drop function public.feature_flag_bucket(text, text);
drop function public.service_health_status(text, timestamptz, timestamptz);
drop function public.service_heartbeat(text, text, jsonb);
drop function public.register_service(text, text, text, text, text, jsonb, jsonb);

COMMIT;
