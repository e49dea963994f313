-- platformdb 20260401250000 down: the exact reverse of flags client API.
BEGIN;

drop function public.monitoring_flag_segments(integer);
drop function public.monitoring_flag_model(integer);
drop function public.feature_flags_client_state(text);

COMMIT;
