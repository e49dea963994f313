"""docs/quick-reference.md, executed.

Every ```python and ```sql block of the page runs against a fresh clone of the migrated
template, section by section in document order (the Python blocks of a section share one
session that starts with the page's ```python setup block; the SQL blocks of a section run
one after the other on one database), as the role its first line names. A SQL line
`-- → value` checks the result of the statement above it (first column of the first row,
as PostgreSQL prints it), `-- → N rows` its row count, `-- → error SQLSTATE: text` the
error it must raise (in a savepoint, so the block goes on).

Every `supabase.rpc('name', {…})` of a ```js block is checked against the catalog (the
function exists in public, each key is one of its input parameters, every parameter
without a default is given, the role the block names may execute it) and against the SQL
block of the same task (the same function called with the same parameter names), and every
`supabase.from('name')` must be a relation that role may read.

The last tests feed deliberately broken examples to the same machinery and expect it to
refuse them: a broken example on the page fails this file.
"""

from __future__ import annotations

import re
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pglast
import psycopg
import pytest
from pglast import ast
from pglast.visitors import Visitor

from platformdb import db
from platformdb.errors import InvalidInput

DOC = Path(__file__).resolve().parents[2] / "docs" / "quick-reference.md"

# the functions of SPEC §1: each must be shown in SQL and in JavaScript
SPEC_FUNCTIONS = (
    "record_metric",
    "log_audit_event",
    "update_whatsapp_session_activity",
    "enqueue_whatsapp_message",
    "cleanup_expired_whatsapp_sessions",
    "create_transaction",
    "update_transaction_status",
    "register_service",
    "service_heartbeat",
    "is_feature_enabled",
    "append_event",
    "get_aggregate_events",
    "enqueue_message",
    "schedule_job",
    "complete_job",
    "find_nearby_locations",
    "get_cached_route",
    "set_cache",
    "get_cache",
    "invalidate_cache_by_tag",
    "cleanup_expired_cache",
)
# sections that are about the page itself, not a capability
GENERAL_SECTIONS = ("Before you start", "Errors")

FENCE = re.compile(r"^```(\w*)[ \t]*(.*?)\s*$")
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
SQL_ROLE = re.compile(rf"^-- as (?:(anon|authenticated|service_role)(?:, user ({UUID}))?|(the table owner))\s*$")
PY_ROLE = re.compile(r"^# as (anon|authenticated|service_role)\s*$")
JS_ROLE = re.compile(r"^// as (anon|authenticated|service_role)\s*$")
# what a Python block must contain to act as the role it names
PY_ACTING = {
    "service_role": ("db.as_service(", 'role="service_role"', "aio.as_service("),
    "authenticated": ("db.as_user(", "aio.as_user("),
    "anon": ("db.as_anon(", "aio.as_anon("),
}
BOOL_OID = 16
EXPECT = re.compile(r"^--\s*→\s*(.*?)\s*$")
EXPECT_ERROR = re.compile(r"^error ([0-9A-Z]{5})(?::\s*(.+))?$")
EXPECT_ROWS = re.compile(r"^(\d+) rows?$")
RPC = re.compile(r"supabase\s*\.rpc\(\s*'([A-Za-z_][A-Za-z0-9_]*)'\s*")
FROM = re.compile(r"supabase\s*\.from\(\s*'([A-Za-z_][A-Za-z0-9_]*)'\s*\)")
JS_KEY = re.compile(r"""(?:([A-Za-z_$][A-Za-z0-9_$]*)|'([^'\\]*)'|"([^"\\]*)")\s*:""")


@dataclass(frozen=True)
class Block:
    lang: str
    info: str  # the rest of the info string ("setup")
    code: str
    line: int  # line number (1-based) of the block's first code line
    section: str
    task: str

    @property
    def where(self) -> str:
        return f"{DOC.name}:{self.line} ({self.section} / {self.task or '-'})"


def parse_blocks(text: str) -> list[Block]:
    blocks: list[Block] = []
    section = task = ""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("## "):
            section, task = line[3:].strip(), ""
        elif line.startswith("### "):
            task = line[4:].strip()
        elif (m := FENCE.match(line)) and line != "```":
            start = i + 1
            j = start
            while j < len(lines) and lines[j] != "```":
                j += 1
            if j == len(lines):
                raise ValueError(f"{DOC.name}:{i + 1}: unclosed code block")
            code = "\n".join(lines[start:j]) + "\n"
            blocks.append(Block(m.group(1), m.group(2), code, start + 1, section, task))
            i = j
        i += 1
    return blocks


