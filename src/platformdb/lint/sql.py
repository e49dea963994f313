"""The parsed SQL files and the AST helpers every rule uses.

Files are parsed by PostgreSQL's own parser (pglast). A statement carries the rules waived for
it by a comment right above it (`-- platformdb-lint: allow <rule>[, <rule>] (why)`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pglast import ast, parse_sql
from pglast.enums.parsenodes import VariableSetKind
from pglast.parser import ParseError
from pglast.stream import RawStream

from platformdb import migrate

ALLOW_RE = re.compile(r"platformdb-lint:\s*allow\s+([a-z0-9\-]+(?:\s*,\s*[a-z0-9\-]+)*)")
PARTITION_CHILD_RE = re.compile(r"^(?P<parent>.+)_(?:default|p\d{6})$")


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    rule: str
    message: str
    severity: str = "error"  # error | warning | advisory

    def format(self) -> str:
        note = "" if self.severity == "error" else f"({self.severity}) "
        return f"{self.path}:{self.line} {self.rule} {note}{self.message}"


# ---- parsed files -------------------------------------------------------------------


@dataclass
class Stmt:
    node: Any
    line: int
    allow: frozenset[str]


@dataclass
class SqlFile:
    path: Path
    text: str
    stmts: list[Stmt] = field(default_factory=list)
    parse_error: Finding | None = None
    last_line: int = 1

    @property
    def is_down(self) -> bool:
        return self.path.name.endswith(".down.sql")

    @property
    def stem(self) -> str:
        name = self.path.name
        return name[: -len(".down.sql")] if self.is_down else name[: -len(".sql")]

    @property
    def version(self) -> str | None:
        m = re.match(r"^(\d{14})_", self.path.name)
        return m.group(1) if m else None

    @property
    def is_migration(self) -> bool:
        """A versioned file the runner would apply (`<14 digits>_<name>.sql`)."""
        return not self.is_down and migrate.FILE_RE.match(self.path.name) is not None

    def sort_key(self) -> tuple[str, str, int]:
        return (self.version or "99999999999999", self.stem, 1 if self.is_down else 0)


def line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, max(0, offset)) + 1


def display_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def load_file(path: Path) -> SqlFile:
    text = path.read_text()
    f = SqlFile(path, text, last_line=max(1, len(text.rstrip().splitlines())))
    try:
        raw = parse_sql(text)
    except ParseError as exc:
        location = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], int) else 0
        f.parse_error = Finding(display_path(path), line_of(text, location), "syntax-error", str(exc.args[0]))
        return f
    prev_end = 0
    for r in raw:
        loc = r.stmt_location or 0
        leading = text[prev_end:loc]
        allow: set[str] = set()
        for m in ALLOW_RE.finditer(leading):
            allow.update(p.strip() for p in m.group(1).split(","))
        f.stmts.append(Stmt(r.stmt, line_of(text, loc), frozenset(allow)))
        prev_end = loc + (r.stmt_len or (len(text) - loc))
    return f


# ---- small AST helpers ------------------------------------------------------------------


def walk(node: Any) -> Iterator[Any]:
    """Every AST node under `node` (itself included)."""
    if isinstance(node, ast.Node):
        yield node
        slots: Iterable[str] = getattr(type(node), "__slots__", ())
        for attr in slots:
            yield from walk(getattr(node, attr, None))
    elif isinstance(node, (list, tuple)):
        for item in node:
            yield from walk(item)


def names(items: Iterable[Any] | None) -> list[str]:
    return [str(i.sval) for i in items or () if isinstance(i, ast.String)]


def qual(parts: Sequence[str], default_schema: str = "public") -> tuple[str, str]:
    if len(parts) >= 2:
        return parts[-2], parts[-1]
    return default_schema, parts[-1]


def rv(node: Any) -> tuple[str, str]:
    """(schema, name) of a RangeVar (public when unqualified)."""
    return (node.schemaname or "public", node.relname)


def fmt(key: tuple[str, str]) -> str:
    return f"{key[0]}.{key[1]}"


def str_value(node: Any) -> str | None:
    if isinstance(node, ast.String):
        return node.sval
    if isinstance(node, ast.A_Const) and isinstance(node.val, ast.String):
        return node.val.sval
    return None


def truthy(arg: Any) -> bool:
    if arg is None:
        return True  # `with (security_invoker)` means true
    if isinstance(arg, ast.Boolean):
        return bool(arg.boolval)
    if isinstance(arg, ast.Integer):
        return arg.ival != 0
    s = str_value(arg)
    return s is not None and s.lower() in ("true", "on", "1", "yes", "t", "y")


_TYPE_ALIASES = {
    "int": "int4",
    "integer": "int4",
    "bigint": "int8",
    "smallint": "int2",
    "boolean": "bool",
    "real": "float4",
    "decimal": "numeric",
}


def type_key(tn: Any) -> str:
    """A canonical spelling of a TypeName for comparing signatures (no typmods)."""
    parts = names(tn.names)
    base = parts[-1].lower() if parts else "?"
    base = _TYPE_ALIASES.get(base, base)
    return base + "[]" * len(tn.arrayBounds or ())


def type_sql(tn: Any) -> str:
    """A TypeName as SQL without typmods (for to_regprocedure)."""
    clone = ast.TypeName(names=tn.names, setof=False, pct_type=tn.pct_type, typemod=-1, arrayBounds=tn.arrayBounds)
    return str(RawStream()(clone))


def input_params(stmt: Any) -> list[Any]:
    """The parameters of a CREATE FUNCTION that make up its signature (not OUT/TABLE)."""
    out = []
    for p in stmt.parameters or ():
        mode = getattr(p.mode, "value", p.mode)
        if mode in ("o", "t"):
            continue
        out.append(p)
    return out


def function_signature(stmt: Any) -> str:
    schema, name = qual(names(stmt.funcname))
    args = ", ".join(type_sql(p.argType) for p in input_params(stmt))
    return f"{schema}.{name}({args})"


def arg_keys_of_create(stmt: Any) -> tuple[str, ...]:
    return tuple(type_key(p.argType) for p in input_params(stmt))


def func_options(options: Iterable[Any] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for o in options or ():
        if not isinstance(o, ast.DefElem):
            continue
        if o.defname == "security":
            out["definer"] = truthy(o.arg)
        elif o.defname == "volatility":
            out["volatility"] = str_value(o.arg)
        elif o.defname == "language":
            out["language"] = (str_value(o.arg) or "").lower()
        elif o.defname == "set" and isinstance(o.arg, ast.VariableSetStmt):
            if (o.arg.name or "").lower() == "search_path":
                out["search_path"] = o.arg
        elif o.defname == "reset" or (
            o.defname == "set"
            and isinstance(o.arg, ast.VariableSetStmt)
            and o.arg.kind in (VariableSetKind.VAR_RESET, VariableSetKind.VAR_RESET_ALL)
        ):
            out["search_path"] = None
    return out
