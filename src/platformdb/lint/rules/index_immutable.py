"""index-immutable: no non-immutable function in an index expression or predicate."""

from __future__ import annotations

from typing import Any

from pglast import ast

from platformdb.lint.context import FileContext
from platformdb.lint.rule import Rule
from platformdb.lint.sql import fmt, names, qual, str_value, type_key, walk

ID = "index-immutable"

# Functions of pg_catalog whose every overload is STABLE or VOLATILE in PostgreSQL 15
# (tests/unit/test_lint.py checks this list against the catalog), plus the Supabase auth
# helpers and uuid-ossp generators. Names with both immutable and non-immutable overloads
# (date_trunc, age, …) depend on argument types and are left to PostgreSQL.
NON_IMMUTABLE_FUNCTIONS = frozenset(
    {
        "now",
        "clock_timestamp",
        "statement_timestamp",
        "transaction_timestamp",
        "timeofday",
        "random",
        "setseed",
        "gen_random_uuid",
        "current_setting",
        "set_config",
        "nextval",
        "currval",
        "lastval",
        "setval",
        "current_database",
        "current_query",
        "current_schema",
        "current_schemas",
        "current_user",
        "session_user",
        "version",
        "concat",
        "concat_ws",
        "format",
        "to_char",
        "to_date",
        "to_number",
        "to_json",
        "to_jsonb",
        "make_timestamptz",
        "obj_description",
        "col_description",
        "pg_backend_pid",
        "pg_postmaster_start_time",
        "txid_current",
        "pg_current_xact_id",
        "inet_client_addr",
        "inet_client_port",
    }
)
NON_IMMUTABLE_QUALIFIED = frozenset(
    {
        "auth.uid",
        "auth.role",
        "auth.jwt",
        "extensions.uuid_generate_v1",
        "extensions.uuid_generate_v4",
        "public.uuid_generate_v1",
        "public.uuid_generate_v4",
    }
)
NON_IMMUTABLE_UNQUALIFIED_EXTRA = frozenset({"uuid_generate_v1", "uuid_generate_v4"})
TIME_LITERALS = frozenset({"now", "today", "tomorrow", "yesterday"})
TIME_TYPES = frozenset({"date", "timestamp", "timestamptz", "time", "timetz"})


def _check(ctx: FileContext, expr: Any, where: str) -> None:
    for node in walk(expr):
        bad: str | None = None
        if isinstance(node, ast.FuncCall):
            parts = names(node.funcname)
            name = parts[-1].lower() if parts else ""
            qualified = ".".join(parts).lower()
            created = ctx.reg.volatility.get(qual(parts))
            if len(parts) == 1 or parts[0] == "pg_catalog":
                if name in NON_IMMUTABLE_FUNCTIONS or name in NON_IMMUTABLE_UNQUALIFIED_EXTRA:
                    bad = f"{name}()"
            if qualified in NON_IMMUTABLE_QUALIFIED:
                bad = f"{qualified}()"
            if created is not None and created != "immutable":
                bad = f"{fmt(qual(parts))}() ({created})"
        elif isinstance(node, ast.SQLValueFunction):
            op = getattr(node.op, "name", str(node.op))
            bad = op.removeprefix("SVFOP_").lower()
        elif isinstance(node, ast.TypeCast):
            lit = str_value(node.arg)
            if lit is not None and lit.strip().lower() in TIME_LITERALS and type_key(node.typeName) in TIME_TYPES:
                bad = f"'{lit}'::{type_key(node.typeName)} (frozen at creation time)"
        if bad:
            ctx.report(
                ID,
                f"{where} uses {bad}, which is not IMMUTABLE: PostgreSQL refuses it (or"
                " freezes its value when the index is built); compare at query time instead",
            )


def check_statement(ctx: FileContext, n: Any, i: int) -> None:
    if not isinstance(n, ast.IndexStmt):
        return
    name = n.idxname or "(unnamed)"
    for e in n.indexParams or ():
        if e.expr is not None:
            _check(ctx, e.expr, f"index {name} expression")
    if n.whereClause is not None:
        _check(ctx, n.whereClause, f"index {name} predicate")


RULE = Rule(
    id=ID,
    level="error",
    message="no non-immutable function (now(), current_date, auth.uid(), …) in an index predicate or expression",
    rationale="PostgreSQL refuses a non-immutable index expression, or freezes a time literal at"
    " creation time, so the index answers differently from the query.",
    order=110,
    statement=check_statement,
)
