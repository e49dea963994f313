"""non-transactional: nothing that cannot run inside the file's transaction."""

from __future__ import annotations

from typing import Any

from pglast import ast
from pglast.enums.parsenodes import AlterTableType

from platformdb.lint.context import FileContext
from platformdb.lint.rule import Rule

ID = "non-transactional"


def check_statement(ctx: FileContext, n: Any, i: int) -> None:
    what = None
    if isinstance(n, ast.IndexStmt) and n.concurrent:
        what = "CREATE INDEX CONCURRENTLY"
    elif isinstance(n, ast.DropStmt) and n.concurrent:
        what = "DROP INDEX CONCURRENTLY"
    elif isinstance(n, ast.ReindexStmt) and any(
        isinstance(p, ast.DefElem) and p.defname == "concurrently" for p in n.params or ()
    ):
        what = "REINDEX CONCURRENTLY"
    elif isinstance(n, ast.VacuumStmt) and n.is_vacuumcmd:
        what = "VACUUM"
    elif isinstance(n, ast.AlterTableStmt):
        for cmd in n.cmds or ():
            if cmd.subtype == AlterTableType.AT_DetachPartition and getattr(cmd.def_, "concurrent", False):
                what = "DETACH PARTITION CONCURRENTLY"
    elif isinstance(n, (ast.CreatedbStmt, ast.DropdbStmt, ast.CreateTableSpaceStmt)):
        what = type(n).__name__.removesuffix("Stmt")
    if what:
        ctx.report(ID, f"{what} cannot run inside the file's transaction (BEGIN … COMMIT)")


RULE = Rule(
    id=ID,
    level="error",
    message="no statement that cannot run inside a transaction (CONCURRENTLY, VACUUM, …)",
    rationale="PostgreSQL refuses these inside BEGIN … COMMIT, so the file would fail half-way on deploy.",
    order=20,
    statement=check_statement,
)
