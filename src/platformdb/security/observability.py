"""Security matrix rows for §3.1 observability."""

from platformdb.security import TableAccess

MIGRATION = "20260401100000_system_observability"

TABLES = [
    TableAccess(
        table="system_metrics",
        seed="""insert into public.system_metrics (service_name, metric_type, metric_name, value)
                values ('matrix', 'gauge', %(owner)s::text, 1) returning id""",
        match="id = %(key)s",
        insert="""insert into public.system_metrics (service_name, metric_type, metric_name, value)
                  values ('matrix', 'gauge', %(owner)s::text, 2)""",
        update="value = value + 1",
        service="si",
        why="service telemetry: written and read by services only; retention by the owner",
    ),
    TableAccess(
        table="system_audit_logs",
        seed="""insert into public.system_audit_logs (user_id, actor_type, action, resource_type)
                values (%(owner)s, 'user', 'matrix.seed', 'test') returning id""",
        match="id = %(key)s",
        insert="""insert into public.system_audit_logs (user_id, actor_type, action, resource_type)
                  values (%(owner)s, 'user', 'matrix.insert', 'test')""",
        update="action = 'tampered'",
        owner="s",
        service="si",
        why="append-only; a user reads the entries about themself",
    ),
    TableAccess(
        table="partition_settings",
        seed="""insert into public.partition_settings (table_name, months_ahead)
                values ('matrix_' || %(owner)s::text, 3) returning table_name""",
        match="table_name = %(key)s",
        insert="""insert into public.partition_settings (table_name) values ('x_' || %(owner)s::text)""",
        update="months_ahead = 4",
        service="s",
        why="maintenance settings: changed by the owner (migrations, maintain) only",
    ),
]

# Functions anon may execute (platformdb verify's allow list), with why.
ANON_EXECUTE = {
    "on_citus_worker": (
        "called by row triggers as whoever writes the table; answers only whether this node is"
        " a Citus worker (false without Citus)"
    ),
    "citus_table_of_shard": (
        "called by row triggers as whoever writes the table; maps a Citus shard's name to its"
        " table's name from the catalog"
    ),
    "transaction_actor_role": (
        "called by the transactions triggers as whoever writes the table; returns the caller's"
        " own role (or, on a Citus worker, the role of the request's own JWT claims)"
    ),
    "propagate_request_claims": (
        "PostgREST's db-pre-request runs it for every request, anonymous ones too; it only"
        " re-issues the request's own JWT claims as SET LOCAL (so that Citus forwards them to"
        " the workers) and reads or writes no table"
    ),
}
