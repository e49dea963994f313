"""One module per lint rule, each defining `RULE` (see platformdb.lint.rule)."""
