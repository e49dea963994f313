-- Exercised by `platformdb verify` as service_role inside a rolled-back transaction.
-- Each statement must succeed; one returning a single boolean must return true.
-- The checks work far from any real data: in the South Atlantic, at -40.1234, -20.4321.

-- check: count every lookup of this transaction (the default samples 1 in 16)
select pg_catalog.set_config('platformdb.cache_stats', 'exact', true) = 'exact';

-- check: PostGIS is installed
select exists (select 1 from pg_catalog.pg_extension where extname = 'postgis');

-- check: cache_entries is UNLOGGED (a cache, never a durable record)
select c.relpersistence = 'u' from pg_catalog.pg_class c where c.oid = 'public.cache_entries'::regclass;

-- check: save_location stores a public pickup point
select public.save_location(p_lat => -40.1234, p_lng => -20.4321, p_location_type => 'pickup',
    p_name => 'platformdb-verify', p_is_public => true) is not null;

-- check: find_nearby_locations finds it first, at 0 m
select (array_agg(name order by distance_meters))[1] = 'platformdb-verify'
       and min(distance_meters) < 0.01
  from public.find_nearby_locations(p_lat => -40.1234, p_lng => -20.4321, p_radius_meters => 50,
                                    p_location_type => 'pickup', p_limit => 5);

-- check: cache_route stores a route from an encoded polyline
select public.cache_route(p_origin_lat => -40.1234, p_origin_lng => -20.4321,
    p_dest_lat => -40.1334, p_dest_lng => -20.4421, p_distance_meters => 1400,
    p_duration_seconds => 240, p_route_polyline => 'fr{sFrsu{Bf^f^f^f^',
    p_provider => 'platformdb_verify') is not null;

-- check: get_cached_route matches it 50 m away from both endpoints
select count(*) = 1
  from public.get_cached_route(p_origin_lat => -40.12385, p_origin_lng => -20.4321,
                               p_dest_lat => -40.13385, p_dest_lng => -20.4421)
 where provider = 'platformdb_verify';

-- check: set_cache stores a value
select public.set_cache(p_key => 'platformdb-verify:key', p_value => '{"ok": true}',
    p_ttl_seconds => 60, p_cache_type => 'platformdb_verify', p_tags => '{platformdb-verify}') is not null;

-- check: get_cache returns it
select public.get_cache(p_key => 'platformdb-verify:key') = '{"ok": true}'::jsonb;

-- check: get_cache misses an absent key
select public.get_cache(p_key => 'platformdb-verify:absent', p_cache_type => 'platformdb_verify') is null;

-- check: invalidate_cache_by_tag removes the tagged entry
select public.invalidate_cache_by_tag(p_tag => 'platformdb-verify') = 1;

-- check: cleanup_expired_cache and cleanup_expired_routes run
select public.cleanup_expired_cache() >= 0 and public.cleanup_expired_routes() >= 0;

-- check: flush_cache_stats writes the lookups counted above (if not flushed already)
select public.flush_cache_stats() >= 0;

-- check: cache_stats shows the hit and the miss
select hits_24h >= 1 and misses_24h >= 1 from public.cache_stats where cache_type = 'platformdb_verify';

-- check: route_cache_stats computes
select total_routes >= 1 and hits_24h >= 1 from public.route_cache_stats;
