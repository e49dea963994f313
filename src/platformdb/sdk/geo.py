"""Locations and routes: nearest-first search, saved places, the route cache, polylines.

Distances are metres on the sphere PostGIS uses for geography KNN (radius
``SPHERE_RADIUS_METERS``), so `sphere_distance_meters` here gives the same numbers as the
``distance_meters`` column of `find_nearby_locations`.

Coordinates are ``(lat, lng)`` tuples in degrees (WGS 84), the order people say them in;
the encoded-polyline helpers use the same order, as Google's format does.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import polyline as _polyline
import psycopg
from psycopg.rows import class_row

from platformdb.errors import wrap_errors

LOCATION_TYPES = ("current", "home", "work", "favorite", "pickup", "dropoff")
# PostGIS's sphere for geography distances: the mean radius (2a + b) / 3 of WGS 84
SPHERE_RADIUS_METERS = (2 * 6378137.0 + 6356752.314245179) / 3
ROUTE_MATCH_METERS = 100.0

LatLng = tuple[float, float]

FIND_NEARBY = """
select id, user_id, location_type, name, address, latitude, longitude, is_public, distance_meters
  from public.find_nearby_locations(
    p_lat => %(lat)s, p_lng => %(lng)s, p_radius_meters => %(radius)s,
    p_location_type => %(location_type)s, p_limit => %(limit)s)
"""
SAVE_LOCATION = """
select public.save_location(
    p_lat => %(lat)s, p_lng => %(lng)s, p_location_type => %(location_type)s,
    p_name => %(name)s, p_address => %(address)s, p_city => %(city)s,
    p_district => %(district)s, p_accuracy_meters => %(accuracy)s, p_user_id => %(user_id)s,
    p_is_public => %(is_public)s, p_metadata => %(metadata)s::jsonb)
"""
GET_CACHED_ROUTE = """
select id, distance_meters, duration_seconds, route_polyline, polyline_precision,
       traffic_multiplier, provider, created_at, cached_until, origin_offset_meters,
       destination_offset_meters
  from public.get_cached_route(
    p_origin_lat => %(olat)s, p_origin_lng => %(olng)s, p_dest_lat => %(dlat)s,
    p_dest_lng => %(dlng)s, p_max_age_minutes => %(max_age)s, p_limit => %(limit)s)
"""
CACHE_ROUTE = """
select public.cache_route(
    p_origin_lat => %(olat)s, p_origin_lng => %(olng)s, p_dest_lat => %(dlat)s,
    p_dest_lng => %(dlng)s, p_distance_meters => %(distance)s,
    p_duration_seconds => %(duration)s, p_route_polyline => %(polyline)s,
    p_provider => %(provider)s, p_traffic_multiplier => %(traffic)s,
    p_ttl_minutes => %(ttl)s, p_polyline_precision => %(precision)s,
    p_metadata => %(metadata)s::jsonb)
"""
CLEANUP_EXPIRED_ROUTES = "select public.cleanup_expired_routes()"
ROUTE_CACHE_STATS = "select * from public.route_cache_stats"


@dataclass(frozen=True)
class NearbyLocation:
    id: UUID
    user_id: UUID | None
    location_type: str
    name: str | None
    address: str | None
    latitude: float
    longitude: float
    is_public: bool
    distance_meters: float


@dataclass(frozen=True)
class CachedRoute:
    id: UUID
    distance_meters: float
    duration_seconds: int
    route_polyline: str
    polyline_precision: int
    traffic_multiplier: Decimal
    provider: str
    created_at: datetime
    cached_until: datetime
    origin_offset_meters: float
    destination_offset_meters: float

    @property
    def points(self) -> list[LatLng]:
        """The route decoded into (lat, lng) points."""
        return decode_polyline(self.route_polyline, self.polyline_precision)


# ---- pure helpers ---------------------------------------------------------------------


def sphere_distance_meters(a: LatLng, b: LatLng) -> float:
    """Great-circle (haversine) distance in metres on PostGIS's geography sphere."""
    lat1, lng1 = math.radians(a[0]), math.radians(a[1])
    lat2, lng2 = math.radians(b[0]), math.radians(b[1])
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lng2 - lng1) / 2) ** 2
    return 2 * SPHERE_RADIUS_METERS * math.asin(min(1.0, math.sqrt(h)))


def encode_polyline(points: Iterable[LatLng], precision: int = 5) -> str:
    """Google's encoded-polyline format (precision 5; 6 for OSRM/Valhalla polyline6)."""
    return str(_polyline.encode([(float(p[0]), float(p[1])) for p in points], precision))


