"""Security matrix rows for the Unleash flag model (segments)."""

from platformdb.security import TableAccess

MIGRATION = "20260401200000_unleash_flags"

TABLES = [
    TableAccess(
        table="feature_flag_segments",
        seed="""insert into public.feature_flag_segments (name, constraints)
                values ('matrix-' || %(owner)s::text,
                        '[{"contextName": "country", "operator": "IN", "values": ["RW"]}]')
                returning id""",
        match="id = %(key)s",
        insert="""insert into public.feature_flag_segments (name, constraints)
                  values ('matrix-i-' || %(owner)s::text, '[]')""",
        update="description = 'changed'",
        service="siud",
        why="segments are targeting rules of flags (who is selected): the service only; users "
        "evaluate through is_feature_enabled / get_feature_variant",
    ),
]

# SECURITY DEFINER functions a signed-in user may execute (platformdb verify).
DEFINER_EXECUTE = {
    "get_feature_variant": "authenticated: evaluates for themself only (userId is auth.uid()), secret flags"
    " are off; unknown keys are counted as (other)",
}
