"""The Python SDK: a thin, typed face over the SQL functions, one module per capability.

Every function takes a psycopg connection as its first argument (use `platformdb.db` to get
one, and `db.as_service(conn)` / `db.as_user(conn, uid)` to act as a role). Database errors
come out as `platformdb.errors` exceptions.
"""
