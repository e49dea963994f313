"""extension-schema: CREATE EXTENSION names its schema."""

from __future__ import annotations

from typing import Any

from pglast import ast

from platformdb.lint.context import FileContext
from platformdb.lint.rule import Rule
from platformdb.lint.sql import str_value

ID = "extension-schema"
EXPOSED_SCHEMAS = frozenset({"public", "graphql_public"})


def check_statement(ctx: FileContext, n: Any, i: int) -> None:
    if not isinstance(n, ast.CreateExtensionStmt) or n.extname == "plpgsql":
        return
    schema = None
    for o in n.options or ():
        if isinstance(o, ast.DefElem) and o.defname == "schema":
            schema = str_value(o.arg)
    if schema is None:
        ctx.report(
            ID,
            f"create extension {n.extname} without `schema`: it lands in the first schema of the"
            " search_path (public, exposed by the API, with Supabase's default grants); add"
            " `with schema extensions`",
        )
    elif schema in EXPOSED_SCHEMAS:
        ctx.report(
            ID,
            f"create extension {n.extname} in {schema}, a schema the API exposes; use `with schema extensions`",
        )


RULE = Rule(
    id=ID,
    level="error",
    message="CREATE EXTENSION names its schema (`with schema extensions`), never an exposed one",
    rationale="Without a schema an extension goes to public, where Supabase's default privileges gave"
    " anon ALL on PostGIS's spatial_ref_sys (truncate broke every distance) and its SECURITY"
    " DEFINER functions became API endpoints; PostGIS cannot be moved afterwards.",
    order=135,
    statement=check_statement,
)
