-- platformdb 20260401150000: locations, routes and the cache (SPEC §3.6)
-- Saved places and public pickup points searched by distance (PostGIS geography, GiST, KNN),
-- routes bought from a routing API reused when both endpoints are within 100 m, and a
-- key/value cache with TTL and tags whose hit rate is counted without a write per read.
-- Sections: guard → extension → the function a generated column needs → tables → indexes →
-- functions → views → RLS and grants → comments.
--
-- Where PostGIS lives: on plain PostgreSQL this file installs it in public; on Supabase it
-- may already live in (or is installed into) the schema `extensions`. Every PostGIS name is
-- therefore written unqualified and resolved through `public, extensions`: the file sets that
-- search_path for itself, and the functions that call PostGIS pin
-- `search_path = pg_catalog, public, extensions, pg_temp`. None of them is SECURITY DEFINER:
-- they run with the caller's rights, so RLS decides what they see. Functions that do not use
-- PostGIS pin `search_path = ''` and qualify every name.
BEGIN;

-- ---------------------------------------------------------------------------------------
-- guard: stop before touching anything when one of our names belongs to someone else
-- ---------------------------------------------------------------------------------------
select public.platformdb_assert_names_free(array[
    'locations', 'routes', 'cache_entries', 'cache_counters',
    'geo_touch_updated_at', 'find_nearby_locations', 'save_location',
    'decode_polyline', 'get_cached_route', 'cache_route', 'cleanup_expired_routes',
    'set_cache', 'get_cache', 'delete_cache', 'invalidate_cache_by_tag',
    'cleanup_expired_cache', 'record_cache_lookup', 'cache_stats_housekeeping',
    'flush_cache_stats',
    'cache_stats', 'route_cache_stats'
]);

set local search_path = public, extensions;

-- ---------------------------------------------------------------------------------------
-- extension: PostGIS when missing (Supabase allows CREATE EXTENSION postgis). When this file
-- installs it, it says so in the extension's comment, and only then does the down file
-- remove it again.
-- ---------------------------------------------------------------------------------------
do $postgis$
begin
    if not exists (select 1 from pg_catalog.pg_extension where extname = 'postgis') then
        if exists (select 1 from pg_catalog.pg_namespace where nspname = 'extensions') then
            create extension postgis with schema extensions;  -- Supabase's convention
        else
            create extension postgis;  -- the first schema of search_path: public
        end if;
        comment on extension postgis is
            'PostGIS geometry and geography spatial types and functions (installed by platformdb 20260401150000_location_cache_optimization)';
    end if;
end
$postgis$;

-- ---------------------------------------------------------------------------------------
-- a function the tables need (routes.path is generated with it)
-- ---------------------------------------------------------------------------------------
-- Google's encoded-polyline format, decoded in double precision. (PostGIS 3.3's
-- ST_LineFromEncodedPolyline accumulates in single precision: with precision 6 its points
-- drift by several millionths of a degree, up to metres on a long route.)
create function public.decode_polyline(p_encoded text, p_precision integer default 5)
returns geometry
language plpgsql
immutable
strict
parallel safe
set search_path = pg_catalog, public, extensions, pg_temp
as $$
declare
    v_bytes bytea;
    v_len integer;
    v_pos integer := 0;
    v_factor double precision;
    v_result bigint;
    v_shift integer;
    v_byte integer;
    v_delta bigint;
    v_is_lat boolean := true;
    v_lat bigint := 0;
    v_lng bigint := 0;
    v_count integer := 0;
    v_points geometry[] := '{}';
begin
    if p_precision not between 1 and 10 then
        raise exception 'p_precision must be between 1 and 10, got %', p_precision
            using errcode = '22023';
    end if;
    if char_length(p_encoded) > 100000 then
        raise exception 'p_encoded is too long: % characters (at most 100000)', char_length(p_encoded)
            using errcode = '22023';
    end if;
    if p_encoded !~ '^[?-~]*$' then
        raise exception 'p_encoded has a character outside ? to ~: not an encoded polyline'
            using errcode = '22023';
    end if;
    -- ASCII only from here: one byte per character, each read in constant time, so decoding
    -- is linear in the length (the points go into an array grown in place)
    v_bytes := convert_to(p_encoded, 'UTF8');
    v_len := length(v_bytes);
    v_factor := power(10::double precision, p_precision);
    while v_pos < v_len loop
        v_result := 0;
        v_shift := 0;
        loop
            if v_pos >= v_len then
                raise exception 'encoded polyline ends in the middle of a value'
                    using errcode = '22023';
            end if;
            if v_shift > 55 then
                raise exception 'encoded polyline has a value too long at position %', v_pos + 1
                    using errcode = '22023';
            end if;
            v_byte := get_byte(v_bytes, v_pos) - 63;
            v_result := v_result | ((v_byte & 31)::bigint << v_shift);
            v_shift := v_shift + 5;
            v_pos := v_pos + 1;
            exit when v_byte < 32;
        end loop;
        v_delta := case when v_result & 1 = 1 then ~(v_result >> 1) else v_result >> 1 end;
        if v_is_lat then
            v_lat := v_lat + v_delta;
        else
            v_lng := v_lng + v_delta;
            v_count := v_count + 1;
            v_points[v_count] := st_makepoint(v_lng / v_factor, v_lat / v_factor);
        end if;
        v_is_lat := not v_is_lat;
    end loop;
    if not v_is_lat then
        raise exception 'encoded polyline has a latitude without its longitude'
            using errcode = '22023';
    end if;
    return st_setsrid(st_makeline(v_points), 4326);
end
$$;

-- ---------------------------------------------------------------------------------------
-- tables
-- ---------------------------------------------------------------------------------------
create table public.locations (
    id uuid not null default gen_random_uuid(),
    user_id uuid,
    location_type text not null,
    name text,
    address text,
    city text,
    district text,
    country_code text not null default 'RW',
    latitude double precision not null,
    longitude double precision not null,
    location geography(Point, 4326) not null
        generated always as (st_setsrid(st_makepoint(longitude, latitude), 4326)::geography) stored,
    accuracy_meters real,
    is_public boolean not null generated always as (user_id is null) stored,
    is_active boolean not null default true,
    metadata jsonb not null default '{}',
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint locations_pkey primary key (id),
    constraint locations_location_type_valid check (location_type in
        ('current', 'home', 'work', 'favorite', 'pickup', 'dropoff')),
    constraint locations_latitude_range check (latitude between -90 and 90),
    constraint locations_longitude_range check (longitude between -180 and 180),
    constraint locations_public_kind
        check (not is_public or location_type in ('pickup', 'dropoff')),
    constraint locations_accuracy_range
        check (accuracy_meters is null or accuracy_meters between 0 and 100000),
    constraint locations_country_code_format check (country_code ~ '^[A-Z]{2}$'),
    constraint locations_text_lengths check (
        coalesce(char_length(name), 0) <= 200 and coalesce(char_length(address), 0) <= 500
        and coalesce(char_length(city), 0) <= 100 and coalesce(char_length(district), 0) <= 100),
    constraint locations_metadata_object
        check (jsonb_typeof(metadata) = 'object' and pg_column_size(metadata) <= 4096)
);

