-- cache: a read of one of 1,000 fare entries (SPEC §1 get_cache), 1 in 10 a miss
\set k random(1, 1100)
select public.get_cache(p_key => 'load-fare-' || :k::int);