def decode_polyline(encoded: str, precision: int = 5) -> list[LatLng]:
    """The (lat, lng) points of an encoded polyline."""
    return [(float(lat), float(lng)) for lat, lng in _polyline.decode(encoded, precision)]


# ---- locations ------------------------------------------------------------------------


def find_nearby_locations(
    conn: psycopg.Connection[Any],
    lat: float,
    lng: float,
    radius_meters: float = 5000,
    location_type: str | None = None,
    limit: int = 20,
) -> list[NearbyLocation]:
    """Active locations within `radius_meters`, nearest first, that the caller may see."""
    params = {
        "lat": lat,
        "lng": lng,
        "radius": radius_meters,
        "location_type": location_type,
        "limit": limit,
    }
    with wrap_errors(), conn.cursor(row_factory=class_row(NearbyLocation)) as cur:
        return cur.execute(FIND_NEARBY, params).fetchall()


def save_location(
    conn: psycopg.Connection[Any],
    lat: float,
    lng: float,
    location_type: str,
    name: str | None = None,
    address: str | None = None,
    city: str | None = None,
    district: str | None = None,
    accuracy_meters: float | None = None,
    user_id: UUID | str | None = None,
    is_public: bool = False,
    metadata: Mapping[str, Any] | None = None,
) -> UUID:
    """Save a place; returns its id. A user saves their own; the service public points."""
    params = {
        "lat": lat,
        "lng": lng,
        "location_type": location_type,
        "name": name,
        "address": address,
        "city": city,
        "district": district,
        "accuracy": accuracy_meters,
        "user_id": str(user_id) if user_id is not None else None,
        "is_public": is_public,
        "metadata": json.dumps(dict(metadata or {})),
    }
    with wrap_errors():
        row = conn.execute(SAVE_LOCATION, params).fetchone()
    assert row is not None
    return UUID(str(row[0]))


# ---- routes ---------------------------------------------------------------------------


def find_cached_routes(
    conn: psycopg.Connection[Any],
    origin: LatLng,
    destination: LatLng,
    max_age_minutes: int = 60,
    limit: int = 5,
) -> list[CachedRoute]:
    """Stored routes with both endpoints within 100 m, best match first."""
    params = {
        "olat": origin[0],
        "olng": origin[1],
        "dlat": destination[0],
        "dlng": destination[1],
        "max_age": max_age_minutes,
        "limit": limit,
    }
    with wrap_errors(), conn.cursor(row_factory=class_row(CachedRoute)) as cur:
        return cur.execute(GET_CACHED_ROUTE, params).fetchall()


def get_cached_route(
    conn: psycopg.Connection[Any],
    origin: LatLng,
    destination: LatLng,
    max_age_minutes: int = 60,
) -> CachedRoute | None:
    """The best stored route for this trip, or None (a miss: ask the routing provider)."""
    found = find_cached_routes(conn, origin, destination, max_age_minutes, limit=1)
    return found[0] if found else None


def cache_route(
    conn: psycopg.Connection[Any],
    origin: LatLng,
    destination: LatLng,
    distance_meters: float,
    duration_seconds: int,
    route: str | Sequence[LatLng],
    provider: str = "google",
    traffic_multiplier: float | Decimal = 1.0,
    ttl_minutes: int = 1440,
    precision: int = 5,
    metadata: Mapping[str, Any] | None = None,
) -> UUID:
    """Store a provider's route (an encoded polyline, or points to encode); returns its id."""
    encoded = route if isinstance(route, str) else encode_polyline(route, precision)
    params = {
        "olat": origin[0],
        "olng": origin[1],
        "dlat": destination[0],
        "dlng": destination[1],
        "distance": distance_meters,
        "duration": duration_seconds,
        "polyline": encoded,
        "provider": provider,
        "traffic": Decimal(str(traffic_multiplier)),
        "ttl": ttl_minutes,
        "precision": precision,
        "metadata": json.dumps(dict(metadata or {})),
    }
    with wrap_errors():
        row = conn.execute(CACHE_ROUTE, params).fetchone()
    assert row is not None
    return UUID(str(row[0]))


def cleanup_expired_routes(conn: psycopg.Connection[Any]) -> int:
    """Delete routes past their cached_until; returns how many."""
    with wrap_errors():
        row = conn.execute(CLEANUP_EXPIRED_ROUTES).fetchone()
    return int(row[0]) if row else 0


def route_cache_stats(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    """The one row of the route_cache_stats view."""
    with wrap_errors(), conn.cursor() as cur:
        cur.execute(ROUTE_CACHE_STATS)
        row = cur.fetchone()
        assert row is not None and cur.description is not None
        return {d.name: v for d, v in zip(cur.description, row, strict=True)}