def load_blocks() -> list[Block]:
    return parse_blocks(DOC.read_text())


def first_line(block: Block) -> str:
    return block.code.splitlines()[0] if block.code.strip() else ""


def sql_role(block: Block) -> tuple[str, str | None]:
    """('service_role' | 'authenticated' | 'anon' | 'owner', user id or None)."""
    m = SQL_ROLE.match(first_line(block))
    if not m:
        raise AssertionError(f"{block.where}: a SQL block starts with '-- as <role>', got {first_line(block)!r}")
    if m.group(3):
        return "owner", None
    role, user = m.group(1), m.group(2)
    if role == "authenticated" and user is None:
        raise AssertionError(f"{block.where}: '-- as authenticated' needs ', user <uuid>'")
    return role, user


def js_role(block: Block) -> str:
    m = JS_ROLE.match(first_line(block))
    if not m:
        raise AssertionError(f"{block.where}: a JavaScript block starts with '// as <role>'")
    return m.group(1)


def py_role(block: Block) -> str:
    m = PY_ROLE.match(first_line(block))
    if not m:
        raise AssertionError(f"{block.where}: a Python block starts with '# as <role>'")
    role = m.group(1)
    if not any(marker in block.code for marker in PY_ACTING[role]):
        raise AssertionError(f"{block.where}: says '# as {role}' but never acts as it ({' or '.join(PY_ACTING[role])})")
    return role


# ---- SQL: statements, expectations, calls ----------------------------------------------


@dataclass(frozen=True)
class Step:
    sql: str
    expect: str | None
    line: int  # doc line of the statement's start


def sql_steps(block: Block) -> list[Step]:
    """The block's statements, each with the `-- → …` line that follows it (if any)."""
    code = block.code
    slices = pglast.parser.split(code, only_slices=True)
    steps = []
    for k, s in enumerate(slices):
        gap_end = slices[k + 1].start if k + 1 < len(slices) else len(code)
        expects = [m.group(1) for raw in code[s.stop : gap_end].splitlines() if (m := EXPECT.match(raw.strip()))]
        if len(expects) > 1:
            raise AssertionError(f"{block.where}: one '-- →' line per statement")
        steps.append(Step(code[s], expects[0] if expects else None, block.line + code[: s.start].count("\n")))
    stray = len([ln for ln in code.splitlines() if EXPECT.match(ln.strip())]) - sum(1 for st in steps if st.expect)
    if stray:
        raise AssertionError(f"{block.where}: a '-- →' line that follows no statement")
    return steps


def _text(cur: psycopg.Cursor[Any]) -> str:
    """The first column of the first row as PostgreSQL prints it (null for NULL, true/false)."""
    res = cur.pgresult
    if res is None or res.ntuples == 0 or res.nfields == 0:
        raise AssertionError("no row to compare")
    raw = res.get_value(0, 0)
    if raw is None:
        return "null"
    text = bytes(raw).decode()
    if res.ftype(0) == BOOL_OID:  # psql's t/f, spelt out
        return {"t": "true", "f": "false"}[text]
    return text


def run_step(conn: psycopg.Connection[Any], step: Step) -> None:
    where = f"{DOC.name}:{step.line}"
    expect = step.expect
    if expect is not None and (err := EXPECT_ERROR.match(expect)):
        state, text = err.group(1), err.group(2)
        try:
            with conn.transaction():
                conn.execute(step.sql)
        except psycopg.Error as exc:
            assert exc.sqlstate == state, f"{where}: expected SQLSTATE {state}, got {exc.sqlstate}: {exc}"
            message = exc.diag.message_primary or ""
            assert text is None or text in message, f"{where}: {text!r} not in the error message {message!r}"
            return
        raise AssertionError(f"{where}: expected error {state}, but the statement succeeded")
    try:
        cur = conn.execute(step.sql)
    except psycopg.Error as exc:
        raise AssertionError(f"{where}: {step.sql.splitlines()[0]} … failed: {exc.sqlstate} {exc}") from exc
    if expect is None:
        return
    if rows := EXPECT_ROWS.match(expect):
        got = cur.pgresult.ntuples if cur.pgresult is not None else 0
        assert got == int(rows.group(1)), f"{where}: expected {rows.group(1)} rows, got {got}"
        return
    got_text = _text(cur)
    assert got_text == expect, f"{where}: expected {expect!r}, got {got_text!r}"


