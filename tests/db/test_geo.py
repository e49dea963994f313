"""§3.6 locations and routes: nearest-first search, visibility, route matching, bad input."""

from __future__ import annotations

import math
import random
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

from platformdb import db, errors, migrate
from platformdb.sdk import geo
from tests.helpers import count
from tests.helpers import raises_sqlstate as _raises_psycopg

KIGALI = (-1.9536, 30.0606)
POLYLINE = "_p~iF~ps|U_ulLnnqC_mqNvxq`@"  # Google's documented example
POLYLINE_POINTS = [(38.5, -120.2), (40.7, -120.95), (43.252, -126.453)]
MIGRATION = "20260401150000_location_cache_optimization"
OBS = "20260401100000_system_observability"


@pytest.fixture(autouse=True)
def postgis_on_the_search_path(conn: psycopg.Connection[Any]) -> None:
    """PostGIS lives in the schema `extensions` (as on Supabase, whose roles have it on their
    search_path): the raw PostGIS calls below resolve through it."""
    conn.execute("""set search_path = "$user", public, extensions""")


INSERT_LOCATION = """
insert into public.locations (user_id, location_type, latitude, longitude, is_active, name)
values (%s, %s, %s, %s, %s, %s) returning id
"""


@contextmanager
def raises_sqlstate(state: str, match: str | None = None) -> Iterator[None]:
    """Like tests.helpers.raises_sqlstate, for raw psycopg calls and SDK calls alike."""
    with _raises_psycopg(state, match):
        try:
            yield
        except errors.PlatformDBError as exc:
            assert isinstance(exc.__cause__, psycopg.Error), exc
            raise exc.__cause__ from None


def north_of(origin: tuple[float, float], meters: float) -> tuple[float, float]:
    """The point `meters` due north on PostGIS's sphere (a meridian arc: exact)."""
    return (origin[0] + math.degrees(meters / geo.SPHERE_RADIUS_METERS), origin[1])


def east_of(origin: tuple[float, float], meters: float) -> tuple[float, float]:
    """A point `meters` away eastwards, found by bisection on the haversine distance."""
    lo, hi = 0.0, 1.0
    for _ in range(200):
        mid = (lo + hi) / 2
        if geo.sphere_distance_meters(origin, (origin[0], origin[1] + mid)) < meters:
            lo = mid
        else:
            hi = mid
    return (origin[0], origin[1] + (lo + hi) / 2)


def add(
    conn: psycopg.Connection[Any],
    at: tuple[float, float],
    location_type: str = "pickup",
    user_id: uuid.UUID | None = None,
    is_active: bool = True,
    name: str | None = None,
) -> uuid.UUID:
    """Insert a location as the table owner; a public point when user_id is None."""
    row = conn.execute(
        INSERT_LOCATION,
        (user_id, location_type, at[0], at[1], is_active, name),
    ).fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


def nearby(conn: psycopg.Connection[Any], **kw: Any) -> list[geo.NearbyLocation]:
    lat, lng = kw.pop("at", KIGALI)
    return geo.find_nearby_locations(conn, lat, lng, **kw)


# ---- nearest first -----------------------------------------------------------------------


