-- platformdb 20260401230000: citus ready (docs/scaling.md)
-- The same answers on one PostgreSQL and on a Citus cluster (`platformdb citus distribute`):
-- functions whose statements Citus refuses or answers differently are rewritten without
-- changing what they do on one node.
-- - register_service, set_cache, event_store_bump_version, link_whatsapp_session_user,
--   register_partitioned_table: the time of the upsert is a variable (a parameter for
--   Citus), not now() inside ON CONFLICT DO UPDATE SET (Citus wants IMMUTABLE there);
-- - cleanup_expired_cache: clock_timestamp() read once into a variable (no volatile call in
--   the WHERE of a DELETE on a distributed table);
-- - get_transaction: two key lookups (directory by id, then the user's row by user_id) in
--   PL/pgSQL instead of a join of two co-location groups in a parameterised SQL function;
-- - find_nearby_locations (service path): on Citus the bounding box is a polygon around the
--   search circle: a geography value shipped to a worker as a constant loses its cached box
--   (the box is not part of the value's text form), so the expanded point `_st_expand(point,
--   r)` arrived as the bare point and `location && box` matched nothing there. On one
--   PostgreSQL the box is the same `_st_expand` as before (same plan, same speed).
-- - propagate_request_claims(): for PostgREST's db-pre-request: re-issues the request's JWT
--   claims as SET LOCAL, which Citus forwards to the workers (citus.propagate_set_commands =
--   'local'), where the row-level security policies of the shards read them.
-- Sections: guard → functions → grants → comments.
BEGIN;

-- ---------------------------------------------------------------------------------------
-- guard: stop before touching anything when one of our names belongs to someone else
-- ---------------------------------------------------------------------------------------
select public.platformdb_assert_names_free(array['propagate_request_claims']);

-- ---------------------------------------------------------------------------------------
-- functions
-- ---------------------------------------------------------------------------------------
create or replace function public.register_service(
    p_service_name text,
    p_service_type text,
    p_version text,
    p_endpoint text,
    p_health_check_url text default null,
    p_capabilities jsonb default '[]',
    p_dependencies jsonb default '[]'
)
returns uuid
language plpgsql
set search_path = ''
as $$
declare
    v_id uuid;
    -- a variable, not now() in the upsert: Citus ships a parameter, refuses STABLE calls
    -- in ON CONFLICT DO UPDATE SET of a distributed or reference table
    v_now timestamptz := pg_catalog.now();
begin
    if p_service_name is null or p_service_name = '' then
        raise exception 'p_service_name must not be empty' using errcode = '22004';
    end if;
    if p_service_name !~ '^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$' then
        raise exception 'p_service_name must be 1-100 letters, digits, ".", "_", ":" or "-", got %',
            pg_catalog.left(p_service_name, 120)
            using errcode = '22023', hint = 'e.g. payments-api';
    end if;
    if p_service_type is null or p_service_type not in ('microservice', 'edge_function', 'api', 'worker') then
        raise exception 'p_service_type: unknown service type %', coalesce(p_service_type, 'null')
            using errcode = '22023', hint = 'one of microservice, edge_function, api, worker';
    end if;
    if p_version is null or p_version = '' then
        raise exception 'p_version must not be empty' using errcode = '22004';
    end if;
    if p_version !~ '^[^[:space:]]{1,64}$' then
        raise exception 'p_version must be at most 64 characters without spaces'
            using errcode = '22023';
    end if;
    if p_endpoint is null or p_endpoint = '' then
        raise exception 'p_endpoint must not be empty' using errcode = '22004';
    end if;
    if pg_catalog.char_length(p_endpoint) > 2048
       or p_endpoint !~ '^[A-Za-z][A-Za-z0-9+.-]*://[^[:space:]]+$' then
        raise exception 'p_endpoint must be a URL with a scheme (at most 2048 characters)'
            using errcode = '22023', hint = 'e.g. https://payments.internal:8443 or worker://host-1';
    end if;
    if p_health_check_url is not null
       and (pg_catalog.char_length(p_health_check_url) > 2048
            or p_health_check_url !~ '^https?://[^[:space:]]+$') then
        raise exception 'p_health_check_url must be an http(s) URL' using errcode = '22023';
    end if;
    if p_capabilities is not null and (pg_catalog.jsonb_typeof(p_capabilities) <> 'array'
       or exists (select 1 from pg_catalog.jsonb_array_elements(p_capabilities) e
                   where pg_catalog.jsonb_typeof(e) <> 'string')) then
        raise exception 'p_capabilities must be a JSON array of strings' using errcode = '22023';
    end if;
    if pg_catalog.pg_column_size(p_capabilities) > 16384 then
        raise exception 'p_capabilities must be at most 16 KiB' using errcode = '22023';
    end if;
    if p_dependencies is not null and (pg_catalog.jsonb_typeof(p_dependencies) <> 'array'
       or exists (select 1 from pg_catalog.jsonb_array_elements(p_dependencies) e
                   where pg_catalog.jsonb_typeof(e) <> 'string'
                      or e #>> '{}' !~ '^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$')) then
        raise exception 'p_dependencies must be a JSON array of service names' using errcode = '22023';
    end if;
    if pg_catalog.pg_column_size(p_dependencies) > 16384 then
        raise exception 'p_dependencies must be at most 16 KiB' using errcode = '22023';
    end if;

    insert into public.service_registry as s
        (service_name, service_type, version, endpoint, health_check_url, capabilities,
         dependencies, status, last_heartbeat_at, heartbeat_count)
    values (p_service_name, p_service_type, p_version, p_endpoint, p_health_check_url,
            coalesce(p_capabilities, '[]'), coalesce(p_dependencies, '[]'), 'healthy', v_now, 1)
    on conflict (service_name) do update
       set service_type = excluded.service_type,
           version = excluded.version,
           endpoint = excluded.endpoint,
           health_check_url = excluded.health_check_url,
           capabilities = excluded.capabilities,
           dependencies = excluded.dependencies,
           status = 'healthy',
           updated_at = v_now,
           last_heartbeat_at = v_now,
           heartbeat_count = s.heartbeat_count + 1
    returning s.id into v_id;
    return v_id;
end
$$;

create or replace function public.get_transaction(p_transaction_id uuid)
returns setof public.transactions
language plpgsql
stable
set search_path = ''
as $$
declare
    v_user_id uuid;
    v_created_at timestamptz;
begin
    -- two key lookups instead of a join: the directory (by id) and the user's row (by user_id,
    -- id, created_at) each route to one shard on Citus; on one node both are index lookups
    select d.user_id, d.created_at into v_user_id, v_created_at
      from public.transaction_directory d
     where d.id = p_transaction_id;
    if not found then
        return;
    end if;
    return query
    select t.*
      from public.transactions t
     where t.user_id = v_user_id and t.id = p_transaction_id and t.created_at = v_created_at;
end
$$;

create or replace function public.set_cache(
    p_key text,
    p_value jsonb,
    p_ttl_seconds integer default 3600,
    p_cache_type text default null,
    p_tags text[] default '{}'
)
returns timestamptz
language plpgsql
set search_path = ''
as $$
declare
    -- a variable, not now() in the upsert (Citus: no STABLE call in DO UPDATE SET)
    v_now timestamptz := pg_catalog.now();
    v_expires timestamptz;
    v_size integer;
    v_tag text;
begin
    if p_key is null or p_key = '' then
        raise exception 'p_key must not be empty' using errcode = '22004';
    end if;
    if pg_catalog.octet_length(p_key) > 512 then
        raise exception 'p_key is too long: % bytes (at most 512)', pg_catalog.octet_length(p_key)
            using errcode = '22023';
    end if;
    if p_value is null then
        raise exception 'p_value must not be null'
            using errcode = '22004', hint = 'to cache "nothing", store the JSON value null';
    end if;
    v_size := pg_catalog.pg_column_size(p_value);
    if v_size > 1048576 then
        raise exception 'p_value is too large: % bytes (at most 1048576)', v_size
            using errcode = '22023';
    end if;
    if p_ttl_seconds is null or p_ttl_seconds <= 0 then
        raise exception 'p_ttl_seconds must be positive, got %', coalesce(p_ttl_seconds::text, 'null')
            using errcode = '22023';
    end if;
    if p_ttl_seconds > 2592000 then
        raise exception 'p_ttl_seconds must be at most 2592000 (30 days), got %', p_ttl_seconds
            using errcode = '22023';
    end if;
    if p_cache_type is not null and p_cache_type !~ '^[a-z][a-z0-9_]{0,47}$' then
        raise exception 'p_cache_type must be a lower-case name (letters, digits, _; at most 48), got %',
            p_cache_type using errcode = '22023';
    end if;
    if coalesce(pg_catalog.cardinality(p_tags), 0) > 32 then
        raise exception 'p_tags: at most 32 tags, got %', pg_catalog.cardinality(p_tags)
            using errcode = '22023';
    end if;
    foreach v_tag in array coalesce(p_tags, '{}') loop
        if v_tag is null or v_tag = '' or pg_catalog.char_length(v_tag) > 128 then
            raise exception 'p_tags: every tag must be 1 to 128 characters'
                using errcode = '22023';
        end if;
    end loop;

    v_expires := pg_catalog.clock_timestamp() + pg_catalog.make_interval(secs => p_ttl_seconds);
    insert into public.cache_entries as e (key, value, cache_type, tags, expires_at)
    values (p_key, p_value, coalesce(p_cache_type, 'default'), coalesce(p_tags, '{}'), v_expires)
    on conflict (key) do update
       set value = excluded.value, cache_type = excluded.cache_type, tags = excluded.tags,
           expires_at = excluded.expires_at, created_at = v_now,
           updated_at = v_now;
    return v_expires;
end
$$;

create or replace function public.cleanup_expired_cache()
returns integer
language plpgsql
set search_path = ''
as $$
declare
    -- evaluated once, then a parameter (Citus refuses volatile calls in a modifying WHERE)
    v_now timestamptz := pg_catalog.clock_timestamp();
    v_count integer;
begin
    delete from public.cache_entries e where e.expires_at <= v_now;
    get diagnostics v_count = row_count;
    delete from public.cache_counters c where c.bucket < pg_catalog.now() - interval '30 days';
    return v_count;
end
$$;

create or replace function public.find_nearby_locations(
    p_lat double precision,
    p_lng double precision,
    p_radius_meters double precision default 5000,
    p_location_type text default null,
    p_limit integer default 20
)
returns table (
    id uuid,
    user_id uuid,
    location_type text,
    name text,
    address text,
    latitude double precision,
    longitude double precision,
    is_public boolean,
    distance_meters double precision
)
language plpgsql
stable
set search_path = pg_catalog, public, extensions, pg_temp
set jit = off
as $$
#variable_conflict use_column
declare
    v_point geography;
    v_box geography;
    v_uid uuid;
begin
    if p_lat is null then
        raise exception 'p_lat must not be null' using errcode = '22004';
    end if;
    if p_lng is null then
        raise exception 'p_lng must not be null' using errcode = '22004';
    end if;
    if not (p_lat between -90 and 90) then
        raise exception 'p_lat must be between -90 and 90, got %', p_lat
            using errcode = '22023', hint = 'latitude in degrees (WGS 84); Kigali is about -1.95';
    end if;
    if not (p_lng between -180 and 180) then
        raise exception 'p_lng must be between -180 and 180, got %', p_lng
            using errcode = '22023', hint = 'longitude in degrees (WGS 84); Kigali is about 30.06';
    end if;
    if p_radius_meters is null then
        raise exception 'p_radius_meters must not be null' using errcode = '22004';
    end if;
    if not (p_radius_meters > 0 and p_radius_meters <= 100000) then
        raise exception 'p_radius_meters must be positive and at most 100000, got %', p_radius_meters
            using errcode = '22023';
    end if;
    if p_location_type is not null and p_location_type not in
        ('current', 'home', 'work', 'favorite', 'pickup', 'dropoff') then
        raise exception 'p_location_type: unknown location type %', p_location_type
            using errcode = '22023',
                  hint = 'one of current, home, work, favorite, pickup, dropoff (or null for all)';
    end if;
    if p_limit is null or p_limit < 1 or p_limit > 1000 then
        raise exception 'p_limit must be between 1 and 1000, got %', coalesce(p_limit::text, 'null')
            using errcode = '22023';
    end if;

    v_point := st_setsrid(st_makepoint(p_lng, p_lat), 4326)::geography;
    -- the same bounding box ST_DWithin(geography) uses as its index condition
    v_box := _st_expand(v_point, p_radius_meters);
    if exists (select 1 from pg_catalog.pg_extension where extname = 'citus') then
        -- on Citus the box reaches the workers as a constant, and a geography constant's
        -- text form carries no cached box (the expanded point arrives as the bare point and
        -- `location && box` matches nothing): a polygon around the circle carries its box in
        -- its coordinates (1% over the radius covers the 32-gon's chords and the projection
        -- of the buffer); distance_meters <= p_radius_meters below stays the exact filter
        v_box := st_buffer(v_point, p_radius_meters * 1.01);
    end if;

    if current_user::text = 'authenticated' then
        -- a signed-in user: their own places (a handful, by user_id), then the public points
        -- (their own partial GiST index); RLS applies on top
        v_uid := auth.uid();
        return query
        select s.id, s.user_id, s.location_type, s.name, s.address, s.latitude, s.longitude,
               s.is_public, s.distance_meters
          from (
            (select l.id, l.user_id, l.location_type, l.name, l.address, l.latitude,
                    l.longitude, l.is_public, l.location <-> v_point as distance_meters
               from public.locations l
              where l.user_id = v_uid
                and l.is_active
                and (p_location_type is null or l.location_type = p_location_type)
                and l.location <-> v_point <= p_radius_meters
              order by 9
              limit p_limit)
            union all
            (select k.* from (
                -- KNN alone here: under RLS a non-leakproof qual such as && may not be an
                -- index condition, while the KNN order may; the walk stops after p_limit
                -- matching public points (never run for types public points cannot have)
                select l.id, l.user_id, l.location_type, l.name, l.address, l.latitude,
                       l.longitude, l.is_public, l.location <-> v_point as distance_meters
                  from public.locations l
                 where l.is_public
                   and l.is_active
                   and (p_location_type is null or p_location_type in ('pickup', 'dropoff'))
                   and (p_location_type is null or l.location_type = p_location_type)
                 order by l.location <-> v_point
                 limit p_limit) k
              where k.distance_meters <= p_radius_meters)
          ) s
         order by s.distance_meters, s.id
         limit p_limit;
    else
        -- the service (or the owner): every active place. The types searched by distance
        -- (drivers' current positions, pickups, dropoffs) have their own partial GiST
        -- index; the type is a literal in each query so that its (cached, generic) plan
        -- can use it instead of walking past every other type's points.
        case p_location_type
        when 'current' then
            return query
            select k.* from (
                select l.id, l.user_id, l.location_type, l.name, l.address, l.latitude, l.longitude,
                       l.is_public, l.location <-> v_point as distance_meters
                  from public.locations l
                 where l.is_active
                   and l.location_type = 'current'
                   and l.location && v_box
                 order by l.location <-> v_point
                 limit p_limit) k
             where k.distance_meters <= p_radius_meters
             order by k.distance_meters;
        when 'pickup' then
            return query
            select k.* from (
                select l.id, l.user_id, l.location_type, l.name, l.address, l.latitude, l.longitude,
                       l.is_public, l.location <-> v_point as distance_meters
                  from public.locations l
                 where l.is_active
                   and l.location_type = 'pickup'
                   and l.location && v_box
                 order by l.location <-> v_point
                 limit p_limit) k
             where k.distance_meters <= p_radius_meters
             order by k.distance_meters;
        when 'dropoff' then
            return query
            select k.* from (
                select l.id, l.user_id, l.location_type, l.name, l.address, l.latitude, l.longitude,
                       l.is_public, l.location <-> v_point as distance_meters
                  from public.locations l
                 where l.is_active
                   and l.location_type = 'dropoff'
                   and l.location && v_box
                 order by l.location <-> v_point
                 limit p_limit) k
             where k.distance_meters <= p_radius_meters
             order by k.distance_meters;
        else
            return query
            select k.* from (
                select l.id, l.user_id, l.location_type, l.name, l.address, l.latitude, l.longitude,
                       l.is_public, l.location <-> v_point as distance_meters
                  from public.locations l
                 where l.is_active
                   and (p_location_type is null or l.location_type = p_location_type)
                   and l.location && v_box
                 order by l.location <-> v_point
                 limit p_limit) k
             where k.distance_meters <= p_radius_meters
             order by k.distance_meters;
        end case;
    end if;
end
$$;

create or replace function public.event_store_bump_version(
    p_aggregate_type text,
    p_aggregate_id text,
    p_count integer,
    p_expected_version integer
)
returns integer
language plpgsql
set search_path = ''
as $$
declare
    -- a variable, not now() in the upsert (Citus: no STABLE call in DO UPDATE SET)
    v_now timestamptz := pg_catalog.now();
    v_head integer;
begin
    insert into public.event_streams as s (aggregate_type, aggregate_id, version)
    values (p_aggregate_type, p_aggregate_id, p_count)
    on conflict (aggregate_type, aggregate_id)
    do update set version = s.version + excluded.version, updated_at = v_now
    returning s.version into v_head;
    if p_expected_version is not null and v_head - p_count <> p_expected_version then
        raise exception 'wrong expected version for stream %/%: expected %, actual %',
            p_aggregate_type, p_aggregate_id, p_expected_version, v_head - p_count
            using errcode = 'PD003',
                  hint = 'the stream moved since it was read: read it again and retry';
    end if;
    return v_head;
end
$$;

create or replace function public.link_whatsapp_session_user(p_phone_number text, p_user_id uuid)
returns uuid
language plpgsql
set search_path = ''
as $$
declare
    -- a variable, not now() in the upsert (Citus: no STABLE call in DO UPDATE SET)
    v_now timestamptz := pg_catalog.now();
    v_id uuid;
begin
    if p_phone_number is null then
        raise exception 'p_phone_number must not be null' using errcode = '22004';
    end if;
    if p_phone_number !~ '^\+[1-9][0-9]{6,14}$' then
        raise exception 'p_phone_number must be an E.164 phone number, got %', p_phone_number
            using errcode = '22023', hint = 'a + then 7 to 15 digits, e.g. +250788123456';
    end if;
    insert into public.whatsapp_sessions as s (phone_number, user_id, message_count)
    values (p_phone_number, p_user_id, 0)
    on conflict (phone_number) do update set user_id = p_user_id, updated_at = v_now
    returning s.id into v_id;
    return v_id;
end
$$;

create or replace function public.register_partitioned_table(
    p_parent regclass,
    p_retention interval default null,
    p_months_ahead integer default 3
)
returns integer
language plpgsql
set search_path = ''
as $$
declare
    -- a variable, not now() in the upsert (Citus: no STABLE call in DO UPDATE SET)
    v_now timestamptz := pg_catalog.now();
    v_table text;
begin
    select c.relname into v_table from pg_catalog.pg_class c
     where c.oid = p_parent and c.relkind = 'p';
    if v_table is null then
        raise exception 'p_parent: % is not a partitioned table', p_parent using errcode = '22023';
    end if;
    insert into public.partition_settings (table_name, months_ahead, retention)
    values (v_table, p_months_ahead, p_retention)
    on conflict (table_name) do update
       set months_ahead = excluded.months_ahead, retention = excluded.retention,
           updated_at = v_now;
    return public.create_monthly_partitions(p_parent, p_months_ahead);
end
$$;

-- PostgREST sets the claims with set_config(…, true), which stays on the node that runs the
-- statement; SET LOCAL of the same value is forwarded by Citus to every worker connection of
-- the transaction. On one PostgreSQL it re-sets the value it already has.
create function public.propagate_request_claims()
returns void
language plpgsql
set search_path = ''
as $$
declare
    v_claims text := pg_catalog.current_setting('request.jwt.claims', true);
begin
    if v_claims is not null and v_claims <> '' then
        execute pg_catalog.format('set local request.jwt.claims = %L', v_claims);
    end if;
end
$$;

-- ---------------------------------------------------------------------------------------
-- grants
-- ---------------------------------------------------------------------------------------
revoke all on function public.cleanup_expired_cache() from public, anon, authenticated, service_role;
grant execute on function public.cleanup_expired_cache() to service_role;
revoke all on function public.find_nearby_locations(double precision, double precision, double precision, text, integer) from public, anon, authenticated, service_role;
grant execute on function public.find_nearby_locations(double precision, double precision, double precision, text, integer) to authenticated, service_role;
revoke all on function public.get_transaction(uuid) from public, anon, authenticated, service_role;
grant execute on function public.get_transaction(uuid) to authenticated, service_role;
revoke all on function public.register_service(text, text, text, text, text, jsonb, jsonb) from public, anon, authenticated, service_role;
grant execute on function public.register_service(text, text, text, text, text, jsonb, jsonb) to service_role;
revoke all on function public.set_cache(text, jsonb, integer, text, text[]) from public, anon, authenticated, service_role;
grant execute on function public.set_cache(text, jsonb, integer, text, text[]) to service_role;
revoke all on function public.event_store_bump_version(text, text, integer, integer) from public, anon, authenticated, service_role;
revoke all on function public.link_whatsapp_session_user(text, uuid) from public, anon, authenticated, service_role;
grant execute on function public.link_whatsapp_session_user(text, uuid) to service_role;
revoke all on function public.register_partitioned_table(regclass, interval, integer) from public, anon, authenticated, service_role;
revoke all on function public.propagate_request_claims() from public, anon, authenticated, service_role;
grant execute on function public.propagate_request_claims() to anon, authenticated, service_role;

-- ---------------------------------------------------------------------------------------
-- comments
-- ---------------------------------------------------------------------------------------
comment on function public.get_transaction(uuid) is
    'The transaction with this id: its directory entry (by id), then the row by user_id, id and created_at (one partition read; one shard each on Citus). Security invoker: a user gets only their own.';
comment on function public.cleanup_expired_cache() is
    'Deletes expired cache entries (returns how many) and lookup counts older than 30 days. Run hourly by platformdb maintain. Service only.';
comment on function public.find_nearby_locations(double precision, double precision, double precision, text, integer) is
    'Active locations within p_radius_meters of (p_lat, p_lng), nearest first (ST_DWithin plus GiST KNN ordering; spherical metres in distance_meters), optionally of one p_location_type, at most p_limit (1 to 1000). A signed-in user gets their own places and the public points; the service gets every active place. Coordinates out of range -> 22023 naming p_lat/p_lng.';
comment on function public.register_service(text, text, text, text, text, jsonb, jsonb) is
    'Registers a service or updates its registration (by name), counts as a heartbeat, returns its id. Service only. Bad name/type/version/URL/JSON -> 22023; empty -> 22004.';
comment on function public.set_cache(text, jsonb, integer, text, text[]) is
    'Stores p_value under p_key for p_ttl_seconds (1 s to 30 days), replacing any previous value, and returns the expiry time. Keys up to 512 bytes, values up to 1 MiB, up to 32 tags. Service only.';
comment on function public.event_store_bump_version(text, text, integer, integer) is
    'Internal: moves a stream head forward under its row lock and raises PD003 "wrong expected version … expected N, actual M" when the stream moved.';
comment on function public.link_whatsapp_session_user(text, uuid) is
    'Ties the session of p_phone_number (created if needed) to platform user p_user_id (null unlinks) so that user can read it. Call it only after verifying the user owns the number. Returns the session id. Service only.';
comment on function public.register_partitioned_table(regclass, interval, integer) is
    'Records a partitioned table''s retention and look-ahead in partition_settings and creates its partitions.';
comment on function public.propagate_request_claims() is
    'PostgREST db-pre-request on Citus: re-issues request.jwt.claims as SET LOCAL so that the workers'' row-level security sees the same claims (citus.propagate_set_commands = local). Harmless on one PostgreSQL.';

COMMIT;
