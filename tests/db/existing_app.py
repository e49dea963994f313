"""A fixture "existing application": someone else's shop living in the same Supabase database.

It has its own tables (with identity columns, a foreign key, an enum, a CHECK), data, a
sequence, functions, a trigger, RLS policies, a security-invoker view, grants, comments and
a schema of its own. Every name starts with `shop`, which lets `dump_objects` pick exactly
its entries out of a schema-only pg_dump.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import psycopg

from platformdb import devdb, migrate

APP_SQL = """
create type public.shop_order_status as enum ('open', 'paid', 'shipped');

create table public.shop_customers (
    id bigint generated always as identity primary key,
    user_id uuid not null,
    name text not null,
    phone text check (phone ~ '^\\+[1-9][0-9]{7,14}$'),
    created_at timestamptz not null default now()
);
create table public.shop_orders (
    id bigint generated always as identity primary key,
    customer_id bigint not null references public.shop_customers (id),
    status public.shop_order_status not null default 'open',
    total numeric(12, 2) not null check (total >= 0),
    touched_at timestamptz
);
create index shop_orders_customer_idx on public.shop_orders (customer_id);
create sequence public.shop_invoice_seq start 1000;

create function public.shop_order_total(p_customer bigint) returns numeric
language sql stable
as $$ select coalesce(sum(total), 0) from public.shop_orders where customer_id = p_customer $$;

create function public.shop_touch() returns trigger
language plpgsql
as $$ begin new.touched_at := now(); return new; end $$;

create trigger shop_orders_touch before insert or update on public.shop_orders
    for each row execute function public.shop_touch();

alter table public.shop_customers enable row level security;
alter table public.shop_orders enable row level security;
create policy shop_customers_own on public.shop_customers
    for select to authenticated using (user_id = auth.uid());
create policy shop_orders_own on public.shop_orders
    for select to authenticated
    using (exists (select 1 from public.shop_customers c
                    where c.id = customer_id and c.user_id = auth.uid()));

create view public.shop_order_summary with (security_invoker = true) as
select c.id as customer_id, c.name, count(o.id) as orders, coalesce(sum(o.total), 0) as total
  from public.shop_customers c left join public.shop_orders o on o.customer_id = c.id
 group by c.id, c.name;

comment on table public.shop_customers is 'The shop''s customers.';
comment on column public.shop_orders.total is 'Order total in RWF.';

create schema shop;
create table shop.settings (key text primary key, value jsonb not null);
"""

DATA_SQL = """
insert into public.shop_customers (user_id, name, phone)
select ('00000000-0000-4000-8000-' || lpad(i::text, 12, '0'))::uuid, 'customer ' || i,
       '+25078' || lpad(i::text, 7, '0')
  from generate_series(1, 40) i;
insert into public.shop_orders (customer_id, status, total)
select 1 + (i % 40), (array['open', 'paid', 'shipped'])[1 + i % 3]::public.shop_order_status, i * 1500
  from generate_series(1, 120) i;
select nextval('public.shop_invoice_seq') from generate_series(1, 7);
insert into shop.settings values ('currency', '"RWF"'), ('open_hours', '{"from": 8, "to": 20}');
"""

TABLES = ("public.shop_customers", "public.shop_orders", "shop.settings")
NAME_RE = re.compile(r"\bshop(_\w+)?\b")


def create(conn: psycopg.Connection[Any]) -> None:
    """Install the app (and the Supabase roles/auth it relies on, as on any Supabase project)."""
    migrate.ensure_compat(conn)
    with conn.transaction():
        conn.execute(APP_SQL)
        conn.execute(DATA_SQL)


def data_checksums(url: str) -> dict[str, Any]:
    """md5 of every row of every app table (in a stable order), and the sequence position."""
    out: dict[str, Any] = {}
    with psycopg.connect(url) as conn:
        for table in TABLES:
            schema, name = table.split(".")
            row = conn.execute(
                psycopg.sql.SQL(
                    "select count(*), md5(coalesce(string_agg(t::text, '|' order by t::text), '')) from {} t"
                ).format(psycopg.sql.Identifier(schema, name))
            ).fetchone()
            out[table] = row
        out["public.shop_invoice_seq"] = conn.execute(
            "select last_value, is_called from public.shop_invoice_seq"
        ).fetchone()
    return out


def pg_tool(cluster: devdb.Cluster, name: str) -> str:
    return str(cluster.bindir / name)


def dump_objects(cluster: devdb.Cluster, url: str, workdir: Path) -> str:
    """The app's definitions as pg_dump --schema-only prints them (its TOC entries only)."""
    workdir.mkdir(parents=True, exist_ok=True)
    archive = workdir / "schema.dump"
    subprocess.run([pg_tool(cluster, "pg_dump"), "-Fc", "-s", "-f", str(archive), url], check=True)
    toc = subprocess.run(
        [pg_tool(cluster, "pg_restore"), "-l", str(archive)], check=True, capture_output=True, text=True
    ).stdout
    entries = [ln for ln in toc.splitlines() if ln and not ln.startswith(";") and NAME_RE.search(ln)]
    assert len(entries) >= 20, f"the app's dump looks too small: {entries}"
    listing = workdir / "app.list"
    listing.write_text("\n".join(entries) + "\n")
    out = subprocess.run(
        [pg_tool(cluster, "pg_restore"), "-L", str(listing), "-f", "-", str(archive)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    # drop what differs between two runs of pg_dump on the same objects: the tool's version
    # banner and the random key of psql's \restrict guard
    noise = ("-- Dumped", "\\restrict", "\\unrestrict")
    return "\n".join(ln for ln in out.splitlines() if not ln.startswith(noise))


def works(url: str, user_id: str = "00000000-0000-4000-8000-000000000007") -> tuple[Any, ...]:
    """The app still does its job: its function, view, trigger and RLS policy answer."""
    from platformdb import db

    with psycopg.connect(url, autocommit=True) as conn:
        total = conn.execute("select public.shop_order_total(7)").fetchone()
        with db.as_user(conn, user_id):
            seen = conn.execute("select count(*) from public.shop_customers").fetchone()
            summary = conn.execute("select orders, total from public.shop_order_summary").fetchall()
        with conn.transaction(force_rollback=True):
            touched = conn.execute(
                "insert into public.shop_orders (customer_id, total) values (1, 10) returning touched_at is not null"
            ).fetchone()
    return total, seen, summary, touched