def test_nearest_first_matches_brute_force_haversine_on_random_points(
    conn: psycopg.Connection[Any],
) -> None:
    rng = random.Random(20260401)
    users = [uuid.uuid4() for _ in range(20)]
    points: list[tuple[uuid.UUID, tuple[float, float], str, bool]] = []
    for i in range(3000):
        at = (KIGALI[0] + rng.uniform(-0.08, 0.08), KIGALI[1] + rng.uniform(-0.08, 0.08))
        kind = rng.choice(["home", "work", "favorite", "pickup", "dropoff"])
        public = kind in ("pickup", "dropoff") and i % 7 == 0
        active = i % 11 != 0
        lid = add(conn, at, kind, None if public else rng.choice(users), active)
        points.append((lid, at, kind, active))
    conn.execute("analyze public.locations")

    for _ in range(25):
        center = (KIGALI[0] + rng.uniform(-0.06, 0.06), KIGALI[1] + rng.uniform(-0.06, 0.06))
        radius = rng.choice([300.0, 1000.0, 2500.0, 6000.0])
        kind = rng.choice([None, "pickup", "home"])
        limit = rng.choice([1, 5, 20, 200])
        expected = sorted(
            (geo.sphere_distance_meters(center, at), lid)
            for lid, at, k, active in points
            if active and (kind is None or k == kind) and geo.sphere_distance_meters(center, at) <= radius
        )[:limit]
        with db.as_service(conn):
            got = nearby(conn, at=center, radius_meters=radius, location_type=kind, limit=limit)
        assert [r.id for r in got] == [lid for _, lid in expected], (center, radius, kind, limit)
        for r, (d, _) in zip(got, expected, strict=True):
            assert r.distance_meters == pytest.approx(d, abs=0.01)
        assert [r.distance_meters for r in got] == sorted(r.distance_meters for r in got)


def test_the_acceptance_query_returns_pickups_ordered_by_distance(
    conn: psycopg.Connection[Any],
) -> None:
    for m in (4200.0, 150.0, 2600.0, 900.0):
        add(conn, north_of(KIGALI, m), "pickup")
    add(conn, north_of(KIGALI, 50.0), "dropoff")
    add(conn, north_of(KIGALI, 5200.0), "pickup")
    with db.as_service(conn):
        rows = conn.execute(
            "select location_type, distance_meters from find_nearby_locations(p_lat => -1.9536,"
            " p_lng => 30.0606, p_radius_meters => 5000, p_location_type => 'pickup', p_limit => 20)"
        ).fetchall()
    assert [t for t, _ in rows] == ["pickup"] * 4
    assert [round(d) for _, d in rows] == [150, 900, 2600, 4200]


@pytest.mark.parametrize("direction", [north_of, east_of])
def test_radius_edge_includes_just_inside_and_excludes_just_outside(
    conn: psycopg.Connection[Any], direction: Callable[..., tuple[float, float]]
) -> None:
    inside = add(conn, direction(KIGALI, 999.9), name="inside")
    add(conn, direction(KIGALI, 1000.1), name="outside")
    with db.as_service(conn):
        got = nearby(conn, radius_meters=1000)
    assert [r.id for r in got] == [inside]
    assert got[0].distance_meters == pytest.approx(999.9, abs=0.01)


def test_limit_type_and_is_active_are_honoured(conn: psycopg.Connection[Any]) -> None:
    ids = [add(conn, north_of(KIGALI, 100 * (i + 1)), "pickup") for i in range(8)]
    add(conn, north_of(KIGALI, 10), "pickup", is_active=False)
    add(conn, north_of(KIGALI, 20), "home", user_id=uuid.uuid4())
    with db.as_service(conn):
        assert [r.id for r in nearby(conn, location_type="pickup", limit=3)] == ids[:3]
        assert [r.location_type for r in nearby(conn, limit=2)] == ["home", "pickup"]
        everything = nearby(conn, limit=1000)
    assert len(everything) == 9  # 8 pickups + the home; never the inactive one


def test_a_user_sees_own_places_and_public_points_never_another_users(
    conn: psycopg.Connection[Any], user_a: uuid.UUID, user_b: uuid.UUID
) -> None:
    a_home = add(conn, north_of(KIGALI, 100), "home", user_a)
    a_pickup = add(conn, north_of(KIGALI, 200), "pickup", user_a)
    add(conn, north_of(KIGALI, 50), "home", user_b)
    add(conn, north_of(KIGALI, 60), "pickup", user_b)
    public = add(conn, north_of(KIGALI, 300), "pickup")
    add(conn, north_of(KIGALI, 310), "pickup", is_active=False)

    with db.as_user(conn, user_a):
        assert [r.id for r in nearby(conn)] == [a_home, a_pickup, public]
        assert [r.id for r in nearby(conn, location_type="pickup")] == [a_pickup, public]
        assert [r.id for r in nearby(conn, location_type="home")] == [a_home]
        assert [r.id for r in nearby(conn, limit=2)] == [a_home, a_pickup]
        # the table itself tells the same story
        seen = conn.execute("select id from public.locations order by id").fetchall()
        assert {r[0] for r in seen} == {a_home, a_pickup, public}
    with db.as_user(conn, user_b):
        assert a_home not in {r.id for r in nearby(conn)}
    with db.as_service(conn):
        assert len(nearby(conn)) == 5


