"""Security matrix rows for §3.6 locations, routes and the cache."""

from platformdb.security import TableAccess

MIGRATION = "20260401150000_location_cache_optimization"

TABLES = [
    TableAccess(
        table="locations",
        seed="""insert into public.locations (user_id, location_type, latitude, longitude)
                values (%(owner)s, 'home', -1.9536, 30.0606) returning id""",
        match="id = %(key)s",
        insert="""insert into public.locations (user_id, location_type, latitude, longitude)
                  values (%(owner)s, 'favorite', -1.95, 30.06)""",
        update="name = 'tampered'",
        owner="siud",
        service="siud",
        why="a user's saved places: managed by their owner only (public pickup points, "
        "owned by nobody, are readable by every signed-in user); the service manages all",
    ),
    TableAccess(
        table="routes",
        seed="""insert into public.routes
                    (origin_latitude, origin_longitude, destination_latitude,
                     destination_longitude, route_polyline, distance_meters, duration_seconds,
                     provider, cached_until)
                 values (-1.95, 30.06, -1.97, 30.10, '_p~iF~ps|U_ulLnnqC_mqNvxq`@', 5200, 900, 'matrix',
                         now() + interval '1 hour') returning id""",
        match="id = %(key)s",
        insert="""insert into public.routes
                      (origin_latitude, origin_longitude, destination_latitude,
                       destination_longitude, route_polyline, distance_meters,
                       duration_seconds, provider, cached_until)
                   values (-1.94, 30.05, -1.98, 30.11, '_p~iF~ps|U_ulLnnqC_mqNvxq`@', 6100, 1000, 'matrix',
                           now() + interval '1 hour')""",
        update="duration_seconds = 1",
        service="sid",
        why="shared cache of paid routing answers, service only (endpoints reveal where "
        "people live); a fresh route is a new row, so no update",
    ),
    TableAccess(
        table="cache_entries",
        seed="""insert into public.cache_entries (key, value, expires_at)
                values ('matrix:' || %(owner)s::text, '{}', now() + interval '1 hour')
                returning key""",
        match="key = %(key)s",
        insert="""insert into public.cache_entries (key, value, expires_at)
                  values ('matrix-insert:' || %(owner)s::text, '{}', now() + interval '1 hour')""",
        update="""value = '{"tampered": true}'""",
        service="siud",
        why="the service's cache (UNLOGGED); users never read or write it",
    ),
    TableAccess(
        table="cache_counters",
        seed="""insert into public.cache_counters
                    (bucket, namespace, cache_type, backend_pid, hits)
                values (date_trunc('hour', now() at time zone 'UTC') at time zone 'UTC', 'cache',
                        'm' || substr(md5(%(owner)s::text), 1, 12), 1, 1)
                returning cache_type""",
        match="cache_type = %(key)s",
        insert="""insert into public.cache_counters
                      (bucket, namespace, cache_type, backend_pid, hits)
                  values (date_trunc('hour', now() at time zone 'UTC') at time zone 'UTC', 'cache',
                          'i' || substr(md5(%(owner)s::text), 1, 12), 1, 1)""",
        update="hits = hits + 1",
        service="siud",
        why="cache hit/miss counts flushed by the service's own lookups (upsert) and trimmed by cleanup_expired_cache",
    ),
]
