"""supabase-compat: nothing that needs a superuser on Supabase."""

from __future__ import annotations

from typing import Any

from pglast import ast

from platformdb.lint.context import FileContext
from platformdb.lint.rule import Rule
from platformdb.lint.sql import fmt, func_options, names, qual

ID = "supabase-compat"

ALLOWED_EXTENSIONS = frozenset(
    {
        # SPEC §1.4 names these two; the rest are PostgreSQL's trusted extensions, which a
        # database owner may create without being a superuser
        "postgis",
        "pgcrypto",
        "btree_gin",
        "btree_gist",
        "citext",
        "cube",
        "fuzzystrmatch",
        "hstore",
        "intarray",
        "isn",
        "lo",
        "ltree",
        "pg_trgm",
        "seg",
        "tablefunc",
        "tcn",
        "tsm_system_rows",
        "tsm_system_time",
        "unaccent",
        "uuid-ossp",
        "plpgsql",
    }
)
ALLOWED_LANGUAGES = frozenset({"sql", "plpgsql"})

SUPERUSER_STATEMENTS = {
    "CreateRoleStmt": "creates a role",
    "AlterRoleStmt": "alters a role",
    "AlterRoleSetStmt": "alters a role",
    "DropRoleStmt": "drops a role",
    "GrantRoleStmt": "grants role membership",
    "AlterSystemStmt": "runs ALTER SYSTEM",
    "CreateEventTrigStmt": "creates an event trigger",
    "AlterEventTrigStmt": "alters an event trigger",
    "LoadStmt": "loads a shared library",
    "CreatePLangStmt": "creates a language",
    "CreateTableSpaceStmt": "creates a tablespace",
    "CreatedbStmt": "creates a database",
    "DropdbStmt": "drops a database",
    "AlterDatabaseStmt": "alters the database",
    "AlterDatabaseSetStmt": "alters the database",
    "CreateFdwStmt": "creates a foreign-data wrapper",
}


def check_statement(ctx: FileContext, n: Any, i: int) -> None:
    if isinstance(n, ast.CreateExtensionStmt) and n.extname not in ALLOWED_EXTENSIONS:
        ctx.report(
            ID,
            f"extension {n.extname} is not one a non-superuser may create (allowed:"
            " postgis, pgcrypto and PostgreSQL's trusted extensions)",
        )
    if isinstance(n, ast.CreateFunctionStmt):
        lang = func_options(n.options).get("language", "sql")
        if lang not in ALLOWED_LANGUAGES:
            ctx.report(
                ID,
                f"function {fmt(qual(names(n.funcname)))} is LANGUAGE {lang}; only sql and plpgsql run"
                " without a superuser",
            )
    what = SUPERUSER_STATEMENTS.get(type(n).__name__)
    if isinstance(n, ast.CopyStmt) and (n.filename or n.is_program):
        what = "reads or writes a server-side file (COPY … FILE/PROGRAM)"
    if isinstance(n, ast.VariableSetStmt) and (n.name or "").lower() in ("role", "session_authorization"):
        what = f"sets {n.name}"
    if what:
        ctx.report(ID, f"{what}: needs privileges a Supabase migration does not have (SPEC §1.4)")


RULE = Rule(
    id=ID,
    level="error",
    message="nothing that needs a superuser on Supabase (roles, ALTER SYSTEM, untrusted"
    " languages or extensions, server files)",
    rationale="On Supabase the migration role (postgres) is not a superuser; such a file would fail there (SPEC §1.4).",
    order=130,
    statement=check_statement,
)