def test_the_user_search_keeps_going_past_far_public_points_of_another_type(
    conn: psycopg.Connection[Any], user_a: uuid.UUID
) -> None:
    for i in range(30):
        add(conn, north_of(KIGALI, 10 + i), "dropoff")
    wanted = add(conn, north_of(KIGALI, 900), "pickup")
    with db.as_user(conn, user_a):
        assert [r.id for r in nearby(conn, location_type="pickup", limit=5)] == [wanted]


def test_anon_may_not_search(conn: psycopg.Connection[Any]) -> None:
    add(conn, KIGALI, "pickup")
    with raises_sqlstate("42501", "permission denied for function find_nearby_locations"):
        with db.as_anon(conn):
            nearby(conn)


@pytest.mark.parametrize(
    ("kw", "state", "message"),
    [
        ({"at": (91.0, 30.0)}, "22023", "p_lat must be between -90 and 90"),
        ({"at": (-90.5, 30.0)}, "22023", "p_lat must be between -90 and 90"),
        ({"at": (-1.95, 180.5)}, "22023", "p_lng must be between -180 and 180"),
        ({"at": (-1.95, -181.0)}, "22023", "p_lng must be between -180 and 180"),
        ({"at": (float("nan"), 30.0)}, "22023", "p_lat must be between"),
        ({"at": (-1.95, float("inf"))}, "22023", "p_lng must be between"),
        ({"at": (None, 30.0)}, "22004", "p_lat must not be null"),
        ({"radius_meters": 0}, "22023", "p_radius_meters must be positive"),
        ({"radius_meters": -5}, "22023", "p_radius_meters must be positive"),
        ({"radius_meters": 100001}, "22023", "at most 100000"),
        ({"location_type": "airport"}, "22023", "p_location_type: unknown location type airport"),
        ({"limit": 0}, "22023", "p_limit must be between 1 and 1000"),
        ({"limit": 1001}, "22023", "p_limit must be between 1 and 1000"),
    ],
)
def test_bad_search_input_gets_a_clear_error(
    conn: psycopg.Connection[Any], kw: dict[str, Any], state: str, message: str
) -> None:
    with raises_sqlstate(state, message):
        with db.as_service(conn):
            nearby(conn, **kw)


def test_the_sdk_maps_bad_coordinates_to_invalid_input(conn: psycopg.Connection[Any]) -> None:
    with pytest.raises(errors.InvalidInput, match="p_lat must be between -90 and 90"):
        with db.as_service(conn):
            geo.find_nearby_locations(conn, 123.0, 30.0)


def test_searches_use_the_spatial_indexes(conn: psycopg.Connection[Any], user_a: uuid.UUID) -> None:
    """The plans inside the function, as auto_explain reports them (not a copy of the SQL)."""
    conn.execute(
        """
        insert into public.locations (user_id, location_type, latitude, longitude)
        select case when g.i % 5 in (0, 3) and g.i % 3 = 0 then null else gen_random_uuid() end,
               (array['pickup', 'current', 'home', 'dropoff', 'work'])[1 + g.i % 5],
               -1.9536 + (random() - 0.5) * 0.2, 30.0606 + (random() - 0.5) * 0.2
          from generate_series(0, 49999) as g(i)
        """
    )
    conn.execute("analyze public.locations")
    plans: list[str] = []
    conn.add_notice_handler(lambda d: plans.append(d.message_primary or ""))
    conn.execute("load 'auto_explain'")
    for setting, value in [
        ("auto_explain.log_min_duration", "0"),
        ("auto_explain.log_nested_statements", "on"),
        ("auto_explain.log_level", "notice"),
        ("client_min_messages", "notice"),
    ]:
        conn.execute("select set_config(%s, %s, false)", (setting, value))

    def inner_plan() -> str:
        return next(p for p in plans if "find_nearby_locations" not in p and "locations l" in p)

    for location_type, index in [
        ("pickup", "locations_pickup_location_gist"),
        ("current", "locations_current_location_gist"),
        (None, "locations_active_location_gist"),
        ("home", "locations_active_location_gist"),
    ]:
        plans.clear()
        with db.as_service(conn):
            nearby(conn, location_type=location_type, limit=5)
        assert f"Index Scan using {index}" in inner_plan(), location_type
        assert "Order By: (location <->" in inner_plan()
    plans.clear()
    with db.as_user(conn, user_a):
        nearby(conn, location_type="pickup", limit=5)
    assert "Index Scan using locations_public_location_gist" in inner_plan()
    assert "locations_user_type_idx" in inner_plan()