def run_sql_block(conn: psycopg.Connection[Any], block: Block) -> None:
    role, user = sql_role(block)
    acting: AbstractContextManager[Any] = nullcontext() if role == "owner" else db.acting_as(conn, role, user)
    with acting:
        for step in sql_steps(block):
            run_step(conn, step)


@dataclass(frozen=True)
class SqlCall:
    name: str
    named: frozenset[str]
    positional: int


class _Calls(Visitor):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[SqlCall] = []

    def visit_FuncCall(self, parent: Any, node: ast.FuncCall) -> None:  # noqa: N802 (pglast's naming)
        names = [n.sval for n in node.funcname or ()]
        if len(names) != 2 or names[0] != "public":
            return
        args = node.args or ()
        named = frozenset(str(a.name) for a in args if isinstance(a, ast.NamedArgExpr))
        self.calls.append(SqlCall(names[1], named, len(args) - len(named)))


def sql_calls(block: Block) -> list[SqlCall]:
    """The calls of public.* functions in a SQL block."""
    visitor = _Calls()
    visitor(pglast.parse_sql(block.code))
    return visitor.calls


# ---- JavaScript: rpc calls ------------------------------------------------------------


@dataclass(frozen=True)
class RpcCall:
    name: str
    keys: tuple[str, ...]
    line: int


def _end_of_string(src: str, i: int) -> int:
    quote = src[i]
    i += 1
    while i < len(src):
        if src[i] == "\\":
            i += 2
            continue
        if src[i] == quote:
            return i + 1
        i += 1
    raise ValueError("unterminated string")


def object_keys(src: str, start: int) -> list[str]:
    """The top-level keys of the JavaScript object literal that opens at src[start]."""
    if src[start] != "{":
        raise ValueError("not an object literal")
    keys: list[str] = []
    depth = 0
    expect_key = False
    i = start
    while i < len(src):
        c = src[i]
        if c.isspace():
            i += 1
        elif src.startswith("//", i):
            nl = src.find("\n", i)
            i = len(src) if nl < 0 else nl
        elif depth == 1 and expect_key and c not in "}":
            m = JS_KEY.match(src, i)
            if not m:
                raise ValueError(f"cannot read a key at {src[i : i + 30]!r}")
            keys.append(next(g for g in m.groups() if g is not None))
            expect_key = False
            i = m.end()
        elif c in "'\"`":
            i = _end_of_string(src, i)
        elif c in "{[(":
            depth += 1
            expect_key = depth == 1
            i += 1
        elif c in "}])":
            depth -= 1
            i += 1
            if depth == 0:
                return keys
        else:
            if c == "," and depth == 1:
                expect_key = True
            i += 1
    raise ValueError("unbalanced object literal")


def rpc_calls(block: Block) -> list[RpcCall]:
    calls = []
    for m in RPC.finditer(block.code):
        rest = m.end()
        line = block.line + block.code[: m.start()].count("\n")
        if block.code[rest] == ")":
            keys: list[str] = []
        elif block.code[rest] == ",":
            brace = rest + 1
            while block.code[brace].isspace():
                brace += 1
            keys = object_keys(block.code, brace)
        else:
            raise AssertionError(f"{DOC.name}:{line}: rpc arguments must be an object literal")
        calls.append(RpcCall(m.group(1), tuple(keys), line))
    return calls


SIGNATURES = """
select p.oid::regprocedure::text, p.pronargs, p.pronargdefaults, p.proargnames, p.proargmodes::text[],
       has_function_privilege(%(role)s, p.oid, 'execute')
  from pg_catalog.pg_proc p join pg_catalog.pg_namespace n on n.oid = p.pronamespace
 where n.nspname = 'public' and p.proname = %(name)s and p.prokind = 'f'
"""
READABLE = """
select has_any_column_privilege(%(role)s, c.oid, 'select')
  from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
 where n.nspname = 'public' and c.relname = %(name)s and c.relkind in ('r', 'p', 'v', 'm')
"""