create table public.routes (
    id uuid not null default gen_random_uuid(),
    origin_latitude double precision not null,
    origin_longitude double precision not null,
    destination_latitude double precision not null,
    destination_longitude double precision not null,
    origin geography(Point, 4326) not null
        generated always as
            (st_setsrid(st_makepoint(origin_longitude, origin_latitude), 4326)::geography) stored,
    destination geography(Point, 4326) not null
        generated always as
            (st_setsrid(st_makepoint(destination_longitude, destination_latitude), 4326)::geography) stored,
    route_polyline text not null,
    polyline_precision smallint not null default 5,
    path geography(LineString, 4326) not null
        generated always as
            (public.decode_polyline(route_polyline, polyline_precision)::geography) stored,
    distance_meters double precision not null,
    duration_seconds integer not null,
    traffic_multiplier numeric(4, 2) not null default 1.00,
    provider text not null,
    metadata jsonb not null default '{}',
    created_at timestamptz not null default now(),
    cached_until timestamptz not null,
    constraint routes_pkey primary key (id),
    constraint routes_origin_range check (origin_latitude between -90 and 90
        and origin_longitude between -180 and 180),
    constraint routes_destination_range check (destination_latitude between -90 and 90
        and destination_longitude between -180 and 180),
    constraint routes_polyline_format
        check (char_length(route_polyline) between 2 and 100000 and route_polyline ~ '^[?-~]+$'),
    constraint routes_polyline_precision_valid check (polyline_precision in (5, 6)),
    constraint routes_path_has_two_points check (st_npoints(path::geometry) >= 2),
    constraint routes_distance_range check (distance_meters between 0 and 40075000),
    constraint routes_duration_range check (duration_seconds between 0 and 604800),
    constraint routes_traffic_multiplier_range check (traffic_multiplier between 0.10 and 10.00),
    constraint routes_provider_format check (provider ~ '^[a-z][a-z0-9_]{0,31}$'),
    constraint routes_metadata_object
        check (jsonb_typeof(metadata) = 'object' and pg_column_size(metadata) <= 4096),
    constraint routes_cached_until_after_creation check (cached_until > created_at)
);

-- UNLOGGED by design: no WAL for cache writes (set_cache is as cheap as PostgreSQL can make
-- a write), at the price that a crash empties the table and replicas do not have it. A cache
-- may be lost; it is never the durable record of anything. Only key and tags are indexed
-- and pages keep 30% free, so replacing a value is a HOT update (no index writes); the
-- hourly cleanup scans the table instead of keeping an index on expires_at current.
create unlogged table public.cache_entries (
    key text not null,
    value jsonb not null,
    cache_type text not null default 'default',
    tags text[] not null default '{}',
    expires_at timestamptz not null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint cache_entries_pkey primary key (key),
    constraint cache_entries_key_size check (octet_length(key) between 1 and 512),
    constraint cache_entries_value_size check (pg_column_size(value) <= 1048576),
    constraint cache_entries_cache_type_format check (cache_type ~ '^[a-z][a-z0-9_]{0,47}$'),
    constraint cache_entries_tags_count check (cardinality(tags) <= 32),
    constraint cache_entries_expires_after_creation check (expires_at > created_at)
) with (fillfactor = 70);

-- Hit and miss counts, flushed from each backend's memory (see record_cache_lookup). One row
-- per hour, namespace, cache type and backend: a backend only ever updates its own rows, so
-- flushes never wait on each other. UNLOGGED like the cache it describes.
create unlogged table public.cache_counters (
    bucket timestamptz not null,
    namespace text not null,
    cache_type text not null,
    backend_pid integer not null,
    hits bigint not null default 0,
    misses bigint not null default 0,
    flushed_at timestamptz not null default now(),
    constraint cache_counters_pkey primary key (bucket, namespace, cache_type, backend_pid),
    constraint cache_counters_namespace_valid check (namespace in ('cache', 'route')),
    constraint cache_counters_counts_positive check (hits >= 0 and misses >= 0),
    constraint cache_counters_bucket_is_utc_hour
        check (bucket = date_trunc('hour', bucket at time zone 'UTC') at time zone 'UTC')
);

-- ---------------------------------------------------------------------------------------
-- indexes
-- ---------------------------------------------------------------------------------------
-- every search filters on is_active: inactive places are not indexed at all
create index locations_active_location_gist on public.locations using gist (location)
    where is_active;
-- the types the service searches by distance, each in its own index (see the function)
create index locations_current_location_gist on public.locations using gist (location)
    where is_active and location_type = 'current';
create index locations_pickup_location_gist on public.locations using gist (location)
    where is_active and location_type = 'pickup';
create index locations_dropoff_location_gist on public.locations using gist (location)
    where is_active and location_type = 'dropoff';
-- a user's search walks their own handful of places plus this index of public points,
-- instead of every user's places
create index locations_public_location_gist on public.locations using gist (location)
    where is_public and is_active;
create index locations_user_type_idx on public.locations (user_id, location_type)
    where user_id is not null;
-- one 'current' position per user: save_location moves it instead of piling up rows
create unique index locations_one_current_per_user on public.locations (user_id)
    where location_type = 'current';
-- both endpoints in one GiST index: the 100 m match on origin and destination is one scan
create index routes_endpoints_gist on public.routes using gist (origin, destination);
create index routes_cached_until_idx on public.routes (cached_until);
create index cache_entries_tags_gin on public.cache_entries using gin (tags);

-- ---------------------------------------------------------------------------------------
-- functions
-- ---------------------------------------------------------------------------------------
create function public.geo_touch_updated_at()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
    new.updated_at := pg_catalog.now();
    return new;
end
$$;

create trigger locations_touch_updated_at
    before update on public.locations
    for each row execute function public.geo_touch_updated_at();

