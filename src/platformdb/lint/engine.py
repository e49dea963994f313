"""Running the rules over an ordered set of files."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from platformdb import migrate
from platformdb.lint.context import FileContext, Registry, collect
from platformdb.lint.rule import all_rules, levels
from platformdb.lint.sql import Finding, SqlFile, display_path, load_file
from platformdb.lint.squawk import LintToolError, run_squawk, squawk_binary


def lint_file(files: list[SqlFile], index: int, reg: Registry, up_index: int | None) -> list[Finding]:
    """Every rule on files[index], with `reg` holding what the files before it created."""
    rules = all_rules()
    ctx = FileContext(files, index, reg, up_index, levels())
    for i, s in enumerate(ctx.f.stmts):
        ctx.stmt = s
        for rule in rules:
            if rule.statement is not None:
                rule.statement(ctx, s.node, i)
        collect(ctx, s.node, i)
    ctx.stmt = None
    for rule in rules:
        if rule.file is not None:
            rule.file(ctx)
    return ctx.findings


def default_files() -> list[Path]:
    """The project's migrations and their rollback scripts."""
    directory = migrate.default_dir()
    return sorted(p for p in directory.iterdir() if p.name.endswith(".sql"))


def expand(paths: Iterable[Path]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out += sorted(q for q in p.iterdir() if q.name.endswith(".sql"))
        else:
            out.append(p)
    return out


def lint_files(paths: Sequence[Path], *, context: Sequence[Path] | None = None) -> list[Finding]:
    """Lint `paths` (reported) read together with `context` (the earlier migrations).

    Files are ordered by version (unversioned files last, by name); a `.down.sql` is paired
    with the `<same stem>.sql` among them or next to it on disk.
    """
    wanted = {p.resolve() for p in paths}
    all_paths: dict[Path, Path] = {}
    for p in list(context or []) + list(paths):
        all_paths.setdefault(p.resolve(), p)
    # a down file needs its up file in the set
    for rp in list(all_paths):
        if rp.name.endswith(".down.sql"):
            up = rp.with_name(rp.name[: -len(".down.sql")] + ".sql")
            if up.exists():
                all_paths.setdefault(up, up)
    files = [load_file(p) for p in all_paths.values()]
    files.sort(key=lambda f: f.sort_key())
    findings: list[Finding] = []
    reg = Registry()
    up_of = {f.stem: idx for idx, f in enumerate(files) if not f.is_down}
    for idx, f in enumerate(files):
        report = f.path.resolve() in wanted
        if f.parse_error is not None:
            if report:
                findings.append(f.parse_error)
            continue
        result = lint_file(files, idx, reg, up_of.get(f.stem) if f.is_down else None)
        if report:
            findings += result
    return sorted(findings, key=lambda x: (x.path, x.line, x.rule))


@dataclass
class LintResult:
    findings: list[Finding]
    files: list[str]
    squawk: bool

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]


def lint(paths: Sequence[Path] | None = None, *, squawk: bool = True) -> LintResult:
    """Lint `paths` (default: the project's migrations) with the project's migrations as
    context, plus squawk on the same files."""
    project = default_files()
    targets = expand(paths) if paths else project
    missing = [p for p in targets if not p.exists()]
    if missing:
        raise FileNotFoundError(", ".join(str(p) for p in missing))
    findings = lint_files(targets, context=project)
    ran_squawk = False
    if squawk and squawk_binary() is not None:
        unparsable = {f.path for f in findings if f.rule == "syntax-error"}
        findings += run_squawk([p for p in targets if display_path(p) not in unparsable])
        ran_squawk = True
    findings.sort(key=lambda x: (x.path, x.line, x.rule))
    return LintResult(findings, [display_path(p) for p in targets], ran_squawk)


__all__ = ["LintResult", "LintToolError", "default_files", "expand", "lint", "lint_file", "lint_files"]
