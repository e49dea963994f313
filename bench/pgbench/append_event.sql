-- event store: one event on one of 10,000 trip streams (SPEC §1 append_event)
\set s random(1, 10000)
select public.append_event(
    p_aggregate_id => 'trip-' || :s::int, p_aggregate_type => 'trip',
    p_event_type => 'trip.location_updated', p_payload => '{"lat": -1.95, "lng": 30.06}');