-- Nearest visible active locations within a radius. SECURITY INVOKER: the caller's RLS
-- applies (a user sees their own places and the public points; the service sees all), and
-- the user branch searches exactly that (own places by user_id + the public-point index) so
-- it stays fast with millions of other users' places.
-- How the search runs: a GiST KNN scan (ORDER BY location <-> point LIMIT n) bounded by the
-- box ST_DWithin itself uses for its index condition (location && _st_expand(point, r)),
-- then the exact radius test on the n nearest. The n nearest inside the box, cut at r, are
-- the n nearest inside the circle; and the plan never depends on PostGIS's estimate for
-- ST_DWithin as a filter (far too low: it made the planner sort a bitmap scan of every
-- point in the box). Distances are on the sphere, the metric of <->, so the order and
-- distance_meters always agree. jit is off: PostGIS's high function costs would otherwise
-- make a call pay for JIT compilation.
create function public.find_nearby_locations(
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

-- Saves a place. A signed-in user saves their own (never public) places; the service saves
-- public pickup/dropoff points (p_is_public) or places on behalf of a user (p_user_id).
-- A 'current' location is moved, not duplicated. SECURITY INVOKER: RLS applies as well.
create function public.save_location(
    p_lat double precision,
    p_lng double precision,
    p_location_type text,
    p_name text default null,
    p_address text default null,
    p_city text default null,
    p_district text default null,
    p_accuracy_meters double precision default null,
    p_user_id uuid default null,
    p_is_public boolean default false,
    p_metadata jsonb default '{}'
)
returns uuid
language plpgsql
set search_path = ''
as $$
declare
    v_user uuid;
    v_id uuid;
begin
    if p_lat is null then
        raise exception 'p_lat must not be null' using errcode = '22004';
    end if;
    if p_lng is null then
        raise exception 'p_lng must not be null' using errcode = '22004';
    end if;
    if not (p_lat between -90 and 90) then
        raise exception 'p_lat must be between -90 and 90, got %', p_lat using errcode = '22023';
    end if;
    if not (p_lng between -180 and 180) then
        raise exception 'p_lng must be between -180 and 180, got %', p_lng using errcode = '22023';
    end if;
    if p_location_type is null or p_location_type not in
        ('current', 'home', 'work', 'favorite', 'pickup', 'dropoff') then
        raise exception 'p_location_type: unknown location type %', coalesce(p_location_type, 'null')
            using errcode = '22023', hint = 'one of current, home, work, favorite, pickup, dropoff';
    end if;
    if p_accuracy_meters is not null and not (p_accuracy_meters between 0 and 100000) then
        raise exception 'p_accuracy_meters must be between 0 and 100000, got %', p_accuracy_meters
            using errcode = '22023';
    end if;
    if p_metadata is not null and jsonb_typeof(p_metadata) <> 'object' then
        raise exception 'p_metadata must be a JSON object' using errcode = '22023';
    end if;
    if coalesce(p_is_public, false) and p_location_type not in ('pickup', 'dropoff') then
        raise exception 'p_is_public: only pickup and dropoff points can be public'
            using errcode = '22023';
    end if;

    if current_user::text = 'authenticated' then
        v_user := auth.uid();
        if v_user is null then
            raise exception 'save_location needs a signed-in user' using errcode = '42501';
        end if;
        if p_user_id is not null and p_user_id <> v_user then
            raise exception 'p_user_id: a user can only save their own places' using errcode = '42501';
        end if;
        if coalesce(p_is_public, false) then
            raise exception 'p_is_public: only the service creates public points' using errcode = '42501';
        end if;
    elsif coalesce(p_is_public, false) then
        if p_user_id is not null then
            raise exception 'p_user_id must be null for a public point' using errcode = '22023';
        end if;
        v_user := null;
    else
        if p_user_id is null then
            raise exception 'p_user_id must not be null (or pass p_is_public => true)'
                using errcode = '22004';
        end if;
        v_user := p_user_id;
    end if;

    if p_location_type = 'current' then
        insert into public.locations as l
            (user_id, location_type, name, address, city, district, latitude, longitude,
             accuracy_meters, metadata)
        values (v_user, 'current', p_name, p_address, p_city, p_district, p_lat, p_lng,
                p_accuracy_meters, coalesce(p_metadata, '{}'))
        on conflict (user_id) where location_type = 'current' do update
           set latitude = excluded.latitude, longitude = excluded.longitude,
               accuracy_meters = excluded.accuracy_meters, name = excluded.name,
               address = excluded.address, city = excluded.city, district = excluded.district,
               metadata = excluded.metadata, is_active = true
        returning l.id into v_id;
    else
        insert into public.locations
            (user_id, location_type, name, address, city, district, latitude, longitude,
             accuracy_meters, metadata)
        values (v_user, p_location_type, p_name, p_address, p_city, p_district, p_lat, p_lng,
                p_accuracy_meters, coalesce(p_metadata, '{}'))
        returning id into v_id;
    end if;
    return v_id;
end
$$;

-- Lookup counting without a write per read. Each backend counts hits and misses in its own
-- memory, in custom session settings named platformdb_stats.<namespace>_<h|m>_<cache type>
-- (set_config: no table, no WAL, no lock), and now and then flushes them into
-- cache_counters. Settings follow the transaction: a rolled-back transaction takes its
-- counts and its flush back together.
-- How many lookups are counted is the session setting platformdb.cache_stats:
--   (unset, or anything else)  sampled: 1 lookup in 16, at random, counted as 16 — a read
--                              pays one random() instead of the counting (an unbiased
--                              estimate; about ±3% at 16,000 lookups);
--   'exact'                    every lookup (about 5 µs of server CPU per read);
--   'off'                      none.
-- It can be set per session, role or database (ALTER ROLE … SET platformdb.cache_stats).

-- The rare part of counting, called by the counting code (record_cache_lookup, and its copy
-- inlined in get_cache) after it added p_step to the count named p_var, now p_count: on the
-- first count of a name since the last flush it remembers the name, and at every 1000
-- counts of one name, or 10 s after the last flush, it flushes everything
-- (flush_cache_stats). Never fails a read.
create function public.cache_stats_housekeeping(p_var text, p_count bigint, p_step integer)
returns void
language plpgsql
set search_path = ''
as $$
declare
    v_now double precision := pg_catalog.date_part('epoch', pg_catalog.clock_timestamp());
    v_last double precision :=
        nullif(pg_catalog.current_setting('platformdb_stats.flushed_at', true), '')::double precision;
    v_void text;
begin
    if p_var is null
       or p_var !~ '^platformdb_stats\.(cache|route)_[hm]_[a-z][a-z0-9_]{0,47}$' then
        raise exception 'p_var must name a lookup count (platformdb_stats.<cache|route>_<h|m>_<type>)'
            using errcode = '22023';
    end if;
    if p_step is null or p_step < 1 or p_step > 1000 or p_count is null or p_count < p_step then
        raise exception 'p_step must be between 1 and 1000, and p_count at least p_step'
            using errcode = '22023';
    end if;
    if p_count = p_step then
        -- the first count of this name since the last flush: remember it for the flush
        v_void := pg_catalog.set_config('platformdb_stats.keys', pg_catalog.concat_ws(',',
                      nullif(pg_catalog.current_setting('platformdb_stats.keys', true), ''), p_var),
                      false);
    end if;
    if v_last is null then
        -- a new session starts its 10 s from now (its first read does not write)
        v_void := pg_catalog.set_config('platformdb_stats.flushed_at', v_now::text, false);
    elsif (p_count / 1000 > (p_count - p_step) / 1000 or v_now - v_last >= 10)
          and pg_catalog.current_setting('transaction_read_only') = 'off' then
        begin
            perform public.flush_cache_stats();
        exception when others then
            -- statistics must never break a read: keep the counts and try again later
            raise warning 'platformdb: cache statistics not flushed: %', sqlerrm;
            v_void := pg_catalog.set_config('platformdb_stats.flushed_at', v_now::text, false);
        end;
    end if;
end
$$;

-- Counts one lookup as a hit or a miss, as platformdb.cache_stats says (sampled, exact or
-- off). get_cache has a copy of this inline (a call costs more than the counting);
-- get_cached_route calls it.
create function public.record_cache_lookup(p_namespace text, p_cache_type text, p_hit boolean)
returns void
language plpgsql
set search_path = ''
as $$
declare
    v_mode text := pg_catalog.current_setting('platformdb.cache_stats', true);
    v_var text;
    v_step integer;
    v_n bigint;
begin
    -- the names become part of a setting's name: anything else would fail there, or poison
    -- this session's next flush
    if p_namespace is null or p_namespace not in ('cache', 'route') then
        raise exception 'p_namespace must be cache or route, got %', p_namespace using errcode = '22023';
    end if;
    if p_cache_type is null or p_cache_type !~ '^[a-z][a-z0-9_]{0,47}$' then
        raise exception 'p_cache_type must be a lower-case name (letters, digits, _; at most 48), got %',
            p_cache_type using errcode = '22023';
    end if;
    if p_hit is null then
        raise exception 'p_hit must not be null' using errcode = '22004';
    end if;
    if v_mode = 'exact' or (v_mode is distinct from 'off' and pg_catalog.random() < 0.0625) then
        v_var := 'platformdb_stats.' || p_namespace || case when p_hit then '_h_' else '_m_' end
                 || p_cache_type;
        v_step := case when v_mode = 'exact' then 1 else 16 end;
        v_n := pg_catalog.set_config(v_var, (coalesce(
                   nullif(pg_catalog.current_setting(v_var, true), '')::bigint, 0) + v_step)::text,
                   false)::bigint;
        if v_n = v_step or v_n / 1000 > (v_n - v_step) / 1000
           or pg_catalog.date_part('epoch', pg_catalog.clock_timestamp()) - coalesce(nullif(
                  pg_catalog.current_setting('platformdb_stats.flushed_at', true), '')::double precision, 0) >= 10
        then
            perform public.cache_stats_housekeeping(v_var, v_n, v_step);
        end if;
    end if;
end
$$;

-- Writes this backend's pending lookup counts into cache_counters and resets them.
create function public.flush_cache_stats()
returns integer
language plpgsql
set search_path = ''
as $$
declare
    v_keys text := pg_catalog.current_setting('platformdb_stats.keys', true);
    v_var text;
    v_parts text[];
    v_n bigint;
    v_rows integer := 0;
    -- the hour in UTC, whatever the session's time zone (some are not whole hours from UTC)
    v_bucket timestamptz := pg_catalog.timezone('UTC',
        pg_catalog.date_trunc('hour', pg_catalog.timezone('UTC', pg_catalog.clock_timestamp())));
    v_void text;
begin
    if coalesce(v_keys, '') <> '' then
        foreach v_var in array pg_catalog.string_to_array(v_keys, ',') loop
            -- only names the counting writes: any other is not ours to read or reset (and
            -- one that is not a valid setting name would fail every later flush)
            v_parts := pg_catalog.regexp_match(v_var, '^platformdb_stats\.(cache|route)_(h|m)_([a-z][a-z0-9_]{0,47})$');
            continue when v_parts is null;
            v_n := nullif(pg_catalog.current_setting(v_var, true), '')::bigint;
            if v_n > 0 then
                insert into public.cache_counters as c
                    (bucket, namespace, cache_type, backend_pid, hits, misses, flushed_at)
                values (v_bucket, v_parts[1], v_parts[3], pg_catalog.pg_backend_pid(),
                        case when v_parts[2] = 'h' then v_n else 0 end,
                        case when v_parts[2] = 'm' then v_n else 0 end,
                        pg_catalog.clock_timestamp())
                on conflict (bucket, namespace, cache_type, backend_pid) do update
                   set hits = c.hits + excluded.hits, misses = c.misses + excluded.misses,
                       flushed_at = excluded.flushed_at;
                v_rows := v_rows + 1;
            end if;
            v_void := pg_catalog.set_config(v_var, '', false);
        end loop;
    end if;
    v_void := pg_catalog.set_config('platformdb_stats.keys', '', false);
    v_void := pg_catalog.set_config('platformdb_stats.flushed_at',
                  pg_catalog.date_part('epoch', pg_catalog.clock_timestamp())::text, false);
    return v_rows;
end
$$;

create function public.get_cached_route(
    p_origin_lat double precision,
    p_origin_lng double precision,
    p_dest_lat double precision,
    p_dest_lng double precision,
    p_max_age_minutes integer default 60,
    p_limit integer default 1
)
returns table (
    id uuid,
    distance_meters double precision,
    duration_seconds integer,
    route_polyline text,
    polyline_precision smallint,
    traffic_multiplier numeric,
    provider text,
    created_at timestamptz,
    cached_until timestamptz,
    origin_offset_meters double precision,
    destination_offset_meters double precision
)
language plpgsql
set search_path = pg_catalog, public, extensions, pg_temp
set jit = off
as $$
#variable_conflict use_column
declare
    v_origin geography;
    v_dest geography;
    v_found boolean;
begin
    if p_origin_lat is null or p_origin_lng is null or p_dest_lat is null or p_dest_lng is null then
        raise exception 'p_origin_lat, p_origin_lng, p_dest_lat and p_dest_lng must not be null'
            using errcode = '22004';
    end if;
    if not (p_origin_lat between -90 and 90) then
        raise exception 'p_origin_lat must be between -90 and 90, got %', p_origin_lat using errcode = '22023';
    end if;
    if not (p_origin_lng between -180 and 180) then
        raise exception 'p_origin_lng must be between -180 and 180, got %', p_origin_lng using errcode = '22023';
    end if;
    if not (p_dest_lat between -90 and 90) then
        raise exception 'p_dest_lat must be between -90 and 90, got %', p_dest_lat using errcode = '22023';
    end if;
    if not (p_dest_lng between -180 and 180) then
        raise exception 'p_dest_lng must be between -180 and 180, got %', p_dest_lng using errcode = '22023';
    end if;
    if p_max_age_minutes is null or p_max_age_minutes < 1 or p_max_age_minutes > 43200 then
        raise exception 'p_max_age_minutes must be between 1 and 43200, got %',
            coalesce(p_max_age_minutes::text, 'null') using errcode = '22023';
    end if;
    if p_limit is null or p_limit < 1 or p_limit > 100 then
        raise exception 'p_limit must be between 1 and 100, got %', coalesce(p_limit::text, 'null')
            using errcode = '22023';
    end if;

    v_origin := st_setsrid(st_makepoint(p_origin_lng, p_origin_lat), 4326)::geography;
    v_dest := st_setsrid(st_makepoint(p_dest_lng, p_dest_lat), 4326)::geography;

    return query
    select m.id, m.distance_meters, m.duration_seconds, m.route_polyline, m.polyline_precision,
           m.traffic_multiplier, m.provider, m.created_at, m.cached_until, m.o_off, m.d_off
      from (select r.id, r.distance_meters, r.duration_seconds, r.route_polyline,
                   r.polyline_precision, r.traffic_multiplier, r.provider, r.created_at,
                   r.cached_until,
                   st_distance(r.origin, v_origin, false) as o_off,
                   st_distance(r.destination, v_dest, false) as d_off
              from public.routes r
             where st_dwithin(r.origin, v_origin, 100, false)
               and st_dwithin(r.destination, v_dest, 100, false)
               and r.created_at > clock_timestamp() - make_interval(mins => p_max_age_minutes)
               and r.cached_until > clock_timestamp()) m
     order by m.o_off + m.d_off, m.created_at desc, m.id
     limit p_limit;
    v_found := found;
    perform public.record_cache_lookup('route', 'route', v_found);
end
$$;

create function public.cache_route(
    p_origin_lat double precision,
    p_origin_lng double precision,
    p_dest_lat double precision,
    p_dest_lng double precision,
    p_distance_meters double precision,
    p_duration_seconds integer,
    p_route_polyline text,
    p_provider text default 'google',
    p_traffic_multiplier numeric default 1.0,
    p_ttl_minutes integer default 1440,
    p_polyline_precision integer default 5,
    p_metadata jsonb default '{}'
)
returns uuid
language plpgsql
set search_path = pg_catalog, public, extensions, pg_temp
as $$
declare
    v_path geometry;
    v_id uuid;
begin
    if p_origin_lat is null or p_origin_lng is null or p_dest_lat is null or p_dest_lng is null then
        raise exception 'p_origin_lat, p_origin_lng, p_dest_lat and p_dest_lng must not be null'
            using errcode = '22004';
    end if;
    if not (p_origin_lat between -90 and 90) then
        raise exception 'p_origin_lat must be between -90 and 90, got %', p_origin_lat using errcode = '22023';
    end if;
    if not (p_origin_lng between -180 and 180) then
        raise exception 'p_origin_lng must be between -180 and 180, got %', p_origin_lng using errcode = '22023';
    end if;
    if not (p_dest_lat between -90 and 90) then
        raise exception 'p_dest_lat must be between -90 and 90, got %', p_dest_lat using errcode = '22023';
    end if;
    if not (p_dest_lng between -180 and 180) then
        raise exception 'p_dest_lng must be between -180 and 180, got %', p_dest_lng using errcode = '22023';
    end if;
    if p_distance_meters is null or not (p_distance_meters between 0 and 40075000) then
        raise exception 'p_distance_meters must be between 0 and 40075000, got %',
            coalesce(p_distance_meters::text, 'null') using errcode = '22023';
    end if;
    if p_duration_seconds is null or p_duration_seconds < 0 or p_duration_seconds > 604800 then
        raise exception 'p_duration_seconds must be between 0 and 604800, got %',
            coalesce(p_duration_seconds::text, 'null') using errcode = '22023';
    end if;
    if p_traffic_multiplier is null or not (p_traffic_multiplier between 0.1 and 10) then
        raise exception 'p_traffic_multiplier must be between 0.1 and 10, got %',
            coalesce(p_traffic_multiplier::text, 'null') using errcode = '22023';
    end if;
    if p_ttl_minutes is null or p_ttl_minutes < 1 or p_ttl_minutes > 43200 then
        raise exception 'p_ttl_minutes must be between 1 and 43200, got %',
            coalesce(p_ttl_minutes::text, 'null') using errcode = '22023';
    end if;
    if p_provider is null or p_provider !~ '^[a-z][a-z0-9_]{0,31}$' then
        raise exception 'p_provider must be a lower-case name like google or osrm, got %',
            coalesce(p_provider, 'null') using errcode = '22023';
    end if;
    if p_polyline_precision is null or p_polyline_precision not in (5, 6) then
        raise exception 'p_polyline_precision must be 5 or 6' using errcode = '22023';
    end if;
    if p_metadata is not null and jsonb_typeof(p_metadata) <> 'object' then
        raise exception 'p_metadata must be a JSON object' using errcode = '22023';
    end if;
    if p_route_polyline is null or char_length(p_route_polyline) not between 2 and 100000
       or p_route_polyline !~ '^[?-~]+$' then
        raise exception 'p_route_polyline is not an encoded polyline (2 to 100000 characters from ? to ~)'
            using errcode = '22023';
    end if;
    begin
        v_path := public.decode_polyline(p_route_polyline, p_polyline_precision);
    exception when invalid_parameter_value then
        raise exception 'p_route_polyline is not an encoded polyline: %', sqlerrm
            using errcode = '22023';
    end;
    if st_npoints(v_path) < 2 or st_ymin(v_path) < -90 or st_ymax(v_path) > 90
       or st_xmin(v_path) < -180 or st_xmax(v_path) > 180 then
        raise exception 'p_route_polyline does not decode to a line of at least two valid points'
            using errcode = '22023';
    end if;

    insert into public.routes
        (origin_latitude, origin_longitude, destination_latitude, destination_longitude,
         route_polyline, polyline_precision, distance_meters, duration_seconds,
         traffic_multiplier, provider, metadata, cached_until)
    values (p_origin_lat, p_origin_lng, p_dest_lat, p_dest_lng, p_route_polyline,
            p_polyline_precision, p_distance_meters, p_duration_seconds, p_traffic_multiplier,
            p_provider, coalesce(p_metadata, '{}'), now() + make_interval(mins => p_ttl_minutes))
    returning id into v_id;
    return v_id;
end
$$;

create function public.cleanup_expired_routes()
returns integer
language plpgsql
set search_path = ''
as $$
declare
    v_count integer;
begin
    delete from public.routes r where r.cached_until <= pg_catalog.clock_timestamp();
    get diagnostics v_count = row_count;
    return v_count;
end
$$;

create function public.set_cache(
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
           expires_at = excluded.expires_at, created_at = pg_catalog.now(),
           updated_at = pg_catalog.now();
    return v_expires;
end
$$;

create function public.get_cache(p_key text, p_cache_type text default null)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
    v_value jsonb;
    v_type text;
    v_expires timestamptz;
    v_mode text;
    v_var text;
    v_step integer;
    v_n bigint;
begin
    if p_key is null then
        raise exception 'p_key must not be null' using errcode = '22004';
    end if;
    if p_cache_type is not null and p_cache_type !~ '^[a-z][a-z0-9_]{0,47}$' then
        raise exception 'p_cache_type must be a lower-case name (letters, digits, _; at most 48), got %',
            p_cache_type using errcode = '22023';
    end if;
    select e.value, e.cache_type, e.expires_at into v_value, v_type, v_expires
      from public.cache_entries e
     where e.key = p_key;
    if not coalesce(v_expires > pg_catalog.clock_timestamp(), false) then
        v_value := null;  -- absent or expired: a miss
    end if;
    -- count the lookup: record_cache_lookup, inlined (this is the hottest function of the
    -- cache, and a nested call would cost more than the counting)
    v_mode := pg_catalog.current_setting('platformdb.cache_stats', true);
    if v_mode = 'exact' or (v_mode is distinct from 'off' and pg_catalog.random() < 0.0625) then
        v_var := case when v_value is null
                      then 'platformdb_stats.cache_m_' || coalesce(p_cache_type, v_type, 'default')
                      else 'platformdb_stats.cache_h_' || v_type end;
        v_step := case when v_mode = 'exact' then 1 else 16 end;
        v_n := pg_catalog.set_config(v_var, (coalesce(
                   nullif(pg_catalog.current_setting(v_var, true), '')::bigint, 0) + v_step)::text,
                   false)::bigint;
        if v_n = v_step or v_n / 1000 > (v_n - v_step) / 1000
           or pg_catalog.date_part('epoch', pg_catalog.clock_timestamp()) - coalesce(nullif(
                  pg_catalog.current_setting('platformdb_stats.flushed_at', true), '')::double precision, 0) >= 10
        then
            perform public.cache_stats_housekeeping(v_var, v_n, v_step);
        end if;
    end if;
    return v_value;
end
$$;

create function public.delete_cache(p_key text)
returns boolean
language plpgsql
set search_path = ''
as $$
begin
    if p_key is null then
        raise exception 'p_key must not be null' using errcode = '22004';
    end if;
    delete from public.cache_entries e where e.key = p_key;
    return found;
end
$$;

create function public.invalidate_cache_by_tag(p_tag text)
returns integer
language plpgsql
set search_path = ''
as $$
declare
    v_count integer;
begin
    if p_tag is null or p_tag = '' then
        raise exception 'p_tag must not be empty' using errcode = '22004';
    end if;
    delete from public.cache_entries e where e.tags operator(pg_catalog.@>) array[p_tag];
    get diagnostics v_count = row_count;
    return v_count;
end
$$;

-- Removes expired entries (hourly by `platformdb maintain`) and lookup counts older than
-- 30 days. Returns the number of cache entries removed.
create function public.cleanup_expired_cache()
returns integer
language plpgsql
set search_path = ''
as $$
declare
    v_count integer;
begin
    delete from public.cache_entries e where e.expires_at <= pg_catalog.clock_timestamp();
    get diagnostics v_count = row_count;
    delete from public.cache_counters c where c.bucket < pg_catalog.now() - interval '30 days';
    return v_count;
end
$$;

-- ---------------------------------------------------------------------------------------
-- views
-- ---------------------------------------------------------------------------------------
create view public.cache_stats
with (security_invoker = true)
as
with entries as (
    select e.cache_type,
           count(*) as entries,
           count(*) filter (where e.expires_at <= now()) as expired_entries,
           sum(pg_column_size(e.value)) as value_bytes,
           max(e.updated_at) as last_set_at
      from public.cache_entries e
     group by e.cache_type
), lookups as (
    select c.cache_type, sum(c.hits) as hits, sum(c.misses) as misses
      from public.cache_counters c
     where c.namespace = 'cache'
       and c.bucket >= date_trunc('hour', now()) - interval '23 hours'
     group by c.cache_type
)
select cache_type,
       coalesce(e.entries, 0) as entries,
       coalesce(e.expired_entries, 0) as expired_entries,
       coalesce(e.entries, 0) - coalesce(e.expired_entries, 0) as live_entries,
       coalesce(e.value_bytes, 0) as value_bytes,
       e.last_set_at,
       coalesce(l.hits, 0) as hits_24h,
       coalesce(l.misses, 0) as misses_24h,
       case when coalesce(l.hits, 0) + coalesce(l.misses, 0) > 0
            then round(l.hits / (l.hits + l.misses), 4) end as hit_rate_24h
  from entries e
  full join lookups l using (cache_type);

create view public.route_cache_stats
with (security_invoker = true)
as
select r.total_routes,
       r.fresh_routes,
       r.total_routes - r.fresh_routes as expired_routes,
       r.routes_by_provider,
       r.avg_distance_meters,
       r.avg_duration_seconds,
       r.avg_traffic_multiplier,
       r.oldest_at,
       r.newest_at,
       coalesce(l.hits, 0) as hits_24h,
       coalesce(l.misses, 0) as misses_24h,
       case when coalesce(l.hits, 0) + coalesce(l.misses, 0) > 0
            then round(l.hits / (l.hits + l.misses), 4) end as hit_rate_24h
  from (select count(*) as total_routes,
               count(*) filter (where x.cached_until > now()) as fresh_routes,
               coalesce((select jsonb_object_agg(p.provider, p.n)
                           from (select y.provider, count(*) as n from public.routes y
                                  group by y.provider) p), '{}') as routes_by_provider,
               round(avg(x.distance_meters)::numeric, 1) as avg_distance_meters,
               round(avg(x.duration_seconds), 1) as avg_duration_seconds,
               round(avg(x.traffic_multiplier), 2) as avg_traffic_multiplier,
               min(x.created_at) as oldest_at,
               max(x.created_at) as newest_at
          from public.routes x) r
 cross join (select sum(c.hits) as hits, sum(c.misses) as misses
               from public.cache_counters c
              where c.namespace = 'route'
                and c.bucket >= date_trunc('hour', now()) - interval '23 hours') l;

-- ---------------------------------------------------------------------------------------
-- RLS and grants (Supabase grants ALL by default: take it back, then grant what is needed)
-- ---------------------------------------------------------------------------------------
alter table public.locations enable row level security;
alter table public.routes enable row level security;
alter table public.cache_entries enable row level security;
alter table public.cache_counters enable row level security;

-- locations: a user manages their own places and reads the public points; the service all
create policy locations_own_or_public_read on public.locations
    for select to authenticated using (user_id = (select auth.uid()) or (is_public and is_active));
create policy locations_own_insert on public.locations
    for insert to authenticated with check (user_id = (select auth.uid()));
create policy locations_own_update on public.locations
    for update to authenticated using (user_id = (select auth.uid()))
    with check (user_id = (select auth.uid()));
create policy locations_own_delete on public.locations
    for delete to authenticated using (user_id = (select auth.uid()));
create policy locations_service_read on public.locations
    for select to service_role using (true);
create policy locations_service_insert on public.locations
    for insert to service_role with check (true);
create policy locations_service_update on public.locations
    for update to service_role using (true) with check (true);
create policy locations_service_delete on public.locations
    for delete to service_role using (true);

-- routes: a shared cache of paid routing answers, used by the service only (endpoints can
-- reveal where people live: users never read them)
create policy routes_service_read on public.routes
    for select to service_role using (true);
create policy routes_service_insert on public.routes
    for insert to service_role with check (true);
create policy routes_service_delete on public.routes
    for delete to service_role using (true);

-- the cache and its counters: the service only
create policy cache_entries_service_read on public.cache_entries
    for select to service_role using (true);
create policy cache_entries_service_insert on public.cache_entries
    for insert to service_role with check (true);
create policy cache_entries_service_update on public.cache_entries
    for update to service_role using (true) with check (true);
create policy cache_entries_service_delete on public.cache_entries
    for delete to service_role using (true);
create policy cache_counters_service_read on public.cache_counters
    for select to service_role using (true);
create policy cache_counters_service_insert on public.cache_counters
    for insert to service_role with check (true);
create policy cache_counters_service_update on public.cache_counters
    for update to service_role using (true) with check (true);
create policy cache_counters_service_delete on public.cache_counters
    for delete to service_role using (true);

revoke all on table public.locations, public.routes, public.cache_entries, public.cache_counters,
    public.cache_stats, public.route_cache_stats
    from public, anon, authenticated, service_role;
grant select, delete on table public.locations to authenticated;
grant insert (user_id, location_type, name, address, city, district, country_code, latitude,
              longitude, accuracy_meters, is_active, metadata)
    on table public.locations to authenticated;
grant update (location_type, name, address, city, district, country_code, latitude, longitude,
              accuracy_meters, is_active, metadata)
    on table public.locations to authenticated;
grant select, insert, update, delete on table public.locations to service_role;
grant select, insert, delete on table public.routes to service_role;
grant select, insert, update, delete on table public.cache_entries to service_role;
grant select, insert, update, delete on table public.cache_counters to service_role;
grant select on table public.cache_stats, public.route_cache_stats to service_role;

revoke all on function
    public.decode_polyline(text, integer),
    public.geo_touch_updated_at(),
    public.find_nearby_locations(double precision, double precision, double precision, text, integer),
    public.save_location(double precision, double precision, text, text, text, text, text, double precision,
                         uuid, boolean, jsonb),
    public.cache_stats_housekeeping(text, bigint, integer),
    public.record_cache_lookup(text, text, boolean),
    public.flush_cache_stats(),
    public.get_cached_route(double precision, double precision, double precision, double precision,
                            integer, integer),
    public.cache_route(double precision, double precision, double precision, double precision,
                       double precision, integer, text, text, numeric, integer, integer, jsonb),
    public.cleanup_expired_routes(),
    public.set_cache(text, jsonb, integer, text, text[]),
    public.get_cache(text, text),
    public.delete_cache(text),
    public.invalidate_cache_by_tag(text),
    public.cleanup_expired_cache()
    from public, anon, authenticated, service_role;
grant execute on function
    public.find_nearby_locations(double precision, double precision, double precision, text, integer),
    public.save_location(double precision, double precision, text, text, text, text, text, double precision,
                         uuid, boolean, jsonb)
    to authenticated, service_role;
grant execute on function
    public.decode_polyline(text, integer),
    public.cache_stats_housekeeping(text, bigint, integer),
    public.record_cache_lookup(text, text, boolean),
    public.flush_cache_stats(),
    public.get_cached_route(double precision, double precision, double precision, double precision,
                            integer, integer),
    public.cache_route(double precision, double precision, double precision, double precision,
                       double precision, integer, text, text, numeric, integer, integer, jsonb),
    public.cleanup_expired_routes(),
    public.set_cache(text, jsonb, integer, text, text[]),
    public.get_cache(text, text),
    public.delete_cache(text),
    public.invalidate_cache_by_tag(text),
    public.cleanup_expired_cache()
    to service_role;

-- ---------------------------------------------------------------------------------------
-- comments (the reference docs and the dashboard read these from the catalog)
-- ---------------------------------------------------------------------------------------
comment on table public.locations is
    'Places on the map: a user''s saved places (current position, home, work, favourites, pickups, dropoffs) and public pickup/dropoff points (no owner, is_public). A user reads and manages their own places and reads the active public points; the service reads and manages all.';
comment on column public.locations.id is 'Location id.';
comment on column public.locations.user_id is 'Owner (auth.users id); null for a public point (only the service writes those).';
comment on column public.locations.location_type is 'current, home, work, favorite, pickup or dropoff.';
comment on column public.locations.name is 'Display name, e.g. Kigali Convention Centre (at most 200 characters).';
comment on column public.locations.address is 'Street address (at most 500 characters).';
comment on column public.locations.city is 'City, e.g. Kigali.';
comment on column public.locations.district is 'District, e.g. Gasabo, Kicukiro, Nyarugenge.';
comment on column public.locations.country_code is 'ISO 3166-1 alpha-2 country code (default RW).';
comment on column public.locations.latitude is 'Latitude in degrees, WGS 84 (-90 to 90). The source of location.';
comment on column public.locations.longitude is 'Longitude in degrees, WGS 84 (-180 to 180). The source of location.';
comment on column public.locations.location is 'The point as geography(Point, 4326), generated from latitude and longitude; GiST-indexed for distance search.';
comment on column public.locations.accuracy_meters is 'Reported GPS accuracy in metres, when known.';
comment on column public.locations.is_public is 'A public pickup/dropoff point, visible to every signed-in user while active. Generated: true exactly when user_id is null (no owner). Only the service creates them.';
comment on column public.locations.is_active is 'Inactive places are kept but never returned by searches (and not indexed).';
comment on column public.locations.metadata is 'Free-form attributes (JSON object, at most 4 KiB).';
comment on column public.locations.created_at is 'When the place was saved.';
comment on column public.locations.updated_at is 'Last change (set by a trigger).';

comment on table public.routes is
    'Routes bought from a routing API (Google, Mapbox, OSRM…), reused by get_cached_route when both endpoints are within 100 m and the route is young enough. Service only: endpoints can reveal where people live.';
comment on column public.routes.id is 'Route id.';
comment on column public.routes.origin_latitude is 'Requested origin latitude (degrees, WGS 84).';
comment on column public.routes.origin_longitude is 'Requested origin longitude (degrees, WGS 84).';
comment on column public.routes.destination_latitude is 'Requested destination latitude (degrees, WGS 84).';
comment on column public.routes.destination_longitude is 'Requested destination longitude (degrees, WGS 84).';
comment on column public.routes.origin is 'Origin as geography(Point, 4326), generated; GiST-indexed together with destination.';
comment on column public.routes.destination is 'Destination as geography(Point, 4326), generated.';
comment on column public.routes.route_polyline is 'The route as an encoded polyline (Google''s format), as the provider returned it.';
comment on column public.routes.polyline_precision is 'Decimal places of the polyline encoding: 5 (Google) or 6 (OSRM, Valhalla polyline6).';
comment on column public.routes.path is 'The decoded polyline as geography(LineString, 4326), generated from route_polyline by decode_polyline.';
comment on column public.routes.distance_meters is 'Route length in metres, as the provider reported it.';
comment on column public.routes.duration_seconds is 'Travel time in seconds, as the provider reported it (including traffic).';
comment on column public.routes.traffic_multiplier is 'Traffic factor applied to the free-flow duration (1.00 = free flow; 0.10 to 10.00).';
comment on column public.routes.provider is 'Routing provider, e.g. google, mapbox, osrm.';
comment on column public.routes.metadata is 'Provider extras (JSON object, at most 4 KiB).';
comment on column public.routes.created_at is 'When the route was fetched; p_max_age_minutes of get_cached_route is measured from here.';
comment on column public.routes.cached_until is 'After this the route is never served and cleanup_expired_routes removes it.';

comment on table public.cache_entries is
    'Key/value cache with TTL and tags, used by the service only. UNLOGGED on purpose: writes skip the WAL, and a crash empties the table (replicas never have it). A cache may be lost on crash; it is never a durable record. Expired entries read as misses until cleanup_expired_cache removes them.';
comment on column public.cache_entries.key is 'Cache key (1 to 512 bytes), e.g. user:profile:<id>.';
comment on column public.cache_entries.value is 'Cached JSON value (at most 1 MiB); JSON null is a valid value.';
comment on column public.cache_entries.cache_type is 'Kind of entry for statistics, e.g. session, profile, route (lower-case name; default ''default'').';
comment on column public.cache_entries.tags is 'Invalidation tags (at most 32): invalidate_cache_by_tag removes every entry carrying one.';
comment on column public.cache_entries.expires_at is 'When the entry stops being served.';
comment on column public.cache_entries.created_at is 'When the current value was set.';
comment on column public.cache_entries.updated_at is 'Last set_cache of this key.';

comment on table public.cache_counters is
    'Cache and route-cache lookup counts per hour, flushed from each backend''s memory at 1000 counts of one kind or 10 s after the last flush (no write per read). Sampled 1 in 16 by default (each sample counts 16), exact with platformdb.cache_stats = exact. Counts of a backend that ends before its next flush are lost. UNLOGGED; rows older than 30 days are removed by cleanup_expired_cache.';
comment on column public.cache_counters.bucket is 'The hour (UTC) the counts were flushed in.';
comment on column public.cache_counters.namespace is 'cache (get_cache) or route (get_cached_route).';
comment on column public.cache_counters.cache_type is 'The entry''s cache_type (for misses: get_cache''s p_cache_type, else the expired entry''s type, else default); route for route lookups.';
comment on column public.cache_counters.backend_pid is 'The backend that flushed (each backend updates only its own rows: flushes never wait on each other).';
comment on column public.cache_counters.hits is 'Lookups that found a live entry.';
comment on column public.cache_counters.misses is 'Lookups that found nothing or an expired entry.';
comment on column public.cache_counters.flushed_at is 'Last flush into this row.';

comment on function public.decode_polyline(text, integer) is
    'Decodes a Google encoded polyline (p_precision 5, or 6 for polyline6) into a LineString (SRID 4326), in double precision. Malformed input -> 22023. Generates routes.path.';
comment on function public.geo_touch_updated_at() is 'Trigger: sets updated_at on every update of a location.';
comment on function public.find_nearby_locations(double precision, double precision, double precision, text, integer) is
    'Active locations within p_radius_meters of (p_lat, p_lng), nearest first (ST_DWithin plus GiST KNN ordering; spherical metres in distance_meters), optionally of one p_location_type, at most p_limit (1 to 1000). A signed-in user gets their own places and the public points; the service gets every active place. Coordinates out of range -> 22023 naming p_lat/p_lng.';
comment on function public.save_location(double precision, double precision, text, text, text, text, text, double precision, uuid, boolean, jsonb) is
    'Saves a place and returns its id. A user saves their own places (never public ones); the service saves public pickup/dropoff points (p_is_public) or a user''s place (p_user_id). A ''current'' location is moved in place (one per user). Bad coordinates -> 22023.';
comment on function public.cache_stats_housekeeping(text, bigint, integer) is
    'Lookup counting, the rare part: remembers a newly counted name, starts a session''s flush clock, and flushes into cache_counters at 1000 counts of one name or 10 s after the last flush. Never fails a read (a failed flush is retried later). Service only.';
comment on function public.record_cache_lookup(text, text, boolean) is
    'Counts a cache or route lookup as a hit or a miss in the backend''s memory, as platformdb.cache_stats says: sampled 1 in 16 (default), exact, or off. Service only.';
comment on function public.flush_cache_stats() is
    'Writes this backend''s pending lookup counts into cache_counters now and returns the number of rows touched. The SDK calls it before a connection is given back; cache_stats shows flushed counts only. Service only.';
comment on function public.get_cached_route(double precision, double precision, double precision, double precision, integer, integer) is
    'Stored routes whose origin and destination are both within 100 m of the requested ones, younger than p_max_age_minutes and not past cached_until; best match (smallest summed endpoint offsets, then newest) first, at most p_limit. Counts a route-cache hit or miss. Service only.';
comment on function public.cache_route(double precision, double precision, double precision, double precision, double precision, integer, text, text, numeric, integer, integer, jsonb) is
    'Stores a route from a routing provider (encoded polyline, decoded into path) for p_ttl_minutes and returns its id. Bad coordinates or a polyline that does not decode -> 22023. Service only.';
comment on function public.cleanup_expired_routes() is 'Deletes routes past cached_until; returns how many. Service only.';
comment on function public.set_cache(text, jsonb, integer, text, text[]) is
    'Stores p_value under p_key for p_ttl_seconds (1 s to 30 days), replacing any previous value, and returns the expiry time. Keys up to 512 bytes, values up to 1 MiB, up to 32 tags. Service only.';
comment on function public.get_cache(text, text) is
    'The live value under p_key, or null on a miss or an expired entry. Counts a hit or a miss per cache type without writing (sampled 1 in 16 unless platformdb.cache_stats is exact or off; see record_cache_lookup); p_cache_type attributes a miss of an absent key. Service only.';
comment on function public.delete_cache(text) is 'Removes one key; true when it existed. Service only.';
comment on function public.invalidate_cache_by_tag(text) is 'Removes every entry tagged p_tag and returns how many. Service only.';
comment on function public.cleanup_expired_cache() is
    'Deletes expired cache entries (returns how many) and lookup counts older than 30 days. Run hourly by platformdb maintain. Service only.';

comment on view public.cache_stats is
    'Per cache type: entries, expired and live entries, value bytes, last set, and hits, misses and hit rate over the last 24 hours (flushed counts). Service only.';
comment on view public.route_cache_stats is
    'The route cache in one row: routes (fresh, expired, by provider), average distance, duration and traffic multiplier, oldest and newest, and lookups hits, misses and hit rate over the last 24 hours. Service only.';

COMMIT;
