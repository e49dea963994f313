-- platformdb 20260401160000 down: the exact reverse of maintenance.
-- Drops only what the up file created. Partitions already detached into the archive schema
-- are data, not schema: they are kept (each says where it came from in its comment, and a
-- re-install lists them in archived_partitions again). pg_cron jobs registered by
-- `platformdb schedule` call run_maintenance: remove them first (`platformdb schedule
-- --uninstall`), or they fail until the file is applied again.
BEGIN;

drop function public.run_maintenance(text[], timestamptz, text, boolean, timestamptz, interval);
drop function public.run_maintenance_task(text, timestamptz, text, boolean, timestamptz, interval, integer);
drop function public.drop_archived_partitions(interval, timestamptz);
drop function public.archive_expired_partitions(timestamptz);
drop function public.create_partitions_ahead(timestamptz, integer);
drop function public.partition_coverage(timestamptz);
drop function public.partition_bounds(regclass);
drop table public.archived_partitions;
drop table public.maintenance_runs;
drop table public.maintenance_schedule;
drop table public.maintenance_tasks;

COMMIT;
