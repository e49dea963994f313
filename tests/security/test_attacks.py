"""The attack suite: what an attacker tries with PostgREST's roles, replayed and refused.

Each test acts the way PostgREST runs a request: `set local role anon|authenticated`, the JWT
claims in `request.jwt.claims`, and the role's own settings (its statement_timeout) applied
to the transaction. Every case of the security review that found PostGIS in public, extension
definer functions open to anon, no statement timeouts, unbounded flag counting and provider
fields writable by users is here, plus the threat model of docs/security.md: nothing in any
schema the API roles can use may be truncated, written or read beyond what the security matrix
allows, extension objects included.

A database built the old way (PostGIS installed in public before the compat layer created
the schema `extensions`) is rebuilt here too: verify fails on it until migration
20260401180000_security_hardening is applied, and passes after.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from platformdb import db, migrate, security, verify, verify_surface
from tests.conftest import only_migrations

pytestmark = pytest.mark.skipif(
    bool(only_migrations()) and not any("location" in o for o in only_migrations()),
    reason="needs PostGIS (location_cache_optimization) in the template",
)

ROOT = Path(__file__).resolve().parents[2]
DENIED = "42501"
API_ROLES = ("anon", "authenticated")


@contextmanager
def request_as(conn: psycopg.Connection[Any], role: str, user_id: uuid.UUID | None = None) -> Iterator[None]:
    """One PostgREST request: a transaction as `role` with its JWT claims and the role's own
    settings (PostgREST applies a role's statement_timeout to the requests it runs as it)."""
    with conn.transaction():
        settings = conn.execute(
            """select c from pg_db_role_setting s, unnest(s.setconfig) c
                where s.setrole = %s::regrole and s.setdatabase in (0, (select oid from pg_database
                                                                        where datname = current_database()))
                order by s.setdatabase""",
            (role,),
        ).fetchall()
        db.set_role(conn, role, db.claims_for(role, user_id))
        for (setting,) in settings:
            name, value = str(setting).split("=", 1)
            conn.execute("select set_config(%s, %s, true)", (name, value))
        yield


def refused(
    conn: psycopg.Connection[Any], role: str, statement: str, params: Any = None, user_id: uuid.UUID | None = None
) -> str:
    """Run `statement` as `role`; return the SQLSTATE it was refused with ('' when it ran)."""
    try:
        with request_as(conn, role, user_id):
            conn.execute(statement, params)  # type: ignore[arg-type]
    except psycopg.Error as exc:
        return exc.sqlstate or "?"
    return ""


def postgis_schema(conn: psycopg.Connection[Any]) -> str:
    row = conn.execute(
        "select n.nspname from pg_extension e join pg_namespace n on n.oid = e.extnamespace where e.extname = 'postgis'"
    ).fetchone()
    assert row is not None, "PostGIS is not installed"
    return str(row[0])


def exposed_relations(conn: psycopg.Connection[Any]) -> list[tuple[str, str, str, bool]]:
    """(schema, name, relkind, extension member) of every relation in a schema anon or
    authenticated may use."""
    return [
        (str(r[0]), str(r[1]), str(r[2]), bool(r[3]))
        for r in conn.execute(
            """select n.nspname, c.relname, c.relkind,
                      exists (select 1 from pg_depend d where d.classid = 'pg_class'::regclass
                               and d.objid = c.oid and d.deptype = 'e')
                 from pg_class c join pg_namespace n on n.oid = c.relnamespace
                where c.relkind in ('r', 'p', 'v', 'm', 'f')
                  and n.nspname not in ('pg_catalog', 'information_schema')
                  and (has_schema_privilege('anon', n.oid, 'usage')
                       or has_schema_privilege('authenticated', n.oid, 'usage'))
                order by 1, 2"""
        )
    ]


# ---- extensions: nothing to truncate, change or call ------------------------------------------


def test_postgis_lives_in_the_extensions_schema_on_a_fresh_install(conn: psycopg.Connection[Any]) -> None:
    assert postgis_schema(conn) == "extensions"
    assert conn.execute("select to_regclass('public.spatial_ref_sys')").fetchone() == (None,)


@pytest.mark.parametrize("role", API_ROLES)
def test_api_roles_cannot_truncate_or_rewrite_spatial_ref_sys(conn: psycopg.Connection[Any], role: str) -> None:
    srs = f"{postgis_schema(conn)}.spatial_ref_sys"
    before = conn.execute(f"select count(*), md5(string_agg(srtext, '' order by srid)) from {srs}").fetchone()
    uid = uuid.uuid4() if role == "authenticated" else None
    assert refused(conn, role, f"truncate {srs}", user_id=uid) == DENIED
    assert refused(conn, role, f"update {srs} set srtext = 'forged' where srid = 4326", user_id=uid) == DENIED
    assert refused(conn, role, f"delete from {srs} where srid = 4326", user_id=uid) == DENIED
    assert refused(conn, role, f"insert into {srs} (srid) values (999999)", user_id=uid) == DENIED
    after = conn.execute(f"select count(*), md5(string_agg(srtext, '' order by srid)) from {srs}").fetchone()
    assert after == before


@pytest.mark.parametrize("role", API_ROLES)
def test_distances_stay_right_after_the_attempts(conn: psycopg.Connection[Any], role: str) -> None:
    """The case that changed 689.2 m into 367.4 m: nothing an API role does moves a distance."""
    srs = f"{postgis_schema(conn)}.spatial_ref_sys"
    uid = uuid.uuid4()
    conn.execute(
        "select save_location(p_lat => -1.9441, p_lng => 30.0619, p_location_type => 'pickup',"
        " p_name => 'a', p_is_public => true)"
    )
    query = "select distance_meters from find_nearby_locations(-1.95, 30.06, 5000) limit 1"
    with db.as_user(conn, uid):
        before = conn.execute(query).fetchone()
    assert before is not None and 600 < float(before[0]) < 800
    refused(
        conn,
        role,
        f"update {srs} set proj4text = '+proj=longlat +a=1000 +no_defs' where srid = 4326",
        user_id=uid if role == "authenticated" else None,
    )
    refused(conn, role, f"truncate {srs}", user_id=uid if role == "authenticated" else None)
    with db.as_user(conn, uid):
        assert conn.execute(query).fetchone() == before


@pytest.mark.parametrize("role", API_ROLES)
def test_api_roles_cannot_call_postgis_security_definer_functions(conn: psycopg.Connection[Any], role: str) -> None:
    schema = postgis_schema(conn)
    uid = uuid.uuid4() if role == "authenticated" else None
    for call in (
        f"select {schema}.st_estimatedextent('public', 'locations', 'location')",
        f"select {schema}.st_estimatedextent('public', 'locations', 'location', true)",
        f"select {schema}.st_estimatedextent('locations', 'location')",
    ):
        assert refused(conn, role, call, user_id=uid) == DENIED, call


@pytest.mark.parametrize("role", API_ROLES)
def test_no_security_definer_door_for_the_api_roles_outside_the_matrix(
    conn: psycopg.Connection[Any], role: str
) -> None:
    allowed = verify_surface.definer_allowed()
    rows = conn.execute(
        """select p.oid::regprocedure::text, p.proname from pg_proc p join pg_namespace n on n.oid = p.pronamespace
            where p.prosecdef and n.nspname not in ('pg_catalog', 'information_schema')
              and has_schema_privilege(%s, n.oid, 'usage') and has_function_privilege(%s, p.oid, 'execute')""",
        (role, role),
    ).fetchall()
    if role == "authenticated":
        assert rows, "expected the documented functions (create_transaction, …)"
    assert sorted(str(r[0]) for r in rows if r[1] not in allowed) == []


# ---- the whole surface: no truncate, no write, no read beyond the matrix ----------------------


@pytest.mark.parametrize("role", API_ROLES)
def test_api_roles_can_truncate_nothing_anywhere(conn: psycopg.Connection[Any], role: str) -> None:
    rels = [r for r in exposed_relations(conn) if r[2] in ("r", "p")]
    assert any(r[3] for r in rels), "expected extension tables (spatial_ref_sys) among them"
    uid = uuid.uuid4() if role == "authenticated" else None
    ran = [
        f"{s}.{n}"
        for s, n, _, _ in rels
        if refused(conn, role, sql.SQL("truncate {}").format(sql.Identifier(s, n)).as_string(conn), user_id=uid)
        != DENIED
    ]
    assert ran == []


def test_anon_can_write_nothing_anywhere(conn: psycopg.Connection[Any]) -> None:
    """No insert, update or delete by anon on any relation it can reach: refused, or (for a
    table whose RLS hides every row) nothing changed. The matrix gives anon no write."""
    matrix = security.load()
    assert not [t for t in matrix.values() if set(t.anon) & set("iud")]
    rels = [r for r in exposed_relations(conn) if r[2] in ("r", "p", "v", "f")]
    changed = []
    for schema, name, kind, _ in rels:
        target = sql.Identifier(schema, name)
        for stmt in (
            sql.SQL("delete from {}").format(target),
            sql.SQL("update {} set {} = {}").format(
                target,
                sql.Identifier(_first_column(conn, schema, name)),
                sql.Identifier(_first_column(conn, schema, name)),
            ),
            sql.SQL("insert into {} default values").format(target),
        ):
            text = stmt.as_string(conn)
            try:
                with request_as(conn, "anon"):
                    cur = conn.execute(text)  # type: ignore[arg-type]
                    if cur.rowcount > 0:
                        changed.append(text)
                    raise _Rollback
            except _Rollback:
                pass
            except psycopg.Error as exc:
                # a view that is not updatable refuses before privileges are looked at
                if exc.sqlstate != DENIED and not (kind == "v" and exc.sqlstate == "55000"):
                    changed.append(f"{text}: {exc.sqlstate}")
    assert changed == []


class _Rollback(Exception):
    pass


def _first_column(conn: psycopg.Connection[Any], schema: str, name: str) -> str:
    row = conn.execute(
        "select attname from pg_attribute where attrelid = %s::regclass and attnum > 0 and not attisdropped"
        " order by attnum limit 1",
        (sql.Identifier(schema, name).as_string(conn),),
    ).fetchone()
    assert row is not None
    return str(row[0])


def test_anon_reads_nothing_but_public_reference_data(conn: psycopg.Connection[Any]) -> None:
    """anon sees no row of any platformdb table (every one is seeded by the matrix test's
    seeds here) and may read only extension reference data (spatial_ref_sys: the public EPSG
    list PostGIS ships)."""
    matrix = security.load()
    with conn.transaction(force_rollback=True):
        for t in matrix.values():
            conn.execute(t.seed, {"owner": uuid.uuid4()})
        readable = []
        for schema, name, _, ext in exposed_relations(conn):
            if ext:
                continue
            try:
                with conn.transaction():
                    db.set_role(conn, "anon", db.claims_for("anon"))
                    row = conn.execute(
                        sql.SQL("select count(*) from (select from {} limit 1) x").format(sql.Identifier(schema, name))
                    ).fetchone()
                    if row and row[0]:
                        readable.append(f"{schema}.{name}")
                    raise _Rollback
            except _Rollback:
                pass
            except psycopg.Error as exc:
                assert exc.sqlstate == DENIED, f"{schema}.{name}: {exc}"
    allowed = {f"public.{n}" for n, t in matrix.items() if "s" in t.anon}
    assert sorted(set(readable) - allowed) == []


# ---- role timeouts ------------------------------------------------------------------------------


def test_api_roles_have_supabases_statement_timeouts(conn: psycopg.Connection[Any]) -> None:
    for role, timeout in verify_surface.ROLE_TIMEOUTS.items():
        with request_as(conn, role, uuid.uuid4() if role == "authenticated" else None):
            got = conn.execute("select current_setting('statement_timeout')").fetchone()
        assert got == (timeout,), role


def test_a_huge_hexagon_grid_is_cancelled_by_anons_timeout(conn: psycopg.Connection[Any]) -> None:
    schema = postgis_schema(conn)
    call = f"select count(*) from {schema}.st_hexagongrid(0.0001, {schema}.st_makeenvelope(0, 0, 10, 10, 4326))"
    assert refused(conn, "anon", call) == "57014"  # query_canceled by statement_timeout


# ---- flag counting: invented keys are bounded -----------------------------------------------------


def _evaluation_rows(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("select count(*) from feature_flag_evaluations").fetchone()
    assert row is not None
    return int(row[0])


def test_a_user_inventing_10000_keys_adds_one_row(conn: psycopg.Connection[Any]) -> None:
    """10,000 evaluations of invented keys by one signed-in session (the case that wrote 2,561
    rows): they are counted, all under the one sentinel key, whatever is flushed meanwhile."""
    uid = uuid.uuid4()
    with request_as(conn, "authenticated", uid):
        n = conn.execute(
            "select count(*) from generate_series(1, 10000) g where not is_feature_enabled('invented-' || g::text)"
        ).fetchone()
    assert n == (10000,)
    conn.execute("select flush_feature_flag_evaluations()")
    rows = conn.execute(
        "select flag_key, reason, sum(evaluations) from feature_flag_evaluations group by 1, 2"
    ).fetchall()
    assert rows == [("(other)", "unknown", 10000)]


def test_a_service_inventing_10000_keys_is_capped_across_flushes(conn: psycopg.Connection[Any]) -> None:
    """A service's unknown keys are counted one by one up to 256 per backend and hour, and the
    cap survives the flushes that happen every 1000 evaluations."""
    with request_as(conn, "service_role"):
        conn.execute("select count(*) from generate_series(1, 10000) g where is_feature_enabled('svc-' || g::text)")
    conn.execute("select flush_feature_flag_evaluations()")
    named = conn.execute(
        "select count(distinct flag_key) from feature_flag_evaluations where flag_key like 'svc-%%'"
    ).fetchone()
    other = conn.execute("select sum(evaluations) from feature_flag_evaluations where flag_key = '(other)'").fetchone()
    assert named is not None and other is not None
    assert 0 < named[0] <= 256
    assert named[0] + other[0] == 10000
    assert _evaluation_rows(conn) <= 257


# ---- payments: provider fields and wallets ------------------------------------------------------


def test_a_users_cancellation_cannot_set_provider_fields(conn: psycopg.Connection[Any]) -> None:
    uid = uuid.uuid4()
    tx = conn.execute(
        "select create_transaction(p_user_id => %s, p_type => 'payment', p_amount => 1000)", (uid,)
    ).fetchone()
    assert tx is not None
    for field in ("p_provider_reference", "p_error_code", "p_error_message"):
        assert (
            refused(
                conn,
                "authenticated",
                f"select update_transaction_status(%s, 'cancelled', {field} => 'forged')",
                (tx[0],),
                user_id=uid,
            )
            == DENIED
        ), field
    row = conn.execute(
        "select status, provider_reference, error_code, error_message from transactions where id = %s", (tx[0],)
    ).fetchone()
    assert row == ("pending", None, None, None)
    with request_as(conn, "authenticated", uid):
        conn.execute("select update_transaction_status(%s, 'cancelled')", (tx[0],))
    row = conn.execute(
        "select status, provider_reference, error_code, error_message from transactions where id = %s", (tx[0],)
    ).fetchone()
    assert row == ("cancelled", None, None, None)


def test_a_user_cannot_name_a_wallet(conn: psycopg.Connection[Any]) -> None:
    uid = uuid.uuid4()
    wallet = uuid.uuid4()
    assert (
        refused(
            conn,
            "authenticated",
            "select create_transaction(p_user_id => %s, p_type => 'payment', p_amount => 10, p_wallet_id => %s)",
            (uid, wallet),
            user_id=uid,
        )
        == DENIED
    )
    assert conn.execute("select count(*) from transactions where user_id = %s", (uid,)).fetchone() == (0,)
    with request_as(conn, "service_role"):
        tx = conn.execute(
            "select create_transaction(p_user_id => %s, p_type => 'payment', p_amount => 10, p_wallet_id => %s)",
            (uid, wallet),
        ).fetchone()
    assert tx is not None
    assert conn.execute("select wallet_id from transactions where id = %s", (tx[0],)).fetchone() == (wallet,)


# ---- verify: each case makes it fail --------------------------------------------------------------


def _surface(conn: psycopg.Connection[Any]) -> verify.Report:
    """verify's exposed-surface checks on this connection (inside the test's transaction)."""
    exp = verify.expected_objects(migrate.discover())
    report = verify.Report()
    verify_surface.check(conn, set(exp.relations) | exp.tables | exp.views, exp.function_names, report.add)
    return report


def _failed(report: verify.Report) -> set[tuple[str, str]]:
    return {(c.check, c.item) for c in report.failures}


@pytest.mark.parametrize(
    ("attack", "check_id", "item"),
    [
        ("grant truncate on {s}.spatial_ref_sys to anon", "extension_object_writable", "{s}.spatial_ref_sys"),
        ("grant update on {s}.spatial_ref_sys to authenticated", "extension_object_writable", "{s}.spatial_ref_sys"),
        ("grant insert on {s}.geometry_columns to public", "extension_object_writable", "{s}.geometry_columns"),
        (
            "grant execute on function {s}.st_estimatedextent(text, text, text) to anon",
            "definer_executable",
            "{s}.st_estimatedextent(text,text,text)",
        ),
        (
            "grant execute on function {s}.st_estimatedextent(text, text) to public",
            "definer_executable",
            "{s}.st_estimatedextent(text,text)",
        ),
        ("alter role anon reset statement_timeout", "role_statement_timeout", "anon"),
        ("alter role authenticated reset statement_timeout", "role_statement_timeout", "authenticated"),
        ("grant insert on public.locations to anon", "anon_write", "public.locations"),
        (
            "create function public.leak() returns int language sql security definer set search_path = ''"
            " as 'select 1'; grant execute on function public.leak() to anon",
            "definer_executable",
            "leak()",
        ),
        ("create function public.loose() returns int language sql as 'select 1'", "function_search_path", "loose()"),
    ],
)
def test_each_case_makes_verify_fail(conn: psycopg.Connection[Any], attack: str, check_id: str, item: str) -> None:
    schema = postgis_schema(conn)
    with conn.transaction(force_rollback=True):
        assert _failed(_surface(conn)) == set()
        for stmt in attack.format(s=schema).split("; "):
            conn.execute(stmt)  # type: ignore[arg-type]
        report = _surface(conn)
        if check_id == "function_search_path":  # someone else's function: a warning
            assert (check_id, item.format(s=schema)) in {(c.check, c.item) for c in report.warnings}
        else:
            assert (check_id, item.format(s=schema)) in _failed(report)


def test_a_policy_calling_auth_uid_per_row_is_reported(conn: psycopg.Connection[Any]) -> None:
    with conn.transaction(force_rollback=True):
        conn.execute("create table public.per_row (user_id uuid)")
        conn.execute("alter table public.per_row enable row level security")
        conn.execute("create policy per_row_own on public.per_row using (user_id = auth.uid())")
        report = _surface(conn)
    assert ("policy_auth_per_row", "public.per_row.per_row_own") in {(c.check, c.item) for c in report.warnings}


def test_postgis_in_public_fails_verify_until_the_hardening_migration(new_db_url: str) -> None:
    """The old behaviour: no schema `extensions` when PostGIS was installed, so it went to
    public with the compat layer's default grants. verify fails on it (naming the checks),
    migrate up applies 20260401180000_security_hardening, and verify passes."""
    with psycopg.connect(new_db_url, autocommit=True) as c:
        migrate.ensure_compat(c)
        c.execute("drop schema extensions")
    migrate.up(new_db_url, to="20260401170000")
    with psycopg.connect(new_db_url, autocommit=True) as c:
        assert postgis_schema(c) == "public"

    before = _verify_json(new_db_url)
    assert before["ok"] is False
    failing = {(c["id"], c["item"]) for c in before["checks"] if not c["ok"] and c["level"] == "error"}
    assert ("extension_object_writable", "public.spatial_ref_sys") in failing
    assert ("definer_executable", "st_estimatedextent(text,text,text)") in failing
    assert all(c["fix"] for c in before["checks"] if not c["ok"])

    migrate.up(new_db_url)
    after = _verify_json(new_db_url)
    assert after["ok"] is True, [c for c in after["checks"] if not c["ok"] and c["level"] == "error"]
    warned = {(c["id"], c["item"]) for c in after["checks"] if not c["ok"]}
    assert ("extension_in_exposed_schema", "postgis") in warned  # it cannot move: a warning
    with psycopg.connect(new_db_url, autocommit=True) as c:
        assert refused(c, "anon", "truncate public.spatial_ref_sys") == DENIED
        assert refused(c, "anon", "select public.st_estimatedextent('public', 'locations', 'location')") == DENIED


def _verify_json(url: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "platformdb.cli", "verify", "--json", "--database-url", url],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        env={**os.environ},
    )
    assert out.returncode in (0, 1), out.stderr
    data: dict[str, Any] = json.loads(out.stdout)
    assert (out.returncode == 0) == data["ok"]
    return data