# ---- managing places ------------------------------------------------------------------------


def test_a_user_manages_only_their_own_locations(
    conn: psycopg.Connection[Any], user_a: uuid.UUID, user_b: uuid.UUID
) -> None:
    theirs = add(conn, KIGALI, "home", user_b)
    public = add(conn, KIGALI, "pickup")
    with db.as_user(conn, user_a):
        mine = conn.execute(
            "insert into public.locations (user_id, location_type, latitude, longitude, name)"
            " values (%s, 'work', -1.95, 30.10, 'office') returning id",
            (user_a,),
        ).fetchone()
        assert mine is not None
        moved = conn.execute(
            "update public.locations set latitude = -1.96, longitude = 30.11 where id = %s",
            (mine[0],),
        )
        assert moved.rowcount == 1
        for stmt in (
            "update public.locations set name = 'mine now' where id = %s",
            "delete from public.locations where id = %s",
        ):
            assert conn.execute(stmt, (theirs,)).rowcount == 0
            assert conn.execute(stmt, (public,)).rowcount == 0
    # the generated geography followed the move
    row = conn.execute(
        "select st_y(location::geometry), st_x(location::geometry) from public.locations where id = %s",
        (mine[0],),
    ).fetchone()
    assert row == (-1.96, 30.11)
    assert conn.execute(
        "select name from public.locations where id = any(%s) order by name", ([theirs, public],)
    ).fetchall() == [(None,), (None,)]

    refused = [
        (
            "insert into public.locations (user_id, location_type, latitude, longitude)"
            " values (%(b)s, 'home', -1.95, 30.06)",
            "42501",
            "row-level security",
        ),
        (
            "insert into public.locations (user_id, location_type, latitude, longitude)"
            " values (null, 'pickup', -1.95, 30.06)",
            "42501",
            "row-level security",
        ),
        (
            "insert into public.locations (user_id, location_type, latitude, longitude, is_public)"
            " values (%(a)s, 'pickup', -1.95, 30.06, true)",
            "428C9",
            "is_public",
        ),
        ("update public.locations set user_id = null where user_id = %(a)s", "42501", "permission denied"),
        ("update public.locations set user_id = %(b)s where user_id = %(a)s", "42501", "permission denied"),
    ]
    for stmt, state, message in refused:
        with raises_sqlstate(state, message):
            with db.as_user(conn, user_a):
                conn.execute(stmt, {"a": user_a, "b": user_b})
    assert count(conn, "public.locations", f"user_id = '{user_b}'") == 1