def rpc_problems(conn: psycopg.Connection[Any], call: RpcCall, role: str) -> list[str]:
    """Why this call would not reach a function the role may execute (empty: it would)."""
    where = f"{DOC.name}:{call.line}: rpc('{call.name}')"
    overloads = conn.execute(SIGNATURES, {"role": role, "name": call.name}).fetchall()
    if not overloads:
        return [f"{where}: no function public.{call.name}"]
    if len(set(call.keys)) != len(call.keys):
        return [f"{where}: a key is given twice"]
    problems = []
    for signature, nargs, ndefaults, argnames, argmodes, executable in overloads:
        names = list(argnames or [])
        modes = list(argmodes or ["i"] * nargs)
        inputs = [n for n, mode in zip(names, modes, strict=False) if mode in ("i", "b", "v")]
        required = inputs[: len(inputs) - ndefaults]
        unknown = [k for k in call.keys if k not in inputs]
        missing = [r for r in required if r not in call.keys]
        if not unknown and not missing and executable:
            return []
        why = []
        if unknown:
            why.append(f"unknown parameter(s) {', '.join(unknown)}")
        if missing:
            why.append(f"missing required parameter(s) {', '.join(missing)}")
        if not executable:
            why.append(f"{role} may not execute it")
        problems.append(f"{where}: {signature}: {'; '.join(why)}")
    return problems


def from_problems(conn: psycopg.Connection[Any], block: Block, role: str) -> list[str]:
    problems = []
    for m in FROM.finditer(block.code):
        line = block.line + block.code[: m.start()].count("\n")
        row = conn.execute(READABLE, {"role": role, "name": m.group(1)}).fetchone()
        if row is None:
            problems.append(f"{DOC.name}:{line}: from('{m.group(1)}'): no table or view public.{m.group(1)}")
        elif not row[0]:
            problems.append(f"{DOC.name}:{line}: from('{m.group(1)}'): {role} may not read it")
    return problems


def js_problems(conn: psycopg.Connection[Any], blocks: list[Block]) -> list[str]:
    problems = []
    for block in blocks:
        if block.lang != "js":
            continue
        role = js_role(block)
        for call in rpc_calls(block):
            problems += rpc_problems(conn, call, role)
        problems += from_problems(conn, block, role)
    return problems


def task_mismatches(blocks: list[Block]) -> list[str]:
    """JavaScript calls without a SQL call of the same function and parameters in their task."""
    sql_by_task: dict[tuple[str, str], set[tuple[str, frozenset[str]]]] = {}
    for b in blocks:
        if b.lang == "sql":
            sql_by_task.setdefault((b.section, b.task), set()).update((c.name, c.named) for c in sql_calls(b))
    problems = []
    for b in blocks:
        if b.lang != "js":
            continue
        shown = sql_by_task.get((b.section, b.task), set())
        for call in rpc_calls(b):
            if (call.name, frozenset(call.keys)) not in shown:
                variants = sorted(", ".join(sorted(n)) for name, n in shown if name == call.name)
                problems.append(
                    f"{DOC.name}:{call.line}: rpc('{call.name}', {{{', '.join(call.keys)}}}) has no SQL twin in "
                    f"'{b.task}'" + (f" (SQL passes: {' | '.join(variants)})" if variants else "")
                )
    return problems


# ---- Python ---------------------------------------------------------------------------


def run_python_blocks(blocks: list[Block]) -> None:
    """Run the setup block then `blocks` in one namespace; tracebacks point at the page."""
    setup = [b for b in load_blocks() if b.lang == "python" and b.info == "setup"]
    assert len(setup) == 1, "the page has exactly one ```python setup block"
    namespace: dict[str, Any] = {"__name__": "quick_reference"}
    try:
        for block in [setup[0], *blocks]:
            if block is not setup[0]:
                py_role(block)
            source = "\n" * (block.line - 1) + block.code
            exec(compile(source, str(DOC), "exec"), namespace)  # noqa: S102 (the page's own examples)
    finally:
        conn = namespace.get("conn")
        if isinstance(conn, psycopg.Connection):
            conn.close()


# ---- the page -------------------------------------------------------------------------


