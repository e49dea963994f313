"""syntax-error: the file must parse. Reported by the loader (platformdb.lint.sql.load_file)."""

from platformdb.lint.rule import Rule

RULE = Rule(
    id="syntax-error",
    level="error",
    message="the file does not parse (PostgreSQL's own parser)",
    rationale="Every other rule reads the parse tree; a file PostgreSQL cannot parse cannot be applied either.",
    order=0,
)
