"""`platformdb lint`: every rule catches its bad fixture, exactly where it is marked.

Each file in tests/fixtures/lint/ marks the findings it must produce with
`-- expect: <rule-id>` at the end of the reported line; the test demands exactly those
findings (nothing missed, nothing extra). The good fixture must lint clean and apply to a
real database, and PostgreSQL itself must refuse what two of the rules flag.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import psycopg
import pytest

from platformdb import lint, migrate

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "lint"
OBS = sorted(migrate.default_dir().glob("20260401100000_system_observability*.sql"))
GOOD = FIXTURES / "20990101000000_good.sql"
EXPECT_RE = re.compile(r"--\s*expect:\s*([a-z\-]+(?:\s*,\s*[a-z\-]+)*)")
PDB = [sys.executable, "-m", "platformdb.cli"]


def expected(path: Path) -> set[tuple[int, str]]:
    out = set()
    for number, line in enumerate(path.read_text().splitlines(), 1):
        m = EXPECT_RE.search(line)
        if m:
            out |= {(number, r.strip()) for r in m.group(1).split(",")}
    return out


def found(path: Path, context: list[Path] | None = None) -> set[tuple[int, str]]:
    return {(f.line, f.rule) for f in lint.lint_files([path], context=OBS if context is None else context)}


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*PDB, *args], capture_output=True, text=True, cwd=ROOT, check=False)


FIXTURE_FILES = sorted(FIXTURES.glob("*.sql"))


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=[p.name for p in FIXTURE_FILES])
def test_fixture_findings_are_exactly_the_marked_ones(path: Path) -> None:
    assert found(path) == expected(path)


def test_every_rule_has_a_fixture_that_breaks_it() -> None:
    covered = {rule for p in FIXTURE_FILES for _, rule in expected(p)}
    assert set(lint.RULES) - covered == set()


def test_the_good_fixture_and_its_down_are_clean_with_squawk_too() -> None:
    result = lint.lint([GOOD, GOOD.with_name(GOOD.stem + ".down.sql")])
    assert result.squawk, "squawk is a dev dependency and must run"
    assert result.errors == []
    # squawk still speaks: its advisory findings are shown, they just do not fail
    assert {f.rule for f in result.findings} <= {f"squawk/{r}" for r in lint.SQUAWK_ADVISORY}


def test_the_project_migrations_pass() -> None:
    result = lint.lint()
    assert [f.format() for f in result.errors] == []


# ---- the command ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fixture", "rule", "line"),
    [
        ("transaction_wrap.sql", "transaction-wrap", 19),
        ("rls_enable.sql", "rls-enable", 6),
        ("definer_search_path.sql", "definer-search-path", 6),
        ("view_security_invoker.sql", "view-security-invoker", 6),
        ("syntax_error.sql", "syntax-error", 6),
    ],
)
def test_cli_names_rule_and_line_and_exits_1(fixture: str, rule: str, line: int) -> None:
    r = run_cli("lint", f"tests/fixtures/lint/{fixture}")
    assert r.returncode == 1, r.stdout + r.stderr
    assert re.search(rf"^tests/fixtures/lint/{re.escape(fixture)}:{line} {rule} \S", r.stdout, re.M), r.stdout


def test_cli_exits_0_on_a_clean_file_and_speaks_json() -> None:
    r = run_cli("lint", "--json", "tests/fixtures/lint/20990101000000_good.sql")
    assert r.returncode == 0, r.stdout + r.stderr
    data = json.loads(r.stdout)
    assert data["ok"] is True and data["squawk"] is True
    assert data["files"] == ["tests/fixtures/lint/20990101000000_good.sql"]


def test_cli_default_is_the_project_migrations() -> None:
    r = run_cli("lint", "--json", "--no-squawk")
    data = json.loads(r.stdout)
    names = {Path(f).name for f in data["files"]}
    assert {m.filename for m in migrate.discover()} <= names


# ---- squawk -------------------------------------------------------------------------------


def _clean_migration(tmp_path: Path, column_type: str) -> Path:
    text = GOOD.read_text().replace("amount numeric(18, 2) not null", f"amount {column_type} not null")
    path = tmp_path / "20990101000000_good.sql"
    path.write_text(text)
    shutil.copy(GOOD.with_name(GOOD.stem + ".down.sql"), tmp_path)
    return path


def test_a_squawk_finding_fails_the_command(tmp_path: Path) -> None:
    path = _clean_migration(tmp_path, "varchar(18)")
    assert lint.lint_files([path], context=OBS) == []  # our rules have nothing against it
    result = lint.lint([path])
    assert [(f.rule, f.line) for f in result.errors] == [("squawk/prefer-text-field", 22)]
    r = run_cli("lint", str(path))
    assert r.returncode == 1
    assert f"{path}:22 squawk/prefer-text-field" in r.stdout


def test_squawk_does_not_object_to_a_down_file_dropping_its_objects() -> None:
    down = GOOD.with_name(GOOD.stem + ".down.sql")
    findings = lint.run_squawk([down])
    assert not [f for f in findings if f.severity == "error"]
    # while the same drops in an up file are refused
    assert {f.rule for f in lint.run_squawk([FIXTURES / "additive_only.sql"])} >= {"squawk/ban-drop-table"}


def test_squawk_toml_matches_what_lint_passes() -> None:
    conf = tomllib.loads((ROOT / ".squawk.toml").read_text())
    assert sorted(conf["excluded_rules"]) == sorted(lint.SQUAWK_EXCLUDED)
    assert conf["pg_version"] == lint.SQUAWK_PG_VERSION


# ---- semantics ---------------------------------------------------------------------------


def _write(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text(f"BEGIN;\n{body}\nCOMMIT;\n")
    return path


def test_altering_what_an_earlier_migration_created_is_additive(tmp_path: Path) -> None:
    ours = _write(tmp_path, "ours.sql", "alter table public.system_metrics alter column unit set default 'ms';")
    theirs = _write(tmp_path, "theirs.sql", "alter table public.customers alter column name set default 'x';")
    assert found(ours) == set()
    assert found(theirs) == {(2, "additive-only")}
    # without the earlier migration in the set, system_metrics is someone else's table
    assert found(ours, context=[]) == {(2, "additive-only")}


def test_an_allow_comment_waives_one_rule_for_one_statement(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "waived.sql",
        "-- platformdb-lint: allow additive-only (the shop app asked us to take it over)\n"
        "drop table public.shop_legacy;\n"
        "drop table public.shop_other;",
    )
    assert found(path) == {(4, "additive-only")}


def test_a_down_file_is_paired_with_its_up_file_on_disk(tmp_path: Path) -> None:
    up = _write(
        tmp_path,
        "pair.sql",
        "select public.platformdb_assert_names_free(array['fx_t']);\n"
        "create table public.fx_t (id int primary key);\n"
        "alter table public.fx_t enable row level security;\n"
        "create policy fx_t_read on public.fx_t for select to service_role using (true);\n"
        "revoke all on table public.fx_t from public, anon, authenticated, service_role;\n"
        "comment on table public.fx_t is 'x';\ncomment on column public.fx_t.id is 'x';",
    )
    down = _write(tmp_path, "pair.down.sql", "drop table public.fx_t;")
    assert found(up) == set()
    assert found(down) == set()  # linted alone, its up file is found next to it
    down.write_text("BEGIN;\nselect 1;\nCOMMIT;\n")
    assert found(down) == {(1, "down-incomplete")}


def test_unknown_files_are_refused() -> None:
    r = run_cli("lint", "no/such/file.sql")
    assert r.returncode == 1
    assert "no/such/file.sql" in r.stderr


# ---- against PostgreSQL -----------------------------------------------------------------


def test_non_immutable_names_are_not_immutable_in_postgres(conn: psycopg.Connection[Any]) -> None:
    rows = conn.execute(
        "select proname, bool_and(provolatile <> 'i') from pg_proc"
        " where pronamespace = 'pg_catalog'::regnamespace and proname = any(%s) group by proname",
        (sorted(lint.NON_IMMUTABLE_FUNCTIONS),),
    ).fetchall()
    verdict = dict(rows)
    assert set(verdict) == set(lint.NON_IMMUTABLE_FUNCTIONS), "names unknown to pg_catalog"
    assert [n for n, ok in verdict.items() if not ok] == []
    for qualified in ("auth.uid", "auth.role", "auth.jwt"):
        row = conn.execute("select provolatile from pg_proc where oid = to_regproc(%s)", (qualified,)).fetchone()
        assert row is not None and row[0] != "i", qualified


def _obs_plus(tmp_path: Path, *files: Path) -> Path:
    d = tmp_path / "migrations"
    d.mkdir()
    for f in [*OBS, *files]:
        shutil.copy(f, d / f.name)
    return d


def _public_objects(url: str) -> list[tuple[str, str]]:
    with psycopg.connect(url) as c:
        return c.execute(
            "select 'rel', relname from pg_class where relnamespace = 'public'::regnamespace"
            " union all select 'proc', proname from pg_proc where pronamespace = 'public'::regnamespace"
            " union all select 'type', typname from pg_type where typnamespace = 'public'::regnamespace"
            " order by 1, 2"
        ).fetchall()


def test_the_good_fixture_applies_and_its_down_reverses_it(new_db_url: str, tmp_path: Path) -> None:
    d = _obs_plus(tmp_path, GOOD, GOOD.with_name(GOOD.stem + ".down.sql"))
    migrate.up(new_db_url, d, to="20260401100000")
    before = _public_objects(new_db_url)
    assert [m.version for m in migrate.up(new_db_url, d)] == ["20990101000000"]
    with psycopg.connect(new_db_url) as c:
        parts = c.execute("select count(*) from pg_inherits where inhparent = 'public.fx_ledger'::regclass")
        assert parts.fetchone() == (5,)  # DEFAULT + this month + 3 ahead
    migrate.down(new_db_url, d)
    assert _public_objects(new_db_url) == before
    with psycopg.connect(new_db_url) as c:
        left = c.execute("select count(*) from public.partition_settings where table_name = 'fx_ledger'")
        assert left.fetchone() == (0,)


@pytest.mark.parametrize(
    ("fixture", "sqlstate"),
    [("index_immutable.sql", "42P17"), ("partition_unique_key.sql", "0A000")],
)
def test_postgres_refuses_what_lint_flags(new_db_url: str, tmp_path: Path, fixture: str, sqlstate: str) -> None:
    migrate.up(new_db_url, _obs_plus(tmp_path))
    with psycopg.connect(new_db_url, autocommit=True) as c:
        with pytest.raises(psycopg.Error) as info:
            c.execute((FIXTURES / fixture).read_text())
        assert info.value.sqlstate == sqlstate
