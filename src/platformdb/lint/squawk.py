"""squawk (PyPI `squawk-cli`) on the same files, for general migration safety.

`SQUAWK_EXCLUDED`, `SQUAWK_DOWN_EXCLUDED` and `SQUAWK_ADVISORY` say which of its rules are
switched off, which only inform, and why. Every other squawk finding is an error.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from platformdb.lint.sql import Finding, display_path

# squawk: rules switched off because they contradict how the files are meant to be written
SQUAWK_EXCLUDED: dict[str, str] = {
    "require-concurrent-index-creation": "CONCURRENTLY cannot run inside the file's BEGIN … COMMIT"
    " (our own non-transactional rule refuses it); indexes are built with their new tables",
    "require-concurrent-index-deletion": "same: DROP INDEX CONCURRENTLY cannot run in a transaction",
    "prefer-robust-stmts": "IF [NOT] EXISTS would hide a name collision the additive-only guard must"
    " surface; a file is all-or-nothing, so a failed run leaves nothing half-applied",
    "prefer-bigint-over-int": "ids are uuid; integer columns are small bounded counters and"
    " priorities with CHECK constraints",
    "prefer-bigint-over-smallint": "same as prefer-bigint-over-int",
}
# squawk: additionally off for .down.sql files, whose job is to drop what the up file created
# (our additive-only and down-incomplete rules check that precisely)
SQUAWK_DOWN_EXCLUDED: tuple[str, ...] = (
    "ban-drop-table",
    "ban-drop-view",
    "ban-drop-function",
    "ban-drop-schema",
    "ban-drop-sequence",
    "ban-drop-type",
    "ban-drop-domain",
    "ban-drop-column",
    "ban-drop-constraint",
    "ban-drop-not-null",
    "ban-drop-extension",
    "renaming-table",
    "renaming-column",
    "renaming-object",
)
# squawk: shown, but do not fail the command
SQUAWK_ADVISORY: dict[str, str] = {
    "require-lock-timeout": "a migration locks only objects it creates (additive only); the"
    " deployer sets lock_timeout for the session (the Supabase CLI and `platformdb migrate` run"
    " each file in one transaction)",
    "require-statement-timeout": "same as require-lock-timeout",
}
SQUAWK_PG_VERSION = "15.0"


def squawk_binary() -> str | None:
    local = Path(sys.executable).parent / "squawk"
    if local.exists():
        return str(local)
    return shutil.which("squawk")


def run_squawk(paths: Sequence[Path]) -> list[Finding]:
    """squawk's findings for `paths` (none when squawk is not installed)."""
    binary = squawk_binary()
    if binary is None or not paths:
        return []
    ups = [p for p in paths if not p.name.endswith(".down.sql")]
    downs = [p for p in paths if p.name.endswith(".down.sql")]
    out: list[Finding] = []
    for group, excluded in ((ups, list(SQUAWK_EXCLUDED)), (downs, [*SQUAWK_EXCLUDED, *SQUAWK_DOWN_EXCLUDED])):
        if not group:
            continue
        cmd = [
            binary,
            "--reporter",
            "json",
            f"--pg-version={SQUAWK_PG_VERSION}",
            "--exclude=" + ",".join(excluded),
            *[str(p) for p in group],
        ]
        r = subprocess.run(cmd, capture_output=True, text=True, check=False)
        try:
            items = json.loads(r.stdout or "[]")
        except json.JSONDecodeError:
            items = None
        if r.returncode not in (0, 1) or items is None:
            raise LintToolError(f"squawk failed (exit {r.returncode}): {r.stderr.strip() or r.stdout.strip()}")
        for v in items:
            rule = v.get("rule_name") or "unknown"
            severity = "advisory" if rule in SQUAWK_ADVISORY else "error"
            message = v.get("message", "")
            if v.get("help"):
                message += f" ({v['help']})"
            out.append(
                Finding(
                    display_path(Path(v.get("file", ""))),
                    int(v.get("line", 0)) + 1,  # squawk's JSON lines count from 0
                    f"squawk/{rule}",
                    message,
                    severity,
                )
            )
    return out


class LintToolError(RuntimeError):
    """An external linter could not run."""
