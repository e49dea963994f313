-- Exercised by `platformdb verify` as service_role inside a rolled-back transaction.
-- Each statement must succeed; one returning a single boolean must return true.

-- (how far ahead each table is covered is verify's own "partitions" check)
-- check: partition_coverage reports every table of partition_settings
select count(*) = (select count(*) from public.partition_settings)
       and bool_and(months_covered_ahead >= -1 and attached_partitions >= 0)
  from public.partition_coverage();

-- check: every maintenance task is listed, and each scheduled one has a job
select count(*) = 7
       and bool_and(m.task = 'drop_archived' or exists (
           select 1 from public.maintenance_schedule s where s.enabled and m.task = any (s.tasks)))
  from public.maintenance_tasks m;

-- check: the run history is readable
select count(*) >= 0 from public.maintenance_runs;

-- check: services cannot run maintenance (it changes partitions: owner only)
select not has_function_privilege('service_role',
    'public.run_maintenance(text[], timestamptz, text, boolean, timestamptz, interval)', 'execute')
   and not has_function_privilege('service_role',
    'public.drop_archived_partitions(interval, timestamptz)', 'execute');

-- check: archive schemas are closed to anon, authenticated and service_role
select not exists (
    select 1 from pg_catalog.pg_namespace n
     where n.nspname in (select s.archive_schema from public.partition_settings s)
       and (has_schema_privilege('anon', n.oid, 'usage')
            or has_schema_privilege('authenticated', n.oid, 'usage')
            or has_schema_privilege('service_role', n.oid, 'usage')));
