"""down-missing: every versioned migration has its .down.sql."""

from __future__ import annotations

from platformdb.lint.context import FileContext
from platformdb.lint.rule import Rule

ID = "down-missing"


def check_file(ctx: FileContext) -> None:
    if not ctx.f.is_migration:
        return
    down = ctx.f.path.with_name(ctx.f.stem + ".down.sql")
    if not down.exists():
        ctx.report_at(ID, f"no rollback script {down.name} (`platformdb migrate down` needs it)", 1)


RULE = Rule(
    id=ID,
    level="error",
    message="every versioned migration has its .down.sql",
    rationale="`platformdb migrate down` rolls back with the file's exact reverse; without it a"
    " release cannot be undone.",
    order=140,
    file=check_file,
)