def test_save_location_for_users_and_for_the_service(
    conn: psycopg.Connection[Any], user_a: uuid.UUID, user_b: uuid.UUID
) -> None:
    with db.as_user(conn, user_a):
        home = geo.save_location(conn, -1.95, 30.06, "home", name="Home", district="Gasabo")
        with pytest.raises(errors.PermissionDenied, match="only save their own"):
            with conn.transaction():
                geo.save_location(conn, -1.95, 30.06, "home", user_id=user_b)
        with pytest.raises(errors.PermissionDenied, match="only the service creates public"):
            with conn.transaction():
                geo.save_location(conn, -1.95, 30.06, "pickup", is_public=True)
    with db.as_service(conn):
        public = geo.save_location(conn, -1.9441, 30.0619, "pickup", name="Downtown", is_public=True)
        for_b = geo.save_location(conn, -1.97, 30.10, "work", user_id=user_b)
        with pytest.raises(errors.InvalidInput, match="p_user_id must not be null"):
            with conn.transaction():
                geo.save_location(conn, -1.95, 30.06, "home")
        with pytest.raises(errors.InvalidInput, match="only pickup and dropoff points can be public"):
            with conn.transaction():
                geo.save_location(conn, -1.95, 30.06, "home", is_public=True)
    rows = conn.execute(
        "select id, user_id, is_public, district from public.locations order by created_at, id"
    ).fetchall()
    assert {r[0]: (r[1], r[2]) for r in rows} == {
        home: (user_a, False),
        public: (None, True),
        for_b: (user_b, False),
    }


def test_a_current_location_is_moved_not_duplicated(conn: psycopg.Connection[Any], user_a: uuid.UUID) -> None:
    with db.as_user(conn, user_a):
        first = geo.save_location(conn, -1.95, 30.06, "current", accuracy_meters=12.5)
        second = geo.save_location(conn, -1.96, 30.07, "current", accuracy_meters=4)
    assert first == second
    assert conn.execute(
        "select latitude, longitude, accuracy_meters from public.locations where user_id = %s",
        (user_a,),
    ).fetchall() == [(-1.96, 30.07, 4.0)]


@pytest.mark.parametrize(
    ("args", "state", "message"),
    [
        ("p_lat => 95, p_lng => 30.06", "22023", "p_lat must be between -90 and 90"),
        ("p_lat => -1.95, p_lng => 190", "22023", "p_lng must be between -180 and 180"),
        ("p_lat => 'NaN', p_lng => 30.06", "22023", "p_lat must be between"),
        ("p_lat => null, p_lng => 30.06", "22004", "p_lat must not be null"),
        ("p_lat => -1.95, p_lng => 30.06, p_accuracy_meters => -1", "22023", "p_accuracy_meters"),
        ("p_lat => -1.95, p_lng => 30.06, p_metadata => '[]'", "22023", "p_metadata must be a JSON object"),
    ],
)
def test_save_location_refuses_bad_input_and_writes_nothing(
    conn: psycopg.Connection[Any], user_a: uuid.UUID, args: str, state: str, message: str
) -> None:
    with raises_sqlstate(state, message):
        with db.as_user(conn, user_a):
            conn.execute(f"select save_location({args}, p_location_type => 'home')")
    with raises_sqlstate("22023", "p_location_type: unknown location type office"):
        with db.as_user(conn, user_a):
            conn.execute("select save_location(p_lat => 1, p_lng => 1, p_location_type => 'office')")
    assert count(conn, "public.locations") == 0


def test_the_table_refuses_out_of_range_coordinates_written_directly(
    conn: psycopg.Connection[Any], user_a: uuid.UUID
) -> None:
    """Geography would silently wrap them; the CHECK constraints refuse them instead."""
    for lat, lng, constraint in [(-91, 30, "latitude_range"), (0, 181, "longitude_range")]:
        with raises_sqlstate("23514", constraint):
            with db.as_user(conn, user_a):
                conn.execute(
                    "insert into public.locations (user_id, location_type, latitude, longitude)"
                    " values (%s, 'home', %s, %s)",
                    (user_a, lat, lng),
                )
    assert count(conn, "public.locations") == 0


# ---- routes -----------------------------------------------------------------------------------

ORIGIN = (-1.9441, 30.0619)  # downtown
DEST = (-1.9686, 30.1395)  # the airport


def store_route(
    conn: psycopg.Connection[Any], origin: tuple[float, float] = ORIGIN, dest: tuple[float, float] = DEST, **kw: Any
) -> uuid.UUID:
    with db.as_service(conn):
        return geo.cache_route(
            conn,
            origin,
            dest,
            kw.pop("distance", 9800.0),
            kw.pop("duration", 1500),
            kw.pop("route", [origin, dest]),
            **kw,
        )


