"""transaction-wrap: a file is exactly one BEGIN; … COMMIT;."""

from __future__ import annotations

from pglast import ast
from pglast.enums.parsenodes import TransactionStmtKind

from platformdb.lint.context import FileContext
from platformdb.lint.rule import Rule
from platformdb.lint.sql import Stmt

ID = "transaction-wrap"


def _kind(s: Stmt) -> str | None:
    if not isinstance(s.node, ast.TransactionStmt):
        return None
    k = s.node.kind
    if k in (TransactionStmtKind.TRANS_STMT_BEGIN, TransactionStmtKind.TRANS_STMT_START):
        return "begin"
    if k == TransactionStmtKind.TRANS_STMT_COMMIT:
        return "commit"
    if k in (
        TransactionStmtKind.TRANS_STMT_SAVEPOINT,
        TransactionStmtKind.TRANS_STMT_RELEASE,
        TransactionStmtKind.TRANS_STMT_ROLLBACK_TO,
    ):
        return None  # savepoints are fine inside the transaction
    return "other"


def check_file(ctx: FileContext) -> None:
    stmts = ctx.f.stmts
    if not stmts:
        ctx.report_at(ID, "empty file: expected BEGIN; … COMMIT;", 1)
        return
    if _kind(stmts[0]) != "begin":
        ctx.report_at(ID, "the file must start with BEGIN; (one transaction per file)", stmts[0].line)
    if _kind(stmts[-1]) != "commit" or len(stmts) == 1:
        ctx.report_at(
            ID,
            "the file must end with COMMIT; (without it the Supabase CLI leaves the"
            " transaction open and the runner refuses the file)",
            ctx.f.last_line,
        )
    for s in stmts[1:-1]:
        if _kind(s) is not None:
            ctx.report_at(
                ID,
                "transaction control inside BEGIN … COMMIT (a second BEGIN, COMMIT or"
                " ROLLBACK splits the file into parts that apply separately)",
                s.line,
            )


RULE = Rule(
    id=ID,
    level="error",
    message="a file is exactly one BEGIN; … COMMIT; with no other transaction control",
    rationale="The Supabase CLI runs a file as it is and `platformdb migrate` runs it in one transaction"
    " with its ledger row: a file is applied entirely or not at all.",
    order=10,
    file=check_file,
)
