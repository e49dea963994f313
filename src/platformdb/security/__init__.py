"""The security matrix: expected access for every table × actor × operation (SPEC §2).

Each capability has a module here with `TABLES: list[TableAccess]`. The matrix test
(`tests/security/test_matrix.py`) checks every cell against a real database, acting as each
role the way PostgREST does, and fails when a table in `public` has no row here.
`docs/security.md` is rendered from the same data.

Actors: `anon`; `owner` (authenticated, the user the seeded row belongs to); `other`
(authenticated, another user); `service` (service_role). Operations: s(elect), i(nsert),
u(pdate), d(elete). A cell not listed is expected to be refused: a permission error, an RLS
violation, or (for select/update/delete) the row simply not being visible.

SQL templates (psycopg named placeholders):
- `seed`: run as the table owner; inserts one row belonging to `%(owner)s` and returns one
  value (the key) that `match` uses as `%(key)s`. May create rows in other tables first.
- `match`: a predicate that selects exactly the seeded row.
- `insert`: an INSERT of a new row belonging to `%(owner)s` (for the `other` actor the row
  still belongs to the seeded owner: inserting on someone else's behalf).
- `update`: the SET clause of an UPDATE applied to the seeded row.

Each module also sets `MIGRATION = "<version>_<name>"`, the migration creating its tables.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass

ACTORS = ("anon", "owner", "other", "service")
OPS = ("select", "insert", "update", "delete")
OP_LETTERS = {"s": "select", "i": "insert", "u": "update", "d": "delete"}


@dataclass(frozen=True)
class TableAccess:
    table: str
    seed: str
    match: str
    insert: str
    update: str
    anon: str = ""
    owner: str = ""
    other: str = ""
    service: str = ""
    why: str = ""

    def allowed(self, actor: str, op: str) -> bool:
        letters: str = getattr(self, actor)
        return op[0] in letters


_MIGRATION_OF: dict[str, str] = {}


def migration_of(table: str) -> str:
    """The migration (module-level MIGRATION of the capability module) creating `table`."""
    load()
    return _MIGRATION_OF.get(table, "")


def load() -> dict[str, TableAccess]:
    """Every TableAccess of every capability module, by table name."""
    out: dict[str, TableAccess] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        mod = importlib.import_module(f"{__name__}.{info.name}")
        for t in getattr(mod, "TABLES", []):
            if t.table in out:
                raise ValueError(f"table {t.table} appears twice in the security matrix")
            out[t.table] = t
            _MIGRATION_OF[t.table] = getattr(mod, "MIGRATION", "")
    return out


def render_markdown() -> str:
    """The matrix as a Markdown table (docs/security.md)."""
    lines = [
        "| table | anon | owner | other user | service_role | why |",
        "|---|---|---|---|---|---|",
    ]

    def cell(letters: str) -> str:
        return "".join(c.upper() if c in letters else "·" for c in "siud")

    for name, t in sorted(load().items()):
        lines.append(
            f"| `{name}` | {cell(t.anon)} | {cell(t.owner)} | {cell(t.other)} | {cell(t.service)} | {t.why} |"
        )
    return "\n".join(lines) + "\n"