def lookup(
    conn: psycopg.Connection[Any],
    origin: tuple[float, float],
    dest: tuple[float, float],
    max_age: int = 60,
    limit: int = 5,
) -> list[geo.CachedRoute]:
    with db.as_service(conn):
        return geo.find_cached_routes(conn, origin, dest, max_age, limit)


@pytest.mark.parametrize("end", ["origin", "destination"])
def test_a_route_matches_within_100_m_of_both_ends_and_not_beyond(conn: psycopg.Connection[Any], end: str) -> None:
    rid = store_route(conn)
    for meters, found in [(0, True), (60, True), (99, True), (101, False), (250, False)]:
        o = north_of(ORIGIN, meters) if end == "origin" else ORIGIN
        d = east_of(DEST, meters) if end == "destination" else DEST
        got = lookup(conn, o, d)
        assert [r.id for r in got] == ([rid] if found else []), (end, meters)
        if found:
            offset = got[0].origin_offset_meters if end == "origin" else got[0].destination_offset_meters
            assert offset == pytest.approx(meters, abs=0.01)


def test_the_best_match_comes_first(conn: psycopg.Connection[Any]) -> None:
    far = store_route(conn, north_of(ORIGIN, 80), east_of(DEST, 70))
    near = store_route(conn, north_of(ORIGIN, 10), DEST)
    middle = store_route(conn, north_of(ORIGIN, 40), east_of(DEST, 5))
    assert [r.id for r in lookup(conn, ORIGIN, DEST)] == [near, middle, far]
    with db.as_service(conn):
        best = geo.get_cached_route(conn, ORIGIN, DEST)
    assert best is not None and best.id == near


def test_the_reverse_trip_is_not_a_match(conn: psycopg.Connection[Any]) -> None:
    store_route(conn)
    assert lookup(conn, DEST, ORIGIN) == []


def test_a_route_older_than_the_age_limit_or_past_cached_until_is_not_served(
    conn: psycopg.Connection[Any],
) -> None:
    old = store_route(conn)
    conn.execute(
        "update public.routes set created_at = now() - interval '2 hours',"
        " cached_until = now() + interval '1 hour' where id = %s",
        (old,),
    )
    assert lookup(conn, ORIGIN, DEST, max_age=60) == []
    assert [r.id for r in lookup(conn, ORIGIN, DEST, max_age=180)] == [old]
    conn.execute("update public.routes set cached_until = now() - interval '1 second' where id = %s", (old,))
    assert lookup(conn, ORIGIN, DEST, max_age=180) == []
    with db.as_service(conn):
        assert geo.cleanup_expired_routes(conn) == 1
    assert count(conn, "public.routes") == 0


def test_a_stored_route_keeps_its_polyline_and_decoded_path(conn: psycopg.Connection[Any]) -> None:
    rid = store_route(conn, route=POLYLINE, provider="osrm", traffic_multiplier=1.35, metadata={"mode": "moto"})
    row = conn.execute(
        "select st_astext(path), st_asencodedpolyline(path::geometry), provider,"
        " traffic_multiplier, metadata from public.routes where id = %s",
        (rid,),
    ).fetchone()
    assert row is not None
    assert row[0] == "LINESTRING(-120.2 38.5,-120.95 40.7,-126.453 43.252)"
    assert row[1] == POLYLINE
    assert row[2:4] == ("osrm", Decimal("1.35"))
    assert row[4] == {"mode": "moto"}
    (route,) = lookup(conn, ORIGIN, DEST)
    assert route.route_polyline == POLYLINE
    assert route.points == POLYLINE_POINTS


