-- geo: pickup points within 2 km of a rider somewhere in Kigali (SPEC §1 find_nearby_locations)
\set dlat random(-5000, 5000)
\set dlng random(-5000, 5000)
select count(*) from public.find_nearby_locations(
    p_lat => -1.9536 + :dlat / 100000.0, p_lng => 30.0606 + :dlng / 100000.0,
    p_radius_meters => 2000, p_location_type => 'pickup', p_limit => 20);
