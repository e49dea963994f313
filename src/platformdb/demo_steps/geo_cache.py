"""Demo locations around Kigali, cached routes between landmarks, and cache traffic.

Public pickup points at well-known places, riders' and drivers' saved places, routes
between landmarks as a routing provider would return them (encoded polylines), route-cache
lookups that hit and miss, and cache reads and writes with a realistic hit rate — flushed at
the end so `cache_stats` and `route_cache_stats` show them at once.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import psycopg

from platformdb.sdk import cache, geo

# approximate positions, good enough for a demo map
LANDMARKS: dict[str, tuple[float, float]] = {
    "Downtown (CBD)": (-1.9441, 30.0619),
    "Nyabugogo Bus Park": (-1.9394, 30.0445),
    "Kigali Convention Centre": (-1.9544, 30.0929),
    "Kimironko Market": (-1.9355, 30.1256),
    "Remera (Giporoso)": (-1.9602, 30.1131),
    "Kigali International Airport": (-1.9686, 30.1395),
    "Kicukiro Centre": (-1.9766, 30.1034),
    "Nyamirambo": (-1.9780, 30.0450),
    "Kacyiru": (-1.9355, 30.0847),
    "Gikondo": (-1.9730, 30.0760),
    "Kibagabaga": (-1.9300, 30.1100),
    "Gisozi": (-1.9307, 30.0608),
    "Kisimenti": (-1.9558, 30.1055),
    "Nyarutarama": (-1.9420, 30.1010),
}
DISTRICTS = ("Gasabo", "Kicukiro", "Nyarugenge")
PROVIDERS = ("google", "mapbox", "osrm")


def _near(rng: random.Random, at: tuple[float, float], spread: float) -> tuple[float, float]:
    return (at[0] + rng.uniform(-spread, spread), at[1] + rng.uniform(-spread, spread))


def _route(rng: random.Random, a: tuple[float, float], b: tuple[float, float]) -> list[tuple[float, float]]:
    """A plausible road-like path: the straight line, bent a little at a few points."""
    steps = rng.randint(4, 9)
    points = [a]
    for i in range(1, steps):
        t = i / steps
        lat = a[0] + (b[0] - a[0]) * t + rng.uniform(-0.002, 0.002)
        lng = a[1] + (b[1] - a[1]) * t + rng.uniform(-0.002, 0.002)
        points.append((round(lat, 5), round(lng, 5)))
    points.append(b)
    return points


def run(conn: psycopg.Connection[Any], scale: int, rng: random.Random, tick: Callable[..., None]) -> dict[str, int]:
    center = LANDMARKS["Downtown (CBD)"]
    # a demo has few lookups: count every one (production samples 1 in 16)
    conn.execute("select set_config('platformdb.cache_stats', 'exact', true)")
    public = 0
    for name, at in LANDMARKS.items():
        geo.save_location(conn, at[0], at[1], "pickup", name=name, city="Kigali", is_public=True)
        public += 1
        if rng.random() < 0.5:
            drop = _near(rng, at, 0.0008)
            geo.save_location(conn, drop[0], drop[1], "dropoff", name=f"{name} drop-off", is_public=True)
            public += 1

    users = 0
    places = 0
    for _ in range(100 * scale):
        user = f"{rng.getrandbits(128):032x}"
        uid = f"{user[:8]}-{user[8:12]}-4{user[13:16]}-a{user[17:20]}-{user[20:32]}"
        district = rng.choice(DISTRICTS)
        kinds = ["home", "current"] + (["work"] if rng.random() < 0.7 else [])
        kinds += ["favorite"] * rng.randint(0, 2)
        for kind in kinds:
            at = _near(rng, center, 0.06)
            geo.save_location(
                conn,
                at[0],
                at[1],
                kind,
                city="Kigali",
                district=district,
                user_id=uid,
                accuracy_meters=round(rng.uniform(3, 40), 1) if kind == "current" else None,
            )
            places += 1
        users += 1
        tick(users, 100 * scale)

    names = list(LANDMARKS)
    trips: list[tuple[tuple[float, float], tuple[float, float]]] = []
    for _ in range(30 * scale):
        a, b = rng.sample(names, 2)
        origin, dest = _near(rng, LANDMARKS[a], 0.0003), _near(rng, LANDMARKS[b], 0.0003)
        path = _route(rng, origin, dest)
        meters = sum(geo.sphere_distance_meters(p, q) for p, q in zip(path, path[1:], strict=False))
        traffic = round(rng.uniform(1.0, 1.6), 2)
        geo.cache_route(
            conn,
            origin,
            dest,
            round(meters * 1.2, 1),
            int(meters * 1.2 / rng.uniform(6, 9) * traffic),
            path,
            provider=rng.choice(PROVIDERS),
            traffic_multiplier=traffic,
            ttl_minutes=rng.choice([60, 240, 1440]),
        )
        trips.append((origin, dest))

    route_hits = route_misses = 0
    for _ in range(60 * scale):
        if rng.random() < 0.7:
            origin, dest = rng.choice(trips)
            found = geo.get_cached_route(conn, _near(rng, origin, 0.0004), _near(rng, dest, 0.0004), max_age_minutes=60)
        else:
            a, b = rng.sample(names, 2)
            found = geo.get_cached_route(conn, _near(rng, LANDMARKS[a], 0.01), LANDMARKS[b])
        if found:
            route_hits += 1
        else:
            route_misses += 1

    searches = 0
    for name in rng.sample(names, 5):
        at = LANDMARKS[name]
        geo.find_nearby_locations(conn, at[0], at[1], 3000, "current", 10)  # drivers nearby
        searches += 1

    sets = 0
    keys: list[str] = []
    for i in range(40 * scale):
        key = f"profile:{i}"
        cache.set_cache(
            conn,
            key,
            {"name": f"Rider {i}", "rating": round(rng.uniform(3.5, 5), 1)},
            3600,
            "profile",
            [f"user:{i}"],
        )
        keys.append(key)
        sets += 1
    for _ in range(20 * scale):
        a, b = rng.sample(names, 2)
        key = f"fare:{a}:{b}"
        cache.set_cache(conn, key, {"amount": rng.randrange(800, 6000, 100), "currency": "RWF"}, 300, "fare", ["fares"])
        keys.append(key)
        sets += 1
    hits = misses = 0
    for i in range(500 * scale):
        if rng.random() < 0.8:
            value = cache.get_cache(conn, rng.choice(keys), cache.MISSING)
        else:
            kind = rng.choice(["profile", "fare", "session"])
            value = cache.get_cache(conn, f"{kind}:cold:{i}", cache.MISSING, cache_type=kind)
        if value is cache.MISSING:
            misses += 1
        else:
            hits += 1
    invalidated = cache.invalidate_by_tag(conn, "user:0")
    cache.flush_stats(conn)
    return {
        "public_points": public,
        "users": users,
        "saved_places": places,
        "routes": len(trips),
        "route_hits": route_hits,
        "route_misses": route_misses,
        "nearby_searches": searches,
        "cache_sets": sets,
        "cache_hits": hits,
        "cache_misses": misses,
        "cache_invalidated": invalidated,
    }
