"""`platformdb lint` on the command line: `file:line rule-id message`, exit 1 on errors."""

from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from platformdb.lint.engine import lint
from platformdb.lint.rule import all_rules
from platformdb.lint.squawk import SQUAWK_ADVISORY, SQUAWK_EXCLUDED, LintToolError


def register(app: typer.Typer) -> None:
    @app.command("lint")
    def lint_cmd(
        files: Annotated[
            list[Path] | None,
            typer.Argument(help="SQL files or folders (default: the project's migrations)."),
        ] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
        no_squawk: Annotated[bool, typer.Option("--no-squawk", help="Skip squawk.")] = False,
        rules: Annotated[bool, typer.Option("--rules", help="List the rules and exit.")] = False,
    ) -> None:
        """Check migrations against the ground rules (file:line rule-id message); exit 1 on errors."""
        from platformdb.cli import console, err_console, fail, print_json

        if rules:
            for rule in all_rules():
                rid, text = rule.id, rule.message
                console.print(f"[bold]{rid}[/]  {text}", highlight=False)
            console.print(
                "[bold]squawk/<rule>[/]  squawk's findings; off: "
                + ", ".join(SQUAWK_EXCLUDED)
                + "; advisory: "
                + ", ".join(SQUAWK_ADVISORY),
                highlight=False,
            )
            raise typer.Exit(0)
        try:
            result = lint(files or None, squawk=not no_squawk)
        except (FileNotFoundError, LintToolError) as exc:
            fail(str(exc))
            return
        if as_json:
            print_json(
                {
                    "ok": not result.errors,
                    "files": result.files,
                    "squawk": result.squawk,
                    "findings": [asdict(f) for f in result.findings],
                }
            )
        else:
            for finding in result.findings:
                sys.stdout.write(finding.format() + "\n")
            if not result.squawk and not no_squawk:
                err_console.print("note: squawk is not installed; only platformdb's rules ran")
            n_err = len(result.errors)
            n_other = len(result.findings) - n_err
            err_console.print(
                f"{len(result.files)} files: {n_err} error{'s' if n_err != 1 else ''},"
                f" {n_other} warning{'s' if n_other != 1 else ''}/advisory"
            )
        raise typer.Exit(1 if result.errors else 0)
