-- Supabase compatibility layer for vanilla PostgreSQL (SPEC §1.4).
-- Installed by `platformdb migrate` before the first migration, and only what is missing:
-- on a real Supabase project every object below already exists and nothing is changed.
-- It reproduces what a Supabase deployment gives the migrations: the three API roles,
-- auth.uid()/auth.role()/auth.jwt() reading the request's JWT claims, auth.users, and
-- Supabase's default privileges (ALL on new tables, functions and sequences in public to
-- anon, authenticated and service_role), so that security tests see exactly what
-- production sees: RLS and explicit REVOKEs are what protect, not missing grants. Like
-- Supabase it keeps extensions out of the exposed schema (they go to `extensions`) and gives
-- the API roles statement timeouts (anon 3 s, authenticated 8 s).

do $compat$
begin
    if not exists (select 1 from pg_roles where rolname = 'anon') then
        create role anon nologin noinherit;
    end if;
    if not exists (select 1 from pg_roles where rolname = 'authenticated') then
        create role authenticated nologin noinherit;
    end if;
    if not exists (select 1 from pg_roles where rolname = 'service_role') then
        create role service_role nologin noinherit bypassrls;
    end if;
end
$compat$;

create schema if not exists auth;
grant usage on schema auth to anon, authenticated, service_role;
grant usage on schema public to anon, authenticated, service_role;

-- Supabase's schema for extensions: not exposed by the API, USAGE for the API roles. The
-- migrations create PostGIS here when it exists (20260401150000_location_cache_optimization),
-- so spatial_ref_sys and PostGIS's functions never get public's default privileges below.
create schema if not exists extensions;
grant usage on schema extensions to anon, authenticated, service_role;

create table if not exists auth.users (
    id uuid primary key,
    phone text,
    email text,
    raw_user_meta_data jsonb not null default '{}',
    created_at timestamptz not null default now()
);

do $compat$
begin
    if to_regprocedure('auth.uid()') is null then
        create function auth.uid() returns uuid
        language sql stable
        as $f$
            select coalesce(
                nullif(current_setting('request.jwt.claim.sub', true), ''),
                nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub'
            )::uuid
        $f$;
    end if;
    if to_regprocedure('auth.role()') is null then
        create function auth.role() returns text
        language sql stable
        as $f$
            select coalesce(
                nullif(current_setting('request.jwt.claim.role', true), ''),
                nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role'
            )::text
        $f$;
    end if;
    if to_regprocedure('auth.jwt()') is null then
        create function auth.jwt() returns jsonb
        language sql stable
        as $f$
            select coalesce(
                nullif(current_setting('request.jwt.claim', true), ''),
                nullif(current_setting('request.jwt.claims', true), '')
            )::jsonb
        $f$;
    end if;
end
$compat$;

grant execute on function auth.uid(), auth.role(), auth.jwt() to anon, authenticated, service_role;

-- Supabase's default privileges for objects the migration role creates in public.
alter default privileges in schema public grant all on tables to anon, authenticated, service_role;
alter default privileges in schema public grant all on functions to anon, authenticated, service_role;
alter default privileges in schema public grant all on sequences to anon, authenticated, service_role;

-- role timeouts: Supabase's statement_timeout for the API roles (PostgREST applies a role's
-- settings to each request it runs as that role), set only where the role has none in this
-- cluster. `platformdb migrate up` runs this section on every run (not only when the layer
-- is missing), so a database migrated before it gets the timeouts too; on Supabase the
-- roles already have theirs and nothing is changed.
do $timeouts$
declare
    v_role text;
    v_timeout text;
begin
    foreach v_role in array array['anon', 'authenticated'] loop
        v_timeout := case v_role when 'anon' then '3s' else '8s' end;
        if not exists (
            select 1 from pg_catalog.pg_db_role_setting s
             where s.setrole = (select r.oid from pg_catalog.pg_roles r where r.rolname = v_role)
               and s.setdatabase = 0
               and exists (select 1 from pg_catalog.unnest(s.setconfig) c
                            where c like 'statement_timeout=%')) then
            execute pg_catalog.format('alter role %I set statement_timeout = %L', v_role, v_timeout);
        end if;
    end loop;
end
$timeouts$;
