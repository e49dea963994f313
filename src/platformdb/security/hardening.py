"""Security matrix rows for migration 20260401180000_security_hardening.

`extension_privileges_revoked` records what the migration revoked from PUBLIC, anon and
authenticated on extension objects, so that its down file can grant exactly that back. It is
written by the migration only; services may read it.
"""

from platformdb.security import TableAccess

MIGRATION = "20260401180000_security_hardening"

TABLES = [
    TableAccess(
        table="extension_privileges_revoked",
        seed="""insert into public.extension_privileges_revoked (object_kind, object_name, grantee, privilege)
                values ('table', 'matrix_' || left(%(owner)s::text, 8), 'anon', 'INSERT')
                returning object_name""",
        match="object_name = %(key)s",
        insert="""insert into public.extension_privileges_revoked (object_kind, object_name, grantee, privilege)
                  values ('function', 'forged_' || left(%(owner)s::text, 8), 'anon', 'EXECUTE')""",
        update="privilege = 'TRUNCATE'",
        service="s",
        why="what the migration revoked on extension objects (its down grants it back): written by"
        " the migration only; services read",
    ),
]