def test_polyline_encoding_agrees_with_google_and_postgis(conn: psycopg.Connection[Any]) -> None:
    assert geo.encode_polyline(POLYLINE_POINTS) == POLYLINE
    assert geo.decode_polyline(POLYLINE) == POLYLINE_POINTS
    rng = random.Random(6)
    for precision in (5, 6):
        points = [
            (round(rng.uniform(-2.1, -1.8), precision), round(rng.uniform(29.9, 30.2), precision)) for _ in range(50)
        ]
        encoded = geo.encode_polyline(points, precision)
        decoded = geo.decode_polyline(encoded, precision)
        assert [c for p in decoded for c in p] == pytest.approx([c for p in points for c in p], abs=10**-precision)
        tolerance = 0.5 * 10**-precision + 1e-9
        # the database decodes what Python encoded…
        row = conn.execute(
            "select array_agg(array[st_y(d.geom), st_x(d.geom)] order by d.path)"
            "  from st_dumppoints(decode_polyline(%s, %s)) d",
            (encoded, precision),
        ).fetchone()
        assert row is not None
        assert [c for p in row[0] for c in p] == pytest.approx([c for p in points for c in p], abs=tolerance)
        # …to the very points Python decodes…
        assert [tuple(p) for p in row[0]] == decoded
        # …and Python decodes what PostGIS encoded
        wkt = "LINESTRING(" + ", ".join(f"{lng} {lat}" for lat, lng in points) + ")"
        row = conn.execute("select st_asencodedpolyline(st_geomfromtext(%s, 4326), %s)", (wkt, precision)).fetchone()
        assert row is not None
        assert [c for p in geo.decode_polyline(row[0], precision) for c in p] == pytest.approx(
            [c for p in points for c in p], abs=tolerance
        )


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"route": "not a polyline!"}, "p_route_polyline is not an encoded polyline"),
        ({"route": "??"}, "does not decode to a line of at least two valid points"),
        ({"route": "_p~iF"}, "a latitude without its longitude"),
        ({"route": "_p~iF~ps|U_"}, "ends in the middle of a value"),
        ({"distance": -1}, "p_distance_meters must be between 0 and 40075000"),
        ({"duration": -1}, "p_duration_seconds must be between 0 and 604800"),
        ({"traffic_multiplier": 0}, "p_traffic_multiplier must be between 0.1 and 10"),
        ({"ttl_minutes": 0}, "p_ttl_minutes must be between 1 and 43200"),
        ({"provider": "Google Maps"}, "p_provider must be a lower-case name"),
        ({"precision": 7}, "p_polyline_precision must be 5 or 6"),
        ({"origin": (-95.0, 30.0)}, "p_origin_lat must be between -90 and 90"),
        ({"dest": (-1.9, 200.0)}, "p_dest_lng must be between -180 and 180"),
    ],
)
def test_cache_route_refuses_bad_input_and_writes_nothing(
    conn: psycopg.Connection[Any], kw: dict[str, Any], message: str
) -> None:
    kw = {"route": [ORIGIN, DEST], **kw}  # a copy: the parameter is shared by both SDK faces
    with raises_sqlstate("22023", message):
        store_route(conn, kw.pop("origin", ORIGIN), kw.pop("dest", DEST), **kw)
    assert count(conn, "public.routes") == 0


@pytest.mark.parametrize(
    ("args", "state", "message"),
    [
        ("-1.94, 30.06, -1.97, 30.14, p_max_age_minutes => 0", "22023", "p_max_age_minutes"),
        ("-1.94, 30.06, -1.97, 30.14, p_limit => 0", "22023", "p_limit must be between 1 and 100"),
        ("-1.94, 30.06, -91, 30.14", "22023", "p_dest_lat must be between -90 and 90"),
        ("-1.94, 181, -1.97, 30.14", "22023", "p_origin_lng must be between -180 and 180"),
        ("null, 30.06, -1.97, 30.14", "22004", "must not be null"),
    ],
)
def test_get_cached_route_refuses_bad_input(conn: psycopg.Connection[Any], args: str, state: str, message: str) -> None:
    with raises_sqlstate(state, message):
        with db.as_service(conn):
            conn.execute(f"select * from get_cached_route({args})")


