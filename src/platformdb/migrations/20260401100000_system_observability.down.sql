-- platformdb 20260401100000 down: the exact reverse of system_observability.
-- Drops only what the up file created (partitions go with their parent). Partitions that
-- maintenance detached into the archive schema are data, not schema: they are kept.
BEGIN;

drop view public.metric_percentiles;
drop view public.recent_metrics_by_service;
drop table public.system_audit_logs;
drop table public.system_metrics;
drop function public.refuse_audit_change();
drop function public.disable_audit(regclass);
drop function public.enable_audit(regclass);
drop function public.audit_row_change();
drop function public.log_audit_event(text, text, text, text, text, jsonb, text, uuid, text, text,
                                     jsonb, jsonb, inet, text, text, text);
drop function public.record_metrics(jsonb);
drop function public.record_metric(text, text, text, numeric, text, jsonb, timestamptz);
drop function public.register_partitioned_table(regclass, interval, integer);
drop function public.create_monthly_partitions(regclass, integer, timestamptz);
drop table public.partition_settings;
drop function public.platformdb_assert_names_free(text[]);

COMMIT;
