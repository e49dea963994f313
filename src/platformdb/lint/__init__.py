"""`platformdb lint`: the ground rules of the migrations as code (SPEC §1.5, §2, §4).

Every file is parsed by PostgreSQL's own parser (pglast) and checked statement by statement
against the project's rules; each finding is reported as ``file:line rule-id message``.
The files are read as one ordered set (migration version order), so that "additive only"
knows which objects the set itself created: a later file may alter or drop what an earlier
one created, never anything else. A ``.down.sql`` file may drop exactly what its up file
created, and must drop all of it.

The package:

- `sql`: the parsed files and AST helpers;
- `context`: the registry of what the file set creates and one file's facts;
- `rule`: the `Rule` type and the registry that discovers `rules/*` (one module per rule,
  each with its id, level, message, rationale and checks);
- `engine`: runs every rule over the ordered set; `squawk`: squawk on the same files;
- `cli`: the command.

A rule can be waived for one statement by a comment right above it that says why::

    -- platformdb-lint: allow additive-only (the app's trigger is ours to replace: …)
"""

from __future__ import annotations

from platformdb.lint.cli import register
from platformdb.lint.engine import LintResult, default_files, expand, lint, lint_file, lint_files
from platformdb.lint.rule import Rule, all_rules
from platformdb.lint.rules.index_immutable import NON_IMMUTABLE_FUNCTIONS
from platformdb.lint.sql import Finding, display_path, function_signature, input_params, type_key, type_sql
from platformdb.lint.squawk import (
    SQUAWK_ADVISORY,
    SQUAWK_DOWN_EXCLUDED,
    SQUAWK_EXCLUDED,
    SQUAWK_PG_VERSION,
    LintToolError,
    run_squawk,
    squawk_binary,
)

RULES: dict[str, str] = {r.id: r.message for r in all_rules()}
WARNING_RULES = {r.id for r in all_rules() if r.level == "warning"}

__all__ = [
    "NON_IMMUTABLE_FUNCTIONS",
    "RULES",
    "SQUAWK_ADVISORY",
    "SQUAWK_DOWN_EXCLUDED",
    "SQUAWK_EXCLUDED",
    "SQUAWK_PG_VERSION",
    "WARNING_RULES",
    "Finding",
    "LintResult",
    "LintToolError",
    "Rule",
    "all_rules",
    "default_files",
    "display_path",
    "expand",
    "function_signature",
    "input_params",
    "lint",
    "lint_file",
    "lint_files",
    "register",
    "run_squawk",
    "squawk_binary",
    "type_key",
    "type_sql",
]