@pytest.mark.parametrize("role", ["anon", "authenticated"])
def test_routes_are_for_the_service_only(conn: psycopg.Connection[Any], role: str) -> None:
    store_route(conn)
    for stmt in (
        "select * from get_cached_route(-1.9441, 30.0619, -1.9686, 30.1395)",
        f"select cache_route(-1.9, 30.0, -1.8, 30.1, 100, 60, '{POLYLINE}')",
        "select * from route_cache_stats",
    ):
        with raises_sqlstate("42501", "permission denied"):
            with db.acting_as(conn, role, uuid.uuid4() if role == "authenticated" else None):
                conn.execute(stmt)
    assert count(conn, "public.routes") == 1


def test_route_lookups_are_counted_in_route_cache_stats(conn: psycopg.Connection[Any]) -> None:
    conn.execute("set platformdb.cache_stats = exact")  # every lookup, not 1 in 16
    store_route(conn, provider="google")
    store_route(conn, north_of(ORIGIN, 5), provider="mapbox")
    with db.as_service(conn):
        for _ in range(3):
            geo.get_cached_route(conn, ORIGIN, DEST)
        geo.get_cached_route(conn, DEST, ORIGIN)  # a miss
        conn.execute("select flush_cache_stats()")
        stats = geo.route_cache_stats(conn)
    assert stats["total_routes"] == 2 and stats["fresh_routes"] == 2 and stats["expired_routes"] == 0
    assert stats["routes_by_provider"] == {"google": 1, "mapbox": 1}
    assert (stats["hits_24h"], stats["misses_24h"]) == (3, 1)
    assert float(stats["hit_rate_24h"]) == 0.75


# ---- the migration itself ----------------------------------------------------------------


def _dir(tmp_path: Path) -> Path:
    d = tmp_path / "migrations"
    d.mkdir()
    for f in migrate.default_dir().iterdir():
        if f.name.startswith((OBS, MIGRATION)):
            (d / f.name).symlink_to(f)
    return d


def _has_postgis(url: str) -> bool:
    with psycopg.connect(url) as c:
        return c.execute("select count(*) = 1 from pg_extension where extname = 'postgis'").fetchone() == (True,)


def test_down_removes_postgis_only_when_the_migration_installed_it(new_db_url: str, tmp_path: Path) -> None:
    d = _dir(tmp_path)
    migrate.up(new_db_url, d)
    assert _has_postgis(new_db_url)
    migrate.down(new_db_url, d)
    assert not _has_postgis(new_db_url)

    with psycopg.connect(new_db_url, autocommit=True) as c:
        c.execute("create extension postgis")
    migrate.up(new_db_url, d)
    migrate.down(new_db_url, d)
    assert _has_postgis(new_db_url), "PostGIS was there before: the rollback keeps it"


def test_the_migration_stops_when_one_of_its_names_is_taken(new_db_url: str, tmp_path: Path) -> None:
    d = _dir(tmp_path)
    migrate.up(new_db_url, d, to=OBS[:14])
    with psycopg.connect(new_db_url, autocommit=True) as c:
        c.execute("create table public.routes (id int)")
    with pytest.raises(errors.PlatformDBError, match="routes"):
        migrate.up(new_db_url, d)
    assert not _has_postgis(new_db_url)
    with psycopg.connect(new_db_url) as c:
        assert c.execute("select to_regclass('public.locations')").fetchone() == (None,)


def test_decode_polyline_is_linear_and_bounded(conn: psycopg.Connection[Any]) -> None:
    # 99,998 characters: 49,999 points (each '?' is a zero delta)
    row = conn.execute("select st_npoints(decode_polyline(repeat('?', 99998)))").fetchone()
    assert row == (49999,)
    with raises_sqlstate("22023", "p_encoded is too long: 100001 characters"):
        conn.execute("select decode_polyline(repeat('?', 100001))")
    with raises_sqlstate("22023", "character outside"):
        conn.execute("select decode_polyline(repeat('\\', 10) || 'é')")
    with raises_sqlstate("22023", "p_precision must be between 1 and 10"):
        conn.execute("select decode_polyline('??', 11)")
