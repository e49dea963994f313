-- platformdb 20260401150000 down: the exact reverse of location_cache_optimization.
-- Drops only what the up file created. PostGIS is removed only when the up file installed it
-- (it says so in the extension's comment) and nothing else uses it; otherwise it is kept.
BEGIN;

drop view public.route_cache_stats;
drop view public.cache_stats;
drop function public.cleanup_expired_cache();
drop function public.invalidate_cache_by_tag(text);
drop function public.delete_cache(text);
drop function public.get_cache(text, text);
drop function public.set_cache(text, jsonb, integer, text, text[]);
drop function public.cleanup_expired_routes();
drop function public.cache_route(double precision, double precision, double precision,
                                 double precision, double precision, integer, text, text, numeric,
                                 integer, integer, jsonb);
drop function public.get_cached_route(double precision, double precision, double precision,
                                      double precision, integer, integer);
drop function public.flush_cache_stats();
drop function public.record_cache_lookup(text, text, boolean);
drop function public.cache_stats_housekeeping(text, bigint, integer);
drop function public.save_location(double precision, double precision, text, text, text, text,
                                   text, double precision, uuid, boolean, jsonb);
drop function public.find_nearby_locations(double precision, double precision, double precision,
                                           text, integer);
drop table public.cache_counters;
drop table public.cache_entries;
drop table public.routes;
drop table public.locations;
drop function public.geo_touch_updated_at();
drop function public.decode_polyline(text, integer);

do $postgis$
begin
    if exists (select 1 from pg_catalog.pg_extension e
                where e.extname = 'postgis'
                  and pg_catalog.obj_description(e.oid, 'pg_extension')
                      like '%installed by platformdb 20260401150000_location_cache_optimization%')
    then
        begin
            drop extension postgis;  -- never CASCADE: others' objects are not ours to drop
        exception when dependent_objects_still_exist then
            raise notice 'platformdb: PostGIS kept: other objects use it (%)', sqlerrm;
        end;
    end if;
end
$postgis$;

COMMIT;