def _sections(lang: str) -> list[str]:
    seen: list[str] = []
    for b in load_blocks():
        if b.lang == lang and b.info != "setup" and b.section not in seen:
            seen.append(b.section)
    return seen


def test_page_shows_every_capability_in_three_forms() -> None:
    blocks = load_blocks()
    sections = {b.section for b in blocks}
    capabilities = sections - set(GENERAL_SECTIONS)
    assert {
        "Observability",
        "WhatsApp",
        "Payments",
        "Service registry and feature flags",
        "Events, queues and jobs",
        "Locations, routes and the cache",
    } <= capabilities
    for section in capabilities:
        langs = {b.lang for b in blocks if b.section == section}
        assert {"python", "sql", "js"} <= langs, f"{section}: has only {sorted(langs)}"
    for b in blocks:
        assert b.lang in ("python", "sql", "js"), f"{b.where}: unexpected block language {b.lang!r}"
        if b.lang == "sql":
            sql_role(b)
        elif b.lang == "js":
            js_role(b)
        elif b.info != "setup":
            py_role(b)


def test_every_spec_function_is_shown_in_sql_and_javascript() -> None:
    blocks = load_blocks()
    in_sql = {c.name for b in blocks if b.lang == "sql" for c in sql_calls(b)}
    in_js = {c.name for b in blocks if b.lang == "js" for c in rpc_calls(b)}
    assert not set(SPEC_FUNCTIONS) - in_sql, f"not shown in SQL: {sorted(set(SPEC_FUNCTIONS) - in_sql)}"
    assert not set(SPEC_FUNCTIONS) - in_js, f"not shown in JavaScript: {sorted(set(SPEC_FUNCTIONS) - in_js)}"


def test_sql_examples_use_named_arguments() -> None:
    positional = [
        f"{b.where}: public.{c.name} has {c.positional} positional argument(s)"
        for b in load_blocks()
        if b.lang == "sql"
        for c in sql_calls(b)
        if c.positional
    ]
    assert not positional, "\n".join(positional)


@pytest.mark.parametrize("section", _sections("python"))
def test_python_examples_run(section: str, db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", db_url)
    blocks = [b for b in load_blocks() if b.lang == "python" and b.info != "setup" and b.section == section]
    assert blocks
    run_python_blocks(blocks)


@pytest.mark.parametrize("section", _sections("sql"))
def test_sql_examples_run(section: str, conn: psycopg.Connection[Any]) -> None:
    blocks = [b for b in load_blocks() if b.lang == "sql" and b.section == section]
    assert blocks
    for block in blocks:
        run_sql_block(conn, block)


def test_javascript_calls_match_the_catalog(conn: psycopg.Connection[Any]) -> None:
    blocks = load_blocks()
    assert sum(len(rpc_calls(b)) for b in blocks if b.lang == "js") >= len(SPEC_FUNCTIONS)
    problems = js_problems(conn, blocks)
    assert not problems, "\n".join(problems)


def test_javascript_calls_match_the_sql_of_their_task() -> None:
    problems = task_mismatches(load_blocks())
    assert not problems, "\n".join(problems)


# ---- the machinery refuses broken examples --------------------------------------------


def _page(text: str) -> list[Block]:
    return parse_blocks(text)


BROKEN_JS = """
## Payments
### Pay
```sql
-- as service_role
select public.create_transaction(p_user_id => gen_random_uuid(), p_type => 'payment', p_amount => 1);
```

```js
// as service_role
await supabase.rpc('create_transaction', { p_user_id: id, p_typ: 'payment', p_amount: 1 })
await supabase.rpc('create_transaction', { p_user_id: id, p_amount: 1 })
await supabase.rpc('create_transactions', { p_user_id: id })
const { data } = await supabase.from('no_such_view').select()
```

```js
// as anon
await supabase.rpc('record_metric', { p_service_name: 's', p_metric_type: 'counter', p_metric_name: 'm', p_value: 1 })
const { data } = await supabase.from('system_metrics').select()
```
"""


def test_a_broken_javascript_call_is_refused(conn: psycopg.Connection[Any]) -> None:
    problems = "\n".join(js_problems(conn, _page(BROKEN_JS)))
    assert "unknown parameter(s) p_typ" in problems and "missing required parameter(s) p_type" in problems
    assert "no function public.create_transactions" in problems
    assert "from('no_such_view'): no table or view" in problems
    assert "anon may not execute it" in problems
    assert "from('system_metrics'): anon may not read it" in problems
    mismatches = "\n".join(task_mismatches(_page(BROKEN_JS)))
    assert "rpc('create_transaction', {p_user_id, p_typ, p_amount}) has no SQL twin" in mismatches


def test_a_javascript_call_that_matches_is_accepted(conn: psycopg.Connection[Any]) -> None:
    page = _page(
        "## A\n### B\n```sql\n-- as service_role\nselect public.get_cache(p_key => 'k');\n```\n"
        "```js\n// as service_role\nawait supabase.rpc('get_cache', { p_key: 'k', })\n```\n"
    )
    assert js_problems(conn, page) == []
    assert task_mismatches(page) == []


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("select 1;\n-- → 2\n", "expected '2', got '1'"),
        ("select 1;\n-- → error 22023\n", "expected error 22023, but the statement succeeded"),
        ("select 1/0;\n-- → error 22023\n", "expected SQLSTATE 22023, got 22012"),
        (
            "select public.set_cache(p_key => 'k', p_value => '1', p_ttl_seconds => 0);\n-- → error 22023: p_nope\n",
            "'p_nope' not in the error message",
        ),
        ("select 1/0;\n", "failed: 22012"),
        ("select generate_series(1, 3);\n-- → 2 rows\n", "expected 2 rows, got 3"),
        (
            "select public.record_metric(p_service_name => 's', p_metric_type => 'counter', p_metric_name => 'm',"
            " p_value => 1);\n",
            "failed: 42501",
        ),
    ],
)
def test_a_broken_sql_example_fails(conn: psycopg.Connection[Any], sql: str, message: str) -> None:
    role = "-- as anon" if "record_metric" in sql else "-- as service_role"
    [block] = _page(f"## S\n```sql\n{role}\n{sql}```\n")
    with pytest.raises(AssertionError, match=re.escape(message)):
        run_sql_block(conn, block)


