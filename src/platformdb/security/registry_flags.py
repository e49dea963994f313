"""Security matrix rows for §3.4 service registry and feature flags."""

from platformdb.security import TableAccess

MIGRATION = "20260401130000_service_registry_feature_flags"

# SECURITY DEFINER functions a signed-in user may execute (platformdb verify,
# `definer_executable`).
DEFINER_EXECUTE = {
    "is_feature_enabled": "authenticated: evaluates for themself only, secret flags are false;"
    " unknown keys are counted as (other)",
}

TABLES = [
    TableAccess(
        table="service_registry",
        seed="""insert into public.service_registry (service_name, service_type, version, endpoint)
                values ('matrix-' || %(owner)s::text, 'api', '1.0.0', 'https://matrix.internal')
                returning id""",
        match="id = %(key)s",
        insert="""insert into public.service_registry (service_name, service_type, version, endpoint)
                  values ('matrix-i-' || %(owner)s::text, 'api', '1.0.0', 'https://matrix.internal')""",
        update="status = 'unhealthy'",
        service="siud",
        why="endpoints and metrics of the platform's services: the service only",
    ),
    TableAccess(
        table="feature_flags",
        seed="""insert into public.feature_flags (key, name, enabled, rollout_strategy)
                values ('matrix-' || %(owner)s::text, 'matrix', true, 'all') returning id""",
        match="id = %(key)s",
        insert="""insert into public.feature_flags (key, name, enabled, rollout_strategy)
                  values ('matrix-i-' || %(owner)s::text, 'matrix', true, 'all')""",
        update="enabled = false",
        owner="s",
        other="s",
        service="siud",
        why="managed by the service; a signed-in user reads non-secret flags' key and state "
        "(not target_users/conditions: column grants) and evaluates through is_feature_enabled",
    ),
    TableAccess(
        table="feature_flag_evaluations",
        seed="""insert into public.feature_flag_evaluations
                    (flag_key, environment, reason, source, bucket_start, evaluations)
                values ('matrix-' || %(owner)s::text, 'production', 'match', 'sql',
                        date_trunc('hour', now() at time zone 'UTC') at time zone 'UTC', 1)
                returning flag_key""",
        match="flag_key = %(key)s",
        insert="""insert into public.feature_flag_evaluations
                      (flag_key, environment, reason, source, bucket_start, evaluations)
                  values ('matrix-i-' || %(owner)s::text, 'production', 'match', 'sdk',
                          date_trunc('hour', now() at time zone 'UTC') at time zone 'UTC', 1)""",
        update="evaluations = evaluations + 1",
        service="s",
        why="usage counts, written only by the counting functions (definer); read by the service",
    ),
]