def test_a_sql_example_that_holds_passes(conn: psycopg.Connection[Any]) -> None:
    [block] = _page(
        "## S\n```sql\n-- as service_role\nselect public.set_cache(p_key => 'k', p_value => '{\"a\": 1}');\n"
        "select public.get_cache(p_key => 'k') ->> 'a';\n-- → 1\nselect public.get_cache(p_key => 'missing');\n"
        "-- → null\nselect generate_series(1, 3);\n-- → 3 rows\n"
        "select public.set_cache(p_key => 'k', p_value => '1', p_ttl_seconds => 0);\n-- → error 22023\n```\n"
    )
    run_sql_block(conn, block)


@pytest.mark.parametrize(
    ("code", "error"),
    [
        ("# as service_role\nwith db.as_service(conn):\n    assert cache.get_cache(conn, 'k') == 1\n", AssertionError),
        (
            "# as service_role\nwith db.as_service(conn):\n    cache.set_cache(conn, 'k', 1, ttl_seconds=0)\n",
            InvalidInput,
        ),
        ("# as authenticated\nwith db.as_service(conn):\n    pass\n", AssertionError),
        ("with db.as_service(conn):\n    pass\n", AssertionError),
    ],
)
def test_a_broken_python_example_fails(
    db_url: str, monkeypatch: pytest.MonkeyPatch, code: str, error: type[BaseException]
) -> None:
    monkeypatch.setenv("DATABASE_URL", db_url)
    [block] = _page(f"## S\n```python\n{code}```\n")
    with pytest.raises(error):
        run_python_blocks([block])


def test_a_statement_result_line_must_follow_a_statement() -> None:
    [block] = _page("## S\n```sql\n-- as service_role\n-- → 1\nselect 1;\n```\n")
    with pytest.raises(AssertionError, match="follows no statement"):
        sql_steps(block)


def test_role_lines_are_required() -> None:
    sql, js = _page("## S\n```sql\nselect 1;\n```\n```js\nawait supabase.rpc('get_cache', { p_key: 'k' })\n```\n")
    with pytest.raises(AssertionError, match="starts with '-- as <role>'"):
        sql_role(sql)
    with pytest.raises(AssertionError, match="starts with '// as <role>'"):
        js_role(js)
